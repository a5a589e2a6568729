"""scripts/reproduce.py: a claim's sweep end to end into one results folder, reruns that skip finished
jobs and redo unfinished ones, and bad arguments refused before anything runs."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, snapshot

SCRIPT = ROOT / "scripts" / "reproduce.py"
LOG_KEYS = {"experiment", "claims", "command", "jobs", "already_complete", "wall_s", "returncode", "launcher", "finished_at"}

# C5's sweep of init.scale (the experiment's own values) with bn=none from the command line in place of
# the experiment's bn=none,before: cheap jobs, no end-of-run measurement.
QUICK_C5 = ["--claims", "C5", "--data", "digits", "--steps", "30", "--seeds", "0", "--launcher", "basic"]
NARROW_C5 = ["--", "bn=none"]


def load_script():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


reproduce = load_script()


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


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

    first = run_script(args, cwd=tmp_path)  # as a user types it
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"[1/1] scale_invariance: {n} jobs, 0 already complete" in first.stdout
    assert f"next: python scripts/report.py {out}" in first.stdout
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

    # Everything finished: nothing is launched and nothing changes.
    before = snapshot(out)
    assert reproduce.main(args) == 0
    assert f"{n} jobs, {n} already complete" in capsys.readouterr().out
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
