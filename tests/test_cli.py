"""train.py from the command line, as a user runs it: records, sweeps, and bad input."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, snapshot

QUICK = ["logger=none", "train.steps=40", "train.eval_every=20"]


def test_single_run_writes_its_record_and_says_where(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"record: {run_dir}" in result.stdout + result.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "metrics.jsonl").is_file()

    # A second run aimed at the same folder is refused before it writes anything.
    before = snapshot(run_dir)
    again = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("error: hydra.run.dir=")
    assert snapshot(run_dir) == before


@pytest.mark.slow  # the default run has tests/test_experiments.py's command-line sweep, one folder per job
def test_sweep_gives_each_job_its_own_folder(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *QUICK, "bn=none,before", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = [json.loads((sweep / str(i) / "summary.json").read_text()) for i in (0, 1)]
    assert "bn=none" in summaries[0]["overrides"] and "bn=before" in summaries[1]["overrides"]


def test_sweep_with_one_bad_value_stops_before_any_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *QUICK, "optim.lr=0.1,-1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: sweep job optim.lr=-1: optim.lr must be > 0, got -1"
    assert not sweep.exists()


def test_unknown_option_lists_the_choices(tmp_path):
    result = run_cli(["bn=sideways"], cwd=tmp_path)
    assert result.returncode != 0
    assert "Available options in 'bn'" in result.stderr and "before" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_local_launcher_runs_jobs_side_by_side_with_shared_cores(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=local", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(json.loads((sweep / str(i) / "summary.json").read_text())["status"] == "completed" for i in (0, 1))


def test_skip_complete_reruns_a_sweep_without_redoing_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *QUICK, "seed=0,1", "skip_complete=true", f"hydra.sweep.dir={sweep}",
            "hydra.sweep.subdir=${hydra.job.override_dirname}", "hydra.job.config.override_dirname.exclude_keys=[skip_complete,logger,train.steps,train.eval_every]"]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    done = sweep / "seed=0" / "summary.json"
    before = done.read_bytes()
    (sweep / "seed=1" / "summary.json").unlink()  # as if the job had been killed
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "skipped:" in again.stdout + again.stderr and done.read_bytes() == before
    assert json.loads((sweep / "seed=1" / "summary.json").read_text())["status"] == "completed"
    steps = [json.loads(line)["step"] for line in (sweep / "seed=1" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # started over, no duplicate lines
