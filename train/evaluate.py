"""Evaluation: features through the Backend protocol, distances, CMC/mAP and re-ranking.

The cores (:func:`evaluate_rank`, :func:`re_ranking`) are pure numpy. Features come from any
:class:`reid_edge.backends.Backend` (checkpoint, ONNX, TensorRT); an in-memory torch model goes
through :meth:`reid_edge.backends.torch_backend.TorchBackend.from_model`, so that training-time
evaluation runs the very same preprocessing and inference path as the deployed artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reid_edge.backends.base import Backend
from reid_edge.card import ModelCard
from reid_edge.errors import DataError
from reid_edge.names import DEFAULT_LAMBDA_C

from .data.datasets import Sample

if TYPE_CHECKING:
    pass

def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> tuple[np.ndarray, float, int]:
    """CMC and mAP under the Market-1501 protocol.

    For each query, gallery entries with the query's pid AND camera are ignored, as are junk
    entries (pid -1); distractors (pid 0) count as wrong matches. Queries with no valid match
    left are skipped. Ties are broken by gallery order (stable sort).

    Args:
        distmat: ``[Q, G]`` distances (smaller is more similar).
    Returns:
        ``(cmc [max_rank], mAP, num_valid_queries)``; ``cmc[k]`` is the rank-(k+1) accuracy, all in [0, 1].
    Raises:
        DataError: shapes disagree or no query has a valid match.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if len(q_pids) != num_q or len(q_camids) != num_q or len(g_pids) != num_g or len(g_camids) != num_g:
        raise DataError(f"distance matrix {distmat.shape} does not match {len(q_pids)} queries / {len(g_pids)} gallery")
    max_rank = max(1, min(max_rank, num_g))
    order = np.argsort(distmat, axis=1, kind="stable")
    all_cmc: list[np.ndarray] = []
    all_ap: list[float] = []
    for i in range(num_q):
        pids = g_pids[order[i]]
        keep = ~(((pids == q_pids[i]) & (g_camids[order[i]] == q_camids[i])) | (pids == -1))
        hits = (pids[keep] == q_pids[i]).astype(np.float64)
        if not hits.any():
            continue
        found = hits.cumsum()
        cmc = np.minimum(found, 1.0)
        if len(cmc) < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])
        all_cmc.append(cmc[:max_rank])
        precision = found / np.arange(1, len(hits) + 1)
        all_ap.append(float((precision * hits).sum() / hits.sum()))
    if not all_cmc:
        raise DataError("no query has a matching gallery image from another camera; cannot compute mAP")
    return np.mean(all_cmc, axis=0), float(np.mean(all_ap)), len(all_cmc)


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017) of a query-gallery distance matrix.

    The final distance is ``(1-λ)·Jaccard(k-reciprocal sets) + λ·original``, where the
    original distances are squared and each row is divided by its maximum, as in the paper's
    reference implementation.

    Args:
        q_g_dist, q_q_dist, g_g_dist: ``[Q, G]``, ``[Q, Q]``, ``[G, G]`` distances.
        k1, k2: neighbourhood sizes for the k-reciprocal sets and the query expansion.
        lambda_value: weight of the original distance.
    Returns:
        ``[Q, G]`` re-ranked distances (float32).
    """
    num_q, num_g = q_g_dist.shape
    if q_q_dist.shape != (num_q, num_q) or g_g_dist.shape != (num_g, num_g):
        raise DataError("re-ranking: distance matrices have inconsistent shapes")
    full = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]]).astype(np.float64)
    n = full.shape[0]
    full = np.square(full)
    full = (full / np.maximum(full.max(axis=1, keepdims=True), 1e-12)).astype(np.float32)
    k1 = max(1, min(k1, n - 1))
    k_half = max(1, int(np.around(k1 / 2.0)))
    initial_rank = np.argsort(full, axis=1, kind="stable")
    v = np.zeros((n, n), dtype=np.float32)

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = initial_rank[i, : k + 1]
        backward = initial_rank[forward, : k + 1]
        return forward[np.any(backward == i, axis=1)]

    for i in range(n):
        k_recip = reciprocal(i, k1)
        expansion = [k_recip]
        for cand in k_recip:
            cand_recip = reciprocal(int(cand), k_half)
            if len(np.intersect1d(cand_recip, k_recip)) > 2.0 / 3.0 * len(cand_recip):
                expansion.append(cand_recip)
        members = np.unique(np.concatenate(expansion))
        weight = np.exp(-full[i, members])
        v[i, members] = weight / weight.sum()
    if k2 > 1:
        v = np.stack([v[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    inv_index = [np.nonzero(v[:, j])[0] for j in range(n)]
    jaccard = np.zeros((num_q, n), dtype=np.float32)
    for i in range(num_q):
        overlap = np.zeros(n, dtype=np.float32)
        for j in np.nonzero(v[i])[0]:
            rows = inv_index[j]
            overlap[rows] += np.minimum(v[i, j], v[rows, j])
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)
    final = jaccard * (1.0 - lambda_value) + full[:num_q] * lambda_value
    return final[:, num_q:]


def model_card_for(model: Any, height: int, width: int, lambda_g: float = 0.5,
                   extra: dict[str, Any] | None = None, lambda_c: float = DEFAULT_LAMBDA_C) -> ModelCard:
    """The :class:`ModelCard` of an in-memory model built by ``build_model``."""
    cfg = model.config
    stripe_dim = int(getattr(cfg, "stripe_dim", cfg.embed_dim // cfg.num_stripes))
    return ModelCard(backbone=cfg.backbone, input_height=height, input_width=width, global_dim=cfg.embed_dim,
                     num_stripes=cfg.num_stripes, stripe_dim=stripe_dim, lambda_g=lambda_g, lambda_c=lambda_c,
                     extra=dict(extra or {}))


def extract_features(backend_or_model: Any, samples: Sequence[Sample], batch_size: int = 64,
                     card: ModelCard | None = None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Embed the crops of ``samples``.

    Args:
        backend_or_model: a :class:`Backend`, or a torch model from ``build_model`` (then
            ``card`` gives the input size; default 256x128).
    Returns:
        ``(global [N, D], stripes [N, S, d])`` float32, L2-normalized.
    """
    from .data.transforms import read_bgr

    backend = backend_or_model
    if not isinstance(backend, Backend):
        from reid_edge.backends.torch_backend import TorchBackend

        backend = TorchBackend.from_model(backend_or_model, card or model_card_for(backend_or_model, 256, 128), device)
    g_parts: list[np.ndarray] = []
    s_parts: list[np.ndarray] = []
    for start in range(0, len(samples), batch_size):
        crops = [read_bgr(s.path) for s in samples[start:start + batch_size]]
        emb = backend.embed(crops, batch_size=batch_size)
        g_parts.append(emb.global_)
        s_parts.append(emb.stripes)
    if not g_parts:
        c = backend.card
        return np.zeros((0, c.global_dim), np.float32), np.zeros((0, c.num_stripes, c.stripe_dim), np.float32)
    return np.concatenate(g_parts), np.concatenate(s_parts)


