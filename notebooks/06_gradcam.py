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
# # 06 · Grad-CAM: which energy regions drive each prediction (Fig. 3d–f, SI S15, S16)
#
# Grad-CAM through captum (`LayerGradCam`) on the last convolution of each of the three branches of the spectrum encoder: channel weights are the position-averaged gradients of the target, the map is ReLU(Σ weights × activations), upsampled to the 200-point grid, summed over the branches and normalised by the compound's maximum (so the spectra of one compound stay comparable). Attention is integrated over three regions relative to E0: **pre-edge E0−10…E0−2 eV, edge E0−2…E0+10 eV, post-edge E0+10…E0+46 eV** (`interpret.REGIONS`).
#
# | figure | file | code |
# |---|---|---|
# | Fig. 3d band gap, Y2TiO5 | `fig3d_gradcam_band_gap.png` | `interpret.grad_cam`, `interpret_plots.plot_gradcam` |
# | Fig. 3e density, Y2TiO5 | `fig3e_gradcam_density.png` | same |
# | Fig. 3f structure of Y2TiO5 | `fig3f_example_structure.png` | `interpret_plots.plot_structure` |
# | Fig. S15 Y2Ti2O7 (band gap and density) | `figS15_gradcam_y2ti2o7.png` | `interpret.grad_cam_by_task`, `interpret_plots.plot_gradcam` |
# | Fig. S16 YTiO3 (band gap and density) | `figS16_gradcam_ytio3.png` | same |
# | attention by region over the test compounds (ours) | `fig3de_gradcam_regions_by_task.png` | `interpret.held_out_region_table`, `interpret.region_summary` |
# | faithfulness: deletion curves (ours) | `fig3de_gradcam_deletion_faithfulness.png` | `interpret.deletion_curves_for_runs` |
#
# (`interpret` = `specfusion_lib/interpret/` (`gradcam.py`, `examples.py`, `faithfulness.py`), `interpret_plots` = `specfusion_lib/plotting/interpret.py`.)
#
# The paper's compounds are looked up by reduced formula. One that is missing, or has no usable TM spectrum in this snapshot, is replaced by a test compound (two TM edges preferred) and **every figure and table says so**. The models are those of notebook 02 (reused from `checkpoint_dir`, else trained here); the first seed's model is attributed. Beyond the paper, a deletion test checks that the maps are faithful: deleting the most-attributed points should change the prediction more than deleting as many random points.

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
checkpoint_dir = "build/checkpoints"  # model checkpoints (read by `specfusion predict`)
gradcam_tasks = ["band_gap", "density"]  # one row each


# %%
from specfusion_lib import interpret
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.plotting import interpret as interpret_plots
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.properties import runs as task_runs
from specfusion_lib.properties.features import build_features

settings = get_profile(profile)
snapshot = open_snapshot(data)
features = build_features(snapshot)
runs = task_runs.run_tasks(snapshot, gradcam_tasks, settings, features=features,
                            checkpoint_dir=checkpoint_dir, progress=profile != 'smoke')
task_runs.metrics_table(runs)[['task', 'metric', 'status', 'ours', 'baseline_value']]

# %% [markdown]
# ## The example compounds
# Found by reduced formula, or replaced by a test compound (the note says which and why).

# %%
test_ids = interpret.held_out_ids(runs)  # test part of every model
examples = interpret.choose_examples(snapshot, features, preferred_ids=test_ids)
choices = interpret.examples_table(examples)
save_table(choices, 'gradcam_examples', figures_dir)
choices

# %% [markdown]
# ## Fig. 3d–f · Y2TiO5: band gap, density, structure

# %%
first = examples[0]
panels = {e.figure: interpret.grad_cam_by_task(runs, features, e.row) for e in examples}
maps = panels[first.figure]
note = f'\n{first.note}'
for task, stem, label in [('band_gap', 'fig3d_gradcam_band_gap', 'Fig. 3d'),
                          ('density', 'fig3e_gradcam_density', 'Fig. 3e')]:
    panel = maps.get(task, f'{task} not in gradcam_tasks')
    title = f'{label}: {first.title()}{note}'
    fig = interpret_plots.plot_gradcam({task: panel}, title)
    save_figure(fig, stem, figures_dir)

# %%
structure = snapshot.structure(first.material_id) if first.material_id else None
fig = interpret_plots.plot_structure(structure, title=f'Fig. 3f: {first.title()}')
save_figure(fig, 'fig3f_example_structure', figures_dir)

# %% [markdown]
# ## SI Fig. S15, S16 · Y2Ti2O7 and YTiO3
# One row per target, so the move of the attention between band gap and density is visible within a figure.

# %%
for example, stem in zip(examples[1:], ['figS15_gradcam_y2ti2o7', 'figS16_gradcam_ytio3'], strict=True):
    structure = snapshot.structure(example.material_id) if example.material_id else None
    title = f'{example.figure}: {example.title()}\n{example.note}'
    fig = interpret_plots.plot_gradcam(panels[example.figure], title, structure)
    save_figure(fig, stem, figures_dir)

# %% [markdown]
# ## Region-integrated attention of the examples
# Share of the compound's attention per element and region, per target.

# %%
found = [r for p in panels.values() for r in p.values()
         if isinstance(r, interpret.GradCAMResult)]
regions = interpret.region_table(found)
save_table(regions, 'gradcam_region_attention', figures_dir)
regions.pivot_table(index=['material_id', 'element'], columns=['task', 'region'],
                    values='share_of_compound').round(3) if not regions.empty else regions

# %% [markdown]
# ## Does the highlighted region move between targets? (all test compounds)
# The single examples above are anecdotes; here every test compound of each task's model contributes.

# %%
held_out = interpret.held_out_region_table(runs, features)
region_summary = interpret.region_summary(held_out)
save_table(region_summary, 'gradcam_region_summary', figures_dir)
fig = interpret_plots.plot_region_summary(region_summary)
save_figure(fig, 'fig3de_gradcam_regions_by_task', figures_dir)
region_summary

# %% [markdown]
# ## Faithfulness of the maps (beyond the paper)
# Delete (set to 0) the k most-attributed points vs k random points, on the test compounds.

# %%
curves = interpret.deletion_curves_for_runs(runs, features, n_random=2 if profile == 'smoke' else 5)
fig = interpret_plots.plot_deletion_curves(curves)
save_figure(fig, 'fig3de_gradcam_deletion_faithfulness', figures_dir)
save_table(interpret.deletion_frame(curves), 'gradcam_deletion_curves', figures_dir)
faithfulness = interpret.faithfulness_table(curves)
save_table(faithfulness, 'gradcam_faithfulness', figures_dir)
faithfulness
