"""The `saturation` probe: how many sigmoid (or tanh) units sit where their derivative vanishes (C10).

Over the first `examples` test examples, for each hidden layer with a sigmoid or tanh: the
fraction of (example, unit) values whose derivative is below `threshold` times its maximum
(sigma' = sigma(1 - sigma) <= 1/4; tanh' = 1 - tanh^2 <= 1): key `sat/<layer>`. Layers with
other nonlinearities have no key. BN normalizes with the examples' own statistics and noise
layers add their noise, as in the activations probe.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from training.probes.base import SKIPPED, Probe, ProbeSettings, require_int, require_number
from training.probes.layers import capture_inputs, hidden_layers, normalization_as_in_training


# The key this probe writes (analysis code imports it): one per sigmoid/tanh layer (fc<i> / conv<i>;
# any string goes, e.g. a regular expression's group: layer_key(r"([^/]+)")).
def layer_key(layer: str) -> str:
    """sat/<layer>: the saturated fraction of the layer's nonlinearity inputs."""
    return f"sat/{layer}"


def relative_derivative(activation: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The nonlinearity's derivative at x divided by its maximum; None for other nonlinearities."""
    if isinstance(activation, nn.Sigmoid):
        s = torch.sigmoid(x)
        return s * (1 - s) * 4.0
    if isinstance(activation, nn.Tanh):
        return 1 - torch.tanh(x).square()
    return None


@dataclass
class SaturationSettings(ProbeSettings):
    examples: int = 1000
    threshold: float = 0.05  # saturated: derivative below this fraction of its maximum

    def check(self, name: str) -> None:
        require_int(name, "examples", self.examples, low=1)
        require_number(name, "threshold", self.threshold, 0.0, 1.0)


class Saturation(Probe):
    name = "saturation"
    Settings = SaturationSettings

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.examples = context.data.test_x[: settings.examples]
        self.layers = [layer for layer in hidden_layers(context.model)
                       if isinstance(layer.activation, (nn.Sigmoid, nn.Tanh))]

    def at_eval(self, step: int) -> dict:
        if not self.layers:
            return {}
        with normalization_as_in_training(self.context.model):
            inputs = capture_inputs(self.context.model, self.examples, {l.name: l.activation for l in self.layers})
        return {
            layer_key(layer.name): (relative_derivative(layer.activation, inputs[layer.name]) < self.settings.threshold)
            .float().mean().item()
            for layer in self.layers
        }

    def at_end(self) -> dict | None:
        return None if self.layers else {SKIPPED: "the network has no sigmoid or tanh layer"}
