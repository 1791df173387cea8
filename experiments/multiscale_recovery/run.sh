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
# Every arm names all the settings it differs in, so it means the same whatever the defaults are:
# the plan's loss (branch_weight 1, beta 0.5, free bits 2 per dimension over the batch) unless it says otherwise.
planloss="loss.branch_weight=1 loss.beta=0.5 loss.free_bits=2.0 loss.free_bits_mode=batch loss.spectral_weight=0"
base="model=multiscale model.latent_dim=32 model.latent_groups=false model.pooling=moments model.spectral_head=false model.quantile_head=false model.posterior_bn=0 $planloss"
gnh="$base model.latent_groups=true loss.branch_weight=0 model.spectral_head=true loss.band_power_weight=0.3"  # groups_no_branch_head
declare -A arms=(
  [plan]="model=plan $planloss"
  [multiscale]="$base"
  [latent_groups]="$base model.latent_groups=true"
  [std_pooling]="$base model.pooling=moments_std"
  [spectral]="$base loss.spectral_weight=1.0"
  [spectral_0.1]="$base loss.spectral_weight=0.1"
  [spectral_head]="$base model.spectral_head=true loss.band_power_weight=1.0"
  [spectral_head_std]="$base model.spectral_head=true loss.band_power_weight=1.0 model.pooling=moments_std"
  [spectral_head_0.3]="$base model.spectral_head=true loss.band_power_weight=0.3"
  [no_branch_loss]="$base loss.branch_weight=0"
  [groups_no_branch_loss]="$base model.latent_groups=true loss.branch_weight=0"
  [groups_no_branch_head]="$base model.latent_groups=true loss.branch_weight=0 model.spectral_head=true loss.band_power_weight=0.3"
  [groups_no_branch_head_std]="$base model.latent_groups=true loss.branch_weight=0 model.spectral_head=true loss.band_power_weight=0.3 model.pooling=moments_std"
  [groups_no_branch_head_48]="$base model.latent_groups=true loss.branch_weight=0 model.spectral_head=true loss.band_power_weight=0.3 model.latent_dim=48"
  [groups_no_branch_head1]="$base model.latent_groups=true loss.branch_weight=0 model.spectral_head=true loss.band_power_weight=1.0"
  [groups_no_branch_head_quantile1]="$gnh model.quantile_head=true loss.quantile_weight=1.0"
  [groups_no_branch_head_quantile2]="$gnh model.quantile_head=true loss.quantile_weight=2.0"
  [groups_no_branch_quantile1]="$base model.latent_groups=true loss.branch_weight=0 model.quantile_head=true loss.quantile_weight=1.0"
  # the region the 745 h recovery sweep converged to (trials 16-23 of multirun/recovery_sweep_745h_gpu, rounded)
  [recovery_sweep_best]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 loss.beta=0.1 loss.free_bits=2.7 model.quantile_head=true loss.quantile_weight=1.5"
  [recovery_sweep_best_head]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 loss.beta=0.1 loss.free_bits=2.7 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3"
  [recovery_sweep_best_planloss]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5"  # beta 0.5, free bits 2
  [recovery_sweep_best_planloss_head]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3"
  # the default of 2026-11-27 plus the observation head (experiments/physionet2019: the signal real stays need)
  [observation_head]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3 model.observation_head=true loss.observation_weight=1.0"
  # the same with a 64-d latent (experiments/physionet2019: the linear sepsis probe's lever on real stays)
  [observation_head_64]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3 model.observation_head=true loss.observation_weight=1.0 model.latent_dim=64"
  # the same with a 128-d latent (experiments/physionet2019: the lever for gender and age on real stays)
  [observation_head_128]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3 model.observation_head=true loss.observation_weight=1.0 model.latent_dim=128"
  # and 256 (the largest size measured on real stays)
  [observation_head_256]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3 model.observation_head=true loss.observation_weight=1.0 model.latent_dim=256"
  # 256 with the observation head weighted 2: the default since 2026-12-05 (experiments/physionet2019: the best validation probe on real stays)
  [observation_head_256_obs2]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3 model.observation_head=true loss.observation_weight=2.0 model.latent_dim=256"
  # and with std pooling (experiments/physionet2019: 4 of 5 probe labels on real stays; round 7 here)
  [observation_head_256_obs2_std]="$base model.posterior_bn=0.6 loss.branch_weight=0.4 model.quantile_head=true loss.quantile_weight=1.5 model.spectral_head=true loss.band_power_weight=0.3 model.observation_head=true loss.observation_weight=2.0 model.latent_dim=256 model.pooling=moments_std"
  [recovery_sweep_best_nobn]="$base loss.branch_weight=0.4 loss.beta=0.1 loss.free_bits=2.7 model.quantile_head=true loss.quantile_weight=1.5"
  [default]="model=multiscale"   # whatever the defaults are now: observation_head_256_obs2 since 2026-12-05
)
order=(plan multiscale latent_groups std_pooling spectral spectral_0.1 spectral_head spectral_head_std spectral_head_0.3
       no_branch_loss groups_no_branch_loss groups_no_branch_head groups_no_branch_head1
       groups_no_branch_head_std groups_no_branch_head_48
       groups_no_branch_head_quantile1 groups_no_branch_head_quantile2 groups_no_branch_quantile1
       recovery_sweep_best recovery_sweep_best_head recovery_sweep_best_planloss
       recovery_sweep_best_planloss_head recovery_sweep_best_nobn observation_head observation_head_64 observation_head_128 observation_head_256 observation_head_256_obs2 observation_head_256_obs2_std default)
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
