"""Figures, one module per notebook group; every function returns a ``Figure``.

* :mod:`specfusion_lib.plotting.common`: style, message panels, ``save_figure`` /
  ``save_table`` (atomic, stable names).
* :mod:`specfusion_lib.plotting.dataset`: notebook 01 (Fig. S1–S3, S6, S7, S17).
* :mod:`specfusion_lib.plotting.properties`: notebooks 02–04 (Fig. 2c–h, S8).
* :mod:`specfusion_lib.plotting.interpret`: notebooks 05–06 (Fig. 3b–f, S13–S16).
* :mod:`specfusion_lib.plotting.crystal_system`: notebooks 07–08 (Fig. 4c,d, S18–S21).
* :mod:`specfusion_lib.plotting.inference`: notebooks 09–10 (Fig. 5b, S22–S25).
* :mod:`specfusion_lib.plotting.measured`: notebooks 11–12 (Table 1, Fig. 5c,d, 6, S26–S31).
* :mod:`specfusion_lib.plotting.xas_structure`: notebooks 13–14 (XAStruct forward and inverse).
* :mod:`specfusion_lib.plotting.cgxas`: notebook 15 (CGXAS Fig. 2–5 analogues).
* :mod:`specfusion_lib.plotting.figures_index`: the catalogue of every figure and
  ``figures/README.md``.
"""

from __future__ import annotations
