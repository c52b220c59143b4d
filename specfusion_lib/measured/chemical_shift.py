"""The chemical shift: does FEFF10 reproduce the edge shifts between oxidation states?

A K edge moves to higher energy as the absorber's oxidation state rises (a few eV per unit
of charge for 3d metals). The model input (:func:`~specfusion_lib.spectra.xanes.preprocess_xanes`)
is windowed on each spectrum's own E0, which removes that shift. Giving the models the edge
position as an input only helps if the simulated spectra they learn from shift the way
measured ones do, so this module measures it on the measured compounds of ``experiment.csv``
and their simulated counterparts in the snapshot.

Method:

* **Edge position** (:func:`edge_position`): the energy where the edge-step-normalised μ(E)
  (:func:`~specfusion_lib.spectra.xanes.normalize_edge_step`) rises through one half and
  stays above it for 10 eV (a pre-edge peak, however tall, falls back), linearly
  interpolated. The half-step energy is used instead of the derivative maximum because
  strong pre-edge peaks (tetrahedral Cr⁶⁺, V⁵⁺) capture the derivative maximum and would
  move E0 by ~10 eV.
* **Offset** from the element's tabulated K edge (``xraydb``; metal foil):
  ``offset = edge position - tabulated edge``, for measured and simulated spectra.
* **Shifts** (:func:`shift_agreement`): inside each element, offsets minus the element's
  mean offset over the compounds compared (this removes FEFF's constant absolute-energy
  error per element and a beamline's calibration offset); Spearman rank correlation of
  simulated vs measured shifts over all compounds of elements with at least two compounds,
  and Pearson / the slope through the origin for the size of the shift.
* **Collection spread** (:func:`collection_spread`): the same compound measured in several
  collections (V2O5, V2O3, VO2 in ``experiment.csv``): range of the measured edge positions,
  the calibration noise a model with an edge-offset input has to tolerate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from specfusion_lib.core.errors import SpectrumError
from specfusion_lib.spectra.xanes import (
    XANESSpectrum,
    normalize_edge_step,
    sustained_crossing,
    tabulated_edge_energy,
)

if TYPE_CHECKING:
    from specfusion_lib.data.measured import MeasuredRecord
    from specfusion_lib.measured.halves import MeasuredHalves
    from specfusion_lib.measured.study import SnapshotMatch

__all__ = [
    "HALF_STEP",
    "STAY_ABOVE_EV",
    "WHITE_LINE_SEARCH_EV",
    "collection_spread",
    "edge_offset",
    "edge_position",
    "edge_positions",
    "shift_agreement",
]

#: Normalised μ at which the edge position is read.
HALF_STEP: float = 0.5
#: The main edge is searched up to this far above E0 (eV).
WHITE_LINE_SEARCH_EV: float = 30.0
#: The normalised μ must stay above :data:`HALF_STEP` this long (eV) after the main edge.
STAY_ABOVE_EV: float = 10.0


def edge_position(spectrum: XANESSpectrum) -> float:
    """Energy (eV) of the half-step crossing of the main edge (see the module docstring).

    The main edge is the first upward crossing of :data:`HALF_STEP` (searched from 20 eV
    below E0 to :data:`WHITE_LINE_SEARCH_EV` above it) after which the normalised μ stays
    above it for :data:`STAY_ABOVE_EV`; a pre-edge peak, however tall, is narrower and
    falls back below.

    Raises:
        SpectrumError: No such crossing.
    """
    norm = normalize_edge_step(spectrum)
    x = np.asarray(norm.energy, dtype=float)
    found = sustained_crossing(
        x, norm.mu_norm, HALF_STEP, STAY_ABOVE_EV, start=int(np.searchsorted(x, norm.e0 - 20.0)),
        stop=int(np.searchsorted(x, norm.e0 + WHITE_LINE_SEARCH_EV)))
    if found is not None:
        return found
    raise SpectrumError(f"{spectrum.source or 'spectrum'}: no rise through {HALF_STEP} that "
                        f"stays above it for {STAY_ABOVE_EV:g} eV near E0")


def edge_offset(spectrum: XANESSpectrum) -> float:
    """Edge position minus the element's tabulated K-edge energy (eV)."""
    return edge_position(spectrum) - tabulated_edge_energy(spectrum.element, spectrum.edge)


