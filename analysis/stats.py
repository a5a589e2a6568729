"""Statistics over seeds: means with 95% Student-t intervals, curves, steps-to-target, drift.

Intervals: for n values x_1..x_n (one per seed) the interval is mean ± t_{0.975, n-1} · s / sqrt(n),
with s the sample standard deviation (ddof=1) and t the Student-t quantile. It assumes the seeds'
values are roughly normal; with the 3-5 seeds used here that is an approximation, stated in the report.
One value gives a mean and no interval; no value gives neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit  # normal and Student-t quantiles and cdf; lighter than scipy.stats

CONFIDENCE = 0.95
PERCENTILES = ("p15", "p50", "p85")
SPREAD_FLOOR = 0.1  # drift_score's smallest width, in units of the nonlinearity's input (a sigmoid's scale is 1)


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds with its Student-t interval (low/high are None when n < 2)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None

    def apart_above(self, other: Estimate) -> bool:
        """True when this interval lies wholly above the other's (both need an interval)."""
        return self.has_interval and other.has_interval and self.low > other.high

    def format(self, digits: int = 3, scale: float = 1.0) -> str:
        if self.mean is None:
            return "n/a"
        values = [self.mean * scale] + ([self.low * scale, self.high * scale] if self.has_interval else [])
        # a quantity far below one (a scale at init) keeps its significant digits instead of printing 0.000
        spec = f".{digits}g" if 0 < max(abs(v) for v in values) < 10 ** -digits else f".{digits}f"
        text = f"{values[0]:{spec}}"
        if self.has_interval:
            text += f" [{values[1]:{spec}}, {values[2]:{spec}}]"
        return text + f" (n={self.n})"


