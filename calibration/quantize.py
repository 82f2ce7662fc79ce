"""One calibration, two INT8 encodings (explicit Q/DQ quantization with ONNX Runtime).

Calibration ranges are computed ONCE on the preprocessed held-aside crops and then drive two
quantizations of the same FP32 ONNX:

- ``int8-qdq-trt``: symmetric QInt8 activations (zero point 0) and per-channel symmetric QInt8
  weights kept as FP32 initializers behind a Q/DQ pair, biases left in FP32. This is what
  TensorRT 10/11's ONNX parser accepts for explicit quantization (and ONNX Runtime runs it too).
- ``int8-qdq-cpu``: QUInt8 activations and per-channel QInt8 weights (int32 biases). ONNX
  Runtime's CPU kernels (QLinearConv, VNNI) are only fast with unsigned activations: measured
  about 3x FP32 throughput, while the symmetric QInt8 encoding is no faster than FP32 on CPU.

Calibration methods: ``minmax`` (default: one pass, the least memory and time: 8-10 s and
2.3 GB for a ResNet-50 on 128 crops), ``entropy`` and ``percentile`` (histograms: 25-45 s and
about 6 GB). MinMax is the default because edge and CI boxes are small.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reid_edge.artifacts import ARTIFACTS, INT8_CPU_ONNX, INT8_TRT_ONNX
from reid_edge.card import ModelCard, set_card
from reid_edge.errors import ExportError

if TYPE_CHECKING:
    import onnx
    from onnxruntime.quantization.calibrate import TensorsData

MIN_QDQ_OPSET = 13  # QuantizeLinear/DequantizeLinear with a per-channel axis
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIBRATION_METHOD = "minmax"
# Ops whose inputs/outputs get Q/DQ: the convolutional backbone. The embedding heads (Gemm/MatMul,
# bias Adds, BatchNorm1d necks) and the L2 normalization (ReduceL2, Clip, Div) stay in float: they
# are well under 1% of the compute and carry most of the quantization error into the embedding.
# Relu/Clip directly after a Conv are listed so that ORT folds them into the Conv's output
# quantization (range [0, 6] for ReLU6 instead of the pre-activation range): MobileNetV2's INT8
# cosine went from 0.883 to 0.951 (TensorRT encoding) with that alone. Other Clips (the L2 norm's)
# are excluded in :func:`head_nodes`.
QUANTIZED_OPS = ("Conv", "Relu", "Clip", "Add", "MaxPool", "AveragePool", "GlobalAveragePool")


@dataclass(frozen=True)
class Encoding:
    """An INT8 Q/DQ encoding: its name (the card's ``encoding``), file name and description."""

    name: str
    filename: str
    description: str
    activation_signed: bool


def _encoding_of(role: str) -> str:
    enc = ARTIFACTS[role].encoding
    if enc is None:
        raise AssertionError(f"artifact {role} is not a model (no encoding)")
    return enc


ENCODINGS: dict[str, Encoding] = {e.name: e for e in (
    Encoding(
        _encoding_of(INT8_TRT_ONNX), ARTIFACTS[INT8_TRT_ONNX].filename,
        "Q/DQ INT8 for TensorRT explicit quantization: symmetric QInt8 activations (zero point 0), "
        "per-channel symmetric QInt8 weights (FP32 weights behind Q/DQ), FP32 biases",
        True),
    Encoding(
        _encoding_of(INT8_CPU_ONNX), ARTIFACTS[INT8_CPU_ONNX].filename,
        "Q/DQ INT8 for ONNX Runtime on CPU: QUInt8 activations, per-channel symmetric QInt8 weights, "
        "int32 biases (fused to QLinearConv)",
        False),
)}


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    table = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}
    if name not in table:
        raise ExportError(f"unknown calibration method '{name}' (choose from {', '.join(CALIBRATION_METHODS)})")
    return table[name]


