"""One verdict per claim, computed from the runs its arms name (rules: docs/claims.md).

Each `verdict_cN(runs)` takes the claim's runs (analysis/arms.py finds them in a results folder) and
returns a `Verdict`: "holds", "does not hold" or "inconclusive", the comparison that decided it, the
numbers it rests on and one sentence saying why. Rules are written in the vocabulary of
analysis/rules.py: arms picked by their settings, comparisons decided on the difference between arms
with its 95% interval (Welch, or paired by seed where the rule says so), ties only by an equivalence
test against a stated margin, and conjunctions that hold when every part does. How the catalogue's
words become numbers:

- Runs that failed or never finished are left out. Diverged runs have no final accuracy: they are left
  out of means and named; a diverged run in an arm that the rule says must train makes the claim not hold.
- "Chance" is 1 / number of classes; "at chance" is within NEAR_CHANCE of it (an equivalence test);
  "trains well above chance" is a final accuracy more than WELL_ABOVE_CHANCE above it.
- The learning rate of Fig. 1 is `optim.lr_mult=1`; an arm's tuned setting is the lr_mult of its grid
  with the best mean final test accuracy (settings where a run diverged are not candidates, unless all
  have one).
- Steps to a target are counted per run, at the first evaluation at or above it; a run that never gets
  there counts as one evaluation after its end. Step ratios pair runs by seed.
- C5, C7, C8, C11 and C12 check identities and tolerances of single runs, not differences between
  arms: their rules stay hand-written below.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from analysis.rules import (
    DOES_NOT_HOLD,
    EQUAL,
    HIGHER,
    HOLDS,
    INCONCLUSIVE,
    LOWER,
    Comparison,
    Result,
    all_of,
    any_of,
    condition,
    decide,
    judge,
    steps_ratio,
    values_by_seed,
)
from analysis.runs import Run
from analysis.stats import PERCENTILES, Estimate, drift_score, mean_interval, one_sample, steps_to_target
from analysis.tables import metric_series

NEAR_CHANCE = 0.02  # C4: "within 2 points of 1/classes"; also C13's "near chance"
WELL_ABOVE_CHANCE = 0.10
FAR_BEHIND = 0.10  # C13: BN ahead of no-BN by more than this
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
TIE = 0.005  # C6: before and after "tie" when their final accuracies are within this (equivalence test)
SIMILAR_SHIFT = 0.9  # C15: BN's ||G - G'|| "similar or larger": at least this fraction of the baseline's
SIMILAR_COS = 0.05  # C15: BN's cos(G, G') "similar or smaller": at most this much above the baseline's


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
    decision: Result | None = None  # the primary comparison (or combination) that decided it
    secondary: list[Result] = field(default_factory=list)  # shown, not deciding
    note: str = ""  # what the rule adds to its parts: a cause, a caveat

    def why_not(self) -> str:
        """What kept the claim from holding: its parts that did not hold (or are open), and the rule's note."""
        if self.decision is None:
            return self.explanation
        open_parts = [leaf.line() for leaf in deciding_parts(self.decision) if leaf.outcome != HOLDS]
        return capital(self.verdict) + " " + "; ".join(open_parts) + "." + self.note

    def key_numbers(self) -> str:
        """The verdict table's cell: each comparison that decided it (and any condition that failed), then
        the rule's own key numbers."""
        leaves = deciding_parts(self.decision) if self.decision else []
        parts = [f"{leaf.brief()} ({leaf.outcome})" if leaf.is_comparison else leaf.line(seeds=False)
                 for leaf in leaves if leaf.is_comparison or leaf.outcome != HOLDS]
        parts += [f"{name} {format_number(self.numbers[name])}" for name in self.key if name in self.numbers]
        return "; ".join(parts)

    @property
    def seeds_needed(self) -> int | None:
        return self.decision.seeds_needed if self.decision and self.verdict == INCONCLUSIVE else None


def deciding_parts(result: Result) -> list[Result]:
    """The comparisons a decision rests on: a combination's parts (recursively), or the result itself."""
    if not result.parts:
        return [result]
    return [leaf for part in result.parts for leaf in deciding_parts(part)]


def format_number(value) -> str:
    if isinstance(value, (Estimate,)) or hasattr(value, "format"):
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
    """Runs whose config matches: select(runs, bn__placement="none", optim__lr_mult=1); experiment= picks
    the runs of one experiment (its folder)."""

    def matches(run):
        return all(_same(run.path.parent.name if k == "experiment" else cfg(run, k.replace("__", ".")), v)
                   for k, v in settings.items())

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


