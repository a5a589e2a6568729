"""scripts/report.py: verdict table, sections, figures, commands and times; the same bytes twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from runfactory import dropout_runs, write_catalogue, write_run

from analysis.claims import CLAIMS
from analysis.report import main, write_report

ONLY = ("fig1_mnist", "dropout")


def small_catalogue(root):
    """Three experiments (C1, C2, C7 hold; C9 made not to), a log for two of them, the rest not run."""
    write_catalogue(root, skip=tuple(e for c in CLAIMS for e in c.experiments if e not in ONLY))
    dropout_runs(root / "dropout", bn_gain=0.06)
    log = [
        {
            "experiment": "fig1_mnist",
            "claims": ["C1", "C2"],
            "command": "python train.py -m experiment=fig1_mnist (first try)",
            "jobs": 12,
            "already_complete": 0,
            "wall_s": 10.0,
            "returncode": 1,
            "launcher": "local",
            "finished_at": "2026-01-01T00:00:00",
        },
        {
            "experiment": "fig1_mnist",
            "claims": ["C1", "C2"],
            "command": "python train.py -m experiment=fig1_mnist",
            "jobs": 12,
            "already_complete": 4,
            "wall_s": 125.5,
            "returncode": 0,
            "launcher": "local",
            "finished_at": "2026-01-01T00:05:00",
        },
        {
            "experiment": "dropout",
            "claims": ["C9"],
            # run into a folder since moved: the report shows the command in this folder
            "command": "python train.py -m experiment=dropout hydra.sweep.dir=/old/place/dropout "
            "hydra.sweeper.jobs_file=/old/place/dropout/jobs.txt",
            "jobs": 12,
            "already_complete": 0,
            "wall_s": 30.0,
            "returncode": 0,
            "launcher": "local",
            "finished_at": "2026-01-01T00:06:00",
        },
    ]
    (root / "reproduce_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in log) + "{cut\n")
    return root


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "figures").glob("*.png"))} | {
        "REPORT.md": (root / "REPORT.md").read_bytes()
    }


def test_a_report_says_what_it_found_and_is_the_same_however_and_however_often_it_is_asked_for(tmp_path, capsys,
                                                                                            monkeypatch):
    root = small_catalogue(tmp_path / "mnist")
    (tmp_path / "fashion_mnist").mkdir()
    (tmp_path / "fashion_mnist" / "reproduce_log.jsonl").write_text("")
    (tmp_path / "scratch").mkdir()  # no reproduce log: not a catalogue
    assert main([str(root)]) == 0
    first = files(root)
    monkeypatch.chdir(tmp_path)  # again: another working directory, a relative folder, beside another one
    assert main(["mnist", "fashion_mnist"]) == 0
    assert files(root) == first
    progress = capsys.readouterr().err
    assert "C1: holds" in progress and "C12: not run" in progress

    report = first["REPORT.md"].decode()
    table = report.split("## Verdicts")[1].split("## How the numbers")[0]
    rows = [line for line in table.splitlines() if line.startswith("| C")]
    verdicts = {row.split()[1]: row.split("**")[1] for row in rows}
    assert verdicts == {  # the claims that ran, in catalogue order
        "C1": "holds",
        "C2": "holds",
        "C3": "inconclusive",  # it has fig1_mnist's x1 and x5 runs, not lr_multiplier's x30
        "C7": "holds",  # C7 and C10 read runs of fig1_mnist
        "C9": "does not hold",
        "C10": "holds",
        "C14": "inconclusive",  # it has fig1_mnist's BN and no-BN runs, not noisy_bn's
    }
    assert list(verdicts) == ["C1", "C2", "C3", "C7", "C9", "C10", "C14"]
    assert ("Not run (no runs of their arms in this folder): C4, C5, C6, C8, C11, C12, C13, C15, C16, C17, C18."
            in report)
    assert "## C12 " not in report  # no section for a claim that did not run
    assert "C3: Inconclusive: no finished runs for BN x30, no-BN x30" in report
    assert "14x fewer steps" in report  # the source's number beside ours
    assert "Did not reproduce:\n\n- C9: Does not hold: dropout helps BN less (gain with BN - gain without, same seed): does not hold" in report
    assert "![C1: c1_convergence](figures/c1_convergence.png)" in report
    assert {
        "figures/c1_convergence.png",
        "figures/c2_percentiles.png",
        "figures/c7_batch_size.png",
        "figures/c9_dropout.png",
    } <= set(first)
    # the last command per experiment with the time of all its invocations, unknown where there is
    # no log line, the total, the damaged line
    assert (
        "| `fig1_mnist` | 12 | 12.0 s | `python train.py -m experiment=fig1_mnist` | 12 (4) | 2 min 16 s over 2 "
        "invocations (interrupted, then resumed) | 0 | local" in report
    )
    assert "first try" not in report
    moved = f"python train.py -m experiment=dropout hydra.sweep.dir={root}/dropout hydra.sweeper.jobs_file={root}/dropout/jobs.txt"
    assert f"| `dropout` | 6 | 6.0 s | `{moved}` |" in report  # C9 reads its dropout-0.5 runs
    assert "Total wall time of the logged sweeps: 2 min 46 s." in report
    assert "reproduce_log.jsonl:4 could not be read" in report
    assert "- `abc123`: " in report
    assert "The same catalogue on another data set: [`../fashion_mnist/REPORT.md`](../fashion_mnist/REPORT.md)." in report
    assert "scratch" not in report


def test_without_a_log_the_commands_and_times_are_unknown(tmp_path):
    write_catalogue(tmp_path, skip=tuple(e for c in CLAIMS for e in c.experiments if e != "fig1_mnist"))
    report = write_report(tmp_path).read_text()
    assert "No `reproduce_log.jsonl` in this folder: the commands and the time the sweeps took are unknown." in report
    assert "**Verdict: holds.**" in report


def test_help_says_what_the_script_does(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python scripts/report.py <results folder>") and "multirun" in out


def test_a_multirun_folder_is_read_by_each_runs_experiment(tmp_path):
    """A `train.py -m experiment=fig1_mnist` sweep's folder: runs named by their settings, no experiment subfolder."""
    fig1 = tmp_path / "multirun" / "2026-01-01" / "10-00-00"
    write_catalogue(tmp_path / "laid_out", skip=tuple(e for c in CLAIMS for e in c.experiments if e != "fig1_mnist"))
    for run in (tmp_path / "laid_out" / "fig1_mnist").iterdir():
        run.rename(fig1 / run.name) if fig1.is_dir() else (fig1.mkdir(parents=True), run.rename(fig1 / run.name))
    assert main([str(fig1)]) == 0
    report = (fig1 / "REPORT.md").read_text()
    assert "| C1 BN trains faster and reaches higher test accuracy | **holds**" in report


