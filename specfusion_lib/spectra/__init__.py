"""Spectrum types, their processing and the readers of user files (SPEC §3–4).

* :mod:`specfusion_lib.spectra.xanes`: ``XANESSpectrum``, E0, edge-step normalisation, the
  200-point window, broadening and alignment (SI §S1.1).
* :mod:`specfusion_lib.spectra.augment`: domain randomisation of simulated XANES (broadening,
  scan range, grid, background, noise, E0 calibration) for training.
* :mod:`specfusion_lib.spectra.xanes_readers`: user XANES files (two-column, CSV, XDI).
* :mod:`specfusion_lib.spectra.pxrd`: ``PXRDPattern``, simulation (Voigt, Fig. S18),
  augmentation and pattern files.
"""
