"""``reid-edge train``: selective contrastive training on unlabeled crops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from ..cli_support import check_choice
from ..names import BACKBONES, DATA_FORMATS, DEVICES
from ..train.config import TrainConfig

_D = TrainConfig()  # help strings show the defaults, never restate them


def build_config(config: Path | None, overrides: dict[str, Any], resume: bool) -> Any:
    """YAML (or, with --resume, the run's own stored config) overridden by the flags given."""
    from reid_edge.artifacts import DEFAULT_RUN_DIR, LAST_CHECKPOINT
    from reid_edge.config import from_dict, load_yaml

    out = Path(overrides.get("out") or DEFAULT_RUN_DIR)
    last = out / LAST_CHECKPOINT
    if resume and config is None and last.is_file():
        from reid_edge.train.checkpoint import load_checkpoint

        stored = dict(load_checkpoint(last)["train_config"])
        stored.update({k: v for k, v in overrides.items() if v is not None})
        return from_dict(TrainConfig, stored)
    return load_yaml(TrainConfig, config, overrides)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        data: Path = typer.Option(None, "--data", help="Dataset folder (crops)."),
        out: Path = typer.Option(None, "--out", help=f"Run folder [default: {_D.out}]."),
        config: Path = typer.Option(None, "--config", help="YAML file with TrainConfig keys (flags override it)."),
        fmt: str = typer.Option(None, "--format", help="|".join(("auto", *DATA_FORMATS)) + f" [default: {_D.format}]."),
        backbone: str = typer.Option(None, "--backbone", help="|".join(BACKBONES) + f" [default: {_D.backbone}]."),
        pretrained: str = typer.Option(None, "--pretrained", help="'imagenet' or a weights file (a reid-edge "
                                       "checkpoint: its backbone; for intel-* the whole model) [default: none]."),
        whole_model: bool = typer.Option(None, "--whole-model", help="With a reid-edge checkpoint as --pretrained, "
                                         "start from its whole model (heads too), not new heads."),
        epochs: int = typer.Option(None, "--epochs", help=f"Epochs [default: {_D.epochs}]."),
        batch_size: int = typer.Option(None, "--batch-size", help=f"Images per batch [default: {_D.batch_size}, "
                                       "the paper's]."),
        height: int = typer.Option(None, "--height", help=f"Input height [default: {_D.height}]."),
        width: int = typer.Option(None, "--width", help=f"Input width [default: {_D.width}]."),
        embed_dim: int = typer.Option(None, "--embed-dim", help=f"Global embedding size [default: {_D.embed_dim}; "
                                      "intel-0288, intel-0277: 256]."),
        num_stripes: int = typer.Option(None, "--num-stripes", help=f"Stripes of the local branch "
                                        f"[default: {_D.num_stripes}]."),
        device: str = typer.Option(None, "--device", help="|".join(DEVICES) + f" [default: {_D.device}]."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
        eval_every: int = typer.Option(None, "--eval-every", help="Evaluate every N epochs (0: never) "
                                        f"[default: {_D.eval_every}]."),
        workers: int = typer.Option(None, "--workers", help="Data loader worker processes (0: main process)."),
        seed: int = typer.Option(None, "--seed", help=f"Random seed [default: {_D.seed}]."),
        tracklet_positives: bool = typer.Option(None, "--tracklet-positives",
                                                help="Crops of one tracklet (harvest manifest) are positives first."),
    ) -> None:
        """Train the selective contrastive re-id model on unlabeled person crops.

        Identity labels are never read for training; a Market-style query/gallery split, when
        present, is used to evaluate (mAP, rank-1) every --eval-every epochs. The run folder
        gets last.pt (every epoch), best.pt (best mAP), log.csv and curves.png.

        Examples:

            reid-edge train --data crops/ --format unlabeled --backbone resnet18 --epochs 20

            reid-edge train --data Market-1501-v15.09.15 --pretrained imagenet --out runs/market

            reid-edge train --out runs/market --resume

            reid-edge train --data DukeMTMC-reID --backbone intel-0288 --embed-dim 256 --out runs/duke

            reid-edge train --data DukeMTMC-reID --pretrained runs/market/last.pt --whole-model --out runs/duke

            torchrun --nproc_per_node 2 -m reid_edge.cli train --data crops/ --batch-size 32
        """
        from reid_edge.errors import ConfigError
        from reid_edge.train.trainer import train

        overrides: dict[str, Any] = {
            "data": str(data) if data is not None else None,
            "out": str(out) if out is not None else None,
            "format": check_choice(fmt, ("auto", *DATA_FORMATS), "--format"),
            "backbone": check_choice(backbone, BACKBONES, "--backbone"),
            "pretrained": pretrained,
            "pretrained_whole": whole_model,
            "epochs": epochs,
            "batch_size": batch_size,
            "height": height,
            "width": width,
            "embed_dim": embed_dim,
            "num_stripes": num_stripes,
            "device": check_choice(device, DEVICES, "--device"),
            "eval_every": eval_every,
            "workers": workers,
            "seed": seed,
            "tracklet_positives": tracklet_positives,
        }
        cfg = build_config(config, overrides, resume)
        if not cfg.data:
            raise ConfigError("no training data: pass --data DIR (or 'data:' in --config)")
        result = train(cfg, resume=resume)
        best = ""
        if result.best_checkpoint is not None and result.best_metric is not None:
            best = f", best {result.best_checkpoint} (mAP {100 * result.best_metric:.1f}%)"
        if os.environ.get("RANK", "0") == "0":  # torchrun: one summary, from the main rank
            typer.echo(f"done: {result.last_checkpoint}{best}")
