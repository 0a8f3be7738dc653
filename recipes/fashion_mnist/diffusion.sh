#!/usr/bin/env bash
# Penultimate-layer analysis of a finished Fashion-MNIST grid (run_all.sh first): features of the test split
# for each teacher and every student seed, then per teacher alpha one `lskd diffusion` table + panel plot.
#   bash recipes/fashion_mnist/diffusion.sh        # -> RUNS/diffusion/a<alpha>.{md,png,json}, compare_*.{md,json}
# Cells: T<T> = the students of that teacher at T (cell_seeds: T1_STUDENT_SEEDS at T = 1, else STUDENT_SEEDS;
# seed intervals over them), baseline T1.
# The same references for the similar classes of every table: the softmax of each model in REFERENCES (default:
# every alpha's first-seed teacher, one table each, and whether a verdict changes with the reference), or
# SIMILAR_PAIRS="2:4,0:6" to give them. Then each LS table against the first alpha's (lskd diffusion --compare).
# Classes of the projection: Pullover (2), Coat (4) -- similar -- and Ankle boot (9), dissimilar.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
source "$HERE/../lib/vision_runs.sh"
load_vision_config "$HERE" fashion_mnist "$@"
: "${CLASSES:=2 4 9}" "${BOOTSTRAP:=1000}" "${SIMILAR_PAIRS:=}"
DATA_ARGS=(--dataset fashion_mnist)
[[ -n "${DATA_ROOT:-}" ]] && DATA_ARGS+=(--data-root "$DATA_ROOT")
out="$RUNS/diffusion"; mkdir -p "$out"

features() {  # RUN -> out/RUN.pt (skipped when present)
  [[ -f "$RUNS/$1/best.pt" ]] || die "$RUNS/$1/best.pt: no such checkpoint (run run_all.sh first)"
  [[ -f "$out/$1.pt" ]] || "${LSKD[@]}" vision features --checkpoint "$RUNS/$1/best.pt" --split val "${DATA_ARGS[@]}" --out "$out/$1.pt"
}

tseed="$(awk '{print $1}' <<< "$TEACHER_SEEDS")"
read -r -a alphas <<< "$ALPHAS"
: "${REFERENCES:=$(for a in "${alphas[@]}"; do printf 'teacher_a%s_s%s ' "$a" "$tseed"; done)}"
if [[ -n "$SIMILAR_PAIRS" ]]; then REF_ARGS=(--similar-pairs "$SIMILAR_PAIRS")
else
  REF_ARGS=(--similar-from)
  for ref in $REFERENCES; do features "$ref"; REF_ARGS+=("$out/$ref.pt"); done
fi

for a in $ALPHAS; do
  teacher="teacher_a${a}_s${tseed}"
  features "$teacher"
  specs=()
  for T in $TEMPS; do
    files=()
    for seed in $(cell_seeds "$T"); do features "student_a${a}_T${T}_s${seed}"; files+=("$out/student_a${a}_T${T}_s${seed}.pt"); done
    specs+=("T$T=$(IFS=,; echo "${files[*]}")")
  done
  # shellcheck disable=SC2086
  "${LSKD[@]}" diffusion --features "${specs[@]}" "teacher=$out/$teacher.pt" "${REF_ARGS[@]}" \
    --classes $CLASSES --bootstrap "$BOOTSTRAP" --out "$out/a$a"
done
# the LS tables against the first alpha's, as differences with their intervals over seeds
for a in "${alphas[@]:1}"; do
  "${LSKD[@]}" diffusion --compare "a$a=$out/a$a.json" "a${alphas[0]}=$out/a${alphas[0]}.json" --out "$out/compare_a${a}_vs_a${alphas[0]}"
done
