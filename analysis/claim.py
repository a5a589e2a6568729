"""What a claim module declares: its catalogue entry, its named arms, its rule and its figures.

A claim lives in one module under analysis/claims/, named `c<number>_<slug>.py`, that defines
`CLAIM = Claim(...)`. The number and slug come from the file name, so copying a module under a new
name adds a claim; nothing else lists them (analysis/claims/__init__.py finds them).

- `arms`: the runs it reads, each an experiment plus settings plus the probes it needs, by name
  (analysis/arms.py). The plan (scripts/reproduce.py), the verdict, the figures, the notebooks and the
  report's "shared with" lines all read these.
- `decide(arms)`: the rule, written in the vocabulary of analysis/rules.py; `arms` maps each arm's
  name to its runs. It returns an analysis.verdict.Verdict.
- `draw(arms, folder)`: the claim's figures, written into `folder`; returns their paths.
- `method`: the claim's note for the report's method section (its margins and measures, with reasons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

from analysis.arms import Arm, collapse, runs_by_arm, union
from analysis.runs import Run

DEFAULT_SEEDS = 5  # seeds per arm; the headline claims C1-C3 take HEADLINE_SEEDS
HEADLINE_SEEDS = 10

Arms = dict[str, list[Run]]


def no_figures(arms: Arms, folder: Path) -> list[Path]:
    return []


@dataclass(frozen=True)
class Claim:
    text: str  # the claim in one line
    source: str  # where it comes from
    protocol: str  # how it is tested (defaults; all are config)
    rule: str  # how runs become a verdict, in words
    arms: tuple[Arm, ...]  # named; claims naming the same job share its run
    decide: Callable[[Arms], "object"]  # arms by name -> analysis.verdict.Verdict
    draw: Callable[[Arms, Path], list[Path]] = no_figures
    source_number: str | None = None  # the source's own number, shown beside ours in the report
    seeds: int = DEFAULT_SEEDS  # seeds per arm unless the arm says otherwise
    method: str = ""  # the claim's lines in the report's method section
    id: str = ""  # C1, C2, ...: from the module's file name
    slug: str = ""  # the catalogue's short name: from the module's file name
    module: ModuleType | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        names = [arm.name for arm in self.arms]
        if "" in names or len(set(names)) != len(names):
            raise ValueError(f"every arm of a claim needs a name of its own, got {names}")

    @property
    def experiments(self) -> tuple[str, ...]:
        """The experiments (configs/experiment/<name>.yaml, results/<data>/<name>/) its arms read, in order."""
        return tuple(dict.fromkeys(arm.experiment for arm in self.arms))

    def seeds_of(self, arm: Arm) -> int:
        return arm.seeds if arm.seeds is not None else self.seeds

    def arm(self, name: str) -> Arm:
        return next(arm for arm in self.arms if arm.name == name)

    def sweeps(self):
        """The arms as the sweeps they form (analysis.arms.collapse), for one-line descriptions."""
        return collapse(self.arms)

    def runs(self, runs_in: Callable[[str], list[Run]]) -> tuple[Arms, list[Run]]:
        """(runs by arm name, every run once) of the runs `runs_in(experiment)` gives per experiment folder."""
        return runs_by_arm(self.arms, runs_in), union(self.arms, runs_in)

    def figures(self, arms: Arms, folder: Path) -> list[Path]:
        """The claim's figures, each captioned with the claim, its data set and its seeds per arm."""
        from analysis import plots  # matplotlib: only when figures are drawn

        with plots.captioned(self.caption(arms)):
            return self.draw(arms, folder)

    def caption(self, arms: Arms) -> str:
        """"C1 · data: mnist · seeds per arm: 10 (no BN, lr grid: 5; ...) · shaded bands and bars: 95% intervals"."""
        runs = [run for members in arms.values() for run in members]
        data = sorted({str((run.config.get("dataset") or {}).get("name")) for run in runs} - {"None"})
        seeds = {name: len({run.summary.get("seed") for run in members if run.status in ("completed", "diverged")})
                 for name, members in arms.items() if members}
        common = max(set(seeds.values()), key=list(seeds.values()).count) if seeds else 0
        others = "; ".join(f"{name}: {n}" for name, n in seeds.items() if n != common)
        return (f"{self.id} · data: {', '.join(data) or 'n/a'} · seeds per arm: {common}"
                + (f" ({others})" if others else "") + " · bands and bars: 95% intervals over seeds")

    def verdict(self, arms: Arms):
        """The rule's verdict on these runs, with the claim's id on it."""
        result = self.decide(arms)
        result.claim = self.id
        return result
