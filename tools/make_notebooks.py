"""Write notebooks/00_data.ipynb and notebooks/01_dataset_statistics.ipynb.

Notebooks are the source of truth once written; this script only exists to create them
reproducibly (``python tools/make_notebooks.py``) and is not part of the library.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

PARAMS = '''# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
'''


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "specfusion", "display_name": "Python (specfusion)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def params_cell(extra: str = "") -> nbformat.NotebookNode:
    cell = new_code_cell(PARAMS + extra)
    cell.metadata["tags"] = ["parameters"]
    return cell


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

for name, nb in [("00_data", nb00), ("01_dataset_statistics", nb01)]:
    nbformat.validate(nb)
    nbformat.write(nb, ROOT / "notebooks" / f"{name}.ipynb")
    print("wrote", name)
