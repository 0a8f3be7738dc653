#!/usr/bin/env bash
# Shared by the image recipes (recipes/fashion_mnist, recipes/imagenet, recipes/cub200), after lib/common.sh:
#   load_vision_config DIR NAME [--config FILE]: the recipe's config (default DIR/config.sh), its keys checked
#       against VISION_KEYS[NAME] like the NMT recipes' (an unknown key or an unset one is refused)
#   run_one NAME ARGS...: one `lskd vision` run through LAUNCH with COMMON, logged to $RUNS/logs/NAME.log,
#       skipped when $RUNS/NAME/final.json exists (the run writes it last)
#   student_tables TITLE: one `lskd report` table per student architecture in $STUDENTS
declare -A VISION_KEYS=(
  [fashion_mnist]="RUNS DATA_ROOT ALPHAS TEMPS TEACHER_SEEDS STUDENT_SEEDS T1_STUDENT_SEEDS THREADS JOBS TEACHER_ARGS STUDENT_ARGS TITLE"
  [imagenet]="DATA_ROOT RUNS NGPUS WORKERS ALPHAS TEMPS STUDENTS SEEDS TEACHER_ARGS STUDENT_ARGS COMMON_ARGS"
  [cub200]="DATA_ROOT RUNS IMAGENET_RUNS PRETRAINED_DIR NGPUS WORKERS ALPHAS TEMPS STUDENTS SEEDS TEACHER_ARGS STUDENT_ARGS COMMON_ARGS"
)

load_vision_config() {  # load_vision_config DIR NAME [--config FILE]
  local dir=$1 name=$2 config="$1/config.sh"; shift 2
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --config) [[ $# -ge 2 ]] || die "--config needs a file"; config=$2; shift 2;;
      *) die "unknown argument $1 (expected --config FILE)";;
    esac
  done
  # shellcheck disable=SC2086
  load_config_keys "$config" ${VISION_KEYS[$name]}
  # shellcheck disable=SC2086
  require_keys "$config" ${VISION_KEYS[$name]}
  LOG_DIR="$RUNS/logs"
  mkdir -p "$LOG_DIR"
}

run_one() {  # run_one NAME ARGS...
  local name=$1; shift
  step "$name" "$RUNS/$name/final.json" "${LAUNCH[@]}" "$@" "${COMMON[@]}" --out-dir "$RUNS/$name"
}

student_tables() {  # TITLE: one `lskd report` table per student architecture in $STUDENTS
  local s d
  for s in $STUDENTS; do
    # the teachers' and this student's score.json files, gathered into a folder of their own
    rm -rf "$RUNS/tables/$s"
    for d in "$RUNS"/teacher_r50_* "$RUNS"/student_${s}_*; do
      if [[ -f "$d/score.json" ]]; then mkdir -p "$RUNS/tables/$s/$(basename "$d")"; cp "$d/score.json" "$RUNS/tables/$s/$(basename "$d")/"; fi
    done
    "${LSKD[@]}" report --runs "$RUNS/tables/$s" --metric top1 --out "$RUNS/table_r50_to_${s}" --title "$1: ResNet-50 -> ${s}, top-1"
  done
}
