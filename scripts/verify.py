"""Re-run some of a results folder's runs on this machine: how far each lands from its record, and
whether any claim's verdict changes when the re-runs replace the records.

    python scripts/verify.py results/mnist                       # 3 runs drawn at random
    python scripts/verify.py results/mnist --sample 10 --seed 1
    python scripts/verify.py results/mnist --runs 'fig1_mnist/bn=none,optim.lr_mult=1,seed=0' 'ics/bn=none,seed=0'

Each chosen run is trained again from its own recorded overrides (.hydra/overrides.yaml), with no
tracker, into <out>/runs/<experiment>/<job> when --out is given (kept, with <out>/replaced, the results
folder with the re-runs in place of their records); without --out into a temporary folder that is
removed at the end. A re-run matches its record bit for bit on the same machine, PyTorch build, thread
count and code (summary.json's `environment` and `git`); elsewhere float round-off can move a run a
little, and a chaotic one (an unnormalized sigmoid net) more, which is the run-to-run spread this
script measures (docs/runs.md, "Re-runs and records"). It prints, per run, the difference of its final
test accuracy and the largest difference along its test-accuracy curve, and what differs between the
record's machine and this one, then recomputes every verdict with the re-runs in place of the records
and names any that change. Exit status 0; 1 when a verdict changed or a re-run failed; 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.report import evaluate  # noqa: E402
from analysis.runs import find_runs, load_run  # noqa: E402
from analysis.tables import metric_series  # noqa: E402
from training.record import read_yaml  # noqa: E402

FINISHED = ("completed", "diverged")
NOT_REPEATED = ("skip_complete", "resume", "logger", "hydra.", "threads")  # bookkeeping the re-run sets itself


class UsageError(ValueError):
    """Bad arguments: one line, exit status 2, nothing run."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/verify.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a results folder (as scripts/reproduce.py writes it)")
    parser.add_argument("--sample", type=int, default=3, help="how many finished runs to draw at random (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--runs", nargs="+", default=None,
                        help="runs to re-run, as <experiment>/<job> (job folders hold commas), instead of a draw")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the re-runs in this folder (default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        raise UsageError(f"results folder {args.folder} does not exist")
    if args.sample < 1:
        raise UsageError(f"--sample must be >= 1, got {args.sample}")
    if args.out is not None and args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise UsageError(f"--out {args.out} exists and is not an empty folder; name a new one")
    return args


def choose(folder: Path, args: argparse.Namespace) -> list[Path]:
    """The run folders to re-run: those named by --runs, or a seeded draw of --sample finished runs."""
    runs = [p for p in find_runs(folder) if load_run(p).status in FINISHED]
    if args.runs:
        chosen = [folder / name.strip().rstrip("/") for name in args.runs if name.strip()]
        unknown = [str(p.relative_to(folder)) for p in chosen if p not in runs]
        if unknown:
            raise UsageError(f"--runs: no finished run {', '.join(unknown)} in {folder}")
        return chosen
    if not runs:
        raise UsageError(f"{folder} holds no finished runs")
    return sorted(random.Random(args.seed).sample(runs, min(args.sample, len(runs))))


def rerun(record: Path, target: Path) -> subprocess.CompletedProcess:
    """Train the run again from its recorded overrides, into `target`."""
    overrides = read_yaml(record / ".hydra" / "overrides.yaml") or []
    kept = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(NOT_REPEATED)]
    command = [sys.executable, str(ROOT / "train.py"), *kept, "logger=none", "threads=1", f"hydra.run.dir='{target}'"]  # quoted: job folders hold = and ,
    return subprocess.run(command, capture_output=True, text=True)


