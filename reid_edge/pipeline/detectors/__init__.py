"""Person detectors: ``detect(frame_bgr, frame_index) -> float32 [N, 5]`` rows ``x, y, w, h, score``.

One module per family; ``--detector`` spellings (:func:`make_detector`):

- ``yolox`` (default): the packaged YOLOX-Nano (COCO person class), or ``yolox:PATH.onnx``
  (:mod:`.yolox`); ``@SIZE`` after either sets the network input's long side (``yolox@640``);
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


def split_input_size(rest: str) -> tuple[str, int | None]:
    """``(path part, long side)`` of what follows ``yolox`` in a spelling: ``:m.onnx@640`` ->
    ``(":m.onnx", 640)``, ``@480`` -> ``("", 480)``, ``:m.onnx`` -> ``(":m.onnx", None)``.

    Raises:
        PipelineError: an ``@`` followed by something other than a whole number of pixels.
    """
    if "@" not in rest:
        return rest, None
    path, size = rest.rsplit("@", 1)
    if size.isdigit():
        return path, int(size)
    if path and ("/" in size or "." in size):  # an '@' inside the model's path
        return rest, None
    raise PipelineError(f"detector input size '@{size}' is not a whole number of pixels (e.g. yolox@640)")


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
    if spec == "yolox" or spec.startswith(("yolox:", "yolox@")):
        from .yolox import YoloxDetector

        path, size = split_input_size(spec[5:])
        return YoloxDetector(path.removeprefix(":") or None, device=device, threads=threads, input_size=size)
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
