"""Load run folders (metrics.jsonl, summary.json, .hydra/config.yaml) into Python and pandas.

Records may be damaged: a run killed mid-write leaves a cut last line in metrics.jsonl (skipped
and reported in `problems`), and a run that never finished has no summary.json (its status reads
"incomplete"). Nothing here raises on such folders.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from training.record import METRICS_FILE, SUMMARY_FILE, flatten, read_metrics, read_yaml

INCOMPLETE = "incomplete"


@dataclass
class Run:
    path: Path
    summary: dict
    config: dict
    metrics: list[dict]
    problems: list[str] = field(default_factory=list)
    choices: dict = field(default_factory=dict)  # the option of each config group (bn: none), from .hydra/hydra.yaml

    @property
    def status(self) -> str:
        return self.summary.get("status", INCOMPLETE)

    def metrics_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.metrics)


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    metrics, problems = read_metrics(run_dir / METRICS_FILE)
    summary = _read_json(run_dir / SUMMARY_FILE, problems) or {"status": INCOMPLETE}
    config_path = run_dir / ".hydra" / "config.yaml"
    config = _read_config(config_path, problems)
    return Run(run_dir, summary, config, metrics, problems, read_choices(run_dir))


def read_choices(run_dir: Path) -> dict:
    """hydra.runtime.choices of the run's .hydra/hydra.yaml ({} when it has none)."""
    path = run_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return {}
    try:
        hydra = read_yaml(path)
    except yaml.YAMLError:
        return {}
    choices = ((hydra or {}).get("hydra") or {}).get("runtime", {}).get("choices") or {}
    return {str(k): v for k, v in choices.items() if not str(k).startswith("hydra/")}


def find_runs(root: str | Path) -> list[Path]:
    """Every run folder under `root` (a folder with metrics.jsonl or summary.json)."""
    root = Path(root)
    folders = {p.parent for name in (METRICS_FILE, SUMMARY_FILE) for p in root.rglob(name)}
    return sorted(folders)


def load_runs(root: str | Path) -> pd.DataFrame:
    """One row per run: its folder, status, summary keys and flattened config keys ('cfg/optim.lr')."""
    rows = []
    for path in find_runs(root):
        run = load_run(path)
        row = {"path": str(path), "status": run.status, "problems": len(run.problems)}
        row.update({k: v for k, v in run.summary.items() if k != "status" and not isinstance(v, (dict, list))})
        row.update({f"cfg/{k}": v for k, v in flatten(run.config, sep=".").items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _read_config(path: Path, problems: list[str]) -> dict:
    if not path.is_file():
        return {}
    try:
        return read_yaml(path) or {}
    except yaml.YAMLError as error:
        problems.append(f"{path}: not valid YAML ({error}); the run's settings are unknown")
        return {}


def _read_json(path: Path, problems: list[str]) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        problems.append(f"{path}: not valid JSON ({error}); the run reads as incomplete")
        return None
