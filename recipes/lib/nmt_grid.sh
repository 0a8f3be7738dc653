#!/usr/bin/env bash
# The paper's NMT grid as shell functions shared by every recipe (bible/, iwslt14_de_en/, wmt_en_de/):
#   prepare -> teachers (LS alpha in TEACHER_ALPHAS) -> top-K cache per teacher -> students for T in
#   TEMPERATURES from the cache -> fairseq-generate on test -> sacrebleu -> `lskd report` grid.
# A recipe's config file sets the variables listed in CONFIG_KEYS; run_all.sh calls the steps in order.
# Every step skips work whose output exists (a `done` marker or score.json written last); fairseq-train
# resumes from checkpoint_last.pt, so a killed run picks up where it stopped. Logs: $OUT/logs/.
# JOBS > 1 runs that many teachers / caches / students at once, each with nproc/JOBS threads (on a small
# CPU machine several single-threaded fairseq processes get more done than one multi-threaded one).
# RANKS > 1 trains each model as that many processes (`lskd train-ranks`, fairseq's distributed training
# on gloo) sharing the threads its job gets; the global batch grows RANKS times (same as --update-freq RANKS).
# `--only diffusion` (not part of a default run) adds the penultimate-layer analysis of a finished grid.
set -euo pipefail

LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LIB_DIR/../.." && pwd)"
CONFIG_KEYS=(OUT SRC TGT PREPARE_CMD ARCH_ARGS OPT_ARGS TEACHER_UPDATES STUDENT_UPDATES TEACHER_ALPHAS
             TEMPERATURES SEEDS KD_LAMBDA STUDENT_EPS TOPK PURE_KD BEAM GEN_ARGS CACHE_ARGS JOBS STUDENT_SEEDS RANKS
             DECODE_ENGINE TEACHER_RELEASES STUDENT_OPT_ARGS BASELINE_SEEDS T1_STUDENT_SEEDS
             DATA_BIN TEST_REF POST_PROCESS TEACHER_PATHS STUDENT_ARCH_ARGS GPUS GPUS_PER_RUN)

source "$LIB_DIR/common.sh"

load_config() {  # load_config FILE: source it after checking that it only sets known keys
  local file=$1
  if [[ -f $file ]] && grep -q 'KD_ALPHA' "$file"; then
    die "config $file: KD_ALPHA is now called KD_LAMBDA (the weight of the KD term; alpha is the teacher's label smoothing)"
  fi
  load_config_keys "$file" "${CONFIG_KEYS[@]}"
  # The paper's grid and Tan et al.'s student settings, unless the config says otherwise.
  : "${TEACHER_ALPHAS:=0 0.1}" "${TEMPERATURES:=1 2 3 64}" "${SEEDS:=1}" "${KD_LAMBDA:=0.9}" "${STUDENT_EPS:=0.1}"
  : "${TOPK:=8}" "${PURE_KD:=0}" "${BEAM:=5}" "${CACHE_ARGS:=}" "${JOBS:=1}" "${STUDENT_SEEDS:=}" "${RANKS:=1}"
  : "${DECODE_ENGINE:=ctranslate2}"  # the evaluate step's decoder (docs/SEQ_KD.md: same BLEU, faster)
  : "${T1_STUDENT_SEEDS=$STUDENT_SEEDS}"  # the student seeds of the T = 1 cells (pattern 2 compares the teachers there)
  : "${BASELINE_SEEDS=}"  # seeds of the no-KD baseline (the students' model and budget on gold data alone); empty: none
  : "${STUDENT_OPT_ARGS=}"  # fairseq-train options for the students only, after OPT_ARGS (the later value wins)
  : "${TEACHER_RELEASES=}"  # a folder of a<alpha>_s<seed>.pt teacher releases to start from; empty: train the teachers
  # bring your own (docs/ARCHITECTURE.md, README "Your own teacher and corpus"): a binarised data dir instead of
  # the prepare step, teachers given as checkpoints or model folders, students of another architecture
  : "${DATA_BIN=}" "${TEACHER_PATHS=}" "${STUDENT_ARCH_ARGS=}" "${TEST_REF=}" "${POST_PROCESS=}"
  if [[ -n $DATA_BIN ]]; then : "${PREPARE_CMD=}"; fi
  # GPUs (recipes/lib/common.sh pool_run): empty = CPU; a list of device ids or auto; GPUS_PER_RUN devices per model
  : "${GPUS=}" "${GPUS_PER_RUN:=1}"
  require_keys "$file" "${CONFIG_KEYS[@]}"
  BIN=${DATA_BIN:-$OUT/data/bin}
  : "${TEST_REF:=$(dirname "$BIN")/raw/test.$TGT}"
  : "${POST_PROCESS:=$(data_post_process "$(dirname "$BIN")/manifest.json")}"
  : "${STUDENT_ARCH_ARGS:=$ARCH_ARGS}"
  case "$PURE_KD" in 0|1) ;; *) die "config $file: PURE_KD must be 0 or 1, got $PURE_KD";; esac
  [[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "config $file: JOBS must be a positive integer, got $JOBS"
  [[ $RANKS =~ ^[1-9][0-9]*$ ]] || die "config $file: RANKS must be a positive integer, got $RANKS"
  case "$DECODE_ENGINE" in fairseq|ctranslate2) ;; *) die "config $file: DECODE_ENGINE must be fairseq or ctranslate2, got $DECODE_ENGINE";; esac
  [[ $GPUS_PER_RUN =~ ^[1-9][0-9]*$ ]] || die "config $file: GPUS_PER_RUN must be a positive integer, got $GPUS_PER_RUN"
  check_own_inputs "$file"
  LOG_DIR="$OUT/logs"
  [[ ${DRY_RUN:-0} == 1 ]] || mkdir -p "$LOG_DIR"
}

