"""Dataset readers by name, each from its standard on-disk layout (nothing is downloaded).

- fashion_mnist: the four idx files (`train-images-idx3-ubyte[.gz]`, ...) in ROOT, ROOT/FashionMNIST/raw
  (torchvision's layout) or, with no root, the Debian package's /usr/share/datasets/fashion-mnist.
- cifar10 / cifar100: the python batches, ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
  and ROOT/cifar-100-python/{train,test,meta} (ROOT may also be that folder itself).
- imagefolder / imagenet: ROOT/train/<class>/<image> and ROOT/val/<class>/<image> (torchvision ImageFolder).
- cub200: CUB-200-2011, ROOT (or ROOT/CUB_200_2011) with images.txt, train_test_split.txt,
  image_class_labels.txt and images/.
- digits: scikit-learn's bundled 8x8 digits (tests), a fixed 1437 / 360 split.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from lskd.errors import LskdError

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    classes: List[str]
    test: Optional[Dataset] = None  # a held-out split reported apart from val (which selects best.pt)


class TensorImages(Dataset):
    """uint8 images (N, C, H, W) + labels; optional random crop (zero padding) and horizontal flip.

    Augmentation draws from torch's global RNG, so a seeded epoch is reproducible.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, scale: float = 255.0, crop_pad: int = 0, flip: bool = False):
        self.images, self.labels = images, labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.scale, self.crop_pad, self.flip = scale, crop_pad, flip

    def __len__(self):
        return len(self.labels)

    def __getitems__(self, idx):
        """Batched fetch (the DataLoader calls this with a batch's indices): same transforms, vectorised."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        x = self.images[idx].float() / self.scale
        b, _, h, w = x.shape
        if self.crop_pad:
            p = self.crop_pad
            x = torch.nn.functional.pad(x, (p, p, p, p))
            off = torch.randint(0, 2 * p + 1, (b, 2))
            out = torch.empty(b, x.shape[1], h, w)
            code = off[:, 0] * (2 * p + 1) + off[:, 1]
            for c in code.unique().tolist():
                sel = (code == c).nonzero().squeeze(1)
                dy, dx = divmod(c, 2 * p + 1)
                out[sel] = x[sel, :, dy:dy + h, dx:dx + w]
            x = out
        if self.flip:
            f = torch.rand(b) < 0.5
            x[f] = x[f].flip(-1)
        x = (x - self.mean) / self.std
        y = self.labels[idx]
        return list(zip(x.unbind(0), y.unbind(0)))

    def __getitem__(self, i):
        x = self.images[i].float() / self.scale  # never in place: the stored tensor may already be float
        if self.crop_pad:
            p = self.crop_pad
            h, w = x.shape[-2:]
            x = torch.nn.functional.pad(x, (p, p, p, p))
            dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
            x = x[:, dy:dy + h, dx:dx + w]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std, self.labels[i]


def loader_workers(requested: int, dataset) -> int:
    """--num-workers; -1: the cores this process may use for data decoded from files, 0 for tensors in memory
    (workers would only copy them)."""
    if requested >= 0:
        return requested
    base = dataset
    while getattr(base, "dataset", None) is not None or getattr(base, "ds", None) is not None:  # Subset, _Indexed
        base = base.dataset if getattr(base, "dataset", None) is not None else base.ds
    if isinstance(base, TensorImages):
        return 0
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ---------------------------------------------------------------- Fashion-MNIST (idx files)

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte", "val_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str) -> np.ndarray:
    """An idx file (MNIST format), gzip-compressed or not."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise LskdError(f"{path}: not an idx file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise LskdError(f"{path}: idx header says {dims} but holds {arr.size} bytes")
    return arr.reshape(dims)


def find_fashion_mnist(root: str) -> dict:
    cands = [os.path.join(root, "FashionMNIST", "raw"), root] if root else [DEBIAN_FASHION_MNIST]
    for d in cands:
        found = {}
        for key, name in IDX_NAMES.items():
            for fn in (name, name + ".gz"):
                if os.path.isfile(os.path.join(d, fn)):
                    found[key] = os.path.join(d, fn)
                    break
        if len(found) == 4:
            return found
    names = ", ".join(v + "[.gz]" for v in IDX_NAMES.values())
    hint = "" if root else " (install it: apt-get install dataset-fashion-mnist, or pass --data-root)"
    raise LskdError(f"--data-root: Fashion-MNIST idx files not found in {' or '.join(cands)}; expected {names}{hint}")


