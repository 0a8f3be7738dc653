# CUB-200-2011 grid with the paper's hyper-parameters (docs/PAPER.md; the authors' code). GPUs only.
# DATA_ROOT: the folder holding CUB_200_2011/ (images.txt, train_test_split.txt, image_class_labels.txt, images/).
: "${DATA_ROOT:?set DATA_ROOT to the folder that holds CUB_200_2011/}"
: "${RUNS:=runs/cub200}"
# Teachers start from the ImageNet ResNet-50 teacher of the same alpha (recipes/imagenet):
: "${IMAGENET_RUNS:=runs/imagenet}"    # expects IMAGENET_RUNS/teacher_r50_a{alpha}_s0/last.pt
# Students start from ImageNet-pretrained torchvision weights, read from local files (nothing is downloaded):
: "${PRETRAINED_DIR:=weights}"         # resnet18-f37072fd.pth, resnet50-0676ba61.pth, mobilenet_v2-b0353104.pth
: "${NGPUS:=1}"
: "${WORKERS:=8}"
: "${ALPHAS:=0.0 0.1}"
: "${TEMPS:=1 2 3 64}"
: "${STUDENTS:=resnet18 resnet50 mobilenet_v2}"   # R50 -> R18, R50 -> R50, R50 -> MobileNetV2
: "${SEEDS:=0}"
# Teachers: lr 0.01, 90 epochs (paper). Assumed where PAPER.md is silent: wd 1e-4, x0.1 every 30 epochs, batch 64.
: "${TEACHER_ARGS:=--arch resnet50 --epochs 90 --batch-size 64 --lr 0.01 --momentum 0.9 --weight-decay 1e-4 --schedule step --step-size 30 --gamma 0.1}"
# Students: lr 0.01, wd 1e-3, 200 epochs (paper). Assumed: 5 warm-up epochs and x0.1 every 80 (the ImageNet student schedule), batch 64.
: "${STUDENT_ARGS:=--epochs 200 --batch-size 64 --lr 0.01 --momentum 0.9 --weight-decay 1e-3 --schedule step --step-size 80 --gamma 0.1 --warmup-epochs 5 --kd-lambda 1}"
: "${COMMON_ARGS:=--dataset cub200 --image-size 224 --precision fp16}"
declare -gA PRETRAINED_FILE=([resnet18]=resnet18-f37072fd.pth [resnet50]=resnet50-0676ba61.pth [mobilenet_v2]=mobilenet_v2-b0353104.pth)
