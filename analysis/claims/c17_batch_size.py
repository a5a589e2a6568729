"""C17: BN weakens with small batches (Ioffe 2017; Wu & He 2018)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import cfg, final_acc, final_by_seed, finished, select
from analysis.rules import LOWER, judge
from analysis.runs import Run
from analysis.stats import Estimate, one_sample
from analysis.verdict import Verdict, decided, no_runs

SIZES = "2,4,8,16,32,64,128,256"  # train.batch_size, at a fixed number of epochs

ARMS = (
    Arm("batch_size", {"bn": "none", "train.batch_size": SIZES}, name="no norm"),
    Arm("batch_size", {"bn": "before", "train.batch_size": SIZES}, name="BN"),
    Arm("batch_size", {"bn": "group", "train.batch_size": SIZES}, name="GroupNorm"),
    Arm("batch_size", {"bn": "layer", "train.batch_size": SIZES}, name="LayerNorm"),
)
NORMS = ("BN", "GroupNorm", "LayerNorm", "no norm")  # the order of the numbers and figure


def accuracy_by_batch(arms: Arms) -> dict[str, dict[int, Estimate]]:
    """Per arm (in NORMS' order), final test accuracy per training batch size."""
    out = {}
    for label in NORMS:
        members = arms[label]
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


def verdict(arms: Arms) -> Verdict:
    """BN's advantage over the unnormalized net (final test accuracy, paired by seed) at the smallest
    batch size minus that at the largest (see advantage_change), interval below 0: BN weakens as the batch
    shrinks. The same number for GroupNorm and LayerNorm (secondary) says whether a batch-independent norm
    weakens too."""
    runs = [run for arm in arms.values() for run in arm]
    base = finished(arms["no norm"])
    sizes = sorted({cfg(r, "train.batch_size") for r in finished(runs) if cfg(r, "train.batch_size")})
    if not base or not finished(arms["BN"]) or len(sizes) < 2:
        return no_runs(runs, "no BN and no-BN runs at two or more batch sizes")
    small, large = sizes[0], sizes[-1]
    numbers: dict[str, Any] = {}
    for label, points in accuracy_by_batch(arms).items():
        numbers[f"{label} final acc by batch size"] = {b: e.mean for b, e in points.items()}
    results = {}
    for label in NORMS:
        if label != "no norm" and arms[label]:
            change = one_sample(advantage_change(finished(arms[label]), base, small, large).values(),
                                paired_design=True)
            numbers[f"{label} advantage change, batch {small} vs {large}"] = change
            results[label] = judge(f"{label}'s lead over no norm shrinks from batch {large} to {small} "
                                 "(change of the lead, same seed)", LOWER, 0.0, change)
    secondary = [r for label, r in results.items() if label != "BN"]
    return decided(results["BN"], runs, numbers, [], secondary)


def figures(arms: Arms, folder: Path) -> list[Path]:
    by_batch = accuracy_by_batch(arms)
    if not by_batch:
        return []
    return [plots.accuracy_by_scale(by_batch, Path(folder) / "c17_batch_size.png",
                                    "Final accuracy vs training batch size, fixed epochs", xlabel="batch size")]


CLAIM = Claim(
    text="BN weakens with small batches",
    source="Ioffe 2017 (Batch Renormalization); Wu & He 2018 (Group Normalization)",
    protocol="batch sizes 2..256 at a fixed number of epochs, no norm vs BN vs GroupNorm vs LayerNorm",
    rule="report accuracy vs batch size with and without BN; the claim holds when BN's lead over the "
    "unnormalized net (paired by seed) is smaller at the smallest batch than at the largest, interval below 0; "
    "the same number for GroupNorm and LayerNorm says whether a batch-independent norm weakens too",
    source_number="GroupNorm paper: BN's ImageNet error rises from 23.6% at 32 per GPU to 34.7% at 2; GN's stays "
    "near 24%",
    method="runs are paired by seed: BN's lead over the unnormalized net at the smallest batch size minus its lead at "
    "the largest.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
