#!/usr/bin/env bash
# The demo's teachers (LS alpha 0 and 0.1), trained once by this command and shipped as teacher releases
# in recipes/bible/demo_teachers/ (`lskd teacher-release export`: float16 weights, no optimizer state), so
# that `make demo` spends its minutes on the students. The demo profile's own settings make them (its
# PREPARE_CMD, ARCH_ARGS, OPT_ARGS and TEACHER_UPDATES, JOBS=2): rerunning this command retrains them and
# rewrites the releases (same seeds; bit-identical on the same machine and torch build).
#   bash recipes/bible/make_demo_teachers.sh [--config FILE]   # default: the demo profile
# OUT (default runs/bible_demo_teachers) holds the training run; RELEASE_DIR (default demo_teachers/ beside
# this script) receives a<alpha>_s<seed>.pt per teacher.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
export OUT="${OUT:-runs/bible_demo_teachers}" TEACHER_RELEASES=""
RELEASE_DIR="${RELEASE_DIR:-$HERE/demo_teachers}"
config=(--profile demo)
[[ $# -eq 0 ]] || config=("$@")
bash "$HERE/run_all.sh" "${config[@]}" --only prepare
bash "$HERE/run_all.sh" "${config[@]}" --only teachers
mkdir -p "$RELEASE_DIR"
for dir in "$OUT"/teachers/a*_s*; do
  name=$(basename "$dir")
  "${LSKD[@]}" teacher-release export --checkpoint "$dir/checkpoint_best.pt" --data "$OUT/data/bin" --out "$RELEASE_DIR/$name.pt"
  echo "wrote $RELEASE_DIR/$name.pt ($(du -h "$RELEASE_DIR/$name.pt" | cut -f1)); test BLEU $("${PYTHON:-python3}" -c \
    'import json, sys; print(json.load(open(sys.argv[1]))["bleu"])' "$dir/score.json")"
done
