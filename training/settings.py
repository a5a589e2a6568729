"""The settings train.py accepts, as a typed schema, and the one step that checks a config against it.

Every setting is a field of a dataclass below. Its annotation is its type (int, float, bool, str,
a list, Optional where null is allowed, Any where the field says what it takes); `setting(...)`
adds what a type cannot say: the `choices` of a str, the bounds `gt`/`ge`/`lt`/`le` of a number,
the bounds of `each` item of a list and its `length`, and `what` the value must be when the
generated message would be less clear. A group whose options have keys of their own has one
dataclass per option on a base of the shared ones (model=mlp has `hidden`, model=cnn
`channels`; init=gaussian `std`, init=uniform `a`; optim=sgd `momentum`, optim=adam `betas` and
`eps`; dataset=synthetic `shape`, `noise`, `generator_seed`; logger=wandb its own), chosen by
the group's `name` (configs/model/cnn_small.yaml is model.name=cnn). The schemas are registered
in Hydra's ConfigStore: the whole config as schema/train, each option as schema/<group>/<name>.
Settings that constrain one another are the RULES at the end.

The config files keep the defaults and the comments `--help` shows; the schema has no defaults of
its own (tests/test_configs.py checks that every option file gives exactly its schema's keys).
The composed config is used as it is: the schema checks it and converts nothing.

Nothing here imports torch: the command line is checked with it before torch loads.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from models.choices import (
    ACTIVATIONS, ARCHITECTURES, BN_IMPLS, BN_LAYERS, EVAL_STATS, INITS, NORMS, PLACEMENTS, TRAINABLE,
)
from training.choices import DATASETS, DEVICES, LOGGERS, OPTIMIZERS, WANDB_MODES


class ConfigError(ValueError):
    """A setting that cannot work; the message is one line and names it."""


def setting(*, choices=(), gt=None, ge=None, lt=None, le=None, each=None, length=None, what=None, or_auto=False):
    """A field of the schema (no default: the config files give it) and its checks."""
    checks = {"choices": tuple(choices), "gt": gt, "ge": ge, "lt": lt, "le": le, "each": each, "length": length,
              "what": what, "or_auto": or_auto}
    return field(default=MISSING, metadata={k: v for k, v in checks.items() if v is not None and v is not False and v != ()})


POSITIVE_WIDTHS = {"each": {"ge": 1}, "what": "a list of positive whole numbers"}


# --- the schema ---------------------------------------------------------------------------------


@dataclass
class TrainSettings:
    steps: int = setting(ge=1)
    batch_size: int = setting(ge=1)  # >= 2 with batch norm: a rule below
    eval_every: int = setting(ge=1)
    log_every: int = setting(ge=1)
    eval_batch_size: int = setting(ge=1)
    checkpoint_every: int = setting(ge=0)
    epochs: float | None = setting(gt=0)
    evals_per_epoch: float | None = setting(gt=0)
    trainable: str = setting(choices=TRAINABLE)


@dataclass
class ModelSettings:
    name: str = setting()
    activation: str = setting(choices=ACTIVATIONS)
    dropout: float = setting(ge=0, lt=1)


@dataclass
class MLPSettings(ModelSettings):
    hidden: list[int] = setting(**POSITIVE_WIDTHS)


@dataclass
class CNNSettings(ModelSettings):
    channels: list[int] = setting(**POSITIVE_WIDTHS)  # in pairs: a rule below


@dataclass
class NoiseSettings:
    enabled: bool = setting()
    mu: float = setting(ge=0)
    sigma: float = setting(ge=1)
    r: float = setting(ge=0)


@dataclass
class BNSettings:
    placement: str = setting(choices=PLACEMENTS)
    layers: str = setting(choices=BN_LAYERS)
    impl: str = setting(choices=BN_IMPLS)
    eval_stats: str = setting(choices=EVAL_STATS)
    eps: float = setting(gt=0)
    momentum: float | None = setting(ge=0, le=1)
    norm: str = setting(choices=NORMS)
    groups: int = setting(ge=1)
    noise: NoiseSettings = field(default_factory=NoiseSettings)


@dataclass
class InitSettings:
    name: str = setting()
    scale: float = setting(gt=0)


@dataclass
class GaussianInitSettings(InitSettings):
    std: float = setting(gt=0)


@dataclass
class UniformInitSettings(InitSettings):
    a: float = setting(gt=0)


@dataclass
class OptimSettings:
    name: str = setting()
    lr: float = setting(gt=0)
    lr_mult: float = setting(gt=0)
    lr_reference_batch: int | None = setting(ge=1)
    weight_decay: float = setting(ge=0)


@dataclass
class SGDSettings(OptimSettings):
    momentum: float = setting(ge=0, lt=1)


@dataclass
class AdamSettings(OptimSettings):
    betas: list[float] = setting(length=2, each={"ge": 0, "lt": 1})
    eps: float = setting(gt=0)


@dataclass
class DatasetSettings:
    name: str = setting()
    root: str = setting()
    standardize: bool = setting()
    download: bool = setting()
    classes: int = setting(ge=2)
    train_size: int | None = setting(ge=1)
    test_size: int | None = setting(ge=1)


@dataclass
class SyntheticDatasetSettings(DatasetSettings):
    shape: list[int] = setting(length=3, each={"ge": 1}, what="[channels, height, width], three positive whole numbers")
    noise: float = setting(ge=0)
    generator_seed: int = setting(ge=0)


@dataclass
class LoggerSettings:
    name: str = setting()


@dataclass
class WandbSettings(LoggerSettings):
    mode: str = setting(choices=WANDB_MODES)
    project: str = setting()
    entity: str | None = setting()
    init_timeout_s: float = setting(gt=0)


@dataclass
class Settings:
    """The whole config (configs/train.yaml and one option of each group), checked in this order."""

    seed: int = setting(ge=0)
    device: str = setting(choices=DEVICES)
    threads: Any = setting(ge=1, or_auto=True)
    resume: bool = setting()
    skip_complete: bool = setting()
    train: TrainSettings = field(default_factory=TrainSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    bn: BNSettings = field(default_factory=BNSettings)
    init: InitSettings = field(default_factory=InitSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    dataset: DatasetSettings = field(default_factory=DatasetSettings)
    logger: LoggerSettings = field(default_factory=LoggerSettings)
    probes: dict[str, Any] = field(default_factory=dict)  # each chosen probe checks its own (training.probes)


def _options(names: tuple, schemas: dict, base: type) -> dict:
    """Each of a group's choices with its schema (`base` unless `schemas` gives another); a
    choice without a schema, or a schema without a choice, is a mistake in this file."""
    unknown = set(schemas) - set(names)
    if unknown:
        raise RuntimeError(f"schemas for {sorted(unknown)}, which are not among the choices {names}")
    return {name: schemas.get(name, base) for name in names}


# The options of each group, by the group's `name`.
OPTIONS = {
    "model": _options(ARCHITECTURES, {"mlp": MLPSettings, "cnn": CNNSettings}, ModelSettings),
    "init": _options(INITS, {"gaussian": GaussianInitSettings, "uniform": UniformInitSettings}, InitSettings),
    "optim": _options(OPTIMIZERS, {"sgd": SGDSettings, "adam": AdamSettings}, OptimSettings),
    "dataset": _options(DATASETS, {"synthetic": SyntheticDatasetSettings}, DatasetSettings),
    "logger": _options(LOGGERS, {"wandb": WandbSettings}, LoggerSettings),
}


def _register() -> None:
    store = ConfigStore.instance()
    store.store(group="schema", name="train", node=Settings)
    for group, options in OPTIONS.items():
        for name, schema in options.items():
            store.store(group=f"schema/{group}", name=name, node=schema)


_register()


# --- the check ----------------------------------------------------------------------------------


def check_settings(cfg) -> None:
    """Raise ConfigError for the first setting of `cfg` (a composed config, with or without its
    hydra node) that the schema refuses: an option a group does not have, a value of the wrong
    type, outside its choices or bounds, a key the schema does not have, or settings that
    contradict each other (RULES)."""
    values = _plain(cfg)
    schema = schema_for(values)
    _check_fields(values, schema, "")
    _check_keys(values, schema)
    settings = OmegaConf.create(values)
    for rule in RULES:
        message = rule(settings)
        if message:
            raise ConfigError(message)


def schema_for(values: dict) -> DictConfig:
    """The structured config (from the ConfigStore) of the options that `values` chooses."""
    names = []
    for group, options in OPTIONS.items():
        node = values.get(group)
        name = node.get("name") if isinstance(node, dict) else None
        if name not in options:
            raise ConfigError(f"{group}.name={name} is not one of {', '.join(options)}")
        names.append(name)
    return _schema(tuple(names))


@functools.cache
def _schema(names: tuple) -> DictConfig:
    """Read only: merging onto it makes a new config."""
    store = ConfigStore.instance()
    schema = store.load("schema/train.yaml").node
    for group, name in zip(OPTIONS, names):
        schema[group] = store.load(f"schema/{group}/{name}.yaml").node
    return schema


def _plain(cfg) -> dict:
    """The config's values without its hydra node, interpolations resolved."""
    if not OmegaConf.is_config(cfg):
        cfg = OmegaConf.create(cfg)
    try:
        return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{error.full_key} cannot be read: {_first_line(error)}") from None


