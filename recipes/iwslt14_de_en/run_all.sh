#!/usr/bin/env bash
# IWSLT14 De-En: the paper's grid (GPU). Profiles: paper (default: Tan et al.'s 2+2-layer 256-dim transformer, the
# paper's K, lambda, epsilon and beam) and fairseq (transformer_iwslt_de_en); recipes/iwslt14_en_de runs En->De.
#   [IWSLT_LOCAL=/path/de-en.tgz | IWSLT_URL=URL] [GPUS=auto] bash recipes/iwslt14_de_en/run_all.sh [--profile fairseq] [--only STEP] [--dry-run]
# Without IWSLT_LOCAL the archive is downloaded once (fairseq's mirror, or IWSLT_URL) into the cache
# ($LSKD_CACHE, default ~/.cache/lskd). The data is fairseq's (prepare-iwslt14.sh: lowercased, Moses-tokenised),
# so the table is tokenised BLEU on that text (bleu_tok: fairseq-generate's BLEU4, the number fairseq's
# ~34.5 for transformer_iwslt_de_en and the IWSLT14 KD papers report), not detokenised sacreBLEU.
# GPUS=auto (or a list of device ids) trains one cell per GPU at a time (GPUS_PER_RUN=N: each model on N GPUs);
# --dry-run prints the settings and every step's command and devices without running anything.
# Every config key can be set from the environment (OUT, SRC, TGT, ARCH_ARGS, TEACHER_UPDATES, ...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/nmt_grid.sh"
run_grid "$HERE" --profile paper "$@"