print_estimate() {  # print_estimate "RECIPE PROFILE": the measured wall time of that profile (docs/results/profile_times.json)
  PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m lskd.step_times --estimate "$1" \
    --json "$REPO/docs/results/profile_times.json"
}

print_settings() {  # every config key and its value, as the run will use them
  local key
  echo "settings:"
  for key in "${CONFIG_KEYS[@]}"; do printf '  %s=%s\n' "$key" "${!key}"; done
}

data_post_process() {  # data_post_process MANIFEST: fairseq-generate's --post-process for that data (default sentencepiece)
  [[ -f $1 ]] || { echo sentencepiece; return; }
  "${PYTHON:-python3}" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("post_process", "sentencepiece"))' "$1"
}

teacher_path_of() {  # teacher_path_of ALPHA SEED: the TEACHER_PATHS entry a<ALPHA>_s<SEED>=PATH (empty if none)
  local entry
  for entry in $TEACHER_PATHS; do [[ ${entry%%=*} == "a$1_s$2" ]] && { echo "${entry#*=}"; return; }; done
  return 0
}

checkpoint_file() {  # checkpoint_file PATH: a checkpoint, or a model folder's model.pt / its one checkpoint*.pt
  local found
  if [[ -f $1 ]]; then echo "$1"; return; fi
  if [[ -f $1/model.pt ]]; then echo "$1/model.pt"; return; fi
  found=$(ls "$1"/checkpoint*.pt 2> /dev/null || true)
  [[ -n $found && $(wc -l <<< "$found") == 1 ]] || die "TEACHER_PATHS: $1: expected a checkpoint, or a folder with model.pt or one checkpoint*.pt"
  echo "$found"
}

