"""``yolo:PATH.onnx``: a YOLO v5/v8/v11 person detector through ONNX Runtime.

v5 layout ``[1, N, 5+C]`` (with objectness) or v8/v11 layout ``[1, 4+C, N]``; class 0 = person;
centred letterbox, RGB input scaled to [0, 1], NMS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import PipelineError
from .base import EMPTY, Detector, letterbox, nms, onnx_session, to_frame_boxes
from .base import input_size as _input_size


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
        self.session = onnx_session(path, device, "YOLO")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.size = _input_size(self.session, input_size)
        self.fp16 = "float16" in inp.type
        self.conf_thresh = conf_thresh
        self.iou_thresh = iou_thresh

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        img, r, pad = letterbox(frame, self.size)
        x = img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        if self.fp16:
            x = x.astype(np.float16)
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        boxes, scores = decode_yolo(out, self.conf_thresh)
        if len(boxes) == 0:
            return EMPTY.copy()
        keep = nms(boxes, scores, self.iou_thresh)
        return to_frame_boxes(boxes[keep], scores[keep], r, pad, frame.shape)
