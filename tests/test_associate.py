"""Cross-camera matcher (pure) and camera layout constraints on hand-made cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid_edge.errors import ConfigError
from reid_edge.pipeline.associate import IdentityView, Interval, Query, cost_matrix, feasible, match_tracklets
from reid_edge.pipeline.layout import layout_from_dict, load_layout
from reid_edge.pipeline.reid import Appearance, EmbedState, ReidConfig, box_quality, embed_priority, schedule


def unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=np.float64)
    return a / np.linalg.norm(a)


LAYOUT = layout_from_dict({
    "cameras": [{"name": "cam1", "fps": 10}, "cam2", "cam3"],
    "transitions": [{"from": "cam1", "to": "cam2", "min_s": 2, "max_s": 60}],
})


def test_layout_parsing_and_windows(tmp_path: Path) -> None:
    assert LAYOUT.fps_by_name() == {"cam1": 10.0}
    assert LAYOUT.allowed("cam1", "cam2", 5)
    assert not LAYOUT.allowed("cam1", "cam2", 1)  # too fast
    assert not LAYOUT.allowed("cam1", "cam2", 61)  # too slow
    assert not LAYOUT.allowed("cam2", "cam1", 5)  # not listed
    assert LAYOUT.allowed("cam2", "cam2", 0.1)  # same camera: always
    p = tmp_path / "layout.yaml"
    p.write_text("cameras: [cam1, cam2]\ntransitions:\n  - {from: cam1, to: cam9}\n")
    with pytest.raises(ConfigError, match="cam9"):
        load_layout(p)
    p.write_text("camras: []\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_layout(p)
    p.write_text("transitions:\n  - {from: a, to: b, min_s: 5, max_s: 1}\n")
    with pytest.raises(ConfigError, match="min_s"):
        load_layout(p)


def test_feasible_forbids_simultaneous_tracklets_in_one_camera() -> None:
    owned = [Interval("cam1", 0, 10)]
    assert not feasible(Interval("cam1", 5, 12), owned, None)
    assert feasible(Interval("cam1", 11, 12), owned, None)  # re-appears after leaving
    assert feasible(Interval("cam2", 5, 12), owned, None)  # overlapping views, no layout: allowed
    assert not feasible(Interval("cam2", 5, 12), owned, LAYOUT)  # with a layout: no teleporting
    assert feasible(Interval("cam2", 15, 20), owned, LAYOUT)  # 5 s after leaving cam1
    assert not feasible(Interval("cam2", 11, 20), owned, LAYOUT)  # 1 s: faster than min_s
    assert not feasible(Interval("cam3", 15, 20), owned, LAYOUT)  # no cam1 -> cam3 transition
    # the next appearance is checked too: cam2 first, then cam1 later is not a listed move
    assert not feasible(Interval("cam2", 0, 5), [Interval("cam1", 10, 20)], LAYOUT)


def test_hungarian_matching_with_threshold_and_new_identities() -> None:
    ids = [IdentityView(1, unit(1, 0, 0), None, [Interval("cam1", 0, 5)]),
           IdentityView(2, unit(0, 1, 0), None, [Interval("cam1", 1, 6)])]
    queries = [
        Query(Interval("cam2", 10, 12), unit(0.1, 1, 0)),  # person 2
        Query(Interval("cam2", 10, 12), unit(1, 0.1, 0)),  # person 1
        Query(Interval("cam2", 11, 13), unit(0, 0, 1)),  # nobody known
    ]
    gids, dists, after = match_tracklets(queries, ids, next_gid=3, max_distance=0.5)
    assert gids == [2, 1, 3]
    assert dists[0] == pytest.approx(np.linalg.norm(unit(0.1, 1, 0) - unit(0, 1, 0)))
    assert dists[2] is None
    assert [d.gid for d in after] == [1, 2, 3]
    assert len(ids[0].intervals) == 1  # inputs untouched


def test_one_identity_never_takes_two_simultaneous_tracklets_of_a_camera() -> None:
    ids = [IdentityView(1, unit(1, 0), None, [Interval("cam1", 0, 5)])]
    # two cam2 tracklets at the same time both look like identity 1
    queries = [Query(Interval("cam2", 10, 20), unit(1, 0.05)), Query(Interval("cam2", 12, 18), unit(1, 0.02))]
    gids, _, _ = match_tracklets(queries, ids, next_gid=2, max_distance=0.5)
    assert sorted(gids) == [1, 2]
    assert gids[1] == 1  # the closer one wins


def test_two_cameras_seeing_a_new_person_in_one_step_agree() -> None:
    queries = [Query(Interval("cam1", 0, 3), unit(1, 0)), Query(Interval("cam2", 0.5, 3), unit(1, 0.1)),
               Query(Interval("cam2", 0, 3), unit(0, 1))]
    gids, _, after = match_tracklets(queries, [], next_gid=1, max_distance=0.5)
    assert gids[0] == gids[1] != gids[2]
    assert len(after) == 2


def test_layout_refuses_out_of_window_match() -> None:
    ids = [IdentityView(1, unit(1, 0), None, [Interval("cam1", 0, 5)])]
    q = [Query(Interval("cam2", 5.5, 9), unit(1, 0))]  # identical look, but 0.5 s after leaving cam1
    assert match_tracklets(q, ids, 2, 0.5, layout=None)[0] == [1]
    assert match_tracklets(q, ids, 2, 0.5, layout=LAYOUT)[0] == [2]


def test_same_camera_gate_applies_only_to_identities_the_camera_has_seen() -> None:
    """Two people seen by one camera look closer than two seen by different cameras, so a re-link to
    an identity the query's camera already saw must pass the stricter same-camera gate."""
    q = unit(1, 0.6)  # 0.54 from unit(1, 0): under the gate 0.6, over the same-camera gate 0.5
    seen_by_cam1 = [IdentityView(1, unit(1, 0), None, [Interval("cam1", 0, 5)])]
    seen_by_cam2 = [IdentityView(1, unit(1, 0), None, [Interval("cam2", 0, 5)])]
    d = float(np.linalg.norm(q - unit(1, 0)))
    assert 0.5 < d < 0.6
    back_in_cam1 = [Query(Interval("cam1", 30, 35), q)]
    assert match_tracklets(back_in_cam1, seen_by_cam1, 2, 0.6)[0] == [1]  # no same-camera gate: the gate alone
    assert match_tracklets(back_in_cam1, seen_by_cam1, 2, 0.6, same_camera_max_distance=0.5)[0] == [2]
    assert match_tracklets(back_in_cam1, seen_by_cam2, 2, 0.6, same_camera_max_distance=0.5)[0] == [1]
    assert match_tracklets(back_in_cam1, seen_by_cam1, 2, 0.6, same_camera_max_distance=0.55)[0] == [1]
    cost = cost_matrix(back_in_cam1, seen_by_cam1 + [IdentityView(2, unit(1, 0), None, [Interval("cam3", 0, 5)])],
                       1.0, None, same_camera_max_distance=0.5)
    assert np.isinf(cost[0, 0]) and cost[0, 1] == pytest.approx(d)


