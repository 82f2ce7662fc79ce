"""``--detections DIR``: precomputed MOTChallenge det files instead of a detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import PipelineError
from ..motfile import read_mot_detections
from .base import EMPTY, Detector


class PrecomputedDetector(Detector):
    """Detections read from a MOTChallenge det file (frame numbers from 1)."""

    name = "precomputed"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.by_frame = read_mot_detections(self.path)

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        return self.by_frame.get(frame_index, EMPTY).copy()


def find_detection_file(directory: str | Path, camera: str) -> Path:
    """``DIR/<camera>.txt`` or ``DIR/<camera>.det.txt`` (or ``DIR/<camera>/det/det.txt``)."""
    d = Path(directory)
    candidates = [d / f"{camera}.txt", d / f"{camera}.det.txt", d / camera / "det" / "det.txt"]
    for c in candidates:
        if c.is_file():
            return c
    raise PipelineError(f"no detections for camera '{camera}' in {d} (looked for "
                        + ", ".join(c.name if c.parent == d else str(c.relative_to(d)) for c in candidates) + ")")
