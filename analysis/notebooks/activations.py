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
# # Activations: Fig. 1b,c, saturation, per-layer scale at initialization (C2, C4, C10)
#
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
from analysis.figures import arm_curve, c4_arms, percentile_panels
from analysis.tables import load_all
from analysis.verdicts import finished, hidden_layers, scale_by_depth, select, unit_drift

fig1 = load_all(RESULTS / "fig1_mnist")
print(f"{len(fig1)} runs in fig1_mnist/")

# %% [markdown]
# ## Fig. 1b,c: the 15/50/85th percentiles of one sigmoid's input, without and with BN

# %%
panels = percentile_panels(fig1)
if panels:
    display(
        Image(plots.percentile_bands(panels, FIGURES / "fig1bc.png", "Input to one sigmoid of the last hidden layer"))
    )
for run in finished(select(fig1, optim__lr_mult=1)):
    print(run.path.name, "drift score:", unit_drift(run))

# %% [markdown]
# ## Saturation and gradient balance over training (C10)

# %%
saturation = load_all(RESULTS / "saturation")
print(f"{len(saturation)} runs in saturation/")
for placement, label in (("none", "no BN"), ("before", "BN before")):
    arm = select(saturation, bn__placement=placement)
    layers = hidden_layers(arm[0], r"sat/([^/]+)") if arm else []
    curves = {f"{label}, {layer}": arm_curve(arm, f"sat/{layer}") for layer in layers}
    if curves:
        display(
            Image(
                plots.convergence(
                    curves,
                    FIGURES / f"saturation_{placement}.png",
                    f"Saturated fraction, {label}",
                    ylabel="saturated fraction",
                )
            )
        )

# %% [markdown]
# ## Pre-activation scale by depth at initialization (C4 and the Fig. 1 net)

# %%
poor = load_all(RESULTS / "poor_init")
scales = {label: scale_by_depth(finished(arm)) for label, arm in c4_arms(poor).items()}
scales = {k: v for k, v in scales.items() if v}
if scales:
    display(
        Image(plots.scale_by_depth(scales, FIGURES / "poor_init_scale.png", "Poor init: pre-activation std at step 0"))
    )
fig1_scales = {
    label: scale_by_depth(finished(select(fig1, bn__placement=p)))
    for p, label in (("none", "no BN"), ("before", "BN before"))
}
fig1_scales = {k: v for k, v in fig1_scales.items() if v}
if fig1_scales:
    display(
        Image(plots.scale_by_depth(fig1_scales, FIGURES / "fig1_scale.png", "Fig. 1 net: pre-activation std at step 0"))
    )
for experiment, arms in (("poor_init", scales), ("fig1_mnist", fig1_scales)):
    for label, layers in arms.items():
        print(experiment, label, {layer: f"{e.mean:.2e}" for layer, e in layers.items()})
