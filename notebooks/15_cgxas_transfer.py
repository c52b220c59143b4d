# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (specfusion)
#     language: python
#     name: specfusion
# ---

# %% [markdown]
# # 15 · CGXAS: one crystal-graph model for every element, calibrated to measured spectra
#
# CGXAS (seed 003) trains **one** crystal graph network for the K edges of every absorbing element: node features from element properties, Gaussian-expanded distances, gated graph convolutions whose outputs are summed into a latent vector per site, an MLP decoder from each site vector to that site's spectrum, and mask pooling (the mean over the sites a spectrum covers). Here it is trained from scratch on the demo's **per-site** FEFF10 spectra (the snapshot's `site_spectra` supplement, read back from the FEFF cache) on the absolute per-element grid of notebook 13, and compared — on the same family split, test rows and metrics — with the per-element XAStruct heads, with itself fine-tuned per element (CGXAS_FT_X), and with the baselines (CGXAS Fig. 3a).
#
# Then the transfer step that CGXAS is about: the measured TM K-edge spectra of `experiment.csv` whose compound is in the snapshot are used to **calibrate** the model in four variants (last decoder layer; decoder layer by layer; an energy shift and broadening per element; everything). Evaluation is **leave one compound out**, nested: the scored compound takes no part in the fine-tuning nor in choosing the variant (an inner cross-validation over the other compounds chooses it). CGXAS's reference: the edge-energy error falls from ~4 eV to ~1.8 eV (−55 %) with 40–48 measured spectra per element; we have 22 spectra of 21 compounds across 8 elements.
#
# The quick profile loads the universal model shipped in `data/models/` (trained by this notebook's code on the demo's family-split training part, seed 0; its metadata name the snapshot, the site-spectra checksum, the split and the settings, and a mismatch retrains).
#
# | figure / table | file | code |
# |---|---|---|
# | loss curves (CGXAS Fig. 2a) | `figCGXAS_2a_loss_curves.png` | `pc.plot_loss_curves` |
# | error distribution of the test spectra (Fig. 2b) | `figCGXAS_2b_error_distribution.png` | `pc.plot_error_distribution` |
# | universal vs per-element vs fine-tuned, per element (Fig. 3a) | `figCGXAS_3a_pearson_by_element.png`, `tables/figCGXAS_3a_universal_vs_element.csv` | `cs.universal_study`, `metrics.summarise` |
# | pooled headline with CGXAS's RSE | `tables/figCGXAS_universal_headline.csv` | `cs.universal_headline` |
# | t-SNE of latent site vectors by element / by neighbour of O (Fig. 3b,c) | `figCGXAS_3b_tsne_elements.png`, `figCGXAS_3c_tsne_oxygen.png` | `cs.latent_sites`, `cs.tsne_embedding` |
# | measured compounds among the simulated ones (Fig. 4) | `figCGXAS_4_measured_among_simulated.png` | `cs.tsne_embedding` |
# | edge error, RSE, Pearson before/after calibration (Fig. 5a,b) | `figCGXAS_5b_edge_error.png`, `tables/figCGXAS_5_calibration.csv`, `tables/figCGXAS_5_calibration_records.csv` | `cal.loco_calibration`, `cal.calibration_summary` |
# | measured vs predicted before/after (Fig. 5c–h) | `figCGXAS_5c_calibrated_examples.png` | `pc.plot_calibration_examples` |

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
checkpoint_dir = "build/checkpoints_cgxas"  # a newly trained universal model is saved here
measured = ""  # experiment.csv-like file of measured spectra ("": the copy in maml-apps-rfxas)
measured_checkpoint_dir = "build/checkpoints_measured"  # notebook 11's models (reused)

# %%
import numpy as np
import pandas as pd

from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.measured import read_measured_xanes
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.measured.study import match_measured
from specfusion_lib.plotting import cgxas as pc
from specfusion_lib.plotting import xas_structure as px
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.xas_structure import calibration as cal
from specfusion_lib.xas_structure import cgxas_study as cs
from specfusion_lib.xas_structure import metrics
from specfusion_lib.xas_structure import study as xs
from specfusion_lib.xas_structure.grid import grid_window

settings = get_profile(profile)
prof = cs.CGXAS_PROFILES[profile]
snapshot = open_snapshot(data)
table = xs.profile_table(snapshot, prof.max_materials)
seed = settings.seeds[0]
print(f"{len(table)} site-averaged spectra of {len(set(table.material_id))} materials; "
      f"per-site spectra in the snapshot: {snapshot.site_spectra() is not None}")