check_own_inputs() {  # check_own_inputs CONFIG: DATA_BIN, TEST_REF, POST_PROCESS, TEACHER_PATHS, STUDENT_ARCH_ARGS, before any step
  local file=$1 a s path
  if [[ -n $DATA_BIN ]]; then
    [[ -f $DATA_BIN/dict.$SRC.txt && -f $DATA_BIN/dict.$TGT.txt ]] \
      || die "config $file: DATA_BIN $DATA_BIN: expected a fairseq data dir with dict.$SRC.txt and dict.$TGT.txt"
    [[ -f $TEST_REF ]] || die "config $file: TEST_REF $TEST_REF: no such file (the untouched test references; set TEST_REF)"
  fi
  case "$POST_PROCESS" in sentencepiece|subword_nmt|none|@@\ ) ;; *) die "config $file: POST_PROCESS must be sentencepiece, subword_nmt or none, got $POST_PROCESS";; esac
  if [[ -n $TEACHER_PATHS ]]; then
    [[ -z $TEACHER_RELEASES ]] || die "config $file: TEACHER_PATHS and TEACHER_RELEASES: give one source of teachers"
    for s in $SEEDS; do for a in $TEACHER_ALPHAS; do
      path=$(teacher_path_of "$a" "$s")
      [[ -n $path ]] || die "config $file: TEACHER_PATHS has no a${a}_s${s}=PATH (one entry per teacher alpha and seed)"
      [[ -e $path ]] || die "config $file: TEACHER_PATHS a${a}_s${s}=$path: no such file or folder"
      checkpoint_file "$path" > /dev/null
    done; done
  fi
  if [[ $STUDENT_ARCH_ARGS != "$ARCH_ARGS" ]]; then
    # shellcheck disable=SC2086
    "${PYTHON:-python3}" -m fairseq_plugins.arch_check $STUDENT_ARCH_ARGS \
      || die "config $file: STUDENT_ARCH_ARGS are not fairseq-train architecture options (above)"
  fi
}

checkpoint_updates() {  # checkpoint_updates CKPT: the number of updates a fairseq checkpoint has trained
  "${PYTHON:-python3}" -c 'import sys, torch; s = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
print(s["optimizer_history"][-1]["num_updates"])' "$1"
}

train_nmt() {  # train_nmt SAVE_DIR MAX_UPDATE SEED ARCH_ARGS CRITERION_ARGS...  (RANKS > 1: as RANKS processes)
  local save=$1 max_update=$2 seed=$3 arch=$4; shift 4
  # fairseq resuming a checkpoint that already reached --max-update trains one more update: a run killed
  # between its last checkpoint and the step's marker is finished, not resumed
  if [[ -f $save/checkpoint_last.pt ]] && (( $(checkpoint_updates "$save/checkpoint_last.pt") >= max_update )); then
    echo "$save/checkpoint_last.pt: already at $max_update updates"; return 0
  fi
  local train=(fairseq-train)
  if (( RANKS > 1 )); then
    local threads=$(( ${OMP_NUM_THREADS:-$(nproc)} / RANKS ))
    train=("${LSKD[@]}" train-ranks --nproc "$RANKS" --threads $(( threads > 0 ? threads : 1 )) --)
  fi
  # fairseq-train trains on every GPU it sees (its distributed training): the global batch grows with them
  local n=1
  [[ -n ${CUDA_VISIBLE_DEVICES:-} ]] && n=$(awk -F, '{print NF}' <<< "$CUDA_VISIBLE_DEVICES")
  (( RANKS > 1 )) && n=$RANKS
  echo "devices: ${CUDA_VISIBLE_DEVICES:-cpu}; $n process(es): global batch = the per-process batch of OPT_ARGS x $n x --update-freq"
  # shellcheck disable=SC2086
  "${train[@]}" "$BIN" --user-dir "$REPO/fairseq_plugins" --task translation $arch $OPT_ARGS \
    --max-update "$max_update" --seed "$seed" --criterion ls_kd "$@" \
    --best-checkpoint-metric nll_loss --report-accuracy --save-dir "$save" --no-epoch-checkpoints \
    --log-format simple --log-interval 50
}

run_checkpoint() {  # run_checkpoint RUN_DIR: the model a run directory stands for (a given teacher: its own file)
  if [[ -f $1/teacher_path ]]; then cat "$1/teacher_path"; else echo "$1/checkpoint_best.pt"; fi
}

