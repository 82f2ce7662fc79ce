"""A plain colour-histogram matcher: the bar synthetic data must be harder than.

Used by tests to show that the generated cameras shift colours enough that whole-image HSV
histograms do not solve cross-camera re-identification, while they still work within a camera.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from ..distance import euclidean
from ..errors import DataError
from ..preprocess import read_bgr

MARKET_NAME = re.compile(r"^(-1|\d{4})_c(\d+)s(\d+)_(\d{6})_(\d{2})\.jpg$")


def hsv_histogram_features(images: list[np.ndarray], bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """One L1-normalised, square-rooted HSV histogram per BGR uint8 image, ``(N, prod(bins))``.

    The square root makes Euclidean distance between features the Hellinger distance.
    """
    feats = np.empty((len(images), int(np.prod(bins))), np.float32)
    for i, img in enumerate(images):
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel()
        feats[i] = np.sqrt(hist / max(float(hist.sum()), 1.0))
    return feats


def hsv_histogram_baseline(
    query: list[np.ndarray], gallery: list[np.ndarray], bins: tuple[int, int, int] = (16, 4, 4)
) -> np.ndarray:
    """Query x gallery Hellinger distances between HSV histograms, ``(Q, G)`` float32."""
    q = hsv_histogram_features(query, bins)
    g = hsv_histogram_features(gallery, bins)
    return euclidean(q, g).astype(np.float32)


def read_market_folder(folder: str | Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """All ``PPPP_cC...jpg`` images of a Market-1501 split folder, sorted by name.

    Returns:
        ``(images, pids, cams)`` with BGR uint8 images and int arrays.

    Raises:
        DataError: the folder is missing, or an image cannot be read.
    """
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder")
    images, pids, cams = [], [], []
    for f in sorted(path.iterdir()):
        m = MARKET_NAME.match(f.name)
        if not m:
            continue
        images.append(read_bgr(f))
        pids.append(int(m.group(1)))
        cams.append(int(m.group(2)))
    return images, np.asarray(pids, np.int64), np.asarray(cams, np.int64)
