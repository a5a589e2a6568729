"""Shared fixtures: configs composed with Hydra's compose API, and paths."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

# Test workers run side by side (pytest -n auto, one per core): one thread each, in this process
# and in the train.py processes the tests start, or OpenMP threads fight over the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
SHARED_DATA = Path(os.environ.get("BN_DATA_DIR", ROOT.parent / "shared" / "data"))

# Small and quick, but still real trainings.
FAST = ["logger=none", "threads=1", "train.eval_every=100", "train.log_every=25"]


def compose_config(overrides: list[str] = (), with_hydra: bool = False):
    """The config train.py composes from these overrides (with the hydra node if asked). Each distinct
    call is composed once per test process, and every caller gets a copy of its own to change."""
    key = (tuple(overrides), with_hydra)
    if key not in _COMPOSED:
        _COMPOSED[key] = _compose(list(overrides), with_hydra)
    return copy.deepcopy(_COMPOSED[key])


_COMPOSED: dict = {}
_our_hydra = None  # the Hydra that _compose initialized, reused until something else initializes another


def _compose(overrides: list[str], with_hydra: bool):
    global _our_hydra
    global_hydra = GlobalHydra.instance()
    if not (global_hydra.is_initialized() and global_hydra.hydra is _our_hydra):
        global_hydra.clear()
        initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3")  # stays initialized (no `with`)
        _our_hydra = global_hydra.hydra
    return compose(config_name="train", overrides=overrides, return_hydra_config=with_hydra)


@pytest.fixture
def config():
    """compose(overrides) -> the config train.py would get, without the hydra node."""
    return lambda *overrides: compose_config([*FAST, *overrides])


def run_cli(args: list[str], cwd: Path, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """python train.py <args> in a fresh process, as a user types it."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def run_train_here(args: list[str], cwd: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """python train.py <args> as a user types it, but in this process: no interpreter start (run_cli
    tests that). Returns the exit status and what it printed on stdout and stderr; restores what
    train.py's start changes in the process it runs in."""
    import logging
    import runpy
    import signal

    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))  # train.py sets these
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), *args])
    monkeypatch.chdir(cwd)
    root = logging.getLogger()
    sigint, handlers, level = signal.getsignal(signal.SIGINT), list(root.handlers), root.level
    capsys.readouterr()
    code = 0
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    except SystemExit as exited:
        code = exited.code
    finally:
        signal.signal(signal.SIGINT, sigint)
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


def write_job(folder: Path, overrides: list[str], experiment: str | None = None) -> None:
    """One job of `python train.py -m [experiment=<experiment>] <overrides>`, run in this process (no
    interpreter start): the run's record plus the .hydra/ files Hydra writes beside it (the resolved
    config, the config groups' choices, the job's overrides)."""
    from omegaconf import OmegaConf, open_dict

    from train import run

    given = [f"experiment={experiment}"] if experiment else []
    cfg = compose_config([*given, *overrides], with_hydra=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]  # the job's own config, as Hydra hands it to train.py
    run(cfg, folder, experiment=experiment, overrides=overrides)
    (folder / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml", resolve=True)
    OmegaConf.save({"hydra": {"runtime": {"choices": choices}}}, folder / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create([*given, *overrides]), folder / ".hydra" / "overrides.yaml")


def covering(jobs: list) -> list:
    """A few of `jobs` (each a sequence of key=value settings) that together set every value of every key at
    least once: the default run's short version of a check that the slow run makes on every job."""
    chosen, missing = [], {setting for job in jobs for setting in job}
    for job in jobs:
        if not chosen or missing & set(job):
            chosen.append(job)
            missing -= set(job)
    return chosen


def load_script(name: str):
    """scripts/<name>.py as a module, to call its main() in this process (registered under its name:
    dataclasses look their module up in sys.modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its modification time and bytes: equal means untouched."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def fashion_root() -> Path:
    if not (SHARED_DATA / "FashionMNIST" / "raw").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {SHARED_DATA} (set BN_DATA_DIR)")
    return SHARED_DATA
