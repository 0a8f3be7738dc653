"""Issue 25: teachers made outside lskd (a torchvision state_dict, a torchvision-references checkpoint) teach a
student on an ImageFolder made here (train/val/test); class lists are checked by name and order; torchvision models
by name train; bad input is one line."""

import argparse
import json
import os

import numpy as np
import pytest
import torch

from helpers import run_vision_cli as run_cli

CLASSES = ["cat", "dog", "eel"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """ROOT/{train,val,test}/<class>/*.png, 32x32 RGB, each class its own colour with noise."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
                img[..., k] += 150
                Image.fromarray(img).save(root / split / name / f"{i}.png")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def torchvision_resnet18(seed=0):
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=len(CLASSES))


def student(folder, out, *extra):
    return ["train-student", "--dataset", "imagefolder", "--data-root", str(folder), "--image-size", "32",
            "--arch", "smallcnn", "--epochs", "1", "--batch-size", "6", "--device", "cpu", "--no-progress",
            "--threads", "1", "--num-workers", "0", "--out-dir", str(out), *extra]


def test_a_state_dict_teacher_teaches_a_student_and_test_is_reported_apart(folder, tmp_path, capsys):
    torch.save(torchvision_resnet18().state_dict(), tmp_path / "resnet18.pth")
    rc, out, err = run_cli(student(folder, tmp_path / "s", "--teacher", str(tmp_path / "resnet18.pth"),
                                   "--teacher-arch", "resnet18", "--teacher-classes", str(folder / "classes.txt")), capsys)
    assert rc == 0, err
    final = json.loads((tmp_path / "s" / "final.json").read_text())
    assert final["teacher_meta"] == {"arch": "resnet18", "source": "state_dict", "file": str(tmp_path / "resnet18.pth")}
    assert final["test_n"] == 12 and 0 <= final["test_top1"] <= 100 and "test top-1" in out
    score = json.loads((tmp_path / "s" / "score.json").read_text())
    assert score["test_top1"] == final["test_top1"]
    # the student's own checkpoint records the data's classes (so that it can teach in turn, checked)
    assert torch.load(tmp_path / "s" / "best.pt", weights_only=True)["meta"]["classes"] == CLASSES


def test_a_references_checkpoint_names_its_architecture_and_unknown_pickles_are_refused(folder, tmp_path, capsys):
    model = torchvision_resnet18()
    args = argparse.Namespace(model="resnet18", lr=0.1, epochs=90)
    torch.save({"model": model.state_dict(), "optimizer": {}, "args": args, "epoch": 89}, tmp_path / "checkpoint.pth")
    rc, _, err = run_cli(["evaluate", "--model", str(tmp_path / "checkpoint.pth"), "--data-root", str(folder),
                          "--image-size", "32", "--classes", str(folder / "classes.txt"), "--out",
                          str(tmp_path / "eval.json")], capsys)
    assert rc == 0, err
    scores = json.loads((tmp_path / "eval.json").read_text())
    assert scores["arch"] == "resnet18" and scores["val_n"] == 12 and scores["test_n"] == 12
    rc2, _, err = run_cli(student(folder, tmp_path / "s", "--teacher", str(tmp_path / "checkpoint.pth")), capsys)
    assert rc2 == 0, err  # and it teaches, its architecture from its own args
    torch.save({"model": model.state_dict(), "args": np.random.default_rng(0)}, tmp_path / "odd.pth")
    rc, _, err = run_cli(student(folder, tmp_path / "s2", "--teacher", str(tmp_path / "odd.pth")), capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "holds pickled objects besides tensors and argparse.Namespace" in err and "--trust-teacher" in err
    rc, _, err = run_cli(student(folder, tmp_path / "s2", "--teacher", str(tmp_path / "odd.pth"), "--trust-teacher",
                                 "--teacher-arch", "resnet18"), capsys)
    assert rc == 0, err
    # `lskd vision evaluate` runs the same checks, each error naming its own options
    rc, _, err = run_cli(["evaluate", "--model", str(tmp_path / "odd.pth"), "--data-root", str(folder)], capsys)
    assert rc == 2 and err.strip().splitlines() == [
        f"lskd vision: error: --model {tmp_path / 'odd.pth'}: holds pickled objects besides tensors and "
        "argparse.Namespace (" + err.split("argparse.Namespace (", 1)[1].split("); ")[0] + "); --trust loads it "
        "anyway (only files you trust: unpickling runs code)"]
    (tmp_path / "swapped.txt").write_text("dog\ncat\neel\n")
    rc, _, err = run_cli(["evaluate", "--model", str(tmp_path / "checkpoint.pth"), "--data-root", str(folder),
                          "--image-size", "32", "--classes", str(tmp_path / "swapped.txt")], capsys)
    assert rc == 2 and err.strip().splitlines() == [
        "lskd vision: error: --model: class 0 is 'dog' for the teacher but 'cat' in the data (the class order "
        "differs; --class-map reorders the teacher's outputs by name)"]


def test_class_order_is_checked_and_a_map_reorders_the_teacher(folder, tmp_path, capsys):
    model = torchvision_resnet18()
    torch.save(model.state_dict(), tmp_path / "w.pth")
    (tmp_path / "swapped.txt").write_text("dog\ncat\neel\n")
    common = ["--teacher", str(tmp_path / "w.pth"), "--teacher-arch", "resnet18", "--teacher-classes",
              str(tmp_path / "swapped.txt")]
    rc, _, err = run_cli(student(folder, tmp_path / "s", *common), capsys)
    assert rc == 2 and err.strip().splitlines() == [
        "lskd vision: error: --teacher: class 0 is 'dog' for the teacher but 'cat' in the data (the class order "
        "differs; --teacher-class-map reorders the teacher's outputs by name)"]
    assert not (tmp_path / "s" / "last.pt").exists()
    # with the map, the teacher's outputs come in the data's order: its logit for 'cat' is its output 1
    from lskd.vision.checkpoints import load_teacher
    from lskd.vision.config import TrainConfig
    from lskd.vision.data import build_data

    data = build_data("imagefolder", str(folder), augment=False, image_size=32)
    cfg = TrainConfig(role="student", teacher=str(tmp_path / "w.pth"), teacher_arch="resnet18",
                      teacher_classes=str(tmp_path / "swapped.txt"), teacher_class_map=True, out_dir="-")
    teacher, _ = load_teacher(cfg, data)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(teacher(x), model.eval()(x)[:, [1, 0, 2]])
    (tmp_path / "two.txt").write_text("cat\ndog\n")
    rc, _, err = run_cli(student(folder, tmp_path / "s", "--teacher", str(tmp_path / "w.pth"), "--teacher-arch",
                                 "resnet18", "--teacher-classes", str(tmp_path / "two.txt")), capsys)
    assert rc == 2 and "--teacher: the teacher has 2 classes, the data 3" in err


@pytest.mark.parametrize("arrange, message", [
    ("missing", "its weights do not fit --teacher-arch resnet18: 2 missing (fc.weight, fc.bias)"),
    ("other_arch", "its weights do not fit --teacher-arch resnet18: "),
    ("no_arch", "--teacher-arch: name the architecture of"),
    ("not_a_model", "not a model file lskd knows"),
])
def test_outside_teacher_bad_input_is_one_line(folder, tmp_path, capsys, arrange, message):
    import torchvision

    sd = torchvision_resnet18().state_dict()
    extra = ["--teacher-arch", "resnet18"]
    if arrange == "missing":
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    elif arrange == "other_arch":
        sd = torchvision.models.mnasnet0_5(num_classes=3).state_dict()
    elif arrange == "no_arch":
        extra = []
    elif arrange == "not_a_model":
        sd = {"weights": [1, 2, 3]}
    torch.save(sd, tmp_path / "t.pth")
    rc, _, err = run_cli(student(folder, tmp_path / "s", "--teacher", str(tmp_path / "t.pth"), *extra), capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "s" / "last.pt").exists()


@pytest.mark.parametrize("arch", ["shufflenet_v2_x0_5", "mnasnet0_5"])
def test_torchvision_architectures_train(folder, tmp_path, capsys, arch):
    """Two torchvision models outside the project's own list train (one short epoch) and teach."""
    rc, _, err = run_cli(["train-teacher", "--dataset", "imagefolder", "--data-root", str(folder), "--image-size", "32",
                          "--arch", arch, "--epochs", "1", "--batch-size", "6", "--device", "cpu", "--no-progress",
                          "--threads", "1", "--num-workers", "0", "--lr", "0.01", "--label-smoothing", "0.1",
                          "--out-dir", str(tmp_path / "t")], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "t" / "final.json").read_text())["arch"] == arch
    if arch.startswith("shufflenet"):  # and it teaches (an lskd checkpoint of a torchvision architecture)
        rc, _, err = run_cli(student(folder, tmp_path / "s", "--teacher", str(tmp_path / "t" / "best.pt")), capsys)
        assert rc == 0, err
        assert json.loads((tmp_path / "s" / "final.json").read_text())["teacher_meta"]["arch"] == arch


