"""Arms: the runs each claim reads, found by their settings; shared jobs planned once with every probe."""

from __future__ import annotations

import functools

import pytest
from runfactory import write_run

from analysis.arms import Arm, arm_matches, collapse, split_values
from analysis.claims import CLAIMS, CLAIMS_BY_ID
from analysis.tables import load_all
from tests.conftest import CONFIGS, compose_config, covering
from tests.test_reproduce import reproduce


def test_values_split_on_commas_outside_brackets():
    assert split_values("none,before") == ["none", "before"]
    assert split_values("[1,2],[3]") == ["[1,2]", "[3]"]
    assert split_values("1e-4, 1.0") == ["1e-4", "1.0"]


def test_an_arm_contains_the_combinations_it_sweeps_and_numbers_match_by_value():
    arm = Arm("fig1_mnist", {"bn": "none,before", "optim.lr_mult": "1,5"})
    assert len(arm.combinations()) == 4
    assert arm.contains((("bn", "none"), ("optim.lr_mult", "1.0")))
    assert arm.contains((("bn", "before"), ("optim.lr_mult", "5"), ("model.dropout", "0.5")))  # more keys: fine
    assert not arm.contains((("bn", "after"), ("optim.lr_mult", "1")))
    assert not arm.contains((("bn", "none"),))  # a key of the arm missing


def test_runs_match_arms_by_their_recorded_settings_and_group_choices(tmp_path):
    write_run(tmp_path / "fig1_mnist" / "a", bn="none", lr_mult=1.0)
    write_run(tmp_path / "fig1_mnist" / "b", bn="before", lr_mult=5.0)
    write_run(tmp_path / "fig1_mnist" / "c", bn="before", layers="last", lr_mult=1.0)
    runs = {r.path.name: r for r in load_all(tmp_path / "fig1_mnist")}
    arm = Arm("fig1_mnist", {"bn": "none,before", "optim.lr_mult": "1"})
    assert [name for name, run in sorted(runs.items()) if arm_matches(run, arm)] == ["a"]  # c is bn=last


def test_a_claim_reads_each_run_once_across_its_arms_and_folders(tmp_path):
    for seed in (0, 1):
        for bn in ("none", "before"):
            for mult in (1.0, 5.0):
                write_run(tmp_path / "fig1_mnist" / f"{bn}{mult}{seed}", seed=seed, bn=bn, lr_mult=mult)
            write_run(tmp_path / "lr_multiplier" / f"{bn}30{seed}", seed=seed, bn=bn, lr_mult=30.0, experiment="lr_multiplier")
    cache = {}

    def runs_in(experiment):
        return cache.setdefault(experiment, load_all(tmp_path / experiment) if (tmp_path / experiment).is_dir() else [])

    c3_arms, c3 = CLAIMS_BY_ID["C3"].runs(runs_in)  # both at x1, x5 and x30
    assert sorted(r.path.name for r in c3) == sorted(
        [f"{bn}{m}{s}" for bn in ("none", "before") for m in ("1.0", "5.0", "30") for s in (0, 1)]
    )
    assert sorted(r.path.name for r in c3_arms["BN x5"]) == ["before5.00", "before5.01"]  # each arm by its name
    c2_arms, c2 = CLAIMS_BY_ID["C2"].runs(runs_in)
    assert {r.path for r in c2} < {r.path for r in c3}  # C2's runs are C3's x1 runs: shared, not copies
    assert c2_arms["BN"] == c3_arms["BN x1"]


def test_named_arms_show_as_the_sweeps_they_form():
    arms = (Arm("e", {"bn": "none", "lr": "1"}, name="a"), Arm("e", {"bn": "before", "lr": "1"}, name="b"),
            Arm("e", {"bn": "before", "lr": "5"}, name="c"), Arm("f", {"bn": "none"}, name="d"))
    assert [s.describe() for s in collapse(arms)] == ["e: bn=none,before lr=1", "e: bn=before lr=5", "f: bn=none"]
    assert [[a.name for a in s.members] for s in collapse(arms)] == [["a", "b"], ["c"], ["d"]]


