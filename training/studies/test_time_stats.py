"""Claim C7: inference must use population statistics, not the test batch's own.

The trained network is evaluated three ways:
- `ema`: BN uses its running averages (PyTorch's default in eval mode);
- `population`: the paper's Alg. 2, E[x] = mean of batch means and Var[x] = m/(m-1) * mean of
  batch variances over one epoch of training batches of the training batch size;
- `batch`: BN normalizes with the statistics of the test batch the example happens to sit in.

For each test batch size, the test set is cut into batches along `placements` random
permutations, so every test example sits in `placements` different batches. Recorded per mode
and batch size: the mean accuracy over placements, and the largest change of any predicted class
probability of the same example across placements (0 when predictions do not depend on the batch).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from models.batchnorm import BN_TYPES, population_statistics
from training.data import epoch_batches


def test_time_stats(context, batch_sizes=(1, 2, 8, 32, 128, 1000), placements: int = 5) -> dict:
    model = context.model
    if not any(isinstance(m, BN_TYPES) for m in model.modules()):
        return {"skipped": "the network has no BN layer"}
    population = copy.deepcopy(model)
    population_statistics(population, epoch_batches(context.data, context.order))
    modes = {"ema": eval_mode(model), "population": eval_mode(population), "batch": batch_statistics(model)}

    generator = torch.Generator().manual_seed(int(context.cfg.seed))
    permutations = [torch.randperm(len(context.data.test_x), generator=generator) for _ in range(placements)]
    x, y, classes = context.data.test_x, context.data.test_y, context.data.classes
    sizes = sorted({min(size, len(x)) for size in batch_sizes})  # a batch cannot exceed the test set
    accuracy, change, probabilities, undefined = {}, {}, {}, {}
    for mode, net in modes.items():
        accuracy[mode], change[mode] = {}, {}
        for size in sizes:
            key = str(size)
            try:
                probs = torch.stack([predict(net, x, p.to(x.device), size, classes) for p in permutations])
            except ValueError as error:  # BN on batch statistics needs two values per channel
                accuracy[mode][key] = change[mode][key] = None
                undefined[f"{mode}/{key}"] = str(error).splitlines()[0]
                continue
            accuracy[mode][key] = (probs.argmax(-1) == y).float().mean().item()
            change[mode][key] = (probs.max(0).values - probs.min(0).values).max().item()
            probabilities[(mode, size)] = probs[0]
    largest = sizes[-1]
    ema_probs, population_probs = probabilities[("ema", largest)], probabilities[("population", largest)]
    return {
        "batch_sizes": sizes,
        "placements": placements,
        "accuracy": accuracy,
        "max_prediction_change": change,
        "undefined": undefined,
        "ema_vs_population": {
            "accuracy_difference": abs(accuracy["ema"][str(largest)] - accuracy["population"][str(largest)]),
            "prediction_agreement": (ema_probs.argmax(-1) == population_probs.argmax(-1)).float().mean().item(),
        },
    }


def eval_mode(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).eval()


def batch_statistics(model: nn.Module) -> nn.Module:
    """A copy that normalizes with each batch's own statistics (BN in training mode, the rest,
    e.g. dropout, in eval mode). Running averages of the copy may change; nobody reads them."""
    net = copy.deepcopy(model).eval()
    for module in net.modules():
        if isinstance(module, BN_TYPES):
            module.train()
    return net


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, permutation: torch.Tensor, size: int, classes: int) -> torch.Tensor:
    """Class probabilities of every example, computed in batches of exactly `size` examples taken
    along `permutation` (the last batch overlaps the one before it rather than being smaller)."""
    n = len(x)
    size = min(size, n)
    probs = torch.empty(n, classes, device=x.device)
    starts = list(range(0, n - size + 1, size))
    if starts[-1] + size < n:
        starts.append(n - size)
    for start in starts:
        index = permutation[start : start + size]
        probs[index] = torch.softmax(net(x[index]), dim=-1)
    return probs
