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
# # Activations: Fig. 1b,c, saturation, per-layer scale at initialization (C2, C10, C4)
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
PROMISED = ["c2_percentiles.png", "saturation_no_BN.png", "saturation_BN.png", "c10_saturation.png",
            "c10_gradients.png", "c4_scale_by_depth.png"]
drawn = []

# %%
from IPython.display import Image, display

from analysis import plots
from analysis.claims import CLAIMS_BY_ID
from analysis.measures import ANY_LAYER, arm_curve, finished, hidden_layers, unit_drift
from analysis.notebook import claim_arms, report_drawn
from training.probes import saturation

# %% [markdown]
# ## C2, Fig. 1b,c: the 15/50/85th percentiles of one sigmoid's input, without and with BN

# %%
c2 = claim_arms(RESULTS, "C2")
if c2:
    drawn += CLAIMS_BY_ID["C2"].figures(c2, FIGURES)
    for name, runs in c2.items():
        for run in finished(runs):
            print(name, run.path.name, "drift score:", unit_drift(run))

# %% [markdown]
# ## C10: saturation and gradient balance over training

# %%
c10 = claim_arms(RESULTS, "C10")
for name, runs in c10.items():
    layers = hidden_layers(runs[0], saturation.layer_key(ANY_LAYER)) if runs else []
    curves = {f"{name}, {layer}": arm_curve(runs, saturation.layer_key(layer)) for layer in layers}
    if curves:
        path = FIGURES / f"saturation_{name.replace(' ', '_')}.png"
        drawn.append(plots.convergence(curves, path, f"Saturated fraction, {name}", ylabel="saturated fraction"))
if c10:
    drawn += CLAIMS_BY_ID["C10"].figures(c10, FIGURES)

# %% [markdown]
# ## C4: pre-activation scale by depth at initialization

# %%
c4 = claim_arms(RESULTS, "C4")
if c4:
    drawn += CLAIMS_BY_ID["C4"].figures(c4, FIGURES)
    scale_by_depth = CLAIMS_BY_ID["C4"].module.scale_by_depth
    for name, runs in c4.items():
        layers = scale_by_depth(finished(runs))
        if layers:
            print(name, {layer: f"{e.mean:.2e}" for layer, e in layers.items()})

# %%
for path in drawn:
    display(Image(path))
missing = report_drawn(drawn, PROMISED)
