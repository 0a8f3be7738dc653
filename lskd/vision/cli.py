"""`lskd vision SUBCOMMAND`: train-teacher, train-student, features.

  lskd vision train-teacher --dataset fashion_mnist --arch resnet18 --width 0.25 --label-smoothing 0.1 --out-dir runs/t_a0.1
  lskd vision train-student --dataset fashion_mnist --arch resnet18 --width 0.25 --teacher runs/t_a0.1/best.pt \
      --temperature 3 --out-dir runs/s_a0.1_T3
  lskd report --runs runs --metric top1 --out runs/table      # each run writes a score.json for it
  lskd vision features --checkpoint runs/s_a0.1_T3/best.pt --dataset fashion_mnist --split val --out feats.pt

Multi-process: `torchrun --nproc_per_node N -m lskd.vision.cli train-student ...` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from lskd.errors import LskdError, OptionError

# the loss core's field -> this CLI's flag
VISION_FLAGS = {"kd_lambda": "--kd-lambda", "kd_temperature": "--temperature", "label_smoothing": "--label-smoothing"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 through the dispatcher
        raise LskdError(message)


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _add_train_args(p: argparse.ArgumentParser, role: str) -> None:
    from lskd.vision.train import TrainConfig

    c = TrainConfig()
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=c.dataset, help="fashion_mnist | cifar10 | cifar100 | imagenet | imagefolder | cub200 | digits")
    g.add_argument("--data-root", default="", help="dataset folder (fashion_mnist: default /usr/share/datasets/fashion-mnist)")
    g.add_argument("--image-size", type=int, default=0, help="crop size for ImageFolder/CUB (default 224)")
    g.add_argument("--no-augment", action="store_true", help="no random crop/flip on the training set")
    g.add_argument("--train-subset", type=int, default=0, help="use a fixed random subset of N training images (CPU grids)")
    g.add_argument("--num-workers", type=int, default=0)
    g = p.add_argument_group("model")
    g.add_argument("--arch", default=c.arch, help="resnet18 | resnet34 | resnet50 | mobilenet_v2 | smallcnn | mlp")
    g.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    g.add_argument("--small-input", type=_bool, default=None, help="3x3 stem, no max-pool (default: on for images <= 64 px)")
    g.add_argument("--pretrained", default="", help="initialise from a local torchvision state_dict file")
    g = p.add_argument_group("loss")
    if role == "teacher":
        g.add_argument("--label-smoothing", type=float, default=0.0, help="LS alpha of the teacher, target (1-a)*onehot + a/K")
    else:
        g.add_argument("--teacher", required=True, help="teacher checkpoint (best.pt of a train-teacher run)")
        g.add_argument("--teacher-cache", action="store_true", help="with --no-augment: run the teacher once over the training set and cache its logits")
        g.add_argument("--teacher-arch", default="", help="fail unless the teacher checkpoint is of this architecture")
        g.add_argument("--temperature", "-T", type=float, default=1.0, help="KD temperature T > 0")
        g.add_argument("--kd-lambda", type=float, default=1.0, help="weight of KD_T; 1 = pure KD (paper), else (1-lambda)*CE is added")
        g.add_argument("--label-smoothing", type=float, default=0.0, help="LS of the student's CE term (paper: 0)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=c.epochs)
    g.add_argument("--batch-size", type=int, default=c.batch_size, help="global batch size")
    g.add_argument("--eval-batch-size", type=int, default=c.eval_batch_size)
    g.add_argument("--lr", type=float, default=c.lr)
    g.add_argument("--momentum", type=float, default=c.momentum)
    g.add_argument("--weight-decay", type=float, default=c.weight_decay)
    g.add_argument("--nesterov", action="store_true")
    g.add_argument("--schedule", default=c.schedule, help="step | multistep | cosine | constant")
    g.add_argument("--step-size", type=int, default=c.step_size, help="step schedule: x gamma every N epochs")
    g.add_argument("--milestones", default="", help="multistep: comma-separated epochs")
    g.add_argument("--gamma", type=float, default=c.gamma)
    g.add_argument("--warmup-epochs", type=float, default=0.0)
    g.add_argument("--clip-grad-norm", type=float, default=0.0, help="clip the gradient norm to this value (0: off)")
    g.add_argument("--precision", default="auto", help="auto (fp16 AMP on GPU, fp32 on CPU) | fp32 | bf16 | fp16")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP (GPU)")
    g = p.add_argument_group("run")
    g.add_argument("--out-dir", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--deterministic", action="store_true")
    g.add_argument("--device", default="", help="cpu | cuda | cuda:N (default: cuda if available)")
    g.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    g.add_argument("--log-every", type=int, default=c.log_every, help="log a line every N steps (when no progress bar)")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--no-resume", action="store_true", help="start over even if last.pt exists")
    g.add_argument("--force", action="store_true", help="retrain even if final.json exists")
    g.add_argument("--max-steps-per-epoch", type=int, default=0, help=argparse.SUPPRESS)


def config_from_args(a: argparse.Namespace, role: str):
    from lskd.vision.train import TrainConfig

    try:
        milestones = [int(x) for x in a.milestones.split(",") if x.strip()] if a.milestones else []
    except ValueError:
        raise LskdError(f"--milestones: expected comma-separated integers, got {a.milestones!r}") from None
    return TrainConfig(
        role=role, out_dir=a.out_dir, dataset=a.dataset, data_root=a.data_root, image_size=a.image_size,
        augment=not a.no_augment, train_subset=a.train_subset, arch=a.arch, width=a.width, small_input=a.small_input,
        pretrained=a.pretrained, label_smoothing=a.label_smoothing,
        temperature=getattr(a, "temperature", 1.0), kd_lambda=getattr(a, "kd_lambda", 1.0),
        teacher=getattr(a, "teacher", ""), teacher_arch=getattr(a, "teacher_arch", ""),
        epochs=a.epochs, batch_size=a.batch_size, eval_batch_size=a.eval_batch_size, lr=a.lr, momentum=a.momentum,
        weight_decay=a.weight_decay, nesterov=a.nesterov, schedule=a.schedule, step_size=a.step_size,
        milestones=milestones, gamma=a.gamma, warmup_epochs=a.warmup_epochs, clip_grad_norm=a.clip_grad_norm, precision=a.precision,
        channels_last=a.channels_last, sync_bn=a.sync_bn, seed=a.seed, deterministic=a.deterministic,
        num_workers=a.num_workers, log_every=a.log_every, progress=not a.no_progress, resume=not a.no_resume,
        threads=a.threads, teacher_cache=getattr(a, "teacher_cache", False), force=a.force, max_steps_per_epoch=a.max_steps_per_epoch, device=a.device,
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lskd vision", description="Image classification: LS teachers and KD students (torchvision).")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    _add_train_args(sub.add_parser("train-teacher", help="train a teacher with label smoothing alpha"), "teacher")
    _add_train_args(sub.add_parser("train-student", help="distil a student from a frozen teacher at temperature T"), "student")
    f = sub.add_parser("features", help="dump penultimate features, labels, logits and the final layer of a checkpoint")
    f.add_argument("--checkpoint", required=True)
    f.add_argument("--dataset", default="fashion_mnist")
    f.add_argument("--data-root", default="")
    f.add_argument("--split", default="val", help="train | val (un-augmented)")
    f.add_argument("--batch-size", type=int, default=512)
    f.add_argument("--out", required=True, help=".pt file")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    if not argv:
        p.print_help()
        return 2
    a = p.parse_args(argv)
    if a.cmd in ("train-teacher", "train-student"):
        from lskd.vision.train import run

        try:
            run(config_from_args(a, "teacher" if a.cmd == "train-teacher" else "student"))
        except OptionError as e:
            raise e.with_flag(VISION_FLAGS) from None
        return 0
    if a.cmd == "features":
        import torch
        from torch.utils.data import DataLoader

        from lskd.vision.data import build_data
        from lskd.vision.features import final_layer_weights, penultimate_features
        from lskd.vision.train import model_from_checkpoint

        if a.split not in ("train", "val"):
            raise LskdError(f"--split: expected train or val, got {a.split!r}")
        model, ck = model_from_checkpoint(a.checkpoint) if __import__("os").path.isfile(a.checkpoint) else (_missing(a.checkpoint), None)
        data = build_data(a.dataset, a.data_root, augment=False, image_size=ck["meta"]["image_size"])
        if data.num_classes != ck["meta"]["num_classes"]:
            raise LskdError(f"--checkpoint: {a.checkpoint} has {ck['meta']['num_classes']} classes, dataset {a.dataset} has {data.num_classes}")
        ds = data.train if a.split == "train" else data.val
        feats, labels, logits = penultimate_features(model, DataLoader(ds, batch_size=a.batch_size))
        w, b = final_layer_weights(model)
        from lskd.fileio import atomic_path

        with atomic_path(a.out) as tmp:  # for `lskd diffusion`
            torch.save({"features": feats, "labels": labels, "logits": logits, "fc_weight": w, "fc_bias": b,
                        "classes": data.classes, "meta": ck["meta"]}, tmp)
        print(f"[lskd vision] {feats.shape[0]} x {feats.shape[1]} features -> {a.out}")
        return 0
    p.print_help()
    return 2


def _missing(path: str):
    raise LskdError(f"--checkpoint: {path} does not exist")


if __name__ == "__main__":
    from lskd.cli import run_entry

    sys.exit(run_entry("lskd vision", main, sys.argv[1:]))
