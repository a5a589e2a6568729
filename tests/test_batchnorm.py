import pytest
import torch
from torch import nn

from models.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction, population_statistics

TORCH_EQUIVALENT = {BatchNorm1d: nn.BatchNorm1d, BatchNorm2d: nn.BatchNorm2d}
TORCH_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
OUR_BN = (BatchNorm1d, BatchNorm2d)

CASES = [
    pytest.param(BatchNorm1d, (2, 5), id="1d-batch2"),
    pytest.param(BatchNorm1d, (60, 100), id="1d-mlp"),
    pytest.param(BatchNorm1d, (4, 3, 7), id="1d-NCL"),
    pytest.param(BatchNorm2d, (3, 4, 5, 3), id="2d-odd-spatial"),
    pytest.param(BatchNorm2d, (1, 2, 3, 1), id="2d-batch1"),
]


def assert_close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def make_pair(cls, num_features, **kwargs):
    """Our layer and torch's, with the same non-trivial gamma/beta."""
    ours = cls(num_features, **kwargs)
    if ours.affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.uniform_(-0.5, 0.5)
    ref = TORCH_EQUIVALENT[cls](num_features, **kwargs)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def forward_backward(layer, x, grad_out):
    x = x.clone().requires_grad_()
    for p in layer.parameters():
        p.grad = None
    out = layer(x)
    out.backward(grad_out)
    return out.detach(), x.grad, [p.grad for p in layer.parameters()]


def assert_same_step(ours, ref, shape):
    x = torch.randn(shape) * 3 + 2  # offset and scale so centering/normalizing matter
    grad_out = torch.randn(shape)
    out, dx, param_grads = forward_backward(ours, x, grad_out)
    ref_out, ref_dx, ref_param_grads = forward_backward(ref, x, grad_out)
    assert_close(out, ref_out)
    assert_close(dx, ref_dx)
    assert len(param_grads) == len(ref_param_grads)
    for grad, ref_grad in zip(param_grads, ref_param_grads):
        assert_close(grad, ref_grad)
    for name, buffer in ref.named_buffers():
        assert_close(getattr(ours, name), buffer)


@pytest.mark.parametrize("cls, shape", CASES)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_matches_torch_train_then_eval(cls, shape, momentum, affine):
    torch.manual_seed(0)
    ours, ref = make_pair(cls, shape[1], momentum=momentum, affine=affine)
    for _ in range(3):
        assert_same_step(ours, ref, shape)
    assert ours.num_batches_tracked.item() == 3
    ours.eval()
    ref.eval()
    for _ in range(2):
        assert_same_step(ours, ref, shape)
    assert ours.num_batches_tracked.item() == 3


@pytest.mark.parametrize("cls, shape", CASES[:4])
def test_without_running_stats_matches_torch(cls, shape):
    torch.manual_seed(0)
    ours, ref = make_pair(cls, shape[1], track_running_stats=False)
    assert ours.running_mean is None and ours.num_batches_tracked is None
    assert_same_step(ours, ref, shape)
    ours.eval()
    ref.eval()
    assert_same_step(ours, ref, shape)  # eval falls back to batch statistics


@pytest.mark.parametrize("cls", OUR_BN)
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"momentum": None, "eps": 1e-3}])
def test_state_dict_round_trips_with_torch(cls, kwargs):
    torch.manual_seed(0)
    shape = (4, 3) if cls is BatchNorm1d else (4, 3, 2, 2)
    ours, ref = make_pair(cls, 3, **kwargs)
    assert repr(ours) == repr(ref)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    ours(torch.randn(shape))
    ours(torch.randn(shape))

    state = ours.state_dict()
    assert {k: (v.shape, v.dtype) for k, v in state.items()} == {
        k: (v.shape, v.dtype) for k, v in ref.state_dict().items()
    }
    fresh_ref = TORCH_EQUIVALENT[cls](3, **kwargs)
    fresh_ref.load_state_dict(state)  # strict
    fresh_ours = cls(3, **kwargs)
    fresh_ours.load_state_dict(fresh_ref.state_dict())  # strict, back again
    for key, value in state.items():
        torch.testing.assert_close(fresh_ours.state_dict()[key], value, rtol=0, atol=0)

    x = torch.randn(shape)
    assert_close(fresh_ours.eval()(x), fresh_ref.eval()(x))


