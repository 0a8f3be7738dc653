#!/usr/bin/env bash
# Shared by the GPU image recipes (recipes/imagenet, recipes/cub200): launcher, `lskd` command and
# run_one NAME ARGS... (skips a run whose final.json exists; logs to $RUNS/logs/NAME.log).
# Expects the recipe's config to set NGPUS, RUNS, COMMON_ARGS, DATA_ROOT, WORKERS and LOG_EVERY.
LAUNCH=(torchrun --standalone --nproc_per_node "$NGPUS" -m lskd.vision.cli)
if command -v lskd >/dev/null 2>&1; then LSKD=(lskd); else LSKD=("${PYTHON:-python3}" -m lskd.cli); fi
mkdir -p "$RUNS/logs"

run_one() {  # NAME ARGS...
  local name="$1"; shift
  if [[ -f "$RUNS/$name/final.json" ]]; then echo "[skip] $name (done)"; return 0; fi
  echo "[run]  $name  (log: $RUNS/logs/$name.log)"
  # shellcheck disable=SC2086
  "${LAUNCH[@]}" "$@" $COMMON_ARGS --data-root "$DATA_ROOT" --num-workers "$WORKERS" --log-every "$LOG_EVERY" --no-progress \
    --out-dir "$RUNS/$name" 2>&1 | tee -a "$RUNS/logs/$name.log"
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
