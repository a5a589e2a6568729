"""The probes that look one training step ahead (ics, landscape): each against a computation by hand
on a tiny network, and both leave the model, the optimizer and training exactly as they were."""
from __future__ import annotations

import copy
import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import OmegaConf

from models.trainable import keep_frozen_entries, set_trainable
from tests.conftest import compose_config
from tests.test_probes import tiny_data, tiny_net
from train import run
from training.data import BatchOrder
from training.optim import build_optimizer
from training.probes import ProbeContext, ProbeRunner
from training.probes.lookahead import measurement_interval

BATCH = 8


def runner(model, data, optimizer, probes: dict) -> ProbeRunner:
    cfg = compose_config([f"train.batch_size={BATCH}", "train.eval_every=1"])
    order = BatchOrder(len(data.train_x), BATCH, seed=0)
    return ProbeRunner(OmegaConf.create(probes), ProbeContext(model, data, order, cfg, optimizer=optimizer))


def next_batch(data, step: int):
    """The batch the loop takes after the evaluation at `step` (eval_every=1)."""
    index = BatchOrder(len(data.train_x), BATCH, seed=0).indices(step)
    return data.train_x[index], data.train_y[index]


def sgd(model, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    cfg = OmegaConf.create({"name": "sgd", "lr": lr, "lr_mult": 1.0, "momentum": momentum,
                            "weight_decay": weight_decay})
    return build_optimizer(model.parameters(), cfg)  # the run's own optimizer (fused SGD)


def train_steps(model, optimizer, data, steps: int) -> None:
    """A few real training steps, so .grad and the optimizer's state (momentum buffers) are set."""
    model.train()
    for step in range(steps):
        x, y = next_batch(data, step)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def numpy_grads(w1, b1, w2, b2, x, y):
    """By hand: fc1 -> sigmoid -> out, mean cross-entropy; the gradients of W1, b1 and W2."""
    h = 1 / (1 + np.exp(-(x @ w1.T + b1)))
    logits = h @ w2.T + b2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dlogits = (p - np.eye(w2.shape[0])[y]) / len(x)
    dz = dlogits @ w2 * h * (1 - h)
    return dz.T @ x, dz.sum(axis=0), dlogits.T @ h


def test_ics_against_a_hand_computation():
    """Two layers, plain SGD: G = dL/dW_out; fc1 takes its SGD step; G' = dL/dW_out after it."""
    data, model = tiny_data(), tiny_net(with_bn=False)
    metrics = runner(model, data, sgd(model, lr=0.5), {"ics": {"every": 1}}).at_eval(step=3)

    layers = (model.fc1.weight, model.fc1.bias, model.out.weight, model.out.bias)
    w1, b1, w2, b2 = (p.detach().double().numpy() for p in layers)
    x, y = (t.numpy() for t in next_batch(data, 3))
    g_w1, g_b1, g = numpy_grads(w1, b1, w2, b2, x.astype(np.float64), y)
    _, _, shifted = numpy_grads(w1 - 0.5 * g_w1, b1 - 0.5 * g_b1, w2, b2, x.astype(np.float64), y)
    l2 = np.linalg.norm(g - shifted)
    cos = (g * shifted).sum() / (np.linalg.norm(g) * np.linalg.norm(shifted))
    assert 0.01 < l2 and cos < 0.9999  # a real shift, not a trivial one
    assert set(metrics) == {"ics/out/l2", "ics/out/cos", "ics/l2", "ics/cos"}  # the first layer has no shift
    assert metrics["ics/out/l2"] == pytest.approx(l2, rel=1e-4)
    assert metrics["ics/out/cos"] == pytest.approx(cos, rel=1e-6)
    assert metrics["ics/l2"] == metrics["ics/out/l2"] and metrics["ics/cos"] == metrics["ics/out/cos"]


def test_ics_update_is_the_optimizers_with_momentum_and_weight_decay():
    """Mid-training with BN, SGD with momentum and weight decay: the layers before `out` (fc1, BN's
    gamma and beta) move by lr * (momentum * buffer + G + weight_decay * W), computed here by hand."""
    lr, momentum, decay = 0.2, 0.9, 0.05
    data, model = tiny_data(), tiny_net(with_bn=True)
    optimizer = sgd(model, lr, momentum, decay)
    train_steps(model, optimizer, data, 2)
    metrics = runner(model, data, optimizer, {"ics": {"every": 1}}).at_eval(step=2)

    reference = copy.deepcopy(model).train()
    reference.zero_grad()
    x, y = next_batch(data, 2)
    F.cross_entropy(reference(x), y).backward()
    g = reference.out.weight.grad.clone()
    with torch.no_grad():
        for p, original in zip([reference.fc1.weight, reference.bn1.weight, reference.bn1.bias],
                               [model.fc1.weight, model.bn1.weight, model.bn1.bias]):
            buffer = momentum * optimizer.state[original]["momentum_buffer"] + p.grad + decay * p
            p -= lr * buffer
    reference.zero_grad()
    F.cross_entropy(reference(x), y).backward()
    shifted = reference.out.weight.grad
    assert metrics["ics/out/l2"] == pytest.approx((g - shifted).norm().item(), rel=1e-4)
    cos = F.cosine_similarity(g.flatten(), shifted.flatten(), dim=0).item()
    assert metrics["ics/out/cos"] == pytest.approx(cos, rel=1e-5)


def test_landscape_against_steps_taken_by_hand():
    lr, factors = 0.3, [0.5, 2.0, 4.0]
    data, model = tiny_data(), tiny_net(with_bn=True)
    optimizer = sgd(model, lr)
    train_steps(model, optimizer, data, 2)
    metrics = runner(model, data, optimizer, {"landscape": {"factors": factors, "every": 1}}).at_eval(step=2)

    x, y = next_batch(data, 2)

    def loss_and_grad(net):
        net.train().zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in net.parameters()])

    _, g = loss_and_grad(copy.deepcopy(model))
    losses, changes, betas = [], [], []
    for f in factors:
        moved = copy.deepcopy(model)
        with torch.no_grad():
            for p, grad in zip(moved.parameters(), torch.split(g, [p.numel() for p in moved.parameters()])):
                p -= f * lr * grad.view_as(p)
        loss, g_f = loss_and_grad(moved)
        losses.append(loss)
        changes.append((g_f - g).norm().item())
        betas.append(changes[-1] / (f * lr * g.norm().item()))
    assert metrics["landscape/loss_range"] == pytest.approx(max(losses) - min(losses), rel=1e-4)
    assert metrics["landscape/grad_change"] == pytest.approx(max(changes), rel=1e-4)
    assert metrics["landscape/beta"] == pytest.approx(max(betas), rel=1e-4)
    assert metrics["landscape/grad_norm"] == pytest.approx(g.norm().item(), rel=1e-5)


