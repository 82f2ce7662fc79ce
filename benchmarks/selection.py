"""One training step of the method's bookkeeping: vectorized code vs. the per-sample loop.

Times, per step and at Market-1501 scale by default (N = 12,936 training crops, D = 2048,
8 stripes, batch 64, K = 7, M = 500), the three parts the trainer calls around the network:
``select`` (distances to the whole bank and ranking), ``loss`` with its backward pass into the
feature tensors (the loop reference derives that gradient by hand), and ``update`` (momentum
updates and the sequential mixture-bank writes). The vectorized code is
:class:`reid_edge.train.method.SelectiveContrastive`; the baseline is
``tests/loop_reference.py`` (numpy, one anchor at a time, float32 here). Medians over
``--repeats`` (vectorized) and ``--loop-repeats`` (loop) steps after one untimed step each.

Examples:
    python -m benchmarks.selection
    python -m benchmarks.selection --n 2000 --repeats 5 --loop-repeats 1
    python -m benchmarks.selection --device cuda --repeats 20 --skip-loop
    python -m benchmarks.selection --threads 1 --selection-dtype float32
    python -m benchmarks.selection --json results/selection.json
    python -m benchmarks.selection --dim 512 --batch 8 --threads 1 --skip-loop --camera-centre   # the extension's cost
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np
import torch

from reid_edge.io import atomic_write_json
from reid_edge.train.method import MethodConfig, SelectiveContrastive, l2_normalize
from tests.loop_reference import LoopReference

PHASES = ("select", "loss+backward", "update")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> float:
    _sync(device)
    return time.perf_counter()


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # index, global features, stripe features


def bench_vectorized(
    method: SelectiveContrastive, batches: list[Batch], device: torch.device
) -> dict[str, list[float]]:
    """Per-phase seconds of each step (the first one is a warm-up and not returned)."""
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    for index, g0, s0 in batches:
        g = g0.clone().requires_grad_()
        s = s0.clone().requires_grad_()
        t0 = _clock(device)
        pos, neg = method.select(index, g.detach(), s.detach(), False, None)
        t1 = _clock(device)
        loss, _ = method.loss(g, s, pos, neg)
        loss.backward()
        t2 = _clock(device)
        method.update(index, g.detach(), s.detach(), pos)
        t3 = _clock(device)
        for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2)):
            times[phase].append(seconds)
    return {p: t[1:] for p, t in times.items()}


def bench_loop(ref: LoopReference, batches: list[Batch]) -> dict[str, list[float]]:
    """Per-phase seconds of each loop-reference step (the first one is not returned)."""
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    for index, g, s in batches:
        idx, gn, sn = index.cpu().numpy(), g.cpu().numpy(), s.cpu().numpy()
        t0 = time.perf_counter()
        pos, neg = ref.select(idx, gn, sn, False, None)
        t1 = time.perf_counter()
        ref.loss(gn, sn, pos, neg)  # with its hand-derived gradient
        t2 = time.perf_counter()
        ref.update(idx, gn, sn, pos)
        t3 = time.perf_counter()
        for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2)):
            times[phase].append(seconds)
    return {p: t[1:] for p, t in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=12936, help="bank size N (Market-1501 train: 12936)")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--stripes", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=10, help="timed vectorized steps")
    parser.add_argument("--loop-repeats", type=int, default=2, help="timed loop-reference steps")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--selection-dtype", default="float64", choices=["float64", "float32"],
                        help="MethodConfig.selection_dtype of the vectorized code")
    parser.add_argument("--camera-centre", action="store_true",
                        help="time the camera-centred selection (an extension; the loop reference has none: "
                             "implies --skip-loop)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.camera_centre:
        args.skip_loop = True

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = MethodConfig(selection_dtype=args.selection_dtype, camera_centre=args.camera_centre)
    gen = torch.Generator().manual_seed(args.seed)
    n, dim, num_s = args.n, args.dim, args.stripes
    cams = torch.randint(0, args.cameras, (n,), generator=gen)
    bank_g = l2_normalize(torch.randn(n, dim, generator=gen))
    bank_s = l2_normalize(torch.randn(n, num_s, dim // num_s, generator=gen))
    mixture = l2_normalize(torch.randn(n, dim, generator=gen))

    def batches(count: int) -> list[Batch]:
        out = []
        for _ in range(count + 1):
            index = torch.randperm(n, generator=gen)[: args.batch]
            g = l2_normalize(bank_g[index] + 0.5 * torch.randn(args.batch, dim, generator=gen))
            s = l2_normalize(bank_s[index] + 0.5 * torch.randn(bank_s[index].shape, generator=gen))
            out.append((index.to(device), g.to(device), s.to(device)))
        return out

    method = SelectiveContrastive(n, dim, num_s, cams, cfg).to(device)
    for start in range(0, n, 1024):
        idx = torch.arange(start, min(n, start + 1024))
        method.init_banks(idx.to(device), bank_g[idx].to(device), bank_s[idx].to(device))
    method.mixture_bank.copy_(mixture.to(device))
    results: dict[str, dict[str, float]] = {}
    vec = bench_vectorized(method, batches(args.repeats), device)
    results["vectorized"] = {p: statistics.median(t) for p, t in vec.items()}
    del method

    if not args.skip_loop:
        ref = LoopReference(n, dim, num_s, cams, cfg, dtype=np.float32)
        ref.init_banks(torch.arange(n), bank_g, bank_s)
        ref.mixture_bank[:] = mixture.numpy()
        loop = bench_loop(ref, batches(args.loop_repeats))
        results["loop"] = {p: statistics.median(t) for p, t in loop.items()}

    print(
        f"N={n} D={dim} S={num_s} B={args.batch} K={cfg.k} M={min(cfg.m, n - cfg.k - 1)} "
        f"device={device} threads={args.threads} selection={args.selection_dtype} torch={torch.__version__}; "
        f"vectorized median of {args.repeats}, loop median of {args.loop_repeats} steps"
    )
    header = f"{'phase':<15}{'vectorized ms':>15}"
    if "loop" in results:
        header += f"{'loop ms':>12}{'ratio':>9}"
    print(header)
    rows = [*PHASES, "total"]
    for name in results.values():
        name["total"] = sum(name[p] for p in PHASES)
    for phase in rows:
        line = f"{phase:<15}{1e3 * results['vectorized'][phase]:>15.1f}"
        if "loop" in results:
            ratio = results["loop"][phase] / results["vectorized"][phase]
            line += f"{1e3 * results['loop'][phase]:>12.1f}{ratio:>8.1f}x"
        print(line)
    if args.json:
        atomic_write_json(
            args.json, {"args": vars(args), "device": str(device), "torch": torch.__version__, **results}
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
