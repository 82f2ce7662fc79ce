"""Does each part of the method earn its place on real data? A reduced-budget ablation.

Every variant trains from the same initialisation with the same seed, data, epochs and batch size,
and changes one thing against the method's defaults (K 7, adaptive hard negatives, lambda_c 0.05,
global + stripe branches, float64 selection):

    k1            K = 1 positive instead of 7
    random-neg    the M negatives drawn at random (positives selected as usual)
    lc0 / lc0.5 / lc1.0   the same-camera penalty lambda_c
    no-stripes    global branch only: lambda_p 0 (no stripe loss), lambda_g 1 (global distance only)
    float32       float32 selection distances and banks instead of float64
    start         no training at all: the initialisation, evaluated the same way (the baseline)

The budget is reduced by training on every ``--ids-every``-th identity of ``bounding_box_train``
(the subset is chosen by file name when the folder of links is built; training itself reads no
label) and, optionally, testing on every ``--test-every``-th identity of the test split (queries
and gallery alike; distractors and junk thinned by the same step). Each variant is evaluated once,
after its last epoch; finished variants are kept (``result.json``) and an interrupted one resumes
from its checkpoint, so the command can simply be re-run::

    OMP_WAIT_POLICY=PASSIVE nohup python -m benchmarks.ablation --data /data/market1501 --out /scratch/ablation &
    python -m benchmarks.ablation --data /data/market1501 --out /scratch/ablation --only default k1

Datasets are never shipped or needed by tests; pass them with --data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from reid_edge.datasets import market_pid as person_id
from reid_edge.io import atomic_write_text

# name -> (what changes, TrainConfig.method overrides, other TrainConfig overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "start": ("no training: the initialisation itself, evaluated the same way", {}, {}),
    "default": ("the method as published (K 7, hard negatives, lambda_c 0.05, stripes, float64)", {}, {}),
    "k1": ("K = 1 positive", {"k": 1}, {}),
    "random-neg": ("random negatives", {"negatives": "random"}, {}),
    "lc0": ("lambda_c = 0", {"lambda_c": 0.0}, {}),
    "lc0.5": ("lambda_c = 0.5", {"lambda_c": 0.5}, {}),
    "lc1.0": ("lambda_c = 1.0", {"lambda_c": 1.0}, {}),
    # the untrained stripe heads stay in the network: evaluate the global embedding alone
    "no-stripes": ("no stripe branch (lambda_p 0, lambda_g 1; global distance at test)",
                   {"lambda_p": 0.0, "lambda_g": 1.0}, {"eval_distance": "global"}),
    "float32": ("float32 selection", {"selection_dtype": "float32"}, {}),
    # an extension, not the paper: rank after taking each camera's mean bank entry away
    "camera-centre": ("camera-centred selection (extension)", {"camera_centre": True}, {}),
}
SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def build_subset(root: Path, out: Path, ids_every: int, test_every: int) -> Path:
    """A Market-layout folder of links: every ``ids_every``-th training identity, every
    ``test_every``-th test identity. Rebuilt only when absent."""
    done = out / ".complete"
    if done.is_file():
        return out
    for split in SPLITS:
        src = root / split
        if not src.is_dir():
            raise SystemExit(f"error: {src} is missing (need a Market-layout dataset)")
        dst = out / split
        dst.mkdir(parents=True, exist_ok=True)
        step = ids_every if split == "bounding_box_train" else test_every
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for i, p in enumerate(files):
            pid = person_id(p.name)
            if pid is None:
                continue
            keep = (pid % step == 0) if pid > 0 else (i % step == 0)  # 0000 distractors, -1 junk: thinned
            if keep and not (dst / p.name).exists():
                os.symlink(p.resolve(), dst / p.name)
    done.write_text(json.dumps({"ids_every": ids_every, "test_every": test_every}))
    return out


def run_variant(name: str, base: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train and evaluate one variant of :data:`VARIANTS` (or return its stored result)."""
    from reid_edge.artifacts import LAST_CHECKPOINT
    from reid_edge.config import from_dict
    from reid_edge.train.config import TrainConfig
    from reid_edge.train.trainer import Trainer

    run_dir = out / name
    result_file = run_dir / "result.json"
    if result_file.is_file():
        return dict(json.loads(result_file.read_text()))
    _, method, other = VARIANTS[name]
    cfg = from_dict(TrainConfig, {**base, **other, "out": str(run_dir),
                                  "method": {**base.get("method", {}), **method}})
    t0 = time.time()
    trainer = Trainer(cfg, resume=(run_dir / LAST_CHECKPOINT).is_file(),
                      log=lambda m: print(f"[{name}] {m}", file=sys.stderr, flush=True), show_progress=False)
    try:
        if name == "start":  # what training starts from: the gains below are measured against it
            ev = trainer.evaluate()
            last = {"mAP": ev.mAP, "rank1": ev.rank(1), "rank5": ev.rank(5)}
            history: list[dict[str, Any]] = []
        else:
            history = trainer.run().history
            last = [r for r in history if r.get("mAP") is not None][-1]
    finally:
        trainer.close()
    row = {"variant": name, "mAP": last["mAP"], "rank1": last["rank1"], "rank5": last["rank5"],
           "train_seconds": sum(float(r["seconds"]) for r in history),
           "wall_seconds_this_call": time.time() - t0, "epochs": cfg.epochs if history else 0}
    atomic_write_text(result_file, json.dumps(row, indent=1))
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | change | mAP | rank-1 | rank-5 | training s |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['variant']} | {VARIANTS[r['variant']][0]} | {100 * r['mAP']:.1f} | "
                     f"{100 * r['rank1']:.1f} | {100 * r['rank5']:.1f} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Market-layout dataset root")
    ap.add_argument("--out", type=Path, required=True, help="folder for the subset links and every variant's run")
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--ids-every", type=int, default=4, help="train on every k-th identity (default 4)")
    ap.add_argument("--test-every", type=int, default=1, help="test on every k-th identity (default 1: full split)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--warmup-epochs", type=int, default=2)
    ap.add_argument("--backbone", default="mobilenetv2")
    ap.add_argument("--pretrained", default="imagenet", help="imagenet, a weights file, or none (random init)")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--embed-dim", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from reid_edge.errors import ReidEdgeError

    if args.ids_every < 1 or args.test_every < 1:
        print("error: --ids-every and --test-every must be >= 1", file=sys.stderr)
        return 2
    data = build_subset(args.data, args.out / "data", args.ids_every, args.test_every)
    pretrained = None if args.pretrained == "none" else args.pretrained
    base = {"data": str(data), "format": "market1501", "backbone": args.backbone, "pretrained": pretrained,
            "epochs": args.epochs, "height": args.height, "width": args.width, "embed_dim": args.embed_dim,
            "eval_every": args.epochs, "seed": args.seed, "method": {"warmup_epochs": args.warmup_epochs}}
    rows = []
    try:
        for name in args.only:
            rows.append(run_variant(name, base, args.out))
            print(format_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    except ReidEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"settings": vars(args), "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
