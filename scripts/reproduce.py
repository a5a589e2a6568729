"""Run the jobs that test chosen claims into one results folder; rerun the command to resume.

    python scripts/reproduce.py                                         # every claim on MNIST -> results/mnist
    python scripts/reproduce.py --data fashion_mnist                    # the replication
    python scripts/reproduce.py --claims C1 --data digits --steps 300 --out /tmp/r1
    python scripts/reproduce.py --claims C3,C9 --jobs 2 -- optim.momentum=0.9
    python scripts/reproduce.py --claims C5 --launcher slurm -- hydra.launcher.partition=gpu

Each chosen claim names its arms (analysis/claims/): small sweeps over an experiment, each over
its seeds (10 per arm for C1-C3, 5 for the others, or --seeds). A job that several claims need is
trained once, with every probe those claims need (analysis/arms.py), so identical runs are not
trained twice. Each experiment's jobs run as one Hydra multirun of train.py, listed one per line in
<out>/<experiment>/jobs.txt, into <out>/<experiment>/<job folder>, the folder named after the job's
own settings (e.g. bn=none,optim.lr_mult=5,seed=1). The jobs run with skip_complete=true, so running
the same command again skips every job whose folder holds a finished record (completed or diverged)
and redoes or resumes the others: an interrupted reproduction continues where it stopped. Each
sweep's own output goes to <out>/<experiment>/reproduce.log; one JSON line per sweep goes to
<out>/reproduce_log.jsonl. --dry-run prints the plan, how many runs sharing saves and an estimate of
the time it takes on this machine (from the committed records' times, scaled by a short calibration,
training/timing.py), and needs neither the data nor SLURM. A command whose runs are all complete says
so in one line and runs nothing: --out <new folder> trains them again. Then: python scripts/report.py <out>.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: E402
from hydra.errors import HydraException  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from omegaconf.errors import OmegaConfBaseException  # noqa: E402

from analysis.arms import Arm  # noqa: E402
from analysis.claims import CLAIMS, CLAIMS_BY_ID, experiments_for  # noqa: E402
from training.record import SUMMARY_FILE, read_yaml  # noqa: E402

CONFIGS = ROOT / "configs"
TRAIN_SCRIPT = ROOT / "train.py"
DATASETS = tuple(sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml")))
LAUNCHERS = ("local", "basic", "slurm")
RUN_LOG = "reproduce_log.jsonl"  # one line per sweep, read by scripts/report.py
SWEEP_LOG = "reproduce.log"  # a sweep's Hydra output, in its folder
JOBS_FILE = "jobs.txt"  # a sweep's jobs, one line of overrides each (hydra/sweeper=job_list)
FINISHED = ("completed", "diverged")
POLL_S = 1.0

# Overrides left out of a job's folder name: they do not change what is trained, hold paths, or are the
# same for every job in a results folder (the data set and the step count: a rerun that changes them
# into the same folder is refused, see check_existing_runs).
FOLDER_IGNORES = (
    "experiment", "dataset", "dataset.root", "dataset.download", "train.steps", "train.eval_every",
    "train.epochs", "train.evals_per_epoch",
    "train.log_every", "train.checkpoint_every", "threads", "device", "logger", "logger.mode",
    "skip_complete", "resume", "hydra/launcher", "hydra.launcher.n_jobs", "probes",
)
# Settings of a finished run that must match the command for it to be skipped as done.
MUST_MATCH = ("dataset.name", "train.steps")


class UsageError(ValueError):
    """Bad arguments: one line, exit status 2, nothing run."""


@dataclass
class Job:
    """One training: an arm's combination of settings and a seed, with the probes of every arm that holds it."""

    settings: tuple[tuple[str, str], ...]  # (key, value), in the first arm's key order
    seed: int
    probes: tuple[str, ...] = ()
    claims: list[str] = field(default_factory=list)  # the chosen claims that read it

    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.settings] + [f"seed={self.seed}", f"probes=[{','.join(self.probes)}]"]


@dataclass
class Sweep:
    experiment: str
    claims: list[str]
    command: list[str]  # train.py's arguments
    jobs: list[Job]
    job_dirs: list[Path]  # every job's folder, as Hydra will name it
    already_complete: int
    lacking_probes: int = 0  # finished runs recorded without a probe that a claim now needs


