"""C18: training only gamma and beta reaches far above chance (Frankle et al. 2020)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import plots
from analysis.arms import Arm
from analysis.claim import Arms, Claim
from analysis.measures import cfg, chance, final_acc, final_accuracy, finished
from analysis.rules import HIGHER, Comparison, all_of, decide
from analysis.runs import Run
from analysis.verdict import Verdict, decided, no_runs

FAR_ABOVE_CHANCE = 0.25  # "far above chance"
MODELS = "mlp_deep,cnn_small"

ARMS = (
    Arm("bn_only", {"model": MODELS, "train.trainable": "all"}, name="full training"),
    Arm("bn_only", {"model": MODELS, "train.trainable": "bn_only"}, name="BN only"),
    # Frankle et al.'s control: as many randomly chosen weights (2 per BN unit), BN frozen
    Arm("bn_only", {"model": MODELS, "train.trainable": "random"}, name="random weights"),
)


def model_label(run: Run) -> str:
    """"CNN" or "MLP <depth>x<width>" from the run's model config."""
    if cfg(run, "model.name") == "cnn":
        return "CNN"
    hidden = cfg(run, "model.hidden") or []
    return f"MLP {len(hidden)}x{hidden[0]}" if hidden and len(set(hidden)) == 1 else f"MLP {hidden}"


def verdict(arms: Arms) -> Verdict:
    """Every model: BN-only training (train.trainable=bn_only) ends more than FAR_ABOVE_CHANCE above
    chance (final test accuracy - chance, one-sample interval above it). Also reports full training and
    the fraction of its accuracy that BN-only training reaches."""
    runs = arms["full training"] + arms["BN only"]
    models = sorted({model_label(r) for r in finished(runs)})
    level = chance(runs)
    numbers: dict[str, Any] = {"chance": level}
    parts = []
    for model in models:
        only_runs = [r for r in finished(arms["BN only"]) if model_label(r) == model]
        only, full = final_acc(only_runs), final_acc([r for r in arms["full training"] if model_label(r) == model])
        numbers[f"{model} BN-only final acc"] = only
        numbers[f"{model} full training final acc"] = full
        if only.mean is not None and full.mean:
            numbers[f"{model} BN-only / full"] = only.mean / full.mean
        if only_runs:
            parts.append(decide(Comparison(f"{model}: BN-only training ends far above chance (above {FAR_ABOVE_CHANCE:g})",
                                           final_accuracy, "final test accuracy", HIGHER, FAR_ABOVE_CHANCE),
                                only_runs, level))
    if not parts:
        return no_runs(runs, "no finished BN-only runs")
    return decided(all_of("C18", parts), runs, numbers, [k for k in numbers if k.endswith("full training final acc")])


def figures(arms: Arms, folder: Path) -> list[Path]:
    runs = arms["full training"] + arms["BN only"]
    models = sorted({model_label(r) for r in finished(runs)})
    groups = {
        label: {m: final_acc([r for r in arms[name] if model_label(r) == m]) for m in models}
        for name, label in (("full training", "full training"), ("BN only", "only BN's gamma and beta"))
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    level = 1 / (cfg(runs[0], "dataset.classes") or 10)
    return [plots.point_chart(groups, Path(folder) / "c18_bn_only.png", "final test accuracy",
                              "Training only BN's parameters", reference=level, reference_label="chance")]


CLAIM = Claim(
    text="training only gamma and beta reaches far above chance",
    source="Frankle et al. 2020",
    protocol="freeze all other weights at init (the output layer too); a deeper MLP and the CNN; BN-only vs "
    "full training",
    rule="report accuracy vs chance and vs full training; holds when BN-only training ends more than 0.25 above "
    "chance in every model (one-sample interval above 0.25)",
    source_number="sufficiently deep ResNets reach 82% on CIFAR-10 (chance 10%) training only BN",
    method=f"\"far above chance\" is more than {FAR_ABOVE_CHANCE:g} above it.",
    arms=ARMS,
    decide=verdict,
    draw=figures,
)
