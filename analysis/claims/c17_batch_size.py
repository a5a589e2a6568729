"""C17: BN weakens with small batches (Ioffe 2017; Wu & He 2018)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import cfg, final_acc, final_by_seed, finished, select
from analysis.rules import LOWER, Result, judge
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
REFERENCE_BATCH = 32  # the GroupNorm paper's reference: BN at 32 per GPU against 2


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


def lead_change(label: str, other: str, arms: Arms, small: int, large: int) -> Result:
    """Whether `label`'s lead over `other` (final test accuracy, same seed) is smaller at batch `small`
    than at batch `large`: the change of the lead, interval below 0."""
    change = one_sample(advantage_change(finished(arms[label]), finished(arms[other]), small, large).values(),
                        paired_design=True)
    return judge(f"{label}'s lead over {other} shrinks from batch {large} to {small} (change of the lead, same seed)",
                 LOWER, 0.0, change)


def verdict(arms: Arms) -> Verdict:
    """As the GroupNorm paper compares them: BN's lead over GroupNorm (final test accuracy, paired by
    seed) at the smallest batch size minus its lead at REFERENCE_BATCH (the paper's 32 per GPU; the largest
    size when 32 was not run), interval below 0: BN falls behind a batch-independent norm as the batch
    shrinks. Also measured: the same against LayerNorm, and each norm's lead over the unnormalized net from
    the largest batch to the smallest (context)."""
    runs = [run for arm in arms.values() for run in arm]
    sizes = sorted({cfg(r, "train.batch_size") for r in finished(runs) if cfg(r, "train.batch_size")})
    if not finished(arms["BN"]) or not finished(arms["GroupNorm"]) or len(sizes) < 2:
        return no_runs(runs, "no BN and GroupNorm runs at two or more batch sizes")
    small, large = sizes[0], sizes[-1]
    reference = REFERENCE_BATCH if REFERENCE_BATCH in sizes else large
    numbers: dict[str, Any] = {}
    for label, points in accuracy_by_batch(arms).items():
        numbers[f"{label} final acc by batch size"] = {b: e.mean for b, e in points.items()}
    decision = lead_change("BN", "GroupNorm", arms, small, reference)
    numbers[f"BN's lead over GroupNorm, change from batch {reference} to {small}"] = decision.difference
    secondary = [lead_change("BN", "LayerNorm", arms, small, reference)] if finished(arms["LayerNorm"]) else []
    if finished(arms["no norm"]):
        secondary += [lead_change(label, "no norm", arms, small, large) for label in NORMS[:-1] if finished(arms[label])]
    return decided(decision, runs, numbers, [], secondary)


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
    rule="as the GroupNorm paper compares them: BN's lead over GroupNorm (final test accuracy, paired by seed) at the "
    "smallest batch minus its lead at batch 32 (the paper's reference), interval below 0; also reported: the same "
    "against LayerNorm, each norm's lead over the unnormalized net from the largest batch to the smallest "
    "(context), and accuracy vs batch size for every norm",
    source_number="GroupNorm paper: BN's ImageNet error rises from 23.6% at 32 per GPU to 34.7% at 2; GN's stays "
    "near 24%",
    method=f"runs are paired by seed: BN's lead over GroupNorm at the smallest batch size minus its lead at batch "
    f"{REFERENCE_BATCH} (the GroupNorm paper's reference, 32 per GPU against 2). The unnormalized net is context, "
    "not the reference: at a fixed number of epochs its own accuracy moves with the batch size.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
