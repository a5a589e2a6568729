"""One run's record on disk: metrics.jsonl (a line per logged step) and summary.json.

The files are the contract between training, analysis and tests; docs/runs.md lists their keys.
metrics.jsonl is flushed line by line, so a killed run leaves a readable prefix. Non-finite
numbers (a diverged loss) are written as null, which keeps every line valid JSON.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import yaml

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
STATUSES = ("completed", "diverged", "failed", "interrupted")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where it is built in


def read_yaml(path: Path) -> Any:
    """A YAML file Hydra wrote (.hydra/config.yaml, hydra.yaml, overrides.yaml) as plain values, the same
    values OmegaConf.load gives (interpolations left as text) in a tenth of the time: a catalogue's 550
    configs read in half a second instead of eight."""
    return yaml.load(Path(path).read_text(), Loader=_YAML_LOADER)


def to_json_value(value: Any) -> Any:
    """Plain JSON: tensors and numpy scalars become numbers, NaN and inf become null."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


def flatten(tree: dict[str, Any], sep: str = "/", prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a/b": 1}."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, sep, name + sep))
        else:
            flat[name] = value
    return flat


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write to a temporary file, then rename: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(to_json_value(payload), f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_metrics(path: str | Path) -> tuple[list[dict], list[str]]:
    """The metric lines of a metrics.jsonl that may be damaged, and a note for each line skipped.

    A run killed mid-write leaves a cut last line; it is skipped and reported, not an error.
    """
    rows, problems = [], []
    path = Path(path)
    if not path.is_file():
        return rows, problems
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"{path}:{number}: not valid JSON (a cut line?), skipped: {line[:60]!r}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            problems.append(f"{path}:{number}: no integer 'step', skipped")
            continue
        rows.append(row)
    return rows, problems


class RunRecord:
    """Appends metric lines and writes the summary of the run in `run_dir`."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / METRICS_FILE
        self.summary_path = self.run_dir / SUMMARY_FILE
        self._metrics = open(self.metrics_path, "a")

    def rewind(self, step: int) -> list[str]:
        """Keep only the metric lines up to `step` (where a resumed run continues from), dropping
        later ones and damaged ones, so the resumed record has no duplicate or missing steps.
        Returns notes on the damaged lines dropped."""
        rows, problems = read_metrics(self.metrics_path)
        self._metrics.close()
        tmp = self.metrics_path.with_suffix(".jsonl.tmp")
        with open(tmp, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows if row["step"] <= step)
        os.replace(tmp, self.metrics_path)
        self._metrics = open(self.metrics_path, "a")
        return problems

    def log(self, metrics: dict[str, Any]) -> None:
        """One line: {"step": ..., "<split>/<name>": ...}. Distributions (numpy arrays, for the
        tracker's histograms) are left out: the record holds numbers only."""
        numbers = {k: v for k, v in metrics.items() if not isinstance(v, np.ndarray)}
        self._metrics.write(json.dumps(to_json_value(numbers)) + "\n")
        self._metrics.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        if summary.get("status") not in STATUSES:
            raise ValueError(f"summary status must be one of {STATUSES}, got {summary.get('status')!r}")
        write_json_atomic(self.summary_path, summary)

    def close(self) -> None:
        self._metrics.close()


def run_environment(device=None) -> dict[str, Any]:
    """What a re-run needs to match this run bit for bit, besides the code (`git`) and the settings:
    the PyTorch build, the accelerator libraries, the processor, the thread count, Python, the
    operating system. Float round-off depends on all of them; docs/runs.md says what a re-run on
    another machine can be expected to match. Never raises: a value that cannot be read is null."""
    import platform

    import torch

    def read(what):
        try:
            return what()
        except Exception:
            return None

    on_gpu = device is not None and getattr(device, "type", str(device)) == "cuda"
    return {
        "torch": torch.__version__,
        "torch_git": read(lambda: torch.version.git_version),
        "cuda": torch.version.cuda,  # the CUDA version PyTorch was built with; null for a CPU-only build
        "cudnn": read(lambda: torch.backends.cudnn.version()) if torch.version.cuda else None,
        "gpu": read(lambda: torch.cuda.get_device_name(device)) if on_gpu else None,
        "cpu": read(cpu_model),
        "cpu_count": os.cpu_count(),
        "threads": read(torch.get_num_threads),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "os": read(platform.platform),
    }


def cpu_model() -> str:
    """The processor's name: /proc/cpuinfo's model name on Linux, else what `platform` knows."""
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def code_version(repo: str | Path | None = None) -> str:
    """The git commit of the code, with '-dirty' when tracked files have changed; 'unknown' outside git."""
    repo = Path(repo or Path(__file__).resolve().parent.parent)
    try:
        commit = _git(repo, "rev-parse", "HEAD")
        dirty = _git(repo, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