def test_imagefolder_without_train_is_one_line(tmp_path, capsys):
    os.makedirs(tmp_path / "d" / "val" / "a")
    rc, _, err = run_cli(["train-teacher", "--dataset", "imagefolder", "--data-root", str(tmp_path / "d"),
                          "--out-dir", str(tmp_path / "o")], capsys)
    assert rc == 2 and f"--data-root: expected {tmp_path / 'd' / 'train'}/<class>/<image>" in err


@pytest.mark.parametrize("workers", ["0", "1"])
def test_an_image_that_does_not_decode_is_refused_naming_it(folder, tmp_path, capsys, workers):
    """A corrupt file in the training images: one line naming it, in the main process or from a loader worker."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(folder, root)
    bad = root / "train" / "dog" / "broken.png"
    bad.write_bytes(b"\\x89PNG not really")
    rc, _, err = run_cli(["train-teacher", "--dataset", "imagefolder", "--data-root", str(root), "--image-size", "32",
                          "--arch", "smallcnn", "--epochs", "1", "--batch-size", "25", "--device", "cpu",
                          "--no-progress", "--num-workers", workers, "--out-dir", str(tmp_path / "t")], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"lskd vision: error: {bad}: cannot be decoded as an image (")


def test_missing_class_list_and_model_files_are_one_line(folder, tmp_path, capsys):
    torch.save(torchvision_resnet18().state_dict(), tmp_path / "w.pth")
    rc, _, err = run_cli(student(folder, tmp_path / "s", "--teacher", str(tmp_path / "w.pth"), "--teacher-arch",
                                 "resnet18", "--teacher-classes", str(tmp_path / "nope.txt")), capsys)
    assert rc == 2 and err.strip().splitlines() == [
        f"lskd vision: error: --teacher-classes: {tmp_path / 'nope.txt'} does not exist (one class name per line)"]
    assert not (tmp_path / "s" / "last.pt").exists()
    rc, _, err = run_cli(["evaluate", "--model", str(tmp_path / "nope.pth"), "--data-root", str(folder)], capsys)
    assert rc == 2 and err.strip().splitlines() == [f"lskd vision: error: --model: {tmp_path / 'nope.pth'} does not exist"]
