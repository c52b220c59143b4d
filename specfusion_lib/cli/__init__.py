"""The ``specfusion`` command line.

* :mod:`specfusion_lib.cli.main`: the parser and sub-commands (``data``, ``predict``,
  ``preprocess-xanes``, ``simulate-pxrd``, ``figures-index``, ...).
* :mod:`specfusion_lib.cli.crystal_system`: ``specfusion predict-crystal-system`` (its parser
  imports no torch).
* :mod:`specfusion_lib.cli.infer_structure`: ``specfusion infer-structure`` (SI §S2).
"""

from __future__ import annotations
