"""specfusion: machine learning from X-ray spectra (XANES + PXRD), as a reproducible paper package.

The library behind the notebooks of the Chem. Sci. 2026 paper "Spectroscopy-Informed
XANES-PXRD Framework for Multi-Property Prediction and Structure Inference". Notebooks only
call functions from here; see the README for the module map.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
