"""Figures, one function per kind. Each draws with matplotlib's Agg backend (no display needed) and
writes one PNG with fixed size and dpi and no software/date metadata, so the same numbers give the
same bytes. Inputs are plain numbers (analysis.stats gives them); each claim's module maps runs to them.
"""

from __future__ import annotations

import textwrap
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.stats import Estimate  # noqa: E402

DPI = 100
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_caption = [""]  # the line every figure drawn now carries at its foot (captioned)


@contextmanager
def captioned(text: str):
    """Figures drawn inside carry `text` at their foot (the claim, data set and seeds), so each is readable alone."""
    before, _caption[0] = _caption[0], text
    try:
        yield
    finally:
        _caption[0] = before


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _caption[0]:
        fig.text(0.01, 0.01, _caption[0], fontsize=7.5, color="#555555", ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def _error(estimate: Estimate) -> tuple[float, float]:
    if not estimate.has_interval:
        return (0.0, 0.0)
    return (estimate.mean - estimate.low, estimate.high - estimate.mean)


def bands(frame: pd.DataFrame, within: tuple[float, float] | None = None) -> pd.DataFrame:
    """The rows of a curve_interval frame that have an interval (one run has none), as floats, clipped to
    `within` (an accuracy's band stays in [0, 1])."""
    band = frame.dropna(subset=["low", "high"]).astype({"low": float, "high": float})
    if within is not None:
        band = band.assign(low=band["low"].clip(*within), high=band["high"].clip(*within))
    return band


def convergence(
    curves: dict[str, pd.DataFrame], path, title: str = "", ylabel: str = "test accuracy", styles: dict | None = None,
    within: tuple[float, float] | None = (0.0, 1.0),
) -> Path:
    """Fig. 1a: mean curve per arm with its 95% band (none for a single run; clipped to `within`, an
    accuracy's range). curves: label -> analysis.stats.curve_interval frame; styles: label -> {"color": ...,
    "linestyle": ...} (default: one color per curve, solid)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for color, (label, frame) in zip(COLORS, curves.items()):
        style = {"color": color, "linestyle": "-", **(styles or {}).get(label, {})}
        n = int(frame["n"].max()) if len(frame) else 0
        ax.plot(frame["step"], frame["mean"].astype(float), label=f"{label} (n={n})", **style)
        band = bands(frame, within)
        if len(band):
            ax.fill_between(band["step"], band["low"], band["high"], color=style["color"], alpha=0.2, linewidth=0)
    ax.set_xlabel("SGD steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def curve_panels(
    panels: dict[str, dict[str, pd.DataFrame]], path, title: str = "", log_y: bool = False
) -> Path:
    """Several measures over training side by side (C16), each panel one measure with a mean curve and
    95% band per arm (on a log axis, left out where it reaches below 0). panels: measure -> label ->
    analysis.stats.curve_interval frame."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.8), squeeze=False)
    for ax, (measure, curves) in zip(axes[0], panels.items()):
        for color, (label, frame) in zip(COLORS, curves.items()):
            frame = frame[frame["step"] > 0]
            if frame.empty:
                continue
            ax.plot(frame["step"], frame["mean"], color=color, marker=".", label=f"{label} (n={int(frame['n'].max())})")
            band = bands(frame)
            drawable = band["low"] > 0 if log_y else band["low"] == band["low"]  # a t-band below 0 has no log-axis place
            if len(band):
                ax.fill_between(band["step"], band["low"], band["high"], where=drawable, color=color, alpha=0.2, linewidth=0)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(measure)
        ax.set_xlabel("SGD steps")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def percentile_bands(panels: dict[str, pd.DataFrame], path, title: str = "") -> Path:
    """Fig. 1b,c: the 15/50/85th percentiles of one sigmoid's input over training, one panel per arm
    (same y axis). panels: label -> frame with columns step, p15, p50, p85."""
    fig, axes = plt.subplots(
        1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 3.8), sharey=True, squeeze=False
    )
    for ax, (label, frame) in zip(axes[0], panels.items()):
        ax.fill_between(frame["step"], frame["p15"], frame["p85"], color=COLORS[0], alpha=0.2, linewidth=0)
        for column, style in (("p15", "--"), ("p50", "-"), ("p85", "--")):
            ax.plot(frame["step"], frame[column], style, color=COLORS[0], label=f"{column[1:]}th percentile")
        ax.set_title(label)
        ax.set_xlabel("SGD steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("input to the sigmoid")
    axes[0][0].legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def scale_by_depth(arms: dict[str, dict[str, Estimate]], path, title: str = "") -> Path:
    """C4: pre-activation std at step 0 per hidden layer (depth order), mean over seeds, log y.
    arms: label -> layer -> estimate. No interval bars: a t-interval reaching below 0 has no place on a
    log axis, and the seeds differ by far less than the orders of magnitude this figure shows."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = ("o", "s", "^", "D")
    for color, marker, (label, layers) in zip(COLORS, markers, arms.items()):
        names = list(layers)
        ax.plot(range(len(names)), [layers[n].mean for n in names], marker=marker, color=color, label=label)
        ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer (input side first)")
    ax.set_ylabel("std of the nonlinearity's input at step 0")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def steps_by_lr_mult(
    arms: dict[str, dict[float, int | None]], path, target_label: str = "", total_steps: int | None = None
) -> Path:
    """C3: steps to reach the target accuracy per learning-rate multiplier; 'never' drawn at the top."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    mults = sorted({m for steps in arms.values() for m in steps})
    top = total_steps or max([s for steps in arms.values() for s in steps.values() if s] or [1])
    width = 0.8 / max(len(arms), 1)
    for i, (color, (label, steps)) in enumerate(zip(COLORS, arms.items())):
        xs = [mults.index(m) + (i - (len(arms) - 1) / 2) * width for m in sorted(steps)]
        heights = [steps[m] if steps[m] is not None else top for m in sorted(steps)]
        bars = ax.bar(xs, heights, width=width * 0.9, color=color, label=label)
        for bar, m in zip(bars, sorted(steps)):
            if steps[m] is None:
                bar.set_hatch("//")
                bar.set_alpha(0.35)
                ax.annotate(
                    "never", (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom", fontsize="small"
                )
    ax.set_xticks(range(len(mults)), [f"x{m:g}" for m in mults])
    ax.set_xlabel("learning-rate multiplier")
    ax.set_ylabel("steps to reach the target")
    ax.set_ylim(0, top * 1.25)  # room for the "never" labels and the legend
    ax.set_title(target_label)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", ncol=len(arms))
    return _save(fig, path)


def point_chart(
    groups: dict[str, dict[str, Estimate]],
    path,
    ylabel: str,
    title: str = "",
    reference: float | None = None,
    reference_label: str = "",
) -> Path:
    """Comparisons (C6, C9, C10, C11, C13, C15, C18): per category on x, one point with its 95% interval per series.
    groups: series label -> category -> estimate."""
    categories = list(dict.fromkeys(c for series in groups.values() for c in series))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(categories) + 2), 4.2))
    width = 0.6 / max(len(groups), 1)
    for i, (color, (label, series)) in enumerate(zip(COLORS, groups.items())):
        cats = [c for c in categories if c in series and series[c].mean is not None]
        xs = [categories.index(c) + (i - (len(groups) - 1) / 2) * width for c in cats]
        errors = list(zip(*[_error(series[c]) for c in cats])) if cats else None
        ax.errorbar(xs, [series[c].mean for c in cats], yerr=errors, fmt="o", color=color, capsize=4, label=label)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle=":", label=reference_label or None)
    ax.set_xticks(range(len(categories)), [textwrap.fill(c, 16) for c in categories])
    ax.set_xlim(-0.6, len(categories) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    if len(groups) > 1 or reference_label:
        ax.legend()
    return _save(fig, path)


def accuracy_by_scale(
    arms: dict[str, dict[float, Estimate]],
    path,
    title: str = "",
    xlabel: str = "init.scale (multiplier on every initial weight)",
) -> Path:
    """C5, C17: final test accuracy against a setting on a log x axis (the initial weight scale, the
    batch size), one line per arm with intervals."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for color, (label, points) in zip(COLORS, arms.items()):
        scales = [s for s in sorted(points) if points[s].mean is not None]
        ax.errorbar(
            scales,
            [points[s].mean for s in scales],
            yerr=list(zip(*[_error(points[s]) for s in scales])) or None,
            marker="o",
            color=color,
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    settings = sorted({s for points in arms.values() for s in points})
    if all(float(s).is_integer() for s in settings):  # batch sizes: label each one, not powers of ten
        ax.set_xticks(settings, [f"{s:g}" for s in settings])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def accuracy_by_batch_size(modes: dict[str, dict[int, float | None]], path, title: str = "") -> Path:
    """C7: test accuracy against the test batch size (log x), one line per mode (undefined sizes left out)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = ("o", "s", "^", "D")
    for color, marker, (mode, points) in zip(COLORS, markers, modes.items()):
        sizes = [s for s in sorted(points) if points[s] is not None]
        ax.plot(sizes, [points[s] for s in sizes], marker=marker, color=color, label=mode)
    ax.set_xscale("log")
    ax.set_xlabel("test batch size")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def errors_vs_tolerance(errors: dict[str, float], tolerance: float, path, title: str = "") -> Path:
    """C8, C12: measured errors as bars on a log axis against the tolerance line (zero drawn at the axis floor)."""
    names = list(errors)
    floor = min([v for v in errors.values() if v and v > 0] + [tolerance]) / 100
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(names) + 2), 4.2))
    ax.bar(range(len(names)), [max(errors[n], floor) for n in names], color=COLORS[0])
    ax.axhline(tolerance, color=COLORS[1], linestyle="--", label=f"tolerance {tolerance:g}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("largest error")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend()
    return _save(fig, path)
