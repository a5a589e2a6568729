"""Reading runs and measuring them: what every claim's rule and figures share.

A claim's rule receives its runs by arm name (analysis/arms.py); these functions pick runs by their
settings, read final accuracies, curves and probe values, and define the catalogue's shared words:

- Runs that failed or never finished are left out. Diverged runs have no final accuracy: they are left
  out of means and named; a diverged run in an arm that the rule says must train makes the claim not hold.
- "Chance" is 1 / number of classes; "at chance" is within NEAR_CHANCE of it (an equivalence test);
  "trains well above chance" is a final accuracy more than WELL_ABOVE_CHANCE above it.
- An arm's tuned setting is the lr_mult of its grid with the best mean final test accuracy (settings
  where a run diverged are not candidates, unless all have one).
- Steps to a target are counted per run, at the first evaluation at or above it; a run that never gets
  there counts as one evaluation after its end (analysis.rules.steps_ratio).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from analysis.plots import COLORS
from analysis.rules import Result, condition
from analysis.runs import Run
from analysis.stats import PERCENTILES, Estimate, curve_interval, drift_score, mean_interval, steps_to_target
from analysis.tables import curves, metric_series
from training.probes import activations

ANY_LAYER = r"([^/]+)"  # a layer's name in a probe's key, as a pattern: hidden_layers(run, layer_key(ANY_LAYER, ...))
ARM_LABELS = {"none": "no BN", "before": "BN before", "after": "BN after"}  # bn=<option> in figures
NEAR_CHANCE = 0.02  # "at chance": within 2 points of 1/classes (C4, C13)
WELL_ABOVE_CHANCE = 0.10  # "trains well above chance" (C4, C13)


def cfg(run: Run, key: str, default=None):
    """A config value by dotted key ('bn.placement')."""
    node: Any = run.config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def select(runs: list[Run], **settings) -> list[Run]:
    """Runs whose config matches: select(runs, bn__placement="none", optim__lr_mult=1); experiment= picks
    the runs of one experiment (its folder)."""

    def matches(run):
        return all(_same(run.path.parent.name if k == "experiment" else cfg(run, k.replace("__", ".")), v)
                   for k, v in settings.items())

    return [run for run in runs if matches(run)]


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def finished(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.status in ("completed", "diverged")]


def diverged(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.status == "diverged"]


def final_acc(runs: list[Run]) -> Estimate:
    """Mean final test accuracy over the completed runs (diverged ones have none)."""
    return mean_interval(r.summary.get("final_test_acc") for r in runs if r.status == "completed")


def chance(runs: list[Run]) -> float:
    """1 / classes of the runs' data set (1/10 when the runs disagree or do not say)."""
    classes = {cfg(r, "dataset.classes") for r in runs if cfg(r, "dataset.classes")}
    return 1.0 / (classes.pop() if len(classes) == 1 else 10)


def chance_floor(runs: list[Run]) -> float:
    """The accuracy at or below which a target is "at chance": chance + NEAR_CHANCE (for steps_ratio's floor)."""
    return chance(runs) + NEAR_CHANCE


def planned_steps(run: Run) -> int | None:
    """The steps the run was set to train: train.steps, or with train.epochs set, the steps it ran (a
    completed run ran them all)."""
    if cfg(run, "train.epochs") is None:
        steps = cfg(run, "train.steps")
    else:
        steps = run.summary.get("steps") if run.status == "completed" else None
    return steps if isinstance(steps, int) else None


def final_accuracy(run: Run) -> float | None:
    """The run's final test accuracy (None when it diverged)."""
    value = run.summary.get("final_test_acc")
    return float(value) if isinstance(value, (int, float)) else None


def reaches(run: Run, target: float) -> int | None:
    """The first evaluation step at which the run's test accuracy is at or above `target` (None: never)."""
    return steps_to_target(metric_series(run, "test/acc"), target)


def trains(label: str, runs: list[Run]) -> Result:
    """The condition "no run of this arm diverged"."""
    bad = diverged(runs)
    return condition(f"{label} trains", not bad and bool(finished(runs)),
                     f"{len(bad)} of {len(finished(runs))} runs diverged" if bad else f"{len(finished(runs))} runs, none diverged")


