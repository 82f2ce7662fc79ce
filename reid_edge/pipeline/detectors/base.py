"""What every detector shares: the interface, NMS, letterboxing and an ONNX Runtime session."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import PipelineError

EMPTY = np.zeros((0, 5), dtype=np.float32)


class Detector(ABC):
    """A person detector. ``detect`` may keep state (background model), one camera per instance."""

    name: str = "detector"

    @abstractmethod
    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        """Detect people in a BGR frame; returns float32 ``[N, 5]`` ``x, y, w, h, score``."""


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    from ..tracker import iou_matrix

    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(order) == 0:
        return np.zeros(0, dtype=np.int64)
    # one IoU matrix, then a greedy pass over it: no per-box numpy calls on the box set
    iou = iou_matrix(boxes[order], boxes[order])
    suppressed = np.zeros(len(order), dtype=bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        suppressed |= iou[i] > iou_thresh
    return np.array(keep, dtype=np.int64)


def letterbox(image: np.ndarray, size: tuple[int, int], centre: bool = True
              ) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio and pad with grey 114 to ``size = (h, w)``.

    ``centre``: pad on both sides (YOLO v5/v8); else at the right and bottom only (YOLOX).
    Returns the padded image, the scale and the ``(pad_x, pad_y)`` offsets of the image.
    """
    h, w = image.shape[:2]
    r = min(size[0] / h, size[1] / w)
    nh, nw = round(h * r), round(w * r)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((size[0], size[1], 3), 114, dtype=np.uint8)
    if centre:
        py, px = (size[0] - nh) / 2, (size[1] - nw) / 2
        top, left = int(round(py - 0.1)), int(round(px - 0.1))
    else:
        top = left = 0
    out[top:top + nh, left:left + nw] = resized
    return out, r, (left, top)


def to_frame_boxes(boxes: np.ndarray, scores: np.ndarray, r: float, pad: tuple[int, int],
                   frame_shape: tuple[int, ...]) -> np.ndarray:
    """Network-input ``x, y, w, h`` boxes back to frame pixels, clipped; rows ``x, y, w, h, score``."""
    if len(boxes) == 0:
        return EMPTY.copy()
    b = (np.asarray(boxes, dtype=np.float32) - np.array([pad[0], pad[1], 0, 0], dtype=np.float32)) / r
    fh, fw = frame_shape[:2]
    x1 = np.clip(b[:, 0], 0, fw)
    y1 = np.clip(b[:, 1], 0, fh)
    x2 = np.clip(b[:, 0] + b[:, 2], 0, fw)
    y2 = np.clip(b[:, 1] + b[:, 3], 0, fh)
    res = np.stack([x1, y1, x2 - x1, y2 - y1, np.asarray(scores, dtype=np.float32)], axis=1).astype(np.float32)
    return res[(res[:, 2] > 1) & (res[:, 3] > 1)]


def onnx_session(path: str | Path | bytes, device: str, what: str, threads: int = 0) -> Any:
    """An ONNX Runtime session for a detector model (a file, or serialized ONNX bytes).

    ``device``: ``auto`` (GPU providers when present, else CPU), ``cpu``, or ``cuda`` (an error
    when this onnxruntime has no GPU provider: never a silent fall-back to the CPU).
    ``threads``: intra-op threads (0: ONNX Runtime's default, one per core).

    Raises:
        PipelineError: onnxruntime missing, model missing or unloadable.
        BackendError: ``cuda`` asked for without a GPU provider; unknown device.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise PipelineError(f"the {what} detector needs onnxruntime (pip install onnxruntime)") from None
    from ...backends.ort_backend import choose_providers, session_options

    p = path if isinstance(path, bytes) else Path(path)
    if isinstance(p, Path) and not p.is_file():
        raise PipelineError(f"{what} model {p} does not exist")
    providers = choose_providers(ort.get_available_providers(), device)
    opts = session_options(threads)
    try:
        return ort.InferenceSession(p if isinstance(p, bytes) else str(p), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types
        name = "" if isinstance(p, bytes) else f" {p}"
        raise PipelineError(f"cannot load {what} model{name}: {str(exc).splitlines()[0]}") from None


def input_size(session: Any, default: int) -> tuple[int, int]:
    """``(h, w)`` of a session's NCHW input; ``default`` for dynamic dimensions."""
    shape = session.get_inputs()[0].shape
    h = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else default
    w = shape[3] if len(shape) == 4 and isinstance(shape[3], int) else default
    return int(h), int(w)
