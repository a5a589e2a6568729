"""hydra/launcher=slurm on a real one-node SLURM cluster (scripts/slurm_local.sh), and its errors.

The cluster tests need Debian's slurm-wlm and munge and root (CI installs them, see .ci/run);
without them they are skipped with the reason. The cluster is the test's own: its config,
state and ports are separate from any cluster the machine already runs. It is stopped with
everything it started, also when a test fails, and a process of it that outlives it fails the suite.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
TRAIN = ["train.steps=300", "logger=none", "threads=1"]
# Two jobs side by side on a 2-CPU node; the launcher's default (2 CPUs) runs them one after another.
ONE_CPU = "hydra.launcher.cpus_per_task=1"


def free_port_pair() -> int:
    """A port p with p and p + 1 free (slurmctld and slurmd)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000 and all(_port_free(p) for p in (port, port + 1)):
            return port
    raise RuntimeError("no two free ports next to each other")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def missing_slurm() -> str | None:
    """Why a local cluster cannot start here, or None."""
    if not sys.platform.startswith("linux"):
        return "a local SLURM cluster needs Linux"
    missing = [tool for tool in ("sbatch", "slurmctld", "slurmd", "munged") if shutil.which(tool) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} not found; apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory):
    """Environment variables for commands that use this module's own one-node cluster. Stopped
    (jobs, daemons and every process they started) however the tests end, a start that failed
    halfway included; a process of the cluster still alive after that fails the suite."""
    reason = missing_slurm()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm") / "cluster"
    env = {**os.environ, "SLURM_LOCAL_DIR": str(folder), "SLURM_LOCAL_PORT": str(free_port_pair())}
    env.pop("SLURM_CONF", None)
    try:
        started = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            pytest.skip(f"the local SLURM cluster did not start: {(started.stderr or started.stdout).strip()[-300:]}")
        env["SLURM_CONF"] = started.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
        yield env
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        assert_nothing_left_of(folder)


@pytest.fixture
def cluster(module_cluster):
    """The module's cluster, its queue emptied after each test: jobs a failed test leaves do not
    run into the next one."""
    yield module_cluster
    jobs = queued_jobs(module_cluster)
    if jobs:
        subprocess.run(["scancel", "--full", "--quiet", *jobs], env=module_cluster, capture_output=True, timeout=30)
        wait_for(lambda: not queued_jobs(module_cluster), "the cancelled jobs to end", timeout_s=30)


def queued_jobs(env: dict) -> list[str]:
    queue = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, timeout=30)
    return queue.stdout.split() if queue.returncode == 0 else []  # a controller that is gone has no jobs either


def assert_nothing_left_of(folder: Path) -> None:
    """No live process carries the cluster's folder in its environment, command line or working
    folder (its daemons, step daemons, batch scripts, sruns and jobs). Any found are killed, so
    that a failed check leaves the machine clean too."""
    left = [pid for pid in live_pids() if pid != os.getpid() and refers_to(pid, str(folder))]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the test cluster outlived it: {[process_line(pid) for pid in left]}"


