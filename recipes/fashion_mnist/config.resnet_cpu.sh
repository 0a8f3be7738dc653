# Fashion-MNIST, resnet_cpu profile: the paper's ImageNet pair (ResNet-50 teachers -> ResNet-18 students) on
# 2 CPU cores, every layer's width scaled to 1/4 (docs/VISION.md: about an hour).
#   bash recipes/fashion_mnist/run_all.sh --config recipes/fashion_mnist/config.resnet_cpu.sh
# torchvision's own ResNets with their ImageNet stem (7x7 stride-2 convolution + max-pool: 28x28 images reach
# the last stage at 1x1), not the 3x3 small-input stem: about 4x fewer multiply-adds, which is what makes
# 15 epochs per model fit. Both with random crop (pad 2) + horizontal flip, SGD with Nesterov momentum,
# cosine schedule after half an epoch of warm-up. Students: pure KD (lambda 1, the paper's) from the frozen
# teacher's final checkpoint run online on the same augmented batch, gradient-norm clipping at 1
# (config.sh: T = 64 diverged once without it); three student seeds at T = 1, two elsewhere.
: "${RUNS:=runs/fashion_mnist_resnet_cpu}"
: "${DATA_ROOT:=}"
: "${ALPHAS:=0.0 0.1}"
: "${TEMPS:=1 2 3 64}"
: "${TEACHER_SEEDS:=0}"
: "${STUDENT_SEEDS:=0 1}"
: "${T1_STUDENT_SEEDS:=0 1 2}"
: "${THREADS:=1}"
: "${JOBS:=2}"
: "${TEACHER_ARGS:=--arch resnet50 --width 0.25 --small-input false --epochs 15 --batch-size 128 --lr 0.1 --nesterov --weight-decay 5e-4 --schedule cosine --warmup-epochs 0.5}"
: "${STUDENT_ARGS:=--arch resnet18 --width 0.25 --small-input false --epochs 15 --batch-size 128 --lr 0.1 --nesterov --weight-decay 5e-4 --schedule cosine --warmup-epochs 0.5 --clip-grad-norm 1}"
: "${TITLE:=ResNet-50 teachers -> ResNet-18 students at width 1/4 (pure KD, CPU)}"
