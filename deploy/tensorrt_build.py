"""Build TensorRT engines (TensorRT 10 and 11) from the exported ONNX models.

- FP32: from ``model.onnx``.
- FP16: TensorRT 10 sets ``BuilderFlag.FP16`` on ``model.onnx``; TensorRT 11 has no precision
  flags and every network is strongly typed, so it parses ``model.fp16.onnx`` (FP16 graph, L2
  normalization kept in FP32, see :func:`reid_edge.deploy.export_onnx.convert_onnx_fp16`).
- INT8: explicit quantization from the symmetric Q/DQ ONNX ``model.int8.trt.onnx`` (no
  calibrator: TensorRT 11 removed implicit calibration). TensorRT 10 also gets
  ``BuilderFlag.INT8`` so the Q/DQ layers may run in INT8; TensorRT 11 builds it strongly typed.

One optimization profile (min/opt/max batch), a persistent timing cache (reused across builds on
the same TensorRT version and GPU) and the model card in the engine header (see
:mod:`reid_edge.backends.trt_backend`). Failures raise :class:`ExportError` with the parser's
messages, never a half-built engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reid_edge.artifacts import EngineHeader, pack_engine
from reid_edge.backends.trt_backend import compute_capability, import_cudart, import_tensorrt
from reid_edge.card import INPUT_NAME, ModelCard, sha256_file
from reid_edge.deploy.capabilities import DEFAULT_BATCH
from reid_edge.errors import ExportError
from reid_edge.io import atomic_write_bytes, atomic_write_json

DEFAULT_WORKSPACE_GIB = 4.0


def tensorrt_major(version: str) -> int:
    """Major version from ``tensorrt.__version__`` (``"10.13.0.35"`` -> 10)."""
    try:
        return int(version.split(".")[0])
    except ValueError:
        raise ExportError(f"cannot read the TensorRT version '{version}'") from None


def default_timing_cache(tensorrt_version: str, capability: str) -> Path:
    """``$XDG_CACHE_HOME/reid-edge/trt-<version>-sm<cc>.timing`` (one per TensorRT version and GPU)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "reid-edge"
    return base / f"trt-{tensorrt_version}-sm{capability.replace('.', '')}.timing"


def network_plan(precision: str, major: int) -> tuple[bool, list[str]]:
    """``(strongly_typed, builder flag names)`` for a precision on a TensorRT major version.

    Raises:
        ExportError: unknown precision.
    """
    if precision not in ("fp32", "fp16", "int8"):
        raise ExportError(f"unknown engine precision '{precision}' (fp32, fp16 or int8)")
    if major >= 11:
        return True, []  # precision comes from the ONNX types (FP16 graph or Q/DQ)
    return False, {"fp32": [], "fp16": ["FP16"], "int8": ["INT8"]}[precision]


def build_engine(
    onnx_path: str | Path,
    out: str | Path,
    card: ModelCard,
    precision: str,
    batch: tuple[int, int, int] = DEFAULT_BATCH,
    timing_cache: str | Path | None = None,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Path, EngineHeader]:
    """Build, serialize and write a reid-edge engine (header + engine bytes, plus a JSON sidecar).

    Args:
        onnx_path: the ONNX to parse: FP32 (fp32, and fp16 on TensorRT 10), FP16 graph (fp16 on
            TensorRT 11) or symmetric Q/DQ (int8).
        out: engine path (``model.engine``); the sidecar is ``<out>.json``.
        card: card of the source ONNX; precision/encoding are set here.
        precision: ``fp32`` | ``fp16`` | ``int8``.
        batch: optimization profile ``(min, opt, max)`` batch sizes.
        timing_cache: persistent timing cache file (default: :func:`default_timing_cache`).
        progress: ``progress(phase, step, num_steps)`` callback for a progress bar.
    Returns:
        ``(engine path, header)``.
    Raises:
        ExportError: the ONNX does not parse or the build fails.
        BackendError: TensorRT, cuda-python or a GPU is missing.
    """
    import_tensorrt()  # a clear error where only tensorrt-stubs is installed
    import tensorrt as trt

    cudart = import_cudart()
    version = str(trt.__version__)
    major = tensorrt_major(version)
    capability = compute_capability(cudart, 0)
    strongly_typed, flag_names = network_plan(precision, major)
    lo, opt, hi = batch
    if not 1 <= lo <= opt <= hi:
        raise ExportError(f"invalid optimization profile {batch}: need 1 <= min <= opt <= max")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed and typed_flag is not None:  # a release where every network is typed may drop the flag
        flags |= 1 << int(typed_flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"TensorRT {version} cannot parse {Path(onnx_path).name}: " + " | ".join(errors[:3])
                          + " (unsupported op or opset? Q/DQ must be symmetric INT8: see the static check)")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    for name in flag_names:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:
            raise ExportError(f"TensorRT {version} has no BuilderFlag.{name}; build from the "
                              f"{'FP16' if name == 'FP16' else 'Q/DQ'} ONNX as a strongly typed network")
        config.set_flag(flag)

    profile = builder.create_optimization_profile()
    shape = (3, card.input_height, card.input_width)
    profile.set_shape(INPUT_NAME, trt.Dims([lo, *shape]), trt.Dims([opt, *shape]), trt.Dims([hi, *shape]))
    config.add_optimization_profile(profile)

    cache_path = Path(timing_cache) if timing_cache is not None else default_timing_cache(version, capability)
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)

    if progress is not None and hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(trt, progress)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT {version} failed to build the {precision} engine (see the TensorRT log above; "
                          "out of GPU memory? try a smaller --batch MAX)")
    atomic_write_bytes(cache_path, bytes(cache.serialize()))

    header = EngineHeader(
        card=card.replace(precision=precision, encoding={"int8": "int8-qdq-trt"}.get(precision, precision)),
        tensorrt_version=version, compute_capability=capability,
        profile={"min": lo, "opt": opt, "max": hi}, precision=precision,
        source_onnx=Path(onnx_path).name, source_onnx_sha256=sha256_file(onnx_path),
        extra={"strongly_typed": strongly_typed, "builder_flags": flag_names, "timing_cache": str(cache_path)},
    )
    out = Path(out)
    atomic_write_bytes(out, pack_engine(header, bytes(serialized)))
    atomic_write_json(out.with_name(out.name + ".json"), header.to_dict())
    return out, header


def _progress_monitor(trt: Any, progress: Callable[[str, int, int], None]) -> Any:
    """An ``IProgressMonitor`` forwarding phase steps to ``progress``."""
    import tensorrt

    class Monitor(tensorrt.IProgressMonitor):
        def __init__(self) -> None:
            tensorrt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            progress(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress(phase_name, step + 1, self.steps.get(phase_name, step + 1))
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            total = self.steps.get(phase_name, 1)
            progress(phase_name, total, total)

    return Monitor()

