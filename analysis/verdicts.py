"""One verdict per claim, computed from the runs of its experiment (rules: docs/claims.md).

Each `verdict_cN(runs)` takes the runs of the claim's experiment (analysis.tables.load_all of
`<results>/<experiment>`) and returns a `Verdict`: "holds", "does not hold" or "inconclusive", the
numbers it rests on and one sentence saying why. How the catalogue's words become numbers:

- Means over seeds come with 95% Student-t intervals (analysis.stats). "Intervals apart" means the
  lower end of one is above the upper end of the other. A comparison over seeds needs at least
  MIN_SEEDS finished runs per arm, else it is inconclusive ("too few runs"). It holds when the intervals
  separate in the claimed direction, fails when they separate the other way (or, where the rule asks
  for a mean above, C1, when it is not), and is inconclusive when they overlap.
- Runs that failed or never finished are left out and counted. Diverged runs count as diverged: their
  final accuracy is not a number, so they are left out of means and named in the verdict; a diverged
  run in an arm that the rule says must train makes the claim not hold.
- "Chance" is 1 / number of classes; "at chance" is within NEAR_CHANCE of it; "trains well above
  chance" is a mean final accuracy at least WELL_ABOVE_CHANCE above it.
- The learning rate of Fig. 1 is `optim.lr_mult=1`; an arm's tuned setting is the lr_mult of its grid
  with the best mean final test accuracy (settings where a run diverged are not candidates, unless all
  have one).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from analysis.runs import Run
from analysis.stats import PERCENTILES, Estimate, drift_score, mean_interval, steps_to_target
from analysis.tables import metric_series

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"

MIN_SEEDS = 2
NEAR_CHANCE = 0.02  # C4: "within 2 points of 1/classes"; also C13's "near chance"
WELL_ABOVE_CHANCE = 0.10
FAR_BEHIND = 0.10  # C13: BN ahead of no-BN by at least this much, intervals apart
EARLY_FRACTION = 0.1  # C1/C2: "after the first 10% of training"
SHRINK_ORDERS = 2.0  # C4: last/first hidden layer scale at init below 10^-2
IDENTITY_TOL = 1e-9  # C5: the identities with eps = 0 (exact in arithmetic), computed in float64
FLOAT_TOL = 1e-5  # C5, C8: float32 round-off on relative errors
OUTPUT_TOL = 1e-4  # C11: largest change of an output after inserting BN
VARIES_LITTLE = 0.05  # C5: range of mean final accuracy across init scales
PREDICTION_TOL = 1e-5  # C7: largest change of a predicted probability across test batch sizes/placements
ACCURACY_TOL = 1e-3  # C7: accuracy change across test batch sizes that round-off (an argmax tie) may cause
SMALL_MARGIN = 0.01  # C7: ema and population accuracy agree within this
DEGRADES = 0.02  # C7: batch statistics at small batches lose at least this much accuracy
KEEPS = 0.005  # C11: fine-tuning "keeps" accuracy if it loses at most this much
ABOUT_AS_WELL = 0.02  # C14: noisy BN "about as well as" BN: at most this far below it
FAR_ABOVE_CHANCE = 0.25  # C18: "far above chance"


@dataclass
class Verdict:
    claim: str
    verdict: str
    explanation: str
    numbers: dict[str, Any] = field(default_factory=dict)  # name -> Estimate, number, text or nested dict
    key: list[str] = field(default_factory=list)  # the names in `numbers` that the verdict table shows
    seeds: int = 0  # fewest finished runs in any arm the rule compares
    dataset: str = "n/a"
    steps: int | str | None = None  # one number, or "fewest-most" where the runs differ

    def key_numbers(self) -> str:
        return "; ".join(f"{name} {format_number(self.numbers[name])}" for name in self.key if name in self.numbers)


def format_number(value) -> str:
    if isinstance(value, Estimate):
        return value.format()
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if (abs(value) < 1e-3 or abs(value) >= 1e4) and value != 0 else f"{value:.3f}"
    return str(value)


# --- reading runs -----------------------------------------------------------------------------


def cfg(run: Run, key: str, default=None):
    """A config value by dotted key ('bn.placement')."""
    node: Any = run.config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def select(runs: list[Run], **settings) -> list[Run]:
    """Runs whose config matches: select(runs, bn__placement="none", optim__lr_mult=1)."""

    def matches(run):
        return all(_same(cfg(run, k.replace("__", ".")), v) for k, v in settings.items())

    return [run for run in runs if matches(run)]


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def finished(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.status in ("completed", "diverged")]


def diverged(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.status == "diverged"]


def final_acc(runs: list[Run]) -> Estimate:
    """Mean final test accuracy over the completed runs (diverged ones have none)."""
    return mean_interval(r.summary.get("final_test_acc") for r in runs if r.status == "completed")


def chance(runs: list[Run]) -> float:
    """1 / classes of the runs' data set (1/10 when the runs disagree or do not say)."""
    classes = {cfg(r, "dataset.classes") for r in runs if cfg(r, "dataset.classes")}
    return 1.0 / (classes.pop() if len(classes) == 1 else 10)


def planned_steps(run: Run) -> int | None:
    """The steps the run was set to train: train.steps, or with train.epochs set, the steps it ran (a
    completed run ran them all)."""
    if cfg(run, "train.epochs") is None:
        steps = cfg(run, "train.steps")
    else:
        steps = run.summary.get("steps") if run.status == "completed" else None
    return steps if isinstance(steps, int) else None


def describe(runs: list[Run]) -> tuple[str, int | str | None]:
    """(data sets, steps) of these runs: the steps as one number, or "fewest-most" where they differ."""
    names = sorted({str(cfg(r, "dataset.name")) for r in runs if cfg(r, "dataset.name")})
    steps = [s for s in map(planned_steps, runs) if s is not None]
    if not steps:
        return (", ".join(names) or "n/a", None)
    return (", ".join(names) or "n/a", max(steps) if min(steps) == max(steps) else f"{min(steps)}-{max(steps)}")


def verdict(
    claim: str, outcome: str, explanation: str, runs: list[Run], numbers: dict, key: list[str], seeds: int
) -> Verdict:
    dataset, steps = describe(runs)
    return Verdict(claim, outcome, explanation, numbers, key, seeds, dataset, steps)


def no_runs(claim: str, runs: list[Run], what: str) -> Verdict:
    return verdict(claim, INCONCLUSIVE, f"Inconclusive: {what}.", runs, {}, [], 0)


def mean_curve(runs: list[Run], metric: str = "test/acc") -> list[tuple[int, float]]:
    """(step, mean over runs) at the steps every run in `runs` logged."""
    series = [dict(metric_series(r, metric)) for r in runs]
    if not series:
        return []
    steps = sorted(set.intersection(*(set(s) for s in series)))
    return [(step, float(np.mean([s[step] for s in series]))) for step in steps]


