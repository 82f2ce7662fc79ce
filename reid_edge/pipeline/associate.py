"""Cross-camera association: tracklets -> global identities.

Algorithm (README text)
-----------------------
Each camera's tracker produces *tracklets* (one per-camera track). A tracklet is submitted to
the matcher once it is worth deciding: when it has lived ``decide_after_s`` seconds with at
least one embedding, or when it ends (tracklets shorter than ``min_tracklet_frames`` that end
are dropped as noise). Its appearance is the quality-weighted mean of its embeddings; a global
identity's appearance is the weight-pooled mean of all its tracklets' appearances, kept up to
date as those tracklets go on being embedded.

All tracklets submitted in one step are matched together by :func:`match_tracklets`:

1. cost ``d(tracklet, identity)`` = the paper's combined distance
   ``λg·‖g_q − g_i‖ + (1−λg)·mean_s ‖s_q,s − s_i,s‖`` (Euclidean on unit vectors; global only
   when the model has no stripes);
2. a pair is *forbidden* when the identity already owns a tracklet of the same camera that
   overlaps the query in time (one person is never two simultaneous tracks of one camera), or
   when a camera layout with transitions is given and the move from the identity's previous
   camera to the query's camera (or from the query's camera to the identity's next one) is not
   a listed transition within its ``[min_s, max_s]`` travel time (being in two cameras at
   once is then forbidden too); re-appearing in the same camera is always allowed;
3. Hungarian assignment (scipy) with the gate ``max_distance``; every match under the gate
   is accepted and the identities updated;
4. when a round accepts nothing, the earliest-starting unmatched tracklet founds a new
   identity, and the rest are matched again (so two cameras that see a new person in the same
   step agree on one identity).

A tracklet's global id never changes once decided. Rows of a tracklet are buffered until its
id is decided, then written; later rows are written as they come.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..distance import combined_distance
from ..errors import ConfigError
from ..names import DEFAULT_MAX_DISTANCE
from .layout import CameraLayout
from .tracker import assign


def resolve_gate(configured: float | None, card: object) -> tuple[float, str]:
    """The cross-camera gate and where it came from: the configuration, the model card, or the default.

    The default (:data:`reid_edge.names.DEFAULT_MAX_DISTANCE`, 1.0) gave the best cross-camera IDF1
    for each model the project trained and measured; imported models carry their own gate.
    """
    if configured is not None:
        return float(configured), "config"
    gate = getattr(card, "match_gate", None)
    if gate is not None:
        return float(gate), "model card"
    return DEFAULT_MAX_DISTANCE, "default"


@dataclass(frozen=True)
class AssociationConfig:
    """Cross-camera matcher settings."""

    # gate on the combined distance (unit vectors: 0..2). None: the model card's ``match_gate``
    # (chosen per model without test labels, e.g. for imported models), else DEFAULT_MAX_DISTANCE.
    max_distance: float | None = None
    decide_after_s: float = 2.0
    min_tracklet_frames: int = 5
    lambda_g: float | None = None  # None: the model card's value
    # a same-camera re-appearance closer in time than this is the tracker's call, not the matcher's:
    # its re-finding (appearance + position) already refused the link
    same_camera_gap_s: float = 10.0

    def __post_init__(self) -> None:
        if (self.max_distance is not None and self.max_distance <= 0) or self.decide_after_s < 0 or \
                self.min_tracklet_frames < 1:
            raise ConfigError("association: need max_distance > 0, decide_after_s >= 0, min_tracklet_frames >= 1")


@dataclass(frozen=True)
class Interval:
    """Where and when a tracklet was seen (seconds on its camera's clock)."""

    camera: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Query:
    """A tracklet to decide: its interval and appearance (None: no embedding, always new)."""

    interval: Interval
    global_: np.ndarray | None
    stripes: np.ndarray | None = None


@dataclass
class IdentityView:
    """A global identity as the matcher sees it."""

    gid: int
    global_: np.ndarray
    stripes: np.ndarray | None
    intervals: list[Interval] = field(default_factory=list)
    weight: float = 1.0


def feasible(q: Interval, intervals: list[Interval], layout: CameraLayout | None,
             same_camera_gap_s: float = 0.0) -> bool:
    """May a tracklet seen in ``q`` belong to an identity seen in ``intervals``?

    ``same_camera_gap_s``: a re-appearance in the same camera must come at least this long after
    (or before) the identity's tracklet there; closer in time the camera's tracker, which re-finds
    lost people by appearance *and* position, has already decided they differ.
    """
    restrict = layout is not None and layout.restrict_transitions
    prev: Interval | None = None
    nxt: Interval | None = None
    for iv in intervals:
        overlap = q.start_s <= iv.end_s and iv.start_s <= q.end_s
        if iv.camera == q.camera:
            if overlap or max(q.start_s - iv.end_s, iv.start_s - q.end_s) < same_camera_gap_s:
                return False
            continue
        if overlap:
            if restrict:
                return False
            continue
        if iv.end_s < q.start_s and (prev is None or iv.end_s > prev.end_s):
            prev = iv
        if iv.start_s > q.end_s and (nxt is None or iv.start_s < nxt.start_s):
            nxt = iv
    if restrict:
        assert layout is not None
        if prev is not None and not layout.allowed(prev.camera, q.camera, q.start_s - prev.end_s):
            return False
        if nxt is not None and not layout.allowed(q.camera, nxt.camera, nxt.start_s - q.end_s):
            return False
    return True


def cost_matrix(queries: list[Query], identities: list[IdentityView], lambda_g: float,
                layout: CameraLayout | None, same_camera_gap_s: float = 0.0) -> np.ndarray:
    """``[Q, I]`` combined distances, ``inf`` where forbidden (or the query has no appearance)."""
    cost = np.full((len(queries), len(identities)), np.inf)
    if not queries or not identities:
        return cost
    qi = [i for i, q in enumerate(queries) if q.global_ is not None]
    if not qi:
        return cost
    qg = np.stack([queries[i].global_ for i in qi])  # type: ignore[misc]
    ig = np.stack([d.global_ for d in identities])
    use_stripes = all(queries[i].stripes is not None for i in qi) and all(d.stripes is not None for d in identities)
    qs = np.stack([queries[i].stripes for i in qi]) if use_stripes else None  # type: ignore[misc]
    gs = np.stack([d.stripes for d in identities]) if use_stripes else None  # type: ignore[misc]
    dist = combined_distance(qg, ig, qs, gs, lambda_g)
    for row, i in enumerate(qi):
        for j, ident in enumerate(identities):
            if feasible(queries[i].interval, ident.intervals, layout, same_camera_gap_s):
                cost[i, j] = dist[row, j]
    return cost


def _merge(ident: IdentityView, q: Query) -> None:
    """Fold a just-assigned query into an identity (weight 1 per tracklet, renormalized)."""
    ident.intervals.append(q.interval)
    if q.global_ is None:
        return
    w = ident.weight
    g = ident.global_ * w + q.global_
    ident.global_ = g / max(float(np.linalg.norm(g)), 1e-12)
    if ident.stripes is not None and q.stripes is not None:
        s = ident.stripes * w + q.stripes
        ident.stripes = s / np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-12)
    ident.weight = w + 1.0


