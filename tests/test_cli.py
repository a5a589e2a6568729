"""train.py from the command line, as a user runs it: records, sweeps, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import CONFIGS, ROOT, run_cli, snapshot, write_job

QUICK = ["logger=none", "train.steps=40", "train.eval_every=20"]


def test_single_run_says_what_it_loads_first_writes_its_record_and_says_where(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "loading digits and building the mlp network ..."
    assert f"record: {run_dir}" in result.stdout + result.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "metrics.jsonl").is_file()

    # A second run aimed at the same folder is refused before it writes anything.
    before = snapshot(run_dir)
    again = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("error: hydra.run.dir=")
    assert snapshot(run_dir) == before


def job_folder(*overrides: str) -> str:
    """The folder Hydra names a sweep job by default: its overrides but logger and the like, sorted, joined by ','."""
    return ",".join(sorted(o for o in overrides if not o.startswith(("logger=", "threads=", "skip_complete="))))


@pytest.mark.slow  # the default run has tests/test_experiments.py's command-line sweep, one folder per job
def test_sweep_gives_each_job_its_own_folder(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *QUICK, "bn=none,before", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = [json.loads((sweep / job_folder(*QUICK, f"bn={bn}") / "summary.json").read_text()) for bn in ("none", "before")]
    assert "bn=none" in summaries[0]["overrides"] and "bn=before" in summaries[1]["overrides"]


def test_sweep_jobs_that_would_share_a_folder_are_refused_before_any_starts(tmp_path):
    """threads is left out of job folder names (it does not change what is trained): a sweep over it alone
    would put both jobs in one folder. The line says how to name the folders with it."""
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *QUICK, "threads=1,2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: sweep jobs threads=1 and threads=2 would share the job folder "
                           "train.eval_every=20,train.steps=40: folder names leave out threads"), line
    assert "hydra.job.config.override_dirname.exclude_keys=[skip_complete,resume,logger," in line and ",threads," not in line
    assert not sweep.exists()


@pytest.mark.parametrize("subdir", [[], ["hydra.sweep.subdir=${hydra.job.num}"]], ids=["named", "numbered"])
def test_sweep_with_one_bad_value_stops_before_any_job(tmp_path, subdir):
    """Also with job folders numbered by Hydra's own interpolation, which the checks read as text."""
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", *QUICK, "optim.lr=0.1,-1", f"hydra.sweep.dir={sweep}", *subdir], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: sweep job optim.lr=-1: optim.lr must be > 0, got -1"
    assert not sweep.exists()


def test_an_experiments_own_sweep_is_checked_job_by_job_before_any_starts(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "experiment=fig1_mnist", "dataset=digits", *QUICK, "bn.eps=0", f"hydra.sweep.dir={sweep}"],
                     cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: sweep job ") and "seed=" in line  # a job of the experiment's sweep (its seeds)
    assert line.endswith(": bn.eps must be > 0, got 0")
    assert not sweep.exists()


# What Hydra itself would refuse, with blocks of lines or tracebacks and exit status 1: (command
# line, the line train.py prints instead).
HYDRA_ERRORS = [
    (["bn=befor"], "error: unknown option bn=befor; closest known: before; "
                   "the options of bn: after, before, group, last, layer, noisy, none"),
    (["experiment=fig2"], "error: unknown option experiment=fig2; closest known: fig1_mnist; the options of experiment: "),
    (["train.steps=[1,2"], "error: cannot read train.steps=[1,2 (no viable alternative at input '[1,2'); the syntax: "),
    (["hydra.run.dir=/proc/x"], "error: hydra.run.dir=/proc/x cannot be created ("),
    (["-m", "bn=none,nonee"], "error: unknown option bn=nonee; closest known: none; the options of bn: "),
]


@pytest.mark.parametrize("args,message", HYDRA_ERRORS, ids=[" ".join(a) for a, _ in HYDRA_ERRORS])
def test_hydras_own_errors_are_one_line_with_exit_status_2_and_leave_nothing(tmp_path, args, message):
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(message), line
    assert list(tmp_path.iterdir()) == []


def test_a_refused_command_line_is_answered_before_torch_is_imported(tmp_path):
    check = (
        "import sys\n"
        "from pathlib import Path\n"
        "from training.command_line import check_command_line\n"
        "try:\n"
        f"    check_command_line(['optim.lr=-1'], Path({str(CONFIGS)!r}))\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, 'torch' in sys.modules, 'wandb' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stderr.strip() == "error: optim.lr must be > 0, got -1"
    assert result.stdout.split() == ["2", "False", "False"]


def test_sweep_whose_data_is_missing_is_refused_once_before_any_job(tmp_path):
    (tmp_path / "empty").mkdir()
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", *QUICK, "seed=0,1", "dataset=fashion_mnist", f"dataset.root={tmp_path / 'empty'}", "dataset.download=false",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    single = run_cli([*QUICK, "dataset=fashion_mnist", f"dataset.root={tmp_path / 'empty'}", "dataset.download=false",
                      f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2 and single.returncode == 2
    assert result.stderr.splitlines() == single.stderr.splitlines()  # the one line a single run gets
    [line] = result.stderr.splitlines()
    assert line.startswith("error: dataset=fashion_mnist: train-images-idx3-ubyte") and "dataset.download=false" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and list((tmp_path / "empty").iterdir()) == []


@pytest.mark.slow  # the default run has the same sweep on Hydra's basic launcher (below) and the local launcher's config
def test_local_launcher_runs_jobs_side_by_side_with_shared_cores(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=local", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(json.loads((sweep / job_folder(*QUICK, f"seed={i}") / "summary.json").read_text())["status"] == "completed"
               for i in (0, 1))


def test_skip_complete_reruns_a_sweep_without_redoing_finished_jobs(tmp_path):
    """The command an interrupted sweep prints to resume it is the sweep's own plus skip_complete=true, which
    the job folders' names leave out, so the jobs find their folders again."""
    sweep = tmp_path / "sweep"
    for seed in (0, 1):  # the sweep's jobs, run in this process (tests/test_experiments.py runs a sweep's command)
        write_job(sweep / job_folder(*QUICK, f"seed={seed}"), [*QUICK, f"seed={seed}"])
    done = sweep / job_folder(*QUICK, "seed=0") / "summary.json"
    killed = sweep / job_folder(*QUICK, "seed=1")
    before = done.read_bytes()
    (killed / "summary.json").unlink()  # as if the job had been killed
    again = run_cli(["-m", *QUICK, "seed=0,1", "skip_complete=true", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "skipped:" in again.stdout + again.stderr and done.read_bytes() == before
    assert json.loads((killed / "summary.json").read_text())["status"] == "completed"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted([done.parent.name, killed.name])
