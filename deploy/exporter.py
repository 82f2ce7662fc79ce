"""Export orchestration: checkpoint -> FP32 ONNX (+ FP16 / Q/DQ INT8 ONNX) (+ TensorRT engine).

The library behind ``reid-edge export`` (a thin adapter) and ``benchmarks/int8.py``: plan the
export against the capability table, write the artifacts of :data:`reid_edge.artifacts.ARTIFACTS`,
gate each on parity, and report. torch, onnx, onnxruntime and TensorRT are imported inside the
functions only.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reid_edge.artifacts import (
    BEST_CHECKPOINT,
    CALIBRATION_CACHE,
    DEFAULT_RUN_DIR,
    ENGINE,
    ENGINE_SIDECAR,
    EXPORT_SUBDIR,
    FP16_ONNX,
    FP32_ONNX,
    INT8_REPORT,
    LAST_CHECKPOINT,
    filename,
    role_for_encoding,
)
from reid_edge.deploy.capabilities import DEFAULT_OPSET
from reid_edge.errors import CheckpointError

if TYPE_CHECKING:
    from reid_edge.calibration.calib_set import CalibrationSet

MIN_REPORT_CROPS = 16
MAX_REPORT_CROPS = 64


def newest_checkpoint(run_dir: str | Path | None = None) -> Path:
    """The most recently written ``last.pt``/``best.pt`` of the run folder (default ``runs/train``).

    Raises:
        CheckpointError: no checkpoint there.
    """
    run_dir = DEFAULT_RUN_DIR if run_dir is None else run_dir
    candidates = [p for p in (Path(run_dir) / LAST_CHECKPOINT, Path(run_dir) / BEST_CHECKPOINT) if p.is_file()]
    if not candidates:
        raise CheckpointError(f"no checkpoint in {run_dir} (looked for last.pt and best.pt); "
                              "train one with `reid-edge train` or pass --checkpoint")
    return max(candidates, key=lambda p: p.stat().st_mtime)


@dataclass(frozen=True)
class ExportOptions:
    """What to export; ``None`` means the default (see ``reid-edge export --help``)."""

    checkpoint: str | Path | None = None  # a file, a packaged model name, or None: the newest checkpoint
    out: Path | None = None
    format: str | None = None
    int8: bool = False
    fp16: bool = False
    calib: Path | None = None
    calib_size: int | None = None
    calib_method: str | None = None
    batch: tuple[int, int, int] | None = None
    opset: int = DEFAULT_OPSET
    eval_data: Path | None = None
    min_cosine: float | None = None
    overwrite: bool = False

    def calibration_flags(self) -> tuple[str, ...]:
        """The calibration-only flags given (they need ``--int8``)."""
        return tuple(name for name, value in (
            ("--calib", self.calib), ("--calib-size", self.calib_size), ("--calib-method", self.calib_method),
            ("--eval-data", self.eval_data), ("--min-cosine", self.min_cosine)) if value is not None)


@dataclass
class ExportResult:
    """What an export wrote (paths by role) and the INT8 report, if any."""

    out_dir: Path
    checkpoint: Path
    files: dict[str, Path] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None


def run_export(options: ExportOptions, console: Any = None, has_tensorrt: bool | None = None) -> ExportResult:
    """Export a checkpoint as the capability table allows; see ``reid-edge export --help``.

    Raises:
        ConfigError: impossible flag combination. CheckpointError: missing or wrong checkpoint.
        DataError: calibration images missing, too few or unreadable. ExportError: parity gate,
        quantization check, accuracy floor or engine build failed.
    """
    from rich.console import Console

    from reid_edge.calibration.calib_set import DEFAULT_CALIBRATION_SIZE, MIN_CALIBRATION_IMAGES
    from reid_edge.calibration.quantize import CALIBRATION_METHODS
    from reid_edge.calibration.report import DEFAULT_MIN_COSINE
    from reid_edge.deploy.capabilities import plan_export
    from reid_edge.io import prepare_out_dir

    console = console or Console()
    o = options
    plan = plan_export(o.format, o.int8, o.fp16, o.opset, o.batch, o.calibration_flags(), has_tensorrt)
    if o.checkpoint is not None:
        from reid_edge.models import resolve

        ckpt_path = resolve(o.checkpoint)  # a file, or a packaged model's name
    else:
        ckpt_path = newest_checkpoint()
        console.print(f"checkpoint: {ckpt_path} (newest in the default run folder)")
    if not ckpt_path.is_file():
        raise CheckpointError(f"checkpoint {ckpt_path} does not exist")
    onnx_card = onnx_source_card(ckpt_path, plan.int8)
    if o.calib_size is not None and o.calib_size < MIN_CALIBRATION_IMAGES:
        from reid_edge.errors import ConfigError

        raise ConfigError(f"--calib-size {o.calib_size} is below the minimum of {MIN_CALIBRATION_IMAGES} images")
    if o.eval_data is not None and not Path(o.eval_data).is_dir():
        from reid_edge.errors import DataError

        raise DataError(f"--eval-data folder {o.eval_data} does not exist")
    if o.out is not None:
        out_dir = Path(o.out)
    else:  # an ONNX source may be a packaged model: never write into the installed package
        out_dir = Path("runs/export") / ckpt_path.stem if onnx_card is not None else ckpt_path.parent / EXPORT_SUBDIR
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
        calib_set = _calibration_set(ckpt, card, o.calib, o.calib_size or DEFAULT_CALIBRATION_SIZE,
                                     o.calib_method or CALIBRATION_METHODS[0], console)
    out_dir = prepare_out_dir(out_dir, o.overwrite)
    result = ExportResult(out_dir, ckpt_path)
    if onnx_card is None:
        from reid_edge.deploy.export_onnx import export_onnx
        from reid_edge.deploy.parity import parity_gate

        fp32_path, fp32_card = export_onnx(model, card, out_dir / filename(FP32_ONNX), opset=plan.opset,
                                           checkpoint=ckpt_path)
        parity = parity_gate(model, fp32_path, fp32_card)
        result.parity = parity.to_dict()
        console.print(f"parity gate: ONNX Runtime vs PyTorch min cosine global {parity.min_cosine_global:.6f}, "
                      f"stripes {parity.min_cosine_stripes:.6f} (>= {parity.threshold}) ok")
    else:  # already an FP32 ONNX with a card (e.g. from `reid-edge import`): no PyTorch model to compare
        from reid_edge.io import atomic_write_bytes

        fp32_path, fp32_card = out_dir / filename(FP32_ONNX), onnx_card
        atomic_write_bytes(fp32_path, ckpt_path.read_bytes())
        result.parity = {"skipped": "the source is an FP32 ONNX model; copied unchanged"}
        console.print(f"fp32 onnx: {ckpt_path.name} ({card.backbone}) copied unchanged")
    result.files[FP32_ONNX] = fp32_path

    engine_source = fp32_path
    if plan.precision == "fp16":
        result.files[FP16_ONNX] = _export_fp16(fp32_path, out_dir / filename(FP16_ONNX), console)
    if plan.int8:
        assert calib_set is not None
        _export_int8(result, fp32_path, fp32_card, calib_set, o.eval_data,
                     DEFAULT_MIN_COSINE if o.min_cosine is None else o.min_cosine, console)
        engine_source = result.files[role_for_encoding("int8-qdq-trt")]
    if plan.build_engine:
        from reid_edge.backends.trt_backend import import_tensorrt
        from reid_edge.card import read_card
        from reid_edge.deploy.tensorrt_build import build_engine, tensorrt_major

        trt = import_tensorrt()
        if plan.precision == "fp16" and tensorrt_major(str(trt.__version__)) >= 11:
            engine_source = result.files[FP16_ONNX]  # strongly typed: precision comes from the graph
        with _progress(console) as progress:
            tasks: dict[str, Any] = {}

            def on_phase(phase: str, step: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(f"TensorRT: {phase}", total=max(total, 1))
                progress.update(tasks[phase], completed=step)

            engine_path, _ = build_engine(engine_source, out_dir / filename(ENGINE), read_card(engine_source),
                                          plan.precision, plan.batch, progress=on_phase)
        result.files[ENGINE] = engine_path
        result.files[ENGINE_SIDECAR] = out_dir / filename(ENGINE_SIDECAR)
    _print_files(console, result)
    return result


def onnx_source_card(path: Path, int8: bool) -> Any:
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
    if int8 and (card.opset or 0) < MIN_OPSET:
        raise ConfigError(f"{path.name} has opset {card.opset}; INT8 Q/DQ needs opset >= {MIN_OPSET}")
    return card


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _export_fp16(fp32_path: Path, out: Path, console: Any) -> Path:
    import onnx

    from reid_edge.backends.ort_backend import OnnxRuntimeBackend
    from reid_edge.calibration.report import backend_agreement
    from reid_edge.deploy.export_onnx import convert_onnx_fp16, save_onnx
    from reid_edge.deploy.parity import fixed_crops
    from reid_edge.errors import ExportError
    from reid_edge.preprocess import preprocess_for_card

    save_onnx(convert_onnx_fp16(onnx.load(str(fp32_path))), out)
    with OnnxRuntimeBackend(fp32_path, device="cpu") as ref, OnnxRuntimeBackend(out, device="cpu") as cand:
        agree = backend_agreement(ref, cand, preprocess_for_card(fixed_crops(), ref.card))
    worst = float(min(v.min() for v in agree.values()))
    if worst < 0.999:
        raise ExportError(f"FP16 graph disagrees with FP32 (min cosine {worst:.5f} < 0.999)")
    console.print(f"fp16 graph: min cosine vs FP32 {worst:.6f}")
    return out


def _calibration_set(ckpt: dict[str, Any], card: Any, calib: str | Path | None, calib_size: int, method: str,
                     console: Any) -> CalibrationSet:
    from reid_edge.calibration.calib_set import CalibrationSet, list_images, load_calibration_array, split_pool
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
    chosen, rest = split_pool(pool, calib_size, source)
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
        result.files[role_for_encoding(name)] = paths[name]
    result.files[CALIBRATION_CACHE] = write_calibration_cache(out_dir / filename(CALIBRATION_CACHE),
                                                              tensor_amax(ranges))

    if len(rest) >= MIN_REPORT_CROPS:
        report_paths = rest[:MAX_REPORT_CROPS]
        crops_source = f"{len(report_paths)} held-aside images not used for calibration"
        report_images = load_calibration_array(report_paths, fp32_card)
    else:
        report_images = images[:MAX_REPORT_CROPS]
        crops_source = f"{len(report_images)} of the calibration images (no other held-aside images left)"
    with ExitStack() as stack:
        fp32 = stack.enter_context(OnnxRuntimeBackend(fp32_path, device="cpu"))
        int8 = {name: stack.enter_context(OnnxRuntimeBackend(path, device="cpu")) for name, path in paths.items()}
        report = build_report(fp32, int8, report_images, crops_source, eval_data, min_cosine=min_cosine, extra={
            "calibration": {"method": method, "images": len(images), "sha256": calib_hash, "source": source},
            "fp32": fp32_path.name,
        })
    result.report = report
    console.print(render_report(report))
    for warning in report["warnings"]:
        console.print(f"warning: {warning}")
    result.files[INT8_REPORT] = out_dir / filename(INT8_REPORT)
    save_and_judge(report, result.files[INT8_REPORT])


def _print_files(console: Any, result: ExportResult) -> None:
    from rich.table import Table

    table = Table(title=f"written to {result.out_dir}")
    table.add_column("artifact")
    table.add_column("path")
    for role, path in result.files.items():
        table.add_row(role, str(path))
    console.print(table)
