"""Person detectors: ``detect(frame_bgr, frame_index) -> float32 [N, 5]`` rows ``x, y, w, h, score``.

One module per family; ``--detector`` spellings (:func:`make_detector`):

- ``yolox`` (default): the packaged YOLOX-Nano (COCO person class), or ``yolox:PATH.onnx``
  (:mod:`.yolox`);
- ``yolo:PATH.onnx``: YOLO v5/v8/v11 exports (:mod:`.yolo`);
- ``motion``: MOG2 background subtraction blobs, static cameras (:mod:`.motion`);
- ``hog`` and ``hog+motion``: OpenCV's HOG people detector (:mod:`.hog`);
- ``--detections DIR``: precomputed MOTChallenge det files (:mod:`.precomputed`).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import PipelineError
from ...names import DEFAULT_DETECTOR, DETECTOR_CHOICES
from .base import EMPTY, Detector, letterbox, nms
from .precomputed import PrecomputedDetector, find_detection_file

__all__ = ["DEFAULT_DETECTOR", "DETECTOR_CHOICES", "EMPTY", "Detector", "PrecomputedDetector",
           "find_detection_file", "letterbox", "make_detector", "nms"]


def make_detector(spec: str, camera: str, detections_dir: str | Path | None = None, device: str = "auto",
                  threads: int = 0) -> Detector:
    """Build the detector for one camera from a ``--detector`` spelling (or ``--detections DIR``).

    ``device`` applies to the ONNX detectors: ``cuda`` without a GPU provider is an error.
    ``threads``: ONNX Runtime intra-op threads (0: its default).

    Raises:
        PipelineError: unknown spelling, missing file, HOG unavailable.
        BackendError: ``--device cuda`` where onnxruntime has no GPU provider.
    """
    if detections_dir is not None:
        return PrecomputedDetector(find_detection_file(detections_dir, camera))
    if spec == "yolox" or spec.startswith("yolox:"):
        from .yolox import YoloxDetector

        return YoloxDetector(spec[6:] or None, device=device, threads=threads)
    if spec.startswith("yolo:"):
        from .yolo import YoloOnnxDetector

        return YoloOnnxDetector(spec[5:], device=device)
    if spec == "motion":
        from .motion import MotionDetector

        return MotionDetector()
    if spec in ("hog", "hog+motion", "motion+hog"):
        from .hog import HogDetector, HogMotionDetector

        return HogDetector() if spec == "hog" else HogMotionDetector()
    raise PipelineError(f"unknown detector '{spec}' (choose {', '.join(DETECTOR_CHOICES)})")
