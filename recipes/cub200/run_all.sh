#!/usr/bin/env bash
# CUB-200-2011: ResNet-50 teachers (from the ImageNet teacher of the same alpha) -> ResNet-18 / ResNet-50 /
# MobileNetV2 students (from ImageNet torchvision weights) by pure KD at T in TEMPS.
#   DATA_ROOT=/data/cub IMAGENET_RUNS=runs/imagenet PRETRAINED_DIR=/data/weights bash recipes/cub200/run_all.sh
# Rerunning resumes interrupted runs and skips finished ones (final.json). Ends with one table per student.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
source "$HERE/../lib/vision_runs.sh"
load_vision_config "$HERE" cub200 "$@"
[[ -f "$DATA_ROOT/CUB_200_2011/images.txt" || -f "$DATA_ROOT/images.txt" ]] || {
  echo "error: DATA_ROOT=$DATA_ROOT: expected CUB_200_2011/images.txt (with train_test_split.txt, image_class_labels.txt, images/)"; }
LAUNCH=(torchrun --standalone --nproc_per_node "$NGPUS" -m lskd.vision.cli)
# shellcheck disable=SC2206
COMMON=($COMMON_ARGS --data-root "$DATA_ROOT" --num-workers "$WORKERS" --log-every 50 --no-progress)

for seed in $SEEDS; do
  for a in $ALPHAS; do
    init="$IMAGENET_RUNS/teacher_r50_a${a}_s0/last.pt"
    [[ -f "$init" || -f "$RUNS/teacher_r50_a${a}_s${seed}/final.json" ]] || { die "ImageNet teacher $init not found (run recipes/imagenet first or set IMAGENET_RUNS)"; }
    run_one "teacher_r50_a${a}_s${seed}" train-teacher $TEACHER_ARGS --pretrained "$init" --label-smoothing "$a" --seed "$seed"
  done
  for a in $ALPHAS; do
    for s in $STUDENTS; do
      w="$PRETRAINED_DIR/${PRETRAINED_FILE[$s]}"
      [[ -f "$w" ]] || { die "torchvision ImageNet weights for $s not found at $w (set PRETRAINED_DIR)"; }
      for T in $TEMPS; do
        run_one "student_${s}_a${a}_T${T}_s${seed}" train-student --arch "$s" $STUDENT_ARGS --pretrained "$w" \
          --teacher "$RUNS/teacher_r50_a${a}_s${seed}/last.pt" --teacher-arch resnet50 --temperature "$T" --seed "$seed"
      done
    done
  done
done
student_tables "CUB-200-2011"
