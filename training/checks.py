"""Checks of a composed config, run before anything is trained or written.

`validate(cfg)` raises ConfigError with a one-line message that names the setting. The Hydra
callback `CheckBeforeRun` runs it before Hydra creates the run folder (and, for a sweep of the
basic sweeper, on every job of the sweep before the first starts), fetches missing data for a
single run, prints the message and exits with status 2. `refuse_unknown_settings` runs even
earlier, from train.py's command line before Hydra parses it: a key the config does not have is
refused with the closest known keys. An unknown option of a group is Hydra's own error, with its
list of choices.
"""
from __future__ import annotations

import contextlib
import difflib
import io
import shutil
import sys
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from models.layers import ACTIVATIONS, BN_IMPLS, BN_LAYERS, NORMS, PLACEMENTS
from training.data import DataNotFoundError, cannot_create_reason, fetch_missing_data, missing_data_error
from training.optim import OPTIMIZERS
from training.record import METRICS_FILE, SUMMARY_FILE, flatten
from training.probes import ProbeSettingError, check_probes
from training.tracker import WANDB_MODES

DEVICES = ("auto", "cpu", "cuda")
EVAL_STATS = ("ema", "population")
TRAINABLE = ("all", "bn_only")


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
    with_bn = cfg.bn.placement != "none" and cfg.bn.norm == "batch"
    _integer(cfg, "train.batch_size", low=2 if with_bn else 1, why=" with BN (batch statistics need two examples)" if with_bn else "")
    _integer(cfg, "train.eval_every", low=1)
    _integer(cfg, "train.log_every", low=1)
    _integer(cfg, "train.eval_batch_size", low=1)
    _integer(cfg, "train.checkpoint_every", low=0)
    for key in ("train.epochs", "train.evals_per_epoch"):
        if OmegaConf.select(cfg, key) is not None:
            _number(cfg, key, low=0, low_open=True)
    _choice(cfg, "train.trainable", TRAINABLE)
    if cfg.train.trainable == "bn_only" and cfg.bn.placement == "none":
        raise ConfigError("train.trainable=bn_only contradicts bn=none (there is no gamma or beta to train)")


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
    _choice(cfg, "bn.norm", NORMS)
    _integer(cfg, "bn.groups", low=1)
    _check_noise(cfg)
    if cfg.bn.placement == "none":
        for key, default in (("layers", "all"), ("eval_stats", "ema"), ("norm", "batch")):
            if cfg.bn[key] != default:
                raise ConfigError(f"bn.{key}={cfg.bn[key]} contradicts bn=none (there is no BN layer to apply it to)")
        if cfg.bn.noise.enabled:
            raise ConfigError("bn.noise.enabled=true contradicts bn=none (there is no BN layer to add noise after)")
    if cfg.bn.norm != "batch":
        _check_batch_independent_norm(cfg)


def _check_noise(cfg: DictConfig) -> None:
    _boolean(cfg, "bn.noise.enabled")
    _number(cfg, "bn.noise.mu", low=0)
    _number(cfg, "bn.noise.sigma", low=1)
    _number(cfg, "bn.noise.r", low=0)


def _check_batch_independent_norm(cfg: DictConfig) -> None:
    """Group and layer norm replace BN in the hidden layers; BN's own options have nothing to act on."""
    norm = f"bn.norm={cfg.bn.norm}"
    if cfg.bn.impl != "torch":
        raise ConfigError(f"bn.impl={cfg.bn.impl} is this project's batch norm; it does not build {norm} "
                          "(use bn.impl=torch)")
    if cfg.bn.eval_stats != "ema":
        raise ConfigError(f"bn.eval_stats={cfg.bn.eval_stats} sets batch norm's inference statistics; {norm} has none "
                          "(it normalizes each example on its own)")
    if cfg.bn.layers != "all":
        raise ConfigError(f"bn.layers={cfg.bn.layers} puts batch norm on the logits alone; {norm} goes in the hidden "
                          "layers only")
    if cfg.bn.norm == "group":
        widths_key = "model.channels" if cfg.model.name == "cnn" else "model.hidden"
        for width in _value(cfg, widths_key):
            if width % cfg.bn.groups:
                raise ConfigError(f"bn.groups={cfg.bn.groups} does not divide the width {width} in {widths_key} "
                                  "(bn.norm=group splits each layer's units into equal groups)")


