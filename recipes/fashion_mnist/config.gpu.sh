# Fashion-MNIST, gpu profile: the paper's ResNet-50 -> ResNet-18 pair on one H100 in under 9 minutes, set-up
# included. Run it through recipes/gpu/fashion_mnist.sh (docs/GPU.md), which points DATA_ROOT at the carried
# idx files and picks the students' epochs (at most the --epochs below) from the teachers' measured speed,
# so that a slower machine still ends with a full grid.
# Both networks with the CIFAR-style stem for 28x28 images (3x3 stride-1 first convolution, no max-pool;
# automatic for images <= 64 px), random crop (pad 2) + horizontal flip, SGD with Nesterov momentum, cosine
# schedule after half an epoch of warm-up, batch 512, bf16 autocast, channels-last.
# Students: pure KD (lambda 1, the paper's) from the frozen teacher's final checkpoint run online on the same
# augmented batch, gradient-norm clipping at 1 (config.sh: T = 64 diverged once without it).
# Teachers train two at once, students eight at once (JOBS=8), each with two torch threads and its own
# data-loader workers (the batch augmentation runs at about 60,000 images/s per core: docs/GPU.md).
: "${RUNS:=runs/fashion_mnist_gpu}"
: "${DATA_ROOT:=}"
: "${ALPHAS:=0.0 0.1}"
: "${TEMPS:=1 2 3 64}"
: "${TEACHER_SEEDS:=0}"
: "${STUDENT_SEEDS:=0}"
: "${T1_STUDENT_SEEDS:=$STUDENT_SEEDS}"  # the student seeds of the T = 1 cells
: "${THREADS:=2}"
: "${JOBS:=8}"
: "${TEACHER_ARGS:=--arch resnet50 --epochs 8 --batch-size 512 --eval-batch-size 1000 --lr 0.2 --nesterov --weight-decay 5e-4 --schedule cosine --warmup-epochs 0.5 --precision bf16 --channels-last --num-workers 2}"
: "${STUDENT_ARGS:=--arch resnet18 --epochs 8 --batch-size 512 --eval-batch-size 1000 --lr 0.2 --nesterov --weight-decay 5e-4 --schedule cosine --warmup-epochs 0.5 --precision bf16 --channels-last --num-workers 1 --clip-grad-norm 1}"
: "${TITLE:=ResNet-50 teachers -> ResNet-18 students (pure KD)}"