# --- arguments ---------------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = ArgumentParser(
        prog="scripts/reproduce.py",
        description="Run the jobs that test chosen claims into one results folder, <out>/<experiment>/<job>; a job "
        "that several claims read is trained once. Rerunning the same command skips finished jobs and redoes or "
        "resumes the others. Overrides after -- (key=value, as for train.py) go to every job; a swept value such "
        "as bn=none,before replaces the arms' own values for that key.",
        epilog="examples:\n"
        "  python scripts/reproduce.py --claims C1 --data digits --steps 300 --out /tmp/r1\n"
        "  python scripts/reproduce.py                       # every claim on MNIST, its default seeds -> results/mnist\n"
        "  python scripts/reproduce.py --claims C3,C9 -- optim.momentum=0.9\n"
        "  python scripts/reproduce.py --launcher slurm -- hydra.launcher.partition=gpu\n"
        "then: python scripts/report.py <out>",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--claims", default=",".join(c.id for c in CLAIMS),
                        help="comma-separated claim ids (default: all, %(default)s)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds for every arm (default: each claim's own, 10 for C1-C3, 5 else)")
    parser.add_argument("--data", default="mnist", help=f"data set: {', '.join(DATASETS)} (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="train.steps of every job, for a quick look (default: each experiment's own); "
                        "also sets train.eval_every to steps//10 (and train.epochs, train.evals_per_epoch to null)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<data>)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="local",
                        help="Hydra launcher: local (joblib, --jobs at a time), basic (one job after another), "
                        "slurm (submitit) (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs at a time with --launcher local (default: 2)")
    parser.add_argument("--wandb", action="store_true", help="log to Weights & Biases (logger=wandb; default: no tracker)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the commands, run nothing")
    parser.usage = f"{parser.format_usage().strip()[len('usage: '):]} [-- override ...]"
    args = parser.parse_args(argv)
    args.extra = extra
    args.claims = parse_claims(args.claims)
    args.seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.data not in DATASETS:
        raise UsageError(f"--data {args.data} is not one of {', '.join(DATASETS)}")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.jobs is not None and args.launcher != "local":
        raise UsageError(f"--jobs applies to --launcher local only, not {args.launcher}")
    args.jobs = 2 if args.jobs is None else args.jobs
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    args.out = args.out or Path("results") / args.data
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    return args


def parse_claims(text: str) -> list[str]:
    ids = [c.strip().upper() for c in text.split(",") if c.strip()]
    if not ids:
        raise UsageError("--claims needs at least one claim id, e.g. --claims C1,C3")
    try:
        experiments_for(ids)
    except ValueError as error:
        raise UsageError(f"--claims: {error}") from None
    return list(dict.fromkeys(ids))


def parse_seeds(text: str) -> list[int]:
    """'0, 1,2' -> [0, 1, 2]; whole numbers >= 0, each once."""
    items = [s.strip() for s in text.split(",")]
    if not all(s.isdigit() for s in items):
        raise UsageError(f"--seeds must be comma-separated whole numbers >= 0, e.g. 0,1,2; got {text!r}")
    seeds = [int(s) for s in items]
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds lists a seed twice: {text!r}")
    return seeds


# --- the sweeps --------------------------------------------------------------------------------


def job_overrides(args: argparse.Namespace) -> list[str]:
    """train.py's overrides shared by every job; the extra ones that do not name a setting of the arms
    (paths, threads, hydra.*, the data set) replace defaults of the same key."""
    defaults = [f"dataset={args.data}"]
    if args.steps is not None:
        defaults += [f"train.steps={args.steps}", f"train.eval_every={max(1, args.steps // 10)}",
                     "train.epochs=null", "train.evals_per_epoch=null"]  # epochs would replace both
    defaults += ["threads=1", f"logger={'wandb' if args.wandb else 'none'}", "skip_complete=true"]
    shared, _ = split_extras(args.extra)
    return merge_overrides(defaults, shared)


def split_extras(extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """The overrides after --: (those every job takes as they are: hydra.* and the keys left out of folder
    names; key -> values of the others, which replace or join every arm's settings, swept or not)."""
    parser = OverridesParser.create()
    shared, settings = [], {}
    for text in extra:
        try:
            override = parser.parse_override(text)
        except HydraException as error:
            raise UsageError(f"cannot read {text!r} after --: {first_line(error)}") from None
        key = override.key_or_group
        if override.is_hydra_override() or key in FOLDER_IGNORES:
            shared.append(text)
        else:
            settings[key] = text.split("=", 1)[1]
    return shared, settings


def sweep_settings(args: argparse.Namespace, experiment: str) -> list[str]:
    """The Hydra overrides (launcher, folders) of one experiment's sweep."""
    settings = [f"hydra/launcher={args.launcher}"]
    if args.launcher == "local":
        settings.append(f"hydra.launcher.n_jobs={args.jobs}")
    settings += [
        f"hydra.sweep.dir={args.out / experiment}",
        "hydra.sweep.subdir=${hydra.job.override_dirname}",
        f"hydra.job.config.override_dirname.exclude_keys=[{','.join(FOLDER_IGNORES)}]",
    ]
    return settings


def merge_overrides(defaults: list[str], extra: list[str]) -> list[str]:
    parser = OverridesParser.create()
    keys = {parser.parse_override(override).key_or_group for override in extra}
    return [o.input_line for o in parser.parse_overrides(defaults) if o.key_or_group not in keys] + extra


def experiment_jobs(experiment: str, claim_ids: list[str], seeds: list[int] | None,
                    extra_settings: dict[str, str]) -> list[Job]:
    """The jobs of the chosen claims' arms in `experiment`, each once however many claims read it, ordered
    by seed (an interrupted reproduction leaves whole seeds); `seeds` replaces every arm's own."""
    jobs: dict[tuple, Job] = {}
    for claim in (CLAIMS_BY_ID[c] for c in claim_ids):
        for arm in claim.arms:
            if arm.experiment != experiment:
                continue
            widened = Arm(arm.experiment, {**arm.settings, **extra_settings}, arm.probes, arm.seeds)
            for combination in widened.combinations():
                for seed in seeds if seeds is not None else range(claim.seeds_of(arm)):
                    key = (job_key(combination), seed)
                    job = jobs.setdefault(key, Job(combination, seed, probes_for(experiment, combination)))
                    job.claims.append(claim.id)
    return sorted(jobs.values(), key=lambda job: job.seed)  # stable: arm order within a seed


def job_key(combination: tuple[tuple[str, str], ...]) -> tuple:
    """Settings as a job's identity: sorted by key, numbers by value (1 and 1.0 are one job)."""
    def normal(value: str):
        try:
            return float(value)
        except ValueError:
            return value.strip().lower()

    return tuple(sorted((k, normal(v)) for k, v in combination))


def probes_for(experiment: str, combination: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Every probe that any claim's arm holding these settings needs (chosen or not: a run's probes do not
    depend on which claims were reproduced first), in catalogue order."""
    names = [p for claim in CLAIMS for arm in claim.arms
             if arm.experiment == experiment and arm.contains(combination) for p in arm.probes]
    return tuple(dict.fromkeys(names))


def plan(args: argparse.Namespace, experiment: str, claims: list[str]) -> Sweep:
    """Compose the experiment as its jobs will, list its jobs (analysis/arms.py) and see which already
    hold a finished record."""
    common = [f"experiment={experiment}", *job_overrides(args)]
    cfg = compose_shared([*sweep_settings(args, experiment), *common], experiment)
    check_values(experiment, cfg)
    _, extra_settings = split_extras(args.extra)
    jobs = experiment_jobs(experiment, claims, args.seeds, extra_settings)
    if extra_settings:  # values from the command line reach the jobs' own settings: check each before any runs
        for settings in dict.fromkeys(job.settings for job in jobs):
            check_values(experiment, compose_shared([*sweep_settings(args, experiment), *common,
                                                     *(f"{k}={v}" for k, v in settings)], experiment))
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    sweep_dir = args.out / experiment
    keys: dict[str, str] = {}  # override -> its key, as Hydra's parser reads it (each distinct override parsed once)
    job_dirs = [sweep_dir / job_folder_name(parser, [*common, *job.overrides()], keys) for job in jobs]
    lacking = check_existing_runs(job_dirs, jobs, cfg)
    done = sum(finished_status(d) is not None for d in job_dirs)
    command = ["-m", *common, *sweep_settings(args, experiment), "hydra/sweeper=job_list",
               f"hydra.sweeper.jobs_file={sweep_dir / JOBS_FILE}"]
    return Sweep(experiment, sorted({c for job in jobs for c in job.claims}, key=claim_order), command, jobs,
                 job_dirs, done, lacking)


def claim_order(claim_id: str) -> int:
    return [c.id for c in CLAIMS].index(claim_id)


def compose_shared(overrides: list[str], context: str = ""):
    """The config every job of a sweep shares: composed with the overrides that are not swept. A
    failure names `context` (the experiment) and Hydra's reason."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    try:
        return compose(
            config_name="train",
            overrides=[o.input_line for o in parsed if not o.is_sweep_override()],
            return_hydra_config=True,
        )
    except (HydraException, OmegaConfBaseException) as error:
        raise UsageError(f"{context}: {first_line(error)}" if context else first_line(error)) from None


def job_folder_name(parser: OverridesParser, job: list[str], keys: dict[str, str] | None = None) -> str:
    """hydra.job.override_dirname of a job: its overrides minus FOLDER_IGNORES, sorted, joined by ','
    (Hydra's get_overrides_dirname). `keys` caches each override's key across the jobs of a sweep."""
    keys = {} if keys is None else keys
    for override in job:
        if override not in keys:
            keys[override] = parser.parse_overrides([override])[0].key_or_group
    kept = [override for override in job if keys[override] not in FOLDER_IGNORES]
    return ",".join(sorted(kept))


def check_values(experiment: str, cfg) -> None:
    """train.py's own checks on the settings every job shares (a swept value is checked by the sweep)."""
    from training.checks import ConfigError, validate  # imports torch: only once the arguments are known good

    try:
        validate(cfg)
    except ConfigError as error:
        raise UsageError(f"{experiment}: {error}") from None


def check_existing_runs(job_dirs: list[Path], jobs: list[Job], cfg) -> int:
    """A job folder that already holds a run must hold one with this command's data set and step count:
    otherwise skipping it as done would mix runs of different settings in one results folder. Returns
    how many finished runs lack a probe their job now carries (the claims' needs grew since)."""
    lacking = 0
    for job_dir, job in zip(job_dirs, jobs):
        stored = job_dir / ".hydra" / "config.yaml"
        if not stored.is_file():
            continue
        before = read_yaml(stored) or {}
        differ = [
            f"{key}={select(before, key)} (this command: {OmegaConf.select(cfg, key)})"
            for key in MUST_MATCH if select(before, key) != OmegaConf.select(cfg, key)
        ]
        if differ:
            raise UsageError(
                f"{job_dir} holds a run with {', '.join(differ)}; use the same --data/--steps or another --out"
            )
        recorded = set((before.get("probes") or {}).keys())
        lacking += bool(set(job.probes) - recorded) and finished_status(job_dir) is not None
    return lacking


def data_problem(args: argparse.Namespace) -> str | None:
    """Why the jobs could not start for want of their data, or None. The jobs run side by side and must
    not each download the data set: it has to be there already."""
    from training.data import missing_data_error

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose_shared([*sweep_settings(args, ""), *job_overrides(args), "dataset.download=false"])
    GlobalHydra.instance().clear()
    if missing_data_error(cfg.dataset) is None:
        return None
    return (f"--data {args.data}: not found under {Path(str(cfg.dataset.root)).resolve()}; set BN_DATA_DIR (or "
            f"-- dataset.root=...) to the folder that holds it, fetch it once with "
            f"`python train.py dataset={args.data} train.steps=1 logger=none`, or use --data digits")


def launcher_problem(args: argparse.Namespace) -> str | None:
    """Why the sweeps could not be launched (SLURM's sbatch missing), or None."""
    if args.launcher == "slurm" and shutil.which("sbatch") is None:
        return ("--launcher slurm needs SLURM's sbatch on PATH; run this on the cluster's login node, try it here "
                "with scripts/slurm_local.sh start, or use --launcher local")
    return None


def select(tree: dict, key: str):
    """tree["a"]["b"] for key "a.b", None where a part is missing."""
    for part in key.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


def finished_status(job_dir: Path) -> str | None:
    """completed or diverged when the job's folder holds a finished record, else None (as skip_complete reads it)."""
    from train import finished_status as recorded_status

    return recorded_status(job_dir)


def first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# --- running -----------------------------------------------------------------------------------


def run_sweep(sweep: Sweep, args: argparse.Namespace, log_path: Path) -> dict:
    """Launch one sweep, print a line per job it finishes, and return its line for reproduce_log.jsonl."""
    sweep_dir = args.out / sweep.experiment
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_jobs(sweep, sweep_dir / JOBS_FILE)
    watcher = JobWatcher(sweep_dir, len(sweep.job_dirs), sweep.already_complete)
    started = time.perf_counter()
    with open(sweep_dir / SWEEP_LOG, "a") as log:
        log.write(f"\n# {datetime.now(timezone.utc).isoformat(timespec='seconds')} {display_command(sweep)}\n")
        log.flush()
        process = subprocess.Popen(
            [sys.executable, str(TRAIN_SCRIPT), *sweep.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: an interruption stops every job with it
        )
        try:
            while process.poll() is None:
                try:
                    process.wait(timeout=POLL_S)  # returns as soon as the sweep ends
                except subprocess.TimeoutExpired:
                    pass
                watcher.report_new()
        finally:
            if process.poll() is None:
                stop(process)
            watcher.report_new()
            record = {
                "experiment": sweep.experiment,
                "claims": sweep.claims,
                "command": display_command(sweep),
                "jobs": len(sweep.job_dirs),
                "already_complete": sweep.already_complete,
                "wall_s": round(time.perf_counter() - started, 3),
                "returncode": process.returncode,
                "launcher": args.launcher,
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            with open(log_path, "a") as run_log:
                run_log.write(json.dumps(record) + "\n")
    return record


def write_jobs(sweep: Sweep, path: Path) -> None:
    """The sweep's jobs file (hydra/sweeper=job_list): one line of overrides per job, the claims it serves beside it."""
    lines = [f"# {sweep.experiment}: {len(sweep.jobs)} jobs for {', '.join(sweep.claims)}; written by scripts/reproduce.py"]
    lines += [f"{shlex.join(job.overrides())}  # {','.join(job.claims)}" for job in sweep.jobs]
    path.write_text("\n".join(lines) + "\n")


def stop(process: subprocess.Popen) -> None:
    """End the sweep and its jobs (its whole process group): politely, then for sure."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


class JobWatcher:
    """Prints one line per job whose summary.json appears or changes while its sweep runs."""

    def __init__(self, sweep_dir: Path, jobs: int, already_complete: int):
        self.sweep_dir = sweep_dir
        self.jobs = jobs
        self.done = already_complete
        self.seen = self._summaries()

    def _summaries(self) -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in self.sweep_dir.glob(f"*/{SUMMARY_FILE}")}

    def report_new(self) -> None:
        now = self._summaries()
        for path in sorted(p for p, mtime in now.items() if self.seen.get(p) != mtime):
            try:
                summary = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being written: read it at the next poll
            self.seen[path] = now[path]
            self.done += 1
            print(f"  [{self.done}/{self.jobs}] {path.parent.name}: {describe(summary)}", flush=True)


def describe(summary: dict) -> str:
    status = summary.get("status", "?")
    if status == "failed":
        return f"failed ({summary.get('error', 'no error recorded')})"
    acc = summary.get("final_test_acc")
    result = f", test acc {acc:.4f}" if isinstance(acc, (int, float)) else ""
    return f"{status}{result}, {summary.get('wall_s', 0):.1f} s"


def display_command(sweep: Sweep) -> str:
    """The sweep's command as a user would type it in this folder (python for this interpreter)."""
    script = os.path.relpath(TRAIN_SCRIPT) if TRAIN_SCRIPT.is_relative_to(Path.cwd()) else str(TRAIN_SCRIPT)
    return shlex.join(["python", script, *sweep.command])


def last_error_line(log_file: Path) -> str:
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "raise", "exception")) or "Error" in line]
    return (errors or lines or ["(empty log)"])[-1]


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


# --- main --------------------------------------------------------------------------------------


def plan_all(args: argparse.Namespace) -> tuple[list[Sweep], list[str]]:
    """The sweeps to run, and one problem line per chosen claim whose experiment file does not exist."""
    sweeps, missing = [], []
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        compose_shared([*sweep_settings(args, ""), *job_overrides(args)])  # what every job shares, refused once
        for experiment in experiments_for(args.claims):
            chosen = [c.id for c in CLAIMS if experiment in c.experiments and c.id in args.claims]
            if not (CONFIGS / "experiment" / f"{experiment}.yaml").is_file():
                missing.append(f"{','.join(chosen)}: configs/experiment/{experiment}.yaml does not exist")
                continue
            sweeps.append(plan(args, experiment, chosen))
    GlobalHydra.instance().clear()
    return sweeps, missing


def print_plan(sweeps: list[Sweep]) -> None:
    """The seeds, per experiment its jobs and the claims they serve; then how many runs sharing saves."""
    for sweep in sweeps:
        seeds = sorted({job.seed for job in sweep.jobs})
        span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}" if seeds == list(
            range(seeds[0], seeds[-1] + 1)) else f"seeds {','.join(map(str, seeds))}"
        print(f"{sweep.experiment}: {len(sweep.jobs)} jobs ({span}) for {', '.join(sweep.claims)}, "
              f"{sweep.already_complete} already complete")
        if sweep.lacking_probes:
            print(f"  note: {sweep.lacking_probes} finished runs in {sweep.experiment}/ lack a probe their claims now "
                  "need; remove those folders to redo them", file=sys.stderr)
    asked = sum(len(job.claims) for sweep in sweeps for job in sweep.jobs)
    distinct = sum(len(sweep.jobs) for sweep in sweeps)
    print(f"the claims read {asked} runs; {distinct} distinct runs train them (sharing saves {asked - distinct})",
          flush=True)


