"""``reid-edge eval-mtmc``: per-camera and cross-camera HOTA, MOTA and IDF1 of a ``run`` output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

GROUPS = (
    ("tracking (HOTA averaged over IoU 0.05-0.95; MOTA, IDF1 at IoU >= {iou:.2f})",
     (("HOTA", "hota"), ("DetA", "deta"), ("AssA", "assa"), ("LocA", "loca"), ("MOTA", "mota"), ("IDF1", "idf1"))),
    ("details (IoU >= {iou:.2f})",
     (("IDP", "idp"), ("IDR", "idr"), ("recall", "recall"), ("precision", "precision"),
      ("ID sw", "num_switches"), ("FP", "num_false_positives"), ("FN", "num_misses"))),
)
COUNTS = {"num_switches", "num_false_positives", "num_misses"}


def _cell(value: float, count: bool) -> str:
    if value != value:  # nan: no ground truth in that camera
        return "-"
    return str(int(value)) if count else f"{value:.3f}"


def format_result(result: dict[str, Any]) -> str:
    """The metrics as plain-text tables, every number in full at any terminal width.

    Two tables of at most seven numeric columns each, so that both fit 80 columns with a camera
    name of up to 20 characters (rich tables shrink numbers to "0.…" on narrow terminals).
    """
    rows = [*result["cameras"].items(), ("cross-camera", result["cross_camera"])]
    name_w = max(len(n) for n, _ in rows)
    lines = []
    for title, cols in GROUPS:
        cells = [[_cell(m[k], k in COUNTS) for _, k in cols] for _, m in rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _) in enumerate(cols)]
        lines.append(title.format(iou=result["min_iou"]))
        lines.append("  ".join(["camera".ljust(name_w), *(h.rjust(w) for (h, _), w in zip(cols, widths))]))
        for (name, _), c in zip(rows, cells):
            lines.append("  ".join([name.ljust(name_w), *(v.rjust(w) for v, w in zip(c, widths))]))
        lines.append("")
    if result["missing_predictions"]:
        lines.append("no predictions for: " + ", ".join(result["missing_predictions"]))
    return "\n".join(lines).rstrip() + "\n"


def register(app: typer.Typer) -> None:
    @app.command("eval-mtmc")
    def eval_mtmc(
        pred: Path = typer.Option(..., "--pred", help="A `reid-edge run` output folder (<camera>.txt files)."),
        gt: Path = typer.Option(..., "--gt", help="Ground truth: <camera>.gt.txt files (as `synth scene` "
                                "writes) or MOT <camera>/gt/gt.txt folders."),
        json_out: Path = typer.Option(None, "--json", help="Also write the metrics as JSON."),
        min_iou: float = typer.Option(0.5, "--min-iou", help="IoU for a box to match."),
    ) -> None:
        """Per-camera and cross-camera HOTA (DetA, AssA, LocA), MOTA and IDF1 (cameras concatenated, global ids).

        Examples:

          reid-edge eval-mtmc --pred runs/mtmc --gt scene

          reid-edge eval-mtmc --pred runs/mtmc --gt scene --json runs/mtmc/metrics.json
        """
        from ..io import atomic_write_json
        from ..pipeline.mtmc_eval import evaluate_mtmc

        result = evaluate_mtmc(pred, gt, min_iou=min_iou)
        print(format_result(result), end="")
        if json_out is not None:
            atomic_write_json(json_out, result)
