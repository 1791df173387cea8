#!/usr/bin/env bash
# The same 12-trial collapse sweep, once with the basic launcher (one trial at a time, torch on all
# cores) and once with the joblib launcher (2 trials at a time, one torch thread each); wall times
# are printed, and each sweep's report (Pareto front, table) is written to its directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=multirun/sweep_launchers
common=(hparams_search=collapse data.n_patients=200 data.seq_len=168 model.latent_dim=16
        trainer.epochs=30 trainer.patience=30 hydra.sweeper.n_trials=12)
start=$(date +%s.%N)
python -m vaelab "${common[@]}" hydra.sweep.dir=$out/basic
basic=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
python -m vaelab "${common[@]}" hydra.sweep.dir=$out/joblib hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweeper.n_jobs=2
joblib=$(echo "$(date +%s.%N) - $start" | bc)
printf 'basic launcher: %.0f s for 12 trials\njoblib launcher (2 workers): %.0f s for 12 trials\nspeed-up: %.2fx\n' \
  "$basic" "$joblib" "$(echo "$basic / $joblib" | bc -l)" | tee $out/timing.txt
