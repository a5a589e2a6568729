"""The networks: BN placement, biases before BN, initialization, shapes."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

from models import build_model, initialize
from models.layers import BNSpec
from models.mlp import build_mlp
from models.cnn import build_cnn
from tests.conftest import compose_config


def kinds(model: nn.Module) -> list[str]:
    return [type(m).__name__ for m in model.children()]


def test_mlp_bn_before_every_sigmoid_without_biases():
    model = build_mlp((1, 28, 28), 10, [100, 100, 100], "sigmoid", BNSpec("before"))
    assert kinds(model) == ["Flatten"] + ["Linear", "BatchNorm1d", "Sigmoid"] * 3 + ["Linear"]
    assert all(model.get_submodule(f"fc{i}").bias is None for i in (1, 2, 3))
    assert model.out.bias is not None
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)


def test_mlp_bn_after_the_activation_keeps_biases():
    model = build_mlp((64,), 10, [20, 20], "relu", BNSpec("after"))
    assert kinds(model) == ["Flatten"] + ["Linear", "ReLU", "BatchNorm1d"] * 2 + ["Linear"]
    assert model.fc1.bias is not None


def test_mlp_without_bn():
    model = build_mlp((64,), 10, [20], "tanh", BNSpec("none"))
    assert kinds(model) == ["Flatten", "Linear", "Tanh", "Linear"]


def test_bn_on_the_last_layer_only_normalizes_the_logits():
    model = build_mlp((64,), 10, [20, 20], "sigmoid", BNSpec("before", layers="last"))
    assert kinds(model) == ["Flatten"] + ["Linear", "Sigmoid"] * 2 + ["Linear", "BatchNorm1d"]
    assert model.out.bias is None and model.fc1.bias is not None
    assert model.out_bn.num_features == 10


def test_dropout_follows_each_hidden_layer():
    model = build_mlp((64,), 10, [20, 20], "relu", BNSpec("before"), dropout=0.5)
    assert kinds(model).count("Dropout") == 2 and model.drop1.p == 0.5


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_cnn_is_six_convolutions_and_a_linear_layer(shape):
    model = build_cnn(shape, 10, [4, 4, 8, 8, 8, 8], "relu", BNSpec("before"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 6
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1
    assert model(torch.randn(3, *shape)).shape == (3, 10)


def test_cnn_rejects_images_too_small_for_its_poolings():
    with pytest.raises(ValueError, match="too small"):
        build_cnn((1, 4, 4), 10, [4, 4, 4, 4, 4, 4], "relu", BNSpec("none"))


def test_scratch_impl_builds_the_projects_own_layer():
    from models import batchnorm

    model = build_mlp((64,), 10, [20], "sigmoid", BNSpec("before", impl="scratch"))
    assert isinstance(model.bn1, batchnorm.BatchNorm1d)
    cnn = build_cnn((1, 8, 8), 10, [4, 4], "relu", BNSpec("after", impl="scratch"))
    assert isinstance(cnn.bn1, batchnorm.BatchNorm2d)


def test_gaussian_and_uniform_init_with_scale():
    torch.manual_seed(0)
    model = build_mlp((784,), 10, [500], "sigmoid", BNSpec("after"))
    initialize(model, "gaussian", std=0.01)
    assert model.fc1.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert model.fc1.bias.abs().max() == 0
    initialize(model, "uniform", a=0.001, scale=3.0)
    assert model.fc1.weight.abs().max().item() <= 0.003 + 1e-9
    assert model.fc1.weight.abs().max().item() > 0.0029


def test_default_init_is_pytorchs_scaled():
    torch.manual_seed(1)
    reference = build_mlp((64,), 10, [20], "relu", BNSpec("none"))
    torch.manual_seed(1)
    scaled = build_mlp((64,), 10, [20], "relu", BNSpec("none"))
    initialize(scaled, "default", scale=1e-3)
    assert torch.allclose(scaled.fc1.weight, reference.fc1.weight * 1e-3)


def test_bn_parameters_start_at_identity():
    model = build_model(
        OmegaConf.create({"name": "mlp", "hidden": [8], "activation": "sigmoid", "dropout": 0.0}),
        compose_config(["bn=before"]).bn,
        OmegaConf.create({"name": "uniform", "a": 0.5, "scale": 1.0}),
        (1, 8, 8),
        10,
    )
    assert torch.equal(model.bn1.weight, torch.ones(8)) and torch.equal(model.bn1.bias, torch.zeros(8))