def random_mode_net() -> nn.Sequential:
    """fc1 (5 -> 4) -> bn1 -> sigmoid -> out, with train.trainable=random: 2 of fc1's 5 incoming
    weights per unit train, nothing else."""
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict([("fc1", nn.Linear(5, 4, bias=False)), ("bn1", nn.BatchNorm1d(4)),
                                     ("act1", nn.Sigmoid()), ("out", nn.Linear(4, 2))]))
    set_trainable(net, "random", seed=0)
    return net


def test_lookahead_probes_with_random_trainable_follow_only_the_chosen_entries():
    """landscape: g is the gradient of the entries that train; ics: the update of fc1 is the run's
    optimizer's (momentum, weight decay) on the chosen entries alone."""
    lr, momentum, decay = 0.3, 0.9, 0.01
    data, model = tiny_data(features=5), random_mode_net()
    optimizer = sgd(model, lr, momentum=momentum, weight_decay=decay)
    keep_frozen_entries(optimizer, model)
    train_steps(model, optimizer, data, 2)
    state = copy.deepcopy(model.state_dict())
    probes = {"landscape": {"factors": [1.0], "every": 1}, "ics": {"every": 1}}
    metrics = runner(model, data, optimizer, probes).at_eval(step=2)
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())

    x, y = next_batch(data, 2)
    mask, w = model.fc1.weight_trainable, model.fc1.weight.detach()
    assert int(mask.sum()) == 8 and mask.numel() == 20

    def grads(fc1_weight):
        net = copy.deepcopy(model).train()
        with torch.no_grad():
            net.fc1.weight.copy_(fc1_weight)
        net.fc1.weight.requires_grad_(True)
        net.out.weight.requires_grad_(True)
        loss = F.cross_entropy(net(x), y)
        return torch.autograd.grad(loss, [net.fc1.weight, net.out.weight])

    g_fc1, g_out = grads(w)
    g = g_fc1 * mask
    assert metrics["landscape/grad_norm"] == pytest.approx(g.norm().item(), rel=1e-5)
    g_1 = grads(w - lr * g)[0] * mask
    assert metrics["landscape/grad_change"] == pytest.approx((g_1 - g).norm().item(), rel=1e-4)

    buffer = optimizer.state[model.fc1.weight]["momentum_buffer"]
    stepped = torch.where(mask, w - lr * (momentum * buffer + g_fc1 + decay * w), w)
    shifted = grads(stepped)[1]
    assert metrics["ics/out/l2"] == pytest.approx((g_out - shifted).norm().item(), rel=1e-4)


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_probes_leave_model_optimizer_and_grads_bit_identical(optim):
    """Mid-training (momentum buffers / Adam's moments set, .grad of the last step present, BN's
    running statistics moved, the model in training mode), everything is as it was afterwards."""
    data, model = tiny_data(), tiny_net(with_bn=True)
    cfg = {"name": optim, "lr": 0.1, "lr_mult": 1.0, "weight_decay": 0.01}
    cfg.update({"momentum": 0.9} if optim == "sgd" else {"betas": [0.9, 0.999], "eps": 1e-8})
    optimizer = build_optimizer(model.parameters(), OmegaConf.create(cfg))
    train_steps(model, optimizer, data, 3)
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]

    metrics = runner(model, data, optimizer, {"ics": {"every": 1}, "landscape": {"every": 1}}).at_eval(step=3)

    assert {"ics/out/l2", "ics/cos", "landscape/beta"} <= set(metrics)
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, model_state[key]), key
    assert optimizer.state_dict()["param_groups"] == optimizer_state["param_groups"]
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(value, optimizer_state["state"][index][key]), (index, key)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