def calibrate(
    fp32_onnx: str | Path,
    images: np.ndarray | Sequence[np.ndarray],
    method: str = DEFAULT_CALIBRATION_METHOD,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
    op_types: Sequence[str] = QUANTIZED_OPS,
) -> TensorsData:
    """Collect activation ranges of ``fp32_onnx`` on preprocessed ``images`` (float32 NCHW).

    ``images`` may be a list of such arrays of different shapes (a detector calibrated on
    cameras of different frame sizes): each feeds the same running ranges.

    Returns:
        ONNX Runtime ``TensorsData`` (tensor name -> lowest/highest), reusable by
        :func:`quantize_encoding` for every encoding.
    Raises:
        ExportError: unknown method or a calibration failure.
    """
    from onnxruntime.quantization.calibrate import TensorsData, create_calibrator

    from .calib_set import ArrayCalibrationReader

    calib_method = _method(method)
    options: dict[str, Any] = {}
    if method == "percentile":
        options["percentile"] = 99.999
    # Memory stays bounded by feeding a few batches per collect_data call: each call folds its
    # batches into the running ranges/histograms. (ORT's own max_intermediate_outputs option
    # drops the batches it clears without merging them, so it is not used.)
    chunk = 4 * batch_size
    # ORT's histogram calibrators print progress lines to stdout, where a command's results go
    with tempfile.TemporaryDirectory(prefix="reid-edge-calib.") as tmp, contextlib.redirect_stdout(sys.stderr):
        try:
            calibrator = create_calibrator(
                Path(fp32_onnx), list(op_types), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=calib_method, providers=["CPUExecutionProvider"], extra_options=options,
            )
            for group in ([images] if isinstance(images, np.ndarray) else images):
                for start in range(0, len(group), chunk):
                    calibrator.collect_data(ArrayCalibrationReader(group[start:start + chunk], batch_size, on_batch))
            ranges = calibrator.compute_data()
        except Exception as exc:
            raise ExportError(f"calibration ({method}) failed: {type(exc).__name__}: {exc}") from exc
        del calibrator
    if not isinstance(ranges, TensorsData) or not len(ranges.data):
        raise ExportError("calibration produced no tensor ranges")
    return ranges


def tensor_amax(ranges: TensorsData) -> dict[str, float]:
    """Symmetric range per tensor: ``max(|lowest|, |highest|)``."""
    out: dict[str, float] = {}
    for name, data in ranges.items():
        lo, hi = data.range_value
        out[name] = float(max(abs(float(np.asarray(lo).min())), abs(float(np.asarray(hi).max()))))
    return out


def _quantizer_options(encoding: Encoding) -> tuple[Any, dict[str, Any]]:
    from onnxruntime.quantization import QuantType

    if encoding.activation_signed:
        return QuantType.QInt8, {
            "ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
            "AddQDQPairToWeight": True,
        }
    return QuantType.QUInt8, {"ActivationSymmetric": False, "WeightSymmetric": True}


