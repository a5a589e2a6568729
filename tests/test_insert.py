"""Inserting BN into a network without BN keeps its function (claim C11)."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from models import batchnorm as scratch
from models.cnn import build_cnn
from models.insert import insert_bn, max_output_difference
from models.layers import BNSpec
from models.mlp import build_mlp

ACTIVATIONS = ("sigmoid", "relu", "tanh")
IMPLS = ("torch", "scratch")
BN_CLASSES = {
    "torch": {nn.Linear: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d},
    "scratch": {nn.Linear: scratch.BatchNorm1d, nn.Conv2d: scratch.BatchNorm2d},
}
INPUT_SHAPES = {"mlp": (1, 8, 8), "cnn": (3, 8, 8)}


def build(arch: str, activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(0)
    if arch == "mlp":
        return build_mlp(INPUT_SHAPES[arch], 10, [16, 16], activation, BNSpec("none"), dropout)
    return build_cnn(INPUT_SHAPES[arch], 10, [4, 4, 8, 8], activation, BNSpec("none"), dropout)


def batches(arch: str, seed: int = 1) -> list[torch.Tensor]:
    """Uneven batch sizes with different means, so pooled and per-batch-averaged statistics differ."""
    gen = torch.Generator().manual_seed(seed)
    return [2 * torch.randn(n, *INPUT_SHAPES[arch], generator=gen) + k for k, n in enumerate((32, 17, 5))]


def hidden_layers(model: nn.Sequential) -> list[str]:
    return [name for name, m in model.named_children() if isinstance(m, (nn.Linear, nn.Conv2d)) and name != "out"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("arch", ("mlp", "cnn"))
def test_insertion_keeps_the_function(arch, activation, impl):
    model = build(arch, activation)
    new = insert_bn(model, batches(arch), impl=impl)
    x = 2 * torch.randn(20, *INPUT_SHAPES[arch])
    with torch.no_grad():
        scale = float(model(x).abs().max())
    assert max_output_difference(model, new, x) < 1e-5 * (1 + scale)
    assert not new.training


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("arch", ("mlp", "cnn"))
def test_bn_sits_right_after_each_hidden_layer(arch, impl):
    model = build(arch)
    new = insert_bn(model, batches(arch), impl=impl)
    names = list(OrderedDict(new.named_children()))
    assert [n for n in names if not n.startswith("bn")] == list(OrderedDict(model.named_children()))
    for layer in hidden_layers(model):
        i = names.index(layer)
        bn_name = layer.replace("fc", "bn").replace("conv", "bn")
        assert names[i + 1] == bn_name
        assert type(new.get_submodule(bn_name)) is BN_CLASSES[impl][type(model.get_submodule(layer))]
        assert new.get_submodule(layer).bias is not None  # kept: dropping it would change the function
    assert names[-1] == "out"
    assert sum(n.startswith("bn") for n in names) == len(hidden_layers(model))


def moments(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel biased variance and mean, in float64."""
    return torch.var_mean(out.double(), dim=[0, *range(2, out.dim())], correction=0)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("arch", ("mlp", "cnn"))
def test_statistics_are_the_pooled_moments_of_the_layer_outputs(arch):
    model = build(arch, dropout=0.5)
    model.train()  # statistics must still come from the eval-mode network (no dropout)
    data = batches(arch)
    eps = 1e-3
    new = insert_bn(model, data, eps=eps)
    assert model.training
    model.eval()
    names = list(OrderedDict(model.named_children()))
    with torch.no_grad():
        for layer in hidden_layers(model):
            up_to_layer = model[: names.index(layer) + 1]
            var, mean = moments(up_to_layer(torch.cat(data)))
            bn = new.get_submodule(layer.replace("fc", "bn").replace("conv", "bn"))
            close(bn.running_mean, mean)
            close(bn.running_var, var)
            close(bn.weight, (var + eps).sqrt())
            close(bn.bias, mean)
            assert bn.eps == eps
            # Averaging the batch variances instead would be visibly off with these batches.
            averaged = torch.stack([moments(up_to_layer(b))[0] for b in data]).mean(0)
            assert ((averaged - var).abs() / var).max() > 0.05


@pytest.mark.parametrize("arch", ("mlp", "cnn"))
def test_input_model_is_unchanged(arch):
    model = build(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = list(OrderedDict(model.named_children()))
    model.train()
    insert_bn(model, batches(arch))
    assert list(OrderedDict(model.named_children())) == names
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert model.training


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("arch", ("mlp", "cnn"))
def test_inserted_network_fine_tunes(arch, impl):
    new = insert_bn(build(arch), batches(arch), impl=impl)
    new.train()
    x, y = batches(arch, seed=2)[0], torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(3))
    optimizer = torch.optim.SGD(new.parameters(), lr=0.01)
    loss = nn.functional.cross_entropy(new(x), y)
    loss.backward()
    bns = [m for m in new.modules() if isinstance(m, tuple(BN_CLASSES[impl].values()))]
    assert bns and all(float(bn.weight.grad.abs().sum()) > 0 and float(bn.bias.grad.abs().sum()) > 0 for bn in bns)
    optimizer.step()
    with torch.no_grad():
        assert float(nn.functional.cross_entropy(new(x), y)) < float(loss)


def test_generic_sequential_treats_the_last_linear_as_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    data = [torch.randn(16, 6) + 1]
    new = insert_bn(model, data, impl="scratch")
    assert [name for name, _ in new.named_children()] == ["0", "0_bn", "1", "2"]
    assert max_output_difference(model, new, torch.randn(8, 6)) < 1e-5


def test_max_output_difference_restores_training_flags():
    model = build("mlp", dropout=0.5)
    other = build("mlp")
    model.train()
    other.eval()
    x = torch.randn(4, *INPUT_SHAPES["mlp"])
    assert max_output_difference(model, other, x) == 0.0  # same seed; dropout is off in eval mode
    assert model.training and model.drop1.training and not other.training


def test_clear_errors():
    data = batches("mlp")
    with pytest.raises(ValueError, match="already has BN"):
        insert_bn(build_mlp((1, 8, 8), 10, [16], "relu", BNSpec("before")), data)
    with pytest.raises(ValueError, match="no hidden"):
        insert_bn(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), data)
    with pytest.raises(ValueError, match="empty"):
        insert_bn(build("mlp"), [])
    with pytest.raises(ValueError, match="empty"):
        insert_bn(build("mlp"), iter(()))
    with pytest.raises(ValueError, match="unknown impl"):
        insert_bn(build("mlp"), data, impl="cudnn")
    clash = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 4), bn1=nn.ReLU(), out=nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="collide"):
        insert_bn(clash, [torch.randn(8, 4)])
