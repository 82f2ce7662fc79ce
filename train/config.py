"""Training configuration: one frozen dataclass, loaded from YAML and overridden by CLI flags.

Defaults follow the authors' ``configs/test.yml`` (Pang et al., code pangbo1997/Unsup_ReID):
SGD with lr 1e-3, momentum 0.9, weight decay 5e-4, **8 images per batch** (``IMS_PER_BATCH: 8``;
a larger batch trains faster on a GPU but is not the paper's setting), 50 epochs, 256x128
input, 8 stripes, a 2048-d embedding, last stride 1, and a constant learning rate (their
``STEPS: [200]`` never triggers within 50 epochs). The method's own hyper-parameters live in
:class:`reid_edge.train.method.MethodConfig` under the ``method:`` key.

Example YAML::

    backbone: resnet18
    epochs: 20
    batch_size: 16
    method:
      lambda_c: 0.0   # a single camera: no cross-camera encouragement
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reid_edge.artifacts import DEFAULT_RUN_DIR
from reid_edge.errors import ConfigError

from .method import MethodConfig

DataFormat = Literal["auto", "market1501", "dukemtmc", "msmt17", "cuhk03", "folder", "unlabeled"]
Backbone = Literal["resnet50", "resnet34", "resnet18", "mobilenetv2"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; stored in every checkpoint as ``train_config``.

    Attributes:
        data: dataset root folder.
        format: dataset layout; ``auto`` picks from the folder's content (see
            :func:`reid_edge.train.data.datasets.detect_format`).
        cuhk03_variant: ``detected`` or ``labeled`` boxes for CUHK03-NP.
        out: run folder (``last.pt``, ``best.pt``, ``log.csv``, ``curves.png``).
        pretrained: None (random initialization), ``imagenet`` or a path to backbone weights.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a GradScaler);
            always off on CPU.
        channels_last: NHWC memory format on CUDA.
        eval_every: evaluate every N epochs (and after the last) when the data has a
            query/gallery split; 0 disables.
        calib_holdout: training images held aside (never trained on) for INT8 calibration;
            None means ``min(256, max(32, 2% of N))``; 0 disables.
        tracklet_positives: treat crops of one tracklet (from a harvest manifest) as positives.
        eval_distance: ``combined`` (the paper's test distance) or ``global`` (deployed model).
    """

    data: str | None = None
    format: DataFormat = "auto"
    cuhk03_variant: Literal["detected", "labeled"] = "detected"
    out: str = str(DEFAULT_RUN_DIR)
    backbone: Backbone = "resnet50"
    pretrained: str | None = None
    epochs: int = 50
    batch_size: int = 8
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    height: int = 256
    width: int = 128
    num_stripes: int = 8
    embed_dim: int = 2048
    last_stride: int = 1
    method: MethodConfig = field(default_factory=MethodConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    eval_every: int = 5
    eval_distance: Literal["combined", "global"] = "combined"
    eval_batch_size: int = 64
    workers: int = 2
    seed: int = 0
    calib_holdout: int | None = None
    tracklet_positives: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2 (batch normalization needs two images)"),
            (self.lr > 0, "lr must be > 0"),
            (self.height >= 16 and self.width >= 8, "height/width too small (need at least 16x8)"),
            (self.num_stripes >= 1, "num_stripes must be >= 1"),
            (self.embed_dim >= 1, "embed_dim must be >= 1"),
            (self.last_stride in (1, 2), "last_stride must be 1 or 2"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
            (self.workers >= 0, "workers must be >= 0"),
            (self.calib_holdout is None or self.calib_holdout >= 0, "calib_holdout must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid training configuration: {message}")


def default_calib_holdout(num_train: int) -> int:
    """``min(256, max(32, 2% of N))``, never more than a tenth of the training set."""
    n = min(256, max(32, round(0.02 * num_train)))
    return min(n, num_train // 10)
