"""``reid-edge export``: the CLI adapter of :func:`reid_edge.deploy.exporter.run_export`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..artifacts import DEFAULT_RUN_DIR
from ..calibration.calib_set import DEFAULT_CALIBRATION_SIZE, MIN_CALIBRATION_IMAGES
from ..calibration.quantize import CALIBRATION_METHODS
from ..calibration.report import DEFAULT_MIN_COSINE, WARN_COSINE
from ..deploy.capabilities import DEFAULT_BATCH, DEFAULT_OPSET, FORMATS, MAX_OPSET, MIN_OPSET


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        checkpoint: Path | None = typer.Option(None, "--checkpoint", "--model", help="Checkpoint, FP32 ONNX with a "
                                               "card (e.g. from `reid-edge import`) or packaged model name "
                                               f"[default: newest checkpoint in {DEFAULT_RUN_DIR}]."),
        out: Path | None = typer.Option(None, "--out", help="Output folder (default: <checkpoint folder>/export; "
                                        "runs/export/<name> for an ONNX source)."),
        format: str | None = typer.Option(None, "--format", help=" | ".join(FORMATS) + " (default: engine where "
                                          "TensorRT imports, else onnx)."),
        int8: bool = typer.Option(False, "--int8", help="INT8 Q/DQ (TensorRT and ORT-CPU encodings) from one "
                                  "calibration."),
        fp16: bool = typer.Option(False, "--fp16", help="FP16 (FP16 ONNX graph; FP16 engine with --format engine)."),
        calib: Path | None = typer.Option(None, "--calib", help="Folder of held-aside TRAINING crops or crops of your "
                                          "own cameras (default: the calibration images recorded in the checkpoint; "
                                          "required for an ONNX source)."),
        calib_size: int | None = typer.Option(None, "--calib-size", help="Calibration images to use "
                                              f"(default {DEFAULT_CALIBRATION_SIZE}, min {MIN_CALIBRATION_IMAGES})."),
        calib_method: str | None = typer.Option(None, "--calib-method", help=f"{CALIBRATION_METHODS[0]} (default; "
                                                "fastest, least memory) | " + " | ".join(CALIBRATION_METHODS[1:])
                                                + "."),
        batch: str | None = typer.Option(None, "--batch", help="TensorRT profile MIN,OPT,MAX (default "
                                     + ",".join(map(str, DEFAULT_BATCH)) + ")."),
        opset: int = typer.Option(DEFAULT_OPSET, "--opset", help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET}."),
        eval_data: Path | None = typer.Option(None, "--eval-data", help="Labelled dataset: add FP32 vs INT8 mAP/rank-1 "
                                              "to the INT8 report."),
        min_cosine: float | None = typer.Option(None, "--min-cosine", help="Fail below this mean FP32-vs-INT8 cosine "
                                                f"(default {DEFAULT_MIN_COSINE}; warns below {WARN_COSINE})."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty output folder."),
    ) -> None:
        """Export a checkpoint to ONNX, Q/DQ INT8 ONNX and TensorRT engines.

        Examples:

          reid-edge export --int8                       # newest checkpoint, its calibration set, best format here

          reid-edge export --checkpoint runs/train/best.pt --out exports/r50 --format onnx --int8 --calib-size 256

          reid-edge export --format engine --fp16 --batch 1,16,64

          reid-edge export --model default --int8 --calib Market-1501/bounding_box_train --out exports/intel-0288

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
