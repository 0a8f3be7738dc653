#!/usr/bin/env bash
# What every recipe shares (source it): one-line errors, config files checked key by key, skip-when-done
# steps with a log each, a job pool, and the `lskd` command.
#   die MSG...                  "error: MSG" on stderr, exit 2
#   load_config_keys FILE KEY... refuse FILE if it sets a key not among KEY..., then source it
#   require_keys FILE KEY...    refuse FILE if one of KEY... is still unset (after defaults)
#   step NAME MARKER CMD...     run CMD unless MARKER exists ("-": always), logging to $LOG_DIR/NAME.log; on failure
#                               print the log's last lines and exit 1; a MARKER ending in /done is touched after success;
#                               meanwhile progress lines (model, update N of M, loss, elapsed, time left: lskd/progress.py);
#                               its start and end go to $LOG_DIR/steps.tsv (the time table: lskd/step_times.py)
#   pool_run CMD...             run CMD in the background in a free slot, a slot freeing as soon as ITS job ends:
#                               on CPU (GPUS empty) $JOBS slots (JOBS <= 1: in the foreground), each with nproc/JOBS
#                               threads; with GPUS (a list of device ids, or auto = every visible GPU) one slot per
#                               GPUS_PER_RUN devices (default 1), the job seeing only its own (CUDA_VISIBLE_DEVICES)
#   pool_wait                   wait for every job; die if one failed
#   DRY_RUN=1                   step prints what it would run (and on which devices) instead of running it
#   cell_seeds T                the student seeds of the cells at temperature T (T1_STUDENT_SEEDS at T = 1, else
#                               STUDENT_SEEDS): the NMT and image grids give pattern 2's cells more seeds
#   LSKD                        the lskd command as an array: `lskd` on PATH, else python -m lskd.cli
# Recipes never install system packages: a missing dependency is named with its install command, and they stop.

cell_seeds() {  # cell_seeds T
  if [[ $1 =~ ^1(\.0*)?$ ]]; then echo "$T1_STUDENT_SEEDS"; else echo "$STUDENT_SEEDS"; fi  # 1, 1.0, 1.00
}

die() { echo "error: $*" >&2; exit 2; }

