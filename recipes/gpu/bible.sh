#!/usr/bin/env bash
# Bible de-en grid on one GPU in one call (docs/GPU.md): the carried wheels and data, the bible recipe's
# gpu profile (recipes/bible/config.gpu.sh), a wall-clock budget, and one results folder.
#   bash recipes/gpu/bible.sh --results "$OUT"                 # on the GPU machine, after recipes/gpu/prepare.sh here
#   bash recipes/gpu/bible.sh --toy --results /tmp/r --work /tmp/w   # the same steps at toy size on a CPU (tests)
# Options: --config FILE (a bible recipe config), --results DIR (summary.md, results_bleu.{md,csv,png}, timing.tsv,
# logs.tar.gz, console.log), --work DIR (the grid: checkpoints, caches; default runs/gpu/bible), --carry DIR
# (default .gpu_carry), --budget SECONDS (default 510: the whole call), --teacher-seconds S (default 160) and
# --student-seconds S (default 180): the training time each teacher / student may take (fairseq's
# --stop-time-hours; students get less when the budget has less left).
# Phases: set-up, data, teachers, caches, students, report; each under a hard limit from the budget, so a
# slow machine still ends with the table of what finished. Reruns skip finished steps (the recipe's markers).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
TEACHER_SECONDS=160 STUDENT_SECONDS=180
PROFILE_OPTS="--teacher-seconds --student-seconds"
profile_args "$REPO/recipes/bible/config.gpu.sh" "$GPU_DIR/config.bible_toy.sh" bible "$@"
RECIPE=(bash "$REPO/recipes/bible/run_all.sh" --config "$CONFIG")
export OUT=$WORK  # the recipe's output folder (a device tool's $OUT is $RESULTS here, given above)

phase setup - gpu_setup fairseq
SRC=$(config_value SRC) TGT=$(config_value TGT)
BASE_OPT_ARGS=$(config_value OPT_ARGS)

copy_data() {  # the prepared data (recipes/gpu/prepare.sh) into the grid folder, once
  local from="$CARRY/bible/data"
  [[ -f $from/bin/dict.$SRC.txt && -f $from/raw/test.$TGT ]] \
    || die "$from: no prepared $SRC-$TGT data (bin/dict.$SRC.txt, raw/test.$TGT): run recipes/gpu/prepare.sh first (docs/GPU.md)"
  if [[ -d $WORK/data ]]; then
    cmp -s "$from/bin/dict.$SRC.txt" "$WORK/data/bin/dict.$SRC.txt" || die "$WORK/data holds other data than $from; use another --work"
  else
    cp -a "$from" "$WORK/data.tmp" && mv "$WORK/data.tmp" "$WORK/data"
  fi
  echo "$(wc -l < "$WORK/data/raw/test.$TGT") test sentences, $(wc -l < "$WORK/data/bin/dict.$TGT.txt") dictionary entries"
}
phase data - copy_data

train_phase() {  # train_phase NAME SECONDS_OF_TRAINING HARD_LIMIT: a recipe step whose runs stop after that much training
  phase "$1" "$3" env OPT_ARGS="$BASE_OPT_ARGS --stop-time-hours $(hours "$2")" \
    ${STUDENT_UPDATES:+STUDENT_UPDATES=$STUDENT_UPDATES} "${RECIPE[@]}" --only "$1"
}

# teachers: their training time, then decoding; what is left must hold the caches, the students and the report
trained=0 t=$(smaller "$TEACHER_SECONDS" $(( $(seconds_left) - 250 )))
positive "$t" || printf 'teachers\t0\tskipped: no time left in the budget\n' >> "$RESULTS/timing.tsv"
if positive "$t" && train_phase teachers "$t" $(( $(seconds_left) - 120 )) \
   && phase caches $(( $(seconds_left) - 120 )) "${RECIPE[@]}" --only caches; then
  # students: as many updates as their teachers reached (the paper's protocol), unless their training time runs
  # out first: STUDENT_SECONDS, or less so that the budget keeps about 100 s for their decoding and the report
  updates=$(smaller "$(config_value STUDENT_UPDATES)" "$("$PYTHON" "$GPU_DIR/gpu_profile.py" teacher-updates --work "$WORK")")
  (( updates > 0 )) || updates=$(config_value STUDENT_UPDATES)  # no teacher log (0 would mean no limit to fairseq)
  s=$(smaller "$STUDENT_SECONDS" $(( $(seconds_left) - 100 )))
  echo "[gpu] students: at most $updates updates each (as many as their teachers) or ${s}s of training"
  if positive "$s" && STUDENT_UPDATES=$updates train_phase students "$s" $(( $(seconds_left) - 30 )); then trained=1; fi
fi
(( trained )) || echo "[gpu] the grid is incomplete (see timing.tsv); the table shows what finished"
if compgen -G "$WORK/teachers/*/score.json" > /dev/null; then
  phase report $(( $(seconds_left) > 60 ? $(seconds_left) : 60 )) "${RECIPE[@]}" --only report || true
fi
# CTranslate2 against fairseq on the GPU, float16 (its default there) and float32: which engine to trust for numbers
# next to published ones (issue 24), in whatever time the budget has left; both in ct2_equality.md
if [[ -f $WORK/teachers/a0.1_s1/checkpoint_best.pt ]]; then
  for type in float16 float32; do
    (( TOY )) && [[ $type == float16 ]] && continue  # no float16 on a CPU
    where=(--gpu); (( TOY )) && where=()
    phase "ct2_equality_$type" $(( $(seconds_left) - 20 )) bash -c 'out=$1; shift; "$@" >> "$out"' _ \
      "$RESULTS/ct2_equality.md" "$PYTHON" "$REPO/benchmarks/ct2_equality.py" --data "$WORK/data/bin" \
      --teacher "$WORK/teachers/a0.1_s1/checkpoint_best.pt" --split test --out "$WORK/ct2_equality_$type" \
      --compute-type "$type" "${where[@]}" || true
  done
fi
pack_results nmt "Bible $SRC-$TGT, GPU profile ($(basename "$CONFIG")): test BLEU, teacher LS alpha x student KD temperature" \
  "$WORK/results_bleu"
finish_output
