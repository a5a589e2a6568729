"""The `test_time_stats` probe (claim C7): inference must use population statistics, not the test batch's own.

At the end of the run the trained network is evaluated three ways:
- `ema`: BN uses its running averages (PyTorch's default in eval mode);
- `population`: the paper's Alg. 2, E[x] = mean of batch means and Var[x] = m/(m-1) * mean of
  batch variances over one epoch of training batches of the training batch size;
- `batch`: BN normalizes with the statistics of the test batch the example happens to sit in.
With bn.eval_stats=population the run has already replaced its running averages by Alg. 2's;
`ema` then uses the running averages as they were before (kept by train.py), so both are honest.

The test set is cut into batches of each test batch size along random permutations. With `batch`
statistics, each example sits in `placements` different batches per size; recorded per size: the
mean accuracy over placements and the largest change of any predicted class probability of the
same example across placements. With `ema` and `population` a prediction cannot depend on its
batch (eval mode), so one placement per size is evaluated, and the change is measured against the
same mode's predictions at the largest size: 0 when predictions do not depend on batch size or
composition. Batch size 1 with batch statistics is undefined (one value per channel) and recorded
as such.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from models.batchnorm import BN_TYPES, population_statistics
from training.data import epoch_batches
from training.probes.base import SKIPPED, Probe, ProbeSettings, ProbeSettingError, require_int

log = logging.getLogger(__name__)

# The keys of this probe's result in summary.json, under "test_time_stats" (analysis code imports them).
EMA, POPULATION, BATCH = "ema", "population", "batch"  # where BN's statistics come from
MODES = (EMA, POPULATION, BATCH)
BATCH_SIZES = "batch_sizes"  # the test batch sizes measured
PLACEMENTS = "placements"
ACCURACY = "accuracy"  # {mode: {test batch size (a string): accuracy}}
MAX_PREDICTION_CHANGE = "max_prediction_change"  # {mode: {test batch size (a string): change}}
UNDEFINED = "undefined"  # {"<mode>/<size>": why it is undefined}
EMA_VS_POPULATION = "ema_vs_population"  # {ACCURACY_DIFFERENCE: ..., PREDICTION_AGREEMENT: ...}
ACCURACY_DIFFERENCE = "accuracy_difference"
PREDICTION_AGREEMENT = "prediction_agreement"


@dataclass
class TestTimeSettings(ProbeSettings):
    batch_sizes: list = field(default_factory=lambda: [1, 2, 8, 32, 128, 1000])
    placements: int = 5  # random test-set permutations for batch statistics

    def check(self, name: str) -> None:
        sizes = self.batch_sizes
        if not isinstance(sizes, list) or not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ProbeSettingError(f"probes.{name}.batch_sizes must be a list of positive whole numbers, got {sizes!r}")
        require_int(name, "placements", self.placements, low=1)


class TestTimeStats(Probe):
    name = "test_time_stats"
    Settings = TestTimeSettings

    def at_end(self) -> dict:
        context = self.context
        model = context.model
        if not any(isinstance(m, BN_TYPES) for m in model.modules()):
            return {SKIPPED: "the network has no BN layer"}
        modes = {EMA: ema_model(model, context.ema_bn_state), POPULATION: copy.deepcopy(model).eval(),
                 BATCH: batch_statistics(model)}
        if context.ema_bn_state is None:  # the run kept its running averages: compute Alg. 2 here
            population_statistics(modes[POPULATION], epoch_batches(context.data, context.order))

        x, y, classes = context.data.test_x, context.data.test_y, context.data.classes
        generator = torch.Generator().manual_seed(int(context.cfg.seed))
        permutations = [torch.randperm(len(x), generator=generator).to(x.device) for _ in range(self.settings.placements)]
        sizes = sorted({min(size, len(x)) for size in self.settings.batch_sizes})  # a batch cannot exceed the test set
        accuracy, change, undefined, reference = {}, {}, {}, {}
        for mode, net in modes.items():
            accuracy[mode], change[mode] = {}, {}
            for size in reversed(sizes):  # largest first: the reference of the eval-mode comparisons
                log.info("test_time_stats: %s statistics, test batch size %d", mode, size)
                used = permutations if mode == BATCH else permutations[:1]
                try:
                    probs = torch.stack([predict(net, x, p, size, classes) for p in used])
                except ValueError as error:  # BN on batch statistics needs two values per channel
                    accuracy[mode][str(size)] = change[mode][str(size)] = None
                    undefined[f"{mode}/{size}"] = str(error).splitlines()[0]
                    continue
                reference.setdefault(mode, probs[0])
                compared = probs if mode == BATCH else torch.stack([reference[mode], probs[0]])
                accuracy[mode][str(size)] = (probs.argmax(-1) == y).float().mean().item()
                change[mode][str(size)] = (compared.max(0).values - compared.min(0).values).max().item()
            accuracy[mode] = dict(sorted(accuracy[mode].items(), key=lambda kv: int(kv[0])))
            change[mode] = dict(sorted(change[mode].items(), key=lambda kv: int(kv[0])))
        largest = str(sizes[-1])
        return {
            BATCH_SIZES: sizes,
            PLACEMENTS: self.settings.placements,
            ACCURACY: accuracy,
            MAX_PREDICTION_CHANGE: change,
            UNDEFINED: undefined,
            EMA_VS_POPULATION: {
                ACCURACY_DIFFERENCE: abs(accuracy[EMA][largest] - accuracy[POPULATION][largest]),
                PREDICTION_AGREEMENT: (reference[EMA].argmax(-1) == reference[POPULATION].argmax(-1)).float().mean().item(),
            },
        }


def ema_model(model: nn.Module, ema_bn_state: dict | None) -> nn.Module:
    """A copy in eval mode with BN's running averages (those kept before Alg. 2 replaced them, if it did)."""
    net = copy.deepcopy(model).eval()
    if ema_bn_state is not None:
        net.load_state_dict(ema_bn_state, strict=False)
    return net


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
