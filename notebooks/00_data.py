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
# # 00 · Data: load or build a snapshot and show its manifest
#
# Every later notebook reads one *snapshot* (SPEC §3): a folder with `materials.parquet`, `spectra.parquet` and a `manifest.json` holding the SHA-256 of each file. Loading verifies the checksums, so a corrupted file is refused.
#
# Sources: the embedded demo snapshot (`data/demo`, built by the project from structures shipped in PyPI packages), a Materials Project snapshot (`specfusion data fetch-mp`, needs `MP_API_KEY`), or the small test fixture (`tests/fixtures/snapshot`).
#
# Code: `specfusion_lib/data/snapshot.py` (format), `specfusion_lib/data/sources.py` (load or build), `specfusion_lib/data/mp.py` (Materials Project).

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
build_if_missing = ""  # "", "fixture" or "mp" (needs MP_API_KEY)


# %%

from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.sources import open_snapshot, snapshot_overview
from specfusion_lib.plotting.common import save_table

settings = get_profile(profile)
snapshot = open_snapshot(data, build_if_missing=build_if_missing or None)
snapshot

# %% [markdown]
# ## Manifest
# Where the data come from, with which software, and which model or calculation produced each label.

# %%
overview = snapshot_overview(snapshot)
print(overview['header'])
overview['software']

# %%
overview['label_sources']

# %% [markdown]
# ## Counts
# Materials, spectra per absorbing element and edge, and how many materials carry each label. A task whose label is absent everywhere is reported as *not available in this snapshot*.

# %%
save_table(overview['counts'], 'snapshot_summary', figures_dir)
overview['counts']

# %%
overview['tasks']

# %% [markdown]
# ## A look at the materials table

# %%
snapshot.materials.drop(columns=['structure', 'sites']).head(10)
