"""The optimizer named by the `optim` config group."""
from __future__ import annotations

import torch

OPTIMIZERS = ("sgd", "adam")


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    """SGD (momentum, L2) or Adam, with step size lr * lr_mult (the paper's learning-rate multipliers).
    fused=True: one kernel for all parameters, measurably faster for small nets on CPU."""
    params = [p for p in params if p.requires_grad]
    lr = cfg.lr * cfg.lr_mult
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True)
    if cfg.name == "adam":
        return torch.optim.Adam(
            params, lr=lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True
        )
    raise ValueError(f"unknown optimizer {cfg.name!r}; choose one of {OPTIMIZERS}")
