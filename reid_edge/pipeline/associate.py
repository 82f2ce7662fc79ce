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
   once is then forbidden too); re-appearing in the same camera is allowed, but not within
   ``same_camera_gap_s`` of the identity's tracklet there (the camera's tracker decided that);
3. Hungarian assignment (scipy) with the gate ``max_distance``; every match under the gate
   is accepted and the identities updated. A pair whose identity was already seen by the
   query's camera must also be within ``same_camera_max_distance`` when one is set (the model
   card's ``same_camera_gate``): two different people seen by one camera are closer than two
   seen by different cameras (same light, same viewpoint, same background), so at one gate a
   same-camera re-link is wrong more often (README, "Cross-camera association at real scale");
4. when a round accepts nothing, the earliest-starting unmatched tracklet founds a new
   identity, and the rest are matched again (so two cameras that see a new person in the same
   step agree on one identity).

A tracklet's global id never changes once decided. Rows of a tracklet are buffered until its
id is decided, then written; later rows are written as they come.

API: one code path for every deployment
---------------------------------------
:class:`Associator` holds the identities and makes the decisions; the single-process pipeline
(:mod:`.runner`) and a central associator serving many edge boxes use it the same way:

- :class:`TrackletEvent` is all it needs about one per-camera tracklet (id, camera, start/end on
  the site clock, the appearance *sums*, ``final``); plain data with ``to_dict``/``from_dict``;
- :func:`readiness` says when to send a tracklet (``decide_after_s``, ``min_tracklet_frames``);
- ``Associator.decide(events)`` decides one round together and returns one :class:`Decision`
  (``event_id``, ``global_id``, ``distance``) per event; resending a decided event returns the
  stored decision (and updates the tracklet);
- ``Associator.update(event)`` brings a decided tracklet's appearance and end time up to date;
- ``Associator.identities`` (gid -> intervals) feeds the run summary; ``flush()`` writes changed
  identities to the gallery (:mod:`.gallery`) when one is attached.

:func:`match_tracklets` is the same algorithm as a pure function over all identities (the
reference the Associator is tested against); the Associator indexes the identities in one
contiguous matrix and runs the feasibility rules on each query's nearest candidates only,
which keeps a decision in milliseconds with thousands of identities.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..card import card_setting
from ..distance import combined_distance, unit_rows
from ..errors import ConfigError
from ..names import DEFAULT_MAX_DISTANCE
from .layout import CameraLayout
from .tracker import assign


def resolve_gate(configured: float | None, card: object) -> tuple[float, str]:
    """The cross-camera gate and where it came from: the configuration, the model card, or the default.

    The default (:data:`reid_edge.names.DEFAULT_MAX_DISTANCE`, 1.0) gave the best cross-camera IDF1
    for each model the project trained and measured; imported models carry their own gate.
    """
    return card_setting(configured, card, "match_gate", DEFAULT_MAX_DISTANCE)


def resolve_same_camera_gate(configured: float | None, card: object) -> tuple[float | None, str]:
    """The same-camera gate (:attr:`AssociationConfig.same_camera_max_distance`) and where it came
    from: the configuration, the model card's ``same_camera_gate``, or ``(None, "none")`` (only the
    main gate applies: the project's own models, whose results were measured that way)."""
    return card_setting(configured, card, "same_camera_gate", None)


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
    # the gate for pairs whose identity was already seen by the query's camera (a distance in the re-ID
    # model's space, so None: the model card's ``same_camera_gate``, else none: ``max_distance`` alone)
    same_camera_max_distance: float | None = None

    def __post_init__(self) -> None:
        if (self.max_distance is not None and self.max_distance <= 0) or self.decide_after_s < 0 or \
                self.min_tracklet_frames < 1:
            raise ConfigError("association: need max_distance > 0, decide_after_s >= 0, min_tracklet_frames >= 1")
        if self.same_camera_max_distance is not None and self.same_camera_max_distance <= 0:
            raise ConfigError("association: same_camera_max_distance must be > 0")
        if not (0.0 <= self.same_camera_gap_s < float("inf")):
            # summary.json records the configuration, and JSON has no infinity
            raise ConfigError("association: same_camera_gap_s must be a finite number of seconds >= 0 "
                              "(1000000000 for never)")


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