@pytest.mark.parametrize("every_job", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["each-value", "every-job"])
def test_every_arm_of_one_experiment_names_the_same_keys_and_each_job_is_a_valid_run(every_job):
    """Each job's settings compose and pass train.py's checks: in the default run, jobs that between them set
    every value of each arm; in the slow run, every job."""
    keys: dict[str, set] = {}
    for claim in CLAIMS:
        for arm in claim.arms:
            assert (CONFIGS / "experiment" / f"{arm.experiment}.yaml").is_file(), arm
            keys.setdefault(arm.experiment, set(arm.settings))
            assert set(arm.settings) == keys[arm.experiment], f"{claim.id}: {arm.name}"
    from training.checks import validate

    jobs: dict[str, set] = {}
    for arm in (arm for claim in CLAIMS for arm in claim.arms):
        jobs.setdefault(arm.experiment, set()).update(arm.combinations())
    for experiment, combos in sorted(jobs.items()):
        for combo in sorted(combos) if every_job else covering(sorted(combos)):
            validate(compose_config([f"experiment={experiment}", "dataset=digits", *(f"{k}={v}" for k, v in combo)]))


@functools.cache  # the whole catalogue's plan is read by two tests
def plan(*args):
    sweeps, missing = reproduce.plan_all(reproduce.parse_args(["--data", "digits", "--out", "/nonexistent/r", *args]))
    assert not missing
    return {sweep.experiment: sweep for sweep in sweeps}


def test_the_catalogue_trains_each_shared_job_once_with_every_probe_its_claims_need(capsys):
    sweeps = plan()
    fig1 = sweeps["fig1_mnist"]
    x1 = [job for job in fig1.jobs if dict(job.settings)["optim.lr_mult"] == "1"]
    assert len(x1) == 20  # 2 arms x 10 seeds, read by C1, C2, C3, C9, C10, C14 (and C7 on BN's)
    bn0 = next(job for job in x1 if job.seed == 0 and dict(job.settings)["bn"] == "before")
    assert bn0.claims == ["C1", "C2", "C3", "C7", "C9", "C10", "C14"]
    assert set(bn0.probes) == {"activations", "test_time_stats", "saturation", "grad_norms"}
    grid = [job for job in fig1.jobs if dict(job.settings)["optim.lr_mult"] == "0.2"]
    assert len(grid) == 10 and all(job.probes == () for job in grid)  # the tuned grid: 5 seeds, no probes
    assert len({(job.settings, job.seed) for job in fig1.jobs}) == len(fig1.jobs)
    reproduce.print_plan(list(sweeps.values()))
    out = capsys.readouterr().out
    asked = sum(len(job.claims) for sweep in sweeps.values() for job in sweep.jobs)
    distinct = sum(len(sweep.jobs) for sweep in sweeps.values())
    assert asked > distinct and f"sharing saves {asked - distinct}" in out


def test_a_claim_alone_plans_only_its_own_arms():
    sweeps = plan("--claims", "C3")
    assert set(sweeps) == {"fig1_mnist", "lr_multiplier"}
    fig1 = {(dict(j.settings)["bn"], dict(j.settings)["optim.lr_mult"]) for j in sweeps["fig1_mnist"].jobs}
    assert fig1 == {("none", "1"), ("before", "1"), ("none", "5"), ("before", "5")}
    assert len(sweeps["lr_multiplier"].jobs) == 20 and sweeps["lr_multiplier"].claims == ["C3"]
    # the probes a job carries do not depend on which claims were chosen: the same as for the whole catalogue
    whole = {(j.settings, j.seed): j.probes for j in plan()["fig1_mnist"].jobs}
    assert all(whole[(j.settings, j.seed)] == j.probes for j in sweeps["fig1_mnist"].jobs)


def test_seeds_override_every_arm():
    sweeps = plan("--claims", "C1,C9", "--seeds", "0,1")
    assert {job.seed for sweep in sweeps.values() for job in sweep.jobs} == {0, 1}
