"""Crystal system from powder XRD (main text Fig. 4; SI §S1.3, Fig. S18–S21).

* :mod:`specfusion_lib.crystal_system.patterns`: simulated reflections of a snapshot (cached)
  rendered into training / measured-like patterns (Fig. S18).
* :mod:`specfusion_lib.crystal_system.reflections`: reflection tables of conventional cells
  and patterns under symmetry-preserving lattice strain (training augmentation).
* :mod:`specfusion_lib.crystal_system.peak_features`: peak positions in Q² and indexing fits
  of a pattern (features that expose the lattice metric).
* :mod:`specfusion_lib.crystal_system.peak_classifier`: the gradient-boosted crystal-system
  classifier on those features (the real-structure model of notebook 07).
* :mod:`specfusion_lib.crystal_system.training`: training of the CNN-Transformer (Fig. S19),
  checkpoints, and the predictor behind ``specfusion predict-crystal-system``.
* :mod:`specfusion_lib.crystal_system.reports`: metrics, per-class accuracy, random-forest
  baseline, accuracy vs noise (Fig. 4c,d, S20).
* :mod:`specfusion_lib.crystal_system.generalisation`: the model trained on the demo's training
  families + real structures under lattice strain, and the real-structure check.
* :mod:`specfusion_lib.crystal_system.fusion`: XANES-only vs PXRD-only vs fused models on one
  split (Fig. S21).
"""

from __future__ import annotations
