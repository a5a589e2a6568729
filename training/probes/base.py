"""What a probe is: a measurement taken while a run trains and/or when it ends.

A probe is built once per run from its settings (`configs/probes/<name>.yaml`, `probes.<name>.*`)
and a `ProbeContext`, then
- `at_eval(step)` runs at every evaluation (step 0 included) and returns flat metric keys
  (`act/fc3/p50`, `sat/fc1`, ...) that join that step's metrics line; a value that is a 1-D
  numpy array is a distribution: it goes to the tracker as a histogram, never into metrics.jsonl;
- `at_end()` runs once after a completed run and returns a nested dict that goes into
  summary.json under the probe's name ({"skipped": reason} where it does not apply).

Probes leave training untouched: the runner (`training.probes.ProbeRunner`) calls them with the
model in eval mode unless a probe documents otherwise, restores every module's mode afterwards
and runs them inside `torch.random.fork_rng`, so a run with and without probes trains to the same
weights. A probe that needs BN in training mode restores BN's running statistics itself.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn as nn

from training.data import BatchOrder, InMemoryData


@dataclass
class ProbeContext:
    """What probes may look at: the run's model, data, batch order, whole config and optimizer."""

    model: nn.Module
    data: InMemoryData
    order: BatchOrder
    cfg: Any
    # The run's optimizer, for probes that take (a copy of) its next step; never stepped itself.
    optimizer: torch.optim.Optimizer | None = None
    # BN's running averages as they were before the paper's Alg. 2 replaced them at the end of a
    # run with bn.eval_stats=population (None otherwise): test_time_stats compares both.
    ema_bn_state: dict[str, torch.Tensor] | None = None


# The key of an end-of-run result that does not apply to the network: {SKIPPED: reason}.
SKIPPED = "skipped"


class ProbeSettingError(ValueError):
    """A probe setting that cannot work; the message names it (probes.<name>.<key>)."""


@dataclass
class ProbeSettings:
    """Base of each probe's settings: a dataclass whose fields are the keys of its config file.
    `check()` raises ProbeSettingError for values out of range."""

    def check(self, name: str) -> None:
        pass


class Probe:
    name: ClassVar[str]
    Settings: ClassVar[type[ProbeSettings]] = ProbeSettings
    # Whether at_eval/at_end need the model in eval mode (the runner sets it and restores it).
    eval_mode: ClassVar[bool] = True

    def __init__(self, settings: ProbeSettings, context: ProbeContext):
        self.settings = settings
        self.context = context

    def at_eval(self, step: int) -> dict[str, Any]:
        return {}

    def at_end(self) -> dict | None:
        return None


def parse_settings(probe: type[Probe], values: dict) -> ProbeSettings:
    """The probe's Settings from a config node, refusing unknown keys and bad values."""
    known = {f.name: f for f in fields(probe.Settings)}
    for key in values:
        if key not in known:
            raise ProbeSettingError(
                f"probes.{probe.name}.{key} is not a setting of the {probe.name} probe"
                f" (its settings: {', '.join(known) or 'none'})"
            )
    settings = probe.Settings(**values)
    settings.check(probe.name)
    return settings


def require_int(name: str, key: str, value, low: int | None = None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise ProbeSettingError(f"probes.{name}.{key} must be a whole number{bound}, got {value!r}")


def require_number(name: str, key: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise ProbeSettingError(f"probes.{name}.{key} must be a number in ({low}, {high}), got {value!r}")