def decided(claim: str, decision: Result, runs: list[Run], numbers: dict, key: list[str] = (),
            secondary: list[Result] = (), note: str = "") -> Verdict:
    """The verdict a rule's decision gives: its outcome, a sentence from its parts, and the fewest runs
    per arm behind them."""
    leaves = deciding_parts(decision)
    ns = [n for leaf in leaves if leaf.difference for n in (leaf.difference.a_n, leaf.difference.b_n) if n]
    explanation = capital(decision.outcome) + " " + "; ".join(leaf.line() for leaf in leaves) + "." + note
    dataset, steps = describe(runs)
    return Verdict(claim, decision.outcome, explanation, numbers, list(key), min(ns, default=0), dataset, steps,
                   decision, list(secondary), note)


def no_runs(claim: str, runs: list[Run], what: str) -> Verdict:
    return verdict(claim, INCONCLUSIVE, f"Inconclusive: {what}.", runs, {}, [], 0)


def capital(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ":")


def final_accuracy(run: Run) -> float | None:
    """The run's final test accuracy (None when it diverged)."""
    value = run.summary.get("final_test_acc")
    return float(value) if isinstance(value, (int, float)) else None


def reaches(run: Run, target: float) -> int | None:
    """The first evaluation step at which the run's test accuracy is at or above `target` (None: never)."""
    return steps_to_target(metric_series(run, "test/acc"), target)


def trains(label: str, runs: list[Run]) -> Result:
    """The condition "no run of this arm diverged"."""
    bad = diverged(runs)
    return condition(f"{label} trains", not bad and bool(finished(runs)),
                     f"{len(bad)} of {len(finished(runs))} runs diverged" if bad else f"{len(finished(runs))} runs, none diverged")


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
    """C1's two questions of two arms, each decided on its own: does `bn` train faster (steps to the
    baseline run's final accuracy, paired by seed, ratio below 1) and end higher (final test accuracy,
    Welch)? And must every `bn` run train. The claim is their conjunction."""
    a, b = names
    faster = steps_ratio(f"{a} trains faster (steps to the {b} run's final accuracy, same seed, {a} / {b})",
                         bn, base, final_accuracy, reaches)
    higher = decide(Comparison(f"{a} ends higher (final test accuracy, {a} - {b})", final_accuracy,
                               "final test accuracy", HIGHER), bn, base)
    return all_of("BN trains faster and ends higher", [trains(a, bn), faster, higher])


def target_ratios(bn: list[Run], base: list[Run], targets: list[float], names=("BN", "no BN")) -> list[Result]:
    """Steps to fixed accuracy levels, BN / baseline per seed (secondary)."""
    return [steps_ratio(f"steps to {t:.2f} test accuracy, {names[0]} / {names[1]}", bn, base,
                        lambda run, t=t: t, reaches) for t in targets]


def verdict_c1(runs: list[Run]) -> Verdict:
    """C1, at the Fig. 1 learning rate (lr_mult=1), two parts with their own verdicts and a stated
    combination: BN "trains faster" (steps to the same seed's no-BN final accuracy, BN / no-BN, paired by
    seed: the interval of the ratio below 1) and "ends higher" (final test accuracy, BN - no-BN, Welch:
    the interval above 0); every BN run must train. C1 holds when both parts hold, does not hold when
    either does not (or a BN run diverges), and is inconclusive otherwise. Secondary: steps to fixed
    targets, BN's lead along the curve, and the same two parts with each arm at its tuned lr_mult."""
    bn_all, base_all = select(runs, bn__placement="before"), select(runs, bn__placement="none")
    bn, base = select(bn_all, optim__lr_mult=1), select(base_all, optim__lr_mult=1)
    if not finished(bn) or not finished(base):
        return no_runs("C1", runs, "no finished runs with and without BN at lr_mult=1")
    decision = convergence(bn, base)
    base_final = final_acc(base)
    secondary = target_ratios(bn, base, fixed_targets(base_final.mean))
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
    return decided("C1", decision, bn + base, numbers, ["against the tuned baseline"], secondary)


