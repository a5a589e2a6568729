"""The `insert_pretrained` probe (claim C11): BN inserted into a trained network leaves its function unchanged, then fine-tunes.

The network trained without BN gets a BN layer after each hidden weight layer with
gamma = sqrt(var + eps) and beta = mean of that layer's output over one epoch of training
batches, so in eval mode it computes what it computed before. Recorded: the largest output
difference over the test set right after insertion, test accuracy before, right after and after
`finetune_steps` SGD steps at the run's step size times `finetune_lr_mult`; and, as a control,
the same fine-tuning of the network without inserted BN (so more training alone is not mistaken
for the effect of BN).
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from omegaconf import OmegaConf

from models.batchnorm import BN_TYPES
from models.insert import insert_bn, max_output_difference
from training.data import BatchOrder, epoch_batches
from training.loop import LoopSettings, evaluate, train
from training.optim import build_optimizer
from training.probes.base import SKIPPED, Probe, ProbeSettingError, ProbeSettings, require_int

log = logging.getLogger(__name__)

# The keys of this probe's result in summary.json, under "insert_pretrained" (analysis code imports them).
TEST_ACC_BEFORE = "test_acc_before"
MAX_OUTPUT_DIFFERENCE = "max_output_difference"
TEST_ACC_AFTER_INSERTION = "test_acc_after_insertion"
FINETUNE_STEPS = "finetune_steps"
FINETUNE_LR_MULT = "finetune_lr_mult"
FINETUNED = "finetuned"  # {STATUS, FINAL_TEST_ACC, CURVE: [{"step", "test/acc"}, ...]}
CONTROL_WITHOUT_BN = "control_without_bn"  # the same, for the control (with control=true)
STATUS = "status"
FINAL_TEST_ACC = "final_test_acc"
CURVE = "curve"


@dataclass
class InsertSettings(ProbeSettings):
    finetune_steps: int = 1000
    finetune_lr_mult: float = 1.0  # a higher multiplier tests whether the inserted BN tolerates larger steps
    control: bool = True  # also fine-tune the network without inserted BN

    def check(self, name: str) -> None:
        require_int(name, "finetune_steps", self.finetune_steps, low=1)
        lr_mult = self.finetune_lr_mult
        if isinstance(lr_mult, bool) or not isinstance(lr_mult, (int, float)) or not lr_mult > 0:
            raise ProbeSettingError(f"probes.{name}.finetune_lr_mult must be a number > 0, got {lr_mult!r}")
        if not isinstance(self.control, bool):
            raise ProbeSettingError(f"probes.{name}.control must be true or false, got {self.control!r}")


class InsertPretrained(Probe):
    name = "insert_pretrained"
    Settings = InsertSettings

    def at_end(self) -> dict:
        s = self.settings
        return insert_pretrained(self.context, s.finetune_steps, s.finetune_lr_mult, s.control)


def insert_pretrained(context, finetune_steps: int, finetune_lr_mult: float, control: bool) -> dict:
    model, data, cfg = context.model, context.data, context.cfg
    if any(isinstance(m, BN_TYPES) for m in model.modules()):
        return {SKIPPED: "the network already has BN layers (train it with bn=none)"}
    eval_size = cfg.train.eval_batch_size
    _, before = evaluate(model, data.test_x, data.test_y, eval_size)
    inserted = insert_bn(model, epoch_batches(data, context.order), impl=cfg.bn.impl, eps=cfg.bn.eps, momentum=cfg.bn.momentum)
    difference = max_output_difference(model, inserted, data.test_x)
    _, right_after = evaluate(inserted, data.test_x, data.test_y, eval_size)
    result = {
        TEST_ACC_BEFORE: before,
        MAX_OUTPUT_DIFFERENCE: difference,
        TEST_ACC_AFTER_INSERTION: right_after,
        FINETUNE_STEPS: finetune_steps,
        FINETUNE_LR_MULT: finetune_lr_mult,
        FINETUNED: finetune(inserted, context, finetune_steps, finetune_lr_mult, "with inserted BN"),
    }
    if control:
        result[CONTROL_WITHOUT_BN] = finetune(copy.deepcopy(model), context, finetune_steps, finetune_lr_mult,
                                                "the control without BN")
    return result


def finetune(model, context, steps: int, lr_mult: float, label: str) -> dict:
    """Train `model` further for `steps` steps on a fresh batch order; its status and accuracy."""
    cfg = context.cfg
    optim_cfg = OmegaConf.merge(cfg.optim, {"lr_mult": cfg.optim.lr_mult * lr_mult})
    order = BatchOrder(len(context.data.train_x), cfg.train.batch_size, int(cfg.seed) + 1, context.data.train_x.device)
    settings = LoopSettings(steps, cfg.train.batch_size, max(1, steps // 5), cfg.train.log_every, cfg.train.eval_batch_size)
    curve = []

    def keep_accuracy(metrics: dict) -> None:
        if "test/acc" in metrics:
            curve.append({"step": metrics["step"], "test/acc": metrics["test/acc"]})
            log.info("insert_pretrained: fine-tuning %s, step %d/%d, test_acc %.4f", label, metrics["step"], steps,
                     metrics["test/acc"])

    optimizer = build_optimizer(model.parameters(), optim_cfg, cfg.train.batch_size)
    outcome = train(model.train(), optimizer, context.data, order, settings, keep_accuracy)
    return {STATUS: outcome.status, FINAL_TEST_ACC: outcome.final_test_acc, CURVE: curve}