# %% [markdown]
# ## Per-element models (XAStruct heads) and the universal model on the same family split
#
# The XAStruct heads and the baselines are trained exactly as in notebook 13 (family split, the profile's elements); the universal model is trained once on the site spectra of every element of the training materials (or loaded, quick profile), then fine-tuned per element (decoder only, early stopping on that element's validation spectra).

# %%
study_settings = xs.PROFILE_SETTINGS[profile]
per_element = xs.forward_study(table, seed=seed, split_by="family", variants=("sgmlp",),
                               settings=study_settings.head, min_rows=prof.min_rows)
elements = list(per_element.forward.elements)
universal = cs.universal_study(
    snapshot, table, seed=seed, split_by="family", settings=prof.universal,
    checkpoints=[cs.SHIPPED_CHECKPOINT] if profile == "quick" else [],
    save_to=f"{checkpoint_dir}/cgxas-universal-family-seed{seed}.pt",
    fine_tune_elements=elements, fine_tune_epochs=prof.fine_tune_epochs,
    max_materials=prof.max_materials)
print("universal model:", universal.metadata.get("targets"), "targets,",
      len(universal.metadata.get("elements", [])), "absorbing elements; seconds:",
      {k: round(v, 1) for k, v in universal.seconds.items()})
per_spectrum = pd.concat([universal.per_spectrum, per_element.per_spectrum], ignore_index=True)
summary = metrics.summarise(per_spectrum, by=("model", "split"))
save_table(summary, "figCGXAS_3a_universal_vs_element", figures_dir)
headline = cs.universal_headline(per_spectrum, elements)
save_table(headline, "figCGXAS_universal_headline", figures_dir)
headline.round(4)

# %% [markdown]
# ## Training curves and error distribution (CGXAS Fig. 2a,b)

# %%
fig = pc.plot_loss_curves(universal.history)
save_figure(fig, "figCGXAS_2a_loss_curves", figures_dir)

# %%
compared = per_spectrum[per_spectrum["element"].isin(elements)]
fig = pc.plot_error_distribution(compared, [cs.UNIVERSAL, xs.model_name("sgmlp")])
save_figure(fig, "figCGXAS_2b_error_distribution", figures_dir)

# %% [markdown]
# ## Pearson per element: universal vs per-element vs fine-tuned (CGXAS Fig. 3a)

# %%
fig = px.plot_metric_by_element(
    summary[summary["element"].isin([*elements, "all"])], "pearson_median",
    models=[cs.UNIVERSAL, cs.FINE_TUNED, xs.model_name("sgmlp"), "nearest neighbour",
            "mean spectrum"])
save_figure(fig, "figCGXAS_3a_pearson_by_element", figures_dir)

# %% [markdown]
# ## What the latent site vectors hold (CGXAS Fig. 3b,c)
#
# t-SNE of the latent site vectors of the test materials' atoms, coloured by element; then only the oxygen sites, coloured by their nearest neighbour's element.

# %%
test_ids = sorted(set(table.material_id[universal.parts == "test"]))
latent = cs.latent_sites(universal.model, universal.graphs, test_ids,
                         max_sites=prof.tsne_sites, seed=seed)
vec_cols = [c for c in latent.columns if c.startswith("v")]
xy = cs.tsne_embedding(latent[vec_cols].to_numpy(), seed=seed)
fig = pc.plot_tsne(xy, latent["element"], title="latent site vectors by element")
save_figure(fig, "figCGXAS_3b_tsne_elements", figures_dir)
oxygen = latent[latent["element"] == "O"]
xy_o = cs.tsne_embedding(oxygen[vec_cols].to_numpy(), seed=seed)
fig = pc.plot_tsne(xy_o, oxygen["neighbour"], title="O sites by nearest neighbour")
save_figure(fig, "figCGXAS_3c_tsne_oxygen", figures_dir)

# %% [markdown]
# ## Calibration to measured spectra, leave one compound out (CGXAS Fig. 5)

# %%
records = read_measured_xanes(measured or None)
matched = cal.measured_set(records, snapshot, match_measured(records, snapshot))
print(f"{len(matched)} measured spectra of {len(set(matched.formula))} compounds on the grid; "
      f"left out: {len(matched.excluded)}")
pd.DataFrame(sorted(matched.excluded.items()), columns=["record", "why left out"])

# %%
if len(set(matched.formula)) >= 3:
    result = cal.loco_calibration(universal.model, matched, settings=prof.calibration, seed=seed)
