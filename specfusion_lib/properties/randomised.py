"""Domain-randomised copies of training inputs (the ``augment`` of the trainers).

:func:`randomised_copies` takes model inputs of a snapshot
(:class:`~specfusion_lib.properties.features.FeatureSet`) and returns ``settings.copies``
copies of every material in which each spectrum is a fresh random measured-like variation
of the material's raw snapshot spectrum
(:func:`~specfusion_lib.spectra.augment.randomise_spectrum`), preprocessed exactly like any
other spectrum but with the model window placed on a jittered E0
(:func:`~specfusion_lib.spectra.augment.randomised_e0`). Copies keep the material id and the
structure family, so the family split puts a material and its copies on the same side and
labels are joined by id as usual. A variation the preprocessing refuses (rare: a cut that
leaves too little of the window) keeps the clean spectrum in that copy and is counted.

:class:`Randomiser` binds a snapshot, the settings and a seed into the callable the trainers
take as ``augment`` (:func:`specfusion_lib.properties.train.train_model`): the copies are
made of the *training* rows only, after the split, so validation and test rows stay clean.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from specfusion_lib.core.errors import SpecfusionError
from specfusion_lib.properties.features import FeatureSet
from specfusion_lib.spectra.augment import (
    DomainRandomisation,
    randomise_spectrum,
    randomised_e0,
)
from specfusion_lib.spectra.xanes import XANESSpectrum, preprocess_xanes

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = ["Randomiser", "randomised_copies"]


def randomised_copies(snapshot: Snapshot, features: FeatureSet,
                      settings: DomainRandomisation | None = None, *,
                      seed: int = 0, progress: bool = False) -> FeatureSet:
    """``settings.copies`` randomised copies of every material of ``features``.

    Args:
        snapshot: The snapshot the features were built from (raw spectra).
        features: Clean inputs (already without held-out materials).
        settings: Ranges of the variations (default :class:`DomainRandomisation`).
        seed: Seed; copy ``k`` draws from ``numpy.random.default_rng([seed, k])``.
        progress: Show a progress bar.

    Returns:
        A :class:`FeatureSet` of ``copies · N`` rows: copy 1 of every row, then copy 2, ...
    """
    settings = settings or DomainRandomisation()
    spectra = snapshot.spectra
    spectra = spectra.loc[spectra["edge"].astype(str).str.upper() == features.edge.upper()]
    raw = {(str(m), str(e)): (np.asarray(en), np.asarray(mu)) for m, e, en, mu in
           zip(spectra["material_id"], spectra["element"], spectra["energy"], spectra["mu"],
               strict=True)}
    blocks = []
    refused = 0
    lo, hi = features.window
    for k in range(settings.copies):
        rng = np.random.default_rng([seed, k])
        out = features.spectra.copy()
        rows = tqdm(range(len(features)), desc=f"randomised copy {k + 1}/{settings.copies}",
                    disable=not progress)
        for i in rows:
            mid = features.material_ids[i]
            for j, element in enumerate(features.elements[i]):
                if not features.spectrum_mask[i, j] or (mid, element) not in raw:
                    continue
                energy, mu = raw[(mid, element)]
                clean = XANESSpectrum(energy, mu, element=element, edge=features.edge,
                                      source=f"{mid} {element} {features.edge}")
                try:
                    varied = randomise_spectrum(clean, rng, settings)
                    out[i, j] = preprocess_xanes(
                        varied, e0=randomised_e0(varied, rng, settings), window=(lo, hi),
                        n_points=features.n_points, standardize=True).values
                except SpecfusionError:
                    refused += 1
        blocks.append(out)
    if refused:
        logger.info("domain randomisation: %d variation(s) refused by the preprocessing kept "
                    "their clean spectrum", refused)
    n = settings.copies
    families = None if features.families is None else tuple(features.families) * n
    return replace(
        features,
        material_ids=tuple(features.material_ids) * n,
        elements=tuple(features.elements) * n,
        descriptors=np.concatenate([features.descriptors] * n),
        element_mask=np.concatenate([features.element_mask] * n),
        tm_mask=np.concatenate([features.tm_mask] * n),
        spectra=np.concatenate(blocks).astype(np.float32),
        spectrum_mask=np.concatenate([features.spectrum_mask] * n),
        families=families,
    )


class Randomiser:
    """``augment`` callable of the trainers: :func:`randomised_copies` of the rows given.

    Args:
        snapshot: The snapshot whose raw spectra are varied.
        settings: Ranges (default :class:`~specfusion_lib.spectra.augment.DomainRandomisation`).
        seed: Seed of the copies.
    """

    def __init__(self, snapshot: Snapshot, settings: DomainRandomisation | None = None,
                 seed: int = 0) -> None:
        self.snapshot = snapshot
        self.settings = settings or DomainRandomisation()
        self.seed = int(seed)

    @property
    def description(self) -> str:
        """Stored in checkpoint metadata (``augmentation``); equal settings, equal text."""
        return f"domain randomisation {self.settings!r} seed {self.seed}"

    def __call__(self, features: FeatureSet) -> FeatureSet:
        return randomised_copies(self.snapshot, features, self.settings, seed=self.seed)

    def __repr__(self) -> str:
        return f"Randomiser({self.description})"
