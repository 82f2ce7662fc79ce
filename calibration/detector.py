"""The person detector through the same INT8 path as the re-ID model.

One calibration on frames of the site's own footage, letterboxed by the detector's own
:meth:`~reid_edge.pipeline.detectors.yolox.YoloxDetector.preprocess` (exactly what inference
feeds), drives both Q/DQ encodings of :mod:`.quantize` (``int8-qdq-cpu`` for ONNX Runtime on CPU,
``int8-qdq-trt`` for TensorRT). Calibration frames are every k-th frame of the first part of each
video; the report compares FP32 and INT8 detections on frames *not* used for calibration (the
held-out part), and against ground truth when given.

Files written to the output folder (:data:`DETECTOR_FILES`): ``detector.onnx`` (the FP32 model,
opset 13, any input size), ``detector.int8.cpu.onnx``, ``detector.int8.trt.onnx`` and
``detector_report.json``. Each ONNX carries a ``reid_edge.detector`` metadata entry (family,
native input size, encoding, calibration hash and method, source hash).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reid_edge.card import sha256_file
from reid_edge.errors import DataError, ExportError
from reid_edge.io import atomic_write_bytes, atomic_write_json
from reid_edge.pipeline.detectors.yolox import DETECTOR_META_KEY

from .calib_set import calibration_sha256
from .quantize import ENCODINGS, calibrate, check_trt_qdq, quantize_qdq

DETECTOR_FILES = {"fp32": "detector.onnx", "int8-qdq-cpu": "detector.int8.cpu.onnx",
                  "int8-qdq-trt": "detector.int8.trt.onnx", "report": "detector_report.json"}
MIN_OPSET = 13  # per-channel Q/DQ
# Which ops get Q/DQ, per encoding (one calibration covers both). Measured on the whole of PETS09-S2L1
# (`reid-edge run` + MOTChallenge gt; FP32: MOTA 0.804, IDF1 0.672) on 2 quiet cores, calibration on 64
# frames of the first half:
# - CPU: quantizing every op (SiLUs, concatenations, resizes too) gave MOTA 0.607 (a lamp at the top of
#   the frame became a person in 692 frames) and 22.3 ms/frame against FP32's 14.5. ONNX Runtime's INT8
#   depthwise convolutions barely beat its float ones on this model (6.75 vs 7.19 ms a frame) and an
#   INT8 SiLU (QLinearSigmoid + QLinearMul, 10.6 ms) costs three times the fused float one (3.5 ms), so
#   SiLUs stay float and on a CPU the FP32 detector is the fast one; the CPU encoding exists for parity.
# - TensorRT fuses SiLU into its INT8 convolutions by itself, and a symmetric (zero point 0) Q/DQ on a
#   sigmoid's [0, 1] output loses half its range, so its encoding quantizes convolutions only.
# - Both encodings keep the full-resolution layers in float: every convolution whose output is at stride
#   <= 4 (the stem, which sees raw 0-255 pixels, and the first stage: 9 of YOLOX-Nano's 113 convolutions,
#   few channels each, where one scale per tensor hurts most). Detections at score >= 0.5 against the
#   MOT15 ground truth, every frame, recall / precision (`python -m benchmarks.detector_gt`; FP32:
#   PETS09-S2L1 0.883 / 0.795, TUD-Stadtmitte 0.817 / 0.975): the stem alone in float (the previous
#   CPU rule) gave TUD 0.790 / 0.887 (a box around a walking group), the stem quantized too (the previous
#   TensorRT rule) TUD 0.442 / 0.996; with the stride-4 rule, CPU encoding 0.878 / 0.825 and
#   0.817 / 0.975, TensorRT encoding 0.868 / 0.819 and 0.822 / 0.977. The first depthwise convolution is
#   the sensitive one (quantizing it alone keeps 0.81 of FP32's boxes on TUD).
DETECTOR_OPS = {
    "int8-qdq-cpu": ("Conv", "Add", "MaxPool", "Concat", "Resize"),
    "int8-qdq-trt": ("Conv", "Add", "MaxPool"),
}
FLOAT_MAX_STRIDE = 4
# Histogram percentile ranges keep more boxes than min/max (0.87 vs 0.80 of FP32's) on this model;
# min/max ranges cut the TensorRT encoding's recall to 0.59 (percentile 0.87).
DETECTOR_CALIBRATION_METHOD = "percentile"


@dataclass(frozen=True)
class DetectorExportConfig:
    """What ``reid-edge export-detector`` does."""

    videos: tuple[str, ...]
    out: Path
    model: str | None = None  # a YOLOX ONNX; None: the packaged YOLOX-Nano
    calib_frames: int = 64
    calib_fraction: float = 0.5  # calibration frames come from the first half of each video
    eval_frames: int = 60  # held-out frames (second half) for the FP32 vs INT8 report
    method: str = DETECTOR_CALIBRATION_METHOD
    gt: tuple[str | None, ...] = ()  # optional MOT gt per video (same order) for recall/precision
    gt_scale: tuple[float, ...] = ()  # multiply gt boxes (annotated at another resolution)

    def __post_init__(self) -> None:
        if not self.videos:
            raise DataError("export-detector needs at least one video of the site")
        if self.calib_frames < 8:
            raise DataError("--calib-frames must be at least 8")
        if not 0.0 < self.calib_fraction < 1.0:
            raise DataError("calib_fraction must be in (0, 1)")


@dataclass
class DetectorExport:
    files: dict[str, Path] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def _frame_count(video: str) -> int:
    import cv2

    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise DataError(f"cannot open video {video}")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if n <= 1:
        raise DataError(f"video {video} reports {n} frames; export-detector needs a file with a frame count")
    return n


def read_frames(video: str, indices: Sequence[int]) -> list[tuple[int, np.ndarray]]:
    """``(frame number from 1, BGR image)`` of the 0-based ``indices`` of a video, read in order."""
    import cv2

    want = set(int(i) for i in indices)
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise DataError(f"cannot open video {video}")
    out, i = [], 0
    try:
        while want and i <= max(want):
            ok, img = cap.read()
            if not ok:
                break
            if i in want:
                out.append((i + 1, img))
                want.discard(i)
            i += 1
    finally:
        cap.release()
    return out


def split_frames(n: int, calib: int, held_out: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """0-based calibration indices (evenly over the first ``fraction``) and held-out ones (the rest)."""
    cut = max(1, int(n * fraction))
    cal = np.unique(np.linspace(0, cut - 1, min(calib, cut)).round().astype(int))
    ev = np.unique(np.linspace(cut, n - 1, min(held_out, n - cut)).round().astype(int)) if n > cut else np.zeros(0, int)
    return cal, ev


def prepare_fp32(model_path: Path) -> Any:
    """The YOLOX model at opset >= 13 with any batch and input size (what gets quantized)."""
    import onnx
    from onnx import version_converter

    from reid_edge.pipeline.detectors.yolox import flexible_yolox

    model = onnx.load(str(model_path))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:  # onnx raises several types
            raise ExportError(f"cannot convert {model_path.name} from opset {opset} to {MIN_OPSET}: {exc}") from exc
    flexible, native = flexible_yolox(model)
    return flexible, native


def prediction_nodes(model: Any) -> list[str]:
    """The head's last convolutions and what follows them up to the output ``Reshape``s.

    They are kept in float: their outputs are box offsets and score logits, whose per-tensor
    INT8 rounding moves boxes and flips borderline scores, for well under 1% of the compute.
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    keep: list[str] = []
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[0] not in producer:
            continue
        for name in producer[node.input[0]].input:  # the Concat of box, objectness and class maps
            p = producer.get(name)
            while p is not None and p.op_type != "Conv":
                keep.append(p.name)
                p = producer.get(p.input[0])
            if p is not None:
                keep.append(p.name)
    return keep


