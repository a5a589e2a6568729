"""Real (tiny) trainings end to end: accuracy, the run record, divergence, determinism, wandb."""
from __future__ import annotations

import json
import logging

import pytest

from train import run
from training.progress import Progress
from training.record import METRICS_FILE, SUMMARY_FILE

SUMMARY_KEYS = {"status", "final_test_acc", "best_test_acc", "steps", "wall_s", "steps_per_s", "seed", "git", "device",
                "environment", "trainable_params"}
# What a re-run needs to trace a difference from the record (docs/runs.md)
ENVIRONMENT_KEYS = {"torch", "torch_git", "cuda", "cudnn", "gpu", "cpu", "cpu_count", "threads", "numpy", "python", "os"}


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]


def read_summary(run_dir):
    return json.loads((run_dir / SUMMARY_FILE).read_text())


def test_default_run_reaches_90_percent_on_digits(tmp_path):
    from tests.conftest import compose_config

    cfg = compose_config(["logger=none"])  # exactly a bare `python train.py`, minus wandb; its speed: scripts/bench.py
    summary = run(cfg, tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 2000
    assert summary["final_test_acc"] >= 0.90


def test_record_has_every_documented_key(tmp_path, config):
    summary = run(config("train.steps=200", "train.eval_every=100", "train.log_every=50"), tmp_path, "exp", ["seed=0"])
    assert SUMMARY_KEYS <= set(read_summary(tmp_path)) and summary["experiment"] == "exp"
    lines = read_metrics(tmp_path)
    assert [line["step"] for line in lines] == [0, 50, 100, 150, 200]
    assert {"test/acc", "test/loss", "train/acc"} <= set(lines[0]) and "train/loss" not in lines[0]
    assert {"train/loss", "test/acc", "test/loss", "train/acc"} <= set(lines[2])
    assert set(lines[1]) == {"step", "train/loss"}
    assert summary["final_test_acc"] == lines[-1]["test/acc"]
    assert summary["best_test_acc"] == max(line["test/acc"] for line in lines if "test/acc" in line)
    assert summary["steps_per_s"] > 0 and summary["wall_s"] >= summary["train_s"] > 0
    # every parameter trains: fc1-fc3 (64 -> 100 -> 100 -> 100, no bias before BN), BN's gamma and beta, out
    assert summary["trainable_params"] == 64 * 100 + 2 * 100 * 100 + 3 * 2 * 100 + 100 * 10 + 10

    import platform

    import torch

    environment = read_summary(tmp_path)["environment"]
    assert set(environment) == ENVIRONMENT_KEYS
    assert environment["torch"] == torch.__version__ and environment["python"] == platform.python_version()
    assert environment["threads"] == 1  # threads=1 (FAST)
    # device=auto, the default: the GPU when PyTorch sees one, else the CPU; the GPU's name with it
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (environment["gpu"] is None) == (summary["device"] == "cpu")
    assert isinstance(environment["cpu"], str) and environment["cpu"] and environment["os"]


def test_device_auto_picks_the_gpu_only_when_pytorch_sees_one(monkeypatch):
    """What device=auto chooses, on any machine: PyTorch's answer to torch.cuda.is_available() decides."""
    import torch

    from train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")  # an explicit device is taken as given


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset=synthetic", "model=mlp", "model.hidden=[32]", "bn=after", "model.activation=relu"],
        ["dataset=synthetic", "model=cnn", "model.channels=[4,4,8,8,8,8]", "dataset.shape=[3,8,8]", "bn=before", "optim.momentum=0.9"],
        ["dataset=synthetic", "model=cnn", "model.channels=[4,4]", "bn=none", "init=default", "optim.momentum=0.9"],
    ],
    ids=["mlp-relu-bn-after", "cnn-bn", "cnn-no-bn"],
)
def test_tiny_trainings_learn_synthetic_data(tmp_path, config, overrides):
    summary = run(config(*overrides, "train.steps=150", "train.batch_size=32"), tmp_path)
    assert summary["status"] == "completed" and summary["final_test_acc"] > 0.5  # chance is 0.1


def test_fashion_mnist_subset_trains(tmp_path, config, fashion_root):
    cfg = config(
        "dataset=fashion_mnist", f"dataset.root={fashion_root}", "dataset.train_size=3000", "dataset.test_size=1000",
        "train.steps=300",
    )
    summary = run(cfg, tmp_path)
    assert summary["final_test_acc"] > 0.7


