"""Runs that survive: a real SIGKILL and resume, atomic checkpoints, damaged records, tracker faults."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT, compose_config, run_cli, snapshot, write_job
from train import run
from training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from training.record import read_metrics

LOG_EVERY = 25

# Dropout (random numbers), momentum (optimizer state), and checkpoints that fall between
# train-loss lines (the loss accumulator is part of the state): all must survive a kill. One
# thread each: the killed run and the reference (in this process) must train alike.
RESUMABLE = [
    "logger=none", "threads=1", "model.dropout=0.1", "optim.momentum=0.9", "train.eval_every=150",
    f"train.log_every={LOG_EVERY}", "train.checkpoint_every=110",
]


def start(run_dir, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *RESUMABLE, *extra, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def checkpoint_step(run_dir) -> int | None:
    try:
        return torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)["loop"]["outcome"]["steps"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


def last_logged_step(run_dir) -> int:
    rows, _ = read_metrics(run_dir / "metrics.jsonl")
    return rows[-1]["step"] if rows else -1


def kill_after_a_checkpoint(run_dir, target_step: int, *extra, timeout: float = 120) -> tuple[int, int]:
    """Start the run, SIGKILL it once it has checkpointed and logged `target_step`."""
    process = start(run_dir, *extra)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        # checkpoints are renamed into place whole: one that exists loads (not loaded here, to leave the cores to the runs)
        if last_logged_step(run_dir) >= target_step and (run_dir / CHECKPOINT_FILE).is_file():
            break
        time.sleep(0.005)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return checkpoint_step(run_dir), last_logged_step(run_dir)


@pytest.mark.parametrize("steps", [
    600,  # the default run: one kill somewhere in the first 450 steps
    pytest.param(1500, marks=pytest.mark.slow),  # the same check over a longer run: more epochs, later kills
])
def test_sigkill_then_resume_ends_bit_for_bit_like_the_uninterrupted_run(tmp_path, steps, caplog):
    length = f"train.steps={steps}"
    target = random.Random().randrange(200, steps - 200)
    saved, logged = kill_after_a_checkpoint(tmp_path / "killed", target, length)
    run(compose_config([*RESUMABLE, length]), tmp_path / "reference")  # in this process: one thread, as the run had
    # A checkpoint at a multiple of 110 can land between two train-loss lines (every 25 steps):
    # the run may be killed after its checkpoint at 330 and before its line at 350, so the
    # checkpoint can be ahead of the last line by less than one logging interval.
    assert saved is not None and 0 < saved < logged + LOG_EVERY, (target, saved, logged)

    # Resumed in this process (tests/test_interrupt.py resumes with the command a run prints).
    with caplog.at_level("INFO", logger="train"):
        assert run(compose_config([*RESUMABLE, length, "resume=true"]), tmp_path / "killed")["status"] == "completed"
    assert f"resuming from the checkpoint at step {saved}" in caplog.messages

    expected = (tmp_path / "reference" / "metrics.jsonl").read_text()
    assert (tmp_path / "killed" / "metrics.jsonl").read_text() == expected, f"killed at {logged}, checkpoint {saved}"
    steps = [row["step"] for row in read_metrics(tmp_path / "killed" / "metrics.jsonl")[0]]
    assert steps == sorted(set(steps))  # no duplicate or missing steps
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("reference", "killed")]
    for key in ("status", "steps", "final_test_acc", "final_test_loss", "best_test_acc"):
        assert summaries[0][key] == summaries[1][key], key
    assert summaries[1]["resumed_from_step"] == saved


def test_resume_in_process_with_a_cut_last_line(tmp_path, config, monkeypatch):
    from training.record import RunRecord

    overrides = [*RESUMABLE, "train.steps=300"]
    reference = run(config(*overrides), tmp_path / "reference")

    log_line = RunRecord.log

    def crash_at_step_250(self, metrics):
        if metrics["step"] == 250:
            raise KeyboardInterrupt  # the process dies after its checkpoint at step 220
        log_line(self, metrics)

    interrupted = tmp_path / "interrupted"
    monkeypatch.setattr(RunRecord, "log", crash_at_step_250)
    with pytest.raises(KeyboardInterrupt):
        run(config(*overrides), interrupted)
    monkeypatch.undo()
    with open(interrupted / "metrics.jsonl", "a") as f:
        f.write('{"step": 250, "train/lo')  # what a kill in the middle of a write leaves
    resumed = run(config(*overrides, "resume=true"), interrupted)

    assert resumed["resumed_from_step"] == 220
    assert read_metrics(interrupted / "metrics.jsonl") == read_metrics(tmp_path / "reference" / "metrics.jsonl")
    assert resumed["final_test_acc"] == reference["final_test_acc"]


def test_resume_without_a_checkpoint_starts_over(tmp_path, config):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 0, "test/acc": 0.1}\n{"step": 25, "train/loss": 2.0}\n')
    resumed = run(config("train.steps=100", "resume=true"), run_dir)
    fresh = run(config("train.steps=100"), tmp_path / "fresh")
    assert resumed["resumed_from_step"] is None
    assert read_metrics(run_dir / "metrics.jsonl") == read_metrics(tmp_path / "fresh" / "metrics.jsonl")
    assert resumed["final_test_acc"] == fresh["final_test_acc"]


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path, model, optimizer, {"step": 1})
    before = model.weight.detach().clone()

    def dies_mid_write(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # stands in for the kill

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model, optimizer, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path, model, optimizer) == {"step": 1}
    assert torch.equal(model.weight, before)


def test_slurm_requeue_resumes_without_being_asked(tmp_path, config, monkeypatch):
    run(config("train.steps=100", "train.checkpoint_every=50"), tmp_path)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    again = run(config("train.steps=150", "train.checkpoint_every=50"), tmp_path)
    assert again["resumed_from_step"] == 100 and again["steps"] == 150


def test_resume_refuses_changed_settings_and_touches_nothing(tmp_path):
    run_dir = tmp_path / "run"
    write_job(run_dir, ["logger=none", "train.steps=30"])
    files = snapshot(run_dir)
    changed = run_cli(["logger=none", "train.steps=30", "optim.lr=0.2", "resume=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.strip().splitlines()[-1].startswith("error: resume=true with settings that differ")
    assert "optim.lr (0.1 -> 0.2)" in changed.stderr
    assert snapshot(run_dir) == files


def test_unreachable_tracker_costs_one_warning_and_a_bounded_wait(tmp_path, config, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    cfg = config("logger=wandb", "logger.mode=online", "logger.init_timeout_s=2", "train.steps=50")
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="training.tracker"):
        summary = run(cfg, tmp_path)
    assert time.monotonic() - started < 60
    assert summary["status"] == "completed" and summary["final_test_acc"] > 0.5
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "wandb could not start in online mode" in warnings[0]
    assert len(read_metrics(tmp_path / "metrics.jsonl")[0]) == 3


def test_tracker_that_fails_mid_run_stops_logging_but_not_training(tmp_path):
    from training.tracker import WandbTracker

    class BrokenRun:
        def log(self, *args, **kwargs):
            raise ConnectionError("server went away")

    tracker = WandbTracker(BrokenRun())
    tracker.log({"step": 1, "train/loss": 1.0}, step=1)
    tracker.log({"step": 2, "train/loss": 1.0}, step=2)  # silent from now on
    assert tracker._failed
