"""Runs as tidy tables: a long-format curves table and grouping by the swept settings.

`load_runs` (analysis/runs.py) gives one row per run. Here `curves` gives one row per run, step and
metric (config keys as columns), and `swept_keys` names the settings that vary between the runs of
one experiment (the seed excluded), which is what the runs are grouped by for statistics over seeds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.runs import Run, find_runs, load_run
from training.record import flatten

# Config keys that differ between runs without changing what is measured.
NOT_SETTINGS = (
    "cfg/seed",
    "cfg/threads",
    "cfg/device",
    "cfg/resume",
    "cfg/skip_complete",
    "cfg/dataset.root",
    "cfg/dataset.download",
    "cfg/train.checkpoint_every",
)
NOT_SETTINGS_PREFIXES = ("cfg/logger.", "cfg/hydra.")


def load_all(root: str | Path) -> list[Run]:
    """Every run under `root`, in path order."""
    return [load_run(path) for path in find_runs(root)]


def run_row(run: Run) -> dict:
    """One run as a flat row: path, status, seed, summary scalars and `cfg/<key>` config keys."""
    row = {"path": str(run.path), "status": run.status}
    row.update({k: v for k, v in run.summary.items() if k != "status" and not isinstance(v, (dict, list))})
    row.update({f"cfg/{k}": _hashable(v) for k, v in flatten(run.config, sep=".").items()})
    row["seed"] = run.summary.get("seed", run.config.get("seed"))
    return row


def runs_table(runs: list[Run]) -> pd.DataFrame:
    return pd.DataFrame([run_row(run) for run in runs])


def swept_keys(table: pd.DataFrame) -> list[str]:
    """The `cfg/` columns whose value differs between runs (seed and bookkeeping keys excluded), sorted."""
    keys = []
    for column in sorted(c for c in table.columns if c.startswith("cfg/")):
        if column in NOT_SETTINGS or column.startswith(NOT_SETTINGS_PREFIXES):
            continue
        if table[column].map(repr).nunique() > 1:
            keys.append(column)
    return keys


def group_by_settings(table: pd.DataFrame, keys: list[str] | None = None) -> list[tuple[dict, pd.DataFrame]]:
    """[(settings, rows)] for each combination of `keys` (default: the swept keys), in sorted order."""
    keys = swept_keys(table) if keys is None else keys
    if not keys:
        return [({}, table)] if len(table) else []
    groups = []
    for values, rows in table.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        groups.append((dict(zip(keys, values)), rows))
    return groups


def curves(runs: list[Run], metrics: list[str] | None = None, config_keys: list[str] | None = None) -> pd.DataFrame:
    """Long format: one row per run, step and metric that the run logged (columns path, status, seed,
    the config keys, step, metric, value). Lines without a metric give no row, so there are no
    interleaved NaN rows; a logged `null` (a diverged loss) gives no row either.

    config_keys: `cfg/` columns to carry (default: the swept keys and `cfg/dataset.name`).
    """
    table = runs_table(runs)
    if config_keys is None:
        config_keys = sorted(set(swept_keys(table)) | ({"cfg/dataset.name"} & set(table.columns))) if len(table) else []
    columns = ["path", "status", "seed", *config_keys, "step", "metric", "value"]
    rows = []
    for run, (_, meta) in zip(runs, table.iterrows()):
        fixed = [meta["path"], meta["status"], meta["seed"], *(meta.get(k) for k in config_keys)]
        for line in run.metrics:
            for metric, value in line.items():
                if metric == "step" or value is None or isinstance(value, (list, dict)):
                    continue
                if metrics is not None and metric not in metrics:
                    continue
                rows.append([*fixed, line["step"], metric, float(value)])
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["path", "metric", "step"], kind="stable").reset_index(drop=True)


def metric_series(run: Run, metric: str) -> list[tuple[int, float]]:
    """(step, value) for every line of `run` that holds a number under `metric`."""
    return [(line["step"], float(line[metric])) for line in run.metrics if isinstance(line.get(metric), (int, float))]


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
