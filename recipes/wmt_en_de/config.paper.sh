# WMT14 En-De, transformer (base) teachers and students, fairseq's WMT recipe hyper-parameters
# (Adam (0.9, 0.98), lr 7e-4, inverse-sqrt warm-up 4000, dropout 0.1, max-tokens 8192), joint 32k
# sentencepiece, beam 5. Students: lambda 0.9 from a top-8 cache (K = 8: this project's choice; the paper has
# no WMT rows and Tan's code uses K = 4 on IWSLT).
: "${OUT:=runs/wmt_en_de}"
: "${SRC:=en}"
: "${TGT:=de}"
: "${PREPARE_CMD:=python -m data_prep.wmt --src en --tgt de --vocab-size 32000 ${WMT_RAW:+--raw-dir $WMT_RAW} ${WMT_MIRROR:+--mirror $WMT_MIRROR} ${WMT_NC_VERSION:+--news-commentary-version $WMT_NC_VERSION}}"
: "${ARCH_ARGS:=--arch transformer --share-all-embeddings --dropout 0.1}"
: "${OPT_ARGS:=--optimizer adam --adam-betas (0.9,0.98) --clip-norm 0.0 --lr 7e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 --max-tokens 8192 --fp16 --num-workers 4}"
: "${TEACHER_UPDATES:=100000}"
: "${STUDENT_UPDATES:=100000}"
: "${GEN_ARGS:=--batch-size 128}"
: "${CACHE_ARGS:=--fp16 --max-tokens 16384}"
