"""Backend registry: artifact format -> (module, class), imported lazily (STYLE rule 2).

``reid-edge --help`` works without torch or TensorRT; asking for a runtime that is missing
gives one clear :class:`BackendError`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..artifacts import ENGINE_MAGIC
from ..errors import BackendError, CheckpointError
from .base import Backend, Embeddings

# format -> (module, class, what to install when the import fails)
REGISTRY: dict[str, tuple[str, str, str]] = {
    "checkpoint": ("reid_edge.backends.torch_backend", "TorchBackend", "pip install torch==2.13.0"),
    "onnx": ("reid_edge.backends.ort_backend", "OnnxRuntimeBackend", "pip install onnxruntime"),
    "engine": ("reid_edge.backends.trt_backend", "TensorRTBackend", "pip install 'reid-edge[tensorrt]' on a GPU box"),
}

TENSORRT_INSTALL_HINT = "pip install 'reid-edge[tensorrt]' on a machine with an NVIDIA GPU and driver"


def detect_format(path: str | Path) -> str:
    """Tell the artifact format from the file's content, never from its name.

    Raises:
        CheckpointError: missing file or unknown content.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"model file {p} does not exist")
    with open(p, "rb") as handle:
        head = handle.read(64)
    if head.startswith(ENGINE_MAGIC):
        return "engine"
    if head.startswith(b"PK\x03\x04"):  # torch.save zip archive
        return "checkpoint"
    if head[:1] == b"\x08":  # ONNX ModelProto starts with field 1 (ir_version), varint
        return "onnx"
    raise CheckpointError(f"{p} is not a reid-edge checkpoint, ONNX model or engine")


def backend_class(fmt: str) -> type[Backend]:
    if fmt not in REGISTRY:
        raise BackendError(f"unknown model format '{fmt}' (known: {', '.join(REGISTRY)})")
    module_name, class_name, hint = REGISTRY[fmt]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"the {fmt} runtime is not available ({exc.name or exc}); install it with: {hint}") from None
    cls: type[Backend] = getattr(module, class_name)
    return cls


def load_backend(path: str | Path, device: str = "auto", **options: object) -> Backend:
    """Open an artifact with the runtime its format needs.

    Args:
        path: a training checkpoint (.pt), an ONNX model (FP32 or Q/DQ INT8) or an engine.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    fmt = detect_format(path)
    return backend_class(fmt)(path, device=device, **options)  # type: ignore[call-arg]


__all__ = ["Backend", "Embeddings", "REGISTRY", "detect_format", "backend_class", "load_backend", "ENGINE_MAGIC",
           "TENSORRT_INSTALL_HINT"]
