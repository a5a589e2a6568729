"""train.py's command line, checked before Hydra runs it and before torch and wandb are imported.

Hydra reports its own errors (an option a group does not have, an override it cannot parse, a
folder it cannot create) as blocks of lines or tracebacks with exit status 1, and only after
train.py's imports, which take seconds. Here the command line is composed as Hydra will compose
it and checked as the run or sweep will be (training.checks), so that every refusal is one line,
`error: ...`, with exit status 2, within about a second, and nothing is written. What passes is
checked again by Hydra's callback (training.checks.CheckBeforeRun), which also downloads
missing data. A single run that passes says first what it loads, before the seconds that loading
PyTorch, the data and the network take.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig

from training.checks import ConfigError, check_run, check_sweep, option_error, refuse, unknown_setting_error

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


def check_command_line(argv: list[str], config_dir: Path, config_name: str = "train") -> None:
    """Exit with status 2 and one line when train.py would refuse `argv`; for a single run that
    passes, print what it loads. Hydra's own answers (--help, --info, ...) and a command line its
    parser refuses, which it explains itself, are left to Hydra."""
    args = _hydra_arguments(argv)
    if args is None or args.help or args.hydra_help or args.info or args.shell_completion or args.experimental_rerun:
        return
    if args.config_name or args.config_dir or args.config_path:
        return  # another config than train.py's
    run = not args.cfg  # --cfg only prints the config
    try:
        config = _checked_config(list(args.overrides), config_dir, config_name, multirun=args.multirun, run=run)
    except ConfigError as error:
        refuse(error)
    if run and not args.multirun:
        print(f"loading {config.dataset.name} and building the {config.model.name} network ...", flush=True)


def _hydra_arguments(argv: list[str]):
    from hydra._internal.utils import get_args_parser

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return get_args_parser().parse_args(argv)
    except SystemExit:  # --version, or flags Hydra's parser does not know: it answers them itself
        return None


def _checked_config(overrides: list[str], config_dir: Path, config_name: str, multirun: bool, run: bool) -> DictConfig:
    """The config as Hydra will compose it, checked as a run (or a sweep) when it will `run`
    (--cfg only prints it)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    _parse(overrides)
    unknown = unknown_setting_error(overrides, config_dir, config_name)
    if unknown:
        raise ConfigError(unknown)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
            try:  # the sweep's jobs are composed in here, where Hydra's config loader is
                config = GlobalHydra.instance().hydra.compose_config(
                    config_name, overrides, run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN, from_shell=True,
                    with_log_configuration=False,
                )
                if run:
                    if multirun:
                        check_sweep(config)
                        check_job_folders(config)
                    else:
                        check_run(config)
            except MissingConfigException as error:
                raise option_error(error) from None
            except HydraException as error:
                raise ConfigError(_one_line(error)) from None
    finally:
        GlobalHydra.instance().clear()  # Hydra's main initializes its own
    return config


def check_job_folders(config: DictConfig) -> None:
    """Jobs of a sweep whose folders are named by their settings (hydra.sweep.subdir is
    ${hydra.job.override_dirname}, the default) must not share a folder: two jobs that differ only
    in a key left out of the names (threads=1,2, say) are refused, naming both."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from training.checks import sweep_jobs

    if OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir") != "${hydra.job.override_dirname}":
        return
    naming = config.hydra.job.config.override_dirname
    parser, folders = OverridesParser.create(), {}
    for job in sweep_jobs(config) or []:
        name = get_overrides_dirname(parser.parse_overrides(list(job)), list(naming.exclude_keys),
                                     item_sep=naming.item_sep, kv_sep=naming.kv_sep)
        if name in folders and folders[name] != job:
            differ = [o for o in folders[name] if o not in job] + [o for o in job if o not in folders[name]]
            left_out = sorted({_key(o) for o in differ})
            kept = [key for key in naming.exclude_keys if key not in left_out]
            raise ConfigError(
                f"sweep jobs {' and '.join(differ)} would share the job folder {name or '(the sweep folder itself)'}: "
                f"folder names leave out {', '.join(left_out)} (hydra.job.config.override_dirname.exclude_keys); "
                f"name them with it: hydra.job.config.override_dirname.exclude_keys=[{','.join(kept)}]"
            )
        folders.setdefault(name, job)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _parse(overrides: list[str]) -> None:
    """Refuse the first override Hydra's grammar cannot read (train.steps=[1,2), naming it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as error:
            reason = [line for line in str(error).splitlines() if not line.startswith(("See ", "Error parsing"))]
            raise ConfigError(f"cannot read {override} ({'; '.join(reason)}); the syntax: {GRAMMAR}") from None


def _one_line(error: Exception) -> str:
    """Hydra's message without its list of config search paths, its lines joined."""
    text = str(error).split("\nConfig search path:", 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
