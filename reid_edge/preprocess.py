"""The one preprocessing function (STYLE rule 4).

Training evaluation, calibration, the export parity gate and the video pipeline all turn crops
into network input here, so a calibration set can never be preprocessed differently from
deployment. numpy + OpenCV only: the edge runtime has no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .card import IMAGENET_MEAN, IMAGENET_STD, ModelCard
from .errors import DataError


def read_bgr(path: str | Path, what: str = "image") -> np.ndarray:
    """Read an image file as BGR uint8.

    Raises:
        DataError: the file is missing, not an image, or corrupt (``what`` names it in the message).
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise DataError(f"cannot read {what} {path} (missing, not an image, or corrupt)")
    return img

def preprocess_crops(
    crops: Sequence[np.ndarray],
    height: int = 256,
    width: int = 128,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    channel_order: str = "RGB",
) -> np.ndarray:
    """Turn BGR uint8 crops (as OpenCV reads them) into a float32 NCHW batch.

    Each crop is resized to ``height x width`` (bilinear), converted to ``channel_order``,
    scaled to [0, 1] and normalized by ``mean``/``std``.

    Args:
        crops: images of shape ``[h, w, 3]``, dtype uint8, BGR channel order.
    Returns:
        ``[len(crops), 3, height, width]`` float32, C-contiguous.
    Raises:
        ValueError: a crop is empty or not a 3-channel uint8 image.
    """
    batch = np.empty((len(crops), 3, height, width), dtype=np.float32)
    mean_a = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
    inv_std = (1.0 / np.asarray(std, dtype=np.float32)).reshape(1, 1, 3)
    for i, crop in enumerate(crops):
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8 or crop.size == 0:
            raise ValueError(f"crop {i}: expected a non-empty HxWx3 uint8 image, got {crop.shape} {crop.dtype}")
        img = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
        if channel_order.upper() == "RGB":
            img = img[:, :, ::-1]
        x = (img.astype(np.float32) * (1.0 / 255.0) - mean_a) * inv_std
        batch[i] = x.transpose(2, 0, 1)
    return batch


def preprocess_for_card(crops: Sequence[np.ndarray], card: ModelCard) -> np.ndarray:
    """:func:`preprocess_crops` with the input geometry and normalization a model card states."""
    return preprocess_crops(crops, height=card.input_height, width=card.input_width, mean=card.mean,
                            std=card.std, channel_order=card.channel_order)