def _check_init(cfg: DictConfig) -> None:
    _number(cfg, "init.scale", low=0, low_open=True)
    if cfg.init.name == "gaussian":
        _number(cfg, "init.std", low=0, low_open=True)
    elif cfg.init.name == "uniform":
        _number(cfg, "init.a", low=0, low_open=True)


def _check_optim(cfg: DictConfig) -> None:
    _choice(cfg, "optim.name", OPTIMIZERS)
    _number(cfg, "optim.lr", low=0, low_open=True)
    _number(cfg, "optim.lr_mult", low=0, low_open=True)
    if cfg.optim.lr_reference_batch is not None:
        _integer(cfg, "optim.lr_reference_batch", low=1)
    _number(cfg, "optim.weight_decay", low=0)
    if cfg.optim.name == "sgd":
        _number(cfg, "optim.momentum", low=0, high=1, high_open=True)
    elif cfg.optim.name == "adam":
        betas = _value(cfg, "optim.betas")
        if not (OmegaConf.is_list(betas) and len(betas) == 2):
            raise ConfigError(f"optim.betas must be a list of two numbers, got {betas!r}")
        for i in range(2):
            _number(cfg, f"optim.betas.{i}", low=0, high=1, high_open=True)
        _number(cfg, "optim.eps", low=0, low_open=True)
        if cfg.optim.get("momentum", 0) not in (0, 0.0, None):  # an experiment written for SGD may set it to 0
            raise ConfigError(f"optim.momentum={cfg.optim.momentum} does not apply to optim=adam (optim.betas play its role)")


def _check_dataset(cfg: DictConfig) -> None:
    _boolean(cfg, "dataset.download")
    _boolean(cfg, "dataset.standardize")
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
    """A new run must not write into a folder that already holds a run's record, and the folder
    must be one that can be created (checked without creating it: Hydra does that once the run starts)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"hydra.run.dir={run_dir} is a file, not a folder")
    holds_run = any((run_dir / name).exists() for name in (METRICS_FILE, SUMMARY_FILE))
    if holds_run and not resume:
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds a run; pass resume=true to continue it, or choose another folder"
        )
    reason = cannot_create_reason(run_dir)
    if reason:
        raise ConfigError(f"hydra.run.dir={run_dir} cannot be created ({reason})")


# Settings a resumed run may change: they do not change what the run computes (train.steps and
# train.epochs let a finished run be extended).
MAY_CHANGE_ON_RESUME = ("resume", "skip_complete", "threads", "device", "logger", "train.steps", "train.epochs")


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
            fetch_missing_data(config.dataset)  # last: a run refused for another reason waits for no download
        except DataNotFoundError as error:
            _fail(ConfigError(str(error)))
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


# --- unknown settings: every key on the command line must be one the config has -----------------

def unknown_setting_error(overrides: list[str], config_dir: Path, config_name: str = "train") -> str | None:
    """The one-line error for the first command-line override whose key the config does not have,
    with the closest keys it does have; None when every key is known (or an override is malformed,
    which Hydra reports itself).

    Hydra refuses a plain unknown key (optim.lrr=0.1) but suggests +optim.lrr=0.1, which then adds
    a key that nothing reads, and ++optim.lrr=0.1 does so silently. Here a key is known when the
    config composed from the same group choices, without any key override, has it. That
    composition costs a few tenths of a second, so it is skipped when every key is a plain
    override of a key that every config has (the main file's, or one every option of its group
    sets: the usual command line)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    group_overrides = [o for o in parsed if _is_group(o, config_dir)]
    keyed = [o for o in parsed if o not in group_overrides and o.key_or_group.split(".")[0] != "hydra"]
    declared = declared_keys(config_dir, config_name)
    if all(declared.certain.has(o.key_or_group) and not (o.is_add() or o.is_force_add()) for o in keyed):
        return None
    composed = composed_keys(config_dir, config_name, group_overrides)
    if composed is None:  # a group choice Hydra cannot compose: its own error names it
        return None
    for override in keyed:
        key = override.key_or_group
        if composed.has(key):
            continue
        typed = override.input_line or key
        where = "" if typed.startswith(key) else f" (in {typed})"
        if key in declared.sources:
            owners = sorted(declared.sources[key], key=lambda owner: owner.startswith("experiment="))[:3]
            return f"unknown setting {key}{where} with these choices; it is a setting of {', '.join(owners)}"
        closest = difflib.get_close_matches(key, sorted(composed.paths), n=3, cutoff=0.6)
        hint = f"closest known: {', '.join(closest)}" if closest else "python train.py --help lists the settings"
        return f"unknown setting {key}{where}; {hint}"
    return None


