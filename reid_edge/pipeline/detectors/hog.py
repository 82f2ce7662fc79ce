"""``hog`` and ``hog+motion``: OpenCV's HOG + linear SVM people detector (Dalal-Triggs, 64x128 window).

``hog`` runs on a frame resized to ``hog_width`` px wide and misses people under ~100 px there;
``hog+motion`` checks (and splits, for groups) each motion blob by HOG on the blob's region
upscaled so that a person is about 160 px tall; blobs HOG does not confirm are kept with a lower
score (they can extend tracks but not start them).
"""

from __future__ import annotations

import cv2
import numpy as np

from ...errors import PipelineError
from .base import EMPTY, Detector, nms
from .motion import MotionDetector


def _hog() -> cv2.HOGDescriptor:
    if not hasattr(cv2, "HOGDescriptor") or not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        raise PipelineError(
            f"OpenCV {cv2.__version__} has no HOG people detector (opencv-python-headless 5.0 dropped it); "
            "install opencv-contrib-python-headless, or use --detector motion")
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
    return hog


def _hog_score(weights: object) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-2.0 * np.asarray(weights, dtype=np.float64).reshape(-1)))).astype(np.float32)


class HogDetector(Detector):
    """OpenCV HOG people detector on a resized frame."""

    name = "hog"

    def __init__(self, hog_width: int = 640, win_stride: int = 8, scale: float = 1.1, nms_iou: float = 0.4) -> None:
        self.hog = _hog()
        self.hog_width = hog_width
        self.win_stride = win_stride
        self.scale = scale
        self.nms_iou = nms_iou

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        s = self.hog_width / frame.shape[1]
        img = cv2.resize(frame, None, fx=s, fy=s) if abs(s - 1) > 1e-3 else frame
        rects, weights = self.hog.detectMultiScale(img, winStride=(self.win_stride, self.win_stride),
                                                   padding=(8, 8), scale=self.scale)
        if len(rects) == 0:
            return EMPTY.copy()
        boxes = np.asarray(rects, dtype=np.float64) / s
        scores = _hog_score(weights)
        keep = nms(boxes, scores, self.nms_iou)
        return np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)


class HogMotionDetector(Detector):
    """Motion blobs verified and split by HOG on each blob's upscaled region."""

    name = "hog+motion"

    def __init__(self, motion: MotionDetector | None = None, person_px: int = 160,
                 unconfirmed_score: float = 0.55) -> None:
        self.motion = motion or MotionDetector()
        self.hog = _hog()
        self.person_px = person_px
        self.unconfirmed_score = unconfirmed_score

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        blobs = self.motion.detect(frame, frame_index)
        rows: list[np.ndarray] = []
        fh, fw = frame.shape[:2]
        for x, y, w, h, _ in blobs:
            mx, my = 0.25 * w + 8, 0.15 * h + 8
            x1, y1 = int(max(0, x - mx)), int(max(0, y - my))
            x2, y2 = int(min(fw, x + w + mx)), int(min(fh, y + h + my))
            roi = frame[y1:y2, x1:x2]
            s = self.person_px / max(h, 1.0)
            roi_s = cv2.resize(roi, None, fx=s, fy=s)
            if roi_s.shape[0] < 128 or roi_s.shape[1] < 64:
                rows.append(np.array([[x, y, w, h, self.unconfirmed_score]]))
                continue
            rects, weights = self.hog.detectMultiScale(roi_s, winStride=(8, 8), padding=(16, 16), scale=1.1)
            if len(rects) == 0:
                rows.append(np.array([[x, y, w, h, self.unconfirmed_score]]))
                continue
            b = np.asarray(rects, dtype=np.float64) / s + np.array([x1, y1, 0, 0])
            sc = _hog_score(weights)
            keep = nms(b, sc, 0.4)
            rows.append(np.concatenate([b[keep], np.maximum(sc[keep], 0.7)[:, None]], axis=1))
        if not rows:
            return EMPTY.copy()
        return np.concatenate(rows).astype(np.float32)
