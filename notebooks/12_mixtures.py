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
# # 12 · Two-phase composites (Fig. 6)
#
# The paper feeds the measured XANES of a Cu2O/TiO2 composite photocatalyst to the model and finds the wide-gap TiO2 dominating the predicted band gap (3.67 eV). We have no composite measurement; we **build composites from the phases' spectra** (`mixtures.mix_phases`) at fractions 0, 0.1, …, 1 and predict every property as a function of the fraction.
#
# What a measurement of a composite gives (reasoning in `specfusion_lib/measured/mixtures.py`): each K edge is element-selective, so the composite's normalised Cu K edge is Cu2O's and its Ti K edge is TiO2's at *every* fraction strictly between 0 and 1; only the composition changes. SpecFusionNet describes the non-spectral part by the *set* of elements, so its predictions are the same for every such fraction: the question is which phase's spectrum dominates. A composite whose phases *share* their TM (MnO/MnO2, both measured) gives a normalised Mn K edge that moves linearly with the Mn-weighted fraction, and predictions that can move continuously — except where E0 (the first strong derivative maximum) jumps from one phase's edge to the other's; the composite table lists E0 per fraction.
#
# Spectra: measured ones from `experiment.csv` where every TM of a phase has one, else the snapshot's simulated spectra (the table below says which). The models are notebook 11's (same hold-out: these phases are not in their training materials; finished checkpoints are reused).
#
# | figure | file | code |
# |---|---|---|
# | Fig. 6a composite spectra vs fraction | `fig6a_composite_xanes.png` | `mixtures.mixture_series`, `pv.plot_composite_spectra` |
# | Fig. 6b predicted band gap vs fraction | `fig6b_composite_band_gap.png`, `tables/fig6_composite_predictions.csv` | `mixtures.predict_mixtures`, `pv.plot_composite_predictions` |
# | oxidation state vs fraction (ours) | `fig6c_composite_oxidation_state.png` | `pv.plot_composite_probabilities` |
# | phases, spectra used, dominance | `tables/fig6_composite_phases.csv`, `tables/fig6_band_gap_dominance.csv` | `mixtures.resolve_phase`, `mixtures.dominant_phase` |

# %% tags=["parameters"]
# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
checkpoint_dir = "build/checkpoints_measured"  # shared with notebook 11
variant = "baseline"  # or "e0_aligned" (models and inputs with E0 on element templates)
phase_a, phase_b = "Cu2O", "TiO2"  # the paper's composite (Fig. 6)
shared_a, shared_b = "MnO", "MnO2"  # a composite whose phases share their TM


# %%
import numpy as np
import pandas as pd

from specfusion_lib.core.paper import FIG6B_COMPOSITE_BAND_GAP
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data import measured
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.measured import mixtures
from specfusion_lib.measured import study as measured_study
from specfusion_lib.plotting import measured as pv
from specfusion_lib.plotting.common import save_figure, save_table
from specfusion_lib.properties.features import build_features

settings = get_profile(profile)
snapshot = open_snapshot(data)
records = measured.read_measured_xanes()
fractions = np.round(np.linspace(0.0, 1.0, 11), 2)
cases = {f'{phase_a}/{phase_b}': (phase_a, phase_b),
         f'{shared_a}/{shared_b}': (shared_a, shared_b)}
phases, notes = {}, []
for case, pair in cases.items():
    for formula in pair:
        phases[formula], note = mixtures.resolve_phase(formula, records, snapshot)
        notes.append({'case': case, 'phase': formula, 'spectra': note})
phase_table = pd.DataFrame(notes)
save_table(phase_table, 'fig6_composite_phases', figures_dir)
phase_table

# %% [markdown]
# ## Models (notebook 11's hold-out and checkpoints)

# %%
matches = measured_study.match_measured(records, snapshot)
train, holdout = measured_study.validation_features(snapshot, records, matches,
                                                build_features(snapshot))
tasks = [t for t in ('band_gap', 'has_band_gap', 'oxidation_state', 'coordination_number')
         if variant == 'baseline' or t in measured_study.REMEDY_TASKS]
models = measured_study.train_validation_models(snapshot, train, tasks, settings,
                                            checkpoint_dir, variant=variant,
                                            progress=profile != 'smoke')
print(holdout.reason)
print('trained:', models.trained_tasks)

# %% [markdown]
# ## Fig. 6a · composite spectra

# %%
from IPython.display import display

series = {case: mixtures.mixture_series(phases[a], phases[b], fractions)
          for case, (a, b) in cases.items()
          if phases[a] is not None and phases[b] is not None}
for case in cases:
    if case not in series:
        print(f'{case}: not available (see the phase table)')
    else:
        display(mixtures.composites_table(series[case]))
fig = pv.plot_composite_spectra(series)
save_figure(fig, 'fig6a_composite_xanes', figures_dir)

# %% [markdown]
# ## Fig. 6b · predictions vs fraction

# %%
predictions = {}
if models.predictor is not None:
    predictions = {case: mixtures.predict_mixtures(models.predictor, comps,
                                                   prepare=models.prepare)
                   for case, comps in series.items()}
long = pd.concat([p.assign(case=c) for c, p in predictions.items()],
                 ignore_index=True) if predictions else pd.DataFrame(
    columns=['case', 'fraction', 'task', 'element', 'prediction', 'status'])
save_table(long.drop(columns=['probabilities'], errors='ignore'),
           'fig6_composite_predictions', figures_dir)
references = {case: mixtures.pure_phase_references(snapshot, phases[a], phases[b],
                                                   'band_gap')
              for case, (a, b) in cases.items() if case in series}
fig = pv.plot_composite_predictions(predictions, 'band_gap', 'band gap', 'eV',
                                    references=references,
                                    paper=('paper: Cu2O/TiO2 composite, '
                                           f'{FIG6B_COMPOSITE_BAND_GAP.text}',
                                           FIG6B_COMPOSITE_BAND_GAP.value))
save_figure(fig, 'fig6b_composite_band_gap', figures_dir)

# %% [markdown]
# ## Which phase dominates the predicted band gap?

# %%
dominance = pd.DataFrame([
    {'case': case, **mixtures.dominant_phase(predictions[case], cases[case])}
    for case in predictions])
save_table(dominance if len(dominance) else pd.DataFrame(
    [{'case': c, 'statement': 'not available'} for c in cases]),
    'fig6_band_gap_dominance', figures_dir)
for line in dominance.get('statement', []):
    print(line)
print('paper (Fig. 6b): the Cu2O/TiO2 composite is dominated by wide-gap TiO2, '
      f'predicted band gap {FIG6B_COMPOSITE_BAND_GAP.text}')

# %% [markdown]
# ## Oxidation state vs fraction (ours)

# %%
fig = pv.plot_composite_probabilities(predictions, 'oxidation_state', 'oxidation state')
save_figure(fig, 'fig6c_composite_oxidation_state', figures_dir)
