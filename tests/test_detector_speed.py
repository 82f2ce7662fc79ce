"""benchmarks.detector_speed: FP32 at other input sizes on a small generated video, bad sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.detector_speed import main


def _video(path: Path, frames: int = 4) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    writer.release()
    return path


def test_sizes_are_timed_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = _video(tmp_path / "v.avi")
    assert main(["--video", str(video), "--frames", "3", "--rounds", "1", "--no-int8", "--sizes", "256", "640"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| fp32")]
    assert [r.split("|")[1].strip() for r in rows] == ["fp32 (packaged)", "fp32 @256", "fp32 @640"]
    ms = [float(r.split("|")[2]) for r in rows]
    assert all(v > 0 for v in ms)


def test_a_size_off_the_grid_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--video", str(_video(tmp_path / "v.avi")), "--no-int8", "--sizes", "500"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
