#!/usr/bin/env bash
# Fashion-MNIST ResNet-50 -> ResNet-18 grid on one GPU in one call (docs/GPU.md): the carried idx files, the
# fashion_mnist recipe's gpu profile (recipes/fashion_mnist/config.gpu.sh), a wall-clock budget, one results folder.
#   bash recipes/gpu/fashion_mnist.sh --results "$OUT"                  # on the GPU machine, after prepare.sh here
#   bash recipes/gpu/fashion_mnist.sh --toy --results /tmp/r --work /tmp/w --carry DIR   # toy size on a CPU (tests)
# Options: --config FILE (a fashion_mnist recipe config), --results DIR (summary.md, table.{md,csv,png},
# timing.tsv, logs.tar.gz, console.log), --work DIR (the runs; default runs/gpu/fashion_mnist), --carry DIR
# (default .gpu_carry), --budget SECONDS (default 510: the whole call).
# Phases: set-up, data, teachers, students, report. The time guard: the students' epochs (at most the config's)
# are chosen from the teachers' measured wall time so that they end within the budget; every phase also runs
# under a hard limit, and the report tabulates whatever finished.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
profile_args "$REPO/recipes/fashion_mnist/config.gpu.sh" "$GPU_DIR/config.fashion_mnist_toy.sh" fashion_mnist "$@"
RECIPE=(bash "$REPO/recipes/fashion_mnist/run_all.sh" --config "$CONFIG")
export RUNS=$WORK DATA_ROOT=$CARRY/fashion_mnist

check_data() {
  local name
  for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    compgen -G "$DATA_ROOT/$name*" > /dev/null || die "$DATA_ROOT: no $name[.gz]: run recipes/gpu/prepare.sh first (docs/GPU.md)"
  done
}
arg_value() {  # arg_value "ARGS" FLAG: the last value given to FLAG
  awk -v flag="$2" '{ for (i = 1; i < NF; i++) if ($i == flag) v = $(i + 1) } END { print v }' <<< "$1"
}
count() { wc -w <<< "$1"; }

phase setup - gpu_setup none
phase data - check_data
TEACHER_ARGS=$(config_value TEACHER_ARGS) STUDENT_ARGS=$(config_value STUDENT_ARGS)
ALPHAS=$(config_value ALPHAS) TEMPS=$(config_value TEMPS) JOBS=$(config_value JOBS)
N_TEACHERS=$(( $(count "$ALPHAS") * $(count "$(config_value TEACHER_SEEDS)") ))
N_STUDENTS=$(( $(count "$ALPHAS") * $(count "$TEMPS") * $(count "$(config_value STUDENT_SEEDS)") ))
TITLE="Fashion-MNIST, GPU profile ($(basename "$CONFIG")): $(arg_value "$TEACHER_ARGS" --arch) teachers -> $(arg_value "$STUDENT_ARGS" --arch) students (pure KD), test top-1"

# teachers alone (no student seeds), so that their wall time sizes the students' phase
if phase teachers $(( $(seconds_left) - 120 )) env STUDENT_SEEDS=" " "${RECIPE[@]}"; then
  teacher_seconds=$(tail -n 1 "$RESULTS/timing.tsv" | cut -f 2)
  epochs=$("$PYTHON" "$GPU_DIR/gpu_profile.py" student-epochs --phase-seconds "$teacher_seconds" \
    --teacher-epochs "$(arg_value "$TEACHER_ARGS" --epochs)" --teachers "$N_TEACHERS" --students "$N_STUDENTS" \
    --jobs "$JOBS" --seconds-left "$(seconds_left)" --cap "$(arg_value "$STUDENT_ARGS" --epochs)")
  echo "[gpu] students: $epochs epochs each (at most $(arg_value "$STUDENT_ARGS" --epochs)), from the teachers' ${teacher_seconds}s"
  if (( epochs > 0 )); then
    phase "students ($epochs epochs each)" $(( $(seconds_left) - 30 )) env STUDENT_ARGS="$STUDENT_ARGS --epochs $epochs" "${RECIPE[@]}" || true
  else
    printf 'students\t0\tskipped: not one epoch fits in the budget left\n' >> "$RESULTS/timing.tsv"
  fi
fi
if compgen -G "$WORK/*/score.json" > /dev/null; then
  phase report 60 "${LSKD[@]}" report --runs "$WORK" --metric top1 --out "$WORK/table" --title "$TITLE" || true
fi
pack_results vision "$TITLE" "$WORK/table"
finish_output
