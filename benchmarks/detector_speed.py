"""Detector speed on CPU: the packaged YOLOX-Nano (FP32) against its INT8 encodings, interleaved.

Calibrates once with ``reid-edge export-detector`` on the video (unless ``--export`` names an
existing output folder), then times ``detect`` (letterbox, ONNX Runtime, decode, NMS) on the same
frames for every encoding, in rounds that alternate the encodings so a change in machine load hits
all of them alike. Prints ms/frame (median over rounds) and the speed-up against FP32::

    python -m benchmarks.detector_speed                                   # PETS09-S2L1, 80 frames
    python -m benchmarks.detector_speed --video cam1.mp4 --export runs/detector --frames 200
    python -m benchmarks.detector_speed --sizes 480 640        # FP32 at other input sizes too (yolox@SIZE)

Needs ``../shared/data`` for the default video.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "videos" / "pets2009_s2l1_view1.avi"


def time_detectors(paths: dict[str, Path | None], frames: list, rounds: int,
                   sizes: dict[str, int] | None = None) -> dict[str, float]:
    """Median ms/frame of each detector over ``rounds`` interleaved passes over ``frames``
    (``sizes``: input long side of the named detectors, others at the model's own)."""
    from reid_edge.pipeline.detectors.yolox import YoloxDetector

    sizes = sizes or {}
    dets = {name: YoloxDetector(p, device="cpu", input_size=sizes.get(name)) for name, p in paths.items()}
    for d in dets.values():  # warm-up: session initialisation, first-call allocations
        for f in frames[:3]:
            d.detect(f, 1)
    times: dict[str, list[float]] = {name: [] for name in dets}
    for _ in range(rounds):
        for name, d in dets.items():
            t0 = time.perf_counter()
            for i, f in enumerate(frames):
                d.detect(f, i + 1)
            times[name].append(1000 * (time.perf_counter() - t0) / len(frames))
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--export", type=Path, default=None, help="an export-detector output folder to reuse")
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="*", default=[],
                    help="also time the FP32 detector at these input long sides (multiples of 32)")
    ap.add_argument("--no-int8", action="store_true", help="time FP32 only (no calibration)")
    args = ap.parse_args(argv)
    if any(s < 32 or s % 32 for s in args.sizes):
        print(f"error: --sizes {args.sizes}: each must be a multiple of 32", file=sys.stderr)
        return 2
    if not args.video.is_file():
        print(f"error: video {args.video} does not exist", file=sys.stderr)
        return 2
    from reid_edge.calibration.detector import DETECTOR_FILES, DetectorExportConfig, export_detector, read_frames

    frames = [img for _, img in read_frames(str(args.video), list(range(args.frames)))]
    with tempfile.TemporaryDirectory(prefix="reid-edge-detspeed.") as tmp:
        paths: dict[str, Path | None] = {"fp32 (packaged)": None}
        if not args.no_int8:
            out = args.export
            if out is None:
                out = Path(tmp)
                export_detector(DetectorExportConfig(videos=(str(args.video),), out=out), log=lambda m: None)
            paths.update({enc: out / DETECTOR_FILES[enc] for enc in ("int8-qdq-cpu", "int8-qdq-trt")})
        sizes = {f"fp32 @{s}": s for s in args.sizes}
        paths.update({name: None for name in sizes})
        ms = time_detectors(paths, frames, args.rounds, sizes)
    h, w = frames[0].shape[:2]
    print(f"{len(frames)} frames of {args.video.name} ({w}x{h}), median of {args.rounds} interleaved rounds")
    print("| detector | ms/frame | speed-up vs FP32 |\n| --- | --- | --- |")
    base = ms["fp32 (packaged)"]
    for name, v in ms.items():
        print(f"| {name} | {v:.2f} | {base / v:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
