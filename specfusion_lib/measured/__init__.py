"""Measured spectra (main text Table 1, Fig. 5c,d, Fig. 6; SI Fig. S26–S31).

* :mod:`specfusion_lib.measured.study`: the study of notebook 11: measured spectra matched to
  snapshot compounds held out of training, predictions on measured vs simulated spectra,
  the Table 1 analogue.
* :mod:`specfusion_lib.measured.domain_shift`: spectral agreement and the E0-template remedy.
* :mod:`specfusion_lib.measured.mixtures`: two-phase composites (Fig. 6, notebook 12).
"""

from __future__ import annotations
