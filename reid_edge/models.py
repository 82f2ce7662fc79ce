"""Re-identification models shipped inside the package, and how a model argument is resolved.

``reid-edge run --cameras a.mp4 b.mp4`` must work on a fresh install with nothing downloaded, so
the package carries imported ONNX models in ``reid_edge/assets/`` (model card inside each file;
licence and notice beside them). :func:`resolve` turns what a user typed (``default``, a shipped
model's name, or a path) into a file. numpy/stdlib only: no torch, no onnx.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CheckpointError

if TYPE_CHECKING:
    from .backends.base import Backend

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_MODEL = "intel-0288"
DEFAULT_ALIAS = "default"


@dataclass(frozen=True)
class PackagedModel:
    """A model file in :data:`ASSETS` and one line about it (details live in its card and NOTICE.md)."""

    name: str
    filename: str
    summary: str

    @property
    def path(self) -> Path:
        return ASSETS / self.filename


PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel("intel-0288", "person-reidentification-retail-0288.onnx",
                  "Intel Open Model Zoo person-reidentification-retail-0288 (0.18 M params, Apache-2.0); the default"),
    PackagedModel("intel-0277", "person-reidentification-retail-0277.onnx",
                  "Intel Open Model Zoo person-reidentification-retail-0277 (2.1 M params, Apache-2.0); "
                  "more accurate, about 10x the compute"),
)}


def model_names() -> list[str]:
    """What :func:`resolve` accepts besides paths: ``default`` and the shipped models' names."""
    return [DEFAULT_ALIAS, *PACKAGED]


def packaged_path(name: str) -> Path:
    """The file of a shipped model (``default`` is :data:`DEFAULT_MODEL`).

    Raises:
        CheckpointError: unknown name, or the file is missing from this installation.
    """
    key = DEFAULT_MODEL if name == DEFAULT_ALIAS else name
    if key not in PACKAGED:
        raise CheckpointError(f"no packaged model named {name!r} (known: {', '.join(model_names())})")
    path = PACKAGED[key].path
    if not path.is_file():
        raise CheckpointError(f"the packaged model {key} is missing from this installation ({path}); "
                              "reinstall reid-edge, or pass a model file")
    return path


def resolve(model: str | Path | None = None) -> Path:
    """A model file from a path, a shipped model's name, or ``None``/``"default"`` for the default.

    An existing file wins over a name, so a local file called ``intel-0277`` is still a file.

    Raises:
        CheckpointError: neither an existing file nor a known name.
    """
    if model is None:
        return packaged_path(DEFAULT_ALIAS)
    path = Path(model)
    if path.is_file():
        return path
    text = str(model)
    if text == DEFAULT_ALIAS or text in PACKAGED:
        return packaged_path(text)
    if path.suffix or len(path.parts) > 1:  # looks like a path, not a name
        raise CheckpointError(f"model file {path} does not exist")
    raise CheckpointError(f"model {text!r} is neither a file nor a packaged model name "
                          f"({', '.join(model_names())})")


def load_model(model: str | Path | None = None, device: str = "auto", **options: object) -> Backend:
    """Open :func:`resolve` ``(model)`` with the backend its format needs (:func:`~reid_edge.backends.load_backend`)."""
    from .backends import load_backend

    return load_backend(resolve(model), device=device, **options)