def _check_fields(values: dict, schema: DictConfig, prefix: str) -> None:
    """Each field of `schema` in `values`, in the order the schema declares them. OmegaConf would
    turn '5' into 5 and 'yes' into true when merging; the run reads the config as composed, so
    here a value must already be of its field's type."""
    cls = OmegaConf.get_type(schema)
    hints = _hints(cls)
    for spec in dataclasses.fields(cls):
        key = f"{prefix}{spec.name}"
        if spec.name not in values:
            raise ConfigError(f"{key} is not set")
        value = values[spec.name]
        if dataclasses.is_dataclass(hints[spec.name]):  # a group: schema[name] is its option's schema
            if not isinstance(value, dict):
                raise ConfigError(f"{key} must be a group of settings, got {value!r}")
            _check_fields(value, schema[spec.name], f"{key}.")
            continue
        message = _value_problem(key, value, hints[spec.name], spec.metadata)
        if message:
            raise ConfigError(message)


@functools.cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _value_problem(key: str, value, hint, checks) -> str | None:
    optional = type(None) in typing.get_args(hint)
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint) if optional else hint
    if value is None and optional:
        return None
    if checks.get("choices"):
        return None if value in checks["choices"] else f"{key}={value} is not one of {', '.join(checks['choices'])}"
    if checks.get("or_auto"):
        if value == "auto":
            return None
        kind = int
    if typing.get_origin(kind) is list:
        return _list_problem(key, value, typing.get_args(kind)[0], checks)
    if not _is(value, kind):
        return f"{key} must be {'auto or ' if checks.get('or_auto') else ''}{_described(kind)}, got {value!r}"
    return _bound_problem(key, value, checks)


