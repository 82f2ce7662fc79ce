"""Backbones on real crops and on this CPU: is ImageNet initialization worth it, and what does it cost?

Two tables (``python -m benchmarks.backbones``):

1. Retrieval on ``../shared/data/market1501_mini`` (real Market-1501 crops; query vs
   ``bounding_box_test``, Market-1501 protocol: same pid + same camera gallery entries ignored),
   with no training at all: an HSV-histogram matcher, MobileNetV2 with random init and with the
   ImageNet weights found locally (``--pretrained imagenet``), each as global-average-pooled
   backbone features and as the full ReID model's global embedding (untrained heads). Random
   parts are drawn with ``--seeds`` seeds; the table gives the mean (and min..max).
2. ONNX Runtime FP32 crops/s on this CPU at batch 1 and 32 for the MobileNetV2, ResNet-18 and
   ResNet-50 ReID models (256x128, 8 stripes, 2048-d), median of ``--repeats`` timed rounds.
   An INT8 column (``int8-qdq-cpu`` encoding) is added unless ``--int8 off``; it is calibrated
   on ``bounding_box_train`` crops, never on the query/gallery crops it could be evaluated on.

Examples:
    python -m benchmarks.backbones
    python -m benchmarks.backbones --skip-speed --seeds 0 1 2 3 4
    python -m benchmarks.backbones --skip-accuracy --threads 2 --repeats 7 --int8 off
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid_edge.distance import combined_distance, euclidean
from reid_edge.preprocess import preprocess_crops

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("REID_EDGE_SHARED_DATA", REPO.parent / "shared" / "data")) / "market1501_mini"
SPEED_BACKBONES = ("mobilenetv2", "resnet18", "resnet50")


# ---- data and metrics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Crops of one Market-1501 folder with their identities and cameras."""

    crops: list[np.ndarray]
    pids: np.ndarray
    cams: np.ndarray


def read_market_split(folder: Path) -> Split:
    """Read ``PID_cCsS_FRAME_BOX.jpg`` crops (BGR uint8); junk (pid -1) is kept and ignored by the metric."""
    crops, pids, cams = [], [], []
    for path in sorted(folder.glob("*.jpg")):
        pid, cam = path.stem.split("_")[:2]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"cannot read {path}")
        crops.append(img)
        pids.append(int(pid))
        cams.append(int(cam[1]))
    if not crops:
        raise SystemExit(f"no .jpg crops in {folder}")
    return Split(crops, np.asarray(pids), np.asarray(cams))


def rank_metrics(distmat: np.ndarray, query: Split, gallery: Split) -> tuple[float, float, float]:
    """``(mAP, rank-1, rank-5)`` under the Market-1501 protocol."""
    from reid_edge.metrics import evaluate_rank

    m = evaluate_rank(distmat, query.pids, gallery.pids, query.cams, gallery.cams)
    return float(m.mAP), float(m.cmc[0]), float(m.cmc[min(4, len(m.cmc) - 1)])


# ---- matchers -----------------------------------------------------------------------------------


def hsv_histogram(crops: Sequence[np.ndarray], bands: int = 4, bins: tuple[int, int, int] = (8, 4, 4)) -> np.ndarray:
    """Joint HSV histogram per horizontal band, Hellinger-mapped (sqrt) and L2-normalized.

    A fixed, untuned colour baseline: crops are resized to 128x64, split into ``bands`` rows.
    """
    feats = []
    for crop in crops:
        hsv = cv2.cvtColor(cv2.resize(crop, (64, 128), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2HSV)
        parts = []
        for rows in np.array_split(np.arange(hsv.shape[0]), bands):
            h = cv2.calcHist([hsv[rows[0]:rows[-1] + 1]], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256])
            h = h.ravel() / max(h.sum(), 1.0)
            parts.append(np.sqrt(h))
        f = np.concatenate(parts)
        feats.append(f / np.linalg.norm(f))
    return np.asarray(feats, dtype=np.float32)


def _batches(x: np.ndarray, size: int = 32) -> list[np.ndarray]:
    return [x[i:i + size] for i in range(0, len(x), size)]


def gap_features(backbone: object, images: np.ndarray) -> np.ndarray:
    """Global-average-pooled backbone features, L2-normalized."""
    import torch

    outs = []
    with torch.no_grad():
        for b in _batches(images):
            outs.append(backbone(torch.from_numpy(b)).mean(dim=(2, 3)))  # type: ignore[operator]
    f = torch.nn.functional.normalize(torch.cat(outs), dim=1)
    return f.numpy()


