"""Checks of a config that its schema cannot make, run before anything is trained or written.

`validate(cfg)` runs the schema's check (training.settings: every setting's type, choices and
bounds, and the settings that contradict each other), then what depends on this machine: a data
root that is a file, a data set that is missing and may not be downloaded, the chosen probes'
own settings, a CUDA device that is not there. `check_run` and `check_sweep` add what a single run
or a sweep needs (its folder, resuming, the launcher, every job of a basic-sweeper sweep). Every
failure is a ConfigError with a one-line message that names the setting. train.py runs them on its
command line before Hydra starts and before torch is imported (training.command_line, which also
refuses a key the config does not have, `unknown_setting_error`, naming the closest known keys);
the Hydra callback `CheckBeforeRun` runs them again on Hydra's own config before it creates a
folder, downloads missing data once, prints the message and exits with status 2. Nothing here
imports torch (the probes' checks do, when probes are chosen, and the check of device=cuda).
"""
from __future__ import annotations

import difflib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra.errors import MissingConfigException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from training.data_files import DataNotFoundError, cannot_create_reason, fetch_missing_data, missing_data_error
from training.record import METRICS_FILE, SUMMARY_FILE, flatten
from training.settings import ConfigError, check_settings


class MissingDataError(ConfigError):
    """The data set's files are not there and dataset.download=false. In a sweep the message is
    the one a single run gets, without the job's name: it names the data set and its folder."""


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid or contradictory setting, or one this machine
    cannot serve."""
    check_settings(cfg)
    _check_data(cfg)
    _check_probes(cfg)
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device=cuda, but PyTorch sees no CUDA device here; use device=auto or device=cpu")


def _check_data(cfg: DictConfig) -> None:
    root = Path(str(cfg.dataset.root))
    if root.exists() and not root.is_dir():
        raise ConfigError(f"dataset.root={root} is a file, not a folder")
    missing = missing_data_error(cfg.dataset)
    if missing is not None:
        raise MissingDataError(str(missing))


def _check_probes(cfg: DictConfig) -> None:
    if not cfg.get("probes"):
        return
    from training.probes import ProbeSettingError, check_probes  # imports torch: only when probes are chosen

    try:
        check_probes(cfg.probes)
    except ProbeSettingError as error:
        raise ConfigError(str(error)) from None


# --- a run, a sweep, and the Hydra callback ---------------------------------------------------


def check_run(config: DictConfig) -> None:
    """A single run's settings, resuming and folder (`config` with its hydra node)."""
    validate(config)
    run_dir = Path(str(config.hydra.run.dir))
    if config.resume:
        check_resume_matches(run_dir, config)
    check_run_folder(run_dir, bool(config.resume) or bool(config.skip_complete))


def check_sweep(config: DictConfig) -> None:
    """A sweep's launcher, the settings of each of its jobs, its data and its folder, before any
    job starts. A sweeper that is not Hydra's basic one or built on it gives its jobs only as it
    runs them: then the data of the sweep's common settings is checked."""
    check_launcher(config)
    jobs = sweep_jobs(config)
    if not jobs:
        missing = missing_data_error(config.dataset)
        if missing is not None:
            raise MissingDataError(str(missing))
    varying = _varying_keys(jobs)
    for job_overrides in jobs:
        try:
            validate(job_config(config, job_overrides))
        except MissingDataError:
            raise
        except ConfigError as error:
            named = [o for o in job_overrides if _override_key(o) in varying] or job_overrides
            raise ConfigError(f"sweep job {' '.join(named)}: {error}") from None
    reason = cannot_create_reason(Path(str(config.hydra.sweep.dir)))
    if reason:
        raise ConfigError(f"hydra.sweep.dir={config.hydra.sweep.dir} cannot be created ({reason})")


def fetch_sweep_data(config: DictConfig) -> None:
    """Download what the sweep's data sets miss, each once, before any job starts (a job that
    found its data missing would fail alone, and every job would try)."""
    datasets = {}
    for dataset in [config.dataset, *(job_config(config, job).dataset for job in sweep_jobs(config))]:
        datasets.setdefault((dataset.name, str(dataset.root)), dataset)
    for dataset in datasets.values():
        fetch_missing_data(dataset)


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