def layer_order(name: str) -> tuple[str, int]:
    match = re.match(r"([a-z]+)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, 10**6)


def hidden_layers(run: Run, pattern: str) -> list[str]:
    """Layer names that occur in the run's metric keys matching `pattern` (one group: the layer)."""
    names = {m.group(1) for line in run.metrics for k in line if (m := re.fullmatch(pattern, k))}
    return sorted(names, key=layer_order)


# --- C1, C2: Fig. 1 ---------------------------------------------------------------------------


def compare_convergence(bn: list[Run], base: list[Run]) -> dict:
    """The C1 rule on two arms: end, every eval after the first 10%, steps BN needs for the baseline's final."""
    bn_final, base_final = final_acc(bn), final_acc(base)
    total = max((planned_steps(r) or 0) for r in bn + base)
    bn_curve, base_curve = dict(mean_curve(finished(bn))), dict(mean_curve(finished(base)))
    late = [s for s in sorted(set(bn_curve) & set(base_curve)) if s > EARLY_FRACTION * total]
    behind = [s for s in late if not bn_curve[s] > base_curve[s]]
    reach = steps_to_target(sorted(bn_curve.items()), base_final.mean) if base_final.mean is not None else None
    seeds = min(bn_final.n, base_final.n)
    if len(finished(bn)) == 0 or len(finished(base)) == 0:
        outcome, why = INCONCLUSIVE, "an arm has no finished runs"
    elif diverged(bn):
        outcome, why = DOES_NOT_HOLD, f"{len(diverged(bn))} BN run(s) diverged"
    elif seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm, need {MIN_SEEDS})"
    elif not bn_final.mean > base_final.mean:
        outcome, why = DOES_NOT_HOLD, "BN ends no higher than the baseline"
    elif behind:
        outcome, why = (
            DOES_NOT_HOLD,
            f"BN's mean is not above the baseline's at {len(behind)} eval(s) after the first 10% "
            f"(first at step {behind[0]})",
        )
    elif not bn_final.apart_above(base_final):
        outcome, why = INCONCLUSIVE, "BN ends higher but the 95% intervals overlap"
    else:
        outcome, why = (
            HOLDS,
            "BN is above at every eval after the first 10% and its final interval is above the baseline's",
        )
    return {
        "outcome": outcome,
        "why": why,
        "bn_final": bn_final,
        "base_final": base_final,
        "steps_to_baseline_final": reach,
        "evals_behind": len(behind),
        "seeds": seeds,
        "base_diverged": len(diverged(base)),
    }


def best_lr_mult(runs: list[Run]) -> float | None:
    """The lr_mult with the best mean final test accuracy. Settings with a diverged run are not candidates
    unless every setting has one."""
    mults = sorted({cfg(r, "optim.lr_mult") for r in runs if cfg(r, "optim.lr_mult") is not None})
    scores = {m: final_acc(select(runs, optim__lr_mult=m)).mean for m in mults}
    scores = {m: score for m, score in scores.items() if score is not None}
    stable = {m: score for m, score in scores.items() if not diverged(select(runs, optim__lr_mult=m))}
    candidates = stable or scores
    return max(candidates, key=lambda m: (candidates[m], -m)) if candidates else None


def tuned(arm: list[Run]) -> tuple[list[Run], float | None]:
    """An arm's runs at its best lr_mult (best_lr_mult), and that multiplier; the arm as it is when it
    has one setting only."""
    if len({cfg(r, "optim.lr_mult") for r in arm}) <= 1:
        return arm, None
    best = best_lr_mult(arm)
    return (select(arm, optim__lr_mult=best), best) if best is not None else (arm, None)


def verdict_c1(runs: list[Run]) -> Verdict:
    """C1: BN above the baseline at the end (intervals apart) and at every eval after the first 10% of training
    (steps > 0.1 x train.steps), at the Fig. 1 learning rate (lr_mult=1); the same comparison with each arm at its
    tuned lr_mult."""
    bn, base = select(runs, bn__placement="before"), select(runs, bn__placement="none")
    fig1_bn, fig1_base = select(bn, optim__lr_mult=1), select(base, optim__lr_mult=1)
    if not fig1_bn or not fig1_base:
        return no_runs("C1", runs, "no runs with and without BN at lr_mult=1")
    main = compare_convergence(fig1_bn, fig1_base)
    numbers = {
        "BN final acc": main["bn_final"],
        "no-BN final acc": main["base_final"],
        "steps BN needs for the no-BN final acc": main["steps_to_baseline_final"],
        "no-BN runs diverged": main["base_diverged"],
    }
    explanation = f"At lr_mult=1: {main['why']}."
    bn_mult, base_mult = best_lr_mult(bn), best_lr_mult(base)
    if bn_mult is not None and base_mult is not None:
        tuned = compare_convergence(select(bn, optim__lr_mult=bn_mult), select(base, optim__lr_mult=base_mult))
        numbers.update(
            {
                "tuned lr_mult (BN, no-BN)": f"x{bn_mult:g}, x{base_mult:g}",
                "tuned BN final acc": tuned["bn_final"],
                "tuned no-BN final acc": tuned["base_final"],
                "steps tuned BN needs for the tuned no-BN final acc": tuned["steps_to_baseline_final"],
                "against the tuned baseline": tuned["outcome"],
            }
        )
        explanation += (
            f" Each arm at its tuned lr (BN x{bn_mult:g}, no-BN x{base_mult:g}): {tuned['outcome']} ({tuned['why']})."
        )
    return verdict(
        "C1",
        main["outcome"],
        explanation,
        fig1_bn + fig1_base,
        numbers,
        ["BN final acc", "no-BN final acc", "steps BN needs for the no-BN final acc", "against the tuned baseline"],
        main["seeds"],
    )


def tracked_units(run: Run) -> dict[str, list[dict]]:
    """Per tracked unit of the last hidden layer ("fc3 unit 7"), its evaluations as dicts with step, p15,
    p50, p85; the layer's percentiles averaged over units ("fc3 (mean over units)") when no unit is tracked."""
    layers = hidden_layers(run, r"act/([^/]+)/(?:u\d+/)?p50")
    if not layers:
        return {}
    layer = layers[-1]
    pattern = rf"act/{layer}/u(\d+)/p50"
    units = sorted({int(m.group(1)) for line in run.metrics for k in line if (m := re.fullmatch(pattern, k))})
    prefixes = {f"{layer} unit {u}": f"act/{layer}/u{u}/" for u in units} or {
        f"{layer} (mean over units)": f"act/{layer}/"
    }
    tracked = {}
    for name, prefix in prefixes.items():
        keys = {q: prefix + q for q in PERCENTILES}
        rows = [
            {"step": line["step"], **{q: line[k] for q, k in keys.items()}}
            for line in run.metrics
            if all(isinstance(line.get(k), (int, float)) for k in keys.values())
        ]
        if rows:
            tracked[name] = rows
    return tracked


def unit_drift(run: Run) -> float | None:
    """C2's drift score of a run: the mean drift (analysis.stats.drift_score) over its tracked units."""
    total = planned_steps(run) or max(line["step"] for line in run.metrics)
    scores = [
        drift_score(*([row[q] for row in rows] for q in PERCENTILES), [row["step"] for row in rows], total)
        for rows in tracked_units(run).values()
    ]
    scores = [score for score in scores if score is not None]
    return float(np.mean(scores)) if scores else None


def verdict_c2(runs: list[Run]) -> Verdict:
    """C2: the drift score of the last hidden layer's tracked units (see unit_drift) lower with BN,
    averaged over units and seeds, at the Fig. 1 learning rate (lr_mult=1)."""
    bn = finished(select(runs, bn__placement="before", optim__lr_mult=1))
    base = finished(select(runs, bn__placement="none", optim__lr_mult=1))
    bn_drift, base_drift = mean_interval(map(unit_drift, bn)), mean_interval(map(unit_drift, base))
    numbers = {"BN drift": bn_drift, "no-BN drift": base_drift}
    seeds = min(bn_drift.n, base_drift.n)
    if seeds == 0:
        return no_runs(
            "C2", bn + base, "no runs with percentile probes (act/<layer>/p15..p85) in both arms at lr_mult=1"
        )
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif bn_drift.mean < base_drift.mean:
        outcome, why = HOLDS, "the percentiles move less with BN"
    else:
        outcome, why = DOES_NOT_HOLD, "the percentiles move at least as much with BN"
    return verdict(
        "C2",
        outcome,
        f"Drift score {bn_drift.mean:.3f} with BN vs {base_drift.mean:.3f} without: {why}.",
        bn + base,
        numbers,
        ["BN drift", "no-BN drift"],
        seeds,
    )


# --- C3: learning-rate multipliers ------------------------------------------------------------


