"""Weight initialization schemes: default (PyTorch's), gaussian, uniform; all scaled by `scale`."""
from __future__ import annotations

import torch
import torch.nn as nn

from models.choices import INITS as SCHEMES

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


@torch.no_grad()
def initialize(model: nn.Module, scheme: str, scale: float = 1.0, std: float = 0.01, a: float = 0.001) -> None:
    """Re-initialize every Linear/Conv weight in place. BN layers keep gamma = 1, beta = 0.

    gaussian: W ~ N(0, std^2); uniform: W ~ U(-a, a); both set biases to 0. default keeps
    PyTorch's initialization. Every scheme then multiplies the weights by `scale`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init {scheme!r}; choose one of {SCHEMES}")
    for module in model.modules():
        if not isinstance(module, WEIGHT_LAYERS):
            continue
        if scheme == "gaussian":
            module.weight.normal_(0.0, std)
        elif scheme == "uniform":
            module.weight.uniform_(-a, a)
        if scheme != "default" and module.bias is not None:
            module.bias.zero_()
        module.weight.mul_(scale)
