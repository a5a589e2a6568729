"""Which parameters train (`train.trainable`).

- `all`: every parameter.
- `bn_only`: only the normalization layers' gamma and beta (Frankle, Schwab & Morcos 2020); every
  other parameter, the output layer included, stays at its initial value (requires_grad false).
- `random`: Frankle et al.'s control for `bn_only`, as many parameters chosen at random: for each
  normalization layer of C units (channels), 2 randomly chosen entries of each unit's incoming
  weights in the weight layer that feeds it (the Linear or Conv2d right before it; a conv channel's
  incoming weights are its kernel's entries), C x 2 in all, as many as the layer's gamma and beta.
  Gamma and beta themselves, the output layer and everything else stay at their initial values.
  The choice comes from its own generator seeded by the run's seed, so it is the same on every
  rerun and resume and leaves the global random stream (batch order, dropout) as it was.

A weight tensor that trains only in part keeps two non-persistent buffers beside it (not in the
state_dict nor in checkpoints, but copied with the module): `<param>_trainable`, a boolean mask of
the entries that train, and `<param>_frozen`, the tensor's values when the mode was set. The run's
optimizer multiplies the gradient by the mask before each step, and after the step puts the
frozen entries back to their stored values, so neither momentum nor weight decay (which
torch.optim applies to the whole tensor) can move them: they stay bit-identical.
`keep_frozen_entries(optimizer, model)` installs both as the optimizer's step hooks; a copy of the
optimizer (copy.deepcopy drops hooks) calls `mask_gradients` and `restore_frozen_entries` itself.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from models.layers import NORM_TYPES, train_only_normalization
from models.choices import TRAINABLE

ENTRIES_PER_UNIT = 2  # gamma and beta: two parameters per unit of a normalization layer
MASK_SUFFIX = "_trainable"
FROZEN_SUFFIX = "_frozen"
SELECTION_STREAM = 0x72616E64  # mixed with the seed: the choice's stream is not the initialization's


def set_trainable(model: nn.Module, mode: str, seed: int) -> None:
    """Freeze what `train.trainable=mode` does not train (see the module's docstring)."""
    if mode == "all":
        return
    if mode == "bn_only":
        train_only_normalization(model)
    elif mode == "random":
        train_random_weights(model, seed)
    else:
        raise ValueError(f"unknown train.trainable {mode!r}; choose one of {TRAINABLE}")


def layers_feeding_normalization(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(weight layer name, weight layer, normalization layer) for each normalization layer among the
    model's children, paired with the last Linear/Conv2d before it (through a nonlinearity with BN
    after it)."""
    pairs, last = [], None
    for name, module in model.named_children():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            last = (name, module)
        elif isinstance(module, NORM_TYPES):
            if last is None:
                raise ValueError(f"no weight layer before the normalization layer {name!r}")
            pairs.append((*last, module))
    return pairs


def selection_generator(seed: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), SELECTION_STREAM]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def train_random_weights(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """`train.trainable=random`: freeze everything, then let ENTRIES_PER_UNIT randomly chosen
    incoming weights per unit of each weight layer that feeds a normalization layer train.
    Returns {parameter name: mask of the entries that train}."""
    pairs = layers_feeding_normalization(model)
    if not pairs:
        raise ValueError("train.trainable=random needs normalization layers (it trains as many weights as they have gamma and beta)")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    generator = selection_generator(seed)
    masks = {}
    for name, layer, norm in pairs:
        weight = layer.weight
        units = weight.shape[0]
        affine = sum(p.numel() for p in norm.parameters())
        if affine != ENTRIES_PER_UNIT * units:
            raise ValueError(f"{name} has {units} units, but the normalization after it has {affine} parameters, "
                             f"not {ENTRIES_PER_UNIT} per unit")
        fan_in = weight[0].numel()
        if fan_in < ENTRIES_PER_UNIT:
            raise ValueError(f"{name} has {fan_in} incoming weight(s) per unit, fewer than {ENTRIES_PER_UNIT} to choose")
        chosen = torch.multinomial(torch.ones(units, fan_in), ENTRIES_PER_UNIT, replacement=False, generator=generator)
        mask = torch.zeros(units, fan_in, dtype=torch.bool).scatter_(1, chosen, True).reshape(weight.shape)
        mask = mask.to(weight.device)
        layer.register_buffer("weight" + MASK_SUFFIX, mask, persistent=False)
        layer.register_buffer("weight" + FROZEN_SUFFIX, weight.detach().clone(), persistent=False)
        weight.requires_grad_(True)
        masks[f"{name}.weight"] = mask
    return masks


def partly_trained(model: nn.Module) -> list[tuple[str, nn.Parameter, torch.Tensor, torch.Tensor]]:
    """(parameter name, parameter, mask, frozen values) of every parameter that trains only in part."""
    found = []
    for module_name, module in model.named_modules():
        buffers = dict(module.named_buffers(recurse=False))
        for name, parameter in module.named_parameters(recurse=False):
            mask = buffers.get(name + MASK_SUFFIX)
            if mask is not None:
                full = f"{module_name}.{name}" if module_name else name
                found.append((full, parameter, mask, buffers[name + FROZEN_SUFFIX]))
    return found


def trainable_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{parameter name: mask} of the parameters that train only in part (empty unless train.trainable=random)."""
    return {name: mask for name, _, mask, _ in partly_trained(model)}


def mask_gradients(model: nn.Module) -> None:
    """Zero the gradient of every entry that does not train."""
    _mask_gradients(partly_trained(model))


def restore_frozen_entries(model: nn.Module) -> None:
    """Put every entry that does not train back to its stored value (undoing weight decay's move)."""
    _restore(partly_trained(model))


@torch.no_grad()
def _mask_gradients(entries) -> None:
    for _, parameter, mask, _ in entries:
        if parameter.grad is not None:
            parameter.grad.mul_(mask)


@torch.no_grad()
def _restore(entries) -> None:
    for _, parameter, mask, frozen in entries:
        parameter.copy_(torch.where(mask, parameter, frozen))


def keep_frozen_entries(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Make every step of `optimizer` leave the entries of `model` that do not train as they are."""
    entries = partly_trained(model)
    if entries:
        optimizer.register_step_pre_hook(lambda *_: _mask_gradients(entries))
        optimizer.register_step_post_hook(lambda *_: _restore(entries))


def trainable_parameter_count(model: nn.Module) -> int:
    """How many parameter entries train: every entry of a parameter that requires a gradient,
    only the chosen entries of one that trains in part."""
    masks = {id(p): mask for _, p, mask, _ in partly_trained(model)}
    return sum(int(masks[id(p)].sum()) if id(p) in masks else p.numel() for p in model.parameters() if p.requires_grad)