def refuse_unknown_settings(argv: list[str], config_dir: Path, config_name: str = "train") -> None:
    """Check the overrides of a train.py command line before Hydra sees them; exit 2 with one line
    for an unknown key. Command lines for Hydra's own information (--help, --info, ...) pass."""
    from hydra._internal.utils import get_args_parser

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = get_args_parser().parse_args(argv)
    except SystemExit:  # --version, or a malformed command line: Hydra answers it itself
        return
    if args.help or args.hydra_help or args.info or args.shell_completion or args.config_name or args.config_dir:
        return
    message = unknown_setting_error(list(args.overrides), config_dir, config_name)
    if message:
        _fail(ConfigError(message))


@dataclass
class KnownKeys:
    """Dotted paths of a config: every node and leaf (`paths`) and the list-valued ones (`lists`,
    whose items are set as `key.0`)."""

    paths: set = field(default_factory=set)
    lists: set = field(default_factory=set)

    def add(self, node, prefix: str = "") -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            self.paths.add(path)
            if isinstance(value, dict):
                self.add(value, f"{path}.")
            elif isinstance(value, list):
                self.lists.add(path)

    def has(self, key: str) -> bool:
        parts = key.split(".")
        return key in self.paths or any(".".join(parts[:n]) in self.lists for n in range(1, len(parts)))


@dataclass
class DeclaredKeys:
    """What the config files say without composing them: `certain` holds the keys every config
    has (the main file's, and those that every option of a group sets); `sources` names, for each
    key an option file sets, the options that set it (e.g. model.hidden: ["model=mlp"])."""

    certain: KnownKeys
    sources: dict


def declared_keys(config_dir: Path, config_name: str) -> DeclaredKeys:
    """Read the main config and every option file (experiments, `@package _global_`, at the top
    level; files with another package directive are left out)."""
    import yaml

    def load(path: Path) -> tuple[str | None, dict]:
        text = path.read_text()
        package = next((line.split("@package", 1)[1].strip() for line in text.splitlines() if "@package" in line), None)
        loaded = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        return package, {k: v for k, v in loaded.items() if k not in ("defaults", "hydra")}

    certain, sources = KnownKeys(), {}
    certain.add(load(config_dir / f"{config_name}.yaml")[1])
    for folder in sorted(p for p in config_dir.rglob("*") if p.is_dir()):
        group = folder.relative_to(config_dir).as_posix()
        if group.split("/")[0] == "hydra":
            continue
        per_option = []
        for path in sorted(folder.glob("*.yaml")):
            package, content = load(path)
            if package not in (None, "_global_"):
                continue
            keys = KnownKeys()
            keys.add({group.replace("/", "."): content} if package is None else content)
            for key in keys.paths:
                sources.setdefault(key, []).append(f"{group}={path.stem}")
            if package is None:
                per_option.append(keys)
        if per_option:
            certain.paths |= set.intersection(*(keys.paths for keys in per_option))
            certain.lists |= set.intersection(*(keys.lists for keys in per_option))
    return DeclaredKeys(certain, sources)


def composed_keys(config_dir: Path, config_name: str, group_overrides: list) -> KnownKeys | None:
    """Keys of the config composed with these group choices (each choice of a swept group in turn)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    fixed = [o.input_line for o in group_overrides if not o.is_sweep_override()]
    swept = [o for o in group_overrides if o.is_sweep_override()]
    known = KnownKeys()
    try:
        variants = [fixed] + [[*fixed, f"{o.get_key_element()}={value}"] for o in swept for value in o.sweep_string_iterator()]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
            for variant in variants[1:] or variants:
                known.add(OmegaConf.to_container(compose(config_name=config_name, overrides=variant)))
    except Exception:
        return None
    finally:
        GlobalHydra.instance().clear()  # Hydra's main initializes its own
    return known


def _is_group(override, config_dir: Path) -> bool:
    name = override.key_or_group
    return name.startswith("hydra/") or (config_dir / name).is_dir()
