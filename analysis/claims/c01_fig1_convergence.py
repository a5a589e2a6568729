"""C1: BN trains faster and reaches higher test accuracy (the paper's Fig. 1a)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import DEFAULT_SEEDS, HEADLINE_SEEDS, Arms, Claim
from analysis.measures import (
    ARM_LABELS,
    arm_curve,
    best_lr_mult,
    chance_floor,
    diverged,
    final_acc,
    final_accuracy,
    finished,
    lr_mult_curves,
    mean_curve,
    per_seed_steps,
    planned_steps,
    reaches,
    select,
    trains,
)
from analysis.rules import HIGHER, Comparison, Result, all_of, decide, steps_ratio
from analysis.runs import Run
from analysis.verdict import Verdict, decided, deciding_parts, no_runs

EARLY_FRACTION = 0.1  # "after the first 10% of training": where BN's lead along the curve is counted

ARMS = (
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "1"}, name="no BN"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, name="BN"),
    # each arm's own small lr grid, for the tuned baseline
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "0.2,5"}, seeds=DEFAULT_SEEDS, name="no BN, lr grid"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "0.2,5"}, seeds=DEFAULT_SEEDS, name="BN, lr grid"),
)


def fixed_targets(base_final: float | None) -> list[float]:
    """Round accuracy levels below the baseline's mean final accuracy (floor to 0.05, and 0.05 under it):
    targets both arms can reach, for steps-to-target at fixed levels."""
    if base_final is None:
        return []
    top = math.floor(base_final * 20) / 20
    return [round(top - 0.05, 2), round(top, 2)] if top - 0.05 > 0 else [round(top, 2)]


def evals_ahead(bn: list[Run], base: list[Run]) -> tuple[int, int]:
    """At how many of the evaluations after the first 10% of training BN's mean curve is above the baseline's."""
    total = max((planned_steps(r) or 0) for r in bn + base)
    bn_curve, base_curve = dict(mean_curve(finished(bn))), dict(mean_curve(finished(base)))
    late = [s for s in sorted(set(bn_curve) & set(base_curve)) if s > EARLY_FRACTION * total]
    return sum(bn_curve[s] > base_curve[s] for s in late), len(late)


def convergence(bn: list[Run], base: list[Run], names: tuple[str, str] = ("BN", "no BN")) -> Result:
    """The two questions of two arms, each decided on its own: does `bn` train faster (steps to the
    baseline run's final accuracy, paired by seed, ratio below 1) and end higher (final test accuracy,
    Welch)? And must every `bn` run train. The claim is their conjunction."""
    a, b = names
    faster = steps_ratio(f"{a} trains faster (steps to the {b} run's final accuracy, same seed, {a} / {b})",
                         bn, base, final_accuracy, reaches, floor=chance_floor(bn + base))
    higher = decide(Comparison(f"{a} ends higher (final test accuracy, {a} - {b})", final_accuracy,
                               "final test accuracy", HIGHER), bn, base)
    return all_of("BN trains faster and ends higher", [trains(a, bn), faster, higher])


def target_ratios(bn: list[Run], base: list[Run], targets: list[float], names=("BN", "no BN")) -> list[Result]:
    """Steps to fixed accuracy levels, BN / baseline per seed (secondary)."""
    return [steps_ratio(f"steps to {t:.2f} test accuracy, {names[0]} / {names[1]}", bn, base,
                        lambda run, t=t: t, reaches) for t in targets]


def verdict(arms: Arms) -> Verdict:
    """At the Fig. 1 learning rate (lr_mult=1), two parts with their own verdicts and a stated
    combination: BN "trains faster" (steps to the same seed's no-BN final accuracy, BN / no-BN, paired by
    seed: the interval of the ratio below 1) and "ends higher" (final test accuracy, BN - no-BN, Welch:
    the interval above 0); every BN run must train. C1 holds when both parts hold, does not hold when
    either does not (or a BN run diverges), and is inconclusive otherwise. Secondary: steps to fixed
    targets, BN's lead along the curve, and the same two parts with each arm at its tuned lr_mult."""
    bn, base = arms["BN"], arms["no BN"]
    bn_all, base_all = bn + arms["BN, lr grid"], base + arms["no BN, lr grid"]
    if not finished(bn) or not finished(base):
        return no_runs(bn_all + base_all, "no finished runs with and without BN at lr_mult=1")
    decision = convergence(bn, base)
    base_final = final_acc(base)
    secondary = target_ratios(bn, base, [t for t in fixed_targets(base_final.mean) if t > chance_floor(bn + base)])
    ahead, late = evals_ahead(bn, base)
    numbers: dict[str, Any] = {
        "BN final acc": final_acc(bn),
        "no-BN final acc": base_final,
        "BN above no-BN (mean curves), evaluations after the first 10%": f"{ahead} of {late}",
        "steps to the same seed's no-BN final acc, BN / no-BN, per seed": per_seed_steps(bn, base),
        "no-BN runs diverged": len(diverged(base)),
    }
    bn_mult, base_mult = best_lr_mult(bn_all), best_lr_mult(base_all)
    if bn_mult is not None and base_mult is not None and (bn_mult, base_mult) != (1, 1):
        tuned_bn, tuned_base = select(bn_all, optim__lr_mult=bn_mult), select(base_all, optim__lr_mult=base_mult)
        against_tuned = convergence(tuned_bn, tuned_base, (f"BN x{bn_mult:g}", f"no BN x{base_mult:g}"))
        secondary += deciding_parts(against_tuned)[1:]
        numbers["tuned lr_mult (BN, no-BN)"] = f"x{bn_mult:g}, x{base_mult:g}"
        numbers["against the tuned baseline"] = against_tuned.outcome
    return decided(decision, bn + base, numbers, ["against the tuned baseline"], secondary)


def figures(arms: Arms, folder: Path) -> list[Path]:
    out = []
    fig1 = {ARM_LABELS[p]: arm_curve(arms[name]) for p, name in (("none", "no BN"), ("before", "BN"))
            if finished(arms[name])}
    if fig1:
        out.append(plots.convergence(fig1, Path(folder) / "c1_convergence.png",
                                     "Fig. 1a: test accuracy at lr x1 (mean, 95% band)"))
    grid, styles = lr_mult_curves([run for runs in arms.values() for run in runs])
    if len(grid) > 2:
        out.append(plots.convergence(grid, Path(folder) / "c1_lr_grid.png", "Each arm over its lr grid", styles=styles))
    return out


CLAIM = Claim(
    text="BN trains faster and reaches higher test accuracy",
    source="paper Fig. 1a",
    protocol="MLP 3x100 sigmoid, small-Gaussian init, batch 60, 50k steps, an evaluation every 500; BN before "
    "every sigmoid vs none; each arm also at its own best lr from a small grid (a tuned baseline)",
    rule="two parts, each decided on its own at lr_mult=1: trains faster (steps to the same seed's no-BN final "
    "accuracy, BN / no-BN, paired by seed: the ratio's interval below 1) and ends higher (final test accuracy, "
    "BN - no-BN, Welch: interval above 0); holds when both hold and no BN run diverges, does not hold when either "
    "does not; also reports steps to fixed targets and the same two parts against the tuned baseline",
    source_number="no numbers printed; Fig. 1a's axis runs 0.7-1.0 with BN above throughout",
    method="\"trains faster\" counts, per seed, the steps each arm needs to reach that seed's no-BN final accuracy; "
    "BN's lead along the curve is counted at the evaluations after the first 10% of training; the tuned "
    "baseline is each arm at the lr_mult of its grid with the best mean final accuracy.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
    seeds=HEADLINE_SEEDS,
)
