#!/usr/bin/env bash
# The paper's NMT grid as shell functions shared by every recipe (bible/, iwslt14_de_en/, wmt_en_de/):
#   prepare -> teachers (LS alpha in TEACHER_ALPHAS) -> top-K cache per teacher -> students for T in
#   TEMPERATURES from the cache -> fairseq-generate on test -> sacrebleu -> `lskd report` grid.
# A recipe's config file sets the variables listed in CONFIG_KEYS; run_all.sh calls the steps in order.
# Every step skips work whose output exists (a `done` marker or score.json written last); fairseq-train
# resumes from checkpoint_last.pt, so a killed run picks up where it stopped. Logs: $OUT/logs/.
# JOBS > 1 runs that many teachers / caches / students at once, each with nproc/JOBS threads (on a small
# CPU machine several single-threaded fairseq processes get more done than one multi-threaded one).
# `--only diffusion` (not part of a default run) adds the penultimate-layer analysis of a finished grid.
set -euo pipefail

LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LIB_DIR/../.." && pwd)"
CONFIG_KEYS=(OUT SRC TGT PREPARE_CMD ARCH_ARGS OPT_ARGS TEACHER_UPDATES STUDENT_UPDATES TEACHER_ALPHAS
             TEMPERATURES SEEDS KD_ALPHA STUDENT_EPS TOPK PURE_KD BEAM GEN_ARGS CACHE_ARGS JOBS STUDENT_SEEDS
             DECODE_ENGINE)

die() { echo "error: $*" >&2; exit 2; }

load_config() {  # load_config FILE: source it after checking that it only sets known keys
  local file=$1 key
  [[ -f $file ]] || die "config $file: no such file"
  while IFS= read -r key; do
    [[ " ${CONFIG_KEYS[*]} " == *" $key "* ]] || die "config $file: unknown key $key (known: ${CONFIG_KEYS[*]})"
  done < <(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?\([A-Za-z_][A-Za-z0-9_]*\)=.*/\2/p; s/^: "\${\([A-Za-z_][A-Za-z0-9_]*\):=.*/\1/p' "$file")
  # shellcheck disable=SC1090
  source "$file"
  # The paper's grid and Tan et al.'s student settings, unless the config says otherwise.
  : "${TEACHER_ALPHAS:=0 0.1}" "${TEMPERATURES:=1 2 3 64}" "${SEEDS:=1}" "${KD_ALPHA:=0.9}" "${STUDENT_EPS:=0.1}"
  : "${TOPK:=8}" "${PURE_KD:=0}" "${BEAM:=5}" "${CACHE_ARGS:=}" "${JOBS:=1}" "${STUDENT_SEEDS:=}"
  : "${DECODE_ENGINE:=ctranslate2}"  # the evaluate step's decoder (docs/SEQ_KD.md: same BLEU, faster)
  for key in "${CONFIG_KEYS[@]}"; do [[ -n ${!key+x} ]] || die "config $file: $key is not set"; done
  case "$PURE_KD" in 0|1) ;; *) die "config $file: PURE_KD must be 0 or 1, got $PURE_KD";; esac
  [[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "config $file: JOBS must be a positive integer, got $JOBS"
  case "$DECODE_ENGINE" in fairseq|ctranslate2) ;; *) die "config $file: DECODE_ENGINE must be fairseq or ctranslate2, got $DECODE_ENGINE";; esac
  mkdir -p "$OUT/logs"
}

step() {  # step NAME MARKER CMD...: run CMD unless MARKER exists (marker "-": always run); log to $OUT/logs/NAME.log
  local name=$1 marker=$2; shift 2
  if [[ $marker != - && -e $marker ]]; then echo "skip: $name"; return 0; fi
  echo "run:  $name  (log: $OUT/logs/$name.log)"
  if ! "$@" > "$OUT/logs/$name.log" 2>&1; then
    echo "failed: $name; last lines of $OUT/logs/$name.log:" >&2
    tail -n 15 "$OUT/logs/$name.log" >&2
    exit 1
  fi
  [[ $marker == */done ]] && touch "$marker"
  return 0
}

