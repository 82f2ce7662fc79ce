"""``reid-edge harvest``: unlabeled training crops from a site's own cameras."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_support import MultiValueCommand
from ..names import DEFAULT_DETECTOR, DETECTOR_CHOICES


def harvest_command(
    cameras: list[str] = typer.Option(..., "--cameras", help="Video files, URLs, webcam indices or image folders."),
    out: Path = typer.Option(..., "--out", help="Output folder for the crops and manifest.csv."),
    detector: str = typer.Option(DEFAULT_DETECTOR, "--detector", help=", ".join(DETECTOR_CHOICES) + " (yolox: "
                                 "the packaged YOLOX-Nano)."),
    device: str = typer.Option("auto", "--device", help="Detector device: auto, cpu or cuda (an error without a "
                               "GPU onnxruntime)."),
    detections: Path | None = typer.Option(None, "--detections", help="Folder of MOT det files per camera."),
    camera_names: list[str] = typer.Option([], "--camera-names", help="Names for the cameras (default: file stem)."),
    every: int = typer.Option(5, "--every", help="At most one crop every N frames per track."),
    max_per_track: int = typer.Option(20, "--max-per-track", help="At most K crops per track."),
    min_height: int = typer.Option(48, "--min-height", help="Reject boxes shorter than this (pixels)."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Stop each camera after N frames."),
    skip_bad_cameras: bool = typer.Option(False, "--skip-bad-cameras", help="Go on without cameras that fail to open."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty output folder."),
) -> None:
    """Detect and track people and save quality-filtered crops as an unlabeled dataset.

    The output is read directly by `reid-edge train --format unlabeled` (camera and tracklet ids
    in the file names and in manifest.csv).

    Examples:

      reid-edge harvest --cameras cam1.mp4 cam2.mp4 --out crops/

      reid-edge harvest --cameras cam1.mp4 cam2.mp4 --detections dets/ --every 3 --out crops/

      reid-edge train --data crops/ --format unlabeled --tracklet-positives --out runs/site
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..errors import ConfigError
    from ..io import prepare_out_dir
    from ..pipeline.harvest import HarvestConfig, harvest

    if max_frames is not None and max_frames < 1:
        raise ConfigError("--max-frames must be >= 1")
    cfg = HarvestConfig(every=every, max_per_track=max_per_track, min_height=min_height)
    out_dir = prepare_out_dir(out, overwrite=overwrite)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(camera: str, done: int, total: int | None) -> None:
            if camera not in tasks:
                tasks[camera] = bar.add_task(f"harvest {camera}", total=total)
            if done % 10 == 0 or (total is not None and done >= total):
                bar.update(tasks[camera], completed=done)

        summary = harvest(cameras, out_dir, detector=detector, detections_dir=detections, device=device,
                          camera_names=camera_names or None, config=cfg, max_frames=max_frames,
                          skip_bad_cameras=skip_bad_cameras, progress=progress)
    table = Table(title=f"harvest -> {out_dir}")
    for col in ("camera", "frames", "tracklets", "crops", "rejected"):
        table.add_column(col)
    for cam, n in summary.crops.items():
        rej = ", ".join(f"{k} {v}" for k, v in sorted(summary.rejected[cam].items())) or "-"
        table.add_row(cam, str(summary.frames[cam]), str(summary.tracklets[cam]), str(n), rej)
    Console().print(table)
    total = sum(summary.crops.values())
    print(f"{total} crops from {sum(summary.tracklets.values())} tracklets in {out_dir} (manifest.csv)")


def register(app: typer.Typer) -> None:
    app.command("harvest", cls=MultiValueCommand)(harvest_command)