evaluate() {  # evaluate RUN_DIR ROLE TEACHER_ALPHA TEMPERATURE SEED KD_LAMBDA TEACHER_SEED -> RUN_DIR/score.json
  local run=$1 generate=(fairseq-generate)
  # DECODE_ENGINE=ctranslate2: the same search, batches, length limits and output format on CTranslate2
  if [[ $DECODE_ENGINE == ctranslate2 ]]; then generate=("${LSKD[@]}" ct2-generate); fi
  # shellcheck disable=SC2086
  "${generate[@]}" "$BIN" --user-dir "$REPO/fairseq_plugins" --path "$(run_checkpoint "$run")" \
    --gen-subset test --beam "$BEAM" --required-batch-size-multiple 1 --post-process "$POST_PROCESS" $GEN_ARGS \
    > "$run/generate-test.txt.tmp"
  mv "$run/generate-test.txt.tmp" "$run/generate-test.txt"
  "${LSKD[@]}" score --generate "$run/generate-test.txt" --ref "$TEST_REF" --out "$run/score.json" \
    --meta "role=$2" "teacher_alpha=$3" "temperature=$4" "seed=$5" "kd_lambda=$6" "teacher_seed=$7" \
    "decoded_by=$(decoded_by "$run/generate-test.txt")"
}

decoded_by() {  # decoded_by GENERATE_OUTPUT: the engine, compute type and device that decoded it (score.json, table)
  if [[ $DECODE_ENGINE == ctranslate2 ]]; then  # ct2-generate's last line: "... with CTranslate2 V TYPE on DEVICE"
    sed -n 's/.* with \(CTranslate2 .*\)$/\1/p' "$1" | tail -n 1
  else
    local type=float32 device=cpu  # fairseq-generate runs on a GPU when one is visible and GEN_ARGS has no --cpu
    [[ " $GEN_ARGS " == *" --fp16 "* ]] && type=float16
    if [[ " $GEN_ARGS " != *" --cpu "* && -n ${CUDA_VISIBLE_DEVICES-x} ]] && nvidia-smi -L > /dev/null 2>&1; then
      device=cuda
    fi
    echo "fairseq-generate $type on $device"
  fi
}

student_lambda() {  # the students' KD weight: KD_LAMBDA (Tan et al. mixing), or 1 with PURE_KD=1 (the paper's pure KD)
  if [[ $PURE_KD == 1 ]]; then echo 1; else echo "$KD_LAMBDA"; fi
}

student_args() {  # the student's criterion options
  if [[ $PURE_KD == 1 ]]; then echo "--kd-lambda 1 --label-smoothing 0"; else echo "--kd-lambda $KD_LAMBDA --label-smoothing $STUDENT_EPS"; fi
}

do_prepare() {  # always run: data_prep skips its own finished steps, and redoes them when options change
  # shellcheck disable=SC2086
  if [[ -n $DATA_BIN ]]; then echo "skip: prepare (DATA_BIN $DATA_BIN)"; return 0; fi
  step prepare - $PREPARE_CMD --out "$OUT/data"
}

teacher() {  # teacher ALPHA SEED: train (or import its release from TEACHER_RELEASES), then decode and score the test set
  local a=$1 s=$2 dir="$OUT/teachers/a$1_s$2"
  if [[ -n $TEACHER_PATHS ]]; then  # a teacher the user brings: used where it is
    mkdir -p "$dir"
    checkpoint_file "$(teacher_path_of "$a" "$s")" > "$dir/teacher_path"
  elif [[ -n $TEACHER_RELEASES ]]; then
    step "teacher_a${a}_s${s}" "$dir/done" "${LSKD[@]}" teacher-release import --release "$TEACHER_RELEASES/a${a}_s${s}.pt" \
      --data "$BIN" --save-dir "$dir"
  else
    step "teacher_a${a}_s${s}" "$dir/done" train_nmt "$dir" "$TEACHER_UPDATES" "$s" "$ARCH_ARGS" --kd-lambda 0 --label-smoothing "$a"
  fi
  step "teacher_a${a}_s${s}_score" "$dir/score.json" evaluate "$dir" teacher "$a" null "$s" null "$s"
}

do_teachers() {
  local a s
  for s in $SEEDS; do for a in $TEACHER_ALPHAS; do pool_run teacher "$a" "$s"; done; done
  pool_wait
}

teacher_for_cache() {  # teacher_for_cache ALPHA SEED: a given teacher as given (a folder brings its dictionaries)
  local given; given=$(teacher_path_of "$1" "$2")
  if [[ -n $given ]]; then echo "$given"; else echo "$OUT/teachers/a$1_s$2/checkpoint_best.pt"; fi
}

