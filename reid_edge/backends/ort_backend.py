"""ONNX Runtime backend: FP32, FP16 and Q/DQ INT8 ONNX models (CPU; CUDA/TensorRT EPs when present).

The model card comes from the ONNX file's ``metadata_props``; nothing is guessed from the name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..card import CARD_KEY, INPUT_NAME, OUTPUT_GLOBAL, OUTPUT_STRIPES, ModelCard, read_card
from ..errors import BackendError, CheckpointError
from .base import Backend


def session_options(intra_op_threads: int = 0) -> Any:
    """ONNX Runtime options every session of the project starts from: quiet logging, idle intra-op
    threads that sleep instead of spin-waiting (a pipeline holds one session per camera plus the
    re-ID model on the same cores, and spinning pools starve each other: two real clips on 2 cores,
    13.3 -> 24.9 frames/s per camera; a lone session at batch 1 loses about 8 %), and
    ``intra_op_threads`` threads (0: ONNX Runtime's default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if intra_op_threads > 0:
        opts.intra_op_num_threads = intra_op_threads
    return opts


def choose_providers(available: list[str], device: str) -> list[str]:
    """Execution providers for ``device`` in preference order.

    ``cpu``: CPU only. ``cuda``: TensorRT and CUDA EPs that are present, then CPU; an error when
    neither is present. ``auto``: the GPU providers when present, then CPU.

    Raises:
        BackendError: unknown device, or ``cuda`` without a GPU build of onnxruntime.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise BackendError(f"unknown device '{device}' (use auto, cpu or cuda)")
    gpu = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" and not gpu:
        raise BackendError("device 'cuda' asked for, but this onnxruntime has no CUDA or TensorRT execution provider "
                           "(pip uninstall onnxruntime && pip install onnxruntime-gpu)")
    return gpu + ["CPUExecutionProvider"]


def tensorrt_ep_options(path: Path) -> dict[str, Any]:
    """ONNX Runtime TensorRT EP options: engine cache beside the model, INT8/FP16 from the model card."""
    options: dict[str, Any] = {"trt_engine_cache_enable": True,
                               "trt_engine_cache_path": str(path.parent / f".{path.name}.trt-cache")}
    try:
        card = read_card(path)
    except (ImportError, CheckpointError, OSError, ValueError):
        return options
    options["trt_int8_enable"] = card.encoding.startswith("int8")  # explicit Q/DQ scales, no calibration table
    options["trt_fp16_enable"] = card.encoding == "fp16"
    return options


class OnnxRuntimeBackend(Backend):
    """Run a reid-edge ONNX model with ONNX Runtime.

    Args:
        path: ONNX file written by ``reid-edge export``.
        device: ``auto`` | ``cpu`` | ``cuda``.
        intra_op_threads: ONNX Runtime intra-op threads (default: ``os.cpu_count()``).
        providers: explicit provider list, overriding ``device``.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "auto", intra_op_threads: int | None = None,
                 providers: list[str] | None = None, **_: Any) -> None:
        import onnxruntime as ort  # no `onnx` import: edge boxes have the runtime only

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX model {self.path} does not exist")
        opts = session_options(int(intra_op_threads or os.cpu_count() or 1))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.providers = providers or choose_providers(ort.get_available_providers(), device)
        chosen: list[Any] = [
            (p, tensorrt_ep_options(self.path)) if p == "TensorrtExecutionProvider" else p for p in self.providers]
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=chosen)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"ONNX Runtime cannot load {self.path.name}: {first[:300]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CARD_KEY not in meta:
            raise CheckpointError(f"{self.path} has no reid-edge model card; export it with `reid-edge export`")
        self.card: ModelCard = ModelCard.from_json(meta[CARD_KEY])
        names = [i.name for i in self.session.get_inputs()]
        outs = [o.name for o in self.session.get_outputs()]
        self._outputs = [OUTPUT_GLOBAL, OUTPUT_STRIPES] if self.card.has_stripes else [OUTPUT_GLOBAL]
        if names != [INPUT_NAME] or not set(self._outputs) <= set(outs):
            raise CheckpointError(f"{self.path.name}: expected input '{INPUT_NAME}' and outputs "
                                  f"{', '.join(repr(o) for o in self._outputs)}; got {names} -> {outs}")
        self.max_batch = None
        self.device = "cuda" if self.session.get_providers()[0] != "CPUExecutionProvider" else "cpu"

    def _infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self.session.run(self._outputs, {INPUT_NAME: images})))

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
