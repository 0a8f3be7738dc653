"""Architectures by name: the project's own (ResNet-18/34/50 and MobileNetV2 with small-input variants and a width
multiplier; `smallcnn` and `mlp`, tiny models for tests and quick CPU runs) and every other torchvision
classification model (`torchvision.models.list_models(module=torchvision.models)`, as torchvision's references take
them), built with the data's class count.

`small_input=True` is the 28x28 / 32x32 form: 3x3 stride-1 stem and no max-pool (ResNet), a stride-1
first convolution (MobileNetV2). `width` scales every layer's channel count (CPU grids); width 1 keeps
torchvision's parameter names and shapes, so ImageNet weights from a local file load into it. Other torchvision
models take neither (their own architecture as published); grey images reach them as three equal channels.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn
from torchvision.models import mobilenet_v2, resnet

from lskd.errors import LskdError


def _scaled(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


def _resnet(block, layers, num_classes: int, in_channels: int, small_input: bool, width: float) -> nn.Module:
    m = resnet.ResNet(block, layers, num_classes=num_classes)
    if width == 1.0 and in_channels == 3 and not small_input:
        return m
    w = [_scaled(c, width) for c in (64, 128, 256, 512)]
    m.inplanes = w[0]
    m.dilation = 1
    if small_input:
        m.conv1 = nn.Conv2d(in_channels, w[0], kernel_size=3, stride=1, padding=1, bias=False)
        m.maxpool = nn.Identity()
    else:
        m.conv1 = nn.Conv2d(in_channels, w[0], kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(w[0])
    m.layer1 = m._make_layer(block, w[0], layers[0])
    m.layer2 = m._make_layer(block, w[1], layers[1], stride=2)
    m.layer3 = m._make_layer(block, w[2], layers[2], stride=2)
    m.layer4 = m._make_layer(block, w[3], layers[3], stride=2)
    m.fc = nn.Linear(w[3] * block.expansion, num_classes)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return m


def _mobilenet_v2(num_classes: int, in_channels: int, small_input: bool, width: float) -> nn.Module:
    m = mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width)
    first = m.features[0][0]
    if in_channels != 3 or small_input:
        m.features[0][0] = nn.Conv2d(
            in_channels, first.out_channels, kernel_size=3, stride=1 if small_input else 2, padding=1, bias=False
        )
        nn.init.kaiming_normal_(m.features[0][0].weight, mode="fan_out")
    if small_input:
        # 32x32 input: keep two more stride-2 stages at stride 1 (overall stride 8, as CIFAR variants do).
        for idx in (2,):
            conv = m.features[idx].conv[1][0]
            conv.stride = (1, 1)
    return m


class SmallCNN(nn.Module):
    """conv(32)-conv(64)-pool-conv(128)-global-pool-fc: for tests and fast CPU grids."""

    def __init__(self, num_classes: int, in_channels: int = 1, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = (_scaled(c, width) for c in (32, 64, 128))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


class MLP(nn.Module):
    """Flatten-linear-ReLU-linear, no batch norm (exact DDP-vs-single-process tests)."""

    def __init__(self, num_classes: int, in_features: int, width: float = 1.0):
        super().__init__()
        h = _scaled(64, width)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(in_features, h), nn.ReLU())
        self.fc = nn.Linear(h, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


# name -> builder(num_classes, in_channels, small_input, width, image_size)
MODELS: Dict[str, Callable[..., nn.Module]] = {
    "resnet18": lambda k, c, s, w, hw: _resnet(resnet.BasicBlock, [2, 2, 2, 2], k, c, s, w),
    "resnet34": lambda k, c, s, w, hw: _resnet(resnet.BasicBlock, [3, 4, 6, 3], k, c, s, w),
    "resnet50": lambda k, c, s, w, hw: _resnet(resnet.Bottleneck, [3, 4, 6, 3], k, c, s, w),
    "mobilenet_v2": lambda k, c, s, w, hw: _mobilenet_v2(k, c, s, w),
    "smallcnn": lambda k, c, s, w, hw: SmallCNN(k, c, w),
    "mlp": lambda k, c, s, w, hw: MLP(k, c * hw * hw, w),
}


class GreyToRGB(nn.Module):
    """One grey channel repeated three times: a torchvision model's first convolution takes RGB."""

    def forward(self, x):
        return x.expand(-1, 3, -1, -1) if x.size(1) == 1 else x