else:  # a small snapshot (smoke fixture) may hold too few measured compounds
    result = cal.CalibrationResult(pd.DataFrame(columns=[
        "key", "formula", "element", "variant", "chosen", "mae", "rse", "pearson",
        "edge_error_ev", "edge_measured_ev", "edge_predicted_ev", "edge_signed_error_ev"]), {})
scores = result.scores
save_table(scores, "figCGXAS_5_calibration_records", figures_dir)
calibration = cal.calibration_summary(scores)
save_table(calibration, "figCGXAS_5_calibration", figures_dir)
calibration.round(3)

# %%
from specfusion_lib.core.paper import CGXAS_EDGE_ERROR

fig = pc.plot_edge_error_by_variant(calibration, reference=(CGXAS_EDGE_ERROR["before"].value,
                                                            CGXAS_EDGE_ERROR["after"].value))
save_figure(fig, "figCGXAS_5b_edge_error", figures_dir)

# %% [markdown]
# ### Measured vs predicted, before and after calibration (held-out compounds)

# %%
nested = scores[scores["variant"] == "nested"].drop_duplicates("formula").head(8)
rows = [int(np.flatnonzero(matched.key == k)[0]) for k in nested["key"]]
fig = pc.plot_calibration_examples(
    [grid_window(matched.element[r]).relative for r in rows], [matched.mu[r] for r in rows],
    [matched.covered[r] for r in rows],
    [result.predictions[("before", matched.key[r])] for r in rows],
    [result.predictions[("nested", matched.key[r])] for r in rows],
    [f"{matched.formula[r]} {matched.element[r]} ({c})" for r, c in zip(rows, nested["chosen"], strict=True)],
    after_label="calibrated (held out)")
save_figure(fig, "figCGXAS_5c_calibrated_examples", figures_dir)

# %% [markdown]
# ## Where the measured samples sit among the simulated ones (CGXAS Fig. 4)
#
# Predicted spectra (universal model) of the snapshot's compounds of the element with the most measured records, and of the measured compounds, in one t-SNE map.

# %%
if len(matched):
    element = pd.Series(matched.element).value_counts().index[0]
    sim_xy, meas_xy, labels = cs.measured_map(universal, snapshot, table, matched, element,
                                              seed=seed)
else:
    element, sim_xy, meas_xy, labels = "", np.zeros((0, 2)), np.zeros((0, 2)), []
fig = pc.plot_measured_among_simulated(sim_xy, meas_xy, labels,
                                       title=f"{element} K edge: predicted spectra")
save_figure(fig, "figCGXAS_4_measured_among_simulated", figures_dir)

# %% [markdown]
# ## Calibrated spectra as training data: does it close the sim → measured gap?
#
# The universal model is calibrated on the measured spectra of the **development half** only (the variant chosen by cross-validation over those compounds), predicts an experiment-like spectrum for every TM K edge of the snapshot, and notebook 11's oxidation-state and CN models are trained on those spectra (same held-out compounds, same profile). Both they and notebook 11's models trained on FEFF10 spectra are scored on the measured spectra of the **scoring half**, which took no part in anything. Skipped in the smoke profile (the fixture's ten materials cannot train these models).

# %%
from specfusion_lib.measured.halves import load_halves
from specfusion_lib.xas_structure import calibrated_data as cd

if profile != "smoke":
    halves = load_halves(records)
    calibrated_training = cd.calibrated_training_study(
        snapshot, records, halves, universal.model, settings, f"{checkpoint_dir}/measured",
        seed=seed, out=f"{checkpoint_dir}/calibrated_snapshot",
        calibration_settings=prof.calibration)
    feff_scores = cd.feff_training_scores(snapshot, records, halves, settings,
                                          measured_checkpoint_dir)
    training_scores = pd.concat([feff_scores, calibrated_training.structural], ignore_index=True)
    print("calibration variant (chosen on the development half):", calibrated_training.variant,
          {k: round(v, 2) for k, v in calibrated_training.inner_scores.items()})
else:
    training_scores = pd.DataFrame(columns=["variant", "input", "split", "task", "element",
                                            "n", "correct", "accuracy", "ci_low", "ci_high",
                                            "majority_baseline"])
save_table(training_scores, "figCGXAS_calibrated_training", figures_dir)
pooled = training_scores[(training_scores["element"] == "all")
                         & (training_scores["input"] == "measured")]
pooled.pivot_table(index=["split", "task"], columns="variant", values="accuracy").round(2)
