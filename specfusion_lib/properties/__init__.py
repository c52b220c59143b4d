"""SpecFusionNet property prediction (main text Fig. 2; SI §S1.1, Fig. S4–S8).

* :mod:`specfusion_lib.properties.features`: spectra + element descriptors → model inputs,
  task labels per material or per TM element.
* :mod:`specfusion_lib.properties.randomised`: training inputs plus domain-randomised copies.
* :mod:`specfusion_lib.properties.train`: one model per task and seed (notebooks 02–06).
* :mod:`specfusion_lib.properties.multitask`: the multi-task option (shared encoder, one head
  per target).
* :mod:`specfusion_lib.properties.runs`: the tasks of a notebook trained and tabulated next
  to the paper and trivial baselines (Fig. 2c–h, S8).
* :mod:`specfusion_lib.properties.predict`: ``specfusion predict`` on a user's spectra.
"""

from __future__ import annotations