def test_training_with_the_probes_ends_as_without_them_and_measures_every_nth_evaluation(tmp_path, config):
    overrides = ["model.dropout=0.2", "optim.momentum=0.9", "optim.weight_decay=0.001", "train.steps=120",
                 "train.eval_every=20"]
    run(config(*overrides), tmp_path / "plain")
    probes = ["probes=[ics,landscape]", "probes.ics.every=3", "probes.landscape.every=2"]
    run(config(*overrides, *probes), tmp_path / "probed")
    plain, probed = ([json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
                     for d in ("plain", "probed"))
    assert [{k: v for k, v in line.items() if k in plain_line} for line, plain_line in zip(probed, plain)] == plain
    states = [torch.load(tmp_path / d / "checkpoint.pt", weights_only=True) for d in ("plain", "probed")]
    assert all(torch.equal(states[0]["model"][k], states[1]["model"][k]) for k in states[0]["model"])
    buffers = [s["optimizer"]["state"] for s in states]
    assert all(torch.equal(buffers[0][i]["momentum_buffer"], buffers[1][i]["momentum_buffer"]) for i in buffers[0])
    evaluations = {line["step"]: line for line in probed if "test/acc" in line}
    assert [s for s, line in evaluations.items() if "ics/l2" in line] == [0, 60, 120]
    assert [s for s, line in evaluations.items() if "landscape/beta" in line] == [0, 40, 80, 120]
    assert {f"ics/{layer}/{key}" for layer in ("fc2", "fc3", "out") for key in ("l2", "cos")} <= set(evaluations[60])
    assert "ics/fc1/l2" not in evaluations[60]


def test_every_counts_the_loops_own_evaluations():
    """With train.evals_per_epoch the loop evaluates every 2 steps here (4 steps per epoch), so
    every=2 measures every 4th step, whatever train.eval_every says."""
    cfg = compose_config([f"train.batch_size={BATCH}", "train.eval_every=3", "train.evals_per_epoch=2"])
    context = ProbeContext(None, None, BatchOrder(32, BATCH, seed=0), cfg)
    interval = measurement_interval(context, every=2)
    assert [step for step in range(0, 13, 2) if step % interval == 0] == [0, 4, 8, 12]


def test_the_probes_need_the_runs_optimizer():
    data, model = tiny_data(), tiny_net(with_bn=False)
    with pytest.raises(ValueError, match="the ics probe needs the run's optimizer"):
        runner(model, data, None, {"ics": {"every": 1}})
