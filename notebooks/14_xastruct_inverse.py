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
# # 14 · XAStruct inverse: XANES → coordination number, mean neighbour distance, neighbour type
#
# From an absorber's K-edge spectrum alone, XAStruct (seed 002, §5.2) predicts three local-structure descriptors: the **coordination number** (CN; a random forest per element, their choice after unified models failed on rare CNs), the **mean nearest-neighbour distance** (MNND; one network for every element: pointwise SGMLP embeddings of the energy axis and of μ, Conv1D–BatchNorm–ReLU–AvgPool, an SGMLP head) and the **neighbour type** (the most frequent neighbour element; an SGMLP classifier per element). Labels come from CrystalNN on the snapshot's structures (`xas_structure/local_env.py`), computed once and stored with the XAStruct table.
#
# Input: the edge-normalised μ on the element's absolute grid (notebook 13). Split: whole structure families on one side (headline); the random split once beside it. Baselines on the same rows: an MLP and the majority class for CN, a random forest for MNND, a random forest and the majority class for the neighbour type. The real-structure check (`mp_structures_check`, never trained on, FEFF10 `fast-scf`) is scored at the end. XAStruct's values (K-edge XANES + EXAFS, 70+ elements, random 8:2 split) are references, not like-for-like.
#
# | figure / table | file | code |
# |---|---|---|
# | scores per target, model, split, element | `tables/figXAS_inverse_metrics.csv` | `xs.inverse_study`, `xs.inverse_summary` |
# | pooled headline with XAStruct Table 2 | `tables/figXAS_T2_inverse_headline.csv` | `xs.inverse_headline` |
# | CN confusion per element (XAStruct Fig. S12 analogue) | `figXAS_S12_cn_confusion.png` | `px.plot_cn_confusion` |
# | MNND parity (XAStruct Fig. S8/S9 analogue) | `figXAS_S8_mnnd_parity.png` | `px.plot_mnnd_parity` |
# | neighbour-type accuracy per element (XAStruct Fig. S10 analogue) | `figXAS_S10_neighbour_accuracy.png` | `px.plot_metric_by_element` |

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
real_check = True  # also score the real-structure check (needs data/real_build spectra)

# %%
import pandas as pd

from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.plotting import xas_structure as px
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.xas_structure import study as xs

settings = get_profile(profile)
study_settings = xs.PROFILE_SETTINGS[profile]
snapshot = open_snapshot(data)
table = xs.profile_table(snapshot, study_settings.max_materials)
seed = settings.seeds[0]
labels = pd.DataFrame({"element": table.element, "cn": table.cn, "mnnd": table.mnnd,
                       "neighbour": table.neighbour_type})
labels.groupby("element").agg(rows=("cn", "size"), cn_classes=("cn", "nunique"),
                              mnnd_mean=("mnnd", "mean"),
                              neighbour_classes=("neighbour", "nunique")).round(3)

# %% [markdown]
# ## Train and score (family split, then the random split once)

# %%
frames, studies = [], {}
for s in settings.seeds:
    for split_by in ("family", "random"):
        st = xs.inverse_study(table, seed=s, split_by=split_by,
                              min_rows=study_settings.min_rows,
                              max_epochs=study_settings.inverse_epochs[0],
                              patience=study_settings.inverse_epochs[1],
                              neighbour_epochs=study_settings.neighbour_epochs)
        studies[(s, split_by)] = st
        frames.append(st.predictions.assign(seed=s))
family_study = studies[(seed, "family")]

# %% [markdown]
# ## The real-structure check
#
# The family-split models predict CN, MNND and neighbour type from the FEFF10 `fast-scf` spectra of the check's TM compounds (trained on `fast` spectra: part of any gap is the preset).

# %%
check = xs.real_check_table() if real_check and profile != "smoke" else None
if check is not None:
    frames.append(xs.score_inverse_on(family_study, check, split="real check").assign(seed=seed))
predictions = pd.concat(frames, ignore_index=True)
summary = xs.inverse_summary(predictions)
save_table(summary, "figXAS_inverse_metrics", figures_dir)
headline = xs.inverse_headline(summary)
save_table(headline, "figXAS_T2_inverse_headline", figures_dir)
headline.drop(columns=["element"]).round(3)

# %% [markdown]
# ## CN confusion per element (family split, random forest)

# %%
fam = predictions[(predictions["split"] == "family") & (predictions["target"] == "cn")]
shown = list(fam["element"].value_counts().index[:8])
fig = px.plot_cn_confusion(fam, shown, model=xs.INVERSE_MODELS["cn"][0])
save_figure(fig, "figXAS_S12_cn_confusion", figures_dir)

# %% [markdown]
# ## MNND parity (family split)

# %%
fam_mnnd = predictions[(predictions["split"] == "family") & (predictions["target"] == "mnnd")]
fig = px.plot_mnnd_parity(fam_mnnd, models=list(xs.INVERSE_MODELS["mnnd"]))
save_figure(fig, "figXAS_S8_mnnd_parity", figures_dir)

# %% [markdown]
# ## Neighbour-type accuracy per element (family split)

# %%
nb = summary[(summary["target"] == "neighbour_type") & (summary["split"] == "family")]
fig = px.plot_metric_by_element(nb, "accuracy", models=list(xs.INVERSE_MODELS["neighbour_type"]))
save_figure(fig, "figXAS_S10_neighbour_accuracy", figures_dir)

# %% [markdown]
# ## Family vs random split vs the real check (pooled)

# %%
(headline.pivot_table(index=["target", "model"], columns="split",
                      values=["accuracy", "mae"]).round(3) if len(headline)
 else "no element of this snapshot has enough spectra for a per-element model")
