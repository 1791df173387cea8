#!/usr/bin/env bash
# The user's question on the current stack and default model: which settings keep the latent from
# collapsing? The collapse sweep as shipped (hparams_search=collapse: beta 0.01-4 log, free bits 0-3,
# cycle 30/40/60/80, base channels 16/32/64), 48 trials at the default data size (600 x 168 h) and
# epochs (150, early stopping), with the collapse rule pruning (30-epoch warm-up), one torch thread
# per trial and WORKERS sweep processes sharing one study (they split the 48 trials).
# Then the report (report/), the results table, and the summary the README quotes (summarize.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-multirun/collapse_sweep}
workers=${WORKERS:-2}
for _ in $(seq "$workers"); do
  python -m vaelab hparams_search=collapse hydra.sweeper.n_trials=48 sweep.pruner=collapse \
      trainer.threads=1 hydra.sweep.dir="$out" &
  sleep 5  # the first process creates the study
done
wait
python -m vaelab.report "$out"
python -m vaelab.results "$out" > "$out/results.txt"
python experiments/collapse_sweep/summarize.py "$out" | tee "$out/summary.txt"
