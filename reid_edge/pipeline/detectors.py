"""Person detectors: ``detect(frame_bgr) -> float32 [N, 5]`` rows ``x, y, w, h, score`` in pixels.

``--detector`` spellings (:func:`make_detector`):

- ``motion`` (default): MOG2 background subtraction on a frame downscaled to 320 px wide,
  shadows dropped, morphological clean-up, fragments of one body merged, blobs filtered by
  size and aspect. Static cameras only. Measured on the two real clips (see the README): about
  3-4 ms/frame, and the only embedded option that finds the small (40-90 px) people of
  PETS09-S2L1 at all.
- ``hog``: OpenCV's HOG + linear SVM people detector (Dalal-Triggs, 64x128 window), on a
  frame resized to ``hog_width`` px wide. Misses people under ~100 px at that scale.
- ``hog+motion``: motion blobs, each checked (and split, for groups) by HOG on the blob's
  region upscaled so that a person is about 160 px tall; blobs HOG does not confirm are kept
  with a lower score (they can extend tracks but not start them).
- ``yolo:PATH.onnx``: a YOLO person detector through ONNX Runtime; v5 layout ``[1, N, 5+C]``
  (with objectness) or v8/v11 layout ``[1, 4+C, N]``; class 0 = person; letterbox input, NMS.
- ``--detections DIR``: precomputed MOTChallenge det files (:class:`PrecomputedDetector`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError, PipelineError

EMPTY = np.zeros((0, 5), dtype=np.float32)


class Detector(ABC):
    """A person detector. ``detect`` may keep state (background model), one camera per instance."""

    name: str = "detector"

    @abstractmethod
    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        """Detect people in a BGR frame; returns float32 ``[N, 5]`` ``x, y, w, h, score``."""


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    from .tracker import iou_matrix

    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    while len(order):
        i = int(order[0])
        keep.append(i)
        if len(order) == 1:
            break
        ious = iou_matrix(boxes[i:i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_thresh]
    return np.array(keep, dtype=np.int64)


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


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio and pad with grey 114 to ``size = (h, w)``.

    Returns the padded image, the scale and the ``(pad_x, pad_y)`` offsets.
    """
    h, w = image.shape[:2]
    r = min(size[0] / h, size[1] / w)
    nh, nw = round(h * r), round(w * r)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    py, px = (size[0] - nh) / 2, (size[1] - nw) / 2
    out = np.full((size[0], size[1], 3), 114, dtype=np.uint8)
    top, left = int(round(py - 0.1)), int(round(px - 0.1))
    out[top:top + nh, left:left + nw] = resized
    return out, r, (left, top)


