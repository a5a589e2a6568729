"""Run folders written by hand (metrics.jsonl, summary.json, .hydra/config.yaml) for the analysis tests:
any curve or probe result, in milliseconds, without training."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import yaml


def write_run(folder: Path, *, seed: int = 0, bn: str = "before", layers: str = "all", lr_mult: float = 1.0,
              activation: str = "sigmoid", dropout: float = 0.0, scale: float = 1.0, dataset: str = "digits",
              experiment: str = "fig1_mnist", steps: int = 1000, eval_every: int = 100,
              acc: Callable[[int], float] = lambda step: 0.9, extra: Callable[[int], dict] = lambda step: {},
              diverged_at: int | None = None, probes: dict | None = None, git: str = "abc123") -> Path:
    """One finished run. acc(step) gives test/acc (train/acc is 0.02 above); extra(step) adds metric keys;
    diverged_at stops it there with status diverged; probes go into summary.json under their names."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"seed": seed, "threads": 1,
              "dataset": {"name": dataset, "classes": 10},
              "bn": {"placement": bn, "layers": layers},
              "optim": {"lr": 0.5, "lr_mult": lr_mult},
              "model": {"activation": activation, "dropout": dropout},
              "init": {"scale": scale},
              "train": {"steps": steps, "eval_every": eval_every}}
    (folder / ".hydra").mkdir(exist_ok=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    last = steps if diverged_at is None else diverged_at
    lines = []
    for step in range(0, last + 1, eval_every):
        if diverged_at is not None and step == diverged_at:
            lines.append({"step": step, "train/loss": None})
            break
        lines.append({"step": step, "test/acc": acc(step), "train/acc": min(acc(step) + 0.02, 1.0), "test/loss": 1.0, **extra(step)})
        if step + eval_every <= last:
            lines.append({"step": step + eval_every // 2, "train/loss": 0.5})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    status = "completed" if diverged_at is None else "diverged"
    summary = {"status": status, "seed": seed, "git": git, "experiment": experiment, "steps": last,
               "final_test_acc": acc(steps) if status == "completed" else None, "wall_s": 1.0, **(probes or {})}
    (folder / "summary.json").write_text(json.dumps(summary, sort_keys=True))
    return folder


def saturating(final: float, speed: float, start: float = 0.1, offset: float = 0.0) -> Callable[[int], float]:
    """start -> final, reaching 63% of the way after 1/speed steps; offset shifts it (a seed's noise)."""
    import math
    return lambda step: start + (final - start) * (1 - math.exp(-speed * step)) + (offset if step else 0.0)