def torchvision_names() -> List[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_model(name: str, num_classes: int, in_channels: int, width: float) -> nn.Module:
    import torchvision

    if width != 1.0:
        raise LskdError(f"--width {width}: only the project's own models ({', '.join(sorted(MODELS))}) take a width "
                        f"multiplier; {name} is torchvision's as published")
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if name.startswith(("inception", "googlenet")):
        model.aux_logits, model.AuxLogits = False, None  # one output, as the other classifiers
        if hasattr(model, "aux1"):
            model.aux1 = model.aux2 = None
    return nn.Sequential(GreyToRGB(), model) if in_channels == 1 else model


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    small_input: bool = False,
    width: float = 1.0,
    image_size: int = 224,
    pretrained: str = "",
) -> nn.Module:
    if not (width > 0):
        raise LskdError(f"--width: expected a positive width multiplier, got {width}")
    if name in MODELS:
        model = MODELS[name](num_classes, in_channels, small_input, width, image_size)
    elif name in torchvision_names():
        model = torchvision_model(name, num_classes, in_channels, width)
    else:
        raise LskdError(f"--arch: unknown model {name!r}; expected one of the project's ({', '.join(sorted(MODELS))}) "
                        "or a torchvision classification model (torchvision.models.list_models(module="
                        "torchvision.models))")
    if pretrained:
        load_pretrained(model, pretrained)
    return model


def final_layer(model: nn.Module) -> nn.Linear:
    """The classifier layer whose input is the penultimate representation (torchvision's names: fc, classifier,
    head, heads.head; the last Linear of a Sequential)."""
    m = model.module if hasattr(model, "module") else model
    if isinstance(m, nn.Sequential) and isinstance(m[0], GreyToRGB):
        m = m[1]
    for name in ("fc", "classifier", "head", "heads"):
        layer = getattr(m, name, None)
        if isinstance(layer, nn.Sequential):
            layer = next((x for x in reversed(layer) if isinstance(x, (nn.Linear, nn.Sequential))), None)
            if isinstance(layer, nn.Sequential):
                layer = next((x for x in reversed(layer) if isinstance(x, nn.Linear)), None)
        if isinstance(layer, nn.Linear):
            return layer
    raise LskdError(f"{type(m).__name__}: no final linear layer (fc, classifier, head or heads) to read the "
                    "penultimate features from")


def load_pretrained(model: nn.Module, path: str) -> Tuple[list, list]:
    """Initialise from a local torchvision-style state_dict (or an lskd checkpoint); no hub download.

    The classifier is skipped when its class count differs; a first convolution with a different
    number of input channels is summed over the RGB channels (grey input). Any other mismatch is an error.
    """
    if not os.path.isfile(path):
        raise LskdError(f"--pretrained: weights file {path} does not exist (a local torchvision state_dict .pth is expected; nothing is downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise LskdError(f"--pretrained: cannot read {path} as a torch state_dict: {(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    own = model.state_dict()
    fc = final_layer(model)
    fc_names = {n for n, p in model.named_parameters() if any(p is q for q in fc.parameters())}
    out = {}
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k not in own:
            continue
        if own[k].shape != v.shape:
            if k in fc_names:
                continue
            if v.dim() == 4 and own[k].dim() == 4 and v.shape[1] == 3 and own[k].shape[1] == 1 and v.shape[2:] == own[k].shape[2:]:
                out[k] = v.sum(dim=1, keepdim=True)
                continue
            raise LskdError(
                f"--pretrained: {path} does not fit this model: {k} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}"
            )
        out[k] = v
    missing = [k for k in own if k not in out and not k.endswith("num_batches_tracked")]
    non_fc_missing = [k for k in missing if k not in fc_names]
    if len(out) == 0 or len(non_fc_missing) > len(own) // 2:
        raise LskdError(f"--pretrained: {path} shares almost no parameters with this model ({len(out)} of {len(own)} matched); wrong architecture?")
    model.load_state_dict(out, strict=False)
    return missing, [k for k in state if k not in own]
