"""Calibration sets: held-aside training crops, preprocessed exactly as deployment does.

The images come from the checkpoint (``calibration_images``: a held-aside part of the *training*
images, never evaluation query/gallery) or from a folder given with ``--calib``. They go through
:func:`reid_edge.preprocess.preprocess_for_card`, the same function the pipeline uses, so the
INT8 ranges are measured on exactly the tensors the deployed model will see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_edge.card import INPUT_NAME, ModelCard
from reid_edge.datasets import IMAGE_EXTS
from reid_edge.errors import DataError
from reid_edge.preprocess import preprocess_for_card, read_bgr

MIN_CALIBRATION_IMAGES = 16
DEFAULT_CALIBRATION_SIZE = 128


def list_images(folder: str | Path) -> list[Path]:
    """Every image under ``folder`` (recursive), sorted.

    Raises:
        DataError: the folder does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"calibration folder {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def select_images(paths: Sequence[str | Path], size: int, seed: int = 0,
                  minimum: int = MIN_CALIBRATION_IMAGES, source: str = "calibration set") -> list[Path]:
    """Pick ``size`` images deterministically (all when fewer), insisting on ``minimum``.

    Raises:
        DataError: fewer than ``minimum`` images, or a listed image is missing.
    """
    if minimum < 1:
        raise DataError("the minimum calibration size must be at least 1")
    files = [Path(p) for p in paths]
    if len(files) < minimum:
        raise DataError(f"{source} has {len(files)} images; INT8 calibration needs at least {minimum} "
                        f"(about {DEFAULT_CALIBRATION_SIZE} recommended) held-aside training crops")
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise DataError(f"{len(missing)} calibration images of the {source} are missing, e.g. {missing[0]}")
    if size < minimum:
        raise DataError(f"--calib-size {size} is below the minimum of {minimum} calibration images")
    if len(files) > size:
        idx = np.sort(np.random.default_rng(seed).choice(len(files), size=size, replace=False))
        files = [files[i] for i in idx]
    return files


def read_crops(paths: Iterable[Path]) -> list[np.ndarray]:
    """Read BGR uint8 crops with OpenCV.

    Raises:
        DataError: an image cannot be decoded.
    """
    return [read_bgr(p, "calibration image") for p in paths]


def load_calibration_array(paths: Sequence[Path], card: ModelCard, chunk: int = 64,
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Read and preprocess ``paths`` with the card's settings into one float32 NCHW array."""
    out = np.empty((len(paths), 3, card.input_height, card.input_width), np.float32)
    for start in range(0, len(paths), chunk):
        part = list(paths[start:start + chunk])
        out[start:start + len(part)] = preprocess_for_card(read_crops(part), card)
        if progress is not None:
            progress(len(part))
    return out


@dataclass(frozen=True)
class CalibrationSet:
    """Chosen calibration images (preprocessed), the held-aside rest, and where they came from."""

    chosen: list[Path]
    rest: list[Path]
    images: np.ndarray
    source: str
    method: str


def split_pool(pool: Sequence[Path], size: int, source: str) -> tuple[list[Path], list[Path]]:
    """``(chosen, rest)``: :func:`select_images` of ``pool`` and the images held aside from it.

    Raises:
        DataError: too few or missing images.
    """
    chosen = select_images(pool, size, source=source)
    chosen_set = set(chosen)
    return chosen, [p for p in pool if p not in chosen_set]


def calibration_sha256(images: np.ndarray) -> str:
    """Hash of the preprocessed calibration tensor: changes with the images and the preprocessing."""
    h = hashlib.sha256()
    h.update(str(images.shape).encode())
    h.update(np.ascontiguousarray(images, dtype=np.float32).tobytes())
    return h.hexdigest()


class ArrayCalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a preprocessed array.

    Yields ``{"images": batch}`` dicts; :meth:`rewind` starts over (one array can feed several
    calibrators). ``on_batch`` is called with the batch size after each batch (progress bars).
    """

    def __init__(self, images: np.ndarray, batch_size: int = 16,
                 on_batch: Callable[[int], None] | None = None) -> None:
        if images.ndim != 4 or images.dtype != np.float32:
            raise DataError("calibration data must be a float32 NCHW array")
        self.images = images
        self.batch_size = max(1, int(batch_size))
        self.on_batch = on_batch
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self.images):
            return None
        batch = self.images[self._pos:self._pos + self.batch_size]
        self._pos += len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        return {INPUT_NAME: batch}

    def rewind(self) -> None:
        self._pos = 0

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def __iter__(self):  # noqa: ANN204 - CalibrationDataReader protocol
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
