"""Building blocks shared by the networks: activations and the BN factory."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
PLACEMENTS = ("none", "before", "after")
BN_LAYERS = ("all", "last")
BN_IMPLS = ("torch", "scratch")


@dataclass(frozen=True)
class BNSpec:
    """Where batch normalization goes and which implementation builds it."""

    placement: str = "before"  # none | before | after (the nonlinearity)
    layers: str = "all"  # all hidden layers | last: only the output layer, before the softmax
    impl: str = "torch"  # torch | scratch
    momentum: float | None = 0.1
    eps: float = 1e-5

    @property
    def hidden(self) -> bool:
        return self.placement != "none" and self.layers == "all"

    @property
    def output(self) -> bool:
        return self.placement != "none" and self.layers == "last"

    @classmethod
    def from_config(cls, cfg) -> "BNSpec":
        return cls(
            placement=cfg.placement,
            layers=cfg.layers,
            impl=cfg.impl,
            momentum=cfg.momentum,
            eps=cfg.eps,
        )


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def batchnorm(spec: BNSpec, num_features: int, spatial: bool) -> nn.Module:
    """A BN layer for `num_features` channels: 2d over images when `spatial`, else 1d."""
    if spec.impl == "torch":
        cls = nn.BatchNorm2d if spatial else nn.BatchNorm1d
    elif spec.impl == "scratch":
        from models import batchnorm as scratch

        cls = scratch.BatchNorm2d if spatial else scratch.BatchNorm1d
    else:
        raise ValueError(f"unknown bn.impl {spec.impl!r}; choose one of {BN_IMPLS}")
    return cls(num_features, eps=spec.eps, momentum=spec.momentum)


def hidden_block(
    index: int, layer: nn.Module, width: int, act: str, spec: BNSpec, spatial: bool
) -> list[tuple[str, nn.Module]]:
    """Named modules of one hidden layer: the weight layer, BN (if any) and the activation."""
    block = [(f"{'conv' if spatial else 'fc'}{index}", layer)]
    norm = [(f"bn{index}", batchnorm(spec, width, spatial))] if spec.hidden else []
    nonlinearity = [(f"act{index}", activation(act))]
    if spec.placement == "after":
        return block + nonlinearity + norm
    return block + norm + nonlinearity


def output_block(in_features: int, classes: int, spec: BNSpec) -> list[tuple[str, nn.Module]]:
    """The classifier layer, with BN on the logits when bn.layers=last."""
    block = [("out", nn.Linear(in_features, classes, bias=not spec.output))]
    if spec.output:
        block.append(("out_bn", batchnorm(spec, classes, spatial=False)))
    return block
