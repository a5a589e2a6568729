"""The README's commands work as pasted: the quick start, the quick look and its report, the offline data
command (on a small IDX data root written here), and the long ones as far as they can go in a test."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from test_data import write_small_idx_set

from tests.conftest import ROOT

README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """Every command line of the README's bash blocks, without its comment."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def run(command: str, tmp_path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """One README line as a shell runs it from the repository's root (python: this interpreter; /tmp/r1: a
    folder of this test's own)."""
    args = shlex.split(command.replace("/tmp/r1", str(tmp_path / "r1")))
    args = [sys.executable if a == "python" else a for a in args]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    write_small_idx_set(data, "MNIST", n_train=120, n_test=40)
    return {**os.environ, "BN_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
            "WANDB_MODE": "disabled"}


def record_of(result: subprocess.CompletedProcess):
    found = re.findall(r"record: (\S+)", result.stdout + result.stderr)
    return found[-1] if found else None


QUICK = ("--dry-run", "--help")  # the default run checks these lines; `-m slow` runs every line


def test_the_readme_plans_and_help_run_as_written(tmp_path, env):
    """The short version: every README line that plans or explains without training."""
    commands = list(dict.fromkeys(c for c in readme_commands() if c.endswith(QUICK)))
    assert "python scripts/reproduce.py --dry-run" in commands
    for command in commands:
        result = run(command, tmp_path, env)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        if command == "python scripts/reproduce.py --dry-run":  # the plan for every claim, with its time
            assert "an estimate:" in result.stdout and "\n  how: the committed records' times" in result.stdout


@pytest.mark.slow  # about two minutes; test_the_readme_plans_and_help_run_as_written is the short version
def test_the_readme_commands_run_as_written(tmp_path, env):
    commands = readme_commands()
    assert "python train.py" in commands and any("--data digits" in c for c in commands)
    made, done = [], set()
    try:
        for command in commands:
            if command.startswith(("python3 -m venv", "pip ")):
                continue  # the install: CI runs it from a clean clone
            heavy = command in ("python scripts/reproduce.py", "python train.py -m experiment=fig1_mnist") or \
                "experiment=fig1_mnist bn=none seed=3" in command
            if heavy:  # hours on MNIST: check that they are accepted and start, on the small data root
                command += " --dry-run" if "reproduce.py" in command else " train.steps=2 train.eval_every=1 logger=none"
                if command.startswith("python train.py -m"):
                    command += f" hydra.sweep.dir={tmp_path / 'sweep'} seed=0 optim.lr_mult=1"
            if command in done:
                continue  # `reproduce.py` checked as `reproduce.py --dry-run`, which the README has on its own line
            done.add(command)
            result = run(command, tmp_path, env)
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            if command == "python scripts/reproduce.py --dry-run":  # the plan for every claim, with its time
                assert "an estimate:" in result.stdout and "\n  how: the committed records' times" in result.stdout
            if record_of(result) and "hydra.run.dir" not in command and "-m" not in command.split():
                made.append(ROOT / record_of(result))
        assert (tmp_path / "r1" / "REPORT.md").is_file()
        report = (tmp_path / "r1" / "REPORT.md").read_text()
        assert "**A quick look, not the claims' evidence:**" in report  # 300 steps against the protocol's 50,000
    finally:
        for folder in made:  # the single runs wrote into outputs/ (git-ignored): leave nothing behind
            shutil.rmtree(folder, ignore_errors=True)


def test_the_notebook_command_leaves_git_status_clean(tmp_path):
    status = ["git", "status", "--porcelain", "--", "analysis"]  # the notebooks' folder and the package beside them
    before = subprocess.run(status, cwd=ROOT, capture_output=True, text=True).stdout
    command = next(line for block in re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "analysis.md").read_text(), re.S)
                   for line in block.splitlines() if line.startswith("jupytext"))
    args = shlex.split(command.split("  #")[0])
    jupytext = shutil.which("jupytext", path=os.path.dirname(sys.executable)) or "jupytext"
    result = subprocess.run([jupytext, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = ROOT / "analysis" / "notebooks" / "convergence.ipynb"
    try:
        assert written.is_file()
        after = subprocess.run(status, cwd=ROOT, capture_output=True, text=True).stdout
        assert after == before  # only a git-ignored file was written
    finally:
        written.unlink(missing_ok=True)
