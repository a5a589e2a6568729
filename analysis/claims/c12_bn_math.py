"""C12: the hand-derived BN backward is right (the notes' closed-form dx, dgamma, dbeta)."""

from __future__ import annotations

from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import finished, probe_results
from analysis.rules import all_of, condition, within
from analysis.verdict import Verdict, decided, no_runs

ARMS = (Arm("bn_math", {}, probes=("bn_math",), name="from scratch"),)


def verdict(arms: Arms) -> Verdict:
    """Per run of the bn_math probe: every error against torch and autograd at most the probe's own
    tolerance, and float64 gradcheck passing for 1d and 2d."""
    runs = arms["from scratch"]
    results = probe_results(finished(runs), "bn_math")
    if not results:
        return no_runs(runs, "no runs with the bn_math probe")
    worst_torch = max(max(r["vs_torch"].values()) for r in results)
    worst_autograd = max(max(r["vs_autograd"].values()) for r in results)
    tolerance = min(r["tolerance"] for r in results)
    gradcheck = all(all(r["gradcheck"].values()) for r in results)
    numbers = {
        "largest error vs torch": worst_torch,
        "largest error vs autograd": worst_autograd,
        "tolerance": tolerance,
        "gradcheck passes": gradcheck,
        "runs": len(results),
    }
    decision = all_of("C12", [
        within("the from-scratch BN matches torch.nn.BatchNorm", worst_torch, tolerance, "largest error"),
        within("its hand-written backward matches autograd", worst_autograd, tolerance, "largest error"),
        condition("float64 gradcheck passes (1d and 2d)", gradcheck, "passes" if gradcheck else "fails"),
    ])
    return decided(decision, runs, numbers, ["largest error vs torch", "largest error vs autograd", "gradcheck passes"],
                   seeds=len(results))


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = arms["from scratch"]
    results = probe_results(finished(runs), "bn_math")
    if not results:
        return []
    errors = {}
    for against in ("vs_torch", "vs_autograd"):
        for key in sorted({k for r in results for k in r[against]}):
            errors[f"{key} {against.replace('_', ' ')}"] = max(
                r[against][key] for r in results if r[against].get(key) is not None
            )
    return [
        plots.errors_vs_tolerance(
            errors,
            min(r["tolerance"] for r in results),
            Path(folder) / "c12_bn_math.png",
            "From-scratch BN against torch and autograd (worst over runs)",
        )
    ]


CLAIM = Claim(
    text="the hand-derived BN backward is right",
    source="the notes (closed-form dx, dgamma, dbeta)",
    protocol="a from-scratch BN (1d and 2d) with its own backward vs autograd and vs torch.nn.BatchNorm",
    rule="outputs, gradients and running statistics match; float64 gradcheck passes",
    method="the tolerance is the bn_math probe's own, recorded in each run.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
