"""What limits unsupervised training: how often the method's selected positives are the anchor's person.

A diagnostic for a checkpoint of ``reid-edge train`` on a labelled set (Market-1501, Duke, ...):
rebuilds the training split exactly as the trainer did (same hold-out), ranks every training crop
against the checkpoint's memory banks with the method's own selection distance
(``train.method.selection_distance``, the checkpoint's lambda_g and lambda_c) and reports, for
the K nearest (the positives the next step would select):

* precision: the fraction of selected positives that show the anchor's identity;
* all-correct: the fraction of anchors whose K positives are all right;
* cross-camera: the fraction of correct positives from another camera than the anchor's;
* attainable: the fraction of anchors with at least K other crops of their identity at all.

Identity labels are read from the file names here, after training, for this measurement only;
training never reads them::

    python -m benchmarks.positive_precision --checkpoint RUN/last.pt
    python -m benchmarks.positive_precision --checkpoint RUN/epoch4.pt --k 7 --json pp.json
    python -m benchmarks.positive_precision --checkpoint RUN/last.pt --camera-centre   # the extension's ranking
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def positive_precision(checkpoint: Path, k: int | None = None, chunk: int = 512,
                       camera_centre: bool | None = None) -> dict[str, Any]:
    """The figures above for one checkpoint (``k``: the checkpoint's K when None; ``camera_centre``:
    rank with the camera-centred distance, ``method: camera_centre``; None: as the checkpoint trained)."""
    import torch

    from reid_edge.config import from_dict
    from reid_edge.train.checkpoint import load_checkpoint
    from reid_edge.train.config import TrainConfig
    from reid_edge.train.method import camera_centred_distance, rank_excluding_self, selection_distance
    from reid_edge.train.trainer import prepare_data

    ckpt = load_checkpoint(checkpoint)
    cfg = from_dict(TrainConfig, dict(ckpt["train_config"]))
    k = cfg.method.k if k is None else k
    centre = cfg.method.camera_centre if camera_centre is None else camera_centre
    distance = camera_centred_distance if centre else selection_distance
    train = prepare_data(cfg, need_eval=False).train
    banks = ckpt["method"]
    g_bank = banks["global_bank"].double()
    l_bank = banks["local_bank"].double()
    if g_bank.shape[0] != len(train):
        raise SystemExit(f"error: the banks hold {g_bank.shape[0]} rows, the rebuilt training split "
                         f"{len(train)}: is --data the dataset this checkpoint trained on?")
    pids = torch.tensor([s.pid for s in train])
    cams = torch.tensor([s.camid for s in train])
    if bool((pids < 0).all()):
        raise SystemExit("error: the training split has no identity labels to measure against")
    right = total = all_right = cross = 0
    for start in range(0, len(train), chunk):
        idx = torch.arange(start, min(start + chunk, len(train)))
        dist = distance(g_bank[idx], l_bank[idx], g_bank, l_bank, cams[idx], cams,
                        cfg.method.lambda_g, cfg.method.lambda_c)
        pos = rank_excluding_self(dist, idx, k)  # [b, K]
        same = (pids[pos] == pids[idx].unsqueeze(1)) & (pids[idx].unsqueeze(1) >= 0)
        right += int(same.sum())
        total += same.numel()
        all_right += int(same.all(1).sum())
        cross += int((same & (cams[pos] != cams[idx].unsqueeze(1))).sum())
    counts = np.bincount(pids.clamp(min=0).numpy())
    attainable = float(np.mean(counts[pids.clamp(min=0).numpy()] - 1 >= k))
    return {"checkpoint": str(checkpoint), "epoch": int(ckpt["epoch"]), "k": k, "camera_centre": centre,
            "anchors": len(train),
            "precision": right / max(total, 1), "all_correct": all_right / len(train),
            "cross_camera_of_correct": cross / max(right, 1), "attainable": attainable}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    ap.add_argument("--k", type=int, default=None, help="positives to check (default: the checkpoint's K)")
    ap.add_argument("--camera-centre", action="store_true",
                    help="rank with the camera-centred distance (method: camera_centre) whatever the checkpoint used")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = []
    for c in args.checkpoint:
        if not c.is_file():
            print(f"error: checkpoint {c} does not exist", file=sys.stderr)
            return 2
        rows.append(positive_precision(c, args.k, camera_centre=True if args.camera_centre else None))
    print("| checkpoint | epoch | K | camera-centred | precision of the K positives | all K right | "
          "cross-camera share of right | K attainable |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {Path(r['checkpoint']).name} | {r['epoch']} | {r['k']} | {'yes' if r['camera_centre'] else 'no'} | "
              f"{r['precision']:.3f} | "
              f"{r['all_correct']:.3f} | {r['cross_camera_of_correct']:.3f} | {r['attainable']:.3f} |")
    if args.json is not None:
        from reid_edge.io import atomic_write_text
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
