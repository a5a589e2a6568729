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
# Test accuracy over training, mean over seeds with a 95% Student-t band, with and without BN.
# Point `RESULTS` at a results folder (`scripts/reproduce.py --out ...`), or set `BN_RESULTS`.

# %%
import os
import sys
from pathlib import Path

RESULTS = os.environ.get("BN_RESULTS", "results/mnist")

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "analysis" / "claims.py").is_file())
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / RESULTS  # an absolute RESULTS stays as it is
FIGURES = Path(os.environ.get("BN_NOTEBOOK_FIGURES", ROOT / "outputs" / "notebook_figures"))

# %%
from IPython.display import Image, display

from analysis import plots
from analysis.figures import fig1_curves, lr_mult_curves, lr_steps
from analysis.stats import mean_interval
from analysis.tables import group_by_settings, load_all, runs_table

fig1 = load_all(RESULTS / "fig1_mnist")
print(f"{len(fig1)} runs in {RESULTS / 'fig1_mnist'}")

# %% [markdown]
# ## Fig. 1a: the Fig. 1 learning rate (`optim.lr_mult=1`)

# %%
curves = fig1_curves(fig1)
if curves:
    display(Image(plots.convergence(curves, FIGURES / "fig1a.png", "Fig. 1a: test accuracy at lr x1 (mean, 95% band)")))
    for label, frame in curves.items():
        print(label, "last eval:", frame.iloc[-1].to_dict())

# %% [markdown]
# ## Final test accuracy per swept setting (mean [95% interval] over seeds)

# %%
table = runs_table(fig1) if fig1 else None
for settings, rows in group_by_settings(table) if table is not None else []:
    print(settings, mean_interval(rows.loc[rows["status"] == "completed", "final_test_acc"]).format())

# %% [markdown]
# ## Each arm over its learning-rate grid, and the lr_multiplier experiment (C3)

# %%
grid, styles = lr_mult_curves(fig1)
if grid:
    display(Image(plots.convergence(grid, FIGURES / "fig1_grid.png", "Fig. 1 net over its lr grid", styles=styles)))

lr_runs = load_all(RESULTS / "lr_multiplier")
print(f"{len(lr_runs)} runs in lr_multiplier/")
lr_grid, styles = lr_mult_curves(lr_runs)
if lr_grid:
    title = "Test accuracy per lr multiplier"
    display(Image(plots.convergence(lr_grid, FIGURES / "lr_multiplier.png", title, styles=styles)))
arms, target = lr_steps(lr_runs)
if arms:
    print("steps to reach no-BN x1's final accuracy:", arms)
    display(Image(plots.steps_by_lr_mult(arms, FIGURES / "steps_by_lr.png", f"target {target:.3f}")))
