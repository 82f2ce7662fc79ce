"""The stateful Associator: same decisions as the pure matcher, idempotent, serialisable, indexed."""

from __future__ import annotations

import numpy as np
import pytest

from reid_edge.pipeline.associate import (
    AssociationConfig,
    Associator,
    IdentityView,
    Interval,
    Query,
    TrackletEvent,
    match_tracklets,
    readiness,
)
from reid_edge.pipeline.layout import layout_from_dict
from reid_edge.pipeline.reid import Appearance

LAYOUT = layout_from_dict({"transitions": [{"from": "c0", "to": "c1", "min_s": 1, "max_s": 30},
                                           {"from": "c1", "to": "c2", "min_s": 1, "max_s": 30},
                                           {"from": "c2", "to": "c0", "min_s": 1, "max_s": 30}]})


def _reference_rounds(rounds: list[list[tuple[str, str, float, float, Appearance]]], gate: float, lam: float,
                      dim: int, layout: object, same_camera_gap_s: float = 0.0,
                      same_camera_max_distance: float | None = None) -> list[int]:
    """What the pipeline did before the Associator: views pooled from members' Appearance each round."""
    identities: dict[int, list[tuple[str, float, float, Appearance]]] = {}
    next_gid = 1
    out = []
    for rnd in rounds:
        views = []
        for gid, members in identities.items():
            app = Appearance()
            for m in members:
                app.merge(m[3])
            g = app.global_.astype(np.float64) if not app.empty else np.full(dim, np.nan)
            s = app.stripes.astype(np.float64) if (not app.empty and app.stripes is not None) else None
            views.append(IdentityView(gid, g, s, [Interval(m[0], m[1], m[2]) for m in members], float(len(members))))
        queries = [Query(Interval(c, a, b), None if app.empty else app.global_.astype(np.float64),
                         None if app.stripes is None else app.stripes.astype(np.float64)) for _, c, a, b, app in rnd]
        gids, _, _ = match_tracklets(queries, views, next_gid, gate, lam, layout,  # type: ignore[arg-type]
                                     same_camera_gap_s, same_camera_max_distance)
        for (_, c, a, b, app), gid in zip(rnd, gids):
            identities.setdefault(gid, []).append((c, a, b, app))
            next_gid = max(next_gid, gid + 1)
        out.extend(gids)
    return out


def _random_rounds(seed: int, people: int, rounds: int, stripes: bool) -> list[list[tuple[str, str, float, float,
                                                                                          Appearance]]]:
    rng = np.random.default_rng(seed)
    looks = rng.normal(size=(people, 8))
    out = []
    t = 0.0
    n = 0
    for _ in range(rounds):
        rnd = []
        for _ in range(int(rng.integers(1, 4))):
            p = int(rng.integers(people))
            app = Appearance()
            if n < 4 or rng.random() > 0.1:  # some tracklets end without an embedding
                for _ in range(int(rng.integers(1, 4))):
                    g = looks[p] + 0.6 * rng.normal(size=8)
                    app.add(g, np.stack([g[:4], g[4:]]) if stripes else None, float(rng.uniform(0.2, 1)))
            start = t + float(rng.uniform(0, 3))
            rnd.append((f"e{n}", f"c{int(rng.integers(3))}", start, start + float(rng.uniform(1, 6)), app))
            n += 1
        t += float(rng.uniform(0.5, 4))
        out.append(rnd)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("top_k", "exact_below"), [(1, 2048), (32, 2048), (2, 0)])
@pytest.mark.parametrize(("gap", "same_camera"), [(0.0, None), (10.0, None), (0.0, 0.8)])
def test_decisions_equal_the_pure_matcher(seed: int, top_k: int, exact_below: int, gap: float,
                                          same_camera: float | None) -> None:
    """Pruned candidates (top_k 1), every candidate, and the float32 pre-selection of large galleries;
    with and without the same-camera gate (from the configuration here)."""
    stripes = seed % 2 == 0
    layout = LAYOUT if seed % 3 == 0 else None
    rounds = _random_rounds(seed, people=12, rounds=25, stripes=stripes)
    want = _reference_rounds(rounds, 1.0, 0.5, 8, layout, gap, same_camera)
    assoc = Associator(AssociationConfig(max_distance=1.0, same_camera_gap_s=gap, same_camera_max_distance=same_camera),
                       0.5, 8, layout, top_k=top_k, exact_below=exact_below)
    got = []
    for rnd in rounds:
        evs = [TrackletEvent(e, c, a, b, *app.sums(), app.weight, True) for e, c, a, b, app in rnd]
        got.extend(d.global_id for d in assoc.decide(evs))
    assert got == want
    assert len(set(want)) > 3  # the case is not trivial: several identities, several matches
    assert len(set(want)) < len(want)


def test_update_keeps_the_identity_current_and_decide_is_idempotent() -> None:
    assoc = Associator(AssociationConfig(max_distance=0.5), 1.0, 2)
    a = TrackletEvent("cam1/1", "cam1", 0, 2, np.array([1.0, 0.0]), None, 1.0)
    [d1] = assoc.decide([a])
    assert d1.global_id == 1 and d1.distance is None
    assert assoc.decide([a]) == [d1]  # resent: the stored decision
    # the tracklet turns out to look like (0, 1): a later (0, 1) tracklet now joins it
    assoc.update(TrackletEvent("cam1/1", "cam1", 0, 5, np.array([0.1, 3.0]), None, 4.0, final=True))
    [d2] = assoc.decide([TrackletEvent("cam2/7", "cam2", 6, 8, np.array([0.0, 1.0]), None, 1.0)])
    assert d2.global_id == 1 and d2.distance == pytest.approx(np.linalg.norm(np.array([0.1, 3]) / np.hypot(0.1, 3)
                                                                             - np.array([0, 1])), abs=1e-6)
    assert assoc.identities == {1: [Interval("cam1", 0, 5), Interval("cam2", 6, 8)]}
    # a simultaneous tracklet of the same camera can never join
    [d3] = assoc.decide([TrackletEvent("cam2/8", "cam2", 7, 9, np.array([0.0, 1.0]), None, 1.0)])
    assert d3.global_id == 2


def test_event_round_trips_through_json() -> None:
    import json

    ev = TrackletEvent("src/cam1/3", "cam1", 1.5, 4.0, np.array([0.5, 0.25]), np.ones((2, 3)), 2.0, True)
    back = TrackletEvent.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert back.event_id == ev.event_id and back.final and back.weight == 2.0
    np.testing.assert_array_equal(back.global_, ev.global_)
    np.testing.assert_array_equal(back.stripes, ev.stripes)


def test_readiness() -> None:
    cfg = AssociationConfig(decide_after_s=2.0, min_tracklet_frames=5)
    assert readiness(1.0, 1, 10, False, cfg) == "wait"
    assert readiness(2.5, 0, 10, False, cfg) == "wait"  # no embedding yet
    assert readiness(2.5, 1, 10, False, cfg) == "decide"
    assert readiness(0.3, 0, 4, True, cfg) == "drop"
    assert readiness(0.3, 0, 5, True, cfg) == "decide"
