"""The small vocabulary verdict rules are written in: compare arms, decide on the difference.

A rule names its arms (lists of runs, picked by their settings), asks one or more `Comparison`s of
them and combines the answers. Each comparison is decided on the difference between the arms with
its 95% interval, never on whether two intervals overlap:

- `higher` (a above b by more than `margin`): holds when the interval lies above the margin, does not
  hold when it lies below it, and is inconclusive otherwise.
- `lower`: the mirror image.
- `equal` (a tie within +-margin): two one-sided tests at 5%, i.e. the 90% interval within
  (-margin, margin): holds; the 95% interval wholly outside it: does not hold; otherwise inconclusive.

The difference is Welch's (unequal variances) between two arms, paired by seed when the comparison says
so (both arms of a seed see the same batches in the same order), or one arm against a constant (chance,
a threshold). A ratio of steps is compared on the log scale, paired by seed, and shown as a ratio.
An inconclusive comparison says which way its observed difference points; only where it points the
claim's way does it say about how many seeds per arm would settle it at the observed spread.

A conjunction (`all_of`) holds when every part holds, each tested at 5%: an intersection-union test
needs no correction. Rejecting it because one of k parts fails is a union of k tests, so the failing
side is corrected for multiplicity by Holm's step-down procedure over the parts that are comparisons
(`holm`): a part that fails alone but not after the correction counts as inconclusive, and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from analysis.runs import Run
from scipy.special import stdtr

from analysis.stats import (
    ALPHA,
    Difference,
    equivalence_interval,
    format_p,
    one_sample,
    paired,
    seeds_needed,
    tested_against,
    welch,
)

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
MIN_SEEDS = 2  # per arm, for an interval at all
HIGHER, LOWER, EQUAL = "higher", "lower", "equal"

Measure = Callable[[Run], "float | None"]


@dataclass(frozen=True)
class Comparison:
    """One question of a rule: is `measure` on arm `a` higher than, lower than, or equal to arm `b`
    (or the constant b)?"""

    label: str  # the question in words, as the report shows it: "BN ends higher"
    measure: Measure  # one number per run (None: the run has none, e.g. it diverged)
    quantity: str  # what the measure is, for sentences: "final test accuracy"
    claim: str  # HIGHER, LOWER or EQUAL
    margin: float = 0.0  # HIGHER/LOWER: by more than this; EQUAL: within +-margin
    paired: bool = False  # by seed
    log_ratio: bool = False  # the measure is a log: the difference is shown as the ratio a / b

    def __post_init__(self):
        if self.claim not in (HIGHER, LOWER, EQUAL):
            raise ValueError(f"claim must be {HIGHER}, {LOWER} or {EQUAL}, not {self.claim!r}")


@dataclass
class Result:
    """The answer to one comparison (or to a condition such as "no run diverged")."""

    label: str
    outcome: str
    text: str  # the difference in words and numbers: "+0.020 [+0.008, +0.031], p 0.004 (n=10 vs 10)"
    difference: Difference | None = None
    seeds_needed: int | None = None  # per arm, for an inconclusive comparison
    parts: list["Result"] = field(default_factory=list)  # of a combination
    boundary: float | None = None  # where the difference's interval must not reach for the outcome to stand
    log_scale: bool = False  # the difference is a log ratio (steps_ratio)
    claim: str | None = None  # HIGHER, LOWER or EQUAL: what a comparison claims (None: a condition or check)
    margin: float = 0.0  # EQUAL's margin
    combine: str | None = None  # "all" or "any": a combination of its parts

    def line(self, seeds: bool = True) -> str:
        """"BN ends higher: holds (+0.020 [...])"; for an inconclusive comparison, which way it points and,
        where it points the claim's way, the seeds that would settle it."""
        line = f"{self.label}: {self.outcome}"
        if self.text:
            line += f" ({self.text})"
        if seeds and self.outcome == INCONCLUSIVE and self.is_comparison and self.difference.mean is not None:
            if self.points_against:
                line += "; the observed difference points against the claim"
            elif self.seeds_needed:
                line += f"; it points the claim's way: about {self.seeds_needed} seeds per arm would settle it"
        if seeds and self.flip_margin():
            line += f"; {self.flip_margin()}"
        return line

    @property
    def points_against(self) -> bool:
        """Whether the observed difference lies on the failing side of the claim's boundary (outside the
        margin, for an equivalence)."""
        d = self.difference
        if d is None or d.mean is None or self.claim is None:
            return False
        if self.claim == EQUAL:
            return abs(d.mean) >= self.margin
        boundary = self.boundary if self.boundary is not None else 0.0
        return d.mean <= boundary if self.claim == HIGHER else d.mean >= boundary

    def p_against(self) -> float | None:
        """One-sided p-value of the test that the part fails (its difference on the failing side of the
        boundary, or outside the margin): below ALPHA / 2 exactly when its 95% interval lies wholly on that
        side. None for a condition or a check, which are not tests."""
        d = self.difference
        if self.claim is None or d is None or d.mean is None or d.se is None or d.df is None:
            if self.combine == "any" and self.outcome != HOLDS:  # it fails only when every part fails
                ps = [0.0 if p.claim is None and p.outcome == DOES_NOT_HOLD else p.p_against() for p in self.parts]
                return max(ps) if ps and None not in ps and any(p.claim for p in self.parts) else None
            return None
        if d.se == 0:
            return 0.0 if self.outcome == DOES_NOT_HOLD else 1.0
        if self.claim == EQUAL:
            t = (abs(d.mean) - self.margin) / d.se
            return float(stdtr(d.df, -t))
        t = (d.mean - (self.boundary or 0.0)) / d.se
        return float(stdtr(d.df, t if self.claim == HIGHER else -t))

    def flip_margin(self) -> str:
        """How far a decided comparison is from flipping to inconclusive: the gap between its interval's
        nearer end and the boundary ("" for a condition, an open comparison or an equivalence)."""
        d = self.difference
        if self.outcome == INCONCLUSIVE or d is None or not d.has_interval or self.boundary is None:
            return ""
        gap = max(d.low - self.boundary, self.boundary - d.high)
        if self.log_scale:
            edge = d.low if d.low > self.boundary else d.high
            return (f"the interval's nearer end, {math.exp(edge):.3g}, is a factor {math.exp(gap):.3g} from "
                    f"{math.exp(self.boundary):.3g}")
        return f"the interval's nearer end is {gap:.3g} from {self.boundary:+g}"

    @property
    def is_comparison(self) -> bool:
        return self.difference is not None

    @property
    def name(self) -> str:
        """The label without its parenthesis: "BN ends higher"."""
        return self.label.split(" (")[0]

    def brief(self) -> str:
        """"BN ends higher: +0.020 [+0.008, +0.031]": the difference and its interval, nothing else."""
        return f"{self.name}: {self.text.split(', p ')[0].split(' (n=')[0].split('; ')[0]}"