def early_nodes(model: Any, native: tuple[int, int], max_stride: int = FLOAT_MAX_STRIDE) -> list[str]:
    """Convolutions whose output is at stride <= ``max_stride`` (the full-resolution layers).

    Strides come from ONNX shape inference with the model's native input size; a convolution whose
    output shape cannot be inferred is not listed.
    """
    import copy

    import onnx

    fixed = copy.deepcopy(model)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, *native)):
        dim.Clear()
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(fixed)
    heights = {vi.name: vi.type.tensor_type.shape.dim[2].dim_value for vi in inferred.graph.value_info
               if len(vi.type.tensor_type.shape.dim) == 4}
    return [n.name for n in model.graph.node
            if n.op_type == "Conv" and heights.get(n.output[0], 0) * max_stride >= native[0]]


def _set_meta(model: Any, meta: dict[str, Any]) -> None:
    import onnx

    onnx.helper.set_model_props(model, {DETECTOR_META_KEY: json.dumps(meta, sort_keys=True)})


def _detections(detector: Any, frames: list[tuple[int, np.ndarray]]) -> tuple[list[np.ndarray], float]:
    t0 = time.perf_counter()
    out = [detector.detect(img, f) for f, img in frames]
    return out, 1000 * (time.perf_counter() - t0) / max(len(frames), 1)


