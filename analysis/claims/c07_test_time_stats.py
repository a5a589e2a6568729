"""C7: inference must use population statistics, not the test batch's (paper Sec. 3.1, Alg. 2; the notes)."""

from __future__ import annotations

import math
from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import finished, probe_results
from analysis.rules import all_of, at_least, within
from analysis.stats import mean_interval
from analysis.verdict import Verdict, decided, no_runs

PREDICTION_TOL = 1e-5  # largest change of a predicted probability across test batch sizes/placements
ACCURACY_TOL = 1e-3  # accuracy change across test batch sizes that round-off (an argmax tie) may cause
SMALL_MARGIN = 0.01  # ema and population accuracy agree within this
DEGRADES = 0.02  # batch statistics at small batches lose at least this much accuracy

ARMS = (Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, probes=("test_time_stats",), name="BN"),)


def verdict(arms: Arms) -> Verdict:
    """Per run of the test_time_stats probe: with ema and population statistics no predicted
    probability changes by more than PREDICTION_TOL (nor accuracy by more than ACCURACY_TOL) across test
    batch sizes and placements; the two agree within SMALL_MARGIN of accuracy; with the batch's own
    statistics the smallest batch size that is defined loses at least DEGRADES of accuracy against
    population statistics (batch size 1 is undefined)."""
    runs = arms["BN"]
    results = probe_results(finished(runs), "test_time_stats")
    if not results:
        return no_runs(runs, "no runs with the test_time_stats probe on a BN network")
    gaps, smallest_drops = [], []
    worst_change, worst_accuracy_change = 0.0, 0.0
    for result in results:
        for mode in ("ema", "population"):
            changes = [v for v in result["max_prediction_change"][mode].values() if v is not None]
            accs = [v for v in result["accuracy"][mode].values() if v is not None]
            worst_change = max([worst_change, *changes] if changes else [math.inf])
            worst_accuracy_change = max(worst_accuracy_change, max(accs) - min(accs) if accs else 0.0)
        gaps.append(result["ema_vs_population"]["accuracy_difference"])
        sizes = sorted(result["accuracy"]["batch"], key=int)
        defined = [s for s in sizes if result["accuracy"]["batch"][s] is not None]
        if defined:
            population = result["accuracy"]["population"][sizes[-1]]
            smallest_drops.append(population - result["accuracy"]["batch"][defined[0]])
    numbers = {
        "largest ema/population prediction change": worst_change,
        "ema vs population accuracy difference": mean_interval(gaps),
        "accuracy lost with batch statistics at the smallest batch": mean_interval(smallest_drops),
        "runs": len(results),
    }
    decision = all_of("C7", [
        within("ema and population predictions do not depend on the test batch", worst_change, PREDICTION_TOL,
               "largest change of a predicted probability"),
        within("nor does their accuracy", worst_accuracy_change, ACCURACY_TOL, "largest change"),
        within("ema and population statistics agree", max(gaps), SMALL_MARGIN, "largest accuracy difference"),
        at_least("batch statistics degrade at the smallest test batch", min(smallest_drops, default=None), DEGRADES,
                 "smallest accuracy loss against population statistics"),
    ])
    return decided(decision, runs, numbers, list(numbers)[:3], seeds=len(results))


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = arms["BN"]
    ordered = sorted(
        (r for r in finished(runs) if probe_results([r], "test_time_stats")), key=lambda r: r.summary.get("seed", 0)
    )
    if not ordered:
        return []
    result = ordered[0].summary["test_time_stats"]
    modes = {
        mode: {int(size): acc for size, acc in result["accuracy"][mode].items()} for mode in sorted(result["accuracy"])
    }
    return [
        plots.accuracy_by_batch_size(
            modes,
            Path(folder) / "c7_batch_size.png",
            f"Test accuracy by test batch size (seed {ordered[0].summary.get('seed')})",
        )
    ]


CLAIM = Claim(
    text="inference must use population statistics, not the test batch's",
    source="paper Sec. 3.1, Alg. 2; the notes",
    protocol="one trained BN net evaluated with (a) exponential running averages, (b) Alg. 2 population "
    "statistics over the training set with m/(m-1), (c) the test batch's own statistics at test batch sizes "
    "1..1000",
    rule="(a) and (b) give predictions independent of test batch size and composition and agree within a small "
    "margin; (c) degrades at small test batches (batch 1 is meaningless)",
    method=f"with ema or population statistics a predicted probability may change by at most {PREDICTION_TOL:g} and the "
    f"accuracy by {ACCURACY_TOL:g} (an argmax tie) across test batches; ema and population agree within {SMALL_MARGIN:g}; "
    f"batch statistics must lose at least {DEGRADES:g} at the smallest test batch.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
