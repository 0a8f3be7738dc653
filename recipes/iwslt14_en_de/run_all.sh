#!/usr/bin/env bash
# IWSLT14 En->De, the paper's direction (its NMT table: IWSLT En->De and En->Ru), with the IWSLT14 profiles of
# recipes/iwslt14_de_en (paper: Tan et al.'s small transformer, K = 4, lambda 0.9, epsilon 0.1, beam 5,
# fairseq-generate, tokenised BLEU; fairseq: transformer_iwslt_de_en). The data is the same archive as De->En
# (fairseq's mirror, or IWSLT_LOCAL / IWSLT_URL), prepared in this direction.
#   [GPUS=auto] bash recipes/iwslt14_en_de/run_all.sh [--profile fairseq] [--only STEP] [--dry-run]
# En->Ru: SRC=en TGT=ru IWSLT_LOCAL=/path/en-ru.tgz bash recipes/iwslt14_en_de/run_all.sh (the 2014 release's
# old host no longer serves it; bring the archive).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SRC="${SRC:-en}" TGT="${TGT:-de}"
source "$HERE/../lib/nmt_grid.sh"
run_grid "$HERE/../iwslt14_de_en" --profile paper "$@"
