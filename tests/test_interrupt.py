"""Ctrl-C on a run: a real SIGINT, the record it leaves, the one line it prints, and its resume."""
from __future__ import annotations

import itertools
import json
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import train
from tests.conftest import ROOT, compose_config, run_train_here
from tests.test_resume import checkpoint_step, last_logged_step
from training.interrupt import resume_command

# Dropout and momentum: random-number and optimizer state must survive the interrupt too. No
# periodic checkpoints: the one a resume starts from is the one Ctrl-C leaves.
INTERRUPTIBLE = [
    "logger=none", "threads=1", "model.dropout=0.1", "optim.momentum=0.9", "train.steps=1000", "train.eval_every=200",
    "train.log_every=25",
]


def interrupt_once_training(run_dir, after_step: int = 100, timeout: float = 120) -> subprocess.CompletedProcess:
    """train.py in its own process, sent SIGINT once its record shows `after_step`."""
    command = [sys.executable, str(ROOT / "train.py"), *INTERRUPTIBLE, f"hydra.run.dir={run_dir}"]
    # A test suite started in the background (no job control) ignores SIGINT, and so would its children:
    # the run gets Ctrl-C's default handling, as in a terminal.
    process = subprocess.Popen(command, cwd=run_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + timeout
        while process.poll() is None and last_logged_step(run_dir) < after_step and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_ctrl_c_records_an_interrupted_run_whose_printed_command_resumes_it_to_the_uninterrupted_end(
    tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    interrupted = interrupt_once_training(run_dir)
    output = interrupted.stdout + interrupted.stderr

    assert interrupted.returncode == 130, output[-2000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    [line] = [line for line in output.splitlines() if "interrupted" in line or "resume" in line]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 100 <= summary["steps"] < 1000
    assert f"interrupted at step {summary['steps']} (record: {run_dir})" in line
    assert checkpoint_step(run_dir) == summary["steps"]  # Ctrl-C left the checkpoint to resume from

    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[:2] == ["python", str(ROOT / "train.py")]
    assert command[-2:] == ["resume=true", f"hydra.run.dir={run_dir}"]
    # Resumed in this process: train.py's start in a process of its own is the interrupted run's.
    code, out, err = run_train_here(command[2:], tmp_path, monkeypatch, capsys)
    assert code == 0, err[-2000:]
    assert f"resuming from the checkpoint at step {summary['steps']}" in out + err

    train.run(compose_config(INTERRUPTIBLE), tmp_path / "reference")  # in this process: one thread, as the run had
    assert (run_dir / "metrics.jsonl").read_text() == (tmp_path / "reference" / "metrics.jsonl").read_text()
    ended, expected = (json.loads((d / "summary.json").read_text()) for d in (run_dir, tmp_path / "reference"))
    for key in ("status", "steps", "final_test_acc", "final_test_loss", "best_test_acc"):
        assert ended[key] == expected[key], key
    assert ended["status"] == "completed" and ended["resumed_from_step"] == summary["steps"]


@contextmanager
def stop_after(steps: int):
    """Stands in for training.interrupt.stop_requested: Ctrl-C pressed once `steps` steps are done."""
    asked = itertools.count(1)  # the loop asks before each step
    yield lambda: next(asked) > steps


def test_skip_complete_resumes_an_interrupted_run(tmp_path, config, monkeypatch):
    overrides = ["train.steps=200", "train.log_every=25", "optim.momentum=0.9"]
    monkeypatch.setattr(train, "stop_requested", lambda: stop_after(130))
    interrupted = train.run(config(*overrides), tmp_path / "run")
    monkeypatch.undo()
    assert interrupted["status"] == "interrupted" and interrupted["steps"] == 130
    assert train.finished_status(tmp_path / "run") is None  # not a finished run: skip_complete does not skip it

    resumed = train.run(config(*overrides, "skip_complete=true"), tmp_path / "run")
    reference = train.run(config(*overrides), tmp_path / "reference")
    assert resumed["resumed_from_step"] == 130 and resumed["status"] == "completed"
    assert resumed["final_test_acc"] == reference["final_test_acc"]


def test_resume_command_replaces_the_folder_and_flag_a_command_already_had():
    argv = ["train.py", "bn=none", "resume=false", "hydra.run.dir=old", "optim.lr=0.1"]
    assert resume_command(argv, "/runs/a b", sweep=False) == (
        "python train.py bn=none optim.lr=0.1 resume=true 'hydra.run.dir=/runs/a b'"
    )
    sweep = ["train.py", "-m", "seed=0,1", "hydra.sweep.dir=x"]
    assert resume_command(sweep, "/s", sweep=True) == "python train.py -m seed=0,1 skip_complete=true hydra.sweep.dir=/s"