def all_complete_line(sweeps: list[Sweep], args: argparse.Namespace) -> str:
    """The one line for a command with nothing left to run."""
    jobs = sum(len(sweep.job_dirs) for sweep in sweeps)
    return (f"nothing to run: all {jobs} runs of this command are already complete in {args.out} (finished records); "
            f"to train them again, give a new folder: --out <new folder> (--dry-run estimates the time); "
            f"the report: python scripts/report.py {shlex.quote(str(args.out))}")


# --- how long: the committed records' times, scaled to this machine ---------------------------


@dataclass
class TimeEstimate:
    experiment: str
    durations: list[float]  # each job's time on the machine that made the records, in the order the jobs run
    from_records: int  # jobs with a committed record of their own (the others: their experiment's mean)
    unknown: int  # jobs with nothing to go by (an experiment without committed records), left out of durations


def reference_folder(data: str) -> Path | None:
    """The committed results whose times an estimate scales: the same data set's, else MNIST's."""
    for name in (data, "mnist"):
        if (ROOT / "results" / name / RUN_LOG).is_file():
            return ROOT / "results" / name
    return None


def recorded_times(folder: Path, steps: int | None = None) -> dict[str, float]:
    """Job folder name -> wall_s of each finished run in `folder` (one experiment's), scaled by `steps` over
    its recorded steps when given."""
    times = {}
    for path in folder.glob(f"*/{SUMMARY_FILE}"):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if summary.get("status") in FINISHED and summary.get("wall_s") and summary.get("steps"):
            times[path.parent.name] = float(summary["wall_s"]) * (steps / summary["steps"] if steps else 1.0)
    return times


