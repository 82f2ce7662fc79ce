"""``yolox`` (the default detector): YOLOX person detection through ONNX Runtime.

The package ships YOLOX-Nano (COCO, Apache-2.0, see ``reid_edge/assets/NOTICE.md``);
``yolox:PATH.onnx`` runs another YOLOX export with the same conventions: input ``[1, 3, H, W]``
BGR 0-255 without normalisation, letterboxed at the top-left with grey 114; output
``[1, N, 5 + C]`` raw per anchor point over strides 8/16/32 (``xy = (p + grid) * stride``,
``wh = exp(p) * stride``; objectness and class scores already through a sigmoid); person =
class 0, score = objectness x person score. Decode and NMS are vectorised. Frames are letterboxed
to the model's native size on the long side (416 for YOLOX-Nano); ``yolox@640`` (or
``yolox:PATH.onnx@640``) sets that long side, e.g. for high-resolution cameras whose far people
would shrink below the tracker's smallest box.

The INT8 encodings made by ``reid-edge export-detector`` load the same way (they keep the FP32
input and output).
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...errors import PipelineError
from .base import Detector, letterbox, nms, onnx_session, to_frame_boxes

if TYPE_CHECKING:
    import onnx

YOLOX_ASSET = "yolox_nano.onnx"
DETECTOR_META_KEY = "reid_edge.detector"  # ONNX metadata of detectors written by export-detector
STRIDES = (8, 16, 32)


def default_yolox_path() -> Path:
    """The YOLOX-Nano ONNX shipped in ``reid_edge/assets``.

    Raises:
        PipelineError: the installed package lacks it (a broken install).
    """
    path = Path(str(resources.files("reid_edge.assets").joinpath(YOLOX_ASSET)))
    if not path.is_file():
        raise PipelineError(f"the packaged detector {path} is missing (reinstall reid-edge, or pass "
                            "--detector yolox:PATH.onnx)")
    return path


def yolox_grid(size: tuple[int, int], strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-point grid ``[N, 2]`` (x, y cell indices) and stride ``[N, 1]`` of a YOLOX head,
    in the head's output order (stride by stride, row-major within one)."""
    grids, strides_out = [], []
    for s in strides:
        gh, gw = size[0] // s, size[1] // s
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides_out.append(np.full((gh * gw, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides_out).astype(np.float32)


def decode_yolox(output: np.ndarray, grid: np.ndarray, strides: np.ndarray,
                 conf_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes ``x, y, w, h`` (network-input pixels) and scores from a raw YOLOX output.

    Args:
        output: ``[1, N, 5 + C]`` or ``[N, 5 + C]``.
        grid, strides: from :func:`yolox_grid` for the network's input size.
        conf_thresh: keep rows whose objectness x person score is at least this.
    Raises:
        PipelineError: the output does not match the grid.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2 or out.shape[0] != len(grid) or out.shape[1] < 6:
        raise PipelineError(f"YOLOX output {tuple(np.shape(output))} does not fit a {len(grid)}-point grid "
                            "with >= 1 class (not a YOLOX model, or another input size?)")
    score = out[:, 4] * out[:, 5]
    keep = score >= conf_thresh
    p, g, s = out[keep], grid[keep], strides[keep]
    xy = (p[:, :2] + g) * s
    wh = np.exp(p[:, 2:4]) * s
    return np.concatenate([xy - wh / 2, wh], axis=1), score[keep]


def flexible_yolox(model: onnx.ModelProto) -> tuple[onnx.ModelProto, tuple[int, int]]:
    """Make a fixed-size YOLOX export accept any batch and any input size that is a multiple of 32.

    The network is convolutional; only its input declaration and the head's ``Reshape`` to
    ``[1, 5 + C, -1]`` fix the sizes. The batch entry of those shapes becomes 0 (copy the input's).
    Letterboxing a 16:9 frame into 416x256 instead of 416x416 then does 40% less work with the
    same person scale. Returns the edited model (a copy) and the native input ``(h, w)``: the one
    it declared, or for a model already made flexible, the one in its ``reid_edge.detector``
    metadata (416x416 when absent).
    """
    from onnx import numpy_helper

    m = copy.deepcopy(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    meta = {p.key: p.value for p in m.metadata_props}
    declared = json.loads(meta[DETECTOR_META_KEY]).get("native_input") if DETECTOR_META_KEY in meta else None
    if dims[2].dim_value and dims[3].dim_value:
        native = (dims[2].dim_value, dims[3].dim_value)
    else:  # already flexible (an export-detector file): its card says the size it was trained at
        native = tuple(declared) if declared else (416, 416)
    for i, name in ((0, "batch"), (2, "height"), (3, "width")):
        dims[i].ClearField("dim_value")
        dims[i].dim_param = name
    for d in m.graph.output[0].type.tensor_type.shape.dim:
        d.ClearField("dim_value")
    tensors = {t.name: t for t in m.graph.initializer}
    tensors.update({n.output[0]: n.attribute[0].t for n in m.graph.node if n.op_type == "Constant"})
    for n in m.graph.node:
        if n.op_type == "Reshape" and n.input[1] in tensors:
            t = tensors[n.input[1]]
            shape = numpy_helper.to_array(t).copy()
            if shape.ndim == 1 and len(shape) == 3 and shape[0] == 1:
                shape[0] = 0
                t.CopyFrom(numpy_helper.from_array(shape, t.name))
    del m.graph.value_info[:]
    return m, (int(native[0]), int(native[1]))


def network_size(frame_hw: tuple[int, int], native: tuple[int, int], multiple: int = 32) -> tuple[int, int]:
    """Input ``(h, w)`` for a frame: scaled to fit ``native``, each side rounded up to ``multiple``."""
    h, w = frame_hw
    r = min(native[0] / h, native[1] / w)
    return (int(np.ceil(round(h * r) / multiple) * multiple), int(np.ceil(round(w * r) / multiple) * multiple))


class YoloxDetector(Detector):
    """YOLOX through ONNX Runtime; the packaged YOLOX-Nano when ``path`` is None."""

    name = "yolox"

    def __init__(self, path: str | Path | None = None, conf_thresh: float = 0.1, iou_thresh: float = 0.45,
                 device: str = "auto", threads: int = 0, input_size: int | None = None) -> None:
        """``input_size``: the network input's long side in pixels (a multiple of 32; default: the
        size the model was exported at, 416 for YOLOX-Nano). Larger finds smaller people in large
        frames at a cost that grows with the pixels.

        Raises:
            PipelineError: missing or unreadable model, or an input size that is not a multiple of 32.
        """
        import onnx

        if input_size is not None and (input_size < 32 or input_size > 4096 or input_size % 32):
            raise PipelineError(f"YOLOX input size {input_size} must be a multiple of 32 between 32 and 4096")

        self.path = Path(path) if path is not None else default_yolox_path()
        if not self.path.is_file():
            raise PipelineError(f"YOLOX model {self.path} does not exist")
        try:
            model = onnx.load(str(self.path))
        except Exception as exc:  # onnx raises DecodeError, OSError, ...
            raise PipelineError(f"cannot read YOLOX model {self.path}: {exc}") from None
        model, self.native = flexible_yolox(model)
        if input_size is not None:
            self.native = (input_size, input_size)
        self.session = onnx_session(model.SerializeToString(), device, "YOLOX", threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        self.conf_thresh = conf_thresh
        self.iou_thresh = iou_thresh
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        """The network input of a BGR frame (float32 ``[1, 3, H, W]``), its scale and padding.

        Calibration uses this too, so INT8 ranges are measured on exactly what inference feeds.
        """
        size = network_size(frame.shape[:2], self.native)
        img, r, pad = letterbox(frame, size, centre=False)
        return img.transpose(2, 0, 1)[None].astype(np.float32), r, pad

    def detect(self, frame: np.ndarray, frame_index: int) -> np.ndarray:
        x, r, pad = self.preprocess(frame)
        size = (x.shape[2], x.shape[3])
        if size not in self._grids:
            self._grids[size] = yolox_grid(size)
        grid, strides = self._grids[size]
        out = self.session.run(None, {self.input_name: x})[0]
        boxes, scores = decode_yolox(out, grid, strides, self.conf_thresh)
        keep = nms(boxes, scores, self.iou_thresh)
        return to_frame_boxes(boxes[keep], scores[keep], r, pad, frame.shape)
