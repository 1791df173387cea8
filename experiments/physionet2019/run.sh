#!/usr/bin/env bash
# The probe table of experiments/physionet2019/README.md: every embedding on PhysioNet 2019 set A
# (first 48 h of all 17,650 stays), seeds 0 1 2, scored by the same label table and split.
#   default   python -m vaelab data=physionet2019        (vaelab's default model and loss)
#   plan      the plan's model (model=plan) with the plan's loss (per-branch weight 1)
#   lstm      the LSTM-VAE baseline (model=lstm) with the default loss
#             Both baselines train BASELINE_EPOCHS (default 20: one beta cycle of the plan's test schedule,
#             warm-up 10, cycle 20): on one CPU thread their epochs cost several times the default's (the
#             plan's decoder always upsamples to >= 512 hours, its defect 1; the LSTM steps hour by hour).
#   ts2vec    TS2Vec from PyPOTS (experiments/peers/ts2vec.py; pip install -e '.[peers]')
#   supervised the default encoder trained on sepsis (experiments/peers/supervised.py): the ceiling
#   supervised_gender, supervised_age   the same encoder trained on gender / age: those labels' ceilings
# JOBS runs at a time (default 2), one torch thread each; then vaelab.compare writes table.md.
# Usage: experiments/physionet2019/run.sh [embedding ...]   (default: the first five)
# Environment: SEEDS ("0 1 2"), JOBS (2), OUT (multirun/physionet2019_table), BASELINE_EPOCHS (20), VAELAB_PHYSIONET2019.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-multirun/physionet2019_table}
source=${VAELAB_PHYSIONET2019:-../shared/data/physionet2019_setA.tar.gz}
layer2=$(python -m vaelab.data.physionet2019 "$source" --quiet | tail -1)   # the cached 48 h import
vae="data=physionet2019 data.source=$source trainer.threads=1 quiet=true"
baseline="trainer.epochs=${BASELINE_EPOCHS:-20} schedule.warmup_epochs=10 schedule.cycle_epochs=20"
supervised_on() {   # the supervised peer trained on label $2, run dir $out/$1/seed_SEED, then the probe table
  echo "python experiments/peers/supervised.py --data $layer2 --label $2 --out $out/$1/seed_SEED --seed SEED && python -m vaelab.probe $out/$1/seed_SEED/supervised_latents.h5 --labels $layer2"
}
declare -A commands=(
  [default]="python -m vaelab $vae seed=SEED hydra.run.dir=$out/default/seed_SEED"
  [plan]="python -m vaelab $vae model=plan loss.branch_weight=1 $baseline seed=SEED hydra.run.dir=$out/plan/seed_SEED"
  [lstm]="python -m vaelab $vae model=lstm $baseline seed=SEED hydra.run.dir=$out/lstm/seed_SEED"
  [ts2vec]="python experiments/peers/ts2vec.py --data $layer2 --out $out/ts2vec/seed_SEED --seed SEED && python -m vaelab.probe $out/ts2vec/seed_SEED/ts2vec_latents.h5 --labels $layer2"
  [supervised]="$(supervised_on supervised sepsis)"
  [supervised_gender]="$(supervised_on supervised_gender gender)"
  [supervised_age]="$(supervised_on supervised_age age)"
)
selected=("${@:-default plan lstm ts2vec supervised}")
read -r -a selected <<< "${selected[*]}"
mkdir -p "$out/logs"
jobs=()
for name in "${selected[@]}"; do
  [[ -n "${commands[$name]+x}" ]] || { echo "run.sh: unknown embedding '$name' (${!commands[*]})" >&2; exit 2; }
  for seed in ${SEEDS:-0 1 2}; do
    jobs+=("{ ${commands[$name]//SEED/$seed}; } > $out/logs/${name}_$seed.log 2>&1")   # both steps of a peer into its log
  done
done
printf '%s\0' "${jobs[@]}" | xargs -0 -P "${JOBS:-2}" -I{} sh -c 'echo "start: {}" >&2; {}'
declare -A labels=([default]="vaelab default" [plan]="plan's model" [lstm]="LSTM-VAE" [ts2vec]="TS2Vec" [supervised]="supervised ceiling"
                   [supervised_gender]="supervised on gender" [supervised_age]="supervised on age")
declare -A tables=([default]="seed_*" [plan]="seed_*" [lstm]="seed_*" [ts2vec]="seed_*/probe_table.csv" [supervised]="seed_*/probe_table.csv"
                   [supervised_gender]="seed_*/probe_table.csv" [supervised_age]="seed_*/probe_table.csv")
compare=()
for name in "${selected[@]}"; do compare+=("${labels[$name]}=$out/$name/${tables[$name]}"); done
python -m vaelab.compare "${compare[@]}" --markdown "$out/table.md" --csv "$out/table.csv"
