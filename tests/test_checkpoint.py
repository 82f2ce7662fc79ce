"""Checkpoints: atomic save, weights_only load, load_model, clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_edge.card import ModelCard
from reid_edge.errors import CheckpointError
from reid_edge.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_checkpoint,
)
from reid_edge.train.config import TrainConfig
from reid_edge.train.evaluate import model_card_for
from reid_edge.train.method import MethodConfig, SelectiveContrastive
from reid_edge.train.models import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _save(path: Path) -> tuple[torch.nn.Module, SelectiveContrastive]:
    torch.manual_seed(0)
    model = build_model("resnet18", num_stripes=2, embed_dim=32, last_stride=1)
    method = SelectiveContrastive(12, 32, 2, torch.arange(12) % 3, MethodConfig(k=2, m=4))
    method.init_banks(torch.arange(12), torch.nn.functional.normalize(torch.randn(12, 32), dim=1),
                      torch.nn.functional.normalize(torch.randn(12, 2, 16), dim=2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 16))[0].sum().backward()
    opt.step()
    gen = torch.Generator()
    gen.manual_seed(5)
    save_checkpoint(path, model=model, method=method, optimizer=opt, epoch=3, config=TrainConfig(data="d"),
                    dataset_fingerprint="abc", rng_state=capture_rng_state(gen), calibration_images=["a.jpg"],
                    card=model_card_for(model, 32, 16, 0.5), metrics={"mAP": 0.5}, best_metric=0.5,
                    history=[{"epoch": 1, "loss": 1.0, "mAP": None}])
    return model, method


def test_roundtrip_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "run" / "last.pt"
    model, method = _save(path)
    raw = torch.load(path, weights_only=True)  # only plain containers and tensors inside
    assert raw["format"] == "reid-edge-checkpoint" and raw["version"] == 1
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3 and ckpt["dataset_fingerprint"] == "abc"
    assert ckpt["calibration_images"] == ["a.jpg"]
    assert ckpt["train_config"]["method"]["k"] == 7 and ckpt["train_config"]["batch_size"] == 8
    assert ckpt["model_config"] == {"backbone": "resnet18", "num_stripes": 2, "embed_dim": 32, "last_stride": 1}
    assert torch.equal(ckpt["method"]["global_bank"], method.global_bank)
    assert ckpt["optimizer"]["state"]  # momentum buffers
    card = ModelCard.from_dict(ckpt["card"])
    assert (card.global_dim, card.num_stripes, card.stripe_dim, card.input_height) == (32, 2, 16, 32)
    assert ckpt["history"][0]["mAP"] is None
    assert not list(path.parent.glob(".*tmp"))  # atomic write left no temporary file


def test_load_model_strict_eval(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    model, _ = _save(path)
    loaded, card, _ = load_model(path)
    assert not loaded.training and card.backbone == "resnet18"
    model.eval()
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_rng_state_roundtrip() -> None:
    gen = torch.Generator()
    gen.manual_seed(1)
    state = capture_rng_state(gen)
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    restore_rng_state(state, gen)
    second = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2] == second[2] and torch.equal(first[3], second[3])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a readable reid-edge checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a reid-edge checkpoint"):
        load_model(tmp_path / "other.pt")
    torch.save({"format": "reid-edge-checkpoint", "version": 99}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "new.pt")
    path = tmp_path / "bad.pt"
    _save(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"].pop(next(iter(ckpt["model"])))
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(path)
