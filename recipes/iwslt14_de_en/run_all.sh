#!/usr/bin/env bash
# IWSLT14 De-En: the paper's grid with fairseq's transformer_iwslt_de_en teachers (GPU).
#   [IWSLT_LOCAL=/path/de-en.tgz | IWSLT_URL=URL] bash recipes/iwslt14_de_en/run_all.sh [--only STEP]
# Without IWSLT_LOCAL the archive is downloaded once (fairseq's mirror, or IWSLT_URL) into the cache
# ($LSKD_CACHE, default ~/.cache/lskd). The data is fairseq's (prepare-iwslt14.sh: lowercased, Moses-tokenised),
# so the table is tokenised BLEU on that text (bleu_tok: fairseq-generate's BLEU4, the number fairseq's
# ~34.5 for transformer_iwslt_de_en and the IWSLT14 KD papers report), not detokenised sacreBLEU.
# Every config key can be set from the environment (OUT, ARCH_ARGS, TEACHER_UPDATES, ...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/nmt_grid.sh"
run_grid "$HERE" --profile paper "$@"
