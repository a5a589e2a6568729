"""C15: BN does not reduce internal covariate shift as Santurkar et al. define it (2018, Sec. 2.2, Def. 2.1)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import (
    ANY_LAYER,
    ARM_LABELS,
    finished,
    hidden_layers,
    layer_order,
    planned_steps,
    probed_mean,
)
from analysis.rules import HIGHER, LOWER, Comparison, Result, all_of, decide
from analysis.runs import Run
from analysis.stats import mean_interval
from analysis.tables import metric_series
from analysis.verdict import Verdict, decided, no_runs
from training.probes import ics

SIMILAR_SHIFT = 0.9  # BN's ||G - G'|| "similar or larger": at least this fraction of the baseline's
SIMILAR_COS = 0.05  # BN's cos(G, G') "similar or smaller": at most this much above the baseline's
EARLY_FRACTION = 0.5  # "early training": the first half of the run

ARMS = (
    Arm("ics", {"bn": "none"}, probes=("ics",), name="no BN"),
    Arm("ics", {"bn": "before"}, probes=("ics",), name="BN"),
)


def ics_layers(run: Run) -> list[str]:
    return hidden_layers(run, ics.layer_key(ANY_LAYER, "l2"))


def ics_mean(key: str, steps=lambda step: step > 0, log: bool = False):
    """A run's mean of a probe key over the probed evaluations whose step passes `steps` (log of it: for ||G - G'||)."""
    def measure(run: Run) -> float | None:
        values = [v for step, v in metric_series(run, key) if steps(step)]
        if not values:
            return None
        value = float(np.mean(values))
        return (math.log(value) if value > 0 else None) if log else value
    return measure


def matched_levels(runs: list[Run], count: int = 3) -> list[float]:
    """Test-loss levels every run passes through after step 0: `count` levels, log-spaced, between the
    highest of the runs' lowest losses and the lowest of their first losses ([] when there is no such range)."""
    series = [[v for step, v in metric_series(r, "test/loss") if step > 0] for r in runs]
    series = [s for s in series if s]
    if not series:
        return []
    low, high = max(min(s) for s in series), min(s[0] for s in series)
    if not low < high:
        return []
    return [float(v) for v in np.geomspace(high, low, count)]


def at_matched_loss(key: str, levels: list[float], log: bool = False):
    """A run's probe value at the first evaluation whose test loss is at or below each level, averaged over
    the levels: the shift compared at the same progress, not the same step."""
    def measure(run: Run) -> float | None:
        loss = dict(metric_series(run, "test/loss"))
        value_at = dict(metric_series(run, key))
        picked = []
        for level in levels:
            step = next((s for s in sorted(loss) if s > 0 and loss[s] <= level and s in value_at), None)
            if step is not None:
                picked.append(value_at[step])
        if len(picked) < len(levels) or not picked:
            return None
        value = float(np.mean(picked))
        return (math.log(value) if value > 0 else None) if log else value
    return measure


def not_reduced(where: str, bn: list[Run], base: list[Run], l2, cos) -> list[Result]:
    """The two non-inferiority comparisons of the claim for one way of reading the runs."""
    return [
        decide(Comparison(f"{where}BN's ||G - G'|| is not smaller (BN / no BN, above {SIMILAR_SHIFT:g})", l2,
                          "log ||G - G'||", HIGHER, math.log(SIMILAR_SHIFT), log_ratio=True), bn, base),
        decide(Comparison(f"{where}BN's cos(G, G') is not higher (BN - no BN, below {SIMILAR_COS:g})", cos,
                          "cos(G, G')", LOWER, -SIMILAR_COS), bn, base),
    ]


