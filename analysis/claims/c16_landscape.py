"""C16: BN makes the loss and its gradient smoother (Santurkar et al. 2018, Sec. 3.2, Fig. 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import ARM_LABELS, arm_curve, finished, probed_mean
from analysis.rules import LOWER, Comparison, all_of, decide
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs
from training.probes import landscape

ARMS = (
    Arm("ics", {"bn": "none"}, probes=("landscape",), name="no BN"),
    Arm("ics", {"bn": "before"}, probes=("landscape",), name="BN"),
)
LANDSCAPE = {"loss range": landscape.LOSS_RANGE, "gradient change": landscape.GRAD_CHANGE, "beta": landscape.BETA}


def verdict(arms: Arms) -> Verdict:
    """All three needed: per run, each landscape measure (loss range, gradient change, effective
    smoothness beta along the gradient) averaged over the probed evaluations after step 0, lower with BN
    (BN - no-BN, Welch, interval below 0)."""
    runs = arms["no BN"] + arms["BN"]
    bn, base = finished(arms["BN"]), finished(arms["no BN"])
    numbers: dict[str, Any] = {}
    for name, key in LANDSCAPE.items():
        numbers[f"BN {name}"] = mean_interval(probed_mean(r, key) for r in bn)
        numbers[f"no-BN {name}"] = mean_interval(probed_mean(r, key) for r in base)
    if min(e.n for e in numbers.values()) == 0:
        return no_runs(runs, "no runs with the landscape probe in both arms")
    parts = [decide(Comparison(f"BN lowers the {name} (BN - no BN)", lambda r, key=key: probed_mean(r, key), name, LOWER),
                    bn, base) for name, key in LANDSCAPE.items()]
    return decided(all_of("C16", parts), bn + base, numbers, list(numbers))


def figures(arms: Arms, folder: Path) -> list[Path]:
    arms = {ARM_LABELS[p]: finished(arms[name]) for p, name in (("none", "no BN"), ("before", "BN"))}
    panels = {
        name: {label: arm_curve(arm, key) for label, arm in arms.items() if arm}
        for name, key in LANDSCAPE.items()
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
    rule="all three lower with BN (each averaged over the probed evaluations; BN - no-BN, Welch, intervals below 0)",
    source_number="loss range, gradient change and beta all markedly lower with BN (VGG on CIFAR-10, Fig. 4)",
    method="each landscape measure is averaged over the probed evaluations after step 0, per run.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
