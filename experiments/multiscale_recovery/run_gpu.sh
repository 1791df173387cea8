#!/usr/bin/env bash
# The multiscale_recovery arms on one CUDA GPU: many runs at a time (JOBS, default 8), each with
# trainer.device=cuda, so the plan's 745 h length can use the same 600 patients and 150 epochs as
# the 168 h runs. Then, with SWEEP_TRIALS > 0, the hparams_search=recovery Optuna sweep at 745 h
# (joblib launcher, JOBS trials at a time) until SWEEP_SECONDS have passed or its trials are done.
# Usage: experiments/multiscale_recovery/run_gpu.sh            (after: pip install -e .)
# Environment: ARMS_168, ARMS_745 (arm lists, see run.sh), SEEDS ("0 1 2"), JOBS (8),
#              OUT_ROOT (multirun), SWEEP_TRIALS (0), SWEEP_SECONDS (600), PYTHON (python).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=${OUT_ROOT:-multirun}
export JOBS=${JOBS:-8} SEEDS=${SEEDS:-0 1 2}
py=${PYTHON:-python}
if [ -n "${ARMS_168:-}" ]; then
  OUT=$root/multiscale_recovery_gpu EXTRA="trainer.device=cuda" experiments/multiscale_recovery/run.sh $ARMS_168
fi
if [ -n "${ARMS_745:-}" ]; then
  OUT=$root/multiscale_recovery_745h_gpu EXTRA="trainer.device=cuda data.seq_len=745" experiments/multiscale_recovery/run.sh $ARMS_745
fi
if [ "${SWEEP_TRIALS:-0}" -gt 0 ]; then
  timeout "${SWEEP_SECONDS:-600}" $py -m vaelab hparams_search=recovery trainer.device=cuda data.seq_len=745 \
    hydra/launcher=joblib hydra.launcher.n_jobs=$JOBS hydra.sweeper.n_jobs=$JOBS \
    hydra.sweeper.n_trials=$SWEEP_TRIALS hydra.sweep.dir=$root/recovery_sweep_745h_gpu ${SWEEP_EXTRA:-}
  $py -m vaelab.report $root/recovery_sweep_745h_gpu || true   # the report, also for a sweep cut short
fi
