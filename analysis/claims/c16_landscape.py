"""C16: BN makes the loss and its gradient smoother (Santurkar et al. 2018, Sec. 3.2, Fig. 4)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import ARM_LABELS, arm_curve, finished, probed_mean
from analysis.rules import LOWER, Comparison, all_of, decide
from analysis.runs import Run
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs
from training.probes import landscape

MARKEDLY = 0.8  # "markedly lower": BN's value at most this fraction of the baseline's (20% lower or more)

ARMS = (
    Arm("ics", {"bn": "none"}, probes=("landscape",), name="no BN"),
    Arm("ics", {"bn": "before"}, probes=("landscape",), name="BN"),
)
LANDSCAPE = {"loss range": landscape.LOSS_RANGE, "gradient change": landscape.GRAD_CHANGE, "beta": landscape.BETA}


def log_mean(key: str):
    """The log of a run's mean of `key` over the probed evaluations after step 0."""
    def measure(run: Run) -> float | None:
        value = probed_mean(run, key)
        return math.log(value) if value and value > 0 else None
    return measure


def verdict(arms: Arms) -> Verdict:
    """All three needed: per run, each landscape measure (loss range, gradient change, effective
    smoothness beta along the gradient) averaged over the probed evaluations after step 0, markedly lower
    with BN: the ratio BN / no BN (Welch on the logs) with its interval below MARKEDLY. A failing part
    rejects the claim only after Holm's correction. Also measured: the gradient norm, BN / no BN: a smaller
    gradient by itself shrinks the loss range and the gradient change over a step (beta divides the change
    by the distance stepped)."""
    runs = arms["no BN"] + arms["BN"]
    bn, base = finished(arms["BN"]), finished(arms["no BN"])
    numbers: dict[str, Any] = {}
    for name, key in {**LANDSCAPE, "gradient norm": landscape.GRAD_NORM}.items():
        numbers[f"BN {name}"] = mean_interval(probed_mean(r, key) for r in bn)
        numbers[f"no-BN {name}"] = mean_interval(probed_mean(r, key) for r in base)
    if min(numbers[f"{arm} {name}"].n for arm in ("BN", "no-BN") for name in LANDSCAPE) == 0:
        return no_runs(runs, "no runs with the landscape probe in both arms")
    parts = [decide(Comparison(f"BN markedly lowers {name if name == 'beta' else 'the ' + name} (BN / no BN, below "
                               f"{MARKEDLY:g})", log_mean(key), f"log {name}", LOWER, -math.log(MARKEDLY),
                               log_ratio=True), bn, base)
             for name, key in LANDSCAPE.items()]
    secondary = [decide(Comparison("BN's gradient is smaller (gradient norm, BN / no BN)", log_mean(landscape.GRAD_NORM),
                                   "log gradient norm", LOWER, log_ratio=True), bn, base)]
    return decided(all_of("C16", parts), bn + base, numbers, [f"{arm} beta" for arm in ("BN", "no-BN")], secondary)


def figures(arms: Arms, folder: Path) -> list[Path]:
    arms = {ARM_LABELS[p]: finished(arms[name]) for p, name in (("none", "no BN"), ("before", "BN"))}
    titles = {"loss range": "loss range over the steps", "gradient change": "largest gradient change",
              "beta": "beta: gradient change / distance stepped", "gradient norm": "gradient norm ||g||"}
    panels = {
        titles[name]: {label: arm_curve(arm, key) for label, arm in arms.items() if arm}
        for name, key in {**LANDSCAPE, "gradient norm": landscape.GRAD_NORM}.items()
    }
    panels = {name: frames for name, frames in panels.items() if any(len(f) for f in frames.values())}
    if not panels:
        return []
    return [plots.curve_panels(panels, Path(folder) / "c16_landscape.png",
                               "Along the gradient, steps of lr x [0.5, 4] (mean, 95% band)", log_y=True)]


CLAIM = Claim(
    text="BN makes the loss and its gradient smoother",
    source="Santurkar et al. 2018, Sec. 3.2, Fig. 4",
    protocol="at evaluations along training, step lr x [0.5, 4] along -g: loss range, largest gradient change, "
    "largest gradient change / distance (effective smoothness beta)",
    rule="all three markedly lower with BN: each averaged over the probed evaluations, the ratio BN / no-BN (Welch "
    "on the logs) with its interval below 0.8 (20% lower or more); a failing part rejects only after Holm's "
    "correction; also reported: the gradient norm, BN / no-BN (a smaller gradient shrinks the loss range and the "
    "gradient change by itself; beta divides the change by the distance stepped)",
    source_number="loss range, gradient change and beta all markedly lower with BN (VGG on CIFAR-10, Fig. 4)",
    method=f"each landscape measure is averaged over the probed evaluations after step 0, per run, and compared as "
    f"the ratio BN / no BN on the log scale; \"markedly lower\" (the source's word for Fig. 4) is a ratio below "
    f"{MARKEDLY:g}. Beta, the gradient change divided by the distance stepped, is the measure a smaller gradient "
    "does not shrink by itself.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
