"""The `landscape` probe: how smooth the loss is along the gradient, Santurkar et al. (2018) Sec. 3.2
and Fig. 4, claim C16.

At the chosen evaluations (`every`: every n-th, step 0 included), on the training batch the loop
takes next (the BatchOrder's batch for the coming step): g = the gradient of the loss at the
current parameters theta (all trained parameters as one vector: weights, biases, BN's gamma and
beta); for each factor f of `factors`, theta_f = theta - f * lr * g with lr the optimizer's current
step size (each parameter's group's lr), and the loss L(theta_f) and its gradient g_f there.
- `landscape/loss_range` = max_f L(theta_f) - min_f L(theta_f): the variation of the loss over the
  steps of lr x [0.5, 4] (Fig. 4a). L(theta) itself is left out: the range is over the points a
  step of those sizes reaches, not the descent from the start, which grows with ||g|| alone;
- `landscape/grad_change` = max_f ||g_f - g||: how far the gradient moves over them (Fig. 4b,
  "gradient predictiveness");
- `landscape/beta` = max_f ||g_f - g|| / ||theta_f - theta||: the effective beta-smoothness (Fig. 4c);
- `landscape/grad_norm` = ||g||, the gradient the steps follow: the loss range and the gradient
  change scale with it, so it tells how much of a smaller range or change comes from a smaller g.
Lower is smoother. With train.trainable=random, g and g_f are the gradients of the weight entries
that train (the others' entries are zero), as the run's optimizer sees them. BN normalizes with the batch's statistics, as in training; dropout and
bn=noisy's noise are off, so the points differ in the parameters alone. The parameters are swapped
in functionally: the model, its BN running statistics, every .grad and the optimizer stay exactly
as they were.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from models.trainable import trainable_masks
from training.probes.base import ProbeSettingError
from training.probes.layers import bn_batch_statistics
from training.probes.lookahead import LookaheadProbe, LookaheadSettings, flat, loss_and_gradients

# The keys this probe writes (analysis code imports them).
LOSS_RANGE = "landscape/loss_range"
GRAD_CHANGE = "landscape/grad_change"
BETA = "landscape/beta"
GRAD_NORM = "landscape/grad_norm"
KEYS = (LOSS_RANGE, GRAD_CHANGE, BETA, GRAD_NORM)


@dataclass
class LandscapeSettings(LookaheadSettings):
    factors: list = field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])  # step sizes, x lr

    def check(self, name: str) -> None:
        if not isinstance(self.factors, list) or not self.factors or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in self.factors
        ):
            raise ProbeSettingError(
                f"probes.{name}.factors must be a non-empty list of positive numbers, got {self.factors!r}"
            )
        super().check(name)


class Landscape(LookaheadProbe):
    name = "landscape"
    Settings = LandscapeSettings

    def at_eval(self, step: int) -> dict:
        batch = self.batch_to_measure(step)
        if batch is None:
            return {}
        x, y = batch
        model = self.context.model
        lr = step_sizes(model, self.optimizer)
        theta = {name: p.detach() for name, p in model.named_parameters() if name in lr}
        masks = trainable_masks(model)
        losses, changes, ratios = [], [], []
        with bn_batch_statistics(model):
            _, g = loss_and_gradients(model, theta, x, y)
            g = trained_entries(g, masks)
            for factor in self.settings.factors:
                moves = {name: -factor * lr[name] * g[name] for name in theta}
                loss, g_f = loss_and_gradients(model, {name: theta[name] + moves[name] for name in theta}, x, y)
                g_f = trained_entries(g_f, masks)
                change = (flat(g_f.values()) - flat(g.values())).norm().item()
                distance = flat(moves.values()).norm().item()
                losses.append(loss)
                changes.append(change)
                ratios.append(change / distance if distance > 0 else None)
        defined = [r for r in ratios if r is not None]
        return {
            LOSS_RANGE: max(losses) - min(losses),
            GRAD_CHANGE: max(changes),
            BETA: max(defined) if defined else None,
            GRAD_NORM: flat(g.values()).norm().item(),
        }


def trained_entries(grads: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The gradients with the entries that do not train (train.trainable=random's masks) set to zero."""
    return {name: g * masks[name] if name in masks else g for name, g in grads.items()}


def step_sizes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Each trained parameter's current step size (its group's lr), by name."""
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    return {name: lr_of[id(p)] for name, p in model.named_parameters() if id(p) in lr_of}
