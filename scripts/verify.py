"""Re-run some of a results folder's runs on this machine: how far each lands from its record, and
whether any claim's verdict changes when the re-runs replace the records.

    python scripts/verify.py results/mnist                       # 3 runs drawn at random
    python scripts/verify.py results/mnist --sample 10 --seed 1
    python scripts/verify.py results/mnist --runs 'fig1_mnist/bn=none,optim.lr_mult=1,seed=0' 'ics/bn=none,seed=0'

Each chosen run is trained again from its own recorded overrides (.hydra/overrides.yaml) into
<out>/<experiment>/<job> (default: a fresh temporary folder), with no tracker. The same seed gives the
same numbers on one CPU; on another machine or a GPU, float round-off can move a run a little, and a
chaotic one (an unnormalized sigmoid net) more. The script prints, per run, the difference of its final
test accuracy and the largest difference along its test-accuracy curve, then recomputes every verdict
with the re-runs in place of the records and names any that change. Exit status 0; 1 when a verdict
changed; 2 for bad arguments.
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

import yaml  # noqa: E402

from analysis.report import evaluate  # noqa: E402
from analysis.runs import find_runs, load_run  # noqa: E402
from analysis.tables import metric_series  # noqa: E402

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
    parser.add_argument("--out", type=Path, default=None, help="where the re-runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        raise UsageError(f"results folder {args.folder} does not exist")
    if args.sample < 1:
        raise UsageError(f"--sample must be >= 1, got {args.sample}")
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
    overrides = yaml.safe_load((record / ".hydra" / "overrides.yaml").read_text()) or []
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
    out = args.out or Path(tempfile.mkdtemp(prefix="verify_"))
    reruns, failed = {}, []
    print(f"re-running {len(chosen)} run(s) of {args.folder} into {out}", flush=True)
    for number, record in enumerate(chosen, start=1):
        name = record.relative_to(args.folder)
        result = rerun(record, out / "runs" / name)
        if result.returncode != 0:
            failed.append(str(name))
            print(f"  [{number}/{len(chosen)}] {name}: the re-run failed: {last_line(result)}", flush=True)
            continue
        reruns[record] = out / "runs" / name
        d = distance(record, reruns[record])
        print(f"  [{number}/{len(chosen)}] {name}: {d['status']}; final test accuracy {signed(d['final'])}, "
              f"largest difference along the curve {plain(d['curve'])}", flush=True)
    changes = verdict_changes(args.folder, replaced_folder(args.folder, reruns, out / "replaced")) if reruns else []
    print("verdicts with the re-runs in place of the records: " + ("; ".join(changes) if changes else "none changes"))
    if failed:
        print(f"error: {len(failed)} re-run(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if changes or failed else 0


def signed(value) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def plain(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {result.returncode}"


if __name__ == "__main__":
    sys.exit(main())
