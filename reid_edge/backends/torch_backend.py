"""PyTorch backend: run a training checkpoint directly (eval mode, no grad)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..card import OUTPUT_GLOBAL, OUTPUT_STRIPES, ModelCard
from ..errors import BackendError, CheckpointError
from .base import Backend


def resolve_torch_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without CUDA is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendError("device 'cuda' asked for, but this PyTorch has no CUDA device")
    if device not in ("cpu", "cuda"):
        raise BackendError(f"unknown device '{device}' (use auto, cpu or cuda)")
    return device


class TorchBackend(Backend):
    """Run a reid-edge checkpoint (``.pt``) with PyTorch.

    Args:
        path: checkpoint written by ``reid-edge train``.
        device: ``auto`` | ``cpu`` | ``cuda``.
    """

    name = "pytorch"

    def __init__(self, path: str | Path, device: str = "auto", **_: Any) -> None:
        import torch

        from reid_edge.train.checkpoint import load_model

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"checkpoint {self.path} does not exist")
        try:
            model, card, _ckpt = load_model(self.path, map_location="cpu")
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{self.path} is not a reid-edge checkpoint ({type(exc).__name__}: {exc})") from None
        self.device = resolve_torch_device(device)
        self.model = model.to(self.device).eval()
        self.card: ModelCard = card
        self.max_batch = None
        self._torch = torch

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.no_grad():
            x = torch.from_numpy(images).to(self.device)
            g, s = self.model(x)
        return {OUTPUT_GLOBAL: g.float().cpu().numpy(), OUTPUT_STRIPES: s.float().cpu().numpy()}

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
