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

from specfusion_lib.core import paper
from specfusion_lib.core.atomic import atomic_write_text

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


def _table1_range(column: str) -> tuple[float, float]:
    values = [float(row[column]) for row in paper.TABLE1]
    return min(values), max(values)


_CLS = paper.CLASSIFICATION_SCORE.text
_ENERGY = f"MAE {paper.ENERGY_MAE.text} for energetic quantities (main text, Fig. 2d–g)"
_FIG2H_F1 = paper.FIG2H_F1_DIFFERENCE.text
_FIG2H_F1_PERCENT = f"{100 * paper.FIG2H_F1_DIFFERENCE.value:.0f} %"
_FIG2H_GAP = paper.FIG2H_BAND_GAP_MAE_DIFFERENCE.text
_FIG4D = paper.FIG4D_ACCURACY
_S21 = paper.FIG_S21_ACCURACY
_S21_TEXT = (f"PXRD {_S21['PXRD only'].text}, fused {_S21['XANES + PXRD'].text}, "
             f"XANES {_S21['XANES only'].text} (main text, Fig. S21)")
_T1_CN = "{}/{}".format(*paper.TABLE1_VALENCE_AND_CN_CONSISTENT)
_T1_CS = "{}/{}".format(*paper.TABLE1_CRYSTAL_SYSTEM_CONSISTENT)
_T1_GAP, _T1_DENSITY = _table1_range("E_g"), _table1_range("density")
_T1_EF = _table1_range("E_f")[1]