def verdict_c3(runs: list[Run]) -> Verdict:
    """C3: target = the no-BN x1 mean final test accuracy. An arm's steps = the first eval at which its
    mean curve reaches the target. Holds if BN x5 and x30 have no diverged run and need fewer steps than
    no-BN x1 (ratio = no-BN x1 steps / BN steps, beside the paper's 14x), and no-BN x30 diverges (any
    run) or ends below no-BN x1 with the intervals apart (below on average only: inconclusive)."""
    arms = {(p, m): select(runs, bn__placement=p, optim__lr_mult=m) for p in ("none", "before") for m in (1, 5, 30)}
    if any(not finished(arm) for arm in arms.values()):
        missing = [f"{'BN' if p == 'before' else 'no-BN'} x{m}" for (p, m), arm in arms.items() if not finished(arm)]
        return no_runs("C3", runs, f"no finished runs for {', '.join(missing)}")
    base = arms[("none", 1)]
    target = final_acc(base)
    if target.mean is None:
        return no_runs("C3", runs, "the no-BN x1 runs have no final accuracy")
    base_steps = steps_to_target(mean_curve(finished(base)), target.mean)
    numbers: dict[str, Any] = {"target (no-BN x1 final acc)": target, "no-BN x1 steps": base_steps}
    problems = []
    for m in (5, 30):
        arm = arms[("before", m)]
        steps = steps_to_target(mean_curve(finished(arm)), target.mean)
        per_run = [steps_to_target(metric_series(r, "test/acc"), target.mean) for r in finished(arm)]
        numbers[f"BN x{m} final acc"] = final_acc(arm)
        numbers[f"BN x{m} steps"] = steps
        numbers[f"BN x{m} runs reaching the target"] = f"{sum(s is not None for s in per_run)}/{len(per_run)}"
        numbers[f"BN x{m} step ratio"] = base_steps / steps if steps and base_steps else None
        if diverged(arm):
            problems.append(f"{len(diverged(arm))} BN x{m} run(s) diverged")
        elif steps is None:
            problems.append(f"BN x{m} never reaches the target")
        elif not steps < base_steps:
            problems.append(f"BN x{m} needs {steps} steps, not fewer than no-BN x1's {base_steps}")
    x30 = arms[("none", 30)]
    numbers["no-BN x30 diverged"] = f"{len(diverged(x30))}/{len(finished(x30))}"
    numbers["no-BN x30 final acc"] = final_acc(x30)
    x30_final = final_acc(x30)
    x30_diverges, x30_worse = bool(diverged(x30)), target.apart_above(x30_final)
    unclear = []
    if not (x30_diverges or x30_worse):
        if x30_final.mean is not None and x30_final.mean < target.mean:
            unclear.append("no-BN x30 ends below no-BN x1 on average but the intervals overlap")
        else:
            problems.append("no-BN x30 neither diverges nor ends below no-BN x1")
    seeds = min(len(finished(a)) for a in arms.values())
    ratio = numbers["BN x5 step ratio"]
    ratio_text = f"{ratio:.1f}x" if ratio else "n/a"
    if problems:
        outcome, why = DOES_NOT_HOLD, "; ".join(problems)
    elif seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif unclear:
        outcome, why = INCONCLUSIVE, unclear[0]
    else:
        outcome, why = (
            HOLDS,
            f"BN x5 reaches no-BN x1's final accuracy in {ratio_text} fewer steps (paper: 14x), "
            "BN x30 trains and no-BN x30 " + ("diverges" if x30_diverges else "ends lower, intervals apart"),
        )
    if abs(target.mean - chance(runs)) <= NEAR_CHANCE:
        why += f"; note: no-BN x1 itself ends at chance ({target.mean:.3f}), so the step ratio says little"
    return verdict(
        "C3",
        outcome,
        why[0].upper() + why[1:] + ".",
        runs,
        numbers,
        ["BN x5 step ratio", "BN x30 step ratio", "no-BN x30 diverged"],
        seeds,
    )


# --- C4: poor initialization ------------------------------------------------------------------


def scale_by_depth(runs: list[Run]) -> dict[str, Estimate]:
    """act/<layer>/std at step 0, per hidden layer in depth order, mean over runs."""
    per_layer: dict[str, list[float]] = {}
    for run in runs:
        first = next((line for line in run.metrics if line["step"] == 0), {})
        for layer in hidden_layers(run, r"act/([^/]+)/std"):
            if isinstance(first.get(f"act/{layer}/std"), (int, float)):
                per_layer.setdefault(layer, []).append(first[f"act/{layer}/std"])
    return {layer: mean_interval(v) for layer, v in sorted(per_layer.items(), key=lambda kv: layer_order(kv[0]))}


def last_only_why(last_scale: float, runs: list[Run]) -> str:
    """Why BN on the logits alone may not rescue the net: BN divides by sqrt(var + eps), and when the
    signal's variance is far below eps it cannot bring the signal back to scale."""
    eps = cfg(runs[0], "bn.eps") if runs else None
    if not isinstance(eps, (int, float)) or last_scale ** 2 >= eps:
        return ""
    return (f" (the last hidden layer's scale at init, {last_scale:.1e}, squared is far below BN's eps = {eps:g}: "
            "BN divides by sqrt(var + eps), so the logits it normalizes stay near zero)")


def verdict_c4(runs: list[Run]) -> Verdict:
    """C4: no-BN within NEAR_CHANCE of chance; BN everywhere and BN on the logits only at least
    WELL_ABOVE_CHANCE above it; the no-BN pre-activation std at init decreasing layer by layer, the last
    hidden layer's at least SHRINK_ORDERS orders of magnitude below the first's."""
    arms = {
        "no-BN": select(runs, bn__placement="none"),
        "BN everywhere": select(runs, bn__placement="before", bn__layers="all"),
        "BN last only": select(runs, bn__placement="before", bn__layers="last"),
    }
    if any(not finished(a) for a in arms.values()):
        return no_runs("C4", runs, "an arm (no-BN, BN everywhere, BN last only) has no finished runs")
    level = chance(runs)
    accs = {name: final_acc(a) for name, a in arms.items()}
    numbers: dict[str, Any] = {f"{name} final acc": acc for name, acc in accs.items()}
    numbers["chance"] = level
    scales = scale_by_depth(finished(arms["no-BN"]))
    numbers["no-BN scale at init by layer"] = {k: v.mean for k, v in scales.items()}
    problems = []
    if accs["no-BN"].mean is None or abs(accs["no-BN"].mean - level) > NEAR_CHANCE:
        problems.append(
            f"no-BN ends at {format_number(accs['no-BN'].mean)}, not within {NEAR_CHANCE:g} of chance ({level:.3f})"
        )
    means = [v.mean for v in scales.values()]
    for name in ("BN everywhere", "BN last only"):
        if diverged(arms[name]) or accs[name].mean is None or accs[name].mean < level + WELL_ABOVE_CHANCE:
            problems.append(
                f"{name} ends at {format_number(accs[name].mean)}, not {WELL_ABOVE_CHANCE:g} above chance ({level:.3f})"
                + (last_only_why(means[-1], arms[name]) if name == "BN last only" and means else "")
            )
    if len(means) >= 2:
        if means[0] <= 0:
            orders = 0.0
        else:  # a scale that underflowed to 0 has shrunk away entirely
            orders = math.log10(means[0] / means[-1]) if means[-1] > 0 else math.inf
        numbers["no-BN scale shrink (orders of magnitude, first to last)"] = orders
        if not (all(b <= a for a, b in zip(means, means[1:])) and orders >= SHRINK_ORDERS):
            problems.append(
                f"the no-BN scale at init shrinks by {orders:.1f} orders of magnitude from the first to the last "
                f"hidden layer (the rule: no larger at any layer and >= {SHRINK_ORDERS:g} orders in all)"
            )
    seeds = min(a.n for a in accs.values())
    if len(means) < 2:
        outcome, why = INCONCLUSIVE, "no per-layer scale at init (act/<layer>/std at step 0) in the no-BN runs"
    elif problems:
        outcome, why = DOES_NOT_HOLD, "; ".join(problems)
    elif seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    else:
        outcome, why = HOLDS, "no-BN stays at chance while both BN arms train, and the no-BN scale collapses with depth"
    return verdict(
        "C4",
        outcome,
        why[0].upper() + why[1:] + ".",
        runs,
        numbers,
        [
            "no-BN final acc",
            "BN everywhere final acc",
            "BN last only final acc",
            "no-BN scale shrink (orders of magnitude, first to last)",
        ],
        seeds,
    )


