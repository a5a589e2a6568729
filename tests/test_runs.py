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


def test_a_runs_config_reads_as_omegaconf_reads_it_and_a_damaged_one_is_a_problem(tmp_path, config):
    from omegaconf import OmegaConf

    cfg = config("experiment=scale_invariance", "bn.eps=1e-38", "init.scale=1e-4", "+note=${optim.lr}")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")  # as Hydra writes it: interpolations as text
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "test/acc": 0.1}\n')
    loaded = load_run(tmp_path)
    assert loaded.config == OmegaConf.to_container(OmegaConf.load(tmp_path / ".hydra" / "config.yaml"), resolve=False)
    assert loaded.config["init"]["scale"] == 1e-4 and loaded.config["bn"]["eps"] == 1e-38 and loaded.config["note"] == "${optim.lr}"

    (tmp_path / ".hydra" / "config.yaml").write_text("bn: {placement: before\n")  # cut mid-write
    damaged = load_run(tmp_path)
    assert damaged.config == {} and "config.yaml: not valid YAML" in damaged.problems[0]


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


def test_runs_script_prints_a_sweep_as_a_table_sorted_by_its_settings(tmp_path, capsys):
    """A tiny real sweep (its jobs run in this process, with the records and .hydra/ files of
    `train.py -m bn=none,before optim.lr_mult=5,0.5 ...`), one job killed before its end: scripts/runs.py gives
    one row per job, sorted by the settings that vary (step sizes by value, not as text), with status,
    accuracy, steps and time, and a line that sums them up."""
    from tests.conftest import load_script, write_job

    sweep = tmp_path / "sweep"
    for bn in ("none", "before"):
        for mult in ("5", "0.5"):
            job = [f"bn={bn}", f"optim.lr_mult={mult}", "train.steps=30", "train.eval_every=10"]
            write_job(sweep / ",".join(job), [*job, "logger=none", "threads=1"])
    (sweep / "bn=none,optim.lr_mult=5,train.steps=30,train.eval_every=10" / "summary.json").unlink()  # killed

    script = load_script("runs")
    assert script.main([str(sweep)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["bn.placement", "optim.lr_mult", "status", "final", "acc", "best", "acc", "steps", "time"]
    rows = [line.split() for line in lines[1:5]]
    assert [row[:3] for row in rows] == [["before", "0.5", "completed"], ["before", "5", "completed"],
                                         ["none", "0.5", "completed"], ["none", "5", "incomplete"]]
    summaries = {(s["overrides"][0], s["overrides"][1]): s for s in map(json.loads, (p.read_text() for p in sweep.glob("*/summary.json")))}
    assert rows[0][3] == f"{summaries[('bn=before', 'optim.lr_mult=0.5')]['final_test_acc']:.4f}"
    assert rows[0][5] == "30" and rows[0][7] == "s"  # steps, then the time: "1.2 s"
    assert rows[3][3:6] == ["-", "-", "30"]  # unfinished: no accuracy; the last step it logged
    assert lines[5].startswith("4 runs: 3 completed, 1 incomplete; ") and lines[5].endswith(" of job time")

    assert script.main([str(sweep), "--csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert len(csv) == 5 and "final_test_acc" in csv[0] and "cfg/optim.lr_mult" in csv[0]
    assert script.main([str(tmp_path / "nothing")]) == 2
