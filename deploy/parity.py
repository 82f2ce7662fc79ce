"""Parity gate: the exported ONNX must reproduce PyTorch on fixed crops before anything ships.

Both sides see the same input: crops preprocessed once by the shared
:func:`reid_edge.preprocess.preprocess_for_card`. The gate compares per-row cosine similarity of
the global embedding and of every stripe embedding, and fails the export below the threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reid_edge.card import INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES, ModelCard
from reid_edge.distance import cosine_rows
from reid_edge.errors import ExportError
from reid_edge.preprocess import preprocess_for_card

if TYPE_CHECKING:
    import torch


FP32_PARITY_COSINE = 0.9999


def fixed_crops(n: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Deterministic BGR uint8 person-sized crops of varied sizes: blocks of colour plus noise.

    Structured content (not pure noise) so the network's activations look like real images'.
    """
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        h, w = int(rng.integers(96, 320)), int(rng.integers(40, 140))
        img = np.empty((h, w, 3), np.float32)
        bands = int(rng.integers(2, 6))
        edges = np.linspace(0, h, bands + 1).astype(int)
        for b in range(bands):
            img[edges[b]:edges[b + 1]] = rng.uniform(0, 255, size=3)
        yy, xx = np.mgrid[0:h, 0:w]
        img += 40.0 * np.sin((xx + i) / (3.0 + i))[..., None]
        img += rng.normal(0, 12, size=img.shape)
        crops.append(np.clip(img, 0, 255).astype(np.uint8))
    return crops


@dataclass(frozen=True)
class ParityResult:
    """Worst-case agreement between a reference and a candidate on the same crops."""

    min_cosine_global: float
    min_cosine_stripes: float
    max_abs_diff: float
    threshold: float

    @property
    def passed(self) -> bool:
        return min(self.min_cosine_global, self.min_cosine_stripes) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def compare_outputs(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], threshold: float) -> ParityResult:
    """Compare two ``{"embedding", "stripes"}`` output dicts row by row."""
    cg = cosine_rows(ref[OUTPUT_GLOBAL], got[OUTPUT_GLOBAL])
    cs = cosine_rows(ref[OUTPUT_STRIPES], got[OUTPUT_STRIPES])
    diff = max(float(np.abs(ref[k] - got[k]).max()) for k in (OUTPUT_GLOBAL, OUTPUT_STRIPES))
    return ParityResult(float(cg.min()), float(cs.min()), diff, threshold)


def torch_outputs(model: torch.nn.Module, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run the PyTorch model on a preprocessed batch (eval mode, no grad)."""
    import torch

    model.eval()
    with torch.no_grad():
        g, s = model(torch.from_numpy(images))
    return {OUTPUT_GLOBAL: g.float().numpy(), OUTPUT_STRIPES: s.float().numpy()}


def parity_gate(
    model: torch.nn.Module,
    onnx_path: str | Path,
    card: ModelCard,
    crops: list[np.ndarray] | None = None,
    threshold: float = FP32_PARITY_COSINE,
) -> ParityResult:
    """Compare ONNX Runtime (CPU) against PyTorch on fixed crops; raise below ``threshold``.

    Raises:
        ExportError: the minimum cosine (global or any stripe) is below ``threshold``.
    """
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend

    images = preprocess_for_card(crops if crops is not None else fixed_crops(), card)
    ref = torch_outputs(model, images)
    with OnnxRuntimeBackend(onnx_path, device="cpu") as backend:
        got = backend.infer({INPUT_NAME: images})
    want = {OUTPUT_GLOBAL: (len(images), card.global_dim),
            OUTPUT_STRIPES: (len(images), card.num_stripes, card.stripe_dim)}
    for key, shape in want.items():
        if tuple(got[key].shape) != shape or tuple(ref[key].shape) != shape:
            raise ExportError(f"output '{key}' has shape {tuple(got[key].shape)} (PyTorch {tuple(ref[key].shape)}), "
                              f"the model card says {shape}")
    result = compare_outputs(ref, got, threshold)
    if not result.passed:
        raise ExportError(
            f"parity gate failed: ONNX Runtime vs PyTorch cosine "
            f"{min(result.min_cosine_global, result.min_cosine_stripes):.6f}"
            f" < {threshold} (max |diff| {result.max_abs_diff:.3g}); an op exported differently (check opset, "
            "custom layers, train-mode BatchNorm)"
        )
    return result

