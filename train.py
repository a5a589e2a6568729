"""Train one network and record the run.

    python train.py                                   # BN MLP on scikit-learn's digits, seconds on a CPU
    python train.py experiment=fig1_mnist dataset=fashion_mnist
    python train.py -m bn=none,before optim.lr_mult=1,5 seed=0,1

Every run writes metrics.jsonl, summary.json and Hydra's .hydra/config.yaml into its own folder
(printed at the end). docs/configuration.md lists the settings, docs/runs.md the record's keys.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

if __name__ == "__main__":
    # A command line that will be refused is refused now, with one line and within about a second,
    # and a run says what it loads, before the imports below (torch, wandb) that take seconds.
    from training.command_line import check_command_line
    from training.interrupt import exit_quietly_on_interrupt

    exit_quietly_on_interrupt()  # Ctrl-C before the run starts: one line, no traceback
    check_command_line(sys.argv[1:], CONFIG_DIR)

# OpenMP threads that wait for each other spin by default; on cores that another process keeps
# busy, that spinning made a 2-thread step 6 to 22 times slower (docs/speed.md). Passive waiting
# sleeps instead. OpenMP reads this once, when torch loads it, so it must come before `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hydra  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from models import build_model
from models.batchnorm import population_statistics
from models.trainable import keep_frozen_entries, set_trainable, trainable_parameter_count
from training.checks import validate
from training.data import BatchOrder, DataNotFoundError, epoch_batches, load_dataset
from training.checkpoint import load_checkpoint, save_checkpoint
from training.interrupt import EXIT_STATUS, resume_command, stop_requested
from training.loop import LoopSettings, LoopState, train
from training.optim import build_optimizer
from training.progress import Progress
from training.record import METRICS_FILE, SUMMARY_FILE, RunRecord, code_version, run_environment
from training.probes import ProbeContext, ProbeRunner
from training.probes.layers import bn_buffers
from training.tracker import start_tracker

log = logging.getLogger("train")


def run(cfg: DictConfig, run_dir: str | Path, experiment: str | None = None, overrides: list[str] = ()) -> dict:
    """Train as `cfg` says, record the run in `run_dir`, and return its summary.

    With `resume=true` (or when SLURM requeued the job) a run continues from the checkpoint in
    `run_dir` and ends with the numbers the uninterrupted run would have had.

    Ctrl-C during training stops it after the step it is in, with a checkpoint, and the summary
    says "interrupted"; Ctrl-C before training starts records that too, and raises
    KeyboardInterrupt."""
    validate(cfg)
    started = time.perf_counter()
    run_dir = Path(run_dir)
    resuming = bool(cfg.resume) or requeued_by_slurm() or (bool(cfg.skip_complete) and holds_record(run_dir))
    record = RunRecord(run_dir)
    summary = {"seed": cfg.seed, "git": code_version(), "experiment": experiment, "overrides": list(overrides)}
    tracker = start_tracker(
        cfg.logger,
        run_dir,
        OmegaConf.to_container(cfg, resolve=True),
        experiment,
        overrides,
        sweep_dir=sweep_dir(),
        resume=resuming,
    )
    try:
        device = resolve_device(cfg.device)
        set_cpu_threads(cfg.threads, jobs_at_once(HydraConfig.get().launcher if HydraConfig.initialized() else None), cfg.model)
        summary["environment"] = run_environment(device)
        torch.manual_seed(cfg.seed)
        data = load_dataset(cfg.dataset).to(device)
        model = build_model(cfg.model, cfg.bn, cfg.init, data.input_shape, data.classes).to(device)
        set_trainable(model, cfg.train.trainable, cfg.seed)
        summary["trainable_params"] = trainable_parameter_count(model)
        optimizer = build_optimizer(model.parameters(), cfg.optim, cfg.train.batch_size)
        keep_frozen_entries(optimizer, model)
        order = BatchOrder(len(data.train_x), cfg.train.batch_size, cfg.seed, device)
        settings = LoopSettings.from_config(cfg.train, order.steps_per_epoch)
        resume_from = restore(run_dir, model, optimizer, device, record) if resuming else None
        summary["resumed_from_step"] = resume_from.outcome.steps if resume_from else None
        probe_context = ProbeContext(model, data, order, cfg, optimizer=optimizer)
        probes = ProbeRunner(cfg.get("probes"), probe_context)

        def emit(metrics: dict) -> None:
            record.log(metrics)
            tracker.log(metrics, step=metrics["step"])

        def before_final_eval() -> None:
            if cfg.bn.eval_stats == "population":  # the paper's Alg. 2 replaces the running averages
                probe_context.ema_bn_state = bn_buffers(model)
                population_statistics(model, epoch_batches(data, order))

        def checkpoint(state: LoopState) -> None:
            save_checkpoint(run_dir, model, optimizer, state.state_dict())

        progress = Progress(settings.steps, start_step=summary["resumed_from_step"] or 0)
        try:
            with stop_requested() as stop:
                outcome = train(
                    model, optimizer, data, order, settings, emit, probes, progress.update, before_final_eval,
                    checkpoint, resume_from, should_stop=stop,
                )
        finally:
            progress.close()
        if outcome.status == "completed":
            results = probes.at_end()
            summary.update(results)
            tracker.summarize(results)
        summary.update(
            status=outcome.status,
            steps=outcome.steps,
            final_test_acc=outcome.final_test_acc,
            final_test_loss=outcome.final_test_loss,
            best_test_acc=outcome.best_test_acc,
            train_s=outcome.train_seconds,
            steps_per_s=outcome.steps_per_s,
            diverged_step=outcome.diverged_step,
            device=str(device),
        )
    except KeyboardInterrupt:
        summary.update(status="interrupted")
        raise
    except BaseException as error:
        summary.update(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        summary["wall_s"] = time.perf_counter() - started
        record.write_summary(summary)
        record.close()
        tracker.finish(summary)
    return summary


def restore(run_dir: Path, model, optimizer, device, record: RunRecord) -> LoopState | None:
    """Load the run folder's checkpoint and cut metrics.jsonl back to its step. Without a
    checkpoint the run starts over, so the record restarts empty."""
    state = load_checkpoint(run_dir, model, optimizer)
    resume_from = LoopState.from_state_dict(state, device) if state else None
    step = resume_from.outcome.steps if resume_from else -1
    for problem in record.rewind(step):
        log.warning("%s", problem)
    if resume_from:
        log.info("resuming from the checkpoint at step %d", step)
    else:
        log.warning("no checkpoint in %s: starting the run from step 0", run_dir)
    return resume_from


def holds_record(run_dir: Path) -> bool:
    return (run_dir / METRICS_FILE).is_file()


def finished_status(run_dir: Path) -> str | None:
    """The status of the finished run recorded in `run_dir` (completed or diverged), else None."""
    try:
        status = json.loads((run_dir / SUMMARY_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if status in ("completed", "diverged") else None


def requeued_by_slurm() -> bool:
    """SLURM counts the restarts of a requeued job (preemption, or submitit's requeue on timeout)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_cpu_threads(setting, concurrent_jobs: int = 1, model_cfg=None) -> None:
    """Give PyTorch `setting` threads, or with "auto" what auto_threads picks for this network."""
    torch.set_num_threads(int(setting) if setting != "auto" else auto_threads(model_cfg, concurrent_jobs))


def auto_threads(model_cfg, concurrent_jobs: int = 1) -> int:
    """threads=auto: one thread for an MLP; a CNN gets its share of the cores (all of them for a
    job alone, split between the jobs under hydra/launcher=local).

    Measured (docs/speed.md; scripts/bench.py --threads-study), each the choice with the smallest
    worst case over the runs: the Fig. 1 MLP's step is ~100 small operations, and a second thread
    made it up to 6x slower without load; a small CNN with one thread fell up to 7.5x behind all
    cores when another process kept every core busy. Oversubscribed cores stay usable because
    train.py sets OMP_WAIT_POLICY=PASSIVE (see the top)."""
    share = max(1, available_cores() // max(1, concurrent_jobs))
    return share if model_cfg is not None and model_cfg.get("name") == "cnn" else 1


def available_cores() -> int:
    """The cores this process may run on (taskset, cgroups and SLURM can give it fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def jobs_at_once(launcher_cfg) -> int:
    """How many jobs a Hydra launcher runs side by side on this machine: joblib's n_jobs (-1: one
    per core); 1 for the others (one after another, or each on its own cluster node)."""
    if launcher_cfg is None or "joblib" not in str(launcher_cfg.get("_target_", "")).lower():
        return 1
    n_jobs = int(launcher_cfg.get("n_jobs", -1))
    return available_cores() if n_jobs < 1 else n_jobs


def sweep_dir() -> str | None:
    """The folder of the multirun sweep this job belongs to (None for a single run)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return HydraConfig.get().sweep.dir


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    experiment = hydra_cfg.runtime.choices.get("experiment")
    if cfg.skip_complete and finished_status(run_dir):
        log.info("skipped: %s already holds a %s run (skip_complete=true)", run_dir, finished_status(run_dir))
        return math.nan
    try:
        summary = run(cfg, run_dir, experiment, list(hydra_cfg.overrides.task))
    except DataNotFoundError as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the job fails, the sweep goes on
        log.error("%s", error)
        log.error("record: %s (status: failed)", run_dir)
        sys.exit(1)
    except KeyboardInterrupt:  # outside the training loop: run() wrote the record
        summary = {"status": "interrupted"}
    if summary["status"] == "interrupted":
        stop_interrupted(run_dir, summary.get("steps"))
    acc = summary["final_test_acc"]
    result = "diverged (non-finite loss)" if acc is None else f"test accuracy {acc:.4f}"
    log.info("%s after %d steps: %s, %.0f steps/s", summary["status"], summary["steps"], result, summary["steps_per_s"] or 0)
    log.info("record: %s", run_dir)
    return math.nan if acc is None else acc


def stop_interrupted(run_dir: Path, steps: int | None) -> None:
    """One line for an interrupted run, with the command that resumes it, and exit status 130.
    In a sweep the whole sweep stops (the next job would start otherwise) and the command
    resumes the sweep. A job in a launcher's own process (joblib, SLURM) has no command line to
    repeat: its launcher's process gives the line."""
    at_step = f" at step {steps}" if steps is not None else ""
    if Path(sys.argv[0]).name != Path(__file__).name:
        log.warning("interrupted%s (record: %s)", at_step, run_dir)
        sys.exit(EXIT_STATUS)
    sweep = sweep_dir()
    command = resume_command(sys.argv, sweep or run_dir, sweep=sweep is not None)
    log.warning("interrupted%s (record: %s); resume with: %s", at_step, run_dir, command)
    sys.exit(EXIT_STATUS)


if __name__ == "__main__":
    # Call main() of the importable module `train`, not of __main__: launchers that pickle the
    # task for other processes (joblib, submitit) then pickle it by reference to `train`.
    import train
    from training.interrupt import exit_interrupted, interrupt_with_keyboard_interrupt, interrupted_sweep_line

    # SLURM starts each job in a fresh interpreter, in the folder the sweep was started from:
    # let it import `train` from this checkout too (sbatch passes the environment on).
    checkout = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")]))
    interrupt_with_keyboard_interrupt()
    try:
        train.main()
    except KeyboardInterrupt:  # outside a run (Hydra's setup, a launcher waiting for its jobs): runs record their own
        exit_interrupted(interrupted_sweep_line(sys.argv) if {"-m", "--multirun"} & set(sys.argv) else "interrupted")
