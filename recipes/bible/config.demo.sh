# Bible de-en, demo profile: the whole grid on 2 CPU cores in under 30 minutes from a fresh clone
# (README: make demo). First 12,000 training pairs, tiny transformer, short training, two runs at a
# time, greedy decoding: a working pipeline and a first table, not the paper's numbers (the `cpu`
# profile is the longer CPU reproduction, `paper` the GPU-size one). Grid keys not set here take the
# paper's values (recipes/lib/nmt_grid.sh); every key can be overridden from the environment
# (e.g. OUT=/tmp/x bash recipes/bible/run_all.sh).
: "${OUT:=runs/bible_demo}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.bible --src de --tgt en --vocab-size 4000 --max-train 12000}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-decoder-input-output-embed --dropout 0.1}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --lr 3e-3 --lr-scheduler inverse_sqrt --warmup-updates 80 --max-tokens 4096 --cpu --num-workers 0}"
: "${TEACHER_UPDATES:=300}"
: "${STUDENT_UPDATES:=100}"
: "${JOBS:=2}"
: "${BEAM:=1}"
: "${GEN_ARGS:=--batch-size 128 --max-len-a 1.2 --max-len-b 10 --cpu}"   # caps the loops of under-trained models
: "${CACHE_ARGS:=--cpu}"
