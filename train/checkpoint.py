"""Training checkpoints: atomic, self-describing, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors, dicts, lists and plain scalars/strings only:

- ``format`` ``"reid-edge-checkpoint"``, ``version`` 1;
- ``model_config`` (``ModelConfig`` as a dict) and ``model`` (state_dict);
- ``method`` (SelectiveContrastive state_dict: the memory banks), ``optimizer``, ``scaler``;
- ``epoch``: the number of finished epochs (training resumes at this 0-based epoch);
- ``train_config`` (``TrainConfig`` as a dict), ``dataset_fingerprint`` (sha256 over the
  training crops' relative paths and sizes);
- ``rng``: torch/CUDA/numpy/python and selection-generator states as tensors and lists;
- ``calibration_images``: training crops held aside for INT8 calibration (never query/gallery);
- ``card`` (ModelCard dict), ``history`` (per-epoch metrics), ``metrics``, ``best_metric``.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any, cast

import numpy as np

from reid_edge.card import ModelCard
from reid_edge.errors import CheckpointError

FORMAT = "reid-edge-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("model_config", "model", "card")


def capture_rng_state(generator: Any | None = None) -> dict[str, Any]:
    """Torch, CUDA, numpy and python RNG states (plus ``generator``'s) as tensors and lists."""
    import torch

    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(np_state[0]), "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "state": list(py_state), "gauss_next": py_gauss},
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng_state(state: dict[str, Any], generator: Any | None = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def _plain(obj: Any) -> Any:
    """Dataclasses -> dicts and tuples -> lists, recursively (weights_only-safe containers)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _unwrap(model: Any) -> Any:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


def save_checkpoint(
    path: str | Path, *, model: Any, method: Any | None, optimizer: Any | None, epoch: int, config: Any,
    dataset_fingerprint: str, rng_state: dict[str, Any] | None, calibration_images: list[str], card: ModelCard,
    metrics: dict[str, Any] | None = None, best_metric: float | None = None,
    history: list[dict[str, Any]] | None = None, scaler: Any | None = None,
) -> None:
    """Write a checkpoint atomically (a crash leaves the previous file intact)."""
    from reid_edge.io import atomic_torch_save

    net = _unwrap(model)
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": _plain(net.config),
        "model": net.state_dict(),
        "method": method.state_dict() if method is not None else {},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": int(epoch),
        "train_config": _plain(config) if config is not None else {},
        "dataset_fingerprint": dataset_fingerprint,
        "rng": rng_state or {},
        "calibration_images": [str(p) for p in calibration_images],
        "card": _plain(card),
        "history": _plain(history or []),
        "metrics": _plain(metrics or {}),
        "best_metric": best_metric,
    }
    atomic_torch_save(ckpt, path)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint (``weights_only=True``: no code runs from the file).

    Raises:
        CheckpointError: missing file, not a reid-edge checkpoint, or an unsupported version.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt zip, pickle with code, not a torch file at all
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p} is not a readable reid-edge checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a reid-edge checkpoint (no format '{FORMAT}')")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{p} has checkpoint version {ckpt.get('version')}; this reid-edge reads {VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{p} lacks {', '.join(missing)}")
    return ckpt


def load_model(path: str | Path, map_location: Any = "cpu") -> tuple[Any, ModelCard, dict[str, Any]]:
    """Rebuild the model of a checkpoint (no pretrained download), load weights strictly, eval mode.

    Returns:
        ``(model, card, checkpoint dict)``.
    Raises:
        CheckpointError: see :func:`load_checkpoint`, or weights that do not fit the model.
    """
    ckpt = load_checkpoint(path, map_location)
    try:
        model, card = _rebuild(path, ckpt)
    except CheckpointError:
        raise
    except Exception as exc:  # entries of unexpected types raise many kinds of errors: one message for all
        raise CheckpointError(f"{path} is not a reid-edge checkpoint ({type(exc).__name__}: {exc})") from None
    return model, card, ckpt


def _rebuild(path: str | Path, ckpt: dict[str, Any]) -> tuple[Any, ModelCard]:
    from .models import build_model

    cfg = dict(ckpt["model_config"])
    try:
        model = build_model(**cfg, pretrained=None)
    except TypeError as exc:
        raise CheckpointError(f"{path}: model_config {cfg} does not fit this reid-edge ({exc})") from None
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the model ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, ModelCard.from_dict(ckpt["card"])
