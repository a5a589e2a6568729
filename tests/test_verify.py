"""scripts/verify.py: re-runs land where their records say (same CPU, same seed), a record that does not
match is caught, and a verdict that would change is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

REPRODUCE, VERIFY = ROOT / "scripts" / "reproduce.py", ROOT / "scripts" / "verify.py"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def script(path, *args, cwd):
    return subprocess.run([sys.executable, str(path), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)


def test_verify_reruns_a_sample_and_catches_a_record_that_does_not_match(tmp_path):
    out = tmp_path / "results"
    made = script(REPRODUCE, "--claims", "C5", "--data", "digits", "--steps", "30", "--seeds", "0,1", "--launcher",
                  "basic", "--out", out, "--", "init.scale=1e-2,1.0", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    name = "scale_invariance/bn=none,init.scale=1.0,seed=0"

    # Drawn at random and re-run on the machine that made the records: every number the same. Without --out
    # the re-runs go to a temporary folder that is gone at the end.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    drawn = subprocess.run([sys.executable, str(VERIFY), str(out), "--sample", "2", "--seed", "3"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, env={**ENV, "TMPDIR": str(temporary)})
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    assert "in a temporary folder, removed at the end (--out <folder> keeps them)" in drawn.stdout
    assert drawn.stdout.count(": completed -> completed; final test accuracy +0.0000, largest difference along the curve "
                              "0.0000") == 2
    assert "record -> re-run: nothing recorded differs (code version, PyTorch build, processor, threads" in drawn.stdout
    assert "verdicts with the re-runs in place of the records: none changes" in drawn.stdout
    assert [p.name for p in temporary.iterdir() if p.name.startswith("verify_")] == []  # (torch keeps its own caches there)

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


def test_bad_arguments_get_one_line_and_exit_2(tmp_path):
    result = script(VERIFY, tmp_path / "nothing", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"error: results folder {tmp_path / 'nothing'} does not exist"
    (tmp_path / "empty").mkdir()
    result = script(VERIFY, tmp_path / "empty", "--runs", "a/b", cwd=tmp_path)
    assert result.returncode == 2 and "no finished run a/b" in result.stderr
    (tmp_path / "used" / "x").mkdir(parents=True)
    result = script(VERIFY, tmp_path / "empty", "--out", tmp_path / "used", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"error: --out {tmp_path / 'used'} exists and is not an empty folder; name a new one"