def fashion_mnist(root: str, augment: bool) -> DataBundle:
    f = find_fashion_mnist(root)
    arrays = {k: torch.from_numpy(read_idx(p).copy()) for k, p in f.items()}
    tr = TensorImages(arrays["train_images"].unsqueeze(1), arrays["train_labels"], (0.2860,), (0.3530,), crop_pad=2 if augment else 0, flip=augment)
    va = TensorImages(arrays["val_images"].unsqueeze(1), arrays["val_labels"], (0.2860,), (0.3530,))
    return DataBundle(tr, va, 10, 1, 28, list(FASHION_MNIST_CLASSES))


# ---------------------------------------------------------------- CIFAR python batches


def _unpickle(path: str) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def cifar(root: str, augment: bool, num_classes: int) -> DataBundle:
    if num_classes == 10:
        folder, train_files, test_files, meta, key, names_key = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta", "labels", "label_names"
    else:
        folder, train_files, test_files, meta, key, names_key = "cifar-100-python", ["train"], ["test"], "meta", "fine_labels", "fine_label_names"
    cands = [os.path.join(root, folder), root]
    base = next((d for d in cands if all(os.path.isfile(os.path.join(d, f)) for f in train_files + test_files)), None)
    if base is None:
        raise LskdError(f"--data-root: CIFAR-{num_classes} python batches not found in {' or '.join(cands)}; expected {', '.join(train_files + test_files)} (the 'python version' archive, unpacked)")

    def load(files):
        xs, ys = [], []
        for fn in files:
            d = _unpickle(os.path.join(base, fn))
            if "data" not in d or key not in d:
                raise LskdError(f"{os.path.join(base, fn)}: a CIFAR batch needs 'data' and '{key}' entries, found {sorted(d)}")
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.extend(d[key])
        return torch.from_numpy(np.concatenate(xs)), torch.tensor(ys)

    xtr, ytr = load(train_files)
    xva, yva = load(test_files)
    classes = [str(i) for i in range(num_classes)]
    if os.path.isfile(os.path.join(base, meta)):
        classes = list(_unpickle(os.path.join(base, meta)).get(names_key, classes))
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    tr = TensorImages(xtr, ytr, mean, std, crop_pad=4 if augment else 0, flip=augment)
    return DataBundle(tr, TensorImages(xva, yva, mean, std), num_classes, 3, 32, classes)


# ---------------------------------------------------------------- ImageFolder / ImageNet / CUB


def _image_transforms(augment: bool, image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    from torchvision import transforms as T

    norm = T.Normalize(mean, std)
    resize = int(round(image_size * 256 / 224))
    train = T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), norm]) if augment else T.Compose(
        [T.Resize(resize), T.CenterCrop(image_size), T.ToTensor(), norm])
    val = T.Compose([T.Resize(resize), T.CenterCrop(image_size), T.ToTensor(), norm])
    return train, val


def imagefolder(root: str, augment: bool, image_size: int, norm: tuple = (IMAGENET_MEAN, IMAGENET_STD)) -> DataBundle:
    from torchvision.datasets import ImageFolder

    for split in ("train", "val"):
        d = os.path.join(root, split)
        if not os.path.isdir(d) or not any(os.path.isdir(os.path.join(d, c)) for c in os.listdir(d)):
            raise LskdError(f"--data-root: expected {d}/<class>/<image> (ImageFolder layout with train/ and val/), not found")
    ttr, tva = _image_transforms(augment, image_size, *norm)
    try:
        tr = ImageFolder(os.path.join(root, "train"), ttr, loader=decode_image)
        va = ImageFolder(os.path.join(root, "val"), tva, loader=decode_image)
    except (FileNotFoundError, RuntimeError) as e:
        raise LskdError(f"--data-root: {root}: {e}") from None
    if tr.classes != va.classes:
        raise LskdError(f"--data-root: {root}/train and {root}/val have different class folders ({len(tr.classes)} vs {len(va.classes)})")
    te = None
    if os.path.isdir(os.path.join(root, "test")):  # optional: reported separately from val
        te = ImageFolder(os.path.join(root, "test"), tva, loader=decode_image)
        if te.classes != tr.classes:
            raise LskdError(f"--data-root: {root}/test and {root}/train have different class folders")
    return DataBundle(tr, va, len(tr.classes), 3, image_size, list(tr.classes), te)


