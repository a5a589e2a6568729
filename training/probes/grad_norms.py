"""The `grad_norms` probe: the size of each layer's weight gradient (vanishing gradients, C10).

On a fixed training batch (the first `batch_size` examples of the first epoch's order; default
the training batch size), the norm of the cross-entropy loss's gradient with respect to each
weight layer's weight: `grad/<layer>` for fc<i> / conv<i> and the output layer `out`, and
`grad/first_over_last` = grad of the first hidden layer / grad of `out` (1: gradients keep their
size through depth; << 1: they vanish). The network runs as training sees it (BN with the
batch's own statistics, noise layers on; training.probes.layers.normalization_as_in_training),
dropout off; BN's running statistics and every parameter's .grad are left untouched. Weights that
do not train (train.trainable=bn_only) get their gradient measured all the same.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.probes.base import Probe, ProbeSettings, require_int
from training.probes.layers import hidden_layers, normalization_as_in_training, weight_layers

# The keys this probe writes (analysis code imports them).
FIRST_OVER_LAST = "grad/first_over_last"


def layer_key(layer: str) -> str:
    """grad/<layer>: the gradient norm of weight layer fc<i> / conv<i> / out (any string goes, e.g. a
    regular expression's group: layer_key(r"([^/]+)"))."""
    return f"grad/{layer}"


@dataclass
class GradNormSettings(ProbeSettings):
    batch_size: int | None = None  # null: the run's train.batch_size

    def check(self, name: str) -> None:
        require_int(name, "batch_size", self.batch_size, low=2, allow_none=True)


class GradNorms(Probe):
    name = "grad_norms"
    Settings = GradNormSettings

    def __init__(self, settings, context):
        super().__init__(settings, context)
        size = min(settings.batch_size or context.cfg.train.batch_size, len(context.data.train_x))
        index = context.order.permutation(0)[:size].to(context.data.train_x.device)
        self.x = context.data.train_x.index_select(0, index)
        self.y = context.data.train_y.index_select(0, index)
        self.layers = weight_layers(context.model)
        hidden = hidden_layers(context.model)
        self.first = hidden[0].name if hidden else None

    def at_eval(self, step: int) -> dict:
        model = self.context.model
        weights = [layer.weight for layer in self.layers.values()]
        with normalization_as_in_training(model), requiring_grad(weights):
            loss = F.cross_entropy(model(self.x), self.y)
            grads = torch.autograd.grad(loss, weights)
        metrics = {layer_key(name): g.norm().item() for name, g in zip(self.layers, grads)}
        if self.first is not None and "out" in self.layers:
            last = metrics[layer_key("out")]
            metrics[FIRST_OVER_LAST] = metrics[layer_key(self.first)] / last if last > 0 else None
        return metrics


@contextmanager
def requiring_grad(parameters: list[torch.Tensor]):
    """The parameters require a gradient inside the block; frozen ones are frozen again after it."""
    frozen = [p for p in parameters if not p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(True)
        yield
    finally:
        for p in frozen:
            p.requires_grad_(False)
