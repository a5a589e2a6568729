"""Reading run folders back, damaged ones included."""
from __future__ import annotations

import json

from analysis.runs import find_runs, load_run, load_runs
from train import run


def test_a_finished_run_reads_back_whole(tmp_path, config):
    run(config("train.steps=50", "seed=5"), tmp_path / "a")
    loaded = load_run(tmp_path / "a")
    assert loaded.status == "completed" and loaded.problems == []
    assert loaded.metrics[0]["step"] == 0 and loaded.metrics[-1]["step"] == 50
    assert loaded.metrics_frame()["step"].is_monotonic_increasing


def test_a_cut_last_line_is_reported_and_skipped(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "test/acc": 0.1}\n{"step": 25, "train/loss": 2.1}\n{"step": 50, "tra')
    loaded = load_run(tmp_path)
    assert [row["step"] for row in loaded.metrics] == [0, 25]
    assert len(loaded.problems) == 1 and "metrics.jsonl:3" in loaded.problems[0]


def test_a_folder_without_summary_is_incomplete(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "test/acc": 0.1}\n')
    assert load_run(tmp_path).status == "incomplete"
    (tmp_path / "summary.json").write_text('{"status": "compl')  # cut by a full disk, say
    loaded = load_run(tmp_path)
    assert loaded.status == "incomplete" and "summary.json" in loaded.problems[0]


def test_a_sweep_becomes_one_table(tmp_path, config):
    for seed in (0, 1):
        run(config("train.steps=30", f"seed={seed}"), tmp_path / "sweep" / str(seed))
    (tmp_path / "sweep" / "2").mkdir()
    (tmp_path / "sweep" / "2" / "metrics.jsonl").write_text('{"step": 0, "test/acc": 0.1}\n{"st')
    assert len(find_runs(tmp_path)) == 3
    table = load_runs(tmp_path).sort_values("path")
    assert list(table["status"]) == ["completed", "completed", "incomplete"]
    assert list(table["problems"]) == [0, 0, 1]
    assert list(table["seed"])[:2] == [0, 1]
    json.dumps(table.to_dict())  # plain values only
