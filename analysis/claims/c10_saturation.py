"""C10: BN keeps sigmoids out of saturation and gradients from vanishing (paper Sec. 1; the notes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import ANY_LAYER, ARM_LABELS, finished, hidden_layers
from analysis.rules import LOWER, Comparison, all_of, decide
from analysis.runs import Run
from analysis.stats import mean_interval
from analysis.tables import metric_series
from analysis.verdict import Verdict, decided, no_runs
from training.probes import grad_norms
from training.probes import saturation as saturation_probe

ARMS = (
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "1"}, probes=("saturation", "grad_norms"), name="no BN"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, probes=("saturation", "grad_norms"), name="BN"),
)


def saturation(run: Run) -> float | None:
    """Mean over the evals after step 0 and over hidden layers of sat/<layer>."""
    layers = hidden_layers(run, saturation_probe.layer_key(ANY_LAYER))
    values = [v for layer in layers for step, v in metric_series(run, saturation_probe.layer_key(layer)) if step > 0]
    return float(np.mean(values)) if values else None


def gradient_imbalance(run: Run) -> float | None:
    """Mean over the evals of |log10(grad/first_over_last)|: 0 when first and last layer get equal gradients."""
    values = [abs(math.log10(v)) for _, v in metric_series(run, grad_norms.FIRST_OVER_LAST) if v > 0]
    return float(np.mean(values)) if values else None


def verdict(arms: Arms) -> Verdict:
    """Both needed: with BN the mean saturated fraction (see saturation) is lower, and so is the
    gradient imbalance |log10(first/last)| (see gradient_imbalance): BN - no-BN, Welch, intervals below 0."""
    bn, base = finished(arms["BN"]), finished(arms["no BN"])
    numbers = {
        "BN saturation": mean_interval(map(saturation, bn)),
        "no-BN saturation": mean_interval(map(saturation, base)),
        "BN |log10 grad first/last|": mean_interval(map(gradient_imbalance, bn)),
        "no-BN |log10 grad first/last|": mean_interval(map(gradient_imbalance, base)),
    }
    if min(e.n for e in numbers.values()) == 0:
        return no_runs(arms["no BN"] + arms["BN"], "no runs with the saturation and grad_norms probes in both arms")
    parts = [
        decide(Comparison("BN saturates less (saturated fraction, BN - no BN)", saturation, "saturation", LOWER), bn, base),
        decide(Comparison("BN balances gradients (|log10 grad first/last|, BN - no BN)", gradient_imbalance,
                          "gradient imbalance", LOWER), bn, base),
    ]
    return decided(all_of("C10", parts), bn + base, numbers)


def figures(arms: Arms, folder: Path) -> list[Path]:
    labelled = {ARM_LABELS[p]: finished(arms[name]) for p, name in (("none", "no BN"), ("before", "BN"))}
    sat = {"mean saturated fraction": {k: mean_interval(map(saturation, v)) for k, v in labelled.items()}}
    grad = {"|log10 grad first/last|": {k: mean_interval(map(gradient_imbalance, v)) for k, v in labelled.items()}}
    out = []
    if any(e.mean is not None for e in sat["mean saturated fraction"].values()):
        out.append(
            plots.point_chart(
                sat,
                Path(folder) / "c10_saturation.png",
                "saturated fraction",
                "Sigmoid saturation (mean over layers and evals)",
            )
        )
    if any(e.mean is not None for e in grad["|log10 grad first/last|"].values()):
        out.append(
            plots.point_chart(
                grad,
                Path(folder) / "c10_gradients.png",
                "|log10(first / last)|",
                "Gradient-norm imbalance, first vs last layer (0 = equal)",
                reference=0.0,
            )
        )
    return out


CLAIM = Claim(
    text="BN keeps sigmoids out of saturation and gradients from vanishing",
    source="paper Sec. 1; the notes",
    protocol="fraction of saturated sigmoid units per layer over training, gradient norm per layer (first vs last)",
    rule="both lower with BN (BN - no-BN, Welch, intervals below 0): the saturated fraction of sigmoid units and the "
    "first/last layer gradient imbalance |log10 ratio|",
    method="the saturated fraction of sigmoid units is averaged over the evaluations after step 0 and the hidden "
    "layers; the gradient imbalance is |log10| of the first over the last layer's gradient norm, averaged over evaluations.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