def decide(comparison: Comparison, a: list[Run], b: list[Run] | float) -> Result:
    """Answer `comparison` for arm `a` against arm `b` (runs) or a constant."""
    a_values = values_by_seed(a, comparison.measure)
    if isinstance(b, (int, float)):
        diff = one_sample(a_values.values(), float(b))
    elif comparison.paired:
        diff = paired(a_values, values_by_seed(b, comparison.measure))
    else:
        diff = welch(a_values.values(), values_by_seed(b, comparison.measure).values())
    if not comparison.log_ratio:
        return judge(comparison.label, comparison.claim, comparison.margin, diff)
    result = judge(comparison.label, comparison.claim, comparison.margin, diff, shown=ratio_of_logs)
    result.log_scale = True
    return result


def ratio_of_logs(diff: Difference) -> str:
    """A difference of logs shown as the ratio it is: "ratio 1.03 [0.98, 1.08], p 0.2 (n=5 vs 5)"."""
    if diff.mean is None:
        return "n/a"
    return f"{ratio_with_interval(diff)} ({diff.count})"


def ratio_with_interval(diff: Difference) -> str:
    """A difference of logs as "ratio 1.03 [0.98, 1.08], p 0.2" (and "against 0.8" where p tests a margin)."""
    text = f"ratio {math.exp(diff.mean):.3g}"
    if diff.has_interval:
        text += f" [{math.exp(diff.low):.3g}, {math.exp(diff.high):.3g}], p {format_p(diff.p)}"
        text += f" against {math.exp(diff.null):.3g}" if diff.null else ""
    return text


