#!/usr/bin/env bash
# Shared by the GPU entry scripts (bible.sh, fashion_mnist.sh; source it): options, set-up on a bare GPU
# machine, a wall-clock budget, timed phases, and the results folder. docs/GPU.md explains the profiles.
#   profile_args DEFAULT_CONFIG TOY_CONFIG NAME "$@"   --toy --config --results --work --carry --budget (+ PROFILE_OPTS)
#   gpu_setup fairseq|none    PYTHONPATH with this repository; the carried wheels installed when fairseq is
#                             missing (and needed); CARD = the GPU from nvidia-smi
#   seconds_left              seconds until the budget's deadline
#   phase NAME LIMIT CMD...   CMD under a hard limit of LIMIT seconds (its process group is killed then; LIMIT "-":
#                             a shell function, run in this shell without one); a row "NAME<TAB>seconds<TAB>status" in
#                             $RESULTS/timing.tsv; returns CMD's status
#   hours S, smaller A B, positive A   decimal arithmetic (seconds may have decimals)
#   config_value KEY          a key of $CONFIG as the recipe will see it (the environment overrides the file)
#   pack_results KIND TITLE HEADLINE_PREFIX   summary.md, the headline table, logs.tar.gz into $RESULTS
#   finish_output             last: flush console.log
# The results folder holds at most 7 files, at most one level down: what a device tool brings back.
set -euo pipefail

GPU_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$GPU_DIR/../.." && pwd)"
source "$REPO/recipes/lib/common.sh"
PYTHON=${PYTHON:-python3}

