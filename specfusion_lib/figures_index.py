"""Catalogue of the paper's figures and tables, and the generated ``figures/README.md``.

Each entry ties a file stem under ``figures/`` to the paper figure it reproduces, the
notebook that writes it and, where the paper states one, the published value to compare
with. :func:`write_index` lists what is actually on disk, so the index never claims a figure
that was not regenerated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CATALOGUE", "FigureEntry", "write_index"]


@dataclass(frozen=True)
class FigureEntry:
    """A figure or table of the package.

    Attributes:
        stem: File stem under ``figures/`` (or ``figures/tables/`` for tables).
        paper: The paper figure/table reproduced ("Fig. S1"); "" for our own additions.
        notebook: Notebook that writes it.
        description: One line saying what it shows.
        paper_value: The paper's number to compare with, with its source, or "".
        optional: The notebook writes it only when the data allow (the notebook tests
            require every non-optional entry of a notebook).
    """

    stem: str
    paper: str
    notebook: str
    description: str
    paper_value: str = ""
    optional: bool = False


CATALOGUE: tuple[FigureEntry, ...] = (
    FigureEntry("figS1_periodic_table_counts", "Fig. S1", "01_dataset_statistics",
                "Periodic table: number of materials containing each element",
                "34,929 compounds; e.g. O in 15,259 (SI Fig. S1)"),
    FigureEntry("figS2_nelements_distribution", "Fig. S2", "01_dataset_statistics",
                "Materials by number of elements (2–5)"),
    FigureEntry("figS3_top_anonymous_formulas", "Fig. S3", "01_dataset_statistics",
                "Ten most frequent anonymous formulas"),
    FigureEntry("figS6_classification_label_distribution", "Fig. S6",
                "01_dataset_statistics",
                "Class counts: band-gap presence, direct gap, magnetic, magnetic ordering"),
    FigureEntry("figS7_regression_label_distribution", "Fig. S7", "01_dataset_statistics",
                "Distributions of formation energy, Fermi level, band gap, density"),
    FigureEntry("figS17_standardized_tm_xanes", "Fig. S17", "01_dataset_statistics",
                "Standardised TM K-edge XANES (200 points, window around E0) per element"),
    FigureEntry("element_counts", "Fig. S1 (table)", "01_dataset_statistics",
                "Materials per element"),
    FigureEntry("nelements_counts", "Fig. S2 (table)", "01_dataset_statistics",
                "Materials per number of elements"),
    FigureEntry("top_anonymous_formulas", "Fig. S3 (table)", "01_dataset_statistics",
                "Top anonymous formulas"),
    FigureEntry("classification_label_counts", "Fig. S6 (table)", "01_dataset_statistics",
                "Class counts per classification task, absent labels counted apart"),
    FigureEntry("regression_label_summary", "Fig. S7 (table)", "01_dataset_statistics",
                "n, mean, std, min, max of each regression target"),
    FigureEntry("xanes_preprocessing_skipped", "", "01_dataset_statistics",
                "Spectra that preprocessing rejected, with the reason"),
    FigureEntry("snapshot_summary", "", "00_data",
                "Counts of the snapshot: materials, spectra per edge, labels present"),
    # notebook 02: property prediction (main text Fig. 2c–g, SI Fig. S8)
    FigureEntry("fig2c_classification_metrics", "Fig. 2c", "02_property_prediction",
                "Accuracy and macro-F1 per classification task, next to the majority-class "
                "baseline (crystal system from XANES alone added for Fig. S21)",
                "accuracy and macro-F1 > 0.82 for every task (main text, Fig. 2c); "
                "XANES-only crystal system 0.48 (Fig. S21)"),
    FigureEntry("figS8_confusion_matrices", "Fig. S8", "02_property_prediction",
                "Confusion matrices of the classification tasks (test parts pooled)",
                "accuracy and macro-F1 > 0.82 (main text, Fig. 2c and S8)"),
    FigureEntry("fig2d_parity_formation_energy", "Fig. 2d", "02_property_prediction",
                "Parity plot of formation energy per atom (MAE, R², training-mean baseline)",
                "MAE < 0.71 eV for energetic quantities (main text, Fig. 2d–g)"),
    FigureEntry("fig2e_parity_efermi", "Fig. 2e", "02_property_prediction",
                "Parity plot of the Fermi level (MAE, R², training-mean baseline)",
                "MAE < 0.71 eV for energetic quantities (main text, Fig. 2d–g)"),
    FigureEntry("fig2f_parity_band_gap", "Fig. 2f", "02_property_prediction",
                "Parity plot of the band gap (MAE, R², training-mean baseline)",
                "MAE < 0.71 eV for energetic quantities (main text, Fig. 2d–g)"),
    FigureEntry("fig2g_parity_density", "Fig. 2g", "02_property_prediction",
                "Parity plot of density (MAE, R², training-mean baseline)",
                "MAE < 0.60 g/cm³ (main text, Fig. 2g)"),
    FigureEntry("property_prediction_metrics", "Fig. 2c–g (table)", "02_property_prediction",
                "Every metric (mean ± std over seeds) with the trivial baseline and the "
                "paper's value; tasks without labels marked 'not available in this snapshot'",
                "classification > 0.82; MAE < 0.71 eV (energies), < 0.60 g/cm³ (density)"),
    FigureEntry("paper_reference_values", "Fig. 2c–h (values)", "02_property_prediction",
                "The paper's reference values used in the comparisons, with their source"),
    FigureEntry("property_label_counts", "Fig. S6, S7 (training labels)",
                "02_property_prediction",
                "Labels each property model was trained on, and excluded materials"),
    # notebook 03: TM-only vs all-element (main text Fig. 2h)
    FigureEntry("fig2h_tm_only_vs_all_element", "Fig. 2h", "03_partial_vs_all_element",
                "TM-edges-only vs all-element XANES inputs on the same compounds and split",
                "band-gap MAE differs by 0.05 eV; classification F1 within 6 % "
                "(main text, Fig. 2h)"),
    FigureEntry("tm_only_vs_all_element", "Fig. 2h (table)", "03_partial_vs_all_element",
                "Macro-F1 / MAE of both input variants per task and their difference",
                "band-gap |Δ MAE| = 0.05 eV; |Δ F1| < 6 % (main text, Fig. 2h)"),
    # notebook 04: per-TM oxidation state and CN. The paper has no figure of these
    # classifiers; Fig. 5a shows them as the inputs of structure inference, hence "fig5a".
    FigureEntry("fig5a_oxidation_state_cn_per_element", "Fig. 5a (inputs; ours)",
                "04_oxidation_state_cn",
                "Accuracy of TM oxidation state and coordination number per element, next to "
                "the element's majority class; these predictions feed structure inference "
                "(Fig. 5a). The paper gives no benchmark figure for them",
                "no simulated-data value; 6 of 7 measured samples consistent (Table 1)"),
    FigureEntry("fig5a_oxidation_state_cn_confusion", "Fig. 5a (inputs; ours)",
                "04_oxidation_state_cn",
                "Confusion matrices of TM oxidation state and coordination number"),
    FigureEntry("oxidation_state_cn_metrics", "(ours)", "04_oxidation_state_cn",
                "Accuracy and macro-F1 of the per-TM classifiers with the majority baseline"),
    FigureEntry("oxidation_state_cn_per_element", "(ours)", "04_oxidation_state_cn",
                "Per-element accuracy of the per-TM classifiers with the per-element baseline"),
)


def write_index(figures_dir: str | os.PathLike[str] = "figures") -> Path:
    """Write ``<figures_dir>/README.md`` listing every figure and table present on disk.

    Known files are described from :data:`CATALOGUE` (paper figure, notebook, published
    value); files not in the catalogue are listed under "other". Returns the path written.
    """
    root = Path(figures_dir)
    root.mkdir(parents=True, exist_ok=True)
    by_stem = {entry.stem: entry for entry in CATALOGUE}
    images = sorted(p for p in root.glob("*.png"))
    tables = sorted((root / "tables").glob("*.csv")) if (root / "tables").is_dir() else []
    lines = [
        "# Figures and tables",
        "",
        "Generated by `run_all.sh` (do not edit by hand: `specfusion figures-index` rewrites "
        "it). Each row names the paper figure reproduced, the notebook that writes it and, "
        "where the paper gives one, the published value next to ours.",
        "",
        "| file | paper | notebook | what it shows | paper's value |",
        "|---|---|---|---|---|",
    ]
    others = []
    for path in [*images, *tables]:
        entry = by_stem.get(path.stem)
        rel = path.relative_to(root).as_posix()
        if entry is None:
            others.append(rel)
            continue
        lines.append(f"| [{rel}]({rel}) | {entry.paper or '(ours)'} | `{entry.notebook}` | "
                     f"{entry.description} | {entry.paper_value} |")
    if others:
        lines += ["", "## Other files", ""] + [f"- [{rel}]({rel})" for rel in others]
    target = root / "README.md"
    tmp = target.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
