"""Selective contrastive learning: vectorized code vs. the per-sample loop reference, and
hand-checked cases for each pure function of ``reid_edge.train.method``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reid_edge.errors import ConfigError, DataError
from reid_edge.train.method import (
    MethodConfig,
    SelectiveContrastive,
    camera_centred_distance,
    contrastive_losses,
    dense_contrastive_losses,
    loss_coefficients,
    mixture_update,
    mixture_write_order,
    momentum_update,
    random_negatives,
    rank_excluding_self,
    select_from_distance,
    selection_distance,
    sortable_key,
    warmup_select,
)
from tests.loop_reference import LoopReference

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
        ],
    ),
]


# ----------------------------------------------------------------------------- hand-checked cases


def test_selection_distance_by_hand() -> None:
    bank_g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    bank_l = torch.tensor([[[1.0], [1.0]], [[1.0], [-1.0]], [[-1.0], [-1.0]]], dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0]])
    s = torch.tensor([[[1.0], [1.0]]])
    dist = selection_distance(
        g, s, bank_g, bank_l, torch.tensor([0]), torch.tensor([0, 1, 0]), lambda_g=0.5, lambda_c=0.05
    )
    # global |g - G|^2 = [0, 2, 4]; stripes mean([0, 0], [0, 4], [4, 4]) = [0, 2, 4]; camera [1, 0, 1]
    torch.testing.assert_close(dist, torch.tensor([[0.05, 2.0, 4.05]], dtype=torch.float64))


def test_ranking_breaks_ties_by_index_and_skips_self() -> None:
    dist = torch.tensor(
        [
            [0.5, 0.1, 0.3, 0.1, 0.9],  # anchor 0: 1 and 3 tie at 0.1 -> 1 first
            [0.2, -0.0, 0.2, 0.0, -1.0],  # anchor 1 (itself the nearest but one); -0.0 == 0.0
            [0.0, 0.0, 0.0, 0.0, 0.0],  # anchor 4: all tie
        ]
    )
    index = torch.tensor([0, 1, 4])
    ranked = rank_excluding_self(dist, index, 4)
    assert ranked.tolist() == [[1, 3, 2, 4], [4, 3, 0, 2], [0, 1, 2, 3]]
    pos, neg = select_from_distance(dist, index, k=2, m=1)
    assert pos.tolist() == [[0, 1, 3], [1, 4, 3], [4, 0, 1]]
    assert neg.tolist() == [[2], [0], [2]]
    with pytest.raises(ValueError):
        rank_excluding_self(dist, index, 5)


def test_sortable_key_orders_floats_then_index() -> None:
    values = torch.tensor([[3.0, -2.0, 0.0, -0.0, 1e-30, -1e-30, -math.inf, math.inf, 3.0]])
    order = torch.sort(sortable_key(values), dim=1).indices.tolist()[0]
    assert order == [6, 1, 5, 2, 3, 4, 0, 8, 7]


def test_warmup_select_by_hand() -> None:
    perm = torch.tensor([3, 0, 4, 1, 2])
    pos, neg = warmup_select(perm, torch.tensor([0, 2, 4, 3]), count=3)
    assert pos.tolist() == [[0], [2], [4], [3]]
    assert neg.tolist() == [[3, 4, 1], [3, 0, 4], [3, 0, 1], [0, 4, 1]]


def test_mixture_update_is_sequential_per_slot() -> None:
    r = 1 / math.sqrt(2)
    memory = torch.zeros(3, 2)
    slots = torch.tensor([1, 2, 1, 0, 1])
    values = torch.tensor([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    mixture_update(memory, slots, values)
    # slot 1: [0,1] -> normalize([0,1]/2)=[0,1] -> normalize([1,1]/2)=[r,r] -> normalize([r+1,r]/2)
    c, s = math.cos(math.pi / 8), math.sin(math.pi / 8)
    expected = torch.tensor([[0.0, 1.0], [c, s], [0.0, -1.0]])
    torch.testing.assert_close(memory, expected)
    # the same writes in another order give another result: order matters and is respected
    memory2 = torch.zeros(3, 2)
    mixture_update(memory2, slots.flip(0), values.flip(0))  # slot 1: [1,0] -> [1,0] -> [r,r]
    torch.testing.assert_close(memory2[1], torch.tensor([r, r]))
    mixture_update(memory2, slots[:0], values[:0])  # no writes: no-op


def test_mixture_write_order_by_hand() -> None:
    pos = torch.tensor([[5, 1], [6, 2]])
    g = torch.tensor([[10.0], [11.0]])
    loc = torch.tensor([[20.0], [21.0]])
    slots, values = mixture_write_order(pos, g, loc)
    assert slots.tolist() == [1, 2, 5, 6, 1, 2, 5, 6]
    assert values.flatten().tolist() == [20, 21, 20, 21, 10, 11, 10, 11]


def test_momentum_update_by_hand() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    momentum_update(bank, torch.tensor([2, 0]), torch.tensor([[0.0, 1.0], [0.0, 3.0]]), momentum=0.5)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(
        bank, torch.tensor([[1 / math.sqrt(10), 3 / math.sqrt(10)], [0.0, 1.0], [r, r]])
    )


def test_loss_coefficients() -> None:
    assert loss_coefficients(8, k=7, lambda_t=0.5, alpha=1.75) == [0.5] + [0.125] * 7
    assert loss_coefficients(1, k=7, lambda_t=0.5, alpha=1.75) == [0.5]
    with pytest.raises(ValueError):
        loss_coefficients(9, k=7, lambda_t=0.5, alpha=1.75)


def test_contrastive_losses_by_hand() -> None:
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    feats = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]], requires_grad=True)  # E=2, B=1
    losses, logits = contrastive_losses(feats, memory, torch.tensor([[0, 1, 2]]), torch.tensor([1.0]), 1.0)
    # e=0: logits [1, 0, 0] -> -log(e / (e + 2)); e=1: uniform -> log 3
    torch.testing.assert_close(losses, torch.tensor([math.log(1 + 2 / math.e), math.log(3)]))
    torch.testing.assert_close(logits[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    losses.sum().backward()
    p = torch.tensor([math.e, 1.0, 1.0]) / (math.e + 2)
    # d/dx = sum_l (p_l - [l == 0]) M[c_l]
    expected = (p - torch.tensor([1.0, 0.0, 0.0])) @ memory
    torch.testing.assert_close(feats.grad[0, 0], expected)


@pytest.mark.parametrize("chunk_floats", [1, 64, 1 << 22])
def test_gathered_loss_equals_dense_loss(monkeypatch: pytest.MonkeyPatch, chunk_floats: int) -> None:
    """The CPU loss (gathered rows, gradient computed in forward, in chunks of anchors) and the
    autograd loss through a GEMM with the whole memory are one function with one gradient."""
    import reid_edge.train.method as method_module

    monkeypatch.setattr(method_module, "GATHER_CHUNK_FLOATS", chunk_floats)
    gen = torch.Generator().manual_seed(11)
    num_emb, batch, dim, n, width = 2, 9, 24, 60, 17
    memory = _unit(torch.randn(n, dim, generator=gen))
    candidates = torch.stack([torch.randperm(n, generator=gen)[:width] for _ in range(batch)])
    coef = torch.tensor(loss_coefficients(4, k=3, lambda_t=0.5, alpha=1.75))
    base = _unit(torch.randn(num_emb, batch, dim, generator=gen))
    weights = torch.tensor([0.3, 0.7])
    results = []
    for fn in (contrastive_losses, dense_contrastive_losses):
        feats = base.clone().requires_grad_()
        losses, logits = fn(feats, memory, candidates, coef, 0.1)
        (losses * weights).sum().backward()
        results.append((losses.detach(), logits, feats.grad))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_gathered_loss_gradient_is_the_derivative() -> None:
    """float64 finite differences against the hand-derived gradient of the CPU loss."""
    gen = torch.Generator().manual_seed(12)
    memory = _unit(torch.randn(30, 8, generator=gen, dtype=torch.float64))
    candidates = torch.stack([torch.randperm(30, generator=gen)[:9] for _ in range(4)])
    coef = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    feats = torch.randn(2, 4, 8, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda f: contrastive_losses(f, memory, candidates, coef, 0.1)[0], (feats,))
    # no gradient asked for: none computed, none returned
    losses, _ = contrastive_losses(feats.detach(), memory, candidates, coef, 0.1)
    assert not losses.requires_grad


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="lambda_t"):
        MethodConfig(lambda_t=1.5)
    with pytest.raises(ConfigError, match="temperature"):
        MethodConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="bank_momentum"):
        MethodConfig(bank_momentum=1.0)
    with pytest.raises(ConfigError, match="selection_dtype must be one of float64, float32"):
        MethodConfig(selection_dtype="float16")
    assert MethodConfig().in_warmup(2) and not MethodConfig().in_warmup(3)
    cams = torch.zeros(20, dtype=torch.int64)
    with pytest.raises(ConfigError, match="too few"):
        SelectiveContrastive(8, 16, 4, cams[:8], MethodConfig())
    with pytest.raises(ConfigError, match="multiple"):
        SelectiveContrastive(20, 18, 4, cams, MethodConfig())
    with pytest.raises(ConfigError, match="cameras"):
        SelectiveContrastive(20, 16, 4, cams[:5], MethodConfig())
    method = SelectiveContrastive(20, 16, 4, cams, MethodConfig(k=3, m=100))
    assert method.num_negatives == 16
    with pytest.raises(ConfigError, match="stripe features"):
        method.init_banks(torch.arange(2), torch.zeros(2, 16), torch.zeros(2, 2, 8))
    with pytest.raises(DataError, match="never filled"):
        method.select(torch.arange(2), torch.zeros(2, 16), torch.zeros(2, 4, 4), warmup=False, generator=None)


def test_random_negatives_ablation() -> None:
    """``negatives="random"``: same positives as the method, M uniform draws outside them."""
    pos = torch.tensor([[0, 5, 6], [3, 1, 2]])
    gen = torch.Generator().manual_seed(0)
    neg = random_negatives(pos, 10, 7, gen)
    assert neg.shape == (2, 7)
    for row_pos, row_neg in zip(pos.tolist(), neg.tolist()):
        assert len(set(row_neg)) == 7 and not set(row_neg) & set(row_pos)  # all 7 others, once each
    with pytest.raises(ValueError, match="cannot draw 8"):
        random_negatives(pos, 10, 8, gen)
    with pytest.raises(ConfigError, match="negatives must be one of hard, random"):
        MethodConfig(negatives="easy")
    g, s, cams = _dataset(60, 16, 4, seed=3)
    runs = {}
    for kind in ("hard", "random"):
        method = SelectiveContrastive(60, 16, 4, cams, MethodConfig(k=3, m=20, negatives=kind))
        method.init_banks(torch.arange(60), g, s)
        runs[kind] = method.select(torch.arange(4), g[:4], s[:4], warmup=False,
                                   generator=torch.Generator().manual_seed(1))
    assert torch.equal(runs["hard"][0], runs["random"][0])  # positives unchanged
    assert runs["random"][1].shape == runs["hard"][1].shape == (4, 20)
    assert not torch.equal(runs["hard"][1].sort(1).values, runs["random"][1].sort(1).values)


# ----------------------------------------------------------------------------- parity with the loop


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


DUPLICATES = [(3, 17), (5, 30), (10, 11), (0, 39), (21, 22), (25, 33)]


def _dataset(n: int, dim: int, stripes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random unit features and cameras, with duplicate (feature, camera) pairs in other slots."""
    gen = torch.Generator().manual_seed(seed)
    g = _unit(torch.randn(n, dim, generator=gen))
    s = _unit(torch.randn(n, stripes, dim // stripes, generator=gen))
    cams = torch.randint(0, 3, (n,), generator=gen)
    for a, b in DUPLICATES:
        if b < n:
            g[b], s[b], cams[b] = g[a], s[a], cams[a]
    return g, s, cams


def _assert_banks_equal(method: SelectiveContrastive, ref: LoopReference) -> None:
    for name in ("global_bank", "local_bank", "mixture_bank"):
        np.testing.assert_allclose(
            getattr(method, name).double().cpu().numpy(), getattr(ref, name), rtol=0, atol=1e-6, err_msg=name
        )


def _count_tied_pairs(method: SelectiveContrastive) -> int:
    bank = torch.cat([method.global_bank, method.local_bank.flatten(1)], 1).cpu()
    cams = method.cameras.cpu()
    return sum(
        int(torch.equal(bank[a], bank[b]) and cams[a] == cams[b]) for a, b in DUPLICATES if b < len(cams)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("n", "m", "use_groups"),
    [(40, 500, False), (60, 20, False), (40, 12, True), (40, 12, "large")],
    ids=["capped-M", "uncapped-M", "groups", "group-larger-than-K"],
)
@pytest.mark.parametrize("selection_dtype", ["float64", "float32"])
def test_parity_with_loop_reference(
    device: str, n: int, m: int, use_groups: bool | str, selection_dtype: str
) -> None:
    """float32 selection agrees here too (no near-ties in this data; duplicate rows still tie
    exactly), but only float64 guarantees it: see ``SELECTION_DTYPES``."""
    dim, num_stripes, batch = 32, 4, 8
    cfg = MethodConfig(k=7, m=m, selection_dtype=selection_dtype)
    g_all, s_all, cams = _dataset(n, dim, num_stripes, seed=n + m)
    groups = None
    if use_groups:
        groups = torch.full((n,), -1, dtype=torch.int64)
        groups[:12] = torch.arange(12) // 4  # three tracklets of four crops
        if use_groups == "large":
            groups[12:24] = 3  # a tracklet of 12 crops: more mates than K = 7 positives
    method = SelectiveContrastive(n, dim, num_stripes, cams, cfg, groups=groups).to(device)
    ref = LoopReference(n, dim, num_stripes, cams, cfg, groups=groups)
    assert method.num_negatives == ref.m == min(m, n - cfg.k - 1)

    for start in range(0, n, 16):  # the initial no-grad pass, in batches
        idx = torch.arange(start, min(n, start + 16))
        method.init_banks(idx.to(device), g_all[idx].to(device), s_all[idx].to(device))
        ref.init_banks(idx, g_all[idx], s_all[idx])
    _assert_banks_equal(method, ref)
    assert _count_tied_pairs(method) == sum(b < n for _, b in DUPLICATES)

    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    feat_gen = torch.Generator().manual_seed(2)
    saw_ties = False
    for step in range(5):
        warmup = step < 2
        index = order[(step * batch) % n :][:batch]
        if use_groups and step == 4:
            index = torch.tensor([0, 1, 5, 9, 12, 13, 20, 30])  # anchors inside tracklets
        # fresh features near the bank entries, as a model would give
        g = _unit(g_all[index] + 0.3 * torch.randn(batch, dim, generator=feat_gen))
        s = _unit(
            s_all[index] + 0.3 * torch.randn(batch, num_stripes, dim // num_stripes, generator=feat_gen)
        )
        saw_ties |= not warmup and _count_tied_pairs(method) > 0

        gen_a = torch.Generator(device=device).manual_seed(100 + step)
        gen_b = torch.Generator(device=device).manual_seed(100 + step)
        g_leaf = g.to(device).requires_grad_()
        s_leaf = s.to(device).requires_grad_()
        loss, stats, pos = method.step(index.to(device), g_leaf, s_leaf, warmup, gen_a)
        _, neg = method.select(index.to(device), g_leaf, s_leaf, warmup, gen_b.manual_seed(100 + step))
        ref_pos, ref_neg = ref.select(index, g, s, warmup, gen_b.manual_seed(100 + step))
        assert pos.cpu().tolist() == ref_pos.tolist(), f"positives differ at step {step}"
        assert neg.cpu().tolist() == ref_neg.tolist(), f"negatives differ at step {step}"
        expected_cols = (1, cfg.k + method.num_negatives) if warmup else (cfg.k + 1, method.num_negatives)
        assert (pos.shape[1], neg.shape[1]) == expected_cols

        ref_loss, ref_stats, ref_grad_g, ref_grad_s = ref.loss(g, s, ref_pos, ref_neg)
        loss.backward()
        assert loss.item() == pytest.approx(ref_loss, rel=1e-5)
        for key, value in ref_stats.items():
            assert stats[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        np.testing.assert_allclose(g_leaf.grad.cpu().double().numpy(), ref_grad_g, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(s_leaf.grad.cpu().double().numpy(), ref_grad_s, rtol=1e-4, atol=1e-6)

        method.update(index.to(device), g_leaf.detach(), s_leaf.detach(), pos)
        ref.update(index, g, s, ref_pos)
        _assert_banks_equal(method, ref)

        if use_groups and not warmup:
            for row in pos.cpu().tolist():
                anchor_group = int(groups[row[0]])
                members = {i for i in range(n) if int(groups[i]) == anchor_group} - {row[0]}
                if anchor_group >= 0 and len(members) <= cfg.k:
                    assert set(row[1 : len(members) + 1]) == members  # tracklet mates first
                elif anchor_group >= 0:
                    assert set(row[1:]) <= members  # all positives are mates
            for anchor, row in zip(pos.cpu().tolist(), neg.cpu().tolist()):
                anchor_group = int(groups[anchor[0]])
                if anchor_group >= 0:  # a mate is never a negative
                    assert not {i for i in row if int(groups[i]) == anchor_group}
    assert saw_ties
    assert method.mixture_bank.abs().sum() > 0


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_features_and_state_dict(device: str) -> None:
    n, dim, num_stripes = 40, 32, 4
    g_all, s_all, cams = _dataset(n, dim, num_stripes, seed=7)
    method = SelectiveContrastive(n, dim, num_stripes, cams, MethodConfig(k=3, m=10)).to(device)
    method.init_banks(torch.arange(n), g_all.to(device).bfloat16(), s_all.to(device).bfloat16())
    index = torch.arange(8, device=device)
    g = g_all[:8].to(device).bfloat16().requires_grad_()
    s = s_all[:8].to(device).bfloat16().requires_grad_()
    loss, stats, pos = method.step(index, g, s, warmup=False, generator=None)
    loss.backward()
    assert g.grad is not None and g.grad.dtype == torch.bfloat16 and torch.isfinite(loss)
    assert set(stats) == {"loss_global", "loss_local", "acc_global", "acc_local"}
    method.update(index, g.detach(), s.detach(), pos)

    state = method.state_dict()
    assert set(state) == {"global_bank", "local_bank", "mixture_bank", "filled"}
    clone = SelectiveContrastive(n, dim, num_stripes, cams, MethodConfig(k=3, m=10)).to(device)
    clone.load_state_dict(state)
    for key, value in state.items():
        assert torch.equal(getattr(clone, key), value)
    assert (
        clone.select(index, g, s, False, None)[0].tolist()
        == method.select(index, g, s, False, None)[0].tolist()
    )


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_does_not_lower_the_method_precision(device: str) -> None:
    n, dim, num_stripes = 40, 32, 4
    g_all, s_all, cams = _dataset(n, dim, num_stripes, seed=3)
    method = SelectiveContrastive(n, dim, num_stripes, cams, MethodConfig(k=3, m=10)).to(device)
    method.init_banks(torch.arange(n), g_all.to(device), s_all.to(device))
    method.mixture_bank.copy_(_unit(torch.randn(n, dim, generator=torch.Generator().manual_seed(4))))
    index = torch.arange(8, 16, device=device)
    g, s = g_all[8:16].to(device), s_all[8:16].to(device)
    plain = method.step(index, g, s, warmup=False, generator=None)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        mixed = method.step(index, g, s, warmup=False, generator=None)
    assert torch.equal(plain[2], mixed[2])
    assert mixed[0].dtype == torch.float32
    assert mixed[0].item() == pytest.approx(plain[0].item(), rel=1e-6)


def test_negative_gap_skips_ranks_after_the_positives() -> None:
    """``negative_gap``: the negatives start ``gap`` ranks after the ``K`` positives (0: the method)."""
    torch.manual_seed(0)
    n, d, s = 40, 16, 4
    cams = torch.arange(n) % 3
    banks_g = torch.nn.functional.normalize(torch.randn(n, d), dim=1)
    banks_l = torch.nn.functional.normalize(torch.randn(n, s, d // s), dim=2)
    index = torch.tensor([0, 7, 13])
    feats, stripes = banks_g[index], banks_l[index]
    picks = {}
    for gap in (0, 5):
        for groups in (None, torch.tensor([-1] * n)):
            method = SelectiveContrastive(n, d, s, cams, MethodConfig(k=3, m=10, negative_gap=gap), groups=groups)
            method.init_banks(torch.arange(n), banks_g, banks_l)
            picks[gap, groups is None] = method.select(index, feats, stripes, warmup=False, generator=None)
    dist = selection_distance(feats, stripes, banks_g.double(), banks_l.double(), cams[index], cams, 0.5, 0.05)
    ranked = rank_excluding_self(dist, index, 3 + 5 + 10)
    for plain in (True, False):
        pos0, neg0 = picks[0, plain]
        pos5, neg5 = picks[5, plain]
        assert torch.equal(pos0, pos5) and torch.equal(pos0[:, 1:], ranked[:, :3])
        assert torch.equal(neg0, ranked[:, 3:13]) and torch.equal(neg5, ranked[:, 8:18])
    with pytest.raises(ConfigError, match="negative_gap"):
        MethodConfig(negative_gap=-1)
    with pytest.raises(ConfigError, match="too few"):
        SelectiveContrastive(12, d, s, cams[:12], MethodConfig(k=3, m=10, negative_gap=8))
    assert SelectiveContrastive(20, d, s, cams[:20], MethodConfig(k=3, m=100, negative_gap=6)).num_negatives == 10


def test_camera_centre_ranks_across_a_camera_offset() -> None:
    """``camera_centre`` (an extension, off by default): each camera's mean bank entry is taken
    from its entries and anchors before ranking. Six people seen by two cameras, each camera adding
    a large common vector: the plain selection ranks the anchor's own camera first (the wrong
    people), the centred one finds the person in the other camera."""
    torch.manual_seed(0)
    people, d, s = 6, 16, 4
    person = torch.nn.functional.normalize(torch.randn(people, d), dim=1)
    offset = 3.0 * torch.nn.functional.normalize(torch.randn(2, d), dim=1)
    cams = torch.tensor([0] * people + [1] * people)
    ids = torch.arange(people).repeat(2)
    feats = torch.nn.functional.normalize(person[ids] + offset[cams] + 0.05 * torch.randn(2 * people, d), dim=1)
    stripes = torch.nn.functional.normalize(feats.reshape(-1, s, d // s), dim=2)
    index = torch.arange(2 * people)
    picks = {}
    for centre in (False, True):
        method = SelectiveContrastive(2 * people, d, s, cams, MethodConfig(k=1, m=4, camera_centre=centre))
        method.init_banks(index, feats, stripes)
        picks[centre] = method.select(index, feats, stripes, warmup=False, generator=None)[0][:, 1]
    assert (ids[picks[False]] != ids).all() and (cams[picks[False]] == cams).all()
    assert torch.equal(ids[picks[True]], ids) and (cams[picks[True]] != cams).all()
    # by hand: centred, renormalised rows, then the method's distance
    g = feats.double()
    gm = torch.stack([g[cams == c].mean(0) for c in (0, 1)])
    gc = torch.nn.functional.normalize(g - gm[cams], dim=1)
    lm = torch.stack([stripes.double()[cams == c].mean(0) for c in (0, 1)])
    lc = torch.nn.functional.normalize(stripes.double() - lm[cams], dim=2)
    dist = selection_distance(gc, lc, gc, lc, cams, cams, 0.5, 0.05)
    assert torch.equal(rank_excluding_self(dist, index, 1)[:, 0], picks[True])
    assert not MethodConfig().camera_centre  # the method as published by default
    # the product form against centred copies, on random banks of five cameras
    n, d, s, b = 50, 24, 3, 7
    cams = torch.randint(0, 5, (n,), generator=torch.Generator().manual_seed(1))
    bank_g = torch.nn.functional.normalize(torch.randn(n, d, dtype=torch.float64), dim=1)
    bank_l = torch.nn.functional.normalize(torch.randn(n, s, d // s, dtype=torch.float64), dim=2)
    index = torch.arange(b) * 3
    anchors_g, anchors_l = torch.randn(b, d), torch.randn(b, s, d // s)  # not unit: centred, then renormalised
    gm = torch.stack([bank_g[cams == c].mean(0) for c in range(5)])
    lm = torch.stack([bank_l[cams == c].mean(0) for c in range(5)])
    ac = cams[index]
    want = selection_distance(
        torch.nn.functional.normalize(anchors_g.double() - gm[ac], dim=1),
        torch.nn.functional.normalize(anchors_l.double() - lm[ac], dim=2),
        torch.nn.functional.normalize(bank_g - gm[cams], dim=1),
        torch.nn.functional.normalize(bank_l - lm[cams], dim=2), ac, cams, 0.3, 0.2)
    got = camera_centred_distance(anchors_g, anchors_l, bank_g, bank_l, ac, cams, 0.3, 0.2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
