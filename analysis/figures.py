"""Each claim's figures from its runs: `FIGURES[claim](runs, folder)` writes PNGs into `folder` and
returns their paths (none when the runs lack what the figure needs). The report and the notebooks
both call these; the drawing itself is in analysis/plots.py."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from analysis import plots
from analysis.runs import Run
from analysis.stats import curve_interval, mean_interval, steps_to_target
from analysis.tables import curves
from analysis.verdicts import (
    FLOAT_TOL,
    LANDSCAPE,
    accuracy_by_batch,
    accuracy_by_scale,
    arm_runs,
    bn_input_shape,
    cfg,
    final_acc,
    finished,
    gradient_imbalance,
    ics_layers,
    layer_order,
    mean_curve,
    model_label,
    planned_steps,
    poor_init_main,
    probe_results,
    probed_mean,
    saturation,
    scale_by_depth,
    select,
    tiny_eps,
    tracked_units,
    train_test_gap,
)

ARM_LABELS = {"none": "no BN", "before": "BN before", "after": "BN after"}


def arm_curve(runs: list[Run], metric: str = "test/acc") -> pd.DataFrame:
    """Mean and 95% band per step over the finished runs."""
    return curve_interval(curves(finished(runs), metrics=[metric], config_keys=[]), metric)


def fig1_curves(runs: list[Run], lr_mult: float = 1) -> dict[str, pd.DataFrame]:
    return {
        ARM_LABELS[p]: arm_curve(select(runs, bn__placement=p, optim__lr_mult=lr_mult))
        for p in ("none", "before")
        if finished(select(runs, bn__placement=p, optim__lr_mult=lr_mult))
    }


def lr_mult_curves(runs: list[Run]) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Mean curves per arm (no BN, BN) and lr multiplier, with styles: one color per arm, one line style
    per multiplier."""
    curves, styles = {}, {}
    for color, placement in zip(plots.COLORS, ("none", "before")):
        arm = select(runs, bn__placement=placement)
        mults = sorted({cfg(r, "optim.lr_mult") for r in arm})
        for linestyle, mult in zip(("-", "--", ":", "-."), mults):
            if finished(select(arm, optim__lr_mult=mult)):
                label = f"{ARM_LABELS[placement]}, lr x{mult:g}"
                curves[label] = arm_curve(select(arm, optim__lr_mult=mult))
                styles[label] = {"color": color, "linestyle": linestyle}
    return curves, styles


def tracked_unit(run: Run) -> tuple[str, pd.DataFrame] | None:
    """(name, frame with step, p15, p50, p85) of the first tracked unit of the run's last hidden layer."""
    units = tracked_units(run)
    if not units:
        return None
    name = next(iter(units))
    return name, pd.DataFrame(units[name])


def percentile_panels(runs: list[Run], lr_mult: float = 1) -> dict[str, pd.DataFrame]:
    """Fig. 1b,c: per arm, the tracked unit of the lowest-seed finished run."""
    panels = {}
    for placement in ("none", "before"):
        arm = sorted(
            finished(select(runs, bn__placement=placement, optim__lr_mult=lr_mult)),
            key=lambda r: r.summary.get("seed", 0),
        )
        unit = tracked_unit(arm[0]) if arm else None
        if unit:
            panels[f"{ARM_LABELS[placement]}: {unit[0]} (seed {arm[0].summary.get('seed')})"] = unit[1]
    return panels


def figures_fig1(runs, folder, claim) -> list[Path]:
    out = []
    if claim == "C1":
        if fig1_curves(runs):
            out.append(
                plots.convergence(
                    fig1_curves(runs),
                    Path(folder) / "c1_convergence.png",
                    "Fig. 1a: test accuracy at lr x1 (mean, 95% band)",
                )
            )
        grid, styles = lr_mult_curves(runs)
        if len(grid) > 2:
            out.append(
                plots.convergence(grid, Path(folder) / "c1_lr_grid.png", "Each arm over its lr grid", styles=styles)
            )
    elif percentile_panels(runs):
        out.append(
            plots.percentile_bands(
                percentile_panels(runs),
                Path(folder) / "c2_percentiles.png",
                "Fig. 1b,c: input to one sigmoid of the last hidden layer",
            )
        )
    return out


def lr_steps(runs: list[Run]) -> tuple[dict[str, dict[float, int | None]], float | None]:
    """C3: per arm and multiplier, steps for the mean curve to reach the no-BN x1 mean final accuracy."""
    target = final_acc(select(runs, bn__placement="none", optim__lr_mult=1)).mean
    arms = {}
    if target is None:
        return arms, None
    for placement in ("none", "before"):
        arm = select(runs, bn__placement=placement)
        arms[ARM_LABELS[placement]] = {
            float(m): steps_to_target(mean_curve(finished(select(arm, optim__lr_mult=m))), target)
            for m in sorted({cfg(r, "optim.lr_mult") for r in arm})
            if finished(select(arm, optim__lr_mult=m))
        }
    return arms, target


