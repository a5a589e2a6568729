"""The reproduction report: every claim's verdict, numbers and figures from one results folder.

`write_report(folder)` reads `<folder>/<experiment>/**` (run records), `<folder>/reproduce_log.jsonl`
(what scripts/reproduce.py ran and how long it took; optional) and writes `<folder>/REPORT.md` and
`<folder>/figures/*.png`. Same runs, same bytes: no timestamps of its own, everything sorted.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from analysis import measures
from analysis.arms import run_experiment
from analysis.claim import Arms, Claim
from analysis.claims import CLAIMS
from analysis.runs import Run
from analysis.stats import CONFIDENCE
from analysis.tables import load_all
from analysis.verdict import Verdict, deciding_parts, format_number, letter
from training.choices import DATASETS

REPORT_FILE = "REPORT.md"
REPOSITORY = Path(__file__).resolve().parents[1]
FIGURES_DIR = "figures"
LOG_FILE = "reproduce_log.jsonl"
NOT_RUN = "not run"


@dataclass
class ClaimResult:
    claim: Claim
    verdict: Verdict | None  # None: no runs
    runs: list[Run]  # every run of its arms, once
    figures: list[Path]
    arms: Arms | None = None  # its runs by arm name

    @property
    def outcome(self) -> str:
        return self.verdict.verdict if self.verdict else NOT_RUN


def read_log(folder: Path) -> tuple[dict[str, dict], list[str]]:
    """Per experiment, its last line of reproduce_log.jsonl with `wall_s` summed over every line of
    that experiment (a sweep interrupted and resumed took the time of all its invocations) and
    `invocations` counted; and notes on lines that could not be read."""
    path = folder / LOG_FILE
    entries, problems = {}, []
    if not path.is_file():
        return entries, problems
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            experiment = str(entry["experiment"])
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"{LOG_FILE}:{number} could not be read and was skipped")
            continue
        earlier = entries.get(experiment, {"wall_s": 0.0, "invocations": 0})
        wall = entry.get("wall_s")
        entries[experiment] = {
            **entry,
            "wall_s": earlier["wall_s"] + (wall if isinstance(wall, (int, float)) else 0.0),
            "invocations": earlier["invocations"] + 1,
        }
    return entries, problems


def evaluate(folder: Path, figures: Path | None = None, progress=lambda line: None) -> list[ClaimResult]:
    """Every claim's verdict from the runs its arms name under `folder` (analysis/arms.py); its figures go
    into `figures` (None: no figures)."""
    runs_in = folder_reader(folder)

    results = []
    for claim in CLAIMS:
        arms, runs = claim.runs(runs_in)
        if not runs:
            results.append(ClaimResult(claim, None, [], []))
            progress(f"{claim.id}: {NOT_RUN} (no runs of its arms in {', '.join(claim.experiments)}/)")
            continue
        verdict = claim.verdict(arms)
        paths = draw_figures(claim, arms, figures, progress) if figures is not None else []
        results.append(ClaimResult(claim, verdict, runs, paths, arms))
        progress(f"{claim.id}: {verdict.verdict} ({len(runs)} runs, {len(paths)} figures)")
    return results


def folder_reader(folder: Path):
    """runs_in(experiment) for a results folder: its <experiment>/ subfolder (as scripts/reproduce.py lays
    it out). A folder without any such subfolder (a `train.py -m` sweep's multirun folder) is read whole,
    each run by the experiment its summary names."""
    experiments = {e for claim in CLAIMS for e in claim.experiments}
    cache: dict[str, list[Run]] = {}
    laid_out = any((folder / e).is_dir() for e in experiments)
    everything = [] if laid_out else load_all(folder)

    def runs_in(experiment: str) -> list[Run]:
        if experiment not in cache:
            where = folder / experiment
            if laid_out:
                cache[experiment] = load_all(where) if where.is_dir() else []
            else:
                cache[experiment] = [run for run in everything if run_experiment(run) == experiment]
        return cache[experiment]

    return runs_in


def draw_figures(claim: Claim, arms: Arms, figures: Path, progress) -> list[Path]:
    """The claim's figures; one that cannot be drawn is reported and left out, not allowed to stop the report."""
    try:
        return claim.figures(arms, figures)
    except Exception as error:  # noqa: BLE001 - a figure is never worth losing the report over
        progress(f"{claim.id}: a figure could not be drawn ({type(error).__name__}: {error}); left out")
        return []


def shared_runs(results: list[ClaimResult]) -> dict[str, dict[str, int]]:
    """Per claim, the other claims it shares runs with and how many."""
    paths = {r.claim.id: {run.path for run in r.runs} for r in results}
    return {
        claim: {other: len(mine & theirs) for other, theirs in paths.items() if other != claim and mine & theirs}
        for claim, mine in paths.items()
    }


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_table(results: list[ClaimResult]) -> list[str]:
    lines = [
        "| claim | verdict | decided by: difference [95% interval] | seeds | data | steps | the source's number |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        v = r.verdict
        source = r.claim.source_number or "-"
        if v is None:
            continue  # listed in one line under the table
        settle = f" (about {v.seeds_needed} seeds per arm would settle it)" if v.seeds_needed else ""
        lines.append(
            f"| {r.claim.id} {_cell(r.claim.text)} | **{v.verdict}**{settle} | {_cell(v.key_numbers() or '-')} | "
            f"{v.seeds} | {_cell(v.dataset)} | {v.steps if v.steps is not None else '-'} | {_cell(source)} |"
        )
    return lines


def number_lines(numbers: dict) -> list[str]:
    lines = []
    for name, value in numbers.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {format_number(v)}" for k, v in value.items())
            lines.append(f"- {name}: {inner or 'n/a'}")
        else:
            lines.append(f"- {name}: {format_number(value)}")
    return lines


def status_counts(runs: list[Run]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def claim_section(r: ClaimResult, folder: Path, shared: dict[str, int]) -> list[str]:
    claim = r.claim
    arms = "; ".join(f"`{sweep.describe()}` ({claim.seeds_of(sweep.members[0])} seeds)" for sweep in claim.sweeps())
    lines = [
        f"## {claim.id} `{claim.slug}`: {claim.text}",
        "",
        f"Source: {claim.source}. Arms: {arms}.",
        "",
        f"Rule: {claim.rule}.",
    ]
    if claim.source_number:
        lines += ["", f"The source's number: {claim.source_number}."]
    lines.append("")
    if r.verdict is None:
        return lines + [f"**{NOT_RUN}**: no runs of its arms under {', '.join(f'`{e}/`' for e in claim.experiments)}.", ""]
    v = r.verdict
    if v.parts:
        lines += [f"**Verdict: {v.verdict}** (one verdict per statement).", ""]
        for i, (label, part) in enumerate(v.parts):
            lines += verdict_lines(part, f"{letter(i)} {label}: ")
    else:
        lines += verdict_lines(v, "")
    where = ", ".join(f"`{e}/`" for e in claim.experiments)
    sharing = ", ".join(f"{other} ({n})" for other, n in sorted(shared.items(), key=lambda kv: claim_order(kv[0])))
    lines += [
        f"Runs: {len(r.runs)} in {where} ({status_counts(r.runs)})"
        + (f"; shared with {sharing}" if sharing else "") + f"; data: {v.dataset}; steps: {v.steps if v.steps is not None else 'n/a'}.",
        "",
    ]
    lines += number_lines(v.numbers) + [""]
    for figure in r.figures:
        rel = figure.relative_to(folder).as_posix()
        lines += [f"![{claim.id}: {figure.stem}]({rel})", ""]
    return lines


def verdict_lines(v: Verdict, prefix: str) -> list[str]:
    """A verdict's outcome and note, what decided it and what else was measured."""
    outcome = f"{prefix}{v.verdict}" if prefix else f"Verdict: {v.verdict}"
    lines = [f"**{outcome}.** " + (v.note.strip() if v.decision is not None else v.explanation), ""]
    if v.decision is not None:
        leaves = deciding_parts(v.decision)
        how = "95% intervals" if any(leaf.is_comparison for leaf in leaves) else "recorded values against their limits"
        lines += [f"Decided by ({how}):", ""] + [f"- {leaf.line()}" for leaf in leaves] + [""]
    if v.secondary:
        lines += ["Also measured (shown, not deciding):", ""] + [f"- {s.line()}" for s in v.secondary] + [""]
    return lines


def protocol_warning(results: list[ClaimResult]) -> list[str]:
    """A paragraph above the verdicts when runs trained less than their experiment's protocol (a quick look
    with --steps) or with fewer seeds than the claims' defaults: their verdicts describe those runs only."""
    short = sorted({f"`{run.path.parent.name}` ({planned} of {protocol} steps)"
                    for r in results for run in r.runs
                    for planned, protocol in [(measures.planned_steps(run), protocol_steps(run.path.parent.name))]
                    if planned is not None and protocol is not None and planned < protocol})
    few = [f"{r.claim.id} ({r.verdict.seeds} of {r.claim.seeds})" for r in results
           if r.verdict is not None and 0 < r.verdict.seeds < r.claim.seeds]
    lines = []
    if short:
        lines.append("**A quick look, not the claims' evidence:** these runs train fewer steps than their experiments' "
                     f"protocols: {', '.join(short)}. The verdicts below describe these short runs only.")
    if few:
        lines.append(f"**Fewer seeds than the catalogue's defaults** (runs per arm, of the default): {', '.join(few)}.")
    return [" ".join(lines), ""] if lines else []


def protocol_steps(experiment: str) -> int | None:
    """train.steps of an experiment's own config (None for an epoch-based protocol or an unknown experiment)."""
    return _protocol_steps().get(experiment)


@functools.lru_cache(maxsize=1)
def _protocol_steps() -> dict[str, int]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    steps = {}
    configs = Path(__file__).resolve().parent.parent / "configs"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        for path in sorted((configs / "experiment").glob("*.yaml")):
            cfg = compose(config_name="train", overrides=[f"experiment={path.stem}"])
            if cfg.train.epochs is None:
                steps[path.stem] = int(cfg.train.steps)
    GlobalHydra.instance().clear()
    return steps


def claim_order(claim_id: str) -> int:
    return [c.id for c in CLAIMS].index(claim_id)


def method_section() -> list[str]:
    m = measures
    text = f"""## How the numbers are made

- Every number comes from the run records in this folder; each claim's module (`analysis/claims/`) applies its
  rule (`docs/claims.md`) to them, written in the vocabulary of `analysis/rules.py`.
- A claim reads the runs its named arms name (an experiment and settings each). A run that several claims need
  is trained once, with every probe they need, and each claim reads it: such runs are one piece of evidence,
  shown under each claim as "shared with".
- Each comparison is decided on the difference between two arms with its {CONFIDENCE:.0%} interval, never on
  whether two intervals overlap: Welch's interval (unequal variances) between arms, or the one-sample
  t interval of per-seed differences where the rule pairs runs by seed (runs of one seed see the same
  batches in the same order), or of one arm against a constant (chance, a threshold). "Higher" holds when
  the interval lies above 0 (or above the rule's margin), does not hold when it lies below, and is
  inconclusive otherwise; the two-sided p beside it tests the same boundary ("p 0.032 against +0.100" where
  a margin decides, against 0 where none is named). A tie is claimed only by an equivalence test: two
  one-sided tests at 5%, i.e. the 90% interval within the rule's margin. Intervals assume the seeds'
  values are roughly normal; with 5-10 seeds that is an approximation. A mean's own interval is
  mean ± t(0.975, n-1) · s / sqrt(n).
- Each claim has one primary decision (C4 makes two statements and gets a verdict for each). Where it needs
  several parts to all go its way, it holds when every part holds, each tested at 5%: an intersection-union
  test, so no correction is needed on that side. Rejecting it because one of k parts fails is a union of k
  tests, so that side is corrected by Holm's step-down procedure over the parts that are comparisons: sorted by
  the one-sided p-value of failing, the j-th smallest rejects only while p <= 0.025 / (k - j + 1). A part that
  fails alone but not after the correction reads "inconclusive" and says so. Conditions (no run diverged) and
  checks of recorded values are not tests and fail as they are. Comparisons shown as "also measured" are
  descriptive and do not change the verdict.
- Margins: "higher" and "lower" may be claimed beyond a stated margin, and ties or "about as well" only within
  one (an equivalence or non-inferiority test); each margin is stated with its reason in the claim's note below.
  Ratios (steps, gradient norms, the landscape measures) are compared on the log scale and shown as ratios.
- An inconclusive comparison says which way its observed difference points. Only where it points the claim's
  way does it give about how many seeds per arm would settle it: the n at which a test at 5% finds the observed
  difference (beyond the margin) 80% of the time, at the observed spread (normal approximation, plus one seed).
  Where it points against the claim, more seeds would more likely show that the claim does not hold.
- Effect sizes: accuracy differences in accuracy units (0.010 = one point); steps to a target counted per
  run at the first evaluation at or above it, and compared as the ratio BN / baseline for runs of the
  same seed (geometric mean over seeds, interval on the log scale). A run that never reaches its target
  counts as reaching it one evaluation after its end, so it is counted, not dropped. "Trains faster" and
  "ends higher" are separate questions.
- Checks of identities and tolerances (C5, C7, C8, C11, C12) compare one recorded value, the worst over the
  runs, with a stated limit: no interval, and the verdict's "seeds" counts the runs checked.
- Runs that failed or never finished are left out; diverged runs (non-finite loss) have no final accuracy:
  they are counted, and a diverged run in an arm that must train makes that part not hold.
- Chance is 1 / classes; "at chance": within ±{m.NEAR_CHANCE:g} (equivalence); "well above chance": more than
  {m.WELL_ABOVE_CHANCE:g} above it. Fig. 1's learning rate is lr_mult=1; an arm's tuned lr_mult is the one with the
  best mean final test accuracy (settings with a diverged run are not candidates).

Claim by claim, the margins and measures each rule adds (from its module):

"""
    lines = text.splitlines() + [f"- {claim.id}: {claim.method}" for claim in CLAIMS if claim.method]
    return lines + [""]


def runs_by_experiment(results: list[ClaimResult]) -> dict[str, list[Run]]:
    """Every run the claims read, once, by the experiment folder it lies in."""
    out: dict[str, dict] = {}
    for r in results:
        for run in r.runs:
            out.setdefault(run.path.parent.name, {})[run.path] = run
    return {experiment: list(runs.values()) for experiment, runs in out.items()}


def runs_section(results: list[ClaimResult], folder: Path) -> list[str]:
    log, problems = read_log(folder)
    by_experiment = runs_by_experiment(results)
    experiments = sorted(set(by_experiment) | set(log))
    lines = ["## The runs: commands, time, code", ""]
    if not log:
        lines += [f"No `{LOG_FILE}` in this folder: the commands and the time the sweeps took are unknown.", ""]
    lines += [
        "| experiment | runs read | jobs' own time (sum of wall_s) | last command | jobs (already complete) | sweep wall time "
        "| return code | launcher | finished at |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    total = 0.0
    for experiment in experiments:
        runs = by_experiment.get(experiment, [])
        own = sum(r.summary["wall_s"] for r in runs if isinstance(r.summary.get("wall_s"), (int, float)))
        entry = log.get(experiment)
        if entry is None:
            lines.append(f"| `{experiment}` | {len(runs)} | {_duration(own)} | unknown | - | unknown | - | - | - |")
            continue
        wall = entry.get("wall_s")
        total += wall if isinstance(wall, (int, float)) else 0.0
        lines.append(
            f"| `{experiment}` | {len(runs)} | {_duration(own)} | `{_cell(_portable(entry.get('command', '?'), experiment, folder))}` | "
            f"{entry.get('jobs', '?')} ({entry.get('already_complete', '?')}) | {_duration(wall)}{_invocations(entry)} | "
            f"{entry.get('returncode', '?')} | {_cell(entry.get('launcher', '?'))} | "
            f"{_cell(entry.get('finished_at', '?'))} |"
        )
    lines.append("")
    if log:
        lines += [f"Total wall time of the logged sweeps: {_duration(total)}.", ""]
    lines += [f"- {p}" for p in problems] + ([""] if problems else [])
    versions: dict[str, int] = {}
    for run in (run for runs in by_experiment.values() for run in runs):
        version = str(run.summary.get("git") or "unknown")
        versions[version] = versions.get(version, 0) + 1
    lines += ["Code version(s) of the runs (`git` in summary.json; `-dirty`: uncommitted changes):", ""]
    lines += [f"- `{v}`: {n} runs" for v, n in sorted(versions.items())] or ["- none"]
    return lines + [""]


def _portable(command: str, experiment: str, folder: Path) -> str:
    """The logged command with the absolute folder it wrote to (hydra.sweep.dir=<abs>/<experiment>) shown as
    this results folder (relative to the repository when inside it), so the command reads the same on any
    machine, from any working directory and after the folder is moved."""
    found = re.search(rf"hydra\.sweep\.dir=(\S+)/{re.escape(experiment)}(?:\s|$)", command)
    if not found:
        return command
    try:
        shown = folder.resolve().relative_to(REPOSITORY).as_posix()
    except ValueError:
        shown = folder.resolve().as_posix()
    return command.replace(found.group(1) + "/", shown + "/")


def _invocations(entry: dict) -> str:
    n = entry.get("invocations", 1)
    return f" over {n} invocations (interrupted, then resumed)" if n > 1 else ""


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "unknown"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def catalogues_beside(folder: Path) -> list[Path]:
    """The other results folders beside this one, named after a data set and holding a reproduce log (as
    results/mnist beside results/fashion_mnist): the same catalogue on other data sets, which the report
    links to whichever folders it is asked to write."""
    if folder.name not in DATASETS:
        return []
    return sorted(p for p in folder.parent.iterdir() if p.is_dir() and p.name != folder.name and p.name in DATASETS
                  and (p / LOG_FILE).is_file())


def render(results: list[ClaimResult], folder: Path) -> str:
    datasets = sorted(
        {d.strip() for r in results if r.verdict for d in r.verdict.dataset.split(",") if d.strip() != "n/a"}
    )
    lines = [
        f"# Reproduction report: `{folder.name}`",
        "",
        "Claim by claim, whether batch normalization does what the papers say, computed from the runs in this "
        "folder by `python scripts/report.py` (claims, sources and rules: `docs/claims.md`). "
        f"Data: {', '.join(datasets) or 'none'}."
        + "".join(f" The same catalogue on another data set: [`{Path(os.path.relpath(other, folder)).as_posix()}/"
                  f"{REPORT_FILE}`]({Path(os.path.relpath(other, folder)).as_posix()}/{REPORT_FILE})."
                  for other in catalogues_beside(folder)),
        "",
        "## Verdicts",
        "",
    ]
    lines += protocol_warning(results) + verdict_table(results) + [""]
    failed = [r for r in results if r.verdict and r.verdict.failed]
    unclear = [r for r in results if r.verdict and r.verdict.open]
    if failed:
        lines += ["Did not reproduce:", ""] + [f"- {r.claim.id}: {r.verdict.why_not()}" for r in failed] + [""]
    if unclear:
        lines += ["Inconclusive:", ""] + [f"- {r.claim.id}: {r.verdict.why_not()}" for r in unclear] + [""]
    not_run = [r.claim.id for r in results if r.verdict is None]
    if not_run:
        lines += [f"Not run (no runs of their arms in this folder): {', '.join(not_run)}.", ""]
    lines += method_section()
    shared = shared_runs(results)
    for r in results:
        if r.verdict is not None:
            lines += claim_section(r, folder, shared.get(r.claim.id, {}))
    lines += runs_section(results, folder)
    return "\n".join(lines).rstrip("\n") + "\n"


README_START = (
    "<!-- results: written by `python scripts/report.py <folder> [<folder> ...] --readme README.md`; not edited by hand -->"
)
README_END = "<!-- end of results -->"
README_FIGURES = ("c1_convergence.png", "c2_percentiles.png")


def short_verdict(v: Verdict | None) -> str:
    """A verdict and the differences that decided it, briefly: "**holds**: +0.020 [+0.008, +0.031]; ratio 0.10 [...]"."""
    if v is None:
        return f"**{NOT_RUN}**"
    if v.parts:
        return " ".join(f"{letter(i)} {short_verdict(part)}" for i, (_, part) in enumerate(v.parts))
    numbers = [leaf.brief() for leaf in (deciding_parts(v.decision) if v.decision else []) if leaf.is_comparison]
    text = f"**{v.verdict}**"
    if v.seeds_needed:
        text += f" (about {v.seeds_needed} seeds per arm would settle it)"
    return text + (": " + "; ".join(numbers) if numbers else "")


def readme_block(folders: list[tuple[Path, list[ClaimResult]]], readme_dir: Path) -> str:
    """The README's results: Fig. 1 (a and b,c) of the first data set, one verdict column per data set with
    the differences that decided it, what did not reproduce on the first data set and why, and how long
    each catalogue took, all from the same runs as the reports."""
    lines = [README_START, ""]
    for folder, results in folders:
        log, _ = read_log(folder)
        where = Path(os.path.relpath(folder, readme_dir)).as_posix()
        runs = len({run.path for r in results for run in r.runs})  # a run several claims share counts once
        total = sum(e["wall_s"] for e in log.values())
        lines.append(f"- {data_name(results)}: [`{where}/REPORT.md`]({where}/REPORT.md), {runs} runs, "
                     f"{_duration(total) if log else 'an unknown time'} of wall time on the 2-core machine this "
                     "project is developed on, two jobs at a time.")
    lines.append("")
    first, first_results = folders[0]
    where = Path(os.path.relpath(first, readme_dir)).as_posix()
    figures = [name for name in README_FIGURES if (first / FIGURES_DIR / name).is_file()]
    lines += [f"![{Path(name).stem}]({where}/{FIGURES_DIR}/{name})" for name in figures] + ([""] if figures else [])
    header = ["claim", *(data_name(results) for _, results in folders), "the source's number"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for i, r in enumerate(first_results):
        cells = [f"{r.claim.id} {_cell(r.claim.text)}", *(_cell(short_verdict(results[i].verdict)) for _, results in folders),
                 _cell(r.claim.source_number or "-")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    failed = [r for r in first_results if r.verdict and r.verdict.failed]
    if failed:
        lines += [f"Where a claim did not reproduce on {data_name(first_results)}, and why:", ""]
        lines += [f"- {r.claim.id}: {r.verdict.why_not()}" for r in failed] + [""]
    return "\n".join(lines + [README_END])


def data_name(results: list[ClaimResult]) -> str:
    names = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "digits": "digits", "cifar10": "CIFAR-10"}
    found = sorted({d.strip() for r in results if r.verdict for d in r.verdict.dataset.split(",") if d.strip() != "n/a"})
    return ", ".join(names.get(d, d) for d in found) or "no data"


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the README's result markers (both must be there) by `block`."""
    text = readme.read_text()
    start, end = text.find("<!-- results:"), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no results markers ({README_START!r} ... {README_END!r})")
    readme.write_text(text[:start] + block + text[end + len(README_END):])


def evaluate_and_draw(folder: Path, progress=lambda line: None) -> list[ClaimResult]:
    """The claims' results on the folder's runs, with their figures drawn afresh into <folder>/figures."""
    figures = folder / FIGURES_DIR
    if figures.is_dir():  # figures of claims that lost their runs must not linger
        for old in figures.glob("*.png"):
            old.unlink()
    return evaluate(folder, figures, progress)


def write_report(folder: str | Path, progress=lambda line: None, results: list[ClaimResult] | None = None) -> Path:
    """<folder>/REPORT.md and its figures (drawn here unless the folder's `results` are given)."""
    folder = Path(folder)
    path = folder / REPORT_FILE
    path.write_text(render(results if results is not None else evaluate_and_draw(folder, progress), folder))
    return path


HELP = """Writes <folder>/REPORT.md and <folder>/figures/*.png: every claim's verdict from the runs its arms
name (analysis/claims/), with the differences and intervals that decided it. A folder laid out by
scripts/reproduce.py (<folder>/<experiment>/<job>/) or a `python train.py -m` sweep's multirun folder (its runs
are sorted into the claims' arms by the experiment each ran). Claims without runs are listed in one line.
--readme README.md also writes the folders' verdicts between the README's results markers."""


def main(argv: list[str]) -> int:
    readme = None
    if "--readme" in argv:
        at = argv.index("--readme")
        if at + 1 >= len(argv):
            print("error: --readme needs a file, e.g. --readme README.md", file=sys.stderr)
            return 2
        readme, argv = Path(argv[at + 1]), argv[:at] + argv[at + 2:]
    usage = "usage: python scripts/report.py <results folder> [<results folder> ...] [--readme README.md]"
    if argv and argv[0] in ("-h", "--help"):
        print(usage + "\n\n" + HELP)
        return 0
    if not argv or any(a.startswith("-") for a in argv):
        print(f"error: {usage}", file=sys.stderr)
        return 2
    folders = [Path(a) for a in argv]
    for folder in folders:
        if not folder.is_dir():
            print(f"error: results folder {folder} does not exist", file=sys.stderr)
            return 2
    if readme is not None and "<!-- results:" not in (readme.read_text() if readme.is_file() else ""):
        print(f"error: {readme} has no results markers to write between", file=sys.stderr)
        return 2
    evaluated = []
    for folder in folders:
        results = evaluate_and_draw(folder, progress=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"wrote {write_report(folder, results=results)}")
        evaluated.append((folder, results))
    if readme is not None:
        update_readme(readme, readme_block(evaluated, readme.resolve().parent))
        print(f"wrote the results into {readme}")
    return 0
