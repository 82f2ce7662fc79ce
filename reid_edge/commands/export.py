"""``reid-edge export``: checkpoint -> FP32 ONNX (+ FP16 / Q/DQ INT8 ONNX) (+ TensorRT engine).

torch, onnx, onnxruntime and TensorRT are imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from ..errors import CheckpointError

MIN_REPORT_CROPS = 16
MAX_REPORT_CROPS = 64


def newest_checkpoint(run_dir: str | Path | None = None) -> Path:
    """The most recently written ``last.pt``/``best.pt`` of the run folder (default ``runs/train``).

    Raises:
        CheckpointError: no checkpoint there.
    """
    if run_dir is None:
        from reid_edge.train.config import DEFAULT_RUN_DIR

        run_dir = DEFAULT_RUN_DIR
    candidates = [p for p in (Path(run_dir) / "last.pt", Path(run_dir) / "best.pt") if p.is_file()]
    if not candidates:
        raise CheckpointError(f"no checkpoint in {run_dir} (looked for last.pt and best.pt); "
                              "train one with `reid-edge train` or pass --checkpoint")
    return max(candidates, key=lambda p: p.stat().st_mtime)


@dataclass
class ExportResult:
    """What an export wrote (paths by role) and the INT8 report, if any."""

    out_dir: Path
    checkpoint: Path
    files: dict[str, Path] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None


def run_export(
    checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    format: str | None = None,
    int8: bool = False,
    fp16: bool = False,
    calib: str | Path | None = None,
    calib_size: int | None = None,
    calib_method: str | None = None,
    batch: tuple[int, int, int] | None = None,
    opset: int = 17,
    eval_data: str | Path | None = None,
    min_cosine: float | None = None,
    overwrite: bool = False,
    console: Any = None,
    has_tensorrt: bool | None = None,
) -> ExportResult:
    """Export a checkpoint as the capability table allows; see ``reid-edge export --help``.

    Raises:
        ConfigError: impossible flag combination. CheckpointError: missing or wrong checkpoint.
        DataError: calibration images missing, too few or unreadable. ExportError: parity gate,
        quantization check, accuracy floor or engine build failed.
    """
    from rich.console import Console

    from reid_edge.calibration.calib_set import DEFAULT_CALIBRATION_SIZE, MIN_CALIBRATION_IMAGES
    from reid_edge.calibration.report import DEFAULT_MIN_COSINE
    from reid_edge.deploy.capabilities import plan_export
    from reid_edge.io import prepare_out_dir

    console = console or Console()
    calib_flags = tuple(name for name, value in (("--calib", calib), ("--calib-size", calib_size),
                                                 ("--calib-method", calib_method), ("--eval-data", eval_data),
                                                 ("--min-cosine", min_cosine)) if value is not None)
    plan = plan_export(format, int8, fp16, opset, batch, calib_flags, has_tensorrt)
    if checkpoint is not None:
        from reid_edge.models import resolve

        ckpt_path = resolve(checkpoint)  # a file, or a packaged model's name
    else:
        ckpt_path = newest_checkpoint()
        console.print(f"checkpoint: {ckpt_path} (newest in the default run folder)")
    if not ckpt_path.is_file():
        raise CheckpointError(f"checkpoint {ckpt_path} does not exist")
    onnx_card = _onnx_source_card(ckpt_path, plan)
    if calib_size is not None and calib_size < MIN_CALIBRATION_IMAGES:
        from reid_edge.errors import ConfigError

        raise ConfigError(f"--calib-size {calib_size} is below the minimum of {MIN_CALIBRATION_IMAGES} images")
    if eval_data is not None and not Path(eval_data).is_dir():
        from reid_edge.errors import DataError

        raise DataError(f"--eval-data folder {eval_data} does not exist")
    if out is not None:
        out_dir = Path(out)
    else:  # an ONNX source may be a packaged model: never write into the installed package
        out_dir = Path("runs/export") / ckpt_path.stem if onnx_card is not None else ckpt_path.parent / "export"
    for note in plan.notes:
        console.print(note)
    opset_used = onnx_card.opset if onnx_card is not None else plan.opset
    console.print(f"exporting {plan.format} / {plan.precision} (opset {opset_used}) -> {out_dir}")

    ckpt: dict[str, Any] = {}
    if onnx_card is None:
        from reid_edge.deploy.export_onnx import load_checkpoint_model

        model, card, ckpt = load_checkpoint_model(ckpt_path)
    else:
        card = onnx_card
    calib_set = None
    if plan.int8:  # check the calibration images before any long work
        calib_set = _calibration_set(ckpt, card, calib, calib_size or DEFAULT_CALIBRATION_SIZE,
                                     calib_method or "minmax", console)
    out_dir = prepare_out_dir(out_dir, overwrite)
    result = ExportResult(out_dir, ckpt_path)
    if onnx_card is None:
        from reid_edge.deploy.export_onnx import export_onnx
        from reid_edge.deploy.parity import parity_gate

        fp32_path, fp32_card = export_onnx(model, card, out_dir / "model.onnx", opset=plan.opset,
                                           checkpoint=ckpt_path)
        parity = parity_gate(model, fp32_path, fp32_card)
        result.parity = parity.to_dict()
        console.print(f"parity gate: ONNX Runtime vs PyTorch min cosine global {parity.min_cosine_global:.6f}, "
                      f"stripes {parity.min_cosine_stripes:.6f} (>= {parity.threshold}) ok")
    else:  # already an FP32 ONNX with a card (e.g. from `reid-edge import`): no PyTorch model to compare
        from reid_edge.io import atomic_write_bytes

        fp32_path, fp32_card = out_dir / "model.onnx", onnx_card
        atomic_write_bytes(fp32_path, ckpt_path.read_bytes())
        result.parity = {"skipped": "the source is an FP32 ONNX model; copied unchanged"}
        console.print(f"fp32 onnx: {ckpt_path.name} ({card.backbone}) copied unchanged")
    result.files["fp32 onnx"] = fp32_path

    engine_source = fp32_path
    if plan.precision == "fp16":
        result.files["fp16 onnx"] = _export_fp16(fp32_path, out_dir / "model.fp16.onnx", console)
    if plan.int8:
        assert calib_set is not None
        _export_int8(result, fp32_path, fp32_card, calib_set, eval_data,
                     DEFAULT_MIN_COSINE if min_cosine is None else min_cosine, console)
        engine_source = result.files["int8 onnx (TensorRT)"]
    if plan.build_engine:
        from reid_edge.backends.trt_backend import import_tensorrt
        from reid_edge.deploy.export_onnx import read_card
        from reid_edge.deploy.tensorrt_build import build_engine, tensorrt_major

        trt = import_tensorrt()
        if plan.precision == "fp16" and tensorrt_major(str(trt.__version__)) >= 11:
            engine_source = result.files["fp16 onnx"]  # strongly typed: precision comes from the graph
        with _progress(console) as progress:
            tasks: dict[str, Any] = {}

            def on_phase(phase: str, step: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(f"TensorRT: {phase}", total=max(total, 1))
                progress.update(tasks[phase], completed=step)

            engine_path, _ = build_engine(engine_source, out_dir / "model.engine", read_card(engine_source),
                                          plan.precision, plan.batch, progress=on_phase)
        result.files["engine"] = engine_path
        result.files["engine sidecar"] = engine_path.with_name(engine_path.name + ".json")
    _print_files(console, result)
    return result


def _onnx_source_card(path: Path, plan: Any) -> Any:
    """The card of an FP32 reid-edge ONNX given as the export source; None for a training checkpoint.

    Raises:
        CheckpointError: an engine, an ONNX without a card, or an ONNX that is not FP32.
        ConfigError: INT8 asked for on an ONNX whose opset is below the Q/DQ minimum.
    """
    from reid_edge.backends import detect_format

    fmt = detect_format(path)
    if fmt == "checkpoint":
        return None
    if fmt != "onnx":
        raise CheckpointError(f"{path} is a TensorRT engine; export reads a checkpoint or an FP32 ONNX model")
    from reid_edge.card import read_card
    from reid_edge.deploy.capabilities import MIN_OPSET
    from reid_edge.errors import ConfigError

    try:
        card = read_card(path)
    except CheckpointError:
        raise CheckpointError(f"{path} has no reid-edge model card; bring a third-party model in with "
                              "`reid-edge import` first") from None
    if card.encoding != "fp32":
        raise CheckpointError(f"{path} is already {card.encoding}; export starts from an FP32 model")
    if plan.int8 and (card.opset or 0) < MIN_OPSET:
        raise ConfigError(f"{path.name} has opset {card.opset}; INT8 Q/DQ needs opset >= {MIN_OPSET}")
    return card


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _export_fp16(fp32_path: Path, out: Path, console: Any) -> Path:
    import onnx

    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.deploy.export_onnx import convert_onnx_fp16, save_onnx
    from reid_edge.deploy.parity import backend_agreement, fixed_crops
    from reid_edge.errors import ExportError
    from reid_edge.preprocess import preprocess_for_card

    save_onnx(convert_onnx_fp16(onnx.load(str(fp32_path))), out)
    ref, cand = OnnxRuntimeBackend(fp32_path, device="cpu"), OnnxRuntimeBackend(out, device="cpu")
    agree = backend_agreement(ref, cand, preprocess_for_card(fixed_crops(), ref.card))
    worst = float(min(v.min() for v in agree.values()))
    if worst < 0.999:
        raise ExportError(f"FP16 graph disagrees with FP32 (min cosine {worst:.5f} < 0.999)")
    console.print(f"fp16 graph: min cosine vs FP32 {worst:.6f}")
    return out


@dataclass
class CalibrationSet:
    """Chosen calibration images (preprocessed), the held-aside rest, and where they came from."""

    chosen: list[Path]
    rest: list[Path]
    images: Any
    source: str
    method: str


def _calibration_set(ckpt: dict[str, Any], card: Any, calib: str | Path | None, calib_size: int, method: str,
                     console: Any) -> CalibrationSet:
    from reid_edge.calibration.calib_set import list_images, load_calibration_array, select_images
    from reid_edge.calibration.quantize import CALIBRATION_METHODS
    from reid_edge.errors import ConfigError, DataError

    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown --calib-method '{method}' (choose from {', '.join(CALIBRATION_METHODS)})")
    if calib is not None:
        pool = list_images(calib)
        source = f"folder {calib}"
    else:
        pool = [Path(p) for p in ckpt.get("calibration_images", [])]
        source = f"the {len(pool)} held-aside training images recorded in the checkpoint"
        if not pool:
            what = "the checkpoint records" if ckpt else "an ONNX model records"
            raise DataError(f"{what} no calibration images; pass --calib DIR with held-aside training crops or "
                            "crops from your own cameras (never the evaluation query/gallery)")
    chosen = select_images(pool, calib_size, source=source)
    chosen_set = set(chosen)
    rest = [p for p in pool if p not in chosen_set]
    console.print(f"calibration: {len(chosen)} images from {source}, method {method}")
    with _progress(console) as progress:
        task = progress.add_task("reading calibration crops", total=len(chosen))
        images = load_calibration_array(chosen, card, progress=lambda n: progress.advance(task, n))
    return CalibrationSet(chosen, rest, images, source, method)


def _export_int8(result: ExportResult, fp32_path: Path, fp32_card: Any, calib_set: CalibrationSet,
                 eval_data: str | Path | None, min_cosine: float, console: Any) -> None:
    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.calibration.cache import write_calibration_cache
    from reid_edge.calibration.calib_set import calibration_sha256, load_calibration_array
    from reid_edge.calibration.quantize import ENCODINGS, calibrate, check_trt_qdq, quantize_encoding, tensor_amax
    from reid_edge.calibration.report import build_report, render_report, save_and_judge
    from reid_edge.deploy.export_onnx import save_onnx
    from reid_edge.errors import ExportError

    out_dir = result.out_dir
    images, method, source, rest = calib_set.images, calib_set.method, calib_set.source, calib_set.rest
    with _progress(console) as progress:
        task = progress.add_task(f"calibrating ({method})", total=len(images))
        ranges = calibrate(fp32_path, images, method, on_batch=lambda n: progress.advance(task, n))
    calib_hash = calibration_sha256(images)
    card = fp32_card.replace(calibration_sha256=calib_hash, calibration_method=method)
    paths: dict[str, Path] = {}
    for name, enc in ENCODINGS.items():
        proto = quantize_encoding(fp32_path, ranges, name, card)
        if name == "int8-qdq-trt":
            problems = check_trt_qdq(proto)
            if problems:
                raise ExportError(f"the TensorRT Q/DQ encoding breaks TensorRT's parser rules: {problems[0]} "
                                  f"(+{len(problems) - 1} more)")
        paths[name] = out_dir / enc.filename
        save_onnx(proto, paths[name])
    result.files["int8 onnx (TensorRT)"] = paths["int8-qdq-trt"]
    result.files["int8 onnx (ORT CPU)"] = paths["int8-qdq-cpu"]
    result.files["calibration cache"] = write_calibration_cache(out_dir / "calibration.cache", tensor_amax(ranges))

    if len(rest) >= MIN_REPORT_CROPS:
        report_paths = rest[:MAX_REPORT_CROPS]
        crops_source = f"{len(report_paths)} held-aside images not used for calibration"
        report_images = load_calibration_array(report_paths, fp32_card)
    else:
        report_images = images[:MAX_REPORT_CROPS]
        crops_source = f"{len(report_images)} of the calibration images (no other held-aside images left)"
    fp32 = OnnxRuntimeBackend(fp32_path, device="cpu")
    int8 = {name: OnnxRuntimeBackend(path, device="cpu") for name, path in paths.items()}
    report = build_report(fp32, int8, report_images, crops_source, eval_data, min_cosine=min_cosine, extra={
        "calibration": {"method": method, "images": len(images), "sha256": calib_hash, "source": source},
        "fp32": fp32_path.name,
    })
    result.report = report
    console.print(render_report(report))
    for warning in report["warnings"]:
        console.print(f"warning: {warning}")
    result.files["int8 report"] = out_dir / "int8_report.json"
    save_and_judge(report, out_dir / "int8_report.json")


def _print_files(console: Any, result: ExportResult) -> None:
    from rich.table import Table

    table = Table(title=f"written to {result.out_dir}")
    table.add_column("artifact")
    table.add_column("path")
    for role, path in result.files.items():
        table.add_row(role, str(path))
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        checkpoint: Path | None = typer.Option(None, "--checkpoint", "--model", help="Checkpoint, FP32 ONNX with a "
                                               "card (e.g. from `reid-edge import`) or packaged model name "
                                               "[default: newest checkpoint in runs/train]."),
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

          reid-edge export --model default --int8 --calib Market-1501/bounding_box_train --out exports/intel-0288

        Writes model.onnx (FP32; input 'images' [B,3,H,W]; outputs 'embedding' [B,D] and 'stripes' [B,S,d],
        L2-normalized; model card in metadata_props), and with --int8 model.int8.trt.onnx, model.int8.cpu.onnx,
        calibration.cache and int8_report.json; model.engine (+ .json) with --format engine.
        """
        from reid_edge.deploy.capabilities import parse_batch

        run_export(checkpoint=checkpoint, out=out, format=format, int8=int8, fp16=fp16, calib=calib,
                   calib_size=calib_size, calib_method=calib_method,
                   batch=parse_batch(batch) if batch is not None else None, opset=opset, eval_data=eval_data,
                   min_cosine=min_cosine, overwrite=overwrite)
