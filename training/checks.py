"""Checks of a composed config, run before anything is trained or written.

`validate(cfg)` raises ConfigError with a one-line message that names the setting. The Hydra
callback `CheckBeforeRun` runs it before Hydra creates the run folder (and, for a sweep of the
basic sweeper, on every job of the sweep before the first starts), prints the message and exits
with status 2. Unknown options and config groups are Hydra's own errors, with its list of choices.
"""
from __future__ import annotations

import shutil
import sys
from numbers import Real
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from models.layers import ACTIVATIONS, BN_IMPLS, BN_LAYERS, PLACEMENTS
from training.data import missing_data_error
from training.record import METRICS_FILE, SUMMARY_FILE, flatten
from training.probes import ProbeSettingError, check_probes
from training.tracker import WANDB_MODES

DEVICES = ("auto", "cpu", "cuda")
EVAL_STATS = ("ema", "population")


class ConfigError(ValueError):
    """A setting that cannot work; the message names it."""


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid or contradictory setting."""
    _integer(cfg, "seed", low=0)
    _choice(cfg, "device", DEVICES)
    if cfg.threads != "auto":
        _integer(cfg, "threads", low=1)
    _boolean(cfg, "resume")
    _boolean(cfg, "skip_complete")
    _check_train(cfg)
    _check_model(cfg)
    _check_bn(cfg)
    _check_init(cfg)
    _check_optim(cfg)
    _check_dataset(cfg)
    try:
        check_probes(cfg.get("probes"))
    except ProbeSettingError as error:
        raise ConfigError(str(error)) from None
    if cfg.logger.name == "wandb":
        _choice(cfg, "logger.mode", WANDB_MODES)
        _number(cfg, "logger.init_timeout_s", low=0, low_open=True)
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device=cuda, but PyTorch sees no CUDA device here; use device=auto or device=cpu")


def _check_train(cfg: DictConfig) -> None:
    _integer(cfg, "train.steps", low=1)
    with_bn = cfg.bn.placement != "none"
    _integer(cfg, "train.batch_size", low=2 if with_bn else 1, why=" with BN (batch statistics need two examples)" if with_bn else "")
    _integer(cfg, "train.eval_every", low=1)
    _integer(cfg, "train.log_every", low=1)
    _integer(cfg, "train.eval_batch_size", low=1)
    _integer(cfg, "train.checkpoint_every", low=0)


def _check_model(cfg: DictConfig) -> None:
    _choice(cfg, "model.activation", tuple(ACTIVATIONS))
    _number(cfg, "model.dropout", low=0, high=1, high_open=True)
    if cfg.model.name == "mlp":
        _positive_int_list(cfg, "model.hidden")
    elif cfg.model.name == "cnn":
        _positive_int_list(cfg, "model.channels")
        if len(cfg.model.channels) % 2:
            raise ConfigError(f"model.channels needs an even number of conv layers (pairs before each pooling), got {len(cfg.model.channels)}")


def _check_bn(cfg: DictConfig) -> None:
    _choice(cfg, "bn.placement", PLACEMENTS)
    _choice(cfg, "bn.layers", BN_LAYERS)
    _choice(cfg, "bn.impl", BN_IMPLS)
    _choice(cfg, "bn.eval_stats", EVAL_STATS)
    _number(cfg, "bn.eps", low=0, low_open=True)
    if cfg.bn.momentum is not None:
        _number(cfg, "bn.momentum", low=0, high=1)
    if cfg.bn.placement == "none":
        for key, default in (("layers", "all"), ("eval_stats", "ema")):
            if cfg.bn[key] != default:
                raise ConfigError(f"bn.{key}={cfg.bn[key]} contradicts bn=none (there is no BN layer to apply it to)")


def _check_init(cfg: DictConfig) -> None:
    _number(cfg, "init.scale", low=0, low_open=True)
    if cfg.init.name == "gaussian":
        _number(cfg, "init.std", low=0, low_open=True)
    elif cfg.init.name == "uniform":
        _number(cfg, "init.a", low=0, low_open=True)


def _check_optim(cfg: DictConfig) -> None:
    _number(cfg, "optim.lr", low=0, low_open=True)
    _number(cfg, "optim.lr_mult", low=0, low_open=True)
    _number(cfg, "optim.momentum", low=0, high=1, high_open=True)
    _number(cfg, "optim.weight_decay", low=0)


def _check_dataset(cfg: DictConfig) -> None:
    _boolean(cfg, "dataset.download")
    for key in ("dataset.train_size", "dataset.test_size"):
        if OmegaConf.select(cfg, key) is not None:
            _integer(cfg, key, low=1)
    root = Path(str(cfg.dataset.root))
    if root.exists() and not root.is_dir():
        raise ConfigError(f"dataset.root={root} is a file, not a folder")
    missing = missing_data_error(cfg.dataset)
    if missing is not None:
        raise ConfigError(str(missing))
    train_size = cfg.dataset.get("train_size")
    if train_size is not None and cfg.train.batch_size > train_size:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} exceeds dataset.train_size={train_size}")
    if cfg.dataset.name == "synthetic":
        _integer(cfg, "dataset.classes", low=2)
        _positive_int_list(cfg, "dataset.shape")
        if len(cfg.dataset.shape) != 3:
            raise ConfigError(f"dataset.shape must be [channels, height, width], got {list(cfg.dataset.shape)}")
        _number(cfg, "dataset.noise", low=0)


# --- typed accessors: each names the key and the value it got --------------------------------


def _value(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, throw_on_missing=True)


def _number(cfg, key, low=None, high=None, low_open=False, high_open=False) -> None:
    value = _value(cfg, key)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if value != value:  # NaN
        raise ConfigError(f"{key} must be a number, got nan")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{key} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ConfigError(f"{key} must be {'<' if high_open else '<='} {high}, got {value}")


def _integer(cfg, key, low=None, why="") -> None:
    value = _value(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{key} must be >= {low}{why}, got {value}")


def _boolean(cfg, key) -> None:
    value = _value(cfg, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")


def _choice(cfg, key, choices) -> None:
    value = _value(cfg, key)
    if value not in choices:
        raise ConfigError(f"{key}={value} is not one of {', '.join(map(str, choices))}")


def _positive_int_list(cfg, key) -> None:
    value = _value(cfg, key)
    items = list(value) if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items):
        raise ConfigError(f"{key} must be a list of positive whole numbers, got {value!r}")


# --- the Hydra callback -----------------------------------------------------------------------


def check_run_folder(run_dir: Path, resume: bool) -> None:
    """A new run must not write into a folder that already holds a run's record."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"hydra.run.dir={run_dir} is a file, not a folder")
    holds_run = any((run_dir / name).exists() for name in (METRICS_FILE, SUMMARY_FILE))
    if holds_run and not resume:
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds a run; pass resume=true to continue it, or choose another folder"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"hydra.run.dir={run_dir} cannot be created ({error.strerror})") from None