def model_embeddings(model: object, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ReID model's ``(global [N, D], stripes [N, S, d])`` embeddings (already L2-normalized)."""
    import torch

    gs, ss = [], []
    with torch.no_grad():
        for b in _batches(images):
            g, s = model(torch.from_numpy(b))  # type: ignore[operator]
            gs.append(g)
            ss.append(s)
    return torch.cat(gs).numpy(), torch.cat(ss).numpy()


def accuracy_table(data: Path, height: int, width: int, seeds: Sequence[int]) -> list[tuple[str, str, list[tuple]]]:
    """Rows ``(matcher, features, [(mAP, r1, r5) per seed])`` on ``data`` (a Market-1501 folder)."""
    import torch

    from reid_edge.train.models import build_model

    query = read_market_split(data / "query")
    gallery = read_market_split(data / "bounding_box_test")
    q_img = preprocess_crops(query.crops, height, width)
    g_img = preprocess_crops(gallery.crops, height, width)

    rows: list[tuple[str, str, list[tuple]]] = []
    hq, hg = hsv_histogram(query.crops), hsv_histogram(gallery.crops)
    rows.append(("HSV histogram (4 bands, 8x4x4 bins)", "colour", [rank_metrics(euclidean(hq, hg), query, gallery)]))

    for init in ("random init", "ImageNet"):
        pretrained = None if init == "random init" else "imagenet"
        gap, glob, comb = [], [], []
        for seed in seeds:
            torch.manual_seed(seed)
            model = build_model("mobilenetv2", num_stripes=8, embed_dim=2048, last_stride=1,
                                pretrained=pretrained).eval()
            if pretrained is not None and seed == seeds[0]:
                print(f"  ImageNet weights: {model.pretrained_report.summary()}", file=sys.stderr)
            qf, gf = gap_features(model.backbone, q_img), gap_features(model.backbone, g_img)
            gap.append(rank_metrics(euclidean(qf, gf), query, gallery))
            (qg, qs), (gg, gs) = model_embeddings(model, q_img), model_embeddings(model, g_img)
            glob.append(rank_metrics(euclidean(qg, gg), query, gallery))
            comb.append(rank_metrics(combined_distance(qg, gg, qs, gs, lambda_g=0.5), query, gallery))
        name = f"MobileNetV2 {init}"
        if pretrained is not None:
            # the ImageNet geometry (features.14 stride 2: 8x4 map) vs the ReID last stride 1 (16x8)
            torch.manual_seed(seeds[0])
            model = build_model("mobilenetv2", last_stride=2, pretrained=pretrained).eval()
            qf, gf = gap_features(model.backbone, q_img), gap_features(model.backbone, g_img)
            rows.append((name, "backbone GAP, last stride 2 (ImageNet geometry)",
                         [rank_metrics(euclidean(qf, gf), query, gallery)]))
        rows.append((name, "backbone GAP (1280-d)", gap))
        rows.append((name, "ReID global (2048-d, untrained heads)", glob))
        rows.append((name, "ReID global+stripes (combined distance)", comb))
    return rows


def _fmt(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1 or max(values) - min(values) < 5e-4:
        return f"{mean:.3f}"
    return f"{mean:.3f} ({min(values):.3f}..{max(values):.3f})"


def print_accuracy(rows: list[tuple[str, str, list[tuple]]], data: Path, seeds: Sequence[int]) -> None:
    print(f"\nRetrieval without training on {data} (Market-1501 protocol; "
          f"mean (min..max) over seeds {list(seeds)} where random parts exist)\n")
    print("| matcher | features | mAP | rank-1 | rank-5 |")
    print("| --- | --- | --- | --- | --- |")
    for name, feats, res in rows:
        print(f"| {name} | {feats} | {_fmt([r[0] for r in res])} | {_fmt([r[1] for r in res])} "
              f"| {_fmt([r[2] for r in res])} |")


# ---- speed ----------------------------------------------------------------------------------------


def export_fp32(backbone: str, path: Path, height: int, width: int) -> object:
    """Export a randomly initialized ReID model with the project's exporter (speed does not depend on
    the weights); returns the card written into the file."""
    import torch

    from reid_edge.card import ModelCard
    from reid_edge.deploy.export_onnx import export_onnx
    from reid_edge.train.models import build_model

    torch.manual_seed(0)
    model = build_model(backbone, num_stripes=8, embed_dim=2048, last_stride=1).eval()
    card = ModelCard(backbone=backbone, input_height=height, input_width=width, global_dim=2048, num_stripes=8,
                     stripe_dim=256)
    return export_onnx(model, card, path, opset=17)[1]


def quantize_int8(fp32: Path, out: Path, card: object, images: np.ndarray) -> None:
    """Min-max calibrate ``fp32`` on ``images`` and write its CPU INT8 encoding to ``out``."""
    import onnx

    from reid_edge.calibration.quantize import calibrate, quantize_encoding

    ranges = calibrate(fp32, images, method="minmax")
    onnx.save(quantize_encoding(fp32, ranges, "int8-qdq-cpu", card), str(out))  # type: ignore[arg-type]


def _time_round(sess: object, x: np.ndarray) -> float:
    """crops/s of one timed round: 8 calls at batch 1 (..7), one call at batch >= 8."""
    from reid_edge.card import INPUT_NAME

    calls = max(1, 8 // len(x))
    t0 = time.perf_counter()
    for _ in range(calls):
        sess.run(None, {INPUT_NAME: x})  # type: ignore[attr-defined]
    return len(x) * calls / (time.perf_counter() - t0)


def speed_table(height: int, width: int, batches: Sequence[int], repeats: int, threads: int, int8: str,
                calib_dir: Path) -> tuple[list[tuple[str, str, int, float, float]], bool]:
    """Rows ``(backbone, precision, batch, median crops/s, best crops/s)``; the flag says whether INT8 ran.

    Rounds are interleaved (round r of every model and batch before round r+1 of any), so that
    load from other processes on a shared CPU falls on all rows alike.
    """
    import onnxruntime as ort

    from reid_edge.card import INPUT_NAME

    quantize = quantize_int8 if int8 != "off" else None
    calib = None
    if quantize is not None:
        calib = preprocess_crops(read_market_split(calib_dir).crops, height, width)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sessions: dict[tuple[str, str], object] = {}
    with tempfile.TemporaryDirectory(prefix="reid-edge-bench.") as tmp:
        for name in SPEED_BACKBONES:
            fp32 = Path(tmp) / f"{name}.onnx"
            card = export_fp32(name, fp32, height, width)
            variants = [("fp32", fp32)]
            if quantize is not None and calib is not None:
                q = Path(tmp) / f"{name}.int8.onnx"
                quantize(fp32, q, card, calib)
                variants.append(("int8-qdq-cpu", q))
            for precision, path in variants:
                sessions[(name, precision)] = ort.InferenceSession(str(path), opts,
                                                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, 3, height, width)).astype(np.float32) for b in batches}
    for sess in sessions.values():  # warm-up: allocations, kernel selection
        for x in inputs.values():
            sess.run(None, {INPUT_NAME: x})  # type: ignore[attr-defined]
    rates: dict[tuple[str, str, int], list[float]] = {(n, p, b): [] for (n, p) in sessions for b in batches}
    for r in range(repeats):
        for (name, precision), sess in sessions.items():
            for b, x in inputs.items():
                rates[(name, precision, b)].append(_time_round(sess, x))
        print(f"  round {r + 1}/{repeats} done", file=sys.stderr)
    rows = [(n, p, b, statistics.median(v), max(v)) for (n, p, b), v in rates.items()]
    for n, p, b, med, best in rows:
        print(f"  {n} {p} batch {b}: median {med:.1f} crops/s (worst {min(rates[(n, p, b)]):.1f}, best {best:.1f})",
              file=sys.stderr)
    return rows, quantize is not None


def print_speed(rows: list[tuple[str, str, int, float, float]], batches: Sequence[int], threads: int, with_int8: bool,
                repeats: int) -> None:
    import onnxruntime as ort

    precisions = ["fp32"] + (["int8-qdq-cpu"] if with_int8 else [])
    print(f"\nONNX Runtime {ort.__version__} CPU crops/s ({os.cpu_count()} cores, intra-op threads "
          f"{threads or 'default'}): median (best) of {repeats} interleaved rounds; on a shared CPU the best "
          "round is the closer estimate of an idle machine\n")
    header = " | ".join(f"{p} b{b}" for p in precisions for b in batches)
    print(f"| backbone | {header} |")
    print("| --- |" + " --- |" * (len(precisions) * len(batches)))
    table = {(n, p, b): f"{med:.1f} ({best:.1f})" for n, p, b, med, best in rows}
    for name in SPEED_BACKBONES:
        cells = " | ".join(table[(name, p, b)] for p in precisions for b in batches)
        print(f"| {name} | {cells} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a Market-1501 layout folder")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--int8", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.torch_threads)
    for sub in ("query", "bounding_box_test", "bounding_box_train"):
        if not (args.data / sub).is_dir():
            raise SystemExit(f"{args.data / sub} is missing (expected a Market-1501 layout folder)")
    if not args.skip_accuracy:
        rows = accuracy_table(args.data, args.height, args.width, args.seeds)
        print_accuracy(rows, args.data, args.seeds)
    if not args.skip_speed:
        speed, with_int8 = speed_table(args.height, args.width, args.batches, args.repeats, args.threads,
                                       args.int8, args.data / "bounding_box_train")
        print_speed(speed, args.batches, args.threads, with_int8, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
