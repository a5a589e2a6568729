"""Building blocks shared by the networks: activations and the normalization factory.

A hidden layer's normalization is named bn<i> whatever its kind (batch, group or layer norm),
so probes find it by name; with noise on, a noise<i> layer follows it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from models import batchnorm as scratch
from models.choices import BN_IMPLS, NORMS
from models.noise import ShiftingNoise

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}  # models.choices.ACTIVATIONS
# Every normalization layer the factory builds (their weight and bias are gamma and beta).
NORM_TYPES = (*scratch.BN_TYPES, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class NoiseSpec:
    """The noise after each normalization layer (models/noise.py): unit means ~ U(-mu, mu), unit
    scales ~ U(1, sigma), per-example spread r."""

    mu: float = 0.5
    sigma: float = 1.25
    r: float = 0.1


@dataclass(frozen=True)
class BNSpec:
    """Where normalization goes, which kind, which implementation builds it, and the noise after it."""

    placement: str = "before"  # none | before | after (the nonlinearity)
    layers: str = "all"  # all hidden layers | last: only the output layer, before the softmax
    impl: str = "torch"  # torch | scratch (batch norm only)
    momentum: float | None = 0.1
    eps: float = 1e-5
    norm: str = "batch"  # batch | group | layer
    groups: int = 4  # group norm: groups per layer
    noise: NoiseSpec | None = None  # None: no noise layers

    @property
    def hidden(self) -> bool:
        return self.placement != "none" and self.layers == "all"

    @property
    def output(self) -> bool:
        return self.placement != "none" and self.layers == "last"

    @property
    def cancels_hidden_bias(self) -> bool:
        """BN right after a weight layer subtracts each unit's batch mean, and with it the unit's
        bias (beta takes its role, paper Sec. 3.2). Group and layer norm subtract a mean over
        units, which removes a per-unit bias only where it is the same for all of them."""
        return self.hidden and self.placement == "before" and self.norm == "batch"

    @classmethod
    def from_config(cls, cfg) -> "BNSpec":
        noise = cfg.noise
        return cls(
            placement=cfg.placement,
            layers=cfg.layers,
            impl=cfg.impl,
            momentum=cfg.momentum,
            eps=cfg.eps,
            norm=cfg.norm,
            groups=cfg.groups,
            noise=NoiseSpec(noise.mu, noise.sigma, noise.r) if noise.enabled else None,
        )


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def normalization(spec: BNSpec, num_features: int, spatial: bool) -> nn.Module:
    """The normalization layer for `num_features` units (channels when `spatial`): batch norm (1d
    or 2d), group norm over `spec.groups` groups of units, or layer norm over all of a layer's
    units (for a conv layer GroupNorm with one group: all channels and positions of an example)."""
    if spec.norm == "group":
        return nn.GroupNorm(spec.groups, num_features, eps=spec.eps)
    if spec.norm == "layer":
        return nn.GroupNorm(1, num_features, eps=spec.eps) if spatial else nn.LayerNorm(num_features, eps=spec.eps)
    if spec.norm != "batch":
        raise ValueError(f"unknown bn.norm {spec.norm!r}; choose one of {NORMS}")
    if spec.impl == "torch":
        cls = nn.BatchNorm2d if spatial else nn.BatchNorm1d
    elif spec.impl == "scratch":
        cls = scratch.BatchNorm2d if spatial else scratch.BatchNorm1d
    else:
        raise ValueError(f"unknown bn.impl {spec.impl!r}; choose one of {BN_IMPLS}")
    return cls(num_features, eps=spec.eps, momentum=spec.momentum)


def normalized(
    name: str, spec: BNSpec, num_features: int, spatial: bool, noise_name: str
) -> list[tuple[str, nn.Module]]:
    """The named normalization layer, followed by its noise layer when the spec has noise."""
    block = [(name, normalization(spec, num_features, spatial))]
    if spec.noise is not None:
        block.append((noise_name, ShiftingNoise(spec.noise.mu, spec.noise.sigma, spec.noise.r)))
    return block


def hidden_block(
    index: int, layer: nn.Module, width: int, act: str, spec: BNSpec, spatial: bool
) -> list[tuple[str, nn.Module]]:
    """Named modules of one hidden layer: the weight layer, normalization (if any) and the activation."""
    block = [(f"{'conv' if spatial else 'fc'}{index}", layer)]
    norm = normalized(f"bn{index}", spec, width, spatial, f"noise{index}") if spec.hidden else []
    nonlinearity = [(f"act{index}", activation(act))]
    if spec.placement == "after":
        return block + nonlinearity + norm
    return block + norm + nonlinearity


def output_block(in_features: int, classes: int, spec: BNSpec) -> list[tuple[str, nn.Module]]:
    """The classifier layer, with BN on the logits when bn.layers=last."""
    block = [("out", nn.Linear(in_features, classes, bias=not spec.output))]
    if spec.output:
        block += normalized("out_bn", spec, classes, False, "out_noise")
    return block


def train_only_normalization(model: nn.Module) -> None:
    """Freeze every parameter at its current value except the normalization layers' gamma and
    beta (Frankle et al. 2020: the output layer is frozen too)."""
    trainable = {id(p) for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trainable)
