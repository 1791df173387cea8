"""``python benchmarks/speed.py``: vaelab's multi-scale VAE against the plan's original, side by side.

Run from the repository root (``python benchmarks/speed.py --quick`` for a smoke run). For each
base_channels it measures, in one process and interleaved so that other load on the machine hits
both models alike:

- training throughput: sequences/s of ``forward_output`` + ``MultiScaleVAELoss.objective`` +
  backward + Adam step, train mode, at ``--batch-size``, each model with its own default loss
  (vaelab's: ``LossConfig()``; the plan's: branch_weight 1);
- the cost of the heads' targets: vaelab's training throughput with the spectral and quantile
  heads' targets computed once per patient and passed to ``objective`` (what an in-memory run
  does) against computed by the loss from the batch at every training step (``targets=None``, the
  old way), in the same interleaved turns, with the time ``signal.head_targets`` takes per batch;
- inference throughput: sequences/s of encoding posterior means (eval mode, no_grad) at
  ``--infer-batch-size`` (``encode_posterior``'s batch);
- forward FLOPs per sequence (``torch.utils.flop_counter.FlopCounterMode``: convolutions and
  matmuls; normalisation and element-wise ops are not counted) and the fraction of the CPU's
  peak that training reaches, taking training FLOPs = 3 x forward FLOPs;
- parameters.

Each figure is the median over ``--repeats`` repetitions of ``--steps`` steps, after
``--warmup`` steps per model; the models take turns step by step.
Ratios are vaelab / plan. A quality check (``--no-quality`` skips it) trains both models the
same way on the same synthetic data and reports validation reconstruction, true KL and active
units, so a speed-up is never bought with quality.

vaelab's model and loss are its defaults, read from ``MultiScaleConfig()`` and ``LossConfig()``.

``--json OUT`` writes every number of the table (atomically); ``--quick`` is a seconds-long
smoke run; ``--profile CHANNELS`` prints instead the top ops of one training step.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from vaelab.data.prepare import prepare_data
from vaelab.data.synthetic import generate_synthetic
from vaelab.io import atomic_path
from vaelab.losses import LossConfig, MultiScaleVAELoss, masked_mse
from vaelab.models import ConvModelConfig, MultiScaleConfig, MultiScaleConv1DVAE, VAEBase
from vaelab.models.plan_baseline import PlanMultiScaleConv1DVAE
from vaelab.signal import head_targets
from vaelab.training.inference import reconstruct
from vaelab.training.trainer import TrainConfig, evaluate, seed_everything, train

MODELS: dict[str, type[VAEBase]] = {"plan": PlanMultiScaleConv1DVAE, "vaelab": MultiScaleConv1DVAE}
# Each model as it is trained by default: the plan's as the plan wrote it, vaelab's as `python -m vaelab`
# builds it. vaelab's options are read from MultiScaleConfig() and LossConfig(), the one place its defaults
# live: every model option beyond the shape (latent_dim, base_channels, dropout, set below), every loss
# weight beyond beta and free bits (the quality check's schedule sets those for both models).
_SHAPE_FIELDS = {f.name for f in dataclasses.fields(ConvModelConfig)}
_SCHEDULE_FIELDS = {"beta", "free_bits"}
MODEL_KWARGS: dict[str, dict] = {
    "plan": {},
    "vaelab": {f.name: getattr(MultiScaleConfig(), f.name) for f in dataclasses.fields(MultiScaleConfig) if f.name not in _SHAPE_FIELDS},
}
# The plan's loss: every branch's MSE weighs as much as the merged output's. It has no heads, so the
# head weights do not matter for it; the rest (free bits over the batch, no spectral term) is LossConfig's.
LOSS_KWARGS: dict[str, dict] = {
    "plan": {"branch_weight": 1.0},
    "vaelab": {f.name: getattr(LossConfig(), f.name) for f in dataclasses.fields(LossConfig) if f.name not in _SCHEDULE_FIELDS},
}
# The third training arm: vaelab's model and loss with the heads' targets left to the loss (targets=None),
# which computes them from the batch at every step, the way training worked before targets were cached.
PER_STEP = "vaelab_targets_per_step"
HEAD_TARGETS = "head_targets"  # timed beside the training steps: signal.head_targets of one training batch
INPUT_DIM = 7
LATENT_DIM = 32
DROPOUT = 0.2
# The quality check's loss: the plan's settings with a short schedule so 15 epochs see a full cycle.
QUALITY_LOSS = dict(beta=0.5, free_bits=2.0, warmup_epochs=5, cycle_epochs=10)
QUICK = dict(channels=[8], batch_size=8, infer_batch_size=8, seq_len=96, repeats=1, steps=1, warmup=1, quality=False)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's word for it)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_header(threads: int) -> dict:
    """What the numbers depend on: torch, threads, CPU, load (other jobs), date."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "loadavg": load,
    }


