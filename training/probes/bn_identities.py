"""Numerical checks of BN's scale invariance (paper Sec. 3.3, claim C5) and of the
redundancy of a bias right before BN (paper Sec. 3.2, claim C8).

Each function takes a layer's weight and an input batch u, so the same measurement runs on
random layers and on layers of trained networks. The weight is a Linear weight (out, in) with
u of shape (N, in), or a Conv2d weight (out, in, k, k) with u of shape (N, in, H, W) (padding
k // 2). BN is the plain normalization with batch statistics (gamma = 1, beta = 0). All
arithmetic is float64; results are relative errors ||x - ref|| / ||ref|| as floats.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "scale_invariance_errors", "eps_forward_error", "weight_gradient_ratio", "bias_before_bn_effect",
    "FORWARD", "GRAD_INPUT", "GRAD_WEIGHT", "GRAD_NORM_RATIO", "OUTPUT_CHANGE",
]

# The keys of the dicts these functions return (the scale_invariance probe's result holds them).
FORWARD, GRAD_INPUT, GRAD_WEIGHT = "forward", "grad_input", "grad_weight"  # scale_invariance_errors
GRAD_NORM_RATIO, OUTPUT_CHANGE = "grad_norm_ratio", "output_change"  # bias_before_bn_effect


def _layer(weight: Tensor, u: Tensor, bias: Tensor | None = None) -> Tensor:
    if weight.dim() == 2:
        return F.linear(u, weight, bias)
    if weight.dim() == 4:
        return F.conv2d(u, weight, bias, padding=weight.shape[-1] // 2)
    raise ValueError(f"expected a Linear (2D) or Conv2d (4D) weight, got {weight.dim()}D")


def _normalize(x: Tensor, eps: float) -> Tensor:
    """F.batch_norm in training mode without running stats or affine, written out so eps = 0 works."""
    var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], correction=0, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


def _relative(x: Tensor, ref: Tensor) -> float:
    return float((x - ref).norm() / ref.norm())


def _layer_bn_grads(weight: Tensor, u: Tensor, eps: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """BN(weight u) and the gradients w.r.t. u and weight of <g, BN(weight u)>, g ~ N(0, 1) from `seed`."""
    w = weight.detach().double().requires_grad_()
    x = u.detach().double().requires_grad_()
    y = _normalize(_layer(w, x), eps)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    grad_u, grad_w = torch.autograd.grad(y, (x, w), g)
    return y.detach(), grad_u, grad_w


def _check_scale(a: float) -> None:
    if not a > 0:
        raise ValueError(f"the scale a must be positive, got {a}")


def scale_invariance_errors(
    weight: Tensor, u: Tensor, a: float, eps: float = 1e-5, seed: int = 0
) -> dict[str, float]:
    """Relative errors of the Sec. 3.3 identities for the scalar a > 0:

    forward:     BN((aW)u) = BN(Wu)
    grad_input:  d BN((aW)u)/du = d BN(Wu)/du
    grad_weight: a * d BN((aW)u)/d(aW) = d BN(Wu)/dW
    (gradients of the projection <g, BN(.)> with one fixed random g).

    The identities are exact only for eps = 0. With eps, BN((aW)u) normalizes by
    sqrt(var + eps / a^2) instead of sqrt(var + eps), so the errors are of order
    |eps - eps / a^2| / var(Wu): measurable when a is small and var(Wu) is not much larger
    than eps / a^2 (and about eps / (2 var) for a >> 1). `eps_forward_error` gives the
    forward error this predicts.
    """
    _check_scale(a)
    weight = weight.detach().double()
    y, grad_u, grad_w = _layer_bn_grads(weight, u, eps, seed)
    y_a, grad_u_a, grad_w_a = _layer_bn_grads(a * weight, u, eps, seed)
    return {
        FORWARD: _relative(y_a, y),
        GRAD_INPUT: _relative(grad_u_a, grad_u),
        GRAD_WEIGHT: _relative(a * grad_w_a, grad_w),
    }


def eps_forward_error(weight: Tensor, u: Tensor, a: float, eps: float = 1e-5) -> float:
    """The forward error of `scale_invariance_errors` that eps alone explains, in closed form.

    Per unit, BN((aW)u) - BN(Wu) = (x - mean) * (1/sqrt(var + eps/a^2) - 1/sqrt(var + eps))
    with x = Wu, so the squared norms sum var * d^2 over units against var / (var + eps).
    """
    _check_scale(a)
    x = _layer(weight.detach().double(), u.detach().double())
    var = x.var(dim=[0, *range(2, x.dim())], correction=0)
    d = (var + eps / a**2).rsqrt() - (var + eps).rsqrt()
    return float(((var * d.square()).sum() / (var / (var + eps)).sum()).sqrt())


def weight_gradient_ratio(weight: Tensor, u: Tensor, a: float, eps: float = 1e-5, seed: int = 0) -> float:
    """||dL/d(aW)|| / ||dL/dW|| for L = <g, BN(.)>: about 1/a, so larger weights get smaller gradients."""
    _check_scale(a)
    weight = weight.detach().double()
    grad_w = _layer_bn_grads(weight, u, eps, seed)[2]
    grad_w_a = _layer_bn_grads(a * weight, u, eps, seed)[2]
    return float(grad_w_a.norm() / grad_w.norm())


def bias_before_bn_effect(
    weight: Tensor,
    u: Tensor,
    eps: float = 1e-5,
    perturbation: float = 1.0,
    normalize: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """How much a bias b right before BN matters (claim C8), for x = Wu + b -> BN(x) -> L = <g, BN(x)>.

    grad_norm_ratio: ||dL/db|| / ||dL/dW||, ~0 since BN's mean subtraction cancels b.
    output_change: ||BN(x + delta) - BN(x)|| / ||BN(x)|| for a per-unit shift delta with
    entries perturbation * N(0, 1), ~0 likewise.
    b, delta and g are random from `seed`. `normalize=False` drops the BN step: the control,
    where both numbers are far from 0.
    """
    gen = torch.Generator().manual_seed(seed)
    w = weight.detach().double().requires_grad_()
    x = u.detach().double()
    b = torch.randn(weight.shape[0], generator=gen, dtype=torch.float64).requires_grad_()
    delta = perturbation * torch.randn(weight.shape[0], generator=gen, dtype=torch.float64)

    def forward(bias: Tensor) -> Tensor:
        out = _layer(w, x, bias)
        return _normalize(out, eps) if normalize else out

    y = forward(b)
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    grad_b, grad_w = torch.autograd.grad(y, (b, w), g)
    with torch.no_grad():
        shifted = forward(b + delta)
    return {GRAD_NORM_RATIO: float(grad_b.norm() / grad_w.norm()), OUTPUT_CHANGE: _relative(shifted, y.detach())}
