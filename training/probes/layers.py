"""Finding a network's hidden layers and capturing what flows through them.

The networks in `models/` name their modules fc<i> / conv<i> (weight layer), bn<i> (the layer's
normalization: BN, or group or layer norm with bn.norm), noise<i> (bn=noisy) and act<i>
(nonlinearity); probes key their measurements by the weight layer's name, the layer whose output
(after BN, where BN comes before the nonlinearity) is the nonlinearity's input.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn

from models.batchnorm import BN_TYPES
from models.noise import ShiftingNoise


@dataclass(frozen=True)
class HiddenLayer:
    name: str  # fc<i> | conv<i>
    weight: nn.Module
    activation: nn.Module
    bn: nn.Module | None  # this layer's normalization (bn<i>), before or after the nonlinearity


def hidden_layers(model: nn.Module) -> list[HiddenLayer]:
    """The hidden layers of a models/ network, in order."""
    children = dict(model.named_children())
    layers = []
    for name, module in children.items():
        match = re.fullmatch(r"(?:fc|conv)(\d+)", name)
        if match and f"act{match.group(1)}" in children:
            index = match.group(1)
            layers.append(HiddenLayer(name, module, children[f"act{index}"], children.get(f"bn{index}")))
    return layers


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear / Conv2d child by name (hidden layers and the output layer `out`)."""
    return {name: m for name, m in model.named_children() if isinstance(m, (nn.Linear, nn.Conv2d))}


def per_unit(values: torch.Tensor) -> torch.Tensor:
    """(N, C) or (N, C, H, W) -> (C, values): each unit's (channel's) values over examples and positions."""
    return values.transpose(0, 1).reshape(values.shape[1], -1)


@torch.no_grad()
def capture_inputs(model: nn.Module, x: torch.Tensor, modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The input each of `modules` receives when `model` runs on `x` (in its current mode)."""
    captured: dict[str, torch.Tensor] = {}

    def hook(key):
        return lambda module, args: captured.__setitem__(key, args[0].detach())

    handles = [module.register_forward_pre_hook(hook(key)) for key, module in modules.items()]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return captured


@contextmanager
def bn_batch_statistics(model: nn.Module):
    """Inside the block BN layers normalize with the statistics of the batch they see, as in
    training, without touching their running averages; every other module keeps its mode."""
    layers = [m for m in model.modules() if isinstance(m, BN_TYPES)]
    saved = [(m, m.training, m.track_running_stats) for m in layers]
    try:
        for m in layers:
            m.train()
            m.track_running_stats = False
        yield
    finally:
        for m, training, tracking in saved:
            m.training, m.track_running_stats = training, tracking


@contextmanager
def normalization_as_in_training(model: nn.Module):
    """Inside the block the network transforms a batch as training does, without changing any
    state: BN normalizes with the batch's statistics (running averages untouched, as in
    bn_batch_statistics) and the noise layers of bn=noisy add their noise (its draws come from the
    global random state, which the probe runner restores); every other module keeps its mode."""
    noise = [(m, m.training) for m in model.modules() if isinstance(m, ShiftingNoise)]
    with bn_batch_statistics(model):
        try:
            for m, _ in noise:
                m.train()
            yield
        finally:
            for m, training in noise:
                m.training = training


def bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every BN layer's buffers, by state_dict name."""
    names = {name for name, m in model.named_modules() if isinstance(m, BN_TYPES)}
    return {k: v.clone() for k, v in model.state_dict().items() if k.rsplit(".", 1)[0] in names}
