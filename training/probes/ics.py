"""The `ics` probe: internal covariate shift as Santurkar et al. (2018) define it (Def. 2.1), claim C15.

At the chosen evaluations (`every`: every n-th, step 0 included), on the training batch the loop
takes next (the BatchOrder's batch for the coming step), for each weight layer i (fc<i> / conv<i>
and the output layer `out`):
- G = the gradient of the loss w.r.t. W_i at the current parameters;
- G' = the gradient of the same loss on the same batch w.r.t. W_i once every parameter of the
  modules before layer i (the earlier weight layers, their biases, BN's gamma and beta) has taken
  its update of this step, layer i and everything after it left as they are.
"Its update" is what the run's optimizer does with G: a deep copy of the optimizer, its state
(momentum buffers) included, steps a copy of the model, so momentum and weight decay are part of it
(and with train.trainable=random, that only the chosen weight entries move).
Keys, for every weight layer but the first (whose G' is G): `ics/<layer>/l2` = ||G - G'||
(Frobenius) and `ics/<layer>/cos` = cos(G, G'); `ics/l2` and `ics/cos` average them over those
layers. A large l2 and a small cos mean the layer's gradient changes much when the layers below it
move: much internal covariate shift.
BN normalizes with the batch's statistics, as in training; dropout and bn=noisy's noise are off, so
G and G' differ by the update alone. The run's model, optimizer, BN running statistics and every
.grad stay exactly as they were (only copies move).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from models.trainable import mask_gradients, restore_frozen_entries
from training.probes.layers import bn_batch_statistics, weight_layers
from training.probes.lookahead import LookaheadProbe, loss_and_gradients

# The keys this probe writes (analysis code imports them).
STATS = ("l2", "cos")
L2 = "ics/l2"  # the mean over layers of ics/<layer>/l2
COS = "ics/cos"  # the mean over layers of ics/<layer>/cos


def layer_key(layer: str, stat: str) -> str:
    """ics/<layer>/<stat>, stat in STATS, for weight layer fc<i> / conv<i> / out (any string goes,
    e.g. a regular expression's group: layer_key(r"([^/]+)", "l2"))."""
    return f"ics/{layer}/{stat}"


class ICS(LookaheadProbe):
    name = "ics"

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.shifted_layers = list(weight_layers(context.model))[1:]

    def at_eval(self, step: int) -> dict:
        batch = self.batch_to_measure(step)
        if not self.shifted_layers or batch is None:
            return {}
        x, y = batch
        shifts = gradient_shifts(self.context.model, self.optimizer, x, y, self.shifted_layers)
        metrics = {}
        for layer, (g, shifted) in shifts.items():
            metrics[layer_key(layer, "l2")] = (g - shifted).norm().item()
            metrics[layer_key(layer, "cos")] = cosine(g, shifted)
        metrics[L2] = mean([metrics[layer_key(layer, "l2")] for layer in shifts])
        metrics[COS] = mean([metrics[layer_key(layer, "cos")] for layer in shifts])
        return metrics


def gradient_shifts(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, layers: list[str]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (G, G')} for each weight layer named in `layers` (see the module's docstring)."""
    clone, clone_optimizer = copy.deepcopy((model, optimizer))  # one copy: the optimizer copy steps the model copy
    params = dict(clone.named_parameters())
    current = {name: p.detach().clone() for name, p in params.items()}
    modules = [name for name, _ in clone.named_children()]
    with bn_batch_statistics(clone):
        _, grads = loss_and_gradients(clone, current, x, y)
        for name, p in params.items():
            p.grad = grads[name].clone()  # G itself stays as computed
        mask_gradients(clone)  # what the run's optimizer does around its step with train.trainable=random
        clone_optimizer.step()  # (a copy of an optimizer has no step hooks)
        restore_frozen_entries(clone)
        shifts = {}
        for layer in layers:
            earlier = set(modules[: modules.index(layer)])
            mixed = {name: p.detach() if name.split(".")[0] in earlier else current[name] for name, p in params.items()}
            weight = f"{layer}.weight"
            _, shifted = loss_and_gradients(clone, mixed, x, y, wrt=[weight])
            shifts[layer] = (grads[weight], shifted[weight])
    return shifts


def cosine(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """cos of the angle between two tensors as vectors; None when either is zero."""
    norms = (a.norm() * b.norm()).item()
    return (a * b).sum().item() / norms if norms > 0 else None


def mean(values: list) -> float | None:
    """The mean of the values that are defined (None where none is)."""
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None
