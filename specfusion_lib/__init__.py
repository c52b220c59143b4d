"""specfusion: machine learning from X-ray spectra (XANES + PXRD), as a reproducible paper package.

The library behind the notebooks of the Chem. Sci. 2026 paper "Spectroscopy-Informed
XANES-PXRD Framework for Multi-Property Prediction and Structure Inference". Notebooks only
call functions from here; see the README for the module map.
"""

from __future__ import annotations

import logging
import os

__version__ = "0.1.0"

__all__ = ["__version__"]

# A library leaves logging configuration to the application: records go nowhere unless the
# application (or ``specfusion --log-level``) installs a handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Exception: when SPECFUSION_LOG_LEVEL is set (run_all.sh exports it for the notebooks), the
# environment has asked for logs, so the package configures them on import. The notebooks then
# show the library's log records without a set-up cell in each notebook, and a plain
# ``import specfusion_lib`` without the variable still configures nothing.
if os.environ.get("SPECFUSION_LOG_LEVEL", "").strip():
    from specfusion_lib.core.logs import configure_logging

    configure_logging()