def mean_curve(runs: list[Run], metric: str = "test/acc") -> list[tuple[int, float]]:
    """(step, mean over runs) at the steps every run in `runs` logged."""
    series = [dict(metric_series(r, metric)) for r in runs]
    if not series:
        return []
    steps = sorted(set.intersection(*(set(s) for s in series)))
    return [(step, float(np.mean([s[step] for s in series]))) for step in steps]


def layer_order(name: str) -> tuple[str, int]:
    match = re.match(r"([a-z]+)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, 10**6)


def hidden_layers(run: Run, pattern: str) -> list[str]:
    """Layer names that occur in the run's metric keys matching `pattern` (one group: the layer)."""
    names = {m.group(1) for k in metric_keys(run) if (m := re.fullmatch(pattern, k))}
    return sorted(names, key=layer_order)


def metric_keys(run: Run) -> set[str]:
    """Every key the run's metric lines hold (each line holds some of them)."""
    return {k for line in run.metrics for k in line}


def best_lr_mult(runs: list[Run]) -> float | None:
    """The lr_mult with the best mean final test accuracy. Settings with a diverged run are not candidates
    unless every setting has one."""
    mults = sorted({cfg(r, "optim.lr_mult") for r in runs if cfg(r, "optim.lr_mult") is not None})
    scores = {m: final_acc(select(runs, optim__lr_mult=m)).mean for m in mults}
    scores = {m: score for m, score in scores.items() if score is not None}
    stable = {m: score for m, score in scores.items() if not diverged(select(runs, optim__lr_mult=m))}
    candidates = stable or scores
    return max(candidates, key=lambda m: (candidates[m], -m)) if candidates else None


def tuned(arm: list[Run]) -> tuple[list[Run], float | None]:
    """An arm's runs at its best lr_mult (best_lr_mult), and that multiplier; the arm as it is when it
    has one setting only."""
    if len({cfg(r, "optim.lr_mult") for r in arm}) <= 1:
        return arm, None
    best = best_lr_mult(arm)
    return (select(arm, optim__lr_mult=best), best) if best is not None else (arm, None)


def probe_results(runs: list[Run], name: str) -> list[dict]:
    """The end-of-run probe `name` of each run that has it and did not skip it."""
    return [r.summary[name] for r in runs if isinstance(r.summary.get(name), dict) and "skipped" not in r.summary[name]]


def last_value(run: Run, key: str) -> float | None:
    values = metric_series(run, key)
    return values[-1][1] if values else None


def final_by_seed(runs: list[Run]) -> dict:
    """{seed: final test accuracy} of the completed runs, for comparisons paired by seed."""
    return {r.summary.get("seed"): r.summary.get("final_test_acc") for r in runs if r.status == "completed"}


def probed_mean(run: Run, key: str) -> float | None:
    """Mean of a probe's key over the run's evaluations after step 0 (training under way)."""
    values = [v for step, v in metric_series(run, key) if step > 0]
    return float(np.mean(values)) if values else None


def train_test_gap(runs: list[Run]) -> Estimate:
    return mean_interval(
        last_value(r, "train/acc") - last_value(r, "test/acc")
        for r in runs
        if r.status == "completed" and last_value(r, "train/acc") is not None and last_value(r, "test/acc") is not None
    )


def tracked_units(run: Run) -> dict[str, list[dict]]:
    """Per tracked unit of the last hidden layer ("fc3 unit 7"), its evaluations as dicts with step, p15,
    p50, p85; the layer's percentiles averaged over units ("fc3 (mean over units)") when no unit is tracked."""
    p50 = activations.percentile(50)
    layers = hidden_layers(run, activations.layer_key(ANY_LAYER, "(?:u\\d+/)?" + p50))
    if not layers:
        return {}
    layer = layers[-1]
    pattern = activations.unit_key(layer, r"(\d+)", p50)
    units = sorted({int(m.group(1)) for k in metric_keys(run) if (m := re.fullmatch(pattern, k))})
    keys_of = {f"{layer} unit {u}": (lambda stat, u=u: activations.unit_key(layer, u, stat)) for u in units} or {
        f"{layer} (mean over units)": lambda stat: activations.layer_key(layer, stat)
    }
    tracked = {}
    for name, key_of in keys_of.items():
        keys = {q: key_of(q) for q in PERCENTILES}
        rows = [
            {"step": line["step"], **{q: line[k] for q, k in keys.items()}}
            for line in run.metrics
            if all(isinstance(line.get(k), (int, float)) for k in keys.values())
        ]
        if rows:
            tracked[name] = rows
    return tracked


def unit_drift(run: Run) -> float | None:
    """C2's drift score of a run: the mean drift (analysis.stats.drift_score) over its tracked units."""
    total = planned_steps(run) or max(line["step"] for line in run.metrics)
    scores = [
        drift_score(*([row[q] for row in rows] for q in PERCENTILES), [row["step"] for row in rows], total)
        for rows in tracked_units(run).values()
    ]
    scores = [score for score in scores if score is not None]
    return float(np.mean(scores)) if scores else None


def arm_curve(runs: list[Run], metric: str = "test/acc") -> pd.DataFrame:
    """Mean and 95% band per step over the finished runs."""
    return curve_interval(curves(finished(runs), metrics=[metric], config_keys=[]), metric)


def tracked_unit(run: Run) -> tuple[str, pd.DataFrame] | None:
    """(name, frame with step, p15, p50, p85) of the first tracked unit of the run's last hidden layer."""
    units = tracked_units(run)
    if not units:
        return None
    name = next(iter(units))
    return name, pd.DataFrame(units[name])


def per_seed_steps(bn: list[Run], base: list[Run]) -> dict[str, str]:
    """seed -> "BN steps / no-BN steps" to the no-BN run's final accuracy ("never" for a run that never gets there)."""
    base_by_seed = {r.summary.get("seed"): r for r in base if r.status == "completed"}
    out = {}
    for run in sorted(finished(bn), key=lambda r: str(r.summary.get("seed"))):
        other = base_by_seed.get(run.summary.get("seed"))
        if other is None or final_accuracy(other) is None:
            continue
        steps = [reaches(r, final_accuracy(other)) for r in (run, other)]
        out[str(run.summary.get("seed"))] = " / ".join("never" if x is None else str(x) for x in steps)
    return out


def lr_mult_curves(runs: list[Run]) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Mean curves per arm (no BN, BN) and lr multiplier, with styles: one color per arm, one line style
    per multiplier."""
    curves, styles = {}, {}
    for color, placement in zip(COLORS, ("none", "before")):
        arm = select(runs, bn__placement=placement)
        mults = sorted({cfg(r, "optim.lr_mult") for r in arm})
        for linestyle, mult in zip(("-", "--", ":", "-."), mults):
            if finished(select(arm, optim__lr_mult=mult)):
                label = f"{ARM_LABELS[placement]}, lr x{mult:g}"
                curves[label] = arm_curve(select(arm, optim__lr_mult=mult))
                styles[label] = {"color": color, "linestyle": linestyle}
    return curves, styles


def unit_panels(arms: dict[str, list[Run]]) -> dict[str, pd.DataFrame]:
    """Fig. 1b,c's panels: per arm label, the tracked unit (tracked_unit) of its lowest-seed finished run."""
    panels = {}
    for label, runs in arms.items():
        first = sorted(finished(runs), key=lambda r: r.summary.get("seed", 0))[:1]
        unit = tracked_unit(first[0]) if first else None
        if unit:
            panels[f"{label}: {unit[0]} (seed {first[0].summary.get('seed')})"] = unit[1]
    return panels


def lr_steps(runs: list[Run]) -> tuple[dict[str, dict[float, int | None]], float | None]:
    """C3: per arm and multiplier, steps for the mean curve to reach the no-BN x1 mean final accuracy."""
    target = final_acc(select(runs, bn__placement="none", optim__lr_mult=1)).mean
    arms = {}
    if target is None:
        return arms, None
    for placement in ("none", "before"):
        arm = select(runs, bn__placement=placement)
        arms[ARM_LABELS[placement]] = {
            float(m): steps_to_target(mean_curve(finished(select(arm, optim__lr_mult=m))), target)
            for m in sorted({cfg(r, "optim.lr_mult") for r in arm})
            if finished(select(arm, optim__lr_mult=m))
        }
    return arms, target