def per_seed_steps(bn: list[Run], base: list[Run]) -> dict[str, str]:
    """seed -> "BN steps / no-BN steps" to the no-BN run's final accuracy ("never" for a run that never gets there)."""
    base_by_seed = {r.summary.get("seed"): r for r in base if r.status == "completed"}
    out = {}
    for run in sorted(finished(bn), key=lambda r: str(r.summary.get("seed"))):
        other = base_by_seed.get(run.summary.get("seed"))
        if other is None or final_accuracy(other) is None:
            continue
        steps = [reaches(r, final_accuracy(other)) for r in (run, other)]
        out[str(run.summary.get("seed"))] = " / ".join("never" if x is None else str(x) for x in steps)
    return out


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
    """C2, at the Fig. 1 learning rate (lr_mult=1): the drift score of the last hidden layer's tracked units
    (see unit_drift) lower with BN: BN - no-BN, Welch, interval below 0."""
    bn = finished(select(runs, bn__placement="before", optim__lr_mult=1))
    base = finished(select(runs, bn__placement="none", optim__lr_mult=1))
    numbers = {"BN drift": mean_interval(map(unit_drift, bn)), "no-BN drift": mean_interval(map(unit_drift, base))}
    if min(numbers["BN drift"].n, numbers["no-BN drift"].n) == 0:
        return no_runs("C2", bn + base, "no runs with percentile probes (act/<layer>/p15..p85) in both arms at lr_mult=1")
    drift = Comparison("BN's percentiles drift less (drift score, BN - no BN)", unit_drift, "drift score", LOWER)
    return decided("C2", decide(drift, bn, base), bn + base, numbers, ["BN drift", "no-BN drift"])


# --- C3: learning-rate multipliers ------------------------------------------------------------


def verdict_c3(runs: list[Run]) -> Verdict:
    """C3, three parts, all needed: (a) BN x5 reaches the same seed's no-BN x1 final accuracy in fewer steps
    (BN x5 / no-BN x1, paired by seed: the interval of the ratio below 1; the paper's "14x" is 1/14);
    (b) BN x5 and BN x30 train (no run diverges); (c) the unnormalized net at x30 diverges (any run) or
    ends lower than at x1 (final test accuracy, Welch, interval below 0). Secondary: BN x30's ratio."""
    arms = {(p, m): select(runs, bn__placement=p, optim__lr_mult=m) for p in ("none", "before") for m in (1, 5, 30)}
    needed = [("none", 1), ("before", 5), ("before", 30), ("none", 30)]
    missing = [f"{'BN' if p == 'before' else 'no-BN'} x{m}" for (p, m) in needed if not finished(arms[(p, m)])]
    if missing:
        return no_runs("C3", runs, f"no finished runs for {', '.join(missing)}")
    base, x30 = arms[("none", 1)], arms[("none", 30)]
    faster = steps_ratio("BN x5 needs fewer steps to the same seed's no-BN x1 final accuracy (BN x5 / no-BN x1)",
                         arms[("before", 5)], base, final_accuracy, reaches)
    worse = decide(Comparison("no BN x30 ends lower than no BN x1 (final test accuracy, x30 - x1)", final_accuracy,
                              "final test accuracy", LOWER), x30, base)
    blows_up = condition("no BN x30 diverges", bool(diverged(x30)), f"{len(diverged(x30))} of {len(finished(x30))} runs diverged")
    decision = all_of("C3", [faster, trains("BN x5", arms[("before", 5)]), trains("BN x30", arms[("before", 30)]),
                             any_of("no BN x30 diverges or ends lower", [blows_up, worse])])
    secondary = [steps_ratio("BN x30 / no-BN x1, steps to the same seed's no-BN x1 final accuracy",
                             arms[("before", 30)], base, final_accuracy, reaches)]
    numbers: dict[str, Any] = {
        "target (no-BN x1 final acc)": final_acc(base),
        **{f"BN x{m} final acc": final_acc(arms[("before", m)]) for m in (1, 5, 30)},
        "no-BN x30 final acc": final_acc(x30),
        "no-BN x30 diverged": f"{len(diverged(x30))}/{len(finished(x30))}",
        "steps to the same seed's no-BN x1 final acc, BN x5 / no-BN x1, per seed": per_seed_steps(arms[("before", 5)], base),
    }
    note = ""
    if abs((final_acc(base).mean or 0) - chance(runs)) <= NEAR_CHANCE:
        note = f" Note: no-BN x1 itself ends at chance ({final_acc(base).mean:.3f}), so the step ratio says little."
    return decided("C3", decision, runs, numbers, ["no-BN x30 diverged"], secondary, note)


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


