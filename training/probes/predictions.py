"""The `predictions` probe: what the network predicts, so that "does not train" is defined by what it is.

At every evaluation, over the test set (its first `examples` examples when set), with the network as
it is evaluated (eval mode: BN with its running averages, as `test/acc`):
- `pred/majority_share`: the fraction of the examples predicted as the most often predicted class
  (1: every example gets the same class; about 1 / classes for a balanced test set and a good net);
- `pred/classes`: how many distinct classes are predicted at all;
- `pred/entropy`: the mean entropy of the softmax output in nats (ln 10 = 2.303 for a uniform
  output over 10 classes, 0 for a one-hot one).
A net that does not train predicts one class (majority share near 1, one class) with an output
near uniform (entropy near ln classes, `test/loss` near ln classes). One forward pass over the
examples in batches of `train.eval_batch_size`; nothing in the run changes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from training.probes.base import Probe, ProbeSettings, require_int

# The keys this probe writes (analysis code imports them).
MAJORITY_SHARE = "pred/majority_share"
CLASSES = "pred/classes"
ENTROPY = "pred/entropy"
KEYS = (MAJORITY_SHARE, CLASSES, ENTROPY)


@dataclass
class PredictionSettings(ProbeSettings):
    examples: int | None = None  # the first n test examples; null: the whole test set

    def check(self, name: str) -> None:
        require_int(name, "examples", self.examples, low=1, allow_none=True)


class Predictions(Probe):
    name = "predictions"
    Settings = PredictionSettings

    def __init__(self, settings, context):
        super().__init__(settings, context)
        test_x = context.data.test_x
        self.examples = test_x if settings.examples is None else test_x[: settings.examples]
        self.batch_size = int(context.cfg.train.get("eval_batch_size", 1000))

    @torch.no_grad()
    def at_eval(self, step: int) -> dict:
        model = self.context.model
        predicted, entropy = [], torch.zeros((), dtype=torch.float64, device=self.examples.device)
        for start in range(0, len(self.examples), self.batch_size):
            logits = model(self.examples[start : start + self.batch_size]).double()
            predicted.append(logits.argmax(dim=1))
            entropy += prediction_entropy(logits).sum()
        return prediction_metrics(torch.cat(predicted), entropy.item() / len(self.examples))


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Each row's softmax entropy in nats (0 log 0 = 0)."""
    return torch.special.entr(torch.softmax(logits, dim=1)).sum(dim=1)


def prediction_metrics(predicted: torch.Tensor, mean_entropy: float) -> dict[str, float | int]:
    counts = torch.bincount(predicted)
    return {
        MAJORITY_SHARE: counts.max().item() / len(predicted),
        CLASSES: int((counts > 0).sum().item()),
        ENTROPY: mean_entropy,
    }
