#!/usr/bin/env bash
# WMT14 En-De: the paper's grid at transformer-base scale (GPUs).
#   [WMT_RAW=/path/to/wmt14 | WMT_MIRROR=URL] [WMT_NC_VERSION=9] bash recipes/wmt_en_de/run_all.sh [--only STEP]
# WMT_RAW holds the unpacked WMT files (europarl-v7, commoncrawl, news-commentary, test-full/newstest2014);
# without it the statmt.org archives (or WMT_MIRROR/<archive>) are downloaded once into the cache.
# News commentary: v12 (WMT17, fairseq's default) unless WMT_NC_VERSION=9 (WMT14 proper, fairseq's --icml17).
# Tables: bleu (detokenised sacreBLEU against the untouched newstest2014, 3,003 lines), bleu_compound_split
# (fairseq's compound_split_bleu.sh: the convention of the 27.3 / 28.4 figures) and chrf.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/nmt_grid.sh"
run_grid "$HERE" --profile paper "$@"
