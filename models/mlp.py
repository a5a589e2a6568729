"""The fully connected network of the paper's MNIST experiment (Sec. 4.1)."""
from __future__ import annotations

from collections import OrderedDict
from math import prod

import torch.nn as nn

from models.layers import BNSpec, hidden_block, output_block


def build_mlp(
    input_shape: tuple[int, ...],
    classes: int,
    hidden: list[int],
    activation: str,
    bn: BNSpec,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Flatten -> [Linear -> BN -> act -> Dropout] per hidden width -> Linear (-> BN with layers=last).

    A linear layer whose output goes straight into BN has no bias: BN's mean subtraction
    cancels it and beta takes its role (paper Sec. 3.2). Before group or layer norm it keeps it.
    """
    modules: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width_in = prod(input_shape)
    for i, width in enumerate(hidden, start=1):
        linear = nn.Linear(width_in, width, bias=not bn.cancels_hidden_bias)
        modules += hidden_block(i, linear, width, activation, bn, False)
        if dropout > 0:
            modules.append((f"drop{i}", nn.Dropout(dropout)))
        width_in = width
    modules += output_block(width_in, classes, bn)
    return nn.Sequential(OrderedDict(modules))
