"""What the notebooks share: a claim's runs by arm, found the way the report finds them, said out loud.

A notebook section reads one claim's arms (`claim_arms`), draws its figures and says what it drew;
a section whose claim has no runs in the folder says so in capitals instead of drawing nothing quietly.
"""

from __future__ import annotations

from pathlib import Path

from analysis.claim import Arms
from analysis.claims import CLAIMS_BY_ID
from analysis.report import folder_reader

_readers: dict[Path, object] = {}


def runs_in(folder: Path, experiment: str) -> list:
    """The runs of one experiment in a results (or multirun) folder, read as the report reads them, once
    per session."""
    folder = Path(folder)
    if folder not in _readers:
        _readers[folder] = folder_reader(folder)
    return _readers[folder](experiment)


def claim_arms(results: Path, claim_id: str) -> Arms:
    """The claim's runs by arm name under `results`, with one line saying how many each arm has."""
    claim = CLAIMS_BY_ID.get(claim_id)
    if claim is None:
        print(f"NO CLAIM {claim_id} in analysis/claims/: this section draws nothing")
        return {}
    arms, runs = claim.runs(lambda experiment: runs_in(results, experiment))
    if not runs:
        where = ", ".join(f"{e}/" for e in claim.experiments)
        print(f"{claim_id}: NO RUNS of its arms in {results} ({where}): this section draws nothing")
        return {}
    counts = ", ".join(f"{name}: {len(members)}" for name, members in arms.items())
    print(f"{claim_id}: {len(runs)} runs ({counts})")
    return arms


def report_drawn(drawn: list[Path], promised: list[str]) -> list[str]:
    """Print which promised figures were drawn and which were not; return the missing ones."""
    names = {Path(p).name for p in drawn}
    missing = [name for name in promised if name not in names]
    print(f"drew {len(promised) - len(missing)} of the {len(promised)} figures this notebook promises"
          + (f"; NOT DRAWN: {', '.join(missing)}" if missing else ""))
    return missing
