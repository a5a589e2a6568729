"""Every claim experiment runs its whole sweep, in tiny form, and records what its claim needs."""
from __future__ import annotations

import json

import pytest

from analysis.claims import CLAIMS
from tests.conftest import CONFIGS, compose_config, covering, run_cli
from train import run

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
TINY = ["dataset=digits", "logger=none", "threads=1", "train.steps=20", "train.eval_every=10", "train.log_every=10",
        "train.epochs=null", "train.evals_per_epoch=null",  # steps and eval_every, not epochs, also for batch_size
        "probes.insert_pretrained.finetune_steps=10", "probes.test_time_stats.placements=1"]


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The jobs of an experiment's own sweep (hydra.sweeper.params), one seed, as override lists."""
    import itertools

    params = compose_config([f"experiment={experiment}"], with_hydra=True).hydra.sweeper.params
    axes = [[f"{key}={value}" for value in str(values).split(",")] for key, values in params.items() if key != "seed"]
    return [list(job) for job in itertools.product(*axes)]


def applicable(experiment: str, overrides: list[str]) -> list[str]:
    """TINY, minus settings of probes the experiment does not use."""
    probes = set(compose_config([f"experiment={experiment}"], with_hydra=True).probes)  # composed once for both
    return [o for o in overrides if not o.startswith("probes.") or o.split(".")[1] in probes]


def test_every_claim_has_an_experiment_with_seeds_swept():
    assert {e for claim in CLAIMS for e in claim.experiments} <= set(EXPERIMENTS)
    headline = {e for claim in CLAIMS[:3] for e in claim.experiments}
    for experiment in EXPERIMENTS:  # its own sweep: the claims' default seeds, 10 for C1-C3's, 5 for the rest
        params = compose_config([f"experiment={experiment}"], with_hydra=True).hydra.sweeper.params
        assert params["seed"] == ("range(10)" if experiment in headline else "range(5)"), experiment


@pytest.mark.parametrize("every_job", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["each-value", "every-job"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_its_sweep_in_tiny_form(tmp_path, experiment, every_job):
    """The default run trains jobs that between them set every value of the sweep; the slow run every job."""
    jobs = sweep_jobs(experiment) if every_job else covering(sweep_jobs(experiment))
    for i, job in enumerate(jobs):
        cfg = compose_config([f"experiment={experiment}", *applicable(experiment, TINY), *job])
        summary = run(cfg, tmp_path / str(i), experiment, job)
        assert summary["status"] in ("completed", "diverged"), (job, summary.get("error"))
        first = json.loads((tmp_path / str(i) / "metrics.jsonl").read_text().splitlines()[0])
        probes = set(cfg.probes)
        if "activations" in probes:
            assert any(key.startswith("act/") and key.endswith("/p50") for key in first), job
        if "grad_norms" in probes:
            assert "grad/first_over_last" in first, job
        for name in probes & {"test_time_stats", "scale_invariance", "insert_pretrained", "bn_math"}:
            assert name in summary or summary["status"] == "diverged", (job, name)


def test_a_whole_experiment_sweep_from_the_command_line(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "experiment=fig1_mnist", *TINY[:-2], "seed=0,1", "optim.lr_mult=1", f"hydra.sweep.dir={sweep}"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert len(summaries) == 4 and all(s["experiment"] == "fig1_mnist" for s in summaries)
    jobs = [["experiment=fig1_mnist", *TINY[:-2], f"bn={bn}", f"seed={seed}", "optim.lr_mult=1"]
            for bn in ("none", "before") for seed in (0, 1)]
    assert sorted(tuple(sorted(s["overrides"])) for s in summaries) == sorted(tuple(sorted(job)) for job in jobs)
    # each job's folder is named by its settings (not logger, threads: they do not change what is trained)
    assert sorted(p.parent.name for p in sweep.glob("*/summary.json")) == sorted(
        ",".join(sorted(o for o in job if not o.startswith(("logger=", "threads=")))) for job in jobs)
    assert (sweep / "bn=none,dataset=digits,experiment=fig1_mnist,optim.lr_mult=1,seed=1,train.epochs=null,"
            "train.eval_every=10,train.evals_per_epoch=null,train.log_every=10,train.steps=20").is_dir()
