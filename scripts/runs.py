"""A sweep's runs as one table: the settings that vary, the seed, status, accuracy, steps and time.

    python scripts/runs.py multirun/2026-12-04/10-02-33-123456       # after python train.py -m ...
    python scripts/runs.py results/mnist/fig1_mnist                   # one experiment of a results folder
    python scripts/runs.py results/mnist                              # one table per experiment
    python scripts/runs.py <folder> --csv > runs.csv                  # every column, for a spreadsheet

Reads every run folder under <folder> (summary.json, metrics.jsonl, .hydra/config.yaml; analysis/runs.py),
finished or not: a run still going or killed reads as `incomplete`, with the last step it logged. The
rows are sorted by the settings that vary between the runs (analysis/tables.py's swept_keys: config keys,
not the seed or bookkeeping such as threads), then by seed. Exit status 0; 2 when <folder> holds no run.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from analysis.tables import load_all, runs_table, swept_keys  # noqa: E402

# The result columns: (column of the table, heading, format)
RESULTS = (
    ("status", "status", str),
    ("final_test_acc", "final acc", lambda v: f"{v:.4f}"),
    ("best_test_acc", "best acc", lambda v: f"{v:.4f}"),
    ("steps", "steps", lambda v: f"{int(v):,}"),
    ("wall_s", "time", lambda v: duration(v)),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/runs.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("folder", type=Path,
                        help="a sweep folder (multirun/<date>/<time>), a results folder or one run")
    parser.add_argument("--csv", action="store_true", help="every column of every run as CSV, unformatted")
    return parser.parse_args(argv)


def table_of(folder: Path) -> pd.DataFrame:
    """One row per run under `folder`: path (relative), experiment, the varying settings, seed and results."""
    runs = load_all(folder)
    table = runs_table(runs)
    if table.empty:
        return table
    last_steps = [max((line["step"] for line in run.metrics), default=None) for run in runs]
    if "steps" not in table:
        table["steps"] = None
    # an unfinished run: the last step it logged
    table["steps"] = [s if pd.notna(s) else last for s, last in zip(table["steps"], last_steps)]
    table["path"] = [str(Path(p).relative_to(folder)) if Path(p) != folder else "." for p in table["path"]]
    if "experiment" not in table:
        table["experiment"] = None
    return table


def sort_key(value):
    """Numbers by value, then text, then missing values: 1e-4 < 0.01 < 1 < none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return (2, 0.0, "")
    if isinstance(value, bool):
        return (1, 0.0, str(value))
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    try:
        return (0, float(str(value)), "")
    except ValueError:
        return (1, 0.0, str(value))


def sorted_rows(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    order = sorted(range(len(table)), key=lambda i: [sort_key(table.iloc[i].get(k)) for k in [*keys, "seed", "path"]])
    return table.iloc[order]


def text_table(table: pd.DataFrame) -> list[str]:
    """The varying settings, seed and results of `table`'s runs, as aligned columns (numbers to the right)."""
    keys = swept_keys(table)
    rows = sorted_rows(table, keys)
    show_seed = table["seed"].map(repr).nunique() > 1 or not keys
    settings = [(k, k.removeprefix("cfg/"), plain) for k in keys] + ([("seed", "seed", plain)] if show_seed else [])
    results = [c for c in RESULTS if c[0] in table]
    columns = settings + results
    lines = [[heading for _, heading, _ in columns]]
    lines += [[cell(row.get(column), form) for column, _, form in columns] for _, row in rows.iterrows()]
    right = [False] * len(settings) + [column != "status" for column, _, _ in results]
    named = [tuple(line[:len(settings)]) for line in lines[1:]]
    if len(set(named)) < len(named):  # the settings do not tell every run apart: name each by its folder
        lines = [[*line, path] for line, path in zip(lines, ["folder", *rows["path"]])]
        right.append(False)
    widths = [max(len(line[i]) for line in lines) for i in range(len(right))]
    return ["  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(line, widths, right)).rstrip()
            for line in lines]


def footer(table: pd.DataFrame) -> str:
    counts = table["status"].value_counts()
    statuses = ", ".join(f"{counts[s]} {s}" for s in ("completed", "diverged", "failed", "interrupted", "incomplete")
                         if s in counts)
    total = duration(table["wall_s"].fillna(0).sum()) if "wall_s" in table else "no"
    return f"{len(table)} runs: {statuses}; {total} of job time"


def plain(value) -> str:
    """A setting as the command line writes it: 5 rather than pandas' 5.0."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def cell(value, form) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    try:
        return form(value)
    except (TypeError, ValueError):
        return str(value)


def duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if argv is None and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the table quietly
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    table = table_of(args.folder)
    if table.empty:
        print(f"error: no run under {args.folder} (a run folder holds metrics.jsonl or summary.json)", file=sys.stderr)
        return 2
    if args.csv:
        table.to_csv(sys.stdout, index=False)
        return 0
    experiments = sorted(table["experiment"].dropna().unique()) if table["experiment"].notna().any() else []
    groups = [(name, table[table["experiment"] == name]) for name in experiments]
    if table["experiment"].isna().any():
        groups.append((None, table[table["experiment"].isna()]))
    for number, (name, rows) in enumerate(groups):
        if len(groups) > 1:
            print(("\n" if number else "") + f"{name or '(no experiment)'}:")
        print("\n".join(text_table(rows.reset_index(drop=True))))
        print(footer(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
