"""Batch normalization written from the equations (Ioffe & Szegedy, 2015).

`BatchNorm1d` / `BatchNorm2d` are drop-in replacements for the torch modules
(same constructor, parameters, buffers and running-statistics rule) whose
backward pass is the closed form rather than autograd of the forward.
`population_statistics` implements Alg. 2: inference statistics averaged over
training mini-batches.
"""

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["BN_TYPES", "BatchNormFunction", "BatchNorm1d", "BatchNorm2d", "population_statistics"]


def _reduce_dims(x: Tensor) -> tuple[int, ...]:
    """Every dim except the channel dim 1."""
    return (0,) + tuple(range(2, x.dim()))


def _per_channel(t: Tensor, ndim: int) -> Tensor:
    """View a (C,) tensor so it broadcasts over an ndim-dim (N, C, ...) input."""
    return t if ndim == 2 else t.view((-1,) + (1,) * (ndim - 2))


class BatchNormFunction(torch.autograd.Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (dim 1).

    With `use_batch_stats`, mean and biased variance come from the batch and
    `running_mean` / `running_var` (if given) are updated in place with
    `momentum`; otherwise the running statistics are used as constants.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, use_batch_stats, momentum, eps):
        ndim, dims = x.dim(), _reduce_dims(x)
        if use_batch_stats:
            # Sums and alpha= scalings rather than torch.var_mean/mean: with batches this
            # small, per-op overhead dominates and var_mean is several times slower on CPU.
            n = x.numel() // x.shape[1]
            x_sum = x.sum(dims)
            xc = x.sub(_per_channel(x_sum, ndim), alpha=1.0 / n)
            sq_sum = (xc * xc).sum(dims)  # two-pass variance: no cancellation
            if running_mean is not None:  # torch's rule; running_var gets the unbiased variance
                running_mean.mul_(1.0 - momentum).add_(x_sum, alpha=momentum / n)
                running_var.mul_(1.0 - momentum).add_(sq_sum, alpha=momentum / (n - 1))
            invstd = sq_sum.mul_(1.0 / n).add_(eps).rsqrt_()  # 1/sqrt(biased variance + eps)
        else:
            xc = x - _per_channel(running_mean, ndim)
            invstd = (running_var + eps).rsqrt_()
        xhat = xc.mul_(_per_channel(invstd, ndim))
        if weight is None:
            out = xhat.clone()  # xhat is saved; the caller may modify the output in place
        else:
            out = torch.addcmul(_per_channel(bias, ndim), xhat, _per_channel(weight, ndim))
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.dims = dims
        ctx.use_batch_stats = use_batch_stats
        return out

    @staticmethod
    def backward(ctx, dout):
        if torch.is_grad_enabled():  # create_graph=True: make these grads error if differentiated
            return _backward_once_differentiable(ctx, dout)
        return _backward(ctx, dout)  # usual case, without once_differentiable's overhead


def _backward(ctx, dout):
    """Closed-form gradients (dx, dgamma, dbeta); nothing is differentiated automatically."""
    xhat, invstd, weight = ctx.saved_tensors
    ndim, dims = dout.dim(), ctx.dims
    dbeta = dout.sum(dims)
    dgamma = (dout * xhat).sum(dims)
    dx = None
    if ctx.needs_input_grad[0]:
        scale = invstd if weight is None else invstd * weight
        if ctx.use_batch_stats:
            # dx = (N*dxhat - sum(dxhat) - xhat*sum(xhat*dxhat)) / (N*sqrt(var+eps)) with
            # dxhat = dout*gamma, sum(dxhat) = gamma*dbeta and sum(xhat*dxhat) = gamma*dgamma,
            # i.e. dx = gamma*invstd * (dout - (dbeta + xhat*dgamma) / N).
            n = dout.numel() // dout.shape[1]
            correction = torch.addcmul(_per_channel(dbeta, ndim), xhat, _per_channel(dgamma, ndim))
            dx = dout.sub(correction, alpha=1.0 / n).mul_(_per_channel(scale, ndim))
        else:
            dx = dout * _per_channel(scale, ndim)  # constant statistics: a per-channel affine map
    if weight is None:
        return dx, None, None, None, None, None, None, None
    return dx, dgamma, dbeta, None, None, None, None, None


_backward_once_differentiable = once_differentiable(_backward)