def decode_image(path: str):
    """An image file as RGB; one that does not decode is refused naming it (ImageFolder's and CUB's loader)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:  # PIL's UnidentifiedImageError and truncated files are OSErrors
        raise LskdError(f"{path}: cannot be decoded as an image ({e}); remove or replace the file") from None


class ListImages(Dataset):
    def __init__(self, items: List[Tuple[str, int]], transform: Callable):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        x = self.transform(decode_image(path))
        return x, y


CUB_FILES = ("images.txt", "train_test_split.txt", "image_class_labels.txt")


def _read_pairs(path: str) -> dict:
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise LskdError(f"{path}:{n}: expected '<image_id> <value>', got {line.strip()!r}")
            out[parts[0]] = parts[1].strip()
    return out


def cub200(root: str, augment: bool, image_size: int, norm: tuple = (IMAGENET_MEAN, IMAGENET_STD)) -> DataBundle:
    cands = [os.path.join(root, "CUB_200_2011"), root]
    base = next((d for d in cands if all(os.path.isfile(os.path.join(d, f)) for f in CUB_FILES)), None)
    if base is None:
        raise LskdError(f"--data-root: CUB-200-2011 not found in {' or '.join(cands)}; expected {', '.join(CUB_FILES)} and images/")
    images = _read_pairs(os.path.join(base, "images.txt"))
    split = _read_pairs(os.path.join(base, "train_test_split.txt"))
    labels = _read_pairs(os.path.join(base, "image_class_labels.txt"))
    classes = sorted({int(v) for v in labels.values()})
    cls_names = [str(c) for c in classes]
    if os.path.isfile(os.path.join(base, "classes.txt")):
        names = _read_pairs(os.path.join(base, "classes.txt"))
        cls_names = [names.get(str(c), str(c)) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    train, val = [], []
    for img_id, rel in images.items():
        if img_id not in split or img_id not in labels:
            raise LskdError(f"{base}: image id {img_id} of images.txt is missing from train_test_split.txt or image_class_labels.txt")
        path = os.path.join(base, "images", rel)
        (train if split[img_id] == "1" else val).append((path, index[int(labels[img_id])]))
    missing = [p for p, _ in train[:1] + val[:1] if not os.path.isfile(p)]
    if missing:
        raise LskdError(f"--data-root: {missing[0]} listed in images.txt does not exist (expected under {base}/images/)")
    ttr, tva = _image_transforms(augment, image_size, *norm)
    return DataBundle(ListImages(train, ttr), ListImages(val, tva), len(classes), 3, image_size, cls_names)


# ---------------------------------------------------------------- sklearn digits


def digits(augment: bool) -> DataBundle:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)  # (N,1,8,8), values 0..16
    y = torch.tensor(d.target)
    n = 1437
    tr = TensorImages(x[:n], y[:n], (0.3,), (0.4,), scale=16.0)
    va = TensorImages(x[n:], y[n:], (0.3,), (0.4,), scale=16.0)
    return DataBundle(tr, va, 10, 1, 8, [str(i) for i in range(10)])


DATASETS = ("cifar10", "cifar100", "cub200", "digits", "fashion_mnist", "imagefolder", "imagenet")


def build_data(name: str, root: str = "", augment: bool = True, image_size: Optional[int] = None,
               mean: Optional[List[float]] = None, std: Optional[List[float]] = None) -> DataBundle:
    """The data set by name; `mean`/`std` (one value per channel) replace its normalisation (default: the data
    set's own statistics; ImageNet's for image folders and CUB, what ImageNet-pretrained models expect)."""
    if name not in DATASETS:
        raise LskdError(f"--dataset: unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    if name not in ("digits", "fashion_mnist") and not root:
        raise LskdError(f"--data-root: dataset {name} needs a data root")
    if root and not os.path.isdir(root):
        raise LskdError(f"--data-root: {root} is not a directory")
    if bool(mean) != bool(std) or (mean and len(mean) != len(std)):
        raise LskdError(f"--mean {mean} --std {std}: give both, with one value per channel each")
    if std and min(std) <= 0:
        raise LskdError(f"--std {std}: expected values > 0")
    norm = (tuple(mean), tuple(std)) if mean else (IMAGENET_MEAN, IMAGENET_STD)
    if name == "digits":
        data = digits(augment)
    elif name == "fashion_mnist":
        data = fashion_mnist(root, augment)
    elif name in ("cifar10", "cifar100"):
        data = cifar(root, augment, 10 if name == "cifar10" else 100)
    elif name == "cub200":
        data = cub200(root, augment, image_size or 224, norm)
    else:
        data = imagefolder(root, augment, image_size or 224, norm)
    if mean:
        if len(mean) != data.in_channels:
            raise LskdError(f"--mean {mean}: expected {data.in_channels} value(s), one per channel of {name}")
        for ds in (data.train, data.val, data.test):
            if isinstance(ds, TensorImages):
                ds.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
                ds.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return data