# --- C5, C8: scale invariance and the bias before BN ------------------------------------------


def probe_results(runs: list[Run], name: str) -> list[dict]:
    """The end-of-run probe `name` of each run that has it and did not skip it."""
    return [r.summary[name] for r in runs if isinstance(r.summary.get(name), dict) and "skipped" not in r.summary[name]]


def identity_errors(results: list[dict]) -> dict[str, dict[str, float]]:
    """Per scale a: the worst error of each identity with eps = 0 (the probe's `exact`), where the
    identities hold exactly in arithmetic; the ratio a * ||dL/d(aW)|| / ||dL/dW|| is measured against 1."""
    out: dict[str, dict[str, float]] = {}
    for result in results:
        for a, errors in result.get("identities", {}).items():
            exact = errors.get("exact", {})
            measured = {k: exact[k] for k in ("forward", "grad_input", "grad_weight") if k in exact}
            if "weight_gradient_ratio_times_a" in exact:
                measured["weight_gradient_ratio_times_a"] = abs(exact["weight_gradient_ratio_times_a"] - 1)
            worst = out.setdefault(a, {})
            for k, v in measured.items():
                worst[k] = max(worst.get(k, -math.inf), v)
    return dict(sorted(out.items(), key=lambda kv: float(kv[0])))


def eps_effect(results: list[dict]) -> float | None:
    """The largest forward error with BN's own eps (which breaks the identities slightly), for context."""
    values = [e["forward"] for r in results for e in r.get("identities", {}).values() if "forward" in e]
    return max(values) if values else None


def accuracy_by_scale(runs: list[Run]) -> dict[float, Estimate]:
    scales = sorted({float(cfg(r, "init.scale")) for r in runs if cfg(r, "init.scale") is not None})
    return {s: final_acc(select(runs, init__scale=s)) for s in scales}


def verdict_c5(runs: list[Run]) -> Verdict:
    """C5: every Sec. 3.3 identity holds at every a to IDENTITY_TOL with eps = 0 (where it is exact;
    the deviation BN's own eps causes is reported beside it); and across init scales the range of
    BN's mean final accuracy is at most VARIES_LITTLE while the baseline's exceeds it."""
    bn, base = select(runs, bn__placement="before"), select(runs, bn__placement="none")
    results = probe_results(finished(bn), "scale_invariance")
    bn_acc, base_acc = accuracy_by_scale(bn), accuracy_by_scale(base)
    if not results or not bn_acc or not base_acc:
        return no_runs(
            "C5", runs, "no BN runs with the scale_invariance probe, or an arm of the init-scale sweep is missing"
        )
    errors = identity_errors(results)
    failing = [f"{k} at a={a} ({v:.1e})" for a, e in errors.items() for k, v in e.items() if v > IDENTITY_TOL]
    spread = {
        name: max(v.mean for v in acc.values() if v.mean is not None)
        - min(v.mean for v in acc.values() if v.mean is not None)
        for name, acc in (("BN", bn_acc), ("no-BN", base_acc))
        if any(v.mean is not None for v in acc.values())
    }
    numbers = {
        "identities failing": len(failing),
        "largest identity error (eps = 0)": max((v for e in errors.values() for v in e.values()), default=None),
        "largest forward error with BN's eps": eps_effect(results),
        "BN final acc range over scales": spread.get("BN"),
        "no-BN final acc range over scales": spread.get("no-BN"),
        "BN final acc by scale": {f"{s:g}": e for s, e in bn_acc.items()},
        "no-BN final acc by scale": {f"{s:g}": e for s, e in base_acc.items()},
        "no-BN runs diverged": len(diverged(base)),
    }
    seeds = min([e.n for e in (*bn_acc.values(), *base_acc.values())] or [0])
    problems = []
    if failing:
        problems.append(f"identities off beyond float64 round-off: {', '.join(failing[:4])}")
    if spread.get("BN") is None or spread["BN"] > VARIES_LITTLE:
        problems.append(f"BN's accuracy varies by {format_number(spread.get('BN'))} across scales")
    if spread.get("no-BN") is not None and spread["no-BN"] <= VARIES_LITTLE and not diverged(base):
        problems.append(f"the baseline's accuracy varies only by {spread['no-BN']:.3f}")
    if problems:
        outcome, why = DOES_NOT_HOLD, "; ".join(problems)
    elif seeds < 1:
        outcome, why = INCONCLUSIVE, "no finished runs at some scale"
    else:
        outcome, why = (
            HOLDS,
            f"the identities hold to float64 round-off at every a (with eps = 0), and BN's accuracy varies by "
            f"{spread['BN']:.3f} across scales "
            f"against the baseline's {spread['no-BN']:.3f}",
        )
    return verdict(
        "C5",
        outcome,
        why[0].upper() + why[1:] + ".",
        runs,
        numbers,
        ["largest identity error (eps = 0)", "BN final acc range over scales", "no-BN final acc range over scales"],
        seeds,
    )


def verdict_c8(runs: list[Run]) -> Verdict:
    """C8: in every BN run of the scale_invariance experiment, the bias gradient relative to the weight
    gradient and the relative output change for a shifted bias are at most FLOAT_TOL, and no layer
    feeding BN has a bias (the probe's `layers_with_bias`, a count)."""
    bn = finished(select(runs, bn__placement="before"))
    effects = [r["bias_before_bn"] for r in probe_results(bn, "scale_invariance") if "bias_before_bn" in r]
    if not effects:
        return no_runs("C8", runs, "no BN runs with the scale_invariance probe")
    grad = max(e["grad_norm_ratio"] for e in effects)
    change = max(e["output_change"] for e in effects)
    with_bias = max(int(e.get("layers_with_bias") or 0) for e in effects)
    numbers = {
        "largest bias grad / weight grad": grad,
        "largest output change": change,
        "layers with a bias before BN (most in a run)": with_bias,
        "runs": len(effects),
    }
    if grad <= FLOAT_TOL and change <= FLOAT_TOL and not with_bias:
        outcome, why = (
            HOLDS,
            f"both effects are at most {max(grad, change):.1e} (tolerance {FLOAT_TOL:g}) and the models drop that bias",
        )
    else:
        outcome, why = (
            DOES_NOT_HOLD,
            f"bias effects {grad:.1e} (gradient) and {change:.1e} (output) against a tolerance of {FLOAT_TOL:g}"
            + (f"; {with_bias} layer(s) feeding BN keep a bias" if with_bias else ""),
        )
    return verdict(
        "C8",
        outcome,
        why[0].upper() + why[1:] + ".",
        bn,
        numbers,
        ["largest bias grad / weight grad", "largest output change"],
        len(effects),
    )


# --- C6, C9, C10, C13: comparisons over seeds -------------------------------------------------


def last_value(run: Run, key: str) -> float | None:
    values = metric_series(run, key)
    return values[-1][1] if values else None


