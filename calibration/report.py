"""INT8 accuracy report: FP32 vs INT8 agreement on held-aside crops, optionally mAP/rank-1.

Every model goes through the Backend protocol (STYLE rule 1) and the shared preprocessing, so
the numbers describe exactly what deployment will run. The report is always printed and saved
as JSON; a mean cosine below ``warn_below`` (0.99) warns, below ``min_cosine`` it fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reid_edge.distance import cosine_rows
from reid_edge.errors import ExportError
from reid_edge.io import atomic_write_json

if TYPE_CHECKING:
    from reid_edge.backends.base import Backend

WARN_COSINE = 0.99
DEFAULT_MIN_COSINE = 0.95


def cosine_summary(values: np.ndarray) -> dict[str, float]:
    """``mean``, ``min`` and 1st percentile ``p1`` of per-crop cosine similarities."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise ExportError("no crops to compare FP32 and INT8 on")
    return {"mean": float(v.mean()), "min": float(v.min()), "p1": float(np.percentile(v, 1))}


def backend_agreement(ref: Backend, cand: Backend, images: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Per-crop cosine of ``cand`` against ``ref`` (global, and mean-over-stripes unless the model is global-only)
    on a preprocessed array."""
    a = ref.embed_array(images, batch_size)
    b = cand.embed_array(images, batch_size)
    out = {"global": cosine_rows(a.global_, b.global_)}
    if ref.card.has_stripes:
        out["stripes"] = cosine_rows(a.stripes, b.stripes).mean(-1)
    return out


def agreement(ref: Any, cand: Any, images: np.ndarray, batch_size: int = 32) -> dict[str, dict[str, float]]:
    """Cosine of ``cand`` against ``ref`` (two Backends) on a preprocessed array."""
    per_crop = backend_agreement(ref, cand, images, batch_size)
    return {key: cosine_summary(values) for key, values in per_crop.items()}  # no "stripes": global-only model


def retrieval_metrics(backends: Mapping[str, Any], eval_data: str | Path) -> dict[str, dict[str, float]]:
    """mAP, rank-1 and mINP of each backend on a dataset's query/gallery split (Market protocol).

    Raises:
        DataError: the dataset cannot be read or has no query/gallery split.
    """
    from reid_edge.evaluation import evaluate, read_test_split

    _, query, gallery = read_test_split(eval_data)
    out: dict[str, dict[str, float]] = {}
    for name, backend in backends.items():
        result = evaluate(backend, query, gallery)
        out[name] = {"mAP": float(result.mAP), "rank1": float(result.rank1), "mINP": float(result.mINP)}
    return out


def build_report(
    fp32: Any,
    int8: Mapping[str, Any],
    images: np.ndarray,
    crops_source: str,
    eval_data: str | Path | None = None,
    warn_below: float = WARN_COSINE,
    min_cosine: float = DEFAULT_MIN_COSINE,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare each INT8 backend with the FP32 backend.

    Args:
        fp32: the FP32 ONNX Runtime backend (reference).
        int8: encoding name -> backend.
        images: preprocessed held-aside crops (float32 NCHW).
        crops_source: where ``images`` came from (recorded in the report).
        eval_data: a labelled dataset folder: adds mAP/rank-1 for FP32 and each encoding.
    Returns:
        The report dict (``passed`` False when an encoding's mean global cosine < ``min_cosine``).
    """
    encodings: dict[str, Any] = {}
    warnings: list[str] = []
    failures: list[str] = []
    for name, backend in int8.items():
        stats = agreement(fp32, backend, images)
        encodings[name] = {"file": Path(getattr(backend, "path", "")).name, "cosine": stats}
        mean = stats["global"]["mean"]
        if mean < min_cosine:
            failures.append(f"{name}: mean cosine {mean:.4f} < floor {min_cosine}")
        elif mean < warn_below:
            warnings.append(f"{name}: mean cosine {mean:.4f} < {warn_below}; INT8 may cost accuracy "
                            "(try more calibration images or --calib-method entropy|percentile)")
    report: dict[str, Any] = {
        "crops": {"count": int(len(images)), "source": crops_source},
        "encodings": encodings,
        "thresholds": {"warn_below": warn_below, "min_cosine": min_cosine},
        "retrieval": None,
        **dict(extra or {}),
    }
    if eval_data is not None:
        report["retrieval"] = {"data": str(eval_data), **retrieval_metrics({"fp32": fp32, **int8}, eval_data)}
        base = report["retrieval"]["fp32"]["mAP"]
        for name in int8:
            drop = base - report["retrieval"][name]["mAP"]
            report["retrieval"][name]["mAP_drop_points"] = 100.0 * drop
            if drop > 0.01:
                warnings.append(f"{name}: mAP {100 * drop:.2f} points below FP32")
    report["warnings"] = warnings
    report["failures"] = failures
    report["passed"] = not failures
    return report


def render_report(report: Mapping[str, Any]) -> Any:
    """A rich Table of the report (printed by the CLI)."""
    from rich.table import Table

    table = Table(title=f"INT8 accuracy vs FP32 ({report['crops']['count']} held-aside crops)")
    for col in ("encoding", "cos mean", "cos min", "cos p1", "stripes mean"):
        table.add_column(col, justify="right" if col != "encoding" else "left")
    retrieval = report.get("retrieval")
    if retrieval:
        table.add_column("mAP", justify="right")
        table.add_column("rank-1", justify="right")
        has_stripes = any("stripes" in e["cosine"] for e in report["encodings"].values())
        row = ["fp32", "1", "1", "1", "1" if has_stripes else "-", f"{100 * retrieval['fp32']['mAP']:.2f}",
               f"{100 * retrieval['fp32']['rank1']:.2f}"]
        table.add_row(*row)
    for name, entry in report["encodings"].items():
        g, s = entry["cosine"]["global"], entry["cosine"].get("stripes")
        row = [name, f"{g['mean']:.5f}", f"{g['min']:.5f}", f"{g['p1']:.5f}", "-" if s is None else f"{s['mean']:.5f}"]
        if retrieval:
            row += [f"{100 * retrieval[name]['mAP']:.2f}", f"{100 * retrieval[name]['rank1']:.2f}"]
        table.add_row(*row)
    return table


def save_and_judge(report: Mapping[str, Any], path: str | Path) -> None:
    """Write the report JSON atomically, then raise if it failed.

    Raises:
        ExportError: an encoding fell below the cosine floor (the JSON is still written).
    """
    atomic_write_json(path, report)
    if not report["passed"]:
        raise ExportError("INT8 accuracy below the floor: " + "; ".join(report["failures"])
                          + f" (report: {path}; lower --min-cosine to accept it)")