def compare(reference: list[np.ndarray], other: list[np.ndarray], min_score: float = 0.5,
            min_iou: float = 0.5) -> dict[str, float]:
    """Recall and precision of ``other`` against ``reference`` boxes (score >= ``min_score``), per frame
    Hungarian matching at ``min_iou``; plus the mean IoU and score change of matched pairs."""
    from scipy.optimize import linear_sum_assignment

    from reid_edge.pipeline.tracker import iou_matrix

    tp = n_ref = n_other = 0
    ious: list[float] = []
    dscore: list[float] = []
    for a, b in zip(reference, other):
        a, b = a[a[:, 4] >= min_score], b[b[:, 4] >= min_score]
        n_ref += len(a)
        n_other += len(b)
        if len(a) == 0 or len(b) == 0:
            continue
        iou = iou_matrix(a[:, :4], b[:, :4])
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= min_iou
        tp += int(ok.sum())
        ious += iou[rows[ok], cols[ok]].tolist()
        dscore += (b[cols[ok], 4] - a[rows[ok], 4]).tolist()
    return {"recall": tp / max(n_ref, 1), "precision": tp / max(n_other, 1), "reference_boxes": n_ref,
            "boxes": n_other, "mean_iou": float(np.mean(ious)) if ious else 0.0,
            "mean_score_change": float(np.mean(dscore)) if dscore else 0.0}


