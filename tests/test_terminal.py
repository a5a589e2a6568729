"""What the terminal shows: the bar or plain lines, progress of long loops, job-prefixed log lines."""
from __future__ import annotations

import io
import logging
import os

import pytest

from conftest import run_cli
from training import progress
from training.progress import JobLogFormatter, Progress, track


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2


@pytest.fixture
def terminal(monkeypatch):
    """terminal(columns): stderr becomes a terminal that reports `columns` columns. Called in the
    test itself: pytest puts its own stderr capture back between a fixture's setup and the test."""

    def set_columns(columns: int) -> FakeTerminal:
        stream = FakeTerminal()
        monkeypatch.setattr(progress.sys, "stderr", stream)
        monkeypatch.setattr(progress.os, "get_terminal_size", lambda fd=None: os.terminal_size((columns, 24)))
        return stream

    return set_columns


METRICS = {"train/loss": 0.5, "test/acc": 0.75}


def test_zero_column_terminal_gets_plain_lines_instead_of_an_empty_bar(terminal, caplog):
    stream = terminal(0)
    with caplog.at_level(logging.INFO, logger="training.progress"):
        bar = Progress(200)
        bar.update(100, METRICS, steps_per_s=500)
        bar.close()
    assert bar.bar is None
    assert [r.getMessage() for r in caplog.records] == ["step 100/200  loss 0.5000  test_acc 0.7500  steps/s 500"]
    assert stream.getvalue() == ""


def test_terminal_with_a_width_gets_the_bar(terminal, caplog):
    stream = terminal(80)
    with caplog.at_level(logging.INFO, logger="training.progress"):
        bar = Progress(200)
        bar.update(100, METRICS, steps_per_s=500)
        bar.close()
    assert bar.bar is not None and not caplog.records
    assert "100/200" in stream.getvalue() and "test_acc=0.7500" in stream.getvalue()


def test_track_yields_every_item_and_reports_progress_in_lines_off_a_terminal(caplog, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # a line after every item
    with caplog.at_level(logging.INFO, logger="training.progress"):
        seen = [size for size in track([1, 8, 32], "test-time statistics")]
    assert seen == [1, 8, 32]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "test-time statistics: 0/3"
    assert [m.split(" (")[0] for m in messages[1:4]] == [f"test-time statistics: {k}/3" for k in (1, 2, 3)]
    assert messages[-1].startswith("test-time statistics: done, 3 in ")


def test_track_shows_a_bar_on_a_terminal(terminal, caplog):
    stream = terminal(80)
    with caplog.at_level(logging.INFO, logger="training.progress"):
        assert list(track(range(5), "population statistics")) == list(range(5))
    assert "population statistics" in stream.getvalue() and "5/5" in stream.getvalue()
    assert not caplog.records


def test_log_lines_of_a_single_run_have_no_job_prefix():
    record = logging.LogRecord("train", logging.INFO, __file__, 1, "hello", None, None)
    assert JobLogFormatter("%(name)s - %(message)s").format(record) == "train - hello"


@pytest.mark.slow
def test_jobs_of_a_local_launcher_sweep_say_which_wrote_each_line(tmp_path):
    """hydra/launcher=local runs two jobs at once in joblib workers: each line names its job."""
    result = run_cli(
        ["-m", "hydra/launcher=local", "seed=0,1", "train.steps=100", "threads=1", "logger=none",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for job in (0, 1):
        of_job = [line for line in lines if line.startswith(f"[job {job}] ")]
        assert any("completed after 100 steps" in line for line in of_job), result.stdout
        assert any(line.endswith(f"record: {tmp_path / 'sweep' / f'seed={job},train.steps=100'}") for line in of_job)
    assert not any("completed after" in line and not line.startswith("[job ") for line in lines)
