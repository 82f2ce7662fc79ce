"""Choose a model's cross-camera match gate without test labels, from a labelled TRAINING split.

The pipeline matches a tracklet's appearance (the normalized mean of its crops' embeddings) with
each identity's appearance, and accepts the closest one under the gate ``max_distance``
(Euclidean distance between unit vectors, 0..2). This script imitates that on the training split
of a re-ID dataset (Market-1501 ``bounding_box_train/``: never its query/gallery): every
(identity, camera) group of crops becomes one "tracklet" appearance; pairs of the same identity
seen by different cameras are the matches the gate should accept, pairs of different identities
the ones it should refuse. The gate is the threshold that maximizes Youden's J (accept rate of
matches minus accept rate of non-matches); the script prints the distributions around it.

    python -m benchmarks.match_gate --model default --data /data/market1501 --ids 200 --json gate.json

The chosen value goes into the model card (``match_gate``; ``scripts/import_intel_models.py`` for
the packaged models), where ``reid-edge run`` reads it when no ``--max-distance`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def choose_gate(pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    """Threshold maximizing ``TPR - FPR`` (accept ``d <= gate``) over all observed distances."""
    pos, neg = np.sort(np.asarray(pos, np.float64)), np.sort(np.asarray(neg, np.float64))
    if not len(pos) or not len(neg):
        raise ValueError("need both matching and non-matching pairs")
    cands = np.unique(np.concatenate([pos, neg]))
    tpr = np.searchsorted(pos, cands, side="right") / len(pos)
    fpr = np.searchsorted(neg, cands, side="right") / len(neg)
    best = int(np.argmax(tpr - fpr))
    return {"gate": float(cands[best]), "tpr": float(tpr[best]), "fpr": float(fpr[best]),
            "pos_median": float(np.median(pos)), "neg_median": float(np.median(neg)),
            "neg_p1": float(np.percentile(neg, 1)), "pos_p99": float(np.percentile(pos, 99))}


def tracklet_appearances(model: str, root: Path, ids: int, per_group: int, seed: int = 0,
                         log: Any = print) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(appearances [T, D], pids [T], cams [T])`` of (identity, camera) groups of the training split."""
    from reid_edge.datasets import read_market_layout
    from reid_edge.models import load_model
    from reid_edge.preprocess import read_bgr

    train = read_market_layout(root).train
    if not train:
        raise SystemExit(f"{root} has no bounding_box_train/")
    rng = np.random.default_rng(seed)
    pids = sorted({s.pid for s in train})
    chosen = set(rng.choice(pids, size=min(ids, len(pids)), replace=False).tolist())
    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for s in train:
        if s.pid in chosen:
            groups[(s.pid, s.camid)].append(s.path)
    backend = load_model(model, device="cpu")
    apps, g_pids, g_cams = [], [], []
    for n, ((pid, cam), paths) in enumerate(sorted(groups.items())):
        paths = paths[:per_group]
        emb = backend.embed([read_bgr(p) for p in paths], batch_size=32).global_.astype(np.float64)
        mean = emb.mean(0)
        apps.append(mean / max(np.linalg.norm(mean), 1e-12))
        g_pids.append(pid)
        g_cams.append(cam)
        if n % 100 == 0:
            log(f"  {n}/{len(groups)} groups")
    backend.close()
    return np.stack(apps), np.array(g_pids), np.array(g_cams)


def clip_tracklets(model: str, run_dir: Path, videos: dict[str, Path], per_tracklet: int = 6,
                   min_rows: int = 8) -> list[dict[str, Any]]:
    """Appearances of the tracklets a ``reid-edge run`` wrote (``events.jsonl`` + ``<camera>.txt``).

    A tracklet's rows are its camera file's rows with its global id inside its frame range (one
    identity never owns two overlapping tracklets of one camera). Up to ``per_tracklet`` boxes,
    evenly spaced, are cropped from the video and embedded; the appearance is their normalized mean.
    """
    import cv2

    from reid_edge.models import load_model

    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    backend = load_model(model, device="cpu")
    out = []
    for cam, video in videos.items():
        rows = np.loadtxt(run_dir / f"{cam}.txt", delimiter=",", ndmin=2)
        wanted: dict[int, list[tuple[int, tuple[float, ...]]]] = defaultdict(list)
        tracklets: list[tuple[dict[str, Any], int]] = []
        for ev in events:
            if ev["camera"] != cam or ev["rows"] < min_rows:
                continue
            sel = rows[(rows[:, 1] == ev["global_id"]) & (rows[:, 0] >= ev["first_frame"])
                       & (rows[:, 0] <= ev["last_frame"])]
            picks = sel[np.linspace(0, len(sel) - 1, min(per_tracklet, len(sel))).astype(int)]
            tracklets.append((ev, len(tracklets)))
            for r in picks:
                wanted[int(r[0])].append((len(tracklets) - 1, tuple(r[2:6])))
        crops: dict[int, list[np.ndarray]] = defaultdict(list)
        cap = cv2.VideoCapture(str(video))
        frame_no = 0
        while wanted:
            ok, frame = cap.read()
            if not ok:
                break
            frame_no += 1  # MOT frames are 1-based
            for idx, (x, y, w, h) in wanted.pop(frame_no, []):
                x0, y0 = max(int(x), 0), max(int(y), 0)
                crop = frame[y0:int(y + h), x0:int(x + w)]
                if crop.size:
                    crops[idx].append(crop)
        cap.release()
        for ev, idx in tracklets:
            if not crops[idx]:
                continue
            emb = backend.embed(crops[idx]).global_.astype(np.float64).mean(0)
            out.append({"camera": cam, "start": ev["first_s"], "end": ev["last_s"],
                        "appearance": emb / max(np.linalg.norm(emb), 1e-12)})
    backend.close()
    return out


