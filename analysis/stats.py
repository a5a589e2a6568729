"""Statistics over seeds: means with 95% Student-t intervals, curves, steps-to-target, drift.

Intervals: for n values x_1..x_n (one per seed) the interval is mean ± t_{0.975, n-1} · s / sqrt(n),
with s the sample standard deviation (ddof=1) and t the Student-t quantile. It assumes the seeds'
values are roughly normal; with the 3-5 seeds used here that is an approximation, stated in the report.
One value gives a mean and no interval; no value gives neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student-t quantile; lighter to import than scipy.stats

CONFIDENCE = 0.95
PERCENTILES = ("p15", "p50", "p85")


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
        text = f"{self.mean * scale:.{digits}f}"
        if self.has_interval:
            text += f" [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        return text + f" (n={self.n})"


def mean_interval(values, confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student-t interval of the finite values (None and NaN are left out)."""
    xs = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))])
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
    perfectly steady; 1 means a percentile moved by as much as the distribution is wide.
    """
    start = 0.1 * total_steps
    keep = [i for i, s in enumerate(steps) if s >= start]
    if len(keep) < 2:
        return None
    series = [np.array([p[i] for i in keep], dtype=float) for p in (p15, p50, p85)]
    spread = float(np.mean(series[2] - series[0]))
    if not spread > 0:
        return None
    return float(np.mean([(s.max() - s.min()) / spread for s in series]))
