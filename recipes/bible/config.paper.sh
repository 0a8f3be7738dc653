# Bible de-en at the paper's NMT settings (Tan et al.'s IWSLT transformer: 2+2 layers, d 256, ffn 1024,
# 4 heads, Adam (0.9, 0.98), lr 5e-4, inverse-sqrt warm-up 4000, dropout 0.3, max-tokens 4096, beam 5),
# for a GPU. Three seeds; students read the teacher's top-8 cache.
: "${OUT:=runs/bible_paper}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.bible --src de --tgt en --vocab-size 8000}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 256 --decoder-embed-dim 256 --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-decoder-input-output-embed --dropout 0.3}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 --max-tokens 4096 --num-workers 2}"
: "${TEACHER_UPDATES:=30000}"
: "${STUDENT_UPDATES:=30000}"
: "${SEEDS:=1 2 3}"
: "${GEN_ARGS:=--batch-size 128}"
: "${CACHE_ARGS:=}"
