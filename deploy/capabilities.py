"""Format capability table: which export combinations can be honoured (STYLE rule 6).

A flag combination the chosen format cannot honour is an error, never a silent downgrade.

=========  =========  ===========================================================================
format     precision  what is written
=========  =========  ===========================================================================
onnx       fp32       ``model.onnx`` (any ONNX runtime)
onnx       fp16       ``model.onnx`` + ``model.fp16.onnx`` (FP16 graph, L2 norm in FP32; fast on
                      GPUs, ONNX Runtime on CPU runs it through inserted casts: no speed-up)
onnx       int8       ``model.onnx`` + ``model.int8.trt.onnx`` (symmetric Q/DQ for TensorRT) +
                      ``model.int8.cpu.onnx`` (QUInt8 activations for ONNX Runtime CPU) +
                      ``calibration.cache`` + ``int8_report.json``
engine     fp32       ``model.onnx`` + ``model.engine`` (TensorRT)
engine     fp16       as onnx/fp16 + ``model.engine`` (BuilderFlag.FP16 on TensorRT 10, the FP16
                      graph in a strongly typed network on TensorRT 11)
engine     int8       as onnx/int8 + ``model.engine`` built from ``model.int8.trt.onnx``
=========  =========  ===========================================================================

Other rules: ``--int8`` and ``--fp16`` exclude each other; ``--opset`` must lie in 13..20
(13 is the minimum for per-channel Q/DQ; the default is 17); ``--batch`` sets the TensorRT
optimization profile, so it needs ``--format engine`` (ONNX models have a dynamic batch);
calibration flags need ``--int8``; ``--format engine`` needs TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reid_edge.artifacts import ENGINE_ROLES, FP32_ONNX, PRECISION_ROLES, filename
from reid_edge.backends import TENSORRT_INSTALL_HINT
from reid_edge.calibration.quantize import MIN_QDQ_OPSET
from reid_edge.errors import BackendError, ConfigError, ExportError

FORMATS = ("onnx", "engine")
MIN_OPSET = MIN_QDQ_OPSET  # INT8 Q/DQ with per-channel weights
MAX_OPSET = 20
DEFAULT_OPSET = 17
DEFAULT_BATCH = (1, 8, 32)

# (format, precision) -> the artifact roles written (see reid_edge.artifacts), and whether an engine is built
CAPABILITIES: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {
    (fmt, precision): ((FP32_ONNX, *roles, *(ENGINE_ROLES if fmt == "engine" else ())), fmt == "engine")
    for fmt in FORMATS for precision, roles in PRECISION_ROLES.items()
}


def tensorrt_available() -> bool:
    """True where the real TensorRT Python package imports (tensorrt-stubs alone does not count)."""
    from reid_edge.backends.trt_backend import import_tensorrt

    try:
        import_tensorrt()
    except BackendError:
        return False
    return True


def parse_batch(text: str) -> tuple[int, int, int]:
    """``"1,8,32"`` -> ``(1, 8, 32)``; a single number ``N`` means ``N,N,N``.

    Raises:
        ConfigError: not 1 or 3 positive integers with min <= opt <= max.
    """
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--batch expects MIN,OPT,MAX integers, got '{text}'") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or values[0] < 1 or not values[0] <= values[1] <= values[2]:
        raise ConfigError(f"--batch expects MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX, got '{text}'")
    return values[0], values[1], values[2]


@dataclass(frozen=True)
class ExportPlan:
    """A validated export request: what will be built and why."""

    format: str
    precision: str
    opset: int
    batch: tuple[int, int, int]
    files: tuple[str, ...]
    build_engine: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def int8(self) -> bool:
        return self.precision == "int8"


def plan_export(
    format: str | None = None,
    int8: bool = False,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    batch: tuple[int, int, int] | None = None,
    calibration_flags: tuple[str, ...] = (),
    has_tensorrt: bool | None = None,
) -> ExportPlan:
    """Validate flags against :data:`CAPABILITIES` and choose defaults.

    Args:
        format: ``onnx`` | ``engine`` | None (the best this machine can build: an engine where
            TensorRT imports, else ONNX).
        calibration_flags: names of calibration-only flags the user gave (``--calib`` ...).
        has_tensorrt: override detection (tests).
    Raises:
        ConfigError: contradictory or unsupported flags.
        ExportError: ``--format engine`` without TensorRT.
    """
    trt = tensorrt_available() if has_tensorrt is None else has_tensorrt
    notes: list[str] = []
    if int8 and fp16:
        raise ConfigError("--int8 and --fp16 exclude each other: choose one precision")
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    if format is None:
        format = "engine" if trt else "onnx"
        notes.append(f"format {format}: " + ("TensorRT imports on this machine" if trt else
                                             "TensorRT is not installed here, writing ONNX for ONNX Runtime"))
    if format not in FORMATS:
        raise ConfigError(f"unknown --format '{format}' (choose from {', '.join(FORMATS)})")
    if format == "engine" and not trt:
        raise ExportError(f"--format engine needs TensorRT, which does not import here; {TENSORRT_INSTALL_HINT}, "
                          "or use --format onnx")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"--opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET}; "
                          f"INT8 Q/DQ with per-channel weights needs >= {MIN_OPSET})")
    if batch is not None and format != "engine":
        raise ConfigError("--batch sets the TensorRT optimization profile and needs --format engine "
                          "(ONNX models have a dynamic batch)")
    if calibration_flags and not int8:
        raise ConfigError(f"{', '.join(calibration_flags)} only apply to INT8 exports: add --int8")
    roles, engine = CAPABILITIES[(format, precision)]
    return ExportPlan(format, precision, opset, batch or DEFAULT_BATCH, tuple(filename(r) for r in roles), engine,
                      tuple(notes))
