"""Arms: the settings a claim compares, named once, so that claims needing the same training share its runs.

An arm is a small sweep over one experiment (configs/experiment/<experiment>.yaml): for each key a list
of values, as Hydra writes them on a command line (`{"bn": "none,before", "optim.lr_mult": "1"}`), every
combination over a number of seeds. A job is one such combination and one seed; its folder in a results
folder is `<experiment>/<key=value,...,seed=N>`.

Each arm has a name ("BN", "no BN x30") by which the claim's rule, figures and notebooks receive its
runs (`runs_by_arm`). Two claims whose arms contain the same job read the same run: scripts/reproduce.py trains it once, with
the union of the probes that every arm containing it asks for (arms of claims not chosen included, so a
run's probes do not depend on which claims were reproduced first), and the report finds a claim's runs
by matching arms against the runs' own settings (`arm_matches`). Every arm of one experiment names the
same keys, so a run belongs to an arm exactly when its values for those keys are among the arm's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Arm:
    experiment: str  # configs/experiment/<experiment>.yaml, and the run folder <results>/<experiment>/
    settings: dict[str, str] = field(default_factory=dict, hash=False)  # key -> "v1,v2" (Hydra's sweep syntax)
    probes: tuple[str, ...] = ()  # what the claim measures on these runs (configs/probes/<name>.yaml)
    seeds: int | None = None  # seeds per combination; None: the claim's default
    name: str = ""  # how the claim's rule, figures and notebooks call it: "BN", "no BN x30"

    def combinations(self) -> list[tuple[tuple[str, str], ...]]:
        """Every combination of the arm's values, as ((key, value), ...) in the arm's key order."""
        keys = list(self.settings)
        values = [split_values(self.settings[k]) for k in keys]
        return [tuple(zip(keys, combo)) for combo in itertools.product(*values)]

    def contains(self, combination: tuple[tuple[str, str], ...]) -> bool:
        """Whether a job's settings (one combination of the same experiment, perhaps with more keys) are
        among this arm's: each of the arm's keys is set, to one of the arm's values."""
        given = dict(combination)
        return all(
            k in given and any(same_value(given[k], v) for v in split_values(values))
            for k, values in self.settings.items()
        )

    def describe(self) -> str:
        """"fig1_mnist: bn=none,before optim.lr_mult=1" (no settings: the experiment's defaults)."""
        settings = " ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.experiment}: {settings or 'its defaults'}"


def split_values(text: str) -> list[str]:
    """"none,before" -> ["none", "before"]; commas inside brackets do not split ("[1,2],[3]" -> 2 values)."""
    values, depth, current = [], 0, ""
    for char in str(text):
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return [v for v in values if v]


def same_value(a, b) -> bool:
    """Equal as settings: numbers by value (1 == 1.0 == "1e0"), booleans and text as written."""
    fa, fb = as_number(a), as_number(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=0.0)
    return str(a).strip().lower() == str(b).strip().lower()


def as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=None)
def config_groups() -> frozenset[str]:
    """The config groups a setting can choose an option of (bn, model, ...): folders of configs/."""
    return frozenset(p.name for p in CONFIGS.iterdir() if p.is_dir() and p.name not in ("experiment", "hydra"))


def run_value(run, key: str):
    """A run's value for an arm key: its chosen option for a config group (bn=none), else its config value."""
    if key in config_groups():
        return (run.choices or {}).get(key)
    node = run.config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def arm_matches(run, arm: Arm) -> bool:
    """Whether a run of the arm's experiment folder is one of the arm's runs (any seed)."""
    for key, values in arm.settings.items():
        value = run_value(run, key)
        if value is None or not any(same_value(value, v) for v in split_values(values)):
            return False
    return True


def run_experiment(run) -> str:
    """The experiment a run belongs to: its summary's `experiment`, else the folder it lies in."""
    return str(run.summary.get("experiment") or run.path.parent.name)


def runs_by_arm(arms, runs_in) -> dict[str, list]:
    """Each arm's runs by its name, in folder order: the runs of its experiment (`runs_in(experiment)`)
    that match its settings."""
    return {arm.name: [run for run in runs_in(arm.experiment) if arm_matches(run, arm)] for arm in arms}


def union(arms, runs_in) -> list:
    """Every run of the arms once: sweep by sweep (`collapse`), each in its folder's order."""
    chosen, seen = [], set()
    for sweep in collapse(arms):
        for run in runs_in(sweep.experiment):
            if run.path not in seen and any(arm_matches(run, arm) for arm in sweep.members):
                seen.add(run.path)
                chosen.append(run)
    return chosen


@dataclass(frozen=True)
class Sweep:
    """Arms of one experiment that together form one sweep (their settings a product of value lists): how
    the catalogue and the report show a claim's arms in one line."""

    experiment: str
    values: dict[str, list[str]]
    probes: tuple[str, ...]
    seeds: int | None
    members: tuple[Arm, ...]

    def describe(self) -> str:
        """"fig1_mnist: bn=none,before optim.lr_mult=1" (no settings: the experiment's defaults)."""
        settings = " ".join(f"{k}={','.join(v)}" for k, v in self.values.items())
        return f"{self.experiment}: {settings or 'its defaults'}"


def collapse(arms) -> list[Sweep]:
    """Consecutive arms of one experiment, probes and seeds whose settings differ in one key only, merged
    into one sweep: ("no BN": bn=none, "BN": bn=before) -> bn=none,before."""
    sweeps: list[Sweep] = []
    for arm in arms:
        values = {k: split_values(v) for k, v in arm.settings.items()}
        last = sweeps[-1] if sweeps else None
        if last and (last.experiment, last.probes, last.seeds) == (arm.experiment, arm.probes, arm.seeds) \
                and list(last.values) == list(values):
            differing = [k for k in values if last.values[k] != values[k]]
            if len(differing) == 1:
                key = differing[0]
                merged = {k: (last.values[k] + values[k] if k == key else last.values[k]) for k in values}
                sweeps[-1] = Sweep(arm.experiment, merged, arm.probes, arm.seeds, last.members + (arm,))
                continue
        sweeps.append(Sweep(arm.experiment, values, arm.probes, arm.seeds, (arm,)))
    return sweeps
