"""Re-identification models: backbone registry and :func:`build_model`.

A backbone is any ``nn.Module`` with an ``out_channels: int`` attribute whose forward returns
its last feature map ``[B, out_channels, h, w]``. Heads live in :mod:`.heads`.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from torch import nn

from reid_edge.errors import ConfigError
from reid_edge.names import BACKBONES, IMPORTED_BACKBONES

from .heads import GlobalHead, ModelConfig, ReIDModel, StripeHeads, l2_normalize
from .resnet import ResNetBackbone

__all__ = [
    "BACKBONES",
    "GlobalHead",
    "ModelConfig",
    "ReIDModel",
    "ResNetBackbone",
    "StripeHeads",
    "build_backbone",
    "build_model",
    "l2_normalize",
]


def build_backbone(name: str, last_stride: int = 1) -> nn.Module:
    """Instantiate the backbone called ``name`` (one of :data:`BACKBONES`), randomly initialised.

    Raises:
        ConfigError: unknown name (the message suggests the closest valid one).
    """
    if name.startswith("resnet") and name in BACKBONES:
        return ResNetBackbone(int(name[len("resnet") :]), last_stride=last_stride)
    if name in IMPORTED_BACKBONES:
        from .imported import build_imported_model  # reads the packaged ONNX; imported only when used

        config = ModelConfig(backbone=name, num_stripes=8, embed_dim=256, last_stride=last_stride)
        return build_imported_model(name, config).backbone
    if name == "mobilenetv2":
        from .mobilenetv2 import MobileNetV2Backbone  # written separately; imported only when used

        return MobileNetV2Backbone(last_stride=last_stride)
    close = difflib.get_close_matches(name, BACKBONES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown backbone {name!r} (choose from {', '.join(BACKBONES)}){hint}")


def build_model(
    backbone: str = "resnet50",
    num_stripes: int = 8,
    embed_dim: int = 2048,
    last_stride: int = 1,
    pretrained: str | None = None,
    whole: bool = False,
) -> ReIDModel:
    """Build a :class:`ReIDModel`.

    Args:
        backbone: one of :data:`BACKBONES`; an imported one (``intel-0288``) carries its
            packaged weights and head, needs ``embed_dim`` 256 and 256x128 input, and new stripe
            heads are added on its last feature map.
        num_stripes: number of horizontal stripes ``S``.
        embed_dim: global embedding dimension ``D`` (a multiple of ``S``; stripes get ``D // S``).
        last_stride: stride of the last backbone stage (1 keeps a finer map, the re-id default).
        pretrained: ``None`` (random init), ``"imagenet"`` or a weights file for the backbone,
            resolved by :func:`reid_edge.train.models.pretrained.load_backbone_weights`; its
            report is kept as ``model.pretrained_report``; a reid-edge checkpoint gives its
            backbone (new heads: on the synthetic site-adaptation benchmark the whole site-A
            model as the start lowered site B's cross-camera IDF1, 0.711 -> 0.625, where new
            heads reached 0.745). An imported backbone (``intel-0288``) takes only a reid-edge
            checkpoint of the same configuration, as a whole model: a site continues from its
            own earlier adapted model.
        whole: with a reid-edge checkpoint of the same configuration as ``pretrained``, start
            from its whole model (heads included) for our own backbones too: continuing a model
            that already embeds people (a Market-1501-trained one adapted to a new site).

    Returns:
        The model, in train mode. Rebuild one from ``model.config`` with
        ``build_model(**dataclasses.asdict(config))``.

    Raises:
        ConfigError: invalid sizes or unknown backbone.
        CheckpointError: the pretrained weights are missing or do not match the backbone.
    """
    config = ModelConfig(
        backbone=backbone, num_stripes=num_stripes, embed_dim=embed_dim, last_stride=last_stride
    )
    ckpt = _read_checkpoint(pretrained) if pretrained is not None and (whole or backbone in IMPORTED_BACKBONES) \
        else None
    if backbone in IMPORTED_BACKBONES:
        adapted = _whole_model_start(ckpt, config, str(pretrained)) if ckpt is not None else None
        if adapted is not None:
            return adapted
        if pretrained is not None:
            raise ConfigError(f"{backbone} starts from its own packaged weights; drop --pretrained {pretrained}")
        from .imported import build_imported_model

        return build_imported_model(backbone, config)
    if whole and pretrained is not None:
        start = _whole_model_start(ckpt, config, pretrained) if ckpt is not None else None
        if start is None:
            from reid_edge.errors import CheckpointError

            holds = f"; it holds {_describe(ckpt['model_config'])}" if ckpt and ckpt.get("model_config") else ""
            raise CheckpointError(f"--pretrained {pretrained} is not a reid-edge checkpoint of this model "
                                  f"({_describe(dataclasses.asdict(config))}): a whole-model start needs one{holds}")
        return start
    model = ReIDModel(build_backbone(backbone, last_stride), config)
    if pretrained is not None:
        from .pretrained import load_backbone_weights

        model.pretrained_report = load_backbone_weights(model.backbone, backbone, pretrained)
    return model


def _describe(model_config: dict[str, Any]) -> str:
    c = model_config
    return f"{c.get('backbone')}, {c.get('num_stripes')} stripes, embedding {c.get('embed_dim')}, " \
        f"last stride {c.get('last_stride')}"


def _read_checkpoint(path: str) -> dict[str, Any] | None:
    """The reid-edge checkpoint at ``path`` (read once), or None for ``imagenet``, a missing file or other weights."""
    from pathlib import Path

    from reid_edge.train.checkpoint import FORMAT

    file = Path(path).expanduser()
    if path.strip().lower() == "imagenet" or not file.is_file():
        return None
    import torch

    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file, or not weights-only loadable: the backbone loader says why
        return None
    return ckpt if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT else None


def _whole_model_start(ckpt: dict[str, Any], config: ModelConfig, file: str) -> ReIDModel | None:
    """The whole model of the reid-edge checkpoint ``ckpt`` (read from ``file``) when its configuration is
    ``config``; else None."""
    from pathlib import Path

    from reid_edge.errors import CheckpointError

    if dict(ckpt.get("model_config") or {}) != dataclasses.asdict(config):
        return None
    from .pretrained import PretrainedReport

    if config.backbone in IMPORTED_BACKBONES:
        from .imported import build_imported_model

        model = build_imported_model(config.backbone, config)
    else:
        model = ReIDModel(build_backbone(config.backbone, config.last_stride), config)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{file}: its model does not load into a {config.backbone} model: {exc}") from exc
    model.pretrained_report = PretrainedReport(
        backbone=config.backbone, source=str(Path(file).expanduser()), origin="file",
        layout="reid-edge checkpoint, whole model",
        loaded=len(ckpt["model"]))
    return model