def last_only_why(last_scale: float, runs: list[Run], eps_results: list[Result]) -> str:
    """Why BN on the logits alone does not rescue the net, as far as the runs say: BN divides by
    sqrt(var + eps), and a signal whose variance is far below eps stays near zero; the poor_init_eps arm
    (the same net with an eps far below that variance) tests it."""
    eps = cfg(runs[0], "bn.eps") if runs else None
    if not isinstance(eps, (int, float)) or last_scale ** 2 >= eps:
        return ""
    why = (f" The last hidden layer's scale at init, {last_scale:.1e}, squared is far below BN's eps = {eps:g}: BN "
           "divides by sqrt(var + eps), so the logits it normalizes stay near zero.")
    if not eps_results:
        return why + " No run tests this (poor_init_eps)."
    lifted, above = eps_results
    verdict = {HOLDS: "supports it", DOES_NOT_HOLD: "contradicts it", INCONCLUSIVE: "does not settle it"}[lifted.outcome]
    return (why + f" The same net with a tiny eps {verdict}: {lifted.line()}. Whether that is enough to train: "
            f"{above.line()}.")


def verdict_c4(runs: list[Run]) -> Verdict:
    """C4, all needed: no-BN stays at chance (final test accuracy within +-NEAR_CHANCE of chance, an
    equivalence test); BN everywhere and BN on the logits only each train (no divergence) and end more than
    WELL_ABOVE_CHANCE above chance (one-sample interval above that); the no-BN pre-activation std at init
    shrinks layer by layer, the last hidden layer's at least SHRINK_ORDERS orders of magnitude below the
    first's."""
    main = poor_init_main(runs)
    arms = {
        "no BN": select(main, bn__placement="none"),
        "BN everywhere": select(main, bn__placement="before", bn__layers="all"),
        "BN last only": select(main, bn__placement="before", bn__layers="last"),
    }
    if any(not finished(a) for a in arms.values()):
        return no_runs("C4", runs, "an arm (no-BN, BN everywhere, BN last only) has no finished runs")
    level = chance(runs)
    numbers: dict[str, Any] = {f"{name} final acc": final_acc(a) for name, a in arms.items()}
    numbers["chance"] = level
    scales = scale_by_depth(finished(arms["no BN"]))
    numbers["no-BN scale at init by layer"] = {k: v.mean for k, v in scales.items()}
    means = [v.mean for v in scales.values()]
    if len(means) < 2:
        return no_runs("C4", runs, "no per-layer scale at init (act/<layer>/std at step 0) in the no-BN runs")
    parts = [decide(Comparison(f"no BN stays at chance (final test accuracy - chance, within +-{NEAR_CHANCE:g})",
                               final_accuracy, "final test accuracy", EQUAL, NEAR_CHANCE), arms["no BN"], level)]
    for name in ("BN everywhere", "BN last only"):
        parts.append(trains(name, arms[name]))
        parts.append(decide(Comparison(f"{name} trains well above chance (final test accuracy - chance, above "
                                       f"{WELL_ABOVE_CHANCE:g})", final_accuracy, "final test accuracy", HIGHER,
                                       WELL_ABOVE_CHANCE), arms[name], level))
    orders = math.inf if means[-1] <= 0 < means[0] else (math.log10(means[0] / means[-1]) if means[0] > 0 else 0.0)
    numbers["no-BN scale shrink (orders of magnitude, first to last)"] = orders
    shrinks = all(b <= a for a, b in zip(means, means[1:])) and orders >= SHRINK_ORDERS
    parts.append(condition(f"the no-BN scale at init shrinks layer by layer, by at least {SHRINK_ORDERS:g} orders",
                           shrinks, f"{orders:.1f} orders of magnitude from the first to the last hidden layer"))
    decision = all_of("C4", parts)
    secondary, note = eps_test(runs, level, arms["BN last only"]), ""
    if parts[4].outcome != HOLDS:
        note = last_only_why(means[-1], arms["BN last only"], secondary)
    width = scale_by_depth(finished(select(runs, experiment="poor_init_width")))
    if width:
        numbers["notes-width CNN (no BN) scale at init by layer"] = {k: v.mean for k, v in width.items()}
        numbers["notes-width CNN last hidden layer scale at init (the notes: of the order of 1e-11)"] = list(width.values())[-1]
    return decided("C4", decision, runs, numbers,
                   ["no-BN scale shrink (orders of magnitude, first to last)"], secondary, note)


def poor_init_main(runs: list[Run]) -> list[Run]:
    """C4's three arms (no BN, BN everywhere, BN last only): its runs less the eps test and the notes-width CNN."""
    return [r for r in runs if not tiny_eps(r) and r.path.parent.name != "poor_init_width"]


def tiny_eps(run: Run) -> bool:
    """A run of poor_init_eps: BN's eps far below any signal's variance at init (the default is 1e-5)."""
    eps = cfg(run, "bn.eps")
    return isinstance(eps, (int, float)) and eps < 1e-20


