#!/usr/bin/env bash
# Fashion-MNIST grid at CPU scale: LS teachers (alpha in ALPHAS) x KD students (T in TEMPS) x seeds.
#   bash recipes/fashion_mnist/run_all.sh            # from the repository root; settings in config.sh
#   RUNS=runs/fm2 STUDENT_SEEDS="0 1 2" bash recipes/fashion_mnist/run_all.sh
# Skip-when-done: a run whose final.json exists is skipped; an interrupted run resumes from its last.pt.
# Ends with RUNS/table.{md,csv,png} (student top-1 vs T per teacher alpha).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/config.sh"

if command -v lskd >/dev/null 2>&1; then LSKD=(lskd); else LSKD=("${PYTHON:-python3}" -m lskd.cli); fi

# --- data: the Debian package's idx files (or DATA_ROOT with them / FashionMNIST/raw)
if [[ -z "$DATA_ROOT" && ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "[fashion_mnist] installing dataset-fashion-mnist (Debian package)"
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
  else
    echo "error: Fashion-MNIST not found: run 'sudo apt-get install dataset-fashion-mnist' or set DATA_ROOT to a folder with the four *-ubyte[.gz] files" >&2
    exit 2
  fi
fi
DATA_ARGS=(--dataset fashion_mnist)
[[ -n "$DATA_ROOT" ]] && DATA_ARGS+=(--data-root "$DATA_ROOT")

mkdir -p "$RUNS/logs"
FAILED="$RUNS/logs/failed.txt"; : > "$FAILED"

run_one() {  # NAME ARGS...: one training run, logged to RUNS/logs/NAME.log, skipped when done
  local name="$1"; shift
  if [[ -f "$RUNS/$name/final.json" ]]; then echo "[skip] $name (done)"; return 0; fi
  echo "[run]  $name  (log: $RUNS/logs/$name.log)"
  if ! nice -n 10 "${LSKD[@]}" vision "$@" "${DATA_ARGS[@]}" --threads "$THREADS" --log-every 100 --no-progress \
        --out-dir "$RUNS/$name" >> "$RUNS/logs/$name.log" 2>&1; then
    echo "$name" >> "$FAILED"; echo "[fail] $name: see $RUNS/logs/$name.log" >&2
  fi
}

throttle() { while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done; }

# --- teachers
for seed in $TEACHER_SEEDS; do
  for a in $ALPHAS; do
    throttle
    run_one "teacher_a${a}_s${seed}" train-teacher $TEACHER_ARGS --label-smoothing "$a" --seed "$seed" &
  done
done
wait

# --- students: student seed s uses teacher seed number (s mod #TEACHER_SEEDS), its final checkpoint
read -r -a TSEEDS <<< "$TEACHER_SEEDS"
for seed in $STUDENT_SEEDS; do
  tseed="${TSEEDS[$(( seed % ${#TSEEDS[@]} ))]}"
  for a in $ALPHAS; do
    teacher="$RUNS/teacher_a${a}_s${tseed}/last.pt"
    if [[ ! -f "$RUNS/teacher_a${a}_s${tseed}/final.json" ]]; then echo "[fail] no finished teacher $teacher" >&2; echo "teacher_a${a}_s${tseed}" >> "$FAILED"; continue; fi
    for T in $TEMPS; do
      throttle
      run_one "student_a${a}_T${T}_s${seed}" train-student $STUDENT_ARGS --teacher "$teacher" --temperature "$T" --seed "$seed" &
    done
  done
done
wait

"${LSKD[@]}" report --runs "$RUNS" --metric top1 --out "$RUNS/table" --title "Fashion-MNIST: SmallCNN teachers -> MLP students (pure KD), test top-1"
"${LSKD[@]}" report --runs "$RUNS" --metric best_top1 --out "$RUNS/table_best" --title "Fashion-MNIST (best epoch, selected on the test set)" > /dev/null
if [[ -s "$FAILED" ]]; then echo "failed runs:" >&2; sort -u "$FAILED" >&2; exit 1; fi
echo "[fashion_mnist] done: $RUNS/table.md $RUNS/table.csv $RUNS/table.png"
