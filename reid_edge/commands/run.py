"""``reid-edge run``: the multi-camera pipeline (detect, track, embed, match across cameras)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from ..artifacts import DEFAULT_MODEL_SEARCH
from ..cli_support import MultiValueCommand
from ..names import DEFAULT_DETECTOR, DEFAULT_MAX_DISTANCE, DETECTOR_CHOICES


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cams = Table(title="cameras")
    for col in ("camera", "frames", "frames/s", "tracks", "corrupt", "reconnects"):
        cams.add_column(col, justify="right" if col != "camera" else "left")
    for name, c in summary["cameras"].items():
        cams.add_row(name, str(c["frames"]), f"{c['fps']:.1f}", str(c["tracks"]), str(c["corrupt_frames"]),
                     str(c["reconnects"]))
    console.print(cams)
    stages = Table(title="time per stage")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    stages.add_column("ms/frame", justify="right")
    for k, v in summary["stage_seconds"].items():
        stages.add_row(k, f"{v:.2f}", f"{summary['stage_ms_per_frame'][k]:.1f}")
    console.print(stages)
    ids = Table(title=f"{summary['num_identities']} identities, {summary['cross_camera_identities']} seen in "
                      "several cameras")
    ids.add_column("id", justify="right")
    ids.add_column("cameras")
    ids.add_column("tracklets", justify="right")
    ids.add_column("seen (s)", justify="right")
    multi = [i for i in summary["identities"] if len(i["cameras"]) > 1]
    rest = [i for i in summary["identities"] if len(i["cameras"]) <= 1]
    for i in (multi + rest)[:30]:
        ids.add_row(str(i["id"]), ", ".join(i["cameras"]), str(i["tracklets"]), f"{i['first_s']}-{i['last_s']}")
    if len(summary["identities"]) > 30:
        ids.add_row("...", f"{len(summary['identities']) - 30} more in summary.json", "", "")
    console.print(ids)
    if summary["transitions"]:
        console.print("transitions: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary["transitions"].items())))
    if "fleet" in summary:
        f = summary["fleet"]
        console.print(f"fleet: edge {f['edge_id']} (session {f['session']}), {f['messages_published']} messages "
                      f"published, {f['decisions']} decisions, {f['undecided_tracklets']} tracklets undecided, "
                      f"{f['outbox_left']} messages left in the outbox, {f['reconnects']} reconnects")
    console.print(f"{summary['embeddings']} crops embedded in {summary['embed_batches']} batches; "
                  f"wall {summary['wall_seconds']:.1f}s; outputs in {out}")


def run_command(
    cameras: list[str] = typer.Option(None, "--cameras", help="Video files, RTSP/HTTP URLs, webcam indices "
                                      "or image folders (MOT img1/ layout), space-separated (default: the "
                                      "layout's camera sources)."),
    camera_names: list[str] = typer.Option(None, "--camera-names", help="Names for the cameras (default: "
                                           "file stems, or the layout's names)."),
    model: Path = typer.Option(None, "--model", help="Checkpoint, ONNX (FP32/INT8), engine, or a packaged model's "
                               "name (default, intel-0288, intel-0277). Default: the first of "
                               + ", ".join(DEFAULT_MODEL_SEARCH) + ", else the packaged default (intel-0288)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (re-ID model and ONNX detectors; cuda "
                               "is an error where no GPU runtime is present)."),
    detector: str = typer.Option(DEFAULT_DETECTOR, "--detector", help=", ".join(DETECTOR_CHOICES) + " (yolox: "
                                 "the packaged YOLOX-Nano)."),
    detections: Path = typer.Option(None, "--detections", help="Folder of MOT det files <camera>.txt or "
                                    "<camera>.det.txt (replaces the detector)."),
    layout: Path = typer.Option(None, "--layout", help="Camera layout YAML (names, fps, transitions)."),
    config: Path = typer.Option(None, "--config", help="Pipeline YAML: tracker/reid/association sections."),
    out: Path = typer.Option(Path("runs/mtmc"), "--out", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
    max_frames: int = typer.Option(None, "--max-frames", min=1, help="Stop each camera after N frames."),
    reid_every: int = typer.Option(None, "--reid-every", min=1, help="Re-embed a track every K frames."),
    embed_budget: int = typer.Option(None, "--embed-budget", min=1, help="At most N crops embedded per step "
                                     "(all cameras; new tracks first). Lower it for heavy models on CPU."),
    max_distance: float = typer.Option(None, "--max-distance", help="Cross-camera match gate (combined distance, "
                                       "0..2) [default: the model card's match_gate, else "
                                       f"{DEFAULT_MAX_DISTANCE}]."),
    save_video: bool = typer.Option(False, "--save-video", help="Write <camera>.annotated.mp4 to --out."),
    show: bool = typer.Option(False, "--show", help="Live windows (needs a display and a GUI OpenCV)."),
    skip_bad_cameras: bool = typer.Option(False, "--skip-bad-cameras", help="Go on without cameras that "
                                          "cannot be opened."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
    gallery: Path = typer.Option(None, "--gallery", help="SQLite identity gallery: people keep their id across "
                                 "runs and restarts (created when missing)."),
    gallery_max_age: float = typer.Option(30.0, "--gallery-max-age", help="Days an unseen person stays in "
                                          "--gallery."),
    gallery_max_size: int = typer.Option(100_000, "--gallery-max-size", min=1, help="Most people kept in "
                                         "--gallery (the least recently seen go first)."),
    publish: str = typer.Option(None, "--publish", help="Camera fleet: redis://HOST:PORT/DB of the site's "
                                "Redis; tracklets go to `reid-edge associate`, global ids come back."),
    edge_id: str = typer.Option(None, "--edge-id", help="This box's name in the fleet (default: host name)."),
    publish_buffer: Path = typer.Option(None, "--publish-buffer", help="On-disk outbox while Redis is away "
                                        "(default: OUT/.fleet-outbox.sqlite; kept across restarts)."),
    publish_buffer_mb: float = typer.Option(256.0, "--publish-buffer-mb", min=1.0, help="Outbox bound; "
                                            "past it the oldest messages are dropped."),
    decision_wait: float = typer.Option(120.0, "--decision-wait", min=0.0, help="Seconds to wait at the end "
                                        "for the last global ids from the associator."),
) -> None:
    """Detect, track and re-identify people across cameras; write MOT/MTMC results.

    Examples:

      reid-edge run --cameras cam1.mp4 cam2.mp4 --out runs/mtmc

      reid-edge run --cameras scene/cam1.mp4 scene/cam2.mp4 --detections scene --model runs/train/export/model.onnx

      reid-edge run --cameras rtsp://10.0.0.5/live 0 --camera-names door hall --layout layout.yaml --save-video

      reid-edge run --cameras door.mp4 hall.mp4 --publish redis://10.0.0.2:6379/0 --edge-id box1

    Outputs in --out: <camera>.txt (MOT rows, global ids), mtmc.txt (AI City format),
    events.jsonl (one line per tracklet), summary.json. Ctrl-C stops, flushes and prints the summary.
    With --gallery the people seen are kept in an SQLite file and keep their ids in later runs.
    """
    from ..config import load_yaml
    from ..errors import ConfigError, PipelineError
    from ..pipeline.layout import load_layout
    from ..pipeline.runner import PipelineConfig, find_default_model, run_cameras

    if show and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or
                                                           os.environ.get("WAYLAND_DISPLAY")):
        raise PipelineError("--show needs a display (DISPLAY is not set); use --save-video instead")
    cfg = load_yaml(PipelineConfig, config).with_overrides(reid_every, embed_budget, max_distance)
    lay = load_layout(layout) if layout is not None else None
    if not cameras:
        if lay is None or not lay.cameras or any(c.source is None for c in lay.cameras):
            raise ConfigError("no cameras: pass --cameras, or a --layout whose cameras all have a 'source'")
        cameras = [str(c.source) for c in lay.cameras]
    if detections is not None and not detections.is_dir():
        raise ConfigError(f"--detections {detections} is not a folder")
    if gallery_max_age <= 0:
        raise ConfigError("--gallery-max-age must be > 0 (days)")
    from ..pipeline.gallery import GalleryConfig
    if model is None:
        model = find_default_model()
        print(f"model: {model} (default; searched {', '.join(DEFAULT_MODEL_SEARCH)}, then the packaged "
              "model)", file=sys.stderr)

    if publish is not None and gallery is not None:
        raise ConfigError("--gallery with --publish: a fleet's gallery lives with the associator "
                          "(reid-edge associate --gallery PATH)")
    fleet = None
    if publish is not None:
        import socket

        from ..fleet.edge import open_edge

        # before the model and the cameras: a wrong URL is a one-line error right away
        fleet = open_edge(publish, edge_id or socket.gethostname(),
                          publish_buffer or Path(out) / ".fleet-outbox.sqlite", publish_buffer_mb,
                          log=lambda msg: print(f"fleet: {msg}", file=sys.stderr))
    elif edge_id is not None or publish_buffer is not None:
        raise ConfigError("--edge-id and --publish-buffer need --publish")

    def warn(msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr)

    progress_cb = None
    bar = None
    if not no_progress and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       transient=False)
        tasks: dict[str, Any] = {}

        def progress_cb(name: str, frames: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=frames)

        bar.start()
    try:
        summary = run_cameras(
            list(cameras), out, model, overwrite=overwrite, device=device, detector=detector,
            detections_dir=detections, camera_names=list(camera_names) if camera_names else None, layout=lay,
            config=cfg, max_frames=max_frames, save_video=save_video, show=show, skip_bad_cameras=skip_bad_cameras,
            warn=warn, progress=progress_cb, gallery=gallery,
            gallery_config=GalleryConfig(gallery_max_age * 86400.0, gallery_max_size), fleet=fleet,
            fleet_wait_s=decision_wait)
    finally:
        if bar is not None:
            bar.stop()
    _print_summary(summary, out)
    if summary["interrupted"]:
        print(f"interrupted: outputs flushed to {out}", file=sys.stderr)
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command("run", cls=MultiValueCommand)(run_command)
