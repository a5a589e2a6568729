"""A claim's verdict: the type every rule returns, and the ways a rule builds one.

A verdict is "holds", "does not hold" or "inconclusive", with the comparison that decided it (a
`Result` of analysis/rules.py, its parts the comparisons and conditions it rests on), what else was
measured ("also measured": shown, not deciding), the numbers behind it and one sentence saying why.
The claim's id is filled in by the catalogue (analysis/claims/) that asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.measures import cfg, planned_steps
from analysis.rules import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Result
from analysis.runs import Run
from analysis.stats import Estimate


@dataclass
class Verdict:
    verdict: str
    explanation: str
    numbers: dict[str, Any] = field(default_factory=dict)  # name -> Estimate, number, text or nested dict
    key: list[str] = field(default_factory=list)  # the names in `numbers` that the verdict table shows
    seeds: int = 0  # fewest finished runs in any arm the rule compares
    dataset: str = "n/a"
    steps: int | str | None = None  # one number, or "fewest-most" where the runs differ
    decision: Result | None = None  # the primary comparison (or combination) that decided it
    secondary: list[Result] = field(default_factory=list)  # shown, not deciding
    note: str = ""  # what the rule adds to its parts: a cause, a caveat
    claim: str = ""  # the claim's id, filled in by the catalogue
    parts: list[tuple[str, "Verdict"]] = field(default_factory=list)  # a claim of two statements: one verdict each

    @property
    def outcomes(self) -> set[str]:
        """Its outcome, or each part's for a claim with a verdict per statement."""
        return {v.verdict for _, v in self.parts} if self.parts else {self.verdict}

    @property
    def failed(self) -> bool:
        return DOES_NOT_HOLD in self.outcomes

    @property
    def open(self) -> bool:
        return not self.failed and INCONCLUSIVE in self.outcomes

    def why_not(self) -> str:
        """What kept the claim from holding: its parts that did not hold (or are open), and the rule's note."""
        if self.parts:
            return " ".join(f"{letter(i)} {label}: {v.why_not()}" for i, (label, v) in enumerate(self.parts)
                            if v.verdict != HOLDS)
        if self.decision is None:
            return self.explanation
        open_parts = [leaf.line() for leaf in deciding_parts(self.decision) if leaf.outcome != HOLDS]
        return capital(self.verdict) + " " + "; ".join(open_parts) + "." + self.note

    def key_numbers(self) -> str:
        """The verdict table's cell: each comparison that decided it (and any condition that failed), then
        the rule's own key numbers."""
        if self.parts:
            return " ".join(f"{letter(i)} {v.key_numbers()}" for i, (_, v) in enumerate(self.parts))
        leaves = deciding_parts(self.decision) if self.decision else []
        parts = [f"{leaf.brief()} ({leaf.outcome})" if leaf.is_comparison else leaf.line(seeds=False)
                 for leaf in leaves if leaf.is_comparison or leaf.outcome != HOLDS]
        parts += [f"{name} {format_number(self.numbers[name])}" for name in self.key if name in self.numbers]
        return "; ".join(parts)

    @property
    def seeds_needed(self) -> int | None:
        return self.decision.seeds_needed if self.decision and self.verdict == INCONCLUSIVE else None


def letter(i: int) -> str:
    return f"({'abcdefgh'[i]})"


def split(parts: list[tuple[str, Verdict]]) -> Verdict:
    """The verdict of a claim that makes several statements, one verdict each ("(a) holds; (b) does not
    hold"), none combined into another: its numbers and runs are the parts' together."""
    first = parts[0][1]
    numbers = {k: v for _, part in parts for k, v in part.numbers.items()}
    return Verdict("; ".join(f"{letter(i)} {v.verdict}" for i, (_, v) in enumerate(parts)),
                   " ".join(f"{letter(i)} {label}: {v.explanation}" for i, (label, v) in enumerate(parts)),
                   numbers, [], min(v.seeds for _, v in parts), first.dataset, first.steps, parts=list(parts))


def deciding_parts(result: Result) -> list[Result]:
    """The comparisons a decision rests on: a combination's parts (recursively), or the result itself."""
    if not result.parts:
        return [result]
    return [leaf for part in result.parts for leaf in deciding_parts(part)]


def format_number(value) -> str:
    if isinstance(value, (Estimate,)) or hasattr(value, "format"):
        return value.format()
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if (abs(value) < 1e-3 or abs(value) >= 1e4) and value != 0 else f"{value:.3f}"
    return str(value)


def describe(runs: list[Run]) -> tuple[str, int | str | None]:
    """(data sets, steps) of these runs: the steps as one number, or "fewest-most" where they differ."""
    names = sorted({str(cfg(r, "dataset.name")) for r in runs if cfg(r, "dataset.name")})
    steps = [s for s in map(planned_steps, runs) if s is not None]
    if not steps:
        return (", ".join(names) or "n/a", None)
    return (", ".join(names) or "n/a", max(steps) if min(steps) == max(steps) else f"{min(steps)}-{max(steps)}")


def verdict(outcome: str, explanation: str, runs: list[Run], numbers: dict, key: list[str], seeds: int) -> Verdict:
    dataset, steps = describe(runs)
    return Verdict(outcome, explanation, numbers, key, seeds, dataset, steps)


def decided(decision: Result, runs: list[Run], numbers: dict, key: list[str] = (),
            secondary: list[Result] = (), note: str = "", seeds: int | None = None) -> Verdict:
    """The verdict a rule's decision gives: its outcome, a sentence from its parts, and the fewest runs
    per arm behind them (`seeds`, for checks of single runs that compare no arms)."""
    leaves = deciding_parts(decision)
    ns = [n for leaf in leaves if leaf.difference for n in (leaf.difference.a_n, leaf.difference.b_n) if n]
    ns += [seeds] if seeds is not None else []
    explanation = capital(decision.outcome) + " " + "; ".join(leaf.line() for leaf in leaves) + "." + note
    dataset, steps = describe(runs)
    return Verdict(decision.outcome, explanation, numbers, list(key), min(ns, default=0), dataset, steps,
                   decision, list(secondary), note)


def no_runs(runs: list[Run], what: str) -> Verdict:
    return verdict(INCONCLUSIVE, f"Inconclusive: {what}.", runs, {}, [], 0)


def capital(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ":")
