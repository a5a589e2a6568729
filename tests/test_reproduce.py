"""scripts/reproduce.py: a claim's sweep end to end into one results folder, reruns that skip finished
jobs and redo unfinished ones, and bad arguments refused before anything runs."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import load_script, snapshot

LOG_KEYS = {"experiment", "claims", "command", "jobs", "already_complete", "wall_s", "returncode", "launcher", "finished_at"}

# C5's sweep of init.scale (the experiment's own values) with bn=none from the command line in place of
# the experiment's bn=none,before: cheap jobs, no end-of-run measurement.
QUICK_C5 = ["--claims", "C5", "--data", "digits", "--steps", "30", "--seeds", "0", "--launcher", "basic"]
NARROW_C5 = ["--", "bn=none"]


reproduce = load_script("reproduce")


def log_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "reproduce_log.jsonl").read_text().splitlines()]


def records(sweep: Path, names: list[str]) -> dict:
    """The run records of these jobs, with their modification times (Hydra rewrites .hydra/ of a skipped job)."""
    return {name: {f: ((sweep / name / f).stat().st_mtime_ns, (sweep / name / f).read_bytes())
                   for f in ("summary.json", "metrics.jsonl")} for name in names}


def test_a_claim_runs_end_to_end_and_a_rerun_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "results"
    args = [*QUICK_C5, "--out", str(out), *NARROW_C5]
    predicted = reproduce.plan_all(reproduce.parse_args(args))[0]
    assert [s.experiment for s in predicted] == ["scale_invariance"]
    names = sorted(d.name for d in predicted[0].job_dirs)
    n = len(names)
    assert n > 1 and all(name.startswith("bn=none,init.scale=") and name.endswith(",seed=0") for name in names)
    assert "bn=none,init.scale=1e-4,seed=0" in names  # the value as the claim's arm writes it

    assert reproduce.main(args) == 0  # (tests/test_readme.py runs the script as a user types it)
    first = capsys.readouterr().out
    assert f"[1/1] scale_invariance: {n} jobs, 0 already complete" in first
    assert f"next: python scripts/report.py {out}" in first
    sweep = out / "scale_invariance"
    made = sorted(p.parent.name for p in sweep.glob("*/summary.json"))
    assert made == names  # Hydra named the folders as predicted
    for name in names:
        summary = json.loads((sweep / name / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["steps"] == 30
    assert (sweep / "reproduce.log").stat().st_size > 0

    [line] = log_lines(out)
    assert set(line) == LOG_KEYS
    assert line["experiment"] == "scale_invariance" and line["claims"] == ["C5"]  # C8 reads these runs too, but was not chosen
    assert (line["jobs"], line["already_complete"], line["returncode"], line["launcher"]) == (n, 0, 0, "basic")
    assert line["command"].startswith("python ") and "experiment=scale_invariance" in line["command"]
    assert line["wall_s"] > 0
    assert datetime.fromisoformat(line["finished_at"]).utcoffset() == timedelta(0)

    # Everything finished: nothing is launched and nothing changes, and one line says so and how to train again.
    before = snapshot(out)
    assert reproduce.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith(f"nothing to run: all {n} runs of this command are already complete in {out} "
                                  "(finished records); to train them again, give a new folder: --out <new folder>")
    assert not any(line.startswith(("[1/1]", "next:", "total wall time")) for line in printed)
    assert snapshot(out) == before

    # A job whose record is unfinished is redone, the finished ones are skipped with their records
    # untouched, and a sweep that fails (here: given a bad value) does not stop the next one.
    redo = sweep / names[0]
    (redo / "summary.json").unlink()
    finished = records(sweep, names[1:])
    [real], _ = reproduce.plan_all(reproduce.parse_args(args))
    broken = dataclasses.replace(real, experiment="broken", command=[*real.command, "optim.lr=-1"])
    with monkeypatch.context() as patch:
        patch.setattr(reproduce, "plan_all", lambda _: ([broken, real], []))
        assert reproduce.main(args) == 1
    printed = capsys.readouterr()
    assert f"[2/2] scale_invariance: {n} jobs, {n - 1} already complete" in printed.out
    assert "broken failed (exit 2): error: " in printed.out and f"[{n}/{n}] {names[0]}: completed" in printed.out
    assert printed.err.strip().splitlines()[-1] == "error: not reproduced: broken"
    assert json.loads((redo / "summary.json").read_text())["status"] == "completed"
    assert records(sweep, names[1:]) == finished
    logged = [(x["experiment"], x["already_complete"], x["returncode"]) for x in log_lines(out)]
    assert logged == [("scale_invariance", 0, 0), ("broken", n - 1, 2), ("scale_invariance", n - 1, 0)]

    # The same folder with another step count would mix runs: refused, nothing touched.
    before = snapshot(out)
    assert reproduce.main([a if a != "30" else "40" for a in args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "train.steps=30 (this command: 40)" in err
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--claims", "C1,C99"], "error: --claims: unknown claim(s) C99; choose from C1,"),
        (["--seeds", "0,one"], "error: --seeds must be comma-separated whole numbers >= 0"),
        (["--seeds", "1,1"], "error: --seeds lists a seed twice"),
        (["--steps", "0"], "error: --steps must be >= 1, got 0"),
        (["--steps", "many"], "error: argument --steps: invalid int value: 'many'"),
        (["--data", "imagenet"], "error: --data imagenet is not one of"),
        (["--launcher", "basic", "--jobs", "2"], "error: --jobs applies to --launcher local only"),
        (["--data", "mnist"], "error: --data mnist: not found under"),
        (["--", "optim.momentun=0.9"], "error: scale_invariance: Could not override 'optim.momentun'"),
        (["--", "optim.lr=-1"], "error: scale_invariance: optim.lr must be > 0, got -1"),
        (["--", "--seeds", "1"], "error: cannot read '--seeds' after --: "),
        (["--launcher", "basic", "--", "hydra.launcher.partition=gpu"], "error: Could not override 'hydra.launcher.partition'"),
    ],
)
def test_bad_arguments_give_one_line_and_run_nothing(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path / "no_data"))
    out = tmp_path / "results"
    code = reproduce.main(["--claims", "C5", "--data", "digits", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith(message), err
    assert not out.exists()


def test_a_plan_needs_neither_the_data_nor_slurm_and_says_how_long_it_takes(tmp_path, monkeypatch, capsys):
    """--dry-run on a machine without MNIST and without sbatch: the plan, an estimate of its time from the
    committed records scaled by this machine's calibration, and one note on what the runs would need."""
    import training.timing

    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path / "no_data"))
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no sbatch here, even where SLURM is installed
    stored = training.timing.reference()
    assert stored is not None, "results/calibration.json: python -m training.timing --write"
    monkeypatch.setattr(training.timing, "calibrate", lambda: stored["steps_per_s"] / 2)  # half as fast as the reference
    out = tmp_path / "new"
    code = reproduce.main(["--claims", "C1", "--data", "mnist", "--out", str(out), "--jobs", "2", "--dry-run",
                           "--launcher", "local"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    lines = printed.out.splitlines()
    assert lines[0].startswith("fig1_mnist: ") and lines[0].endswith(" jobs (seeds 0-9) for C1, 0 already complete")
    jobs = lines[0].split()[1]
    assert "time, an estimate:" in lines
    [experiment] = [line for line in lines if line.startswith("  fig1_mnist ") and "of job time" in line]
    [total] = [line for line in lines if line.startswith("  all ")]
    assert f" {jobs} jobs " in experiment and f" {jobs} jobs " in total and "of wall time with 2 jobs at a time" in total
    how = " ".join(line.strip() for line in lines[lines.index(total) + 1:])
    assert how.startswith("how: the committed records' times under ")
    assert "times 2.00: this machine ran the calibration" in how and "results/calibration.json" in how
    assert "Wall time: the experiments one after another" in how
    assert lines[-1].startswith("note: the runs need what this machine lacks: --data mnist: not found under")
    assert not out.exists()

    # The same without --dry-run: the data's one line, alone; then SLURM's.
    assert reproduce.main(["--claims", "C1", "--data", "mnist", "--out", str(out)]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith("error: --data mnist: not found under")
    assert len(printed.err.splitlines()) == 1
    assert reproduce.main(["--claims", "C12", "--data", "digits", "--out", str(out), "--launcher", "slurm"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ("error: --launcher slurm needs SLURM's sbatch on PATH; run this on the "
                                                 "cluster's login node, try it here with scripts/slurm_local.sh start, or "
                                                 "use --launcher local\n")
    assert not out.exists()


def test_the_estimate_takes_each_jobs_recorded_time_and_the_start_up_fitted_to_the_committed_sweeps(tmp_path):
    """Two committed sweeps, two jobs at a time: one of 2 jobs (50 s, 60 s) that took 75 s of wall time, one of
    4 jobs of 10 s that took 40 s; beyond the makespan of their jobs (60 s, 20 s) that is 15 s and 20 s, which
    10 s per sweep and 5 s per job and slot explain. A job with its own record takes its time, one without the
    experiment's mean; --steps scales by the recorded steps."""
    reference = tmp_path / "results" / "mnist"
    sweeps = {"a": [50.0, 60.0], "b": [10.0] * 4}
    for experiment, times in sweeps.items():
        for seed, wall_s in enumerate(times):
            folder = reference / experiment / f"bn=none,seed={seed}"
            folder.mkdir(parents=True)
            (folder / "summary.json").write_text(json.dumps({"status": "completed", "wall_s": wall_s, "steps": 1000}))
    (reference / "reproduce_log.jsonl").write_text("".join(json.dumps(
        {"experiment": experiment, "jobs": len(times), "already_complete": 0, "wall_s": wall_s, "returncode": 0,
         "launcher": "local", "command": "python train.py -m hydra.launcher.n_jobs=2"}) + "\n"
        for (experiment, times), wall_s in zip(sweeps.items(), (75.0, 40.0))))
    assert reproduce.makespan([3, 1, 1, 1], 2) == 3 and reproduce.makespan([1, 1, 3], 2) == 4
    assert reproduce.start_up(reference) == pytest.approx((10.0, 5.0))

    names = ["bn=none,seed=0", "bn=none,seed=1", "bn=none,seed=2"]
    estimate = reproduce.job_durations("a", reference, None, names)
    assert estimate.durations == [50.0, 60.0, 55.0] and (estimate.from_records, estimate.unknown) == (2, 0)
    assert reproduce.job_durations("a", reference, 100, names[:1]).durations == [5.0]
    nothing = reproduce.job_durations("other", reference, None, names)
    assert nothing.durations == [] and nothing.unknown == 3
