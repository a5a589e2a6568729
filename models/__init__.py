"""The networks: an MLP and a 7-layer CNN with configurable BN, and their initialization.

Importing the package imports no torch (models.choices is read by the command line's checks
before torch is loaded); the networks' modules load when `build_model`, `BNSpec` or `initialize`
is first used."""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from models.choices import ARCHITECTURES

if TYPE_CHECKING:
    from torch import nn

    from models.init import initialize
    from models.layers import BNSpec

_LAZY = {"BNSpec": "models.layers", "initialize": "models.init"}


def build_model(model_cfg, bn_cfg, init_cfg, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    """The network described by the `model`, `bn` and `init` config groups."""
    from models.cnn import build_cnn
    from models.init import initialize
    from models.layers import BNSpec
    from models.mlp import build_mlp

    bn = BNSpec.from_config(bn_cfg)
    if model_cfg.name == "mlp":
        model = build_mlp(input_shape, classes, list(model_cfg.hidden), model_cfg.activation, bn, model_cfg.dropout)
    elif model_cfg.name == "cnn":
        model = build_cnn(input_shape, classes, list(model_cfg.channels), model_cfg.activation, bn, model_cfg.dropout)
    else:
        raise ValueError(f"unknown model {model_cfg.name!r}; choose one of {ARCHITECTURES}")
    initialize(
        model,
        init_cfg.name,
        scale=init_cfg.scale,
        std=init_cfg.get("std", 0.01),
        a=init_cfg.get("a", 0.001),
    )
    return model


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


__all__ = ["ARCHITECTURES", "BNSpec", "build_model", "initialize"]