def test_no_bn_sigmoid_net_with_small_init_barely_moves_while_bn_learns(tmp_path, config):
    base = ["train.steps=300", "init.std=0.01", "optim.lr=0.1"]
    with_bn = run(config(*base, "bn=before"), tmp_path / "bn")
    without = run(config(*base, "bn=none"), tmp_path / "none")
    assert with_bn["final_test_acc"] > 0.9 and without["final_test_acc"] < 0.3


def test_divergence_is_recorded_not_raised(tmp_path, config):
    summary = run(config("bn=none", "init=default", "model.activation=relu", "optim.lr=1e4", "train.steps=300"), tmp_path)
    assert summary["status"] == "diverged" and summary["diverged_step"] == 25
    assert summary["final_test_acc"] is None and summary["steps"] == 25
    last = read_metrics(tmp_path)[-1]
    assert last["step"] == 25 and last["train/loss"] is None  # non-finite is written as null
    assert read_summary(tmp_path)["status"] == "diverged"


def test_same_seed_same_numbers(tmp_path, config):
    overrides = ["model.dropout=0.2", "train.steps=120"]
    run(config(*overrides, "seed=3"), tmp_path / "a")
    run(config(*overrides, "seed=3"), tmp_path / "b")
    run(config(*overrides, "seed=4"), tmp_path / "c")
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    assert read_metrics(tmp_path / "a") != read_metrics(tmp_path / "c")


def test_failure_is_recorded_then_raised(tmp_path, config, monkeypatch):
    import train

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(train, "build_model", broken)
    with pytest.raises(RuntimeError):
        run(config("train.steps=10"), tmp_path)
    summary = read_summary(tmp_path)
    assert summary["status"] == "failed" and "out of memory" in summary["error"]


def test_wandb_offline_writes_into_the_run_folder(tmp_path, config):
    cfg = config("train.steps=50", "logger=wandb", "logger.mode=offline")
    run(cfg, tmp_path, "exp", ["seed=0"])
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_plain_progress_lines_when_not_on_a_terminal(caplog):
    progress = Progress(total_steps=100, bar=False)
    with caplog.at_level(logging.INFO, logger="training.progress"):
        progress.update(50, {"step": 50, "train/loss": 0.5}, 123.0)
        progress.update(100, {"step": 100, "train/loss": 0.25, "test/acc": 0.9, "test/loss": 0.3}, 120.0)
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "step 100/100" in line and "test_acc 0.9000" in line and "loss 0.2500" in line and "steps/s 120" in line


def test_cpu_threads_auto_gives_an_mlp_one_thread_and_a_cnn_its_share_of_the_cores():
    import torch

    from omegaconf import OmegaConf

    from train import auto_threads, available_cores, jobs_at_once, set_cpu_threads

    mlp, cnn = OmegaConf.create({"name": "mlp"}), OmegaConf.create({"name": "cnn"})
    cores = available_cores()
    assert auto_threads(mlp) == 1 and auto_threads(mlp, concurrent_jobs=2) == 1
    assert auto_threads(cnn) == cores
    assert auto_threads(cnn, concurrent_jobs=2) == max(1, cores // 2)
    assert auto_threads(cnn, concurrent_jobs=cores + 5) == 1
    before = torch.get_num_threads()
    try:
        set_cpu_threads("auto", 1, mlp)
        assert torch.get_num_threads() == 1
        set_cpu_threads("auto", 1, cnn)
        assert torch.get_num_threads() == cores
        set_cpu_threads(3, 1, mlp)  # a number is taken as given
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert jobs_at_once(OmegaConf.create({"_target_": joblib, "n_jobs": 2})) == 2
    assert jobs_at_once(OmegaConf.create({"_target_": joblib, "n_jobs": -1})) == cores
    assert jobs_at_once(OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"})) == 1
    assert jobs_at_once(None) == 1


def test_train_py_makes_openmp_threads_wait_passively_unless_told_otherwise(monkeypatch):
    import os
    import runpy
    import subprocess
    import sys

    from tests.conftest import ROOT

    # In a fresh process, where torch is not loaded yet (OpenMP reads the setting when it loads).
    show = "import os, train; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE", out.stderr[-500:]
    # A value the user gave is kept (train.py's module body run again, in this process).
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    runpy.run_path(str(ROOT / "train.py"))
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
