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

    same = script(VERIFY, out, "--runs", name, "--out", tmp_path / "again", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"{name}: completed -> completed; final test accuracy +0.0000, largest difference along the curve 0.0000" in same.stdout
    assert "verdicts with the re-runs in place of the records: none changes" in same.stdout

    summary = out / name / "summary.json"
    record = json.loads(summary.read_text())
    summary.write_text(json.dumps({**record, "final_test_acc": record["final_test_acc"] - 0.25}))
    moved = script(VERIFY, out, "--runs", name, "--out", tmp_path / "third", cwd=tmp_path)
    assert "final test accuracy +0.2500" in moved.stdout, moved.stdout + moved.stderr

    drawn = script(VERIFY, out, "--sample", "2", "--seed", "3", "--out", tmp_path / "drawn", cwd=tmp_path)
    assert drawn.returncode in (0, 1) and drawn.stdout.count("completed -> completed") == 2


def test_bad_arguments_get_one_line_and_exit_2(tmp_path):
    result = script(VERIFY, tmp_path / "nothing", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"error: results folder {tmp_path / 'nothing'} does not exist"
    (tmp_path / "empty").mkdir()
    result = script(VERIFY, tmp_path / "empty", "--runs", "a/b", cwd=tmp_path)
    assert result.returncode == 2 and "no finished run a/b" in result.stderr
