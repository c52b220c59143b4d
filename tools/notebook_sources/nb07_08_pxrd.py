"""Notebooks 07 (PXRD crystal system) and 08 (XANES vs PXRD vs fused)."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell

from .common import CHECKPOINT_PARAM, notebook, params_cell

CACHE_PARAM = ('pattern_cache = "build/cache/pxrd"  # cache of simulated reflections, '
               'empty string for none\n')

nb07 = notebook([
    new_markdown_cell(
        "# 07 · Crystal system from powder XRD (Fig. 4c,d; SI Fig. S18–S20)\n\n"
        "A hybrid CNN-Transformer reads a simulated powder pattern (Cu Kα, 2θ = 10–80° at "
        "0.02°) and predicts one of the seven crystal systems. Training patterns are made "
        "realistic anew every epoch (Voigt broadening with random widths, per-reflection "
        "intensity changes as from preferred orientation, zero shift, background, Gaussian "
        "noise), so the network never memorises one noisy copy; a training part smaller than "
        "the profile's `min_patterns_per_epoch` (1,024 in quick and paper) is drawn several "
        "times per epoch, each copy augmented independently "
        "(`crystal_system.epoch_copies`). Validation and test patterns "
        "are rendered once, seeded, with the simulator's defaults (2 % noise). Every number "
        "is shown next to **the paper's value** (main text, Fig. 4d: 0.81 overall; cubic and "
        "hexagonal above 0.90; orthorhombic, monoclinic and triclinic 0.70–0.78) and two "
        "**baselines** on the same test patterns: the majority class and a random forest on "
        "the pattern binned to 0.2°.\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. 4c crystal systems of the dataset | `fig4c_crystal_system_distribution.png` | "
        "`crystal_system_eval.class_distribution`, `plotting_pxrd.plot_class_distribution` |\n"
        "| Fig. 4d confusion matrix, per-class accuracy | "
        "`fig4d_crystal_system_confusion.png` | `crystal_system.train_crystal_system_model`, "
        "`crystal_system_eval.metrics_table`, `plotting_pxrd.plot_confusion_and_per_class` |\n"
        "| Fig. S18 preprocessing | `figS18_pxrd_preprocessing.png` | "
        "`pxrd_dataset.StickPatterns.render`, `plotting_pxrd.plot_preprocessing_example` |\n"
        "| Fig. S19 architecture | `figS19_pxrd_architecture.png` | "
        "`models.crystal_system.PXRDCrystalSystemNet`, `architecture_table` |\n"
        "| Fig. S20 low-symmetry patterns | `figS20_low_symmetry_patterns.png` | "
        "`crystal_system_eval.low_symmetry_examples`, `plotting_pxrd.plot_example_patterns` |\n"
        "| ours: accuracy vs noise | `fig4d_accuracy_vs_noise.png` | "
        "`crystal_system_eval.noise_curve`, `plotting_pxrd.plot_accuracy_vs_noise` |\n\n"
        "(Modules under `specfusion_lib/`; simulation: `spectra/pxrd.py`.) The checkpoints "
        "go to `checkpoint_dir`, where `specfusion predict-crystal-system pattern.xy` finds "
        "them. The paper trained on ~35,000 Materials Project structures; the demo snapshot "
        "has about 800, so expect lower numbers, above all for rare classes."),
    params_cell(CHECKPOINT_PARAM + CACHE_PARAM),
    new_code_cell(
        "import pandas as pd\n\n"
        "from specfusion_lib import crystal_system as cs\n"
        "from specfusion_lib import crystal_system_eval as cse\n"
        "from specfusion_lib import plotting_pxrd\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.models.crystal_system import PXRDCrystalSystemNet, "
        "architecture_table\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "data_set = cs.crystal_system_data(snapshot, settings, cache_dir=pattern_cache or None,"
        "\n                                  progress=profile != 'smoke')\n"
        "print(snapshot, settings, sep='\\n')\n"
        "print(f'{len(data_set)} labelled materials with a simulated pattern; excluded: '\n"
        "      f'{dict(data_set.excluded)}')"),
    new_markdown_cell(
        "## SI Fig. S18 · from reflections to a realistic pattern\n"
        "Reflections from pymatgen's `XRDCalculator`, Voigt broadening (FWHM_G 0.10°, "
        "FWHM_L 0.05°), then the perturbations of the test patterns: zero shift (±0.05°), "
        "10 % intensity perturbations, background up to 5 % and Gaussian noise σ = 2 % of the "
        "strongest peak."),
    new_code_cell(
        "example = cse.preprocessing_example(data_set)\n"
        "fig = plotting_pxrd.plot_preprocessing_example(\n"
        "    example.stick_two_theta, example.stick_intensity, example.grid, example.broadened,\n"
        "    example.measured, title=f'{example.formula} ({example.crystal_system}): "
        "preprocessing (SI Fig. S18)')\n"
        "save_figure(fig, 'figS18_pxrd_preprocessing', figures_dir)"),
    new_markdown_cell(
        "## SI Fig. S19 · the CNN-Transformer\n"
        "The pattern (3501 points) is averaged in pairs, read by four "
        "convolution blocks (the first with stride 2, each followed by max-pooling) into 54 "
        "tokens of about 1.3° each, which a two-layer Transformer encoder relates across the "
        "whole 2θ range (sinusoidal encoding of the token's 2θ position); the mean token "
        "goes to a two-layer head with seven outputs. Sizes were chosen so that the quick "
        "profile trains in about a minute on two CPU cores."),
    new_code_cell(
        "architecture = pd.DataFrame(architecture_table(PXRDCrystalSystemNet(n_points="
        "data_set.grid.size)))\n"
        "save_table(architecture, 'pxrd_architecture', figures_dir)\n"
        "fig = plotting_pxrd.plot_architecture(architecture)\n"
        "save_figure(fig, 'figS19_pxrd_architecture', figures_dir)\n"
        "architecture"),
    new_markdown_cell(
        "## Training (one model per seed of the profile)\n"
        "70/15/15 split by material, Adam (lr 1e-3), cross-entropy, early stopping on the "
        "validation loss. A finished checkpoint matching snapshot, profile and seed is "
        "reloaded instead of retrained."),
    new_code_cell(
        "runs = cs.train_crystal_system_seeds(snapshot, settings, data=data_set,\n"
        "                                     checkpoint_dir=checkpoint_dir,\n"
        "                                     progress=profile != 'smoke')\n"
        "pd.DataFrame([{'seed': r.seed, 'epochs_run': r.epochs_run, 'best_epoch': r.best_epoch,"
        "\n               'train_patterns_per_s': r.samples_per_second, 'resumed': r.resumed,\n"
        "               **r.metrics} for r in runs])"),
    new_markdown_cell(
        "## Fig. 4c · crystal systems of the dataset\nSplit of the first seed; the paper's "
        "dataset spans the same seven systems."),
    new_code_cell(
        "counts = cse.class_distribution(data_set, runs[0].split_indices)\n"
        "save_table(counts.reset_index(), 'crystal_system_counts', figures_dir)\n"
        "fig = plotting_pxrd.plot_class_distribution(counts, title=f'Crystal systems "
        "({snapshot.source} snapshot, {len(data_set)} materials; Fig. 4c)')\n"
        "save_figure(fig, 'fig4c_crystal_system_distribution', figures_dir)\n"
        "counts"),
    new_markdown_cell(
        "## Baseline: random forest on the binned pattern\nSame training materials (three "
        "augmented copies each), same test patterns."),
    new_code_cell(
        "baselines = {r.seed: cse.random_forest_baseline(r) for r in runs}\n"
        "pd.DataFrame([{'seed': s, **b.metrics} for s, b in baselines.items()])"),
    new_markdown_cell("## Fig. 4d · accuracy overall and per crystal system, next to the "
                      "paper and the baselines"),
    new_code_cell(
        "metrics = cse.metrics_table(runs, baselines)\n"
        "save_table(metrics, 'crystal_system_metrics', figures_dir)\n"
        "confusion = sum(r.confusion_matrix() for r in runs)\n"
        "save_table(confusion.reset_index(), 'crystal_system_confusion', figures_dir)\n"
        "save_table(pd.concat([r.predictions.assign(seed=r.seed) for r in runs]), "
        "'crystal_system_test_predictions', figures_dir)\n"
        "fig = plotting_pxrd.plot_confusion_and_per_class(confusion, metrics)\n"
        "save_figure(fig, 'fig4d_crystal_system_confusion', figures_dir)\n"
        "metrics[['crystal_system', 'n_train', 'n_test', 'ours', 'random_forest', "
        "'majority_class', 'paper_value']]"),
    new_markdown_cell(
        "## SI Fig. S20 · peak-rich patterns of low-symmetry crystals\n"
        "One test material per orthorhombic, monoclinic and triclinic system (where the test "
        "part has one), with the network's three most probable systems. The paper shows "
        "Mn4ZnO6, Mg3Fe3As4O16 and Ag4GeO4."),
    new_code_cell(
        "examples = cse.low_symmetry_examples(runs[0])\n"
        "fig = plotting_pxrd.plot_example_patterns(\n"
        "    data_set.grid, [e['pattern'] for e in examples],\n"
        "    [f\"{e['formula']} ({e['crystal_system']})\" for e in examples],\n"
        "    [e['probabilities'] for e in examples])\n"
        "save_figure(fig, 'figS20_low_symmetry_patterns', figures_dir)"),
    new_markdown_cell(
        "## Accuracy vs noise level (our addition)\n"
        "The test materials rendered again with Gaussian noise σ from 0 to 20 % of the "
        "strongest peak, all other perturbations identical. Training saw σ ≤ 5 %; σ = 2 % "
        "is the test condition above."),
    new_code_cell(
        "curve = cse.noise_curve(runs, baselines)\n"
        "save_table(curve, 'crystal_system_noise_curve', figures_dir)\n"
        "fig = plotting_pxrd.plot_accuracy_vs_noise(curve)\n"
        "save_figure(fig, 'fig4d_accuracy_vs_noise', figures_dir)\n"
        "curve.groupby('noise_level')[['accuracy', 'baseline_accuracy']].mean()"),
    new_markdown_cell(
        "## Predicting a pattern file\n"
        "What `specfusion predict-crystal-system pattern.xy --wavelength MoKa` does: read a "
        "two-column file, convert 2θ to Cu Kα at constant d, interpolate onto the model grid "
        "and average the seeds' probabilities. Here a test material's pattern simulated "
        "with Mo Kα radiation (10–40° 2θ covers 21–96° at Cu Kα)."),
    new_code_cell(
        "import json, tempfile\n"
        "from pathlib import Path\n"
        "from pymatgen.core import Structure\n"
        "from specfusion_lib.spectra.pxrd import simulate_pattern, two_theta_grid\n\n"
        "mid = runs[0].split['test'][0]\n"
        "row = snapshot.materials.set_index('material_id').loc[mid]\n"
        "structure = Structure.from_dict(json.loads(row['structure']))\n"
        "moka = simulate_pattern(structure, two_theta_grid((10.0, 40.0), 0.01), "
        "wavelength='MoKa')\n"
        "path = moka.to_xy(Path(tempfile.mkdtemp()) / f'{row.formula}_MoKa.xy')\n"
        "probs = cs.predict_crystal_system(path, checkpoint_dir, wavelength='MoKa')\n"
        "print(f'{row.formula}: true {row.crystal_system}, predicted {probs.index[0]}')\n"
        "probs.round(3)"),
])

nb08 = notebook([
    new_markdown_cell(
        "# 08 · Crystal system: XANES only vs PXRD only vs fused (SI Fig. S21)\n\n"
        "Three models on **the same materials and the same 70/15/15 split**: SpecFusionNet "
        "on the TM K-edge XANES and element descriptors, the PXRD CNN-Transformer of "
        "notebook 07, and a fused network that concatenates the PXRD embedding with "
        "SpecFusionNet's compound embedding and is trained end to end. Paper (main text, "
        "discussion of Fig. S21): PXRD 0.81, fused 0.66, XANES 0.48. Only materials with a "
        "usable XANES *and* a structure take part, so the set is smaller than in notebook 07 "
        "and the PXRD number here is not notebook 07's.\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. S21 accuracy per input | `figS21_modality_comparison.png` | "
        "`modality_comparison.compare_modalities`, "
        "`plotting_pxrd.plot_modality_comparison` |\n\n"
        "(Modules under `specfusion_lib/`.) Checkpoints carry the tag `fig-s21`, so "
        "`specfusion predict` and `specfusion predict-crystal-system` do not pick them up."),
    params_cell(CHECKPOINT_PARAM + CACHE_PARAM),
    new_code_cell(
        "from specfusion_lib import crystal_system as cs\n"
        "from specfusion_lib import plotting_pxrd\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.features import build_features\n"
        "from specfusion_lib.modality_comparison import compare_modalities\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "features = build_features(snapshot)\n"
        "data_set = cs.crystal_system_data(snapshot, None, cache_dir=pattern_cache or None)\n"
        "print(snapshot, features.summary(), settings, sep='\\n')"),
    new_markdown_cell("## Train the three models for every seed (resumable)"),
    new_code_cell(
        "comparison = compare_modalities(snapshot, settings, features=features, data=data_set,"
        "\n                                checkpoint_dir=checkpoint_dir,\n"
        "                                progress=profile != 'smoke')\n"
        "print(f'{comparison.n_materials} materials with XANES, a pattern and a label; '\n"
        "      f'excluded: {comparison.excluded}')\n"
        "table = comparison.table()\n"
        "save_table(table, 'modality_comparison', figures_dir)\n"
        "save_table(comparison.predictions(), 'modality_test_predictions', figures_dir)\n"
        "table[['modality', 'accuracy', 'accuracy_std', 'f1_macro', 'majority_class', "
        "'n_train', 'n_test', 'paper_text', 'status']]"),
    new_markdown_cell("## SI Fig. S21 · accuracy per input"),
    new_code_cell(
        "fig = plotting_pxrd.plot_modality_comparison(table)\n"
        "save_figure(fig, 'figS21_modality_comparison', figures_dir)"),
])

NOTEBOOKS = {"07_pxrd_crystal_system": nb07, "08_modality_comparison": nb08}