def job_durations(experiment: str, reference: Path, steps: int | None, names: list[str]) -> TimeEstimate:
    """The jobs `names` (job folder names, in the order they run) of an experiment as the machine that made the
    records in `reference` would take them: each job's own committed wall_s, or the experiment's mean for a
    job without one (scaled by --steps over the recorded steps)."""
    recorded = recorded_times(reference / experiment, steps)
    mean = sum(recorded.values()) / len(recorded) if recorded else None
    durations = [recorded.get(name, mean) for name in names]
    return TimeEstimate(experiment, [d for d in durations if d is not None], sum(name in recorded for name in names),
                        sum(d is None for d in durations))


def makespan(durations: list[float], slots: int) -> float:
    """How long jobs take run in order on `slots` at a time, each starting when a slot frees (as joblib runs them)."""
    ends = [0.0] * max(1, slots)
    for duration in durations:
        heapq.heapreplace(ends, ends[0] + duration)
    return max(ends)


def committed_jobs_at_once(line: dict) -> int:
    """How many jobs a committed sweep ran side by side (its launcher's n_jobs; 1 for the others)."""
    if line.get("launcher") != "local":
        return 1
    words = [w for w in shlex.split(line.get("command", "")) if w.startswith("hydra.launcher.n_jobs=")]
    return int(words[-1].split("=", 1)[1]) if words else 2


