"""Measured spectra (main text Table 1, Fig. 5c,d, Fig. 6; SI Fig. S26–S31).

* :mod:`specfusion_lib.measured.study`: the study of notebook 11: measured spectra matched to
  snapshot compounds held out of training, predictions on measured vs simulated spectra,
  the Table 1 analogue.
* :mod:`specfusion_lib.measured.halves`: the committed development / scoring halves of the
  measured compounds (choices on one, targets on the other).
* :mod:`specfusion_lib.measured.chemical_shift`: edge positions and whether FEFF10 reproduces
  the measured edge shifts between oxidation states.
* :mod:`specfusion_lib.measured.preset_study`: FEFF10 presets scored against measured spectra
  (shape, pre-edge, white line, chemical shift, cost).
* :mod:`specfusion_lib.measured.scores`: oxidation state / CN scored per half and element, with
  Wilson intervals and majority-class baselines; confusion matrices.
* :mod:`specfusion_lib.measured.domain_shift`: spectral agreement and the E0-template remedy.
* :mod:`specfusion_lib.measured.mixtures`: two-phase composites (Fig. 6, notebook 12).
"""

from __future__ import annotations
