"""Penultimate-layer features (the input of the final linear layer) for the diffusion analysis."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from lskd.vision.models import final_layer


@torch.no_grad()
def penultimate_features(model: nn.Module, loader: DataLoader, device="cpu") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features (N, D), labels (N,), logits (N, K)) in eval mode; features are what the final fc sees."""
    fc = final_layer(model)
    store = []
    handle = fc.register_forward_pre_hook(lambda mod, inp: store.append(inp[0].detach().float().flatten(1).cpu()))
    feats, labels, logits = [], [], []
    was_training = model.training
    model.eval()
    try:
        for x, y in loader:
            store.clear()
            out = model(x.to(device))
            feats.append(store[-1])
            labels.append(torch.as_tensor(y).cpu())
            logits.append(out.float().cpu())
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(feats), torch.cat(labels), torch.cat(logits)


def final_layer_weights(model: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """(W (K, D), b (K,)) of the classifier; b is zeros when the layer has no bias."""
    fc = final_layer(model)
    w = fc.weight.detach().float().cpu()
    b = fc.bias.detach().float().cpu() if fc.bias is not None else torch.zeros(w.size(0))
    return w, b