def bn_input_shape(runs: list[Run]) -> dict[str, Estimate]:
    """Skew and excess kurtosis of BN's input at the last eval, averaged over layers, then over runs."""
    out = {}
    for stat in ("skew", "kurt"):
        per_run = []
        for run in runs:
            values = [last_value(run, f"bnin/{layer}/{stat}") for layer in hidden_layers(run, rf"bnin/([^/]+)/{stat}")]
            values = [v for v in values if v is not None]
            per_run.append(float(np.mean(values)) if values else None)
        out[stat] = mean_interval(per_run)
    return out


def verdict_c6(runs: list[Run]) -> Verdict:
    """C6: per activation, BN before vs after the nonlinearity by final test accuracy: the better one is
    the one whose interval lies above; otherwise they tie. The paper's placement (before) holds if it is
    better for every activation, does not hold if "after" is better for one, and a tie is inconclusive.
    Also reports the skew and excess kurtosis of BN's input in each placement."""
    activations = sorted({cfg(r, "model.activation") for r in runs if cfg(r, "model.activation")})
    numbers: dict[str, Any] = {}
    outcomes, seeds = {}, []
    for act in activations:
        arms = {p: select(runs, model__activation=act, bn__placement=p) for p in ("none", "before", "after")}
        accs = {p: final_acc(a) for p, a in arms.items()}
        for p in arms:
            numbers[f"{act} {p} final acc"] = accs[p]
        for p in ("before", "after"):
            shape = bn_input_shape(finished(arms[p]))
            numbers[f"{act} {p} BN-input skew"], numbers[f"{act} {p} BN-input kurtosis"] = shape["skew"], shape["kurt"]
        seeds.append(min(accs["before"].n, accs["after"].n))
        if accs["before"].apart_above(accs["after"]):
            outcomes[act] = "before is better"
        elif accs["after"].apart_above(accs["before"]):
            outcomes[act] = "after is better"
        else:
            outcomes[act] = "they tie"
    numbers.update({f"{act}: before vs after": o for act, o in outcomes.items()})
    if not activations or min(seeds) == 0:
        return no_runs("C6", runs, "no finished runs with BN before and after the nonlinearity")
    summary = "; ".join(f"{act}: {o}" for act, o in outcomes.items())
    if min(seeds) < MIN_SEEDS:
        outcome = INCONCLUSIVE
        summary = f"too few runs ({min(seeds)} per arm); {summary}"
    elif any(o == "after is better" for o in outcomes.values()):
        outcome = DOES_NOT_HOLD
    elif all(o == "before is better" for o in outcomes.values()):
        outcome = HOLDS
    else:
        outcome = INCONCLUSIVE
    return verdict(
        "C6",
        outcome,
        f"By final test accuracy (95% intervals), {summary}.",
        runs,
        numbers,
        [k for k in numbers if k.endswith("before final acc") or k.endswith("after final acc")],
        min(seeds),
    )


def final_by_seed(runs: list[Run]) -> dict:
    """{seed: final test accuracy} of the completed runs, for comparisons paired by seed."""
    return {r.summary.get("seed"): r.summary.get("final_test_acc") for r in runs if r.status == "completed"}


def paired_gain(with_dropout: list[Run], without: list[Run]) -> Estimate:
    """Final test accuracy with dropout minus without, paired by seed."""
    base = final_by_seed(without)
    return mean_interval(
        acc - base[seed] for seed, acc in final_by_seed(with_dropout).items() if base.get(seed) is not None
    )


def train_test_gap(runs: list[Run]) -> Estimate:
    return mean_interval(
        last_value(r, "train/acc") - last_value(r, "test/acc")
        for r in runs
        if r.status == "completed" and last_value(r, "train/acc") is not None and last_value(r, "test/acc") is not None
    )


def verdict_c9(runs: list[Run]) -> Verdict:
    """C9: dropout's gain (final test accuracy with dropout 0.5 minus without, paired by seed) smaller for
    the BN net than for the unnormalized one, intervals apart; larger with intervals apart: does not hold;
    otherwise inconclusive. Also reports the train-test gaps."""
    numbers: dict[str, Any] = {}
    gains = {}
    for label, placement in (("BN", "before"), ("no-BN", "none")):
        arm = select(runs, bn__placement=placement)
        on, off = select(arm, model__dropout=0.5), select(arm, model__dropout=0.0)
        gains[label] = paired_gain(on, off)
        numbers[f"{label} dropout gain"] = gains[label]
        numbers[f"{label} final acc, dropout 0"] = final_acc(off)
        numbers[f"{label} final acc, dropout 0.5"] = final_acc(on)
        numbers[f"{label} train-test gap, dropout 0"] = train_test_gap(off)
        numbers[f"{label} train-test gap, dropout 0.5"] = train_test_gap(on)
    seeds = min(g.n for g in gains.values())
    if seeds == 0:
        return no_runs("C9", runs, "no seed with both dropout 0 and 0.5 finished in both arms")
    bn, base = gains["BN"], gains["no-BN"]
    shown = f"(gain {bn.mean:+.3f} with BN, {base.mean:+.3f} without)"
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few paired seeds ({seeds})"
    elif base.apart_above(bn):
        outcome, why = HOLDS, f"dropout helps the BN net less than the unnormalized one {shown}, intervals apart"
    elif bn.apart_above(base):
        outcome, why = DOES_NOT_HOLD, f"dropout helps the BN net more than the unnormalized one {shown}"
        if bn.mean < 0 and base.mean < 0:
            why = (f"dropout lowers test accuracy in both nets {shown}, so neither needs it at this length, and it "
                   "costs the BN net less: by the rule (a smaller gain with BN) the claim is not borne out")
    else:
        outcome, why = INCONCLUSIVE, f"the gains from dropout {shown} do not separate: the intervals overlap"
    return verdict(
        "C9", outcome, why[0].upper() + why[1:] + ".", runs, numbers, ["BN dropout gain", "no-BN dropout gain"], seeds
    )


def saturation(run: Run) -> float | None:
    """Mean over the evals after step 0 and over hidden layers of sat/<layer>."""
    layers = hidden_layers(run, r"sat/([^/]+)")
    values = [v for layer in layers for step, v in metric_series(run, f"sat/{layer}") if step > 0]
    return float(np.mean(values)) if values else None


def gradient_imbalance(run: Run) -> float | None:
    """Mean over the evals of |log10(grad/first_over_last)|: 0 when first and last layer get equal gradients."""
    values = [abs(math.log10(v)) for _, v in metric_series(run, "grad/first_over_last") if v > 0]
    return float(np.mean(values)) if values else None


def verdict_c10(runs: list[Run]) -> Verdict:
    """C10: with BN, both the mean saturated fraction (see saturation) and the gradient imbalance
    |log10(first/last)| (see gradient_imbalance) lower, intervals apart; does not hold if either is
    higher with intervals apart; otherwise (a tie, overlapping intervals) inconclusive."""
    bn, base = finished(select(runs, bn__placement="before")), finished(select(runs, bn__placement="none"))
    numbers = {
        "BN saturation": mean_interval(map(saturation, bn)),
        "no-BN saturation": mean_interval(map(saturation, base)),
        "BN |log10 grad first/last|": mean_interval(map(gradient_imbalance, bn)),
        "no-BN |log10 grad first/last|": mean_interval(map(gradient_imbalance, base)),
    }
    seeds = min(e.n for e in numbers.values())
    if seeds == 0:
        return no_runs("C10", runs, "no runs with the saturation and grad_norms probes in both arms")
    pairs = [
        ("saturation", numbers["BN saturation"], numbers["no-BN saturation"]),
        ("gradient imbalance", numbers["BN |log10 grad first/last|"], numbers["no-BN |log10 grad first/last|"]),
    ]
    worse = [f"{name} ({b.mean:.3g} vs {n.mean:.3g} without)" for name, b, n in pairs if b.apart_above(n)]
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif worse:
        outcome, why = DOES_NOT_HOLD, f"with BN the {' and the '.join(worse)} is higher, intervals apart"
    elif all(n.apart_above(b) for _, b, n in pairs):
        outcome, why = HOLDS, "with BN both the saturation and the gradient imbalance are lower (intervals apart)"
    else:
        shown = "; ".join(f"{name} {b.mean:.3g} with BN vs {n.mean:.3g} without" for name, b, n in pairs)
        outcome, why = INCONCLUSIVE, f"BN is not clearly lower in both ({shown}): an interval overlaps or they tie"
    return verdict("C10", outcome, why[0].upper() + why[1:] + ".", bn + base, numbers, list(numbers), seeds)


