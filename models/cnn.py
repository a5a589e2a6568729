"""The 7-layer convnet of the notes (003): six 3x3 convolutions and one linear layer.

The notes give no layer list; this is a plain CIFAR-style stack: convolutions in pairs,
each pair followed by a 2x2 max-pool, then a linear classifier on the flattened maps.
With the default channels (32, 32, 64, 64, 128, 128) a 32x32 image ends as 128x4x4.
"""
from __future__ import annotations

from collections import OrderedDict

import torch.nn as nn

from models.layers import BNSpec, hidden_block, output_block

CONVS_PER_POOL = 2


def build_cnn(
    input_shape: tuple[int, ...],
    classes: int,
    channels: list[int],
    activation: str,
    bn: BNSpec,
    dropout: float = 0.0,
) -> nn.Sequential:
    in_channels, height, width = input_shape
    pools = len(channels) // CONVS_PER_POOL
    if height >> pools == 0 or width >> pools == 0:
        raise ValueError(
            f"a {height}x{width} image is too small for {pools} 2x2 poolings ({len(channels)} conv layers)"
        )
    modules: list[tuple[str, nn.Module]] = []
    for i, out_channels in enumerate(channels, start=1):
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=not bn.cancels_hidden_bias)
        modules += hidden_block(i, conv, out_channels, activation, bn, True)
        if i % CONVS_PER_POOL == 0:
            modules.append((f"pool{i // CONVS_PER_POOL}", nn.MaxPool2d(2)))
            if dropout > 0:
                modules.append((f"drop{i // CONVS_PER_POOL}", nn.Dropout(dropout)))
        in_channels = out_channels
    modules.append(("flatten", nn.Flatten()))
    flat = in_channels * (height >> pools) * (width >> pools)
    modules += output_block(flat, classes, bn)
    return nn.Sequential(OrderedDict(modules))