CATALOGUE: tuple[FigureEntry, ...] = (
    FigureEntry("figS1_periodic_table_counts", "Fig. S1", "01_dataset_statistics",
                "Periodic table: number of materials containing each element",
                f"{paper.FIG_S1_COMPOUNDS.text} compounds; e.g. O in "
                f"{paper.FIG_S1_OXYGEN_COMPOUNDS.text} (SI Fig. S1)"),
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
                f"accuracy and macro-F1 {_CLS} for every task (main text, Fig. 2c); "
                f"XANES-only crystal system {_S21['XANES only'].text} (Fig. S21)"),
    FigureEntry("figS8_confusion_matrices", "Fig. S8", "02_property_prediction",
                "Confusion matrices of the classification tasks (test parts pooled)",
                f"accuracy and macro-F1 {_CLS} (main text, Fig. 2c and S8)"),
    FigureEntry("fig2d_parity_formation_energy", "Fig. 2d", "02_property_prediction",
                "Parity plot of formation energy per atom (MAE, R², training-mean baseline)",
                _ENERGY),
    FigureEntry("fig2e_parity_efermi", "Fig. 2e", "02_property_prediction",
                "Parity plot of the Fermi level (MAE, R², training-mean baseline)",
                _ENERGY),
    FigureEntry("fig2f_parity_band_gap", "Fig. 2f", "02_property_prediction",
                "Parity plot of the band gap (MAE, R², training-mean baseline)",
                _ENERGY),
    FigureEntry("fig2g_parity_density", "Fig. 2g", "02_property_prediction",
                "Parity plot of density (MAE, R², training-mean baseline)",
                f"MAE {paper.DENSITY_MAE.text} (main text, Fig. 2g)"),
    FigureEntry("property_prediction_metrics", "Fig. 2c–g (table)", "02_property_prediction",
                "Every metric (mean ± std over seeds) with the trivial baseline and the "
                "paper's value; tasks without labels marked 'not available in this snapshot'",
                f"classification {_CLS}; MAE {paper.ENERGY_MAE.text} (energies), "
                f"{paper.DENSITY_MAE.text} (density)"),
    FigureEntry("paper_reference_values", "Fig. 2c–h (values)", "02_property_prediction",
                "The paper's reference values used in the comparisons, with their source"),
    FigureEntry("property_label_counts", "Fig. S6, S7 (training labels)",
                "02_property_prediction",
                "Labels each property model was trained on, and excluded materials"),
    # notebook 03: TM-only vs all-element (main text Fig. 2h)
    FigureEntry("fig2h_tm_only_vs_all_element", "Fig. 2h", "03_partial_vs_all_element",
                "TM-edges-only vs all-element XANES inputs on the same compounds and split",
                f"band-gap MAE differs by {_FIG2H_GAP}; classification F1 within "
                f"{_FIG2H_F1_PERCENT} (main text, Fig. 2h)"),
    FigureEntry("tm_only_vs_all_element", "Fig. 2h (table)", "03_partial_vs_all_element",
                "Macro-F1 / MAE of both input variants per task and their difference",
                f"band-gap Δ MAE = {_FIG2H_GAP}; Δ F1 {_FIG2H_F1} (main text, Fig. 2h)"),
    # notebook 04: per-TM oxidation state and CN. The paper has no figure of these
    # classifiers; Fig. 5a shows them as the inputs of structure inference, hence "fig5a".
    FigureEntry("fig5a_oxidation_state_cn_per_element", "Fig. 5a (inputs; ours)",
                "04_oxidation_state_cn",
                "Accuracy of TM oxidation state and coordination number per element, next to "
                "the element's majority class; these predictions feed structure inference "
                "(Fig. 5a). The paper gives no benchmark figure for them",
                "no simulated-data value; {} of {} measured samples consistent (Table 1)"
                .format(*paper.TABLE1_VALENCE_AND_CN_CONSISTENT)),
    FigureEntry("fig5a_oxidation_state_cn_confusion", "Fig. 5a (inputs; ours)",
                "04_oxidation_state_cn",
                "Confusion matrices of TM oxidation state and coordination number"),
    FigureEntry("oxidation_state_cn_metrics", "(ours)", "04_oxidation_state_cn",
                "Accuracy and macro-F1 of the per-TM classifiers with the majority baseline"),
    FigureEntry("oxidation_state_cn_per_element", "(ours)", "04_oxidation_state_cn",
                "Per-element accuracy of the per-TM classifiers with the per-element baseline"),
    # notebook 05: ablations (main text Fig. 3b,c; SI Fig. S13, S14)
    FigureEntry("figS13_fusion_ablation", "Fig. S13", "05_ablation",
                "Full model vs TM–XANES fusion block masked vs non-TM branch masked (retrained, "
                "zero-masking, identical parameter counts); accuracy (classification), MAE "
                "(regression); grey band: retraining noise",
                "masking either lowers the accuracy of the classification tasks (SI Fig. S13)"),
    FigureEntry("fig3b_descriptor_ablation_tm", "Fig. 3b", "05_ablation",
                "ΔMAE per regression task when each descriptor group (χ, r_atom, IE1–IE3, Z, "
                "type) is zero-masked for TM elements (retrained; mean ± std over seeds)",
                "Z raises the MAE in every task; type matters most for density; IE for "
                "band-structure quantities (main text, Fig. 3b,c)"),
    FigureEntry("fig3c_descriptor_ablation_non_tm", "Fig. 3c", "05_ablation",
                "ΔMAE per regression task when each descriptor group is zero-masked for non-TM "
                "elements (retrained; mean ± std over seeds)",
                "Z raises the MAE in every task; type matters most for density (main text)"),
    FigureEntry("figS14_descriptor_ablation_f1", "Fig. S14", "05_ablation",
                "ΔF1 per classification task for each descriptor group masked in TM (top) and "
                "non-TM (bottom) elements"),
    FigureEntry("ablation_variants", "Fig. 3b,c, S13, S14 (table)", "05_ablation",
                "What each ablation masks (model switches, descriptor columns)"),
    FigureEntry("ablation_runs", "Fig. 3b,c, S13, S14 (table)", "05_ablation",
                "Test metrics and parameter count of every (task, ablation, seed), incl. the "
                "retraining-noise reference"),
    FigureEntry("ablation_summary", "Fig. 3b,c, S13, S14 (table)", "05_ablation",
                "Δ = ablated − full (mean ± std over seeds), degradation, retraining noise"),
    FigureEntry("ablation_paper_comparison", "Fig. 3b,c, S13, S14 (statements)", "05_ablation",
                "The paper's ablation statements next to what this run measured, with a verdict",
                "Z most pervasive; type most for density; IE for band-structure quantities; "
                "masking fusion / non-TM branch hurts (main text; SI Fig. S13)"),
    # notebook 06: Grad-CAM (main text Fig. 3d–f; SI Fig. S15, S16)
    FigureEntry("fig3d_gradcam_band_gap", "Fig. 3d", "06_gradcam",
                "Grad-CAM over the TM K-edge spectra of Y2TiO5 (or a named stand-in) for the "
                "band gap, with region-integrated attention",
                "Ti edge: enhanced pre-edge and main-edge activation (main text, Fig. 3d)"),
    FigureEntry("fig3e_gradcam_density", "Fig. 3e", "06_gradcam",
                "Grad-CAM of the same compound for density",
                "Y K edge highlighted almost exclusively (main text, Fig. 3e)"),
    FigureEntry("fig3f_example_structure", "Fig. 3f", "06_gradcam",
                "Crystal structure of the Fig. 3d,e compound (cell in projection)"),
    FigureEntry("figS15_gradcam_y2ti2o7", "Fig. S15", "06_gradcam",
                "Grad-CAM of Y2Ti2O7 (or a named stand-in) for band gap and density, with "
                "structure", "Y and Ti edges both contribute to density (SI Fig. S15)"),
    FigureEntry("figS16_gradcam_ytio3", "Fig. S16", "06_gradcam",
                "Grad-CAM of YTiO3 (or a named stand-in) for band gap and density, with structure",
                "Ti pre-edge and Y main edge comparable for density (SI Fig. S16)"),
    FigureEntry("fig3de_gradcam_regions_by_task", "Fig. 3d,e (ours, all test compounds)",
                "06_gradcam", "Mean share of Grad-CAM attention per region and target over the "
                "test compounds"),
    FigureEntry("fig3de_gradcam_deletion_faithfulness", "(ours)", "06_gradcam",
                "Deletion test: prediction change when the most-attributed vs random spectrum "
                "points are set to 0"),
    FigureEntry("gradcam_examples", "Fig. 3d–f, S15, S16 (table)", "06_gradcam",
                "Example compounds found by formula or replaced, with the reason"),
    FigureEntry("gradcam_region_attention", "Fig. 3d–f, S15, S16 (table)", "06_gradcam",
                "Region-integrated attention per example, element, target"),
    FigureEntry("gradcam_region_summary", "(ours)", "06_gradcam",
                "Attention share per region and target over the test compounds"),
    FigureEntry("gradcam_deletion_curves", "(ours)", "06_gradcam",
                "Mean deletion curves (attributed vs random) per target"),
    FigureEntry("gradcam_faithfulness", "(ours)", "06_gradcam",
                "Areas under the deletion curves per target"),
    # notebook 07: PXRD crystal system (main text Fig. 4c,d; SI Fig. S18–S20)
    FigureEntry("fig4c_crystal_system_distribution", "Fig. 4c", "07_pxrd_crystal_system",
                "Materials per crystal system of the PXRD dataset (train/validation/test)"),
    FigureEntry("fig4d_crystal_system_confusion", "Fig. 4d", "07_pxrd_crystal_system",
                "Confusion matrix and per-class test accuracy of the PXRD CNN-Transformer, next "
                "to a random forest on the binned pattern and the majority class",
                f"{_FIG4D['overall'].text} overall; cubic and hexagonal {_FIG4D['cubic'].text}; "
                f"orthorhombic, monoclinic, triclinic {_FIG4D['orthorhombic'].text} "
                "(main text, Fig. 4d and S20)"),
    FigureEntry("fig4d_accuracy_vs_noise", "Fig. 4d (ours: noise robustness)",
                "07_pxrd_crystal_system",
                "Test accuracy vs Gaussian noise σ (0–20 % of the strongest peak), network and "
                "random forest",
                f"{_FIG4D['overall'].text} at the paper's (unstated) noise level "
                "(main text, Fig. 4d)"),
    FigureEntry("figS18_pxrd_preprocessing", "Fig. S18", "07_pxrd_crystal_system",
                "Reflections → Voigt-broadened pattern → with zero shift, intensity perturbation, "
                "background and 2 % Gaussian noise"),
    FigureEntry("figS19_pxrd_architecture", "Fig. S19", "07_pxrd_crystal_system",
                "CNN-Transformer: stages, output shapes and parameter counts"),
    FigureEntry("figS20_low_symmetry_patterns", "Fig. S20", "07_pxrd_crystal_system",
                "Test patterns of orthorhombic, monoclinic and triclinic materials with the "
                "predicted probabilities",
                f"low-symmetry systems {_FIG4D['orthorhombic'].text} (main text, Fig. S20)"),
    FigureEntry("crystal_system_counts", "Fig. 4c (table)", "07_pxrd_crystal_system",
                "Materials per crystal system and split part"),
    FigureEntry("crystal_system_metrics", "Fig. 4d (table)", "07_pxrd_crystal_system",
                "Overall and per-class accuracy: ours, random forest, majority class, paper",
                f"{_FIG4D['overall'].text} overall; cubic, hexagonal {_FIG4D['cubic'].text} "
                "(main text, Fig. 4d)"),
    FigureEntry("crystal_system_confusion", "Fig. 4d (table)", "07_pxrd_crystal_system",
                "Confusion counts of the test parts (all seeds)"),
    FigureEntry("crystal_system_noise_curve", "", "07_pxrd_crystal_system",
                "Accuracy vs noise σ per seed (network and random forest)"),
    FigureEntry("crystal_system_test_predictions", "", "07_pxrd_crystal_system",
                "Test predictions with the probability of every crystal system"),
    FigureEntry("pxrd_architecture", "Fig. S19 (table)", "07_pxrd_crystal_system",
                "Layers, output shapes and parameters of the CNN-Transformer"),
    # notebook 08: modality comparison (SI Fig. S21)
    FigureEntry("figS21_modality_comparison", "Fig. S21", "08_modality_comparison",
                "Crystal-system accuracy from XANES only, PXRD only and fused XANES+PXRD on the "
                "same materials and split",
                _S21_TEXT),
    FigureEntry("modality_comparison", "Fig. S21 (table)", "08_modality_comparison",
                "Accuracy, macro-F1, majority class and paper value per input",
                _S21_TEXT),
    FigureEntry("modality_test_predictions", "", "08_modality_comparison",
                "Test predictions of the three models"),
    # notebook 09: structure inference benchmark (main text Fig. 5b)
    FigureEntry("fig5b_structure_inference_top1", "Fig. 5b", "09_structure_inference_benchmark",
                "Top-1 accuracy of (formula, crystal system) on held-out compounds by number of "
                "elements, predicted vs true inputs; each target removed from the template "
                "database before its search",
                f"{paper.FIG5B_TOP1.text} for binary to quinary compounds (main text, Fig. 5b)"),
    FigureEntry("structure_inference_no_match", "", "09_structure_inference_benchmark",
                "No-match threshold on R_PXRD set on the validation half; right answers kept "
                "and wrong answers flagged on the scoring half"),
    FigureEntry("structure_inference_top1", "Fig. 5b (table)", "09_structure_inference_benchmark",
                "Top-1 accuracy per number of elements with Wilson 95 % intervals; formula and "
                "crystal-system accuracy apart", f"{paper.FIG5B_TOP1.text} (main text, Fig. 5b)"),
    FigureEntry("structure_inference_benchmark_compounds", "Fig. 5b (per compound)",
                "09_structure_inference_benchmark",
                "Per held-out compound: inputs, top-1 formula, crystal system and template, "
                "right or wrong"),
    FigureEntry("structure_inference_full_validation", "Fig. 5b (full validation; ours)",
                "09_structure_inference_benchmark",
                "Search with XANES for a few held-out compounds in three ranking modes (FEFF10; "
                "CGXAS forward model; hybrid): answer, R_PXRD, XANES similarity, seconds"),
    FigureEntry("structure_inference_system_inputs", "", "09_structure_inference_benchmark",
                "Crystal-system inputs of the benchmark: CNN-Transformer vs peak model, both "
                "trained without the compounds, top-1 / top-2 on them"),
    FigureEntry("structure_inference_mixed_valence", "", "09_structure_inference_benchmark",
                "Fe3O4, Co3O4, Mn3O4 searched as benchmark compounds: average oxidation "
                "state, enumerated, answer, top-1 / top-3"),
    # notebook 10: walkthrough (SI Fig. S22–S25)
    FigureEntry("figS22_ca2mnalo5_workflow", "Fig. S22", "10_ca2mnalo5_walkthrough",
                "Structure inference of Ca2MnAlO5 step by step: predicted inputs, "
                "charge-balanced formulas, ranked candidates (a named stand-in when the "
                "snapshot lacks its Mn XANES)"),
    FigureEntry("figS23_ca2mnalo5_pxrd", "Fig. S23", "10_ca2mnalo5_walkthrough",
                "PXRD of the input and of the relaxed candidates (CaMnAlO4, Ca2MnAlO5) with "
                "R_PXRD"),
    FigureEntry("figS24_ca2mnalo5_xanes", "Fig. S24", "10_ca2mnalo5_walkthrough",
                "Mn K-edge XANES of the input and the candidates' FEFF10 spectra, with XANES "
                "similarity"),
    FigureEntry("figS25_structure_inference_examples", "Fig. S25", "10_ca2mnalo5_walkthrough",
                "DyCrO3, CuInS2, ZnCu2SnS4: input PXRD/XANES vs inferred candidate, predicted vs "
                "reference properties, inferred structure with R_PXRD"),
    FigureEntry("ca2mnalo5_hypotheses", "Fig. S22 (table)", "10_ca2mnalo5_walkthrough",
                "Oxidation-state and crystal-system hypotheses the search weighed, with the "
                "models' probabilities"),
    FigureEntry("ca2mnalo5_formulas", "Fig. S22 (table)", "10_ca2mnalo5_walkthrough",
                "Charge-balanced formulas of the walkthrough compound"),
    FigureEntry("ca2mnalo5_templates", "Fig. S22 (table)", "10_ca2mnalo5_walkthrough",
                "Ranked template matches: constraint level, radius mismatch, element mapping"),
    FigureEntry("ca2mnalo5_candidates", "Fig. S22–S24 (table)", "10_ca2mnalo5_walkthrough",
                "Final ranking with R_PXRD, XANES similarity and validation score"),
    FigureEntry("structure_inference_examples", "Fig. S25 (table)", "10_ca2mnalo5_walkthrough",
                "Inferred formula, crystal system, template, R_PXRD and XANES similarity of the "
                "three compounds (or the stand-ins used)"),
    # notebook 11: measured spectra (Table 1, Fig. 5c,d, S26–S31)
    FigureEntry("table1_measured_validation", "Table 1", "11_experimental_validation",
                "Measured K-edge XANES of maml-apps-rfxas experiment.csv: predictions vs the "
                "matching snapshot compound's labels (absolute errors, ✓/✗ oxidation state + "
                "CN, crystal system)",
                f"valence & CN consistent for {_T1_CN}, crystal system {_T1_CS}; "
                f"|ΔE_g| {_T1_GAP[0]:.2f}–{_T1_GAP[1]:.2f} eV, "
                f"|Δρ| {_T1_DENSITY[0]:.2f}–{_T1_DENSITY[1]:.2f} g/cm³, "
                f"|ΔE_f| < {_T1_EF:.2f} eV (main text, Table 1)"),
    FigureEntry("table1_simulated_same_compounds", "Table 1 (simulated inputs; ours)",
                "11_experimental_validation",
                "Same layout, same models, from the snapshot's FEFF10 spectra of the same "
                "compounds"),
    FigureEntry("table1_published", "Table 1 (published)", "11_experimental_validation",
                "The paper's Table 1 values, with source"),
    FigureEntry("tableS1_published", "Table S1 (published)", "11_experimental_validation",
                "The paper's Table S1 predicted/experimental values, with source"),
    FigureEntry("table1_reference_sources", "Table 1 (reference sources; ours)",
                "11_experimental_validation",
                "Where each reference value comes from (manifest label_sources; CGCNN/CHGNet "
                "surrogates in the demo)"),
    FigureEntry("table1_crystal_system_pxrd", "Table 1 (crystal system, PXRD; ours)",
                "11_experimental_validation",
                "Notebook 07's PXRD model on patterns simulated from the matched structures, "
                "with in-training flag", f"crystal system {_T1_CS} (Table 1)"),
    FigureEntry("measured_predictions_long", "(ours)", "11_experimental_validation",
                "Every prediction on measured and simulated spectra with reference, error and "
                "correctness"),
    FigureEntry("figS26_S31_measured_vs_simulated_xanes", "Fig. S26–S31",
                "11_experimental_validation",
                "Measured vs FEFF10 XANES of the same compounds (own E0 and best-shift), "
                "Pearson r"),
    FigureEntry("fig5cd_spectral_agreement", "Fig. 5c,d", "11_experimental_validation",
                "Pearson r measured vs simulated on the model window: own E0, E0 on element "
                "templates, best shift, best shift + broadening"),
    FigureEntry("spectral_agreement", "Fig. 5c,d (table)", "11_experimental_validation",
                "E0s, shifts, correlations and best broadening per measured/simulated pair"),
    FigureEntry("figT1_domain_shift_gap", "Table 1 (domain shift; ours)",
                "11_experimental_validation",
                "Same models on simulated vs measured spectra of the same compounds, baseline "
                "vs E0-aligned remedy"),
    FigureEntry("domain_shift_gap", "Table 1 (domain shift; ours)", "11_experimental_validation",
                "Accuracy/MAE on simulated vs measured spectra, gap and agreement, per variant"),
    FigureEntry("measured_spectra_catalogue", "(ours)", "11_experimental_validation",
                "The 30 measured spectra: ids, formula, element, collection, CN labels, energy "
                "range"),
    FigureEntry("measured_reader_quirks", "(ours)", "11_experimental_validation",
                "What the reader had to handle in experiment.csv"),
    FigureEntry("measured_snapshot_matches", "(ours)", "11_experimental_validation",
                "Snapshot entry chosen for each measured record and the matching rule"),
    # notebook 12: composites (Fig. 6)
    FigureEntry("fig6a_composite_xanes", "Fig. 6a", "12_mixtures",
                "Element-resolved normalised XANES of two-phase composites vs fraction"),
    FigureEntry("fig6b_composite_band_gap", "Fig. 6b", "12_mixtures",
                "Predicted band gap vs fraction (pure-phase snapshot labels marked)",
                f"Cu2O/TiO2 composite: {paper.FIG6B_COMPOSITE_BAND_GAP.text}, dominated by TiO2 "
                "(main text, Fig. 6b)"),
    FigureEntry("fig6c_composite_oxidation_state", "Fig. 6 (ours)", "12_mixtures",
                "Oxidation-state class probabilities vs fraction"),
    FigureEntry("fig6_composite_predictions", "Fig. 6b (table)", "12_mixtures",
                "Every prediction per composite and fraction"),
    FigureEntry("fig6_composite_phases", "Fig. 6 (phases; ours)", "12_mixtures",
                "Which spectra each phase uses (measured or simulated, and which entry)"),
    FigureEntry("fig6_band_gap_dominance", "Fig. 6b (dominance)", "12_mixtures",
                "Which phase dominates the predicted band gap", "TiO2 dominates (main text, "
                "Fig. 6b)"),
    FigureEntry("figXAS_forward_data", "XAStruct (data; ours)", "13_xastruct_forward",
                "Spectra, families and split parts per absorbing element"),
    FigureEntry("figXAS_forward_metrics", "XAStruct Table 1 (per element)", "13_xastruct_forward",
                "Forward MAE / RSE / Pearson / edge error per element, model and split"),
    FigureEntry("figXAS_forward_headline", "XAStruct Table 1", "13_xastruct_forward",
                "Pooled forward metrics with the papers' values",
                f"K-edge XANES MAE {paper.XASTRUCT_FORWARD_MAE['sgmlp'].text} (XAStruct); RSE "
                f"{paper.CGXAS_UNIVERSAL_RSE.text} (CGXAS)"),
    FigureEntry("figXAS_S2_forward_examples", "XAStruct Fig. S2–S4", "13_xastruct_forward",
                "Best / median / worst predicted spectra per element vs FEFF10"),
    FigureEntry("figXAS_T1_forward_mae_by_element", "XAStruct Table 1 (ours per element)",
                "13_xastruct_forward", "Forward MAE per element: model vs baselines"),
    FigureEntry("figXAS_T3_forward_ablation", "XAStruct Table 3", "13_xastruct_forward",
                "Ablation of GatedLinear and SwiGLU in the head",
                f"MAE {paper.XASTRUCT_FORWARD_MAE['sgmlp'].text} / "
                f"{paper.XASTRUCT_FORWARD_MAE['mlp'].text} (full / plain MLP)"),
    FigureEntry("figXAS_inverse_metrics", "XAStruct Table 2 (per element)",
                "14_xastruct_inverse", "CN, MNND and neighbour-type scores per element, model "
                "and split"),
    FigureEntry("figXAS_T2_inverse_headline", "XAStruct Table 2", "14_xastruct_inverse",
                "Pooled inverse scores with XAStruct's values",
                "MNND MAE 0.0350 Å; neighbour accuracy 92.96 %; CN accuracy 69.26 %"),
    FigureEntry("figXAS_S12_cn_confusion", "XAStruct Fig. S12", "14_xastruct_inverse",
                "CN confusion per element (random forest)"),
    FigureEntry("figXAS_S8_mnnd_parity", "XAStruct Fig. S8–S9", "14_xastruct_inverse",
                "Predicted vs true MNND: XAStruct net and random forest"),
    FigureEntry("figXAS_S10_neighbour_accuracy", "XAStruct Fig. S10", "14_xastruct_inverse",
                "Neighbour-type accuracy per element: SGMLP vs baselines"),
    FigureEntry("figCGXAS_2a_loss_curves", "CGXAS Fig. 2a", "15_cgxas_transfer",
                "Training and validation RSE per epoch of the universal model"),
    FigureEntry("figCGXAS_2b_error_distribution", "CGXAS Fig. 2b", "15_cgxas_transfer",
                "RSE of the test spectra: universal vs per-element model",
                "mean test RSE 0.020223 (their data)"),
    FigureEntry("figCGXAS_3a_universal_vs_element", "CGXAS Fig. 3a", "15_cgxas_transfer",
                "Metrics per element: universal, fine-tuned, XAStruct heads, baselines"),
    FigureEntry("figCGXAS_3a_pearson_by_element", "CGXAS Fig. 3a", "15_cgxas_transfer",
                "Median Pearson per element: universal vs per-element vs fine-tuned"),
    FigureEntry("figCGXAS_universal_headline", "CGXAS main text", "15_cgxas_transfer",
                "Pooled family-split scores of every forward model",
                "universal RSE 0.020223 (their data, random split)"),
    FigureEntry("figCGXAS_3b_tsne_elements", "CGXAS Fig. 3b", "15_cgxas_transfer",
                "t-SNE of latent site vectors coloured by element"),
    FigureEntry("figCGXAS_3c_tsne_oxygen", "CGXAS Fig. 3c", "15_cgxas_transfer",
                "t-SNE of oxygen site vectors coloured by nearest neighbour"),
    FigureEntry("figCGXAS_4_measured_among_simulated", "CGXAS Fig. 4", "15_cgxas_transfer",
                "Measured compounds among the snapshot's compounds (predicted spectra)"),
    FigureEntry("figCGXAS_5_calibration", "CGXAS Fig. 5a,b", "15_cgxas_transfer",
                "Edge error, RSE, Pearson before/after calibration per variant",
                "edge error ~4 eV → ~1.8 eV (−55 %)"),
    FigureEntry("figCGXAS_5_calibration_records", "CGXAS Fig. 5a,b", "15_cgxas_transfer",
                "Per measured record: scores before and after each calibration variant"),
    FigureEntry("figCGXAS_5b_edge_error", "CGXAS Fig. 5b", "15_cgxas_transfer",
                "Edge-energy error before/after calibration, leave one compound out",
                "~4 eV → ~1.8 eV"),
    FigureEntry("figCGXAS_calibrated_training", "", "15_cgxas_transfer",
                "Oxidation state / CN on measured spectra: models trained on calibrated vs "
                "FEFF10 spectra, development and scoring halves"),
    FigureEntry("figCGXAS_5c_calibrated_examples", "CGXAS Fig. 5c–h", "15_cgxas_transfer",
                "Measured vs predicted spectra before and after calibration (held out)"),
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
        cells = [f"[{rel}]({rel})", entry.paper or "(ours)", f"`{entry.notebook}`",
                 entry.description, entry.paper_value]
        # a bare "|" (e.g. |ΔE_g|) would end a cell: escape it as Markdown tables require
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if others:
        lines += ["", "## Other files", ""] + [f"- [{rel}]({rel})" for rel in others]
    return atomic_write_text(root / "README.md", "\n".join(lines) + "\n")
