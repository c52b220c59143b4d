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
# # 04 · Oxidation state and coordination number per TM element
#
# Element-level classifiers: one label per transition metal of a compound (the multiplicity-weighted mode over its sites). Their predictions feed structure inference (notebook 09; the paper's Fig. 5a lists them as its inputs); the paper gives no benchmark number for them on simulated data (Table 1 reports 6 of 7 measured samples consistent).
#
# Accuracy is reported per element, next to a per-element baseline: the element's most common class in the training part ("Ti is usually 4+"), so the table shows what the spectrum adds.
#
# | figure | file | code |
# |---|---|---|
# | per-element accuracy (inputs of Fig. 5a) | `fig5a_oxidation_state_cn_per_element.png` | `task_runs.per_element_accuracy`, `property_plots.plot_per_element_accuracy` |
#
# Checkpoints go to `checkpoint_dir`, where `specfusion predict` finds them.
#
# **Domain randomisation** (`domain_randomisation`): every training spectrum is joined by copies with random broadening, scan range, grid step, background slope, noise and E0 calibration shift (`spectra/augment.py`, `properties/randomised.py`), so that the models users run on *measured* spectra have seen measured-like variation. Validation and test rows stay clean, so the metrics below are on clean simulated spectra. Kept because it helped on the development half of the measured compounds (CN on measured spectra 0.28 → 0.42 over three seeds, oxidation state unchanged: `benchmarks/measured_variants.py`; notebook 11 shows both variants). Notebooks 09 and 10 reuse these checkpoints with the same setting (`task_runs.element_augment`).

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
checkpoint_dir = "build/checkpoints"  # model checkpoints (read by `specfusion predict`)
domain_randomisation = True  # task_runs.ELEMENT_TASK_RANDOMISATION (notebooks 09, 10 reuse it)


# %%
from dataclasses import replace

from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.plotting import properties as property_plots
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.properties import runs as task_runs
from specfusion_lib.properties.features import build_features

settings = get_profile(profile)
snapshot = open_snapshot(data)
features = build_features(snapshot)
augment = task_runs.element_augment(snapshot, domain_randomisation)
runs = task_runs.run_tasks(snapshot, task_runs.ELEMENT_TASKS, settings,
                            features=features, checkpoint_dir=checkpoint_dir,
                            progress=profile != 'smoke', augment=augment)
metrics = task_runs.metrics_table(runs)
save_table(metrics, 'oxidation_state_cn_metrics', figures_dir)
metrics[['task', 'metric', 'status', 'ours', 'baseline_value', 'n_test']]

# %% [markdown]
# ## Family split (headline) vs random split
# The metrics above are on the family split (no structure family on both sides). Trained again on a random split, as the paper did: the difference is what near-identical siblings on both sides add.

# %%
random_runs = task_runs.run_tasks(snapshot, task_runs.ELEMENT_TASKS,
                                   replace(settings, split_by='random'), features=features,
                                   checkpoint_dir=checkpoint_dir, progress=profile != 'smoke',
                                   augment=augment)
split_effect = task_runs.split_comparison_table(metrics, task_runs.metrics_table(random_runs))
save_table(split_effect, 'oxidation_state_cn_family_vs_random_split', figures_dir)
split_effect[['task', 'metric', 'family', 'random', 'random_minus_family', 'family_baseline', 'paper_value']].round(3)

# %% [markdown]
# ## Accuracy per TM element

# %%
per_element = {t: task_runs.per_element_accuracy(snapshot, r, features)
               for t, r in runs.items()}
table = task_runs.per_element_table(per_element)
save_table(table, 'oxidation_state_cn_per_element', figures_dir)
table

# %%
fig = property_plots.plot_per_element_accuracy(
    per_element, {t: r.spec.title for t, r in runs.items()})
save_figure(fig, 'fig5a_oxidation_state_cn_per_element', figures_dir)

# %% [markdown]
# ## Confusion matrices (all TM elements pooled)

# %%
matrices = {t: task_runs.confusion_matrix(r) for t, r in runs.items()}
fig = property_plots.plot_confusion_matrices(
    matrices, {t: r.spec.title for t, r in runs.items()})
save_figure(fig, 'fig5a_oxidation_state_cn_confusion', figures_dir)