def start_up(reference: Path) -> tuple[float, float]:
    """Seconds a sweep costs beyond its jobs' own wall_s, from the committed sweeps: (per sweep, per job).
    Each sweep's wall time minus the makespan of its jobs' wall_s is fitted as a + b x (jobs / jobs at a
    time), least squares (starting Python, PyTorch and Hydra once; composing and starting each job)."""
    rows, extra = [], []
    for text in (reference / RUN_LOG).read_text().splitlines():
        try:
            line = json.loads(text)
            experiment, sweep_s, count = line["experiment"], float(line["wall_s"]), int(line["jobs"])
        except (ValueError, KeyError, TypeError):
            continue
        if line.get("already_complete") or line.get("returncode") != 0 or count < 1:
            continue  # a resumed or failed sweep did not run all of its jobs
        at_once = committed_jobs_at_once(line)
        durations = list(recorded_times(reference / experiment).values())
        rows.append((1.0, count / at_once))
        extra.append(sweep_s - makespan(durations, at_once))
    if len(rows) < 2:
        return (max(0.0, extra[0]) if extra else 0.0), 0.0
    (a11, a12, a22) = (sum(r[0] * r[0] for r in rows), sum(r[0] * r[1] for r in rows), sum(r[1] * r[1] for r in rows))
    b1, b2 = sum(r[0] * y for r, y in zip(rows, extra)), sum(r[1] * y for r, y in zip(rows, extra))
    determinant = a11 * a22 - a12 * a12
    if determinant <= 0:
        return max(0.0, b1 / a11), 0.0
    per_sweep, per_job = (a22 * b1 - a12 * b2) / determinant, (a11 * b2 - a12 * b1) / determinant
    return max(0.0, per_sweep), max(0.0, per_job)