def eps_test(runs: list[Run], level: float, default_last: list[Run]) -> list[Result]:
    """C4's explanation, tested (secondary): BN on the logits alone with an eps far below their variance at
    init (poor_init_eps) ends higher than with the default eps, run for run (same seed: same init and
    batches, so the eps is the only difference), and trains well above chance."""
    tiny = [r for r in select(runs, bn__layers="last") if tiny_eps(r)]
    if not tiny:
        return []
    eps = cfg(tiny[0], "bn.eps")
    return [decide(Comparison(f"BN last only ends higher with eps = {eps:g} than with the default eps (same seed)",
                              final_accuracy, "final test accuracy", HIGHER, paired=True), tiny, default_last),
            decide(Comparison(f"BN last only with eps = {eps:g} trains well above chance (above {WELL_ABOVE_CHANCE:g})",
                              final_accuracy, "final test accuracy", HIGHER, WELL_ABOVE_CHANCE), tiny, level)]


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
    """C6, per activation: BN before vs after the nonlinearity by final test accuracy (before - after, Welch).
    The paper's placement holds for an activation when the interval lies above 0 and does not when it lies
    below; otherwise, when the 90% interval lies within +-TIE, the two tie (an equivalence test), else it is
    open. The claim (before is the better place) holds when before is better for every activation, does not
    hold when after is better for one, and is inconclusive otherwise (ties included: before is not better).
    Also reports the skew and excess kurtosis of BN's input in each placement."""
    activations = sorted({cfg(r, "model.activation") for r in runs if cfg(r, "model.activation")})
    numbers: dict[str, Any] = {}
    parts, ties = [], []
    for act in activations:
        arms = {p: select(runs, model__activation=act, bn__placement=p) for p in ("none", "before", "after")}
        for p, arm in arms.items():
            numbers[f"{act} {p} final acc"] = final_acc(arm)
        for p in ("before", "after"):
            shape = bn_input_shape(finished(arms[p]))
            numbers[f"{act} {p} BN-input skew"], numbers[f"{act} {p} BN-input kurtosis"] = shape["skew"], shape["kurt"]
        if not finished(arms["before"]) or not finished(arms["after"]):
            continue
        better = decide(Comparison(f"{act}: BN before beats BN after (final test accuracy, before - after)",
                                   final_accuracy, "final test accuracy", HIGHER), arms["before"], arms["after"])
        tie = decide(Comparison(f"{act}: before and after tie (within +-{TIE:g})", final_accuracy,
                                "final test accuracy", EQUAL, TIE), arms["before"], arms["after"])
        parts.append(better)
        ties.append(tie)
        numbers[f"{act}: before vs after"] = placement_word(better, tie)
    if not parts:
        return no_runs("C6", runs, "no finished runs with BN before and after the nonlinearity")
    words = "; ".join(f"{act}: {numbers[f'{act}: before vs after']}" for act in activations
                      if f"{act}: before vs after" in numbers)
    return decided("C6", all_of("C6", parts), runs, numbers, [], secondary=ties, note=f" By activation: {words}.")


def placement_word(better: Result, tie: Result) -> str:
    if better.outcome == HOLDS:
        return "before is better"
    if better.outcome == DOES_NOT_HOLD:
        return "after is better"
    return "they tie" if tie.outcome == HOLDS else "open"


def final_by_seed(runs: list[Run]) -> dict:
    """{seed: final test accuracy} of the completed runs, for comparisons paired by seed."""
    return {r.summary.get("seed"): r.summary.get("final_test_acc") for r in runs if r.status == "completed"}


def gains_by_seed(with_dropout: list[Run], without: list[Run]) -> dict:
    """{seed: final test accuracy with dropout - without}."""
    base = final_by_seed(without)
    return {seed: acc - base[seed] for seed, acc in final_by_seed(with_dropout).items()
            if isinstance(acc, (int, float)) and isinstance(base.get(seed), (int, float))}


def train_test_gap(runs: list[Run]) -> Estimate:
    return mean_interval(
        last_value(r, "train/acc") - last_value(r, "test/acc")
        for r in runs
        if r.status == "completed" and last_value(r, "train/acc") is not None and last_value(r, "test/acc") is not None
    )


def dropout_part(runs: list[Run], label: str) -> tuple[Result, Result, dict]:
    """C9 in one regime: (does dropout help the unnormalized net: its gain, dropout 0.5 - 0 same seed, above 0;
    does it help BN less: BN's gain - no-BN's gain, same seed, below 0; the numbers behind them)."""
    numbers: dict[str, Any] = {}
    gains = {}
    for name, placement in (("BN", "before"), ("no-BN", "none")):
        arm = select(runs, bn__placement=placement)
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


