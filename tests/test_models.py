"""Re-id model: shapes, unit norms, stripe pooling, torchvision key names, ONNX export parity."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reid_edge.errors import CheckpointError, ConfigError
from reid_edge.train.models import ModelConfig, ResNetBackbone, StripeHeads, build_model
from reid_edge.train.models.resnet import resnet_state_dict_keys


def _tiny(**kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    args: dict[str, object] = {"backbone": "resnet18", "num_stripes": 4, "embed_dim": 64}
    args.update(kwargs)
    return build_model(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("train", [True, False])
def test_output_shapes_and_unit_norms(train: bool) -> None:
    model = _tiny().train(train)
    with torch.no_grad():
        g, s = model(torch.randn(3, 3, 64, 32))
    assert g.shape == (3, 64) and s.shape == (3, 4, 16)
    torch.testing.assert_close(g.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(s.norm(dim=-1), torch.ones(3, 4))
    assert model.config == ModelConfig("resnet18", 4, 64, 1)
    rebuilt = build_model(**dataclasses.asdict(model.config))
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


def test_last_stride_sets_feature_map_size() -> None:
    x = torch.randn(1, 3, 128, 64)
    with torch.no_grad():
        assert ResNetBackbone(18, last_stride=1)(x).shape == (1, 512, 8, 4)
        assert ResNetBackbone(18, last_stride=2)(x).shape == (1, 512, 4, 2)
    with torch.device("meta"):  # structure only: no need to initialise 25M parameters
        backbone = ResNetBackbone(50, last_stride=2)
        assert ResNetBackbone(50, last_stride=1).layer4[0].conv2.stride == (1, 1)
        assert ResNetBackbone(34).out_channels == 512
    # torchvision v1.5 layout: the stride sits on the 3x3 conv and the downsample conv
    assert backbone.layer4[0].conv2.stride == (2, 2) and backbone.layer4[0].conv1.stride == (1, 1)
    assert backbone.layer4[0].downsample[0].stride == (2, 2)
    assert backbone.out_channels == 2048


def test_torchvision_state_dict_names() -> None:
    keys = resnet_state_dict_keys(50)
    # torchvision resnet50 has 320 entries; minus fc.weight and fc.bias: 318.
    # = conv1 (1) + bn1 (5) + 16 bottlenecks x 18 + 4 downsamples x 6
    assert len(keys) == 318 and len(set(keys)) == 318
    for name in (
        "conv1.weight",
        "bn1.running_mean",
        "bn1.num_batches_tracked",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.running_var",
        "layer1.2.conv3.weight",
        "layer2.3.bn2.bias",
        "layer3.5.conv2.weight",
        "layer4.0.downsample.1.weight",
        "layer4.2.bn3.num_batches_tracked",
    ):
        assert name in keys, name
    assert keys[0] == "conv1.weight" and keys[-1] == "layer4.2.bn3.num_batches_tracked"
    assert not any(k.startswith(("fc.", "avgpool")) for k in keys)
    assert "layer3.6.conv1.weight" not in keys and "layer4.3.conv1.weight" not in keys
    # torchvision resnet18/34: 122 / 218 entries with fc
    assert len(resnet_state_dict_keys(18)) == 120 and len(resnet_state_dict_keys(34)) == 216
    with torch.device("meta"):
        r18 = ResNetBackbone(18).state_dict()
    assert "layer1.0.downsample.0.weight" not in r18 and "layer1.1.bn2.weight" in r18
    assert r18["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert r18["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)


def test_head_names_and_init() -> None:
    model = _tiny()
    names = set(model.state_dict())
    assert {"global_head.linear.weight", "global_head.bn.running_var", "stripe_heads.weight"} <= names
    assert all(n.split(".")[0] in {"backbone", "global_head", "stripe_heads"} for n in names)
    assert torch.all(model.global_head.linear.bias == 0) and torch.all(model.global_head.bn.weight == 1)
    assert torch.all(model.global_head.bn.bias == 0)


def test_stripe_pooling_and_heads_match_a_per_stripe_loop() -> None:
    torch.manual_seed(1)
    heads = StripeHeads(in_channels=6, num_stripes=4, stripe_dim=3)
    heads.bn.running_mean.uniform_(-1, 1)
    heads.bn.running_var.uniform_(0.5, 2)
    heads.eval()
    feat = torch.randn(2, 6, 10, 3)  # H=10, S=4: stripes of 2 rows, rows 8 and 9 unused
    pooled = heads.pool(feat)
    for i in range(4):
        torch.testing.assert_close(pooled[:, i], feat[:, :, 2 * i : 2 * i + 2, :].mean(dim=(2, 3)))
    out = heads(feat)
    for i in range(4):
        sl = slice(3 * i, 3 * i + 3)
        lin = nn.functional.linear(pooled[:, i], heads.weight[i], heads.bias[i])
        bn = (lin - heads.bn.running_mean[sl]) / torch.sqrt(heads.bn.running_var[sl] + heads.bn.eps)
        ref = nn.functional.normalize(bn * heads.bn.weight[sl] + heads.bn.bias[sl], dim=-1)
        torch.testing.assert_close(out[:, i], ref)
    with pytest.raises(ConfigError, match="smaller than num_stripes"):
        heads(torch.randn(2, 6, 3, 3))


def test_channels_last_matches() -> None:
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        g, s = model(x)
        model = model.to(memory_format=torch.channels_last)
        g2, s2 = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(g2, g, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s2, s, atol=1e-5, rtol=1e-4)


def test_build_model_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'resnet50'"):
        build_model("resnet51")
    with pytest.raises(ConfigError, match="multiple"):
        build_model("resnet18", num_stripes=6, embed_dim=64)
    with pytest.raises(ConfigError, match="last_stride"):
        build_model("resnet18", last_stride=3)


def test_mobilenetv2_backbone_through_the_registry() -> None:
    model = build_model("mobilenetv2", num_stripes=4, embed_dim=32).eval()
    with torch.no_grad():
        g, s = model(torch.randn(2, 3, 64, 32))
    assert g.shape == (2, 32) and s.shape == (2, 4, 8)


def test_pretrained_file_is_loaded(tmp_path: Path) -> None:
    source = ResNetBackbone(18)
    state = dict(source.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)  # as torchvision's
    path = tmp_path / "resnet18-test.pth"
    torch.save(state, path)
    model = build_model("resnet18", num_stripes=4, embed_dim=64, pretrained=str(path))
    assert model.pretrained_report is not None
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError):
        build_model("resnet18", num_stripes=4, embed_dim=64, pretrained=str(path))


def test_onnx_export_matches_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _tiny().eval()
    path = tmp_path / "tiny.onnx"
    example = torch.randn(1, 3, 64, 32)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["images"],
        output_names=["embedding", "stripes"],
        dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}, "stripes": {0: "batch"}},
    )
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        g, s = model(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    og, os_ = session.run(["embedding", "stripes"], {"images": x.numpy()})
    assert og.shape == (3, 64) and os_.shape == (3, 4, 16)
    np.testing.assert_allclose(og, g.numpy(), atol=1e-4)
    np.testing.assert_allclose(os_, s.numpy(), atol=1e-4)
