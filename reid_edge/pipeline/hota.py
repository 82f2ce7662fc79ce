"""HOTA (Luiten et al., IJCV 2021): detection, association and localisation accuracy in one number.

The algorithm of TrackEval's ``trackeval/metrics/hota.py`` (MIT), on plain arrays:

1. every frame, each ground-truth/prediction pair gets a soft alignment ``IoU / (row sum + column
   sum - IoU)``; summed over the sequence and normalised by the two ids' detection counts, this
   is the *global alignment score* of the id pair;
2. every frame, the Hungarian assignment maximises ``global alignment x IoU``; for each
   localisation threshold alpha in 0.05, 0.10, ..., 0.95 the assigned pairs with IoU >= alpha
   are true positives;
3. per alpha: ``DetA = TP / (TP + FN + FP)``; ``AssA`` = mean over TPs of the matched id pair's
   ``TPA / (TPA + FNA + FPA)`` (association Jaccard over the whole sequence);
   ``HOTA = sqrt(DetA * AssA)``; ``LocA`` = mean IoU of the TPs;
4. the reported numbers are the means over the 19 alphas.

Inputs are the same as for MOTA (ground truth with its consider flag already applied); unlike
TrackEval's MOTChallenge loader, predictions on distractor classes are not removed first (no
class labels are read), which is also what the MOTA here does. Checked against TrackEval 1.3.0
on PETS09-S2L1 in ``tests/test_hota.py``.
"""

from __future__ import annotations

import numpy as np

from .motfile import Tracks
from .tracker import iou_matrix

ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo(float).eps


def _remap(frames: list[Tracks]) -> tuple[dict[int, int], int]:
    ids = sorted({int(i) for tracks in frames for ids, _ in tracks.values() for i in ids})
    return {i: k for k, i in enumerate(ids)}, len(ids)


def hota(gt: Tracks, pred: Tracks) -> dict[str, float]:
    """HOTA, DetA, AssA, LocA (and DetRe/DetPr/AssRe/AssPr) of one sequence.

    Args:
        gt, pred: ``{frame: (ids [N], boxes [N, 4] x, y, w, h)}`` (see :mod:`.motfile`).
    Returns:
        The alpha-averaged metrics, each in [0, 1]; HOTA of a perfect prediction is 1 and of an
        empty one 0.
    """
    gmap, ng = _remap([gt])
    pmap, npr = _remap([pred])
    frames = sorted(set(gt) | set(pred))
    empty = (np.zeros(0, np.int64), np.zeros((0, 4)))
    per_frame = []
    potential = np.zeros((ng, npr))
    gt_count = np.zeros((ng, 1))
    pr_count = np.zeros((1, npr))
    for f in frames:
        gi, gb = gt.get(f, empty)
        pi, pb = pred.get(f, empty)
        g = np.array([gmap[int(i)] for i in gi], dtype=np.int64)
        p = np.array([pmap[int(i)] for i in pi], dtype=np.int64)
        sim = iou_matrix(gb, pb)
        per_frame.append((g, p, sim))
        if len(g) and len(p):
            denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
            soft = np.where(denom > _EPS, sim / np.maximum(denom, _EPS), 0.0)
            np.add.at(potential, (g[:, None], p[None, :]), soft)  # type: ignore[arg-type]  # numpy stubs: no tuple index
        np.add.at(gt_count[:, 0], g, 1)
        np.add.at(pr_count[0], p, 1)
    n_gt, n_pr = float(gt_count.sum()), float(pr_count.sum())
    names = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")
    if n_gt == 0 or n_pr == 0:
        perfect = n_gt == 0 and n_pr == 0
        return {k: (1.0 if perfect or k == "LocA" else 0.0) for k in names}
    from scipy.optimize import linear_sum_assignment

    align = potential / np.maximum(gt_count + pr_count - potential, _EPS)
    tp = np.zeros(len(ALPHAS))
    loc = np.zeros(len(ALPHAS))
    matches = np.zeros((len(ALPHAS), ng, npr))
    for g, p, sim in per_frame:
        if len(g) == 0 or len(p) == 0:
            continue
        rows, cols = linear_sum_assignment(-(align[g[:, None], p[None, :]] * sim))
        s = sim[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            ok = s >= alpha - _EPS
            tp[a] += ok.sum()
            loc[a] += s[ok].sum()
            np.add.at(matches[a], (g[rows[ok]], p[cols[ok]]), 1)
    fn, fp = n_gt - tp, n_pr - tp
    ass_a = np.array([(m * m / np.maximum(1, gt_count + pr_count - m)).sum() for m in matches]) / np.maximum(1, tp)
    ass_re = np.array([(m * m / np.maximum(1, gt_count)).sum() for m in matches]) / np.maximum(1, tp)
    ass_pr = np.array([(m * m / np.maximum(1, pr_count)).sum() for m in matches]) / np.maximum(1, tp)
    det_a = tp / np.maximum(1, tp + fn + fp)
    out = {
        "HOTA": np.sqrt(det_a * ass_a), "DetA": det_a, "AssA": ass_a,
        "LocA": np.maximum(1e-10, loc) / np.maximum(1e-10, tp),
        "DetRe": tp / np.maximum(1, tp + fn), "DetPr": tp / np.maximum(1, tp + fp), "AssRe": ass_re, "AssPr": ass_pr,
    }
    return {k: float(np.mean(v)) for k, v in out.items()}
