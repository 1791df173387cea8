#!/usr/bin/env bash
# The same 12-trial collapse sweep, once with the basic launcher (one trial at a time, torch on all
# cores) and once with the joblib launcher (2 trials at a time, one torch thread each). Prints wall
# times, trials per hour and the per-trial fixed cost (everything but training, from each trial's
# metrics.json), and writes each sweep's report (Pareto front, table) to its directory.
# Run it on an otherwise idle machine: two-thread torch stalls when another process holds a core.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-multirun/sweep_launchers}
rm -rf "$out/basic" "$out/joblib"
# Trial size: the default data and model (600 patients x 168 h, latent 32) for 30 epochs; smaller
# trials measure the sweep's own overhead (start-up, Optuna storage, report) more than the launchers.
common=(hparams_search=collapse data.n_patients=${N_PATIENTS:-600} data.seq_len=168
        trainer.epochs=${EPOCHS:-30} trainer.patience=${EPOCHS:-30} hydra.sweeper.n_trials=12)
start=$(date +%s.%N)
python -m vaelab "${common[@]}" hydra.sweep.dir=$out/basic
basic=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
python -m vaelab "${common[@]}" hydra.sweep.dir=$out/joblib hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweeper.n_jobs=2
joblib=$(echo "$(date +%s.%N) - $start" | bc)
python - "$out" "$basic" "$joblib" <<'PY' | tee "$out/timing.txt"
import json, sys
from pathlib import Path
out, walls = Path(sys.argv[1]), {"basic": float(sys.argv[2]), "joblib": float(sys.argv[3])}
print(f"{'launcher':<8} {'trials':>6} {'wall s':>7} {'trials/h':>8} {'trial s':>8} {'train s':>8} {'fixed s':>8} {'fixed %':>7} {'startup s':>9}")
rate = {}
for name, wall in walls.items():
    runs = [json.loads(p.read_text()) for p in sorted((out / name).glob("trial_*/metrics.json"))]
    ok = [r for r in runs if r.get("status") == "ok"]
    mean = lambda key: sum(r[key] for r in ok) / len(ok)
    startups = [r["startup_seconds"] for r in ok if r.get("startup_seconds") is not None]
    rate[name] = len(runs) / wall * 3600
    print(f"{name:<8} {len(runs):>6} {wall:>7.0f} {rate[name]:>8.0f} {mean('seconds'):>8.1f} {mean('train_seconds'):>8.1f} "
          f"{mean('fixed_seconds'):>8.2f} {100 * mean('fixed_seconds') / mean('seconds'):>6.1f}% {sum(startups) / max(len(startups), 1):>9.1f}")
print(f"joblib / basic trials per hour: {rate['joblib'] / rate['basic']:.2f}x")
PY