def distance(record: Path, again: Path) -> dict:
    """Final accuracy and curve differences between a record and its re-run."""
    before, after = load_run(record), load_run(again)
    finals = [r.summary.get("final_test_acc") for r in (before, after)]
    curve_a, curve_b = dict(metric_series(before, "test/acc")), dict(metric_series(after, "test/acc"))
    shared = sorted(set(curve_a) & set(curve_b))
    return {
        "status": f"{before.status} -> {after.status}",
        "final": None if None in finals else finals[1] - finals[0],
        "curve": max((abs(curve_b[s] - curve_a[s]) for s in shared), default=None),
    }


def replaced_folder(folder: Path, reruns: dict[Path, Path], where: Path) -> Path:
    """A copy of the folder's run records with the re-runs in place of the records they repeat."""
    for run in find_runs(folder):
        source = reruns.get(run, run)
        shutil.copytree(source, where / run.relative_to(folder), ignore=shutil.ignore_patterns("checkpoint.pt*", "wandb"))
    return where


def verdict_changes(folder: Path, replaced: Path) -> list[str]:
    before = {r.claim.id: r.outcome for r in evaluate(folder)}
    after = {r.claim.id: r.outcome for r in evaluate(replaced)}
    return [f"{claim}: {before[claim]} -> {after[claim]}" for claim in before if before[claim] != after[claim]]


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        chosen = choose(args.folder, args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out is not None:
        print(f"re-running {len(chosen)} run(s) of {args.folder} into {args.out}", flush=True)
        return verify(args.folder, chosen, args.out)
    with tempfile.TemporaryDirectory(prefix="verify_") as temporary:  # removed however the re-runs end
        print(f"re-running {len(chosen)} run(s) of {args.folder} in a temporary folder, removed at the end "
              "(--out <folder> keeps them)", flush=True)
        return verify(args.folder, chosen, Path(temporary))


def verify(folder: Path, chosen: list[Path], out: Path) -> int:
    """Re-run the chosen records into out/runs, compare, and recompute the verdicts with out/replaced."""
    reruns, failed, machines = {}, [], set()
    for number, record in enumerate(chosen, start=1):
        name = record.relative_to(folder)
        result = rerun(record, out / "runs" / name)
        if result.returncode != 0:
            failed.append(str(name))
            print(f"  [{number}/{len(chosen)}] {name}: the re-run failed: {last_line(result)}", flush=True)
            continue
        reruns[record] = out / "runs" / name
        d = distance(record, reruns[record])
        print(f"  [{number}/{len(chosen)}] {name}: {d['status']}; final test accuracy {signed(d['final'])}, "
              f"largest difference along the curve {plain(d['curve'])}", flush=True)
        machines.add(machine_difference(record, reruns[record]))
    for line in sorted(machines):
        print(f"  record -> re-run: {line}")
    changes = verdict_changes(folder, replaced_folder(folder, reruns, out / "replaced")) if reruns else []
    print("verdicts with the re-runs in place of the records: " + ("; ".join(changes) if changes else "none changes"))
    if failed:
        print(f"error: {len(failed)} re-run(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if changes or failed else 0


def machine_difference(record: Path, again: Path) -> str:
    """What differs between where the record was made and this re-run: the code version and the
    environment summary.json records (records made before it was recorded say so)."""
    before, after = load_run(record).summary, load_run(again).summary
    differ = []
    if before.get("git") != after.get("git"):
        differ.append(f"git {short(before.get('git'))} -> {short(after.get('git'))}")
    if "environment" not in before:
        return "; ".join([*differ, "the record does not say on which machine or PyTorch build it was made"])
    old, new = before["environment"], after.get("environment", {})
    differ += [f"{key} {old.get(key)} -> {new.get(key)}"
               for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return "; ".join(differ) or "nothing recorded differs (code version, PyTorch build, processor, threads, Python, OS)"


def short(commit) -> str:
    return str(commit)[:12] + ("-dirty" if str(commit).endswith("-dirty") else "") if commit else "unknown"


def signed(value) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def plain(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {result.returncode}"


if __name__ == "__main__":
    sys.exit(main())
