"""Structure inference from predicted spectral descriptors (SI §S2, main text Fig. 5).

Modules, one concern each:

* :mod:`~specfusion_lib.inference.formulas`: charge-balanced formulas (SI §S2.1), mixed
  valence on distinct sites.
* :mod:`~specfusion_lib.inference.radii`: Shannon radii lookup.
* :mod:`~specfusion_lib.inference.templates`: template database and retrieval (§S2.2, §S2.4).
* :mod:`~specfusion_lib.inference.candidates`: substitution, relaxation, PXRD and XANES
  comparison (§S2.3), FEFF10 and forward-model XANES of candidates.
* :mod:`~specfusion_lib.inference.lattice_refinement`: a candidate's cell fitted to the input
  powder pattern (atoms fixed, symmetry kept) before the PXRD comparison.
* :mod:`~specfusion_lib.inference.search`: the whole pipeline in one call, CIF output.
* :mod:`~specfusion_lib.inference.verdict`: the default "no match" threshold.
* :mod:`~specfusion_lib.inference.benchmark`: held-out benchmark of notebook 09 (Fig. 5b).
* :mod:`~specfusion_lib.inference.system_inputs`: the benchmark's crystal-system
  probabilities from a peak model that never saw the compounds' families.
* :mod:`~specfusion_lib.inference.walkthrough`: one compound step by step (notebook 10).
* :mod:`~specfusion_lib.cli.infer_structure`: ``specfusion infer-structure``.
"""
