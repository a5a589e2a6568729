"""The probes taken during training: each against values computed by hand on a tiny network, they
leave training untouched, and their settings are checked before anything runs."""
from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf
from scipy import stats

from tests.conftest import compose_config
from train import run
from training.checks import ConfigError, validate
from training.data import BatchOrder, InMemoryData
from training.probes import ProbeContext, ProbeRunner
from training.probes.activations import tracked_units


def tiny_data(n_test: int = 40, n_train: int = 32, features: int = 2) -> InMemoryData:
    generator = torch.Generator().manual_seed(1)
    return InMemoryData(
        "tiny",
        torch.randn(n_train, features, generator=generator) * 3,
        torch.randint(2, (n_train,), generator=generator),
        torch.randn(n_test, features, generator=generator) * 3,
        torch.randint(2, (n_test,), generator=generator),
        classes=2,
    )


def tiny_net(with_bn: bool, activation: nn.Module | None = None) -> nn.Sequential:
    """fc1 -> [bn1] -> act1 -> out, in eval mode; BN's running statistics far from the data's, so a
    probe that used them instead of the examples' own would be caught."""
    torch.manual_seed(0)
    layers = [("fc1", nn.Linear(2, 3, bias=not with_bn))]
    if with_bn:
        bn = nn.BatchNorm1d(3)
        with torch.no_grad():
            bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
            bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
            bn.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        layers.append(("bn1", bn))
    layers += [("act1", activation or nn.Sigmoid()), ("out", nn.Linear(3, 2))]
    return nn.Sequential(OrderedDict(layers)).eval()


def runner(model, data, probes: dict, batch_size: int = 8) -> ProbeRunner:
    cfg = OmegaConf.create({"seed": 0, "train": {"batch_size": batch_size}})
    order = BatchOrder(len(data.train_x), batch_size, seed=0)
    return ProbeRunner(OmegaConf.create(probes), ProbeContext(model, data, order, cfg))


