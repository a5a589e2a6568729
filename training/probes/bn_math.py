"""The `bn_math` probe (claim C12): the hand-written BN layer (models/batchnorm.py) computes what
torch's does, and its closed-form backward is right.

For every BN layer of the trained network, on the input that layer receives from a fixed training
batch (the first batch of the run's order, network in eval mode), with the layer's trained gamma,
beta and running statistics, in float64:
- `vs_torch`: one training-mode step of this project's BatchNorm1d/2d against torch.nn.BatchNorm1d/2d:
  the largest absolute difference of the outputs, of the gradients with respect to the input, gamma
  and beta (for one fixed random upstream gradient), and of the updated running mean and variance;
- `vs_autograd`: the same three gradients against autograd through BN written with plain tensor
  operations (mean, biased variance, normalize, scale and shift);
- `gradcheck`: torch.autograd.gradcheck of the closed-form backward on small random 1d and 2d inputs.
Each error is the largest over layers; `tolerance` is the bound the claim's verdict applies.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models import batchnorm as scratch
from models.batchnorm import BN_TYPES, BatchNormFunction
from training.probes.base import SKIPPED, Probe, ProbeSettingError, ProbeSettings
from training.probes.layers import capture_inputs

# The keys of this probe's result in summary.json, under "bn_math" (analysis code imports them):
# {LAYERS, TOLERANCE, VS_TORCH: {OUTPUT, GRAD_INPUT, GRAD_WEIGHT, GRAD_BIAS, RUNNING_MEAN, RUNNING_VAR},
# VS_AUTOGRAD: {GRAD_INPUT, GRAD_WEIGHT, GRAD_BIAS}, GRADCHECK: {"1d": passed, "2d": passed}}.
LAYERS = "layers"
TOLERANCE = "tolerance"
VS_TORCH = "vs_torch"
VS_AUTOGRAD = "vs_autograd"
GRADCHECK = "gradcheck"
OUTPUT, GRAD_INPUT, GRAD_WEIGHT, GRAD_BIAS = "output", "grad_input", "grad_weight", "grad_bias"
RUNNING_MEAN, RUNNING_VAR = "running_mean", "running_var"


@dataclass
class BNMathSettings(ProbeSettings):
    tolerance: float = 1.0e-8  # float64: differences above this mean the two computations differ

    def check(self, name: str) -> None:
        if isinstance(self.tolerance, bool) or not isinstance(self.tolerance, (int, float)) or not self.tolerance > 0:
            raise ProbeSettingError(f"probes.{name}.tolerance must be a number > 0, got {self.tolerance!r}")


class BNMath(Probe):
    name = "bn_math"
    Settings = BNMathSettings

    def at_end(self) -> dict:
        model, data, order = self.context.model, self.context.data, self.context.order
        layers = {name: m for name, m in model.named_modules() if isinstance(m, BN_TYPES)}
        if not layers:
            return {SKIPPED: "the network has no BN layer"}
        inputs = capture_inputs(model, data.train_x.index_select(0, order.indices(0)), layers)
        per_layer = [compare_layer(layer, inputs[name], seed=i) for i, (name, layer) in enumerate(layers.items())]
        largest = {group: {key: max(r[group][key] for r in per_layer) for key in per_layer[0][group]}
                   for group in (VS_TORCH, VS_AUTOGRAD)}
        return {LAYERS: list(layers), TOLERANCE: self.settings.tolerance, **largest, GRADCHECK: gradchecks()}


def copy_of(layer: nn.Module, cls: type) -> nn.Module:
    """A float64 `cls` BN layer with `layer`'s parameters, running statistics and settings, in training mode."""
    fresh = cls(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=torch.float64)
    fresh.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in layer.state_dict().items()})
    return fresh.train()


def reference_bn(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """BN in training mode from plain tensor operations, for autograd to differentiate."""
    dims = [0, *range(2, x.dim())]
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).square().mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(shape) + beta.view(shape)


def gradients(out: torch.Tensor, inputs: tuple, upstream: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(out, inputs, upstream))


def compare_layer(layer: nn.Module, x: torch.Tensor, seed: int) -> dict:
    spatial = x.dim() == 4
    ours = copy_of(layer, scratch.BatchNorm2d if spatial else scratch.BatchNorm1d)
    theirs = copy_of(layer, nn.BatchNorm2d if spatial else nn.BatchNorm1d)
    x = x.detach().double().cpu()
    ours.cpu(), theirs.cpu()
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    results = {}
    for name, net in (("ours", ours), ("torch", theirs)):
        xi = x.clone().requires_grad_()
        out = net(xi)
        results[name] = [out.detach(), *gradients(out, (xi, net.weight, net.bias), upstream)]
    xr = x.clone().requires_grad_()
    gamma, beta = ours.weight.detach().clone().requires_grad_(), ours.bias.detach().clone().requires_grad_()
    reference = gradients(reference_bn(xr, gamma, beta, ours.eps), (xr, gamma, beta), upstream)

    def largest(a, b):
        return (a - b).abs().max().item()

    keys = (OUTPUT, GRAD_INPUT, GRAD_WEIGHT, GRAD_BIAS)
    vs_torch = {k: largest(a, b) for k, a, b in zip(keys, results["ours"], results["torch"])}
    vs_torch[RUNNING_MEAN] = largest(ours.running_mean, theirs.running_mean)
    vs_torch[RUNNING_VAR] = largest(ours.running_var, theirs.running_var)
    vs_autograd = {k: largest(a, b) for k, a, b in zip(keys[1:], results["ours"][1:], reference)}
    return {VS_TORCH: vs_torch, VS_AUTOGRAD: vs_autograd}


def gradchecks() -> dict[str, bool]:
    """float64 gradcheck of the closed-form backward (batch statistics) on small random inputs."""
    generator = torch.Generator().manual_seed(0)
    passed = {}
    for key, shape in (("1d", (6, 4)), ("2d", (4, 3, 3, 3))):
        channels = shape[1]
        x = torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_()
        gamma = (1 + 0.1 * torch.randn(channels, generator=generator, dtype=torch.float64)).requires_grad_()
        beta = torch.randn(channels, generator=generator, dtype=torch.float64).requires_grad_()

        def function(x, gamma, beta):
            return BatchNormFunction.apply(x, gamma, beta, None, None, True, 0.0, 1e-5)

        passed[key] = bool(torch.autograd.gradcheck(function, (x, gamma, beta), raise_exception=False))
    return passed
