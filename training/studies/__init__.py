"""Studies: measurements made on a trained network at the end of a run (`study.name=...`).

A study is a function `study(context, **settings) -> dict` registered in STUDIES. Its settings
are the keys of the `study` config node other than `name`; its result goes into summary.json
under "study" (and into the wandb run's summary).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from training.data import BatchOrder, InMemoryData
from training.studies.insert_pretrained import insert_pretrained
from training.studies.scale_invariance import scale_invariance
from training.studies.test_time_stats import test_time_stats


@dataclass
class StudyContext:
    model: torch.nn.Module
    data: InMemoryData
    order: BatchOrder
    cfg: object  # the run's whole config


STUDIES: dict[str, Callable[..., dict]] = {
    "test_time_stats": test_time_stats,
    "scale_invariance": scale_invariance,
    "insert_pretrained": insert_pretrained,
}
STUDY_NAMES = tuple(STUDIES)


def run_study(study_cfg, context: StudyContext) -> dict:
    settings = {k: v for k, v in study_cfg.items() if k != "name"}
    return {"name": study_cfg.name, **STUDIES[study_cfg.name](context, **settings)}
