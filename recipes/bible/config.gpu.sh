# Bible de-en, gpu profile: the whole grid (teacher LS alpha {0, 0.1} x student T {1, 2, 3, 64}) on ONE
# H100 in under 9 minutes, set-up included. Run it through recipes/gpu/bible.sh (docs/GPU.md), which
# installs the carried wheels, copies the prepared data (recipes/gpu/prepare.sh made it with PREPARE_CMD
# below) into $OUT/data, and caps each phase's training time with fairseq's --stop-time-hours (a time
# guard: a run that reaches it stops cleanly, saves, and is decoded and scored like a finished one).
# All 26,761 training pairs, sentencepiece 8k joint. A transformer far larger than the CPU profiles'
# (3+3 layers, 512-dim, ffn 2048, 8 heads, shared embeddings, about 26 M parameters), fp16, 12k-token
# batches, lr 1e-3; the caps below are upper limits, the time guard ends most runs before them.
# Eight students share the GPU at once (JOBS=8), two threads each on the 16-core machine.
: "${OUT:=runs/bible_gpu}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.bible --src de --tgt en --vocab-size 8000}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 512 --decoder-embed-dim 512 --encoder-ffn-embed-dim 2048 --decoder-ffn-embed-dim 2048 --encoder-attention-heads 8 --decoder-attention-heads 8 --share-all-embeddings --dropout 0.3 --attention-dropout 0.1 --activation-dropout 0.1}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 400 --clip-norm 1.0 --max-tokens 12288 --fp16 --num-workers 1 --save-interval 5 --validate-interval 5}"
: "${TEACHER_UPDATES:=4000}"
: "${STUDENT_UPDATES:=4000}"
: "${JOBS:=8}"
: "${BEAM:=5}"
: "${GEN_ARGS:=--batch-size 250 --fp16}"
: "${CACHE_ARGS:=--fp16 --max-tokens 16384}"
: "${DECODE_ENGINE:=fairseq}"  # CTranslate2's CUDA build needs CUDA 12 libraries the GPU image may lack