class _BatchNorm(nn.Module):
    """Shared implementation; subclasses set the accepted input ranks."""

    _version = 2  # matches torch's BN so state_dict metadata is interchangeable
    _input_dims: tuple[int, ...] = ()
    _dims_message = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory))
            self.bias = nn.Parameter(torch.empty(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def _check_input(self, x: Tensor, use_batch_stats: bool) -> None:
        if x.dim() not in self._input_dims:
            raise ValueError(self._dims_message.format(x.dim()))
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: expected {self.num_features} channels (dim 1), "
                f"got input with {x.shape[1]} channels (input size {tuple(x.shape)})"
            )
        if use_batch_stats and x.numel() == self.num_features:
            raise ValueError(
                "Expected more than 1 value per channel when training, "
                f"got input size {x.size()}"
            )

    def forward(self, input: Tensor) -> Tensor:
        # Same decisions as torch's _BatchNorm.forward (buffers are looked up once: it is hot).
        running_mean, running_var = self.running_mean, self.running_var
        use_batch_stats = self.training or (running_mean is None and running_var is None)
        self._check_input(input, use_batch_stats)
        factor = 0.0
        if self.training:
            if self.track_running_stats:
                num_batches = self.num_batches_tracked
                if num_batches is not None:
                    num_batches.add_(1)
                    # momentum=None: cumulative moving average
                    factor = 1.0 / float(num_batches) if self.momentum is None else self.momentum
            else:
                running_mean = running_var = None
        return BatchNormFunction.apply(
            input, self.weight, self.bias, running_mean, running_var, use_batch_stats, factor, self.eps
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) input; statistics per channel C."""

    _input_dims = (2, 3)
    _dims_message = "expected 2D or 3D input (got {}D input)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) input; statistics per channel C."""

    _input_dims = (4,)
    _dims_message = "expected 4D input (got {}D input)"


# Every BN layer: torch's (BatchNorm1d/2d/3d) and this module's.
BN_TYPES = (nn.modules.batchnorm._BatchNorm, _BatchNorm)


def population_statistics(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Set every BN layer's running statistics to the population estimates of Alg. 2.

    Runs `model` on each training mini-batch with BN layers in training mode
    (batch statistics) and every other module in eval mode (e.g. no dropout),
    then sets per layer
        running_mean = mean over batches of the batch means,
        running_var  = m/(m-1) * mean over batches of the biased batch variances,
    where m = values per channel in that layer's input (batch * H * W for conv).
    If batch sizes differ, each batch's variance gets its own m/(m-1).
    Parameters and `num_batches_tracked` are left unchanged and training flags
    are restored. BN layers without running statistics are skipped. Returns
    the number of batches used.
    """
    layers = [
        module for module in model.modules()
        if isinstance(module, BN_TYPES) and module.running_mean is not None
    ]
    if not layers:
        raise ValueError("population_statistics: model has no BatchNorm layers with running statistics")

    sums = {}  # layer -> [sum of batch means, sum of unbiased batch variances (float64), calls]

    def collect(layer, args):
        x = args[0].detach()
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ValueError(
                f"population_statistics: need at least 2 values per channel, got input size {tuple(x.shape)}"
            )
        var, mean = torch.var_mean(x.double(), _reduce_dims(x), correction=0)
        acc = sums.setdefault(layer, [torch.zeros_like(mean), torch.zeros_like(var), 0])
        acc[0] += mean
        acc[1] += var * (m / (m - 1))
        acc[2] += 1

    flags = {module: module.training for module in model.modules()}
    tracking = {layer: layer.track_running_stats for layer in layers}
    handles = [layer.register_forward_pre_hook(collect) for layer in layers]
    count = 0
    try:
        model.eval()
        for layer in layers:
            # Training mode without tracking: batch statistics, buffers untouched.
            layer.train()
            layer.track_running_stats = False
        with torch.no_grad():
            for x in batches:
                model(x)
                count += 1
    finally:
        for handle in handles:
            handle.remove()
        for layer, tracked in tracking.items():
            layer.track_running_stats = tracked
        for module, training in flags.items():
            module.training = training

    if count == 0:
        raise ValueError("population_statistics: `batches` is empty")
    unused = [layer for layer in layers if layer not in sums]
    if unused:
        raise ValueError(f"population_statistics: BatchNorm layers never called by the model: {unused}")
    with torch.no_grad():
        for layer in layers:
            mean_sum, var_sum, calls = sums[layer]
            layer.running_mean.copy_(mean_sum / calls)
            layer.running_var.copy_(var_sum / calls)
    return count
