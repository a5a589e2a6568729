"""A claim is one module: adding a module adds the claim to the plan, the verdicts and the report; removing
one removes it; nothing else is edited. Each test works on a copy of the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from analysis.claims import CLAIMS, MODULE_NAME

TOY = '''"""C99: a toy claim, added by tests/test_claim_modules.py: BN ends above chance on the Fig. 1 net."""

from analysis.arms import Arm
from analysis.claim import Claim
from analysis.measures import chance, final_accuracy
from analysis.rules import HIGHER, Comparison, decide
from analysis.verdict import decided

ARMS = (Arm("fig1_mnist", {"bn": "before", "optim.lr_mult": "1"}, name="BN"),)


def verdict(arms):
    level = chance(arms["BN"])
    above = decide(Comparison("BN ends above chance", final_accuracy, "final test accuracy", HIGHER), arms["BN"], level)
    return decided(above, arms["BN"], {"chance": level})


CLAIM = Claim(text="a toy claim: BN ends above chance", source="this test", protocol="the Fig. 1 net",
              rule="final accuracy above chance (one-sample interval above it)", arms=ARMS, decide=verdict, seeds=2)
'''


def copy_of_repository(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "results", "outputs", "__pycache__",
                                                              "multirun", "wandb", "*.ipynb"))
    return copy


def python(copy: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled",
                               "MPLBACKEND": "Agg", "HOME": str(copy)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_every_claim_module_is_found_by_its_name_and_names_its_arms():
    modules = sorted(p.stem for p in (ROOT / "analysis" / "claims").glob("c*.py"))
    assert [c.id for c in CLAIMS] == [f"C{int(MODULE_NAME.fullmatch(m).group(1))}" for m in
                                       sorted(modules, key=lambda m: int(MODULE_NAME.fullmatch(m).group(1)))]
    assert [c.id for c in CLAIMS] == [f"C{n}" for n in range(1, len(CLAIMS) + 1)]
    for claim in CLAIMS:
        assert claim.arms and all(arm.name for arm in claim.arms), claim.id
        assert claim.text and claim.source and claim.rule and claim.protocol, claim.id


def planned_toy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the repository with the toy module dropped in, its plan checked: (copy, results folder)."""
    copy = copy_of_repository(tmp_path)
    (copy / "analysis" / "claims" / "c99_toy.py").write_text(TOY)
    results = tmp_path / "results"
    plan = python(copy, "scripts/reproduce.py", "--claims", "C99", "--data", "digits", "--dry-run", "--out", str(results))
    assert "fig1_mnist: 2 jobs (seeds 0-1) for C99" in plan.stdout
    return copy, results


def test_modules_added_copied_and_deleted_change_the_plan_the_report_and_the_catalogue_alone(tmp_path):
    """The toy module added, C16's copied under number 19, C15's deleted, and no other file edited: the plan,
    a report on hand-written runs (no training) and the catalogue follow. The short version of the
    end-to-end test below, which also trains the toy claim's runs."""
    from runfactory import write_run

    copy, results = copy_of_repository(tmp_path), tmp_path / "results"
    claims = copy / "analysis" / "claims"
    (claims / "c99_toy.py").write_text(TOY)
    shutil.copy(claims / "c16_landscape.py", claims / "c19_landscape.py")
    (claims / "c15_ics.py").unlink()

    plan = python(copy, "scripts/reproduce.py", "--data", "digits", "--dry-run", "--out", str(tmp_path / "r")).stdout
    assert "ics: 10 jobs (seeds 0-4) for C16, C19," in plan  # the copy's arms join the sweep they share
    assert "fig1_mnist: 50 jobs (seeds 0-9) for C1, C2, C3, C7, C9, C10, C14, C99," in plan and "C15" not in plan

    for seed in (0, 1):
        write_run(results / "fig1_mnist" / f"bn=before,optim.lr_mult=1,seed={seed}", seed=seed, bn="before",
                  acc=lambda step, s=seed: 0.9 + 0.01 * s)
    python(copy, "scripts/report.py", str(results))
    report = (results / "REPORT.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| C99 "))
    assert "**holds**" in row and "BN ends above chance: +0.805 [" in row
    assert "C15" not in report and ", C19." in report.split("Not run (no runs of their arms in this folder): ")[1]

    catalogue = python(copy, "-m", "analysis.catalogue").stdout
    assert "| C99 `toy` | a toy claim: BN ends above chance |" in catalogue
    assert "| C19 `landscape` |" in catalogue and "| C15 " not in catalogue


@pytest.mark.slow  # trains; the test above is the short version
def test_a_new_module_is_planned_decided_and_reported_with_no_other_file_edited(tmp_path):
    copy, results = planned_toy(tmp_path)
    python(copy, "scripts/reproduce.py", "--claims", "C99", "--data", "digits", "--steps", "60", "--out", str(results))
    python(copy, "scripts/report.py", str(results))
    report = (results / "REPORT.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| C99 "))
    assert "a toy claim: BN ends above chance" in row and "BN ends above chance:" in row
    assert "## C99 `toy`: a toy claim" in report
    catalogue = python(copy, "-m", "analysis.catalogue").stdout
    assert "| C99 `toy` | a toy claim: BN ends above chance |" in catalogue


@pytest.mark.parametrize("bad, message", [
    ("X = 1\n", "defines no CLAIM"),
])
def test_a_module_without_a_claim_is_refused_by_name(tmp_path, bad, message):
    copy = copy_of_repository(tmp_path)
    (copy / "analysis" / "claims" / "c50_broken.py").write_text(bad)
    done = subprocess.run([sys.executable, "-c", "import analysis.claims"], cwd=copy, capture_output=True, text=True)
    assert done.returncode != 0 and "c50_broken.py" in done.stderr and message in done.stderr
