#!/usr/bin/env bash
# Issue 26's "nothing changed" check, run once per commit from its own worktree:
#   git worktree add /tmp/r26/base BASE && bash docs/results/refactor26/check.sh /tmp/r26/base /tmp/r26/base-out
# It runs the demo grid (`make demo`'s config: shipped teachers, top-8 caches, eight students, BLEU/chrF tables),
# then seq-KD data from the demo's alpha-0.1 teacher with both engines, unsharded, and writes OUTDIR/sha256.txt:
# the sha256 of every table, CSV, cache array and distilled file (manifests left out: they hold timings and
# paths). Two commits changed nothing when their sha256.txt files are equal (`diff`).
set -euo pipefail
tree=$(realpath "$1"); out=$(realpath -m "$2")
venv=${VENV:-/work/main/.venv}
mkdir -p "$out"
cd "$tree"
export PATH="$venv/bin:$PATH" PYTHONPATH="$tree"
git -C "$tree" rev-parse HEAD > "$out/commit.txt"
OUT="$out/demo" bash recipes/bible/run_all.sh --profile demo > "$out/demo.log" 2>&1
teacher="$out/demo/teachers/a0.1_s1/checkpoint_best.pt"
python -m lskd.cli distill-data --data "$out/demo/data/bin" --teacher-path "$teacher" --out "$out/distill_fairseq" \
  --beam 1 --max-len-a 1.2 --max-len-b 10 --cpu > "$out/distill_fairseq.log" 2>&1
python -m lskd.cli distill-data --data "$out/demo/data/bin" --teacher-path "$teacher" --out "$out/distill_ct2" \
  --engine ctranslate2 --beam 5 --max-len-a 1.2 --max-len-b 10 --cpu > "$out/distill_ct2.log" 2>&1
cd "$out"
find demo/results_* demo/caches distill_fairseq distill_ct2 -type f ! -name manifest.json ! -name done ! -name '*.log' \
  ! -path '*/shards/*' | LC_ALL=C sort | xargs sha256sum > sha256.txt
echo "$(wc -l < sha256.txt) files hashed: $out/sha256.txt"