def impossible_pairs(tracklets: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Distances of pairs that cannot be one person (same camera, overlapping in time) and of the
    pairs from different cameras (here: different scenes, so also never one person)."""
    from reid_edge.distance import euclidean

    apps = np.stack([t["appearance"] for t in tracklets])
    dist = euclidean(apps, apps)
    same_cam, cross = [], []
    for i in range(len(tracklets)):
        for j in range(i + 1, len(tracklets)):
            a, b = tracklets[i], tracklets[j]
            if a["camera"] == b["camera"]:
                if a["start"] <= b["end"] and b["start"] <= a["end"]:
                    same_cam.append(dist[i, j])
            else:
                cross.append(dist[i, j])
    return np.array(same_cam), np.array(cross)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="Model file or packaged name.")
    parser.add_argument("--data", type=Path, required=True, help="Market-layout dataset (bounding_box_train/ is read).")
    parser.add_argument("--ids", type=int, default=200, help="Training identities to sample.")
    parser.add_argument("--per-group", type=int, default=8, help="Crops averaged per (identity, camera) group.")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--at", nargs="*", type=float, default=[], help="Also report TPR/FPR at these gates.")
    parser.add_argument("--run", type=Path, default=None, help="Also check the gate on a `reid-edge run` output "
                        "folder: distances of tracklet pairs that cannot be one person.")
    parser.add_argument("--videos", nargs="*", type=Path, default=[], help="The run's videos (camera = file stem).")
    args = parser.parse_args(argv)
    from reid_edge.distance import euclidean

    apps, pids, cams = tracklet_appearances(args.model, args.data, args.ids, args.per_group,
                                            log=lambda m: print(m, file=sys.stderr, flush=True))
    dist = euclidean(apps, apps)
    iu = np.triu_indices(len(apps), k=1)
    same = pids[iu[0]] == pids[iu[1]]
    cross = cams[iu[0]] != cams[iu[1]]
    d = dist[iu]
    result = {"model": args.model, "data": str(args.data), "split": "bounding_box_train", "ids": args.ids,
              "per_group": args.per_group, "groups": len(apps), "positives": int((same & cross).sum()),
              "negatives": int((~same & cross).sum()), **choose_gate(d[same & cross], d[~same & cross])}
    pos, neg = d[same & cross], d[~same & cross]
    result["at"] = {f"{g:g}": {"tpr": float((pos <= g).mean()), "fpr": float((neg <= g).mean())} for g in args.at}
    if args.run is not None:
        tracklets = clip_tracklets(args.model, args.run, {v.stem: v for v in args.videos})
        same_cam, cross = impossible_pairs(tracklets)
        gate = result["gate"]
        result["clips"] = {
            "run": str(args.run), "tracklets": len(tracklets),
            "overlapping_same_camera_pairs": len(same_cam),
            "overlapping_under_gate": float((same_cam <= gate).mean()) if len(same_cam) else None,
            "overlapping_p1": float(np.percentile(same_cam, 1)) if len(same_cam) else None,
            "overlapping_p5": float(np.percentile(same_cam, 5)) if len(same_cam) else None,
            "overlapping_median": float(np.median(same_cam)) if len(same_cam) else None,
            "cross_scene_pairs": len(cross),
            "cross_scene_under_gate": float((cross <= gate).mean()) if len(cross) else None,
            "cross_scene_p1": float(np.percentile(cross, 1)) if len(cross) else None,
            "at": {f"{g:g}": {"overlapping_under": float((same_cam <= g).mean()) if len(same_cam) else None,
                              "cross_scene_under": float((cross <= g).mean()) if len(cross) else None}
                   for g in args.at},
        }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        from reid_edge.io import atomic_write_text
        atomic_write_text(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
