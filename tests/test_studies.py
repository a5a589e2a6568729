"""BN from first principles, end to end: the hand-written layer in training, Alg. 2 at test time,
and the studies of claims C5, C7, C8 and C11 on real (tiny) trained networks."""
from __future__ import annotations

import json

import pytest

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


def test_test_time_statistics_study(tmp_path, config):
    cfg = config("experiment=test_time_stats", "dataset=digits", "train.steps=400", "study.placements=3")
    study = run(cfg, tmp_path)["study"]
    accuracy, change = study["accuracy"], study["max_prediction_change"]
    assert study["batch_sizes"] == [1, 2, 8, 32, 128, 360]  # 1000 is capped to the 360 test examples
    for mode in ("ema", "population"):
        assert len(set(accuracy[mode].values())) == 1  # the same accuracy at every test batch size
        assert max(change[mode].values()) < 1e-5  # and the same predictions in any batch
    assert accuracy["batch"]["1"] is None and "batch/1" in study["undefined"]  # one value per channel
    assert accuracy["batch"]["2"] < accuracy["ema"]["2"] - 0.2 and change["batch"]["2"] > 0.5
    assert study["ema_vs_population"]["prediction_agreement"] > 0.95


def test_studies_are_skipped_on_networks_they_do_not_apply_to(tmp_path, config):
    study = run(config("bn=none", "train.steps=20", "study={name:test_time_stats}"), tmp_path)["study"]
    assert study == {"name": "test_time_stats", "skipped": "the network has no BN layer"}


def test_scale_invariance_study_on_trained_layers(tmp_path, config):
    study = run(config("experiment=scale_invariance", "dataset=digits", "train.steps=200"), tmp_path)["study"]
    assert study["layers"] == ["fc1", "fc2", "fc3"]
    for a, errors in study["identities"].items():
        # BN's eps is the only departure from the identities: the forward error is all eps's doing
        assert errors["forward"] == pytest.approx(errors["explained_by_eps"], rel=1e-6), a
    large = study["identities"]["100.0"]
    assert large["forward"] < 1e-3 and large["grad_input"] < 1e-3 and large["grad_weight"] < 1e-3
    assert large["weight_gradient_ratio_times_a"] == pytest.approx(1.0, abs=1e-3)  # 100x weights, 1/100 gradient
    assert study["bias_before_bn"]["grad_norm_ratio"] < 1e-10 and study["bias_before_bn"]["output_change"] < 1e-10


def test_scale_invariance_experiment_sweeps_init_scale_with_and_without_bn(tmp_path):
    cfg = compose_config(["experiment=scale_invariance"], with_hydra=True)
    assert cfg.hydra.sweeper.params == {"init.scale": "1e-4,1e-3,1e-2,1e-1,1.0", "bn": "none,before"}
    assert cfg.init.name == "default" and cfg.study.name == "scale_invariance"


def test_scale_sweep_from_the_command_line(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "experiment=scale_invariance", "dataset=synthetic", "logger=none", "train.steps=30",
            "train.eval_every=30", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert len(summaries) == 10 and all(s["status"] == "completed" for s in summaries)
    skipped = [s for s in summaries if "skipped" in s["study"]]
    assert len(skipped) == 5 and all("bn=none" in s["overrides"] for s in skipped)


@pytest.mark.parametrize("model", [["model=mlp"], ["model=cnn", "model.channels=[4,4,8,8]", "model.activation=tanh"]])
def test_insert_pretrained_study(tmp_path, config, model):
    cfg = config("experiment=insert_pretrained", "dataset=digits", *model, "train.steps=300",
                 "study.finetune_steps=100")
    study = run(cfg, tmp_path)["study"]
    assert study["max_output_difference"] < 1e-4
    assert study["test_acc_after_insertion"] == pytest.approx(study["test_acc_before"], abs=1 / 360)
    for arm in ("finetuned", "control_without_bn"):
        assert study[arm]["status"] == "completed" and study[arm]["curve"][-1]["step"] == 100
    assert study["finetuned"]["final_test_acc"] > study["test_acc_before"] - 0.05
