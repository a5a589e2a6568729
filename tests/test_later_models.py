"""Networks and training options of the later claims: noisy BN (C14), group and layer norm, fixed
epochs and a step size that scales with the batch (C17), training only gamma and beta (C18)."""
from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

import train
from models import build_model
from models.cnn import build_cnn
from models.layers import BNSpec, NoiseSpec
from models.mlp import build_mlp
from models.noise import ShiftingNoise
from models.trainable import set_trainable, trainable_masks, trainable_parameter_count
from tests.conftest import compose_config
from training.checks import check_resume_matches, validate
from training.data import BatchOrder, InMemoryData
from training.optim import build_optimizer, step_size
from training.probes import ProbeContext, ProbeRunner

QUICK = ["dataset=digits", "logger=none", "threads=1", "train.log_every=5"]


def names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_children()]


# --- the noise layer (C14) --------------------------------------------------------------------


def draws(noise: ShiftingNoise, shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The shift m and factor s of one training forward pass: the layer on zeros gives m, on ones
    s + m, from the same random state."""
    torch.manual_seed(seed)
    shift = noise(torch.zeros(shape))
    torch.manual_seed(seed)
    return shift, noise(torch.ones(shape)) - shift


def test_noise_follows_its_definition():
    mu, sigma, r = 0.5, 1.25, 0.1
    shift, factor = draws(ShiftingNoise(mu, sigma, r).train(), (20_000, 200))
    unit_mean, unit_scale = shift.mean(0), factor.mean(0)  # mu_j and sigma_j, up to r / sqrt(20,000)
    tolerance = 5 * r / 20_000**0.5
    assert unit_mean.abs().max() <= mu + tolerance and unit_mean.std() == pytest.approx(mu / 3**0.5, rel=0.15)
    assert unit_scale.min() >= 1 - tolerance and unit_scale.max() <= sigma + tolerance
    assert unit_scale.std() == pytest.approx((sigma - 1) / 12**0.5, rel=0.15)
    around = shift - unit_mean  # m ~ U(mu_j - r, mu_j + r)
    assert around.abs().max() <= r + tolerance and around.abs().max() >= 0.99 * r
    assert around.std(0).mean() == pytest.approx(r / 3**0.5, rel=0.02)
    assert factor.std(0).mean() == pytest.approx(r, rel=0.02)  # s ~ N(sigma_j, r^2)


def test_noise_is_new_at_every_step_one_draw_per_channel_and_off_in_eval_mode():
    noise = ShiftingNoise().train()
    x = torch.randn(8, 3, 5, 5)
    first, second = noise(x), noise(x)
    assert not torch.equal(first, second)
    shift, factor = draws(noise, (8, 3, 5, 5))
    assert torch.equal(shift, shift[:, :, :1, :1].expand_as(shift))  # the same for every position of a channel
    assert torch.allclose(factor, factor[:, :, :1, :1].expand_as(factor))
    assert torch.equal(noise.eval()(x), x)


def test_noise_layer_follows_each_bn_layer():
    noisy = BNSpec("before", noise=NoiseSpec())
    assert names(build_mlp((64,), 10, [20, 20], "sigmoid", noisy))[1:5] == ["fc1", "bn1", "noise1", "act1"]
    after = build_mlp((64,), 10, [20], "relu", BNSpec("after", noise=NoiseSpec()))
    assert names(after)[1:5] == ["fc1", "act1", "bn1", "noise1"]
    last = build_mlp((64,), 10, [20], "relu", BNSpec("before", layers="last", noise=NoiseSpec()))
    assert names(last)[-3:] == ["out", "out_bn", "out_noise"]
    cnn = build_cnn((1, 8, 8), 10, [4, 4], "relu", noisy)
    assert names(cnn)[:4] == ["conv1", "bn1", "noise1", "act1"]
    assert sum(isinstance(m, ShiftingNoise) for m in cnn.modules()) == 2


def test_bn_noisy_config_builds_the_paper_noise():
    cfg = compose_config(["bn=noisy"])
    validate(cfg)
    model = train.build_model(cfg.model, cfg.bn, cfg.init, (1, 8, 8), 10)
    layer = model.noise1
    assert (layer.mu, layer.sigma, layer.r) == (0.5, 1.25, 0.1) and cfg.bn.placement == "before"


def test_activations_probe_sees_the_noise_training_sees():
    torch.manual_seed(0)
    train_x, test_x = torch.randn(32, 6), torch.randn(50, 6)
    data = InMemoryData("tiny", train_x, torch.randint(2, (32,)), test_x, torch.randint(2, (50,)), classes=2)
    model = build_mlp((6,), 2, [4], "sigmoid", BNSpec("before", noise=NoiseSpec())).eval()
    state = copy.deepcopy(model.state_dict())
    cfg = OmegaConf.create({"seed": 0, "train": {"batch_size": 8}})
    context = ProbeContext(model, data, BatchOrder(32, 8, seed=0), cfg)
    probes = ProbeRunner(OmegaConf.create({"activations": {"examples": 50, "units": 0}}), context)
    torch.manual_seed(7)
    metrics = probes.at_eval(step=0)
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(7).get_state())  # its draws left training's alone

    torch.manual_seed(7)  # the same draws, through the network in training mode (on a copy: BN's averages move)
    trained = copy.deepcopy(model).train()
    seen = trained.act1.register_forward_pre_hook(lambda module, args: setattr(module, "seen", args[0].detach()))
    trained(data.test_x)
    seen.remove()
    assert metrics["act/fc1/std"] == pytest.approx(trained.act1.seen.std(0, unbiased=False).mean().item(), rel=1e-5)
    assert metrics["act/fc1/std"] > 1.02  # BN alone gives 1: the noise scales by sigma_j >= 1
    assert not model.training and not model.noise1.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# --- group and layer norm (C17) -------------------------------------------------------------------


def test_group_and_layer_norm_keep_the_bias_and_the_name_bn():
    group = build_mlp((64,), 10, [20, 20], "relu", BNSpec("before", norm="group", groups=4))
    assert isinstance(group.bn1, nn.GroupNorm) and group.bn1.num_groups == 4 and group.fc1.bias is not None
    layer = build_mlp((64,), 10, [20], "relu", BNSpec("before", norm="layer"))
    assert isinstance(layer.bn1, nn.LayerNorm) and layer.fc1.bias is not None
    cnn = build_cnn((1, 8, 8), 10, [4, 4], "relu", BNSpec("before", norm="layer"))
    assert isinstance(cnn.bn1, nn.GroupNorm) and cnn.bn1.num_groups == 1 and cnn.conv1.bias is not None
    assert build_mlp((64,), 10, [20], "relu", BNSpec("before")).fc1.bias is None  # BN cancels it


@pytest.mark.parametrize("norm", ["group", "layer"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_group_and_layer_norm_treat_each_example_on_its_own(norm, model):
    torch.manual_seed(0)
    spec = BNSpec("before", norm=norm, groups=2)
    build = build_mlp if model == "mlp" else build_cnn
    net = build((1, 8, 8), 10, [8, 8] if model == "mlp" else [4, 4], "relu", spec)
    x = torch.randn(6, 1, 8, 8) * 3 + 1
    alone = torch.cat([net.train()(x[i : i + 1]) for i in range(6)])
    assert torch.allclose(net(x), alone, atol=1e-5)  # a batch changes nothing: no batch statistics
    features = net.bn1(net.fc1(x.flatten(1)) if model == "mlp" else net.conv1(x))
    grouped = features.reshape(6, 2 if norm == "group" else 1, -1)
    assert grouped.mean(-1).abs().max() < 1e-5
    assert torch.allclose(grouped.var(-1, unbiased=False), torch.ones(1), atol=1e-3)


def test_layer_norm_trains_at_batch_size_one(tmp_path):
    cfg = compose_config([*QUICK, "bn=layer", "train.batch_size=1", "train.steps=30", "train.eval_every=30"])
    validate(cfg)
    assert train.run(cfg, tmp_path)["status"] == "completed"


# --- fixed epochs, evaluations per epoch, the step size's batch scaling (C17) --------------------------------


def test_epochs_set_the_steps_and_evaluations_per_epoch_their_spacing(tmp_path, caplog):
    # digits: 1,437 training examples, so batches of 100 make epochs of 14 steps (the last 37 examples wait)
    epochs = ["train.epochs=1.5", "train.evals_per_epoch=2", "train.steps=5"]
    cfg = compose_config([*QUICK, "train.batch_size=100", *epochs])
    with caplog.at_level("INFO", logger="training.progress"):
        summary = train.run(cfg, tmp_path)
    assert summary["steps"] == 21  # ceil(1.5 * 14): train.steps is replaced
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "test/acc" in line] == [0, 7, 14, 21]
    assert "step 21/21" in caplog.text  # the progress bar's total is the same


def test_a_run_in_epochs_resumes_and_extends(tmp_path):
    args = [*QUICK, "train.batch_size=100", "train.evals_per_epoch=1", "train.checkpoint_every=14"]
    first = compose_config([*args, "train.epochs=1"])
    train.run(first, tmp_path)
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(first, tmp_path / ".hydra" / "config.yaml")  # what Hydra keeps of the run
    longer = compose_config([*args, "train.epochs=2", "resume=true"])
    check_resume_matches(tmp_path, longer)  # a longer run is the same run, extended
    summary = train.run(longer, tmp_path)
    assert summary["resumed_from_step"] == 14 and summary["steps"] == 28
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 28


def test_step_size_scales_linearly_with_the_batch():
    cfg = OmegaConf.create({"name": "sgd", "lr": 0.1, "lr_mult": 2.0, "lr_reference_batch": 64, "momentum": 0.0,
                            "weight_decay": 0.0})
    assert step_size(cfg, 2) == pytest.approx(0.2 * 2 / 64) and step_size(cfg, 256) == pytest.approx(0.8)
    assert build_optimizer(nn.Linear(2, 2).parameters(), cfg, 32).param_groups[0]["lr"] == pytest.approx(0.1)
    assert step_size(OmegaConf.merge(cfg, {"lr_reference_batch": None}), 256) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="needs the run's batch size"):
        step_size(cfg)


def test_the_run_uses_the_scaled_step_size(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(train, "build_optimizer", lambda *args: built.append(build_optimizer(*args)) or built[-1])
    scaled = ["optim.lr=0.1", "optim.lr_reference_batch=64", "train.batch_size=16"]
    cfg = compose_config([*QUICK, *scaled, "train.steps=5"])
    train.run(cfg, tmp_path)
    assert built[0].param_groups[0]["lr"] == pytest.approx(0.025)


# --- training only gamma and beta (C18) -------------------------------------------------------------


def short_run(tmp_path, monkeypatch, overrides: list[str]) -> tuple[dict, nn.Module, dict]:
    """(summary, the trained model, its parameters as built) of a short run on digits (20 steps unless overridden)."""
    built, initial = [], {}
    build = train.build_model

    def build_and_keep(*args):
        built.append(build(*args))
        initial.update({name: p.detach().clone() for name, p in built[-1].named_parameters()})
        return built[-1]

    monkeypatch.setattr(train, "build_model", build_and_keep)
    summary = train.run(compose_config([*QUICK, "train.steps=20", "train.eval_every=20", *overrides]), tmp_path)
    return summary, built[0], initial


@pytest.mark.parametrize("model", ["mlp_deep", "cnn_small"])
def test_bn_only_trains_gamma_and_beta_and_nothing_else(tmp_path, monkeypatch, model):
    overrides = [f"model={model}", "init=default", "optim.lr=0.5", "optim.momentum=0.9", "train.steps=60",
                 "train.trainable=bn_only", "probes=[grad_norms]"]
    summary, net, initial = short_run(tmp_path, monkeypatch, overrides)
    assert summary["status"] == "completed" and summary["final_test_acc"] > 0.3  # chance: 0.1
    for name, parameter in net.named_parameters():
        normalization = name.startswith("bn")
        assert parameter.requires_grad == normalization, name
        assert torch.equal(parameter, initial[name]) != normalization, name  # gamma, beta moved; the rest did not
    metrics = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["grad/out"] > 0  # the frozen weights' gradients are still measured


def test_all_parameters_train_by_default(tmp_path, monkeypatch):
    _, net, initial = short_run(tmp_path, monkeypatch, [])
    assert all(p.requires_grad and not torch.equal(p, initial[name]) for name, p in net.named_parameters())


# --- Frankle et al.'s control: as many randomly chosen weights (train.trainable=random) ---------


def bn_units(net: nn.Module) -> int:
    return sum(m.num_features for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


@pytest.mark.parametrize("model, optimizer", [
    ("mlp_deep", ["optim.momentum=0.9", "optim.weight_decay=0.01"]),
    ("cnn_small", ["optim=adam", "optim.lr=0.01", "optim.weight_decay=0.01"]),
])
def test_random_trains_two_chosen_incoming_weights_per_bn_unit_and_nothing_else(tmp_path, monkeypatch, model, optimizer):
    """Momentum, Adam's moments and weight decay (which torch.optim applies to whole tensors) all
    leave the unchosen entries bit-identical; every chosen entry moves."""
    overrides = [f"model={model}", "init=default", "train.steps=30", "train.trainable=random", *optimizer]
    summary, net, initial = short_run(tmp_path, monkeypatch, overrides)
    assert summary["status"] == "completed"
    masks = trainable_masks(net)
    weight = "conv" if model == "cnn_small" else "fc"
    hidden = [name for name, m in net.named_children() if isinstance(m, (nn.Linear, nn.Conv2d)) and name != "out"]
    assert sorted(masks) == sorted(f"{name}.weight" for name in hidden) and all(n.startswith(weight) for n in hidden)
    for name, parameter in net.named_parameters():
        assert parameter.requires_grad == (name in masks), name
        if name not in masks:
            assert torch.equal(parameter, initial[name]), name  # BN's gamma and beta, `out`, every bias
            continue
        mask = masks[name]
        rows = mask.reshape(mask.shape[0], -1)
        assert (rows.sum(dim=1) == 2).all(), name  # two incoming weights per unit (conv: per output channel)
        assert torch.equal(parameter[~mask], initial[name][~mask]), name  # bit-identical
        assert (parameter[mask] != initial[name][mask]).all(), name
    assert summary["trainable_params"] == int(sum(m.sum() for m in masks.values())) == 2 * bn_units(net)


@pytest.mark.parametrize("model", ["mlp_deep", "cnn_small"])
def test_random_trains_as_many_parameters_as_bn_only(tmp_path, monkeypatch, model):
    counts = {}
    for mode in ("all", "bn_only", "random"):
        summary, net, _ = short_run(tmp_path / mode, monkeypatch, [f"model={model}", f"train.trainable={mode}", "train.steps=2"])
        counts[mode] = summary["trainable_params"]
        assert json.loads((tmp_path / mode / "summary.json").read_text())["trainable_params"] == counts[mode]
        if mode == "all":
            assert counts[mode] == sum(p.numel() for p in net.parameters())
    assert counts["random"] == counts["bn_only"] == 2 * bn_units(net) < counts["all"]


def test_the_random_choice_is_fixed_by_the_seed():
    cfg = compose_config(["model=mlp_deep", "train.trainable=random"])

    def chosen(seed: int) -> dict:
        torch.manual_seed(seed)
        net = build_model(cfg.model, cfg.bn, cfg.init, (1, 8, 8), 10)
        state = torch.get_rng_state()
        set_trainable(net, "random", seed)
        assert torch.equal(torch.get_rng_state(), state)  # the run's own random stream is left alone
        return trainable_masks(net)

    first, again, other = chosen(0), chosen(0), chosen(1)
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_random_with_bn_after_and_on_the_logits_picks_the_weight_layer_before_bn():
    for bn, fed in (("after", {"fc1", "fc2", "fc3"}), ("last", {"out"})):
        cfg = compose_config([f"bn={bn}"])
        net = build_model(cfg.model, cfg.bn, cfg.init, (1, 8, 8), 10)
        set_trainable(net, "random", 0)
        assert set(trainable_masks(net)) == {f"{name}.weight" for name in fed}, bn
        assert trainable_parameter_count(net) == 2 * bn_units(net), bn


def test_a_resumed_random_run_ends_as_the_uninterrupted_one(tmp_path, config):
    overrides = ["model=mlp_deep", "init=default", "train.trainable=random", "optim.momentum=0.9", "optim.weight_decay=0.01",
                 "train.eval_every=10"]
    train.run(config(*overrides, "train.steps=20"), tmp_path / "resumed")
    train.run(config(*overrides, "train.steps=40", "resume=true"), tmp_path / "resumed")
    train.run(config(*overrides, "train.steps=40"), tmp_path / "whole")
    states = [torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)["model"] for d in ("resumed", "whole")]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
