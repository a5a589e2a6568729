"""C15: BN does not reduce internal covariate shift as Santurkar et al. define it (2018, Sec. 2.2, Def. 2.1)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import ANY_LAYER, ARM_LABELS, finished, hidden_layers, layer_order, probed_mean
from analysis.rules import HIGHER, LOWER, Comparison, all_of, decide
from analysis.runs import Run
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs
from training.probes import ics

SIMILAR_SHIFT = 0.9  # BN's ||G - G'|| "similar or larger": at least this fraction of the baseline's
SIMILAR_COS = 0.05  # BN's cos(G, G') "similar or smaller": at most this much above the baseline's

ARMS = (
    Arm("ics", {"bn": "none"}, probes=("ics",), name="no BN"),
    Arm("ics", {"bn": "before"}, probes=("ics",), name="BN"),
)


def ics_layers(run: Run) -> list[str]:
    return hidden_layers(run, ics.layer_key(ANY_LAYER, "l2"))


def log_ics_l2(run: Run) -> float | None:
    value = probed_mean(run, ics.L2)
    return math.log(value) if value and value > 0 else None


def verdict(arms: Arms) -> Verdict:
    """Per run Santurkar's internal covariate shift averaged over the probed evaluations after step 0
    and over layers (ics/l2 = ||G - G'||, ics/cos = cos(G, G')). The claim (BN does not reduce it) holds
    when BN's shift is similar or larger on both measures, each a non-inferiority test: ||G - G'|| with BN
    at least SIMILAR_SHIFT times the baseline's (log ratio, Welch, interval above log SIMILAR_SHIFT), and
    cos(G, G') with BN at most SIMILAR_COS above the baseline's (interval below SIMILAR_COS)."""
    runs = arms["no BN"] + arms["BN"]
    bn, base = finished(arms["BN"]), finished(arms["no BN"])
    numbers: dict[str, Any] = {}
    for label, arm in (("BN", bn), ("no-BN", base)):
        numbers[f"{label} ICS l2"] = mean_interval(probed_mean(r, ics.L2) for r in arm)
        numbers[f"{label} ICS cos"] = mean_interval(probed_mean(r, ics.COS) for r in arm)
    if min(e.n for e in numbers.values()) == 0:
        return no_runs(runs, "no runs with the ics probe (ics/l2, ics/cos) in both arms")
    parts = [
        decide(Comparison(f"BN's ||G - G'|| is not smaller (log BN/no BN, above log {SIMILAR_SHIFT:g})", log_ics_l2,
                          "log ||G - G'||", HIGHER, math.log(SIMILAR_SHIFT)), bn, base),
        decide(Comparison(f"BN's cos(G, G') is not higher (BN - no BN, below {SIMILAR_COS:g})",
                          lambda r: probed_mean(r, ics.COS), "cos(G, G')", LOWER, -SIMILAR_COS), bn, base),
    ]
    return decided(all_of("C15", parts), bn + base, numbers, list(numbers))


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
    rule="report both with and without BN; the claim holds when BN's shift is similar or larger on both measures "
    "(non-inferiority, averaged over layers and evaluations): ||G - G'|| with BN at least 0.9x the baseline's "
    "(log ratio, Welch, interval above log 0.9) and cos(G, G') at most 0.05 above it (interval below 0.05)",
    source_number="with BN the shift is similar or larger (VGG on CIFAR-10 and deep linear networks)",
    method=f"each probe value is averaged over the probed evaluations after step 0, then over layers, per run; BN's shift "
    f"is \"similar or larger\" when ||G - G'|| is at least {SIMILAR_SHIFT:g}x the baseline's and cos(G, G') at most "
    f"{SIMILAR_COS:g} above it.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
