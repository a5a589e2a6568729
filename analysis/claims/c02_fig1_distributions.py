"""C2: BN keeps the distribution of a nonlinearity's input steady (the paper's Fig. 1b,c)."""

from __future__ import annotations

from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import HEADLINE_SEEDS, Arms, Claim
from analysis.measures import ARM_LABELS, finished, unit_drift, unit_panels
from analysis.rules import LOWER, Comparison, decide
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs

ARMS = (
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "1"}, probes=("activations",), name="no BN"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, probes=("activations",), name="BN"),
)


def verdict(arms: Arms) -> Verdict:
    """At the Fig. 1 learning rate (lr_mult=1): the drift score of the last hidden layer's tracked units
    (analysis.measures.unit_drift) lower with BN: BN - no-BN, Welch, interval below 0."""
    bn, base = finished(arms["BN"]), finished(arms["no BN"])
    numbers = {"BN drift": mean_interval(map(unit_drift, bn)), "no-BN drift": mean_interval(map(unit_drift, base))}
    if min(numbers["BN drift"].n, numbers["no-BN drift"].n) == 0:
        return no_runs(bn + base, "no runs with percentile probes (act/<layer>/p15..p85) in both arms at lr_mult=1")
    drift = Comparison("BN's percentiles drift less (drift score, BN - no BN)", unit_drift, "drift score", LOWER)
    return decided(decide(drift, bn, base), bn + base, numbers, ["BN drift", "no-BN drift"])


def figures(arms: Arms, folder: Path) -> list[Path]:
    panels = unit_panels({ARM_LABELS["none"]: arms["no BN"], ARM_LABELS["before"]: arms["BN"]})
    if not panels:
        return []
    return [plots.percentile_bands(panels, Path(folder) / "c2_percentiles.png",
                                   "Fig. 1b,c: input to one sigmoid of the last hidden layer")]


CLAIM = Claim(
    text="BN keeps the distribution of a nonlinearity's input steady",
    source="paper Fig. 1b,c",
    protocol="same runs as C1; per eval, 15/50/85th percentiles of the sigmoid input of fixed units of the last "
    "hidden layer, over a fixed test batch",
    rule="a drift score (how far the percentiles move after the first 10% of training, relative to their "
    "spread) lower with BN: BN - no-BN, Welch, interval below 0",
    source_number="no numbers printed; percentiles drift without BN, steady with BN (Fig. 1b,c)",
    arms=ARMS,
    decide=verdict,
    draw=figures,
    seeds=HEADLINE_SEEDS,
    method="the drift score, per tracked unit of the last hidden layer: over the evaluations after the first 10% of "
    "training, the range (max - min) of each of the 15/50/85th percentiles of the sigmoid's input, divided by the "
    "mean 15-85 spread, averaged over the three percentiles, then over units.",
)