do_caches() {
  local a s
  for s in $SEEDS; do for a in $TEACHER_ALPHAS; do
    # shellcheck disable=SC2086
    pool_run step "cache_a${a}_s${s}" "$OUT/caches/a${a}_s${s}/done" "${LSKD[@]}" cache --data "$BIN" \
      --teacher-path "$(teacher_for_cache "$a" "$s")" --out "$OUT/caches/a${a}_s${s}" --k "$TOPK" $CACHE_ARGS
  done; done
  pool_wait
}

student() {  # student TEACHER_ALPHA T TEACHER_SEED STUDENT_SEED: train from that teacher's cache, decode, score
  local a=$1 t=$2 s=$3 r=$4 name="a$1_T$2_s$3" seed=$3
  if [[ $r != "$s" ]]; then name+="_r$r"; seed="s${s}r${r}"; fi  # another student seed of the same teacher
  local dir="$OUT/students/$name"
  # shellcheck disable=SC2046
  step "student_$name" "$dir/done" train_nmt "$dir" "$STUDENT_UPDATES" "$r" "$STUDENT_ARCH_ARGS" $(student_args) \
    --kd-temperature "$t" --kd-topk-cache "$OUT/caches/a${a}_s${s}" $STUDENT_OPT_ARGS
  step "student_${name}_score" "$dir/score.json" evaluate "$dir" student "$a" "$t" "$seed" "$(student_lambda)" "$s"
}

student_seeds() {  # student_seeds T TEACHER_SEED: the student seeds of that cell (empty = the teacher's own seed)
  local seeds
  seeds=$(cell_seeds "$1")
  echo "${seeds:-$2}"
}

do_students() {  # every teacher seed x alpha x T x student seed of that cell (student_seeds)
  local a s r t
  for s in $SEEDS; do for a in $TEACHER_ALPHAS; do for t in $TEMPERATURES; do for r in $(student_seeds "$t" "$s"); do
    pool_run student "$a" "$t" "$s" "$r"
  done; done; done; done
  pool_wait
}

baseline() {  # baseline SEED: the students' model, options and budget trained on gold data alone (no teacher)
  local dir="$OUT/baselines/s$1"
  # shellcheck disable=SC2086
  step "baseline_s$1" "$dir/done" train_nmt "$dir" "$STUDENT_UPDATES" "$1" "$STUDENT_ARCH_ARGS" --kd-lambda 0 \
    --label-smoothing "$STUDENT_EPS" $STUDENT_OPT_ARGS
  step "baseline_s$1_score" "$dir/score.json" evaluate "$dir" baseline null null "$1" 0 null
}

do_baselines() {
  local r
  for r in $BASELINE_SEEDS; do pool_run baseline "$r"; done
  pool_wait
}

do_report() {  # one table per score the runs carry (their BLEU conventions: lskd score --help), headline first
  local metric metrics
  if [[ ${DRY_RUN:-0} == 1 ]]; then echo "would run: report [CPU]: lskd report --runs $OUT (one table per metric)"; return 0; fi
  metrics=$("${LSKD[@]}" report --runs "$OUT" --list-metrics)
  for metric in $metrics; do
    "${LSKD[@]}" report --runs "$OUT" --metric "$metric" --out "$OUT/results_$metric" \
      --title "$(basename "$OUT"): $SRC-$TGT, test $metric (teacher LS alpha x student KD temperature)" > /dev/null
  done
  cat "$OUT/results_${metrics%% *}.md"
}

diffusion_features() {  # RUN_DIR -> $OUT/diffusion/NAME.pt (skipped when present)
  local ckpt; ckpt=$(run_checkpoint "$1")
  [[ -f $ckpt ]] || die "$ckpt: no such checkpoint (run the grid first)"
  step "features_$(basename "$1")" "$OUT/diffusion/$(basename "$1").pt" "${LSKD[@]}" nmt-features --data "$BIN" \
    --path "$ckpt" --split valid --top 30 --out "$OUT/diffusion/$(basename "$1").pt"
}