def export_detector(cfg: DetectorExportConfig, log: Callable[[str], None] = print) -> DetectorExport:
    """Calibrate and quantize the detector on the site's footage; write the files and the report.

    Raises:
        DataError: a video cannot be read or yields too few frames.
        ExportError: conversion, calibration or quantization fails, or the TensorRT encoding
            breaks TensorRT's explicit-quantization rules.
    """
    from reid_edge.pipeline.detectors.yolox import YoloxDetector, default_yolox_path

    source = Path(cfg.model) if cfg.model else default_yolox_path()
    if not source.is_file():
        raise DataError(f"detector model {source} does not exist")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fp32, native = prepare_fp32(source)
    files = {k: out / v for k, v in DETECTOR_FILES.items()}
    meta = {"family": "yolox", "native_input": list(native), "source": source.name,
            "source_sha256": sha256_file(source), "encoding": "fp32"}
    _set_meta(fp32, meta)
    atomic_write_bytes(files["fp32"], fp32.SerializeToString())
    ref = YoloxDetector(files["fp32"], device="cpu")

    per_video = max(1, cfg.calib_frames // len(cfg.videos))
    per_eval = max(1, cfg.eval_frames // len(cfg.videos))
    groups: dict[tuple[int, ...], list[np.ndarray]] = {}
    held_out: list[list[tuple[int, np.ndarray]]] = []
    for video in cfg.videos:
        cal_idx, ev_idx = split_frames(_frame_count(video), per_video, per_eval, cfg.calib_fraction)
        frames = read_frames(video, list(cal_idx))
        if len(frames) < min(4, len(cal_idx)):
            raise DataError(f"{video}: read {len(frames)} of {len(cal_idx)} calibration frames")
        for _, img in frames:
            x = ref.preprocess(img)[0]
            groups.setdefault(x.shape, []).append(x)
        held_out.append(read_frames(video, list(ev_idx)))
    arrays = [np.concatenate(v) for v in groups.values()]
    n_cal = sum(len(a) for a in arrays)
    log(f"calibrating on {n_cal} frames of {len(cfg.videos)} video(s) ({cfg.method})")
    all_ops = tuple(dict.fromkeys(op for ops in DETECTOR_OPS.values() for op in ops))
    ranges = calibrate(files["fp32"], arrays, method=cfg.method, batch_size=1, op_types=all_ops)
    head, early = prediction_nodes(fp32), early_nodes(fp32, native)
    h = calibration_sha256(np.concatenate([a.reshape(len(a), -1)[:, :4096] for a in arrays]))

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    report: dict[str, Any] = {"native_input": list(native), "config": settings,
                              "calibration_frames": n_cal, "calibration_sha256": h, "held_out_frames":
                              sum(len(v) for v in held_out), "encodings": {}}
    flat = [fr for v in held_out for fr in v]
    ref_dets, ref_ms = _detections(ref, flat)
    report["fp32_ms_per_frame"] = round(ref_ms, 2)
    if cfg.gt:
        report["fp32_vs_gt"] = _against_gt(cfg, held_out, ref_dets)
    for enc in ("int8-qdq-cpu", "int8-qdq-trt"):
        keep = head + early
        proto = quantize_qdq(files["fp32"], ranges, enc, op_types=DETECTOR_OPS[enc], exclude=keep)
        if enc == "int8-qdq-trt":
            problems = check_trt_qdq(proto)
            if problems:
                raise ExportError("the TensorRT INT8 detector breaks explicit-quantization rules: "
                                  + "; ".join(problems[:3]))
        _set_meta(proto, {**meta, "encoding": enc, "calibration_sha256": h, "calibration_method": cfg.method,
                          "encoding_description": ENCODINGS[enc].description})
        atomic_write_bytes(files[enc], proto.SerializeToString())
        del proto
        det = YoloxDetector(files[enc], device="cpu")
        dets, ms = _detections(det, flat)
        entry: dict[str, Any] = {"file": files[enc].name, "ms_per_frame": round(ms, 2),
                                 "vs_fp32": compare(ref_dets, dets)}
        if cfg.gt:
            entry["vs_gt"] = _against_gt(cfg, held_out, dets)
        report["encodings"][enc] = entry
        log(f"{enc}: {entry['vs_fp32']['recall']:.3f} of the FP32 boxes kept, {ms:.1f} ms/frame "
            f"(FP32 {ref_ms:.1f})")
    atomic_write_json(files["report"], report)
    return DetectorExport(files, report)


def _against_gt(cfg: DetectorExportConfig, held_out: list[list[tuple[int, np.ndarray]]],
                dets: list[np.ndarray]) -> dict[str, float]:
    from reid_edge.pipeline.motfile import read_mot_tracks

    ref: list[np.ndarray] = []
    pred: list[np.ndarray] = []
    k = 0
    for i, frames in enumerate(held_out):
        gt_path = cfg.gt[i] if i < len(cfg.gt) else None
        scale = cfg.gt_scale[i] if i < len(cfg.gt_scale) else 1.0
        gt = read_mot_tracks(gt_path, is_gt=True, scale=scale) if gt_path else None
        for f, _ in frames:
            if gt is not None:
                boxes = gt.get(f, (None, np.zeros((0, 4))))[1]
                ref.append(np.concatenate([boxes, np.ones((len(boxes), 1))], axis=1))
                pred.append(dets[k])
            k += 1
    return compare(ref, pred) if ref else {}
