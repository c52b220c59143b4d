"""Neural networks of specfusion.

:mod:`specfusion_lib.models.specfusionnet`: SpecFusionNet (TM XANES + element descriptors,
main text Fig. 2b; SI Fig. S4, S5), its multi-task variant and building blocks.
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
