"""What the probes that look one training step ahead (`ics`, `landscape`) share: the batch the
loop takes next, the evaluations they measure at, and the loss and its gradients at any
parameters on that batch.

Losses and gradients come from `torch.func.functional_call`: the module's own parameters and
their .grad are never touched. Callers run them inside `bn_batch_statistics`, with the model in
eval mode otherwise (the runner's default): BN normalizes with the batch's statistics as in
training and leaves its running averages alone, while dropout and bn=noisy's noise are off, since
the forward passes a measurement compares must differ in the parameters alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from training.loop import LoopSettings
from training.probes.base import Probe, ProbeContext, ProbeSettings, require_int


def next_batch(context: ProbeContext, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of the loop's next step: after the evaluation at `step` the loop
    takes step + 1, whose batch is the BatchOrder's batch number `step` (0-based)."""
    index = context.order.indices(step)
    return context.data.train_x.index_select(0, index), context.data.train_y.index_select(0, index)


def measurement_interval(context: ProbeContext, every: int) -> int:
    """Steps between measurements: `every` times the loop's evaluation interval (train.eval_every,
    or what train.evals_per_epoch makes of it). Steps that are multiples of it are measured, step 0
    included: the first update, from the initialization, is a step of training like the others. A
    function of the step alone, so a resumed run measures where the uninterrupted run would have."""
    return every * LoopSettings.from_config(context.cfg.train, context.order.steps_per_epoch).eval_every


@dataclass
class LookaheadSettings(ProbeSettings):
    every: int = 1  # measure at every n-th evaluation: steps that are multiples of n x the evaluation interval

    def check(self, name: str) -> None:
        require_int(name, "every", self.every, low=1)


class LookaheadProbe(Probe):
    """A probe that measures on the batch the loop takes next, at every `every`-th evaluation, and
    needs the run's optimizer to know what the next step does."""

    Settings = LookaheadSettings

    def __init__(self, settings, context: ProbeContext):
        super().__init__(settings, context)
        if context.optimizer is None:
            raise ValueError(f"the {self.name} probe needs the run's optimizer (ProbeContext.optimizer)")
        self.optimizer = context.optimizer
        self.interval = measurement_interval(context, settings.every)

    def batch_to_measure(self, step: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The next training batch when the evaluation at `step` is measured, else None."""
        return next_batch(self.context, step) if step % self.interval == 0 else None


def loss_and_gradients(
    model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, wrt: list[str] | None = None
) -> tuple[float, dict[str, torch.Tensor]]:
    """The cross-entropy on (x, y) with the model's parameters replaced by `params`, and its
    gradient with respect to the parameters named in `wrt` (default: all of `params`)."""
    leaves = {name: value.detach().requires_grad_(name in (wrt or params)) for name, value in params.items()}
    loss = F.cross_entropy(functional_call(model, leaves, (x,)), y)
    names = list(wrt or params)
    grads = torch.autograd.grad(loss, [leaves[name] for name in names])
    return loss.item(), dict(zip(names, grads))


def flat(tensors) -> torch.Tensor:
    """Many tensors as one vector."""
    return torch.cat([t.reshape(-1) for t in tensors])
