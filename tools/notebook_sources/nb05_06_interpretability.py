"""Notebooks 05 (ablation) and 06 (Grad-CAM)."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell

from .common import CHECKPOINT_PARAM, notebook, params_cell

nb05 = notebook([
    new_markdown_cell(
        "# 05 · Ablation studies (Fig. 3b,c; SI Fig. S13, S14)\n\n"
        "What does each input of SpecFusionNet contribute? As in the paper (SI §S1.2), a "
        "component is removed by **zero-masking**, so the parameter count stays identical, "
        "and the model is **retrained** with the component masked under the same protocol, "
        "split and seed as the full model. Reported: the change of the test metric, "
        "Δ = ablated − full (ΔMAE for regression, ΔF1 / Δaccuracy for classification), as "
        "mean ± sample std over the profile's seeds (paper profile: five).\n\n"
        "Ablations: (i) the TM–XANES fusion block, (ii) the non-TM embedding branch "
        "(Fig. S13), (iii) each atomic-descriptor group — χ, r_atom, IE1–IE3, Z, element "
        "type — masked at the input of the **TM** branch or of the **non-TM** branch apart "
        "(Fig. 3b,c: ΔMAE; Fig. S14: ΔF1).\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. S13 fusion block / non-TM branch | `figS13_fusion_ablation.png` | "
        "`interpret.run_ablation`, `plotting_interpret.plot_fusion_ablation` |\n"
        "| Fig. 3b descriptors, TM elements (ΔMAE) | `fig3b_descriptor_ablation_tm.png` | "
        "`AblationStudy.summary`, `plotting_interpret.plot_descriptor_ablation` |\n"
        "| Fig. 3c descriptors, non-TM elements (ΔMAE) | "
        "`fig3c_descriptor_ablation_non_tm.png` | same |\n"
        "| Fig. S14 descriptors, TM (top) / non-TM (bottom) (ΔF1) | "
        "`figS14_descriptor_ablation_f1.png` | same |\n"
        "| the paper's statements next to ours | `tables/ablation_paper_comparison.csv` | "
        "`interpret.paper_comparison` |\n\n"
        "(`interpret` = `specfusion_lib/interpret/` (ablation: `ablation.py`), "
        "`plotting_interpret` = `specfusion_lib/plotting_interpret.py`; the masking switches "
        "live in `specfusion_lib/models/specfusionnet.py`.) The paper's figure captions are "
        "not in its text: we read Fig. 3b,c as the MAE changes of the TM and the non-TM "
        "descriptors, as the main text describes them.\n\n"
        "**Cost.** Every ablation retrains one model per task and seed (13 variants). The "
        "`quick` profile therefore ablates three tasks — band gap and density (the two "
        "targets the paper's statements name) and magnetism (classification) — with one "
        "seed and on a seeded subset of the profile's `ablation_max_materials` (300) "
        "materials, so its Δ mixes the effect with seed-to-seed training noise; the `paper` "
        "profile ablates all eight tasks with five seeds on every material. Set "
        "`ablation_tasks` to choose. "
        "The full model is notebook 02's checkpoint in `checkpoint_dir` when it matches "
        "(with a smaller ablation subset it is retrained on that subset); "
        "ablated runs are stored there with the tag `ablation-<name>` (ignored by "
        "`specfusion predict`), so a rerun resumes."),
    params_cell(CHECKPOINT_PARAM + "ablation_tasks = []  # empty: the default of the profile "
                "(quick: band_gap, density, is_magnetic)\n"),
    new_code_cell(
        "from specfusion_lib import interpret, plotting_interpret\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.features import build_features\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "features = build_features(snapshot)\n"
        "tasks = list(ablation_tasks) or list(interpret.default_tasks(settings))\n"
        "print(snapshot, features.summary(), settings, 'tasks: ' + ', '.join(tasks), "
        "sep='\\n')"),
    new_markdown_cell("## What each ablation masks\nDescriptor columns are standardised with "
                      "the training statistics, so zero means *the training mean*; the "
                      "one-hot type columns become all-zero."),
    new_code_cell(
        "variants = interpret.ablation_table()\n"
        "save_table(variants, 'ablation_variants', figures_dir)\n"
        "variants"),
    new_markdown_cell("## Retrain every (task, ablation, seed)\nParameter counts are "
                      "identical for every variant (checked below)."),
    new_code_cell(
        "study = interpret.run_ablation(snapshot, tasks, settings, features=features,\n"
        "                               checkpoint_dir=checkpoint_dir,\n"
        "                               progress=profile != 'smoke')\n"
        "save_table(study.runs, 'ablation_runs', figures_dir)\n"
        "for task, reason in study.not_available.items():\n"
        "    print(f'{task}: {reason}')\n"
        "counts = study.parameter_counts()\n"
        "assert counts.empty or counts['parameters'].nunique() == 1, counts\n"
        "counts"),
    new_markdown_cell("## Δ of every ablation (mean ± std over seeds)\n`degradation` is "
                      "positive when the ablated model is worse (ΔMAE, or −ΔF1); `resolved` "
                      "says whether it exceeds twice its standard error (empty with one "
                      "seed)."),
    new_code_cell(
        "summary = study.summary()\n"
        "save_table(summary, 'ablation_summary', figures_dir)\n"
        "summary[['task', 'label', 'metric', 'status', 'full_mean', 'ablated_mean', "
        "'delta_mean', 'delta_std', 'n_seeds', 'resolved']]"),
    new_markdown_cell("## SI Fig. S13 · fusion block and non-TM branch"),
    new_code_cell(
        "fig = plotting_interpret.plot_fusion_ablation(summary)\n"
        "save_figure(fig, 'figS13_fusion_ablation', figures_dir)"),
    new_markdown_cell("## Fig. 3b,c · descriptor ablations, ΔMAE (TM, non-TM)"),
    new_code_cell(
        "fig = plotting_interpret.plot_descriptor_ablation(\n"
        "    summary, 'regression', ['tm'], 'Fig. 3b: TM descriptors masked, ΔMAE')\n"
        "save_figure(fig, 'fig3b_descriptor_ablation_tm', figures_dir)"),
    new_code_cell(
        "fig = plotting_interpret.plot_descriptor_ablation(\n"
        "    summary, 'regression', ['non_tm'], 'Fig. 3c: non-TM descriptors masked, ΔMAE')\n"
        "save_figure(fig, 'fig3c_descriptor_ablation_non_tm', figures_dir)"),
    new_markdown_cell("## SI Fig. S14 · descriptor ablations, ΔF1 (TM top, non-TM bottom)"),
    new_code_cell(
        "fig = plotting_interpret.plot_descriptor_ablation(\n"
        "    summary, 'classification', ['tm', 'non_tm'], 'Fig. S14: descriptors masked, ΔF1')\n"
        "save_figure(fig, 'figS14_descriptor_ablation_f1', figures_dir)"),
    new_markdown_cell(
        "## The paper's statements next to ours\nThe paper (main text, Fig. 3b,c and S14; "
        "SI Fig. S13): Z has the most pervasive influence (its removal raises the MAE "
        "across all tasks); element type matters most for density; ionisation energies for "
        "band-structure quantities; χ and r_atom contribute moderately; masking the TM "
        "fusion block or the non-TM branch lowers accuracy. The criteria behind each "
        "verdict are in `interpret.paper_comparison`'s docstring. With one seed a verdict "
        "is about the direction only: the differences can be within training noise."),
    new_code_cell(
        "comparison = interpret.paper_comparison(summary)\n"
        "save_table(comparison, 'ablation_paper_comparison', figures_dir)\n"
        "comparison.style.set_properties(**{'text-align': 'left', 'white-space': 'pre-wrap'})"),
])

nb06 = notebook([
    new_markdown_cell(
        "# 06 · Grad-CAM: which energy regions drive each prediction (Fig. 3d–f, SI S15, S16)"
        "\n\n"
        "Grad-CAM through captum (`LayerGradCam`) on the last convolution of each of the "
        "three branches of the spectrum encoder: channel weights are the position-averaged "
        "gradients of the target, the map is ReLU(Σ weights × activations), upsampled to "
        "the 200-point grid, summed over the branches and normalised by the compound's "
        "maximum (so the spectra of one compound stay comparable). Attention is integrated "
        "over three regions relative to E0: **pre-edge E0−10…E0−2 eV, edge E0−2…E0+10 eV, "
        "post-edge E0+10…E0+46 eV** (`interpret.REGIONS`).\n\n"
        "| figure | file | code |\n|---|---|---|\n"
        "| Fig. 3d band gap, Y2TiO5 | `fig3d_gradcam_band_gap.png` | `interpret.grad_cam`, "
        "`plotting_interpret.plot_gradcam` |\n"
        "| Fig. 3e density, Y2TiO5 | `fig3e_gradcam_density.png` | same |\n"
        "| Fig. 3f structure of Y2TiO5 | `fig3f_example_structure.png` | "
        "`plotting_interpret.plot_structure` |\n"
        "| Fig. S15 Y2Ti2O7 (band gap and density) | `figS15_gradcam_y2ti2o7.png` | "
        "`interpret.grad_cam_by_task`, `plotting_interpret.plot_gradcam` |\n"
        "| Fig. S16 YTiO3 (band gap and density) | `figS16_gradcam_ytio3.png` | same |\n"
        "| attention by region over the test compounds (ours) | "
        "`fig3de_gradcam_regions_by_task.png` | `interpret.held_out_region_table`, "
        "`interpret.region_summary` |\n"
        "| faithfulness: deletion curves (ours) | `fig3de_gradcam_deletion_faithfulness.png` "
        "| `interpret.deletion_curves_for_runs` |\n\n"
        "(`interpret` = `specfusion_lib/interpret/` (`gradcam.py`, `examples.py`, "
        "`faithfulness.py`), `plotting_interpret` = `specfusion_lib/plotting_interpret.py`.)"
        "\n\n"
        "The paper's compounds are looked up by reduced formula. One that is missing, or "
        "has no usable TM spectrum in this snapshot, is replaced by a test compound (two TM "
        "edges preferred) and **every figure and table says so**. The models are those of "
        "notebook 02 (reused from `checkpoint_dir`, else trained here); the first seed's "
        "model is attributed. Beyond the paper, a deletion test checks that the maps are "
        "faithful: deleting the most-attributed points should change the prediction more "
        "than deleting as many random points."),
    params_cell(CHECKPOINT_PARAM + 'gradcam_tasks = ["band_gap", "density"]  # one row each\n'),
    new_code_cell(
        "from specfusion_lib import evaluation, interpret, plotting_interpret\n"
        "from specfusion_lib.data.sources import open_snapshot\n"
        "from specfusion_lib.features import build_features\n"
        "from specfusion_lib.plotting import save_figure, save_table\n"
        "from specfusion_lib.profiles import get_profile\n\n"
        "settings = get_profile(profile)\n"
        "snapshot = open_snapshot(data)\n"
        "features = build_features(snapshot)\n"
        "runs = evaluation.run_tasks(snapshot, gradcam_tasks, settings, features=features,\n"
        "                            checkpoint_dir=checkpoint_dir, progress=profile != 'smoke')\n"
        "evaluation.metrics_table(runs)[['task', 'metric', 'status', 'ours', "
        "'baseline_value']]"),
    new_markdown_cell("## The example compounds\nFound by reduced formula, or replaced by a "
                      "test compound (the note says which and why)."),
    new_code_cell(
        "test_ids = interpret.held_out_ids(runs)  # test part of every model\n"
        "examples = interpret.choose_examples(snapshot, features, preferred_ids=test_ids)\n"
        "choices = interpret.examples_table(examples)\n"
        "save_table(choices, 'gradcam_examples', figures_dir)\n"
        "choices"),
    new_markdown_cell("## Fig. 3d–f · Y2TiO5: band gap, density, structure"),
    new_code_cell(
        "first = examples[0]\n"
        "panels = {e.figure: interpret.grad_cam_by_task(runs, features, e.row) "
        "for e in examples}\n"
        "maps = panels[first.figure]\n"
        "note = f'\\n{first.note}'\n"
        "for task, stem, label in [('band_gap', 'fig3d_gradcam_band_gap', 'Fig. 3d'),\n"
        "                          ('density', 'fig3e_gradcam_density', 'Fig. 3e')]:\n"
        "    panel = maps.get(task, f'{task} not in gradcam_tasks')\n"
        "    title = f'{label}: {first.title()}{note}'\n"
        "    fig = plotting_interpret.plot_gradcam({task: panel}, title)\n"
        "    save_figure(fig, stem, figures_dir)"),
    new_code_cell(
        "structure = snapshot.structure(first.material_id) if first.material_id else None\n"
        "fig = plotting_interpret.plot_structure(structure, title=f'Fig. 3f: {first.title()}')\n"
        "save_figure(fig, 'fig3f_example_structure', figures_dir)"),
    new_markdown_cell("## SI Fig. S15, S16 · Y2Ti2O7 and YTiO3\nOne row per target, so "
                      "the move of the attention between band gap and density is visible "
                      "within a figure."),
    new_code_cell(
        "for example, stem in zip(examples[1:], ['figS15_gradcam_y2ti2o7', "
        "'figS16_gradcam_ytio3'], strict=True):\n"
        "    structure = snapshot.structure(example.material_id) if example.material_id "
        "else None\n"
        "    title = f'{example.figure}: {example.title()}\\n{example.note}'\n"
        "    fig = plotting_interpret.plot_gradcam(panels[example.figure], title, structure)\n"
        "    save_figure(fig, stem, figures_dir)"),
    new_markdown_cell("## Region-integrated attention of the examples\nShare of the "
                      "compound's attention per element and region, per target."),
    new_code_cell(
        "found = [r for p in panels.values() for r in p.values()\n"
        "         if isinstance(r, interpret.GradCAMResult)]\n"
        "regions = interpret.region_table(found)\n"
        "save_table(regions, 'gradcam_region_attention', figures_dir)\n"
        "regions.pivot_table(index=['material_id', 'element'], columns=['task', 'region'],\n"
        "                    values='share_of_compound').round(3) if not regions.empty else "
        "regions"),
    new_markdown_cell("## Does the highlighted region move between targets? (all test "
                      "compounds)\nThe single examples above are anecdotes; here every test "
                      "compound of each task's model contributes."),
    new_code_cell(
        "held_out = interpret.held_out_region_table(runs, features)\n"
        "region_summary = interpret.region_summary(held_out)\n"
        "save_table(region_summary, 'gradcam_region_summary', figures_dir)\n"
        "fig = plotting_interpret.plot_region_summary(region_summary)\n"
        "save_figure(fig, 'fig3de_gradcam_regions_by_task', figures_dir)\n"
        "region_summary"),
    new_markdown_cell("## Faithfulness of the maps (beyond the paper)\nDelete (set to 0) the "
                      "k most-attributed points vs k random points, on the test compounds."),
    new_code_cell(
        "curves = interpret.deletion_curves_for_runs(runs, features, "
        "n_random=2 if profile == 'smoke' else 5)\n"
        "fig = plotting_interpret.plot_deletion_curves(curves)\n"
        "save_figure(fig, 'fig3de_gradcam_deletion_faithfulness', figures_dir)\n"
        "save_table(interpret.deletion_frame(curves), 'gradcam_deletion_curves', "
        "figures_dir)\n"
        "faithfulness = interpret.faithfulness_table(curves)\n"
        "save_table(faithfulness, 'gradcam_faithfulness', figures_dir)\n"
        "faithfulness"),
])

NOTEBOOKS = {"05_ablation": nb05, "06_gradcam": nb06}
