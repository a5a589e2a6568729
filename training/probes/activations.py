"""The `activations` probe: how the input of each hidden nonlinearity is distributed (paper Fig. 1b,c).

Over a fixed set of test examples (the first `examples` of the test set, the same at every
evaluation), for each hidden layer's nonlinearity input (after BN where BN comes before it):
- `act/<layer>/p15`, `p50`, `p85`: the paper's percentiles of each unit's values, averaged over
  the layer's units (a conv channel's values pool examples and positions);
- `act/<layer>/u<k>/p15|p50|p85`: the same for `units` fixed units, k their index in the layer
  (evenly spaced, so the paper's "one sigmoid of the last hidden layer" is among them);
- `act/<layer>/mean`, `std`, `skew`, `kurt`: each unit's moments (std with ddof 0, kurt the excess
  kurtosis, 0 for a Gaussian), averaged over units; skew and kurt skip units with no spread;
- `bnin/<layer>/skew`, `kurt`: the same two for the input of that layer's BN, where it has one
  (how Gaussian the BN input is in each placement, claim C6);
- `act/<layer>/hist`: up to 10,000 of the values, for the tracker's histograms only.
Step 0 is recorded, so each layer's scale at initialization (`act/<layer>/std`) is in the record.
The network runs in eval mode (no dropout) except BN, which normalizes with the statistics of the
fixed examples themselves, as a training batch is normalized, leaving its running averages alone,
and the noise layers of bn=noisy, which add fresh noise as at a training step: what the
nonlinearity sees during training, from step 0 on (the running averages are still PyTorch's
initial mean 0, variance 1 at step 0 and would pass the input's raw scale through).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from training.probes.base import Probe, ProbeSettings, require_int
from training.probes.layers import capture_inputs, hidden_layers, normalization_as_in_training, per_unit

MAX_VALUES_PER_UNIT = 50_000  # conv channels pool examples x positions; a fixed stride keeps sorting cheap
HISTOGRAM_VALUES = 10_000

# The keys this probe writes (analysis code imports them). <layer> is fc<i> / conv<i>; any string
# goes, so a regular expression's group finds the layers in a record: layer_key(r"([^/]+)", "std").
PERCENTILES = (15, 50, 85)  # act/<layer>/p15 ...: percentile(p)
MOMENTS = ("mean", "std", "skew", "kurt")  # act/<layer>/<moment>
BN_INPUT_MOMENTS = ("skew", "kurt")  # bnin/<layer>/<moment>
HIST = "hist"  # act/<layer>/hist: for the tracker only, never in metrics.jsonl


def percentile(p: int) -> str:
    """The statistic of the p-th percentile: p15, p50, p85."""
    return f"p{p}"


def layer_key(layer: str, stat: str) -> str:
    """act/<layer>/<stat>: stat a percentile (p15, p50, p85, averaged over units), a moment (MOMENTS) or HIST."""
    return f"act/{layer}/{stat}"


def unit_key(layer: str, unit: int | str, stat: str) -> str:
    """act/<layer>/u<unit>/<stat>: a percentile of tracked unit `unit`."""
    return f"act/{layer}/u{unit}/{stat}"


def bn_input_key(layer: str, stat: str) -> str:
    """bnin/<layer>/<stat>: a moment (BN_INPUT_MOMENTS) of the input of the layer's BN."""
    return f"bnin/{layer}/{stat}"


@dataclass
class ActivationSettings(ProbeSettings):
    examples: int = 1000  # fixed test examples (fewer if the test set is smaller)
    units: int = 3  # tracked units per layer

    def check(self, name: str) -> None:
        require_int(name, "examples", self.examples, low=1)
        require_int(name, "units", self.units, low=0)


class Activations(Probe):
    name = "activations"
    Settings = ActivationSettings

    def __init__(self, settings, context):
        super().__init__(settings, context)
        self.examples = context.data.test_x[: settings.examples]
        self.layers = hidden_layers(context.model)

    def at_eval(self, step: int) -> dict:
        modules = {layer.name: layer.activation for layer in self.layers}
        modules.update({f"bn:{layer.name}": layer.bn for layer in self.layers if layer.bn is not None})
        with normalization_as_in_training(self.context.model):
            inputs = capture_inputs(self.context.model, self.examples, modules)
        metrics = {}
        for layer in self.layers:
            values = thin(per_unit(inputs[layer.name]).float())
            metrics.update(percentile_keys(layer.name, values, tracked_units(len(values), self.settings.units)))
            metrics.update({layer_key(layer.name, k): v for k, v in moments(values).items()})
            metrics[layer_key(layer.name, HIST)] = histogram_sample(values)
            if layer.bn is not None:
                bn_values = thin(per_unit(inputs[f"bn:{layer.name}"]).float())
                shape = moments(bn_values)
                metrics.update({bn_input_key(layer.name, k): shape[k] for k in BN_INPUT_MOMENTS})
        return metrics


def tracked_units(width: int, count: int) -> list[int]:
    """`count` unit indices spread evenly over a layer of `width` units, first and last included."""
    count = min(count, width)
    if count <= 0:
        return []
    return sorted({round(i * (width - 1) / max(count - 1, 1)) for i in range(count)})


def thin(values: torch.Tensor) -> torch.Tensor:
    """(units, n) -> (units, <= MAX_VALUES_PER_UNIT): every k-th value, the same ones at every call."""
    stride = -(-values.shape[1] // MAX_VALUES_PER_UNIT)
    return values[:, ::stride]


def percentile_keys(layer: str, values: torch.Tensor, units: list[int]) -> dict[str, float]:
    """p15/p50/p85 per unit (linear interpolation, as numpy.percentile), averaged over units,
    and for each tracked unit."""
    q = torch.tensor([p / 100 for p in PERCENTILES], dtype=values.dtype, device=values.device)
    per_unit_q = torch.quantile(values, q, dim=1)  # (3, units)
    keys = {layer_key(layer, percentile(p)): per_unit_q[i].mean().item() for i, p in enumerate(PERCENTILES)}
    for unit in units:
        keys.update({unit_key(layer, unit, percentile(p)): per_unit_q[i, unit].item() for i, p in enumerate(PERCENTILES)})
    return keys


def moments(values: torch.Tensor) -> dict[str, float | None]:
    """Per-unit mean, std (ddof 0), skewness and excess kurtosis, averaged over units."""
    values = values.double()
    mean = values.mean(dim=1)
    centered = values - mean[:, None]
    var = centered.square().mean(dim=1)
    std = var.sqrt()
    spread = std > 1e-12 * (1 + mean.abs())
    result = {"mean": mean.mean().item(), "std": std.mean().item(), "skew": None, "kurt": None}
    if spread.any():
        c, v = centered[spread], var[spread]
        result["skew"] = (c.pow(3).mean(dim=1) / v.pow(1.5)).mean().item()
        result["kurt"] = (c.pow(4).mean(dim=1) / v.square() - 3.0).mean().item()
    return result


def histogram_sample(values: torch.Tensor):
    flat = values.reshape(-1)
    stride = -(-flat.numel() // HISTOGRAM_VALUES)
    return flat[::stride].cpu().numpy()
