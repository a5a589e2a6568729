"""Experiment trackers: Weights & Biases, or none. The local run record never depends on them.

A tracker that fails to start or to log gives one warning and turns itself off: training goes
on, and the run folder's metrics.jsonl still has every number.

What a wandb dashboard gets from a run (docs/clusters.md, "wandb dashboards", says how to use it):
- group `<experiment>/<sweep folder>` for a job of a multirun sweep, so one sweep is one group;
  the experiment (or `default`) for a single run. job_type: the experiment (or `train`).
- name: the run's own settings, e.g. `bn=none,lr_mult=5,seed=1` (no experiment, no plumbing).
- tags: `bn=before`, `data=fashion_mnist`, `act=sigmoid`, `model=mlp`, `exp=fig1_mnist`, and
  `failed` or `diverged` when the run ended so (failed runs also exit with code 1, interrupted
  ones with 130: their summary's status says `interrupted`).
- summary: test/acc as its best (max) and last value, losses as min and last, and the run's
  status, best/final test accuracy, steps, train_s, steps_per_s, diverged_step.
- histograms: 1-D numpy arrays in a logged metrics dict (keys `.../hist`) become wandb.Histogram.
"""
from __future__ import annotations

import logging
import secrets
import string
from pathlib import Path
from typing import Any

import numpy as np

from training.record import flatten

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 64

# Summary of a logged metric across the run: "max,last" keeps the best and the final value.
METRIC_SUMMARIES = {
    "test/acc": "max,last",
    "train/acc": "max,last",
    "test/loss": "min,last",
    "train/loss": "min,last",
}

# The wandb run's exit code by the run's status (0 for the others: a divergence is a result).
EXIT_CODES = {"failed": 1, "interrupted": 130}

# summary.json keys copied into the wandb run's summary at the end.
SUMMARY_KEYS = (
    "status",
    "best_test_acc",
    "final_test_acc",
    "final_test_loss",
    "steps",
    "train_s",
    "steps_per_s",
    "diverged_step",
    "resumed_from_step",
    "error",
)

# Overrides that do not change what is trained; left out of the run's name.
NAME_IGNORES = (
    "hydra", "logger", "device", "resume", "skip_complete", "threads", "dataset.root", "dataset.download", "experiment",
)


class NoTracker:
    name = "none"

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def summarize(self, results: dict[str, Any]) -> None:
        pass

    def finish(self, summary: dict[str, Any]) -> None:
        pass


class WandbTracker:
    name = "wandb"

    def __init__(self, run, run_dir: Path | None = None):
        self.run = run
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._failed = False

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._guarded(lambda: self.run.log(wandb_values(metrics), step=step))

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

    def finish(self, summary: dict[str, Any]) -> None:
        """Put the run's outcome into the wandb summary, tag a failed or diverged run, close the
        run (exit code 1 when it failed, 130 when Ctrl-C stopped it) and say where it was written.
        An interrupted run is not tagged: resumed, it goes on in the same wandb run."""
        status = summary.get("status")
        self.summarize({key: summary[key] for key in SUMMARY_KEYS if key in summary})
        if status in ("failed", "diverged"):
            self._guarded(setattr, self.run, "tags", (*self.run.tags, status))
        try:
            self.run.finish(exit_code=EXIT_CODES.get(status, 0))
        except Exception as error:
            log.warning("wandb did not finish cleanly (%s); the local record is complete", error)
            return
        self._say_where()

    def _say_where(self) -> None:
        if self.run.settings.mode == "offline":
            folders = offline_folders(self.run_dir, self.run.id, self.run.settings.sync_dir)
            where = folders[0] if len(folders) == 1 else f"{len(folders)} folders (one per start of the run)"
            log.info("wandb: offline run written to %s; upload it with: wandb sync %s", where, " ".join(folders))
        elif self.run.url:
            log.info("wandb: run at %s", self.run.url)


def offline_folders(run_dir: Path | None, run_id: str, current: str | Path) -> list[str]:
    """Every offline folder of one wandb run under the run folder, oldest first: a resumed run
    writes a new offline-run-<time>-<id> folder each time it starts, and `wandb sync` needs them all."""
    found = sorted(str(p) for p in Path(run_dir).glob(f"wandb/offline-run-*-{run_id}") if p.is_dir()) if run_dir else []
    return found if str(current) in found else [*found, str(current)]


def wandb_values(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics dict as wandb.log takes it: without `step`, arrays as 64-bin histograms of
    their finite values. An array that cannot make a histogram (empty, nothing finite, not
    numbers) is left out."""
    values = {key: value for key, value in metrics.items() if key != "step" and not isinstance(value, np.ndarray)}
    for key, value in metrics.items():
        if isinstance(value, np.ndarray):
            histogram = _histogram(value)
            if histogram is not None:
                values[key] = histogram
    return values


def _histogram(array: np.ndarray):
    import wandb

    try:
        finite = array.astype(np.float64).ravel()
    except (TypeError, ValueError):
        return None
    finite = finite[np.isfinite(finite)]
    return wandb.Histogram(finite, num_bins=HISTOGRAM_BINS) if finite.size else None


def run_group(experiment: str | None, sweep_dir: str | Path | None) -> str:
    """One group per sweep ('fig1_mnist/10-02-33-123456'); a single run is grouped by experiment."""
    base = experiment or "default"
    return f"{base}/{Path(sweep_dir).name}" if sweep_dir else base


def run_name(overrides: list[str]) -> str:
    """The run's own settings from its overrides, keys shortened: 'bn=none,lr_mult=5,seed=1'."""
    kept = [o.lstrip("+~") for o in overrides if not o.lstrip("+~").startswith(NAME_IGNORES)]
    return ",".join(_short_key(o) for o in kept) or "defaults"


def _short_key(override: str) -> str:
    key, sep, value = override.partition("=")
    return f"{key.rsplit('.', 1)[-1]}{sep}{value}"


def run_tags(config: dict, experiment: str | None) -> list[str]:
    """Tags to filter runs by on the dashboard, from the resolved config."""
    bn, model = config.get("bn", {}), config.get("model", {})
    tags = [
        f"bn={bn.get('placement')}",
        f"data={config.get('dataset', {}).get('name')}",
        f"act={model.get('activation')}",
        f"model={model.get('name')}",
    ]
    if bn.get("placement") != "none" and bn.get("layers", "all") != "all":
        tags.append(f"bn_layers={bn['layers']}")
    if experiment:
        tags.append(f"exp={experiment}")
    return tags


def start_tracker(
    logger_cfg,
    run_dir: Path,
    config: dict,
    experiment: str | None = None,
    overrides: list[str] = (),
    sweep_dir: str | Path | None = None,
    resume: bool = False,
):
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
            group=run_group(experiment, sweep_dir),
            job_type=experiment or "train",
            name=run_name(list(overrides)),
            tags=run_tags(config, experiment),
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
    tracker = WandbTracker(run, run_dir)
    for metric, summary in METRIC_SUMMARIES.items():
        tracker._guarded(run.define_metric, metric, summary=summary)
    return tracker


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