def _list_problem(key: str, value, item_kind, checks) -> str | None:
    length = checks.get("length")
    what = checks.get("what") or (f"a list of {_COUNTS.get(length, length)} {_described(item_kind, plural=True)}"
                                  if length else f"a list of {_described(item_kind, plural=True)}")
    if not (isinstance(value, list) and all(_is(v, item_kind) for v in value)) or (length and len(value) != length):
        return f"{key} must be {what}, got {value!r}"
    for i, item in enumerate(value):
        problem = _bound_problem(f"{key}.{i}", item, checks.get("each") or {})
        if problem:
            return f"{key} must be {what}, got {value!r}" if checks.get("what") else problem
    return None


_COUNTS = {2: "two", 3: "three"}


def _is(value, kind) -> bool:
    if isinstance(value, bool):
        return kind is bool or kind is Any
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, Real) and not math.isnan(value)
    if kind is str:
        return isinstance(value, (str, int, float))  # a folder or project named 2024 reads as a number
    if typing.get_origin(kind) is dict:
        return isinstance(value, dict)
    return kind is Any


def _described(kind, plural: bool = False) -> str:
    words = {int: ("a whole number", "whole numbers"), float: ("a number", "numbers"), bool: ("true or false",) * 2,
             str: ("text", "texts")}
    return words.get(kind, ("a value", "values"))[plural]


_BOUNDS = (("gt", ">", lambda v, b: v > b), ("ge", ">=", lambda v, b: v >= b),
           ("lt", "<", lambda v, b: v < b), ("le", "<=", lambda v, b: v <= b))


def _bound_problem(key: str, value, checks) -> str | None:
    for name, sign, holds in _BOUNDS:
        bound = checks.get(name)
        if bound is not None and not holds(value, bound):
            return f"{key} must be {sign} {bound}, got {value}"
    return None


def _check_keys(values: dict, schema: DictConfig) -> None:
    """Merge the values onto the structured schema: a key it does not have is refused. A key of
    another option of the same group is left alone: a sweep over model=mlp,cnn may set
    +model.channels for its CNN jobs (the command line's check names such a key when it is given
    to the wrong option alone)."""
    mine = {group: {f.name for f in dataclasses.fields(OmegaConf.get_type(schema[group]))} for group in OPTIONS}
    theirs = {group: {f.name for option in OPTIONS[group].values() for f in dataclasses.fields(option)} - mine[group]
              for group in OPTIONS}
    kept = {key: ({k: v for k, v in value.items() if k not in theirs[key]} if key in OPTIONS else value)
            for key, value in values.items()}
    try:
        OmegaConf.merge(schema, kept)
    except ConfigKeyError as error:
        known = sorted(_dotted(schema))
        closest = difflib.get_close_matches(error.full_key, known, n=3, cutoff=0.6)
        hint = f"closest known: {', '.join(closest)}" if closest else "python train.py --help lists the settings"
        raise ConfigError(f"unknown setting {error.full_key}; {hint}") from None
    except OmegaConfBaseException as error:
        raise ConfigError(f"{error.full_key or 'the config'}: {_first_line(error)}") from None