def test_cost_uses_stripes_with_lambda() -> None:
    ids = [IdentityView(1, unit(1, 0), np.stack([unit(1, 0), unit(0, 1)]), [])]
    q = [Query(Interval("cam2", 0, 1), unit(1, 0), np.stack([unit(0, 1), unit(0, 1)]))]
    # global distance 0, stripe distances sqrt(2) and 0 -> mean sqrt(2)/2
    assert cost_matrix(q, ids, 1.0, None)[0, 0] == pytest.approx(0.0)
    assert cost_matrix(q, ids, 0.5, None)[0, 0] == pytest.approx(0.5 * np.sqrt(2) / 2)
    # no appearance: never matched, always a new identity
    assert np.isinf(cost_matrix([Query(Interval("cam2", 0, 1), None)], ids, 0.5, None)).all()


def test_box_quality_terms() -> None:
    boxes = np.array([
        [100, 50, 40, 100, 0],  # good: tall, aspect 2.5, inside
        [0, 50, 40, 100, 0],  # touches the left border
        [300, 50, 100, 100, 0],  # square
        [400, 50, 20, 50, 0],  # small
    ])[:, :4]
    q = box_quality(boxes, 640, 480, ref_height=100)
    assert q[0] == pytest.approx(1.0)
    assert q[1] == pytest.approx(0.5)
    assert q[2] == pytest.approx(0.4)
    assert q[3] == pytest.approx(0.5)
    occluded = box_quality(np.array([[100, 50, 40, 100], [120, 50, 40, 100]]), 640, 480, 100)
    assert occluded[0] == pytest.approx(0.5)


def test_embed_schedule() -> None:
    cfg = ReidConfig(every_k=5, improve_ratio=1.25, min_quality=0.2, max_per_step=2)
    assert embed_priority(EmbedState(), 0.05, 1, cfg) is not None  # new track: always
    old = EmbedState(count=1, last_frame=10, best_quality=0.5)
    assert embed_priority(old, 0.55, 12, cfg) is None  # not better enough, not due
    assert embed_priority(old, 0.7, 12, cfg) is not None  # clearly better box
    assert embed_priority(old, 0.5, 15, cfg) is not None  # due
    assert embed_priority(old, 0.1, 30, cfg) is None  # too poor to bother
    cands = [("old-due", old, 0.5), ("new", EmbedState(), 0.3), ("better", old, 0.9)]
    assert schedule(cands, {"old-due": 15, "new": 15, "better": 15}, cfg) == ["new", "better"]


def test_appearance_is_quality_weighted_mean() -> None:
    app = Appearance()
    app.add(unit(1, 0), np.stack([unit(1, 0)]), 3.0)
    app.add(unit(0, 1), np.stack([unit(0, 1)]), 1.0)
    np.testing.assert_allclose(app.global_, unit(3, 1), atol=1e-6)
    np.testing.assert_allclose(app.stripes[0], unit(3, 1), atol=1e-6)
    other = Appearance()
    other.add(unit(0, 1), None, 2.0)
    app.merge(other)
    np.testing.assert_allclose(app.global_, unit(3, 3), atol=1e-6)
    assert app.count == 3
