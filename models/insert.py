"""Insert batch normalization into a trained network without changing its function (claim C11).

Every hidden Linear / Conv2d gets a BN layer right after it. Its running statistics are the
pooled per-channel mean and biased variance of that layer's outputs over some data, and its
affine parameters undo the normalization (gamma = sqrt(var + eps), beta = mean), so in eval
mode BN(x) = x. In train mode the layers normalize with batch statistics, ready to fine-tune.
"""
from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from models import batchnorm as scratch

__all__ = ["insert_bn", "max_output_difference"]

_BN_CLASSES = {
    "torch": (nn.BatchNorm1d, nn.BatchNorm2d),
    "scratch": (scratch.BatchNorm1d, scratch.BatchNorm2d),
}
_WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


@contextmanager
def _eval_mode(*models: nn.Module):
    """Every module in eval mode inside the block; each module's own flag restored after."""
    flags = [(module, module.training) for model in models for module in model.modules()]
    try:
        for model in models:
            model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


class _PooledMoments:
    """Per-channel mean and biased variance of all values seen, merged exactly batch by batch
    (Chan et al.'s pairwise update, so no average of batch variances and no cancellation)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = self.m2 = None

    def update(self, x: Tensor) -> None:
        values = x.detach().double().transpose(0, 1).reshape(x.shape[1], -1)  # (channels, values)
        n = values.shape[1]
        if n == 0:
            return
        mean = values.mean(1)
        m2 = (values - mean[:, None]).square().sum(1)
        if self.count == 0:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * n / total)
        self.count = total

    @property
    def var(self) -> Tensor:
        return self.m2 / self.count


def _hidden_layers(model: nn.Sequential) -> list[str]:
    """Names of the Linear / Conv2d children except the output layer (`out`, else the last Linear)."""
    children = OrderedDict(model.named_children())
    layers = [name for name, child in children.items() if isinstance(child, _WEIGHT_LAYERS)]
    linears = [name for name in layers if isinstance(children[name], nn.Linear)]
    output = "out" if "out" in children else (linears[-1] if linears else None)
    return [name for name in layers if name != output]


def _bn_name(layer_name: str) -> str:
    match = re.fullmatch(r"(?:fc|conv)(\d+)", layer_name)
    return f"bn{match.group(1)}" if match else f"{layer_name}_bn"


def _output_moments(model: nn.Sequential, names: list[str], batches: Iterable) -> tuple[dict, int]:
    """Pooled moments of each named child's output, running `model` in eval mode on `batches`."""
    moments = {name: _PooledMoments() for name in names}

    def hook(name):
        def collect(module, args, output):
            if isinstance(module, nn.Linear) and output.dim() != 2:
                raise ValueError(f"insert_bn: {name!r} gives {output.dim()}D output; BatchNorm1d after a "
                                 "Linear needs (batch, features)")
            moments[name].update(output)
        return collect

    handles = [model.get_submodule(name).register_forward_hook(hook(name)) for name in names]
    count = 0
    try:
        with _eval_mode(model), torch.no_grad():
            for batch in batches:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)  # (x, y) pairs too
                count += 1
    finally:
        for handle in handles:
            handle.remove()
    if count == 0:
        raise ValueError("insert_bn: `batches` is empty; the statistics need at least one batch")
    unused = [name for name in names if moments[name].count == 0]
    if unused:
        raise ValueError(f"insert_bn: layers {unused} produced no values on `batches`")
    return moments, count


def _identity_bn(layer: nn.Module, moments: _PooledMoments, impl: str, eps: float,
                 momentum: float | None, batches_seen: int) -> nn.Module:
    """A BN layer that is the identity in eval mode for data with these moments."""
    bn1d, bn2d = _BN_CLASSES[impl]
    spatial = isinstance(layer, nn.Conv2d)
    features = layer.out_channels if spatial else layer.out_features
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    bn = (bn2d if spatial else bn1d)(features, eps=eps, momentum=momentum, **factory)
    with torch.no_grad():
        bn.running_mean.copy_(moments.mean)
        bn.running_var.copy_(moments.var)
        bn.weight.copy_((moments.var + eps).sqrt())
        bn.bias.copy_(moments.mean)
        # With momentum=None (cumulative average) training continues the average instead of replacing it.
        bn.num_batches_tracked.fill_(batches_seen)
    return bn


def insert_bn(
    model: nn.Sequential,
    batches: Iterable[Tensor],
    impl: str = "torch",
    eps: float = 1e-5,
    momentum: float | None = 0.1,
) -> nn.Sequential:
    """A copy of `model` with a BN layer right after each hidden Linear (BatchNorm1d) / Conv2d
    (BatchNorm2d), computing the same function in eval mode; returned in eval mode.

    The output layer (child `out`, else the last Linear) gets no BN. Inserted children are named
    bn<i> after fc<i> / conv<i>, otherwise <name>_bn. Statistics come from running the original
    model in eval mode on `batches` (input tensors, or (input, target) pairs). The preceding
    layers keep their biases: BN's beta makes them redundant once trained, but dropping them
    would change the function. `model` itself is left unchanged.
    """
    if impl not in _BN_CLASSES:
        raise ValueError(f"insert_bn: unknown impl {impl!r}; choose one of {sorted(_BN_CLASSES)}")
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"insert_bn: expected an nn.Sequential, got {type(model).__name__}")
    present = [name for name, module in model.named_modules() if isinstance(module, scratch.BN_TYPES)]
    if present:
        raise ValueError(f"insert_bn: the model already has BN layers: {present}")
    hidden = _hidden_layers(model)
    if not hidden:
        raise ValueError("insert_bn: no hidden Linear or Conv2d layer to insert BN after "
                         "(the output layer gets none)")
    new_names = {name: _bn_name(name) for name in hidden}
    taken = {name for name, _ in model.named_children()}
    clashes = sorted({bn for bn in new_names.values() if bn in taken})
    if clashes or len(set(new_names.values())) < len(new_names):
        raise ValueError(f"insert_bn: the names for the new BN layers {list(new_names.values())} "
                         f"collide (already children: {clashes})")

    moments, batches_seen = _output_moments(model, hidden, batches)
    modules = []
    for name, child in copy.deepcopy(model).named_children():
        modules.append((name, child))
        if name in new_names:
            bn = _identity_bn(child, moments[name], impl, eps, momentum, batches_seen)
            modules.append((new_names[name], bn))
    return nn.Sequential(OrderedDict(modules)).eval()


def max_output_difference(a: nn.Module, b: nn.Module, x: Tensor) -> float:
    """Largest absolute difference of the outputs of `a` and `b` on `x`, both in eval mode."""
    with _eval_mode(a, b), torch.no_grad():
        return float((a(x) - b(x)).abs().max())
