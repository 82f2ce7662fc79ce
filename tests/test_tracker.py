"""Tracker: the pure assignment step on hand-made cases, then the ByteTrack-style stages."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from reid_edge.errors import ConfigError
from reid_edge.pipeline.tracker import ByteTracker, KalmanBoxFilter, TrackerConfig, assign, iou_matrix


def test_iou_matrix_hand_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_assign_is_globally_optimal_and_gated() -> None:
    # Greedy on row 0 would take col 0 (0.1) and leave row 1 with 0.95; Hungarian takes 0.2 + 0.3.
    cost = np.array([[0.1, 0.2], [0.3, 0.95]])
    matches, ur, uc = assign(cost, 0.9)
    assert matches == [(0, 1), (1, 0)] and ur == [] and uc == []
    # the gate forbids a pair even when it is the only option
    matches, ur, uc = assign(np.array([[0.95]]), 0.9)
    assert matches == [] and ur == [0] and uc == [0]
    # inf marks a forbidden pair
    matches, ur, uc = assign(np.array([[np.inf, 0.5], [0.1, np.inf]]), 0.9)
    assert matches == [(0, 1), (1, 0)]
    assert assign(np.zeros((0, 3)), 0.5) == ([], [], [0, 1, 2])


def test_assign_crossing_paths_prefers_consistent_pairs() -> None:
    # two people just past crossing: A (moving right) is predicted at 53, B (moving left) at 47;
    # the detections, listed B-side first, must still go to the track whose prediction they fit
    tracks = np.array([[53, 0, 10, 30], [47, 0, 10, 30]])
    dets = np.array([[46, 0, 10, 30], [54, 0, 10, 30]])
    matches, _, _ = assign(1 - iou_matrix(tracks, dets), 0.8)
    assert matches == [(0, 1), (1, 0)]


def test_kalman_predicts_constant_velocity() -> None:
    kf = KalmanBoxFilter(np.array([0, 0, 10, 20]))
    for t in range(1, 8):
        kf.predict()
        kf.update(np.array([5 * t, 0, 10, 20]))
    kf.predict()
    assert kf.box[0] == pytest.approx(40, abs=1.5)


def _walk(n: int, x0: float, vx: float, y: float = 10.0, score: float = 0.9) -> list[np.ndarray]:
    return [np.array([x0 + vx * t, y, 20, 50, score]) for t in range(n)]


def test_tracker_keeps_ids_through_crossing() -> None:
    tr = ByteTracker(TrackerConfig(min_hits=2))
    a = _walk(30, 0, 4)
    b = _walk(30, 116, -4)
    ids_a, ids_b = set(), set()
    for t in range(30):
        active, _ = tr.update(np.stack([a[t], b[t]]))
        for trk in active:
            if abs(trk.det_box[0] - a[t][0]) < 1e-6:
                ids_a.add(trk.track_id)
            else:
                ids_b.add(trk.track_id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_tracker_survives_missed_detections_and_recovers_low_scores() -> None:
    tr = ByteTracker(TrackerConfig(min_hits=2, track_buffer=5))
    walk = _walk(25, 0, 3)
    seen = set()
    for t in range(25):
        if 8 <= t < 11:
            dets = np.zeros((0, 5))  # occluded: no detection at all
        elif 15 <= t < 18:
            dets = walk[t].copy()[None]
            dets[0, 4] = 0.3  # partly occluded: low score, stage 2 keeps the track
        else:
            dets = walk[t][None]
        active, finished = tr.update(dets)
        assert not finished
        if 15 <= t < 18:
            assert len(active) == 1
        seen |= {a.track_id for a in active}
    assert seen == {1}
    # the history holds every matched frame, tentative ones included, and the 3 occluded frames
    # filled in by linear interpolation between the (filtered) boxes around the gap
    hist = tr.tracks[0].history
    assert [h[0] for h in hist] == list(range(1, 26))
    for t in (8, 9, 10):
        assert hist[t][1] == pytest.approx(walk[t][0], abs=0.5)


def test_long_gaps_are_not_interpolated() -> None:
    tr = ByteTracker(TrackerConfig(min_hits=1, track_buffer=30, interpolate_gaps=2))
    tr.update(np.array([[0, 0, 20, 50, 0.9]]))
    for _ in range(3):
        tr.update(np.zeros((0, 5)))
    tr.update(np.array([[4, 0, 20, 50, 0.9]]))
    assert [h[0] for h in tr.tracks[0].history] == [1, 5]


def test_tracker_finishes_after_buffer_and_ignores_low_score_births() -> None:
    tr = ByteTracker(TrackerConfig(min_hits=1, track_buffer=2))
    tr.update(np.array([[0, 0, 20, 50, 0.9]]))
    finished_at = None
    for f in range(2, 8):
        _, fin = tr.update(np.array([[300, 300, 20, 50, 0.3]]))  # low score: never starts a track
        if fin and finished_at is None:
            finished_at = f
    assert finished_at == 4  # unmatched on frames 2, 3, 4: more than 2 frames lost
    assert tr.tracks == []


def test_tentative_track_dies_at_first_miss() -> None:
    tr = ByteTracker(TrackerConfig(min_hits=3))
    tr.update(np.array([[0, 0, 20, 50, 0.9]]))
    active, _ = tr.update(np.zeros((0, 5)))
    assert active == [] and tr.tracks == []


def test_appearance_cost_breaks_an_iou_tie() -> None:
    cfg = TrackerConfig(min_hits=1, appearance_weight=0.5)
    tr = ByteTracker(cfg)
    tr.update(np.array([[0, 0, 20, 50, 0.9], [10, 0, 20, 50, 0.9]]))
    t1, t2 = tr.tracks
    t1.appearance = np.array([1.0, 0.0])
    t2.appearance = np.array([0.0, 1.0])
    # both detections now sit between the two tracks; appearance decides
    dets = np.array([[5, 0, 20, 50, 0.9], [5, 1, 20, 50, 0.9]])
    feats = np.array([[0.0, 1.0], [1.0, 0.0]])
    tr.update(dets, features=feats)
    assert t1.det_box[1] == 1 and t2.det_box[1] == 0


@pytest.mark.parametrize("gate", [1.2, 0.85, None])
def test_appearance_gate_refuses_a_look_alike_box(gate: float | None) -> None:
    """A box at a track's place but 1.0 away in appearance: the old gate (1.2, still the default
    without a card value) lets it join; 0.85 lets the track go lost and the box start its own."""
    tr = ByteTracker(TrackerConfig(min_hits=1, max_appearance_dist=gate))
    tr.update(np.array([[0, 0, 20, 50, 0.9], [12, 0, 20, 50, 0.9]]))
    t1, t2 = tr.tracks
    t1.appearance = np.array([1.0, 0.0])
    t2.appearance = np.array([0.0, 1.0])
    feats = np.array([[0.5, np.sqrt(0.75)], [0.0, 1.0]])  # distance 1.0 from t1, 0.52 from t2
    tr.update(np.array([[0, 0, 20, 50, 0.9], [12, 0, 20, 50, 0.9]]), features=feats)
    assert t2.last_frame == 2 and t2.det_box[0] == 12
    if gate == 0.85:
        assert t1.state == "lost" and len(tr.tracks) == 3 and tr.tracks[-1].det_box[0] == 0
    else:
        assert t1.last_frame == 2 and t1.det_box[0] == 0 and len(tr.tracks) == 2


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        TrackerConfig(low_thresh=0.6, high_thresh=0.5)
    with pytest.raises(ConfigError, match="max_appearance_dist"):
        TrackerConfig(max_appearance_dist=0.0)
    with pytest.raises(ConfigError):
        TrackerConfig(min_hits=0)
    with pytest.raises(ConfigError, match="min_box_height"):
        TrackerConfig(min_box_height=-1)


def test_boxes_below_min_height_are_not_tracked_and_features_stay_aligned() -> None:
    # a 20 px tall person (too small to re-identify) beside a 50 px one: only the tall one is tracked,
    # at the default 24 px; the features of the kept box are the right ones after the small one is dropped
    tr = ByteTracker(TrackerConfig(min_hits=1))
    dets = np.array([[0, 0, 8, 20, 0.95], [100, 0, 20, 50, 0.9], [200, 0, 10, 24, 0.9]])
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    for _ in range(3):
        tr.update(dets, features=feats)
    assert sorted(t.det_box[0] for t in tr.tracks) == [100, 200]  # 24 px itself is kept
    np.testing.assert_allclose(next(t for t in tr.tracks if t.det_box[0] == 100).appearance, [0.0, 1.0])
    # 0 tracks every box
    tr = ByteTracker(TrackerConfig(min_hits=1, min_box_height=0))
    tr.update(dets, features=feats)
    assert len(tr.tracks) == 3


def test_refind_cost_gates_by_appearance_reach_and_height() -> None:
    from reid_edge.pipeline.tracker import refind_cost

    cfg = TrackerConfig(refind_dist=0.9, refind_radius=1.5, refind_speed=0.1)
    last = np.array([[100.0, 100.0, 20.0, 50.0]])  # centre (110, 125), height 50
    feats_t = np.array([[1.0, 0.0]])
    boxes = np.array([
        [150.0, 100.0, 20.0, 50.0],  # 50 px away: within (1.5 + 0.1 * 10) * 50 = 125
        [300.0, 100.0, 20.0, 50.0],  # 200 px away: too far after 10 frames
        [120.0, 100.0, 20.0, 120.0],  # height x2.4: another person
        [120.0, 100.0, 20.0, 50.0],  # near, but looks different
    ])
    feats = np.array([[0.8, 0.6], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    cost = refind_cost(last, np.array([10]), feats_t, boxes, feats, cfg)
    assert cost[0, 0] == pytest.approx(np.hypot(0.2, 0.6))
    assert np.isinf(cost[0, 1:]).all()
    # after 40 frames lost the reach is (1.5 + 4) * 50 = 275 px: the far box becomes possible
    assert np.isfinite(refind_cost(last, np.array([40]), feats_t, boxes, feats, cfg)[0, 1])


def _stroll(x0: float, frame: int, speed: float = 2.0) -> list[float]:
    return [x0 + speed * frame, 100.0, 20.0, 50.0, 0.9]


def test_lost_track_is_refound_by_appearance_after_a_long_gap() -> None:
    """A person hidden for 45 frames (longer than the IoU stages' buffer) keeps their id when they
    reappear where they could have walked; someone who looks different gets a new id."""
    looks = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}
    calls: list[int] = []

    def run(who_returns: str) -> tuple[int, int]:
        tr = ByteTracker(TrackerConfig(min_hits=2))
        owner: dict[tuple[float, ...], np.ndarray] = {}

        def embed(boxes: np.ndarray) -> np.ndarray:
            calls.append(len(boxes))
            return np.stack([owner[tuple(b)] for b in boxes])

        first = None
        for f in range(1, 101):
            if 45 <= f < 90:  # hidden
                tr.update(np.zeros((0, 5)), frame=f, embed=embed)
                continue
            det = np.array([_stroll(0.0, f)])
            owner.clear()
            owner[tuple(det[0, :4])] = looks["a" if f < 45 else who_returns]
            active, _ = tr.update(det, frame=f, embed=embed)
            if f == 40:
                first = active[0].track_id
                # the pipeline's scheduled embedding gives the confirmed track its appearance
                active[0].add_appearance(looks["a"], tr.config.appearance_momentum)
            if f == 95:
                assert first is not None
                return first, (active[0].track_id if active else -1)
        raise AssertionError("unreachable")

    same, again = run("a")
    assert same == again
    calls.clear()
    first, other = run("b")
    assert first != other
    assert sum(calls) >= 1  # the returning box was embedded, on demand


def test_unambiguous_frames_embed_nothing() -> None:
    calls: list[int] = []
    tr = ByteTracker(TrackerConfig(min_hits=1))
    for f in range(1, 20):
        dets = np.array([_stroll(0.0, f), _stroll(300.0, f)])
        active, _ = tr.update(dets, frame=f, embed=lambda b: calls.append(len(b)) or np.ones((len(b), 2)))
        for t in active:
            t.add_appearance(np.array([1.0, 0.0]), 0.8)
    assert calls == []  # two people far apart: IoU decides, no crop is embedded


def _return_with_a_poor_first_crop(
    refind_young: int, can_merge: Callable[[int], bool] | None = None,
) -> tuple[int, int, ByteTracker, list[tuple[int, int]]]:
    """Person "a" walks, is hidden for 45 frames (longer than the IoU stages' buffer) and comes back;
    the first crop of the return looks like nobody (half hidden), the next ones like "a". Returns (id
    before, id after, tracker, merged pairs seen)."""
    looks = {"a": np.array([1.0, 0.0, 0.0]), "half": np.array([0.0, 0.0, 1.0])}
    tr = ByteTracker(TrackerConfig(min_hits=2, refind_young=refind_young))
    owner: dict[tuple[float, ...], np.ndarray] = {}
    merged: list[tuple[int, int]] = []
    first = after = -1
    for f in range(1, 101):
        if 30 <= f < 75:
            tr.update(np.zeros((0, 5)), frame=f, embed=lambda b: np.stack([owner[tuple(x)] for x in b]))
            continue
        det = np.array([_stroll(0.0, f)])
        owner.clear()
        owner[tuple(det[0, :4])] = looks["half" if f == 75 else "a"]
        active, _ = tr.update(det, frame=f, embed=lambda b: np.stack([owner[tuple(x)] for x in b]), can_merge=can_merge)
        merged += tr.merged
        if f == 25:
            first = active[0].track_id
            active[0].add_appearance(looks["a"], tr.config.appearance_momentum)  # the pipeline's scheduled crop
        if f == 90:
            after = active[0].track_id
    return first, after, tr, merged


def test_a_young_track_that_is_a_lost_person_is_merged_into_them() -> None:
    """The return's first crop alone does not re-find the person (a new track starts); with
    ``refind_young`` the next, clearer crops do, and the young track's rows continue the old one."""
    first, after, _, merged = _return_with_a_poor_first_crop(refind_young=0)
    assert first != after and merged == []
    first, after, tr, merged = _return_with_a_poor_first_crop(refind_young=10)
    assert first == after
    assert len(merged) == 1 and merged[0][1] == first and merged[0][0] != first
    (track,) = [t for t in tr.tracks if t.track_id == first]
    frames = [row[0] for row in track.history]
    assert frames == sorted(set(frames))  # every frame once, in order
    assert 75 in frames and 74 not in frames and 29 in frames  # the young track's first row is kept; a
    # 45-frame gap is longer than the fill-in (10), so nothing is drawn across it
    assert not any(t.track_id == merged[0][0] for t in tr.tracks)


def test_a_young_track_its_owner_refuses_to_merge_keeps_its_id() -> None:
    first, after, _, merged = _return_with_a_poor_first_crop(refind_young=10, can_merge=lambda tid: False)
    assert first != after and merged == []


def test_a_track_born_before_the_lost_one_vanished_is_never_it() -> None:
    """Two people side by side; one vanishes: the other (older than the gap) is never merged into them
    even though they look alike."""
    tr = ByteTracker(TrackerConfig(min_hits=1, refind_young=50))
    same = np.array([1.0, 0.0])
    for f in range(1, 40):
        dets = [_stroll(0.0, f), _stroll(200.0, f)] if f < 20 else [_stroll(200.0, f)]
        active, _ = tr.update(np.array(dets), frame=f, embed=lambda b: np.tile(same, (len(b), 1)))
        for t in active:
            t.add_appearance(same, 0.8)
        assert tr.merged == []
    assert sorted(t.track_id for t in tr.tracks) == [1, 2]


def test_refind_young_is_checked() -> None:
    with pytest.raises(ConfigError):
        TrackerConfig(refind_young=-1)


def test_young_refinding_is_on_for_models_checked_for_tracking() -> None:
    """Off (0) unless configured or the model card carries a track gate (an embedding checked for tracking)."""
    from types import SimpleNamespace

    from reid_edge.pipeline.tracker import DEFAULT_REFIND_YOUNG, resolve_refind_young

    assert resolve_refind_young(None, None) == (0, "default")
    assert resolve_refind_young(None, SimpleNamespace(track_gate=None)) == (0, "default")
    assert resolve_refind_young(None, SimpleNamespace(track_gate=0.85)) == (DEFAULT_REFIND_YOUNG, "model card")
    assert resolve_refind_young(3, SimpleNamespace(track_gate=0.85)) == (3, "config")
    assert ByteTracker().refind_young == 0 and ByteTracker(TrackerConfig(refind_young=4)).refind_young == 4
