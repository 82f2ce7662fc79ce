"""Selective contrastive learning (Pang et al., TOMM 2022): memory banks, selection and loss.

Three banks over all ``N`` training images, registered buffers (so ``state_dict()`` holds them):

* ``global_bank [N, D]`` (float64 unless ``selection_dtype``, see ``SELECTION_DTYPES``): global
  embeddings, filled by
  :meth:`SelectiveContrastive.init_banks`, then ``bank[i] = normalize(m * bank[i] + (1 - m) * x)``
  for the batch's own indices after each step;
* ``local_bank [N, S, d]`` (same dtype): the same per stripe. Layout ``[N, S, d]`` (the authors
  keep ``[S, N, d]``), so ``local_bank.view(N, S * d)`` is the concatenated stripe embedding;
* ``mixture_bank [N, D]`` (float32): the contrastive memory of the loss, zero-initialised like
  the authors' ``ExLoss.M``, written by both the global and the concatenated stripe embedding of
  each anchor at the slots of its positives (itself included): ``M[s] = normalize((M[s] + x) / 2)``.

A training step, as in the authors' trainer:

1. :meth:`select` ranks the whole bank for each anchor by
   ``lambda_g * d_global + (1 - lambda_g) * mean_s d_stripe_s + lambda_c * [same camera]``
   (``d`` = squared Euclidean distance), drops the anchor itself, and takes
   positives = ``[anchor] + first K`` and negatives = the next ``M``. Distances are compared
   at float32 precision and ties are broken by bank index (ascending), so the ranking is a
   total order, reproducible on any device. During warm-up, positives = ``[anchor]`` and
   negatives = the first ``M + K`` entries of one random permutation of all indices shared by
   the batch, minus the anchor. (Ablation only: ``negatives="random"`` keeps the positives and
   draws the ``M`` negatives uniformly among the rest, :func:`random_negatives`.)
2. :meth:`loss` contrasts each embedding against the mixture bank rows of its candidates
   ``[positives, negatives]`` (logits ``x . M[c] / temperature``): a cross entropy per
   positive column ``j`` with weight ``lambda_t`` (``j = 0``) or ``alpha (1 - lambda_t) / K``,
   for the global and the concatenated stripe embedding;
   ``total = lambda_p * loss_local + (1 - lambda_p) * loss_global``. On CPU the logits and
   their input gradient come from the gathered candidate rows only (:class:`_GatheredContrastive`);
   on a GPU from one GEMM with the whole bank (:func:`dense_contrastive_losses`); tested equal.
3. After ``optimizer.step()``, :meth:`update` applies the momentum updates and the mixture writes
   with the same (detached, pre-step) features. Logits used the mixture bank before the writes.

Order of the mixture writes: the authors wrote ``M`` inside ``autograd.Function.backward``;
autograd runs the local loss's nodes first and, within an embedding, positive column ``K`` down
to ``0``; within a column, anchors in batch order. We apply exactly that order, as explicit
calls under ``torch.no_grad()`` (:func:`mixture_write_order`, :func:`mixture_update`).
One deliberate difference: the authors' backward also computed the input gradients of later
columns with a partly updated ``M``; here every gradient uses the pre-step ``M``.

Extension: ``groups`` (``[N]``, e.g. a tracklet id per crop, ``-1`` for none) ranks bank
entries of the anchor's own group first (by distance among themselves) when choosing positives,
and last when choosing negatives (:func:`select_with_groups`): a crop of the anchor's own
tracklet is never one of its negatives while other entries remain.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reid_edge.errors import ConfigError, DataError

from .config import SELECTION_DTYPE_NAMES, MethodConfig
from .models.heads import L2_EPS, l2_normalize  # F.normalize's default eps, the authors' normalisation

# Subtracted from the distance of same-group bank entries so they rank before everything else
# while keeping their own order: distances of unit vectors are <= 4 + lambda_c.
GROUP_PRIORITY = 16.0
_INT64_MAX = torch.iinfo(torch.int64).max
# The selection banks and distances are float64 by default, ranked at float32 precision:
# float64 accumulation rounded to float32 is correctly rounded in practice, so the ranking is
# the one of exact arithmetic (ties broken by index) on every device and BLAS. A float32 GEMM
# rounds differently per kernel and device: at Market scale (benchmarks/selection.py data) 3 of
# 640 anchors got another negative set than with float64 (near-ties at the K+M boundary).
# ``selection_dtype: float32`` trades that exactness for speed: CPU selection 177 -> 133 ms per
# step (1 thread), and GPUs with slow float64 (most non-datacenter ones) gain far more.
SELECTION_DTYPES = dict(zip(SELECTION_DTYPE_NAMES, (torch.float64, torch.float32), strict=True))


# ----------------------------------------------------------------------------- pure functions


def loss_coefficients(num_positive_columns: int, k: int, lambda_t: float, alpha: float) -> list[float]:
    """Weights of the positive columns: ``[lambda_t] + [alpha (1 - lambda_t) / k] * (columns - 1)``.

    Warm-up has one column (the anchor), hence only ``lambda_t``, as in the authors' code.
    """
    if num_positive_columns < 1 or num_positive_columns > k + 1:
        raise ValueError(f"{num_positive_columns} positive columns for k={k}")
    rest = alpha * (1.0 - lambda_t) / k if k else 0.0
    return [lambda_t] + [rest] * (num_positive_columns - 1)


def selection_distance(
    global_feat: Tensor,
    stripes: Tensor,
    global_bank: Tensor,
    local_bank: Tensor,
    anchor_cameras: Tensor,
    bank_cameras: Tensor,
    lambda_g: float,
    lambda_c: float,
) -> Tensor:
    """Selection distance of each anchor to every bank entry, ``[B, N]``, in the banks' dtype.

    ``lambda_g * |g - G_n|^2 + (1 - lambda_g) * mean_s |x_s - L_ns|^2 + lambda_c * [cam == cam_n]``.
    Bank rows must be unit length (the banks keep them so); then
    ``|x - b|^2 = |x|^2 + 1 - 2 x . b``, computed with two matrix products.

    Args:
        global_feat: ``[B, D]``; stripes: ``[B, S, d]``; global_bank: ``[N, D]``;
        local_bank: ``[N, S, d]``; anchor_cameras: ``[B]``; bank_cameras: ``[N]``.
    """
    dtype = global_bank.dtype
    global_feat = global_feat.to(dtype)
    stripes = stripes.to(dtype)
    num_stripes = stripes.shape[1]
    flat = stripes.reshape(stripes.shape[0], -1)
    g_sq = global_feat.pow(2).sum(-1, keepdim=True)
    s_sq = stripes.pow(2).sum(-1).mean(-1, keepdim=True)
    dist = torch.addmm(g_sq + 1.0, global_feat, global_bank.t(), alpha=-2.0).mul_(lambda_g)
    local_flat = local_bank.reshape(local_bank.shape[0], -1)
    local = torch.addmm(s_sq + 1.0, flat, local_flat.t(), alpha=-2.0 / num_stripes)
    dist.add_(local, alpha=1.0 - lambda_g)
    same_camera = anchor_cameras.unsqueeze(1) == bank_cameras.unsqueeze(0)
    return dist.add_(same_camera.to(dtype), alpha=lambda_c)


def camera_centred_distance(
    global_feat: Tensor,
    stripes: Tensor,
    global_bank: Tensor,
    local_bank: Tensor,
    anchor_cameras: Tensor,
    bank_cameras: Tensor,
    lambda_g: float,
    lambda_c: float,
) -> Tensor:
    """:func:`selection_distance` after camera centring (``method: camera_centre``), ``[B, N]``.

    Each camera's mean bank entry ``m_c`` (global ``[C, D]``, per stripe ``[C, S, d]``) is taken
    from that camera's bank entries and anchors, and rows are renormalised (each stripe apart):
    ``b' = (b - m_c) / |b - m_c|``. Computed without centred copies of the banks: for a unit
    row, ``|b - m_c|^2 = 1 - 2 b . m_c + |m_c|^2`` and ``a' . b' = (a' . b - a' . m_c) / |b - m_c|``,
    so the big products are the ones :func:`selection_distance` does, stripe by stripe for the
    local part (a camera absent from the banks has mean zero).
    """
    dtype = global_bank.dtype
    num = int(max(int(bank_cameras.max()), int(anchor_cameras.max()))) + 1
    counts = torch.zeros(num, dtype=dtype, device=global_bank.device)
    counts.index_add_(0, bank_cameras, torch.ones_like(bank_cameras, dtype=dtype)).clamp_(min=1.0)
    g_mean = torch.zeros(num, global_bank.shape[1], dtype=dtype, device=global_bank.device)
    g_mean.index_add_(0, bank_cameras, global_bank).div_(counts[:, None])
    l_mean = torch.zeros(num, *local_bank.shape[1:], dtype=dtype, device=local_bank.device)
    l_mean.index_add_(0, bank_cameras, local_bank).div_(counts[:, None, None])

    def cosine(anchor: Tensor, bank: Tensor, mean: Tensor) -> Tensor:
        # anchor [B, k] unit, centred; bank [N, k] unit rows (may be a strided stripe view); mean [C, k]
        bank_dot_mean = torch.mm(bank, mean.t()).gather(1, bank_cameras[:, None]).squeeze(1)  # [N]
        norm = (1.0 - 2.0 * bank_dot_mean + mean.pow(2).sum(1)[bank_cameras]).clamp_min(L2_EPS**2).sqrt()
        return (torch.mm(anchor, bank.t()) - torch.mm(anchor, mean.t())[:, bank_cameras]).div_(norm)

    g_anchor = l2_normalize(global_feat.to(dtype) - g_mean[anchor_cameras])
    s_anchor = l2_normalize(stripes.to(dtype) - l_mean[anchor_cameras])
    num_stripes = local_bank.shape[1]
    dist = cosine(g_anchor, global_bank, g_mean).mul_(-2.0 * lambda_g)
    for k in range(num_stripes):
        dist.add_(cosine(s_anchor[:, k], local_bank[:, k], l_mean[:, k]), alpha=-2.0 * (1.0 - lambda_g) / num_stripes)
    dist.add_(2.0)  # lambda_g * (2 - 2 cos_g) + (1 - lambda_g) * mean_s (2 - 2 cos_s)
    same_camera = anchor_cameras.unsqueeze(1) == bank_cameras.unsqueeze(0)
    return dist.add_(same_camera.to(dtype), alpha=lambda_c)


def sortable_key(dist: Tensor) -> Tensor:
    """int64 keys ordering ``[B, N]`` distances by ``(float32(distance), column index)``.

    The distance is rounded to float32; its bits, mapped to an order-preserving int32 (negative
    floats: all bits but the sign flipped), form the high 32 bits and the column index the low
    32: distinct keys, so ``topk`` and ``sort`` give the same total order on every device.
    """
    bits = (dist.to(torch.float32) + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).to(torch.int64)
    column = torch.arange(dist.shape[-1], device=dist.device, dtype=torch.int64)
    return ordered * (1 << 32) + column


def rank_excluding_self(dist: Tensor, index: Tensor, count: int) -> Tensor:
    """The ``count`` nearest bank indices per row, ``[B, count]``, ascending by (distance, index).

    Distances are compared after rounding to float32 (see :func:`sortable_key`).

    Row ``b``'s own index ``index[b]`` is never returned. ``count`` must be ``<= N - 1``.
    """
    if count > dist.shape[1] - 1:
        raise ValueError(f"cannot rank {count} of {dist.shape[1] - 1} other entries")
    key = sortable_key(dist)
    key.scatter_(1, index.unsqueeze(1), _INT64_MAX)
    return torch.topk(key, count, dim=1, largest=False, sorted=True).indices


def select_from_distance(dist: Tensor, index: Tensor, k: int, m: int, gap: int = 0) -> tuple[Tensor, Tensor]:
    """Positives ``[B, K+1]`` (anchor first) and negatives ``[B, M]`` from a ``[B, N]`` distance.

    ``gap``: ranks skipped between the positives and the negatives (0: the method, negatives are
    the ``M`` ranked right after the ``K`` positives).
    """
    ranked = rank_excluding_self(dist, index, k + gap + m)
    return torch.cat([index.unsqueeze(1), ranked[:, :k]], dim=1), ranked[:, k + gap:]


def select_with_groups(
    dist: Tensor, same: Tensor, index: Tensor, k: int, m: int, gap: int = 0
) -> tuple[Tensor, Tensor]:
    """:func:`select_from_distance` where ``same [B, N]`` marks each anchor's group mates.

    Positives: the first ``K`` of the ranking with mates first (``dist - GROUP_PRIORITY``).
    Negatives: the first ``M`` of the ranking with mates last (``dist + GROUP_PRIORITY``), the
    anchor and its positives excluded, so a group larger than ``K + 1`` never supplies negatives
    (only when fewer than ``M`` non-mates exist). ``gap``: the first ``gap`` of that negative
    ranking are skipped. Without mates both equal :func:`select_from_distance`.
    """
    shift = same.to(dist.dtype) * GROUP_PRIORITY
    ranked = rank_excluding_self(dist - shift, index, k)
    key = sortable_key(dist + shift)
    key.scatter_(1, index.unsqueeze(1), _INT64_MAX)
    key.scatter_(1, ranked, _INT64_MAX)
    neg = torch.topk(key, gap + m, dim=1, largest=False, sorted=True).indices[:, gap:]
    return torch.cat([index.unsqueeze(1), ranked], dim=1), neg


def random_negatives(pos: Tensor, num_samples: int, m: int, generator: torch.Generator | None = None) -> Tensor:
    """``[B, M]`` indices drawn uniformly without replacement among the ``num_samples`` entries
    that are not in the row's ``pos`` (the anchor and its positives): the ablation of the hard
    negatives (``MethodConfig.negatives == "random"``)."""
    if m > num_samples - pos.shape[1]:
        raise ValueError(f"cannot draw {m} of {num_samples - pos.shape[1]} other entries")
    key = torch.rand(pos.shape[0], num_samples, generator=generator, device=pos.device)
    key.scatter_(1, pos, 2.0)  # above every draw: never chosen
    return torch.topk(key, m, dim=1, largest=False, sorted=False).indices


def warmup_select(perm: Tensor, index: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """Warm-up selection: positives ``[B, 1]`` (the anchor) and negatives ``[B, count]``.

    Every anchor gets the first ``count`` entries of the shared permutation ``perm`` (``[N]``)
    after deleting its own index (the authors' ``np.delete(perm, idx)[:count]``).
    """
    if count > perm.shape[0] - 1:
        raise ValueError(f"cannot draw {count} of {perm.shape[0] - 1} other entries")
    head = perm[: count + 1]
    is_self = head.unsqueeze(0) == index.unsqueeze(1)  # [B, count + 1], at most one True per row
    # position of the anchor in the head, or count + 1 when absent (then nothing is skipped)
    self_pos = torch.where(is_self.any(1), is_self.to(torch.int8).argmax(1), count + 1)
    cols = torch.arange(count, device=perm.device)
    src = cols.unsqueeze(0) + (cols.unsqueeze(0) >= self_pos.unsqueeze(1)).to(cols.dtype)
    return index.unsqueeze(1), head[src]


# Floats of gathered memory rows per chunk of the CPU loss: ~16 MB, so a chunk's rows are still in
# cache for the gradient product that follows the logits product.
GATHER_CHUNK_FLOATS = 1 << 22


def contrastive_losses(
    feats: Tensor, memory: Tensor, candidates: Tensor, coefficients: Tensor, temperature: float
) -> tuple[Tensor, Tensor]:
    """Weighted multi-positive cross entropy of each embedding against memory rows.

    Args:
        feats: ``[E, B, D]`` (E embeddings of the same anchors, e.g. global and stripes).
        memory: ``[N, D]`` (no gradient flows into it).
        candidates: ``[B, L]`` memory rows per anchor; the first ``P`` are positives.
        coefficients: ``[P]`` weight of the cross entropy with target column ``j``.
        temperature: logits are ``x . memory[c] / temperature``.

    Returns:
        ``losses [E]`` with ``losses[e] = sum_j coef_j * mean_b CE(logits[e, b], j)``, and the
        logits ``[E, B, L]`` (not differentiable).

    Two implementations of the same function: on CPU, :class:`_GatheredContrastive` touches only
    the ``B * L`` candidate rows (memory-bound, ~25x fewer flops than a product with the whole
    memory); elsewhere, :func:`dense_contrastive_losses` (one GEMM against all ``N`` rows, which
    a GPU does faster than it gathers).
    """
    if memory.device.type == "cpu":
        return _GatheredContrastive.apply(feats, memory, candidates, coefficients, temperature)  # type: ignore[no-any-return]
    return dense_contrastive_losses(feats, memory, candidates, coefficients, temperature)


def dense_contrastive_losses(
    feats: Tensor, memory: Tensor, candidates: Tensor, coefficients: Tensor, temperature: float
) -> tuple[Tensor, Tensor]:
    """:func:`contrastive_losses` through one GEMM with the whole memory, then a gather; autograd."""
    num_emb, batch, dim = feats.shape
    full = torch.mm(feats.reshape(num_emb * batch, dim), memory.t()).view(num_emb, batch, -1)
    logits = full.gather(2, candidates.unsqueeze(0).expand(num_emb, -1, -1)) / temperature
    logp = torch.log_softmax(logits, dim=-1)
    positives = logp[..., : coefficients.shape[0]]
    losses = -(positives * coefficients).sum(-1).mean(-1)
    return losses, logits.detach()


class _GatheredContrastive(torch.autograd.Function):
    """:func:`contrastive_losses` from gathered candidate rows, its gradient computed in forward.

    Chunks of anchors: gather their ``L`` candidate rows into a reused buffer, then logits
    ``rows @ x / T`` and, while the rows are in cache, the input gradient
    ``d loss_e / d x[e, b] = sum_l (c * p[e, b, l] - c_l) * rows[b, l] / (B * T)`` with
    ``c_l`` the coefficient of column ``l`` (0 for negatives), ``c = sum_l c_l`` and ``p`` the
    softmax. Backward scales that saved gradient by the incoming one.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        feats: Tensor,
        memory: Tensor,
        candidates: Tensor,
        coefficients: Tensor,
        temperature: float,
    ) -> tuple[Tensor, Tensor]:
        num_emb, batch, dim = feats.shape
        width = candidates.shape[1]
        num_pos = coefficients.shape[0]
        dtype = torch.promote_types(feats.dtype, memory.dtype)
        ctx.feats_dtype = feats.dtype  # type: ignore[attr-defined]
        feats = feats.to(dtype)
        coef = torch.zeros(width, dtype=dtype, device=feats.device)
        coef[:num_pos] = coefficients.to(dtype)
        coef_sum = coef.sum()
        need_grad = ctx.needs_input_grad[0]  # type: ignore[attr-defined]
        logits = torch.empty(num_emb, batch, width, dtype=dtype, device=feats.device)
        grad = torch.empty(num_emb, batch, dim, dtype=dtype, device=feats.device) if need_grad else None
        chunk = max(1, min(batch, GATHER_CHUNK_FLOATS // max(1, width * dim)))
        buffer = torch.empty(chunk * width, dim, dtype=memory.dtype, device=memory.device)
        for start in range(0, batch, chunk):
            stop = min(batch, start + chunk)
            count = stop - start
            rows = buffer[: count * width]
            torch.index_select(memory, 0, candidates[start:stop].reshape(-1), out=rows)
            rows3 = rows.view(count, width, dim).to(dtype)
            x = feats[:, start:stop].permute(1, 2, 0)  # [c, D, E]
            part = torch.bmm(rows3, x).permute(2, 0, 1).div_(temperature)  # [E, c, L]
            logits[:, start:stop] = part
            if grad is not None:
                weight = torch.softmax(part, dim=-1).mul_(coef_sum).sub_(coef)  # d loss / d logits * B
                grad[:, start:stop] = torch.bmm(weight.transpose(0, 1), rows3).transpose(0, 1)
        logp = torch.log_softmax(logits, dim=-1)
        losses = -(logp[..., :num_pos] * coef[:num_pos]).sum(-1).mean(-1)
        if grad is not None:
            grad.div_(batch * temperature)
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None (no input gradient wanted) is allowed
        ctx.mark_non_differentiable(logits)
        return losses, logits

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_losses: Tensor, _grad_logits: Tensor
    ) -> tuple[Tensor | None, None, None, None, None]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        if grad is None:
            return None, None, None, None, None
        scaled = grad * grad_losses.view(-1, 1, 1).to(grad.dtype)
        return scaled.to(ctx.feats_dtype), None, None, None, None  # type: ignore[attr-defined]


def mixture_write_order(pos: Tensor, global_feat: Tensor, flat_stripes: Tensor) -> tuple[Tensor, Tensor]:
    """Slots ``[W]`` and values ``[W, D]`` of the mixture writes in application order.

    Local (concatenated stripes) writes first, then global; within each, positive column
    ``P-1`` down to ``0``; within a column, anchors in batch order (``W = 2 * P * B``).
    """
    num_pos = pos.shape[1]
    slots_one = pos.flip(1).t().reshape(-1)  # column-major, last column first
    slots = torch.cat([slots_one, slots_one])
    values = torch.cat([flat_stripes.repeat(num_pos, 1), global_feat.repeat(num_pos, 1)])
    return slots, values


@torch.no_grad()
def mixture_update(memory: Tensor, slots: Tensor, values: Tensor) -> None:
    """Apply ``memory[s] = normalize((memory[s] + v) / 2)`` for each ``(s, v)`` in order, in place.

    Writes to one slot are sequential; the sequence is split into rounds (the r-th write to
    each slot), each round one exact gather/scatter over distinct slots. Costs one host sync
    (the number of writes per round).

    Args:
        memory: ``[N, D]`` float tensor, modified in place.
        slots: ``[W]`` int64 slot per write, in application order.
        values: ``[W, D]``.
    """
    count = slots.shape[0]
    if count == 0:
        return
    values = values.to(memory.dtype)
    sorted_slots, by_slot = torch.sort(slots, stable=True)  # stable: keeps application order per slot
    position = torch.arange(count, device=slots.device)
    starts = torch.ones(count, dtype=torch.bool, device=slots.device)
    starts[1:] = sorted_slots[1:] != sorted_slots[:-1]
    group_start = torch.where(starts, position, torch.zeros_like(position)).cummax(0).values
    rank = position - group_start  # 0 for a slot's first write, 1 for its second, ...
    by_round, round_order = torch.sort(rank, stable=True)
    writes = by_slot[round_order]
    slots_in_rounds = slots[writes]
    values_in_rounds = values[writes]  # one gather; each round is then a contiguous slice
    sizes = torch.bincount(by_round).tolist()
    offset = 0
    for size in sizes:
        target = slots_in_rounds[offset : offset + size]
        rows = memory.index_select(0, target).add_(values_in_rounds[offset : offset + size])
        # normalize(a + b) is bitwise normalize((a + b) / 2): halving is exact in binary floating point
        rows.div_(rows.norm(dim=-1, keepdim=True).clamp_min_(L2_EPS))
        memory.index_copy_(0, target, rows)
        offset += size


@torch.no_grad()
def momentum_update(bank: Tensor, index: Tensor, feat: Tensor, momentum: float) -> None:
    """``bank[i] = normalize(momentum * bank[i] + (1 - momentum) * feat)`` over the last dim.

    ``index`` must not repeat (a batch of distinct samples).
    """
    mixed = bank.index_select(0, index).mul_(momentum).add_(feat.to(bank.dtype), alpha=1.0 - momentum)
    bank.index_copy_(0, index, l2_normalize(mixed))


# ----------------------------------------------------------------------------- the module


class SelectiveContrastive(nn.Module):
    """Memory banks, selection and loss of selective contrastive learning.

    Features may come from bf16 autocast; they are used in float32, and autocast is switched
    off inside the method. All tensors live on the
    device of the banks (move the module with ``.to(device)``); ``index`` may be on the CPU.

    Args:
        num_samples: ``N``, number of training images (bank slots).
        embed_dim: ``D``, global embedding dimension (``= S * d``).
        num_stripes: ``S``.
        cameras: ``[N]`` integer camera id of each training image.
        cfg: hyper-parameters.
        groups: optional ``[N]`` integer group id (e.g. tracklet), ``-1`` for none; bank entries
            of the anchor's group rank first among the positives (outside warm-up).

    Raises:
        ConfigError: inconsistent sizes, or ``N`` too small for ``K`` positives and a negative.
    """

    global_bank: Tensor
    local_bank: Tensor
    mixture_bank: Tensor
    filled: Tensor
    cameras: Tensor
    groups: Tensor | None

    def __init__(
        self,
        num_samples: int,
        embed_dim: int,
        num_stripes: int,
        cameras: Tensor,
        cfg: MethodConfig,
        groups: Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_stripes < 1 or embed_dim % num_stripes:
            raise ConfigError(f"embed_dim ({embed_dim}) must be a multiple of num_stripes ({num_stripes})")
        self.negative_gap = cfg.negative_gap if cfg.negatives == "hard" else 0
        if num_samples < cfg.k + self.negative_gap + 2:
            raise ConfigError(
                f"{num_samples} training images are too few for k={cfg.k} positives, "
                f"negative_gap={self.negative_gap} and a negative"
            )
        cameras = torch.as_tensor(cameras)
        if cameras.shape != (num_samples,) or cameras.is_floating_point():
            raise ConfigError(
                f"cameras must be an integer tensor of shape [{num_samples}], got {tuple(cameras.shape)}"
            )
        self.cfg = cfg
        self.num_samples = num_samples
        self.embed_dim = embed_dim
        self.num_stripes = num_stripes
        self.stripe_dim = embed_dim // num_stripes
        self.num_negatives = min(cfg.m, num_samples - cfg.k - 1 - self.negative_gap)
        shape_local = (num_samples, num_stripes, self.stripe_dim)
        bank_dtype = SELECTION_DTYPES[cfg.selection_dtype]
        self.register_buffer("global_bank", torch.zeros(num_samples, embed_dim, dtype=bank_dtype))
        self.register_buffer("local_bank", torch.zeros(shape_local, dtype=bank_dtype))
        self.register_buffer("mixture_bank", torch.zeros(num_samples, embed_dim))
        self.register_buffer("filled", torch.zeros(num_samples, dtype=torch.bool))
        # dataset facts, not training state: rebuilt from the dataset, not checkpointed
        self.register_buffer("cameras", cameras.to(torch.int64).clone(), persistent=False)
        if groups is not None:
            groups = torch.as_tensor(groups)
            if groups.shape != (num_samples,) or groups.is_floating_point():
                raise ConfigError(f"groups must be an integer tensor of shape [{num_samples}]")
            groups = groups.to(torch.int64).clone()
        self.register_buffer("groups", groups, persistent=False)
        self._ready = False

    # -- helpers
    def _check(self, index: Tensor, global_feat: Tensor, stripes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch = index.shape[0]
        if index.dim() != 1 or global_feat.shape != (batch, self.embed_dim):
            raise ConfigError(
                f"global features {tuple(global_feat.shape)} do not match index [{batch}] "
                f"and embed_dim {self.embed_dim}"
            )
        if stripes.shape != (batch, self.num_stripes, self.stripe_dim):
            raise ConfigError(
                f"stripe features {tuple(stripes.shape)} are not "
                f"[{batch}, {self.num_stripes}, {self.stripe_dim}]"
            )
        device = self.global_bank.device
        return (
            index.to(device, torch.int64),
            global_feat.to(device, torch.float32),
            stripes.to(device, torch.float32),
        )

    def _full_precision(self) -> torch.autocast:
        # The trainer may call us inside autocast; the banks' products must stay float32/64.
        return torch.autocast(device_type=self.global_bank.device.type, enabled=False)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._ready = False
        super()._load_from_state_dict(*args, **kwargs)

    # -- public API
    @torch.no_grad()
    def init_banks(self, index: Tensor, global_feat: Tensor, stripes: Tensor) -> None:
        """Store one batch of the initial no-grad pass into the global and local banks."""
        index, global_feat, stripes = self._check(index, global_feat, stripes)
        self.global_bank.index_copy_(0, index, l2_normalize(global_feat.to(self.global_bank.dtype)))
        self.local_bank.index_copy_(0, index, l2_normalize(stripes.to(self.local_bank.dtype)))
        self.filled[index] = True
        self._ready = False

    @torch.no_grad()
    def select(
        self,
        index: Tensor,
        global_feat: Tensor,
        stripes: Tensor,
        warmup: bool,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        """Positives and negatives of each anchor.

        Returns:
            ``(pos [B, K+1], neg [B, M])`` after warm-up, ``(pos [B, 1], neg [B, M+K])`` during it;
            ``pos[:, 0]`` is the anchor. ``generator`` (on the banks' device) drives the warm-up
            permutation; ``None`` uses torch's default generator.

        Raises:
            DataError: outside warm-up, some bank slots were never filled by :meth:`init_banks`.
        """
        index, global_feat, stripes = self._check(index, global_feat, stripes)
        k, m = self.cfg.k, self.num_negatives
        if warmup:
            perm = torch.randperm(self.num_samples, generator=generator, device=self.global_bank.device)
            return warmup_select(perm, index, k + m)
        if not self._ready:
            missing = int((~self.filled).sum())
            if missing:
                raise DataError(
                    f"{missing} of {self.num_samples} memory-bank slots were never filled by init_banks"
                )
            self._ready = True
        distance = camera_centred_distance if self.cfg.camera_centre else selection_distance
        with self._full_precision():
            dist = distance(
                global_feat,
                stripes,
                self.global_bank,
                self.local_bank,
                self.cameras[index],
                self.cameras,
                self.cfg.lambda_g,
                self.cfg.lambda_c,
            )
        hard = m if self.cfg.negatives == "hard" else 0  # random negatives: rank the positives only
        if self.groups is not None:
            anchor_group = self.groups[index].unsqueeze(1)
            same = (anchor_group == self.groups.unsqueeze(0)) & (anchor_group >= 0)
            pos, neg = select_with_groups(dist, same, index, k, hard, self.negative_gap)
        else:
            pos, neg = select_from_distance(dist, index, k, hard, self.negative_gap)
        if not hard:
            neg = random_negatives(pos, self.num_samples, m, generator)
        return pos, neg

    def loss(
        self, global_feat: Tensor, stripes: Tensor, pos: Tensor, neg: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Selective contrastive loss against the (pre-update) mixture bank.

        Returns:
            ``(lambda_p * loss_local + (1 - lambda_p) * loss_global, stats)``; the loss is
            differentiable w.r.t. the features; ``stats`` holds ``loss_global``, ``loss_local``,
            ``acc_global``, ``acc_local`` (fraction of anchors whose top logit is their own slot).
        """
        batch = pos.shape[0]
        index = pos[:, 0]
        index, global_feat, stripes = self._check(index, global_feat, stripes)
        device = self.mixture_bank.device
        candidates = torch.cat([pos, neg], dim=1).to(device)
        coef = loss_coefficients(pos.shape[1], self.cfg.k, self.cfg.lambda_t, self.cfg.alpha)
        feats = torch.stack([global_feat, stripes.reshape(batch, self.embed_dim)])
        with self._full_precision():
            losses, logits = contrastive_losses(
                feats, self.mixture_bank, candidates, torch.tensor(coef, device=device), self.cfg.temperature
            )
        lam = self.cfg.lambda_p
        total = lam * losses[1] + (1.0 - lam) * losses[0]
        with torch.no_grad():
            acc = (logits.argmax(-1) == 0).float().mean(-1)
            values = torch.cat([losses.detach(), acc]).tolist()  # one host sync for all stats
        stats = dict(zip(("loss_global", "loss_local", "acc_global", "acc_local"), values))
        return total, stats

    @torch.no_grad()
    def update(self, index: Tensor, global_feat: Tensor, stripes: Tensor, pos: Tensor) -> None:
        """Momentum-update the global/local banks and write the mixture bank (after ``optimizer.step()``)."""
        index, global_feat, stripes = self._check(index, global_feat, stripes)
        momentum = self.cfg.bank_momentum
        momentum_update(self.global_bank, index, global_feat, momentum)
        momentum_update(self.local_bank, index, stripes, momentum)
        slots, values = mixture_write_order(
            pos.to(index.device), global_feat, stripes.reshape(index.shape[0], self.embed_dim)
        )
        mixture_update(self.mixture_bank, slots, values)

    def step(
        self,
        index: Tensor,
        global_feat: Tensor,
        stripes: Tensor,
        warmup: bool,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, dict[str, float], Tensor]:
        """:meth:`select` then :meth:`loss`; returns ``(loss, stats, pos)``.

        The caller runs ``loss.backward(); optimizer.step()`` and then
        ``update(index, global_feat.detach(), stripes.detach(), pos)``.
        """
        pos, neg = self.select(index, global_feat.detach(), stripes.detach(), warmup, generator)
        total, stats = self.loss(global_feat, stripes, pos, neg)
        return total, stats, pos
