#!/usr/bin/env bash
# README "Your own teacher and corpus", measured (docs/RESULTS.md): the shipped Bible demo teacher (LS alpha 0.1,
# 2+2 layers, 128-dim) exported to fairseq's released layout (model.pt, dict.de.txt, dict.en.txt, spm.model), then
# used as a user would use a teacher they brought, on Bible verses it has not seen (the training verses after the
# demo's first 12,000), prepared with --teacher-dir, and distilled into a smaller student (1+1 layers, 64-dim):
# word level from its top-8 cache and sequence level from its greedy translations, beside the same small model on
# the gold pairs alone; every model decoded greedily on the new test set and scored in the data's convention.
#   bash recipes/own_teacher/bible_example.sh          # OUT (default runs/own_teacher) holds everything
# Steps skip what is done; results: OUT/results.md and OUT/results.json.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${OUT:-runs/own_teacher}"
LOG_DIR="$OUT/logs"
mkdir -p "$LOG_DIR"
PY="${PYTHON:-python3}"
SMALL="--arch transformer --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 --decoder-embed-dim 64
  --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 --encoder-attention-heads 4 --decoder-attention-heads 4
  --share-decoder-input-output-embed --dropout 0.1"
# the demo students' optimisation (recipes/bible/config.demo.sh)
OPT="--optimizer adam --adam-betas (0.9,0.98) --lr 3e-3 --max-tokens 1024 --lr-scheduler polynomial_decay
  --total-num-update 2000 --end-learning-rate 0 --warmup-updates 60 --max-update 2000 --cpu --num-workers 0 --seed 1"
GEN="--gen-subset test --beam 1 --batch-size 128 --max-len-a 1.2 --max-len-b 10 --cpu --required-batch-size-multiple 1"

# 1. the released layout of the demo teacher: its data's dictionaries and sentencepiece model, its weights
step demo_data - "$PY" -m data_prep.bible --src de --tgt en --vocab-size 4000 --max-train 12000 --out "$OUT/demo_data"
step import "$OUT/import/done" "${LSKD[@]}" teacher-release import --release "$REPO/recipes/bible/demo_teachers/a0.1_s1.pt" \
  --data "$OUT/demo_data/bin" --save-dir "$OUT/import"
if [[ ! -f $OUT/teacher/model.pt ]]; then
  mkdir -p "$OUT/teacher.tmp"
  cp "$OUT/demo_data/bin/dict.de.txt" "$OUT/demo_data/bin/dict.en.txt" "$OUT/demo_data/spm/spm.model" "$OUT/teacher.tmp/"
  cp "$OUT/import/checkpoint_best.pt" "$OUT/teacher.tmp/model.pt"
  rm -rf "$OUT/teacher" && mv "$OUT/teacher.tmp" "$OUT/teacher"
fi

# 2. a corpus the teacher has not seen: the training verses after the demo's 12,000, as two text files
step full_text - "$PY" -m data_prep.bible --src de --tgt en --vocab-size 4000 --no-binarize --out "$OUT/bible_full"
mkdir -p "$OUT/user"
for lang in de en; do tail -n +12001 "$OUT/bible_full/raw/train.$lang" > "$OUT/user/corpus.$lang"; done
step prepare - "$PY" -m data_prep.parallel --src "$OUT/user/corpus.de" --tgt "$OUT/user/corpus.en" --src-lang de \
  --tgt-lang en --valid-size 500 --test-size 1000 --teacher-dir "$OUT/teacher" --out "$OUT/data"

evaluate() {  # evaluate NAME CHECKPOINT
  fairseq-generate "$OUT/data/bin" --user-dir "$REPO/fairseq_plugins" --path "$2" $GEN --post-process sentencepiece \
    > "$OUT/$1.gen.tmp" && mv "$OUT/$1.gen.tmp" "$OUT/$1.gen"
  "${LSKD[@]}" score --generate "$OUT/$1.gen" --ref "$OUT/data/raw/test.en" --out "$OUT/$1.score.json" --meta "model=$1"
}
train_small() {  # train_small NAME DATA CRITERION_ARGS...
  local name=$1 data=$2; shift 2
  # shellcheck disable=SC2086
  fairseq-train "$data" --user-dir "$REPO/fairseq_plugins" --task translation $SMALL $OPT --save-dir "$OUT/$name" \
    --no-epoch-checkpoints --log-format simple --log-interval 100 --criterion ls_kd "$@"
}

# 3. the teacher on the new test set; its cache; the small students and the small model on gold pairs alone
step teacher_score "$OUT/teacher.score.json" evaluate teacher "$OUT/teacher/model.pt"
step cache "$OUT/cache/done" "${LSKD[@]}" cache --data "$OUT/data/bin" --teacher-path "$OUT/teacher" --out "$OUT/cache" --k 8 --cpu
step word_kd "$OUT/word_kd/done" train_small word_kd "$OUT/data/bin" --kd-lambda 0.9 --label-smoothing 0.1 \
  --kd-temperature 1 --kd-topk-cache "$OUT/cache"
step word_kd_score "$OUT/word_kd.score.json" evaluate word_kd "$OUT/word_kd/checkpoint_last.pt"
step distill "$OUT/seqkd/manifest.json" "${LSKD[@]}" distill-data --data "$OUT/data/bin" --teacher-path "$OUT/teacher" \
  --out "$OUT/seqkd" --beam 1 --max-len-a 1.2 --max-len-b 10 --engine ctranslate2 --cpu
step seq_kd "$OUT/seq_kd/done" train_small seq_kd "$OUT/seqkd" --kd-lambda 0 --label-smoothing 0.1
step seq_kd_score "$OUT/seq_kd.score.json" evaluate seq_kd "$OUT/seq_kd/checkpoint_last.pt"
step gold "$OUT/gold/done" train_small gold "$OUT/data/bin" --kd-lambda 0 --label-smoothing 0.1
step gold_score "$OUT/gold.score.json" evaluate gold "$OUT/gold/checkpoint_last.pt"

# 4. the table: parameters, BLEU, chrF
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
import torch
out = Path(sys.argv[1])
rows = [("teacher", "the demo teacher (2+2 layers, 128-dim), as brought", out / "teacher" / "model.pt"),
        ("word_kd", "small student (1+1, 64-dim), word-level KD from the top-8 cache", out / "word_kd" / "checkpoint_last.pt"),
        ("seq_kd", "small student, sequence-level KD (teacher's greedy translations)", out / "seq_kd" / "checkpoint_last.pt"),
        ("gold", "small model on the gold pairs alone (no KD)", out / "gold" / "checkpoint_last.pt")]
table, lines = [], ["| model | parameters | BLEU | chrF |", "|---|---|---|---|"]
for name, what, ckpt in rows:
    s = json.loads((out / f"{name}.score.json").read_text())
    params = sum(v.numel() for v in torch.load(ckpt, map_location="cpu", weights_only=False)["model"].values())
    table.append({"model": name, "what": what, "parameters": params, "bleu": s["bleu"], "chrf": s["chrf"],
                  "signature": s["signature"], "n_sentences": s["n_sentences"]})
    lines.append(f"| {what} | {params:,} | {s['bleu']:.2f} | {s['chrf']:.2f} |")
(out / "results.json").write_text(json.dumps(table, indent=1) + "\n")
(out / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
