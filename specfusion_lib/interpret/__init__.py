"""Interpretability of SpecFusionNet (main text Fig. 3b–f; SI §S1.2, Fig. S13–S16).

* :mod:`specfusion_lib.interpret.ablation`: zero-masking ablations retrained per seed (TM
  fusion block, non-TM branch, each descriptor group for TM and non-TM elements) and the
  paper's statements next to ours (notebook 05).
* :mod:`specfusion_lib.interpret.gradcam`: Grad-CAM through captum on the last convolutions
  of the spectrum encoder, region-integrated attention (notebook 06).
* :mod:`specfusion_lib.interpret.examples`: the paper's example compounds (Y2TiO5, Y2Ti2O7,
  YTiO3) found in a snapshot, or named stand-ins.
* :mod:`specfusion_lib.interpret.faithfulness`: deletion curves checking the Grad-CAM maps
  (beyond the paper).

Figures: :mod:`specfusion_lib.plotting.interpret`.
"""

from __future__ import annotations

from specfusion_lib.interpret.ablation import (
    ABLATIONS,
    Ablation,
    AblationStudy,
    ablation_table,
    default_tasks,
    paper_comparison,
    run_ablation,
)
from specfusion_lib.interpret.examples import (
    PAPER_EXAMPLES,
    ExampleChoice,
    choose_examples,
    examples_table,
)
from specfusion_lib.interpret.faithfulness import (
    DELETION_FRACTIONS,
    DeletionCurve,
    deletion_curve,
    deletion_curves_for_runs,
    deletion_frame,
    faithfulness_table,
)
from specfusion_lib.interpret.gradcam import (
    REGIONS,
    GradCAMResult,
    grad_cam,
    grad_cam_by_task,
    held_out_ids,
    held_out_region_table,
    region_attention,
    region_caption,
    region_summary,
    region_table,
)

__all__ = [
    "ABLATIONS",
    "DELETION_FRACTIONS",
    "PAPER_EXAMPLES",
    "REGIONS",
    "Ablation",
    "AblationStudy",
    "DeletionCurve",
    "ExampleChoice",
    "GradCAMResult",
    "ablation_table",
    "choose_examples",
    "default_tasks",
    "deletion_curve",
    "deletion_curves_for_runs",
    "deletion_frame",
    "examples_table",
    "faithfulness_table",
    "grad_cam",
    "grad_cam_by_task",
    "held_out_ids",
    "held_out_region_table",
    "paper_comparison",
    "region_attention",
    "region_caption",
    "region_summary",
    "region_table",
    "run_ablation",
]
