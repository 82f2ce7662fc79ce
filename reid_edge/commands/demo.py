"""``reid-edge demo``: the whole site-adaptation loop in one command (the README's main command)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from ..cli_support import MultiValueCommand, check_choice
from ..demo import DemoConfig
from ..names import BACKBONES

_D = DemoConfig()  # help strings show the demo's defaults, never restate them


def demo_command(
    out: Path = typer.Option(_D.out, "--out", help="Folder for every stage's output and the report."),
    real: bool = typer.Option(False, "--real", help="Use the real clips in ../shared/data/videos instead."),
    videos: list[str] = typer.Option([], "--videos", help="With --real: these clips instead of ../shared/data."),
    backbone: str = typer.Option(_D.backbone, "--backbone", help=" | ".join(BACKBONES) + "."),
    pretrained: str = typer.Option(str(_D.pretrained), "--pretrained", help="'imagenet', a weights file, or 'none'."),
    epochs: int | None = typer.Option(None, "--epochs", help=f"Training epochs (default {_D.epochs}: a CPU schedule)."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Use at most N frames per camera."),
    seed: int = typer.Option(_D.seed, "--seed", help="Seed of the synthetic site and of training."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Reuse a non-empty --out folder."),
) -> None:
    """Generate a two-camera site, harvest unlabeled crops, train, export INT8, track and report.

    With no arguments this runs on a CPU-only box in well under 15 minutes and prints where the
    report (report.md / report.html with cross-camera IDF1, FP32 vs INT8 mAP and speed per stage)
    was written.

    Examples:

      reid-edge demo

      reid-edge demo --real --out demo_real

      reid-edge demo --backbone resnet18 --pretrained none --epochs 12 --out demo_r18
    """
    from ..demo import run_demo
    from ..errors import ConfigError
    from ..io import prepare_out_dir

    check_choice(backbone, BACKBONES, "--backbone")
    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs must be >= 1")
    if max_frames is not None and max_frames < 10:
        raise ConfigError("--max-frames must be >= 10")
    prepare_out_dir(out, overwrite=overwrite)
    cfg = DemoConfig(out=out, real=real, real_videos=tuple(videos), backbone=backbone,
                     pretrained=None if pretrained.lower() == "none" else pretrained, max_frames=max_frames,
                     seed=seed)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    run_demo(cfg)


def register(app: typer.Typer) -> None:
    app.command("demo", cls=MultiValueCommand)(demo_command)