def verdict_c9(runs: list[Run]) -> Verdict:
    """C9: decided in the regime where dropout helps the unnormalized net (dropout_overfit): there, dropout's
    gain (final test accuracy with dropout 0.5 minus without, same seed) must be smaller for the BN net than
    for the unnormalized one (the per-seed difference of gains, interval below 0). When dropout does not help
    the unnormalized net the claim cannot be tested: inconclusive. The Fig. 1 regime is reported beside it
    (and decides only when there are no dropout_overfit runs). Also reports both gains and the train-test gaps."""
    overfit = [r for r in runs if r.path.parent.name == "dropout_overfit"]
    fig1 = [r for r in runs if r.path.parent.name != "dropout_overfit"]
    helps, less, numbers = dropout_part(overfit or fig1, "overfitting regime: " if overfit else "")
    if less.difference is None or less.difference.a_n == 0:
        return no_runs("C9", runs, "no seed with both dropout 0 and 0.5 finished in both arms")
    secondary = []
    if overfit and fig1:
        fig1_helps, fig1_less, fig1_numbers = dropout_part(fig1, "Fig. 1 regime: ")
        secondary, numbers = [fig1_helps, fig1_less], {**numbers, **fig1_numbers}
    decision = less
    if helps.outcome != HOLDS:
        decision = Result("C9", INCONCLUSIVE, "", None, None, [helps, less])
    note = "" if helps.outcome == HOLDS else (
        f" Dropout is not shown to help the unnormalized net in this regime (its gain "
        f"{helps.brief().rsplit(': ', 1)[1]}: {helps.outcome}), so whether it helps BN less cannot be tested.")
    key = [k for k in numbers if k.endswith("dropout gain") and (not overfit or k.startswith("overfitting"))]
    return decided("C9", decision, runs, numbers, key, secondary, note)


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
    """C10, both needed: with BN the mean saturated fraction (see saturation) is lower, and so is the
    gradient imbalance |log10(first/last)| (see gradient_imbalance): BN - no-BN, Welch, intervals below 0."""
    bn, base = finished(select(runs, bn__placement="before")), finished(select(runs, bn__placement="none"))
    numbers = {
        "BN saturation": mean_interval(map(saturation, bn)),
        "no-BN saturation": mean_interval(map(saturation, base)),
        "BN |log10 grad first/last|": mean_interval(map(gradient_imbalance, bn)),
        "no-BN |log10 grad first/last|": mean_interval(map(gradient_imbalance, base)),
    }
    if min(e.n for e in numbers.values()) == 0:
        return no_runs("C10", runs, "no runs with the saturation and grad_norms probes in both arms")
    parts = [
        decide(Comparison("BN saturates less (saturated fraction, BN - no BN)", saturation, "saturation", LOWER), bn, base),
        decide(Comparison("BN balances gradients (|log10 grad first/last|, BN - no BN)", gradient_imbalance,
                          "gradient imbalance", LOWER), bn, base),
    ]
    return decided("C10", all_of("C10", parts), bn + base, numbers)


def verdict_c13(runs: list[Run]) -> Verdict:
    """C13, each arm at its tuned lr_mult (see tuned): the deep sigmoid net with BN trains (no divergence,
    final accuracy more than WELL_ABOVE_CHANCE above chance) and the net without BN is at chance (within
    +-NEAR_CHANCE, an equivalence test) or far behind (BN - no-BN above FAR_BEHIND, Welch)."""
    (bn, bn_mult), (base, base_mult) = (tuned(select(runs, bn__placement=p)) for p in ("before", "none"))
    if not finished(bn) or not finished(base):
        return no_runs("C13", runs, "no finished runs with and without BN")
    level = chance(runs)
    numbers = {"BN final acc": final_acc(bn), "no-BN final acc": final_acc(base), "chance": level,
               "no-BN runs diverged": len(diverged(base))}
    if bn_mult is not None or base_mult is not None:
        numbers["tuned lr_mult (BN, no-BN)"] = f"x{bn_mult or 1:g}, x{base_mult or 1:g}"
    accuracy = ("final test accuracy", final_accuracy)
    near = decide(Comparison(f"no BN is at chance (within +-{NEAR_CHANCE:g})", accuracy[1], accuracy[0], EQUAL,
                             NEAR_CHANCE), base, level)
    if not values_by_seed(base, final_accuracy):  # every no-BN run diverged: it learned nothing usable
        near = condition("no BN is at chance", True, "every run diverged")
    behind = decide(Comparison(f"no BN is far behind (BN - no BN, above {FAR_BEHIND:g})", accuracy[1], accuracy[0],
                               HIGHER, FAR_BEHIND), bn, base)
    decision = all_of("C13", [
        trains("BN", bn),
        decide(Comparison(f"BN trains well above chance (above {WELL_ABOVE_CHANCE:g})", accuracy[1], accuracy[0],
                          HIGHER, WELL_ABOVE_CHANCE), bn, level),
        any_of("no BN is at chance or far behind", [near, behind]),
    ])
    return decided("C13", decision, runs, numbers, ["BN final acc", "no-BN final acc"])


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