# Settings a resumed run may change: they do not change what the run computes (train.steps
# lets a finished run be extended).
MAY_CHANGE_ON_RESUME = ("resume", "skip_complete", "threads", "device", "logger", "train.steps")


def check_resume_matches(run_dir: Path, cfg: DictConfig) -> None:
    """resume=true continues the run in `run_dir` with that run's own settings."""
    stored = run_dir / ".hydra" / "config.yaml"
    if not stored.is_file():
        raise ConfigError(
            f"resume=true, but hydra.run.dir={run_dir} holds no run to resume; point hydra.run.dir at the run's folder"
        )
    before, now = _flat(OmegaConf.load(stored)), _flat(cfg)
    changed = [
        f"{key} ({before.get(key, '<unset>')} -> {now.get(key, '<unset>')})"
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key) and not key.startswith(MAY_CHANGE_ON_RESUME)
    ]
    if changed:
        raise ConfigError(f"resume=true with settings that differ from the run in {run_dir}: {', '.join(changed)}")


def _flat(cfg: DictConfig) -> dict:
    container = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
                 for key in cfg if key != "hydra"}
    return {key: str(value) for key, value in flatten(container, sep=".").items()}


def _fail(error: ConfigError) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


class CheckBeforeRun(Callback):
    """Validates the config before Hydra writes anything into a run folder. Hydra turns an
    exception in a callback into a warning and runs the job anyway, so every failure here ends
    the process itself (SystemExit)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            validate(config)
            run_dir = Path(str(config.hydra.run.dir))
            if config.resume:
                check_resume_matches(run_dir, config)
            check_run_folder(run_dir, bool(config.resume) or bool(config.skip_complete))
        except ConfigError as error:
            _fail(error)
        except Exception as error:  # a setting the checks could not even read
            _fail(ConfigError(f"the config could not be checked: {type(error).__name__}: {_first_line(error)}"))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check_launcher(config)
            for job_overrides, job_config in _sweep_job_configs(config):
                try:
                    validate(job_config)
                except ConfigError as error:
                    raise ConfigError(f"sweep job {' '.join(_swept(config, job_overrides))}: {error}") from None
            sweep_dir = Path(str(config.hydra.sweep.dir))
            sweep_dir.mkdir(parents=True, exist_ok=True)
        except ConfigError as error:
            _fail(error)
        except OSError as error:
            _fail(ConfigError(f"hydra.sweep.dir={config.hydra.sweep.dir} cannot be created ({error.strerror})"))
        except Exception as error:
            _fail(ConfigError(f"the sweep could not be checked: {type(error).__name__}: {_first_line(error)}"))


def check_launcher(config: DictConfig) -> None:
    """A SLURM sweep submits with sbatch: refuse it before the sweep folder exists when there is none."""
    if str(config.hydra.launcher.get("_target_", "")).endswith("SlurmLauncher") and shutil.which("sbatch") is None:
        raise ConfigError(
            "hydra/launcher=slurm needs SLURM's sbatch on PATH; run the sweep on the cluster's login node, "
            "try it here with scripts/slurm_local.sh start, or use hydra/launcher=local"
        )


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def _sweep_job_configs(config: DictConfig):
    """(overrides, config) of every job of a basic-sweeper sweep; nothing for other sweepers (their jobs are
    validated one by one when they start)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return
    loader = GlobalHydra.instance().config_loader()
    task_overrides = list(config.hydra.overrides.task)
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(task_overrides)
    for batch in BasicSweeper.split_arguments(parsed, max_batch_size=None):
        for job_overrides in batch:
            yield job_overrides, loader.load_sweep_config(config, job_overrides)


def _swept(config: DictConfig, job_overrides: list[str]) -> list[str]:
    """The overrides of one job that differ between jobs (the swept ones)."""
    fixed = set(config.hydra.overrides.task)
    return [o for o in job_overrides if o not in fixed] or job_overrides
