"""The Duke association benchmark's clock, tracklets, replay and scores, on made-up file names."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.duke_association import START_TIMES, build_tracklets, parse_name, replay, score
from reid_edge.pipeline.associate import AssociationConfig


def test_clock_and_tracklet_splits() -> None:
    assert parse_name("0005_c2_f0046985.jpg") == (5, 2, 46985)
    assert START_TIMES[4] == 1  # camera 5 starts the global clock (DukeMTMC devkit)
    names = ["0001_c1_f0000100.jpg", "0001_c1_f0000220.jpg",  # one tracklet (2 s apart)
             "0001_c1_f0003000.jpg",  # 46 s later: a new tracklet
             "0001_c2_f0000100.jpg", "0002_c1_f0000100.jpg"]
    tracks = build_tracklets(names, split_gap_s=10.0)
    assert sorted(len(t.crops) for t in tracks) == [1, 1, 1, 2]
    c2 = next(t for t in tracks if t.camera == "c2")
    assert c2.crops[0].time_s == pytest.approx((100 + 3607 - 1) / 60.0)


def test_replay_and_scores() -> None:
    rng = np.random.default_rng(0)
    looks = rng.normal(size=(3, 16))
    names, feats = [], []
    for pid in range(3):
        for cam, f0 in ((1, 0), (5, 5542 + 600 * (pid + 1))):  # camera 1 first, camera 5 later
            for k in range(3):
                names.append(f"{pid + 1:04d}_c{cam}_f{f0 + 1000 + 120 * k:07d}.jpg")
                v = looks[pid] + 0.1 * rng.normal(size=16)
                feats.append(v / np.linalg.norm(v))
    tracks = build_tracklets(names, 10.0)
    res = replay(tracks, np.asarray(feats), AssociationConfig(max_distance=1.0), None)
    s = score(tracks, res.decisions)
    assert s["idf1"] == pytest.approx(1.0) and s["assa"] == pytest.approx(1.0)
    assert s["predicted_identities"] == s["true_identities"] == 3
    # everything in one identity: IDF1 = 6/18 boxes matched, AssA = mean over boxes of 6/18
    one = {k: (1, None) for k in res.decisions}
    s1 = score(tracks, one)
    assert s1["idf1"] == pytest.approx(6 / 18) and s1["assa"] == pytest.approx(6 / 18)


def test_camera_centring_joins_people_split_by_a_camera_cast() -> None:
    """Camera 5 adds a strong cast to everyone it sees: plainly no one is matched across the two
    cameras at the gate; with each camera's mean (over some 'training' crops) removed, all are."""
    from benchmarks.duke_association import centre_by_camera

    rng = np.random.default_rng(1)
    looks = rng.normal(size=(4, 16))
    cast = 4.0 * rng.normal(size=16)
    names, feats = [], []
    for pid in range(4):
        for cam, f0 in ((1, 0), (5, 5542 + 600 * (pid + 1))):
            for k in range(3):
                names.append(f"{pid + 1:04d}_c{cam}_f{f0 + 1000 + 120 * k:07d}.jpg")
                v = looks[pid] / np.linalg.norm(looks[pid]) + 0.05 * rng.normal(size=16) + (cast if cam == 5 else 0)
                feats.append(v / np.linalg.norm(v))
    feats_arr = np.asarray(feats)
    tracks = build_tracklets(names, 10.0)
    cfg = AssociationConfig(max_distance=1.0)
    plain = score(tracks, replay(tracks, feats_arr, cfg, None).decisions)
    # no one matched across cameras: each person's camera-1 half at best, IDF1 <= 12 / 24
    assert plain["idf1"] <= 0.5
    centred = centre_by_camera(names, feats_arr, set(names[::2]))  # means over half of the crops

    np.testing.assert_allclose(np.linalg.norm(centred, axis=1), 1.0)
    s = score(tracks, replay(tracks, centred, cfg, None).decisions)
    assert s["predicted_identities"] == 4 and s["idf1"] == pytest.approx(1.0)
