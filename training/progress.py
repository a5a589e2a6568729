"""What the terminal shows during training: a progress bar on a terminal, plain lines otherwise."""
from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


class Progress:
    """A tqdm bar (step, loss, test accuracy, steps/s) when stderr is a terminal; otherwise one
    log line per evaluation, which reads well in SLURM logs and CI output."""

    def __init__(self, total_steps: int, start_step: int = 0, bar: bool | None = None):
        self.total = total_steps
        use_bar = sys.stderr.isatty() if bar is None else bar
        self.bar = None
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr)
        self.postfix: dict[str, str] = {}

    def update(self, step: int, metrics: dict, steps_per_s: float) -> None:
        if "train/loss" in metrics and metrics["train/loss"] is not None:
            self.postfix["loss"] = f"{metrics['train/loss']:.4f}"
        if "test/acc" in metrics:
            self.postfix["test_acc"] = f"{metrics['test/acc']:.4f}"
        self.postfix["steps/s"] = f"{steps_per_s:.0f}"
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(self.postfix, refresh=True)
        elif "test/acc" in metrics:
            log.info("step %d/%d  %s", step, self.total, "  ".join(f"{k} {v}" for k, v in self.postfix.items()))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
