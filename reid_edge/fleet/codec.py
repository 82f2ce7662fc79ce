"""Wire format of fleet messages: JSON with numpy arrays as base64 of their raw bytes.

Arrays travel bit-exact (dtype, shape, bytes), so the associator computes on the very numbers
the edge computed: the fleet's decisions can equal the single-process ones. JSON keeps the
messages readable with ``redis-cli XRANGE`` and safe to decode (no pickle from the network).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
_ND = "__nd__"


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {_ND: [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode("ascii")]}
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _hook(d: dict[str, Any]) -> Any:
    nd = d.get(_ND)
    if nd is not None and len(d) == 1:
        dtype, shape, data = nd
        return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype)).reshape(shape).copy()
    return d


def pack(obj: Any) -> bytes:
    """Encode plain data, dataclasses and numpy arrays."""
    return json.dumps(obj, default=_default, separators=(",", ":")).encode()


def unpack(data: bytes) -> Any:
    """Decode what :func:`pack` wrote (dataclasses come back as dicts)."""
    return json.loads(data, object_hook=_hook)


def to_dataclass(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a decoded dict, ignoring keys it does not have (newer senders)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
