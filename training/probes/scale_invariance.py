"""The `scale_invariance` probe: claims C5 and C8 measured on a trained network's own layers.

For every weight layer that feeds a BN layer directly (bn=before), with W its trained weight and
u its input on a training batch: the paper's Sec. 3.3 identities for each scale a,
  BN(aWu) = BN(Wu),  d BN(aWu)/du = d BN(Wu)/du,  a * d BN(aWu)/d(aW) = d BN(Wu)/dW,
as relative errors (the largest over layers), beside the forward error that BN's eps alone
explains and a * ||dL/d(aW)|| / ||dL/dW|| (1 when larger weights get proportionally smaller
gradients); under `exact`, the same with eps = 0, where the identities are exact in arithmetic,
so only float64 round-off remains; and the effect of a bias placed before
BN (gradient norm relative to the weight's, and output change when the bias is shifted), and how
many of the layers feeding BN carry a bias at all (`layers_with_bias`: 0, the models drop it).
The other half of C5, final accuracy across initial weight scales, comes from the sweep over
`init.scale` in configs/experiment/scale_invariance.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn

from models.batchnorm import BN_TYPES
from training.probes.base import SKIPPED, Probe, ProbeSettingError, ProbeSettings
from training.probes.layers import capture_inputs
from training.probes.bn_identities import (  # noqa: F401 (the identities' keys, exported with this probe's)
    FORWARD,
    GRAD_INPUT,
    GRAD_NORM_RATIO,
    GRAD_WEIGHT,
    OUTPUT_CHANGE,
    bias_before_bn_effect,
    eps_forward_error,
    scale_invariance_errors,
    weight_gradient_ratio,
)

# The keys of this probe's result in summary.json, under "scale_invariance" (analysis code imports
# them): {LAYERS: [...], IDENTITIES: {str(a): {FORWARD, GRAD_INPUT, GRAD_WEIGHT, EXPLAINED_BY_EPS,
# WEIGHT_GRADIENT_RATIO_TIMES_A, EXACT: {FORWARD, GRAD_INPUT, GRAD_WEIGHT, WEIGHT_GRADIENT_RATIO_TIMES_A}}},
# BIAS_BEFORE_BN: {GRAD_NORM_RATIO, OUTPUT_CHANGE, LAYERS_WITH_BIAS}}.
LAYERS = "layers"
IDENTITIES = "identities"
EXPLAINED_BY_EPS = "explained_by_eps"
WEIGHT_GRADIENT_RATIO_TIMES_A = "weight_gradient_ratio_times_a"
EXACT = "exact"
BIAS_BEFORE_BN = "bias_before_bn"
LAYERS_WITH_BIAS = "layers_with_bias"


@dataclass
class ScaleInvarianceSettings(ProbeSettings):
    scales: list = field(default_factory=lambda: [0.01, 0.1, 10.0, 100.0])

    def check(self, name: str) -> None:
        if not isinstance(self.scales, list) or not self.scales or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and a > 0 for a in self.scales
        ):
            raise ProbeSettingError(f"probes.{name}.scales must be a list of positive numbers, got {self.scales!r}")


class ScaleInvariance(Probe):
    name = "scale_invariance"
    Settings = ScaleInvarianceSettings

    def at_end(self) -> dict:
        return scale_invariance(self.context, [float(a) for a in self.settings.scales])


def scale_invariance(context, scales) -> dict:
    layers = layers_feeding_bn(context.model)
    if not layers:
        return {SKIPPED: "no weight layer feeds a BN layer directly (needs bn=before, bn.layers=all)"}
    batch = context.data.train_x.index_select(0, context.order.indices(0))
    inputs = capture_inputs(context.model, batch, {name: layer for name, layer, _ in layers})  # eval mode
    identities = {}
    for a in scales:
        per_layer = []
        for name, layer, bn in layers:
            weight, u = layer.weight.detach(), inputs[name]
            errors = scale_invariance_errors(weight, u, a, bn.eps)
            errors[EXPLAINED_BY_EPS] = eps_forward_error(weight, u, a, bn.eps)
            errors[WEIGHT_GRADIENT_RATIO_TIMES_A] = a * weight_gradient_ratio(weight, u, a, bn.eps)
            exact = scale_invariance_errors(weight, u, a, eps=0.0)
            exact[WEIGHT_GRADIENT_RATIO_TIMES_A] = a * weight_gradient_ratio(weight, u, a, eps=0.0)
            per_layer.append((errors, exact))
        identities[str(a)] = {**largest_errors([e for e, _ in per_layer]), EXACT: largest_errors([x for _, x in per_layer])}
    effects = [bias_before_bn_effect(layer.weight.detach(), inputs[name], bn.eps) for name, layer, bn in layers]
    bias = {key: worst(e[key] for e in effects) for key in effects[0]}
    bias[LAYERS_WITH_BIAS] = sum(layer.bias is not None for _, layer, _ in layers)
    return {LAYERS: [name for name, _, _ in layers], IDENTITIES: identities, BIAS_BEFORE_BN: bias}


def largest_errors(per_layer: list[dict]) -> dict:
    """Each quantity's value farthest from the identity's prediction, over layers."""
    errors = {key: worst(e[key] for e in per_layer) for key in per_layer[0]}
    ratio = WEIGHT_GRADIENT_RATIO_TIMES_A  # ideally 1, not 0
    errors[ratio] = worst((e[ratio] for e in per_layer), ideal=1.0)
    return errors


def worst(values, ideal: float = 0.0) -> float:
    """The value farthest from what the identity predicts (0 for errors)."""
    return max(values, key=lambda v: abs(v - ideal))


def layers_feeding_bn(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(name, weight layer, BN layer) for each Linear/Conv2d whose output goes straight into BN."""
    children = list(model.named_children())
    return [
        (name, layer, following)
        for (name, layer), (_, following) in zip(children, children[1:])
        if isinstance(layer, (nn.Linear, nn.Conv2d)) and isinstance(following, BN_TYPES)
    ]