def numpy_layer(model: nn.Sequential, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """By hand: fc1's output (the BN input) and the sigmoid's input (after BN with the examples'
    own mean and biased variance, as a training batch is normalized)."""
    w = model.fc1.weight.detach().numpy().astype(np.float64)
    z = x.numpy().astype(np.float64) @ w.T
    if model.fc1.bias is not None:
        z = z + model.fc1.bias.detach().numpy()
    if "bn1" not in dict(model.named_children()):
        return z, z
    bn = model.bn1
    mean, var = z.mean(axis=0), z.var(axis=0)
    return z, (z - mean) / np.sqrt(var + bn.eps) * bn.weight.detach().numpy() + bn.bias.detach().numpy()


@pytest.mark.parametrize("with_bn", [False, True])
def test_activations_probe_against_numpy(with_bn):
    data, model = tiny_data(), tiny_net(with_bn)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = runner(model, data, {"activations": {"examples": 30, "units": 2}}).at_eval(step=0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # running averages untouched
    bn_input, act_input = numpy_layer(model, data.test_x[:30])
    for p in (15, 50, 85):
        per_unit = np.percentile(act_input, p, axis=0)  # numpy's linear interpolation
        assert metrics[f"act/fc1/p{p}"] == pytest.approx(per_unit.mean(), rel=1e-5, abs=1e-6)
        for unit in (0, 2):  # two tracked units of three: the first and the last
            assert metrics[f"act/fc1/u{unit}/p{p}"] == pytest.approx(per_unit[unit], rel=1e-5, abs=1e-6)
    assert "act/fc1/u1/p50" not in metrics
    assert metrics["act/fc1/mean"] == pytest.approx(act_input.mean(axis=0).mean(), rel=1e-5, abs=1e-6)
    assert metrics["act/fc1/std"] == pytest.approx(act_input.std(axis=0).mean(), rel=1e-5)
    assert metrics["act/fc1/skew"] == pytest.approx(stats.skew(act_input, axis=0).mean(), rel=1e-4, abs=1e-5)
    assert metrics["act/fc1/kurt"] == pytest.approx(stats.kurtosis(act_input, axis=0).mean(), rel=1e-4, abs=1e-5)
    assert metrics["act/fc1/hist"].shape == (90,)  # the distribution, for the tracker only
    if with_bn:
        assert metrics["bnin/fc1/skew"] == pytest.approx(stats.skew(bn_input, axis=0).mean(), rel=1e-4, abs=1e-5)
        assert metrics["bnin/fc1/kurt"] == pytest.approx(stats.kurtosis(bn_input, axis=0).mean(), rel=1e-4, abs=1e-5)
    else:
        assert not any(key.startswith("bnin/") for key in metrics)


def test_tracked_units_are_spread_over_the_layer():
    assert tracked_units(100, 3) == [0, 50, 99]
    assert tracked_units(3, 5) == [0, 1, 2]
    assert tracked_units(10, 1) == [0] and tracked_units(10, 0) == []


@pytest.mark.parametrize("activation", [nn.Sigmoid(), nn.Tanh()])
def test_saturation_probe_against_numpy(activation):
    data, model = tiny_data(n_test=200), tiny_net(with_bn=False, activation=activation)
    with torch.no_grad():
        model.fc1.weight.mul_(4)  # large inputs: some units saturate
    metrics = runner(model, data, {"saturation": {"examples": 200, "threshold": 0.05}}).at_eval(step=0)
    _, z = numpy_layer(model, data.test_x)
    if isinstance(activation, nn.Sigmoid):
        s = 1 / (1 + np.exp(-z))
        relative = s * (1 - s) / 0.25
    else:
        relative = 1 - np.tanh(z) ** 2
    expected = (relative < 0.05).mean()
    assert 0.05 < expected < 0.95  # the tiny net's inputs reach saturation often, but not always
    assert metrics == {"sat/fc1": pytest.approx(expected)}


def test_saturation_probe_has_nothing_to_say_about_relu():
    probes = runner(tiny_net(False, nn.ReLU()), tiny_data(), {"saturation": {"examples": 10, "threshold": 0.05}})
    assert probes.at_eval(0) == {}
    assert probes.at_end() == {"saturation": {"skipped": "the network has no sigmoid or tanh layer"}}


def test_grad_norms_probe_matches_a_backward_pass_and_changes_nothing():
    data, model = tiny_data(), tiny_net(with_bn=True).train()  # mid-training: the mode must come back
    probes = runner(model, data, {"grad_norms": {"batch_size": 6}})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = probes.at_eval(step=0)

    reference = tiny_net(with_bn=True)  # by hand: one training-mode backward on the same batch
    index = BatchOrder(len(data.train_x), 8, seed=0).permutation(0)[:6]
    loss = nn.functional.cross_entropy(reference.train()(data.train_x[index]), data.train_y[index])
    loss.backward()
    assert metrics["grad/fc1"] == pytest.approx(reference.fc1.weight.grad.norm().item(), rel=1e-5)
    assert metrics["grad/out"] == pytest.approx(reference.out.weight.grad.norm().item(), rel=1e-5)
    assert metrics["grad/first_over_last"] == pytest.approx(metrics["grad/fc1"] / metrics["grad/out"])
    for key, value in model.state_dict().items():  # running statistics and batch count restored
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_predictions_probe_against_numpy():
    data, model = tiny_data(n_test=40), tiny_net(with_bn=True).train()  # mid-training: eval mode inside, restored
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = runner(model, data, {"predictions": {"examples": 30}}).at_eval(step=0)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())

    with torch.no_grad():  # by hand, in eval mode (BN's running averages, as test/acc)
        logits = tiny_net(with_bn=True).eval()(data.test_x[:30]).double().numpy()
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    counts = np.bincount(p.argmax(axis=1), minlength=2)
    assert metrics["pred/majority_share"] == pytest.approx(counts.max() / 30) and 0.5 < counts.max() / 30 < 1
    assert metrics["pred/classes"] == int((counts > 0).sum()) == 2
    assert metrics["pred/entropy"] == pytest.approx(float(np.mean(-(p * np.log(p)).sum(axis=1))), rel=1e-9)


def test_predictions_of_a_constant_output_are_one_class_at_maximal_entropy():
    from training.probes.predictions import CLASSES, ENTROPY, MAJORITY_SHARE

    data, model = tiny_data(n_test=40), tiny_net(with_bn=False)
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
    metrics = runner(model, data, {"predictions": {"examples": None}}).at_eval(step=0)
    assert metrics == {MAJORITY_SHARE: 1.0, CLASSES: 1, ENTROPY: pytest.approx(np.log(2), rel=1e-12)}


def test_a_net_that_does_not_train_is_seen_by_its_predictions(tmp_path, config):
    """No BN, a sigmoid MLP with weights of 1e-3: it stays at chance, predicting one class with an
    output near uniform over the 10 digits (what its biases learn is the classes' frequencies, so
    the entropy is a little below ln 10); with BN it trains and predicts every class."""
    tiny = ["init.std=1e-3", "train.steps=100", "train.eval_every=50", "probes=[predictions]"]
    run(config(*tiny, "bn=none"), tmp_path / "none")
    run(config(*tiny, "bn=before"), tmp_path / "bn")
    last = {arm: json.loads((tmp_path / arm / "metrics.jsonl").read_text().splitlines()[-1]) for arm in ("none", "bn")}
    assert last["none"]["pred/classes"] == 1 and last["none"]["pred/majority_share"] == 1.0
    assert last["none"]["pred/entropy"] == pytest.approx(np.log(10), abs=0.02)
    assert last["none"]["test/loss"] == pytest.approx(np.log(10), abs=0.02)
    assert last["bn"]["pred/classes"] == 10 and last["bn"]["pred/majority_share"] < 0.3
    assert last["bn"]["pred/entropy"] < 2.0


DURING_TRAINING = "probes=[activations,saturation,grad_norms,predictions]"


def test_probes_leave_training_untouched(tmp_path, config):
    """Same weights and same numbers with and without probes, dropout's random numbers included."""
    overrides = ["model.dropout=0.2", "train.steps=120", "train.eval_every=40"]
    run(config(*overrides), tmp_path / "plain")
    run(config(*overrides, DURING_TRAINING), tmp_path / "probed")
    plain = [json.loads(line) for line in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    probed = [json.loads(line) for line in (tmp_path / "probed" / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in line.items() if k in plain_line} for line, plain_line in zip(probed, plain)] == plain
    weights = [torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)["model"] for d in ("plain", "probed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_every_evaluation_line_carries_the_probes_keys(tmp_path, config):
    run(config("train.steps=100", "train.eval_every=50", DURING_TRAINING), tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evaluations = [line for line in lines if "test/acc" in line]
    assert [line["step"] for line in evaluations] == [0, 50, 100]
    for line in evaluations:
        for layer in ("fc1", "fc2", "fc3"):
            assert {f"act/{layer}/p15", f"act/{layer}/p50", f"act/{layer}/p85", f"sat/{layer}", f"grad/{layer}"} <= set(line)
        assert "grad/first_over_last" in line and not any(key.endswith("/hist") for key in line)
        assert {"pred/majority_share", "pred/classes", "pred/entropy"} <= set(line)
    assert all("act/fc1/p50" not in line for line in lines if "test/acc" not in line)
    # BN with the examples' own statistics: from step 0 the sigmoid's input is standardized
    # (gamma 1, beta 0), though fc1's raw output is small (std-0.01 weights).
    assert 0.9 < evaluations[0]["act/fc1/std"] < 1.01 and abs(evaluations[0]["act/fc1/mean"]) < 1e-3


def test_cnn_layers_are_probed_per_channel(tmp_path, config):
    cnn = ["dataset=synthetic", "model=cnn", "model.channels=[4,4,8,8]", "dataset.shape=[1,8,8]", "train.steps=20"]
    run(config(*cnn, DURING_TRAINING, "model.activation=tanh", "probes.activations.units=2"), tmp_path)
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert {"act/conv1/u0/p15", "act/conv4/u7/p85", "sat/conv4", "grad/conv1", "grad/out"} <= set(first)


FACTORS = "probes.landscape.factors must be a non-empty list of positive numbers"
BAD_PROBE_SETTINGS = [
    (["probes=[activations]", "probes.activations.examples=0"], "probes.activations.examples must be a whole number >= 1, got 0"),
    (["probes=[activations]", "probes.activations.units=two"], "probes.activations.units must be a whole number >= 0, got 'two'"),
    (["probes=[saturation]", "probes.saturation.threshold=1.5"], "probes.saturation.threshold must be a number in (0.0, 1.0), got 1.5"),
    (["probes=[grad_norms]", "probes.grad_norms.batch_size=1"], "probes.grad_norms.batch_size must be a whole number >= 2"),
    (["probes=[test_time_stats]", "probes.test_time_stats.batch_sizes=[0,4]"], "probes.test_time_stats.batch_sizes must be a list of positive"),
    (["probes=[scale_invariance]", "probes.scale_invariance.scales=[-1]"], "probes.scale_invariance.scales must be a list of positive numbers"),
    (["probes=[insert_pretrained]", "probes.insert_pretrained.finetune_steps=0"], "probes.insert_pretrained.finetune_steps must be"),
    (["probes=[bn_math]", "probes.bn_math.tolerance=0"], "probes.bn_math.tolerance must be a number > 0"),
    (["+probes.activationz={examples:5}"], "probes: unknown probe 'activationz'"),
    (["probes=[activations]", "+probes.activations.exampels=5"], "probes.activations.exampels is not a setting of the activations probe (its settings: examples, units)"),
    (["probes=[predictions]", "probes.predictions.examples=0"], "probes.predictions.examples must be a whole number >= 1, got 0"),
    (["probes=[ics]", "probes.ics.every=0"], "probes.ics.every must be a whole number >= 1, got 0"),
    (["probes=[ics]", "probes.ics.every=1.5"], "probes.ics.every must be a whole number >= 1, got 1.5"),
    (["probes=[landscape]", "probes.landscape.factors=[]"], f"{FACTORS}, got []"),
    (["probes=[landscape]", "probes.landscape.factors=[0.5,0]"], f"{FACTORS}, got [0.5, 0]"),
    (["probes=[landscape]", "probes.landscape.factors=2"], f"{FACTORS}, got 2"),
    (["probes=[landscape]", "probes.landscape.every=-1"], "probes.landscape.every must be a whole number >= 1, got -1"),
]


@pytest.mark.parametrize("overrides,message", BAD_PROBE_SETTINGS, ids=[o[-1] for o, _ in BAD_PROBE_SETTINGS])
def test_bad_probe_settings_get_one_clear_error(overrides, message):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(overrides))
    assert message in str(caught.value) and "\n" not in str(caught.value)
