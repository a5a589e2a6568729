"""Real tiny runs, made once per test session: every notebook executes headless against them, and
scripts/report.py turns them into a report end to end."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import jupytext
import matplotlib
import pytest
from conftest import ROOT, write_job
from nbclient import NotebookClient

from analysis.report import main as report_main

NOTEBOOKS = sorted((ROOT / "analysis" / "notebooks").glob("*.py"))
TINY = ["dataset=digits", "train.steps=150", "train.eval_every=50", "train.log_every=25", "threads=1", "logger=none"]


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory) -> Path:
    """A results folder laid out as scripts/reproduce.py does: the Fig. 1 sweep (BN or not x 2 seeds) on digits."""
    results = tmp_path_factory.mktemp("results")
    for bn in ("none", "before"):
        for seed in (0, 1):
            job = [f"bn={bn}", "optim.lr_mult=1", f"seed={seed}"]
            write_job(results / "fig1_mnist" / ",".join(job), [*TINY, *job], "fig1_mnist")
    return results


def test_notebooks_are_thin_percent_scripts_with_one_results_variable():
    assert {p.stem for p in NOTEBOOKS} >= {"convergence", "activations", "verdicts"}
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "# %%" in text and 'RESULTS = os.environ.get("BN_RESULTS", "results/mnist")' in text


# The default run executes one notebook in a kernel; the others run as scripts on the committed results below
# (the same code, without the kernel's start).
IN_A_KERNEL = [pytest.param(p, marks=[] if p.stem == "verdicts" else [pytest.mark.slow]) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", IN_A_KERNEL, ids=lambda p: p.stem)
def test_notebook_executes(path, tiny_results, tmp_path, monkeypatch):
    monkeypatch.setenv("BN_RESULTS", str(tiny_results))
    monkeypatch.setenv("BN_NOTEBOOK_FIGURES", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = jupytext.read(path)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs) + "".join(str(o.get("data", {})) for o in outputs)
    if path.stem != "verdicts":
        assert "4 runs (no BN: 2, BN: 2" in text  # C1's (or C2's) arms found the runs, as the report does
        if path.stem == "activations":  # C4 has no runs here: its section says so
            assert "C4: NO RUNS of its arms" in text
        assert list(tmp_path.glob("*.png"))  # at least one figure drawn from the real runs
    else:
        assert "C1" in text and "not run" in text


def test_report_from_real_runs(tiny_results):
    assert report_main([str(tiny_results)]) == 0
    report = (tiny_results / "REPORT.md").read_text()
    c1 = next(line for line in report.splitlines() if line.startswith("| C1 "))
    assert any(f"**{v}**" in c1 for v in ("holds", "does not hold", "inconclusive")) and "| digits | 150 |" in c1
    assert "![C1: c1_convergence](figures/c1_convergence.png)" in report
    assert (tiny_results / "figures" / "c1_convergence.png").stat().st_size > 5000
    assert "commands and the time the sweeps took are unknown" in report


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "verdicts"], ids=lambda p: p.stem)
def test_each_notebook_draws_every_figure_it_promises_on_the_committed_results(path, tmp_path, monkeypatch, capsys):
    """Run as a script (in this process: the interpreter is already started), as `python <notebook>` runs it."""
    results = ROOT / "results" / "mnist"
    if not (results / "fig1_mnist").is_dir():
        pytest.skip("no committed results/mnist in this checkout")
    monkeypatch.setenv("BN_RESULTS", str(results))
    monkeypatch.setenv("BN_NOTEBOOK_FIGURES", str(tmp_path))
    monkeypatch.chdir(ROOT)
    matplotlib.use("Agg")
    runpy.run_path(str(path), run_name="__main__")
    printed = capsys.readouterr().out
    promised = re.search(r"drew (\d+) of the (\d+) figures", printed)
    assert promised and promised.group(1) == promised.group(2), printed[-2000:]
    assert "NO RUNS" not in printed
