"""A TS2Vec peer (issue 16): PyPOTS's TS2Vec trained on the windows a vaelab run trains on.

TS2Vec (Yue et al., AAAI 2022) is a self-supervised encoder for time series: a dilated Conv1D
stack trained with a hierarchical contrastive loss (two random overlapping crops of each series,
instance-wise and temporal contrast at every scale of max-pooling). No decoder, no KL: the other
unsupervised way of learning a per-stay representation, against which vaelab's VAEs are compared.

* **Data.** As a vaelab run gets it: the PhysioNet 2019 source (``--data``, default
  ``$VAELAB_PHYSIONET2019`` or ``../shared/data/physionet2019_setA.tar.gz`` next to the
  repository) imported with ``import_physionet2019(source, seq_len)`` (cached) and read with
  ``read_layer2``; or a Layer-2 ``.h5`` file given as ``--data`` (any cohort). ``prepare_data``
  splits the stays as a vaelab run with ``seed=--seed`` does (``VAL_FRACTION`` held out) and
  fits vaelab's ``Normalizer`` (per-vital z-scores over observed entries) on the training split.
* **Input** (``--missing``). PyPOTS takes missing values as NaN, but TS2Vec's encoder
  (``pypots.nn.modules.ts2vec.backbone.TS2VecEncoder.forward``, as in the original code) drops a
  whole *hour* when any of its features is NaN: it zeroes the hour and masks it out. On PhysioNet
  2019 (48 h) only 16 % of hours have all 7 vitals (TEMP is charted about every 4 h), and 40 % of
  the stays have no complete hour at all, so they all get the same vector. Hence two inputs:

  - ``nan``: the normalized values, NaN where unobserved (PyPOTS's own convention). TS2Vec sees
    only the complete hours; ``run.json`` records how many hours and stays that leaves.
  - ``mask-channels`` (default): vaelab's encoder input, ``vaelab.models.base.observed_inputs``:
    the normalized values, 0 where unobserved, beside the 0/1 mask (2 x V features), with NaN only
    in the hours where no vital is observed, so TS2Vec masks those hours out as it is built to.
    Every observation reaches the encoder, and it knows which entries were observed, as vaelab's
    encoders do.

* **Model.** ``pypots.representation.TS2Vec(n_steps=T, n_features=V or 2V, n_output_dims=--dims
  (vaelab's default latent_dim), d_hidden=--hidden (64), n_layers=--depth (10),
  mask_mode="binomial", batch_size=--batch-size (64, vaelab's TrainConfig), epochs=--epochs,
  device=--device (cpu), model_saving_strategy=None)``; Adam, lr 1e-3 (PyPOTS's default and the
  paper's). Hidden 64, depth 10 and the binomial timestamp mask are the original TS2Vec defaults.
  ``fit(train, val)``: PyPOTS logs the training and validation contrastive loss per epoch and
  keeps the state of the best validation loss (the loss draws random crops, so the pick is noisy).
* **Epochs** (``--epochs``, default 10). The original TS2Vec trains a fixed 600 iterations of
  batch 8 on a data set of this size (``n_iters = 600`` when N x T x C > 100,000), about 4,800
  series, a third of one epoch of the 14,120 training stays; 10 epochs of batch 64 are 2,210
  iterations and 141,000 series, well past the paper's budget, and the same 10 epochs the
  experiments/physionet2019 VAEs train. At 1 thread (2-core CPU, the other core busy) an epoch of
  the first 2,000 stays (1,600 train + 400 validation) took 6.2 s, so one of all 17,650 stays takes
  ~55 s and 10 epochs ~9 min. On those 2,000 stays the losses were still falling at epoch 10.
* **Output** (``--out DIR``). ``ts2vec_latents.h5``: the ``full_series`` representation of EVERY
  stay (max-pooled over the window, ``encoding_window="full_series"``), written with
  ``vaelab.data.latents.write_latents`` as ``mu``; ``logvar`` is zeros (TS2Vec has none: do not
  read it). ``run.json``: settings, seeds, stays, the hours TS2Vec sees, the best epoch,
  training seconds and seconds per epoch. With ``--limit N`` (the first N stays, quick checks)
  ``layer2.h5`` holds those N stays too, since the probe table needs the labels of the same stays.

Score the representation with the table every embedding gets:

    python experiments/peers/ts2vec.py --out multirun/peers/ts2vec/seed0 --seed 0
    python -m vaelab.probe multirun/peers/ts2vec/seed0/ts2vec_latents.h5 --labels LAYER2.h5

(``LAYER2.h5``: ``run.json``'s ``labels_file``.) Bad input (a missing file, not a Layer-2 file,
a bad setting) is one line naming the problem, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from peer_data import RUN_FILE, add_data_arguments, labels_file, load_stays

from vaelab.data.latents import write_latents
from vaelab.data.prepare import VAL_FRACTION, PreparedData, prepare_data
from vaelab.data.sources import SEED_LIMIT
from vaelab.errors import VaelabError
from vaelab.io import write_json
from vaelab.models.base import observed_inputs
from vaelab.models.multiscale import MultiScaleConfig
from vaelab.training.trainer import TrainConfig, seed_everything

LATENTS_FILE = "ts2vec_latents.h5"

EPOCHS = 10  # see "Epochs" above
DIMS = MultiScaleConfig.latent_dim  # vaelab's default latent size: the same number of features to probe
HIDDEN = 64  # the original TS2Vec's hidden_dims
DEPTH = 10  # the original TS2Vec's depth (residual dilated conv blocks)
MASK_MODE = "binomial"  # the original TS2Vec's timestamp masking in training
MISSING_MODES = ("mask-channels", "nan")

log = logging.getLogger("ts2vec_peer")


# --------------------------------------------------------------------------------------------------
# Data


def ts2vec_inputs(prepared: PreparedData, missing: str) -> np.ndarray:
    """(N, T, F) float32 for TS2Vec, NaN where it is to treat an entry as missing (see ``--missing``)."""
    observed = prepared.masks > 0.5
    if missing == "nan":
        return np.where(observed, prepared.x, np.nan).astype(np.float32)
    both = observed_inputs(torch.from_numpy(prepared.x), torch.from_numpy(prepared.masks)).numpy()
    both[~observed.any(axis=-1)] = np.nan  # hours without any observation: TS2Vec's own missing hours
    return both


def hours_seen(X: np.ndarray) -> dict:
    """What TS2Vec's encoder keeps of ``X``: it drops every hour with a NaN in any feature."""
    kept = ~np.isnan(X).any(axis=-1)  # (N, T)
    return {
        "hours_seen_fraction": float(kept.mean()),
        "stays_with_no_hour_seen": int((~kept.any(axis=1)).sum()),
        "median_hours_seen_per_stay": float(np.median(kept.sum(axis=1))),
    }


