#!/usr/bin/env bash
# LSTM-VAE vs multi-scale VAE vs summary statistics on real ICU stays (PhysioNet 2019 set A):
# 48 h and 72 h windows (stays at least that long), seeds 0 and 1, 10 epochs each, the plan's loss
# (free bits 2, cyclical beta 0.5). The summary-statistics baseline is in every run's probe_baseline_*.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=multirun/physionet2019
python -m vaelab -m experiment=physionet2019 model=lstm,multiscale seed=0,1 data.seq_len=48,72 hydra.sweep.dir=$out
python -m vaelab.results $out --sort model --csv $out/table.csv
