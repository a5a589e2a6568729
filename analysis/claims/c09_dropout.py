"""C9: BN regularizes and reduces the need for Dropout (paper Sec. 3.4, 4.2.1; the notes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import ARM_LABELS, final_acc, final_by_seed, select, train_test_gap
from analysis.rules import HIGHER, HOLDS, INCONCLUSIVE, LOWER, Result, judge
from analysis.runs import Run
from analysis.stats import mean_interval, one_sample
from analysis.verdict import Verdict, decided, no_runs

ARMS = (
    Arm("fig1_mnist", {"bn": "none", "optim.lr_mult": "1"}, name="no BN"),
    Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, name="BN"),
    Arm("dropout", {"bn": "none", "model.dropout": "0.5"}, name="no BN, dropout"),
    Arm("dropout", {"bn": "before", "model.dropout": "0.5"}, name="BN, dropout"),
    # a regime where dropout helps the unnormalized net: wider layers, 1,000 training examples
    Arm("dropout_overfit", {"bn": "none", "model.dropout": "0.0,0.5"}, name="no BN, overfitting"),
    Arm("dropout_overfit", {"bn": "before", "model.dropout": "0.0,0.5"}, name="BN, overfitting"),
)


def gains_by_seed(with_dropout: list[Run], without: list[Run]) -> dict:
    """{seed: final test accuracy with dropout - without}."""
    base = final_by_seed(without)
    return {seed: acc - base[seed] for seed, acc in final_by_seed(with_dropout).items()
            if isinstance(acc, (int, float)) and isinstance(base.get(seed), (int, float))}


def dropout_part(arms: dict[str, list[Run]], label: str) -> tuple[Result, Result, dict]:
    """One regime, its runs by arm ("BN", "no-BN", each with dropout 0 and 0.5): (does dropout help the
    unnormalized net: its gain, dropout 0.5 - 0 same seed, above 0; does it help BN less: BN's gain - no-BN's
    gain, same seed, below 0; the numbers behind them)."""
    numbers: dict[str, Any] = {}
    gains = {}
    for name, arm in arms.items():
        on, off = select(arm, model__dropout=0.5), select(arm, model__dropout=0.0)
        gains[name] = gains_by_seed(on, off)
        numbers[f"{label}{name} dropout gain"] = mean_interval(gains[name].values())
        numbers[f"{label}{name} final acc, dropout 0"] = final_acc(off)
        numbers[f"{label}{name} final acc, dropout 0.5"] = final_acc(on)
        numbers[f"{label}{name} train-test gap, dropout 0"] = train_test_gap(off)
        numbers[f"{label}{name} train-test gap, dropout 0.5"] = train_test_gap(on)
    helps = judge(f"{label}dropout helps the unnormalized net (its gain, same seed)", HIGHER, 0.0,
                  one_sample(gains["no-BN"].values(), paired_design=True))
    seeds = [s for s in gains["BN"] if s in gains["no-BN"]]
    diff = one_sample([gains["BN"][s] - gains["no-BN"][s] for s in seeds], 0.0, paired_design=True)
    less = judge(f"{label}dropout helps BN less (gain with BN - gain without, same seed)", LOWER, 0.0, diff)
    return helps, less, numbers


def verdict(arms: Arms) -> Verdict:
    """Decided in the regime where dropout helps the unnormalized net (dropout_overfit): there, dropout's
    gain (final test accuracy with dropout 0.5 minus without, same seed) must be smaller for the BN net than
    for the unnormalized one (the per-seed difference of gains, interval below 0). When dropout does not help
    the unnormalized net the claim cannot be tested: inconclusive. The Fig. 1 regime is reported beside it
    (and decides only when there are no dropout_overfit runs). Also reports both gains and the train-test gaps."""
    runs = [run for arm in arms.values() for run in arm]
    overfit = {"BN": arms["BN, overfitting"], "no-BN": arms["no BN, overfitting"]}
    fig1 = {"BN": arms["BN"] + arms["BN, dropout"], "no-BN": arms["no BN"] + arms["no BN, dropout"]}
    has_overfit = any(overfit.values())
    helps, less, numbers = dropout_part(overfit if has_overfit else fig1, "overfitting regime: " if has_overfit else "")
    if less.difference is None or less.difference.a_n == 0:
        return no_runs(runs, "no seed with both dropout 0 and 0.5 finished in both arms")
    secondary = []
    if has_overfit and any(fig1.values()):
        fig1_helps, fig1_less, fig1_numbers = dropout_part(fig1, "Fig. 1 regime: ")
        secondary, numbers = [fig1_helps, fig1_less], {**numbers, **fig1_numbers}
    decision = less
    if helps.outcome != HOLDS:
        decision = Result("C9", INCONCLUSIVE, "", None, None, [helps, less])
    note = "" if helps.outcome == HOLDS else (
        f" Dropout is not shown to help the unnormalized net in this regime (its gain "
        f"{helps.brief().rsplit(': ', 1)[1]}: {helps.outcome}), so whether it helps BN less cannot be tested.")
    key = [k for k in numbers if k.endswith("dropout gain") and (not has_overfit or k.startswith("overfitting"))]
    return decided(decision, runs, numbers, key, secondary, note)


def figures(arms: Arms, folder: Path) -> list[Path]:
    """Final accuracy and train-test gap with dropout 0 and 0.5, per arm, in each regime (Fig. 1; overfitting)."""
    groups, gaps = {}, {}
    regimes = {"Fig. 1": {"none": arms["no BN"] + arms["no BN, dropout"], "before": arms["BN"] + arms["BN, dropout"]},
               "overfitting": {"none": arms["no BN, overfitting"], "before": arms["BN, overfitting"]}}
    overfitting = any(regimes["overfitting"].values())
    for regime, by_placement in regimes.items():
        for p, arm in by_placement.items():
            label = f"{ARM_LABELS[p]}, {regime}" if overfitting else ARM_LABELS[p]
            accs = {f"dropout {d:g}": final_acc(select(arm, model__dropout=d)) for d in (0.0, 0.5)}
            if any(e.mean is not None for e in accs.values()):
                groups[label] = accs
                gaps[label] = {f"dropout {d:g}": train_test_gap(select(arm, model__dropout=d)) for d in (0.0, 0.5)}
    if not groups:
        return []
    return [
        plots.point_chart(
            groups, Path(folder) / "c9_dropout.png", "final test accuracy", "Dropout with and without BN"
        ),
        plots.point_chart(gaps, Path(folder) / "c9_gap.png", "train - test accuracy", "Train-test gap", reference=0.0),
    ]


CLAIM = Claim(
    text="BN regularizes and reduces the need for Dropout",
    source="paper Sec. 3.4, 4.2.1; the notes",
    protocol="BN and no-BN, each with dropout 0 and 0.5 (or a sweep)",
    rule="in a regime where dropout helps the unnormalized net (its gain's interval above 0; dropout_overfit: "
    "wider layers, 1,000 training examples), dropout's gain (final test accuracy with dropout 0.5 minus without, "
    "same seed) smaller with BN: the per-seed difference of gains, BN - no-BN, interval below 0; the Fig. 1 "
    "regime is reported beside it; report test accuracy and train-test gap",
    method="dropout's gain is final accuracy with dropout 0.5 minus without, same seed; it is compared between BN and "
    "no BN only where dropout is shown to help the unnormalized net.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
