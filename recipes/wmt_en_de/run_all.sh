#!/usr/bin/env bash
# WMT14 En-De: the paper's grid at transformer-base scale (GPUs).
#   WMT_RAW=/path/to/wmt14 bash recipes/wmt_en_de/run_all.sh [--profile paper] [--only STEP]
# WMT_RAW holds the standard downloads (europarl-v7, commoncrawl, news-commentary, newstest2014 sgm).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/nmt_grid.sh"
[[ -n ${WMT_RAW:-} ]] || die "set WMT_RAW to the folder with the WMT14 raw files (see data_prep/wmt.py)"
run_grid "$HERE" --profile paper "$@"
