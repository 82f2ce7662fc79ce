"""Training continues from the packaged Intel re-ID model (item 3 of the real-data issue).

The PyTorch module built from the shipped ONNX must reproduce ONNX Runtime on real crops before
any adaptation result means anything, and the trainer must be able to change its weights.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid_edge.errors import ConfigError
from reid_edge.models import packaged_path
from reid_edge.preprocess import preprocess_crops
from reid_edge.train.checkpoint import load_checkpoint
from reid_edge.train.config import TrainConfig
from reid_edge.train.method import MethodConfig
from reid_edge.train.models import build_model
from reid_edge.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", ["intel-0288", "intel-0277"])
def test_intel_module_matches_onnx_runtime_on_real_crops(name: str, market_mini: Path) -> None:
    """0277 stores the ImageNet mean in FP16 (123.6875 for 123.675): the entry adds the difference back."""
    import onnxruntime as ort

    files = sorted(market_mini.rglob("*.jpg"))[:: max(1, len(sorted(market_mini.rglob("*.jpg"))) // 24)][:24]
    crops = [cv2.imread(str(f)) for f in files]
    assert len(crops) >= 8 and all(c is not None for c in crops)
    model = build_model(name, num_stripes=8, embed_dim=256).eval()
    with torch.no_grad():
        emb, stripes = model(torch.from_numpy(preprocess_crops(crops, height=256, width=128)))
    # ONNX Runtime on the graph's own input convention: BGR, 0..255
    session = ort.InferenceSession(str(packaged_path(name)), providers=["CPUExecutionProvider"])
    bgr = np.stack([cv2.resize(c, (128, 256), interpolation=cv2.INTER_LINEAR) for c in crops])
    ref = session.run(None, {session.get_inputs()[0].name: bgr.transpose(0, 3, 1, 2).astype(np.float32)})[0]
    cosine = (emb.numpy() * ref).sum(axis=1)
    assert cosine.min() >= 0.999, cosine
    assert stripes.shape == (len(crops), 8, 32)
    assert torch.allclose(stripes.norm(dim=-1), torch.ones(len(crops), 8), atol=1e-5)


def test_imported_model_refuses_sizes_it_cannot_provide() -> None:
    with pytest.raises(ConfigError, match="--embed-dim 256"):
        build_model("intel-0288", num_stripes=8, embed_dim=2048)
    with pytest.raises(ConfigError, match="packaged weights"):
        build_model("intel-0288", num_stripes=8, embed_dim=256, pretrained="imagenet")
    from reid_edge.train.models.heads import ModelConfig
    from reid_edge.train.models.imported import build_imported_model

    with pytest.raises(ConfigError, match="--height 256 --width 128"):
        build_imported_model("intel-0288", ModelConfig(backbone="intel-0288", num_stripes=8, embed_dim=256),
                             height=128, width=64)


def _crops(root: Path, n: int = 16, cams: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)
        img[:32] = rng.integers(0, 255, 3)
        path = root / f"cam{i % cams + 1}" / f"{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
    return root


def test_train_from_intel_0288_changes_its_weights_and_resumes(tmp_path: Path) -> None:
    data = _crops(tmp_path / "crops")
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="intel-0288", epochs=1, batch_size=4,
                      num_stripes=8, embed_dim=256, workers=0, eval_every=0, calib_holdout=2,
                      method=MethodConfig(k=2, m=6, warmup_epochs=0))
    train(cfg, show_progress=False)
    start = build_model("intel-0288", num_stripes=8, embed_dim=256).state_dict()
    trained = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    conv = [k for k in start if k.startswith("backbone.") and start[k].dim() == 4][0]
    assert not torch.equal(start[conv], trained[conv]), "the backbone did not train"
    head = [k for k in start if k.startswith("global_head.")][0]
    assert not torch.equal(start[head], trained[head]), "the imported head did not train"
    # a resumed run rebuilds the same module and loads the checkpoint into it
    train(TrainConfig(**{**cfg.__dict__, "epochs": 2}), resume=True, show_progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2


def test_adapted_intel_0288_exports_with_a_dynamic_batch(tmp_path: Path) -> None:
    import onnxruntime as ort

    from reid_edge.deploy.export_onnx import export_onnx
    from reid_edge.train.evaluate import model_card_for

    model = build_model("intel-0288", num_stripes=8, embed_dim=256).eval()
    path, _card = export_onnx(model, model_card_for(model, 256, 128), tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((3, 3, 256, 128)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g, s = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        tg, ts = model(torch.from_numpy(x))
    assert g.shape == (3, 256) and s.shape == (3, 8, 32)
    assert (g * tg.numpy()).sum(axis=1).min() > 0.9999
    assert np.abs(s - ts.numpy()).max() < 1e-4


def test_train_cli_names_the_missing_flag_for_intel_0288(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reid_edge.cli import main

    data = _crops(tmp_path / "crops", n=8)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--backbone", "intel-0288",
            "--workers", "0", "--eval-every", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--embed-dim 256" in err and "Traceback" not in err
