"""C3: BN allows much higher learning rates and fewer steps (the paper's Sec. 4.2, Fig. 3 table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import HEADLINE_SEEDS, Arms, Claim
from analysis.measures import (
    NEAR_CHANCE,
    chance,
    diverged,
    final_acc,
    final_accuracy,
    finished,
    lr_mult_curves,
    lr_steps,
    per_seed_steps,
    planned_steps,
    reaches,
    trains,
)
from analysis.rules import LOWER, Comparison, all_of, any_of, condition, decide, steps_ratio
from analysis.verdict import Verdict, decided, no_runs

ARMS = (
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "1"}, name="no BN x1"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, name="BN x1"),
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "5"}, name="no BN x5"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "5"}, name="BN x5"),
    Arm("lr_multiplier", {"bn": "none", "optim.lr_mult": "30"}, name="no BN x30"),
    Arm("lr_multiplier", {"bn": "before", "optim.lr_mult": "30"}, name="BN x30"),
)


def verdict(arms: Arms) -> Verdict:
    """Three parts, all needed: (a) BN x5 reaches the same seed's no-BN x1 final accuracy in fewer steps
    (BN x5 / no-BN x1, paired by seed: the interval of the ratio below 1; the paper's "14x" is 1/14);
    (b) BN x5 and BN x30 train (no run diverges); (c) the unnormalized net at x30 diverges (any run) or
    ends lower than at x1 (final test accuracy, Welch, interval below 0). Secondary: BN x30's ratio."""
    runs = [run for arm in arms.values() for run in arm]
    missing = [name for name in ("no BN x1", "BN x5", "BN x30", "no BN x30") if not finished(arms[name])]
    if missing:
        return no_runs(runs, f"no finished runs for {', '.join(m.replace('no BN', 'no-BN') for m in missing)}")
    base, x30 = arms["no BN x1"], arms["no BN x30"]
    faster = steps_ratio("BN x5 needs fewer steps to the same seed's no-BN x1 final accuracy (BN x5 / no-BN x1)",
                         arms["BN x5"], base, final_accuracy, reaches)
    worse = decide(Comparison("no BN x30 ends lower than no BN x1 (final test accuracy, x30 - x1)", final_accuracy,
                              "final test accuracy", LOWER), x30, base)
    blows_up = condition("no BN x30 diverges", bool(diverged(x30)), f"{len(diverged(x30))} of {len(finished(x30))} runs diverged")
    decision = all_of("C3", [faster, trains("BN x5", arms["BN x5"]), trains("BN x30", arms["BN x30"]),
                             any_of("no BN x30 diverges or ends lower", [blows_up, worse])])
    secondary = [steps_ratio("BN x30 / no-BN x1, steps to the same seed's no-BN x1 final accuracy",
                             arms["BN x30"], base, final_accuracy, reaches)]
    numbers: dict[str, Any] = {
        "target (no-BN x1 final acc)": final_acc(base),
        **{f"BN x{m} final acc": final_acc(arms[f"BN x{m}"]) for m in (1, 5, 30)},
        "no-BN x30 final acc": final_acc(x30),
        "no-BN x30 diverged": f"{len(diverged(x30))}/{len(finished(x30))}",
        "steps to the same seed's no-BN x1 final acc, BN x5 / no-BN x1, per seed": per_seed_steps(arms["BN x5"], base),
    }
    note = ""
    if abs((final_acc(base).mean or 0) - chance(runs)) <= NEAR_CHANCE:
        note = f" Note: no-BN x1 itself ends at chance ({final_acc(base).mean:.3f}), so the step ratio says little."
    return decided(decision, runs, numbers, ["no-BN x30 diverged"], secondary, note)


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = [run for arm in arms.values() for run in arm]
    steps, target = lr_steps(runs)
    if not steps:
        return []
    total = max((planned_steps(r) or 0) for r in runs)
    grid, styles = lr_mult_curves(runs)
    return [
        plots.steps_by_lr_mult(steps, Path(folder) / "c3_steps_by_lr.png",
                               f"Steps to reach no-BN x1's final accuracy ({target:.3f})", total),
        plots.convergence(grid, Path(folder) / "c3_curves.png", "Test accuracy per lr multiplier", styles=styles),
    ]


CLAIM = Claim(
    text="BN allows much higher learning rates and fewer steps",
    source="paper Sec. 4.2, Fig. 3 table",
    protocol="base lr from C1, multipliers x1, x5, x30, with and without BN; the x1 and x5 runs are C1's",
    rule="all of: BN x5 reaches the same seed's no-BN x1 final accuracy in fewer steps (ratio BN x5 / no-BN x1, "
    "paired by seed, interval below 1; the paper's \"14x\" is 1/14); BN x5 and x30 train (no divergence); the "
    "unnormalized net at x30 diverges or ends lower than at x1 (Welch, interval below 0)",
    source_number="14x fewer steps (BN-x5: 2.1M steps vs Inception: 31.0M to reach 72.2%)",
    method="the paper's \"14x fewer steps\" is a ratio of steps to a target, here per seed (ratio 1/14 = 0.071).",
    arms=ARMS,
    decide=verdict,
    draw=figures,
    seeds=HEADLINE_SEEDS,
)