def build(name: str, channels: int, seq_len: int, seed: int = 0) -> VAEBase:
    seed_everything(seed)
    return MODELS[name](INPUT_DIM, seq_len, LATENT_DIM, channels, DROPOUT, **MODEL_KWARGS[name])


def loss_for(name: str) -> MultiScaleVAELoss:
    """The quality check's short schedule with each model's default loss settings (the plan's for the plan)."""
    return MultiScaleVAELoss(**QUALITY_LOSS, **LOSS_KWARGS[name])


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fake_batch(batch_size: int, seq_len: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized-looking values with 0 where unobserved (about 30 % missing), and the mask."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch_size, seq_len, INPUT_DIM, generator=g) < 0.7).float()
    return torch.randn(batch_size, seq_len, INPUT_DIM, generator=g) * mask, mask


def forward_flops(model: VAEBase, x: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(forward FLOPs, encoder-only FLOPs) per sequence, counted by FlopCounterMode in eval mode."""
    model.eval()
    with torch.no_grad():
        with FlopCounterMode(display=False) as full:
            model.forward_output(x, mask)
        with FlopCounterMode(display=False) as enc:
            model.encode_distribution(x, mask)
    return full.get_total_flops() / len(x), enc.get_total_flops() / len(x)


def train_step_fn(
    model: VAEBase, x: torch.Tensor, mask: torch.Tensor, loss_fn: MultiScaleVAELoss, targets_per_step: bool = False
) -> Callable[[], None]:
    """One training step as ``vaelab.training.trainer.train`` takes it (train mode, ``forward_output``,
    ``objective``, Adam).

    The heads' targets of a model with heads: by default computed once per patient, before any step,
    and gathered for the batch's patients at every step, as an in-memory run's batches carry them
    (``PreparedData.patients(index, with_targets=True)``); with ``targets_per_step`` left to the loss
    (``targets=None``), which computes them from the batch at every step (the old way).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    beta = loss_fn.target_beta
    per_patient = head_targets(x, mask) if model.has_heads and not targets_per_step else None
    rows = np.arange(len(x))

    def step() -> None:
        model.train()
        out = model.forward_output(x, mask, sample=True)
        targets = None if per_patient is None else per_patient.rows(rows)
        t = loss_fn.objective(out, x, mask, beta, targets=targets)
        optimizer.zero_grad(set_to_none=True)
        t.total.backward()
        optimizer.step()

    return step


def targets_step_fn(x: torch.Tensor, mask: torch.Tensor) -> Callable[[], None]:
    """The heads' targets of one training batch, as the loss computes them when not given (no grad needed)."""

    def step() -> None:
        head_targets(x, mask)

    return step


def infer_step_fn(model: VAEBase, x: torch.Tensor, mask: torch.Tensor) -> Callable[[], None]:
    """Posterior means of one batch, as ``encode_posterior`` computes them."""

    def step() -> None:
        model.eval()
        with torch.no_grad():
            model.encode_distribution(x, mask)

    return step


def interleaved_throughput(steps: dict[str, Callable[[], None]], batch: int, n_steps: int, repeats: int, warmup: int) -> dict[str, dict]:
    """Median sequences/s per name over ``repeats`` repetitions of ``n_steps`` steps each.

    The models take turns step by step (A B A B ..., the order flipping every repetition), so a
    burst of background load lands on both alike instead of on whichever model it happens to hit.
    """
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        elapsed = dict.fromkeys(names, 0.0)
        for _ in range(n_steps):
            for name in names if rep % 2 == 0 else names[::-1]:
                started = time.perf_counter()
                steps[name]()
                elapsed[name] += time.perf_counter() - started
        for name in names:
            samples[name].append(n_steps * batch / elapsed[name])
    return {
        name: {"median": statistics.median(s), "min": min(s), "max": max(s), "samples": [round(v, 2) for v in s]}
        for name, s in samples.items()
    }


def bench_channels(channels: int, args: argparse.Namespace) -> dict:
    """Speed, FLOPs and parameters of both models at one base_channels, and what computing the
    heads' targets at every training step costs vaelab's model."""
    x, mask = fake_batch(args.batch_size, args.seq_len)
    xi, mask_i = fake_batch(args.infer_batch_size, args.seq_len, seed=1)
    losses = {name: loss_for(name) for name in MODELS}
    models = {name: build(name, channels, args.seq_len) for name in MODELS}
    rows: dict[str, dict] = {}
    for name, model in models.items():
        fwd, enc = forward_flops(model, x[:2], mask[:2])
        rows[name] = {"params": n_params(model), "forward_flops": fwd, "encode_flops": enc}
    train_steps = {n: train_step_fn(m, x, mask, losses[n]) for n, m in models.items()}
    # vaelab's model again (same seed: the same weights), trained with its targets computed per step.
    train_steps[PER_STEP] = train_step_fn(build("vaelab", channels, args.seq_len), x, mask, loss_for("vaelab"), targets_per_step=True)
    train_steps[HEAD_TARGETS] = targets_step_fn(x, mask)
    train_tp = interleaved_throughput(train_steps, args.batch_size, args.steps, args.repeats, args.warmup)
    infer_tp = interleaved_throughput(
        {n: infer_step_fn(m, xi, mask_i) for n, m in models.items()}, args.infer_batch_size, args.steps, args.repeats, args.warmup
    )
    for name, row in rows.items():
        row["train_seq_per_s"] = train_tp[name]["median"]
        row["infer_seq_per_s"] = infer_tp[name]["median"]
        row["train_samples"] = train_tp[name]["samples"]
        row["infer_samples"] = infer_tp[name]["samples"]
        row["train_peak_fraction"] = row["train_seq_per_s"] * 3 * row["forward_flops"] / (args.peak_gflops * 1e9)
    plan, ours = rows["plan"], rows["vaelab"]
    ratio = {
        "train": ours["train_seq_per_s"] / plan["train_seq_per_s"],
        "infer": ours["infer_seq_per_s"] / plan["infer_seq_per_s"],
        "forward_flops": ours["forward_flops"] / plan["forward_flops"],
        "params": ours["params"] / plan["params"],
    }
    per_patient, per_step = ours["train_seq_per_s"], train_tp[PER_STEP]["median"]
    targets = {
        # vaelab's training throughput with the heads' targets computed once per patient (the "vaelab" row)...
        "per_patient_train_seq_per_s": per_patient,
        # ... and with them computed by the loss at every training step (targets=None)
        "per_step_train_seq_per_s": per_step,
        "per_step_train_samples": train_tp[PER_STEP]["samples"],
        "speedup": per_patient / per_step,  # per patient / per step
        "saved_ms_per_step": 1000 * args.batch_size * (1 / per_step - 1 / per_patient),
        # signal.head_targets of one training batch, timed alone in the same turns
        "head_targets_ms_per_batch": 1000 * args.batch_size / train_tp[HEAD_TARGETS]["median"],
    }
    return {"channels": channels, "models": rows, "ratio": ratio, "targets": targets}


def quality_check(channels: int, args: argparse.Namespace) -> dict:
    """Both models trained alike on the same synthetic patients, over ``--quality-seeds`` seeds (split,
    initialisation, shuffling): the mean and spread of each model's validation figures, so a
    difference can be told from seed noise."""
    data = generate_synthetic(n_patients=args.patients, seq_len=args.seq_len, seed=0)
    per_seed: dict[str, list[dict]] = {name: [] for name in MODELS}
    for seed in range(args.quality_seeds):
        prepared = prepare_data(data, seed=seed)
        tr, va = prepared.train_idx, prepared.val_idx
        x_va, m_va = prepared.x[va], prepared.masks[va]
        for name in MODELS:
            model = build(name, channels, args.seq_len, seed=seed)
            loss_fn = loss_for(name)
            # As an in-memory run trains: batches carry the heads' targets, computed once per patient.
            train_source = prepared.patients(tr, with_targets=model.has_heads)
            val_source = prepared.patients(va, with_targets=model.has_heads)
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs, threads=args.threads)
            result = train(model, loss_fn, train_source, None, val_source, None, config, seed=seed, progress="none")
            val = evaluate(model, loss_fn, val_source)
            recon, _ = reconstruct(model, x_va, m_va)
            merged = masked_mse(torch.from_numpy(recon), torch.from_numpy(x_va), torch.from_numpy(m_va)).item()
            per_seed[name].append(
                {
                    "val_recon_mse": merged,  # masked MSE of the merged output alone, normalized units
                    "val_recon_term": val["recon"],  # the objective's reconstruction term (merged + branches)
                    "val_kl": val["kl"],  # true KL per patient, nats
                    "active_units": val["active_units"],
                    "best_epoch": result.best_epoch,
                    "train_seconds": result.seconds,
                }
            )
    results = {}
    for name, runs in per_seed.items():
        results[name] = {key: statistics.mean(r[key] for r in runs) for key in runs[0]}
        results[name]["val_recon_mse_sd"] = statistics.stdev(r["val_recon_mse"] for r in runs) if len(runs) > 1 else 0.0
        results[name]["seeds"] = runs
    return {
        "channels": channels,
        "patients": args.patients,
        "seq_len": args.seq_len,
        "epochs": args.epochs,
        "seeds": args.quality_seeds,
        "loss": dict(QUALITY_LOSS),
        "models": results,
        "ratio": {
            "val_recon_mse": results["vaelab"]["val_recon_mse"] / results["plan"]["val_recon_mse"],
            "train_seconds": results["vaelab"]["train_seconds"] / results["plan"]["train_seconds"],
        },
    }


def format_report(report: dict) -> str:
    """The fixed-width text tables (the same numbers as the JSON)."""
    h, s = report["header"], report["settings"]
    lines = [
        f"# benchmarks/speed.py  {h['date']}  torch {h['torch']}  python {h['python']}",
        f"# cpu: {h['cpu_model']} ({h['cpus']} logical)  threads: {h['threads']}  loadavg at start: {h['loadavg']}",
        f"# batch {s['batch_size']} (inference {s['infer_batch_size']})  seq_len {s['seq_len']}  latent {LATENT_DIM}  "
        f"dropout {DROPOUT}  median of {s['repeats']} x {s['steps']} steps after {s['warmup']} warm-up  peak {s['peak_gflops']:g} GFLOP/s",
    ]
    if h["loadavg"] and h["cpus"] and h["loadavg"][0] >= h["cpus"] - 0.5:
        lines.append(
            f"# WARNING: load average {h['loadavg'][0]} on {h['cpus']} CPUs at start: other jobs share the CPU, so absolute "
            "figures are low and noisy; the interleaved ratios are the comparable numbers"
            + (
                " (with threads > 1, thread synchronisation on a shared CPU slows small ops most: compare with --threads 1)"
                if h["threads"] > 1
                else ""
            )
        )
    lines += [
        "",
        f"{'channels':>8} {'model':<7} {'params':>10} {'fwd_MFLOP/seq':>13} {'enc_MFLOP/seq':>13} "
        f"{'train_seq/s':>11} {'infer_seq/s':>11} {'train_%peak':>11}",
    ]
    for row in report["speed"]:
        c = row["channels"]
        for name in MODELS:
            m = row["models"][name]
            lines.append(
                f"{c:>8} {name:<7} {m['params']:>10d} {m['forward_flops'] / 1e6:>13.1f} {m['encode_flops'] / 1e6:>13.1f} "
                f"{m['train_seq_per_s']:>11.1f} {m['infer_seq_per_s']:>11.1f} {100 * m['train_peak_fraction']:>10.1f}%"
            )
        r = row["ratio"]
        lines.append(
            f"{c:>8} {'ratio':<7} {r['params']:>10.2f} {r['forward_flops']:>13.2f} {'':>13} {r['train']:>11.2f} {r['infer']:>11.2f} {'':>11}"
        )
    targets_rows = [row for row in report["speed"] if row.get("targets")]
    if targets_rows:
        lines += [
            "",
            "# heads' targets, vaelab's model (training, interleaved with the rows above): computed once per patient and passed "
            "to objective (as runs do: the vaelab row) vs by the loss at every training step (targets=None, the old way)",
            f"{'channels':>8} {'per_patient_seq/s':>17} {'per_step_seq/s':>14} {'speed-up':>8} {'saved_ms/step':>13} {'targets_ms/batch':>16}",
        ]
        for row in targets_rows:
            t = row["targets"]
            lines.append(
                f"{row['channels']:>8} {t['per_patient_train_seq_per_s']:>17.1f} {t['per_step_train_seq_per_s']:>14.1f} "
                f"{t['speedup']:>8.2f} {t['saved_ms_per_step']:>13.1f} {t['head_targets_ms_per_batch']:>16.1f}"
            )
        lines.append(
            "# speed-up: per_patient / per_step; saved_ms/step: the difference per training batch; "
            "targets_ms/batch: signal.head_targets of one training batch alone"
        )
    q = report.get("quality")
    if q:
        lines += [
            "",
            f"# quality: base_channels {q['channels']}, {q['patients']} synthetic patients x {q['seq_len']} h (20 % validation), "
            f"mean over seeds 0-{q['seeds'] - 1} (split, initialisation, shuffling), "
            f"{q['epochs']} epochs, MultiScaleVAELoss(beta {q['loss']['beta']}, free bits {q['loss']['free_bits']}, "
            f"warmup {q['loss']['warmup_epochs']}, cycle {q['loss']['cycle_epochs']}); the plan's loss: "
            + ", ".join(f"{k} {v}" for k, v in LOSS_KWARGS["plan"].items())
            + "; vaelab's defaults on top: "
            + ", ".join(f"{k} {v}" for k, v in {**MODEL_KWARGS["vaelab"], **LOSS_KWARGS["vaelab"]}.items()),
            f"{'model':<7} {'val_mse':>9} {'mse_sd':>7} {'val_recon':>9} {'true_KL':>8} {'AU':>5} {'best_ep':>7} {'train_s':>8}",
        ]
        for name in MODELS:
            m = q["models"][name]
            lines.append(
                f"{name:<7} {m['val_recon_mse']:>9.4f} {m['val_recon_mse_sd']:>7.4f} {m['val_recon_term']:>9.4f} {m['val_kl']:>8.2f} "
                f"{m['active_units']:>5.1f} {m['best_epoch']:>7.1f} {m['train_seconds']:>8.1f}"
            )
        lines.append(
            f"{'ratio':<7} {q['ratio']['val_recon_mse']:>9.3f} {'':>7} {'':>9} {'':>8} {'':>5} {'':>7} {q['ratio']['train_seconds']:>8.2f}"
        )
        lines.append(
            "# val_mse: masked MSE of the merged reconstruction (normalized units); val_recon: the objective's term incl. branches"
        )
    if h.get("loadavg_end") is not None:
        lines.append(f"# loadavg at end: {h['loadavg_end']}")
    return "\n".join(lines)


def profile_step(
    channels: int, args: argparse.Namespace, model_name: str = "vaelab", top: int = 15, steps: int = 1, targets_per_step: bool = False
) -> str:
    """The top ``top`` ops of ``steps`` training step(s) by self CPU time (after warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    x, mask = fake_batch(args.batch_size, args.seq_len)
    step = train_step_fn(build(model_name, channels, args.seq_len), x, mask, loss_for(model_name), targets_per_step)
    for _ in range(max(args.warmup, 1)):
        step()
    load = machine_header(args.threads)["loadavg"]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    title = (
        f"# profile: {steps} {model_name} training step(s), base_channels {channels}, batch {args.batch_size}, "
        f"heads' targets {'per step' if targets_per_step else 'per patient'}, "
        f"seq_len {args.seq_len}, threads {args.threads}, torch {torch.__version__}, loadavg {load}"
    )
    return title + "\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/speed.py", description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128], help="base_channels to compare")
    p.add_argument("--batch-size", type=int, default=64, help="training batch")
    p.add_argument("--infer-batch-size", type=int, default=256, help="inference batch (encode_posterior's default)")
    p.add_argument("--seq-len", type=int, default=745)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per model (median reported)")
    p.add_argument("--steps", type=int, default=3, help="steps per timed repetition")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    p.add_argument("--peak-gflops", type=float, default=157.0, help="the CPU's fp32 peak, GFLOP/s")
    p.add_argument("--epochs", type=int, default=15, help="quality check: epochs for each model")
    p.add_argument("--patients", type=int, default=300, help="quality check: synthetic patients")
    p.add_argument("--quality-channels", type=int, default=64, help="quality check: base_channels")
    p.add_argument("--quality-seeds", type=int, default=3, help="quality check: seeds (mean and sd reported)")
    p.add_argument("--no-quality", dest="quality", action="store_false", help="skip the quality check")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition, no quality check (smoke test)")
    p.add_argument("--json", metavar="OUT", help="also write the numbers to this JSON file")
    p.add_argument("--profile", type=int, metavar="CHANNELS", help="only print the top-15 ops of one training step")
    p.add_argument("--profile-model", choices=list(MODELS), default="vaelab", help="model for --profile")
    p.add_argument("--profile-steps", type=int, default=1, help="training steps profiled by --profile")
    p.add_argument(
        "--profile-targets-per-step",
        action="store_true",
        help="--profile: the loss computes the heads' targets at every step (default: once per patient)",
    )
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    for name in (
        "batch_size",
        "infer_batch_size",
        "seq_len",
        "threads",
        "repeats",
        "steps",
        "epochs",
        "patients",
        "profile_steps",
        "quality_seeds",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.batch_size < 2:
        p.error("--batch-size must be >= 2 (BatchNorm trains on batches of two or more)")
    if args.warmup < 0 or not args.peak_gflops > 0 or min(args.channels) < 4:
        p.error("--warmup must be >= 0, --peak-gflops > 0 and every --channels >= 4")
    return args


def run(args: argparse.Namespace, out=sys.stdout) -> dict:
    """Run the benchmark, print its tables progressively, return the report dict."""
    torch.set_num_threads(args.threads)
    report = {
        "header": machine_header(args.threads),
        "settings": {
            k: getattr(args, k)
            for k in ("channels", "batch_size", "infer_batch_size", "seq_len", "threads", "repeats", "steps", "warmup", "peak_gflops")
        },
        "options": {"model": MODEL_KWARGS, "loss": LOSS_KWARGS},  # each model's options beyond the shape and schedule
        "speed": [],
        "quality": None,
    }
    for channels in args.channels:
        report["speed"].append(bench_channels(channels, args))
        print(f"# base_channels {channels}: done", file=sys.stderr, flush=True)
    if args.quality:
        report["quality"] = quality_check(args.quality_channels, args)
    report["header"]["loadavg_end"] = machine_header(args.threads)["loadavg"]
    print(format_report(report), file=out, flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile is not None:
        torch.set_num_threads(args.threads)
        print(
            profile_step(args.profile, args, args.profile_model, steps=args.profile_steps, targets_per_step=args.profile_targets_per_step)
        )
        return 0
    report = run(args)
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return 0


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
