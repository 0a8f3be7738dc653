# ImageNet grid with the paper's hyper-parameters (docs/PAPER.md; the authors' code). GPUs only.
# DATA_ROOT must hold train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ImageFolder layout; val sorted into class folders).
: "${DATA_ROOT:?set DATA_ROOT to the ImageNet folder with train/ and val/}"
: "${RUNS:=runs/imagenet}"
: "${NGPUS:=8}"                        # torchrun processes (one per GPU); batch sizes below are global
: "${WORKERS:=8}"                      # data-loader workers per process
: "${ALPHAS:=0.0 0.1}"
: "${TEMPS:=1 2 3 64}"
: "${STUDENTS:=resnet18 resnet50}"     # R50 -> R18 and R50 -> R50
: "${SEEDS:=0}"
# Teachers: ResNet-50, SGD momentum 0.9, lr 0.1, wd 1e-4, 90 epochs, x0.1 every 30 epochs.
: "${TEACHER_ARGS:=--arch resnet50 --epochs 90 --batch-size 256 --lr 0.1 --momentum 0.9 --weight-decay 1e-4 --schedule step --step-size 30 --gamma 0.1}"
# Students: pure KD (lambda 1), 200 epochs, 5 warm-up epochs, x0.1 every 80 epochs (lr 0.1, wd 1e-4: as the teachers).
: "${STUDENT_ARGS:=--epochs 200 --batch-size 256 --lr 0.1 --momentum 0.9 --weight-decay 1e-4 --schedule step --step-size 80 --gamma 0.1 --warmup-epochs 5 --kd-lambda 1}"
: "${COMMON_ARGS:=--dataset imagenet --image-size 224 --precision fp16 --sync-bn}"