profile_args() {  # profile_args DEFAULT_CONFIG TOY_CONFIG NAME ARGS...
  CONFIG=$1; local toy_config=$2 name=$3; shift 3
  RESULTS="runs/gpu_results/$name" WORK="runs/gpu/$name" CARRY="$REPO/.gpu_carry" BUDGET=510 TOY=0
  local config_given=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --toy) TOY=1; shift;;
      --config|--results|--work|--carry|--budget)
        [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
        case "$1" in
          --config) config_given=$2;; --results) RESULTS=$2;; --work) WORK=$2;; --carry) CARRY=$2;;
          --budget) [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--budget: expected whole seconds, got $2"; BUDGET=$2;;
        esac
        shift 2;;
      *) if [[ " ${PROFILE_OPTS:-} " == *" $1 "* && $# -ge 2 ]]; then
           [[ $2 =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$1: expected seconds, got $2"
           local var=${1#--}; var=${var//-/_}; printf -v "${var^^}" '%s' "$2"; shift 2
         else die "unknown argument $1 (expected --toy, --config FILE, --results DIR, --work DIR, --carry DIR, --budget SECONDS${PROFILE_OPTS:+, $PROFILE_OPTS})"; fi;;
    esac
  done
  if [[ -n $config_given ]]; then CONFIG=$config_given; elif (( TOY )); then CONFIG=$toy_config; fi
  [[ -f $CONFIG ]] || die "--config $CONFIG: no such file"
  CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
  START=$(date +%s) && DEADLINE=$(( START + BUDGET ))
  mkdir -p "$RESULTS" "$WORK"
  RESULTS="$(cd "$RESULTS" && pwd)" WORK="$(cd "$WORK" && pwd)"
  rm -f "$RESULTS/timing.tsv"
  : > "$RESULTS/console.log"  # stdout and stderr stay apart, each also appended to console.log
  exec > >(tee -a "$RESULTS/console.log") && TEE_OUT=$!
  exec 2> >(tee -a "$RESULTS/console.log" >&2) && TEE_ERR=$!
  echo "[gpu] $name: config $CONFIG, work $WORK, results $RESULTS, budget ${BUDGET}s, $(date -u '+%F %T') UTC"
}

gpu_setup() {  # gpu_setup fairseq|none
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
  local site=/tmp/lskd_gpu_site
  if [[ $1 == fairseq ]] && ! "$PYTHON" -c 'import importlib.util as u, sys; s = u.find_spec("fairseq"); sys.exit(not (s and s.origin))'; then
    compgen -G "$CARRY/wheels/*.whl" > /dev/null || die "fairseq is not installed and $CARRY/wheels holds no wheels: run recipes/gpu/prepare.sh first (docs/GPU.md)"
    echo "[gpu] installing $(ls "$CARRY"/wheels/*.whl | wc -l) carried wheels into $site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$CARRY"/wheels/*.whl \
      || die "pip could not install the wheels of $CARRY/wheels"
    export PYTHONPATH="$site:$PYTHONPATH" PATH="$site/bin:$PATH"
  fi
  CARD=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1) || true
  [[ -n $CARD ]] || CARD="no GPU (nvidia-smi found none): a CPU run"
  echo "[gpu] card: $CARD"
  "$PYTHON" -c 'import sys, torch; print(f"[gpu] python {sys.version.split()[0]}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")'
}

seconds_left() { echo $(( DEADLINE - $(date +%s) )); }

phase() {  # phase NAME LIMIT CMD...  (LIMIT "-" for a shell function)
  local name=$1 limit=$2 rc=0 status t0 t1; shift 2
  if [[ $limit != - ]] && (( limit <= 0 )); then
    printf '%s\t0\tskipped: no time left in the budget\n' "$name" >> "$RESULTS/timing.tsv"; echo "[gpu] $name: skipped, no time left"; return 1
  fi
  echo "[gpu] $name: ${limit/#-/no} limit, $(seconds_left)s of the budget left"
  t0=$(date +%s.%N)
  if [[ $limit == - ]]; then "$@" || rc=$?; else timeout --kill-after=15 "$limit" "$@" || rc=$?; fi
  t1=$(date +%s.%N)
  case $rc in 0) status=ok;; 124|137) status="stopped by the time guard after ${limit}s";; *) status="failed (exit $rc)";; esac
  printf '%s\t%.1f\t%s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$status" >> "$RESULTS/timing.tsv"
  echo "[gpu] $name: $status"
  return $rc
}

config_value() {  # config_value KEY: sourced in a subshell, so the environment's value wins as in the recipe
  (source "$CONFIG" > /dev/null; printf '%s' "${!1-}")
}

hours() { awk -v s="$1" 'BEGIN { printf "%.8f", s / 3600 }'; }
smaller() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0 ? a : b) }'; }  # of two (decimal) numbers
positive() { awk -v a="$1" 'BEGIN { exit !(a + 0 > 0) }'; }

pack_results() {  # pack_results KIND TITLE HEADLINE_PREFIX: $RESULTS gets summary.md, the headline .md/.csv/.png, logs.tar.gz
  local kind=$1 title=$2 headline=$3 ext
  for ext in md csv png; do [[ -f $headline.$ext ]] && cp "$headline.$ext" "$RESULTS/"; done
  "$PYTHON" "$GPU_DIR/gpu_profile.py" summary --kind "$kind" --work "$WORK" --timing "$RESULTS/timing.tsv" --card "$CARD" \
    --budget "$BUDGET" --title "$title" --headline "$headline.md" --out "$RESULTS/summary.md" > /dev/null
  # everything small that the grid wrote: logs, every table, scores, per-epoch metrics, decoded test sets
  (cd "$WORK" && find . -path ./data -prune -o -type f \( -name '*.log' -o -name '*.md' -o -name '*.csv' -o -name '*.png' \
      -o -name '*.json' -o -name '*.jsonl' -o -name 'generate-test.txt' \) -print0 | tar -czf "$RESULTS/logs.tar.gz" --null -T -)
  echo "[gpu] done in $(( $(date +%s) - START ))s: $(cd "$RESULTS" && ls | tr '\n' ' ')"
  echo "[gpu] summary: $RESULTS/summary.md"
}

finish_output() {  # close the output so that tee has written all of console.log before the script ends
  exec > /dev/null 2>&1
  wait "$TEE_OUT" "$TEE_ERR" 2> /dev/null || true
}