def test_reset_parameters_restores_defaults():
    bn = BatchNorm1d(3)
    bn(torch.randn(5, 3) + 4)
    with torch.no_grad():
        bn.weight.fill_(2)
    bn.reset_parameters()
    for name, value in nn.BatchNorm1d(3).state_dict().items():
        torch.testing.assert_close(bn.state_dict()[name], value)


@pytest.mark.parametrize("cls, shape", [(BatchNorm1d, (5, 3)), (BatchNorm1d, (3, 2, 4)), (BatchNorm2d, (2, 3, 3, 2))])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_float64(cls, shape, training):
    torch.manual_seed(0)
    bn = cls(shape[1], dtype=torch.float64).train(training)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(shape[1], dtype=torch.float64).add_(0.5).requires_grad_()
    bias = torch.randn(shape[1], dtype=torch.float64, requires_grad=True)

    def run(x, weight, bias):
        return torch.func.functional_call(bn, {"weight": weight, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(run, (x, weight, bias))


def test_gradcheck_without_affine():
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    bn = BatchNorm2d(3, affine=False, dtype=torch.float64)
    assert torch.autograd.gradcheck(bn, (x,))


def test_closed_form_backward_is_used(monkeypatch):
    calls = []
    original = BatchNormFunction.backward

    def spy(ctx, grad_out):
        calls.append(grad_out.shape)
        return original(ctx, grad_out)

    monkeypatch.setattr(BatchNormFunction, "backward", staticmethod(spy))
    x = torch.randn(6, 4, requires_grad=True)
    out = BatchNorm1d(4)(x)
    # One custom node whose inputs are the leaves: no autograd graph of the forward ops.
    assert isinstance(out.grad_fn, BatchNormFunction._backward_cls)
    assert type(out.grad_fn.next_functions[0][0]).__name__ == "AccumulateGrad"
    out.pow(2).sum().backward()
    assert calls == [torch.Size([6, 4])]
    assert x.grad is not None


def test_double_backward_is_refused():
    x = torch.randn(6, 4, requires_grad=True)
    (dx,) = torch.autograd.grad(BatchNorm1d(4)(x).pow(3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        dx.sum().backward()


def test_output_may_be_modified_in_place():
    for affine in (True, False):
        x = torch.randn(6, 4, requires_grad=True)
        out = BatchNorm1d(4, affine=affine)(x)
        torch.relu_(out)  # e.g. ReLU(inplace=True) after BN
        out.sum().backward()
        assert x.grad is not None


@pytest.mark.parametrize("layer, x, message", [
    (BatchNorm1d(3), torch.randn(2, 3, 4, 5), r"expected 2D or 3D input \(got 4D input\)"),
    (BatchNorm1d(3), torch.randn(3), r"expected 2D or 3D input \(got 1D input\)"),
    (BatchNorm2d(3), torch.randn(2, 3), r"expected 4D input \(got 2D input\)"),
    (BatchNorm1d(3), torch.randn(4, 5), r"expected 3 channels .* got input with 5 channels"),
    (BatchNorm2d(3), torch.randn(2, 4, 5, 5), r"expected 3 channels .* got input with 4 channels"),
    (BatchNorm1d(3), torch.randn(1, 3), r"Expected more than 1 value per channel when training, got input size"),
    (BatchNorm1d(3), torch.randn(1, 3, 1), r"Expected more than 1 value per channel when training"),
    (BatchNorm2d(3), torch.randn(1, 3, 1, 1), r"Expected more than 1 value per channel when training"),
])
def test_bad_input_raises_value_error(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


def test_dimension_and_batch_size_messages_match_torch():
    for ours, ref, x in [
        (BatchNorm1d(3), nn.BatchNorm1d(3), torch.randn(2, 3, 4, 5)),
        (BatchNorm2d(3), nn.BatchNorm2d(3), torch.randn(2, 3, 4)),
        (BatchNorm1d(3), nn.BatchNorm1d(3), torch.randn(1, 3)),
    ]:
        with pytest.raises(ValueError) as ours_error:
            ours(x)
        with pytest.raises(ValueError) as ref_error:
            ref(x)
        assert str(ours_error.value) == str(ref_error.value)


def test_single_sample_allowed_in_eval():
    ours, ref = make_pair(BatchNorm1d, 3)
    x = torch.randn(1, 3)
    assert_close(ours.eval()(x), ref.eval()(x))


# --- population statistics (Alg. 2) ---------------------------------------------------------


def mlp(bn1d):
    return nn.Sequential(
        nn.Linear(6, 8), bn1d(8), nn.Sigmoid(), nn.Dropout(0.5),
        nn.Linear(8, 5), bn1d(5), nn.Sigmoid(), nn.Linear(5, 3),
    )


def cnn(bn2d):
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), bn2d(3), nn.ReLU(), nn.Dropout(0.5),
        nn.Conv2d(3, 4, 3, padding=1), bn2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 4, 3),
    )


def alg2_reference(model, batches):
    """Alg. 2 by hand: walk the Sequential, normalizing BN inputs with batch statistics
    (biased variance) and skipping Dropout; per BN layer return
    (mean of batch means, m/(m-1) * mean of batch variances)."""
    per_layer = {}
    with torch.no_grad():
        for x in batches:
            h = x
            for layer in model:
                if isinstance(layer, nn.Dropout):
                    continue
                if not isinstance(layer, TORCH_BN + OUR_BN):
                    h = layer(h)
                    continue
                dims = [0] + list(range(2, h.dim()))
                mean, var = h.mean(dims), h.var(dims, unbiased=False)
                m = h.numel() // h.shape[1]
                per_layer.setdefault(layer, []).append((mean, var, m))
                shape = (1, -1) + (1,) * (h.dim() - 2)
                h = (h - mean.view(shape)) / (var.view(shape) + layer.eps).sqrt()
                h = h * layer.weight.view(shape) + layer.bias.view(shape)
    expected = {}
    for layer, stats in per_layer.items():
        means, variances, ms = zip(*stats)
        m = ms[0]
        expected[layer] = (torch.stack(means).mean(0), m / (m - 1) * torch.stack(variances).mean(0))
    return expected


@pytest.mark.parametrize("build, bn, input_shape", [
    pytest.param(mlp, nn.BatchNorm1d, (10, 6), id="mlp-torch"),
    pytest.param(mlp, BatchNorm1d, (10, 6), id="mlp-ours"),
    pytest.param(cnn, nn.BatchNorm2d, (3, 2, 7, 6), id="cnn-torch"),
    pytest.param(cnn, BatchNorm2d, (3, 2, 7, 6), id="cnn-ours"),
])
@pytest.mark.parametrize("start_training", [True, False])
def test_population_statistics_match_alg2(build, bn, input_shape, start_training):
    torch.manual_seed(0)
    model = build(bn).double()
    bn_layers = [layer for layer in model if isinstance(layer, bn)]
    with torch.no_grad():
        for layer in bn_layers:
            layer.weight.uniform_(0.5, 2.0)
            layer.bias.uniform_(-1.0, 1.0)
            layer.running_mean.fill_(123.0)
            layer.running_var.fill_(456.0)
            layer.num_batches_tracked.fill_(7)
    model.train(start_training)
    batches = [torch.randn(input_shape, dtype=torch.float64) * 2 + 1 for _ in range(4)]
    params_before = {name: p.clone() for name, p in model.named_parameters()}
    expected = alg2_reference(model, batches)

    assert population_statistics(model, iter(batches)) == len(batches)

    assert len(expected) == len(bn_layers) == 2
    for layer in bn_layers:
        expected_mean, expected_var = expected[layer]
        torch.testing.assert_close(layer.running_mean, expected_mean)
        torch.testing.assert_close(layer.running_var, expected_var)
        assert layer.num_batches_tracked.item() == 7
        assert layer.track_running_stats
        assert not layer._forward_pre_hooks
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, params_before[name], rtol=0, atol=0)
    assert all(module.training == start_training for module in model.modules())


def test_population_statistics_keeps_mixed_training_flags():
    model = mlp(BatchNorm1d)
    model.train()
    model[3].eval()  # the Dropout
    model[5].eval()  # the second BN
    flags = [module.training for module in model.modules()]
    population_statistics(model, [torch.randn(4, 6)])
    assert [module.training for module in model.modules()] == flags


def test_population_statistics_errors():
    model = mlp(BatchNorm1d).train()
    with pytest.raises(ValueError, match="empty"):
        population_statistics(model, [])
    with pytest.raises(ValueError, match="no BatchNorm"):
        population_statistics(nn.Sequential(nn.Linear(3, 3)), [torch.randn(4, 3)])
    with pytest.raises(ValueError, match="at least 2 values per channel"):
        population_statistics(model, [torch.randn(1, 6)])
    assert all(module.training for module in model.modules())
    for layer in (model[1], model[5]):
        assert layer.track_running_stats and not layer._forward_pre_hooks
        assert layer.num_batches_tracked.item() == 0
        torch.testing.assert_close(layer.running_var, torch.ones(layer.num_features))
