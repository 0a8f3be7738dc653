#!/usr/bin/env bash
# ImageNet: ResNet-50 teachers (LS alpha in ALPHAS) -> ResNet-18 / ResNet-50 students by KD at T in TEMPS.
#   DATA_ROOT=/data/imagenet NGPUS=8 bash recipes/imagenet/run_all.sh
# Every run: torchrun DDP (nccl), fp16 AMP, checkpoints every epoch; rerunning the script resumes interrupted
# runs and skips finished ones (final.json). Ends with RUNS/table.{md,csv,png}.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
source "$HERE/../lib/vision_runs.sh"
load_vision_config "$HERE" imagenet "$@"
[[ -d "$DATA_ROOT/train" && -d "$DATA_ROOT/val" ]] || { die "DATA_ROOT=$DATA_ROOT must contain train/<class>/ and val/<class>/ (ImageFolder layout)"; }
LAUNCH=(torchrun --standalone --nproc_per_node "$NGPUS" -m lskd.vision.cli)
# shellcheck disable=SC2206
COMMON=($COMMON_ARGS --data-root "$DATA_ROOT" --num-workers "$WORKERS" --log-every 100 --no-progress)

for seed in $SEEDS; do
  for a in $ALPHAS; do
    run_one "teacher_r50_a${a}_s${seed}" train-teacher $TEACHER_ARGS --label-smoothing "$a" --seed "$seed"
  done
  for a in $ALPHAS; do
    for s in $STUDENTS; do
      for T in $TEMPS; do
        run_one "student_${s}_a${a}_T${T}_s${seed}" train-student --arch "$s" $STUDENT_ARGS \
          --teacher "$RUNS/teacher_r50_a${a}_s${seed}/last.pt" --teacher-arch resnet50 --temperature "$T" --seed "$seed"
      done
    done
  done
done
student_tables "ImageNet"
