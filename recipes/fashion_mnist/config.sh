# Fashion-MNIST grid at CPU scale (sourced by run_all.sh; override any variable from the environment).
# Teachers: SmallCNN (width 0.5) with random crop + flip, LS alpha in ALPHAS.
# Students: MLP (784-256-10) trained by pure KD (lambda = 1) at temperature T from the teacher's final
# checkpoint (last.pt, not the test-selected best.pt). Students see un-augmented images, so the frozen
# teacher's logits are computed once and cached (identical to running the teacher online on those batches).
# Gradient-norm clipping at 1 for every student: without it, one of 16 students (alpha 0, T 64) diverged at lr 0.1
# (high-T KD is close to logit regression and does not saturate like cross-entropy); see docs/VISION.md.
: "${RUNS:=runs/fashion_mnist}"
: "${DATA_ROOT:=}"                     # empty: /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist)
: "${ALPHAS:=0.0 0.1}"
: "${TEMPS:=1 2 3 64}"
: "${TEACHER_SEEDS:=0}"                # one teacher per alpha, shared by all student seeds
: "${STUDENT_SEEDS:=0 1}"
: "${T1_STUDENT_SEEDS:=$STUDENT_SEEDS}"  # the student seeds of the T = 1 cells
: "${THREADS:=1}"                      # torch threads per run
: "${JOBS:=2}"                         # runs in parallel
: "${TEACHER_ARGS:=--arch smallcnn --width 0.5 --epochs 4 --batch-size 128 --lr 0.1 --weight-decay 5e-4 --schedule cosine --warmup-epochs 0.2}"
: "${STUDENT_ARGS:=--arch mlp --width 4 --no-augment --teacher-cache --epochs 10 --batch-size 128 --lr 0.1 --weight-decay 5e-4 --schedule cosine --clip-grad-norm 1}"
: "${TITLE:=SmallCNN teachers -> MLP students (pure KD)}"
