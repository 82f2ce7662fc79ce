"""Re-ID models side by side on full re-ID test splits: mAP, rank-1/5/10 and mINP (Market protocol).

Embeds query/ and bounding_box_test/ of each dataset with each model through the Backend
protocol and the shared preprocessing (exactly what ``reid-edge eval --distance global`` does),
caches the embeddings (keyed by model file hash and dataset fingerprint) so that metrics can be
recomputed without re-embedding, and prints one table. ``hsv`` is a colour-histogram baseline.

``--camera-centre`` also ranks each model after per-camera centring (``reid-edge eval
--camera-centre``), an adaptation to a site that needs no training and no labels: the mean
embedding of each camera over the dataset's ``bounding_box_train/`` crops (camera ids from the
file names; identities unused) is subtracted from that camera's query and gallery
embeddings, which are then renormalised. ``reid-edge run`` does not do this (yet): its gates are
calibrated on plain embeddings.

    python -m benchmarks.reid_models --data market1501=/data/market1501 --data dukemtmc=/data/dukemtmc \\
        --models default intel-0277 hsv --cache /tmp/reid-emb --json reid_models.json
    python -m benchmarks.reid_models --data dukemtmc=/data/dukemtmc --models default --camera-centre

Datasets are never shipped or needed by tests; pass them with --data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _read_split(root: Path) -> tuple[str, list[Any], list[Any]]:
    from reid_edge.evaluation import read_test_split

    return read_test_split(root)


def _embed(model: str, samples: list[Any], cache: Path | None, key: str, log: Any) -> np.ndarray:
    from reid_edge.preprocess import read_bgr

    if cache is not None and (cache / f"{key}.npy").is_file():
        return np.load(cache / f"{key}.npy")
    start = time.perf_counter()
    if model == "hsv":
        from reid_edge.synth.baseline import hsv_histogram_features

        feats = hsv_histogram_features([read_bgr(s.path) for s in samples])
    else:
        from reid_edge.evaluation import extract_features
        from reid_edge.models import load_model

        done = 0

        def progress(n: int) -> None:
            nonlocal done
            if (done + n) // 2560 > done // 2560:
                log(f"  {key}: {done + n}/{len(samples)} crops, {time.perf_counter() - start:.0f} s")
            done += n

        backend = load_model(model, device="cpu")
        try:
            feats = extract_features(backend, samples, batch_size=32, progress=progress)[0]
        finally:
            backend.close()
    log(f"  {key}: {len(samples)} crops in {time.perf_counter() - start:.0f} s")
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / f"{key}.npy", feats)
    return feats


def evaluate_model(model: str, name: str, root: Path, cache: Path | None, log: Any = print,
                   gallery_every: int = 1, centre: bool = False) -> dict[str, Any]:
    """Embed (or load cached) query and gallery features of ``root`` with ``model`` and rank them.

    ``gallery_every`` > 1 keeps every n-th gallery crop (a cheaper, NOT standard split: mAP is
    higher than on the full gallery; only for comparing models on the same reduced split).
    ``centre``: per-camera centring with means from ``root/bounding_box_train`` (module docstring).
    """
    from reid_edge.card import sha256_file
    from reid_edge.datasets import dataset_fingerprint
    from reid_edge.distance import euclidean
    from reid_edge.evaluation import camera_centre, camera_means
    from reid_edge.metrics import evaluate_rank
    from reid_edge.models import resolve

    fmt, query, gallery = _read_split(root)
    gallery = gallery[::gallery_every]
    model_key = "hsv" if model == "hsv" else sha256_file(resolve(model))[:16]
    feats = {}
    for split, samples in (("query", query), ("gallery", gallery)):
        key = f"{model_key}_{dataset_fingerprint(samples, root)[:16]}"
        feats[split] = _embed(model, samples, cache, key, log)
    if centre:
        from reid_edge.datasets import read_market_layout

        train = read_market_layout(root).train
        if not train:
            raise ValueError(f"--camera-centre needs the training crops: {root} has no bounding_box_train/")
        tfeats = _embed(model, train, cache, f"{model_key}_{dataset_fingerprint(train, root)[:16]}", log)
        means = camera_means(tfeats, np.array([s.camid for s in train]))
        for split, samples in (("query", query), ("gallery", gallery)):
            feats[split] = camera_centre(feats[split], np.array([s.camid for s in samples]), means)
    dist = euclidean(feats["query"], feats["gallery"])  # unit vectors: ranks as cosine distance
    m = evaluate_rank(dist, np.array([s.pid for s in query]), np.array([s.pid for s in gallery]),
                      np.array([s.camid for s in query]), np.array([s.camid for s in gallery]))
    return {"model": model, "dataset": name, "format": fmt, "gallery_every": gallery_every, "camera_centre": centre,
            "num_query": len(query), "num_gallery": len(gallery),
            "num_valid_queries": m.num_valid, "mAP": m.mAP, "rank1": float(m.cmc[0]), "rank5": float(m.cmc[4]),
            "rank10": float(m.cmc[9]), "mINP": m.mINP}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="NAME=PATH of a Market-layout test split.")
    parser.add_argument("--models", nargs="+", default=["default"], help="Model files, packaged names, or hsv.")
    parser.add_argument("--cache", type=Path, default=None, help="Folder for cached embeddings (.npy).")
    parser.add_argument("--json", type=Path, default=None, help="Write the rows here.")
    parser.add_argument("--gallery-every", type=int, default=1,
                        help="Keep every n-th gallery crop (not the standard split; same for every model).")
    parser.add_argument("--camera-centre", action="store_true",
                        help="Also rank each model after per-camera centring (means from bounding_box_train).")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from reid_edge.io import atomic_write_text

    rows = []
    for spec in args.data:
        name, _, path = spec.partition("=")
        for model in args.models:
            log(f"{model} on {name} ({path})")
            for centre in (False, True) if args.camera_centre else (False,):
                try:
                    rows.append(evaluate_model(model, name, Path(path), args.cache, log, args.gallery_every, centre))
                except ValueError as exc:
                    log(f"error: {exc}")
                    return 2
                r = rows[-1]
                log(f"  {'camera-centred ' if centre else ''}mAP {100 * r['mAP']:.1f} rank-1 {100 * r['rank1']:.1f} "
                    f"mINP {100 * r['mINP']:.1f}")
                if args.json is not None:
                    atomic_write_text(args.json, json.dumps(rows, indent=2))
    print(f"{'model':<28} {'dataset':<12} {'query':>6} {'gallery':>7} {'mAP':>6} {'rank-1':>6} {'rank-5':>6} "
          f"{'mINP':>6}")
    for r in rows:
        label = Path(r["model"]).name + (" +centre" if r["camera_centre"] else "")
        print(f"{label:<28} {r['dataset']:<12} {r['num_query']:>6} {r['num_gallery']:>7} "
              f"{100 * r['mAP']:6.1f} {100 * r['rank1']:6.1f} {100 * r['rank5']:6.1f} {100 * r['mINP']:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