@dataclass(frozen=True)
class EvalResult:
    """Retrieval metrics (all in [0, 1]) and the CMC curve."""

    mAP: float
    cmc: np.ndarray
    num_query: int
    num_gallery: int
    num_valid_queries: int
    distance: str
    rerank: bool

    @property
    def rank1(self) -> float:
        return float(self.cmc[0])

    def rank(self, k: int) -> float:
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary written by ``reid-edge eval --json``."""
        return {"mAP": self.mAP, "rank1": self.rank(1), "rank5": self.rank(5), "rank10": self.rank(10),
                "num_query": self.num_query, "num_gallery": self.num_gallery,
                "num_valid_queries": self.num_valid_queries, "distance": self.distance, "rerank": self.rerank}


def distance_matrix(a_global: np.ndarray, b_global: np.ndarray, a_stripes: np.ndarray, b_stripes: np.ndarray,
                    a_cams: np.ndarray, b_cams: np.ndarray, distance: str, lambda_g: float,
                    lambda_c: float) -> np.ndarray:
    """``combined``: the paper's test distance (global + stripes + λc·same camera); ``global``: global only."""
    from reid_edge.distance import combined_distance

    if distance == "combined":
        return combined_distance(a_global, b_global, a_stripes, b_stripes, lambda_g, a_cams, b_cams, lambda_c)
    if distance == "global":
        return combined_distance(a_global, b_global)
    raise DataError(f"unknown distance {distance!r} (use combined or global)")


