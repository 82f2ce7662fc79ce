"""Harvest: detection + tracking -> filtered unlabeled crops that training reads directly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from reid_edge.cli import main
from reid_edge.pipeline.harvest import HarvestConfig, crop_signature, is_near_duplicate, reject_reason


def test_reject_reason_hand_cases() -> None:
    cfg = HarvestConfig(min_height=40, max_overlap=0.3)
    none = np.zeros((0, 4))
    assert reject_reason(np.array([100, 50, 30, 80]), none, 640, 360, cfg) is None
    assert reject_reason(np.array([100, 50, 15, 30]), none, 640, 360, cfg) == "small"
    assert reject_reason(np.array([0, 50, 30, 80]), none, 640, 360, cfg) == "cut"
    assert reject_reason(np.array([100, 300, 30, 80]), none, 640, 360, cfg) == "cut"  # bottom edge
    assert reject_reason(np.array([100, 50, 80, 80]), none, 640, 360, cfg) == "aspect"
    # half of the box is covered by another person: rejected; a small touch is fine
    assert reject_reason(np.array([100, 50, 30, 80]), np.array([[115, 50, 30, 80]]), 640, 360, cfg) == "overlap"
    assert reject_reason(np.array([100, 50, 30, 80]), np.array([[125, 50, 30, 80]]), 640, 360, cfg) is None


def test_near_duplicate_crops_are_skipped() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (80, 30, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + 2, 0, 255).astype(np.uint8)
    c = 255 - a
    sa = crop_signature(a)
    assert is_near_duplicate(crop_signature(b), sa, 6.0)
    assert not is_near_duplicate(crop_signature(c), sa, 6.0)
    assert not is_near_duplicate(sa, None, 6.0)


def test_harvest_scene_feeds_unlabeled_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reid_edge.synth.scene import generate_scene
    from reid_edge.train.data.datasets import read_unlabeled

    scene = tmp_path / "scene"
    generate_scene(scene, cameras=2, people=4, seconds=12, seed=3)
    out = tmp_path / "crops"
    rc = main(["harvest", "--cameras", str(scene / "cam1.mp4"), str(scene / "cam2.mp4"), "--out", str(out),
               "--every", "4", "--max-per-track", "6", "--detector", "motion"])
    assert rc == 0, capsys.readouterr().err
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "no crops harvested"
    assert {r["camera"] for r in rows} == {"cam1", "cam2"}
    per_track: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        assert (out / r["path"]).is_file()
        per_track.setdefault((r["camera"], r["tracklet"]), []).append(int(r["frame"]))
    for frames in per_track.values():
        assert len(frames) <= 6
        assert all(b - a >= 4 for a, b in zip(frames, frames[1:])), frames
    data = read_unlabeled(out)
    assert len(data.train) == len(rows)
    samples = data.train
    assert {s.pid for s in samples} == {-1}
    assert len({s.camid for s in samples}) == 2
    assert len({s.tracklet for s in samples}) == len(per_track)


def test_harvest_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["harvest", "--cameras", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "\n" not in err
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("mine")
    rc = main(["harvest", "--cameras", "a.mp4", "--out", str(full)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not empty" in err
    assert (full / "x").read_text() == "mine"
    rc = main(["harvest", "--cameras", "a.mp4", "--out", str(tmp_path / "o2"), "--every", "0"])
    assert rc == 2