def this_machine() -> tuple[int, bool]:
    """The cores this process may use, and whether a job with device=auto would run on a GPU."""
    import torch

    from train import available_cores

    return available_cores(), torch.cuda.is_available()


def print_estimate(sweeps: list[Sweep], args: argparse.Namespace) -> None:
    """Per experiment and in all, how long the plan's jobs take on this machine: an estimate, and how it was made."""
    from training.timing import CALIBRATION_FILE, calibrate, reference

    reference_dir = reference_folder(args.data)
    if reference_dir is None:
        print("time: no committed records to estimate it from (results/<data>/reproduce_log.jsonl)")
        return
    again = all(sweep.already_complete == len(sweep.job_dirs) for sweep in sweeps)  # then: training it all again
    estimates = [job_durations(sweep.experiment, reference_dir, args.steps,
                               [d.name for d in sweep.job_dirs if again or finished_status(d) is None])
                 for sweep in sweeps]
    per_sweep, per_job = start_up(reference_dir)
    stored, rate = reference(), calibrate()
    factor = stored["steps_per_s"] / rate if stored else 1.0
    cores, gpu = this_machine()
    at_once = {"local": min(args.jobs, cores), "basic": 1}.get(args.launcher)

    print("time to train them all again into a new folder (--out <new folder>), an estimate:" if again
          else "time, an estimate:")
    width = max(len(e.experiment) for e in estimates)
    total_job, total_wall, total_jobs = 0.0, 0.0, 0
    for e in estimates:
        jobs = len(e.durations) + e.unknown
        if not jobs:
            continue
        job_s = factor * sum(d + per_job for d in e.durations)
        wall_s = factor * (per_sweep + makespan([d + per_job for d in e.durations], at_once)) if at_once else None
        total_job, total_jobs = total_job + job_s, total_jobs + jobs
        total_wall += wall_s or 0.0
        gap = f" ({e.unknown} without a record to go by, not counted)" if e.unknown else ""
        wall = f", {format_long(wall_s)} of wall time" if wall_s is not None else ""
        print(f"  {e.experiment.ljust(width)}  {jobs:4d} jobs  {format_long(job_s)} of job time{wall}{gap}")
    if at_once:
        how_many = "one job at a time" if at_once == 1 else f"{at_once} jobs at a time"
        ran = f"--launcher local --jobs {args.jobs}, {cores} cores" if args.launcher == "local" else "--launcher basic"
        wall = f", about {format_long(total_wall)} of wall time with {how_many} ({ran})"
    else:
        wall = "; on a cluster the wall time is the job time over the jobs SLURM runs at once"
    print(f"  {'all'.ljust(width)}  {total_jobs:4d} jobs  {format_long(total_job)} of job time{wall}")
    scaled = f"; scaled by --steps {args.steps} over each record's steps" if args.steps else ""
    other_data = "" if reference_dir.name == args.data else f" ({args.data} has none of its own; its runs differ)"
    calibration = (f"this machine ran the calibration (training/timing.py: the Fig. 1 BN network on random data, one "
                   f"thread) at {rate:.0f} steps/s, against {stored['steps_per_s']:.0f} on the machine that made the "
                   f"records ({CALIBRATION_FILE.relative_to(ROOT)})" if stored else
                   f"no reference calibration ({CALIBRATION_FILE.relative_to(ROOT)} is missing): not scaled")
    how = (f"how: the committed records' times under {display_path(reference_dir)}{other_data}: each job's wall_s "
           f"in its own record, or its experiment's mean{scaled}; plus {per_job:.1f} s of start-up per job and "
           f"{per_sweep:.0f} s per experiment's sweep, fitted to the committed sweeps' wall times ({RUN_LOG}); times "
           f"{factor:.2f}: {calibration}. Wall time: the experiments one after another, each one's jobs in order on "
           f"as many slots as jobs at a time, which is at most the cores (--jobs; each job uses one thread). An "
           f"estimate, assuming the jobs have their cores to themselves: other work on the machine slows them, and "
           f"on a shared machine one calibration can be a third off (training/timing.py).")
    if gpu:
        how += (" This machine has a GPU, which the jobs use (device=auto): the estimate is for the CPU; a GPU's "
                "speed is not measured here (docs/gpu.md).")
    print(textwrap.fill(how, width=110, initial_indent="  ", subsequent_indent="    "), flush=True)


