#!/usr/bin/env bash
# IWSLT14 De-En: the paper's grid with fairseq's transformer_iwslt_de_en teachers (GPU).
#   IWSLT_LOCAL=/path/de-en.tgz bash recipes/iwslt14_de_en/run_all.sh [--profile paper] [--only STEP]
# Without IWSLT_LOCAL the archive is looked up in the cache, then downloaded (online users only).
# Note: fairseq's preparation lowercases and Moses-tokenises, so the sacrebleu scores here are on that
# text (comparable to each other, not to detokenised true-case BLEU).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/nmt_grid.sh"
run_grid "$HERE" --profile paper "$@"
