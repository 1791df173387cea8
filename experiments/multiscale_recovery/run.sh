#!/usr/bin/env bash
# Which time scales does each multi-scale model carry in its latent? (issue 8)
# Every arm trains with the defaults (built-in synthetic data: 600 patients x 168 h, seed 0; the
# plan's loss: beta 0.5, free bits 2, cyclical 30/40; 150 epochs, patience 30) on seeds 0, 1, 2,
# JOBS runs at a time (default 2), one torch thread each. Then summarize.py prints the table.
# Usage: experiments/multiscale_recovery/run.sh [arm ...]   (default: every arm)
# Environment: SEEDS (default "0 1 2"), JOBS (2), OUT (multirun/multiscale_recovery), EXTRA (more overrides).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-multirun/multiscale_recovery}
declare -A arms=(
  [plan]="model=plan"
  [default]="model=multiscale"
  [latent_groups]="model=multiscale model.latent_groups=true"
  [std_pooling]="model=multiscale model.pooling=moments_std"
  [spectral]="model=multiscale loss.spectral_weight=1.0"
  [spectral_0.1]="model=multiscale loss.spectral_weight=0.1"
  [spectral_head]="model=multiscale model.spectral_head=true"
  [spectral_head_std]="model=multiscale model.spectral_head=true model.pooling=moments_std"
  [spectral_head_0.3]="model=multiscale model.spectral_head=true loss.band_power_weight=0.3"
)
order=(plan default latent_groups std_pooling spectral spectral_0.1 spectral_head spectral_head_std spectral_head_0.3)
selected=("${@:-${order[@]}}")
jobs=()
for arm in "${selected[@]}"; do
  [[ -n "${arms[$arm]+x}" ]] || { echo "run.sh: unknown arm '$arm' (arms: ${order[*]})" >&2; exit 2; }
  for seed in ${SEEDS:-0 1 2}; do
    jobs+=("${arms[$arm]} ${EXTRA:-} seed=$seed quiet=true trainer.threads=1 hydra.run.dir=$out/$arm/seed_$seed")
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-2}" -I{} sh -c 'echo "start: {}" >&2; python -m vaelab {}'
python experiments/multiscale_recovery/summarize.py "$out"
