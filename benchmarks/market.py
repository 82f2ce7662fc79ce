"""Fully unsupervised Market-1501 (or any Market-layout set): accuracy against epochs and wall time.

Trains on ``bounding_box_train`` with the selective contrastive method (no identity label is read
for training), evaluates the starting point once (epoch 0) and then every ``--eval-every`` epochs
on ``query`` / ``bounding_box_test``, and writes ``curve.csv`` in the run folder: one row per
evaluated epoch with mAP, rank-1/5/10, the training and evaluation seconds and their running total
(so an interrupted run continued with ``--resume`` keeps one curve). Every epoch is checkpointed
and the curve rewritten, so an interruption keeps both up to the last finished epoch.

    OMP_WAIT_POLICY=PASSIVE nohup nice -n 10 python -m benchmarks.market --data /data/market1501 \\
        --out /scratch/market-r50 --backbone resnet50 --pretrained imagenet --epochs 12 --eval-every 2 &
    python -m benchmarks.market --out /scratch/market-r50 --resume            # after an interruption
    python -m benchmarks.market --data /data/dukemtmc --out /scratch/duke --backbone intel-0288 --embed-dim 256

The dataset is never shipped or needed by tests; pass it with --data.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

CURVE_FILE = "curve.csv"
START_FILE = "start.json"
CURVE_COLUMNS = ("epoch", "mAP", "rank1", "rank5", "rank10", "train_seconds", "eval_seconds",
                 "total_train_seconds", "total_seconds")


def curve_rows(start: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epoch-0 row from ``start`` and one row per evaluated epoch of the trainer's history.

    ``total_seconds`` adds the set-up (bank initialisation), every epoch's training and every
    evaluation before that row; ``total_train_seconds`` counts training epochs only.
    """
    rows = [{"epoch": 0, **{k: start.get(k) for k in ("mAP", "rank1", "rank5", "rank10")},
             "train_seconds": 0.0, "eval_seconds": start["eval_seconds"], "total_train_seconds": 0.0,
             "total_seconds": start["setup_seconds"] + start["eval_seconds"]}]
    total, train_total = rows[0]["total_seconds"], 0.0
    for row in history:
        train_total += float(row["seconds"])
        evaluated = row.get("mAP") is not None
        eval_s = float(row.get("eval_seconds") or 0.0)
        total += float(row["seconds"]) + eval_s
        if evaluated:
            rows.append({"epoch": row["epoch"], **{k: row.get(k) for k in ("mAP", "rank1", "rank5", "rank10")},
                         "train_seconds": row["seconds"], "eval_seconds": eval_s,
                         "total_train_seconds": train_total, "total_seconds": total})
    return rows


def write_curve(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as CSV (atomically: an interruption keeps the previous curve)."""
    from reid_edge.io import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CURVE_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k])
                         for k in CURVE_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def run_market(cfg: Any, *, resume: bool = False, log: Any = print) -> list[dict[str, Any]]:
    """Train ``cfg`` (a :class:`~reid_edge.train.config.TrainConfig`) with the curve; returns its rows.

    Raises:
        ConfigError, DataError, CheckpointError: as :func:`reid_edge.train.trainer.train`, and a
            DataError when the data has no query/gallery split to evaluate.
    """
    from reid_edge.errors import DataError
    from reid_edge.io import atomic_write_text
    from reid_edge.train.trainer import Trainer

    run_dir = Path(cfg.out)
    start_file = run_dir / START_FILE
    t0 = time.time()
    trainer = Trainer(cfg, resume=resume, log=log, show_progress=False)
    try:
        if not trainer.data.query:
            raise DataError(f"{cfg.data} has no query/gallery split: nothing to draw a curve with")
        if not start_file.is_file():  # the starting point, measured once per run folder
            setup = time.time() - t0
            t1 = time.time()
            res = trainer.evaluate()
            start = {"mAP": res.mAP, "rank1": res.rank(1), "rank5": res.rank(5), "rank10": res.rank(10),
                     "eval_seconds": time.time() - t1, "setup_seconds": setup,
                     "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                     "cpus": _cpus(), "backbone": cfg.backbone, "pretrained": cfg.pretrained}
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(start_file, json.dumps(start, indent=2))
            log(f"epoch 0 (start): mAP {100 * res.mAP:.1f}%, rank-1 {100 * res.rank(1):.1f}%")
        start = json.loads(start_file.read_text())
        # the curve is rewritten after every epoch: an interrupted run keeps it up to its last epoch
        result = trainer.run(on_epoch=lambda history: write_curve(run_dir / CURVE_FILE, curve_rows(start, history)))
    finally:
        trainer.close()
    rows = curve_rows(start, result.history)
    write_curve(run_dir / CURVE_FILE, rows)
    return rows


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _config(args: argparse.Namespace) -> Any:
    from reid_edge.artifacts import LAST_CHECKPOINT
    from reid_edge.config import from_dict, load_yaml
    from reid_edge.train.config import TrainConfig

    overrides = {"data": args.data, "out": args.out, "backbone": args.backbone, "pretrained": args.pretrained,
                 "epochs": args.epochs, "batch_size": args.batch_size, "height": args.height, "width": args.width,
                 "embed_dim": args.embed_dim, "num_stripes": args.num_stripes, "eval_every": args.eval_every,
                 "eval_distance": args.distance, "workers": args.workers, "seed": args.seed}
    last = Path(args.out) / LAST_CHECKPOINT
    if args.resume and args.config is None and last.is_file():
        from reid_edge.train.checkpoint import load_checkpoint

        stored = dict(load_checkpoint(last)["train_config"])
        stored.update({k: v for k, v in overrides.items() if v is not None})
        return from_dict(TrainConfig, stored)
    return load_yaml(TrainConfig, args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.market", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="Market-layout dataset root (query/, bounding_box_test/, bounding_box_train/)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, start.json, curve.csv)")
    p.add_argument("--config", type=Path, help="YAML with TrainConfig keys (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--backbone")
    p.add_argument("--pretrained")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--embed-dim", type=int)
    p.add_argument("--num-stripes", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--distance", choices=("combined", "global"))
    p.add_argument("--workers", type=int)
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    from reid_edge.errors import ReidEdgeError

    try:
        cfg = _config(args)
        if not cfg.data:
            raise ReidEdgeError("no data: pass --data DIR")
        rows = run_market(cfg, resume=args.resume, log=lambda m: print(m, file=sys.stderr, flush=True))
    except ReidEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"epoch {row['epoch']:>3}: mAP {100 * row['mAP']:.1f}%, rank-1 {100 * row['rank1']:.1f}%, "
              f"{row['total_seconds'] / 60:.1f} min")
    print(f"curve: {Path(cfg.out) / CURVE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
