"""The supervised ceiling: vaelab's encoder trained end to end on a label (issue 16).

How far is an unsupervised embedding from one trained on the label itself? The encoder of
vaelab's default model (``MultiScaleEncoder`` with the default ``MultiScaleConfig``'s latent_dim,
base_channels, dropout and pooling) maps each stay to its ``mu`` (latent_dim numbers); one linear
layer on ``mu`` gives a score, trained on the label (``--label``, default ``sepsis``) on the
training stays only: BCE for a binary label, mean squared error of the z-scored target for a
continuous one (age, length of stay).

* **Data.** As a vaelab run gets it: the PhysioNet 2019 source (``--data``, default
  ``$VAELAB_PHYSIONET2019`` or ``../shared/data/physionet2019_setA.tar.gz`` next to the
  repository) imported with ``import_physionet2019(source, seq_len)`` (cached) and read with
  ``read_layer2``; or a Layer-2 ``.h5`` file given as ``--data`` (any cohort). Normalized with
  vaelab's ``Normalizer`` (per-vital z-scores over observed entries, 0 where unobserved), fitted on
  the fitting stays only (the training stays less the validation stays).
* **Split.** The probe table's own split of the label (``probe_table.label_split``: the stays
  where the label is finite, the larger value as 1, ``seeded_split(n, seed=0, test_fraction=TEST_FRACTION, stratify=y)``), so the test stays are
  exactly those every row of the probe table scores. Of its training stays,
  ``VAL_FRACTION`` (stratified, seed 0) are held out for early stopping. The split seeds are 0
  whatever ``--seed``, which seeds only the model (weights, dropout, batch order). Test stays are
  never seen in training or model selection.
* **Training.** Adam at vaelab's ``TrainConfig`` learning rate and batch size (1e-3, 64). A binary
  label: BCE with ``pos_weight`` = negatives / positives of the fitting stays (sepsis is ~9 %),
  scored by AUROC. A continuous label: MSE of the target z-scored with the fitting stays' mean and
  sd, scored by R². At most ``--epochs`` (100) epochs, stopped when the validation score has not
  improved for ``--patience`` (10) epochs; the state of the best validation score is kept. The
  validation part is stratified for a binary label only. The default
  model's BN-VAE layer (``posterior_bn``) is part of the VAE, not of the encoder, and is not used:
  it exists to keep a KL-regularized latent from collapsing, and at evaluation it is an affine map
  of ``mu`` that the linear head absorbs.
* **Output** (``--out DIR``). ``supervised_latents.h5``: the trained encoder's ``mu`` of EVERY stay
  (``vaelab.data.latents.write_latents``; ``logvar`` is what the encoder returns, from an
  ``fc_logvar`` layer no loss trains: do not read it). ``run.json``: the settings, seeds and split
  sizes, the epochs trained, the best epoch, training seconds, the metric (``auroc`` or ``r2``),
  its best validation value (``val_auroc`` / ``val_r2``), the head's own test figures on the probe
  table's test stays (``test_auroc`` and ``test_auprc``, or ``test_r2``), the head's weights (its
  score of a stay is ``mu @ weight + bias``: a logit, or for a continuous label the z-scored
  prediction, ``target_mean`` + ``target_sd`` × score in the label's units) and the per-epoch history. With
  ``--limit N`` (the first N stays, for quick checks) ``layer2.h5`` holds those N stays too, since
  the probe table needs the labels of the same stays.

Then score the representation with the same table as every other embedding:

    python -m vaelab.probe DIR/supervised_latents.h5 --labels LAYER2.h5

(``LAYER2.h5``: ``run.json``'s ``labels_file``.) The rows of the trained label (``sepsis``) in that
table are the supervised ceiling for that label: what this encoder can carry about it when trained
for it, read out by the same probes on the same test stays as every unsupervised embedding. The
other labels' rows show what an encoder trained for that label keeps of everything else.

    python experiments/peers/supervised.py --out multirun/peers/supervised/seed0 --seed 0

Bad input (a missing file, a label not in the file's ``labels/`` group, a label the probe table
cannot use, such as a constant) is one line naming the file and label, exit 2.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from peer_data import RUN_FILE, add_data_arguments, labels_file, load_stays
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score

from vaelab.data.batches import batch_indices
from vaelab.data.latents import write_latents
from vaelab.data.layer2 import Layer2Data
from vaelab.data.prepare import Normalizer
from vaelab.errors import VaelabError
from vaelab.evaluation import probe_table
from vaelab.evaluation.probes import TEST_FRACTION, seeded_split
from vaelab.io import write_json
from vaelab.models.multiscale import MultiScaleConfig, MultiScaleEncoder
from vaelab.training.inference import as_tensor, encode_posterior
from vaelab.training.trainer import TrainConfig, seed_everything

LATENTS_FILE = "supervised_latents.h5"

SPLIT_SEED = 0  # the probe table's split, and the validation split inside its training part
VAL_FRACTION = 0.15  # of the probe table's training stays, held out for early stopping
EPOCHS = 100
PATIENCE = 10  # epochs without a better validation score before stopping
METRIC = {"binary": "auroc", "continuous": "r2"}  # a label kind's score: early stopping and the test figure
METRIC_NAME = {"auroc": "AUROC", "r2": "R2"}


class SupervisedEncoder(nn.Module):
    """vaelab's multi-scale encoder and one linear layer from its ``mu`` to a score (a logit, or a
    z-scored prediction).

    ``encode_distribution`` is the encoder's (mu, logvar), so ``vaelab.training.inference.
    encode_posterior`` embeds stays with it as it does with any vaelab model.
    """

    def __init__(self, input_dim: int, seq_len: int, config: MultiScaleConfig):
        super().__init__()
        self.encoder = MultiScaleEncoder(input_dim, seq_len, config.latent_dim, config.base_channels, config.dropout, config.pooling)
        self.head = nn.Linear(config.latent_dim, 1)

    def encode_distribution(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x, mask)[0]).squeeze(-1)

    @torch.no_grad()
    def scores_of(self, mu: np.ndarray) -> np.ndarray:
        """The head's score of each posterior mean (eval mode: the encoder already ran)."""
        return self.head(as_tensor(mu, next(self.parameters()).device)).squeeze(-1).cpu().numpy()


