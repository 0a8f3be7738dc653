# Toy size of the Bible GPU profile (bash recipes/gpu/bible.sh --toy): the same entry script and phases on a
# CPU in about a minute, for tests. Tiny transformer, 20-update teachers, one temperature. The tests
# override PREPARE_CMD, SRC and TGT from the environment with a synthetic corpus (no Bible database in CI).
: "${OUT:=runs/bible_gpu_toy}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.bible --src de --tgt en --vocab-size 1000 --max-train 2000}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --encoder-attention-heads 2 --decoder-attention-heads 2}"
: "${OPT_ARGS:=--optimizer adam --lr 1e-2 --lr-scheduler inverse_sqrt --warmup-updates 10 --max-tokens 400 --cpu --num-workers 0}"
: "${TEACHER_UPDATES:=20}"
: "${STUDENT_UPDATES:=40}"   # a cap: the students train as many updates as their teachers reach (20)
: "${TEMPERATURES:=1}"
: "${TOPK:=4}"
: "${JOBS:=2}"
: "${BEAM:=1}"
: "${GEN_ARGS:=--batch-size 64 --cpu}"
: "${CACHE_ARGS:=--cpu}"
: "${DECODE_ENGINE:=fairseq}"