def edge_positions(records: Sequence[MeasuredRecord], matches: Mapping[str, SnapshotMatch],
                   halves: MeasuredHalves | None = None,
                   oxidation_states: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Measured and simulated edge offsets of every matched TM record.

    Args:
        records: Measured records.
        matches: Record key → snapshot match
            (:func:`~specfusion_lib.measured.study.match_measured`).
        halves: Adds a ``half`` column when given.
        oxidation_states: Record key → reference oxidation state (added as a column).

    Returns:
        One row per TM record with a simulated counterpart: ``key``, ``formula``, ``element``,
        ``collection``, ``half``, ``oxidation_state``, ``offset_measured``,
        ``offset_simulated`` (eV). Records whose edge cannot be read are listed with NaN.
    """
    rows = []
    for rec in records:
        match = matches.get(rec.key)
        if not rec.is_transition_metal or match is None or match.simulated is None:
            continue
        row = {"key": rec.key, "formula": rec.formula, "element": rec.element,
               "collection": rec.collection,
               "half": halves.half_of(rec.formula) if halves is not None else "",
               "oxidation_state": (oxidation_states or {}).get(rec.key, np.nan)}
        for name, spectrum in (("measured", rec.spectrum), ("simulated", match.simulated)):
            try:
                row[f"offset_{name}"] = edge_offset(spectrum)
            except SpectrumError:
                row[f"offset_{name}"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _shifts(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame.dropna(subset=["offset_measured", "offset_simulated"])
    by_compound = ok.groupby(["element", "formula"], as_index=False)[
        ["offset_measured", "offset_simulated"]].mean()
    counts = by_compound.groupby("element")["formula"].transform("size")
    by_compound = by_compound.loc[counts >= 2].copy()
    for name in ("measured", "simulated"):
        col = f"offset_{name}"
        by_compound[f"shift_{name}"] = by_compound[col] - by_compound.groupby("element")[
            col].transform("mean")
    return by_compound


def shift_agreement(frame: pd.DataFrame) -> dict[str, float]:
    """Rank and linear agreement of simulated vs measured shifts (see the module docstring).

    Args:
        frame: Output of :func:`edge_positions` (or a subset, e.g. one half). Compounds
            measured twice are averaged first.

    Returns:
        ``n_compounds``, ``n_elements``, ``spearman``, ``pearson``, ``slope`` (simulated per
        measured eV, least squares through the origin) and ``mae_ev`` (shifts); NaN where
        fewer than three compounds.
    """
    shifts = _shifts(frame)
    n = len(shifts)
    out = {"n_compounds": float(n), "n_elements": float(shifts["element"].nunique()),
           "spearman": np.nan, "pearson": np.nan, "slope": np.nan, "mae_ev": np.nan}
    if n < 3:
        return out
    m = shifts["shift_measured"].to_numpy()
    s = shifts["shift_simulated"].to_numpy()
    out["spearman"] = float(spearmanr(m, s).statistic)
    out["pearson"] = float(pearsonr(m, s).statistic)
    out["slope"] = float(np.dot(m, s) / np.dot(m, m)) if np.dot(m, m) > 0 else np.nan
    out["mae_ev"] = float(np.mean(np.abs(m - s)))
    return out


def collection_spread(frame: pd.DataFrame) -> pd.DataFrame:
    """Range of the measured edge position of compounds measured more than once.

    Returns:
        ``formula``, ``element``, ``n`` (measurements), ``collections`` and ``range_ev``.
    """
    ok = frame.dropna(subset=["offset_measured"])
    rows = []
    for (formula, element), group in ok.groupby(["formula", "element"]):
        if len(group) < 2:
            continue
        rows.append({"formula": formula, "element": element, "n": len(group),
                     "collections": ", ".join(sorted(group["collection"].astype(str))),
                     "range_ev": float(np.ptp(group["offset_measured"].to_numpy()))})
    return pd.DataFrame(rows, columns=["formula", "element", "n", "collections", "range_ev"])