def figures_c3(runs, folder) -> list[Path]:
    arms, target = lr_steps(runs)
    if not arms:
        return []
    total = max((planned_steps(r) or 0) for r in runs)
    out = [
        plots.steps_by_lr_mult(
            arms, Path(folder) / "c3_steps_by_lr.png", f"Steps to reach no-BN x1's final accuracy ({target:.3f})", total
        )
    ]
    grid, styles = lr_mult_curves(runs)
    out.append(
        plots.convergence(grid, Path(folder) / "c3_curves.png", "Test accuracy per lr multiplier", styles=styles)
    )
    return out


def c4_arms(runs: list[Run]) -> dict[str, list[Run]]:
    """The poor-init arms, the eps test (BN on the logits with a tiny eps) and the notes-width CNN at init."""
    main = poor_init_main(runs)
    return {
        "no BN": select(main, bn__placement="none"),
        "BN everywhere": select(main, bn__placement="before", bn__layers="all"),
        "BN on the logits only": select(main, bn__placement="before", bn__layers="last"),
        "BN on the logits, eps 1e-38": [r for r in runs if tiny_eps(r)],
        "no BN, the notes' width (at init)": [r for r in runs if r.path.parent.name == "poor_init_width"],
    }


def figures_c4(runs, folder) -> list[Path]:
    arms = c4_arms(runs)
    out = []
    scales = {label: scale_by_depth(finished(arm)) for label, arm in arms.items()}
    scales = {k: v for k, v in scales.items() if v}
    if scales:
        out.append(
            plots.scale_by_depth(
                scales, Path(folder) / "c4_scale_by_depth.png", "Pre-activation scale at initialization"
            )
        )
    accs = {label: final_acc(arm) for label, arm in arms.items() if finished(arm) and "at init" not in label}
    if accs:
        out.append(
            plots.point_chart(
                {"final test accuracy": accs},
                Path(folder) / "c4_accuracy.png",
                "final test accuracy",
                "Poor initialization, U(-0.001, 0.001)",
                reference=1 / (cfg(runs[0], "dataset.classes") or 10),
                reference_label="chance",
            )
        )
    return out


def figures_c5(runs, folder) -> list[Path]:
    arms = {ARM_LABELS[p]: accuracy_by_scale(select(runs, bn__placement=p)) for p in ("none", "before")}
    arms = {k: v for k, v in arms.items() if v}
    if not arms:
        return []
    return [
        plots.accuracy_by_scale(
            arms, Path(folder) / "c5_accuracy_by_scale.png", "Final accuracy vs initial weight scale"
        )
    ]


