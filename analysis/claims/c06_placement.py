"""C6: where BN goes, before or after the nonlinearity (paper Sec. 3.2; the notes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import (
    ANY_LAYER,
    ARM_LABELS,
    cfg,
    final_acc,
    final_accuracy,
    finished,
    hidden_layers,
    last_value,
    select,
)
from analysis.rules import DOES_NOT_HOLD, EQUAL, HIGHER, HOLDS, Comparison, Result, all_of, decide
from analysis.runs import Run
from analysis.stats import Estimate, mean_interval
from analysis.verdict import Verdict, decided, no_runs
from training.probes import activations

TIE = 0.005  # before and after "tie" when their final accuracies are within this (equivalence test)
ACTIVATIONS = "sigmoid,relu"

LR_GRID = "0.2,1,5"  # optim.lr_mult: each placement at its best learning rate

ARMS = (
    Arm("placement", {"bn": "none", "model.activation": ACTIVATIONS, "optim.lr_mult": "1"}, probes=("activations",),
        name="no BN"),
    Arm("placement", {"bn": "before", "model.activation": ACTIVATIONS, "optim.lr_mult": LR_GRID},
        probes=("activations",), name="BN before"),
    Arm("placement", {"bn": "after", "model.activation": ACTIVATIONS, "optim.lr_mult": LR_GRID},
        probes=("activations",), name="BN after"),
)
PLACEMENTS = {"none": "no BN", "before": "BN before", "after": "BN after"}  # bn.placement -> arm


def bn_input_shape(runs: list[Run]) -> dict[str, Estimate]:
    """Skew and excess kurtosis of BN's input at the last eval, averaged over layers, then over runs."""
    out = {}
    for stat in ("skew", "kurt"):
        per_run = []
        for run in runs:
            layers = hidden_layers(run, activations.bn_input_key(ANY_LAYER, stat))
            values = [last_value(run, activations.bn_input_key(layer, stat)) for layer in layers]
            values = [v for v in values if v is not None]
            per_run.append(float(np.mean(values)) if values else None)
        out[stat] = mean_interval(per_run)
    return out


def verdict(arms: Arms) -> Verdict:
    """Per activation: BN before vs after the nonlinearity by final test accuracy (before - after, Welch).
    The paper's placement holds for an activation when the interval lies above 0 and does not when it lies
    below; otherwise, when the 90% interval lies within +-TIE, the two tie (an equivalence test), else it is
    open. The claim (before is the better place) holds when before is better for every activation, does not
    hold when after is better for one, and is inconclusive otherwise (ties included: before is not better).
    Also reports the skew and excess kurtosis of BN's input in each placement."""
    runs = [run for arm in arms.values() for run in arm]
    activations = sorted({cfg(r, "model.activation") for r in runs if cfg(r, "model.activation")})
    numbers: dict[str, Any] = {}
    parts, ties = [], []
    for act in activations:
        by_placement = {p: select(arms[name], model__activation=act) for p, name in PLACEMENTS.items()}
        for p, arm in by_placement.items():
            numbers[f"{act} {p} final acc"] = final_acc(arm)
        for p in ("before", "after"):
            shape = bn_input_shape(finished(by_placement[p]))
            numbers[f"{act} {p} BN-input skew"], numbers[f"{act} {p} BN-input kurtosis"] = shape["skew"], shape["kurt"]
        if not finished(by_placement["before"]) or not finished(by_placement["after"]):
            continue
        better = decide(Comparison(f"{act}: BN before beats BN after (final test accuracy, before - after)",
                                   final_accuracy, "final test accuracy", HIGHER), by_placement["before"], by_placement["after"])
        tie = decide(Comparison(f"{act}: before and after tie (within +-{TIE:g})", final_accuracy,
                                "final test accuracy", EQUAL, TIE), by_placement["before"], by_placement["after"])
        parts.append(better)
        ties.append(tie)
        numbers[f"{act}: before vs after"] = placement_word(better, tie)
    if not parts:
        return no_runs(runs, "no finished runs with BN before and after the nonlinearity")
    words = "; ".join(f"{act}: {numbers[f'{act}: before vs after']}" for act in activations
                      if f"{act}: before vs after" in numbers)
    return decided(all_of("C6", parts), runs, numbers, [], secondary=ties, note=f" By activation: {words}.")


def placement_word(better: Result, tie: Result) -> str:
    if better.outcome == HOLDS:
        return "before is better"
    if better.outcome == DOES_NOT_HOLD:
        return "after is better"
    return "they tie" if tie.outcome == HOLDS else "open"


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = [run for arm in arms.values() for run in arm]
    activations = sorted({cfg(r, "model.activation") for r in runs if cfg(r, "model.activation")})
    groups = {
        ARM_LABELS[p]: {a: final_acc(select(arms[name], model__activation=a)) for a in activations}
        for p, name in PLACEMENTS.items()
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    out = [
        plots.point_chart(
            groups, Path(folder) / "c6_placement.png", "final test accuracy", "BN before vs after the nonlinearity"
        )
    ]
    kurt = {
        ARM_LABELS[p]: {
            a: bn_input_shape(finished(select(arms[PLACEMENTS[p]], model__activation=a)))["kurt"] for a in activations
        }
        for p in ("before", "after")
    }
    if any(e.mean is not None for g in kurt.values() for e in g.values()):
        out.append(
            plots.point_chart(
                kurt,
                Path(folder) / "c6_bn_input_kurtosis.png",
                "excess kurtosis of BN's input",
                "How Gaussian BN's input is (0 = Gaussian)",
                reference=0.0,
            )
        )
    return out


CLAIM = Claim(
    text="where BN goes: before or after the nonlinearity",
    source='paper Sec. 3.2 (before); the notes (debated, "after" sometimes better)',
    protocol="before vs after vs none, for sigmoid and ReLU",
    rule="per activation, before - after in final test accuracy (Welch): before better (interval above 0), after "
    "better (below 0), or a tie (90% interval within +-0.005, two one-sided tests); the paper's placement holds when "
    "before is better for every activation and does not when after is better for one; also report how Gaussian "
    "(skew, kurtosis) the BN input is in each placement",
    method=f"before and after tie when the 90% interval of their difference lies within +-{TIE:g} (half an accuracy "
    "point).",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
