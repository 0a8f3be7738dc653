#!/usr/bin/env bash
# Which student schedule learns most in the demo's budget? Students of equal compute (tokens per batch x
# updates = 614k tokens) distilled at T = 1 from one teacher (the demo's alpha 0.1 teacher after 288 updates,
# i.e. its end of epoch 2), each scored on the test book (greedy, detokenised sacreBLEU):
#   A 150 x 4096 tokens, inverse-sqrt (warm-up 80)   -- the teachers' own schedule
#   B 300 x 2048, linear decay to 0 (warm-up 40)     C  = B with lr 6e-3
#   D 600 x 1024, linear decay (warm-up 60)          F  = D with lr 2e-3
#   E 1200 x 512, linear decay (warm-up 100)
# Prints one line per student (BLEU, chrF, best valid nll in bits). Results: docs/RESULTS.md (demo section).
#   bash benchmarks/demo_student_schedules.sh [WORK_DIR]      # about an hour on 2 cores
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=${1:-runs/demo_student_schedules}
source "$REPO/recipes/bible/config.demo.sh"
export OUT=$WORK TEACHER_RELEASES="" TEACHER_UPDATES=288 TEACHER_ALPHAS=0.1
bash "$REPO/recipes/bible/run_all.sh" --profile demo --only prepare
bash "$REPO/recipes/bible/run_all.sh" --profile demo --only teachers
D=$WORK/data
[[ -f $WORK/cache/done ]] || { lskd cache --data "$D/bin" --teacher-path "$WORK/teachers/a0.1_s1/checkpoint_best.pt" \
  --out "$WORK/cache" --k 8 --cpu > "$WORK/cache.log" 2>&1 && touch "$WORK/cache/done"; }
BASE=(--optimizer adam --adam-betas "(0.9,0.98)" --lr-scheduler polynomial_decay --end-learning-rate 0)
student() {  # student NAME UPDATES OPTIONS...: train, decode the test book, print the scores
  local name=$1 updates=$2; shift 2
  [[ -f $WORK/$name.score.json ]] || {
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 fairseq-train "$D/bin" --user-dir "$REPO/fairseq_plugins" --task translation $ARCH_ARGS "$@" --cpu \
      --num-workers 0 --max-update "$updates" --seed 1 --criterion ls_kd --kd-lambda 0.9 --label-smoothing 0.1 \
      --kd-temperature 1 --kd-topk-cache "$WORK/cache" --best-checkpoint-metric nll_loss --save-dir "$WORK/$name" \
      --no-epoch-checkpoints --log-format simple --log-interval 50 > "$WORK/$name.train.log" 2>&1
    # shellcheck disable=SC2086
    lskd ct2-generate "$D/bin" --user-dir "$REPO/fairseq_plugins" --path "$WORK/$name/checkpoint_last.pt" --gen-subset test \
      --beam 1 --required-batch-size-multiple 1 --post-process sentencepiece $GEN_ARGS > "$WORK/$name.gen.txt" 2> "$WORK/$name.gen.log"
    lskd score --generate "$WORK/$name.gen.txt" --ref "$D/raw/test.en" --out "$WORK/$name.score.json" > /dev/null
  }
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[2], "bleu", round(d["bleu"], 2), "chrf", round(d["chrf"], 2))' \
    "$WORK/$name.score.json" "$name"
  grep "valid on" "$WORK/$name.train.log" | grep -o "nll_loss [0-9.]*" | sort -k2 -n | head -1
}
student A 150 --optimizer adam --adam-betas "(0.9,0.98)" --lr 3e-3 --lr-scheduler inverse_sqrt --warmup-updates 80 --max-tokens 4096
student B 300 "${BASE[@]}" --lr 3e-3 --total-num-update 300 --warmup-updates 40 --max-tokens 2048
student C 300 "${BASE[@]}" --lr 6e-3 --total-num-update 300 --warmup-updates 40 --max-tokens 2048
student D 600 "${BASE[@]}" --lr 3e-3 --total-num-update 600 --warmup-updates 60 --max-tokens 1024
student F 600 "${BASE[@]}" --lr 2e-3 --total-num-update 600 --warmup-updates 60 --max-tokens 1024
student E 1200 "${BASE[@]}" --lr 3e-3 --total-num-update 1200 --warmup-updates 100 --max-tokens 512
