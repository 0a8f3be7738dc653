#!/usr/bin/env bash
# Penultimate-layer analysis of a finished Fashion-MNIST grid (run_all.sh first): features of the test split
# for each teacher and its seed-SEED students, then per teacher alpha one `lskd diffusion` table + panel plot.
#   bash recipes/fashion_mnist/diffusion.sh        # -> RUNS/diffusion/a<alpha>.{md,png,json}
# Classes of the projection: Pullover (2), Coat (4) -- similar -- and Ankle boot (9), dissimilar.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
source "$HERE/../lib/vision_runs.sh"
load_vision_config "$HERE" fashion_mnist "$@"
: "${SEED:=0}" "${CLASSES:=2 4 9}"
DATA_ARGS=(--dataset fashion_mnist)
[[ -n "${DATA_ROOT:-}" ]] && DATA_ARGS+=(--data-root "$DATA_ROOT")
out="$RUNS/diffusion"; mkdir -p "$out"

features() {  # RUN -> out/RUN.pt (skipped when present)
  [[ -f "$RUNS/$1/best.pt" ]] || die "$RUNS/$1/best.pt: no such checkpoint (run run_all.sh first)"
  [[ -f "$out/$1.pt" ]] || "${LSKD[@]}" vision features --checkpoint "$RUNS/$1/best.pt" --split val "${DATA_ARGS[@]}" --out "$out/$1.pt"
}

for a in $ALPHAS; do
  teacher="teacher_a${a}_s$(awk '{print $1}' <<< "$TEACHER_SEEDS")"
  features "$teacher"
  specs=()
  for T in $TEMPS; do features "student_a${a}_T${T}_s${SEED}"; specs+=("T$T=$out/student_a${a}_T${T}_s${SEED}.pt"); done
  # shellcheck disable=SC2086
  "${LSKD[@]}" diffusion --features "${specs[@]}" "teacher=$out/$teacher.pt" --similar-from teacher \
    --classes $CLASSES --out "$out/a$a"
done
