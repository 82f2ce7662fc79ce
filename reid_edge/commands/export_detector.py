"""``reid-edge export-detector``: the person detector calibrated on the site's footage, INT8 for CPU and TensorRT."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_support import MultiValueCommand


def export_detector_command(
    videos: list[str] = typer.Option(..., "--videos", help="Footage of the site (video files), space-separated."),
    out: Path = typer.Option(Path("runs/detector"), "--out", help="Output folder."),
    model: str = typer.Option(None, "--model", help="A YOLOX ONNX (default: the packaged YOLOX-Nano)."),
    calib_frames: int = typer.Option(64, "--calib-frames", help="Calibration frames (from the first half of "
                                     "each video)."),
    eval_frames: int = typer.Option(60, "--eval-frames", help="Held-out frames (second half) for the report."),
    method: str = typer.Option("percentile", "--method", help="Calibration: percentile, minmax or entropy."),
    gt: list[str] = typer.Option([], "--gt", help="Optional MOT gt.txt per video (same order) for recall and "
                                 "precision in the report."),
    gt_scale: list[float] = typer.Option([], "--gt-scale", help="Scale of each gt's boxes to the video's pixels."),
    engine: bool = typer.Option(False, "--engine", help="Also build a TensorRT INT8 engine (GPU box with "
                                "TensorRT) for the first video's frame size."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
) -> None:
    """Calibrate the detector once on the site's frames and write FP32 + two INT8 Q/DQ encodings.

    Writes detector.onnx (FP32, any input size), detector.int8.cpu.onnx (ONNX Runtime, CPU),
    detector.int8.trt.onnx (TensorRT explicit quantization) and detector_report.json (FP32 vs
    INT8 boxes on held-out frames, and against --gt when given). Use the result with
    `reid-edge run --detector yolox:OUT/detector.int8.cpu.onnx`.

    Examples:

      reid-edge export-detector --videos cam1.mp4 cam2.mp4 --out runs/detector

      reid-edge export-detector --videos pets.avi --gt PETS09-S2L1/gt/gt.txt --gt-scale 0.625
    """
    from ..calibration.detector import DetectorExportConfig, export_detector
    from ..errors import ConfigError
    from ..io import prepare_out_dir

    if method not in ("percentile", "minmax", "entropy"):
        raise ConfigError(f"--method {method}: choose percentile, minmax or entropy")
    if gt and len(gt) != len(videos):
        raise ConfigError(f"--gt: {len(gt)} files for {len(videos)} videos (give one per video, in order)")
    out_dir = prepare_out_dir(out, overwrite=overwrite)
    cfg = DetectorExportConfig(videos=tuple(videos), out=out_dir, model=model, calib_frames=calib_frames,
                               eval_frames=eval_frames, method=method, gt=tuple(gt), gt_scale=tuple(gt_scale))
    result = export_detector(cfg)
    if engine:
        from ..calibration.detector import read_frames
        from ..deploy.detector_engine import build_detector_engine
        from ..pipeline.detectors.yolox import network_size

        frame = read_frames(videos[0], [0])
        if not frame:
            raise ConfigError(f"cannot read a frame of {videos[0]}")
        size = network_size(frame[0][1].shape[:2], tuple(result.report["native_input"]))
        path = build_detector_engine(result.files["int8-qdq-trt"], out_dir / "detector.int8.engine", size)
        print(f"engine: {path}")
    for name, path in result.files.items():
        print(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    app.command("export-detector", cls=MultiValueCommand)(export_detector_command)