def seen_by(camera: str, intervals: list[Interval]) -> bool:
    """Was the identity with these ``intervals`` already seen by ``camera``?"""
    return any(iv.camera == camera for iv in intervals)


def cost_matrix(queries: list[Query], identities: list[IdentityView], lambda_g: float,
                layout: CameraLayout | None, same_camera_gap_s: float = 0.0,
                same_camera_max_distance: float | None = None) -> np.ndarray:
    """``[Q, I]`` combined distances, ``inf`` where forbidden (or the query has no appearance, or the
    identity was seen by the query's camera and the distance is over ``same_camera_max_distance``)."""
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
            q = queries[i].interval
            if feasible(q, ident.intervals, layout, same_camera_gap_s) and (
                    same_camera_max_distance is None or dist[row, j] <= same_camera_max_distance
                    or not seen_by(q.camera, ident.intervals)):
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
                    lambda_g: float = 0.5, layout: CameraLayout | None = None, same_camera_gap_s: float = 0.0,
                    same_camera_max_distance: float | None = None
                    ) -> tuple[list[int], list[float | None], list[IdentityView]]:
    """Decide the global identity of each query tracklet (pure: inputs are not modified).

    Args:
        queries: tracklets to decide.
        identities: the current identities.
        next_gid: the id a new identity gets (then +1 for each further one).
        max_distance: the gate on the combined distance.
        same_camera_max_distance: the gate for identities already seen by the query's camera
            (None: ``max_distance`` alone).
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
        cost = cost_matrix(sub, idents, lambda_g, layout, same_camera_gap_s, same_camera_max_distance)
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


# --------------------------------------------------------------------------------------------------
# The stateful associator: one code path for the in-process pipeline and a central service.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackletEvent:
    """All that association needs about one per-camera tracklet; plain data, serialisable.

    ``global_`` and ``stripes`` are the tracklet's *pooled appearance sums*: the quality-weighted
    sum of its L2-normalised embeddings (``[D]`` and ``[S, d]``, as :class:`~.reid.Appearance`
    keeps them). Their direction is the tracklet's appearance; sums rather than unit vectors so
    that an identity's appearance is the exact pool of its tracklets' embeddings however the
    tracklets arrive. None: no embedding yet (such a tracklet always founds a new identity).
    """

    event_id: str  # stable and unique per tracklet, e.g. "<source>/<camera>/<track_id>"
    camera: str
    start_s: float  # site clock
    end_s: float
    global_: np.ndarray | None = None
    stripes: np.ndarray | None = None
    weight: float = 0.0  # the sum of the quality weights (information only)
    final: bool = False  # the tracklet has ended

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (lists for arrays)."""
        return {"event_id": self.event_id, "camera": self.camera, "start_s": self.start_s, "end_s": self.end_s,
                "global": None if self.global_ is None else np.asarray(self.global_, np.float64).tolist(),
                "stripes": None if self.stripes is None else np.asarray(self.stripes, np.float64).tolist(),
                "weight": self.weight, "final": self.final}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> TrackletEvent:
        g, s = d.get("global"), d.get("stripes")
        return cls(str(d["event_id"]), str(d["camera"]), float(d["start_s"]), float(d["end_s"]),  # type: ignore[arg-type]
                   None if g is None else np.asarray(g, np.float64), None if s is None else np.asarray(s, np.float64),
                   float(d.get("weight", 0.0)), bool(d.get("final", False)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Decision:
    """The global identity given to a tracklet; ``distance`` None when it founded a new identity."""

    event_id: str
    global_id: int
    distance: float | None


def readiness(duration_s: float, embeddings: int, rows: int, ended: bool, config: AssociationConfig) -> str:
    """When a tracklet is sent to :meth:`Associator.decide`: ``"decide"``, ``"drop"`` or ``"wait"``.

    A tracklet is decided once it has lived ``decide_after_s`` with an embedding, or when it ends;
    one that ends with fewer than ``min_tracklet_frames`` rows is dropped as noise.
    """
    if ended:
        return "drop" if rows < config.min_tracklet_frames else "decide"
    if duration_s >= config.decide_after_s and embeddings > 0:
        return "decide"
    return "wait"


def _unit32(x: np.ndarray) -> np.ndarray:
    """Unit vector(s) along the last axis, rounded through float32 as the pipeline always did."""
    return unit_rows(x).astype(np.float32).astype(np.float64)


@dataclass
class _Member:
    event_id: str
    camera: str
    start_s: float
    end_s: float
    g: np.ndarray | None
    s: np.ndarray | None

    @property
    def interval(self) -> Interval:
        return Interval(self.camera, self.start_s, self.end_s)


@dataclass
class _Identity:
    gid: int
    members: list[_Member] = field(default_factory=list)
    # appearance sums and tracklet count carried over from an earlier session (gallery)
    prior_g: np.ndarray | None = None
    prior_s: np.ndarray | None = None
    prior_count: int = 0
    first_seen: float | None = None  # wall clock (gallery bookkeeping)
    last_seen: float | None = None
    cameras: set[str] = field(default_factory=set)

    def pooled(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The identity's appearance sums: prior, then members in decision order (fixed order)."""
        g, s = self.prior_g, self.prior_s
        g = None if g is None else g.copy()
        s = None if s is None else s.copy()
        for m in self.members:
            if m.g is None:
                continue
            g = m.g.copy() if g is None else g + m.g
            if m.s is not None:
                s = m.s.copy() if s is None else s + m.s
        return g, s

    @property
    def weight(self) -> float:
        return float(len(self.members) + self.prior_count)


class _Rows:
    """The identities' unit appearances as one contiguous matrix (capacity doubles as it grows).

    Float64 rows give exactly the numbers :func:`~reid_edge.distance.combined_distance` gives; a
    float32 mirror serves the pre-selection of large galleries (:meth:`distances`).
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.g = np.full((16, dim), np.nan)
        self.gn = np.full(16, np.nan)  # cached (g*g).sum(1): the same numbers euclidean() computes
        self.g32 = np.full((16, dim), np.nan, dtype=np.float32)
        self.s: np.ndarray | None = None
        self.sn: np.ndarray | None = None
        self.s32: np.ndarray | None = None
        self.has_s = np.zeros(16, dtype=bool)

    def _grow(self, need: int) -> None:
        cap = len(self.g)
        if need <= cap:
            return
        new = max(need, 2 * cap)

        def pad(a: np.ndarray, fill: object = np.nan) -> np.ndarray:
            return np.concatenate([a, np.full((new - cap, *a.shape[1:]), fill, dtype=a.dtype)])

        self.g, self.gn, self.g32 = pad(self.g), pad(self.gn), pad(self.g32)
        self.has_s = pad(self.has_s, False)
        if self.s is not None and self.sn is not None and self.s32 is not None:
            self.s, self.sn, self.s32 = pad(self.s), pad(self.sn), pad(self.s32)

    def set(self, row: int, g: np.ndarray | None, s: np.ndarray | None) -> None:
        self._grow(row + 1)
        self.n = max(self.n, row + 1)
        if g is None:
            self.g[row] = np.nan
            self.gn[row] = np.nan
        else:
            self.g[row] = g
            self.gn[row] = (self.g[row:row + 1] * self.g[row:row + 1]).sum(1)[0]
        self.g32[row] = self.g[row]
        if s is None:
            self.has_s[row] = False
            return
        if self.s is None:
            self.s = np.full((len(self.g), *s.shape), np.nan)
            self.sn = np.full((len(self.g), s.shape[0]), np.nan)
            self.s32 = np.full((len(self.g), *s.shape), np.nan, dtype=np.float32)
        assert self.sn is not None and self.s32 is not None
        self.s[row] = s
        self.sn[row] = (self.s[row] * self.s[row]).sum(-1)
        self.s32[row] = s
        self.has_s[row] = True

    def _combined(self, qg: np.ndarray, qs: np.ndarray | None, lambda_g: float, g: np.ndarray, gn: np.ndarray,
                  s: np.ndarray | None, sn: np.ndarray | None) -> np.ndarray:
        sq = (qg * qg).sum(1)[:, None] + gn[None, :] - 2.0 * qg @ g.T
        dist = np.sqrt(np.maximum(sq, 0.0))
        if qs is not None and s is not None and sn is not None:
            local = np.zeros_like(dist)
            for k in range(qs.shape[1]):
                a = qs[:, k]
                b = s[:, k]
                sq = (a * a).sum(1)[:, None] + sn[None, :, k] - 2.0 * a @ b.T
                local += np.sqrt(np.maximum(sq, 0.0))
            local /= qs.shape[1]
            dist = lambda_g * dist + (1.0 - lambda_g) * local
        return dist

    def distances(self, qg: np.ndarray, qs: np.ndarray | None, lambda_g: float, gate: float,
                  exact_below: int) -> np.ndarray:
        """``[Q, n]`` combined distances; NaN rows give NaN.

        Up to ``exact_below`` identities: one float64 product over all of them, exactly the
        numbers :func:`~reid_edge.distance.combined_distance` gives. Above: a float32 product
        picks every identity within ``gate + 1e-3`` of some query (float32 errors are ~1e-6),
        then float64 distances of those; the others are ``inf`` (outside the gate anyway).
        """
        n = self.n
        qg = qg.astype(np.float64, copy=False)
        use_s = qs is not None and self.s is not None and bool(self.has_s[:n].all())
        s = self.s[:n] if use_s and self.s is not None else None
        sn = self.sn[:n] if use_s and self.sn is not None else None
        if n <= exact_below:
            return self._combined(qg, qs if use_s else None, lambda_g, self.g[:n], self.gn[:n], s, sn)
        s32 = self.s32[:n] if use_s and self.s32 is not None else None
        q32 = qg.astype(np.float32)
        qs32 = None if (qs is None or not use_s) else qs.astype(np.float32)
        g32 = self.g32[:n]
        gn32 = self.gn[:n].astype(np.float32)
        sn32 = None if sn is None else sn.astype(np.float32)
        approx = self._combined(q32, qs32, lambda_g, g32, gn32, s32, sn32)
        with np.errstate(invalid="ignore"):
            cand = np.flatnonzero((approx <= gate + 1e-3).any(0))
        out = np.full((len(qg), n), np.inf)
        if len(cand):
            out[:, cand] = self._combined(qg, qs if use_s else None, lambda_g, self.g[cand], self.gn[cand],
                                          None if s is None else s[cand], None if sn is None else sn[cand])
        return out


class Associator:
    """Cross-camera association state and decisions (the module docstring gives the algorithm).

    The same object serves the single-process pipeline (:class:`~.runner.Pipeline`) and a central
    associator fed by many edge boxes: both send :class:`TrackletEvent` values and get
    :class:`Decision` values back.

    - :meth:`decide` decides a round of new tracklets together (as :func:`match_tracklets`; an
      already decided ``event_id`` gets its stored decision back: safe to resend);
    - :meth:`update` brings a decided tracklet's appearance and end time up to date (the
      identity's appearance is the pool of all its tracklets' current appearances, and its
      intervals feed the feasibility rules).

    Scale: the identities' appearances live in one contiguous matrix; a decision is one matrix
    product against it, then the feasibility rules run only on each query's ``top_k`` nearest
    identities under the gate (at least as many as there are queries in the round, which
    keeps the Hungarian optimum: an optimal assignment never needs a query's
    ``(Q+1)``-th best column). With fewer gated candidates than ``top_k`` the decisions are
    those of :func:`match_tracklets` over all identities.

    Args:
        config: the gate and readiness settings.
        max_distance: the gate, when resolved elsewhere (:func:`resolve_gate`: configuration, model
            card, default); None: ``config.max_distance``, else :data:`DEFAULT_MAX_DISTANCE`.
        same_camera_max_distance: the same-camera gate, when resolved elsewhere
            (:func:`resolve_same_camera_gate`); None: ``config.same_camera_max_distance`` (None: none).
        lambda_g: weight of the global distance in the combined distance.
        global_dim: embedding size (rows of identities without an embedding are NaN).
        layout: camera layout whose transitions restrict moves (None: no restriction).
        gallery: an :class:`~.gallery.IdentityGallery` whose identities are loaded as known
            people (matched by appearance only: their times are from another session) and
            which is kept up to date (:meth:`flush`).
        top_k: candidates per query that go through the feasibility rules.
        exact_below: up to this many identities distances come from one float64 product over all
            of them (the numbers :func:`match_tracklets` computes, bit for bit); above, a
            float32 product pre-selects the identities near the gate first.
    """

    def __init__(self, config: AssociationConfig, lambda_g: float, global_dim: int,
                 layout: CameraLayout | None = None, gallery: object | None = None, top_k: int = 32,
                 exact_below: int = 2048, max_distance: float | None = None,
                 same_camera_max_distance: float | None = None) -> None:
        self.config = config
        gate = max_distance if max_distance is not None else config.max_distance
        self.max_distance = float(gate if gate is not None else DEFAULT_MAX_DISTANCE)
        scg = same_camera_max_distance if same_camera_max_distance is not None else config.same_camera_max_distance
        self.same_camera_max_distance = None if scg is None else float(scg)
        self.lambda_g = float(lambda_g)
        self.global_dim = int(global_dim)
        self.layout = layout
        self.top_k = max(1, int(top_k))
        self.exact_below = int(exact_below)
        self.next_gid = 1
        self._ids: list[_Identity] = []  # column order = order the identities were first decided
        self._col: dict[int, int] = {}
        self._decided: dict[str, Decision] = {}
        self._member: dict[str, tuple[_Identity, _Member]] = {}
        self._dirty: set[int] = set()  # columns whose pooled appearance must be recomputed
        self._rows = _Rows(self.global_dim)
        self._no_stripes = 0  # identities without stripes: the combined distance is then global only
        self.gallery = gallery
        self._unsaved: set[int] = set()
        if gallery is not None:
            for rec in gallery.load():  # type: ignore[attr-defined]
                ident = _Identity(rec.gid, prior_g=rec.global_sum, prior_s=rec.stripes_sum,
                                  prior_count=rec.tracklets, first_seen=rec.first_seen, last_seen=rec.last_seen,
                                  cameras=set(rec.cameras))
                self._add_identity(ident)
            self.next_gid = max(self.next_gid, int(gallery.next_gid()))  # type: ignore[attr-defined]

    # -- state ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    @property
    def identities(self) -> dict[int, list[Interval]]:
        """Every identity's tracklet intervals of this session, in decision order (gid -> intervals)."""
        return {d.gid: [m.interval for m in d.members] for d in self._ids}

    def decision(self, event_id: str) -> Decision | None:
        return self._decided.get(event_id)

    def _add_identity(self, ident: _Identity) -> None:
        col = len(self._ids)
        self._ids.append(ident)
        self._col[ident.gid] = col
        self.next_gid = max(self.next_gid, ident.gid + 1)
        self._store_row(col)

    def _store_row(self, col: int) -> None:
        ident = self._ids[col]
        g, s = ident.pooled()
        had = bool(self._rows.has_s[col]) if col < self._rows.n else True
        ug = None if g is None else _unit32(g)
        us = None if (g is None or s is None) else _unit32(s)
        self._rows.set(col, ug, us)
        if had and us is None:
            self._no_stripes += 1
        elif not had and us is not None:
            self._no_stripes -= 1

    def _refresh(self) -> None:
        for col in sorted(self._dirty):
            self._store_row(col)
        self._dirty.clear()

    # -- events --------------------------------------------------------------------------------------
    def update(self, event: TrackletEvent) -> None:
        """Newer appearance / end time of an already decided tracklet (unknown ids are ignored)."""
        hit = self._member.get(event.event_id)
        if hit is None:
            return
        ident, m = hit
        m.end_s = float(event.end_s)
        m.g = None if event.global_ is None else np.asarray(event.global_, np.float64)
        m.s = None if (event.global_ is None or event.stripes is None) else np.asarray(event.stripes, np.float64)
        ident.last_seen = _now()
        col = self._col[ident.gid]
        self._dirty.add(col)
        self._unsaved.add(col)

    def decide(self, events: Sequence[TrackletEvent]) -> list[Decision]:
        """Decide a round of tracklets together; one :class:`Decision` per event, in order."""
        out: list[Decision | None] = [None] * len(events)
        fresh: list[int] = []
        seen: set[str] = set()
        for i, ev in enumerate(events):
            if ev.event_id in self._decided:
                self.update(ev)
                out[i] = self._decided[ev.event_id]
            elif ev.event_id in seen:
                raise ValueError(f"event {ev.event_id} twice in one round")
            else:
                seen.add(ev.event_id)
                fresh.append(i)
        self._refresh()
        if fresh:
            for i, d in zip(fresh, self._match([events[i] for i in fresh])):
                out[i] = d
        return [d for d in out if d is not None]

    def _match(self, events: list[TrackletEvent]) -> list[Decision]:
        """:func:`match_tracklets` over the indexed identities (same rounds, same merges)."""
        rows = self._rows
        n0 = len(self._ids)
        qg_all = [None if e.global_ is None else _unit32(np.asarray(e.global_, np.float64)) for e in events]
        qs_all = [None if (e.global_ is None or e.stripes is None) else _unit32(np.asarray(e.stripes, np.float64))
                  for e in events]
        qiv = [Interval(e.camera, float(e.start_s), float(e.end_s)) for e in events]
        # in-round state: merged rows are written into the matrix; their views' weights and extra
        # intervals live here until the round ends and the pooled appearances are recomputed
        weight: dict[int, float] = {}
        extra: dict[int, list[Interval]] = {}
        new_views: list[tuple[int, int]] = []  # (column, event index) of identities founded this round
        gids: list[int | None] = [None] * len(events)
        dists: list[float | None] = [None] * len(events)
        no_stripes = self._no_stripes
        pending = list(range(len(events)))

        def intervals(col: int) -> list[Interval]:
            base = [m.interval for m in self._ids[col].members] if col < n0 else []
            return base + extra.get(col, [])

        scg = self.same_camera_max_distance

        def allowed(i: int, col: int, d: float) -> bool:
            ivs = intervals(col)
            if not feasible(qiv[i], ivs, self.layout, self.config.same_camera_gap_s):
                return False
            if scg is None or d <= scg:
                return True
            # a gallery identity's cameras include earlier sessions'
            return not (seen_by(qiv[i].camera, ivs) or (col < n0 and qiv[i].camera in self._ids[col].cameras))

        while pending:
            n = rows.n
            qi = [i for i in pending if qg_all[i] is not None]
            matches: list[tuple[int, int, float]] = []
            if qi and n:
                use_s = no_stripes == 0 and all(qs_all[i] is not None for i in qi)
                qg = np.stack([qg_all[i] for i in qi])  # type: ignore[misc]
                qs = np.stack([qs_all[i] for i in qi]) if use_s else None  # type: ignore[misc]
                dist = rows.distances(qg, qs, self.lambda_g, self.max_distance, self.exact_below)
                k = max(self.top_k, len(qi))
                cand: dict[int, dict[int, float]] = {}
                for r, i in enumerate(qi):
                    d = dist[r]
                    gated = np.flatnonzero(d <= self.max_distance)  # NaN rows never pass
                    if len(gated) > k:
                        gated = gated[np.argsort(d[gated], kind="stable")]
                    found = 0
                    for c in gated:
                        if allowed(i, int(c), float(d[c])):
                            cand.setdefault(r, {})[int(c)] = float(d[c])
                            found += 1
                            if found >= k:
                                break
                cols = sorted({c for row in cand.values() for c in row})
                if cols:
                    sub = np.full((len(qi), len(cols)), np.inf)
                    pos = {c: j for j, c in enumerate(cols)}
                    for r, row in cand.items():
                        for col, v in row.items():
                            sub[r, pos[col]] = v
                    m, _, _ = assign(sub, self.max_distance)
                    matches = [(qi[r], cols[c], float(sub[r, c])) for r, c in m]
            if matches:
                for i, col, d in matches:
                    gids[i] = self._gid_of(col, new_views, events)
                    dists[i] = d
                    extra.setdefault(col, []).append(qiv[i])
                    if qg_all[i] is None:
                        continue
                    w = weight.get(col, self._ids[col].weight if col < n0 else 1.0)
                    g = rows.g[col] * w + qg_all[i]
                    s_old = rows.s[col] if (rows.s is not None and rows.has_s[col]) else None
                    s_new = None
                    if s_old is not None and qs_all[i] is not None:
                        s = s_old * w + qs_all[i]
                        s_new = s / np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-12)
                    rows.set(col, g / max(float(np.linalg.norm(g)), 1e-12), s_new if s_new is not None else s_old)
                    weight[col] = w + 1.0
                done = {i for i, _, _ in matches}
                pending = [i for i in pending if i not in done]
                continue
            first = min(pending, key=lambda i: (events[i].start_s, i))
            col = rows.n
            rows.set(col, qg_all[first], qs_all[first])  # None: a NaN row that never matches
            if qs_all[first] is None:
                no_stripes += 1
            extra[col] = [qiv[first]]
            weight[col] = 1.0
            new_views.append((col, first))
            gids[first] = self.next_gid + len(new_views) - 1
            pending.remove(first)
        return self._commit(events, gids, dists, new_views)

    def _gid_of(self, col: int, new_views: list[tuple[int, int]], events: list[TrackletEvent]) -> int:
        if col < len(self._ids):
            return self._ids[col].gid
        return self.next_gid + [c for c, _ in new_views].index(col)

    def _commit(self, events: list[TrackletEvent], gids: list[int | None], dists: list[float | None],
                new_views: list[tuple[int, int]]) -> list[Decision]:
        """Make the round's decisions the new state: members appended in event order, new
        identities in the order their first tracklet appears in the round, rows recomputed."""
        n0 = len(self._ids)
        self._rows.n = n0
        touched: set[int] = set()
        now = _now()
        out = []
        for ev, gid, d in zip(events, gids, dists):
            assert gid is not None
            if gid not in self._col:
                ident = _Identity(gid, first_seen=now)
                self._ids.append(ident)
                self._col[gid] = len(self._ids) - 1
            col = self._col[gid]
            ident = self._ids[col]
            m = _Member(ev.event_id, ev.camera, float(ev.start_s), float(ev.end_s),
                        None if ev.global_ is None else np.asarray(ev.global_, np.float64),
                        None if (ev.global_ is None or ev.stripes is None) else np.asarray(ev.stripes, np.float64))
            ident.members.append(m)
            ident.cameras.add(ev.camera)
            ident.last_seen = now
            self._member[ev.event_id] = (ident, m)
            dec = Decision(ev.event_id, int(gid), d)
            self._decided[ev.event_id] = dec
            out.append(dec)
            touched.add(col)
        self.next_gid += len(new_views)
        for col in sorted(touched | set(range(n0, len(self._ids)))):
            if col >= n0:
                self._rows.has_s[col] = True  # a fresh row: counted by _store_row as it is set
            self._store_row(col)
        self._unsaved |= touched
        if self.gallery is not None:
            self.flush()
        return out

    # -- persistence ---------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every identity changed since the last flush to the gallery (one transaction)."""
        if self.gallery is None or not self._unsaved:
            return
        self._refresh()
        recs = []
        for col in sorted(self._unsaved):
            ident = self._ids[col]
            g, s = ident.pooled()
            recs.append((ident, g, s))
        self.gallery.save(recs, self.next_gid)  # type: ignore[attr-defined]
        self._unsaved.clear()


def _now() -> float:
    return time.time()
