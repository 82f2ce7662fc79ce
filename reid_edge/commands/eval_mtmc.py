"""``reid-edge eval-mtmc``: per-camera MOTA/IDF1 and cross-camera IDF1 of a ``run`` output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"multi-camera tracking (IoU >= {result['min_iou']:.2f})")
    cols = ("MOTA", "IDF1", "IDP", "IDR", "recall", "precision", "ID sw", "FP", "FN")
    keys = ("mota", "idf1", "idp", "idr", "recall", "precision",
            "num_switches", "num_false_positives", "num_misses")
    table.add_column("camera", no_wrap=True, min_width=12)
    for c in cols:
        table.add_column(c, justify="right")
    rows = [*result["cameras"].items(), ("cross-camera", result["cross_camera"])]
    for name, m in rows:
        table.add_row(name, *[f"{m[k]:.3f}" if isinstance(m[k], float) and k in keys[:6] else str(int(m[k]))
                              for k in keys])
    Console().print(table)
    if result["missing_predictions"]:
        Console().print("no predictions for: " + ", ".join(result["missing_predictions"]))


def register(app: typer.Typer) -> None:
    @app.command("eval-mtmc")
    def eval_mtmc(
        pred: Path = typer.Option(..., "--pred", help="A `reid-edge run` output folder (<camera>.txt files)."),
        gt: Path = typer.Option(..., "--gt", help="Ground truth: <camera>.gt.txt files (as `synth scene` "
                                "writes) or MOT <camera>/gt/gt.txt folders."),
        json_out: Path = typer.Option(None, "--json", help="Also write the metrics as JSON."),
        min_iou: float = typer.Option(0.5, "--min-iou", help="IoU for a box to match."),
    ) -> None:
        """Per-camera MOTA/IDF1 and cross-camera IDF1 (cameras concatenated, global ids).

        Examples:

          reid-edge eval-mtmc --pred runs/mtmc --gt scene

          reid-edge eval-mtmc --pred runs/mtmc --gt scene --json runs/mtmc/metrics.json
        """
        from ..io import atomic_write_json
        from ..pipeline.mtmc_eval import evaluate_mtmc

        result = evaluate_mtmc(pred, gt, min_iou=min_iou)
        _print(result)
        if json_out is not None:
            atomic_write_json(json_out, result)