PIDS=() FAILED=0
spawn() {  # spawn CMD...: run CMD in the background, at most $JOBS at a time (JOBS=1: in the foreground)
  if (( JOBS <= 1 )); then "$@"; return 0; fi
  (( ${#PIDS[@]} < JOBS )) || reap_one
  local threads=$(( $(nproc) / JOBS ))
  ( export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 )); "$@" ) &
  PIDS+=("$!")
}

reap_one() { local pid=${PIDS[0]}; PIDS=("${PIDS[@]:1}"); wait "$pid" || FAILED=1; }

join_all() {  # wait for every spawned command; stop the recipe if one failed
  while (( ${#PIDS[@]} )); do reap_one; done
  (( FAILED == 0 )) || die "a step failed (its log's last lines are above); rerun to resume"
}

train_nmt() {  # train_nmt SAVE_DIR MAX_UPDATE SEED CRITERION_ARGS...
  local save=$1 max_update=$2 seed=$3; shift 3
  # shellcheck disable=SC2086
  fairseq-train "$OUT/data/bin" --user-dir "$REPO/fairseq_plugins" --task translation $ARCH_ARGS $OPT_ARGS \
    --max-update "$max_update" --seed "$seed" --criterion ls_kd "$@" \
    --best-checkpoint-metric nll_loss --report-accuracy --save-dir "$save" --no-epoch-checkpoints \
    --log-format simple --log-interval 50
}

evaluate() {  # evaluate RUN_DIR ROLE TEACHER_ALPHA TEMPERATURE SEED -> RUN_DIR/score.json
  local run=$1 generate=(fairseq-generate)
  # DECODE_ENGINE=ctranslate2: the same search, batches, length limits and output format on CTranslate2
  if [[ $DECODE_ENGINE == ctranslate2 ]]; then generate=(lskd ct2-generate); fi
  # shellcheck disable=SC2086
  "${generate[@]}" "$OUT/data/bin" --user-dir "$REPO/fairseq_plugins" --path "$run/checkpoint_best.pt" \
    --gen-subset test --beam "$BEAM" --required-batch-size-multiple 1 --post-process sentencepiece $GEN_ARGS \
    > "$run/generate-test.txt.tmp"
  mv "$run/generate-test.txt.tmp" "$run/generate-test.txt"
  lskd score --generate "$run/generate-test.txt" --ref "$OUT/data/raw/test.$TGT" --out "$run/score.json" \
    --meta "role=$2" "teacher_alpha=$3" "temperature=$4" "seed=$5"
}

student_args() {  # the student's criterion options (Tan et al. mixing by default, PURE_KD=1: the paper's pure KD)
  if [[ $PURE_KD == 1 ]]; then echo "--kd-alpha 1 --label-smoothing 0"; else echo "--kd-alpha $KD_ALPHA --label-smoothing $STUDENT_EPS"; fi
}

do_prepare() {  # always run: data_prep skips its own finished steps, and redoes them when options change
  # shellcheck disable=SC2086
  step prepare - $PREPARE_CMD --out "$OUT/data"
}

teacher() {  # teacher ALPHA SEED: train, then decode and score the test set
  local a=$1 s=$2 dir="$OUT/teachers/a$1_s$2"
  step "teacher_a${a}_s${s}" "$dir/done" train_nmt "$dir" "$TEACHER_UPDATES" "$s" --kd-alpha 0 --label-smoothing "$a"
  step "teacher_a${a}_s${s}_score" "$dir/score.json" evaluate "$dir" teacher "$a" null "$s"
}

do_teachers() {
  local a s
  for s in $SEEDS; do for a in $TEACHER_ALPHAS; do spawn teacher "$a" "$s"; done; done
  join_all
}

do_caches() {
  local a s
  for s in $SEEDS; do for a in $TEACHER_ALPHAS; do
    # shellcheck disable=SC2086
    spawn step "cache_a${a}_s${s}" "$OUT/caches/a${a}_s${s}/done" lskd cache --data "$OUT/data/bin" \
      --teacher-path "$OUT/teachers/a${a}_s${s}/checkpoint_best.pt" --out "$OUT/caches/a${a}_s${s}" --k "$TOPK" $CACHE_ARGS
  done; done
  join_all
}

student() {  # student TEACHER_ALPHA T TEACHER_SEED STUDENT_SEED: train from that teacher's cache, decode, score
  local a=$1 t=$2 s=$3 r=$4 name="a$1_T$2_s$3" seed=$3
  if [[ $r != "$s" ]]; then name+="_r$r"; seed="s${s}r${r}"; fi  # another student seed of the same teacher
  local dir="$OUT/students/$name"
  # shellcheck disable=SC2046
  step "student_$name" "$dir/done" train_nmt "$dir" "$STUDENT_UPDATES" "$r" $(student_args) \
    --kd-temperature "$t" --kd-topk-cache "$OUT/caches/a${a}_s${s}"
  step "student_${name}_score" "$dir/score.json" evaluate "$dir" student "$a" "$t" "$seed"
}

do_students() {  # every teacher seed x student seed (STUDENT_SEEDS; empty = the teacher's own seed) x alpha x T
  local a s r t
  for s in $SEEDS; do for r in ${STUDENT_SEEDS:-$s}; do for a in $TEACHER_ALPHAS; do for t in $TEMPERATURES; do
    spawn student "$a" "$t" "$s" "$r"
  done; done; done; done
  join_all
}

do_report() {
  local metric
  for metric in bleu chrf; do
    lskd report --runs "$OUT" --metric "$metric" --out "$OUT/results_$metric" \
      --title "$(basename "$OUT"): $SRC-$TGT, test $metric (teacher LS alpha x student KD temperature)" > /dev/null
  done
  cat "$OUT/results_bleu.md"
}

do_diffusion() {  # not in the default sequence (--only diffusion): penultimate-layer analysis of a finished grid
  local a s t specs out="$OUT/diffusion"
  mkdir -p "$out"
  for s in $SEEDS; do for a in $TEACHER_ALPHAS; do
    specs=()
    for t in $TEMPERATURES teacher; do
      local run="$OUT/students/a${a}_T${t}_s${s}" name="T$t"
      [[ $t == teacher ]] && { run="$OUT/teachers/a${a}_s${s}"; name=teacher; }
      [[ -f $run/checkpoint_best.pt ]] || die "$run/checkpoint_best.pt: no such checkpoint (run the grid first)"
      step "features_$(basename "$run")" "$out/$(basename "$run").pt" \
        lskd nmt-features --data "$OUT/data/bin" --path "$run/checkpoint_best.pt" --split valid --top 30 --out "$out/$(basename "$run").pt"
      specs+=("$name=$out/$(basename "$run").pt")
    done
    # the three most frequent target words in the projection; the index over all 30
    step "diffusion_a${a}_s${s}" - lskd diffusion --features "${specs[@]}" --similar-from teacher --classes 0 1 2 \
      --out "$out/a${a}_s${s}"
    cat "$out/a${a}_s${s}.md"
  done; done
}

run_grid() {  # run_grid RECIPE_DIR [--profile NAME] [--config FILE] [--only STEP]
  local dir=$1; shift
  local config="$dir/config.demo.sh" only="" steps="prepare teachers caches students report" extra="diffusion"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --profile) [[ $# -ge 2 ]] || die "--profile needs a name"; config="$dir/config.$2.sh"
                 [[ -f $config ]] || die "--profile $2: no $config (profiles: $(cd "$dir" && ls config.*.sh | sed 's/config\.\(.*\)\.sh/\1/' | tr '\n' ' '))"
                 shift 2;;
      --config) [[ $# -ge 2 ]] || die "--config needs a file"; config=$2; shift 2;;
      --only) [[ $# -ge 2 ]] || die "--only needs a step"; only=$2; shift 2
              [[ " $steps $extra " == *" $only "* ]] || die "--only $only: unknown step (steps: $steps $extra)";;
      *) die "unknown argument $1 (expected --profile NAME, --config FILE or --only STEP)";;
    esac
  done
  load_config "$config"
  echo "config: $config -> $OUT"
  local s
  for s in $steps $extra; do
    [[ $only == "$s" || ( -z $only && " $steps " == *" $s "* ) ]] && "do_$s"
  done
  return 0
}
