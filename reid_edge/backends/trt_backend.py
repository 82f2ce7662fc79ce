"""TensorRT backend: runs reid-edge engines (file layout in :mod:`reid_edge.artifacts`).

TensorRT engines only run on the TensorRT version and GPU architecture that built them; loading
checks both and says how to rebuild. Device buffers use cuda-python; inference is
``execute_async_v3`` with ``set_tensor_address``. ``import tensorrt`` happens only when an engine
is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import EngineHeader, read_engine_header
from ..card import INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES, ModelCard
from ..errors import BackendError, CheckpointError
from . import TENSORRT_INSTALL_HINT
from .base import Backend


def rebuild_hint(header: EngineHeader) -> str:
    flag = {"int8": " --int8", "fp16": " --fp16"}.get(header.precision, "")
    source = f" (source ONNX: {header.source_onnx})" if header.source_onnx else ""
    return f"rebuild it on this machine: reid-edge export --checkpoint CKPT --format engine{flag}{source}"


def check_engine_compat(header: EngineHeader, tensorrt_version: str, compute_capability: str) -> None:
    """Refuse an engine built by another TensorRT version or for another GPU architecture.

    Raises:
        BackendError: version or compute capability differ (the message says how to rebuild).
    """
    if header.tensorrt_version != tensorrt_version:
        raise BackendError(f"engine was built with TensorRT {header.tensorrt_version}, this machine has "
                           f"{tensorrt_version}; engines are not portable across versions: {rebuild_hint(header)}")
    if header.compute_capability != compute_capability:
        raise BackendError(f"engine was built for GPU compute capability {header.compute_capability}, this GPU is "
                           f"{compute_capability}; {rebuild_hint(header)}")


def import_tensorrt() -> Any:
    """The real ``tensorrt`` module (tensorrt-stubs alone imports as an empty namespace package).

    Raises:
        BackendError: TensorRT is not installed.
    """
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendError(f"TensorRT is not installed; {TENSORRT_INSTALL_HINT}") from None
    if not hasattr(trt, "Builder"):
        raise BackendError(f"TensorRT is not installed (only its type stubs are); {TENSORRT_INSTALL_HINT}")
    return trt


def import_cudart() -> Any:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or the older ``cuda.cudart``).

    Raises:
        BackendError: cuda-python is not installed.
    """
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,unused-ignore,no-redef]
        except ImportError:
            raise BackendError("cuda-python is not installed (needed for TensorRT buffers); "
                               f"{TENSORRT_INSTALL_HINT}") from None
    return cudart


def cuda_check(cudart: Any, result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result; raise on an error code."""
    values = result if isinstance(result, tuple) else (result,)
    err, rest = values[0], values[1:]
    if int(err) != 0:
        name = cudart.cudaGetErrorName(err)[1] if hasattr(cudart, "cudaGetErrorName") else err
        raise BackendError(f"CUDA {what} failed: {name!r}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


def compute_capability(cudart: Any, device: int = 0) -> str:
    """``"major.minor"`` of a CUDA device."""
    props = cuda_check(cudart, cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    return f"{int(props.major)}.{int(props.minor)}"


class TensorRTBackend(Backend):
    """Run a reid-edge engine with TensorRT (10 or 11) on the GPU.

    Args:
        path: engine written by ``reid-edge export --format engine``.
        device: ``auto`` or ``cuda`` (``cpu`` is an error: engines run only on the GPU).
        gpu: CUDA device index.
    """

    name = "tensorrt"

    def __init__(self, path: str | Path, device: str = "auto", gpu: int = 0, **_: Any) -> None:
        if device == "cpu":
            raise BackendError("TensorRT engines run on the GPU only; use the ONNX model for CPU inference")
        self.path = Path(path)
        self.header, offset = read_engine_header(self.path)
        self.card: ModelCard = self.header.card
        import_tensorrt()  # a clear error where only tensorrt-stubs is installed
        import tensorrt as trt  # again, for the typed module: mypy checks the calls below against the stubs

        cudart = import_cudart()
        self._cudart = cudart
        cuda_check(cudart, cudart.cudaSetDevice(gpu), "cudaSetDevice")
        check_engine_compat(self.header, str(trt.__version__), compute_capability(cudart, gpu))
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine_bytes = self.path.read_bytes()[offset:]
        self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialize {self.path.name} (corrupt file?); "
                               f"{rebuild_hint(self.header)}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        expected = {INPUT_NAME, OUTPUT_GLOBAL} | ({OUTPUT_STRIPES} if self.card.has_stripes else set())
        if set(names) != expected:
            raise CheckpointError(f"{self.path.name}: unexpected engine tensors {names} (expected {sorted(expected)})")
        self.min_batch = int(self.header.profile["min"])
        self.max_batch = int(self.header.profile["max"])
        self._stream = cuda_check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        c = self.card
        shapes = {INPUT_NAME: (self.max_batch, 3, c.input_height, c.input_width),
                  OUTPUT_GLOBAL: (self.max_batch, c.global_dim),
                  OUTPUT_STRIPES: (self.max_batch, c.num_stripes, c.stripe_dim)}
        self._dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self._device_ptrs: dict[str, int] = {}
        for n in names:
            nbytes = int(np.prod(shapes[n])) * self._dtypes[n].itemsize
            self._device_ptrs[n] = int(cuda_check(cudart, cudart.cudaMalloc(nbytes), "cudaMalloc"))
            self.context.set_tensor_address(n, self._device_ptrs[n])
        self.device = "cuda"

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        cudart = self._cudart
        n = images.shape[0]
        batch = max(n, self.min_batch)
        if batch != n:  # below the profile minimum: pad, then drop the padding
            images = np.concatenate([images, np.zeros((batch - n, *images.shape[1:]), images.dtype)])
        x = np.ascontiguousarray(images, dtype=self._dtypes[INPUT_NAME])
        if not self.context.set_input_shape(INPUT_NAME, tuple(x.shape)):
            raise BackendError(f"{self.path.name}: batch {batch} is outside the engine profile "
                               f"{self.min_batch}..{self.max_batch}")
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_check(cudart, cudart.cudaMemcpyAsync(self._device_ptrs[INPUT_NAME], x.ctypes.data, x.nbytes, h2d,
                                                  self._stream), "cudaMemcpyAsync")
        if not self.context.execute_async_v3(int(self._stream)):
            raise BackendError(f"{self.path.name}: TensorRT execution failed")
        c = self.card
        outs = {OUTPUT_GLOBAL: np.empty((batch, c.global_dim), self._dtypes[OUTPUT_GLOBAL])}
        if c.has_stripes:
            outs[OUTPUT_STRIPES] = np.empty((batch, c.num_stripes, c.stripe_dim), self._dtypes[OUTPUT_STRIPES])
        for name, arr in outs.items():
            cuda_check(cudart, cudart.cudaMemcpyAsync(arr.ctypes.data, self._device_ptrs[name], arr.nbytes, d2h,
                                                      self._stream), "cudaMemcpyAsync")
        cuda_check(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return {k: v[:n].astype(np.float32, copy=False) for k, v in outs.items()}

    def close(self) -> None:
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr in getattr(self, "_device_ptrs", {}).values():
            cudart.cudaFree(ptr)
        self._device_ptrs = {}
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
