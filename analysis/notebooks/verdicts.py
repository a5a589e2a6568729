# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The verdicts, claim by claim
#
# The same computation as `scripts/report.py`: each claim's rule (docs/claims.md) applied to its runs by
# its module under `analysis/claims/`. Point `RESULTS` at a results folder, or set `BN_RESULTS`.

# %%
import os
import sys
from pathlib import Path

RESULTS = os.environ.get("BN_RESULTS", "results/mnist")

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "analysis" / "claims").is_dir())
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / RESULTS  # an absolute RESULTS stays as it is

# %%
import pandas as pd

from analysis.report import NOT_RUN, evaluate
from analysis.verdict import format_number

results = evaluate(RESULTS)  # no figures: see the report or the other notebooks
pd.DataFrame(
    [
        {
            "claim": r.claim.id,
            "verdict": r.outcome,
            "seeds": r.verdict.seeds if r.verdict else None,
            "data": r.verdict.dataset if r.verdict else None,
            "key numbers": r.verdict.key_numbers() if r.verdict else "",
        }
        for r in results
    ]
)

# %% [markdown]
# ## Each claim: its rule, the verdict and every number it rests on

# %%
for r in results:
    print(f"{r.claim.id} {r.claim.text}\n  rule: {r.claim.rule}")
    if r.verdict is None:
        print(f"  {NOT_RUN}\n")
        continue
    print(f"  verdict: {r.verdict.verdict}. {r.verdict.explanation}")
    for name, value in r.verdict.numbers.items():
        shown = {k: format_number(v) for k, v in value.items()} if isinstance(value, dict) else format_number(value)
        print(f"    {name}: {shown}")
    print()
