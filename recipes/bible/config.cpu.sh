# Bible de-en, cpu profile: the reproduction run of docs/RESULTS.md on 2 CPU cores (about 75 minutes).
# All 26,761 training pairs, the demo's tiny transformer trained longer (teachers 800 updates, about
# 3 epochs; students 250), two student seeds per teacher, two runs at a time, greedy decoding.
: "${OUT:=runs/bible_cpu}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.bible --src de --tgt en --vocab-size 4000}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-decoder-input-output-embed --dropout 0.1}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --lr 3e-3 --lr-scheduler inverse_sqrt --warmup-updates 150 --max-tokens 4096 --cpu --num-workers 0}"
: "${TEACHER_UPDATES:=800}"
: "${STUDENT_UPDATES:=250}"
: "${STUDENT_SEEDS:=1 2}"
: "${JOBS:=2}"
: "${BEAM:=1}"
: "${GEN_ARGS:=--batch-size 128 --max-len-a 1.2 --max-len-b 10 --cpu}"
: "${CACHE_ARGS:=--cpu}"
