#!/usr/bin/env bash
# The demo's teachers (LS alpha 0 and 0.1), trained once by this command and shipped as teacher releases
# in recipes/bible/demo_teachers/ (`lskd teacher-release export`: float16 weights, no optimizer state), so
# that `make demo` spends its minutes on the students. The demo profile's own settings make them (its
# PREPARE_CMD, ARCH_ARGS, OPT_ARGS and TEACHER_UPDATES, JOBS=2): rerunning this command retrains them and
# rewrites the releases (same seeds; bit-identical on the same machine and torch build).
#   bash recipes/bible/make_demo_teachers.sh        # OUT defaults to runs/bible_demo_teachers
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
export OUT="${OUT:-runs/bible_demo_teachers}" TEACHER_RELEASES=""
bash "$HERE/run_all.sh" --profile demo --only prepare
bash "$HERE/run_all.sh" --profile demo --only teachers
mkdir -p "$HERE/demo_teachers"
for dir in "$OUT"/teachers/a*_s*/; do
  name=$(basename "$dir")
  "${LSKD[@]}" teacher-release export --checkpoint "$dir/checkpoint_best.pt" --data "$OUT/data/bin" \
    --out "$HERE/demo_teachers/$name.pt"
  echo "wrote $HERE/demo_teachers/$name.pt ($(du -h "$HERE/demo_teachers/$name.pt" | cut -f1)); test BLEU: $(python3 -c \
    'import json,sys; print(json.load(open(sys.argv[1]))["bleu"])' "$dir/score.json" 2>/dev/null || echo '?')"
done
