"""C18: training only gamma and beta reaches far above chance (Frankle et al. 2020)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import cfg, chance, final_acc, final_accuracy, finished, tuned
from analysis.rules import HIGHER, Comparison, all_of, decide
from analysis.runs import Run
from analysis.verdict import Verdict, decided, no_runs

FAR_HIGHER = 0.10  # BN-only "far above" the random-weights control: by more than ten accuracy points
FAR_ABOVE_CHANCE = 0.25  # "far above chance" (also measured)
MODELS = "mlp_deep,cnn_small"

LR_GRID = "0.2,1,5"  # optim.lr_mult: BN-only and its control each at its best learning rate

ARMS = (
    Arm("bn_only", {"model": MODELS, "train.trainable": "all", "optim.lr_mult": "1"}, name="full training"),
    Arm("bn_only", {"model": MODELS, "train.trainable": "bn_only", "optim.lr_mult": LR_GRID}, name="BN only"),
    # Frankle et al.'s control: as many randomly chosen weights (2 per BN unit), BN frozen
    Arm("bn_only", {"model": MODELS, "train.trainable": "random", "optim.lr_mult": LR_GRID}, name="random weights"),
)


def model_label(run: Run) -> str:
    """"CNN" or "MLP <depth>x<width>" from the run's model config."""
    if cfg(run, "model.name") == "cnn":
        return "CNN"
    hidden = cfg(run, "model.hidden") or []
    return f"MLP {len(hidden)}x{hidden[0]}" if hidden and len(set(hidden)) == 1 else f"MLP {hidden}"


def of_model(runs: list[Run], model: str) -> list[Run]:
    return [r for r in finished(runs) if model_label(r) == model]


def at_best(runs: list[Run], model: str) -> tuple[list[Run], float]:
    """The arm's runs of one model at its best lr_mult of the grid (analysis.measures.tuned), and that lr_mult."""
    members, mult = tuned(of_model(runs, model))
    return members, (mult or 1)


def verdict(arms: Arms) -> Verdict:
    """Frankle et al.'s comparison, every model, each arm at its best lr_mult of LR_GRID: training only BN's
    gamma and beta ends far higher than training as many randomly chosen weights (train.trainable=random,
    BN frozen), more than FAR_HIGHER
    (final test accuracy, BN-only - random, paired by seed: a seed is the same initialization). A failing
    model rejects the claim only after Holm's correction. Also measured: BN-only against chance (more than
    FAR_ABOVE_CHANCE above it) and the fraction of full training's accuracy it reaches."""
    runs = [run for arm in arms.values() for run in arm]
    models = sorted({model_label(r) for r in finished(runs)})
    level = chance(runs)
    numbers: dict[str, Any] = {"chance": level}
    parts, secondary = [], []
    for model in models:
        (only, only_lr), (random, random_lr) = at_best(arms["BN only"], model), at_best(arms["random weights"], model)
        full = of_model(arms["full training"], model)
        for name, members in ((f"BN-only (lr x{only_lr:g})", only), (f"random weights (lr x{random_lr:g})", random),
                              ("full training", full)):
            numbers[f"{model} {name} final acc"] = final_acc(members)
        if only and full:
            numbers[f"{model} BN-only / full"] = final_acc(only).mean / final_acc(full).mean
        if only and random:
            parts.append(decide(Comparison(f"{model}: BN-only ends far above as many random weights (BN-only at lr "
                                           f"x{only_lr:g} - random at lr x{random_lr:g}, same seed, above {FAR_HIGHER:g})",
                                           final_accuracy, "final test accuracy", HIGHER, FAR_HIGHER, paired=True),
                                only, random))
        if only and random:
            secondary.append(decide(Comparison(f"{model}: BN-only ends above as many random weights at all (same seed)",
                                               final_accuracy, "final test accuracy", HIGHER, paired=True), only, random))
        if only:
            secondary.append(decide(Comparison(f"{model}: BN-only training ends far above chance (above "
                                               f"{FAR_ABOVE_CHANCE:g})", final_accuracy, "final test accuracy", HIGHER,
                                               FAR_ABOVE_CHANCE), only, level))
    if not parts:
        return no_runs(runs, "no finished runs of both BN-only and random-weights training")
    return decided(all_of("C18", parts), runs, numbers, [k for k in numbers if "random weights" in k], secondary)


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = [run for arm in arms.values() for run in arm]
    models = sorted({model_label(r) for r in finished(runs)})
    groups = {
        label: {m: final_acc(at_best(arms[name], m)[0] if name != "full training" else of_model(arms[name], m))
                for m in models}
        for name, label in (("full training", "full training"), ("BN only", "only BN's gamma and beta"),
                            ("random weights", "as many random weights"))
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    return [plots.point_chart(groups, Path(folder) / "c18_bn_only.png", "final test accuracy",
                              "Training only BN's parameters against as many random weights",
                              reference=chance(runs), reference_label="chance")]


CLAIM = Claim(
    text="training only gamma and beta reaches far above chance",
    source="Frankle et al. 2020",
    protocol="freeze all other weights at init (the output layer too); a deeper MLP and the CNN; BN-only vs "
    "the source's control, as many randomly chosen weights (2 per BN unit, BN frozen), vs full training",
    rule="Frankle et al.'s control: in every model, training only gamma and beta ends more than 0.10 above "
    "training as many randomly chosen weights, each at its best lr_mult of 0.2, 1, 5 (final test accuracy, paired by "
    "seed: the same initialization); a "
    "failing model rejects only after Holm's correction; also reported: BN-only against chance (more than 0.25 "
    "above) and against full training",
    source_number="sufficiently deep ResNets reach 82% on CIFAR-10 (chance 10%) training only BN",
    method=f"the control trains, for each BN layer of C units, 2 randomly chosen incoming weights per unit of the "
    f"layer feeding it (as many as gamma and beta), with BN frozen; \"far above\" it is more than {FAR_HIGHER:g}; "
    f"\"far above chance\" (also measured) is more than {FAR_ABOVE_CHANCE:g} above it.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
