# Bible de-en, demo profile: the whole grid on 2 CPU cores in under 30 minutes from a fresh clone
# (README: make demo). First 12,000 training pairs, a tiny transformer (2+2 layers, 128-dim), greedy decoding.
# The two teachers are shipped (recipes/bible/demo_teachers/, float16 teacher releases of about 4 MB each,
# made by `bash recipes/bible/make_demo_teachers.sh` from the settings below and TEACHER_UPDATES), so the
# demo's minutes go to the eight students: STUDENT_UPDATES small batches (1,024 tokens) with the learning
# rate decayed linearly to 0, which learned about 2.5x the BLEU of the teachers' 4,096-token inverse-sqrt
# schedule at the same compute (docs/RESULTS.md). Not the paper's numbers: the `cpu` profile is the longer
# CPU reproduction, `paper` the GPU-size one. Grid keys not set here take the paper's values
# (recipes/lib/nmt_grid.sh); every key can be overridden from the environment (e.g. OUT=/tmp/x bash
# recipes/bible/run_all.sh; TEACHER_RELEASES= trains the teachers instead).
: "${OUT:=runs/bible_demo}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.bible --src de --tgt en --vocab-size 4000 --max-train 12000}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-decoder-input-output-embed --dropout 0.1}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --lr 3e-3 --lr-scheduler inverse_sqrt --warmup-updates 80 --max-tokens 4096 --cpu --num-workers 0}"
: "${TEACHER_UPDATES:=1000}"   # what the shipped teachers were trained for (make_demo_teachers.sh)
: "${TEACHER_RELEASES=$REPO/recipes/bible/demo_teachers}"
: "${STUDENT_UPDATES:=2000}"
: "${STUDENT_OPT_ARGS:=--max-tokens 1024 --lr-scheduler polynomial_decay --total-num-update $STUDENT_UPDATES --end-learning-rate 0 --warmup-updates 60}"
: "${JOBS:=2}"
: "${BEAM:=1}"
: "${GEN_ARGS:=--batch-size 128 --max-len-a 1.2 --max-len-b 10 --cpu}"   # caps the loops of under-trained models
: "${CACHE_ARGS:=--cpu}"
