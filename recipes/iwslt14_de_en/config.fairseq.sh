# IWSLT14 with fairseq's own model: transformer_iwslt_de_en (6+6 layers, 512/1024, 4 heads) and fairseq's
# recipe hyper-parameters (Adam (0.9, 0.98), lr 5e-4, inverse-sqrt warm-up 4000, dropout 0.3, weight decay
# 1e-4, max-tokens 4096; about 34.5 tokenised BLEU De->En), the same grid and students as the paper profile
# (config.paper.sh: K = 4, lambda 0.9, epsilon 0.1, beam 5, fairseq-generate, tokenised BLEU), --fp16 on GPU.
#   bash recipes/iwslt14_de_en/run_all.sh --profile fairseq
: "${SRC:=de}"
: "${TGT:=en}"
: "${OUT:=runs/iwslt14_${SRC}_${TGT}_fairseq}"
: "${PREPARE_CMD:=python -m data_prep.iwslt --src $SRC --tgt $TGT --vocab-size 10000 ${IWSLT_LOCAL:+--local $IWSLT_LOCAL} ${IWSLT_URL:+--url $IWSLT_URL}}"
: "${ARCH_ARGS:=--arch transformer_iwslt_de_en --share-decoder-input-output-embed --dropout 0.3 --weight-decay 0.0001}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --clip-norm 0.0 --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 --max-tokens 4096 --fp16 --num-workers 2}"
: "${TEACHER_UPDATES:=60000}"
: "${STUDENT_UPDATES:=60000}"
: "${TOPK:=4}"
: "${KD_LAMBDA:=0.9}"
: "${STUDENT_EPS:=0.1}"
: "${BEAM:=5}"
: "${DECODE_ENGINE:=fairseq}"
: "${GEN_ARGS:=--batch-size 128}"
: "${CACHE_ARGS:=--fp16 --max-tokens 8192}"