def verdict(arms: Arms) -> Verdict:
    """Per run Santurkar's internal covariate shift averaged over the probed evaluations after step 0
    and over layers (ics/l2 = ||G - G'||, ics/cos = cos(G, G')). The claim (BN does not reduce it) holds
    when BN's shift is similar or larger on both measures, each a non-inferiority test: ||G - G'|| with BN
    at least SIMILAR_SHIFT times the baseline's (log ratio, Welch, interval above log SIMILAR_SHIFT), and
    cos(G, G') with BN at most SIMILAR_COS above the baseline's (interval below SIMILAR_COS). A failing
    part rejects the claim only after Holm's correction. Also measured, the same two comparisons per
    layer, in early training (steps up to EARLY_FRACTION of the run) and late, and at matched progress
    (matched test loss) instead of matched steps: BN converges faster, and a later difference can be an
    artifact of that (Santurkar et al.)."""
    runs = arms["no BN"] + arms["BN"]
    bn, base = finished(arms["BN"]), finished(arms["no BN"])
    numbers: dict[str, Any] = {}
    for label, arm in (("BN", bn), ("no-BN", base)):
        numbers[f"{label} ICS l2"] = mean_interval(probed_mean(r, ics.L2) for r in arm)
        numbers[f"{label} ICS cos"] = mean_interval(probed_mean(r, ics.COS) for r in arm)
    if min(e.n for e in numbers.values()) == 0:
        return no_runs(runs, "no runs with the ics probe (ics/l2, ics/cos) in both arms")
    parts = not_reduced("", bn, base, ics_mean(ics.L2, log=True), ics_mean(ics.COS))
    total = max((planned_steps(r) or 0) for r in bn + base)
    early, late = (lambda s: 0 < s <= EARLY_FRACTION * total), (lambda s: s > EARLY_FRACTION * total)
    secondary = []
    for layer in sorted({layer for r in bn + base for layer in ics_layers(r)}, key=layer_order):
        secondary += not_reduced(f"{layer}: ", bn, base, ics_mean(ics.layer_key(layer, "l2"), log=True),
                                 ics_mean(ics.layer_key(layer, "cos")))
        for label, arm in (("BN", bn), ("no-BN", base)):
            numbers[f"{label} ICS cos, {layer}"] = mean_interval(map(ics_mean(ics.layer_key(layer, "cos")), arm))
    for where, steps in ((f"early (steps up to {EARLY_FRACTION * total:g}): ", early),
                         (f"late (after step {EARLY_FRACTION * total:g}): ", late)):
        secondary += not_reduced(where, bn, base, ics_mean(ics.L2, steps, log=True), ics_mean(ics.COS, steps))
    levels = matched_levels(bn + base)
    if levels:
        numbers["matched test-loss levels"] = ", ".join(f"{v:.3f}" for v in levels)
        secondary += not_reduced("at matched test loss: ", bn, base, at_matched_loss(ics.L2, levels, log=True),
                                 at_matched_loss(ics.COS, levels))
    return decided(all_of("C15", parts), bn + base, numbers, ["BN ICS cos", "no-BN ICS cos"], secondary)


def figures(arms: Arms, folder: Path) -> list[Path]:
    arms = {ARM_LABELS[p]: finished(arms[name]) for p, name in (("none", "no BN"), ("before", "BN"))}
    layers = sorted({layer for arm in arms.values() for r in arm for layer in ics_layers(r)}, key=layer_order)
    if not layers:
        return []
    out = []
    for key, ylabel, name in (("l2", "||G - G'||", "c15_ics_l2.png"), ("cos", "cos(G, G')", "c15_ics_cos.png")):
        groups = {
            label: {layer: mean_interval(probed_mean(r, ics.layer_key(layer, key)) for r in arm) for layer in layers}
            for label, arm in arms.items()
        }
        title = f"Internal covariate shift (Santurkar Def. 2.1): {ylabel} per layer"
        out.append(plots.point_chart(groups, Path(folder) / name, ylabel, title,
                                     reference=1.0 if key == "cos" else None))
    return out


CLAIM = Claim(
    text="BN does not reduce internal covariate shift as Santurkar define it",
    source="Santurkar et al. 2018, Sec. 2.2, Def. 2.1",
    protocol="for a layer i: G = grad of W_i at step t; G' = same batch, after layers < i took their step; "
    "record ||G - G'|| and cos(G, G') per layer at evaluations, with and without BN",
    rule="the claim holds when BN's shift is similar or larger on both measures (non-inferiority, averaged over "
    "layers and evaluations after step 0): ||G - G'|| with BN at least 0.9x the baseline's (log ratio, Welch, "
    "interval above log 0.9) and cos(G, G') at most 0.05 above it (interval below 0.05); a failing part rejects "
    "only after Holm's correction; also reported, the same per layer, in early and late training separately, and "
    "at matched test loss as well as matched steps (BN converges faster, and later differences can be an "
    "artifact of that)",
    source_number="with BN the shift is similar or larger (VGG on CIFAR-10 and deep linear networks)",
    method=f"each probe value is averaged over the probed evaluations after step 0, then over layers, per run; BN's shift "
    f"is \"similar or larger\" when ||G - G'|| is at least {SIMILAR_SHIFT:g}x the baseline's and cos(G, G') at most "
    f"{SIMILAR_COS:g} above it. Early training is the first {EARLY_FRACTION:.0%} of the steps. At matched progress, "
    "each run's values are read at the first evaluation whose test loss is at or below each of three levels "
    "that every run passes through (log-spaced between the highest of the runs' lowest losses and the lowest of "
    "their first), then averaged.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
