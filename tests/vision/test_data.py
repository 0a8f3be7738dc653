"""Dataset readers on tiny files in each real on-disk layout, and their layout errors."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from lskd.errors import LskdError
from lskd.vision.data import build_data, read_idx


def _idx(path, arr, compress):
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    data = head + arr.tobytes()
    if compress:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def make_fashion(root, n_train=12, n_val=5, compress=True):
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    _idx(os.path.join(root, "train-images-idx3-ubyte"), rng.integers(0, 256, (n_train, 28, 28)), compress)
    _idx(os.path.join(root, "train-labels-idx1-ubyte"), np.arange(n_train) % 10, compress)
    _idx(os.path.join(root, "t10k-images-idx3-ubyte"), rng.integers(0, 256, (n_val, 28, 28)), compress)
    _idx(os.path.join(root, "t10k-labels-idx1-ubyte"), np.arange(n_val) % 10, compress)


@pytest.mark.parametrize("layout,compress", [("debian", True), ("torchvision_raw", False)])
def test_fashion_mnist_layouts(tmp_path, layout, compress):
    root = tmp_path / "fm"
    files = root / "FashionMNIST" / "raw" if layout == "torchvision_raw" else root
    make_fashion(str(files), compress=compress)
    b = build_data("fashion_mnist", str(root), augment=True)
    assert (len(b.train), len(b.val), b.num_classes, b.in_channels, b.image_size) == (12, 5, 10, 1, 28)
    x, y = b.train[3]
    assert x.shape == (1, 28, 28) and int(y) == 3
    raw = read_idx(str(files / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))))
    x0, _ = b.val[0]
    assert torch.allclose(x0 * 0.3530 + 0.2860, torch.from_numpy(raw[0]).float().unsqueeze(0) / 255, atol=1e-5)


def test_fashion_mnist_missing_files_names_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LskdError, match=r"Fashion-MNIST idx files not found in .*empty.*train-images-idx3-ubyte"):
        build_data("fashion_mnist", str(tmp_path / "empty"))


def test_bad_idx_magic(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(b"\x01\x02\x03\x04" + b"\x00" * 8)
    with pytest.raises(LskdError, match="not an idx file"):
        read_idx(str(p))


def make_cifar(root, classes=10, n=6):
    rng = np.random.default_rng(1)
    if classes == 10:
        d = os.path.join(root, "cifar-10-batches-py")
        os.makedirs(d)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            with open(os.path.join(d, name), "wb") as f:
                pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10)}, f)
        with open(os.path.join(d, "batches.meta"), "wb") as f:
            pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    else:
        d = os.path.join(root, "cifar-100-python")
        os.makedirs(d)
        for name in ("train", "test"):
            with open(os.path.join(d, name), "wb") as f:
                pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(np.arange(n) * 7 % 100),
                             "coarse_labels": [0] * n}, f)
        with open(os.path.join(d, "meta"), "wb") as f:
            pickle.dump({"fine_label_names": [f"f{i}" for i in range(100)]}, f)


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_python_batches(tmp_path, classes):
    make_cifar(str(tmp_path), classes)
    b = build_data(f"cifar{classes}", str(tmp_path))
    assert b.num_classes == classes and b.in_channels == 3 and b.image_size == 32
    assert len(b.train) == (30 if classes == 10 else 6) and len(b.val) == 6
    x, y = b.train[1]
    assert x.shape == (3, 32, 32)
    assert int(y) == (1 if classes == 10 else 7)
    assert b.classes[0] == ("c0" if classes == 10 else "f0")


def test_cifar_missing(tmp_path):
    with pytest.raises(LskdError, match=r"CIFAR-10 python batches not found .*data_batch_1"):
        build_data("cifar10", str(tmp_path))


def _png(path, color):
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (20, 14), color).save(path)


def test_imagefolder(tmp_path):
    for split in ("train", "val"):
        for c, color in (("ant", (255, 0, 0)), ("bee", (0, 255, 0))):
            _png(str(tmp_path / split / c / "a.png"), color)
    b = build_data("imagenet", str(tmp_path), image_size=16)
    assert b.classes == ["ant", "bee"] and b.num_classes == 2
    x, y = b.val[1]
    assert x.shape == (3, 16, 16) and y == 1


def test_imagefolder_missing_val(tmp_path):
    _png(str(tmp_path / "train" / "a" / "x.png"), (0, 0, 0))
    with pytest.raises(LskdError, match=r"expected .*val/<class>/<image>"):
        build_data("imagefolder", str(tmp_path))


def make_cub(root):
    base = os.path.join(root, "CUB_200_2011")
    rows = [(1, "001.Albatross/a.jpg", 1, 1), (2, "001.Albatross/b.jpg", 1, 0), (3, "002.Auklet/c.jpg", 2, 1), (4, "002.Auklet/d.jpg", 2, 0), (5, "002.Auklet/e.jpg", 2, 1)]
    os.makedirs(base)
    with open(os.path.join(base, "images.txt"), "w") as f:
        f.writelines(f"{i} {p}\n" for i, p, _, _ in rows)
    with open(os.path.join(base, "train_test_split.txt"), "w") as f:
        f.writelines(f"{i} {t}\n" for i, _, _, t in rows)
    with open(os.path.join(base, "image_class_labels.txt"), "w") as f:
        f.writelines(f"{i} {c}\n" for i, _, c, _ in rows)
    with open(os.path.join(base, "classes.txt"), "w") as f:
        f.write("1 001.Albatross\n2 002.Auklet\n")
    from PIL import Image

    for _, p, c, _ in rows:
        os.makedirs(os.path.dirname(os.path.join(base, "images", p)), exist_ok=True)
        Image.new("RGB", (30, 20), (c * 50, 0, 0)).save(os.path.join(base, "images", p), format="JPEG")


def test_cub200(tmp_path):
    make_cub(str(tmp_path))
    b = build_data("cub200", str(tmp_path), image_size=16)
    assert (len(b.train), len(b.val), b.num_classes) == (3, 2, 2)
    assert b.classes == ["001.Albatross", "002.Auklet"]
    assert [y for _, y in b.train.items] == [0, 1, 1]
    x, y = b.val[1]
    assert x.shape == (3, 16, 16) and y == 1


def test_cub200_missing_files(tmp_path):
    with pytest.raises(LskdError, match=r"CUB-200-2011 not found .*images.txt, train_test_split.txt"):
        build_data("cub200", str(tmp_path))


def test_unknown_dataset_lists_valid():
    with pytest.raises(LskdError, match=r"unknown dataset 'mnist'; expected one of: .*fashion_mnist"):
        build_data("mnist")


def test_digits():
    b = build_data("digits")
    assert (len(b.train), len(b.val), b.image_size) == (1437, 360, 8)
