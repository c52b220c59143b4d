"""The default "no match" threshold of the structure search.

A search answers "no match" when its best candidate's R_PXRD (profile R factor of the
smoothed, area-normalised patterns; 0 identical, 2 no overlap;
:func:`~specfusion_lib.inference.candidates.r_pxrd`) stays above :data:`NO_MATCH_R_PXRD` even
after widening its hypotheses (:func:`~specfusion_lib.inference.search.infer_structure`).

The value was set by notebook 09 (quick profile, demo snapshot, 2026-12-05, the search of
that day: 95 % credible set of oxidation states, mixed valence, four crystal systems from the
peak model, 20 candidates screened) on the *validation half* of its 109 held-out compounds
only (:func:`~specfusion_lib.inference.benchmark.no_match_threshold`: the R_PXRD below which
90 % of that half's right top-1 answers lie, predicted inputs): 1.167. On the other half it
kept 40 of 40 right answers as matches and flagged 7 of 15 wrong ones as "no match" (the
earlier search gave 1.019: 18 of 22 kept, 28 of 33 flagged); the notebook recomputes it on
every run (`tables/structure_inference_no_match.csv`), and this default is what the CLI and
notebook 10 use.
"""

from __future__ import annotations

__all__ = ["NO_MATCH_R_PXRD"]

#: R_PXRD above which the best candidate is no match (see the module docstring).
NO_MATCH_R_PXRD = 1.17
