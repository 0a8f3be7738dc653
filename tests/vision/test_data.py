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


def test_mean_and_std_replace_the_data_sets_normalisation():
    base = build_data("digits", augment=False)
    own = build_data("digits", augment=False, mean=[0.5], std=[0.25])
    x0, x1 = base.val[0][0], own.val[0][0]
    raw = x0 * base.val.std + base.val.mean  # the image in [0, 1] again
    assert torch.allclose(x1, (raw - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(LskdError, match=r"--mean \[0.5, 0.5, 0.5\]: expected 1 value\(s\), one per channel of digits"):
        build_data("digits", augment=False, mean=[0.5] * 3, std=[0.2] * 3)
    with pytest.raises(LskdError, match="give both"):
        build_data("digits", augment=False, mean=[0.5])


def _aug_set(n=4000, pad=2):
    """TensorImages whose every image is one bright pixel at (0, 0): where it lands says the crop offset and flip."""
    from lskd.vision.data import TensorImages

    images = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    images[:, 0, 0, 0] = 255
    return TensorImages(images, torch.zeros(n), (0.0,), (1.0,), crop_pad=pad, flip=True)


def _offsets(batch, pad=2):
    """(dy, dx, flipped) of each augmented image of a batched fetch."""
    out = []
    for x, _ in batch:
        ys, xs = (x[0] > 0.5).nonzero(as_tuple=True)
        if len(ys) == 0:  # the pixel was cropped away: its shift put it outside
            out.append(None)
            continue
        y, col = int(ys[0]), int(xs[0])
        flipped = col >= 4
        out.append((y, 7 - col if flipped else col, flipped))
    return out


def test_batched_augmentation_distribution_and_determinism():
    """The batched path (DataLoader -> __getitems__): flips with probability 1/2, crop shifts uniform over the
    2p + 1 positions per axis, drawn independently per image, and the same batch again from the same seed."""
    ds = _aug_set()
    torch.manual_seed(0)
    got = _offsets(ds.__getitems__(list(range(len(ds)))))
    seen = [g for g in got if g is not None]
    # the pixel at (0, 0) stays visible only for shifts dy, dx in {0, 1, 2} (offsets 2..4 of 0..4 cut it): 9 of 25
    assert abs(len(seen) / len(got) - 9 / 25) < 0.03
    flips = sum(f for _, _, f in seen) / len(seen)
    assert abs(flips - 0.5) < 0.04
    for axis in (0, 1):
        counts = np.bincount([g[axis] for g in seen], minlength=3)
        assert all(abs(c / len(seen) - 1 / 3) < 0.04 for c in counts), counts
    # independence: the flip does not depend on the shift (and the two axes do not depend on each other)
    both = np.array([[g[0], g[1], g[2]] for g in seen])
    assert abs(np.corrcoef(both[:, 0], both[:, 2])[0, 1]) < 0.06 and abs(np.corrcoef(both[:, 0], both[:, 1])[0, 1]) < 0.06
    torch.manual_seed(0)
    again = _offsets(ds.__getitems__(list(range(len(ds)))))
    assert again == got
    torch.manual_seed(1)
    assert _offsets(ds.__getitems__(list(range(len(ds))))) != got


def test_loader_workers_default_to_the_cores_for_image_files_only():
    from torch.utils.data import Subset

    from lskd.vision.data import ListImages, loader_workers

    tensors = _aug_set(10)
    files = ListImages([("a.png", 0)], transform=None)
    assert loader_workers(-1, tensors) == 0 and loader_workers(-1, Subset(tensors, [0, 1])) == 0
    assert loader_workers(-1, files) == len(os.sched_getaffinity(0)) and loader_workers(3, tensors) == 3
