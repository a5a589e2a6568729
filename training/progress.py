"""What the terminal shows: a progress bar on a terminal, plain lines otherwise.

- `Progress`: the training loop's bar (step, loss, test accuracy, steps/s).
- `track(items, what)`: progress of any long loop (end-of-run measurements, long evaluations).
- `JobLogFormatter`: the log format of configs/hydra/job_logging/jobs.yaml; in a multirun sweep
  each console line starts with the job that wrote it (`[job 3]`).

A bar needs a terminal that reports its width: on a pipe, a file (SLURM logs, CI) or a terminal
that reports zero columns (tqdm would print nothing there), the same progress goes out as log lines.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")

# Plain progress lines of `track` come at most this often (plus the first and the last).
LINE_EVERY_S = 5.0


def bar_fits(stream=None) -> bool:
    """True when `stream` (default stderr) is a terminal that reports a width."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


class Progress:
    """A tqdm bar (step, loss, test accuracy, steps/s) when stderr is a terminal with a width;
    otherwise one log line per evaluation, which reads well in SLURM logs and CI output."""

    def __init__(self, total_steps: int, start_step: int = 0, bar: bool | None = None):
        self.total = total_steps
        use_bar = bar_fits() if bar is None else bar
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


def track(items: Iterable[Item], what: str, total: int | None = None, bar: bool | None = None) -> Iterator[Item]:
    """Yield `items`, showing how far the loop has got: a bar labelled `what` on a terminal;
    elsewhere a log line `what: 3/10 (12 s)` at the start, at most every 5 s, and at the end.

        for size in track(batch_sizes, "test-time statistics"):
            ...
    """
    total = len(items) if total is None and hasattr(items, "__len__") else total
    if bar_fits() if bar is None else bar:
        from tqdm import tqdm

        yield from tqdm(items, desc=what, total=total, dynamic_ncols=True, file=sys.stderr)
        return
    of_total = f"/{total}" if total is not None else ""
    started = last_line = time.perf_counter()
    log.info("%s: 0%s", what, of_total)
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last_line >= LINE_EVERY_S:
            log.info("%s: %d%s (%.0f s)", what, done, of_total, now - started)
            last_line = now
    log.info("%s: done, %d in %.1f s", what, done, time.perf_counter() - started)


def job_prefix() -> str:
    """'[job 3] ' inside a job of a Hydra multirun sweep, '' otherwise."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return f"[job {HydraConfig.get().job.num}] "
    except Exception:  # no Hydra, or a config without a job number: no prefix
        pass
    return ""


class JobLogFormatter(logging.Formatter):
    """Hydra's log format, with lines of a multirun job prefixed by its number: under
    hydra/launcher=local several jobs write to one terminal at once."""

    def __init__(self, format: str, datefmt: str | None = None):
        super().__init__(job_prefix() + format, datefmt)
