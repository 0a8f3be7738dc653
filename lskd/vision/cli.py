"""`lskd vision SUBCOMMAND`: train-teacher, train-student, evaluate, features.

  lskd vision train-teacher --dataset fashion_mnist --arch resnet18 --width 0.25 --label-smoothing 0.1 --out-dir runs/t_a0.1
  lskd vision train-student --dataset fashion_mnist --arch resnet18 --width 0.25 --teacher runs/t_a0.1/best.pt \
      --temperature 3 --out-dir runs/s_a0.1_T3
  lskd report --runs runs --metric top1 --out runs/table      # each run writes a score.json for it
  lskd vision features --checkpoint runs/s_a0.1_T3/best.pt --dataset fashion_mnist --split val --out feats.pt
  lskd vision evaluate --model resnet18-weights.pth --arch resnet18 --classes classes.txt --data-root DIR

Multi-process: `torchrun --nproc_per_node N -m lskd.vision.cli train-student ...` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from lskd.errors import LskdError, OptionError
from lskd.options import add_options, from_args
from lskd.vision.config import TrainConfig, float_list

# the loss core's field -> this CLI's flag
VISION_FLAGS = {"kd_lambda": "--kd-lambda", "kd_temperature": "--temperature", "label_smoothing": "--label-smoothing"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 through the dispatcher
        raise LskdError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lskd vision", description="Image classification: LS teachers and KD students (torchvision).")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    for role, help in (("teacher", "train a teacher with label smoothing alpha"),
                       ("student", "distil a student from a frozen teacher at temperature T")):
        add_options(sub.add_parser(f"train-{role}", help=help), TrainConfig, role=role)
    e = sub.add_parser("evaluate", help="score a model file (lskd checkpoint, torchvision weights, references "
                                        "checkpoint) on a dataset's val and test splits, without training")
    e.add_argument("--model", required=True, help="the model file (as --teacher takes it)")
    e.add_argument("--arch", default="", help="its architecture (required for a weights file / state_dict)")
    e.add_argument("--classes", default="", help="its classes, one per line, checked against the data's")
    e.add_argument("--class-map", action="store_true", help="reorder its outputs to the data's classes by name")
    e.add_argument("--trust", action="store_true", help="unpickle classes besides tensors (only files you trust)")
    e.add_argument("--dataset", default="imagefolder")
    e.add_argument("--data-root", default="")
    e.add_argument("--image-size", type=int, default=0)
    e.add_argument("--mean", type=float_list, default=[], help="per-channel normalisation mean (default: the data's)")
    e.add_argument("--std", type=float_list, default=[], help="per-channel normalisation std, with --mean")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--device", default="")
    e.add_argument("--out", default="", help="write the scores here as JSON too")
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
            run(from_args(TrainConfig, a, role=a.cmd[len("train-"):]))
        except OptionError as e:
            raise e.with_flag(VISION_FLAGS) from None
        return 0
    if a.cmd == "evaluate":
        return evaluate_model(a)
    if a.cmd == "features":
        import torch
        from torch.utils.data import DataLoader

        from lskd.vision.data import build_data
        from lskd.vision.features import final_layer_weights, penultimate_features
        from lskd.vision.checkpoints import model_from_checkpoint

        if a.split not in ("train", "val"):
            raise LskdError(f"--split: expected train or val, got {a.split!r}")
        model, ck = model_from_checkpoint(a.checkpoint) if __import__("os").path.isfile(a.checkpoint) else (_missing(a.checkpoint), None)
        meta = ck["meta"]
        data = build_data(a.dataset, a.data_root, augment=False, image_size=meta["image_size"],
                          mean=meta.get("mean"), std=meta.get("std"))  # as the model was trained
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


def evaluate_model(a: argparse.Namespace) -> int:
    """`lskd vision evaluate`: the model as a teacher would be loaded (its file kind, class checks), scored on val
    (and test when the data has one)."""
    import json
    import os

    from lskd.fileio import write_json
    from lskd.vision.checkpoints import TeacherOptions, load_teacher
    from lskd.vision.data import build_data
    from lskd.vision.distributed import Distributed
    from lskd.vision.train import evaluate

    if not os.path.isfile(a.model):
        raise LskdError(f"--model: {a.model} does not exist")
    cfg = TrainConfig(role="student", dataset=a.dataset, data_root=a.data_root, image_size=a.image_size,
                      teacher=a.model, teacher_arch=a.arch, teacher_classes=a.classes, teacher_class_map=a.class_map,
                      trust_teacher=a.trust, eval_batch_size=a.batch_size, device=a.device, out_dir="-",
                      mean=a.mean, std=a.std)
    data = build_data(cfg.dataset, cfg.data_root, augment=False, image_size=cfg.image_size or None, mean=cfg.mean,
                      std=cfg.std)
    d = Distributed(cfg.device)
    model, meta = load_teacher(cfg, data, TeacherOptions("--model", "--arch", "--classes", "--class-map", "--trust"))
    scores = evaluate(model.to(d.device), data.val, cfg, d, "fp32")
    if data.test is not None:
        scores.update(evaluate(model, data.test, cfg, d, "fp32", split="test"))
    scores.update(model=a.model, arch=meta.get("arch"), dataset=a.dataset, data_root=a.data_root)
    print(json.dumps(scores, indent=1))
    if a.out:
        write_json(a.out, scores)
    return 0


def _missing(path: str):
    raise LskdError(f"--checkpoint: {path} does not exist")


if __name__ == "__main__":
    from lskd.cli import run_entry

    sys.exit(run_entry("lskd vision", main, sys.argv[1:]))
