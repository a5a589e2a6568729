"""BN from first principles, end to end: the hand-written layer in training, Alg. 2 at test time,
and the end-of-run probes of claims C5, C7, C8, C11 and C12 on real (tiny) trained networks."""
from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import compose_config, run_cli
from train import run
from training.record import METRICS_FILE


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]


def test_scratch_bn_trains_like_torchs(tmp_path, config):
    run(config("train.steps=300", "bn.impl=torch"), tmp_path / "torch")
    scratch_run = run(config("train.steps=300", "bn.impl=scratch"), tmp_path / "scratch")
    assert scratch_run["final_test_acc"] > 0.9
    for ours, reference in zip(metrics(tmp_path / "scratch"), metrics(tmp_path / "torch"), strict=True):
        for key, value in reference.items():
            assert ours[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_population_statistics_replace_the_running_averages_at_the_end(tmp_path, config, impl):
    ema = run(config("train.steps=200", f"bn.impl={impl}"), tmp_path / "ema")
    population = run(config("train.steps=200", f"bn.impl={impl}", "bn.eval_stats=population"), tmp_path / "pop")
    ema_lines, population_lines = metrics(tmp_path / "ema"), metrics(tmp_path / "pop")
    assert ema_lines[:-1] == population_lines[:-1]  # identical training
    assert ema_lines[-1]["train/loss"] == population_lines[-1]["train/loss"]
    assert ema_lines[-1]["test/loss"] != population_lines[-1]["test/loss"]  # a different final evaluation
    assert population["final_test_acc"] > 0.9 and abs(population["final_test_acc"] - ema["final_test_acc"]) < 0.05


def test_test_time_statistics_probe(tmp_path, config):
    cfg = config("experiment=fig1_mnist", "probes=[test_time_stats]", "dataset=digits", "train.steps=400", "probes.test_time_stats.placements=3")
    study = run(cfg, tmp_path)["test_time_stats"]
    accuracy, change = study["accuracy"], study["max_prediction_change"]
    assert study["batch_sizes"] == [1, 2, 8, 32, 128, 360]  # 1000 is capped to the 360 test examples
    for mode in ("ema", "population"):
        assert len(set(accuracy[mode].values())) == 1  # the same accuracy at every test batch size
        assert max(change[mode].values()) < 1e-5  # and the same predictions in any batch
    assert accuracy["batch"]["1"] is None and "batch/1" in study["undefined"]  # one value per channel
    assert accuracy["batch"]["2"] < accuracy["ema"]["2"] - 0.2 and change["batch"]["2"] > 0.5
    assert study["ema_vs_population"]["prediction_agreement"] > 0.95


def test_test_time_statistics_with_population_statistics_measure_both_honestly(tmp_path, config):
    """With bn.eval_stats=population the run's own BN statistics are Alg. 2's by the end; the
    probe's `ema` must still be the running averages, as in the same run with eval_stats=ema."""
    base = ["experiment=fig1_mnist", "probes=[test_time_stats]", "dataset=digits", "train.steps=300", "probes.test_time_stats.placements=1"]
    with_ema = run(config(*base), tmp_path / "ema")["test_time_stats"]
    with_population = run(config(*base, "bn.eval_stats=population"), tmp_path / "pop")["test_time_stats"]
    for mode in ("ema", "population"):
        assert with_population["accuracy"][mode] == with_ema["accuracy"][mode], mode
    assert with_population["accuracy"]["ema"] != with_population["accuracy"]["population"]


@pytest.mark.parametrize("probe", ["test_time_stats", "bn_math"])
def test_end_probes_are_skipped_on_networks_they_do_not_apply_to(tmp_path, config, probe):
    summary = run(config("bn=none", "train.steps=20", f"probes=[{probe}]"), tmp_path)
    assert summary[probe] == {"skipped": "the network has no BN layer"}


def test_scale_invariance_probe_on_trained_layers(tmp_path, config):
    study = run(config("experiment=scale_invariance", "dataset=digits", "train.steps=200"), tmp_path)["scale_invariance"]
    assert study["layers"] == ["fc1", "fc2", "fc3"]
    for a, errors in study["identities"].items():
        # BN's eps is the only departure from the identities: the forward error is all eps's doing
        assert errors["forward"] == pytest.approx(errors["explained_by_eps"], rel=1e-6), a
    large = study["identities"]["100.0"]
    assert large["forward"] < 1e-3 and large["grad_input"] < 1e-3 and large["grad_weight"] < 1e-3
    assert large["weight_gradient_ratio_times_a"] == pytest.approx(1.0, abs=1e-3)  # 100x weights, 1/100 gradient
    assert study["bias_before_bn"]["grad_norm_ratio"] < 1e-10 and study["bias_before_bn"]["output_change"] < 1e-10
    assert study["bias_before_bn"]["layers_with_bias"] == 0  # the models drop the bias before BN


def test_scale_invariance_experiment_sweeps_init_scale_with_and_without_bn(tmp_path):
    cfg = compose_config(["experiment=scale_invariance"], with_hydra=True)
    assert cfg.hydra.sweeper.params == {"init.scale": "1e-4,1e-3,1e-2,1e-1,1.0", "bn": "none,before", "seed": "range(5)"}
    assert cfg.init.name == "default" and list(cfg.probes) == ["scale_invariance"]


@pytest.mark.slow  # the default run sweeps scale_invariance in-process (tests/test_experiments.py)
def test_scale_sweep_from_the_command_line(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "experiment=scale_invariance", "dataset=synthetic", "logger=none", "train.steps=30",
            "train.eval_every=30", "seed=0", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert len(summaries) == 10 and all(s["status"] == "completed" for s in summaries)
    skipped = [s for s in summaries if "skipped" in s["scale_invariance"]]
    assert len(skipped) == 5 and all("bn=none" in s["overrides"] for s in skipped)


@pytest.mark.parametrize("model", [["model=mlp"], ["model=cnn", "model.channels=[4,4,8,8]", "model.activation=tanh"]])
def test_insert_pretrained_probe(tmp_path, config, model):
    cfg = config("experiment=insert_pretrained", "dataset=digits", *model, "train.steps=300",
                 "probes.insert_pretrained.finetune_steps=100")
    study = run(cfg, tmp_path)["insert_pretrained"]
    assert study["max_output_difference"] < 1e-4
    assert study["test_acc_after_insertion"] == pytest.approx(study["test_acc_before"], abs=1 / 360)
    for arm in ("finetuned", "control_without_bn"):
        assert study[arm]["status"] == "completed" and study[arm]["curve"][-1]["step"] == 100
    assert study["finetuned"]["final_test_acc"] > study["test_acc_before"] - 0.05


def test_bn_math_probe_finds_the_hand_written_layer_right(tmp_path, config):
    result = run(config("experiment=bn_math", "dataset=digits", "train.steps=100"), tmp_path)["bn_math"]
    assert result["layers"] == ["bn1", "bn2", "bn3"] and result["gradcheck"] == {"1d": True, "2d": True}
    for group in ("vs_torch", "vs_autograd"):
        assert 0 <= max(result[group].values()) < result["tolerance"], group


def test_bn_math_probe_notices_a_wrong_backward(monkeypatch):
    """The probe can fail: a backward with dbeta off by 1% is caught by all three checks."""
    import models.batchnorm as scratch
    from training.probes import bn_math

    right = scratch._backward

    def wrong(ctx, dout):
        grads = list(right(ctx, dout))
        grads[2] = grads[2] * 1.01
        return tuple(grads)

    monkeypatch.setattr(scratch, "_backward", wrong)
    monkeypatch.setattr(scratch, "_backward_once_differentiable", wrong)
    layer = scratch.BatchNorm1d(4)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    errors = bn_math.compare_layer(layer, x, seed=0)
    assert errors["vs_torch"]["grad_bias"] > 1e-3 and errors["vs_autograd"]["grad_bias"] > 1e-3
    assert errors["vs_torch"]["output"] < 1e-12
    assert bn_math.gradchecks() == {"1d": False, "2d": False}
