"""ResNet-18/34/50 feature extractors with torchvision-compatible parameter names.

The module tree mirrors ``torchvision.models.resnet`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
..., ``layer4.2.bn3``, ``layerN.0.downsample.0/1``) minus ``avgpool``/``fc``, so a torchvision
ImageNet state dict without its ``fc.*`` entries loads with ``strict=True``. torchvision itself is
not imported: its wheels do not import against every torch build we support.

The stride of a bottleneck sits on its 3x3 conv (torchvision's "ResNet v1.5", the layout of its
ImageNet weights). ``last_stride=1`` keeps layer4 at layer3's resolution (a 256x128 crop gives a
16x8 map instead of 8x4), the usual re-identification choice and the authors' default.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reid_edge.errors import ConfigError

# depth -> (block kind, blocks per stage)
_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 bottleneck with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetBackbone(nn.Module):
    """ResNet trunk returning the layer4 feature map ``[B, out_channels, H/16 or H/32, W/16 or W/32]``.

    Args:
        depth: 18, 34 or 50.
        last_stride: stride of layer4, 1 (re-id default) or 2 (ImageNet layout).

    Raises:
        ConfigError: unsupported depth or stride.
    """

    def __init__(self, depth: int = 50, last_stride: int = 1) -> None:
        super().__init__()
        if depth not in _DEPTHS:
            raise ConfigError(f"unsupported ResNet depth {depth}; choose one of {sorted(_DEPTHS)}")
        if last_stride not in (1, 2):
            raise ConfigError(f"last_stride must be 1 or 2, got {last_stride}")
        kind, blocks = _DEPTHS[depth]
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if kind == "basic" else Bottleneck
        self.depth = depth
        self.last_stride = last_stride

        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._cin = 64
        self.layer1 = self._make_layer(block, 64, blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, blocks[3], stride=last_stride)
        self.out_channels: int = 512 * block.expansion
        del self._cin
        self._init_weights()

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, count: int, stride: int
    ) -> nn.Sequential:
        cout = planes * block.expansion
        downsample = None
        if stride != 1 or self._cin != cout:
            downsample = nn.Sequential(_conv1x1(self._cin, cout, stride), nn.BatchNorm2d(cout))
        layers: list[nn.Module] = [block(self._cin, planes, stride, downsample)]
        self._cin = cout
        layers.extend(block(cout, planes) for _ in range(1, count))
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # torchvision's initialisation, so an un-pretrained model starts where torchvision's would.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def resnet_state_dict_keys(depth: int) -> list[str]:
    """The state-dict keys of :class:`ResNetBackbone` (= torchvision's ``resnet{depth}`` minus ``fc.*``)."""
    with torch.device("meta"):
        return list(ResNetBackbone(depth).state_dict().keys())