def match_tracklets(queries: list[Query], identities: list[IdentityView], next_gid: int, max_distance: float,
                    lambda_g: float = 0.5, layout: CameraLayout | None = None, same_camera_gap_s: float = 0.0
                    ) -> tuple[list[int], list[float | None], list[IdentityView]]:
    """Decide the global identity of each query tracklet (pure: inputs are not modified).

    Args:
        queries: tracklets to decide.
        identities: the current identities.
        next_gid: the id a new identity gets (then +1 for each further one).
        max_distance: the gate on the combined distance.
    Returns:
        ``(gids, distances, identities)``: the global id of each query, the distance it was
        matched at (None for a new identity), and the identities after the decisions (new ones
        appended).
    """
    idents = [IdentityView(d.gid, d.global_.copy(), None if d.stripes is None else d.stripes.copy(),
                           list(d.intervals), d.weight) for d in identities]
    gids: list[int | None] = [None] * len(queries)
    dists: list[float | None] = [None] * len(queries)
    pending = list(range(len(queries)))
    while pending:
        sub = [queries[i] for i in pending]
        cost = cost_matrix(sub, idents, lambda_g, layout, same_camera_gap_s)
        matches, _, _ = assign(cost, max_distance)
        if matches:
            for r, c in matches:
                qi = pending[r]
                gids[qi] = idents[c].gid
                dists[qi] = float(cost[r, c])
                _merge(idents[c], queries[qi])
            done = {pending[r] for r, _ in matches}
            pending = [i for i in pending if i not in done]
            continue
        first = min(pending, key=lambda i: (queries[i].interval.start_s, i))
        q = queries[first]
        dim = idents[0].global_.shape[-1] if idents else (q.global_.shape[-1] if q.global_ is not None else 1)
        g = q.global_ if q.global_ is not None else np.full(dim, np.nan)  # nan: never matches again
        new = IdentityView(next_gid, np.asarray(g, dtype=np.float64).copy(),
                           None if q.stripes is None else np.asarray(q.stripes, dtype=np.float64).copy(),
                           [q.interval], 1.0)
        idents.append(new)
        gids[first] = next_gid
        next_gid += 1
        pending.remove(first)
    return [int(g) for g in gids if g is not None], dists, idents
