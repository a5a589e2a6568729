"""The claims catalogue: one registry that the experiments, the reproduce script, the verdicts and
the report all read. Each claim names the experiment (configs/experiment/<name>.yaml) whose runs
test it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    id: str  # C1, C2, ...
    slug: str  # the catalogue's short name
    experiment: str  # configs/experiment/<experiment>.yaml


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "fig1_convergence", "fig1_mnist"),
    Claim("C2", "fig1_distributions", "fig1_mnist"),
    Claim("C3", "lr_multiplier", "lr_multiplier"),
    Claim("C4", "poor_init", "poor_init"),
    Claim("C5", "scale_invariance", "scale_invariance"),
    Claim("C6", "placement", "placement"),
    Claim("C7", "test_time_stats", "test_time_stats"),
    Claim("C8", "bias_redundancy", "scale_invariance"),
    Claim("C9", "dropout", "dropout"),
    Claim("C10", "saturation", "saturation"),
    Claim("C11", "insert_pretrained", "insert_pretrained"),
    Claim("C12", "bn_math", "bn_math"),
    Claim("C13", "sigmoid_depth", "sigmoid_depth"),
)
CLAIMS_BY_ID = {claim.id: claim for claim in CLAIMS}


def experiments_for(claim_ids: list[str]) -> list[str]:
    """The experiments that test these claims, each once, in catalogue order."""
    unknown = [c for c in claim_ids if c not in CLAIMS_BY_ID]
    if unknown:
        raise ValueError(f"unknown claim(s) {', '.join(unknown)}; choose from {', '.join(CLAIMS_BY_ID)}")
    wanted = {CLAIMS_BY_ID[c].experiment for c in claim_ids}
    return list(dict.fromkeys(c.experiment for c in CLAIMS if c.experiment in wanted))
