"""C14: BN still helps when its output distribution is made unstable on purpose (Santurkar et al. 2018, Sec. 2.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import arm_curve, final_acc, final_accuracy, finished, trains, unit_drift, unit_panels
from analysis.rules import HIGHER, Comparison, all_of, decide
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs

ABOUT_AS_WELL = 0.02  # noisy BN "about as well as" BN: at most this far below it

ARMS = (
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "1"}, probes=("activations",), name="no BN"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, probes=("activations",), name="BN"),
    Arm("noisy_bn", {"bn": "noisy"}, probes=("activations",), name="noisy BN"),
)


def verdict(arms: Arms) -> Verdict:
    """Both needed: noisy BN trains about as well as BN (final test accuracy, noisy - BN, Welch: the
    interval above -ABOUT_AS_WELL, a non-inferiority test) and better than no-BN (noisy - no-BN, interval
    above 0); noisy BN must train. Secondary: the drift score (as C2), noisy BN - BN, shows whether the
    noise did make the distribution unstable."""
    runs = [run for arm in arms.values() for run in arm]
    arms = {name: finished(arms[name]) for name in ("BN", "noisy BN", "no BN")}
    if any(not arm for arm in arms.values()):
        return no_runs(runs, "an arm (BN, noisy BN, no-BN) has no finished runs")
    numbers: dict[str, Any] = {f"{name} final acc": final_acc(arm) for name, arm in arms.items()}
    numbers.update({f"{name} drift": mean_interval(map(unit_drift, arm)) for name, arm in arms.items()})
    accuracy = ("final test accuracy", final_accuracy)
    decision = all_of("C14", [
        trains("noisy BN", arms["noisy BN"]),
        decide(Comparison(f"noisy BN trains about as well as BN (noisy - BN, above -{ABOUT_AS_WELL:g})", accuracy[1],
                          accuracy[0], HIGHER, -ABOUT_AS_WELL), arms["noisy BN"], arms["BN"]),
        decide(Comparison("noisy BN beats no BN (noisy - no BN)", accuracy[1], accuracy[0], HIGHER),
               arms["noisy BN"], arms["no BN"]),
    ])
    unstable = decide(Comparison("the noise makes the distribution drift more (drift score, noisy - BN)", unit_drift,
                                 "drift score", HIGHER), arms["noisy BN"], arms["BN"])
    return decided(decision, runs, numbers, ["noisy BN drift", "BN drift"], [unstable])


def figures(arms: Arms, folder: Path) -> list[Path]:
    arms = {name: finished(arms[name]) for name in ("no BN", "BN", "noisy BN")}
    out = []
    curves_by_arm = {label: arm_curve(arm) for label, arm in arms.items() if arm}
    if curves_by_arm:
        out.append(plots.convergence(curves_by_arm, Path(folder) / "c14_convergence.png",
                                     "Noisy BN: test accuracy (mean, 95% band)"))
    panels = unit_panels({name: arms[name] for name in ("BN", "noisy BN")})
    if panels:
        out.append(plots.percentile_bands(panels, Path(folder) / "c14_percentiles.png",
                                          "Input to one sigmoid of the last hidden layer, noise included"))
    return out


CLAIM = Claim(
    text="BN still helps when its output distribution is made unstable on purpose",
    source="Santurkar et al. 2018, Sec. 2.1, Fig. 2",
    protocol="the Fig. 1 net; after each BN, per unit mu ~ U(-0.5, 0.5), sigma ~ U(1, 1.25) drawn at each step, "
    "then per example m ~ U(mu +- 0.1), s ~ N(sigma, 0.1): a <- s*a + m; no BN vs BN vs noisy BN; the "
    "activations probe records the percentiles with the noise applied",
    rule="all of: noisy BN trains (no divergence), about as well as BN (noisy - BN, Welch, interval above -0.02: a "
    "non-inferiority test) and better than no-BN (interval above 0); the drift score (as C2) shows whether the "
    "noise made the distribution unstable",
    source_number="noisy BN trains about as fast as BN and far better than no BN (VGG on CIFAR-10, Fig. 2)",
    method=f"noisy BN trains \"about as well as\" BN when noisy - BN is above -{ABOUT_AS_WELL:g} (a non-inferiority test).",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
