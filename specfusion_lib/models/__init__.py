"""Neural networks only (torch modules; no data, no training).

* :mod:`specfusion_lib.models.specfusionnet`: SpecFusionNet (TM XANES + element descriptors,
  main text Fig. 2b; SI Fig. S4, S5), its configuration, multi-task variant and building
  blocks.
* :mod:`specfusion_lib.models.pxrd_net`: the PXRD CNN-Transformer (SI Fig. S19) and the fused
  XANES + PXRD network (SI Fig. S21).
"""

from __future__ import annotations

from specfusion_lib.models.specfusionnet import (
    ElementAttentionBlock,
    ElementEncoder,
    MultiScaleSpectrumEncoder,
    MultiTaskSpecFusionNet,
    SpecFusionConfig,
    SpecFusionEncoder,
    SpecFusionNet,
    SpectrumElementFusion,
    count_parameters,
)

__all__ = [
    "ElementAttentionBlock",
    "ElementEncoder",
    "MultiScaleSpectrumEncoder",
    "MultiTaskSpecFusionNet",
    "SpecFusionConfig",
    "SpecFusionEncoder",
    "SpecFusionNet",
    "SpectrumElementFusion",
    "count_parameters",
]