def judge(label: str, claim: str, margin: float, diff: Difference, shown: Callable[[Difference], str] | None = None) -> Result:
    """The outcome of a difference for a claimed direction (or tie) and margin, and the seeds that would settle it.
    Against a margin, the p shown is that of the margin's test."""
    boundary = (margin if claim == HIGHER else -margin) + 0.0  # + 0.0: no "-0" in the text
    text = (shown or (lambda d: d.format()))(tested_against(diff, boundary) if claim != EQUAL else diff)
    too_few = min(diff.a_n, diff.b_n if diff.b_n else diff.a_n)
    if not diff.has_interval or too_few < MIN_SEEDS:
        n = f"{diff.a_n} pairs" if diff.paired else f"{diff.a_n}" + (f" and {diff.b_n}" if diff.b_n else "")
        return Result(label, INCONCLUSIVE, f"too few runs ({n}); {text}", diff)
    if claim == EQUAL:
        return _judge_equal(label, margin, diff, text)
    above, below = diff.low > boundary, diff.high < boundary
    if (above and claim == HIGHER) or (below and claim == LOWER):
        outcome = HOLDS
    elif above or below:
        outcome = DOES_NOT_HOLD
    else:
        outcome = INCONCLUSIVE
    result = Result(label, outcome, text, diff, boundary=boundary, claim=claim)
    if outcome == INCONCLUSIVE and not result.points_against:
        result.seeds_needed = seeds_needed(diff, boundary)
    return result


def _judge_equal(label: str, margin: float, diff: Difference, text: str) -> Result:
    low90, high90 = equivalence_interval(diff)
    text = f"{diff.mean:+.3f}, 90% interval [{low90:+.3f}, {high90:+.3f}] against +-{margin:g}"
    if -margin < low90 and high90 < margin:
        return Result(label, HOLDS, text, diff, claim=EQUAL, margin=margin)
    if diff.low > margin or diff.high < -margin:
        return Result(label, DOES_NOT_HOLD, text, diff, claim=EQUAL, margin=margin)
    inside = abs(diff.mean) < margin
    needed = seeds_needed(diff, math.copysign(margin, diff.mean), one_sided=True) if inside else None
    return Result(label, INCONCLUSIVE, text, diff, needed, claim=EQUAL, margin=margin)


def values_by_seed(runs: list[Run], measure: Measure) -> dict:
    """{seed: measure(run)} over the completed runs that have a value (diverged runs have none)."""
    out = {}
    for run in runs:
        if run.status != "completed":
            continue
        value = measure(run)
        if value is not None and math.isfinite(value):
            out[run.summary.get("seed", len(out))] = float(value)
    return out


def steps_ratio(label: str, a: list[Run], b: list[Run], target: Callable[[Run], float | None], steps_of,
                floor: float | None = None) -> Result:
    """Steps arm `a` needs over the steps arm `b` needs, per seed (paired), each to the target that
    `target(b's run)` sets for that seed; `steps_of(run, target)` is the first evaluation at or above it,
    or None. A run that never reaches its target counts as reaching it one evaluation after its end
    (censored), so it is counted, not dropped. Decided on the log ratio: holds when the interval of the
    geometric-mean ratio lies below 1 (a needs fewer steps). A target at chance (the mean target at or below
    `floor`) is named as such and decides nothing."""
    b_by_seed = {r.summary.get("seed"): r for r in b if r.status == "completed"}
    goals = [g for g in (target(r) for r in b_by_seed.values()) if g is not None]
    if floor is not None and goals and sum(goals) / len(goals) <= floor:
        return Result(label, INCONCLUSIVE, f"the target, {sum(goals) / len(goals):.3f}, is at chance: the runs that set "
                      "it never trained, so steps to it measure nothing")
    logs, reached = {}, {"a": 0, "b": 0, "pairs": 0}
    for run in a:
        other = b_by_seed.get(run.summary.get("seed"))
        if other is None or run.status not in ("completed", "diverged"):
            continue
        goal = target(other)
        if goal is None:
            continue
        sa, sb = steps_of(run, goal), steps_of(other, goal)
        reached["pairs"] += 1
        reached["a"] += sa is not None
        reached["b"] += sb is not None
        sa = sa if sa is not None else censored(run)
        sb = sb if sb is not None else censored(other)
        logs[run.summary.get("seed")] = math.log(max(sa, 1) / max(sb, 1))
    diff = one_sample(logs.values(), 0.0, paired_design=True)
    result = judge(label, LOWER, 0.0, diff, shown=lambda d: ratio_text(d, reached))
    result.text, result.log_scale = ratio_text(diff, reached), True
    return result


def censored(run: Run) -> int:
    """Where a run that never reached a target counts as reaching it: one evaluation after its last step."""
    steps = [line["step"] for line in run.metrics if "test/acc" in line]
    every = (steps[-1] - steps[-2]) if len(steps) >= 2 else 1
    return (steps[-1] if steps else 0) + every


def ratio_text(diff: Difference, reached: dict) -> str:
    if diff.mean is None:
        return "no pairs of runs"
    return (f"{ratio_with_interval(diff)} (n={reached['pairs']} pairs; reached the target: "
            f"{reached['a']}/{reached['pairs']} and {reached['b']}/{reached['pairs']})")