def probed_mean(run: Run, key: str) -> float | None:
    """Mean of a probe's key over the run's evaluations after step 0 (training under way)."""
    values = [v for step, v in metric_series(run, key) if step > 0]
    return float(np.mean(values)) if values else None


def verdict_c14(runs: list[Run]) -> Verdict:
    """C14, both needed: noisy BN trains about as well as BN (final test accuracy, noisy - BN, Welch: the
    interval above -ABOUT_AS_WELL, a non-inferiority test) and better than no-BN (noisy - no-BN, interval
    above 0); noisy BN must train. Secondary: the drift score (as C2), noisy BN - BN, shows whether the
    noise did make the distribution unstable."""
    arms = {name: finished(arm_runs(runs, arm)) for name, arm in (("BN", "batch"), ("noisy BN", "noisy"), ("no BN", "none"))}
    if any(not arm for arm in arms.values()):
        return no_runs("C14", runs, "an arm (BN, noisy BN, no-BN) has no finished runs")
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
    return decided("C14", decision, runs, numbers, ["noisy BN drift", "BN drift"], [unstable])


def ics_layers(run: Run) -> list[str]:
    return hidden_layers(run, r"ics/([^/]+)/l2")


def log_ics_l2(run: Run) -> float | None:
    value = probed_mean(run, "ics/l2")
    return math.log(value) if value and value > 0 else None


def verdict_c15(runs: list[Run]) -> Verdict:
    """C15, per run Santurkar's internal covariate shift averaged over the probed evaluations after step 0
    and over layers (ics/l2 = ||G - G'||, ics/cos = cos(G, G')). The claim (BN does not reduce it) holds
    when BN's shift is similar or larger on both measures, each a non-inferiority test: ||G - G'|| with BN
    at least SIMILAR_SHIFT times the baseline's (log ratio, Welch, interval above log SIMILAR_SHIFT), and
    cos(G, G') with BN at most SIMILAR_COS above the baseline's (interval below SIMILAR_COS)."""
    bn, base = finished(arm_runs(runs, "batch")), finished(arm_runs(runs, "none"))
    numbers: dict[str, Any] = {}
    for label, arm in (("BN", bn), ("no-BN", base)):
        numbers[f"{label} ICS l2"] = mean_interval(probed_mean(r, "ics/l2") for r in arm)
        numbers[f"{label} ICS cos"] = mean_interval(probed_mean(r, "ics/cos") for r in arm)
    if min(e.n for e in numbers.values()) == 0:
        return no_runs("C15", runs, "no runs with the ics probe (ics/l2, ics/cos) in both arms")
    parts = [
        decide(Comparison(f"BN's ||G - G'|| is not smaller (log BN/no BN, above log {SIMILAR_SHIFT:g})", log_ics_l2,
                          "log ||G - G'||", HIGHER, math.log(SIMILAR_SHIFT)), bn, base),
        decide(Comparison(f"BN's cos(G, G') is not higher (BN - no BN, below {SIMILAR_COS:g})",
                          lambda r: probed_mean(r, "ics/cos"), "cos(G, G')", LOWER, -SIMILAR_COS), bn, base),
    ]
    return decided("C15", all_of("C15", parts), bn + base, numbers, list(numbers))


LANDSCAPE = {"loss range": "landscape/loss_range", "gradient change": "landscape/grad_change", "beta": "landscape/beta"}


def verdict_c16(runs: list[Run]) -> Verdict:
    """C16, all three needed: per run, each landscape measure (loss range, gradient change, effective
    smoothness beta along the gradient) averaged over the probed evaluations after step 0, lower with BN
    (BN - no-BN, Welch, interval below 0)."""
    bn, base = finished(arm_runs(runs, "batch")), finished(arm_runs(runs, "none"))
    numbers: dict[str, Any] = {}
    for name, key in LANDSCAPE.items():
        numbers[f"BN {name}"] = mean_interval(probed_mean(r, key) for r in bn)
        numbers[f"no-BN {name}"] = mean_interval(probed_mean(r, key) for r in base)
    if min(e.n for e in numbers.values()) == 0:
        return no_runs("C16", runs, "no runs with the landscape probe in both arms")
    parts = [decide(Comparison(f"BN lowers the {name} (BN - no BN)", lambda r, key=key: probed_mean(r, key), name, LOWER),
                    bn, base) for name, key in LANDSCAPE.items()]
    return decided("C16", all_of("C16", parts), bn + base, numbers, list(numbers))


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


