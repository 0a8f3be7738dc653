# IWSLT14 with fairseq's own model: transformer_iwslt_de_en (6+6 layers, 512/1024, 4 heads) and fairseq's
# recipe hyper-parameters (Adam (0.9, 0.98), lr 5e-4, inverse-sqrt warm-up 4000, dropout 0.3, weight decay
# 1e-4, max-tokens 4096; about 34.5 tokenised BLEU De->En); everything else is the paper profile's
# (config.paper.sh: K = 4, lambda 0.9, epsilon 0.1, beam 5, fairseq-generate, tokenised BLEU, --fp16 on GPU).
#   bash recipes/iwslt14_de_en/run_all.sh --profile fairseq
: "${SRC:=de}"
: "${TGT:=en}"
: "${OUT:=runs/iwslt14_${SRC}_${TGT}_fairseq}"
: "${ARCH_ARGS:=--arch transformer_iwslt_de_en --share-decoder-input-output-embed --dropout 0.3 --weight-decay 0.0001}"
# shellcheck source=config.paper.sh
source "$(dirname "${BASH_SOURCE[0]}")/config.paper.sh"
