"""The one training core of every model (SI §S1.1 protocol).

* :mod:`specfusion_lib.training.loop`: the epoch loop (seeded batch order, timing, history),
  early stopping on the validation loss, and the cross-entropy classifier fit built on it.
* :mod:`specfusion_lib.training.splits`: train / validation / test splits (random or by
  group) and the seeded material cap of the profiles.
* :mod:`specfusion_lib.training.metrics`: accuracy / macro-F1, MAE / RMSE / R², the trivial
  baselines, and the test-prediction table every trainer returns.
* :mod:`specfusion_lib.training.reports`: accuracy per class and group with Wilson
  intervals, top-k, balanced accuracy, accuracy vs noise.
* :mod:`specfusion_lib.training.checkpoints`: checkpoint files with metadata (snapshot id and
  checksums, seed, profile, metrics), loading, and the resume rule.
"""

from __future__ import annotations
