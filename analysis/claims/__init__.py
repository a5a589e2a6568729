"""The catalogue: every claim module in this package, found by its file name `c<number>_<slug>.py`.

No list to edit: adding a module adds its claim to the plan (scripts/reproduce.py), the report and
docs/claims.md; removing one removes it. Each module defines `CLAIM` (analysis/claim.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import replace

from analysis.claim import DEFAULT_SEEDS, HEADLINE_SEEDS, Claim  # noqa: F401 (re-exported)

MODULE_NAME = re.compile(r"c(\d+)_(\w+)")


def discover() -> tuple[Claim, ...]:
    """Every claim module's CLAIM, with its id and slug from the module's name, in the order of their numbers."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = MODULE_NAME.fullmatch(info.name)
        if not match:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        claim = getattr(module, "CLAIM", None)
        if not isinstance(claim, Claim):
            raise TypeError(f"analysis/claims/{info.name}.py defines no CLAIM = Claim(...)")
        found.append(replace(claim, id=f"C{int(match.group(1))}", slug=match.group(2), module=module))
    ids = [claim.id for claim in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"two claim modules have the same number: {', '.join(duplicates)}")
    return tuple(sorted(found, key=lambda claim: int(claim.id[1:])))


CLAIMS: tuple[Claim, ...] = discover()
CLAIMS_BY_ID = {claim.id: claim for claim in CLAIMS}


def experiments_for(claim_ids: list[str]) -> list[str]:
    """The experiments that test these claims, each once, in catalogue order."""
    unknown = [c for c in claim_ids if c not in CLAIMS_BY_ID]
    if unknown:
        raise ValueError(f"unknown claim(s) {', '.join(unknown)}; choose from {', '.join(CLAIMS_BY_ID)}")
    wanted = {e for c in claim_ids for e in CLAIMS_BY_ID[c].experiments}
    return [e for e in dict.fromkeys(e for c in CLAIMS for e in c.experiments) if e in wanted]
