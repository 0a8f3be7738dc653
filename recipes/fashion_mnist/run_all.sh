#!/usr/bin/env bash
# Fashion-MNIST grid at CPU scale: LS teachers (alpha in ALPHAS) x KD students (T in TEMPS) x seeds.
#   bash recipes/fashion_mnist/run_all.sh [--config FILE]   # from the repository root; settings in config.sh
#   RUNS=runs/fm2 STUDENT_SEEDS="0 1 2" bash recipes/fashion_mnist/run_all.sh
# Skip-when-done: a run whose final.json exists is skipped; an interrupted run resumes from its last.pt.
# Ends with RUNS/table.{md,csv,png} (student top-1 vs T per teacher alpha).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
source "$HERE/../lib/vision_runs.sh"
load_vision_config "$HERE" fashion_mnist "$@"

# --- data: the Debian package's idx files (or DATA_ROOT with them / FashionMNIST/raw)
if [[ -z "$DATA_ROOT" && ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  die "Fashion-MNIST not found: install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or set DATA_ROOT to a folder with the four *-ubyte[.gz] files"
fi
COMMON=(--dataset fashion_mnist --threads "$THREADS" --log-every 100)  # step lines in the logs: the progress lines read them
[[ -n "$DATA_ROOT" ]] && COMMON+=(--data-root "$DATA_ROOT")
LAUNCH=(nice -n 10 "${LSKD[@]}" vision)

# --- teachers
for seed in $TEACHER_SEEDS; do
  for a in $ALPHAS; do
    # shellcheck disable=SC2086
    pool_run run_one "teacher_a${a}_s${seed}" train-teacher $TEACHER_ARGS --label-smoothing "$a" --seed "$seed"
  done
done
pool_wait

# --- students (cell_seeds: T1_STUDENT_SEEDS at T = 1, STUDENT_SEEDS elsewhere): student seed s uses teacher
# seed number (s mod #TEACHER_SEEDS), its final checkpoint
read -r -a TSEEDS <<< "$TEACHER_SEEDS"
for a in $ALPHAS; do
  for T in $TEMPS; do
    for seed in $(cell_seeds "$T"); do
      tseed="${TSEEDS[$(( seed % ${#TSEEDS[@]} ))]}"
      # shellcheck disable=SC2086
      pool_run run_one "student_a${a}_T${T}_s${seed}" train-student $STUDENT_ARGS \
        --teacher "$RUNS/teacher_a${a}_s${tseed}/last.pt" --temperature "$T" --seed "$seed"
    done
  done
done
pool_wait

"${LSKD[@]}" report --runs "$RUNS" --metric top1 --out "$RUNS/table" --title "Fashion-MNIST: $TITLE, test top-1"
"${LSKD[@]}" report --runs "$RUNS" --metric best_top1 --out "$RUNS/table_best" --title "Fashion-MNIST: $TITLE (best epoch, selected on the test set)" > /dev/null
echo "[fashion_mnist] done: $RUNS/table.md $RUNS/table.csv $RUNS/table.png"