# --------------------------------------------------------------------------------------------------
# Data, label and split


def label_split(data: Layer2Data, label: str, source: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, rows taking part, their target: 0/1 or float, training positions, test positions into
    those rows): the probe table's own treatment of the label and its split (``probe_table.label_split``)."""
    labels = data.labels or {}
    if label not in labels:
        have = ", ".join(sorted(labels)) if labels else "none: the file has no labels/ group"
        raise VaelabError(f"{source}: label {label!r} is not in the file's labels/ group (labels: {have})")
    try:
        kind, rows, y, train, test = probe_table.label_split(labels[label], SPLIT_SEED, TEST_FRACTION)
    except VaelabError as why:
        raise VaelabError(f"{source}: label {label!r} cannot be used: {why}") from None
    return kind, rows, y, train, test


def validation_split(kind: str, y_train: np.ndarray, source: Path, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the training part of the fitting and validation stays (seed 0; stratified for a
    binary label)."""
    binary = kind == "binary"
    try:
        fit, val = seeded_split(len(y_train), SPLIT_SEED, VAL_FRACTION, stratify=y_train if binary else None)
    except ValueError:
        positives = f" ({int(y_train.sum())} positive)" if binary else ""
        raise VaelabError(
            f"{source}: label {label!r}: {len(y_train)} training stays{positives} are too few for a "
            f"{'stratified ' if binary else ''}{VAL_FRACTION:.0%} validation part"
        ) from None
    if binary and min(y_train[val].sum(), len(val) - y_train[val].sum()) < 1:
        raise VaelabError(f"{source}: label {label!r}: the validation part lacks a class; add stays")
    if not binary and (len(np.unique(y_train[val])) < 2 or len(np.unique(y_train[fit])) < 2):
        raise VaelabError(f"{source}: label {label!r}: the fitting or validation part holds one value only; add stays")
    return np.sort(fit), np.sort(val)


# --------------------------------------------------------------------------------------------------
# Training


def scores(model: SupervisedEncoder, x: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, logvar, head score) of each stay, in eval mode."""
    mu, logvar = encode_posterior(model, x, masks)
    return mu, logvar, model.scores_of(mu)


def head_target(kind: str, y: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, nn.Module, dict]:
    """The target in the head's units for every stay, the loss, and what ``run.json`` records of
    both: 0/1 and BCE with ``pos_weight``, or the target z-scored with the fitting stays' mean and sd
    and MSE (R² is the same in z-units as in the label's)."""
    if kind == "binary":
        positives = int(y[fit].sum())
        pos_weight = (len(fit) - positives) / positives
        return y, nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float32)), {"pos_weight": pos_weight}
    mean, sd = float(y[fit].mean()), float(y[fit].std())
    return (y - mean) / sd, nn.MSELoss(), {"target_mean": mean, "target_sd": sd}


