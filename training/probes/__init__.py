"""Probes: every measurement a claim needs, taken during training and at the end of a run.

Chosen by the `probes` config group, several at once (`probes=[activations,saturation]`,
`probes=[]` for none); each probe's settings are `probes.<name>.*` (configs/probes/<name>.yaml),
checked before training like every other setting. `training/probes/base.py` says what a probe
is; a new claim is one probe file registered here, one probe config and one experiment file.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import torch
from omegaconf import OmegaConf

from training.probes.activations import Activations
from training.probes.base import Probe, ProbeContext, ProbeSettingError, parse_settings
from training.probes.bn_math import BNMath
from training.probes.grad_norms import GradNorms
from training.probes.ics import ICS
from training.probes.insert_pretrained import InsertPretrained
from training.probes.landscape import Landscape
from training.probes.predictions import Predictions
from training.probes.saturation import Saturation
from training.probes.scale_invariance import ScaleInvariance
from training.probes.test_time_stats import TestTimeStats

log = logging.getLogger(__name__)

PROBES: dict[str, type[Probe]] = {
    probe.name: probe
    for probe in (
        Activations, Saturation, GradNorms, TestTimeStats, ScaleInvariance, InsertPretrained, BNMath, ICS, Landscape,
        Predictions,
    )
}
PROBE_NAMES = tuple(PROBES)


def probe_settings(probes_cfg) -> dict[str, dict]:
    """{name: settings} of the chosen probes, as plain values."""
    if probes_cfg is None:
        return {}
    return OmegaConf.to_container(probes_cfg, resolve=True) if OmegaConf.is_config(probes_cfg) else dict(probes_cfg)


def check_probes(probes_cfg) -> None:
    """Raise ProbeSettingError for an unknown probe or a bad setting of a chosen one."""
    for name, values in probe_settings(probes_cfg).items():
        if name not in PROBES:
            raise ProbeSettingError(f"probes: unknown probe {name!r}; choose from {', '.join(PROBE_NAMES)}")
        if not isinstance(values, dict):
            raise ProbeSettingError(f"probes.{name} must be a group of settings, got {values!r}")
        parse_settings(PROBES[name], values)


class ProbeRunner:
    """Calls the chosen probes at each evaluation and at the end, leaving training untouched:
    modules' train/eval flags restored, random-number state as it was, no gradient recorded
    unless a probe computes one itself."""

    def __init__(self, probes_cfg, context: ProbeContext):
        self.context = context
        self.probes = [PROBES[name](parse_settings(PROBES[name], values), context)
                       for name, values in probe_settings(probes_cfg).items()]

    def at_eval(self, step: int) -> dict:
        metrics = {}
        for probe in self.probes:
            with self._untouched(probe):
                metrics.update(probe.at_eval(step))
        return metrics

    def at_end(self) -> dict[str, dict]:
        """{probe name: its result} for the probes that have an end-of-run result."""
        results = {}
        for probe in self.probes:
            started = time.perf_counter()
            with self._untouched(probe):
                result = probe.at_end()
            if result is not None:
                results[probe.name] = result
                log.info("%s: measured at the end of the run in %.1f s", probe.name, time.perf_counter() - started)
        return results

    @contextmanager
    def _untouched(self, probe: Probe):
        model = self.context.model
        flags = [(module, module.training) for module in model.modules()]
        devices = [self.context.data.train_x.device] if self.context.data.train_x.is_cuda else []
        try:
            with torch.random.fork_rng(devices=devices):
                if probe.eval_mode:
                    model.eval()
                yield
        finally:
            for module, training in flags:
                module.training = training


__all__ = ["PROBES", "PROBE_NAMES", "Probe", "ProbeContext", "ProbeRunner", "ProbeSettingError", "check_probes"]
