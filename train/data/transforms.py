"""Image loading and training-time augmentation.

Crops are read with OpenCV (BGR uint8) and turned into network input by THE shared function
:func:`reid_edge.preprocess.preprocess_crops` (resize + normalize), exactly as deployment does.
Training then augments the normalized array as the authors did (reid-strong-baseline order):
random horizontal flip (p 0.5), zero-pad 10 px (at 128 px width; scaled with the input
width, so that a small test input is not shifted by a third of its width) + random crop back
to size, random erasing
(Zhong et al. 2020: p 0.5, area 2%-40%, aspect 0.3-3.33). Padding uses black pixels, as
torchvision's ``Pad`` on the image does; erased boxes are filled with the ImageNet mean colour
(0 after normalization).

Augmentation is seeded per (seed, epoch, sample index) so that a run is reproducible and a
resumed run sees exactly the augmentations the uninterrupted one would, whatever the number of
loader workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reid_edge.card import IMAGENET_MEAN, IMAGENET_STD


def preprocess(images_bgr: Sequence[np.ndarray], height: int, width: int,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """Resize + normalize through the shared :func:`reid_edge.preprocess.preprocess_crops`."""
    from reid_edge.preprocess import preprocess_crops

    return preprocess_crops(images_bgr, height=height, width=width, mean=mean, std=std, channel_order="RGB")


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation settings (authors' ``configs/test.yml`` values)."""

    flip_p: float = 0.5
    padding: int | None = None  # None: 10 px at 128 px width, scaled with the input width
    erase_p: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_min_aspect: float = 0.3


def random_erase(x: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = (0.02, 0.4),
                 min_aspect: float = 0.3, fill: np.ndarray | float = 0.0) -> np.ndarray:
    """Erase one random rectangle of ``x`` [C, H, W] in place (Zhong et al.; up to 100 tries)."""
    _, h, w = x.shape
    for _ in range(100):
        target = rng.uniform(*area) * h * w
        aspect = rng.uniform(min_aspect, 1.0 / min_aspect)
        eh = int(round(math.sqrt(target * aspect)))
        ew = int(round(math.sqrt(target / aspect)))
        if 0 < eh < h and 0 < ew < w:
            y0 = int(rng.integers(0, h - eh + 1))
            x0 = int(rng.integers(0, w - ew + 1))
            fill_a = np.asarray(fill, dtype=x.dtype).reshape(-1, 1, 1) if np.ndim(fill) else fill
            x[:, y0:y0 + eh, x0:x0 + ew] = fill_a
            return x
    return x


def augment(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig(),
            mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """Flip, pad + random crop and random erasing of one normalized image ``[3, H, W]``.

    Returns a new array of the same shape; ``x`` is not modified.
    """
    _, h, w = x.shape
    out = x[:, :, ::-1] if rng.random() < cfg.flip_p else x
    p = scaled_padding(w) if cfg.padding is None else cfg.padding
    if p > 0:
        black = (-np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(3, 1, 1)
        padded = np.broadcast_to(black, (3, h + 2 * p, w + 2 * p)).copy()
        padded[:, p:p + h, p:p + w] = out
        y0 = int(rng.integers(0, 2 * p + 1))
        x0 = int(rng.integers(0, 2 * p + 1))
        out = padded[:, y0:y0 + h, x0:x0 + w]
    out = np.ascontiguousarray(out, dtype=np.float32)
    if rng.random() < cfg.erase_p:
        random_erase(out, rng, cfg.erase_area, cfg.erase_min_aspect, fill=0.0)
    return out


def scaled_padding(width: int) -> int:
    """The authors' 10 px padding at 256x128, scaled to another input width (at least 1 px)."""
    return max(1, round(10 * width / 128))


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of one sample in one epoch (independent of loader workers)."""
    return np.random.default_rng([seed, epoch, index])