def verdict_c13(runs: list[Run]) -> Verdict:
    """C13: the deep sigmoid net with BN trains (mean final accuracy at least WELL_ABOVE_CHANCE above
    chance) and without BN is near chance (within NEAR_CHANCE) or far behind (BN ahead by at least
    FAR_BEHIND, intervals apart). With an lr grid, each arm is taken at its tuned lr_mult (see tuned)."""
    (bn, bn_mult), (base, base_mult) = (tuned(select(runs, bn__placement=p)) for p in ("before", "none"))
    if not finished(bn) or not finished(base):
        return no_runs("C13", runs, "no finished runs with and without BN")
    level = chance(runs)
    b, n = final_acc(bn), final_acc(base)
    numbers = {"BN final acc": b, "no-BN final acc": n, "chance": level, "no-BN runs diverged": len(diverged(base))}
    if bn_mult is not None or base_mult is not None:
        numbers["tuned lr_mult (BN, no-BN)"] = f"x{bn_mult or 1:g}, x{base_mult or 1:g}"
    seeds = min(b.n, len(finished(base)))
    bn_trains = not diverged(bn) and b.mean is not None and b.mean >= level + WELL_ABOVE_CHANCE
    base_acc = n.mean if n.mean is not None else level  # every no-BN run diverged: it learned nothing usable
    near = abs(base_acc - level) <= NEAR_CHANCE
    gap = (b.mean or 0) - base_acc
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif not bn_trains:
        outcome, why = DOES_NOT_HOLD, f"the BN net ends at {format_number(b.mean)}, not well above chance ({level:.3f})"
    elif near:
        outcome, why = HOLDS, "the BN net trains while the unnormalized one stays at chance"
    elif gap < FAR_BEHIND:
        outcome, why = DOES_NOT_HOLD, f"the unnormalized net trains too, {gap:.3f} behind BN"
    elif n.has_interval and not b.apart_above(n):
        outcome, why = INCONCLUSIVE, f"BN is {gap:.3f} ahead but the intervals overlap"
    else:
        outcome, why = HOLDS, f"the unnormalized net is {gap:.3f} behind BN"
    return verdict(
        "C13", outcome, why[0].upper() + why[1:] + ".", runs, numbers, ["BN final acc", "no-BN final acc"], seeds
    )


# --- C7, C11, C12: end-of-run probes ---------------------------------------------------------


def verdict_c7(runs: list[Run]) -> Verdict:
    """C7, per run of the test_time_stats probe: with ema and population statistics no predicted
    probability changes by more than PREDICTION_TOL (nor accuracy by more than ACCURACY_TOL) across test
    batch sizes and placements; the two agree within SMALL_MARGIN of accuracy; with the batch's own
    statistics the smallest batch size that is defined loses at least DEGRADES of accuracy against
    population statistics (batch size 1 is undefined)."""
    results = probe_results(finished(runs), "test_time_stats")
    if not results:
        return no_runs("C7", runs, "no runs with the test_time_stats probe on a BN network")
    problems, gaps, smallest_drops = [], [], []
    worst_change = 0.0
    for result in results:
        for mode in ("ema", "population"):
            changes = [v for v in result["max_prediction_change"][mode].values() if v is not None]
            accs = [v for v in result["accuracy"][mode].values() if v is not None]
            worst_change = max([worst_change, *changes])
            if max(changes, default=math.inf) > PREDICTION_TOL or (accs and max(accs) - min(accs) > ACCURACY_TOL):
                problems.append(f"{mode} predictions depend on the test batch")
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
    if max(gaps) > SMALL_MARGIN:
        problems.append(f"running averages and population statistics differ by up to {max(gaps):.3f} in accuracy")
    if not smallest_drops or min(smallest_drops) < DEGRADES:
        problems.append("batch statistics do not degrade at small test batches")
    if problems:
        outcome, why = DOES_NOT_HOLD, "; ".join(sorted(set(problems)))
    else:
        outcome, why = (
            HOLDS,
            (
                f"ema and population predictions do not depend on the test batch (largest change "
                f"{worst_change:.1e}) and agree within {max(gaps):.3f}; batch statistics lose "
                f"{min(smallest_drops):.3f} or more at the smallest batch"
            ),
        )
    return verdict("C7", outcome, why[0].upper() + why[1:] + ".", runs, numbers, list(numbers)[:3], len(results))


def verdict_c11(runs: list[Run]) -> Verdict:
    """C11, per run of the insert_pretrained probe: the largest output change right after inserting BN
    is at most OUTPUT_TOL, and fine-tuning ends no more than KEEPS below the accuracy right after insertion."""
    results = probe_results(finished(runs), "insert_pretrained")
    if not results:
        return no_runs("C11", runs, "no runs with the insert_pretrained probe")
    diff = max(r["max_output_difference"] for r in results)
    kept = [r["finetuned"].get("final_test_acc") for r in results]
    numbers = {
        "largest output change": diff,
        "acc before": mean_interval(r["test_acc_before"] for r in results),
        "acc after insertion": mean_interval(r["test_acc_after_insertion"] for r in results),
        "acc after fine-tune": mean_interval(kept),
        "control (no BN) after fine-tune": mean_interval(
            (r.get("control_without_bn") or {}).get("final_test_acc") for r in results
        ),
        "runs": len(results),
    }
    lost = [
        r["test_acc_after_insertion"] - r["finetuned"]["final_test_acc"]
        for r in results
        if r["finetuned"].get("final_test_acc") is not None
    ]
    problems = []
    if diff > OUTPUT_TOL:
        problems.append(f"insertion changes an output by {diff:.1e} (tolerance {OUTPUT_TOL:g})")
    if len(lost) < len(results) or max(lost) > KEEPS:
        problems.append("fine-tuning loses accuracy" if len(lost) == len(results) else "a fine-tune diverged")
    if problems:
        outcome, why = DOES_NOT_HOLD, "; ".join(problems)
    else:
        outcome, why = HOLDS, f"outputs change by at most {diff:.1e} after insertion and fine-tuning keeps the accuracy"
    return verdict(
        "C11",
        outcome,
        why[0].upper() + why[1:] + ".",
        runs,
        numbers,
        ["largest output change", "acc after insertion", "acc after fine-tune"],
        len(results),
    )


def verdict_c12(runs: list[Run]) -> Verdict:
    """C12, per run of the bn_math probe: every error against torch and autograd at most the probe's own
    tolerance, and float64 gradcheck passing for 1d and 2d."""
    results = probe_results(finished(runs), "bn_math")
    if not results:
        return no_runs("C12", runs, "no runs with the bn_math probe")
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
    if worst_torch <= tolerance and worst_autograd <= tolerance and gradcheck:
        outcome, why = (
            HOLDS,
            f"every error is at most {max(worst_torch, worst_autograd):.1e} (tolerance {tolerance:g}) "
            "and gradcheck passes",
        )
    else:
        outcome, why = (
            DOES_NOT_HOLD,
            f"errors up to {max(worst_torch, worst_autograd):.1e} against a tolerance of {tolerance:g}"
            + ("" if gradcheck else "; gradcheck fails"),
        )
    return verdict(
        "C12",
        outcome,
        why[0].upper() + why[1:] + ".",
        runs,
        numbers,
        ["largest error vs torch", "largest error vs autograd", "gradcheck passes"],
        len(results),
    )


