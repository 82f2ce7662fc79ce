"""Distances between embeddings, numpy only (shared by evaluation and the pipeline)."""

from __future__ import annotations

import numpy as np


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows over the last axis (any leading shape)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, 1e-12)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (float64; an all-zero row stays zero)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distance ``[len(a), len(b)]`` (float64 for stable ranking)."""
    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def combined_distance(
    q_global: np.ndarray,
    g_global: np.ndarray,
    q_stripes: np.ndarray | None = None,
    g_stripes: np.ndarray | None = None,
    lambda_g: float = 0.5,
    q_cams: np.ndarray | None = None,
    g_cams: np.ndarray | None = None,
    lambda_c: float = 0.0,
) -> np.ndarray:
    """The paper's test distance: ``λg·d_global + (1−λg)·mean_s d_stripe_s + λc·[same camera]``.

    Distances are Euclidean, as in the authors' evaluation. Without stripes it is the
    global-only distance that the deployed model uses.

    Args:
        q_global, g_global: ``[Q, D]`` and ``[G, D]``.
        q_stripes, g_stripes: ``[Q, S, d]`` and ``[G, S, d]`` or None.
    """
    dist = euclidean(q_global, g_global)
    if q_stripes is not None and g_stripes is not None and q_stripes.shape[1] > 0:  # none: global-only model
        local = np.zeros_like(dist)
        for s in range(q_stripes.shape[1]):
            local += euclidean(q_stripes[:, s], g_stripes[:, s])
        local /= q_stripes.shape[1]
        dist = lambda_g * dist + (1.0 - lambda_g) * local
    if lambda_c and q_cams is not None and g_cams is not None:
        dist = dist + lambda_c * (np.asarray(q_cams)[:, None] == np.asarray(g_cams)[None, :])
    return dist
