"""wandb dashboards, checked on offline runs by reading back the records wandb wrote.

wandb 0.31 writes an offline run as one `run-<id>.wandb` file (LevelDB-style log of protobuf
records, no summary or config files until it is synced); `read_wandb_run` decodes it with
wandb's own protobuf classes.
"""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.message import DecodeError

import train
from conftest import compose_config, run_cli
from training.tracker import HISTOGRAM_BINS, run_name, start_tracker

BLOCK_SIZE = 32768  # the .wandb log is cut into blocks of this size; a record header is 7 bytes


def wandb_records(path: Path):
    """The protobuf records of a .wandb file, in order, up to the last one written in full (wandb's
    writer process may be half-way through the next)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if BLOCK_SIZE - pos % BLOCK_SIZE < 7:  # too little room left in a block for a header: padding
            pos += BLOCK_SIZE - pos % BLOCK_SIZE
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if pos > len(data):  # the writer has not finished this record yet
            return
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk  # 1 full, 2 first, 3 middle, 4 last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(pending)
            except DecodeError:  # a header written before its data: read again later
                return
            yield record


def read_wandb_run(run_dir: Path, wait_s: float = 30) -> dict:
    """The offline wandb run under `run_dir`: its run record (group, name, tags, ...), the final
    summary, the history rows and the exit code. wandb's writer process may still be flushing
    the file when run.finish() returns in this process: wait for the exit record."""
    deadline = time.monotonic() + wait_s
    while True:
        result = _read_wandb_run(run_dir)
        if result["exit_code"] is not None or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _read_wandb_run(run_dir: Path) -> dict:
    [path] = list(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    result = {"run": None, "summary": {}, "history": [], "exit_code": None, "folder": path.parent}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            result["run"] = record.run
        elif kind == "summary":
            for item in record.summary.update:
                result["summary"]["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
        elif kind == "history":
            items = record.history.item
            result["history"].append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in items})
        elif kind == "exit":
            result["exit_code"] = record.exit.exit_code
    return result


WANDB = ["logger=wandb", "logger.mode=offline", "train.eval_every=50", "train.log_every=25", "train.steps=200"]


def test_offline_run_summary_holds_the_best_accuracy_the_outcome_and_filterable_tags(tmp_path):
    overrides = ["experiment=fig1_mnist", "bn=none", "optim.lr_mult=5", "seed=1"]
    # the experiment's own settings do not matter here; the activations probe gives histograms
    cfg = compose_config([*WANDB, *overrides[1:], "probes=[activations]"])
    summary = train.run(cfg, tmp_path, experiment="fig1_mnist", overrides=[*overrides, "logger=wandb"])
    wandb_run = read_wandb_run(tmp_path)

    run = wandb_run["run"]
    assert run.run_group == "fig1_mnist" and run.job_type == "fig1_mnist"
    assert run.display_name == "bn=none,lr_mult=5,seed=1"
    assert {"bn=none", "data=digits", "model=mlp", "exp=fig1_mnist"} <= set(run.tags)
    assert any(tag.startswith("act=") for tag in run.tags) and "failed" not in run.tags

    accuracies = [json.loads(line)["test/acc"] for line in (tmp_path / "metrics.jsonl").open() if "test/acc" in line]
    got = wandb_run["summary"]
    assert got["test/acc"] == {"max": max(accuracies), "last": accuracies[-1]}
    assert got["test/acc"]["max"] == pytest.approx(summary["best_test_acc"])
    for key in ("status", "best_test_acc", "final_test_acc", "steps", "train_s", "steps_per_s", "diverged_step"):
        assert got[key] == pytest.approx(summary[key]) if isinstance(summary[key], float) else got[key] == summary[key]
    assert got["status"] == "completed" and got["steps"] == 200
    assert wandb_run["exit_code"] == 0
    histograms = [row for row in wandb_run["history"] if row.get("act/fc1/hist/_type") == "histogram"]
    assert [row["_step"] for row in histograms] == [0, 50, 100, 150, 200]  # one per evaluation
    assert all(len(row["act/fc3/hist/values"]) == HISTOGRAM_BINS for row in histograms)


def test_failed_run_is_tagged_failed_with_exit_code_1(tmp_path, monkeypatch):
    def broken_training(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(train, "train", broken_training)
    with pytest.raises(RuntimeError):
        train.run(compose_config(WANDB), tmp_path)
    wandb_run = read_wandb_run(tmp_path)
    assert "failed" in wandb_run["run"].tags
    assert wandb_run["summary"]["status"] == "failed" and "out of memory" in wandb_run["summary"]["error"]
    assert wandb_run["exit_code"] == 1


def test_interrupted_run_says_so_in_its_summary_with_exit_code_130(tmp_path, monkeypatch, caplog):
    from tests.test_interrupt import stop_after

    monkeypatch.setattr(train, "stop_requested", lambda: stop_after(60))
    summary = train.run(compose_config(WANDB), tmp_path)
    wandb_run = read_wandb_run(tmp_path)
    assert summary["status"] == "interrupted"
    assert wandb_run["summary"]["status"] == "interrupted" and wandb_run["summary"]["steps"] == 60
    assert wandb_run["exit_code"] == 130 and "failed" not in wandb_run["run"].tags

    # Resumed, the same wandb run goes on in a second offline folder: the upload command names both.
    monkeypatch.undo()
    with caplog.at_level("INFO", logger="training.tracker"):
        resumed = train.run(compose_config([*WANDB, "resume=true"]), tmp_path)
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 60
    folders = sorted(str(p) for p in tmp_path.glob("wandb/offline-run-*"))
    assert len(folders) == 2
    [hint] = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert hint == f"wandb: offline run written to 2 folders (one per start of the run); upload it with: wandb sync {' '.join(folders)}"


def test_histogram_arrays_are_logged_as_64_bin_histograms_and_bad_ones_skipped(tmp_path):
    """Also: a diverged run is tagged `diverged` and exits 0."""
    cfg = compose_config(WANDB)
    tracker = start_tracker(cfg.logger, tmp_path, {"bn": {"placement": "before"}})
    values = np.random.default_rng(0).normal(size=500)
    tracker.log(
        {
            "step": 0,
            "act/fc1/hist": values,
            "act/fc1/p50": 0.25,
            "act/fc2/hist": np.array([np.nan, np.inf]),
            "act/fc3/hist": np.array([], dtype=np.float32),
            "act/fc4/hist": np.array(["not", "numbers"]),
        },
        step=0,
    )
    tracker.log({"step": 10, "act/fc1/hist": values.astype(np.float32) * 2, "test/acc": 0.5}, step=10)
    tracker.finish({"status": "diverged", "diverged_step": 10, "final_test_acc": None})
    assert not tracker._failed

    wandb_run = read_wandb_run(tmp_path)
    assert "diverged" in wandb_run["run"].tags and wandb_run["exit_code"] == 0  # diverged is a result, not a failure
    assert wandb_run["summary"]["diverged_step"] == 10 and wandb_run["summary"]["final_test_acc"] is None
    history = wandb_run["history"]
    first, second = history[0], history[1]
    assert first["act/fc1/hist/_type"] == "histogram"
    assert len(first["act/fc1/hist/values"]) == HISTOGRAM_BINS and sum(first["act/fc1/hist/values"]) == 500
    assert first["act/fc1/hist/bins"][0] == pytest.approx(values.min())
    assert first["act/fc1/p50"] == 0.25
    assert not any(key.startswith(("act/fc2", "act/fc3", "act/fc4")) for key in first)
    assert second["act/fc1/hist/bins"][-1] == pytest.approx(2 * values.max(), rel=1e-5)
    assert second["test/acc"] == 0.5


def test_run_name_keeps_the_settings_and_drops_experiment_and_plumbing():
    overrides = ["experiment=fig1_mnist", "bn=none", "optim.lr_mult=5", "seed=1", "threads=1", "logger.mode=offline"]
    assert run_name(overrides) == "bn=none,lr_mult=5,seed=1"
    assert run_name(["experiment=fig1_mnist"]) == "defaults"


@pytest.mark.slow  # the default run reads back one offline run's record, made in-process (above)
def test_sweep_is_one_wandb_group_named_after_its_folder(tmp_path):
    """A 2-job sweep: one wandb group named after the sweep folder, runs named by their own
    settings, and the terminal gives the wandb sync command of each run, on a line of its job."""
    sweep = tmp_path / "sweep-a"
    result = run_cli(
        ["-m", "seed=0,1", "train.steps=100", "threads=1", "logger=wandb", "logger.mode=offline",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = {job: read_wandb_run(sweep / f"seed={job},train.steps=100") for job in ("0", "1")}
    assert {r["run"].run_group for r in runs.values()} == {"default/sweep-a"}
    assert [runs[job]["run"].display_name for job in ("0", "1")] == ["seed=0,steps=100", "seed=1,steps=100"]
    assert all(r["run"].job_type == "train" for r in runs.values())
    lines = result.stdout.splitlines()
    for job in ("0", "1"):
        folder = runs[job]["folder"]
        of_job = [line for line in lines if line.startswith(f"[job {job}] ")]
        assert any(line.endswith(f"wandb sync {folder}") for line in of_job), result.stdout
