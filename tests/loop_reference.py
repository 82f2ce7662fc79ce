"""A plain per-sample loop implementation of selective contrastive learning.

Written straight from the method's description (and the authors' ``engine/memory_bank.py`` and
``engine/loss.py``), independently of :mod:`reid_edge.train.method`: numpy, one anchor at a
time, distances as explicit squared differences, an explicit lexicographic sort by
``(float32(distance), index)``, the loss gradient derived by hand (no autograd), and the mixture
bank written one vector at a time in the authors' autograd order. Used by the parity tests and
by ``benchmarks/selection.py`` as the baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

GROUP_PRIORITY = 16.0  # same meaning as reid_edge.train.method.GROUP_PRIORITY
EPS = 1e-12


def _np(x: Any, dtype: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64 if x.is_floating_point() else torch.int64).numpy()
    return np.asarray(x, dtype=dtype)


def normalize(v: np.ndarray) -> np.ndarray:
    """``v / max(||v||, 1e-12)`` for one vector."""
    return v / max(float(np.sqrt((v * v).sum())), EPS)


class LoopReference:
    """Per-sample reference with the same public steps as ``SelectiveContrastive``.

    Banks: ``global_bank [N, D]``, ``local_bank [N, S, d]``, ``mixture_bank [N, D]`` (zeros),
    all of ``dtype``. ``cfg`` is a ``MethodConfig`` (only its fields are read).
    """

    def __init__(
        self,
        num_samples: int,
        embed_dim: int,
        num_stripes: int,
        cameras: Any,
        cfg: Any,
        groups: Any | None = None,
        dtype: Any = np.float64,
    ) -> None:
        self.cfg = cfg
        self.dtype = dtype
        self.n = num_samples
        self.dim = embed_dim
        self.s = num_stripes
        self.d = embed_dim // num_stripes
        self.k = cfg.k
        self.m = min(cfg.m, num_samples - cfg.k - 1)
        self.cameras = _np(cameras, np.int64)
        self.groups = None if groups is None else _np(groups, np.int64)
        self.global_bank = np.zeros((num_samples, embed_dim), dtype)
        self.local_bank = np.zeros((num_samples, num_stripes, self.d), dtype)
        self.mixture_bank = np.zeros((num_samples, embed_dim), dtype)

    def init_banks(self, index: Any, global_feat: Any, stripes: Any) -> None:
        index = _np(index, np.int64)
        g = _np(global_feat, self.dtype)
        s = _np(stripes, self.dtype)
        for b, i in enumerate(index):
            self.global_bank[i] = normalize(g[b])
            for t in range(self.s):
                self.local_bank[i, t] = normalize(s[b, t])

    def distance(self, anchor: int, g: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Selection distance of one anchor (its bank index, features) to every bank entry."""
        cfg = self.cfg
        d_global = ((self.global_bank - g) ** 2).sum(axis=1)
        d_local = np.zeros(self.n, self.dtype)
        for t in range(self.s):
            d_local += ((self.local_bank[:, t, :] - s[t]) ** 2).sum(axis=1)
        d_local /= self.s
        same_camera = (self.cameras == self.cameras[anchor]).astype(self.dtype)
        return cfg.lambda_g * d_global + (1 - cfg.lambda_g) * d_local + cfg.lambda_c * same_camera

    def mates(self, anchor: int) -> np.ndarray:
        """1.0 where a bank entry is in the anchor's group (never for group -1 or without groups)."""
        if self.groups is None or self.groups[anchor] < 0:
            return np.zeros(self.n, self.dtype)
        return (self.groups == self.groups[anchor]).astype(self.dtype)

    def select(
        self, index: Any, global_feat: Any, stripes: Any, warmup: bool, generator: torch.Generator | None
    ) -> tuple[np.ndarray, np.ndarray]:
        index = _np(index, np.int64)
        if warmup:
            device = generator.device if generator is not None else "cpu"
            perm = torch.randperm(self.n, generator=generator, device=device).cpu().numpy()
            pos, neg = [], []
            for i in index:
                others = np.delete(perm, np.where(perm == i)[0])
                pos.append([i])
                neg.append(list(others[: self.m + self.k]))
            return np.array(pos), np.array(neg)
        g = _np(global_feat, self.dtype)
        s = _np(stripes, self.dtype)
        pos, neg = [], []
        for b, i in enumerate(index):
            dist = self.distance(int(i), g[b], s[b])
            mates = self.mates(int(i))
            # positives: group mates first; negatives: mates last, never the chosen positives
            for_pos = (dist - GROUP_PRIORITY * mates).astype(np.float32)
            order = np.lexsort((np.arange(self.n), for_pos))  # by distance, then by index
            positives = [int(n) for n in order if n != i][: self.k]
            for_neg = (dist + GROUP_PRIORITY * mates).astype(np.float32)
            order = np.lexsort((np.arange(self.n), for_neg))
            negatives = [int(n) for n in order if n != i and n not in positives]
            pos.append([int(i)] + positives)
            neg.append(negatives[: self.m])
        return np.array(pos), np.array(neg)

    def loss(
        self, global_feat: Any, stripes: Any, pos: np.ndarray, neg: np.ndarray
    ) -> tuple[float, dict[str, float], np.ndarray, np.ndarray]:
        """Returns ``(total, stats, d total / d global_feat, d total / d stripes)``."""
        cfg = self.cfg
        g = _np(global_feat, self.dtype)
        s = _np(stripes, self.dtype)
        batch, num_pos = pos.shape
        cof = [cfg.lambda_t] + [cfg.alpha * (1 - cfg.lambda_t) / cfg.k] * (num_pos - 1)
        results = {}
        for name, feats in (("global", g), ("local", s.reshape(batch, self.dim))):
            total = 0.0
            correct = 0
            grad = np.zeros_like(feats)
            for b in range(batch):
                candidates = list(pos[b]) + list(neg[b])
                logits = np.array([feats[b] @ self.mixture_bank[c] for c in candidates]) / cfg.temperature
                top = logits.max()
                logp = logits - (top + np.log(np.exp(logits - top).sum()))
                prob = np.exp(logp)
                d_logits = np.zeros(len(candidates))
                for j in range(num_pos):
                    total += -cof[j] * logp[j] / batch
                    one_hot = np.zeros(len(candidates))
                    one_hot[j] = 1.0
                    d_logits += cof[j] * (prob - one_hot) / batch
                for col, c in enumerate(candidates):
                    grad[b] += d_logits[col] * self.mixture_bank[c] / cfg.temperature
                correct += int(np.argmax(logits) == 0)
            results[name] = (total, correct / batch, grad)
        lam = cfg.lambda_p
        total = lam * results["local"][0] + (1 - lam) * results["global"][0]
        stats = {
            "loss_global": results["global"][0],
            "loss_local": results["local"][0],
            "acc_global": results["global"][1],
            "acc_local": results["local"][1],
        }
        grad_g = (1 - lam) * results["global"][2]
        grad_s = lam * results["local"][2].reshape(batch, self.s, self.d)
        return total, stats, grad_g, grad_s

    def update(self, index: Any, global_feat: Any, stripes: Any, pos: np.ndarray) -> None:
        index = _np(index, np.int64)
        g = _np(global_feat, self.dtype)
        s = _np(stripes, self.dtype)
        mom = self.cfg.bank_momentum
        for b, i in enumerate(index):
            self.global_bank[i] = normalize(mom * self.global_bank[i] + (1 - mom) * g[b])
            for t in range(self.s):
                self.local_bank[i, t] = normalize(mom * self.local_bank[i, t] + (1 - mom) * s[b, t])
        batch, num_pos = pos.shape
        # the authors' autograd order: local loss first, columns last to first, anchors in order
        for feats in (s.reshape(batch, self.dim), g):
            for j in reversed(range(num_pos)):
                for b in range(batch):
                    slot = pos[b][j]
                    self.mixture_bank[slot] = normalize((self.mixture_bank[slot] + feats[b]) / 2)
