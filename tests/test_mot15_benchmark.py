"""benchmarks.mot15: the pipeline configuration it runs with (``--config``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.mot15 import load_config
from reid_edge.pipeline.tracker import TrackerConfig


def test_config_defaults_and_yaml(tmp_path: Path) -> None:
    assert load_config(None).tracker == TrackerConfig()
    good = tmp_path / "good.yml"
    good.write_text("tracker:\n  max_appearance_dist: 1.2\n")
    assert load_config(good).tracker == TrackerConfig(max_appearance_dist=1.2)


def test_mot_convention_keeps_lost_tracks_only_the_track_buffer_and_makes_no_same_camera_links(
        tmp_path: Path) -> None:
    from benchmarks.mot15 import mot_convention

    yml = tmp_path / "t.yml"
    yml.write_text("tracker:\n  track_buffer: 20\n  max_appearance_dist: 1.1\n")
    cfg = mot_convention(load_config(yml))
    assert cfg.tracker == TrackerConfig(track_buffer=20, lost_buffer=20, max_appearance_dist=1.1)
    assert cfg.association.same_camera_gap_s >= 1e9  # no clip is that long
    assert cfg.reid == load_config(None).reid


@pytest.mark.parametrize("text", ["tracker:\n  no_such_field: 1\n", "tracker: [1, 2\n"])
def test_bad_config_is_a_one_line_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    with pytest.raises(SystemExit) as exc:
        load_config(bad)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        load_config(tmp_path / "missing.yml")


def test_detector_spellings_and_same_person_ids(tmp_path: Path) -> None:
    import argparse

    from benchmarks.mot15 import detector_choice, same_person, write_scaled_gt

    assert detector_choice("yolox@640") == "yolox@640" and detector_choice("yolox-int8@480") == "yolox-int8@480"
    for bad in ("motion@640", "yolox@x", "yolo"):
        with pytest.raises(argparse.ArgumentTypeError):
            detector_choice(bad)
    assert same_person("18=14") == (18, 14)
    with pytest.raises(argparse.ArgumentTypeError):
        same_person("18:14")
    gt = tmp_path / "gt.txt"
    gt.write_text("1,18,768,576,76.8,153.6,1,-1,-1,-1\n1,3,0,0,10,20,0,-1,-1,-1\n2,14,8,8,8,8,1,-1,-1,-1\n")
    write_scaled_gt(gt, 0.625, tmp_path / "out" / "s.gt.txt", max_frames=1, same={18: 14})
    assert (tmp_path / "out" / "s.gt.txt").read_text() == (
        "1,14,480.00,360.00,48.00,96.00,1,-1,-1,-1\n1,3,0.00,0.00,6.25,12.50,0,-1,-1,-1\n")


def test_scorings_write_each_reading_of_the_ground_truth(tmp_path: Path) -> None:
    from benchmarks.mot15 import write_scorings
    from reid_edge.pipeline.motfile import read_mot_tracks

    gt = tmp_path / "gt.txt"
    gt.write_text("1,18,0,0,8,16,1,-1,-1,-1\n1,3,10,10,8,16,0,-1,-1,-1\n")
    assert list(write_scorings(gt, 1.0, tmp_path / "a", "s", None, {}, False)) == ["metrics"]
    dirs = write_scorings(gt, 1.0, tmp_path / "b", "s", None, {18: 14}, True)
    assert list(dirs) == ["metrics", "metrics_same_person", "metrics_all_rows", "metrics_all_rows_same_person"]
    ids = {k: sorted(read_mot_tracks(d / "s.gt.txt", is_gt=True)[1][0].tolist()) for k, d in dirs.items()}
    # the row marked not considered (id 3) is scored only by the all-rows readings
    assert ids == {"metrics": [18], "metrics_same_person": [14], "metrics_all_rows": [3, 18],
                   "metrics_all_rows_same_person": [3, 14]}


def test_det_line_gives_float32_boxes_back_exactly(tmp_path: Path) -> None:
    import numpy as np

    from reid_edge.pipeline.motfile import det_line, read_mot_detections

    rng = np.random.default_rng(0)
    boxes = (rng.random((50, 5)) * [768, 576, 90, 200, 1]).astype(np.float32)
    f = tmp_path / "d.txt"
    f.write_text("".join(det_line(3, *map(float, b)) for b in boxes))
    assert np.array_equal(read_mot_detections(f)[3], boxes)


def test_cached_detections_are_the_detectors_boxes_and_are_reused(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from benchmarks.mot15 import cached_detections
    from reid_edge.pipeline.detectors import make_detector
    from reid_edge.pipeline.motfile import read_mot_detections
    from reid_edge.pipeline.sources import open_sources

    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for k in range(16):  # a bright "person" walking right over a dark floor
        img = np.full((240, 320, 3), 40, np.uint8)
        cv2.rectangle(img, (20 + 12 * k, 80), (50 + 12 * k, 170), (220, 220, 220), -1)
        writer.write(img)
    writer.release()
    file = tmp_path / "cache" / "motion" / "walk.txt"
    cached_detections(video, "motion", file)
    got = read_mot_detections(file)
    detector, source = make_detector("motion", "walk"), open_sources([str(video)], ["walk"])[0]
    want = {}
    while (frame := source.read()) is not None:
        boxes = detector.detect(frame.image, frame.index)
        if len(boxes):
            want[frame.index] = np.asarray(boxes, np.float32)
    source.close()
    assert want and sorted(got) == sorted(want)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    file.write_text("1,-1,1,2,3,4,0.5,-1,-1,-1\n")  # an existing cache is read, never redone
    cached_detections(video, "motion", file)
    assert file.read_text() == "1,-1,1,2,3,4,0.5,-1,-1,-1\n"