def mean_interval(values, confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student-t interval of the finite values (None and NaN are left out)."""
    xs = finite(values)
    if len(xs) == 0:
        return Estimate(None, None, None, 0)
    mean = float(xs.mean())
    if len(xs) == 1:
        return Estimate(mean, None, None, 1)
    half = float(stdtrit(len(xs) - 1, 0.5 + confidence / 2) * xs.std(ddof=1) / math.sqrt(len(xs)))
    return Estimate(mean, mean - half, mean + half, len(xs))


def curve_interval(curves: pd.DataFrame, metric: str, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per step: mean, low, high and n over the runs in a long curves table (analysis.tables.curves).
    A step that only some runs reached (a diverged run stops early) averages the runs that have it."""
    rows = curves[curves["metric"] == metric]
    out = []
    for step, group in rows.groupby("step", sort=True):
        estimate = mean_interval(group["value"], confidence)
        out.append(
            {"step": int(step), "mean": estimate.mean, "low": estimate.low, "high": estimate.high, "n": estimate.n}
        )
    return pd.DataFrame(out, columns=["step", "mean", "low", "high", "n"])


def steps_to_target(series: list[tuple[int, float]], target: float) -> int | None:
    """The first step whose value is >= target, or None when the run never reaches it."""
    for step, value in series:
        if value >= target:
            return int(step)
    return None


def drift_score(
    p15: list[float], p50: list[float], p85: list[float], steps: list[int], total_steps: int
) -> float | None:
    """How much one unit's input distribution moves after the first 10% of training.

    Over the evaluations at steps >= 0.1 * total_steps (at least two needed, else None):
        drift = mean over q in {15, 50, 85} of (max_t p_q(t) - min_t p_q(t)) / spread,
        spread = mean_t (p85(t) - p15(t)),
    i.e. the range each percentile sweeps, in units of the distribution's own 15-85 width. 0 means
    perfectly steady; 1 means a percentile moved by as much as the distribution is wide. The width counts
    as at least SPREAD_FLOOR: a distribution far narrower than the sigmoid's own scale (an unnormalized
    net that stays at chance) would otherwise turn a small move into a score in the thousands.
    """
    start = 0.1 * total_steps
    keep = [i for i, s in enumerate(steps) if s >= start]
    if len(keep) < 2:
        return None
    series = [np.array([p[i] for i in keep], dtype=float) for p in (p15, p50, p85)]
    spread = float(np.mean(series[2] - series[0]))
    if not spread > 0:
        return None
    return float(np.mean([(s.max() - s.min()) / max(spread, SPREAD_FLOOR) for s in series]))


# --- differences between arms: the numbers verdicts are decided on ---------------------------------

ALPHA = 1 - CONFIDENCE
POWER = 0.8  # "seeds that would settle it": a test at ALPHA that finds the observed difference 80% of the time


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with its 95% interval and two-sided p-value (Welch, or paired by seed), or a
    one-sample mean minus a constant (b_n = 0). low/high are None when there are too few values."""

    mean: float | None
    low: float | None
    high: float | None
    p: float | None
    a_n: int
    b_n: int
    sd: float | None = None  # the spread per seed behind the interval (pooled, or of the paired differences)
    paired: bool = False
    se: float | None = None  # standard error of the difference
    df: float | None = None  # its degrees of freedom (Welch-Satterthwaite, or n - 1)
    null: float = 0.0  # the difference that p tests: 0, or the margin a rule decides against (tested_against)

    @property
    def has_interval(self) -> bool:
        return self.low is not None

    def format(self, digits: int = 3, scale: float = 1.0) -> str:
        if self.mean is None:
            return "n/a"
        text = f"{self.mean * scale:+.{digits}f}"
        if self.has_interval:
            text += f" [{self.low * scale:+.{digits}f}, {self.high * scale:+.{digits}f}]"
        if self.p is not None:
            text += f", p {format_p(self.p)}" + (f" against {self.null * scale:+.{digits}f}" if self.null else "")
        return text + f" ({self.count})"

    @property
    def count(self) -> str:
        """How many values it stands on: "n=5 pairs", "n=5 vs 4", "n=5"."""
        return f"n={self.a_n} pairs" if self.paired else f"n={self.a_n}" + (f" vs {self.b_n}" if self.b_n else "")


def tested_against(diff: Difference, null: float) -> Difference:
    """The same difference with its two-sided p of difference = `null` (below 0.05 exactly when the 95%
    interval leaves out `null`): a rule that decides against a margin shows the p of that test, not of 0."""
    if diff.se is None or diff.df is None or diff.mean is None or not null:
        return diff
    _, _, p = _t_interval(diff.mean - null, diff.se, diff.df, CONFIDENCE)
    return replace(diff, p=p, null=null)


def format_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def finite(values) -> np.ndarray:
    return np.array([float(v) for v in values if v is not None and math.isfinite(float(v))])


def _t_interval(mean: float, se: float, df: float, confidence: float) -> tuple[float, float, float]:
    """(low, high, two-sided p of mean = 0) of a t statistic with `df` degrees of freedom."""
    half = float(stdtrit(df, 0.5 + confidence / 2)) * se
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stdtr(df, -abs(mean) / se))
    return mean - half, mean + half, p


def welch(a, b, confidence: float = CONFIDENCE) -> Difference:
    """mean(a) - mean(b), Welch's interval (unequal variances, Welch-Satterthwaite degrees of freedom)."""
    xa, xb = finite(a), finite(b)
    if len(xa) == 0 or len(xb) == 0:
        return Difference(None, None, None, None, len(xa), len(xb))
    mean = float(xa.mean() - xb.mean())
    if len(xa) < 2 or len(xb) < 2:
        return Difference(mean, None, None, None, len(xa), len(xb))
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if se > 0 else len(xa) + len(xb) - 2
    low, high, p = _t_interval(mean, se, df, confidence)
    sd = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
    return Difference(mean, low, high, p, len(xa), len(xb), sd, False, se, float(df))


def paired(a_by_seed: dict, b_by_seed: dict, confidence: float = CONFIDENCE) -> Difference:
    """Mean over the seeds both have of a[seed] - b[seed], with the one-sample t interval of those differences."""
    seeds = [s for s in a_by_seed if s in b_by_seed and _is_number(a_by_seed[s]) and _is_number(b_by_seed[s])]
    diffs = np.array([float(a_by_seed[s]) - float(b_by_seed[s]) for s in seeds])
    return one_sample(diffs, 0.0, confidence, paired_design=True)


def one_sample(values, constant: float = 0.0, confidence: float = CONFIDENCE, paired_design: bool = False) -> Difference:
    """mean(values) - constant, with the one-sample t interval."""
    xs = finite(values)
    if len(xs) == 0:
        return Difference(None, None, None, None, 0, 0, paired=paired_design)
    mean = float(xs.mean() - constant)
    if len(xs) < 2:
        return Difference(mean, None, None, None, len(xs), 0, paired=paired_design)
    sd = float(xs.std(ddof=1))
    se = sd / math.sqrt(len(xs))
    low, high, p = _t_interval(mean, se, len(xs) - 1, confidence)
    return Difference(mean, low, high, p, len(xs), 0, sd, paired_design, se, len(xs) - 1)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def seeds_needed(diff: Difference, boundary: float = 0.0, one_sided: bool = False, power: float = POWER,
                 most: int = 10_000) -> int | None:
    """About how many seeds per arm (pairs, when paired) would settle whether the difference lies beyond
    `boundary`, if the true difference and spread are the observed ones: the smallest n at which a t test
    at ALPHA (two-sided, or one-sided for the two one-sided tests of an equivalence) finds it with
    probability `power` (the usual approximation: t quantiles at the test's degrees of freedom in place of
    the noncentral t). None: no spread to go on, a difference exactly at the boundary, or more than `most`."""
    if diff.mean is None or not diff.sd or not diff.has_interval:
        return None
    effect = abs(diff.mean - boundary)
    if effect == 0:
        return None
    two_arms = not (diff.paired or diff.b_n == 0)
    for n in range(2, most + 1):
        df = 2 * n - 2 if two_arms else n - 1
        se = diff.sd * math.sqrt((2 if two_arms else 1) / n)
        if (stdtrit(df, 1 - (ALPHA if one_sided else ALPHA / 2)) + stdtrit(df, power)) * se <= effect:
            return n
    return None


def equivalence_interval(diff: Difference) -> tuple[float, float] | None:
    """The 90% interval of a difference: two one-sided tests at ALPHA say |difference| < margin exactly
    when it lies within (-margin, margin)."""
    if not diff.has_interval or diff.se is None:
        return None
    half = float(stdtrit(diff.df, 1 - ALPHA)) * diff.se
    return diff.mean - half, diff.mean + half
