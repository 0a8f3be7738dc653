# IWSLT14, the paper's NMT setting (Tan et al.'s procedure, which the paper's NMT rows follow; docs/PAPER.md):
# Tan et al.'s small transformer (2+2 layers, d_model 256, FFN 1024, 4 heads) for teachers and students, Adam
# (0.9, 0.98), lr 5e-4, inverse-sqrt warm-up 4000, dropout 0.3, max-tokens 4096, beam 5; students mix KD and
# label-smoothed NLL (lambda 0.9, epsilon 0.1) from the teacher's top-4 tokens (K = 4 in Tan's code).
# Direction: SRC/TGT (this entry De->En, fairseq's; recipes/iwslt14_en_de/run_all.sh runs the paper's En->De with
# this file; En->Ru: SRC=en TGT=ru IWSLT_LOCAL=en-ru.tgz, the old host no longer serves it).
# BLEU: tokenised BLEU on fairseq's lowercased Moses-tokenised text (bleu_tok = fairseq-generate's BLEU4, as
# Tan's fairseq fork and the IWSLT KD papers report), decoded by fairseq-generate (DECODE_ENGINE=fairseq: the
# numbers to put next to published ones; CTranslate2 is faster, equal on CPU float32, docs/SEQ_KD.md).
# GPU: --fp16 training. Assumed where the paper is silent: the number of updates (60,000 for teachers and
# students, about 150 epochs of IWSLT14 at 4,096 tokens; Tan's code trains to convergence) and weight decay (none,
# as Tan's code).
: "${SRC:=de}"
: "${TGT:=en}"
: "${OUT:=runs/iwslt14_${SRC}_${TGT}}"
: "${PREPARE_CMD:=python -m data_prep.iwslt --src $SRC --tgt $TGT --vocab-size 10000 ${IWSLT_LOCAL:+--local $IWSLT_LOCAL} ${IWSLT_URL:+--url $IWSLT_URL}}"
: "${ARCH_ARGS:=--arch transformer --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 256 --decoder-embed-dim 256 --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-decoder-input-output-embed --dropout 0.3}"
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
