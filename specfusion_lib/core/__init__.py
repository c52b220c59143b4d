"""Foundations every stage uses; no torch, no plotting.

* :mod:`specfusion_lib.core.errors`: the exception hierarchy (every error names the file /
  structure / site and the problem; SPEC §8).
* :mod:`specfusion_lib.core.atomic`: atomic writes (temporary file, then rename).
* :mod:`specfusion_lib.core.elements`: element descriptors of SI Fig. S5 (χ, radius, IE1–IE3,
  Z, element type) and the transition-metal set.
* :mod:`specfusion_lib.core.composition`: formula parsing and normalisation.
* :mod:`specfusion_lib.core.profiles`: the ``smoke`` / ``quick`` / ``paper`` run profiles
  (SI §S1.1 protocol for ``paper``).
* :mod:`specfusion_lib.core.tasks`: the prediction tasks and their Materials Project label
  names (SPEC §3).
* :mod:`specfusion_lib.core.paper`: every reference value of the paper (Wang et al., Chem. Sci.
  2026) that the library compares against, with its source; the only place a paper number is
  typed.
* :mod:`specfusion_lib.core.logs`: ``configure_logging``, the opt-in handler for the package's
  log records (level from the argument or ``SPECFUSION_LOG_LEVEL``; stdlib only).
* :mod:`specfusion_lib.core.parallel`: how many worker processes a parallel stage may start
  (the CPUs of this process's affinity mask).
"""

from __future__ import annotations