def within(label: str, value: float | None, limit: float, what: str = "") -> Result:
    """A recorded value (e.g. the worst error over runs) against a tolerance: holds when it is at most `limit`.
    A check of identities and tolerances, not a comparison of arms: no interval, no seeds."""
    return _against(label, value, limit, "at most", lambda v: v <= limit, what)


def at_least(label: str, value: float | None, limit: float, what: str = "") -> Result:
    """A recorded value against a floor: holds when it is at least `limit`."""
    return _against(label, value, limit, "at least", lambda v: v >= limit, what)


def _against(label: str, value, limit: float, side: str, ok: Callable[[float], bool], what: str) -> Result:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return Result(label, INCONCLUSIVE, f"no {what or 'value'} recorded")
    shown = f"{value:.1e}" if value and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:.3f}"
    return Result(label, HOLDS if ok(value) else DOES_NOT_HOLD, f"{what + ' ' if what else ''}{shown}, {side} {limit:g}")


def condition(label: str, ok: bool, text: str) -> Result:
    """A yes/no part of a rule that needs no statistics (e.g. "no BN run diverged")."""
    return Result(label, HOLDS if ok else DOES_NOT_HOLD, text)


def holm(parts: list[Result], alpha: float = ALPHA / 2) -> list[Result]:
    """The parts of a conjunction with its failing side corrected by Holm's step-down procedure over the
    parts that are tests (comparisons; conditions and checks are not tests and fail as they are): sorted
    by p_against, the j-th smallest of k rejects (the part does not hold) while p <= alpha / (k - j + 1).
    A part that did not hold alone but is not rejected here becomes inconclusive and says so. alpha is
    one-sided: the 95% interval's side."""
    tested = [i for i, p in enumerate(parts) if p.p_against() is not None]
    k = len(tested)
    if k < 2:
        return list(parts)
    rejected = set()
    for j, i in enumerate(sorted(tested, key=lambda i: parts[i].p_against()), start=1):
        if parts[i].p_against() > alpha / (k - j + 1):
            break
        rejected.add(i)
    out = []
    for i, part in enumerate(parts):
        if i in tested and part.outcome == DOES_NOT_HOLD and i not in rejected:
            part = _not_rejected(part, part.p_against(), k)
        out.append(part)
    return out


def _not_rejected(part: Result, p: float, k: int) -> Result:
    """A failing part that Holm's correction over k parts does not reject: inconclusive, pointing against."""
    note = f"does not hold alone (one-sided p {p:.3g}), not after Holm's correction over {k} parts"
    return Result(part.label, INCONCLUSIVE, f"{part.text}; {note}" if part.text else note, part.difference, None,
                  [_not_rejected(q, q.p_against(), k) if q.outcome == DOES_NOT_HOLD and q.p_against() is not None
                   else q for q in part.parts],
                  part.boundary, part.log_scale, part.claim, part.margin, part.combine)


def all_of(label: str, parts: list[Result]) -> Result:
    """Holds when every part holds (each tested at 5%: an intersection-union test needs no correction);
    does not hold when a part does not hold after Holm's correction over the parts (`holm`): rejecting the
    conjunction is a union of tests; otherwise inconclusive."""
    parts = holm(parts)
    outcomes = [p.outcome for p in parts]
    if DOES_NOT_HOLD in outcomes:
        outcome = DOES_NOT_HOLD
    elif INCONCLUSIVE in outcomes:
        outcome = INCONCLUSIVE
    else:
        outcome = HOLDS
    needed = [p.seeds_needed for p in parts if p.outcome == INCONCLUSIVE and p.seeds_needed]
    return Result(label, outcome, "", None, max(needed) if needed and outcome == INCONCLUSIVE else None, parts,
                  combine="all")


def any_of(label: str, parts: list[Result]) -> Result:
    """Holds when some part holds; does not hold when every part does not; otherwise inconclusive."""
    outcomes = [p.outcome for p in parts]
    if HOLDS in outcomes:
        outcome = HOLDS
    elif all(o == DOES_NOT_HOLD for o in outcomes):
        outcome = DOES_NOT_HOLD
    else:
        outcome = INCONCLUSIVE
    needed = [p.seeds_needed for p in parts if p.outcome == INCONCLUSIVE and p.seeds_needed]
    return Result(label, outcome, "", None, min(needed) if needed and outcome == INCONCLUSIVE else None, parts,
                  combine="any")
