# Toy size of the Fashion-MNIST GPU profile (bash recipes/gpu/fashion_mnist.sh --toy): the same entry script
# and phases on a CPU in well under a minute, for tests. The same ResNet-50 -> ResNet-18 pair at width 1/8,
# 256 training images, one teacher epoch, at most two student epochs, two temperatures.
: "${RUNS:=runs/fashion_mnist_gpu_toy}"
: "${DATA_ROOT:=}"
: "${ALPHAS:=0.0 0.1}"
: "${TEMPS:=1 64}"
: "${TEACHER_SEEDS:=0}"
: "${STUDENT_SEEDS:=0}"
: "${T1_STUDENT_SEEDS:=$STUDENT_SEEDS}"  # the student seeds of the T = 1 cells
: "${THREADS:=1}"
: "${JOBS:=2}"
: "${TEACHER_ARGS:=--arch resnet50 --width 0.125 --epochs 1 --batch-size 32 --lr 0.05 --train-subset 256 --schedule cosine}"
: "${STUDENT_ARGS:=--arch resnet18 --width 0.125 --epochs 2 --batch-size 32 --lr 0.05 --train-subset 256 --schedule cosine --clip-grad-norm 1}"
: "${TITLE:=ResNet-50 -> ResNet-18 at width 1/8 (toy)}"
