"""The training loop: SGD steps on batches sliced from in-memory tensors, periodic evaluation.

What is timed: `train_seconds` covers the training steps only (batch slicing, forward, backward,
optimizer step, and the loss read-back every `log_every` steps); evaluations, logging and
checkpoints are excluded. The host reads the loss back only every `log_every` steps, so on a GPU
the steps in between run without a synchronization.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Callable

import torch
import torch.nn.functional as F

from training.data import BatchOrder, InMemoryData


@dataclass
class LoopSettings:
    steps: int
    batch_size: int
    eval_every: int
    log_every: int
    eval_batch_size: int = 1000
    checkpoint_every: int = 0  # 0: only at the last step (when a checkpoint callback is given)

    @classmethod
    def from_config(cls, cfg, steps_per_epoch: int) -> "LoopSettings":
        """The `train` config's settings. train.epochs and train.evals_per_epoch, when set, count in
        epochs of `steps_per_epoch` steps (BatchOrder's: one pass over a permutation) and replace
        train.steps and train.eval_every, so runs at different batch sizes see as many examples
        and are evaluated at the same points of training."""
        steps = cfg.steps
        if cfg.epochs is not None:  # the decimal as written: 0.1 epochs of 1000 steps is 100 steps, not 101
            steps = math.ceil(Fraction(str(cfg.epochs)) * steps_per_epoch)
        eval_every = cfg.eval_every
        if cfg.evals_per_epoch is not None:
            eval_every = max(1, round(steps_per_epoch / cfg.evals_per_epoch))
        return cls(steps, cfg.batch_size, eval_every, cfg.log_every, cfg.eval_batch_size, cfg.checkpoint_every)


@dataclass
class Outcome:
    """How far training got and how it ended; checkpointed, and the run's summary is built from it."""

    status: str = "completed"  # completed | diverged | interrupted
    steps: int = 0
    train_seconds: float = 0.0
    final_test_acc: float | None = None
    final_test_loss: float | None = None
    best_test_acc: float | None = None
    diverged_step: int | None = None

    @property
    def steps_per_s(self) -> float | None:
        return self.steps / self.train_seconds if self.train_seconds > 0 else None

    def state_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoopState:
    """Everything the loop carries from one step to the next, so a resumed run continues exactly."""

    outcome: Outcome
    loss_sum: torch.Tensor  # training losses summed since the last train/loss line
    losses_summed: int = 0

    def state_dict(self) -> dict:
        return {"outcome": self.outcome.state_dict(), "loss_sum": self.loss_sum.cpu(), "losses_summed": self.losses_summed}

    @classmethod
    def from_state_dict(cls, state: dict, device) -> "LoopState":
        return cls(Outcome(**state["outcome"]), state["loss_sum"].to(device), state["losses_summed"])


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y) in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
    model.train(was_training)
    return loss_sum.item() / len(x), correct.item() / len(x)


def eval_metrics(model: torch.nn.Module, data: InMemoryData, batch_size: int) -> dict[str, float]:
    """test/loss, test/acc, and train/acc on a fixed slice of the training set as large as the test set."""
    test_loss, test_acc = evaluate(model, data.test_x, data.test_y, batch_size)
    n = min(len(data.train_x), len(data.test_x))
    _, train_acc = evaluate(model, data.train_x[:n], data.train_y[:n], batch_size)
    return {"test/loss": test_loss, "test/acc": test_acc, "train/acc": train_acc}


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: InMemoryData,
    order: BatchOrder,
    settings: LoopSettings,
    emit: Callable[[dict], None],
    probes=None,
    on_progress: Callable[[int, dict, float], None] = lambda step, metrics, rate: None,
    before_final_eval: Callable[[], None] = lambda: None,
    checkpoint: Callable[[LoopState], None] | None = None,
    resume_from: LoopState | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Run SGD up to `settings.steps`; `emit` receives every metrics line ({"step": ..., ...}).

    `probes` (a training.probes.ProbeRunner, or None) measures at every evaluation, step 0
    included; its keys join that step's metrics line.

    `checkpoint(state)` is called every `settings.checkpoint_every` steps and at the last step,
    after that step's metrics are emitted. `resume_from` continues from such a state; the
    model, optimizer and random-number states must have been restored by the caller.
    A non-finite training or test loss stops the run with status "diverged": divergence is a
    result, so the caller records it and exits normally.

    `should_stop()` is asked before every step; when it says so (Ctrl-C, training.interrupt), the
    loop checkpoints the steps done so far and returns with status "interrupted".
    """
    device = data.train_x.device
    state = resume_from or LoopState(Outcome(), torch.zeros((), device=device))
    outcome = state.outcome
    model.train()

    def record(metrics: dict) -> None:
        emit(metrics)
        if "test/acc" in metrics:
            outcome.final_test_acc = metrics["test/acc"]
            outcome.final_test_loss = metrics["test/loss"]
            if outcome.best_test_acc is None or metrics["test/acc"] > outcome.best_test_acc:
                outcome.best_test_acc = metrics["test/acc"]

    def evaluation(step: int) -> dict:
        metrics = eval_metrics(model, data, settings.eval_batch_size)
        if probes is not None:
            metrics.update(probes.at_eval(step))
        return metrics

    if resume_from is None:
        record({"step": 0, **evaluation(0)})
    tic = time.perf_counter()
    for step in range(outcome.steps + 1, settings.steps + 1):
        if should_stop():
            outcome.train_seconds += time.perf_counter() - tic
            outcome.steps = step - 1
            if checkpoint is not None:
                checkpoint(state)  # before the status changes: a resumed run goes on as "completed"
            outcome.status = "interrupted"
            break
        index = order.indices(step - 1)
        x = data.train_x.index_select(0, index)
        y = data.train_y.index_select(0, index)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.loss_sum += loss.detach()
        state.losses_summed += 1

        last = step == settings.steps
        eval_now = step % settings.eval_every == 0 or last
        log_now = eval_now or step % settings.log_every == 0
        save_now = checkpoint is not None and (last or (settings.checkpoint_every and step % settings.checkpoint_every == 0))
        if not (log_now or save_now):
            continue
        if log_now:
            train_loss = state.loss_sum.item() / state.losses_summed  # the only host sync between evaluations
        outcome.train_seconds += time.perf_counter() - tic
        outcome.steps = step
        if log_now:
            state.loss_sum.zero_()
            state.losses_summed = 0
            metrics = {"step": step, "train/loss": train_loss}
            if math.isfinite(train_loss) and eval_now:
                if last:
                    before_final_eval()
                metrics.update(evaluation(step))
            record(metrics)
            on_progress(step, metrics, outcome.steps_per_s or 0.0)
            if not (math.isfinite(train_loss) and math.isfinite(metrics.get("test/loss", 0.0))):
                outcome.status = "diverged"
                outcome.diverged_step = step
                outcome.final_test_acc = outcome.final_test_loss = None  # no meaningful final model
                break
        if save_now:
            checkpoint(state)
        tic = time.perf_counter()
    return outcome
