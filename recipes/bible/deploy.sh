#!/usr/bin/env bash
# The student you ship (docs/DEPLOY.md): the shipped Bible demo teacher (LS alpha 0.1, 2+2 layers, 128-dim) distilled
# at T = 1 into smaller students, word level from its top-K cache and sequence level from its beam-5 translations,
# then every model exported (float32 and int8) and measured by `lskd deploy-table`: parameters, size, CPU speed of
# `lskd translate` (greedy and beam 5), BLEU, chrF, retention against the teacher.
#   bash recipes/bible/deploy.sh                       # OUT (default runs/bible_deploy); steps skip what is done
#   STUDENTS="half" METHODS="word" SEEDS="1" bash recipes/bible/deploy.sh   # a subset
# Keys (environment): STUDENTS (names below), METHODS (word seq gold), SEEDS, STUDENT_UPDATES, JOBS, THREADS (of the
# speed measurement), ROUNDS, TABLE (where the table goes; default OUT/deploy).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${OUT:-runs/bible_deploy}"
LOG_DIR="$OUT/logs"
PY="${PYTHON:-python3}"
STUDENTS="${STUDENTS:-half deep_enc}"
METHODS="${METHODS:-word seq}"
SEEDS="${SEEDS:-1 2}"
STUDENT_UPDATES="${STUDENT_UPDATES:-2000}"
JOBS="${JOBS:-2}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
TABLE="${TABLE:-$OUT/deploy}"
TOPK="${TOPK:-8}"
mkdir -p "$LOG_DIR"

COMMON="--arch transformer --share-decoder-input-output-embed --dropout 0.1 --encoder-attention-heads 4 --decoder-attention-heads 4"
arch_of() {  # arch_of STUDENT: its fairseq-train options (the teacher: 2+2 layers, 128-dim, FFN 512)
  case $1 in
    half) echo "$COMMON --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 64 --decoder-embed-dim 64 --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256" ;;
    deep_enc) echo "$COMMON --encoder-layers 3 --decoder-layers 1 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512" ;;
    tiny) echo "$COMMON --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 --decoder-embed-dim 64 --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256" ;;
    *) die "STUDENTS: unknown student $1 (expected half, deep_enc or tiny)" ;;
  esac
}
for s in $STUDENTS; do arch_of "$s" > /dev/null; done
for m in $METHODS; do [[ $m =~ ^(word|seq|gold)$ ]] || die "METHODS: unknown method $m (expected word, seq or gold)"; done
# the demo students' optimisation (recipes/bible/config.demo.sh)
OPT="--optimizer adam --adam-betas (0.9,0.98) --lr 3e-3 --max-tokens 1024 --lr-scheduler polynomial_decay
  --total-num-update $STUDENT_UPDATES --end-learning-rate 0 --warmup-updates 60 --max-update $STUDENT_UPDATES --cpu --num-workers 0"

# 1. the demo's data and its LS teacher (as shipped)
step prepare - "$PY" -m data_prep.bible --src de --tgt en --vocab-size 4000 --max-train 12000 --out "$OUT/data"
TEACHER="$OUT/teacher/checkpoint_best.pt"
step teacher "$OUT/teacher/done" "${LSKD[@]}" teacher-release import --release "$REPO/recipes/bible/demo_teachers/a0.1_s1.pt" \
  --data "$OUT/data/bin" --save-dir "$OUT/teacher"
# 2. what the students learn from: the teacher's top-K cache (word level) and its beam-5 translations (sequence level)
[[ " $METHODS " == *" word "* ]] && step cache "$OUT/cache/done" "${LSKD[@]}" cache --data "$OUT/data/bin" \
  --teacher-path "$TEACHER" --out "$OUT/cache" --k "$TOPK" --cpu
[[ " $METHODS " == *" seq "* ]] && step distill "$OUT/seqkd/manifest.json" "${LSKD[@]}" distill-data --data "$OUT/data/bin" \
  --teacher-path "$TEACHER" --out "$OUT/seqkd" --beam 5 --max-len-a 1.2 --max-len-b 10 --engine ctranslate2 --cpu

train_student() {  # train_student STUDENT METHOD SEED
  local dir="$OUT/students/$1_$2_s$3" data="$OUT/data/bin" crit="--kd-lambda 0 --label-smoothing 0.1"
  case $2 in
    word) crit="--kd-lambda 0.9 --label-smoothing 0.1 --kd-temperature 1 --kd-topk-cache $OUT/cache" ;;
    seq) data="$OUT/seqkd" ;;
  esac
  # shellcheck disable=SC2086
  step "student_$1_$2_s$3" "$dir/done" fairseq-train "$data" --user-dir "$REPO/fairseq_plugins" --task translation \
    $(arch_of "$1") $OPT --seed "$3" --save-dir "$dir" --no-epoch-checkpoints --log-format simple --log-interval 100 \
    --criterion ls_kd $crit
}
# 3. the students
for st in $STUDENTS; do for m in $METHODS; do for r in $SEEDS; do pool_run train_student "$st" "$m" "$r"; done; done; done
pool_wait

# 4. the deployment table: every model exported (float32, int8) and measured in one run
models=(--model "teacher=teacher:$TEACHER")
for st in $STUDENTS; do for m in $METHODS; do for r in $SEEDS; do
  models+=(--model "${st}_${m}_s${r}=student:$OUT/students/${st}_${m}_s${r}/checkpoint_last.pt")
done; done; done
step deploy_table "$TABLE/deploy.csv" "${LSKD[@]}" deploy-table --data "$OUT/data/bin" --source "$OUT/data/raw/test.de" \
  --ref "$OUT/data/raw/test.en" --exports "$OUT/exports" --out "$TABLE" --threads "$THREADS" --rounds "$ROUNDS" \
  "${models[@]}"
cat "$TABLE/deploy.md"
