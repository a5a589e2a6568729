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
# # Convergence: Fig. 1a and the learning-rate multipliers (C1, C3)
#
# Each section reads one claim's arms (`analysis/claims/`), as the report does.
# Point `RESULTS` at a results folder (`scripts/reproduce.py --out ...`), or set `BN_RESULTS`.

# %%
import os
import sys
from pathlib import Path

RESULTS = os.environ.get("BN_RESULTS", "results/mnist")

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "analysis" / "claims").is_dir())
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / RESULTS  # an absolute RESULTS stays as it is
FIGURES = Path(os.environ.get("BN_NOTEBOOK_FIGURES", ROOT / "outputs" / "notebook_figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
PROMISED = ["c1_convergence.png", "c1_lr_grid.png", "c3_steps_by_lr.png", "c3_curves.png"]
drawn = []

# %%
from IPython.display import Image, display

from analysis.claims import CLAIMS_BY_ID
from analysis.measures import cfg, final_acc, select
from analysis.notebook import claim_arms, report_drawn

# %% [markdown]
# ## C1, Fig. 1a: BN and no BN at the Fig. 1 learning rate, and each over its lr grid

# %%
c1 = claim_arms(RESULTS, "C1")
if c1:
    drawn += CLAIMS_BY_ID["C1"].figures(c1, FIGURES)
    for name, runs in c1.items():
        for mult in sorted({cfg(r, "optim.lr_mult") for r in runs}):
            print(f"{name}, lr x{mult:g}: final test accuracy {final_acc(select(runs, optim__lr_mult=mult)).format()}")

# %% [markdown]
# ## C3: the learning-rate multipliers x1, x5, x30

# %%
c3 = claim_arms(RESULTS, "C3")
if c3:
    drawn += CLAIMS_BY_ID["C3"].figures(c3, FIGURES)

# %%
for path in drawn:
    display(Image(path))
missing = report_drawn(drawn, PROMISED)