load_config_keys() {  # load_config_keys FILE KEY...
  local file=$1 key; shift
  [[ -f $file ]] || die "config $file: no such file"
  while IFS= read -r key; do
    [[ " $* " == *" $key "* ]] || die "config $file: unknown key $key (known: $*)"
  done < <(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?\([A-Za-z_][A-Za-z0-9_]*\)=.*/\2/p; s/^: "\${\([A-Za-z_][A-Za-z0-9_]*\):\?[=?].*/\1/p' "$file")
  # shellcheck disable=SC1090
  source "$file"
}

require_keys() {  # require_keys FILE KEY...
  local file=$1 key; shift
  for key in "$@"; do [[ -n ${!key+x} ]] || die "config $file: $key is not set"; done
}

step() {  # step NAME MARKER CMD...
  local name=$1 marker=$2; shift 2
  if [[ $marker != - && -e $marker ]]; then echo "skip: $name"; return 0; fi
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    echo "would run: $name [${CUDA_VISIBLE_DEVICES:+GPU }${CUDA_VISIBLE_DEVICES:-CPU}]: $*"
    return 0
  fi
  mkdir -p "$LOG_DIR"
  echo "run:  $name  (log: $LOG_DIR/$name.log)"
  local began; began=$(date +%s)
  if ! run_with_progress "$name" "$LOG_DIR/$name.log" "$@"; then
    printf '%s\t%s\t%s\t%s\n' "$name" "$began" "$(date +%s)" failed >> "$LOG_DIR/steps.tsv"
    echo "failed: $name; last lines of $LOG_DIR/$name.log:" >&2
    tail -n 15 "$LOG_DIR/$name.log" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$began" "$(date +%s)" ok >> "$LOG_DIR/steps.tsv"  # lskd/step_times.py
  [[ $marker == */done ]] && touch "$marker"
  return 0
}

max_update_of() {  # max_update_OF CMD...: the --max-update the command trains to (train_nmt: its 2nd argument)
  if [[ $1 == train_nmt ]]; then echo "$3"; return 0; fi
  while (( $# > 1 )); do [[ $1 == --max-update ]] && { echo "$2"; return 0; }; shift; done
  return 0
}

run_with_progress() {  # run_with_progress NAME LOG CMD...: CMD > LOG, and progress lines (lskd/progress.py) meanwhile:
  # redrawn in place every 2 s on a terminal when one job runs at a time, else a line every PROGRESS_EVERY s (30)
  local name=$1 log=$2; shift 2
  local total every=${PROGRESS_EVERY:-30} start=$SECONDS last=$SECONDS rc=0 live=0 pid
  total=$(max_update_of "$@")
  "$@" <&0 > "$log" 2>&1 &  # stdin kept (a background job gets /dev/null by default): steps may read a here-document
  pid=$!
  if [[ -t 1 && ${JOBS:-1} -le 1 && -z ${GPUS:-} ]]; then live=1; every=2; fi
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - last >= every )) && kill -0 "$pid" 2>/dev/null; then
      last=$SECONDS
      if (( live )); then printf '\r\033[K%s' "$(progress_line "$name" "$log" "$start" "$total")"
      else progress_line "$name" "$log" "$start" "$total"; fi
    fi
  done
  wait "$pid" || rc=$?
  (( live )) && printf '\r\033[K'
  progress_line "$name" "$log" "$start" "$total" --final "$rc"
  return "$rc"
}

progress_line() {  # progress_line NAME LOG START TOTAL [--final RC]
  local name=$1 log=$2 start=$3 total=$4; shift 4
  PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" \
    -m lskd.progress --log "$log" --name "$name" --elapsed $(( SECONDS - start )) ${total:+--total "$total"} "$@" \
    || echo "[$name] running"
}

POOL_PIDS=() POOL_FAILED=0 POOL_SLOTS=() POOL_NEXT=0
declare -A POOL_SLOT_OF=()  # pid -> slot index

pool_slots() {  # fill POOL_SLOTS: one entry per concurrent job ("" on CPU; a comma-separated device list with GPUS)
  (( ${#POOL_SLOTS[@]} )) && return 0
  local gpus=${GPUS:-} per=${GPUS_PER_RUN:-1} i
  if [[ -z $gpus ]]; then
    for (( i = 0; i < ${JOBS:-1}; i++ )); do POOL_SLOTS+=(""); done
    return 0
  fi
  [[ $per =~ ^[1-9][0-9]*$ ]] || die "GPUS_PER_RUN must be a positive integer, got $per"
  if [[ $gpus == auto ]]; then
    gpus=$("${PYTHON:-python3}" -c 'import torch; print(" ".join(map(str, range(torch.cuda.device_count()))))')
    [[ -n $gpus ]] || die "GPUS=auto: no GPU is visible (leave GPUS empty to run on the CPU)"
  fi
  local list=(${gpus//,/ })
  (( ${#list[@]} >= per )) || die "GPUS=$GPUS: ${#list[@]} device(s), fewer than GPUS_PER_RUN=$per"
  (( ${#list[@]} % per == 0 )) || echo "warning: GPUS=$GPUS: $(( ${#list[@]} % per )) device(s) left idle by GPUS_PER_RUN=$per" >&2
  for (( i = 0; i + per <= ${#list[@]}; i += per )); do
    POOL_SLOTS+=("$(IFS=,; echo "${list[*]:i:per}")")
  done
}

pool_free_slot() {  # the index of a slot no running job holds (empty if all are taken)
  local i p taken
  for i in "${!POOL_SLOTS[@]}"; do
    taken=0
    for p in "${POOL_PIDS[@]}"; do [[ ${POOL_SLOT_OF[$p]} == "$i" ]] && taken=1; done
    (( taken )) || { echo "$i"; return 0; }
  done
}

pool_run() {  # pool_run CMD...
  pool_slots
  local n=${#POOL_SLOTS[@]} slot threads
  if [[ ${DRY_RUN:-0} == 1 ]]; then  # no job takes time: show the devices jobs would get in turn
    slot=$(( POOL_NEXT++ % n ))
    ( [[ -n ${POOL_SLOTS[slot]} ]] && export CUDA_VISIBLE_DEVICES=${POOL_SLOTS[slot]}; "$@" )
    return 0
  fi
  if (( n <= 1 )) && [[ -z ${POOL_SLOTS[0]} ]]; then "$@"; return 0; fi
  while [[ -z $(pool_free_slot) ]]; do _pool_reap_any; done
  slot=$(pool_free_slot)
  threads=$(( $(nproc) / n ))
  (
    export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 ))
    if [[ -n ${POOL_SLOTS[slot]} ]]; then export CUDA_VISIBLE_DEVICES=${POOL_SLOTS[slot]}; fi
    "$@"
  ) &
  POOL_PIDS+=("$!")
  POOL_SLOT_OF[$!]=$slot
}

_pool_reap_any() {  # wait until a pool job has ended (any of them), collect its status, free its slot
  # (polled: bash's `wait -n PID...` loses jobs that ended before it was called)
  local p left=() ended=0
  while (( ! ended )); do
    left=()
    for p in "${POOL_PIDS[@]}"; do
      if kill -0 "$p" 2>/dev/null; then left+=("$p"); else ended=1; wait "$p" || POOL_FAILED=1; unset "POOL_SLOT_OF[$p]"; fi
    done
    (( ended )) || sleep 0.2
  done
  POOL_PIDS=("${left[@]}")
}

pool_wait() {
  while (( ${#POOL_PIDS[@]} )); do _pool_reap_any; done
  (( POOL_FAILED == 0 )) || { POOL_FAILED=0; die "a step failed (its log's last lines are above); rerun to resume"; }
}

if command -v lskd >/dev/null 2>&1; then LSKD=(lskd); else LSKD=("${PYTHON:-python3}" -m lskd.cli); fi