def decode_yolo(output: np.ndarray, conf_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes from a raw YOLO output in network-input pixels.

    Layouts: v5 ``[1, N, 5+C]`` (cx, cy, w, h, objectness, class scores) and v8/v11
    ``[1, 4+C, N]`` (cx, cy, w, h, class scores): the channel axis is the short one.
    Returns ``(boxes_xywh [K, 4], scores [K])`` for class 0 rows that are the argmax class.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise PipelineError(f"YOLO output batch {out.shape[0]} != 1")
        out = out[0]
    if out.ndim != 2:
        raise PipelineError(f"unexpected YOLO output shape {tuple(output.shape)}")
    if out.shape[0] < out.shape[1]:  # v8/v11: [4+C, N]
        rows = out.T
        cls = rows[:, 4:]
        score = cls[:, 0]
    else:  # v5: [N, 5+C]
        rows = out
        if rows.shape[1] < 6:
            raise PipelineError(f"YOLO v5 layout needs >= 6 columns, got {rows.shape[1]}")
        cls = rows[:, 5:]
        score = rows[:, 4] * cls[:, 0]
    if cls.shape[1] == 0:
        raise PipelineError(f"YOLO output {tuple(output.shape)} has no class scores")
    is_person = cls.argmax(axis=1) == 0
    keep = is_person & (score >= conf_thresh)
    r = rows[keep]
    boxes = np.stack([r[:, 0] - r[:, 2] / 2, r[:, 1] - r[:, 3] / 2, r[:, 2], r[:, 3]], axis=1)
    return boxes.reshape(-1, 4), score[keep]


class YoloOnnxDetector(Detector):
    """A YOLO v5/v8/v11 ONNX person detector through ONNX Runtime (CUDA/TensorRT EP when present)."""

    name = "yolo"

    def __init__(self, path: str | Path, conf_thresh: float = 0.3, iou_thresh: float = 0.45,
                 device: str = "auto", input_size: int = 640) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise PipelineError("--detector yolo needs onnxruntime (pip install onnxruntime)") from None
        p = Path(path)
        if not p.is_file():
            raise PipelineError(f"YOLO model {p} does not exist")
        from ..backends.ort_backend import choose_providers

        # a detector quietly falls back to the CPU where no GPU provider is present
        providers = choose_providers(ort.get_available_providers(), "cpu" if device == "cpu" else "auto")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(p), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types
            raise PipelineError(f"cannot load YOLO model {p}: {str(exc).splitlines()[0]}") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        h = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else input_size
        w = shape[3] if len(shape) == 4 and isinstance(shape[3], int) else input_size
        self.size = (int(h), int(w))
        self.fp16 = "float16" in inp.type
        self.conf_thresh = conf_thresh
        self.iou_thresh = iou_thresh

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        img, r, (px, py) = letterbox(frame, self.size)
        x = img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        if self.fp16:
            x = x.astype(np.float16)
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        boxes, scores = decode_yolo(out, self.conf_thresh)
        if len(boxes) == 0:
            return EMPTY.copy()
        keep = nms(boxes, scores, self.iou_thresh)
        boxes, scores = boxes[keep], scores[keep]
        boxes = (boxes - np.array([px, py, 0, 0], dtype=np.float32)) / r
        fh, fw = frame.shape[:2]
        x1 = np.clip(boxes[:, 0], 0, fw)
        y1 = np.clip(boxes[:, 1], 0, fh)
        x2 = np.clip(boxes[:, 0] + boxes[:, 2], 0, fw)
        y2 = np.clip(boxes[:, 1] + boxes[:, 3], 0, fh)
        res = np.stack([x1, y1, x2 - x1, y2 - y1, scores], axis=1).astype(np.float32)
        return res[(res[:, 2] > 1) & (res[:, 3] > 1)]


def read_mot_detections(path: str | Path) -> dict[int, np.ndarray]:
    """Read a MOTChallenge det/gt file into ``{frame: float32 [N, 5]}`` (x, y, w, h, conf).

    Raises:
        DataError: unreadable file or a row with fewer than 7 numbers.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DataError(f"cannot read detections {p}: {exc.strerror or exc}") from None
    by_frame: dict[int, list[list[float]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.replace(" ", ",").split(",") if "," in line else line.split()
        parts = [q for q in parts if q != ""]
        try:
            vals = [float(q) for q in parts[:7]]
        except ValueError:
            raise DataError(f"{p}:{n}: not a MOT row: {line[:60]!r}") from None
        if len(vals) < 7:
            raise DataError(f"{p}:{n}: a MOT row needs >= 7 values, got {len(vals)}")
        by_frame.setdefault(int(vals[0]), []).append(vals[2:7])
    return {f: np.array(v, dtype=np.float32).reshape(-1, 5) for f, v in by_frame.items()}


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


DETECTOR_CHOICES = ("motion", "hog", "hog+motion", "yolo:PATH.onnx")


def make_detector(spec: str, camera: str, detections_dir: str | Path | None = None, device: str = "auto") -> Detector:
    """Build the detector for one camera from a ``--detector`` spelling (or ``--detections DIR``).

    Raises:
        PipelineError: unknown spelling, missing file, HOG unavailable.
    """
    if detections_dir is not None:
        return PrecomputedDetector(find_detection_file(detections_dir, camera))
    if spec == "motion":
        return MotionDetector()
    if spec == "hog":
        return HogDetector()
    if spec in ("hog+motion", "motion+hog"):
        return HogMotionDetector()
    if spec.startswith("yolo:"):
        return YoloOnnxDetector(spec[5:], device=device)
    raise PipelineError(f"unknown detector '{spec}' (choose {', '.join(DETECTOR_CHOICES)})")
