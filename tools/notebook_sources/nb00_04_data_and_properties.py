"""Notebooks 00 (data) … 04 (oxidation state and CN)."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell

from .common import CHECKPOINT_PARAM, notebook, params_cell

nb00 = notebook([
    new_markdown_cell(
        "# 00 · Data: load or build a snapshot and show its manifest\n\n"
        "Every later notebook reads one *snapshot* (SPEC §3): a folder with "
        "`materials.parquet`, `spectra.parquet` and a `manifest.json` holding the SHA-256 of "
        "each file. Loading verifies the checksums, so a corrupted file is refused.\n\n"
        "Sources: the embedded demo snapshot (`data/demo`, built by the project from "
        "structures shipped in PyPI packages), a Materials Project snapshot "
        "(`specfusion data fetch-mp`, needs `MP_API_KEY`), or the small test fixture "
        "(`tests/fixtures/snapshot`).\n\n"
        "Code: `specfusion_lib/data/snapshot.py` (format), `specfusion_lib/data/sources.py` "
        "(load or build), `specfusion_lib/data/mp.py` (Materials Project)."),
    params_cell('build_if_missing = ""  # "", "fixture" or "mp" (needs MP_API_KEY)\n'),
    new_code_cell(
        "import pandas as pd\n\n"
        "from specfusion_lib.data.sources import open_snapshot, snapshot_overview\n"
        "from specfusion_lib.plotting import save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data, build_if_missing=build_if_missing or None)\n"
        "snapshot"),
    new_markdown_cell("## Manifest\nWhere the data come from, with which software, and "
                      "which model or calculation produced each label."),
    new_code_cell(
        "overview = snapshot_overview(snapshot)\n"
        "print(overview['header'])\n"
        "overview['software']"),
    new_code_cell("overview['label_sources']"),
    new_markdown_cell("## Counts\nMaterials, spectra per absorbing element and edge, and "
                      "how many materials carry each label. A task whose label is absent "
                      "everywhere is reported as *not available in this snapshot*."),
    new_code_cell(
        "save_table(overview['counts'], 'snapshot_summary', figures_dir)\n"
        "overview['counts']"),
    new_code_cell("overview['tasks']"),
    new_markdown_cell("## A look at the materials table"),
    new_code_cell(
        "snapshot.materials.drop(columns=['structure', 'sites']).head(10)"),
])

nb01 = notebook([
    new_markdown_cell(
        "# 01 · Dataset statistics (SI Fig. S1, S2, S3, S6, S7, S17)\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. S1 periodic table of element counts | `figS1_periodic_table_counts.png` | "
        "`statistics.element_counts`, `plotting.plot_periodic_table_counts` |\n"
        "| Fig. S2 compounds by number of elements | `figS2_nelements_distribution.png` | "
        "`statistics.nelements_counts`, `plotting.plot_nelements_distribution` |\n"
        "| Fig. S3 top ten anonymous formulas | `figS3_top_anonymous_formulas.png` | "
        "`statistics.top_anonymous_formulas`, `plotting.plot_top_formulas` |\n"
        "| Fig. S6 classification labels | `figS6_classification_label_distribution.png` | "
        "`tasks.TASKS`, `plotting.plot_classification_distributions` |\n"
        "| Fig. S7 regression labels | `figS7_regression_label_distribution.png` | "
        "`tasks.TASKS`, `plotting.plot_regression_distributions` |\n"
        "| Fig. S17 standardised TM XANES | `figS17_standardized_tm_xanes.png` | "
        "`statistics.processed_spectra_by_element`, `spectra.xanes.preprocess_xanes` |\n\n"
        "(`statistics` = `specfusion_lib/data/statistics.py`, `plotting` = "
        "`specfusion_lib/plotting.py`.) The paper's dataset is 34,929 Materials Project "
        "compounds; on the demo or fixture snapshot the numbers are those of that snapshot."),
    params_cell(),
    new_code_cell(
        "from specfusion_lib.data import statistics as stats\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib import plotting\n"
        "from specfusion_lib.profiles import get_profile\n"
        "from specfusion_lib.tasks import CLASSIFICATION_TASKS, REGRESSION_TASKS, TASKS\n\n"
        "plotting.apply_style()\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "label = f'{snapshot.source} snapshot, {len(snapshot)} materials'\n"
        "snapshot"),
    new_markdown_cell("## Fig. S1 · elements in the dataset"),
    new_code_cell(
        "counts = stats.element_counts(snapshot)\n"
        "plotting.save_table(counts.rename_axis('element').reset_index(), 'element_counts', "
        "figures_dir)\n"
        "fig = plotting.plot_periodic_table_counts(counts.to_dict(), title=f'Elements ({label})')\n"
        "plotting.save_figure(fig, 'figS1_periodic_table_counts', figures_dir)"),
    new_markdown_cell("## Fig. S2 · number of elements per compound"),
    new_code_cell(
        "nel = stats.nelements_counts(snapshot)\n"
        "plotting.save_table(nel.rename_axis('nelements').reset_index(), 'nelements_counts', "
        "figures_dir)\n"
        "fig = plotting.plot_nelements_distribution(snapshot.materials['nelements'], "
        "title=f'Compounds by number of elements ({label})')\n"
        "plotting.save_figure(fig, 'figS2_nelements_distribution', figures_dir)"),
    new_markdown_cell("## Fig. S3 · top anonymous formulas"),
    new_code_cell(
        "top = stats.top_anonymous_formulas(snapshot, n=10)\n"
        "plotting.save_table(top.rename_axis('anonymous_formula').reset_index(), "
        "'top_anonymous_formulas', figures_dir)\n"
        "fig = plotting.plot_top_formulas(top)\n"
        "plotting.save_figure(fig, 'figS3_top_anonymous_formulas', figures_dir)"),
    new_markdown_cell("## Fig. S6 · classification labels\nBand-gap presence is "
                      "`band_gap > 0`. Absent labels are counted apart, never imputed."),
    new_code_cell(
        "plotting.save_table(stats.classification_label_table(snapshot), "
        "'classification_label_counts', figures_dir)\n"
        "fig = plotting.plot_classification_distributions({\n"
        "    n: (TASKS[n].title, TASKS[n].classes, TASKS[n].labels(snapshot.materials))\n"
        "    for n in CLASSIFICATION_TASKS})\n"
        "plotting.save_figure(fig, 'figS6_classification_label_distribution', figures_dir)"),
    new_markdown_cell("## Fig. S7 · regression targets"),
    new_code_cell(
        "reg = stats.regression_label_table(snapshot)\n"
        "plotting.save_table(reg, 'regression_label_summary', figures_dir)\n"
        "fig = plotting.plot_regression_distributions({\n"
        "    n: (f'{TASKS[n].title} ({TASKS[n].unit})', TASKS[n].labels(snapshot.materials))\n"
        "    for n in REGRESSION_TASKS})\n"
        "plotting.save_figure(fig, 'figS7_regression_label_distribution', figures_dir)\n"
        "reg"),
    new_markdown_cell(
        "## Fig. S17 · standardised transition-metal XANES\n"
        "Each spectrum: E0 from the maximum of the derivative of the smoothed μ(E), "
        "edge-step normalisation, 200 points on a 56 eV window around E0, per-spectrum "
        "standardisation (`specfusion_lib/spectra/xanes.py`). Spectra the preprocessing "
        "rejects are listed with the reason."),
    new_code_cell(
        "cap = 20 if profile == 'smoke' else None\n"
        "grid, by_element, skipped = stats.processed_spectra_by_element(snapshot, "
        "max_per_element=cap)\n"
        "plotting.save_table(skipped, 'xanes_preprocessing_skipped', figures_dir)\n"
        "fig = plotting.plot_spectra_by_element(grid, by_element)\n"
        "plotting.save_figure(fig, 'figS17_standardized_tm_xanes', figures_dir)\n"
        "print(f'{sum(len(v) for v in by_element.values())} spectra shown, "
        "{len(skipped)} skipped')\n"
        "skipped"),
])

nb02 = notebook([
    new_markdown_cell(
        "# 02 · Property prediction (Fig. 2c–g, SI Fig. S8)\n\n"
        "SpecFusionNet (TM K-edge XANES + element descriptors) trained per task with the SI "
        "§S1.1 protocol (70/15/15 split, Adam 1e-3, early stopping; `paper` profile: five "
        "seeds, mean ± std). Every number is shown next to **the paper's value** and a "
        "**trivial baseline** on the same test part (majority class of the training part; "
        "training mean), so you see what the model earns over a constant guess.\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. 2c accuracy, macro-F1 | `fig2c_classification_metrics.png` | "
        "`evaluation.metrics_table`, `plotting_models.plot_classification_metrics` |\n"
        "| Fig. S8 confusion matrices | `figS8_confusion_matrices.png` | "
        "`evaluation.confusion_matrix`, `plotting_models.plot_confusion_matrices` |\n"
        "| Fig. 2d–g parity plots | `fig2d_parity_formation_energy.png`, "
        "`fig2e_parity_efermi.png`, `fig2f_parity_band_gap.png`, `fig2g_parity_density.png` | "
        "`evaluation.parity_frame`, `plotting_models.plot_parity` |\n\n"
        "Label distributions (SI Fig. S6, S7) are drawn by notebook 01; the table "
        "`property_label_counts.csv` lists the labels each model here was trained on. "
        "A task whose label the snapshot lacks is reported as *not available in this "
        "snapshot*, never faked. Crystal system from XANES alone is added for comparison "
        "with SI Fig. S21 (paper: 0.48). Checkpoints go to `checkpoint_dir`, where "
        "`specfusion predict` finds them.\n\n"
        "(`evaluation` = `specfusion_lib/evaluation.py`, `plotting_models` = "
        "`specfusion_lib/plotting_models.py`, training: `specfusion_lib/train.py`.)"),
    params_cell(CHECKPOINT_PARAM),
    new_code_cell(
        "from specfusion_lib import evaluation, plotting_models\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.features import build_features\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n"
        "from specfusion_lib.tasks import TASKS\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "features = build_features(snapshot)\n"
        "print(snapshot, features.summary(), settings, sep='\\n')"),
    new_markdown_cell("## Paper reference values"),
    new_code_cell(
        "reference = evaluation.paper_reference_table()\n"
        "save_table(reference, 'paper_reference_values', figures_dir)\n"
        "reference"),
    new_markdown_cell("## Train one model per task (and seed)\nFinished (task, seed) "
                      "checkpoints in `checkpoint_dir` are reused, so an interrupted run "
                      "resumes."),
    new_code_cell(
        "runs = evaluation.run_tasks(snapshot, evaluation.PROPERTY_TASKS, settings,\n"
        "                            features=features, checkpoint_dir=checkpoint_dir,\n"
        "                            progress=profile != 'smoke')\n"
        "labels = evaluation.label_counts_table(runs)\n"
        "save_table(labels, 'property_label_counts', figures_dir)\n"
        "labels"),
    new_markdown_cell("## Metrics next to the baseline and the paper"),
    new_code_cell(
        "metrics = evaluation.metrics_table(runs)\n"
        "save_table(metrics, 'property_prediction_metrics', figures_dir)\n"
        "metrics[['task', 'metric', 'status', 'ours', 'baseline_value', 'paper_value', "
        "'n_test']]"),
    new_markdown_cell("## Fig. 2c · classification accuracy and macro-F1"),
    new_code_cell(
        "fig = plotting_models.plot_classification_metrics(metrics)\n"
        "save_figure(fig, 'fig2c_classification_metrics', figures_dir)"),
    new_markdown_cell("## SI Fig. S8 · confusion matrices (test parts of every seed pooled)"),
    new_code_cell(
        "matrices = {t: evaluation.confusion_matrix(r) for t, r in runs.items()\n"
        "            if r.spec.kind == 'classification'}\n"
        "fig = plotting_models.plot_confusion_matrices(\n"
        "    matrices, {t: runs[t].spec.title for t in matrices})\n"
        "save_figure(fig, 'figS8_confusion_matrices', figures_dir)"),
    new_markdown_cell("## Fig. 2d–g · parity plots (MAE, R², baseline MAE, paper MAE)"),
    *[new_code_cell(
        f"task = '{task}'\n"
        "fig = plotting_models.plot_parity(\n"
        "    evaluation.parity_frame(runs[task]), TASKS[task].title, TASKS[task].unit,\n"
        "    metrics[metrics['task'] == task],\n"
        "    evaluation.PAPER_VALUES[(task, 'mae')].text)\n"
        f"save_figure(fig, '{stem}', figures_dir)")
      for task, stem in [("formation_energy_per_atom", "fig2d_parity_formation_energy"),
                         ("efermi", "fig2e_parity_efermi"),
                         ("band_gap", "fig2f_parity_band_gap"),
                         ("density", "fig2g_parity_density")]],
])

nb03 = notebook([
    new_markdown_cell(
        "# 03 · Partial (TM edges only) vs all-element inputs (Fig. 2h)\n\n"
        "The paper's composition-aware partial-measurement claim: a model fed only the "
        "transition-metal K-edge XANES matches one fed a spectrum for every element (band-gap "
        "MAE differing by 0.05 eV, classification F1 by less than 6 %). Both models here see "
        "**the same compounds with the same split**; only the spectra of the non-TM "
        "elements differ.\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. 2h | `fig2h_tm_only_vs_all_element.png` | `evaluation.paired_features`, "
        "`evaluation.partial_vs_all_table`, `plotting_models.plot_partial_vs_all` |\n\n"
        "A task whose label the snapshot lacks is reported as *not available in this "
        "snapshot*."),
    params_cell(),
    new_code_cell(
        "from specfusion_lib import evaluation, plotting_models\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "tm_features, all_features = evaluation.paired_features(snapshot)\n"
        "print('TM only:', tm_features.summary())\n"
        "print('all elements:', all_features.summary())"),
    new_markdown_cell("## Train both variants of every task"),
    new_code_cell(
        "tm_runs = evaluation.run_tasks(snapshot, evaluation.PROPERTY_TASKS, settings,\n"
        "                               features=tm_features, progress=profile != 'smoke')\n"
        "all_runs = evaluation.run_tasks(snapshot, evaluation.PROPERTY_TASKS, settings,\n"
        "                                features=all_features, all_element=True,\n"
        "                                progress=profile != 'smoke')"),
    new_markdown_cell("## Comparison (difference = all-element − TM-only)"),
    new_code_cell(
        "comparison = evaluation.partial_vs_all_table(tm_runs, all_runs)\n"
        "save_table(comparison, 'tm_only_vs_all_element', figures_dir)\n"
        "comparison"),
    new_code_cell(
        "fig = plotting_models.plot_partial_vs_all(comparison)\n"
        "save_figure(fig, 'fig2h_tm_only_vs_all_element', figures_dir)"),
])

nb04 = notebook([
    new_markdown_cell(
        "# 04 · Oxidation state and coordination number per TM element\n\n"
        "Element-level classifiers: one label per transition metal of a compound (the "
        "multiplicity-weighted mode over its sites). Their predictions feed structure "
        "inference (notebook 09; the paper's Fig. 5a lists them as its inputs); the paper "
        "gives no benchmark number for them on simulated data (Table 1 reports 6 of 7 "
        "measured samples consistent).\n\n"
        "Accuracy is reported per element, next to a per-element baseline: the element's "
        "most common class in the training part (\"Ti is usually 4+\"), so the table shows "
        "what the spectrum adds.\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| per-element accuracy (inputs of Fig. 5a) | "
        "`fig5a_oxidation_state_cn_per_element.png` | `evaluation.per_element_accuracy`, "
        "`plotting_models.plot_per_element_accuracy` |\n\n"
        "Checkpoints go to `checkpoint_dir`, where `specfusion predict` finds them."),
    params_cell(CHECKPOINT_PARAM),
    new_code_cell(
        "from specfusion_lib import evaluation, plotting_models\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.features import build_features\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "features = build_features(snapshot)\n"
        "runs = evaluation.run_tasks(snapshot, evaluation.ELEMENT_TASKS, settings,\n"
        "                            features=features, checkpoint_dir=checkpoint_dir,\n"
        "                            progress=profile != 'smoke')\n"
        "metrics = evaluation.metrics_table(runs)\n"
        "save_table(metrics, 'oxidation_state_cn_metrics', figures_dir)\n"
        "metrics[['task', 'metric', 'status', 'ours', 'baseline_value', 'n_test']]"),
    new_markdown_cell("## Accuracy per TM element"),
    new_code_cell(
        "per_element = {t: evaluation.per_element_accuracy(snapshot, r, features)\n"
        "               for t, r in runs.items()}\n"
        "table = evaluation.per_element_table(per_element)\n"
        "save_table(table, 'oxidation_state_cn_per_element', figures_dir)\n"
        "table"),
    new_code_cell(
        "fig = plotting_models.plot_per_element_accuracy(\n"
        "    per_element, {t: r.spec.title for t, r in runs.items()})\n"
        "save_figure(fig, 'fig5a_oxidation_state_cn_per_element', figures_dir)"),
    new_markdown_cell("## Confusion matrices (all TM elements pooled)"),
    new_code_cell(
        "matrices = {t: evaluation.confusion_matrix(r) for t, r in runs.items()}\n"
        "fig = plotting_models.plot_confusion_matrices(\n"
        "    matrices, {t: r.spec.title for t, r in runs.items()})\n"
        "save_figure(fig, 'fig5a_oxidation_state_cn_confusion', figures_dir)"),
])


NOTEBOOKS = {"00_data": nb00, "01_dataset_statistics": nb01, "02_property_prediction": nb02,
             "03_partial_vs_all_element": nb03, "04_oxidation_state_cn": nb04}
