"""scripts/verify.py: re-runs land where their records say (same CPU, same seed), a record that does not
match is caught, and a verdict that would change is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

REPRODUCE, VERIFY = ROOT / "scripts" / "reproduce.py", ROOT / "scripts" / "verify.py"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def script(path, *args, cwd):
    return subprocess.run([sys.executable, str(path), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)


def results(tmp_path, seeds: str, scales: str):
    """A small results folder: C5's runs of scale_invariance at these seeds and init scales, 30 steps each."""
    out = tmp_path / "results"
    made = script(REPRODUCE, "--claims", "C5", "--data", "digits", "--steps", "30", "--seeds", seeds, "--launcher",
                  "basic", "--out", out, "--", f"init.scale={scales}", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    return out


def verify_without_out(out, *args, cwd):
    """verify.py without --out, its temporary folder under cwd/tmp (TMPDIR): (the result, what it left there)."""
    temporary = cwd / "tmp"
    temporary.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, str(VERIFY), str(out), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=300, env={**ENV, "TMPDIR": str(temporary)})
    return result, [p.name for p in temporary.iterdir() if p.name.startswith("verify_")]  # (torch keeps its caches there)


def test_verify_reruns_a_record_and_catches_one_that_does_not_match(tmp_path):
    out = results(tmp_path, "0", "1.0")  # two runs: with and without BN
    name = "scale_invariance/bn=none,init.scale=1.0,seed=0"

    # Re-run on the machine that made the record: every number the same. Without --out the re-run goes to a
    # temporary folder that is gone at the end.
    same, left = verify_without_out(out, "--runs", name, cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "in a temporary folder, removed at the end (--out <folder> keeps them)" in same.stdout
    assert f"{name}: completed -> completed; final test accuracy +0.0000, largest difference along the curve 0.0000" in same.stdout
    assert "record -> re-run: nothing recorded differs (code version, PyTorch build, processor, threads" in same.stdout
    assert "verdicts with the re-runs in place of the records: none changes" in same.stdout
    assert left == []

    # A record that does not match its re-run is caught, and so is a record made with another PyTorch build.
    summary = out / name / "summary.json"
    record = json.loads(summary.read_text())
    summary.write_text(json.dumps({**record, "final_test_acc": record["final_test_acc"] - 0.25,
                                   "environment": {**record["environment"], "torch": "2.0.0+cu118"}}))
    moved = script(VERIFY, out, "--runs", name, "--out", tmp_path / "again", cwd=tmp_path)
    assert f"{name}: completed -> completed; final test accuracy +0.2500" in moved.stdout, moved.stdout + moved.stderr
    assert f"record -> re-run: torch 2.0.0+cu118 -> {record['environment']['torch']}\n" in moved.stdout
    assert (tmp_path / "again" / "runs" / name / "summary.json").is_file()  # --out keeps the re-runs
    assert (tmp_path / "again" / "replaced" / name / "summary.json").is_file()


@pytest.mark.slow  # the default run re-runs one named record (above)
def test_verify_reruns_a_random_sample(tmp_path):
    out = results(tmp_path, "0,1", "1e-2,1.0")
    drawn, left = verify_without_out(out, "--sample", "2", "--seed", "3", cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    assert drawn.stdout.count(": completed -> completed; final test accuracy +0.0000, largest difference along the curve "
                              "0.0000") == 2
    assert "verdicts with the re-runs in place of the records: none changes" in drawn.stdout and left == []


def test_bad_arguments_get_one_line_and_exit_2(tmp_path):
    result = script(VERIFY, tmp_path / "nothing", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"error: results folder {tmp_path / 'nothing'} does not exist"
    (tmp_path / "empty").mkdir()
    result = script(VERIFY, tmp_path / "empty", "--runs", "a/b", cwd=tmp_path)
    assert result.returncode == 2 and "no finished run a/b" in result.stderr
    (tmp_path / "used" / "x").mkdir(parents=True)
    result = script(VERIFY, tmp_path / "empty", "--out", tmp_path / "used", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"error: --out {tmp_path / 'used'} exists and is not an empty folder; name a new one"