def live_pids() -> list[int]:
    """Running processes (zombies, dead and waiting to be reaped, left out)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    pids.append(int(entry.name))
    return pids


def refers_to(pid: int, folder: str) -> bool:
    proc = Path("/proc") / str(pid)
    with contextlib.suppress(OSError):
        if folder.encode() in (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes():
            return True
        return os.readlink(proc / "cwd").startswith(folder)
    return False


def process_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        return f"{pid} {command[:120]}"
    return str(pid)


def slurm(env: dict, *command: str) -> str:
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def read_summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def read_metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # the default run checks the launcher's config and the cluster's one-line refusals
def test_sweep_runs_as_real_slurm_jobs_with_complete_records(tmp_path, cluster):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=slurm", "seed=0,1", *TRAIN, ONE_CPU, f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, tmp_path, env=cluster)
    assert result.returncode == 0, result.stderr[-3000:]
    for seed in (0, 1):
        job = f"seed={seed},train.steps=300"  # the job's folder, named by its settings
        summary = read_summary(sweep / job)
        assert summary["status"] == "completed" and summary["steps"] == 300 and summary["seed"] == seed
        assert read_metrics(sweep / job)[-1]["step"] == 300
    # submitit's files: one SLURM job array, its tasks' logs and results
    job_logs = sorted(p.name for p in (sweep / ".submitit").glob("*/*_log.out"))
    assert len(job_logs) == 2 and all(name.split("_")[0].isdigit() for name in job_logs), job_logs
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2
    # without accounting, sacct fails at every status check: submitit's warning comes once
    assert "Call #2 - Bypassing sacct error" not in result.stdout + result.stderr


@pytest.mark.slow  # the default run resumes a SIGKILLed run (tests/test_resume.py) and a requeued one in-process
def test_requeued_job_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_run(tmp_path, cluster):
    """A running job is suspended right after its first checkpoint (so the requeue cannot come
    too late), requeued as a preemption would, and released: SLURM restarts it, and it resumes."""
    steps = 3000
    train = [f"train.steps={steps}", "train.checkpoint_every=100", "train.eval_every=500", "logger=none", "threads=1"]
    job_folder = f"train.checkpoint_every=100,train.eval_every=500,train.steps={steps}"  # the job's folder: its settings
    sweep = tmp_path / "sweep"
    launcher = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=slurm", *train, ONE_CPU,
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    reference = subprocess.Popen(  # the same run, uninterrupted, on this machine
        [sys.executable, str(ROOT / "train.py"), *train, f"hydra.run.dir={tmp_path / 'reference'}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(lambda: (sweep / job_folder / "checkpoint.pt").is_file(), "the job's first checkpoint")
        job_id = slurm(cluster, "squeue", "-h", "-o", "%i")
        slurm(cluster, "scontrol", "suspend", job_id)
        slurm(cluster, "scontrol", "requeue", job_id)  # a requeued suspended job is held
        wait_for(lambda: slurm(cluster, "squeue", "-h", "-j", job_id, "-o", "%T") == "PENDING", "the requeued job")
        slurm(cluster, "scontrol", "release", job_id)
        slurm(cluster, "scontrol", "update", f"jobid={job_id}", "StartTime=now")  # no requeue delay
        output, _ = launcher.communicate(timeout=180)
        _, reference_errors = reference.communicate(timeout=180)
    finally:
        for process in (launcher, reference):  # each with whatever it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert launcher.returncode == 0, output[-3000:]
    assert reference.returncode == 0, reference_errors[-2000:]

    job, uninterrupted = sweep / job_folder, tmp_path / "reference"
    summary = read_summary(job)
    assert summary["status"] == "completed" and summary["steps"] == steps
    assert 0 < summary["resumed_from_step"] < steps
    lines, expected = read_metrics(job), read_metrics(uninterrupted)
    assert [line["step"] for line in lines] == [line["step"] for line in expected]  # no step twice, none missing
    assert lines == expected
    for key in ("final_test_acc", "final_test_loss", "best_test_acc"):
        assert summary[key] == read_summary(uninterrupted)[key]


def wait_for(condition, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_cluster_refusal_is_one_line(tmp_path, cluster):
    """The local cluster has no GPU: sbatch refuses a GPU request, and the user gets one line."""
    result = run_cli(
        ["-m", "hydra/launcher=slurm", "seed=0", *TRAIN, "hydra.launcher.gpus_per_node=1",
         f"hydra.sweep.dir={tmp_path / 's'}"],
        tmp_path, env=cluster,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SLURM refused the jobs" in errors[0] and "gres" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the script finds processes in /proc")
def test_stop_ends_what_slurm_leaves_behind_and_nothing_else(tmp_path):
    """What a requeued job leaves after slurmd stops: a step daemon, and a job's process that was
    suspended. Both carry the cluster's SLURM_CONF; a process that only uses the cluster (no job
    of it) is left alone. No SLURM needed: stop works from the cluster's folder."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    env = {**os.environ, "SLURM_LOCAL_DIR": str(folder)}
    of_cluster = {**env, "SLURM_CONF": str(folder / "slurm.conf")}
    shutil.copy(shutil.which("sleep"), tmp_path / "slurmstepd")  # a process named as SLURM's step daemon
    started = [
        subprocess.Popen([str(tmp_path / "slurmstepd"), "600"], env=of_cluster, start_new_session=True),
        subprocess.Popen(["sleep", "600"], env={**of_cluster, "SLURM_JOB_ID": "7"}, start_new_session=True),
        subprocess.Popen(["sleep", "600"], env=of_cluster, start_new_session=True),  # uses the cluster, not of it
    ]
    step_daemon, suspended_job, bystander = started
    try:
        os.kill(suspended_job.pid, signal.SIGSTOP)
        subprocess.run([str(SCRIPT), "stop"], env=env, check=True, capture_output=True, timeout=60)
        assert step_daemon.wait(timeout=10) is not None and suspended_job.wait(timeout=10) is not None
        assert bystander.poll() is None
        assert not folder.exists()
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_slurm_launcher_without_sbatch_is_one_line_and_leaves_no_folder(tmp_path):
    python_only = os.path.dirname(sys.executable)  # a PATH with python and no sbatch
    result = run_cli(["-m", "hydra/launcher=slurm", "seed=0,1", *TRAIN], tmp_path, env={"PATH": python_only})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: hydra/launcher=slurm needs SLURM's sbatch on PATH; run the sweep on the cluster's login node, "
        "try it here with scripts/slurm_local.sh start, or use hydra/launcher=local"
    ]
    assert list(tmp_path.iterdir()) == []


def test_only_sbatch_refusals_become_one_line():
    from hydra_plugins.batchnorm_launchers.slurm import sbatch_refusal

    stderr = "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    assert sbatch_refusal(stderr) == "sbatch: error: Batch job submission failed: Invalid partition name specified"
    # a job that failed while running keeps submitit's message with its log
    assert sbatch_refusal("Job (task=0) failed during processing with trace:\n----\nsbatch: error: x") is None
