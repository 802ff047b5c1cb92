"""A backbone package for taskaffinity: install it beside the service (``pip install
examples/backbones``) and task sets may name ``model.backbone: small-resnet``.

A backbone is a factory ``(input_shape, **options) -> nn.Module`` whose module maps a batch
(N, *input_shape) to features (N, width); its keyword options are what a task set may set in
``model.options``.
"""

from __future__ import annotations

from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(4, channels), channels)
    raise ValueError(f"norm must be 'batch' or 'group'; got {kind!r}")


class _Block(nn.Module):
    """Two 3x3 convolutions with normalisation and a skip connection."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), _norm(norm, channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), _norm(norm, channels))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(x + self.body(x))


def small_resnet(input_shape: tuple[int, ...], channels: int = 16, blocks: int = 2,
                 norm: str = "batch") -> nn.Module:
    """A small residual CNN for images (C, H, W): a 3x3 stem with ``channels`` channels,
    ``blocks`` residual blocks, global average pooling; width ``channels``. ``norm``: batch
    (BatchNorm, with running statistics) or group (GroupNorm)."""
    if len(input_shape) != 3:
        raise ValueError(f"small-resnet needs images (C, H, W); got inputs of shape {input_shape}")
    return nn.Sequential(
        nn.Conv2d(input_shape[0], channels, 3, padding=1), _norm(norm, channels), nn.ReLU(),
        *[_Block(channels, norm) for _ in range(blocks)], nn.AdaptiveAvgPool2d(1), nn.Flatten())