def figures_c6(runs, folder) -> list[Path]:
    activations = sorted({cfg(r, "model.activation") for r in runs if cfg(r, "model.activation")})
    groups = {
        ARM_LABELS[p]: {a: final_acc(select(runs, bn__placement=p, model__activation=a)) for a in activations}
        for p in ("none", "before", "after")
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    out = [
        plots.point_chart(
            groups, Path(folder) / "c6_placement.png", "final test accuracy", "BN before vs after the nonlinearity"
        )
    ]
    kurt = {
        ARM_LABELS[p]: {
            a: bn_input_shape(finished(select(runs, bn__placement=p, model__activation=a)))["kurt"] for a in activations
        }
        for p in ("before", "after")
    }
    if any(e.mean is not None for g in kurt.values() for e in g.values()):
        out.append(
            plots.point_chart(
                kurt,
                Path(folder) / "c6_bn_input_kurtosis.png",
                "excess kurtosis of BN's input",
                "How Gaussian BN's input is (0 = Gaussian)",
                reference=0.0,
            )
        )
    return out


def figures_c7(runs, folder) -> list[Path]:
    ordered = sorted(
        (r for r in finished(runs) if probe_results([r], "test_time_stats")), key=lambda r: r.summary.get("seed", 0)
    )
    if not ordered:
        return []
    result = ordered[0].summary["test_time_stats"]
    modes = {
        mode: {int(size): acc for size, acc in result["accuracy"][mode].items()} for mode in sorted(result["accuracy"])
    }
    return [
        plots.accuracy_by_batch_size(
            modes,
            Path(folder) / "c7_batch_size.png",
            f"Test accuracy by test batch size (seed {ordered[0].summary.get('seed')})",
        )
    ]


def figures_c8(runs, folder) -> list[Path]:
    effects = [r["bias_before_bn"] for r in probe_results(finished(runs), "scale_invariance") if "bias_before_bn" in r]
    if not effects:
        return []
    errors = {
        "bias grad / weight grad": max(e["grad_norm_ratio"] for e in effects),
        "output change": max(e["output_change"] for e in effects),
    }
    return [
        plots.errors_vs_tolerance(
            errors, FLOAT_TOL, Path(folder) / "c8_bias.png", "A bias right before BN (worst over runs)"
        )
    ]


def figures_c9(runs, folder) -> list[Path]:
    """Final accuracy and train-test gap with dropout 0 and 0.5, per arm, in each regime (Fig. 1; overfitting)."""
    groups, gaps = {}, {}
    regimes = {"Fig. 1": [r for r in runs if r.path.parent.name != "dropout_overfit"],
               "overfitting": [r for r in runs if r.path.parent.name == "dropout_overfit"]}
    for regime, members in regimes.items():
        for p in ("none", "before"):
            arm = select(members, bn__placement=p)
            label = f"{ARM_LABELS[p]}, {regime}" if regimes["overfitting"] else ARM_LABELS[p]
            accs = {f"dropout {d:g}": final_acc(select(arm, model__dropout=d)) for d in (0.0, 0.5)}
            if any(e.mean is not None for e in accs.values()):
                groups[label] = accs
                gaps[label] = {f"dropout {d:g}": train_test_gap(select(arm, model__dropout=d)) for d in (0.0, 0.5)}
    if not groups:
        return []
    return [
        plots.point_chart(
            groups, Path(folder) / "c9_dropout.png", "final test accuracy", "Dropout with and without BN"
        ),
        plots.point_chart(gaps, Path(folder) / "c9_gap.png", "train - test accuracy", "Train-test gap", reference=0.0),
    ]


def figures_c10(runs, folder) -> list[Path]:
    arms = {ARM_LABELS[p]: finished(select(runs, bn__placement=p)) for p in ("none", "before")}
    sat = {"mean saturated fraction": {k: mean_interval(map(saturation, v)) for k, v in arms.items()}}
    grad = {"|log10 grad first/last|": {k: mean_interval(map(gradient_imbalance, v)) for k, v in arms.items()}}
    out = []
    if any(e.mean is not None for e in sat["mean saturated fraction"].values()):
        out.append(
            plots.point_chart(
                sat,
                Path(folder) / "c10_saturation.png",
                "saturated fraction",
                "Sigmoid saturation (mean over layers and evals)",
            )
        )
    if any(e.mean is not None for e in grad["|log10 grad first/last|"].values()):
        out.append(
            plots.point_chart(
                grad,
                Path(folder) / "c10_gradients.png",
                "|log10(first / last)|",
                "Gradient-norm imbalance, first vs last layer (0 = equal)",
                reference=0.0,
            )
        )
    return out


def figures_c11(runs, folder) -> list[Path]:
    results = probe_results(finished(runs), "insert_pretrained")
    if not results:
        return []
    stages = {
        "before": [r["test_acc_before"] for r in results],
        "after insertion": [r["test_acc_after_insertion"] for r in results],
        "after fine-tune": [r["finetuned"].get("final_test_acc") for r in results],
        "control (no BN), fine-tuned": [(r.get("control_without_bn") or {}).get("final_test_acc") for r in results],
    }
    points = {stage: mean_interval(values) for stage, values in stages.items()}
    return [
        plots.point_chart(
            {"test accuracy": points},
            Path(folder) / "c11_insertion.png",
            "test accuracy",
            "Inserting BN into a trained network",
        )
    ]


def figures_c12(runs, folder) -> list[Path]:
    results = probe_results(finished(runs), "bn_math")
    if not results:
        return []
    errors = {}
    for against in ("vs_torch", "vs_autograd"):
        for key in sorted({k for r in results for k in r[against]}):
            errors[f"{key} {against.replace('_', ' ')}"] = max(
                r[against][key] for r in results if r[against].get(key) is not None
            )
    return [
        plots.errors_vs_tolerance(
            errors,
            min(r["tolerance"] for r in results),
            Path(folder) / "c12_bn_math.png",
            "From-scratch BN against torch and autograd (worst over runs)",
        )
    ]


def figures_c13(runs, folder) -> list[Path]:
    mults = sorted({cfg(r, "optim.lr_mult") or 1 for r in runs})
    groups = {
        ARM_LABELS[p]: {f"lr x{m:g}": final_acc(select(runs, bn__placement=p, optim__lr_mult=m)) for m in mults}
        for p in ("none", "before")
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    level = 1 / (cfg(runs[0], "dataset.classes") or 10)
    path = Path(folder) / "c13_depth.png"
    title = "Deep sigmoid MLP: final accuracy per lr multiplier"
    return [plots.point_chart(groups, path, "final test accuracy", title, reference=level, reference_label="chance")]


# --- C14-C18: later work ---------------------------------------------------------------------

NOISY_ARMS = {"none": "no BN", "batch": "BN", "noisy": "noisy BN"}


def figures_c14(runs, folder) -> list[Path]:
    arms = {label: finished(arm_runs(runs, arm)) for arm, label in NOISY_ARMS.items()}
    out = []
    curves_by_arm = {label: arm_curve(arm) for label, arm in arms.items() if arm}
    if curves_by_arm:
        out.append(plots.convergence(curves_by_arm, Path(folder) / "c14_convergence.png",
                                     "Noisy BN: test accuracy (mean, 95% band)"))
    panels = {}
    for label in ("BN", "noisy BN"):
        first = sorted(arms[label], key=lambda r: r.summary.get("seed", 0))[:1]
        unit = tracked_unit(first[0]) if first else None
        if unit:
            panels[f"{label}: {unit[0]} (seed {first[0].summary.get('seed')})"] = unit[1]
    if panels:
        out.append(plots.percentile_bands(panels, Path(folder) / "c14_percentiles.png",
                                          "Input to one sigmoid of the last hidden layer, noise included"))
    return out


def figures_c15(runs, folder) -> list[Path]:
    arms = {ARM_LABELS[p]: finished(arm_runs(runs, arm)) for p, arm in (("none", "none"), ("before", "batch"))}
    layers = sorted({layer for arm in arms.values() for r in arm for layer in ics_layers(r)}, key=layer_order)
    if not layers:
        return []
    out = []
    for key, ylabel, name in (("l2", "||G - G'||", "c15_ics_l2.png"), ("cos", "cos(G, G')", "c15_ics_cos.png")):
        groups = {
            label: {layer: mean_interval(probed_mean(r, f"ics/{layer}/{key}") for r in arm) for layer in layers}
            for label, arm in arms.items()
        }
        title = f"Internal covariate shift (Santurkar Def. 2.1): {ylabel} per layer"
        out.append(plots.point_chart(groups, Path(folder) / name, ylabel, title,
                                     reference=1.0 if key == "cos" else None))
    return out


def figures_c16(runs, folder) -> list[Path]:
    arms = {ARM_LABELS[p]: finished(arm_runs(runs, arm)) for p, arm in (("none", "none"), ("before", "batch"))}
    panels = {
        name: {label: arm_curve(arm, key) for label, arm in arms.items() if arm}
        for name, key in LANDSCAPE.items()
    }
    panels = {name: frames for name, frames in panels.items() if any(len(f) for f in frames.values())}
    if not panels:
        return []
    return [plots.curve_panels(panels, Path(folder) / "c16_landscape.png",
                               "Along the gradient, steps of lr x [0.5, 4] (mean, 95% band)", log_y=True)]


def figures_c17(runs, folder) -> list[Path]:
    arms = accuracy_by_batch(runs)
    if not arms:
        return []
    return [plots.accuracy_by_scale(arms, Path(folder) / "c17_batch_size.png",
                                    "Final accuracy vs training batch size, fixed epochs", xlabel="batch size")]


def figures_c18(runs, folder) -> list[Path]:
    models = sorted({model_label(r) for r in finished(runs)})
    groups = {
        label: {m: final_acc([r for r in select(runs, train__trainable=mode) if model_label(r) == m]) for m in models}
        for mode, label in (("all", "full training"), ("bn_only", "only BN's gamma and beta"))
    }
    if not any(e.mean is not None for g in groups.values() for e in g.values()):
        return []
    level = 1 / (cfg(runs[0], "dataset.classes") or 10)
    return [plots.point_chart(groups, Path(folder) / "c18_bn_only.png", "final test accuracy",
                              "Training only BN's parameters", reference=level, reference_label="chance")]


FIGURES: dict[str, Callable[[list[Run], Path], list[Path]]] = {
    "C1": lambda runs, folder: figures_fig1(runs, folder, "C1"),
    "C2": lambda runs, folder: figures_fig1(runs, folder, "C2"),
    "C3": figures_c3,
    "C4": figures_c4,
    "C5": figures_c5,
    "C6": figures_c6,
    "C7": figures_c7,
    "C8": figures_c8,
    "C9": figures_c9,
    "C10": figures_c10,
    "C11": figures_c11,
    "C12": figures_c12,
    "C13": figures_c13,
    "C14": figures_c14,
    "C15": figures_c15,
    "C16": figures_c16,
    "C17": figures_c17,
    "C18": figures_c18,
}