# --------------------------------------------------------------------------------------------------
# TS2Vec


def import_ts2vec():
    """PyPOTS's TS2Vec class; the banner PyPOTS's ecosystem prints on import goes to stderr, so
    stdout keeps only this script's own lines."""
    with contextlib.redirect_stdout(sys.stderr):
        from pypots.representation import TS2Vec
    return TS2Vec


def build_ts2vec(args: argparse.Namespace, n_steps: int, n_features: int):
    TS2Vec = import_ts2vec()
    return TS2Vec(
        n_steps=n_steps,
        n_features=n_features,
        n_output_dims=args.dims,
        d_hidden=args.hidden,
        n_layers=args.depth,
        mask_mode=MASK_MODE,
        batch_size=args.batch_size,
        epochs=args.epochs,
        device=args.device,
        saving_path=None,
        model_saving_strategy=None,
        verbose=True,
    )


def check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "dims", "batch_size", "threads", "hidden", "depth"):
        if getattr(args, name) < 1:
            raise VaelabError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.seed < SEED_LIMIT:
        raise VaelabError(f"--seed must be between 0 and {SEED_LIMIT - 1}, got {args.seed}")


def run(args: argparse.Namespace) -> dict:
    check_args(args)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data, layer2, n_all = load_stays(args)
    prepared = prepare_data(data, VAL_FRACTION, args.seed, str(layer2))
    X = ts2vec_inputs(prepared, args.missing)
    seen = hours_seen(X)
    log.info(
        "%s: %d stays x %d h x %d vitals; %d train / %d validation stays (split seed %d); input %s, %d features: "
        "TS2Vec sees %.1f%% of hours, %d stays have no hour it sees; seed %d, %d thread(s), device %s",
        layer2,
        data.n_patients,
        data.seq_len,
        data.n_vitals,
        len(prepared.train_idx),
        len(prepared.val_idx),
        args.seed,
        args.missing,
        X.shape[-1],
        100 * seen["hours_seen_fraction"],
        seen["stays_with_no_hour_seen"],
        args.seed,
        args.threads,
        args.device,
    )

    seed_everything(args.seed)  # weights, dropout, batch order (torch); crops and timestamp masks (numpy)
    model = build_ts2vec(args, data.seq_len, X.shape[-1])
    started = time.perf_counter()
    val_set = {"X": X[prepared.val_idx]} if len(prepared.val_idx) else None
    model.fit({"X": X[prepared.train_idx]}, val_set)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    mu = np.asarray(model.represent({"X": X}, encoding_window="full_series"), dtype=np.float32)
    represent_seconds = time.perf_counter() - started
    if mu.shape != (data.n_patients, args.dims) or not np.isfinite(mu).all():
        raise RuntimeError(f"TS2Vec returned a representation of shape {mu.shape} (finite: {np.isfinite(mu).all()})")

    out.mkdir(parents=True, exist_ok=True)
    labels = labels_file(out, data, layer2, args.limit)
    latents = write_latents(out / LATENTS_FILE, mu, np.zeros_like(mu), data.patient_ids)
    distinct = len(np.unique(mu.round(6), axis=0))
    summary = {
        "settings": {
            "data": str(args.data),
            "layer2": str(layer2),
            "labels_file": str(labels),
            "seq_len": data.seq_len,
            "vitals": list(data.vitals),
            "limit": args.limit,
            "missing": args.missing,
            "n_features": int(X.shape[-1]),
            "threads": args.threads,
            "device": args.device,
            "model": {
                "class": "pypots.representation.TS2Vec",
                "pypots_version": sys.modules["pypots"].__version__,
                "n_output_dims": args.dims,
                "d_hidden": args.hidden,
                "n_layers": args.depth,
                "mask_mode": MASK_MODE,
                "encoding_window": "full_series",
                "optimizer": "Adam (PyPOTS default, lr 1e-3)",
                "parameters": int(sum(p.numel() for p in model.model.parameters())),
            },
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "val_fraction": VAL_FRACTION,
            "model_selection": "best validation contrastive loss (PyPOTS)",
        },
        "seeds": {"model": args.seed, "split": args.seed},
        "stays": {"in_file": n_all, "used": data.n_patients, "train": len(prepared.train_idx), "val": len(prepared.val_idx)},
        "input": seen,
        "normalizer": prepared.normalizer.to_dict(),
        "best_epoch": int(model.best_epoch),
        "best_loss": float(model.best_loss),
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / args.epochs,
        "represent_seconds": represent_seconds,
        "distinct_representations": distinct,
        "latents": str(latents),
        "probe_command": f"python -m vaelab.probe {latents} --labels {labels}",
    }
    write_json(out / RUN_FILE, summary)
    log.info(
        "trained %d epochs in %.0f s (%.1f s/epoch), best epoch %d; %d distinct representations of %d stays",
        args.epochs,
        train_seconds,
        summary["seconds_per_epoch"],
        summary["best_epoch"],
        distinct,
        data.n_patients,
    )
    print(f"{out / RUN_FILE}\n{latents}\nnext: {summary['probe_command']}")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python experiments/peers/ts2vec.py",
        description="A TS2Vec peer: PyPOTS's TS2Vec trained on a vaelab run's training stays; writes the full-series "
        "representation of every stay for python -m vaelab.probe.",
    )
    add_data_arguments(parser, f"{LATENTS_FILE} and {RUN_FILE}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (as a vaelab run's seed), the weights, batches, crops")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    parser.add_argument("--dims", type=int, default=DIMS, help=f"representation size (default {DIMS}, vaelab's latent_dim)")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size, help="batch size (default: vaelab's, 64)")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help=f"hidden channels (default {HIDDEN}, the paper's)")
    parser.add_argument("--depth", type=int, default=DEPTH, help=f"dilated conv blocks (default {DEPTH}, the paper's)")
    parser.add_argument("--missing", choices=MISSING_MODES, default=MISSING_MODES[0], help="input: see the module docstring")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s]: %(message)s", stream=sys.stderr)
    try:
        run(args)
    except VaelabError as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
