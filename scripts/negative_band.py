"""Where a re-ID model puts each person's other crops in the method's ranking (a diagnostic).

For the training split of a Market-layout dataset (identities in the file names, read here only to
measure) and a model, embeds every crop, ranks all crops for 3,000 random anchors with the method's selection
distance on the global embedding (``2 - 2 cos + lambda_c * [same camera]``) and prints, for K in
1, 7, 15, 30: the precision of the K nearest (the positives the method would select), how many of
the anchor's other crops fall in ranks K+1..K+M (the hard negatives the loss pushes away) and how
many other crops an anchor has in all; then how the K = 7 band's same-person crops spread over
ranks 8-57, 58-107, 108-207 and the rest. The README's DukeMTMC-reID adaptation figures::

    python scripts/negative_band.py DukeMTMC-reID --model default
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from reid_edge.backends import load_backend
from reid_edge.datasets import read_market_layout
from reid_edge.errors import ReidEdgeError
from reid_edge.evaluation import extract_features
from reid_edge.models import resolve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="Market-layout dataset root (its bounding_box_train/ is ranked)")
    ap.add_argument("--model", default=None, help="model file or packaged name (default: the packaged default)")
    ap.add_argument("--m", type=int, default=500, help="hard negatives after the K positives (default 500)")
    ap.add_argument("--lambda-c", type=float, default=0.05)
    ap.add_argument("--anchors", type=int, default=3000)
    args = ap.parse_args(argv)
    try:
        train = read_market_layout(args.root).train
        if not train:
            raise ReidEdgeError(f"{args.root} has no bounding_box_train/ crops")
        global_, _ = extract_features(load_backend(resolve(args.model), device="cpu"), train)
    except ReidEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    g = torch.tensor(global_, dtype=torch.float64)  # unit rows
    pid = torch.tensor([s.pid for s in train])
    cam = torch.tensor([s.camid for s in train])
    torch.manual_seed(0)
    anchors = torch.randperm(len(train))[:args.anchors]
    ks = (1, 7, 15, 30)
    prec: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    band: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    # where the K = 7 band's same-person crops sit: ranks 8-57, 58-107, 108-207, 208-(7 + M)
    edges = [e for e in (7, 57, 107, 207) if e < 7 + args.m] + [7 + args.m]
    bins: list[list[torch.Tensor]] = [[] for _ in edges[1:]]
    total = []
    for s in range(0, len(anchors), 500):
        idx = anchors[s:s + 500]
        d = 2 - 2 * g[idx] @ g.t() + args.lambda_c * (cam[idx][:, None] == cam[None]).double()
        d[torch.arange(len(idx)), idx] = float("inf")
        same = pid[d.argsort(1)[:, :max(ks) + args.m]] == pid[idx][:, None]
        for k in ks:
            prec[k].append(same[:, :k].double().mean(1))
            band[k].append(same[:, k:k + args.m].sum(1).double())
        for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
            bins[i].append(same[:, lo:hi].double())
        total.append((pid[None] == pid[idx][:, None]).sum(1).double() - 1)
    print(f"{len(train)} crops, {len(anchors)} anchors; other crops of the anchor's person: "
          f"{torch.cat(total).mean():.1f} on average")
    for k in ks:
        print(f"K {k:>2}: precision of the K nearest {torch.cat(prec[k]).mean():.3f}, "
              f"of the person's crops in ranks {k + 1}-{k + args.m}: {torch.cat(band[k]).mean():.1f}")
    for (lo, hi), rows in zip(zip(edges, edges[1:]), bins):
        b = torch.cat(rows)
        print(f"ranks {lo + 1}-{hi}: {b.sum(1).mean():.2f} of the person's crops per anchor (precision {b.mean():.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
