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
# # 01 · Dataset statistics (SI Fig. S1, S2, S3, S6, S7, S17)
#
# | figure | file | code |
# |---|---|---|
# | Fig. S1 periodic table of element counts | `figS1_periodic_table_counts.png` | `statistics.element_counts`, `dataset.plot_periodic_table_counts` |
# | Fig. S2 compounds by number of elements | `figS2_nelements_distribution.png` | `statistics.nelements_counts`, `dataset.plot_nelements_distribution` |
# | Fig. S3 top ten anonymous formulas | `figS3_top_anonymous_formulas.png` | `statistics.top_anonymous_formulas`, `dataset.plot_top_formulas` |
# | Fig. S6 classification labels | `figS6_classification_label_distribution.png` | `tasks.TASKS`, `dataset.plot_classification_distributions` |
# | Fig. S7 regression labels | `figS7_regression_label_distribution.png` | `tasks.TASKS`, `dataset.plot_regression_distributions` |
# | Fig. S17 standardised TM XANES | `figS17_standardized_tm_xanes.png` | `statistics.processed_spectra_by_element`, `spectra.xanes.preprocess_xanes` |
#
# (`statistics` = `specfusion_lib/data/statistics.py`, `dataset` = `specfusion_lib/plotting/dataset.py`, `common` = `specfusion_lib/plotting/common.py`.) The paper's dataset is 34,929 Materials Project compounds; on the demo or fixture snapshot the numbers are those of that snapshot.

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written


# %%
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.core.tasks import CLASSIFICATION_TASKS, REGRESSION_TASKS, TASKS
from specfusion_lib.data import statistics as stats
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.plotting import common, dataset

common.apply_style()
settings = get_profile(profile)
snapshot = open_snapshot(data)
label = f'{snapshot.source} snapshot, {len(snapshot)} materials'
snapshot

# %% [markdown]
# ## Fig. S1 · elements in the dataset

# %%
counts = stats.element_counts(snapshot)
common.save_table(counts.rename_axis('element').reset_index(), 'element_counts', figures_dir)
fig = dataset.plot_periodic_table_counts(counts.to_dict(), title=f'Elements ({label})')
common.save_figure(fig, 'figS1_periodic_table_counts', figures_dir)

# %% [markdown]
# ## Fig. S2 · number of elements per compound

# %%
nel = stats.nelements_counts(snapshot)
common.save_table(nel.rename_axis('nelements').reset_index(), 'nelements_counts', figures_dir)
fig = dataset.plot_nelements_distribution(snapshot.materials['nelements'], title=f'Compounds by number of elements ({label})')
common.save_figure(fig, 'figS2_nelements_distribution', figures_dir)

# %% [markdown]
# ## Fig. S3 · top anonymous formulas

# %%
top = stats.top_anonymous_formulas(snapshot, n=10)
common.save_table(top.rename_axis('anonymous_formula').reset_index(), 'top_anonymous_formulas', figures_dir)
fig = dataset.plot_top_formulas(top)
common.save_figure(fig, 'figS3_top_anonymous_formulas', figures_dir)

# %% [markdown]
# ## Fig. S6 · classification labels
# Band-gap presence is `band_gap > 0`. Absent labels are counted apart, never imputed.

# %%
common.save_table(stats.classification_label_table(snapshot), 'classification_label_counts', figures_dir)
fig = dataset.plot_classification_distributions({
    n: (TASKS[n].title, TASKS[n].classes, TASKS[n].labels(snapshot.materials))
    for n in CLASSIFICATION_TASKS})
common.save_figure(fig, 'figS6_classification_label_distribution', figures_dir)

# %% [markdown]
# ## Fig. S7 · regression targets

# %%
reg = stats.regression_label_table(snapshot)
common.save_table(reg, 'regression_label_summary', figures_dir)
fig = dataset.plot_regression_distributions({
    n: (f'{TASKS[n].title} ({TASKS[n].unit})', TASKS[n].labels(snapshot.materials))
    for n in REGRESSION_TASKS})
common.save_figure(fig, 'figS7_regression_label_distribution', figures_dir)
reg

# %% [markdown]
# ## Fig. S17 · standardised transition-metal XANES
# Each spectrum: E0 from the maximum of the derivative of the smoothed μ(E), edge-step normalisation, 200 points on a 56 eV window around E0, per-spectrum standardisation (`specfusion_lib/spectra/xanes.py`). Spectra the preprocessing rejects are listed with the reason.

# %%
cap = 20 if profile == 'smoke' else None
grid, by_element, skipped = stats.processed_spectra_by_element(snapshot, max_per_element=cap)
common.save_table(skipped, 'xanes_preprocessing_skipped', figures_dir)
fig = dataset.plot_spectra_by_element(grid, by_element)
common.save_figure(fig, 'figS17_standardized_tm_xanes', figures_dir)
print(f'{sum(len(v) for v in by_element.values())} spectra shown, {len(skipped)} skipped')
skipped