def option_error(error: MissingConfigException) -> ConfigError:
    """Hydra's error for an option a group does not have (bn=befor), as one line with the closest
    options and the others."""
    group, _, option = str(error.missing_cfg_file).rpartition("/")
    options = list(error.options or [])
    if not options:  # Hydra lists no options for a list of them (probes=[magic])
        from hydra.core.global_hydra import GlobalHydra

        options = GlobalHydra.instance().config_loader().get_group_options(group) if group else []
    closest = difflib.get_close_matches(option, options, n=3) or difflib.get_close_matches(option, options, n=1, cutoff=0.4)
    hint = f"closest known: {', '.join(closest)}; " if closest else ""
    return ConfigError(f"unknown option {group}={option}; {hint}the options of {group}: {', '.join(options)}")


def refuse(error: ConfigError) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


class CheckBeforeRun(Callback):
    """Checks the config before Hydra writes anything into a run or sweep folder, then downloads
    missing data. Hydra turns an exception in a callback into a warning and runs the job anyway,
    so every failure here ends the process itself (SystemExit)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        def check() -> None:
            check_run(config)
            fetch_missing_data(config.dataset)  # last: a run refused for another reason waits for no download

        _refuse_on_error(check, "config")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        def check() -> None:
            check_sweep(config)
            fetch_sweep_data(config)
            Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

        _refuse_on_error(check, "sweep")


def _refuse_on_error(check, what: str) -> None:
    try:
        check()
    except DataNotFoundError as error:
        refuse(ConfigError(str(error)))
    except ConfigError as error:
        refuse(error)
    except MissingConfigException as error:  # a swept option the group does not have
        refuse(option_error(error))
    except Exception as error:  # a setting the checks could not even read
        refuse(ConfigError(f"the {what} could not be checked: {type(error).__name__}: {_first_line(error)}"))


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


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The overrides of each job of a sweep whose sweeper is Hydra's basic one or built on it
    (hydra/sweeper=job_list), as it will make them: an experiment's own sweep
    (hydra.sweeper.params), then the command line's overrides, split into jobs. None for other
    sweepers."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.utils import get_class

    settings = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
    sweeper_class = get_class(settings.pop("_target_"))
    if not issubclass(sweeper_class, BasicSweeper):
        return []
    sweeper = sweeper_class(**settings)
    arguments = [*sweeper._parse_config(), *config.hydra.overrides.task]  # as BasicSweeper.sweep reads them
    parsed = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader()).parse_overrides(arguments)
    return [job for batch in sweeper.split_arguments(parsed, None) for job in batch]


# Jobs composed in this process: train.py checks a sweep before Hydra starts, and Hydra's callback
# then checks and downloads for the same jobs without composing them again (0.2 s a job).
_JOB_CONFIGS: dict[tuple, DictConfig] = {}


def job_config(config: DictConfig, job_overrides: list[str]) -> DictConfig:
    """The config of one job of the sweep `config`."""
    from hydra.core.global_hydra import GlobalHydra

    # as written: an override such as hydra.sweep.subdir=${hydra.job.num} is text here, not an interpolation
    overrides = OmegaConf.to_container(config.hydra.overrides, resolve=False)
    hydra_overrides = [o for o in overrides["hydra"] if not o.startswith("hydra.mode=")]  # Hydra's own
    key = (tuple(overrides["task"]), tuple(hydra_overrides), tuple(job_overrides))
    if key not in _JOB_CONFIGS:
        _JOB_CONFIGS[key] = GlobalHydra.instance().config_loader().load_sweep_config(config, list(job_overrides))
    return _JOB_CONFIGS[key]


def _varying_keys(jobs: list[list[str]]) -> set:
    """The keys whose values differ between the jobs, or that only some jobs set: what tells one
    job of the sweep from the others."""
    values = {}
    for job in jobs:
        for override in job:
            values.setdefault(_override_key(override), set()).add(override)
    in_every_job = set.intersection(*({_override_key(o) for o in job} for job in jobs)) if jobs else set()
    return {key for key, seen in values.items() if len(seen) > 1 or key not in in_every_job}


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


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
