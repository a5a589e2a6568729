"""BN's scale invariance (paper Sec. 3.3, claim C5) and the redundant bias before BN (C8)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.probes.bn_identities import (
    _normalize,
    bias_before_bn_effect,
    eps_forward_error,
    scale_invariance_errors,
    weight_gradient_ratio,
)

SCALES = (0.01, 0.1, 10, 100)
# Inputs this large make var(Wu) ~ 1e7, so eps / a^2 <= 0.1 is negligible against it.
LARGE_INPUT = 1e3


def random_layer(kind: str, input_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    if kind == "linear":
        weight_shape, input_shape = (8, 12), (64, 12)
    else:
        weight_shape, input_shape = (4, 3, 3, 3), (8, 3, 6, 6)
    weight = torch.randn(weight_shape, generator=gen, dtype=torch.float64)
    return weight, input_scale * torch.randn(input_shape, generator=gen, dtype=torch.float64)


KINDS = ("linear", "conv")


def test_normalization_is_batch_norm_in_training_mode():
    x = torch.randn(8, 3, 5, 5, dtype=torch.float64)
    expected = F.batch_norm(x, None, None, training=True, eps=1e-5)
    torch.testing.assert_close(_normalize(x, 1e-5), expected)


@pytest.mark.parametrize("a", SCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_scale_invariance_identities_hold(kind, a):
    weight, u = random_layer(kind, LARGE_INPUT)
    assert eps_forward_error(weight, u, a) < 1e-8  # the inputs make eps negligible
    errors = scale_invariance_errors(weight, u, a)
    assert set(errors) == {"forward", "grad_input", "grad_weight"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("a", (0.01, 100))
@pytest.mark.parametrize("kind", KINDS)
def test_identities_are_exact_without_eps(kind, a):
    weight, u = random_layer(kind, 0.01)
    assert max(scale_invariance_errors(weight, u, a, eps=0.0).values()) < 1e-12


@pytest.mark.parametrize("kind", KINDS)
def test_eps_breaks_invariance_for_small_scales_and_inputs(kind):
    # var(Wu) ~ 0.1 is comparable to eps / a^2 = 0.1: BN((aW)u) is visibly smaller than BN(Wu).
    weight, u = random_layer(kind, 0.1)
    errors = scale_invariance_errors(weight, u, 0.01)
    assert min(errors.values()) > 0.1, errors
    assert errors["forward"] == pytest.approx(eps_forward_error(weight, u, 0.01), rel=1e-6)
    # Even unit-scale inputs and a large scale leave an error of about eps / (2 var), above 1e-7.
    weight, u = random_layer(kind, 1.0)
    assert scale_invariance_errors(weight, u, 100)["forward"] > 1e-7


@pytest.mark.parametrize("a", (0.1, 10, 100))
@pytest.mark.parametrize("kind", KINDS)
def test_larger_weights_get_smaller_gradients(kind, a):
    weight, u = random_layer(kind, LARGE_INPUT)
    assert weight_gradient_ratio(weight, u, a) == pytest.approx(1 / a, rel=1e-6)


def test_float32_layers_of_a_network_are_measured_in_float64():
    layer = torch.nn.Linear(12, 8)
    u = LARGE_INPUT * torch.randn(64, 12)
    assert max(scale_invariance_errors(layer.weight, u, 10).values()) < 1e-6
    assert layer.weight.grad is None


@pytest.mark.parametrize("kind", KINDS)
def test_bias_before_bn_has_no_gradient_and_no_effect(kind):
    weight, u = random_layer(kind)
    effect = bias_before_bn_effect(weight, u, perturbation=5.0)
    assert effect["grad_norm_ratio"] < 1e-6 and effect["output_change"] < 1e-6, effect


@pytest.mark.parametrize("kind", KINDS)
def test_without_bn_the_bias_matters(kind):
    weight, u = random_layer(kind)
    effect = bias_before_bn_effect(weight, u, perturbation=5.0, normalize=False)
    assert effect["grad_norm_ratio"] > 1e-2 and effect["output_change"] > 1e-2, effect


def test_bad_arguments():
    weight, u = random_layer("linear")
    with pytest.raises(ValueError, match="positive"):
        scale_invariance_errors(weight, u, 0.0)
    with pytest.raises(ValueError, match="Linear .* or Conv2d"):
        bias_before_bn_effect(torch.randn(2, 3, 4), u)