def test_a_quick_look_names_a_target_at_chance(tmp_path):
    """No BN never leaves chance in a short run: steps to its final accuracy measure nothing, and the report
    says so instead of a ratio and a number of seeds."""
    for seed in (0, 1):
        write_run(tmp_path / "fig1_mnist" / f"none{seed}", seed=seed, bn="none", acc=lambda step: 0.1)
        write_run(tmp_path / "fig1_mnist" / f"bn{seed}", seed=seed, bn="before",
                  acc=lambda step, s=seed: min(0.9, 0.1 + step / 500) + 0.01 * s)
    report = write_report(tmp_path).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| C1 "))
    assert "the target, 0.100, is at chance" in row and "seeds per arm would settle" not in row


def test_bad_input_gets_one_line_and_exit_2(tmp_path, capsys):
    for args in ([], ["--bogus"], [str(tmp_path), "extra"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.splitlines()) == 1
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report.py"), str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr == f"error: results folder {tmp_path / 'missing'} does not exist\n"
    assert list(tmp_path.iterdir()) == []


COMMITTED = [ROOT / "results" / name for name in ("mnist", "fashion_mnist")]  # the paper's data first


@pytest.mark.skipif(not any((f / "REPORT.md").is_file() for f in COMMITTED), reason="no committed results")
def test_the_readme_shows_what_the_committed_runs_give():
    """The README's results block is the report script's output on the committed runs, not typed in."""
    from analysis.report import evaluate, readme_block

    folders = [f for f in COMMITTED if (f / "REPORT.md").is_file()]
    block = readme_block([(f, evaluate(f)) for f in folders], ROOT)
    assert block in (ROOT / "README.md").read_text()
    assert "| C1 " in block and "| C13 " in block