# --- C14-C18: later work (Santurkar et al.; batch size; Frankle et al.) --------------------------


def norm_arm(run: Run) -> str:
    """The run's normalization arm: none, batch, group, layer, or noisy (BN with Santurkar's noise)."""
    if cfg(run, "bn.placement") == "none":
        return "none"
    if cfg(run, "bn.noise.enabled", False):
        return "noisy"
    return cfg(run, "bn.norm", "batch")


def arm_runs(runs: list[Run], arm: str) -> list[Run]:
    return [r for r in runs if norm_arm(r) == arm]


def compare(lower: Estimate, higher: Estimate) -> str:
    """How `lower` stands against `higher`: "lower" or "higher" when the intervals are apart, else "overlap"."""
    if higher.apart_above(lower):
        return "lower"
    if lower.apart_above(higher):
        return "higher"
    return "overlap"


def probed_mean(run: Run, key: str) -> float | None:
    """Mean of a probe's key over the run's evaluations after step 0 (training under way)."""
    values = [v for step, v in metric_series(run, key) if step > 0]
    return float(np.mean(values)) if values else None


def capital(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def verdict_c14(runs: list[Run]) -> Verdict:
    """C14: noisy BN "about as well as" BN (mean final accuracy at most ABOUT_AS_WELL below BN's) and
    better than no-BN (intervals apart). Noisy BN more than ABOUT_AS_WELL below BN with intervals apart,
    or no-BN at or above noisy BN with intervals apart: does not hold; otherwise inconclusive. The drift
    score of the tracked units (as C2) shows whether the noise did make the distribution unstable."""
    arms = {name: finished(arm_runs(runs, arm)) for name, arm in (("BN", "batch"), ("noisy BN", "noisy"), ("no-BN", "none"))}
    if any(not arm for arm in arms.values()):
        return no_runs("C14", runs, "an arm (BN, noisy BN, no-BN) has no finished runs")
    accs = {name: final_acc(arm) for name, arm in arms.items()}
    numbers: dict[str, Any] = {f"{name} final acc": acc for name, acc in accs.items()}
    numbers.update({f"{name} drift": mean_interval(map(unit_drift, arm)) for name, arm in arms.items()})
    noisy, bn, base = accs["noisy BN"], accs["BN"], accs["no-BN"]
    seeds = min(a.n for a in accs.values())
    behind = (bn.mean or 0) - (noisy.mean or 0)
    shown = f"noisy BN {format_number(noisy.mean)}, BN {format_number(bn.mean)}, no-BN {format_number(base.mean)}"
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif diverged(arms["noisy BN"]):
        outcome, why = DOES_NOT_HOLD, f"{len(diverged(arms['noisy BN']))} noisy-BN runs diverged"
    elif behind > ABOUT_AS_WELL and bn.apart_above(noisy):
        outcome, why = DOES_NOT_HOLD, f"noisy BN ends {behind:.3f} behind BN ({shown})"
    elif base.apart_above(noisy):
        outcome, why = DOES_NOT_HOLD, f"no-BN ends above noisy BN, intervals apart ({shown})"
    elif behind <= ABOUT_AS_WELL and noisy.apart_above(base):
        outcome, why = HOLDS, f"noisy BN trains about as well as BN and better than no-BN ({shown})"
    else:
        outcome, why = INCONCLUSIVE, f"the intervals overlap ({shown})"
    return verdict("C14", outcome, capital(why), runs, numbers,
                   ["noisy BN final acc", "BN final acc", "no-BN final acc", "noisy BN drift", "BN drift"], seeds)


def ics_layers(run: Run) -> list[str]:
    return hidden_layers(run, r"ics/([^/]+)/l2")


def verdict_c15(runs: list[Run]) -> Verdict:
    """C15: per run, Santurkar's internal covariate shift averaged over the probed evaluations after
    step 0 and over layers (ics/l2 = ||G - G'||, ics/cos = cos(G, G')). BN "reduces" the shift on a measure
    when its l2 is lower, or its cos higher, with intervals apart. The claim (BN does not reduce it) holds
    when BN reduces it on neither measure, does not hold when on both, and is inconclusive when on one."""
    bn, base = finished(arm_runs(runs, "batch")), finished(arm_runs(runs, "none"))
    numbers: dict[str, Any] = {}
    for label, arm in (("BN", bn), ("no-BN", base)):
        numbers[f"{label} ICS l2"] = mean_interval(probed_mean(r, "ics/l2") for r in arm)
        numbers[f"{label} ICS cos"] = mean_interval(probed_mean(r, "ics/cos") for r in arm)
    seeds = min(e.n for e in numbers.values())
    if seeds == 0:
        return no_runs("C15", runs, "no runs with the ics probe (ics/l2, ics/cos) in both arms")
    reduces = {
        "l2": compare(numbers["BN ICS l2"], numbers["no-BN ICS l2"]) == "lower",
        "cos": compare(numbers["BN ICS cos"], numbers["no-BN ICS cos"]) == "higher",
    }
    shown = (f"||G - G'|| {numbers['BN ICS l2'].mean:.3g} with BN vs {numbers['no-BN ICS l2'].mean:.3g} without; "
             f"cos(G, G') {numbers['BN ICS cos'].mean:.3f} vs {numbers['no-BN ICS cos'].mean:.3f}")
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif not any(reduces.values()):
        lean = ""
        if numbers["BN ICS l2"].mean < numbers["no-BN ICS l2"].mean and numbers["BN ICS cos"].mean > numbers["no-BN ICS cos"].mean:
            lean = "; the means lean toward less shift with BN, within the seeds' spread"
        outcome, why = HOLDS, f"BN's shift is not smaller with intervals apart on either measure, so it counts as similar ({shown}){lean}"
    elif all(reduces.values()):
        outcome, why = DOES_NOT_HOLD, f"BN reduces the shift on both measures, intervals apart ({shown})"
    else:
        which = next(k for k, v in reduces.items() if v)
        outcome, why = INCONCLUSIVE, f"BN reduces the shift on {which} only ({shown})"
    return verdict("C15", outcome, capital(why), bn + base, numbers, list(numbers), seeds)


LANDSCAPE = {"loss range": "landscape/loss_range", "gradient change": "landscape/grad_change", "beta": "landscape/beta"}


def verdict_c16(runs: list[Run]) -> Verdict:
    """C16: per run, each landscape measure (loss range, gradient change, effective smoothness beta along
    the gradient) averaged over the probed evaluations after step 0. Holds when all three are lower with
    BN, intervals apart; does not hold when any is higher with BN, intervals apart; otherwise inconclusive."""
    bn, base = finished(arm_runs(runs, "batch")), finished(arm_runs(runs, "none"))
    numbers: dict[str, Any] = {}
    for name, key in LANDSCAPE.items():
        numbers[f"BN {name}"] = mean_interval(probed_mean(r, key) for r in bn)
        numbers[f"no-BN {name}"] = mean_interval(probed_mean(r, key) for r in base)
    seeds = min(e.n for e in numbers.values())
    if seeds == 0:
        return no_runs("C16", runs, "no runs with the landscape probe in both arms")
    results = {name: compare(numbers[f"BN {name}"], numbers[f"no-BN {name}"]) for name in LANDSCAPE}
    shown = "; ".join(f"{n} {numbers[f'BN {n}'].mean:.3g} with BN vs {numbers[f'no-BN {n}'].mean:.3g} without"
                      for n in LANDSCAPE)
    higher = [name for name, r in results.items() if r == "higher"]
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif higher:
        outcome, why = DOES_NOT_HOLD, f"with BN the {', '.join(higher)} is higher, intervals apart ({shown})"
    elif all(r == "lower" for r in results.values()):
        outcome, why = HOLDS, f"all three are lower with BN, intervals apart ({shown})"
    else:
        lower = [name for name, r in results.items() if r == "lower"]
        overlap = [name for name, r in results.items() if r == "overlap"]
        verb = "are" if len(lower) > 1 else "is"
        apart = f"the {' and the '.join(lower)} {verb} lower with BN, intervals apart, but " if lower else ""
        outcome, why = INCONCLUSIVE, f"{apart}the intervals of the {' and the '.join(overlap)} overlap ({shown})"
    return verdict("C16", outcome, capital(why), bn + base, numbers, list(numbers), seeds)


BATCH_ARMS = {"batch": "BN", "group": "GroupNorm", "layer": "LayerNorm", "none": "no norm"}


def accuracy_by_batch(runs: list[Run]) -> dict[str, dict[int, Estimate]]:
    """C17: per arm label (BATCH_ARMS), final test accuracy per training batch size."""
    out = {}
    for arm, label in BATCH_ARMS.items():
        members = arm_runs(runs, arm)
        sizes = sorted({cfg(r, "train.batch_size") for r in members if cfg(r, "train.batch_size")})
        if sizes:
            out[label] = {b: final_acc(select(members, train__batch_size=b)) for b in sizes}
    return out


def advantage_change(arm: list[Run], base: list[Run], small: int, large: int) -> Estimate:
    """Per seed: (arm - base final accuracy at batch `small`) - (the same at batch `large`). Below 0: the
    arm's advantage over the unnormalized net shrinks as the batch shrinks."""
    def by_seed(runs, size):
        return final_by_seed(select(runs, train__batch_size=size))

    a_small, a_large, b_small, b_large = by_seed(arm, small), by_seed(arm, large), by_seed(base, small), by_seed(base, large)
    seeds = set(a_small) & set(a_large) & set(b_small) & set(b_large)
    return mean_interval((a_small[s] - b_small[s]) - (a_large[s] - b_large[s]) for s in sorted(seeds, key=str))


def verdict_c17(runs: list[Run]) -> Verdict:
    """C17: BN's advantage over the unnormalized net (final test accuracy, paired by seed) at the smallest
    batch size minus that at the largest (see advantage_change). Holds when its interval lies wholly below 0
    (BN weakens as the batch shrinks); does not hold when it lies wholly above 0; otherwise inconclusive.
    The same number for GroupNorm and LayerNorm says whether a batch-independent norm weakens too."""
    base = finished(arm_runs(runs, "none"))
    sizes = sorted({cfg(r, "train.batch_size") for r in finished(runs) if cfg(r, "train.batch_size")})
    if not base or not finished(arm_runs(runs, "batch")) or len(sizes) < 2:
        return no_runs("C17", runs, "no BN and no-BN runs at two or more batch sizes")
    small, large = sizes[0], sizes[-1]
    numbers: dict[str, Any] = {}
    by_batch = accuracy_by_batch(runs)
    for label, points in by_batch.items():
        numbers[f"{label} final acc by batch size"] = {b: e.mean for b, e in points.items()}
    for arm, label in BATCH_ARMS.items():
        if arm != "none" and arm_runs(runs, arm):
            numbers[f"{label} advantage change, batch {small} vs {large}"] = advantage_change(
                finished(arm_runs(runs, arm)), base, small, large)
    change = numbers[f"BN advantage change, batch {small} vs {large}"]
    others = "; ".join(f"{BATCH_ARMS[a]} {format_number(numbers[f'{BATCH_ARMS[a]} advantage change, batch {small} vs {large}'].mean)}"
                       for a in ("group", "layer") if f"{BATCH_ARMS[a]} advantage change, batch {small} vs {large}" in numbers)
    shown = (f"BN's lead over no-norm changes by {format_number(change.mean)} from batch {large} to {small}"
             + (f" (batch-independent norms: {others})" if others else ""))
    if change.n < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few paired seeds ({change.n})"
    elif change.high < 0:
        outcome, why = HOLDS, f"BN weakens with small batches: {shown}"
    elif change.low > 0:
        outcome, why = DOES_NOT_HOLD, f"BN gains ground at small batches: {shown}"
    else:
        outcome, why = INCONCLUSIVE, f"the change's interval includes 0: {shown}"
    key = [f"BN advantage change, batch {small} vs {large}",
           *(k for k in numbers if "advantage change" in k and not k.startswith("BN "))]
    return verdict("C17", outcome, capital(why), runs, numbers, key, change.n)


def model_label(run: Run) -> str:
    """"CNN" or "MLP <depth>x<width>" from the run's model config."""
    if cfg(run, "model.name") == "cnn":
        return "CNN"
    hidden = cfg(run, "model.hidden") or []
    return f"MLP {len(hidden)}x{hidden[0]}" if hidden and len(set(hidden)) == 1 else f"MLP {hidden}"


def verdict_c18(runs: list[Run]) -> Verdict:
    """C18: for every model, BN-only training (train.trainable=bn_only) reaches a mean final test accuracy
    at least FAR_ABOVE_CHANCE above chance: holds; less than WELL_ABOVE_CHANCE above chance in any model:
    does not hold; in between: inconclusive. Also reports full training and the fraction of its accuracy
    that BN-only training reaches."""
    models = sorted({model_label(r) for r in finished(runs)})
    level = chance(runs)
    numbers: dict[str, Any] = {"chance": level}
    short, far = [], True
    seeds = None
    for model in models:
        arm = [r for r in finished(runs) if model_label(r) == model]
        only, full = final_acc(select(arm, train__trainable="bn_only")), final_acc(select(arm, train__trainable="all"))
        numbers[f"{model} BN-only final acc"] = only
        numbers[f"{model} full training final acc"] = full
        if only.mean is not None and full.mean:
            numbers[f"{model} BN-only / full"] = only.mean / full.mean
        seeds = only.n if seeds is None else min(seeds, only.n)
        above = (only.mean if only.mean is not None else level) - level
        if above < WELL_ABOVE_CHANCE:
            short.append(f"{model} BN-only ends {above:+.3f} from chance")
        far = far and above >= FAR_ABOVE_CHANCE
    if not models or not seeds:
        return no_runs("C18", runs, "no finished BN-only runs")
    shown = "; ".join(f"{m}: {format_number(numbers[f'{m} BN-only final acc'].mean)} BN-only vs "
                      f"{format_number(numbers[f'{m} full training final acc'].mean)} full" for m in models)
    if seeds < MIN_SEEDS:
        outcome, why = INCONCLUSIVE, f"too few runs ({seeds} per arm)"
    elif short:
        outcome, why = DOES_NOT_HOLD, f"{'; '.join(short)} ({shown}; chance {level:.3f})"
    elif far:
        outcome, why = HOLDS, f"training only gamma and beta ends at least {FAR_ABOVE_CHANCE:g} above chance ({level:.3f}) in every model ({shown})"
    else:
        outcome, why = INCONCLUSIVE, f"BN-only training is above chance but not {FAR_ABOVE_CHANCE:g} above it in every model ({shown})"
    key = [k for k in numbers if k.endswith("final acc")]
    return verdict("C18", outcome, capital(why), runs, numbers, key, seeds)


VERDICTS: dict[str, Callable[[list[Run]], Verdict]] = {
    "C1": verdict_c1,
    "C2": verdict_c2,
    "C3": verdict_c3,
    "C4": verdict_c4,
    "C5": verdict_c5,
    "C6": verdict_c6,
    "C7": verdict_c7,
    "C8": verdict_c8,
    "C9": verdict_c9,
    "C10": verdict_c10,
    "C11": verdict_c11,
    "C12": verdict_c12,
    "C13": verdict_c13,
    "C14": verdict_c14,
    "C15": verdict_c15,
    "C16": verdict_c16,
    "C17": verdict_c17,
    "C18": verdict_c18,
}
