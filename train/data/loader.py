"""Torch datasets, samplers and loaders for training.

The training dataset yields ``(image [3,H,W] float32, index, camid)`` only: identities are
never passed to the trainer. ``index`` is the crop's memory-bank row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from reid_edge.preprocess import read_bgr

from .datasets import Sample
from .transforms import AugmentConfig, augment, preprocess, sample_rng


class TrainDataset(Dataset):
    """Crops for training: read, preprocess with the shared function, augment (seeded).

    Call :meth:`set_epoch` before each epoch; the augmentation of crop ``i`` in epoch ``e``
    depends only on ``(seed, e, i)``.
    """

    def __init__(self, samples: Sequence[Sample], height: int, width: int, *, augment_images: bool = True,
                 seed: int = 0, aug: AugmentConfig = AugmentConfig()) -> None:
        self.samples = list(samples)
        self.height = height
        self.width = width
        self.augment_images = augment_images
        self.seed = seed
        self.aug = aug
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        s = self.samples[i]
        x = preprocess([read_bgr(s.path)], self.height, self.width)[0]
        if self.augment_images:
            x = augment(x, sample_rng(self.seed, self.epoch, s.index), self.aug)
        return torch.from_numpy(x), s.index, s.camid


class EpochPermutationSampler(Sampler[int]):
    """A fresh random permutation each epoch, seeded by ``(seed, epoch)`` (resumable)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class SequentialShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` in order (no-grad passes under DDP; may be uneven)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_train_loader(samples: Sequence[Sample], *, height: int, width: int, batch_size: int, workers: int,
                       seed: int, rank: int = 0, world_size: int = 1,
                       pin_memory: bool = False) -> DataLoader:
    """Shuffled, augmented training loader (``drop_last`` so that every batch has ``batch_size`` crops).

    With ``world_size > 1`` a :class:`~torch.utils.data.DistributedSampler` gives each rank its
    shard. Call ``set_loader_epoch(loader, epoch)`` before iterating an epoch.
    """
    dataset = TrainDataset(samples, height, width, augment_images=True, seed=seed)
    sampler: Sampler[int]
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                     drop_last=False)
    else:
        sampler = EpochPermutationSampler(len(dataset), seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      drop_last=len(dataset) // max(world_size, 1) >= batch_size,
                      pin_memory=pin_memory, persistent_workers=False)


def build_plain_loader(samples: Sequence[Sample], *, height: int, width: int, batch_size: int, workers: int,
                       rank: int = 0, world_size: int = 1) -> DataLoader:
    """In-order, un-augmented loader (memory-bank initialization)."""
    dataset = TrainDataset(samples, height, width, augment_images=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=SequentialShardSampler(len(dataset), rank, world_size),
                      num_workers=workers, drop_last=False)


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Point the sampler and the augmentation of ``loader`` at ``epoch``."""
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # type: ignore[union-attr]
    ds = loader.dataset
    if isinstance(ds, TrainDataset):
        ds.set_epoch(epoch)


def worker_seed_everything(seed: int) -> None:
    """Seed python, numpy and torch global generators (model initialization, dropout)."""
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
