#!/usr/bin/env bash
# docs/VISION.md "Your own data and teacher", run: images as a user has them (an ImageFolder with train/, val/ and
# test/, here 200 / 60 / 60 real Fashion-MNIST images per class written as PNG files under their class names) and a
# teacher trained outside lskd's format (a plain torchvision ResNet-18 state_dict and its class list, as
# torchvision's references or any PyTorch script leave them), distilled into a small student.
#   bash recipes/fashion_mnist/own_teacher_example.sh      # OUT (default runs/own_vision); steps skip what is done
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/common.sh"
OUT="${OUT:-runs/own_vision}"
LOG_DIR="$OUT/logs"
PY="${PYTHON:-python3}"
DATA="$OUT/images"
COMMON=(--dataset imagefolder --data-root "$DATA" --image-size 32 --device cpu --no-progress --batch-size 64)

# 1. the data as folders of images (train/val/test, one folder per class)
step images "$DATA/done" "$PY" - "$DATA" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lskd.vision.data import FASHION_MNIST_CLASSES, find_fashion_mnist, read_idx

out, f = Path(sys.argv[1]), find_fashion_mnist("")
images, labels = read_idx(f["train_images"]), read_idx(f["train_labels"])
test_images, test_labels = read_idx(f["val_images"]), read_idx(f["val_labels"])
for split, (x, y, n, skip) in {"train": (images, labels, 200, 0), "val": (images, labels, 60, 200),
                               "test": (test_images, test_labels, 60, 0)}.items():
    for k, name in enumerate(FASHION_MNIST_CLASSES):
        folder = out / split / name.replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(np.flatnonzero(y == k)[skip:skip + n]):
            Image.fromarray(x[i]).convert("RGB").save(folder / f"{i}.png")
(out / "done").touch()
EOF

# 2. a teacher from outside: torchvision's ResNet-18 as published (7x7 stem), its weights saved as a plain
#    state_dict with its class list -- what a user brings
step teacher_run "$OUT/teacher_run/final.json" "${LSKD[@]}" vision train-teacher "${COMMON[@]}" --arch resnet18 \
  --small-input false --label-smoothing 0.1 --epochs 8 --lr 0.05 --schedule cosine --out-dir "$OUT/teacher_run"
"$PY" -c 'import sys, torch; ck = torch.load(sys.argv[1], weights_only=True)
torch.save(ck["model"], sys.argv[2]); open(sys.argv[3], "w").write("\n".join(ck["meta"]["classes"]) + "\n")' \
  "$OUT/teacher_run/best.pt" "$OUT/resnet18_state_dict.pth" "$OUT/classes.txt"

# 3. the teacher scored on val and test without training; a class list in another order is refused
step evaluate "$OUT/teacher_eval.json" "${LSKD[@]}" vision evaluate --model "$OUT/resnet18_state_dict.pth" \
  --arch resnet18 --classes "$OUT/classes.txt" --data-root "$DATA" --image-size 32 --out "$OUT/teacher_eval.json"
sort -r "$OUT/classes.txt" > "$OUT/classes_reversed.txt"
if "${LSKD[@]}" vision evaluate --model "$OUT/resnet18_state_dict.pth" --arch resnet18 --classes \
   "$OUT/classes_reversed.txt" --data-root "$DATA" --image-size 32 2> "$OUT/refused.txt"; then
  die "a class list in another order was accepted"
fi
cat "$OUT/refused.txt"

# 4. a small student distilled from it (pure KD at T = 1), test top-1 reported apart from val
step student "$OUT/student/final.json" "${LSKD[@]}" vision train-student "${COMMON[@]}" --arch smallcnn \
  --teacher "$OUT/resnet18_state_dict.pth" --teacher-arch resnet18 --teacher-classes "$OUT/classes.txt" \
  --temperature 1 --epochs 8 --lr 0.05 --schedule cosine --out-dir "$OUT/student"
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
t, s = json.loads((out / "teacher_eval.json").read_text()), json.loads((out / "student" / "final.json").read_text())
lines = ["| model | val top-1 | test top-1 |", "|---|---|---|",
         f"| teacher: torchvision ResNet-18 state_dict (lskd vision evaluate) | {t['val_top1']:.2f} | {t['test_top1']:.2f} |",
         f"| student: SmallCNN, pure KD at T = 1 (best.pt by val) | {s['best_top1']:.2f} | {s['test_top1']:.2f} |"]
(out / "results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
