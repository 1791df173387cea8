"""``python benchmarks/pruning.py``: the same collapse sweep with and without pruning, side by side.

Both sweeps search a space where part of it collapses (free bits 0 in a fifth of the trials, beta
up to 4, a constant or a cyclical schedule, and BN-VAE's KL floor off: the default model's
``posterior_bn`` rules collapse out) with the same sampler seed and the same trial budget (COMPLETE trials);
one prunes with vaelab's collapse rule (``sweep.pruner=collapse``), the other trains every trial to
its end. The sweeps run one after the other in this process's machine, so other load hits both.
Per sweep: wall time, trials/hour (all trials, and complete ones), how many were pruned and at which
epoch, and the best value of each objective among the complete trials that met the constraints.

``--trials``, ``--patients``, ``--seq-len``, ``--epochs`` set the size (defaults: the issue's 24
trials at the default data size and epochs take hours on a laptop CPU); extra Hydra overrides
follow ``--``. ``--json OUT`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

SPACE = [
    "loss.beta=tag(log, interval(0.01, 4.0))",
    "loss.free_bits=choice(0.0, 0.25, 0.5, 1.0, 2.0)",  # no floor in a fifth of the trials: where collapse can happen
    "schedule=choice(constant, cyclical)",
    "model.posterior_bn=0",  # the default's BN-VAE floor (0.6: >= 0.18 nats per dimension) rules collapse out
]


def run_sweep(sweep_dir: Path, pruner: str, args, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "vaelab",
        "hparams_search=collapse",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"data.n_patients={args.patients}",
        f"data.seq_len={args.seq_len}",
        f"trainer.epochs={args.epochs}",
        f"sweep.pruner={pruner}",
        "sweep.report=false",
        *SPACE,
        *extra,
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="collapse", storage=f"sqlite:///{sweep_dir}/optuna.db")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    names = study.user_attrs.get("objectives", [f"value_{i}" for i in range(len(study.directions))])
    # a constraint breaker carries the penalty (1e6 or -1e6): not a real value
    valid = [t for t in complete if all(abs(v) < 1e5 for v in t.values)]
    best = {}
    for i, (name, direction) in enumerate(zip(names, study.directions)):
        values = [t.values[i] for t in valid]
        if values:
            best[name] = max(values) if direction == optuna.study.StudyDirection.MAXIMIZE else min(values)
    return {
        "pruner": pruner,
        "exit_status": proc.returncode,
        "wall_seconds": wall,
        "trials": len(trials),
        "complete": len(complete),
        "pruned": len(pruned),
        "pruned_epochs": sorted(t.user_attrs.get("pruned_epoch") for t in pruned),
        "trials_per_hour": 3600 * len(trials) / wall,
        "complete_per_hour": 3600 * len(complete) / wall,
        "constrained_complete": len(valid),
        "best": best,
        "pareto_size": len(study.best_trials),
        "last_line": proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr.strip() else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--seq-len", type=int, default=168)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--json", type=Path)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sweeps")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="vaelab-pruning-") as tmp:
        rows = [run_sweep(Path(tmp) / pruner, pruner, args, args.overrides) for pruner in ("none", "collapse")]
    print(f"{args.trials} complete trials wanted; {args.patients} patients x {args.seq_len} h, {args.epochs} epochs")
    print(f"{'pruner':10} {'wall s':>8} {'trials':>6} {'complete':>8} {'pruned':>6} {'trials/h':>8} {'complete/h':>10}  best (constrained)")
    for r in rows:
        best = ", ".join(f"{k} {v:.4g}" for k, v in r["best"].items())
        print(
            f"{r['pruner']:10} {r['wall_seconds']:8.0f} {r['trials']:6d} {r['complete']:8d} {r['pruned']:6d} "
            f"{r['trials_per_hour']:8.1f} {r['complete_per_hour']:10.1f}  {best}"
        )
        if r["pruned_epochs"]:
            print(f"{'':10} pruned at epochs {r['pruned_epochs']}")
        if r["exit_status"]:
            print(f"{'':10} exit {r['exit_status']}: {r['last_line']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["exit_status"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
