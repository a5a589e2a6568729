"""Noise that makes BN's output distribution unstable on purpose (Santurkar et al. 2018, Sec. 2.1).

After a BN layer, at every training forward pass, each unit j draws a mean and a scale,
    mu_j ~ U(-mu, mu),  sigma_j ~ U(1, sigma),
and each example i of the batch then draws its own shift and factor around them,
    m_ij ~ U(mu_j - r, mu_j + r),  s_ij ~ N(sigma_j, r^2),
so a_ij <- s_ij * a_ij + m_ij. The distribution a later layer sees therefore moves at every step,
which is the "covariate shift" BN is said to remove. A conv layer's unit is its channel (one draw
per example and channel, shared by the positions). Like dropout it acts only in training mode.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class ShiftingNoise(nn.Module):
    """a <- s * a + m with fresh draws at every training forward pass; the identity in eval mode."""

    def __init__(self, mu: float = 0.5, sigma: float = 1.25, r: float = 0.1):
        super().__init__()
        self.mu, self.sigma, self.r = mu, sigma, r

    def extra_repr(self) -> str:
        return f"mu={self.mu}, sigma={self.sigma}, r={self.r}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        batch, units = x.shape[:2]
        unit_mean = x.new_empty(units).uniform_(-self.mu, self.mu)
        unit_scale = x.new_empty(units).uniform_(1.0, self.sigma)
        shift = x.new_empty(batch, units).uniform_(-self.r, self.r).add_(unit_mean)
        factor = x.new_empty(batch, units).normal_(0.0, self.r).add_(unit_scale)
        per_position = (batch, units) + (1,) * (x.dim() - 2)  # conv maps: one draw per channel
        return torch.addcmul(shift.view(per_position), x, factor.view(per_position))
