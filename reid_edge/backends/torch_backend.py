"""PyTorch backend: a training checkpoint, or a model in memory, behind the Backend protocol."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..card import OUTPUT_GLOBAL, OUTPUT_STRIPES, ModelCard
from ..errors import BackendError
from .base import Backend

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_torch_device(device: str, local_rank: int | None = None) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without CUDA is an error.

    Args:
        local_rank: the GPU of this process under torchrun (``cuda`` -> ``cuda:<local_rank>``).
    Raises:
        BackendError: an unknown device, or ``cuda`` where PyTorch sees no CUDA device.
    """
    import torch

    if device not in DEVICES:
        raise BackendError(f"unknown device '{device}' (use {', '.join(DEVICES)})")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendError("device 'cuda' asked for, but this PyTorch has no CUDA device (use --device cpu)")
    return f"cuda:{local_rank}" if device == "cuda" and local_rank is not None else device


class TorchBackend(Backend):
    """Run a reid-edge checkpoint (``.pt``) with PyTorch; :meth:`from_model` wraps a model in memory.

    Runs in eval mode without gradients, in float32, and restores the model's train/eval mode
    after each call (training-time evaluation shares the model with the trainer).

    Args:
        path: checkpoint written by ``reid-edge train``.
        device: ``auto`` | ``cpu`` | ``cuda``.
    """

    name = "pytorch"

    def __init__(self, path: str | Path, device: str = "auto", **_: Any) -> None:
        from reid_edge.train.checkpoint import load_model

        self.path = Path(path)
        model, card, _ckpt = load_model(self.path, map_location="cpu")
        self.device: Any = resolve_torch_device(device)
        self.model: Any = model.to(self.device).eval()
        self.card: ModelCard = card
        self.max_batch = None

    @classmethod
    def from_model(cls, model: torch.nn.Module, card: ModelCard, device: str | torch.device = "cpu") -> TorchBackend:
        """An in-memory model (already on ``device``) behind the protocol; the model is not moved."""
        import torch

        self = cls.__new__(cls)
        self.name = "pytorch-in-memory"
        self.path = None  # type: ignore[assignment]
        self.model, self.card, self.device, self.max_batch = model, card, torch.device(device), None
        return self

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                g, s = self.model(torch.from_numpy(images).to(self.device))
        finally:
            self.model.train(was_training)
        return {OUTPUT_GLOBAL: g.float().cpu().numpy(), OUTPUT_STRIPES: s.float().cpu().numpy()}

    def close(self) -> None:
        self.model = None
