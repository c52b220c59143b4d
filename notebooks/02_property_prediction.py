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
# # 02 · Property prediction (Fig. 2c–g, SI Fig. S8)
#
# SpecFusionNet (TM K-edge XANES + element descriptors) trained per task with the SI §S1.1 protocol (70/15/15 split by structure family — the random split of the paper is shown beside it —, Adam 1e-3, early stopping; `paper` profile: five seeds, mean ± std). Every number is shown next to **the paper's value** and a **trivial baseline** on the same test part (majority class of the training part; training mean), so you see what the model earns over a constant guess.
#
# | figure | file | code |
# |---|---|---|
# | Fig. 2c accuracy, macro-F1 | `fig2c_classification_metrics.png` | `task_runs.metrics_table`, `property_plots.plot_classification_metrics` |
# | Fig. S8 confusion matrices | `figS8_confusion_matrices.png` | `task_runs.confusion_matrix`, `property_plots.plot_confusion_matrices` |
# | Fig. 2d–g parity plots | `fig2d_parity_formation_energy.png`, `fig2e_parity_efermi.png`, `fig2f_parity_band_gap.png`, `fig2g_parity_density.png` | `task_runs.parity_frame`, `property_plots.plot_parity` |
#
# Label distributions (SI Fig. S6, S7) are drawn by notebook 01; the table `property_label_counts.csv` lists the labels each model here was trained on. A task whose label the snapshot lacks is reported as *not available in this snapshot*, never faked. Crystal system from XANES alone is added for comparison with SI Fig. S21 (paper: 0.48). Checkpoints go to `checkpoint_dir`, where `specfusion predict` finds them.
#
# (`task_runs` = `specfusion_lib/properties/runs.py`, `property_plots` = `specfusion_lib/plotting/properties.py`, training: `specfusion_lib/properties/train.py`.)

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
checkpoint_dir = "build/checkpoints"  # model checkpoints (read by `specfusion predict`)


# %%
from dataclasses import replace

from specfusion_lib.core import paper
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.core.tasks import TASKS
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.plotting import properties as property_plots
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.properties import runs as task_runs
from specfusion_lib.properties.features import build_features

settings = get_profile(profile)
snapshot = open_snapshot(data)
features = build_features(snapshot)
print(snapshot, features.summary(), settings, sep='\n')

# %% [markdown]
# ## Paper reference values

# %%
reference = task_runs.paper_reference_table()
save_table(reference, 'paper_reference_values', figures_dir)
reference

# %% [markdown]
# ## Train one model per task (and seed)
# Finished (task, seed) checkpoints in `checkpoint_dir` are reused, so an interrupted run resumes.

# %%
runs = task_runs.run_tasks(snapshot, task_runs.PROPERTY_TASKS, settings,
                            features=features, checkpoint_dir=checkpoint_dir,
                            progress=profile != 'smoke')
labels = task_runs.label_counts_table(runs)
save_table(labels, 'property_label_counts', figures_dir)
labels

# %% [markdown]
# ## Metrics next to the baseline and the paper

# %%
metrics = task_runs.metrics_table(runs)
save_table(metrics, 'property_prediction_metrics', figures_dir)
metrics[['task', 'metric', 'status', 'ours', 'baseline_value', 'paper_value', 'n_test']]

# %% [markdown]
# ## Family split (headline) vs random split
# Every number above is on the **family split**: no structure family (anonymous formula + space group, joined by the demo pool's prototypes) has materials on both sides. The paper split at random; the same tasks trained again on a random split show how much near-identical siblings on both sides flatter each metric (`random_minus_family`). The random-split models keep their own checkpoints (`…-random-split-seed0.pt`).

# %%
random_runs = task_runs.run_tasks(snapshot, task_runs.PROPERTY_TASKS,
                                   replace(settings, split_by='random'), features=features,
                                   checkpoint_dir=checkpoint_dir, progress=profile != 'smoke')
split_effect = task_runs.split_comparison_table(metrics, task_runs.metrics_table(random_runs))
save_table(split_effect, 'property_metrics_family_vs_random_split', figures_dir)
split_effect[['task', 'metric', 'family', 'random', 'random_minus_family', 'family_baseline', 'paper_value']].round(3)

# %% [markdown]
# ## Fig. 2c · classification accuracy and macro-F1

# %%
fig = property_plots.plot_classification_metrics(metrics)
save_figure(fig, 'fig2c_classification_metrics', figures_dir)

# %% [markdown]
# ## SI Fig. S8 · confusion matrices (test parts of every seed pooled)

# %%
matrices = {t: task_runs.confusion_matrix(r) for t, r in runs.items()
            if r.spec.kind == 'classification'}
fig = property_plots.plot_confusion_matrices(
    matrices, {t: runs[t].spec.title for t in matrices})
save_figure(fig, 'figS8_confusion_matrices', figures_dir)

# %% [markdown]
# ## Fig. 2d–g · parity plots (MAE, R², baseline MAE, paper MAE)

# %%
task = 'formation_energy_per_atom'
fig = property_plots.plot_parity(
    task_runs.parity_frame(runs[task]), TASKS[task].title, TASKS[task].unit,
    metrics[metrics['task'] == task],
    paper.PROPERTY_VALUES[(task, 'mae')].text)
save_figure(fig, 'fig2d_parity_formation_energy', figures_dir)

# %%
task = 'efermi'
fig = property_plots.plot_parity(
    task_runs.parity_frame(runs[task]), TASKS[task].title, TASKS[task].unit,
    metrics[metrics['task'] == task],
    paper.PROPERTY_VALUES[(task, 'mae')].text)
save_figure(fig, 'fig2e_parity_efermi', figures_dir)

# %%
task = 'band_gap'
fig = property_plots.plot_parity(
    task_runs.parity_frame(runs[task]), TASKS[task].title, TASKS[task].unit,
    metrics[metrics['task'] == task],
    paper.PROPERTY_VALUES[(task, 'mae')].text)
save_figure(fig, 'fig2f_parity_band_gap', figures_dir)

# %%
task = 'density'
fig = property_plots.plot_parity(
    task_runs.parity_frame(runs[task]), TASKS[task].title, TASKS[task].unit,
    metrics[metrics['task'] == task],
    paper.PROPERTY_VALUES[(task, 'mae')].text)
save_figure(fig, 'fig2g_parity_density', figures_dir)
