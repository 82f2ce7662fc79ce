"""Training-time evaluation: an in-memory torch model behind the Backend protocol.

The metrics (:mod:`reid_edge.metrics`) and the Backend-based evaluation
(:mod:`reid_edge.evaluation`) live in the torch-free runtime; here an in-memory model goes through
:meth:`reid_edge.backends.torch_backend.TorchBackend.from_model`, so that training-time evaluation
runs the very same preprocessing, inference and ranking path as the deployed artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reid_edge import evaluation as runtime_eval
from reid_edge.backends.base import Backend
from reid_edge.card import ModelCard
from reid_edge.evaluation import (
    DatasetEval,
    EvalResult,
    distance_matrix,
    evaluate_artifact,
    evaluate_features,
)
from reid_edge.metrics import evaluate_rank, re_ranking
from reid_edge.names import DEFAULT_LAMBDA_C, DISTANCES

from .data.datasets import Sample


def model_card_for(model: Any, height: int, width: int, lambda_g: float = 0.5,
                   extra: dict[str, Any] | None = None, lambda_c: float = DEFAULT_LAMBDA_C) -> ModelCard:
    """The :class:`ModelCard` of an in-memory model built by ``build_model``."""
    cfg = model.config
    stripe_dim = int(getattr(cfg, "stripe_dim", cfg.embed_dim // cfg.num_stripes))
    return ModelCard(backbone=cfg.backbone, input_height=height, input_width=width, global_dim=cfg.embed_dim,
                     num_stripes=cfg.num_stripes, stripe_dim=stripe_dim, lambda_g=lambda_g, lambda_c=lambda_c,
                     extra=dict(extra or {}))


def as_backend(backend_or_model: Any, card: ModelCard | None = None, device: str = "cpu") -> Backend:
    """A :class:`Backend` as is; a torch model from ``build_model`` wrapped (``card`` default: 256x128)."""
    if isinstance(backend_or_model, Backend):
        return backend_or_model
    from reid_edge.backends.torch_backend import TorchBackend

    return TorchBackend.from_model(backend_or_model, card or model_card_for(backend_or_model, 256, 128), device)


def extract_features(backend_or_model: Any, samples: Sequence[Sample], batch_size: int = 64,
                     card: ModelCard | None = None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """:func:`reid_edge.evaluation.extract_features` of a Backend or an in-memory torch model."""
    return runtime_eval.extract_features(as_backend(backend_or_model, card, device), samples, batch_size)


def evaluate(
    backend_or_model: Any, query: Sequence[Sample], gallery: Sequence[Sample], *,
    batch_size: int = 64, distance: str = "combined", lambda_g: float | None = None,
    lambda_c: float = DEFAULT_LAMBDA_C, rerank: bool = False, card: ModelCard | None = None, device: str = "cpu",
) -> EvalResult:
    """:func:`reid_edge.evaluation.evaluate` of a Backend or an in-memory torch model (training-time).

    Args:
        lambda_g: weight of the global distance; None takes the card's value.
        lambda_c: same-camera penalty of the ``combined`` distance (the authors' evaluation adds it).
    """
    return runtime_eval.evaluate(as_backend(backend_or_model, card, device), query, gallery, batch_size=batch_size,
                                 distance=distance, lambda_g=lambda_g, lambda_c=lambda_c, rerank=rerank)


__all__ = ["DISTANCES", "DatasetEval", "EvalResult", "as_backend", "distance_matrix", "evaluate",
           "evaluate_artifact", "evaluate_features", "evaluate_rank", "extract_features", "model_card_for",
           "re_ranking"]
