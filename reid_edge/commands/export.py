"""``reid-edge export``: the CLI adapter of :func:`reid_edge.deploy.exporter.run_export`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Checkpoint (default: newest in runs/train)."
                                               ),
        out: Path | None = typer.Option(None, "--out", help="Output folder (default: <checkpoint folder>/export)."),
        format: str | None = typer.Option(None, "--format", help="onnx | engine (default: engine where TensorRT "
                                          "imports, else onnx)."),
        int8: bool = typer.Option(False, "--int8", help="INT8 Q/DQ (TensorRT and ORT-CPU encodings) from one "
                                  "calibration."),
        fp16: bool = typer.Option(False, "--fp16", help="FP16 (FP16 ONNX graph; FP16 engine with --format engine)."),
        calib: Path | None = typer.Option(None, "--calib", help="Folder of held-aside TRAINING crops (default: the "
                                          "calibration images recorded in the checkpoint)."),
        calib_size: int | None = typer.Option(None, "--calib-size", help="Calibration images to use "
                                              "(default 128, min 16)."),
        calib_method: str | None = typer.Option(None, "--calib-method", help="minmax (default; fastest, least memory) "
                                                "| entropy | percentile."),
        batch: str | None = typer.Option(None, "--batch", help="TensorRT profile MIN,OPT,MAX (default 1,8,32)."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset, 13..20."),
        eval_data: Path | None = typer.Option(None, "--eval-data", help="Labelled dataset: add FP32 vs INT8 mAP/rank-1 "
                                              "to the INT8 report."),
        min_cosine: float | None = typer.Option(None, "--min-cosine", help="Fail below this mean FP32-vs-INT8 cosine "
                                                "(default 0.95; warns below 0.99)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty output folder."),
    ) -> None:
        """Export a checkpoint to ONNX, Q/DQ INT8 ONNX and TensorRT engines.

        Examples:

          reid-edge export --int8                       # newest checkpoint, its calibration set, best format here

          reid-edge export --checkpoint runs/train/best.pt --out exports/r50 --format onnx --int8 --calib-size 256

          reid-edge export --format engine --fp16 --batch 1,16,64

        Writes model.onnx (FP32; input 'images' [B,3,H,W]; outputs 'embedding' [B,D] and 'stripes' [B,S,d],
        L2-normalized; model card in metadata_props), and with --int8 model.int8.trt.onnx, model.int8.cpu.onnx,
        calibration.cache and int8_report.json; model.engine (+ .json) with --format engine.
        """
        from reid_edge.deploy.capabilities import parse_batch
        from reid_edge.deploy.exporter import ExportOptions, run_export

        run_export(ExportOptions(checkpoint=checkpoint, out=out, format=format, int8=int8, fp16=fp16, calib=calib,
                                 calib_size=calib_size, calib_method=calib_method,
                                 batch=parse_batch(batch) if batch is not None else None, opset=opset,
                                 eval_data=eval_data, min_cosine=min_cosine, overwrite=overwrite))
