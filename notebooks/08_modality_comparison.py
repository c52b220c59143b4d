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
# # 08 · Crystal system: XANES only vs PXRD only vs fused (SI Fig. S21)
#
# Three models on **the same materials and the same 70/15/15 split**: SpecFusionNet on the TM K-edge XANES and element descriptors, the PXRD CNN-Transformer of notebook 07, and a fused network that concatenates the PXRD embedding with SpecFusionNet's compound embedding and is trained end to end. Paper (main text, discussion of Fig. S21): PXRD 0.81, fused 0.66, XANES 0.48. Only materials with a usable XANES *and* a structure take part, so the set is smaller than in notebook 07 and the PXRD number here is not notebook 07's.
#
# | figure | file | code |
# |---|---|---|
# | Fig. S21 accuracy per input | `figS21_modality_comparison.png` | `modality_comparison.compare_modalities`, `pxrd_plots.plot_modality_comparison` |
#
# (Modules under `specfusion_lib/`.) Checkpoints carry the tag `fig-s21`, so `specfusion predict` and `specfusion predict-crystal-system` do not pick them up.

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
checkpoint_dir = "build/checkpoints"  # model checkpoints (read by `specfusion predict`)
pattern_cache = "build/cache/pxrd"  # cache of simulated reflections, empty string for none


# %%
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.crystal_system import training as cs
from specfusion_lib.crystal_system.fusion import compare_modalities
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.plotting import crystal_system as pxrd_plots
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.properties.features import build_features

settings = get_profile(profile)
snapshot = open_snapshot(data)
features = build_features(snapshot)
data_set = cs.crystal_system_data(snapshot, None, cache_dir=pattern_cache or None)
print(snapshot, features.summary(), settings, sep='\n')

# %% [markdown]
# ## Train the three models for every seed (resumable)

# %%
comparison = compare_modalities(snapshot, settings, features=features, data=data_set,
                                checkpoint_dir=checkpoint_dir,
                                progress=profile != 'smoke')
print(f'{comparison.n_materials} materials with XANES, a pattern and a label; '
      f'excluded: {comparison.excluded}')
table = comparison.table()
save_table(table, 'modality_comparison', figures_dir)
save_table(comparison.predictions(), 'modality_test_predictions', figures_dir)
table[['modality', 'accuracy', 'accuracy_std', 'f1_macro', 'majority_class', 'n_train', 'n_test', 'paper_text', 'status']]

# %% [markdown]
# ## SI Fig. S21 · accuracy per input

# %%
fig = pxrd_plots.plot_modality_comparison(table)
save_figure(fig, 'figS21_modality_comparison', figures_dir)
