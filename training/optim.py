"""The optimizer named by the `optim` config group."""
from __future__ import annotations

import torch

OPTIMIZERS = ("sgd",)


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    """SGD with step size lr * lr_mult (the paper's learning-rate multipliers), momentum and L2."""
    if cfg.name != "sgd":
        raise ValueError(f"unknown optimizer {cfg.name!r}; choose one of {OPTIMIZERS}")
    params = [p for p in params if p.requires_grad]
    return torch.optim.SGD(
        params,
        lr=cfg.lr * cfg.lr_mult,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        fused=True,  # one kernel for all parameters: measurably faster for small nets on CPU
    )