def score_of(kind: str, target: np.ndarray, head_score: np.ndarray) -> float:
    """The metric of a label kind (``METRIC``): AUROC of the logits, or R² of the predictions."""
    return float(roc_auc_score(target, head_score) if kind == "binary" else r2_score(target, head_score))


def train(
    model, kind: str, loss_fn, x, masks, y, fit, val, epochs: int, patience: int, batch_size: int, lr: float, seed: int, log=print
) -> dict:
    """Train on the stays ``fit``, early stopping on the score (``METRIC[kind]``) of the stays
    ``val``; the best state is loaded into ``model``. ``y`` and ``loss_fn`` come from ``head_target``.
    Returns the history and the stopping figures."""
    metric = METRIC[kind]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x_fit, m_fit, y_fit = x[fit], masks[fit], torch.as_tensor(y[fit], dtype=torch.float32)
    x_val, m_val, y_val = x[val], masks[val], y[val]
    rng = np.random.default_rng(seed)  # the batch order of every epoch
    history, best_score, best_epoch, best_state = [], -np.inf, 0, copy.deepcopy(model.state_dict())
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, seen = 0.0, 0
        for index in batch_indices(len(fit), batch_size, shuffle=True, rng=rng):
            if len(index) < 2:  # BatchNorm cannot train on one stay: a last batch of one is left out
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(as_tensor(x_fit[index]), as_tensor(m_fit[index])), y_fit[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            seen += len(index)
        val_score = score_of(kind, y_val, scores(model, x_val, m_val)[2])
        improved = val_score > best_score
        if improved:
            best_score, best_epoch, best_state = val_score, epoch, copy.deepcopy(model.state_dict())
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": total / seen, f"val_{metric}": val_score, "seconds": seconds})
        log(
            f"epoch {epoch:3d}  train loss {total / seen:.4f}  val {METRIC_NAME[metric]} {val_score:.4f}"
            f"{' *' if improved else '  '}  {seconds:.1f} s"
        )
        if epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return {
        "epochs_trained": len(history),
        "best_epoch": best_epoch,
        "stopped_early": len(history) < epochs,
        "metric": metric,
        f"val_{metric}": best_score,
        "train_seconds": time.perf_counter() - started,
        "history": history,
    }


# --------------------------------------------------------------------------------------------------
# The run


def run(args: argparse.Namespace) -> dict:
    if args.epochs < 1 or args.patience < 1 or args.threads < 1:
        raise VaelabError(f"--epochs, --patience and --threads must be >= 1, got {args.epochs}, {args.patience}, {args.threads}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data, layer2, n_all = load_stays(args)
    kind, rows, y_rows, train_pos, test_pos = label_split(data, args.label, layer2)
    fit_pos, val_pos = validation_split(kind, y_rows[train_pos], layer2, args.label)
    fit_pos, val_pos = train_pos[fit_pos], train_pos[val_pos]
    fit, val, test = rows[fit_pos], rows[val_pos], rows[test_pos]  # rows of ``data``
    y = np.full(data.n_patients, np.nan)  # NaN: the label is not finite, the stay takes no part
    y[rows] = y_rows
    y, loss_fn, loss_settings = head_target(kind, y, fit)

    normalizer = Normalizer.fit(data.values[fit], data.masks[fit], data.vitals, str(layer2))
    x = normalizer.transform(data.values, data.masks)
    masks = np.ascontiguousarray(data.masks, dtype=np.float32)

    defaults, trainer = MultiScaleConfig(), TrainConfig()
    seed_everything(args.seed)
    model = SupervisedEncoder(data.n_vitals, data.seq_len, defaults)
    print(
        f"{layer2}: {data.n_patients} stays x {data.seq_len} h x {data.n_vitals} vitals; {kind} label {args.label!r}: "
        f"{len(fit)} fit / {len(val)} validation / {len(test)} test stays, "
        f"{f'{y_rows.mean():.1%} positive' if kind == 'binary' else f'mean {y_rows.mean():.4g}, sd {y_rows.std():.4g}'}; "
        f"model seed {args.seed}, split seed {SPLIT_SEED}, {args.threads} thread(s)",
        flush=True,
    )
    result = train(
        model, kind, loss_fn, x, masks, y, fit, val, args.epochs, args.patience, trainer.batch_size, trainer.lr, args.seed, log_line
    )

    mu, logvar, head_scores = scores(model, x, masks)
    out.mkdir(parents=True, exist_ok=True)
    labels = labels_file(out, data, layer2, args.limit)
    latents = write_latents(out / LATENTS_FILE, mu, logvar, data.patient_ids)
    summary = {
        "settings": {
            "data": str(args.data),
            "layer2": str(layer2),
            "labels_file": str(labels),
            "seq_len": data.seq_len,
            "vitals": list(data.vitals),
            "label": args.label,
            "label_kind": kind,
            "limit": args.limit,
            "threads": args.threads,
            "epochs": args.epochs,
            "patience": args.patience,
            "batch_size": trainer.batch_size,
            "lr": trainer.lr,
            "optimizer": "Adam",
            "loss": "BCEWithLogits, pos_weight = negatives / positives of the fit stays"
            if kind == "binary"
            else "MSE of the target z-scored with the fit stays' mean and sd",
            **loss_settings,
            "early_stopping": f"validation {METRIC_NAME[METRIC[kind]]}",
            "test_fraction": TEST_FRACTION,
            "val_fraction": VAL_FRACTION,
            "encoder": {
                "class": "vaelab.models.multiscale.MultiScaleEncoder",
                "latent_dim": defaults.latent_dim,
                "base_channels": defaults.base_channels,
                "dropout": defaults.dropout,
                "pooling": defaults.pooling,
            },
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "seeds": {"model": args.seed, "split": SPLIT_SEED},
        "stays": {
            "in_file": n_all,
            "used": data.n_patients,
            "with_label": len(rows),
            "fit": len(fit),
            "val": len(val),
            "test": len(test),
            **(
                {f"positive_{part}": int(y[part_rows].sum()) for part, part_rows in (("fit", fit), ("val", val), ("test", test))}
                if kind == "binary"
                else {}
            ),
        },
        "normalizer": normalizer.to_dict(),
        **{key: value for key, value in result.items() if key != "history"},
        **test_figures(kind, y[test], head_scores[test]),
        "head": {"weight": model.head.weight.detach().squeeze(0).tolist(), "bias": float(model.head.bias.detach())},
        "latents": str(latents),
        "probe_command": f"python -m vaelab.probe {latents} --labels {labels}",
        "history": result["history"],
    }
    write_json(out / RUN_FILE, summary)
    metric = METRIC[kind]
    test_line = (
        f"test AUROC {summary['test_auroc']:.4f}, AUPRC {summary['test_auprc']:.4f} (positive rate {summary['test_positive_rate']:.3f})"
        if kind == "binary"
        else f"test R2 {summary['test_r2']:.4f}"
    )
    print(
        f"best epoch {result['best_epoch']} of {result['epochs_trained']} ({result['train_seconds']:.0f} s): "
        f"validation {METRIC_NAME[metric]} {result[f'val_{metric}']:.4f}; {test_line}"
    )
    print(f"{out / RUN_FILE}\n{latents}\nnext: {summary['probe_command']}")
    return summary


def log_line(line: str) -> None:
    print(line, flush=True)


def test_figures(kind: str, target: np.ndarray, head_score: np.ndarray) -> dict:
    """The head's own figures on the probe table's test stays."""
    if kind == "binary":
        return {
            "test_auroc": score_of(kind, target, head_score),
            "test_auprc": float(average_precision_score(target, head_score)),
            "test_positive_rate": float(target.mean()),
        }
    return {"test_r2": score_of(kind, target, head_score)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python experiments/peers/supervised.py",
        description="The supervised ceiling: vaelab's default encoder trained end to end on a label (binary or continuous), on the probe "
        "table's training stays; writes its mu of every stay for python -m vaelab.probe.",
    )
    add_data_arguments(parser, f"{LATENTS_FILE} and {RUN_FILE}")
    parser.add_argument("--label", default="sepsis", help="label in the file's labels/ group, binary or continuous (default sepsis)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model: weights, dropout, batch order (the splits stay seed 0)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"most epochs (default {EPOCHS})")
    parser.add_argument("--patience", type=int, default=PATIENCE, help=f"epochs without a better validation score (default {PATIENCE})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except VaelabError as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