# per-instance normalizations: they rescale each channel by its own spread, so a channel whose range
# is small next to its tensor's INT8 step has its quantization error blown up
_INSTANCE_NORMS = ("InstanceNormalization", "LayerNormalization", "MeanVarianceNormalization")


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes kept in float: elementwise ops with a constant operand (the heads' bias adds),
    activations that do not follow a Conv/Add (the L2 norm's clamp), and Convs whose output goes
    (through reshapes) into a per-instance normalization.

    The last rule matters for OSNet-style models with instance norm (Intel's 0288: mean INT8 cosine
    0.990 -> 0.992 for the TensorRT encoding and 0.994 -> 0.995 for the CPU one, measured on 200
    held-aside Market-1501 training crops); models with BatchNorm only have no such Conv.
    """
    consts = {t.name for t in model.graph.initializer} | {
        o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    heads = [n.name for n in model.graph.node
             if n.op_type in ("Add", "Mul", "Sub", "Div") and any(i in consts for i in n.input)]
    # activations are quantized only as part of a Conv (fused); the L2 norm's Clip stays float
    heads += [n.name for n in model.graph.node
              if n.op_type in ("Relu", "Clip") and producer.get(n.input[0]) not in ("Conv", "Add")]

    def feeds_instance_norm(tensor: str, depth: int = 0) -> bool:
        for c in consumers.get(tensor, []):
            if c.op_type in _INSTANCE_NORMS:
                return True
            if c.op_type in ("Reshape", "Flatten", "Unsqueeze", "Squeeze") and depth < 3 and \
                    feeds_instance_norm(c.output[0], depth + 1):
                return True
        return False

    heads += [n.name for n in model.graph.node if n.op_type == "Conv" and feeds_instance_norm(n.output[0])]
    return heads


def quantize_qdq(fp32_onnx: str | Path, ranges: TensorsData, encoding: str,
                 op_types: Sequence[str] = QUANTIZED_OPS, exclude: Sequence[str] | None = None) -> onnx.ModelProto:
    """Quantize ``fp32_onnx`` with precomputed ``ranges`` into one of :data:`ENCODINGS` (no card).

    Shared by the re-ID models (:func:`quantize_encoding`) and the detector
    (:mod:`reid_edge.calibration.detector`). ``op_types``: the ops that get Q/DQ; ``exclude``:
    node names kept in float (default: :func:`head_nodes`).

    Raises:
        ExportError: unknown encoding or a quantizer failure.
    """
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    if encoding not in ENCODINGS:
        raise ExportError(f"unknown INT8 encoding '{encoding}' (known: {', '.join(ENCODINGS)})")
    act_type, extra = _quantizer_options(ENCODINGS[encoding])
    model = load_model_with_shape_infer(Path(fp32_onnx))
    quant_logger = logging.getLogger()
    level = quant_logger.level
    quant_logger.setLevel(logging.ERROR)  # ORT's quantizer logs pre-processing advice at WARNING
    try:
        quantizer = QDQQuantizer(
            model, True, False, QuantType.QInt8, act_type, copy.deepcopy(ranges),
            [], head_nodes(model) if exclude is None else list(exclude), list(op_types), extra,
        )
        quantizer.quantize_model()
        quantizer.model.topological_sort()
    except Exception as exc:
        raise ExportError(f"quantization to {encoding} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        quant_logger.setLevel(level)
    proto: onnx.ModelProto = quantizer.model.model
    return proto


def quantize_encoding(
    fp32_onnx: str | Path,
    ranges: TensorsData,
    encoding: str,
    card: ModelCard,
) -> onnx.ModelProto:
    """Quantize ``fp32_onnx`` with precomputed ``ranges`` into one of :data:`ENCODINGS`.

    Args:
        fp32_onnx: the FP32 export.
        ranges: from :func:`calibrate` (copied, never modified).
        encoding: ``int8-qdq-trt`` or ``int8-qdq-cpu``.
        card: card to store (precision/encoding set here; calibration hash/method taken as given).
    Returns:
        The quantized model with its card (not yet saved).
    """
    proto = quantize_qdq(fp32_onnx, ranges, encoding)
    enc = ENCODINGS[encoding]
    set_card(proto, card.replace(precision="int8", encoding=encoding,
                                 extra={**card.extra, "encoding_description": enc.description}))
    return proto


def check_trt_qdq(model: onnx.ModelProto) -> list[str]:
    """Static check of TensorRT's explicit-quantization constraints; returns the problems found.

    Every QuantizeLinear/DequantizeLinear must have an INT8 zero point equal to 0 (symmetric),
    positive finite scales, and weight (initializer) quantization must be per-channel: a 1-D scale
    as long as the weight's ``axis`` dimension. INT32 (bias) dequantization and opset < 13 are
    rejected.
    """
    from onnx import TensorProto, numpy_helper

    problems: list[str] = []
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_QDQ_OPSET:
        problems.append(f"opset {opset} < {MIN_QDQ_OPSET}: per-channel Q/DQ needs opset {MIN_QDQ_OPSET}")
    inits = {t.name: t for t in model.graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant" and n.attribute}
    tensors = {**consts, **inits}
    weight_q = {n.output[0]: n.input[0] for n in model.graph.node
                if n.op_type == "QuantizeLinear" and n.input[0] in inits}
    count = 0
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        count += 1
        where = f"{node.op_type} '{node.name or node.output[0]}'"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: domain '{node.domain}' (TensorRT parses only standard Q/DQ)")
        if len(node.input) < 3 or not node.input[2]:
            problems.append(f"{where}: no zero point (the default is uint8; TensorRT needs an int8 zero point)")
            continue
        zp_t, scale_t = tensors.get(node.input[2]), tensors.get(node.input[1])
        if zp_t is None or scale_t is None:
            problems.append(f"{where}: scale and zero point must be constants")
            continue
        if zp_t.data_type != TensorProto.INT8:
            kind = TensorProto.DataType.Name(zp_t.data_type)
            problems.append(f"{where}: zero point type {kind}, TensorRT needs INT8")
        zp = numpy_helper.to_array(zp_t)
        if np.any(zp != 0):
            problems.append(f"{where}: zero point {zp.ravel()[:4].tolist()} is not 0 (asymmetric)")
        scale = numpy_helper.to_array(scale_t)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            problems.append(f"{where}: scales must be positive and finite")
        data_name = node.input[0]
        if data_name in weight_q:  # DequantizeLinear after a weight's QuantizeLinear
            data_name = weight_q[data_name]
        if data_name in inits:
            weight = inits[data_name]
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            dims = list(weight.dims)
            if len(dims) > 1:
                if scale.ndim != 1 or axis >= len(dims) or scale.shape[0] != dims[axis % len(dims)]:
                    problems.append(f"{where}: weight '{data_name}' {dims} is not quantized per channel "
                                    f"(scale shape {list(scale.shape)}, axis {axis})")
            if node.op_type == "DequantizeLinear" and weight.data_type == TensorProto.INT32:
                problems.append(f"{where}: INT32 bias dequantization is not supported by TensorRT")
        elif scale.size != 1:
            problems.append(f"{where}: activation '{data_name}' must use a per-tensor scale")
    if count == 0:
        problems.append("no QuantizeLinear/DequantizeLinear nodes: the model is not quantized")
    return problems
