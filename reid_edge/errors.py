"""The project's own exception types.

The CLI maps every :class:`ReidEdgeError` to a one-line message on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ReidEdgeError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, impossible flags)."""


class ConfigError(ReidEdgeError):
    """Invalid configuration: unknown key, wrong type, value out of range."""


class DataError(ReidEdgeError):
    """A dataset, video or image that cannot be read or does not fit the expected layout."""


class CheckpointError(ReidEdgeError):
    """A checkpoint or weights file that is missing, of the wrong kind, or does not match."""


class ExportError(ReidEdgeError):
    """ONNX export, quantization, parity gate or engine build failed."""


class BackendError(ReidEdgeError):
    """An inference runtime is missing, or an artifact cannot run on this machine."""


class PipelineError(ReidEdgeError):
    """The video pipeline cannot start (camera cannot be opened, bad detector, ...)."""


class FleetError(ReidEdgeError):
    """The fleet transport cannot start: bad broker URL, broker unreachable, edge/camera clash."""


class GalleryError(ReidEdgeError):
    """An identity gallery file that is corrupt, foreign or made for another model; never overwritten."""