def _dotted(schema: DictConfig, prefix: str = "") -> list[str]:
    """Every key of the schema, dotted (train, train.steps, ...)."""
    cls = OmegaConf.get_type(schema)
    keys = []
    for spec in dataclasses.fields(cls):
        keys.append(f"{prefix}{spec.name}")
        if dataclasses.is_dataclass(_hints(cls)[spec.name]):
            keys += _dotted(schema[spec.name], f"{prefix}{spec.name}.")
    return keys


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# --- settings that constrain one another ----------------------------------------------------------
# Each rule returns the message of the contradiction it finds in the (already typed) settings, or None.

RULES: list[Callable[[DictConfig], str | None]] = []


def rule(check: Callable[[DictConfig], str | None]):
    RULES.append(check)
    return check


def _batch_norm(cfg: DictConfig) -> bool:
    return cfg.bn.placement != "none" and cfg.bn.norm == "batch"


@rule
def batch_statistics_need_two_examples(cfg):
    if _batch_norm(cfg) and cfg.train.batch_size < 2:
        return f"train.batch_size must be >= 2 with BN (batch statistics need two examples), got {cfg.train.batch_size}"


@rule
def training_only_normalization_needs_it(cfg):
    if cfg.train.trainable in ("bn_only", "random") and cfg.bn.placement == "none":
        return f"train.trainable={cfg.train.trainable} contradicts bn=none (it needs BN's gamma and beta)"


@rule
def conv_layers_come_in_pairs(cfg):
    if cfg.model.name == "cnn" and len(cfg.model.channels) % 2:
        return (f"model.channels needs an even number of conv layers (pairs before each pooling), "
                f"got {len(cfg.model.channels)}")


@rule
def no_bn_leaves_its_options_nothing_to_act_on(cfg):
    if cfg.bn.placement != "none":
        return None
    for key, default in (("layers", "all"), ("eval_stats", "ema"), ("norm", "batch")):
        if cfg.bn[key] != default:
            return f"bn.{key}={cfg.bn[key]} contradicts bn=none (there is no BN layer to apply it to)"
    if cfg.bn.noise.enabled:
        return "bn.noise.enabled=true contradicts bn=none (there is no BN layer to add noise after)"


@rule
def group_and_layer_norm_have_no_batch_options(cfg):
    """Group and layer norm replace BN in the hidden layers; BN's own options have nothing to act on."""
    norm = f"bn.norm={cfg.bn.norm}"
    if cfg.bn.norm == "batch":
        return None
    if cfg.bn.impl != "torch":
        return f"bn.impl={cfg.bn.impl} is this project's batch norm; it does not build {norm} (use bn.impl=torch)"
    if cfg.bn.eval_stats != "ema":
        return (f"bn.eval_stats={cfg.bn.eval_stats} sets batch norm's inference statistics; {norm} has none "
                "(it normalizes each example on its own)")
    if cfg.bn.layers != "all":
        return f"bn.layers={cfg.bn.layers} puts batch norm on the logits alone; {norm} goes in the hidden layers only"
    if cfg.bn.norm == "group":
        widths_key = "model.channels" if cfg.model.name == "cnn" else "model.hidden"
        for width in OmegaConf.select(cfg, widths_key):
            if width % cfg.bn.groups:
                return (f"bn.groups={cfg.bn.groups} does not divide the width {width} in {widths_key} "
                        "(bn.norm=group splits each layer's units into equal groups)")


@rule
def adam_has_no_momentum(cfg):
    momentum = cfg.optim.get("momentum")
    if cfg.optim.name == "adam" and momentum not in (0, None):  # an experiment written for SGD may set it to 0
        return f"optim.momentum={momentum} does not apply to optim=adam (optim.betas play its role)"


@rule
def a_batch_fits_in_the_training_set(cfg):
    train_size = cfg.dataset.train_size
    if train_size is not None and cfg.train.batch_size > train_size:
        return f"train.batch_size={cfg.train.batch_size} exceeds dataset.train_size={train_size}"
