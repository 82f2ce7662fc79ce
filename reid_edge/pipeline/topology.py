"""Camera topology without labels: each camera pair's travel-time window from confident matches.

Input: decided tracklets (camera, start/end on the site clock, global id, the distance at which
the tracklet joined its identity). Nobody labels anything: an identity's consecutive tracklets
in two different cameras are one observed move ``A -> B`` taking ``start(B) - end(A)`` seconds,
and it counts as evidence when the later tracklet joined at a distance no larger than
``confident_distance`` (a match well inside the gate; founders and weak matches are left out).

For every ordered camera pair with at least ``min_moves`` moves the window is the
``[quantile, 1 - quantile]`` range of the observed travel times, widened by ``margin`` (a
fraction of the range, at least ``min_margin_s``) and clipped at 0 (a move seen with
overlapping views counts as 0 s). Pairs with fewer moves are left out, so under the learned
layout they are forbidden: learn from enough footage, or lower ``min_moves``.

The result is the existing layout YAML (:mod:`.layout`): ``reid-edge layout-learn`` writes it,
``reid-edge run --layout`` uses it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .layout import CameraLayout, CameraSpec, Transition


@dataclass(frozen=True)
class TopologyConfig:
    """How confident a match must be and how much evidence a camera pair needs."""

    confident_distance: float = 0.7
    min_moves: int = 3
    quantile: float = 0.05
    margin: float = 0.25
    min_margin_s: float = 2.0
    unseen_pairs: str = "forbid"  # "forbid": only learned pairs are listed; "allow": others get [0, inf)

    def __post_init__(self) -> None:
        if self.confident_distance <= 0 or self.min_moves < 1 or not 0 <= self.quantile < 0.5 or self.margin < 0:
            raise ConfigError("topology: need confident_distance > 0, min_moves >= 1, 0 <= quantile < 0.5, "
                              "margin >= 0")
        if self.unseen_pairs not in ("forbid", "allow"):
            raise ConfigError("topology: unseen_pairs is 'forbid' or 'allow'")


@dataclass(frozen=True)
class DecidedTracklet:
    """One decided tracklet as association left it (``distance`` None: it founded its identity)."""

    global_id: int
    camera: str
    start_s: float
    end_s: float
    distance: float | None


def observed_moves(tracklets: Iterable[DecidedTracklet],
                   confident_distance: float) -> dict[tuple[str, str], list[float]]:
    """Travel times of confident cross-camera moves, per ordered camera pair."""
    by_id: dict[int, list[DecidedTracklet]] = defaultdict(list)
    for t in tracklets:
        by_id[t.global_id].append(t)
    moves: dict[tuple[str, str], list[float]] = defaultdict(list)
    for members in by_id.values():
        members.sort(key=lambda t: (t.start_s, t.end_s))
        for a, b in zip(members, members[1:]):
            if a.camera == b.camera or b.distance is None or b.distance > confident_distance:
                continue
            moves[(a.camera, b.camera)].append(max(0.0, b.start_s - a.end_s))
    return dict(moves)


def learn_layout(tracklets: Iterable[DecidedTracklet], config: TopologyConfig = TopologyConfig(),
                 cameras: Iterable[str] = ()) -> CameraLayout:
    """A layout whose transitions are the camera pairs seen moving confidently (module docstring)."""
    tl = list(tracklets)
    moves = observed_moves(tl, config.confident_distance)
    trans = []
    for (a, b), gaps in sorted(moves.items()):
        if len(gaps) < config.min_moves:
            continue
        lo, hi = (float(v) for v in np.quantile(np.asarray(gaps), [config.quantile, 1.0 - config.quantile]))
        pad = max(config.margin * (hi - lo), config.min_margin_s)
        trans.append(Transition(a, b, round(max(0.0, lo - pad), 2), round(hi + pad, 2)))
    names = sorted(set(cameras) | {t.camera for t in tl})
    if config.unseen_pairs == "allow":
        listed = {(t.src, t.dst) for t in trans}
        trans += [Transition(a, b) for a in names for b in names if a != b and (a, b) not in listed]
    return CameraLayout(tuple(CameraSpec(n) for n in names), tuple(trans), restrict_transitions=bool(trans))


def layout_to_yaml(layout: CameraLayout) -> str:
    """The layout YAML text that :func:`~.layout.load_layout` reads back."""
    import yaml

    data: dict[str, object] = {}
    if layout.cameras:
        data["cameras"] = [{k: v for k, v in (("name", c.name), ("source", c.source), ("fps", c.fps)) if v is not None}
                           for c in layout.cameras]
    data["transitions"] = [{"from": t.src, "to": t.dst, "min_s": t.min_s, "max_s": t.max_s}
                           for t in layout.transitions]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def write_layout(layout: CameraLayout, path: str | Path) -> None:
    """Write the layout YAML atomically."""
    from ..io import atomic_open

    with atomic_open(path, "w") as handle:
        handle.write(layout_to_yaml(layout))


def read_events(path: str | Path) -> list[DecidedTracklet]:
    """Decided tracklets from a run's ``events.jsonl`` (``reid-edge run`` output).

    Raises:
        DataError: missing file or a line that is not an event.
    """
    import json

    p = Path(path)
    if p.is_dir():
        p = p / "events.jsonl"
    if not p.is_file():
        raise DataError(f"{p} does not exist (give a run's output folder or its events.jsonl)")
    out = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            d = e.get("match_distance")
            out.append(DecidedTracklet(int(e["global_id"]), str(e["camera"]), float(e["first_s"]),
                                       float(e["last_s"]), None if d is None else float(d)))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{p}:{n}: not a reid-edge tracklet event ({exc})") from None
    return out
