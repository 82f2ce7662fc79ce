"""What to embed, and a track's appearance.

Embedding every box of every frame is the pipeline's largest cost, and most of those crops are
near-duplicates. A track is embedded when it is new, then again every ``every_k`` frames or
as soon as its box quality beats the best quality embedded so far by ``improve_ratio``; boxes
of very low quality are never embedded after the first. Box quality (:func:`box_quality`) is the
product of a size term, an aspect term (people are about 2.5x as tall as wide), a border term
(cut by the frame edge) and an overlap term (covered by other boxes). A per-step budget caps
the crops embedded, new tracks first. All requests of one step, across all cameras, go to the
backend as one batch.

A track's appearance is the quality-weighted mean of its L2-normalized embeddings (global and
each stripe), renormalized (:class:`Appearance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class ReidConfig:
    """Embedding schedule."""

    every_k: int = 10
    improve_ratio: float = 1.25
    min_quality: float = 0.15
    max_per_step: int = 16
    ref_height: float = 128.0  # boxes this tall or taller get the full size term
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.every_k < 1 or self.max_per_step < 1 or self.batch_size < 1:
            raise ConfigError("reid: every_k, max_per_step and batch_size must be >= 1")


def box_quality(boxes: np.ndarray, frame_w: int, frame_h: int, ref_height: float = 128.0) -> np.ndarray:
    """Quality in [0, 1] of each box ``x, y, w, h`` among the others of the same frame.

    ``size * aspect * border * (1 - covered)``: size = min(1, h / ref_height); aspect = how close
    h/w is to 2.5 (ratio of the smaller to the larger); border = 0.5 when the box touches the
    frame edge; covered = the largest fraction of the box covered by one other box.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros(0)
    w = np.maximum(b[:, 2], 1e-6)
    h = np.maximum(b[:, 3], 1e-6)
    size = np.minimum(1.0, h / ref_height)
    r = (h / w) / 2.5
    aspect = np.minimum(r, 1.0 / r)
    margin = 2.0
    touches = (b[:, 0] <= margin) | (b[:, 1] <= margin) | (b[:, 0] + w >= frame_w - margin) | (
        b[:, 1] + h >= frame_h - margin)
    border = np.where(touches, 0.5, 1.0)
    x2, y2 = b[:, 0] + w, b[:, 1] + h
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(b[:, 0][:, None], b[:, 0][None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(b[:, 1][:, None], b[:, 1][None]), 0, None)
    cover = iw * ih / (w * h)[:, None]
    np.fill_diagonal(cover, 0.0)
    covered = cover.max(axis=1) if len(b) > 1 else np.zeros(1)
    return size * aspect * border * (1.0 - np.clip(covered, 0, 1))


@dataclass
class EmbedState:
    """Per-track embedding bookkeeping."""

    count: int = 0
    last_frame: int = -(10**9)
    best_quality: float = 0.0


def embed_priority(state: EmbedState, quality: float, frame: int, cfg: ReidConfig) -> float | None:
    """Why and how urgently to embed a track now; None: not worth it.

    New tracks come first (priority > 2), then quality improvements, then the periodic refresh.
    """
    if state.count == 0:
        return 3.0 + quality
    if quality < cfg.min_quality:
        return None
    if quality > state.best_quality * cfg.improve_ratio:
        return 2.0 + min(quality, 1.0)
    if frame - state.last_frame >= cfg.every_k:
        return 1.0 + min(quality, 1.0)
    return None


def schedule(candidates: list[tuple[object, EmbedState, float]], frame_of: dict[object, int],
             cfg: ReidConfig) -> list[object]:
    """Pick the tracks to embed this step, at most ``cfg.max_per_step``, most urgent first.

    Args:
        candidates: ``(key, state, quality)`` for every active track of every camera.
        frame_of: the current frame number of each key's camera.
    """
    scored = []
    for key, state, q in candidates:
        p = embed_priority(state, q, frame_of[key], cfg)
        if p is not None:
            scored.append((p, key))
    scored.sort(key=lambda x: -x[0])
    return [k for _, k in scored[: cfg.max_per_step]]


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class Appearance:
    """Quality-weighted mean of normalized embeddings (global and stripes)."""

    def __init__(self) -> None:
        self._g: np.ndarray | None = None
        self._s: np.ndarray | None = None
        self.weight = 0.0
        self.count = 0

    def add(self, global_: np.ndarray, stripes: np.ndarray | None, weight: float) -> None:
        w = max(float(weight), 1e-3)
        g = _normalize(np.asarray(global_, dtype=np.float64)) * w
        self._g = g if self._g is None else self._g + g
        if stripes is not None and np.asarray(stripes).size:
            s = _normalize(np.asarray(stripes, dtype=np.float64)) * w
            self._s = s if self._s is None else self._s + s
        self.weight += w
        self.count += 1

    def merge(self, other: Appearance) -> None:
        """Add another appearance's weighted sums (an identity gathering its tracklets)."""
        if other._g is None:
            return
        self._g = other._g.copy() if self._g is None else self._g + other._g
        if other._s is not None:
            self._s = other._s.copy() if self._s is None else self._s + other._s
        self.weight += other.weight
        self.count += other.count

    def sums(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Copies of the weighted sums (global ``[D]``, stripes ``[S, d]``): what identities pool."""
        return (None if self._g is None else self._g.copy(), None if self._s is None else self._s.copy())

    @property
    def empty(self) -> bool:
        return self._g is None

    @property
    def global_(self) -> np.ndarray:
        if self._g is None:
            raise ValueError("empty appearance")
        return _normalize(self._g).astype(np.float32)

    @property
    def stripes(self) -> np.ndarray | None:
        return None if self._s is None else _normalize(self._s).astype(np.float32)
