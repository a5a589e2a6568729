"""C13: BN makes deep sigmoid networks trainable (paper Fig. 3: BN-x5-Sigmoid vs Inception with sigmoid)."""

from __future__ import annotations

from pathlib import Path

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import (
    ARM_LABELS,
    NEAR_CHANCE,
    WELL_ABOVE_CHANCE,
    cfg,
    chance,
    diverged,
    final_acc,
    final_accuracy,
    finished,
    select,
    trains,
    tuned,
)
from analysis.rules import EQUAL, HIGHER, Comparison, all_of, any_of, condition, decide, values_by_seed
from analysis.verdict import Verdict, decided, no_runs

FAR_BEHIND = 0.10  # BN ahead of no-BN by more than this

ARMS = (
    Arm("sigmoid_depth", {"bn": "none", "optim.lr_mult": "0.2,1,5"}, probes=("saturation", "grad_norms"), name="no BN"),
    Arm("sigmoid_depth", {"bn": "before", "optim.lr_mult": "0.2,1,5"}, probes=("saturation", "grad_norms"), name="BN"),
)


def verdict(arms: Arms) -> Verdict:
    """Each arm at its tuned lr_mult (see tuned): the deep sigmoid net with BN trains (no divergence,
    final accuracy more than WELL_ABOVE_CHANCE above chance) and the net without BN is at chance (within
    +-NEAR_CHANCE, an equivalence test) or far behind (BN - no-BN above FAR_BEHIND, Welch)."""
    runs = arms["no BN"] + arms["BN"]
    (bn, bn_mult), (base, base_mult) = tuned(arms["BN"]), tuned(arms["no BN"])
    if not finished(bn) or not finished(base):
        return no_runs(runs, "no finished runs with and without BN")
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
    return decided(decision, runs, numbers, ["BN final acc", "no-BN final acc"])


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = arms["no BN"] + arms["BN"]
    mults = sorted({cfg(r, "optim.lr_mult") or 1 for r in runs})
    groups = {
        ARM_LABELS[p]: {f"lr x{m:g}": final_acc(select(arms[name], optim__lr_mult=m)) for m in mults}
        for p, name in (("none", "no BN"), ("before", "BN"))
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    level = 1 / (cfg(runs[0], "dataset.classes") or 10)
    path = Path(folder) / "c13_depth.png"
    title = "Deep sigmoid MLP: final accuracy per lr multiplier"
    return [plots.point_chart(groups, path, "final test accuracy", title, reference=level, reference_label="chance")]


CLAIM = Claim(
    text="BN makes deep sigmoid networks trainable",
    source="paper Fig. 3 (BN-x5-Sigmoid 69.8% vs Inception-sigmoid at chance)",
    protocol="deeper sigmoid MLP/CNN with and without BN",
    rule="each arm at its tuned lr_mult: BN trains (no divergence, more than 0.10 above chance) and no-BN is at "
    "chance (within +-0.02, equivalence) or more than 0.10 behind BN (Welch, interval above 0.10)",
    source_number="BN-x5-Sigmoid 69.8% best vs Inception with sigmoid at chance (ImageNet)",
    method=f"no-BN is \"far behind\" when BN - no-BN is above {FAR_BEHIND:g} (ten points), each arm at its tuned lr_mult.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
