"""scripts/verify.py: re-runs land where their records say (same CPU, same seed), a record that does not
match is caught, and a verdict that would change is named."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import ROOT, load_script, write_job

VERIFY = ROOT / "scripts" / "verify.py"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
verify = load_script("verify")
SMALL = ["dataset=digits", "train.steps=30", "train.eval_every=3", "train.epochs=null", "train.evals_per_epoch=null",
         "threads=1", "logger=none"]  # as scripts/reproduce.py --steps 30 runs a job


def script(path, *args, cwd):
    return subprocess.run([sys.executable, str(path), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)


def results(tmp_path, seeds: str, scales: str):
    """A small results folder: C5's runs of scale_invariance with and without BN at these seeds and init
    scales, 30 steps each, written in this process as scripts/reproduce.py's sweep would write them
    (tests/test_reproduce.py runs that sweep)."""
    out = tmp_path / "results"
    for seed, scale, bn in itertools.product(seeds.split(","), scales.split(","), ("none", "before")):
        job = [*SMALL, f"bn={bn}", f"init.scale={scale}", f"seed={seed}"]
        write_job(out / "scale_invariance" / f"bn={bn},init.scale={scale},seed={seed}", job, "scale_invariance")
    return out


def verify_in(out, *args, capsys, monkeypatch, tmp_path) -> tuple[int, str, list[str]]:
    """verify.py's main on `out`, its temporary folder under tmp_path/tmp: (exit status, what it printed,
    what it left in the temporary folder)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(temporary))
        status = verify.main([str(out), *map(str, args)])
    printed = capsys.readouterr()
    return status, printed.out + printed.err, [p.name for p in temporary.iterdir() if p.name.startswith("verify_")]


def test_verify_reruns_a_record_and_catches_one_that_does_not_match(tmp_path, capsys, monkeypatch):
    out = results(tmp_path, "0", "1.0")  # two runs: with and without BN
    name = "scale_invariance/bn=none,init.scale=1.0,seed=0"

    # Re-run on the machine that made the record: every number the same. Without --out the re-run goes to a
    # temporary folder that is gone at the end.
    status, same, left = verify_in(out, "--runs", name, capsys=capsys, monkeypatch=monkeypatch, tmp_path=tmp_path)
    assert status == 0, same
    assert "in a temporary folder, removed at the end (--out <folder> keeps them)" in same
    assert f"{name}: completed -> completed; final test accuracy +0.0000, largest difference along the curve 0.0000" in same
    assert "record -> re-run: nothing recorded differs (code version, PyTorch build, processor, threads" in same
    assert "verdicts with the re-runs in place of the records: none changes" in same
    assert left == []

    # A record that does not match its re-run is caught, and so is a record made with another PyTorch build.
    # Here the re-run (a real one above) gives back the record's own files: the numbers it was made with.
    summary = out / name / "summary.json"
    record = json.loads(summary.read_text())
    shutil.copytree(out / name, tmp_path / "as_recorded")
    summary.write_text(json.dumps({**record, "final_test_acc": record["final_test_acc"] - 0.25,
                                   "environment": {**record["environment"], "torch": "2.0.0+cu118"}}))

    def rerun_as_recorded(_, target):
        shutil.copytree(tmp_path / "as_recorded", target)
        return subprocess.CompletedProcess([], 0)

    monkeypatch.setattr(verify, "rerun", rerun_as_recorded)
    status, moved, _ = verify_in(out, "--runs", name, "--out", tmp_path / "again", capsys=capsys, monkeypatch=monkeypatch,
                                 tmp_path=tmp_path)
    assert f"{name}: completed -> completed; final test accuracy +0.2500" in moved, moved
    assert f"record -> re-run: torch 2.0.0+cu118 -> {record['environment']['torch']}\n" in moved
    assert (tmp_path / "again" / "runs" / name / "summary.json").is_file()  # --out keeps the re-runs
    assert (tmp_path / "again" / "replaced" / name / "summary.json").is_file()


@pytest.mark.slow  # the default run re-runs one named record (above)
def test_verify_reruns_a_random_sample(tmp_path, capsys, monkeypatch):
    out = results(tmp_path, "0,1", "1e-2,1.0")
    status, drawn, left = verify_in(out, "--sample", "2", "--seed", "3", capsys=capsys, monkeypatch=monkeypatch,
                                    tmp_path=tmp_path)
    assert status == 0, drawn
    assert drawn.count(": completed -> completed; final test accuracy +0.0000, largest difference along the curve "
                       "0.0000") == 2
    assert "verdicts with the re-runs in place of the records: none changes" in drawn and left == []


def test_bad_arguments_get_one_line_and_exit_2(tmp_path, capsys):
    result = script(VERIFY, tmp_path / "nothing", cwd=tmp_path)  # as a user types it
    assert result.returncode == 2 and result.stderr.strip() == f"error: results folder {tmp_path / 'nothing'} does not exist"
    (tmp_path / "empty").mkdir()
    assert verify.main([str(tmp_path / "empty"), "--runs", "a/b"]) == 2
    assert "no finished run a/b" in capsys.readouterr().err
    (tmp_path / "used" / "x").mkdir(parents=True)
    assert verify.main([str(tmp_path / "empty"), "--out", str(tmp_path / "used")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {tmp_path / 'used'} exists and is not an empty folder; name a new one"
