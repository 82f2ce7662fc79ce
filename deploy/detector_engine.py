"""TensorRT engine of the INT8 person detector (explicit quantization from ``detector.int8.trt.onnx``).

The detector's ONNX takes any input size (see :func:`reid_edge.pipeline.detectors.yolox.flexible_yolox`);
an engine is built for the one network input a site's cameras letterbox to (``network_size`` of
the frame size), with a batch profile ``1..max_batch`` so that several cameras of one size can
share a call. TensorRT 10 gets ``BuilderFlag.INT8`` for the Q/DQ layers; TensorRT 11 builds
it strongly typed (:func:`reid_edge.deploy.tensorrt_build.network_plan`). The engine bytes are
written as TensorRT serialized them, with a JSON sidecar describing the build; a failed parse or
build raises and writes nothing. On GPU boxes ``reid-edge run --device cuda`` runs the same Q/DQ
ONNX through ONNX Runtime's TensorRT execution provider, which builds and caches its own engine.
"""

from __future__ import annotations

from pathlib import Path

from reid_edge.backends.trt_backend import compute_capability, import_cudart, import_tensorrt
from reid_edge.card import sha256_file
from reid_edge.deploy.tensorrt_build import (
    DEFAULT_WORKSPACE_GIB,
    default_timing_cache,
    network_plan,
    tensorrt_major,
)
from reid_edge.errors import ExportError
from reid_edge.io import atomic_write_bytes, atomic_write_json

DETECTOR_INPUT = "images"


def build_detector_engine(
    onnx_path: str | Path,
    out: str | Path,
    input_hw: tuple[int, int],
    precision: str = "int8",
    max_batch: int = 2,
    timing_cache: str | Path | None = None,
    workspace_gib: float = DEFAULT_WORKSPACE_GIB,
) -> Path:
    """Build and write a TensorRT engine of the detector for one network input size.

    Args:
        onnx_path: ``detector.int8.trt.onnx`` (int8) or ``detector.onnx`` (fp32/fp16).
        out: engine path; the sidecar is ``<out>.json``.
        input_hw: the network input ``(h, w)`` (multiples of 32).
        precision: ``int8`` | ``fp16`` | ``fp32``.
        max_batch: profile ``1..max_batch`` (optimised for 1).
    Returns:
        The engine path.
    Raises:
        ExportError: bad size, the ONNX does not parse or the build fails.
        BackendError: TensorRT, cuda-python or a GPU is missing.
    """
    h, w = int(input_hw[0]), int(input_hw[1])
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ExportError(f"detector input {h}x{w}: both sides must be positive multiples of 32")
    if max_batch < 1:
        raise ExportError("max_batch must be >= 1")
    import_tensorrt()
    import tensorrt as trt

    cudart = import_cudart()
    version = str(trt.__version__)
    capability = compute_capability(cudart, 0)
    strongly_typed, flag_names = network_plan(precision, tensorrt_major(version))

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed and typed_flag is not None:
        flags |= 1 << int(typed_flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"TensorRT {version} cannot parse {Path(onnx_path).name}: " + " | ".join(errors[:3]))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    for name in flag_names:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:
            raise ExportError(f"TensorRT {version} has no BuilderFlag.{name}")
        config.set_flag(flag)
    profile = builder.create_optimization_profile()
    profile.set_shape(DETECTOR_INPUT, trt.Dims([1, 3, h, w]), trt.Dims([1, 3, h, w]), trt.Dims([max_batch, 3, h, w]))
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache is not None else default_timing_cache(version, capability)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT {version} failed to build the {precision} detector engine (see its log above)")
    atomic_write_bytes(cache_path, bytes(cache.serialize()))
    out = Path(out)
    atomic_write_bytes(out, bytes(serialized))
    atomic_write_json(out.with_name(out.name + ".json"), {
        "tensorrt_version": version, "compute_capability": capability, "precision": precision,
        "input": {"name": DETECTOR_INPUT, "shape": [1, 3, h, w], "max_batch": max_batch},
        "strongly_typed": strongly_typed, "builder_flags": flag_names,
        "source_onnx": Path(onnx_path).name, "source_onnx_sha256": sha256_file(onnx_path),
    })
    return out
