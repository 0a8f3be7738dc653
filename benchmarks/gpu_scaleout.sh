#!/usr/bin/env bash
# GPU checks of the scale-out work (prepared on a CPU-only machine, not run there): one script for a
# session that is lent a GPU. Budget: about 10 minutes on one H100/H200.
#   bash benchmarks/gpu_scaleout.sh [WORK_DIR]      -> WORK_DIR/gpu_scaleout.txt (+ the logs beside it)
# 1. ls_kd under --fp16, --bf16 (and --amp) at T in {1, 64}: 200 updates each from an online teacher;
#    every logged loss must be finite, and the final losses are printed beside the fp32 run's.
# 2. If 2 GPUs are visible: fairseq's own multi-GPU launch (nccl) against 1 GPU with --update-freq 2.
# 3. benchmarks/kd_cost.py on the GPU (plain vs online teacher vs cache).
# Record the card (nvidia-smi line printed first) and the numbers in docs/SCALING.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=${1:-/tmp/lskd_gpu_scaleout}
mkdir -p "$WORK"
exec > >(tee "$WORK/gpu_scaleout.txt") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
NGPU=$(nvidia-smi -L | wc -l)

# data: the tests' synthetic word-for-word corpus, 20k sentences, 200-word vocabulary
python - "$WORK" <<'EOF'
import random, sys
from pathlib import Path
raw = Path(sys.argv[1]) / "raw"; raw.mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
for split, n in (("train", 20000), ("valid", 200)):
    src, tgt = [], []
    for _ in range(n):
        ids = [rng.randrange(200) for _ in range(rng.randint(4, 20))]
        src.append(" ".join(f"s{i}" for i in ids)); tgt.append(" ".join(f"t{(7 * i) % 200}" for i in ids))
    (raw / f"{split}.src").write_text("\n".join(src) + "\n"); (raw / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
EOF
[[ -f $WORK/bin/dict.tgt.txt ]] || fairseq-preprocess --source-lang src --target-lang tgt --trainpref "$WORK/raw/train" \
  --validpref "$WORK/raw/valid" --destdir "$WORK/bin" --workers 4 > "$WORK/preprocess.log"

ARCH=(--arch transformer_iwslt_de_en --share-decoder-input-output-embed)
TRAIN=(--task translation --user-dir "$REPO/fairseq_plugins" --optimizer adam --adam-betas "(0.9,0.98)" --lr 5e-4
       --lr-scheduler inverse_sqrt --warmup-updates 100 --max-tokens 4096 --dropout 0.1 --no-progress-bar
       --log-format json --log-interval 20 --no-save --disable-validation --seed 1 --num-workers 2)
if [[ ! -f $WORK/teacher/checkpoint_last.pt ]]; then
  fairseq-train "$WORK/bin" "${TRAIN[@]/--no-save/--no-epoch-checkpoints}" "${ARCH[@]}" --max-update 300 \
    --save-dir "$WORK/teacher" --criterion ls_kd --kd-lambda 0 --label-smoothing 0.1 --distributed-world-size 1 \
    > "$WORK/teacher.log"
fi
last() { grep '| train_inner |' "$1" | tail -1 | sed 's/.*| train_inner | //'; }

echo "== 1. precision x temperature (200 updates, online teacher, 1 GPU)"
for T in 1 64; do
  for prec in fp32 fp16 bf16 amp; do
    flag=(); [[ $prec != fp32 ]] && flag=(--$prec)
    log="$WORK/student_${prec}_T$T.log"
    fairseq-train "$WORK/bin" "${TRAIN[@]}" "${ARCH[@]}" "${flag[@]}" --max-update 200 --distributed-world-size 1 \
      --criterion ls_kd --kd-lambda 0.9 --kd-temperature "$T" --label-smoothing 0.1 \
      --teacher-path "$WORK/teacher/checkpoint_last.pt" > "$log" 2>&1 || { echo "$prec T=$T: FAILED (see $log)"; continue; }
    bad=$(grep '| train_inner |' "$log" | grep -ci '"nan"\|"inf"' || true)
    echo "$prec T=$T: records with nan/inf: $bad; last: $(last "$log")"
  done
done

if (( NGPU >= 2 )); then
  echo "== 2. 2 GPUs (fairseq's own spawn, nccl) vs 1 GPU with --update-freq 2 (fp16, T=2)"
  common=("${TRAIN[@]}" "${ARCH[@]}" --fp16 --max-update 200 --criterion ls_kd --kd-lambda 0.9 --kd-temperature 2
          --label-smoothing 0.1 --teacher-path "$WORK/teacher/checkpoint_last.pt" --dropout 0)
  CUDA_VISIBLE_DEVICES=0 fairseq-train "$WORK/bin" "${common[@]}" --update-freq 2 > "$WORK/one_gpu.log" 2>&1
  CUDA_VISIBLE_DEVICES=0,1 fairseq-train "$WORK/bin" "${common[@]}" --distributed-world-size 2 > "$WORK/two_gpu.log" 2>&1
  echo "1 GPU x update-freq 2: $(last "$WORK/one_gpu.log")"
  echo "2 GPUs:                $(last "$WORK/two_gpu.log")"
else
  echo "== 2. skipped: $NGPU GPU visible"
fi

echo "== 3. kd_cost on the GPU (its own 3+3-layer 256-dim model on the Bible subset; section 1 used"
echo "   transformer_iwslt_de_en, 6+6 layers 512-dim)"
python "$REPO/benchmarks/kd_cost.py" --out "$WORK/kd_cost" --rounds 2 2>&1 | tail -30
