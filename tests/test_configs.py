"""Every config option composes; invalid values are caught before training with a message naming the setting."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import CONFIGS, compose_config
from training.checks import ConfigError, validate

GROUPS = ("dataset", "model", "bn", "init", "optim", "logger", "probes", "experiment")
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONFIGS / group).glob("*.yaml"))]


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_passes_validation(group, option):
    cfg = compose_config([f"{group}={option}"])
    validate(cfg)  # mnist/cifar10 default to download=true, so missing files are not an error here


def test_command_line_names_are_the_documented_interface():
    cfg = compose_config(
        [
            "dataset=synthetic", "dataset.root=/tmp", "model=mlp", "model.hidden=[50,50]", "model.activation=tanh",
            "model.dropout=0.5", "bn=after", "bn.layers=last", "init=uniform", "init.a=0.01", "init.scale=2",
            "optim.lr=0.2", "optim.lr_mult=5", "optim.momentum=0.9", "optim.weight_decay=1e-4", "train.steps=7",
            "train.batch_size=32", "train.eval_every=3", "seed=4", "device=cpu", "logger=wandb", "logger.mode=disabled",
            "logger.project=p",
        ]
    )
    validate(cfg)
    assert cfg.model.hidden == [50, 50] and cfg.bn.placement == "after" and cfg.bn.layers == "last"
    assert cfg.init.name == "uniform" and cfg.init.a == 0.01 and cfg.init.scale == 2
    assert cfg.optim.lr * cfg.optim.lr_mult == pytest.approx(1.0)
    assert cfg.dataset.root == "/tmp" and cfg.seed == 4 and cfg.logger.project == "p"


def test_data_root_defaults_to_the_environment_variable(monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", "/somewhere/data")
    assert compose_config(["dataset=fashion_mnist"]).dataset.root == "/somewhere/data"
    monkeypatch.delenv("BN_DATA_DIR")
    assert compose_config(["dataset=fashion_mnist"]).dataset.root == "data"


def test_fig1_experiment_is_the_papers_setting_and_stays_overridable():
    cfg = compose_config(["experiment=fig1_mnist"])
    assert cfg.dataset.name == "mnist"
    assert list(cfg.model.hidden) == [100, 100, 100] and cfg.model.activation == "sigmoid"
    assert cfg.bn.placement == "before" and cfg.bn.layers == "all" and cfg.init.name == "gaussian"
    assert cfg.train.steps == 10_000 and cfg.train.batch_size == 60 and cfg.train.eval_every == 500  # CPU size
    assert list(cfg.probes) == ["activations"]
    overridden = compose_config(["experiment=fig1_mnist", "dataset=fashion_mnist", "bn=none", "train.steps=10"])
    assert overridden.dataset.name == "fashion_mnist" and overridden.bn.placement == "none"
    assert overridden.train.steps == 10


@pytest.mark.parametrize("launcher,target", [("slurm", "SlurmLauncher"), ("local", "JoblibLauncher")])
def test_launcher_configs_compose(launcher, target):
    cfg = compose_config([f"hydra/launcher={launcher}"], with_hydra=True)
    assert cfg.hydra.launcher._target_.endswith(target)


BAD_VALUES = [
    (["optim.lr=-1"], "optim.lr must be > 0"),
    (["optim.lr=0"], "optim.lr must be > 0"),
    (["optim.lr=abc"], "optim.lr must be a number"),
    (["optim.lr_mult=0"], "optim.lr_mult must be > 0"),
    (["optim.momentum=1.5"], "optim.momentum must be < 1"),
    (["train.batch_size=1"], "train.batch_size must be >= 2 with BN"),
    (["train.steps=0"], "train.steps must be >= 1"),
    (["train.steps=1.5"], "train.steps must be a whole number"),
    (["train.eval_every=0"], "train.eval_every must be >= 1"),
    (["model.activation=swish"], "model.activation=swish is not one of"),
    (["model.dropout=1.0"], "model.dropout must be < 1"),
    (["model.dropout=-0.1"], "model.dropout must be >= 0"),
    (["model.hidden=[100,-1]"], "model.hidden must be a list of positive"),
    (["model=cnn", "model.channels=[8,8,8]"], "model.channels needs an even number"),
    (["bn=none", "bn.layers=last"], "bn.layers=last contradicts bn=none"),
    (["bn=none", "bn.eval_stats=population"], "bn.eval_stats=population contradicts bn=none"),
    (["bn.momentum=2"], "bn.momentum must be <= 1"),
    (["init.std=0"], "init.std must be > 0"),
    (["init.scale=-1"], "init.scale must be > 0"),
    (["logger.mode=sometimes"], "logger.mode=sometimes is not one of"),
    (["seed=-3"], "seed must be >= 0"),
    (["dataset.train_size=10"], "train.batch_size=60 exceeds dataset.train_size=10"),
]


@pytest.mark.parametrize("overrides,message", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_invalid_values_get_one_clear_error(overrides, message):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(overrides))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_batch_size_one_is_fine_without_bn():
    validate(compose_config(["bn=none", "train.batch_size=1"]))


def test_missing_data_without_download_names_the_folder(tmp_path):
    cfg = compose_config(["dataset=mnist", "dataset.download=false", f"dataset.root={tmp_path}"])
    with pytest.raises(ConfigError, match=str(tmp_path / "MNIST" / "raw")):
        validate(cfg)


def test_data_root_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="dataset.root=.* is a file"):
        validate(compose_config([f"dataset.root={tmp_path / 'file'}"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_requested_without_a_gpu():
    with pytest.raises(ConfigError, match="device=cuda"):
        validate(compose_config(["device=cuda"]))
