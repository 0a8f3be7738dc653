# IWSLT14 De-En, fairseq's transformer_iwslt_de_en (6+6 layers, 512/1024, 4 heads) teachers and students,
# fairseq's recipe hyper-parameters (Adam (0.9, 0.98), lr 5e-4, inverse-sqrt warm-up 4000, dropout 0.3,
# weight decay 1e-4, max-tokens 4096), beam 5. Students: Tan et al.'s mixing (lambda 0.9) from a top-8 cache.
: "${OUT:=runs/iwslt14_de_en}"
: "${SRC:=de}"
: "${TGT:=en}"
: "${PREPARE_CMD:=python -m data_prep.iwslt --src de --tgt en --vocab-size 10000 ${IWSLT_LOCAL:+--local $IWSLT_LOCAL} ${IWSLT_URL:+--url $IWSLT_URL}}"
: "${ARCH_ARGS:=--arch transformer_iwslt_de_en --share-decoder-input-output-embed --dropout 0.3 --weight-decay 0.0001}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --clip-norm 0.0 --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 --max-tokens 4096 --num-workers 2}"
: "${TEACHER_UPDATES:=60000}"
: "${STUDENT_UPDATES:=60000}"
: "${GEN_ARGS:=--batch-size 128}"
: "${CACHE_ARGS:=--max-tokens 8192}"
