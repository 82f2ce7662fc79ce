"""INT8 acceptance measurement: checkpoint -> ONNX -> two Q/DQ encodings -> ONNX Runtime, side by side.

Runs the real export (parity gate, one calibration, both encodings, accuracy report with mAP
when ``--data`` has a query/gallery split), then times ONNX Runtime FP32, INT8-cpu and INT8-trt
at one batch size, interleaving the models in every repeat so that load from other processes
hits all of them alike; reports medians over repeats and the median of per-repeat speed-ups.

    python -m benchmarks.int8 --checkpoint runs/train/last.pt --data data/synth_crops
    python -m benchmarks.int8 --checkpoint runs/train/last.pt --calib data/synth_crops/bounding_box_train

Acceptance (issue 4): parity passes; mean cosine >= 0.99 for both encodings; INT8 mAP within
1 point of FP32; INT8-cpu >= 1.8x ORT FP32 throughput at batch 32.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np


def time_interleaved(backends: dict[str, Any], batch: int, iterations: int, repeats: int, warmup: int = 2,
                     seed: int = 0) -> dict[str, list[float]]:
    """Per repeat and model: median seconds per batch over ``iterations`` runs (models interleaved)."""
    from reid_edge.card import INPUT_NAME

    card = next(iter(backends.values())).card
    x = np.random.default_rng(seed).standard_normal((batch, 3, card.input_height, card.input_width)).astype(np.float32)
    feed = {INPUT_NAME: x}
    for backend in backends.values():
        for _ in range(warmup):
            backend.infer(feed)
    medians: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(repeats):
        for name, backend in backends.items():
            times = []
            for _ in range(iterations):
                t0 = time.perf_counter()
                backend.infer(feed)
                times.append(time.perf_counter() - t0)
            medians[name].append(float(np.median(times)))
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: newest in runs/train")
    parser.add_argument("--data", type=Path, default=None, help="dataset with query/gallery (mAP FP32 vs INT8)")
    parser.add_argument("--calib", type=Path, default=None, help="calibration folder (default: from the checkpoint)")
    parser.add_argument("--calib-size", type=int, default=128)
    parser.add_argument("--calib-method", default="minmax")
    parser.add_argument("--out", type=Path, default=None, help="export folder (default: a temporary folder)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from reid_edge.artifacts import FP32_ONNX, INT8_CPU_ONNX, INT8_TRT_ONNX
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.deploy.exporter import ExportOptions, run_export
    from reid_edge.errors import ReidEdgeError

    console = Console()
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="reid-edge-int8-")
        out = Path(tmp.name) / "export"
    try:
        t0 = time.perf_counter()
        result = run_export(ExportOptions(checkpoint=args.checkpoint, out=out, format="onnx", int8=True,
                                          calib=args.calib, calib_size=args.calib_size, calib_method=args.calib_method,
                                          eval_data=args.data, overwrite=True), console=console)
        export_s = time.perf_counter() - t0
        files = result.files
        models = {"ort-fp32": files[FP32_ONNX], "int8-cpu": files[INT8_CPU_ONNX], "int8-trt": files[INT8_TRT_ONNX]}
        with ExitStack() as stack:
            backends = {k: stack.enter_context(OnnxRuntimeBackend(p, device="cpu", intra_op_threads=args.threads))
                        for k, p in models.items()}
            medians = time_interleaved(backends, args.batch, args.iterations, args.repeats)
    except ReidEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    report = result.report or {}
    fp32 = np.asarray(medians["ort-fp32"])
    table = Table(title=f"ONNX Runtime CPU, batch {args.batch}, {args.repeats} repeats x {args.iterations} runs")
    for col in ("model", "median s/batch", "min..max s", "crops/s", "speed-up vs fp32 (median of repeats)",
                "cos mean", "mAP"):
        table.add_column(col, justify="right" if col != "model" else "left")
    summary: dict[str, Any] = {"batch": args.batch, "repeats": args.repeats, "iterations": args.iterations,
                               "export_seconds": export_s, "parity": result.parity, "models": {}}
    retrieval = report.get("retrieval") or {}
    for name, secs in medians.items():
        arr = np.asarray(secs)
        enc = {"int8-cpu": "int8-qdq-cpu", "int8-trt": "int8-qdq-trt"}.get(name)
        cos = report["encodings"][enc]["cosine"]["global"]["mean"] if enc else 1.0
        m_ap = retrieval.get(enc or "fp32", {}).get("mAP")
        speedup = float(np.median(fp32 / arr))
        summary["models"][name] = {"median_s": float(np.median(arr)), "all_s": secs,
                                   "crops_per_s": args.batch / float(np.median(arr)), "speedup": speedup,
                                   "cosine_mean": cos, "mAP": m_ap}
        table.add_row(name, f"{np.median(arr):.3f}", f"{arr.min():.3f}..{arr.max():.3f}",
                      f"{args.batch / np.median(arr):.1f}", f"{speedup:.2f}x", f"{cos:.5f}",
                      "-" if m_ap is None else f"{100 * m_ap:.2f}")
    console.print(table)
    checks = {
        "parity": bool(result.parity.get("passed")),
        "cosine_trt>=0.99": summary["models"]["int8-trt"]["cosine_mean"] >= 0.99,
        "cosine_cpu>=0.99": summary["models"]["int8-cpu"]["cosine_mean"] >= 0.99,
        "int8_cpu_speedup>=1.8": summary["models"]["int8-cpu"]["speedup"] >= 1.8,
    }
    if retrieval:
        for enc in ("int8-qdq-cpu", "int8-qdq-trt"):
            checks[f"mAP_{enc}_within_1pt"] = retrieval[enc]["mAP_drop_points"] <= 1.0
    summary["checks"] = checks
    for name, ok in checks.items():
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if not retrieval:
        console.print("mAP not measured: pass --data with a query/gallery split")
    if args.json is not None:
        from reid_edge.io import atomic_write_text
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
