"""``motion``: MOG2 background subtraction blobs (static cameras).

MOG2 on a frame downscaled to 320 px wide, shadows dropped, morphological clean-up, fragments of
one body merged, blobs filtered by size and aspect. About 3-4 ms/frame; fragile on real footage
(merged groups, ghosts): measured on PETS09-S2L1 in the README.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import EMPTY, Detector


def merge_fragments(boxes: np.ndarray, x_overlap: float = 0.5, max_gap: float = 0.5,
                    person_height: float | None = None) -> np.ndarray:
    """Merge motion fragments of one body (head, arms, legs) into one box.

    Two boxes ``x, y, w, h`` merge when their x-ranges overlap by ``x_overlap`` of the narrower
    one and the vertical gap between them is under ``max_gap`` of the taller one, or when one
    box lies inside the other. Two boxes that each already look like a whole person (taller
    than ``person_height`` and 1.8x as tall as wide) never merge: they are two people, one
    behind the other. Repeats until nothing merges.
    """
    out = [np.asarray(b, dtype=np.float64) for b in np.asarray(boxes).reshape(-1, 4)]
    changed = True
    while changed and len(out) > 1:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                ox = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
                gap = max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])
                inside = ox >= min(a[2], b[2]) - 1e-9 and gap <= -min(a[3], b[3]) + 1e-9
                if person_height is not None and not inside and all(
                        q[3] >= person_height and q[3] >= 1.8 * q[2] for q in (a, b)):
                    continue
                if inside or (ox >= x_overlap * min(a[2], b[2]) and gap <= max_gap * max(a[3], b[3])):
                    x1, y1 = min(a[0], b[0]), min(a[1], b[1])
                    x2, y2 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                    out[i] = np.array([x1, y1, x2 - x1, y2 - y1])
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return np.array(out).reshape(-1, 4)


class MotionDetector(Detector):
    """MOG2 background subtraction blobs (static cameras)."""

    name = "motion"

    def __init__(self, work_width: int = 320, history: int = 500, var_threshold: float = 16.0,
                 min_height_frac: float = 0.08, warmup: int = 5, learning_rate: float = 0.002) -> None:
        self.work_width = work_width
        self.learning_rate = learning_rate
        self.fast_start = 100
        self.min_height_frac = min_height_frac
        self.warmup = warmup
        self.subtractor = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold,
                                                             detectShadows=True)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 15))
        self._seen = 0

    def foreground(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """Binary foreground mask at work resolution and the scale factor work/frame."""
        s = min(1.0, self.work_width / frame.shape[1])
        small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else frame
        # MOG2's automatic rate (1/frames seen) learns the first background fast and clears ghosts of
        # people present at the start; then a slow fixed rate keeps people who stop from fading
        lr = -1.0 if self._seen < self.fast_start else self.learning_rate
        mask = self.subtractor.apply(small, learningRate=lr)
        mask = np.where(mask > 200, 255, 0).astype(np.uint8)  # 127 = shadow
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        return mask, s

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        mask, s = self.foreground(frame)
        self._seen += 1
        if self._seen <= self.warmup or mask.mean() > 0.5 * 255:  # model still learning / scene change
            return EMPTY.copy()
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return EMPTY.copy()
        st = stats[1:]
        min_h = self.min_height_frac * mask.shape[0]
        keep = (st[:, 3] >= min_h * 0.4) & (st[:, 4] >= 12)
        boxes = merge_fragments(st[keep, :4].astype(np.float64), person_height=min_h)
        rows = []
        for x, y, w, h in boxes:
            if h < min_h or h < 0.8 * w:
                continue
            fill = float((mask[int(y):int(y + h), int(x):int(x + w)] > 0).mean())
            rows.append([x / s, y / s, w / s, h / s, min(1.0, 0.45 + fill)])
        return np.array(rows, dtype=np.float32).reshape(-1, 5)
