"""Architectures by name, pretrained init from a local file, penultimate features."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lskd.errors import LskdError
from lskd.vision.features import final_layer_weights, penultimate_features
from lskd.vision.models import build_model


@pytest.mark.parametrize("name,width,small,size,ch", [
    ("resnet18", 0.125, True, 28, 1), ("resnet34", 0.125, True, 32, 3), ("resnet50", 0.125, False, 64, 3),
    ("mobilenet_v2", 0.25, True, 32, 3), ("smallcnn", 0.5, True, 28, 1), ("mlp", 1.0, True, 8, 1)])
def test_models_forward(name, width, small, size, ch):
    m = build_model(name, 7, ch, small, width, size).eval()
    with torch.no_grad():
        assert m(torch.randn(2, ch, size, size)).shape == (2, 7)


def test_width1_resnet_matches_torchvision_names():
    from torchvision.models import resnet18

    assert {k: v.shape for k, v in build_model("resnet18", 1000).state_dict().items()} == {k: v.shape for k, v in resnet18().state_dict().items()}


def test_small_input_resnet_has_3x3_stem_no_maxpool():
    m = build_model("resnet18", 10, 1, True, 0.25, 28)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1) and isinstance(m.maxpool, torch.nn.Identity)


def test_pretrained_from_local_file(tmp_path):
    src = build_model("resnet18", 1000, 3, False, 0.125)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    dst = build_model("resnet18", 10, 3, False, 0.125, pretrained=str(tmp_path / "w.pth"))
    assert torch.equal(dst.layer3[0].conv1.weight, src.layer3[0].conv1.weight)
    assert dst.fc.out_features == 10
    grey = build_model("resnet18", 10, 1, False, 0.125, pretrained=str(tmp_path / "w.pth"))
    assert torch.allclose(grey.conv1.weight, src.conv1.weight.sum(1, keepdim=True))


def test_pretrained_errors(tmp_path):
    with pytest.raises(LskdError, match="--pretrained: weights file .* does not exist"):
        build_model("resnet18", 10, pretrained=str(tmp_path / "nope.pth"))
    torch.save(build_model("resnet50", 10, 3, False, 0.125).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(LskdError, match="--pretrained: .*(does not fit|shares almost no)"):
        build_model("resnet18", 10, 3, False, 0.125, pretrained=str(tmp_path / "r50.pth"))


def test_unknown_model_lists_valid():
    with pytest.raises(LskdError, match=r"unknown model 'resnet9000'; expected one of the project's \(.*mobilenet_v2.*resnet18.*\) "
                                        r"or a torchvision classification model"):
        build_model("resnet9000", 10)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "mnasnet0_5", "vit_b_16", "convnext_tiny", "densenet121"])
def test_any_torchvision_model_with_the_data_s_classes_and_its_final_layer(name):
    """torchvision's models by name, built for the data's class count; the final linear layer is found (the
    penultimate features' source) and a grey image goes in as three equal channels."""
    from lskd.vision.models import final_layer

    m = build_model(name, 7, in_channels=1)
    assert final_layer(m).out_features == 7
    if name.startswith(("shufflenet", "mnasnet")):
        assert m.eval()(torch.rand(2, 1, 64, 64)).shape == (2, 7)
    with pytest.raises(LskdError, match=f"--width 0.5: only the project's own models .* {name} is torchvision's"):
        build_model(name, 7, width=0.5)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "smallcnn"])
def test_penultimate_features_reproduce_logits(name):
    torch.manual_seed(0)
    m = build_model(name, 5, 3, True, 0.25, 16)
    x = torch.randn(10, 3, 16, 16)
    feats, labels, logits = penultimate_features(m, DataLoader(TensorDataset(x, torch.arange(10) % 5), batch_size=4))
    w, b = final_layer_weights(m)
    assert feats.shape[0] == 10 and w.shape == (5, feats.shape[1])
    assert torch.allclose(feats @ w.T + b, logits, atol=1e-5)
    assert labels.tolist() == (torch.arange(10) % 5).tolist()
