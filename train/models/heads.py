"""Embedding heads and the re-identification model (backbone + global head + stripe heads).

Output layout (train and eval mode alike, and the ONNX outputs ``embedding``/``stripes``):

* global: ``[B, D]``: global average pooling -> Linear(C, D) -> BatchNorm1d(D) -> L2 normalise;
* stripes: ``[B, S, D/S]``: the feature map cut into ``S`` horizontal stripes of
  ``H // S`` rows each (trailing rows beyond ``S * (H // S)`` are ignored, as in the authors'
  code), each averaged, then a per-stripe Linear(C, D/S) -> BatchNorm1d -> L2 normalise.

``D = S * d`` so that the concatenated stripes ``stripes.reshape(B, D)`` live in the same space
as the global embedding (the method's mixture bank holds both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reid_edge.errors import ConfigError

L2_EPS = 1e-12


def l2_normalize(x: Tensor, eps: float = L2_EPS) -> Tensor:
    """``x / max(||x||, eps)`` over the last dimension (ONNX-friendly: ReduceL2, Max, Div)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`ReIDModel` (stored in checkpoints)."""

    backbone: str = "resnet50"
    num_stripes: int = 8
    embed_dim: int = 2048
    last_stride: int = 1

    def __post_init__(self) -> None:
        if self.num_stripes < 1:
            raise ConfigError(f"num_stripes must be >= 1, got {self.num_stripes}")
        if self.embed_dim < 1 or self.embed_dim % self.num_stripes:
            raise ConfigError(
                f"embed_dim ({self.embed_dim}) must be a positive multiple of "
                f"num_stripes ({self.num_stripes})"
            )
        if self.last_stride not in (1, 2):
            raise ConfigError(f"last_stride must be 1 or 2, got {self.last_stride}")

    @property
    def stripe_dim(self) -> int:
        """Dimension of one stripe embedding, ``embed_dim // num_stripes``."""
        return self.embed_dim // self.num_stripes


class GlobalHead(nn.Module):
    """GAP -> Linear(C, D) -> BatchNorm1d(D) -> L2 normalise."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, embed_dim)
        self.bn = nn.BatchNorm1d(embed_dim)
        nn.init.kaiming_normal_(self.linear.weight, mode="fan_out")
        nn.init.zeros_(self.linear.bias)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, feat: Tensor) -> Tensor:
        """``feat [B, C, H, W]`` -> ``[B, D]`` unit vectors."""
        pooled = feat.mean(dim=(2, 3))
        return l2_normalize(self.bn(self.linear(pooled)))


class StripeHeads(nn.Module):
    """``S`` independent Linear(C, d) -> BatchNorm1d(d) -> L2 heads, evaluated as one batched op.

    Parameters: ``weight [S, d, C]`` and ``bias [S, d]`` (stripe ``i`` is ``nn.Linear`` with
    ``weight[i]``, ``bias[i]``) and one ``BatchNorm1d(S * d)``; a per-channel batch norm over
    the concatenated stripes is exactly ``S`` separate ``BatchNorm1d(d)``. The linear layers keep
    PyTorch's default ``nn.Linear`` initialisation, as in the authors' ``LocalPooling``.
    """

    def __init__(self, in_channels: int, num_stripes: int, stripe_dim: int) -> None:
        super().__init__()
        self.num_stripes = num_stripes
        self.stripe_dim = stripe_dim
        self.weight = nn.Parameter(torch.empty(num_stripes, stripe_dim, in_channels))
        self.bias = nn.Parameter(torch.empty(num_stripes, stripe_dim))
        self.bn = nn.BatchNorm1d(num_stripes * stripe_dim)
        bound = 1.0 / math.sqrt(in_channels)
        for i in range(num_stripes):
            nn.init.kaiming_uniform_(self.weight[i], a=math.sqrt(5))  # nn.Linear's default
        nn.init.uniform_(self.bias, -bound, bound)

    def pool(self, feat: Tensor) -> Tensor:
        """``feat [B, C, H, W]`` -> stripe means ``[B, S, C]``.

        Raises:
            ConfigError: the feature map has fewer rows than stripes.
        """
        height, width = int(feat.shape[2]), int(feat.shape[3])
        stripe_h = height // self.num_stripes
        if stripe_h < 1:
            raise ConfigError(
                f"feature map height {height} is smaller than num_stripes {self.num_stripes}; "
                "use a taller input or fewer stripes"
            )
        used = feat[:, :, : stripe_h * self.num_stripes, :]
        pooled = nn.functional.avg_pool2d(used, kernel_size=(stripe_h, width))  # [B, C, S, 1]
        return pooled.flatten(2).transpose(1, 2)

    def forward(self, feat: Tensor) -> Tensor:
        """``feat [B, C, H, W]`` -> ``[B, S, d]`` unit vectors (per stripe)."""
        pooled = self.pool(feat)  # [B, S, C]
        # [B, S, 1, C] @ [S, C, d] -> [B, S, 1, d]: one broadcast MatMul for all stripes.
        out = torch.matmul(pooled.unsqueeze(2), self.weight.transpose(1, 2)).squeeze(2) + self.bias
        out = self.bn(out.flatten(1)).view(-1, self.num_stripes, self.stripe_dim)
        return l2_normalize(out)


class ReIDModel(nn.Module):
    """Backbone + global head + stripe heads.

    ``forward(x [B, 3, H, W])`` returns ``(global [B, D], stripes [B, S, D/S])``, all rows unit
    length, in train and eval mode.

    Attributes:
        backbone: module with ``out_channels`` whose forward returns the last feature map.
        global_head: :class:`GlobalHead`, or an imported model's own head.
        stripe_heads: :class:`StripeHeads`.
        config: the :class:`ModelConfig` that rebuilds this model.
        pretrained_report: whatever ``load_backbone_weights`` returned, or ``None``.
    """

    def __init__(self, backbone: nn.Module, config: ModelConfig, global_head: nn.Module | None = None) -> None:
        super().__init__()
        channels = int(backbone.out_channels)  # type: ignore[arg-type]
        self.config = config
        self.backbone = backbone
        # an imported model keeps its own trained head (see .imported); else a new GlobalHead
        self.global_head = global_head if global_head is not None else GlobalHead(channels, config.embed_dim)
        self.stripe_heads = StripeHeads(channels, config.num_stripes, config.stripe_dim)
        self.pretrained_report: object | None = None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feat = self.backbone(x)
        return self.global_head(feat), self.stripe_heads(feat)
