"""The detector alone against MOT15 ground truth: FP32 and both INT8 encodings, every frame.

For each sequence, ``reid-edge export-detector`` calibrates on the first half of the video (as a
site would, without labels), then the FP32 model and its ``int8-qdq-cpu`` and ``int8-qdq-trt``
encodings (the latter run through ONNX Runtime, which emulates TensorRT's symmetric Q/DQ) detect on
every frame. Detections at or above each ``--scores`` threshold are matched one-to-one to the ground
truth (Hungarian, IoU >= 0.5) and counted as recall and precision over the whole sequence. Unlike
MOTA, these do not hinge on whether the tracker happens to start one long track on a borderline
static object, so they show what quantization itself changes::

    python -m benchmarks.detector_gt
    python -m benchmarks.detector_gt --sequences TUD-Stadtmitte --json runs/detector_gt.json

Needs ``../shared/data`` (``--data``); PETS09-S2L1's boxes are scaled by 480/768 as in
:mod:`benchmarks.mot15`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.mot15 import REPO, SEQUENCES, detect_video, sequence_files

MODELS = ("fp32", "int8-qdq-cpu", "int8-qdq-trt")


def score_against_gt(gt: dict[int, Any], detections: dict[int, Any], threshold: float) -> dict[str, float]:
    """Recall and precision of ``detections`` (frame -> [N, 5] x, y, w, h, score) at ``threshold``
    against ``gt`` (frame -> [M, 4] boxes), over the ground truth's frames."""
    import numpy as np

    from reid_edge.calibration.detector import compare

    frames = sorted(gt)
    ref = [np.concatenate([gt[f], np.ones((len(gt[f]), 1))], axis=1) for f in frames]
    none = np.zeros((0, 5))
    pred = [d[d[:, 4] >= threshold] for d in (detections.get(f, none) for f in frames)]
    res = compare(ref, pred, min_score=0.0, min_iou=0.5)
    return {"recall": res["recall"], "precision": res["precision"], "boxes": res["boxes"]}


def detect_all(model: Path, video: Path) -> tuple[dict[int, Any], float]:
    """Every frame's detections (frame number from 1 -> [N, 5]) and the mean ms per frame."""
    from reid_edge.pipeline.detectors.yolox import YoloxDetector

    return detect_video(YoloxDetector(model, device="cpu"), video)


def format_table(results: dict[str, dict[str, dict[str, Any]]], thresholds: list[float]) -> str:
    head = "| sequence | model | " + " | ".join(f"recall @{t} | precision @{t}" for t in thresholds) + " | ms/frame |"
    lines = [head, "|" + " --- |" * (3 + 2 * len(thresholds))]
    for seq, rows in results.items():
        for model, r in rows.items():
            cells = " | ".join(f"{r[str(t)]['recall']:.3f} | {r[str(t)]['precision']:.3f}" for t in thresholds)
            lines.append(f"| {seq} | {model} | {cells} | {r['ms_per_frame']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--sequences", nargs="+", default=list(SEQUENCES), choices=list(SEQUENCES))
    ap.add_argument("--scores", nargs="+", type=float, default=[0.5, 0.6],
                    help="score thresholds (0.5: the tracker's high threshold, 0.6: a new track's)")
    ap.add_argument("--out", type=Path, default=None, help="keep the exported detectors here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from reid_edge.calibration.detector import DETECTOR_FILES, DetectorExportConfig, export_detector
    from reid_edge.pipeline.motfile import read_mot_tracks

    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="reid-edge-detgt.") as tmp:
        work = args.out or Path(tmp)
        for seq in args.sequences:
            video, gt_file, scale = sequence_files(args.data, seq)
            export_detector(DetectorExportConfig(videos=(str(video),), out=work / seq),
                            log=lambda msg: print(f"  {msg}", file=sys.stderr))
            gt = {f: boxes for f, (_, boxes) in read_mot_tracks(gt_file, is_gt=True, scale=scale).items()}
            results[seq] = {}
            for model in MODELS:
                dets, ms = detect_all(work / seq / DETECTOR_FILES[model], video)
                row: dict[str, Any] = {"ms_per_frame": ms, "frames": len(dets)}
                for t in args.scores:
                    row[str(t)] = score_against_gt(gt, dets, t)
                results[seq][model] = row
                print(f"{seq} {model}: " + ", ".join(f"@{t} R {row[str(t)]['recall']:.3f} P "
                                                     f"{row[str(t)]['precision']:.3f}" for t in args.scores),
                      file=sys.stderr, flush=True)
    print(format_table(results, args.scores))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        from reid_edge.io import atomic_write_text
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
