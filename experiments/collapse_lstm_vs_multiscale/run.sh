#!/usr/bin/env bash
# Does the multi-scale VAE avoid the collapse the LSTM-VAE suffers?
# Two arms per model, same data (synthetic, 300 patients x 168 h) and the same budget (40 epochs):
#   plain VAE    : free bits 0, constant beta 0.5
#   the plan     : free bits 2, cyclical beta 0.5 (warm-up 10, cycle 20)
# Seeds 0 and 1. Then one table from the run directories.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=multirun/collapse_lstm_vs_multiscale
common=(experiment=collapse_lstm_vs_multiscale model=lstm,multiscale seed=0,1 data.n_patients=300 trainer.epochs=40 trainer.patience=40)
python -m vaelab -m "${common[@]}" loss.free_bits=0 schedule=constant hydra.sweep.dir=$out/plain_vae
python -m vaelab -m "${common[@]}" loss.free_bits=2 schedule=cyclical hydra.sweep.dir=$out/plan
python -m vaelab.results $out --sort model --csv $out/table.csv
