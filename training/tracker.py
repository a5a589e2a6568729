"""Experiment trackers: Weights & Biases, or none. The local run record never depends on them.

A tracker that fails to start or to log gives one warning and turns itself off: training goes
on, and the run folder's metrics.jsonl still has every number.
"""
from __future__ import annotations

import logging
import secrets
import string
from pathlib import Path
from typing import Any

from training.record import flatten

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")


class NoTracker:
    name = "none"

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def summarize(self, results: dict[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbTracker:
    name = "wandb"

    def __init__(self, run):
        self.run = run
        self._failed = False

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._guarded(self.run.log, {k: v for k, v in metrics.items() if k != "step"}, step=step)

    def summarize(self, results: dict[str, Any]) -> None:
        """Nested results as flat summary keys of the wandb run ('study/accuracy/ema/32')."""
        self._guarded(self.run.summary.update, flatten(results))

    def _guarded(self, action, *args, **kwargs) -> None:
        """Call wandb; on its first error warn once and stop calling it: it must never stop training."""
        if self._failed:
            return
        try:
            action(*args, **kwargs)
        except Exception as error:
            self._failed = True
            log.warning("wandb stopped logging (%s); the run goes on with its local record", error)

    def finish(self, exit_code: int = 0) -> None:
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as error:
            log.warning("wandb did not finish cleanly (%s); the local record is complete", error)


def start_tracker(logger_cfg, run_dir: Path, config: dict, group: str, name: str, resume: bool = False):
    """A tracker for this run, or NoTracker when none is configured or wandb cannot start.

    The wandb run id is kept in <run_dir>/wandb/run_id, so a resumed job continues the same
    wandb run (steps it had already logged are not logged twice)."""
    if logger_cfg.name == "none" or logger_cfg.get("mode") == "disabled":
        return NoTracker()
    try:
        import wandb

        run_id = _wandb_run_id(Path(run_dir), resume)
        run = wandb.init(
            project=logger_cfg.project,
            entity=logger_cfg.get("entity"),
            group=group,
            name=name,
            config=config,
            dir=str(run_dir),
            mode=logger_cfg.mode,
            id=run_id,
            resume="allow",
            reinit="create_new",
            settings=wandb.Settings(
                init_timeout=float(logger_cfg.init_timeout_s),
                finish_timeout=float(logger_cfg.init_timeout_s),
                silent=True,
                console="off",
                x_disable_stats=True,
            ),
        )
    except Exception as error:
        log.warning(
            "wandb could not start in %s mode (%s); the run goes on with its local record only",
            logger_cfg.mode,
            _one_line(error),
        )
        return NoTracker()
    return WandbTracker(run)


def _wandb_run_id(run_dir: Path, resume: bool) -> str:
    path = run_dir / "wandb" / "run_id"
    if resume and path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    path.write_text(run_id + "\n")
    return run_id


def _one_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
