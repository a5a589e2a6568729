"""Claims C5 and C8 measured on a trained network's own layers.

For every weight layer that feeds a BN layer directly (bn=before), with W its trained weight and
u its input on a training batch: the paper's Sec. 3.3 identities for each scale a,
  BN(aWu) = BN(Wu),  d BN(aWu)/du = d BN(Wu)/du,  a * d BN(aWu)/d(aW) = d BN(Wu)/dW,
as relative errors (the largest over layers), beside the forward error that BN's eps alone
explains (the identities are exact only for eps = 0) and a * ||dL/d(aW)|| / ||dL/dW|| (1 when
larger weights get proportionally smaller gradients); and the effect of a bias placed before
BN (gradient norm relative to the weight's, and output change when the bias is shifted).
The other half of C5, final accuracy across initial weight scales, comes from the sweep over
`init.scale` in configs/experiment/scale_invariance.yaml.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from models.batchnorm import BN_TYPES
from models.bn_identities import bias_before_bn_effect, eps_forward_error, scale_invariance_errors, weight_gradient_ratio


def scale_invariance(context, scales=(0.01, 0.1, 10.0, 100.0)) -> dict:
    layers = layers_feeding_bn(context.model)
    if not layers:
        return {"skipped": "no weight layer feeds a BN layer directly (needs bn=before, bn.layers=all)"}
    batch = context.data.train_x.index_select(0, context.order.indices(0))
    inputs = layer_inputs(context.model, [layer for _, layer, _ in layers], batch)
    identities = {}
    for a in scales:
        per_layer = []
        for _, layer, bn in layers:
            weight, u = layer.weight.detach(), inputs[layer]
            errors = scale_invariance_errors(weight, u, a, bn.eps)
            errors["explained_by_eps"] = eps_forward_error(weight, u, a, bn.eps)
            errors["weight_gradient_ratio_times_a"] = a * weight_gradient_ratio(weight, u, a, bn.eps)
            per_layer.append(errors)
        identities[str(a)] = {key: worst(e[key] for e in per_layer) for key in per_layer[0]}
        ratio = "weight_gradient_ratio_times_a"  # ideally 1, not 0
        identities[str(a)][ratio] = worst((e[ratio] for e in per_layer), ideal=1.0)
    effects = [bias_before_bn_effect(layer.weight.detach(), inputs[layer], bn.eps) for _, layer, bn in layers]
    bias = {key: worst(e[key] for e in effects) for key in effects[0]}
    return {"layers": [name for name, _, _ in layers], "identities": identities, "bias_before_bn": bias}


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


@torch.no_grad()
def layer_inputs(model: nn.Module, layers: list[nn.Module], batch: torch.Tensor) -> dict[nn.Module, torch.Tensor]:
    """The input each of `layers` receives when the model (in eval mode) runs on `batch`."""
    captured = {}
    hooks = [layer.register_forward_pre_hook(lambda m, args: captured.__setitem__(m, args[0].detach())) for layer in layers]
    was_training = model.training
    try:
        model.eval()
        model(batch)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return captured
