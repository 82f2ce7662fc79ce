"""``reid-edge synth``: generate synthetic person crops and multi-camera footage (no downloads)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

DOMAIN_HELP = (
    "Site style: A (default: outdoor campus, daylight), B (indoor mall, warm light), C, D, ... or an "
    "integer. A new domain changes every camera's colour cast, lighting and background for the same "
    "people, like deploying at a new site."
)

SYNTH_HELP = """Generate synthetic pedestrian data: Market-1501-style crops or multi-camera videos.

Deterministic for a given --seed; the same --seed gives the same people in crops and scenes, and
the same --domain gives the same cameras.

Examples:

  reid-edge synth crops --ids 100 --cameras 4 --out data/synth

  reid-edge synth scene --cameras 2 --people 8 --seconds 30 --out data/scene --domain B
"""


def register(app: typer.Typer) -> None:
    synth_app = typer.Typer(help=SYNTH_HELP, no_args_is_help=True, rich_markup_mode=None)

    @synth_app.command("crops")
    def crops(
        ids: int = typer.Option(..., "--ids", help="Number of identities (>= 2); half train, half test."),
        cameras: int = typer.Option(..., "--cameras", help="Number of cameras (>= 2)."),
        out: Path = typer.Option(..., "--out", help="Output folder (Market-1501 layout)."),
        seed: int = typer.Option(0, "--seed", help="Random seed: same seed, identical files."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
        height: int = typer.Option(128, "--height", help="Crop height in pixels."),
        width: int = typer.Option(64, "--width", help="Crop width in pixels."),
        per_camera: int = typer.Option(4, "--per-camera", help="Images per (identity, camera), +-1."),
        domain: str = typer.Option("A", "--domain", help=DOMAIN_HELP),
    ) -> None:
        """Write synthetic person crops in the Market-1501 layout.

        Folders bounding_box_train/, bounding_box_test/ (gallery, with a few pid-0000 distractors)
        and query/; names PPPP_cCs1_FFFFFF_00.jpg. Train and test identities are disjoint; every
        identity is seen by >= 2 cameras. Cameras differ in colour cast, tone, blur, resolution,
        background and viewpoint (front/back, mirror), so a colour histogram does not match across
        cameras, while garment patterns, body shape, hair and bags stay consistent.

        \b
        Examples:
            reid-edge synth crops --ids 100 --cameras 4 --out data/synth
            reid-edge synth crops --ids 100 --cameras 4 --out data/site_b --domain B --seed 1
        """
        from reid_edge.synth.camera import parse_domain
        from reid_edge.synth.crops import generate_crops

        start = time.perf_counter()
        stats = generate_crops(
            out,
            ids,
            cameras,
            seed,
            height=height,
            width=width,
            per_camera=per_camera,
            domain=parse_domain(domain),
            overwrite=overwrite,
        )
        typer.echo(
            f"wrote {stats.train_images} train, {stats.query_images} query, {stats.gallery_images} gallery "
            f"({stats.distractor_images} distractors) crops of {ids} identities x {cameras} cameras to {out} "
            f"in {time.perf_counter() - start:.1f} s"
        )

    @synth_app.command("scene")
    def scene(
        cameras: int = typer.Option(..., "--cameras", help="Number of cameras (>= 2)."),
        people: int = typer.Option(..., "--people", help="Number of people; each visits >= 2 cameras."),
        seconds: float = typer.Option(..., "--seconds", help="Length of every camera's video."),
        out: Path = typer.Option(..., "--out", help="Output folder."),
        seed: int = typer.Option(0, "--seed", help="Random seed: same seed, identical files."),
        fps: int = typer.Option(10, "--fps", help="Frames per second."),
        size: str = typer.Option("640x360", "--size", help="Frame size WIDTHxHEIGHT."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
        domain: str = typer.Option("A", "--domain", help=DOMAIN_HELP),
    ) -> None:
        """Write synthetic multi-camera videos with MOTChallenge ground truth and detections.

        Per camera: camN.mp4 (mp4v), camN.gt.txt (frame,id,x,y,w,h,1,-1,-1,-1; a person has the same
        id in every camera) and camN.det.txt (frame,-1,x,y,w,h,conf,-1,-1,-1 with jitter, ~5% misses
        and low-confidence false positives); scene.json lists cameras and each person's visits.
        People walk across one camera, then after a travel gap across another; they are drawn with
        the crop generator's identities and camera models.

        \b
        Examples:
            reid-edge synth scene --cameras 2 --people 8 --seconds 30 --out data/scene
            reid-edge synth scene --cameras 3 --people 12 --seconds 60 --out data/scene_b --domain B
        """
        from reid_edge.synth.camera import parse_domain
        from reid_edge.synth.scene import generate_scene, parse_size

        start = time.perf_counter()
        info = generate_scene(
            out,
            cameras,
            people,
            seconds,
            seed,
            fps=fps,
            size=parse_size(size),
            domain=parse_domain(domain),
            overwrite=overwrite,
        )
        typer.echo(
            f"wrote {cameras} videos x {info.frames} frames ({info.width}x{info.height} @ {fps} fps), "
            f"{info.gt_boxes} gt and {info.det_boxes} det boxes of {people} people to {out} "
            f"in {time.perf_counter() - start:.1f} s"
        )

    app.add_typer(synth_app, name="synth")
