#!/usr/bin/env bash
# What every recipe shares (source it): one-line errors, config files checked key by key, skip-when-done
# steps with a log each, a job pool, and the `lskd` command.
#   die MSG...                  "error: MSG" on stderr, exit 2
#   load_config_keys FILE KEY... refuse FILE if it sets a key not among KEY..., then source it
#   require_keys FILE KEY...    refuse FILE if one of KEY... is still unset (after defaults)
#   step NAME MARKER CMD...     run CMD unless MARKER exists ("-": always), logging to $LOG_DIR/NAME.log; on failure
#                               print the log's last lines and exit 1; a MARKER ending in /done is touched after success
#   pool_run CMD...             run CMD in the background, at most $JOBS at once (JOBS <= 1: in the foreground), each
#                               with nproc/JOBS threads; a slot frees as soon as ANY job ends
#   pool_wait                   wait for every job; die if one failed
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
  mkdir -p "$LOG_DIR"
  echo "run:  $name  (log: $LOG_DIR/$name.log)"
  if ! "$@" > "$LOG_DIR/$name.log" 2>&1; then
    echo "failed: $name; last lines of $LOG_DIR/$name.log:" >&2
    tail -n 15 "$LOG_DIR/$name.log" >&2
    exit 1
  fi
  [[ $marker == */done ]] && touch "$marker"
  return 0
}

POOL_PIDS=() POOL_FAILED=0
pool_run() {  # pool_run CMD...
  if (( ${JOBS:-1} <= 1 )); then "$@"; return 0; fi
  while (( ${#POOL_PIDS[@]} >= JOBS )); do _pool_reap_any; done
  local threads=$(( $(nproc) / JOBS ))
  ( export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 )); "$@" ) &
  POOL_PIDS+=("$!")
}

_pool_reap_any() {  # wait until a pool job has ended (any of them), collect its status, free its slot
  # (polled: bash's `wait -n PID...` loses jobs that ended before it was called)
  local p left=() ended=0
  while (( ! ended )); do
    left=()
    for p in "${POOL_PIDS[@]}"; do
      if kill -0 "$p" 2>/dev/null; then left+=("$p"); else ended=1; wait "$p" || POOL_FAILED=1; fi
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