def advantage_change(arm: list[Run], base: list[Run], small: int, large: int) -> dict:
    """Per seed: (arm - base final accuracy at batch `small`) - (the same at batch `large`). Below 0: the
    arm's advantage over the unnormalized net shrinks as the batch shrinks."""
    def by_seed(runs, size):
        return final_by_seed(select(runs, train__batch_size=size))

    a_small, a_large, b_small, b_large = by_seed(arm, small), by_seed(arm, large), by_seed(base, small), by_seed(base, large)
    seeds = set(a_small) & set(a_large) & set(b_small) & set(b_large)
    return {s: (a_small[s] - b_small[s]) - (a_large[s] - b_large[s]) for s in sorted(seeds, key=str)
            if None not in (a_small[s], a_large[s], b_small[s], b_large[s])}


def verdict_c17(runs: list[Run]) -> Verdict:
    """C17: BN's advantage over the unnormalized net (final test accuracy, paired by seed) at the smallest
    batch size minus that at the largest (see advantage_change), interval below 0: BN weakens as the batch
    shrinks. The same number for GroupNorm and LayerNorm (secondary) says whether a batch-independent norm
    weakens too."""
    base = finished(arm_runs(runs, "none"))
    sizes = sorted({cfg(r, "train.batch_size") for r in finished(runs) if cfg(r, "train.batch_size")})
    if not base or not finished(arm_runs(runs, "batch")) or len(sizes) < 2:
        return no_runs("C17", runs, "no BN and no-BN runs at two or more batch sizes")
    small, large = sizes[0], sizes[-1]
    numbers: dict[str, Any] = {}
    for label, points in accuracy_by_batch(runs).items():
        numbers[f"{label} final acc by batch size"] = {b: e.mean for b, e in points.items()}
    results = {}
    for arm, label in BATCH_ARMS.items():
        if arm != "none" and arm_runs(runs, arm):
            change = one_sample(advantage_change(finished(arm_runs(runs, arm)), base, small, large).values(),
                                paired_design=True)
            numbers[f"{label} advantage change, batch {small} vs {large}"] = change
            results[arm] = judge(f"{label}'s lead over no norm shrinks from batch {large} to {small} "
                                 "(change of the lead, same seed)", LOWER, 0.0, change)
    secondary = [r for arm, r in results.items() if arm != "batch"]
    return decided("C17", results["batch"], runs, numbers, [], secondary)


def model_label(run: Run) -> str:
    """"CNN" or "MLP <depth>x<width>" from the run's model config."""
    if cfg(run, "model.name") == "cnn":
        return "CNN"
    hidden = cfg(run, "model.hidden") or []
    return f"MLP {len(hidden)}x{hidden[0]}" if hidden and len(set(hidden)) == 1 else f"MLP {hidden}"


def verdict_c18(runs: list[Run]) -> Verdict:
    """C18, every model: BN-only training (train.trainable=bn_only) ends more than FAR_ABOVE_CHANCE above
    chance (final test accuracy - chance, one-sample interval above it). Also reports full training and
    the fraction of its accuracy that BN-only training reaches."""
    models = sorted({model_label(r) for r in finished(runs)})
    level = chance(runs)
    numbers: dict[str, Any] = {"chance": level}
    parts = []
    for model in models:
        arm = [r for r in finished(runs) if model_label(r) == model]
        only_runs = select(arm, train__trainable="bn_only")
        only, full = final_acc(only_runs), final_acc(select(arm, train__trainable="all"))
        numbers[f"{model} BN-only final acc"] = only
        numbers[f"{model} full training final acc"] = full
        if only.mean is not None and full.mean:
            numbers[f"{model} BN-only / full"] = only.mean / full.mean
        if only_runs:
            parts.append(decide(Comparison(f"{model}: BN-only training ends far above chance (above {FAR_ABOVE_CHANCE:g})",
                                           final_accuracy, "final test accuracy", HIGHER, FAR_ABOVE_CHANCE),
                                only_runs, level))
    if not parts:
        return no_runs("C18", runs, "no finished BN-only runs")
    return decided("C18", all_of("C18", parts), runs, numbers, [k for k in numbers if k.endswith("full training final acc")])


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