def format_long(seconds: float) -> str:
    """1 h 05 min, 12 min, 40 s."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        sweeps, missing = plan_all(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in missing:
        print(f"error: {problem}; skipped", file=sys.stderr)
    if not sweeps:
        return 2
    to_run = sum(len(sweep.job_dirs) - sweep.already_complete for sweep in sweeps)
    if args.dry_run:
        print_plan(sweeps)
        for sweep in sweeps:
            print(f"  {sweep.experiment}: {display_command(sweep)}")
        print_estimate(sweeps, args)
        for problem in filter(None, (data_problem(args), launcher_problem(args))):
            print(f"note: the runs need what this machine lacks: {problem}", flush=True)
        return 1 if missing else 0
    if to_run == 0:
        print_plan(sweeps)
        print(all_complete_line(sweeps, args), flush=True)
        return 1 if missing else 0
    problem = data_problem(args) or launcher_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print_plan(sweeps)

    args.out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for number, sweep in enumerate(sweeps, start=1):
            print(f"[{number}/{len(sweeps)}] {sweep.experiment}: {len(sweep.jobs)} jobs, "
                  f"{sweep.already_complete} already complete", flush=True)
            if sweep.already_complete == len(sweep.job_dirs):
                continue  # nothing to launch
            record = run_sweep(sweep, args, args.out / RUN_LOG)
            if record["returncode"] != 0:
                log_file = args.out / sweep.experiment / SWEEP_LOG
                print(f"  {sweep.experiment} failed (exit {record['returncode']}): {last_error_line(log_file)} "
                      f"[{log_file}]", flush=True)
                failed.append(sweep.experiment)
    except KeyboardInterrupt:
        print(f"interrupted after {format_duration(time.perf_counter() - started)}; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_handler)

    print(f"total wall time: {format_duration(time.perf_counter() - started)}")
    if len(failed) < len(sweeps):  # something to report on
        print(f"next: python scripts/report.py {shlex.quote(str(args.out))}", flush=True)
    not_reproduced = failed + [f"{problem.split(':')[0]} (no experiment file)" for problem in missing]
    if not_reproduced:
        print(f"error: not reproduced: {', '.join(not_reproduced)}", file=sys.stderr)
    return 1 if not_reproduced else 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