do_diffusion() {  # not in the default sequence (--only diffusion): penultimate-layer analysis of a finished grid
  # one table per teacher alpha, baseline the first temperature; cell T<t> = every student of that alpha and T
  # (all teacher and student seeds: the seed intervals are over them); similar words from BOTH first-seed
  # teachers (one table each: the non-LS teacher's own students copy its softmax), the same in every table;
  # then the LS tables against the first alpha's as differences (lskd diffusion --compare)
  local a s r t run specs files refs=() out="$OUT/diffusion" first
  local s1; s1=$(awk '{print $1}' <<< "$SEEDS")
  first=$(awk '{print $1}' <<< "$TEACHER_ALPHAS")
  mkdir -p "$out"
  for a in $TEACHER_ALPHAS; do diffusion_features "$OUT/teachers/a${a}_s${s1}"; refs+=("$out/a${a}_s${s1}.pt"); done
  for a in $TEACHER_ALPHAS; do
    specs=()
    for t in $TEMPERATURES; do
      files=()
      for s in $SEEDS; do for r in $(student_seeds "$t" "$s"); do
        run="$OUT/students/a${a}_T${t}_s${s}"; [[ $r != "$s" ]] && run+="_r$r"
        diffusion_features "$run"; files+=("$out/$(basename "$run").pt")
      done; done
      specs+=("T$t=$(IFS=,; echo "${files[*]}")")
    done
    files=()
    for s in $SEEDS; do diffusion_features "$OUT/teachers/a${a}_s${s}"; files+=("$out/a${a}_s${s}.pt"); done
    specs+=("teacher=$(IFS=,; echo "${files[*]}")")
    # the three most frequent target words in the projection; the index over all 30
    step "diffusion_a${a}" - "${LSKD[@]}" diffusion --features "${specs[@]}" --similar-from "${refs[@]}" \
      --classes 0 1 2 --out "$out/a${a}"
    cat "$out/a${a}.md"
  done
  for a in $TEACHER_ALPHAS; do
    [[ $a == "$first" ]] && continue
    step "diffusion_compare_a${a}" - "${LSKD[@]}" diffusion --compare "a${a}=$out/a${a}.json" "a${first}=$out/a${first}.json" \
      --out "$out/compare_a${a}_vs_a${first}"
    cat "$out/compare_a${a}_vs_a${first}.md"
  done
}

run_grid() {  # run_grid RECIPE_DIR [--profile NAME] [--config FILE] [--only STEP] [--dry-run]
  local dir=$1; shift
  local config="$dir/config.demo.sh" only="" steps="prepare teachers caches students baselines report" extra="diffusion"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --profile) [[ $# -ge 2 ]] || die "--profile needs a name"; config="$dir/config.$2.sh"
                 [[ -f $config ]] || die "--profile $2: no $config (profiles: $(cd "$dir" && ls config.*.sh | sed 's/config\.\(.*\)\.sh/\1/' | tr '\n' ' '))"
                 shift 2;;
      --config) [[ $# -ge 2 ]] || die "--config needs a file"; config=$2; shift 2;;
      --only) [[ $# -ge 2 ]] || die "--only needs a step"; only=$2; shift 2
              [[ " $steps $extra " == *" $only "* ]] || die "--only $only: unknown step (steps: $steps $extra)";;
      --dry-run) export DRY_RUN=1; shift;;
      *) die "unknown argument $1 (expected --profile NAME, --config FILE, --only STEP or --dry-run)";;
    esac
  done
  load_config "$config"
  echo "config: $config -> $OUT"
  local todo=$steps
  [[ -n $only ]] && todo=$only
  echo "steps: $todo (each skipped when done; logs in $OUT/logs/)"
  print_estimate "$(basename "$dir") $(basename "$config" .sh | sed 's/^config\.//')"
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    print_settings
    echo "dry run: every step's command and devices below; nothing is run"
  fi
  local s
  for s in $steps $extra; do
    [[ $only == "$s" || ( -z $only && " $steps " == *" $s "* ) ]] && "do_$s"
  done
  if [[ ${DRY_RUN:-0} != 1 && " $todo " == *" report "* ]]; then
    echo "tables: $OUT/results_*.md (and .csv); plots: $OUT/results_*.png; time per step: $OUT/logs/steps.tsv"
  fi
  return 0
}
