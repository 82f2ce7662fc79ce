"""The files an export writes and their on-disk formats: one table, one engine header.

:data:`ARTIFACTS` owns every file name, its role (the key of ``ExportResult.files``) and the
encoding of the model inside (the card's ``encoding``); export, quantization, the pipeline's
default model search, the demo and the benchmarks all read it. Cards travel in ONNX
``metadata_props`` (:func:`reid_edge.card.read_card` / :func:`reid_edge.card.set_card`) and in
the engine header defined here.

Engine file layout (``model.engine``)::

    b"REIDEDGE-ENGINE\\n"            magic (ENGINE_MAGIC, how the registry recognizes engines)
    uint32 little-endian N          length of the JSON header
    N bytes UTF-8 JSON              {"format_version", "card", "tensorrt_version",
                                     "compute_capability", "profile": {"min","opt","max"},
                                     "precision", "source_onnx", "source_onnx_sha256"}
    the serialized TensorRT engine

A sidecar ``model.engine.json`` repeats the header for people and tools. Nothing here imports
torch, onnx or TensorRT.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .card import ModelCard
from .errors import CheckpointError


@dataclass(frozen=True)
class Artifact:
    """One file of an export folder."""

    role: str  # key of ExportResult.files and the row label of the export summary
    filename: str
    encoding: str | None = None  # the card's ``encoding`` of the model inside; None for non-models


FP32_ONNX = "fp32 onnx"
FP16_ONNX = "fp16 onnx"
INT8_TRT_ONNX = "int8 onnx (TensorRT)"
INT8_CPU_ONNX = "int8 onnx (ORT CPU)"
CALIBRATION_CACHE = "calibration cache"
INT8_REPORT = "int8 report"
ENGINE = "engine"
ENGINE_SIDECAR = "engine sidecar"

ARTIFACTS: dict[str, Artifact] = {a.role: a for a in (
    Artifact(FP32_ONNX, "model.onnx", "fp32"),
    Artifact(FP16_ONNX, "model.fp16.onnx", "fp16"),
    Artifact(INT8_TRT_ONNX, "model.int8.trt.onnx", "int8-qdq-trt"),
    Artifact(INT8_CPU_ONNX, "model.int8.cpu.onnx", "int8-qdq-cpu"),
    Artifact(CALIBRATION_CACHE, "calibration.cache"),
    Artifact(INT8_REPORT, "int8_report.json"),
    Artifact(ENGINE, "model.engine"),
    Artifact(ENGINE_SIDECAR, "model.engine.json"),
)}

# the roles each precision adds besides the FP32 ONNX, and the engine files of --format engine
PRECISION_ROLES: dict[str, tuple[str, ...]] = {
    "fp32": (),
    "fp16": (FP16_ONNX,),
    "int8": (INT8_TRT_ONNX, INT8_CPU_ONNX, CALIBRATION_CACHE, INT8_REPORT),
}
ENGINE_ROLES = (ENGINE, ENGINE_SIDECAR)

DEFAULT_RUN_DIR = Path("runs/train")
"""Where ``reid-edge train`` writes when ``--out`` is not given (``last.pt``, ``best.pt``, logs)."""
LAST_CHECKPOINT = "last.pt"  # written every epoch
BEST_CHECKPOINT = "best.pt"  # the best evaluation so far
# `reid-edge export` writes next to its checkpoint by default: <run dir>/export/
EXPORT_SUBDIR = "export"
# the run's deployable models, best runtime first (the pipeline's default --model search)
DEPLOY_PREFERENCE = (ENGINE, INT8_CPU_ONNX, FP32_ONNX)


def filename(role: str) -> str:
    """The file name of an artifact role (``"int8 onnx (ORT CPU)"`` -> ``model.int8.cpu.onnx``)."""
    return ARTIFACTS[role].filename


def role_for_encoding(encoding: str) -> str:
    """The role of the model file with card ``encoding`` (``int8-qdq-cpu`` -> ``int8 onnx (ORT CPU)``)."""
    for art in ARTIFACTS.values():
        if art.encoding == encoding:
            return art.role
    raise KeyError(encoding)


# The default --model of `reid-edge run`: the newest export of the default run directory, best
# runtime first, then the checkpoint itself.
DEFAULT_MODEL_SEARCH: tuple[str, ...] = (
    *(f"{DEFAULT_RUN_DIR}/{EXPORT_SUBDIR}/{filename(role)}" for role in DEPLOY_PREFERENCE),
    f"{DEFAULT_RUN_DIR}/{LAST_CHECKPOINT}",
)

ENGINE_MAGIC = b"REIDEDGE-ENGINE\n"
ENGINE_FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class EngineHeader:
    """What an engine file says about itself (stored before the engine bytes)."""

    card: ModelCard
    tensorrt_version: str
    compute_capability: str
    profile: dict[str, int]
    precision: str
    source_onnx: str = ""
    source_onnx_sha256: str = ""
    format_version: int = ENGINE_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version, "card": json.loads(self.card.to_json()),
            "tensorrt_version": self.tensorrt_version, "compute_capability": self.compute_capability,
            "profile": dict(self.profile), "precision": self.precision, "source_onnx": self.source_onnx,
            "source_onnx_sha256": self.source_onnx_sha256, "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineHeader:
        try:
            return cls(
                card=ModelCard.from_dict(data["card"]), tensorrt_version=str(data["tensorrt_version"]),
                compute_capability=str(data["compute_capability"]),
                profile={k: int(v) for k, v in data["profile"].items()}, precision=str(data["precision"]),
                source_onnx=str(data.get("source_onnx", "")),
                source_onnx_sha256=str(data.get("source_onnx_sha256", "")),
                format_version=int(data.get("format_version", ENGINE_FORMAT_VERSION)),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"engine header is incomplete or malformed ({type(exc).__name__}: {exc})") from None


def pack_engine(header: EngineHeader, engine: bytes) -> bytes:
    """Magic + length + JSON header + engine bytes."""
    blob = json.dumps(header.to_dict(), sort_keys=True).encode("utf-8")
    return ENGINE_MAGIC + struct.pack("<I", len(blob)) + blob + bytes(engine)


def read_engine_header(path: str | Path) -> tuple[EngineHeader, int]:
    """Read an engine file's header; returns ``(header, offset of the engine bytes)``.

    Raises:
        CheckpointError: missing file, no magic, or a truncated/malformed header.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"engine {p} does not exist")
    with open(p, "rb") as handle:
        magic = handle.read(len(ENGINE_MAGIC))
        if magic != ENGINE_MAGIC:
            raise CheckpointError(f"{p} is not a reid-edge engine (no {ENGINE_MAGIC!r} header); "
                                  "build engines with `reid-edge export --format engine`")
        size_bytes = handle.read(4)
        if len(size_bytes) != 4:
            raise CheckpointError(f"{p} is truncated (no header length)")
        (size,) = struct.unpack("<I", size_bytes)
        if size > MAX_HEADER_BYTES:
            raise CheckpointError(f"{p} has an implausible header length {size}")
        blob = handle.read(size)
    if len(blob) != size:
        raise CheckpointError(f"{p} is truncated (header shorter than {size} bytes)")
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{p}: engine header is not valid JSON ({exc})") from None
    header = EngineHeader.from_dict(data)
    if header.format_version > ENGINE_FORMAT_VERSION:
        raise CheckpointError(f"{p} uses engine format {header.format_version}; this reid-edge reads "
                              f"up to {ENGINE_FORMAT_VERSION}")
    return header, len(ENGINE_MAGIC) + 4 + size
