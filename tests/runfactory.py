"""Run folders written by hand (metrics.jsonl, summary.json, .hydra/config.yaml) for the analysis tests:
any curve or probe result, in milliseconds, without training."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import yaml


def write_run(
    folder: Path,
    *,
    seed: int = 0,
    bn: str = "before",
    layers: str = "all",
    lr_mult: float = 1.0,
    activation: str = "sigmoid",
    dropout: float = 0.0,
    scale: float = 1.0,
    dataset: str = "digits",
    experiment: str = "fig1_mnist",
    steps: int = 1000,
    eval_every: int = 100,
    acc: Callable[[int], float] = lambda step: 0.9,
    loss: Callable[[int], float] = lambda step: 1.0,
    extra: Callable[[int], dict] = lambda step: {},
    diverged_at: int | None = None,
    probes: dict | None = None,
    git: str = "abc123",
    extra_config: dict | None = None,
    choices: dict | None = None,
) -> Path:
    """One finished run. acc(step) gives test/acc (train/acc is 0.02 above), loss(step) test/loss (the summary's
    final_test_loss is its last value); extra(step) adds metric keys;
    diverged_at stops it there with status diverged; probes go into summary.json under their names;
    extra_config adds or replaces config groups' keys ({"bn": {"norm": "group"}}); choices are the config
    groups' options as Hydra records them (default: read off bn and model as the configs/ options set them)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "seed": seed,
        "threads": 1,
        "dataset": {"name": dataset, "classes": 10},
        "bn": {"placement": bn, "layers": layers},
        "optim": {"lr": 0.5, "lr_mult": lr_mult},
        "model": {"activation": activation, "dropout": dropout},
        "init": {"scale": scale},
        "train": {"steps": steps, "eval_every": eval_every},
    }
    for group, values in (extra_config or {}).items():
        config[group] = {**config.get(group, {}), **values}
    (folder / ".hydra").mkdir(exist_ok=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    choices = {"bn": bn_choice(config["bn"]), "model": model_choice(config["model"]), **(choices or {})}
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    last = steps if diverged_at is None else diverged_at
    lines = []
    for step in range(0, last + 1, eval_every):
        if diverged_at is not None and step == diverged_at:
            lines.append({"step": step, "train/loss": None})
            break
        lines.append(
            {
                "step": step,
                "test/acc": acc(step),
                "train/acc": min(acc(step) + 0.02, 1.0),
                "test/loss": loss(step),
                **extra(step),
            }
        )
        if step + eval_every <= last:
            lines.append({"step": step + eval_every // 2, "train/loss": 0.5})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    status = "completed" if diverged_at is None else "diverged"
    summary = {
        "status": status,
        "seed": seed,
        "git": git,
        "experiment": experiment,
        "steps": last,
        "final_test_acc": acc(steps) if status == "completed" else None,
        "final_test_loss": loss(steps) if status == "completed" else None,
        "wall_s": 1.0,
        **(probes or {}),
    }
    (folder / "summary.json").write_text(json.dumps(summary, sort_keys=True))
    return folder


def bn_choice(bn: dict) -> str:
    """The bn=... option whose settings these are (configs/bn/*.yaml)."""
    if bn.get("placement") == "none":
        return "none"
    if bn.get("layers") == "last":
        return "last"
    if (bn.get("noise") or {}).get("enabled"):
        return "noisy"
    if bn.get("norm") in ("group", "layer"):
        return bn["norm"]
    return bn.get("placement", "before")


def model_choice(model: dict) -> str:
    if model.get("name") == "cnn":
        return "cnn_small"
    return "mlp_deep" if len(model.get("hidden") or [0] * 3) > 3 else "mlp"


def saturating(final: float, speed: float, start: float = 0.1, offset: float = 0.0) -> Callable[[int], float]:
    """start -> final, reaching 63% of the way after 1/speed steps; offset shifts it (a seed's noise)."""
    import math

    return lambda step: start + (final - start) * (1 - math.exp(-speed * step)) + (offset if step else 0.0)


# --- one experiment's runs, shaped so that its claim holds (defaults) or not (arguments) ---

SEEDS = (0, 1, 2)


def step_curve(low: float, high: float, at: int, jitter: float = 0.0):
    """low before `at`, high from `at` on (plus a seed's jitter)."""
    return lambda step: (high if step >= at else low) + jitter


def fig1_runs(root, bn_final=0.97, base_final=0.90, seeds=SEEDS, drift_bn=0.0, drift_base=2.0):
    for seed in seeds:
        j = 0.002 * seed
        for placement, final, speed, drift in (
            ("before", bn_final, 0.02, drift_bn),
            ("none", base_final, 0.004, drift_base),
        ):
            for mult in (1.0, 5.0):

                def extra(step, drift=drift, j=j):
                    shift = drift * step / 1000 + j
                    return {
                        f"act/fc3/u{k}/p{q}": shift + offset
                        for k in (0, 7)
                        for q, offset in ((15, -1.0), (50, 0.0), (85, 1.0))
                    }

                acc = saturating(final - (0.01 if mult == 5 else 0.0), speed, offset=j)
                write_run(
                    root / f"{placement}_{mult}_{seed}", seed=seed, bn=placement, lr_mult=mult, acc=acc, extra=extra
                )


def lr_runs(root, bn_x30_diverges=False, base_x30_final=None, bn_x1_final=0.94, base_x5=(0.91, 500), mults=(1, 5, 30)):
    """C3's six arms (those of `mults`): no BN x1 reaches 0.9 at step 1000, no BN x5 base_x5 = (final, at step),
    BN x1 bn_x1_final at step 400, BN x5 0.95 at 100, BN x30 0.93 at 200 (each plus 0.001 x seed): by default the
    best multipliers are x5 for both. base_x30_final: None makes no-BN x30 diverge (at step 200), else its final
    accuracy (seed jitter 0.01 x seed). x1 and x5 are fig1_mnist's runs, x30 lr_multiplier's."""
    for seed in SEEDS:
        j = 0.001 * seed
        arms = {
            ("none", 1): step_curve(0.5, 0.9, 1000, j),
            ("none", 5): step_curve(0.5, base_x5[0], base_x5[1], j),
            ("before", 1): step_curve(0.5, bn_x1_final, 400, j),
            ("before", 5): step_curve(0.5, 0.95, 100, j),
            ("before", 30): step_curve(0.5, 0.93, 200, j),
        }
        for (placement, mult), acc in arms.items():
            if mult not in mults:
                continue
            diverge = 300 if (placement, mult) == ("before", 30) and bn_x30_diverges else None
            write_run(root / f"{placement}{mult}_{seed}", seed=seed, bn=placement, lr_mult=mult, acc=acc,
                      diverged_at=diverge, experiment="lr_multiplier" if mult == 30 else "fig1_mnist")
        if 30 not in mults:
            continue
        if base_x30_final is not None:
            x30 = step_curve(0.5, base_x30_final, 300, 10 * j)
            write_run(root / f"none30_{seed}", seed=seed, bn="none", lr_mult=30, acc=x30, experiment="lr_multiplier")
        else:
            write_run(root / f"none30_{seed}", seed=seed, bn="none", lr_mult=30, diverged_at=200,
                      experiment="lr_multiplier")


LN10 = math.log(10)  # the test loss and prediction entropy of a uniform output over 10 classes


def poor_init_runs(root, base_final=0.1, shrink=100.0, last_final=0.6, tiny_eps_final=None, long_final=0.6,
                   base_loss=LN10, base_entropy=LN10, base_spread=0.001):
    """C4's arms (poor_init): no BN ends at base_final, with a final test loss of base_loss + base_spread x seed
    and a last prediction entropy of base_entropy - base_spread x seed (predictions probe), its scale at init
    shrinking by `shrink` per layer; BN everywhere ends at 0.8; BN last only at last_final. With long_final,
    also BN last only for 4x the steps (poor_init_long) ending there; with tiny_eps_final, also BN last only with
    eps = 1e-38 (poor_init_eps), ending there."""
    default_eps = {"bn": {"eps": 1e-5}}
    for seed in SEEDS:
        j = 0.001 * seed
        stds = {f"act/conv{k}/std": 0.5 / shrink ** (k - 1) for k in range(1, 7)}
        write_run(
            root / f"none{seed}",
            seed=seed,
            bn="none",
            experiment="poor_init",
            acc=step_curve(0.1, base_final, 100, j),
            loss=lambda step, s=seed: (base_loss if step else LN10) + base_spread * s,
            extra=lambda step, stds=stds, s=seed: {**(stds if step == 0 else {}),
                                                    **predictions(base_entropy - base_spread * s, 1.0)},
            extra_config=default_eps,
        )
        write_run(root / f"all{seed}", seed=seed, bn="before", layers="all", experiment="poor_init",
                  acc=step_curve(0.1, 0.8, 100, j), loss=trained_loss(0.6, j),
                  extra=lambda step, j=j: predictions(0.5 + j, 0.12), extra_config=default_eps)
        write_run(root / f"last{seed}", seed=seed, bn="before", layers="last", experiment="poor_init",
                  acc=step_curve(0.1, last_final, 100, j), loss=trained_loss(1.2 if last_final > 0.2 else LN10, j),
                  extra=lambda step, j=j: predictions((1.0 if last_final > 0.2 else LN10) - j, 0.2),
                  extra_config=default_eps)
        if tiny_eps_final is not None:
            write_run(root / f"eps{seed}", seed=seed, bn="before", layers="last", experiment="poor_init_eps",
                      acc=step_curve(0.1, tiny_eps_final, 100, 10 * j), extra_config={"bn": {"eps": 1e-38}})
    if long_final is not None:
        poor_init_long_runs(root, long_final)


def poor_init_long_runs(root, final=0.6, spread=0.01):
    """C4 (b)'s arm: BN last only for 4x the steps (poor_init_long), ending at final + spread x seed."""
    for seed in SEEDS:
        j = 0.001 * seed
        write_run(root / f"long{seed}", seed=seed, bn="before", layers="last", experiment="poor_init_long",
                  steps=4000, eval_every=400, acc=step_curve(0.1, final, 400, spread * seed),
                  loss=trained_loss(1.0 if final > 0.2 else LN10, j),
                  extra=lambda step, j=j: predictions((0.9 if final > 0.2 else LN10) - j, 0.15),
                  extra_config={"bn": {"eps": 1e-5}})


def predictions(entropy: float, majority_share: float) -> dict:
    """The predictions probe's keys at an evaluation (one class predicted when the majority share is 1)."""
    classes = 1 if majority_share >= 1 else 10
    return {"pred/entropy": entropy, "pred/majority_share": majority_share, "pred/classes": classes}


def trained_loss(final: float, jitter: float = 0.0) -> Callable[[int], float]:
    """A test loss from ln 10 at step 0 to `final` (plus jitter) after."""
    return lambda step: (final + jitter) if step else LN10


def identities(exact_grad_weight_error=1e-15):
    """The probe's shape: errors with BN's eps (about what eps explains) and, under `exact`, with eps = 0."""
    return {
        a: {
            "forward": 0.0001,
            "grad_input": 0.00012,
            "grad_weight": 0.00015,
            "explained_by_eps": 0.0001,
            "weight_gradient_ratio_times_a": 1.0001,
            "exact": {
                "forward": 8e-16,
                "grad_input": 4e-16,
                "grad_weight": exact_grad_weight_error,
                "weight_gradient_ratio_times_a": 1.0 + 1e-15,
            },
        }
        for a in ("0.01", "0.1", "10.0", "100.0")
    }


def scale_runs(root, exact_grad_weight_error=1e-15, bias_effect=1e-15, bn_spread=0.01, layers_with_bias=0):
    scales = (1e-4, 1e-2, 1.0)
    for seed in SEEDS:
        for i, scale in enumerate(scales):
            probe = {
                "scale_invariance": {
                    "layers": ["fc1"],
                    "identities": identities(exact_grad_weight_error),
                    "bias_before_bn": {
                        "grad_norm_ratio": bias_effect,
                        "output_change": bias_effect,
                        "layers_with_bias": layers_with_bias,
                    },
                }
            }
            write_run(
                root / f"bn{scale}_{seed}",
                seed=seed,
                bn="before",
                scale=scale,
                acc=step_curve(0.1, 0.9 + bn_spread * i / 2, 100, 0.001 * seed),
                probes=probe,
            )
            write_run(
                root / f"none{scale}_{seed}",
                seed=seed,
                bn="none",
                scale=scale,
                acc=step_curve(0.1, 0.1 + 0.4 * i, 100, 0.001 * seed),
                probes={"scale_invariance": {"skipped": "no BN"}},
            )


PLACEMENT_SHAPES = {  # (activation, placement) -> BN's input (|skew|, |excess kurtosis|) at lr_mult 1
    ("sigmoid", "before"): (0.1, 0.5),
    ("sigmoid", "after"): (0.8, 2.0),
    ("relu", "before"): (0.1, 0.5),
    ("relu", "after"): (2.0, 6.0),  # a ReLU's output: one-sided and sparse
}


def placement_runs(root, before=0.95, after=0.90, shapes=None, shape_spread=0.01):
    """C6: BN before and after the nonlinearity at lr_mult 0.2, 1 and 5, no BN at 1, for sigmoid and ReLU.
    before / after: final accuracy at lr_mult 1 (a number; x0.2 ends 0.05 lower, x5 0.02 lower) or per
    lr_mult ({0.2: .., 1: .., 5: ..}). shapes overrides PLACEMENT_SHAPES: BN's input |skew| and |excess
    kurtosis| at the last evaluation at lr_mult 1 (plus shape_spread x seed), fc1's skew positive and fc2's
    negative; earlier evaluations, and the other lr_mults, show the other placement's shape (so that only
    the last evaluation at lr_mult 1 gives these numbers)."""
    shapes = {**PLACEMENT_SHAPES, **(shapes or {})}
    other = {"before": "after", "after": "before"}

    def finals(value):
        return value if isinstance(value, dict) else {0.2: value - 0.05, 1: value, 5: value - 0.02}

    for seed in SEEDS:
        j = 0.001 * seed
        for activation in ("sigmoid", "relu"):
            write_run(root / f"{activation}none{seed}", seed=seed, bn="none", activation=activation,
                      experiment="placement", acc=step_curve(0.1, 0.85, 100, j))
            for placement, by_mult in (("before", finals(before)), ("after", finals(after))):
                for mult, final in by_mult.items():

                    def extra(step, placement=placement, mult=mult, seed=seed, activation=activation):
                        own = step == 1000 and mult == 1
                        skew, kurt = shapes[(activation, placement if own else other[placement])]
                        skew, kurt = skew + shape_spread * seed, kurt + shape_spread * seed
                        return {"bnin/fc1/skew": skew, "bnin/fc2/skew": -skew, "bnin/fc1/kurt": kurt,
                                "bnin/fc2/kurt": kurt}

                    write_run(root / f"{activation}{placement}{mult:g}_{seed}", seed=seed, bn=placement,
                              activation=activation, lr_mult=mult, experiment="placement",
                              acc=step_curve(0.1, final, 100, j), extra=extra)


def dropout_runs(root, bn_gain=0.0, base_gain=0.05):
    for seed in SEEDS:
        j = 0.002 * seed
        for placement, final, gain in (("none", 0.85, base_gain), ("before", 0.93, bn_gain)):
            write_run(
                root / f"{placement}0_{seed}", seed=seed, bn=placement, dropout=0.0, acc=step_curve(0.1, final, 100, j)
            )
            write_run(
                root / f"{placement}5_{seed}",
                seed=seed,
                bn=placement,
                dropout=0.5,
                acc=step_curve(0.1, final + gain + (0.001 if seed == 1 and placement == "none" else 0), 100, j),
            )


def saturation_runs(root, bn_sat=0.05, base_sat=0.6):
    for seed in SEEDS:
        j = 0.01 * seed
        for placement, sat, ratio in (("before", bn_sat, 0.8), ("none", base_sat, 0.01)):

            def extra(step, sat=sat, ratio=ratio, j=j):
                return {"sat/fc1": sat + j, "sat/fc2": sat, "grad/first_over_last": ratio}

            write_run(root / f"{placement}{seed}", seed=seed, bn=placement, extra=extra)


def time_stats_result(batch_small=0.5):
    sizes = ["1", "2", "8", "1000"]
    return {
        "batch_sizes": [1, 2, 8, 1000],
        "placements": 5,
        "accuracy": {
            "ema": {s: 0.93 for s in sizes},
            "population": {s: 0.935 for s in sizes},
            "batch": {"1": None, "2": batch_small, "8": 0.85, "1000": 0.94},
        },
        "max_prediction_change": {
            "ema": {s: 0.0 for s in sizes},
            "population": {s: 1e-7 for s in sizes},
            "batch": {"1": None, "2": 0.99, "8": 0.9, "1000": 1e-7},
        },
        "undefined": {"batch/1": "Expected more than 1 value per channel"},
        "ema_vs_population": {"accuracy_difference": 0.005, "prediction_agreement": 0.98},
    }


def insert_result(difference=4e-6, finetuned=0.97):
    return {
        "test_acc_before": 0.96,
        "max_output_difference": difference,
        "test_acc_after_insertion": 0.96,
        "finetune_steps": 100,
        "finetune_lr_mult": 1.0,
        "finetuned": {"status": "completed", "final_test_acc": finetuned, "curve": []},
        "control_without_bn": {"status": "completed", "final_test_acc": 0.965, "curve": []},
    }


def bn_math_result(error=1e-7, gradcheck=True):
    return {
        "layers": ["1d", "2d"],
        "tolerance": 1e-5,
        "vs_torch": {
            k: error for k in ("output", "grad_input", "grad_weight", "grad_bias", "running_mean", "running_var")
        },
        "vs_autograd": {k: error for k in ("grad_input", "grad_weight", "grad_bias")},
        "gradcheck": {"1d": gradcheck, "2d": True},
    }


def sigmoid_depth_runs(root, base_final=0.1):
    for seed in SEEDS:
        write_run(root / f"bn{seed}", seed=seed, bn="before", acc=step_curve(0.1, 0.9, 100, 0.001 * seed))
        write_run(root / f"none{seed}", seed=seed, bn="none", acc=step_curve(0.1, base_final, 100, 0.001 * seed))


def probe_runs(root, probe: str, result: dict, bn: str = "before"):
    for seed in SEEDS:
        write_run(root / str(seed), seed=seed, bn=bn, probes={probe: result})


def noisy_runs(root, noisy_final=0.95, base_final=0.85, noisy_spread=0.0):
    """C14: BN (0.96) and noisy BN (its tracked unit's percentiles moving) against no BN, each plus 0.002 x seed;
    noisy BN's seeds also spread by noisy_spread x (seed - 1) (-s, 0, +s: its mean stays noisy_final)."""
    for seed in SEEDS:
        j = 0.002 * seed
        for name, bn, noise, final, drift in (
            ("bn", "before", False, 0.96, 0.0),
            ("noisy", "before", True, noisy_final + noisy_spread * (seed - 1), 1.0),
            ("none", "none", False, base_final, 2.0),
        ):

            def extra(step, drift=drift):
                wobble = drift * (step % 200) / 200
                return {"act/fc3/u0/p15": -1 + wobble, "act/fc3/u0/p50": wobble, "act/fc3/u0/p85": 1 + wobble}

            write_run(root / f"{name}{seed}", seed=seed, bn=bn, experiment="noisy_bn", acc=step_curve(0.1, final + j, 100),
                      extra=extra, extra_config={"bn": {"noise": {"enabled": noise}}})


def ics_runs(root, bn_l2=2.0, bn_cos=0.5, base_l2=1.0, base_cos=0.9):
    """C15: ics/<layer>/l2|cos and their means per evaluation (none at step 0)."""
    for seed in SEEDS:
        j = 0.01 * seed
        for bn, l2, cos in (("before", bn_l2, bn_cos), ("none", base_l2, base_cos)):

            def extra(step, l2=l2 + j, cos=cos - j):
                if step == 0:
                    return {}
                layers = {f"ics/{layer}/{k}": v for layer in ("fc2", "fc3", "out") for k, v in (("l2", l2), ("cos", cos))}
                return {**layers, "ics/l2": l2, "ics/cos": cos}

            write_run(root / f"{bn}{seed}", seed=seed, bn=bn, experiment="ics", extra=extra)


def landscape_runs(root, bn_scale=0.1, spread=0.01, bn_grad=0.5):
    """C16: the BN arm's three landscape measures are bn_scale times the unnormalized arm's, and its gradient
    norm bn_grad times; every measure of a seed's run is (its arm's scale + spread x seed) times a constant."""
    for seed in SEEDS:
        j = spread * seed
        for bn, scale, grad in (("before", bn_scale, bn_grad), ("none", 1.0, 1.0)):

            def extra(step, s=scale + j, g=grad + j):
                return {"landscape/loss_range": 0.5 * s, "landscape/grad_change": 2.0 * s, "landscape/beta": 10.0 * s,
                        "landscape/grad_norm": 3.0 * g}

            write_run(root / f"{bn}{seed}", seed=seed, bn=bn, experiment="landscape", extra=extra)


def batch_size_runs(root, bn_small=0.70, sizes=(2, 16, 32, 256), bn_at=None, group_at=None, bn_small_spread=0.0):
    """C17: at every batch size each norm ends at 0.90 and no norm at 0.85, except BN at the smallest size,
    bn_small (its seeds spread by bn_small_spread x (seed - 1)); bn_at / group_at ({batch: final}) override BN's
    and GroupNorm's finals at other sizes. Every arm of a seed and batch shares that seed's jitter."""
    arms = {"none": ("none", "batch"), "batch": ("before", "batch"), "group": ("before", "group"), "layer": ("before", "layer")}
    for seed in SEEDS:
        j = 0.002 * seed
        for arm, (placement, norm) in arms.items():
            for batch in sizes:
                final = 0.85 if arm == "none" else 0.90
                if arm == "batch":
                    final = {sizes[0]: bn_small + bn_small_spread * (seed - 1), **(bn_at or {})}.get(batch, final)
                if arm == "group":
                    final = (group_at or {}).get(batch, final)
                write_run(root / f"{arm}{batch}_{seed}", seed=seed, bn=placement, experiment="batch_size",
                          acc=step_curve(0.1, final + j * (1 + (batch == sizes[0])), 100),
                          extra_config={"bn": {"norm": norm}, "train": {"batch_size": batch}})


BN_ONLY_MODELS = {"mlp": {"name": "mlp", "hidden": [100] * 6}, "cnn": {"name": "cnn", "channels": [8, 8, 16, 16]}}


def bn_only_runs(root, bn_only_final=0.7, random_final=0.3):
    """C18: a deep MLP and the CNN, trained fully (0.9), only in BN's parameters (bn_only_final) and in as many
    random weights (random_final: a number, per model {"mlp": .., "cnn": ..}, or None: no such runs); seed jitter
    0.002 x seed, 0.004 x seed for random weights (so BN-only - random varies by seed: -0.002 x seed)."""
    for seed in SEEDS:
        for name, model in BN_ONLY_MODELS.items():
            random = random_final[name] if isinstance(random_final, dict) else random_final
            arms = [("all", 0.9, 0.002), ("bn_only", bn_only_final, 0.002)]
            for trainable, final, jitter in arms + ([("random", random, 0.004)] if random is not None else []):
                write_run(root / f"{name}_{trainable}{seed}", seed=seed, experiment="bn_only",
                          acc=step_curve(0.1, final + jitter * seed, 100),
                          extra_config={"model": model, "train": {"trainable": trainable}})


def fig1_family_runs(root):
    """fig1_mnist as scripts/reproduce.py lays it out: the Fig. 1 runs carry the probes of every claim that
    shares them (activations for C2 and C14, saturation and grad_norms for C10, test_time_stats for C7)."""
    fig1_runs(root)
    for run_dir in sorted(root.iterdir()):
        summary = json.loads((run_dir / "summary.json").read_text())
        placement, mult, seed = run_dir.name.split("_")
        if float(mult) != 1.0:
            continue
        sat, ratio = (0.05, 0.8) if placement == "before" else (0.6, 0.01)
        lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        for line in lines:
            if "test/acc" in line:
                line.update({"sat/fc1": sat + 0.01 * int(seed), "sat/fc2": sat, "grad/first_over_last": ratio})
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        if placement == "before":
            summary["test_time_stats"] = time_stats_result()
            (run_dir / "summary.json").write_text(json.dumps(summary, sort_keys=True))


def santurkar_runs(root):
    """ics as scripts/reproduce.py lays it out: each run carries both the ics and the landscape probe."""
    ics_runs(root)
    for run_dir in sorted(root.iterdir()):
        bn, seed = run_dir.name[:-1], int(run_dir.name[-1])
        scale = (0.1 if bn == "before" else 1.0) + 0.01 * seed
        lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        for line in lines:
            if "test/acc" in line:
                line.update({"landscape/loss_range": 0.5 * scale, "landscape/grad_change": 2.0 * scale,
                             "landscape/beta": 10.0 * scale, "landscape/grad_norm": 3.0 * scale})
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def write_catalogue(root: Path, skip: tuple[str, ...] = ()) -> Path:
    """A results folder with every experiment's runs (each claim holds), as scripts/reproduce.py lays it out:
    claims that share runs (analysis/claims/) read them from one folder; `skip` leaves experiments out."""
    builders = {
        "fig1_mnist": fig1_family_runs,
        "lr_multiplier": lambda r: lr_runs(r, mults=(30,)),
        "poor_init": lambda r: poor_init_runs(r, long_final=None),
        "poor_init_long": poor_init_long_runs,
        "scale_invariance": scale_runs,
        "placement": placement_runs,
        "dropout": dropout_runs,
        "sigmoid_depth": sigmoid_depth_runs,
        "insert_pretrained": lambda r: probe_runs(r, "insert_pretrained", insert_result(), bn="none"),
        "bn_math": lambda r: probe_runs(r, "bn_math", bn_math_result()),
        "noisy_bn": noisy_runs,
        "ics": santurkar_runs,
        "batch_size": batch_size_runs,
        "bn_only": bn_only_runs,
    }
    for experiment, build in builders.items():
        if experiment not in skip:
            build(root / experiment)
    return root
