"""TensorRT calibration cache (for trtexec / DeepStream users on TensorRT 10).

Format, as TensorRT's ``IInt8EntropyCalibrator2`` writes it::

    TRT-<version>-EntropyCalibration2
    <tensor name>: <scale as big-endian IEEE float32, 8 hex digits>

with ``scale = amax / 127`` (symmetric INT8). ``<version>`` is TensorRT's integer version code
(``NV_TENSORRT_VERSION``: 8601 for 8.6.1, 100300 for 10.3.0). TensorRT 11 removed implicit
calibration; there the Q/DQ ONNX (``model.int8.trt.onnx``) carries the same scales.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

from reid_edge.errors import ExportError
from reid_edge.io import atomic_write_text

DEFAULT_TRT_VERSION = "10.13.0"
CACHE_ALGORITHM = "EntropyCalibration2"


def trt_version_code(version: str) -> int:
    """``"10.3.0"`` -> 100300, ``"8.6.1"`` -> 8601 (TensorRT's ``NV_TENSORRT_VERSION``).

    Raises:
        ExportError: not a ``major.minor[.patch]`` version.
    """
    try:
        parts = [int(p) for p in version.split(".")[:3]]
    except ValueError:
        raise ExportError(f"not a TensorRT version: '{version}'") from None
    if len(parts) < 2:
        raise ExportError(f"not a TensorRT version: '{version}'")
    major, minor = parts[0], parts[1]
    patch = parts[2] if len(parts) > 2 else 0
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def scale_to_hex(scale: float) -> str:
    """Big-endian float32 bits of ``scale`` as 8 lowercase hex digits."""
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    return float(struct.unpack(">f", bytes.fromhex(text))[0])


def format_calibration_cache(amax: Mapping[str, float], trt_version: str = DEFAULT_TRT_VERSION) -> str:
    """Render the cache text; tensors with a zero range get the smallest positive scale."""
    lines = [f"TRT-{trt_version_code(trt_version)}-{CACHE_ALGORITHM}"]
    for name in sorted(amax):
        if ": " in name or "\n" in name:
            raise ExportError(f"tensor name {name!r} cannot be written to a TensorRT calibration cache")
        scale = max(float(amax[name]), 1e-8) / 127.0
        lines.append(f"{name}: {scale_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def write_calibration_cache(path: str | Path, amax: Mapping[str, float],
                            trt_version: str = DEFAULT_TRT_VERSION) -> Path:
    """Write :func:`format_calibration_cache` atomically to ``path``."""
    atomic_write_text(path, format_calibration_cache(amax, trt_version))
    return Path(path)


def read_calibration_cache(path: str | Path) -> tuple[int, str, dict[str, float]]:
    """Parse a cache: ``(version code, algorithm, {tensor: scale})``.

    Raises:
        ExportError: malformed header or line.
    """
    lines = Path(path).read_text().splitlines()
    if not lines or not lines[0].startswith("TRT-") or lines[0].count("-") < 2:
        raise ExportError(f"{path} is not a TensorRT calibration cache (bad header)")
    _, version, algorithm = lines[0].split("-", 2)
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        if not sep or len(value) != 8:
            raise ExportError(f"{path}:{number}: expected '<tensor>: <8 hex digits>', got {line!r}")
        scales[name] = hex_to_scale(value)
    return int(version), algorithm, scales