def evaluate_features(
    q: tuple[np.ndarray, np.ndarray], g: tuple[np.ndarray, np.ndarray],
    query: Sequence[Sample], gallery: Sequence[Sample], *,
    distance: str = "combined", lambda_g: float = 0.5, lambda_c: float = DEFAULT_LAMBDA_C, rerank: bool = False,
    max_rank: int = 50,
) -> EvalResult:
    """Metrics from already extracted ``(global, stripes)`` features of query and gallery."""
    q_pids = np.array([s.pid for s in query])
    g_pids = np.array([s.pid for s in gallery])
    q_cams = np.array([s.camid for s in query])
    g_cams = np.array([s.camid for s in gallery])
    qg = distance_matrix(q[0], g[0], q[1], g[1], q_cams, g_cams, distance, lambda_g, lambda_c)
    if rerank:
        qq = distance_matrix(q[0], q[0], q[1], q[1], q_cams, q_cams, distance, lambda_g, lambda_c)
        gg = distance_matrix(g[0], g[0], g[1], g[1], g_cams, g_cams, distance, lambda_g, lambda_c)
        qg = re_ranking(qg, qq, gg)
    cmc, mean_ap, valid = evaluate_rank(qg, q_pids, g_pids, q_cams, g_cams, max_rank)
    return EvalResult(mean_ap, cmc, len(query), len(gallery), valid, distance, rerank)


def evaluate(
    backend_or_model: Any, query: Sequence[Sample], gallery: Sequence[Sample], *,
    batch_size: int = 64, distance: str = "combined", lambda_g: float | None = None, lambda_c: float = DEFAULT_LAMBDA_C,
    rerank: bool = False, card: ModelCard | None = None, device: str = "cpu",
) -> EvalResult:
    """Extract features and compute CMC/mAP (Market protocol).

    Args:
        lambda_g: weight of the global distance; None takes the card's value.
        lambda_c: same-camera penalty of the ``combined`` distance (the authors' evaluation adds it).
    """
    if not query or not gallery:
        raise DataError("evaluation needs a non-empty query and gallery")
    qf = extract_features(backend_or_model, query, batch_size, card, device)
    same = list(query) == list(gallery)
    gf = qf if same else extract_features(backend_or_model, gallery, batch_size, card, device)
    if lambda_g is None:
        lambda_g = backend_or_model.card.lambda_g if isinstance(backend_or_model, Backend) else (
            card.lambda_g if card else 0.5)
    return evaluate_features(qf, gf, query, gallery, distance=distance, lambda_g=lambda_g, lambda_c=lambda_c,
                             rerank=rerank)


@dataclass(frozen=True)
class DatasetEval:
    """:func:`evaluate_artifact`'s answer: the metrics and what they were measured on."""

    result: EvalResult
    dataset_name: str


def evaluate_artifact(model: str | Path, data: str | Path, fmt: str = "auto", *, distance: str = "combined",
                      device: str = "auto", batch_size: int = 64, rerank: bool = False,
                      cuhk03_variant: str = "detected") -> DatasetEval:
    """Evaluate a checkpoint, ONNX model or engine on the query/gallery split of a dataset folder.

    The combined distance uses the artifact card's ``lambda_g`` and ``lambda_c`` (the run's settings).

    Raises:
        DataError: no query/gallery split with identities, or unreadable images.
        CheckpointError, BackendError: the model cannot be opened.
    """
    from reid_edge.backends import load_backend

    from .data.datasets import check_readable, evaluation_split, read_dataset

    dataset = read_dataset(data, fmt, cuhk03_variant)
    split = evaluation_split(dataset)
    if split is None:
        raise DataError(f"{data} has no query/gallery split with identities to evaluate on")
    query = check_readable(split[0])
    gallery = query if split[1] is split[0] else check_readable(split[1])
    with load_backend(model, device=device) as backend:
        result = evaluate(backend, query, gallery, batch_size=batch_size, distance=distance,
                          lambda_c=backend.card.lambda_c, rerank=rerank)
    return DatasetEval(result, dataset.name)
