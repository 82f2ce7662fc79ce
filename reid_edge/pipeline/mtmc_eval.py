"""Multi-camera tracking evaluation: per-camera and cross-camera HOTA (:mod:`.hota`) and MOTA/IDF1 (motmetrics).

HOTA is threshold-free (averaged over IoU 0.05-0.95); the CLEAR-MOT/ID metrics use one IoU gate.
Cross-camera IDF1 and HOTA follow the usual MTMC protocol (DukeMTMC, AI City): every camera's frames
are concatenated into one long sequence with per-camera frame offsets, and ids are global on
both sides, so a person who keeps one id across cameras is counted as one identity match.
Boxes match at IoU >= 0.5.

motmetrics 1.4's ``distances.iou_matrix`` calls ``np.asfarray``, gone in numpy 2; the IoU
distance matrix is computed here instead (:func:`iou_distance`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .hota import hota
from .motfile import Tracks, read_mot_tracks
from .tracker import iou_matrix

METRICS = ("mota", "motp", "idf1", "idp", "idr", "precision", "recall", "num_switches",
           "num_false_positives", "num_misses", "num_objects", "num_unique_objects")
SKIP_FILES = {"mtmc.txt"}


def iou_distance(gt_boxes: np.ndarray, pred_boxes: np.ndarray, min_iou: float = 0.5) -> np.ndarray:
    """``1 - IoU`` with ``nan`` (no match allowed) where IoU < ``min_iou``."""
    d = 1.0 - iou_matrix(gt_boxes, pred_boxes)
    d[d > 1.0 - min_iou] = np.nan
    return d


def find_gt_files(gt_dir: str | Path) -> dict[str, Path]:
    """``{camera: path}`` from ``<cam>.gt.txt`` files, or MOT ``<cam>/gt/gt.txt`` folders."""
    d = Path(gt_dir)
    if not d.is_dir():
        raise DataError(f"ground-truth folder {d} does not exist")
    found = {p.name[: -len(".gt.txt")]: p for p in sorted(d.glob("*.gt.txt"))}
    for p in sorted(d.glob("*/gt/gt.txt")):
        found.setdefault(p.parent.parent.name, p)
    if not found:
        raise DataError(f"no ground truth in {d} (expected <camera>.gt.txt or <camera>/gt/gt.txt)")
    return found


def find_pred_files(pred_dir: str | Path) -> dict[str, Path]:
    """``{camera: path}`` of the pipeline's per-camera ``<camera>.txt`` files."""
    d = Path(pred_dir)
    if not d.is_dir():
        raise DataError(f"prediction folder {d} does not exist")
    return {p.stem: p for p in sorted(d.glob("*.txt"))
            if p.name not in SKIP_FILES and not p.name.endswith((".gt.txt", ".det.txt"))}


def _accumulate(accs: list[tuple[Any, int]], gt: Tracks,
                pred: Tracks, min_iou: float) -> int:
    """Feed every frame to each ``(accumulator, frame-id offset)``; the IoU matrix is computed once
    per frame (motmetrics copies it). Returns the last frame number."""
    empty = (np.zeros(0, np.int64), np.zeros((0, 4)))
    frames = sorted(set(gt) | set(pred))
    for f in frames:
        gi, gb = gt.get(f, empty)
        pi, pb = pred.get(f, empty)
        dist = iou_distance(gb, pb, min_iou)
        for acc, offset in accs:
            acc.update(gi.tolist(), pi.tolist(), dist, frameid=f + offset)
    return max(frames) if frames else 0


def _metrics(accs: list[Any], names: list[str]) -> dict[str, dict[str, float]]:
    import motmetrics as mm

    mh = mm.metrics.create()
    df = mh.compute_many(accs, metrics=list(METRICS), names=names, generate_overall=False)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        row = df.loc[name]
        out[name] = {m: (float(row[m]) if np.isfinite(row[m]) else float("nan")) for m in METRICS}
    return out


def _hota_keys(m: dict[str, float]) -> dict[str, float]:
    return {"hota": m["HOTA"], "deta": m["DetA"], "assa": m["AssA"], "loca": m["LocA"]}


def evaluate_mtmc(pred_dir: str | Path, gt_dir: str | Path, min_iou: float = 0.5) -> dict[str, Any]:
    """Per-camera and cross-camera metrics of a pipeline output folder against ground truth.

    Returns:
        ``{"cameras": {cam: metrics}, "cross_camera": metrics, "missing_predictions": [...]}``;
        metrics hold HOTA, DetA, AssA, LocA (over IoU thresholds 0.05-0.95, see :mod:`.hota`) and,
        at ``min_iou``, MOTA, MOTP, IDF1, IDP, IDR, precision, recall, switches, FP, misses.
    Raises:
        DataError: a folder is missing, holds no ground truth, or no camera has predictions.
    """
    import motmetrics as mm

    gts = find_gt_files(gt_dir)
    preds = find_pred_files(pred_dir)
    common = [c for c in gts if c in preds]
    if not common:
        raise DataError(f"no camera of {sorted(gts)} (ground truth) has a prediction file in {pred_dir}")
    missing = [c for c in gts if c not in preds]
    per_cam_accs, cross = [], mm.MOTAccumulator(auto_id=False)
    offset = 0
    hotas: dict[str, dict[str, float]] = {}
    cross_gt: Tracks = {}
    cross_pred: Tracks = {}
    for cam in gts:
        gt = read_mot_tracks(gts[cam], is_gt=True)
        pred = read_mot_tracks(preds[cam]) if cam in preds else {}
        acc = mm.MOTAccumulator(auto_id=False)
        last = _accumulate([(acc, 0), (cross, offset)], gt, pred, min_iou)
        per_cam_accs.append(acc)
        hotas[cam] = hota(gt, pred)
        cross_gt.update({f + offset: v for f, v in gt.items()})
        cross_pred.update({f + offset: v for f, v in pred.items()})
        offset += last + 1
    names = list(gts)
    per_cam = _metrics(per_cam_accs, names)
    for cam in names:
        per_cam[cam].update(_hota_keys(hotas[cam]))
    cross_m = _metrics([cross], ["cross_camera"])["cross_camera"]
    cross_m.update(_hota_keys(hota(cross_gt, cross_pred)))
    return {"cameras": per_cam, "cross_camera": cross_m, "missing_predictions": missing, "min_iou": min_iou}
