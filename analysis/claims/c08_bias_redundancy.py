"""C8: a bias right before BN does nothing (paper Sec. 3.2; the notes)."""

from __future__ import annotations

from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import finished, probe_results
from analysis.rules import all_of, condition, within
from analysis.verdict import Verdict, decided, no_runs

FLOAT_TOL = 1e-5  # float32 round-off on relative errors

ARMS = (
    Arm("scale_invariance", {"bn": "before", "init.scale": "1e-4,1e-3,1e-2,1e-1,1.0"}, probes=("scale_invariance",),
        name="BN"),
)


def verdict(arms: Arms) -> Verdict:
    """In every BN run of the scale_invariance experiment, the bias gradient relative to the weight
    gradient and the relative output change for a shifted bias are at most FLOAT_TOL, and no layer
    feeding BN has a bias (the probe's `layers_with_bias`, a count)."""
    bn = finished(arms["BN"])
    effects = [r["bias_before_bn"] for r in probe_results(bn, "scale_invariance") if "bias_before_bn" in r]
    if not effects:
        return no_runs(arms["BN"], "no BN runs with the scale_invariance probe")
    grad = max(e["grad_norm_ratio"] for e in effects)
    change = max(e["output_change"] for e in effects)
    with_bias = max(int(e.get("layers_with_bias") or 0) for e in effects)
    numbers = {
        "largest bias grad / weight grad": grad,
        "largest output change": change,
        "layers with a bias before BN (most in a run)": with_bias,
        "runs": len(effects),
    }
    decision = all_of("C8", [
        within("the bias gets no gradient", grad, FLOAT_TOL, "largest bias gradient / weight gradient"),
        within("shifting the bias changes no output", change, FLOAT_TOL, "largest relative output change"),
        condition("the models drop that bias", not with_bias, f"{with_bias} layer(s) feeding BN keep a bias"),
    ])
    return decided(decision, bn, numbers, ["largest bias grad / weight grad", "largest output change"],
                   seeds=len(effects))


def figures(arms: Arms, folder: Path) -> list[Path]:
    effects = [r["bias_before_bn"] for r in probe_results(finished(arms["BN"]), "scale_invariance") if "bias_before_bn" in r]
    if not effects:
        return []
    errors = {
        "bias grad / weight grad": max(e["grad_norm_ratio"] for e in effects),
        "output change": max(e["output_change"] for e in effects),
    }
    return [
        plots.errors_vs_tolerance(
            errors, FLOAT_TOL, Path(folder) / "c8_bias.png", "A bias right before BN (worst over runs)"
        )
    ]


CLAIM = Claim(
    text="a bias right before BN does nothing",
    source="paper Sec. 3.2; the notes",
    protocol="gradient of the loss w.r.t. that bias, and output change when it is perturbed",
    rule="both zero to float tolerance; the models drop that bias",
    method=f"the bias's gradient relative to the weight's and the output change for a shifted bias must be at most "
    f"{FLOAT_TOL:g} (float32 round-off on relative errors).",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
