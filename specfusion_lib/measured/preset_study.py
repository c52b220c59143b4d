"""Which FEFF10 settings make simulated spectra look measured, per CPU second.

The models learn from FEFF10 spectra and are asked about measured ones. This module scores
FEFF card presets (:data:`specfusion_lib.simulate.feff.PRESETS`) against the measured
transition-metal spectra of ``experiment.csv`` — on the **development half** of the measured
compounds only (:mod:`specfusion_lib.measured.halves`), because the preset it picks is a
choice and the scoring half must not take part in choices.

For every development record with a snapshot compound (:func:`~specfusion_lib.measured.study.
match_measured`) every inequivalent absorbing site is simulated with each preset through the
resumable FEFF runner (:func:`~specfusion_lib.simulate.runner.run_jobs`, one cache folder),
site spectra are averaged by multiplicity, and the result is compared with the measured
spectrum:

* **shape**: :func:`~specfusion_lib.measured.domain_shift.spectral_agreement` — Pearson
  correlation of the model inputs on each spectrum's own E0, after the best alignment shift,
  and after the best Gaussian post-broadening (FWHM from
  :data:`~specfusion_lib.measured.domain_shift.BROADENING_GRID_EV`);
* **post-broadening**: the same, after a Lorentzian of the element's tabulated core-hole
  width (:func:`core_hole_width`) followed by the best Gaussian (instrumental) — FEFF
  already includes the core-hole lifetime in its self-energy, so this asks whether more
  Lorentzian width helps;
* **pre-edge** (:func:`pre_edge_height`): the largest edge-step-normalised μ between 22 and
  3 eV below the half-step edge position
  (:func:`~specfusion_lib.measured.chemical_shift.edge_position`), for measured and
  simulated; its error is reported separately for tetrahedral d⁰ absorbers (Cr⁶⁺, V⁵⁺,
  Mn⁷⁺, Ti⁴⁺ with four neighbours), whose strong pre-edge peak carries oxidation state and
  coordination;
* **white line**: the largest normalised μ within 30 eV above the edge position, simulated
  over measured (1 = right height);
* **chemical shift**: edge offsets from the tabulated edge
  (:func:`~specfusion_lib.measured.chemical_shift.shift_agreement`), Spearman over the
  development compounds of elements with two or more of them;
* **cost**: mean FEFF wall seconds per site on this machine, and the ratio to ``fast``.

:func:`preset_summary` reduces the per-record table to one row per preset;
:func:`choose_preset` picks the default by fidelity per cost: within a cost cap (2x
``fast``), a preset that keeps the spectral shape and reproduces the chemical shift better
wins (see its docstring for why the shape score alone cannot decide).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from specfusion_lib.core.errors import ConfigurationError, SpecfusionError, SpectrumError
from specfusion_lib.measured.chemical_shift import edge_offset, edge_position, shift_agreement
from specfusion_lib.measured.domain_shift import spectral_agreement
from specfusion_lib.measured.halves import MeasuredHalves
from specfusion_lib.spectra.xanes import XANESSpectrum, broaden, normalize_edge_step

if TYPE_CHECKING:
    from specfusion_lib.data.measured import MeasuredRecord
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "D0_TETRAHEDRAL",
    "PRESET_CANDIDATES",
    "choose_preset",
    "core_hole_width",
    "pre_edge_height",
    "preset_summary",
    "run_preset_study",
    "white_line_height",
]

#: Presets compared by default (``paper`` is costly: give it a subset, see the benchmark).
PRESET_CANDIDATES: tuple[str, ...] = ("fast", "fast-scf")
#: Absorber and oxidation state of d⁰ ions whose tetrahedral sites give a strong pre-edge.
D0_TETRAHEDRAL: frozenset[tuple[str, int]] = frozenset(
    {("Cr", 6), ("V", 5), ("Mn", 7), ("Ti", 4)})
#: Pre-edge search range relative to the half-step edge position (eV).
PRE_EDGE_RANGE_EV: tuple[float, float] = (-22.0, -3.0)
#: White-line search range above the half-step edge position (eV).
WHITE_LINE_RANGE_EV: tuple[float, float] = (0.0, 30.0)


def _normalised(spectrum: XANESSpectrum) -> tuple[np.ndarray, np.ndarray, float]:
    norm = normalize_edge_step(spectrum)
    return np.asarray(norm.energy, float), np.asarray(norm.mu_norm, float), \
        edge_position(spectrum)


def pre_edge_height(spectrum: XANESSpectrum) -> float:
    """Largest normalised μ in :data:`PRE_EDGE_RANGE_EV` around the half-step edge position.

    Returns:
        The height in edge-step units, or NaN when the spectrum has no data there.
    """
    x, y, edge = _normalised(spectrum)
    inside = (x >= edge + PRE_EDGE_RANGE_EV[0]) & (x <= edge + PRE_EDGE_RANGE_EV[1])
    return float(y[inside].max()) if inside.any() else math.nan


def white_line_height(spectrum: XANESSpectrum) -> float:
    """Largest normalised μ in :data:`WHITE_LINE_RANGE_EV` above the edge position."""
    x, y, edge = _normalised(spectrum)
    inside = (x >= edge + WHITE_LINE_RANGE_EV[0]) & (x <= edge + WHITE_LINE_RANGE_EV[1])
    return float(y[inside].max()) if inside.any() else math.nan


def core_hole_width(element: str, edge: str = "K") -> float:
    """Tabulated core-level width (eV, FWHM of the Lorentzian; ``xraydb.core_width``)."""
    import xraydb

    return float(xraydb.core_width(element, edge))


def _structure(snapshot: Snapshot, material_id: str) -> Structure:
    row = snapshot.materials.loc[snapshot.materials["material_id"] == material_id].iloc[0]
    raw = row["structure"]
    return Structure.from_str(raw, fmt="json") if isinstance(raw, str) else \
        Structure.from_dict(raw)


def run_preset_study(records: Sequence[MeasuredRecord], snapshot: Snapshot,
                     halves: MeasuredHalves, cache_dir: str | os.PathLike[str], *,
                     presets: Sequence[str] = PRESET_CANDIDATES,
                     presets_for: Mapping[str, Sequence[str]] | None = None,
                     half: str = "development", workers: int | None = None,
                     progress: bool = True) -> pd.DataFrame:
    """Simulate the measured compounds of one half with each preset and score the spectra.

    Args:
        records: Measured records (:func:`~specfusion_lib.data.measured.read_measured_xanes`).
        snapshot: Snapshot holding the compounds' structures.
        halves: The committed halves.
        cache_dir: FEFF cache folder (resumable; rerunning reads finished spectra).
        presets: Presets run for every compound.
        presets_for: Extra presets run only for the named formulas (``{"paper": ["MnO"]}``).
        half: ``"development"`` (choices) or ``"scoring"`` (only to report, never to choose).
        workers: FEFF worker processes (default: all cores).
        progress: Show progress bars.

    Returns:
        One row per (record, preset): ``key``, ``formula``, ``element``, ``preset``,
        ``oxidation_state``, ``coordination_number``, ``d0_tetrahedral``, ``n_sites``,
        ``seconds_per_site``, the :class:`~specfusion_lib.measured.domain_shift.
        SpectralAgreement` fields, ``pre_edge_measured`` / ``_simulated``,
        ``white_line_ratio``, ``offset_measured`` / ``_simulated``. Compounds whose FEFF run
        failed are listed with ``error``.

    Raises:
        ConfigurationError: ``half`` is not a half's name, or nothing to simulate.
    """
    from specfusion_lib.measured.study import match_measured, reference_labels
    from specfusion_lib.simulate.cache import SpectrumCache
    from specfusion_lib.simulate.runner import assemble_spectra, plan_jobs, run_jobs

    if half not in ("development", "scoring"):
        raise ConfigurationError(f"half must be 'development' or 'scoring', not {half!r}")
    wanted = set(halves.development if half == "development" else halves.scoring)
    chosen = [r for r in records if r.is_transition_metal and r.formula in wanted]
    matches = match_measured(chosen, snapshot)
    chosen = [r for r in chosen if matches[r.key].material_id is not None]
    if not chosen:
        raise ConfigurationError(f"no {half} compound of the measured file is in the snapshot")
    cache = SpectrumCache(cache_dir)
    structures = {matches[r.key].material_id: _structure(snapshot, matches[r.key].material_id)
                  for r in chosen}
    extra = {p: set(f) for p, f in (presets_for or {}).items()}
    rows: list[dict[str, Any]] = []
    for preset in [*presets, *[p for p in extra if p not in presets]]:
        subset = [r for r in chosen if preset in presets or r.formula in extra.get(preset, ())]
        plan = {}
        for r in subset:
            plan.setdefault(matches[r.key].material_id, []).append(r.element)
        jobs = plan_jobs(structures, {m: sorted(set(e)) for m, e in plan.items()},
                         preset=preset)
        report = run_jobs(jobs, cache, workers=workers, progress=progress)
        logger.info("preset study, %s: %s", preset, report.summary())
        spectra = assemble_spectra(jobs, cache, warn=False)
        for r in subset:
            mid = matches[r.key].material_id
            labels = reference_labels(snapshot, mid, r.element)
            ox = float(labels["oxidation_state"]) if labels["oxidation_state"] else math.nan
            cn = float(labels["coordination_number"]) if labels["coordination_number"] \
                else math.nan
            row: dict[str, Any] = {
                "key": r.key, "formula": r.formula, "element": r.element, "preset": preset,
                "half": half, "oxidation_state": ox, "coordination_number": cn,
                "d0_tetrahedral": (r.element, int(ox) if ox == ox else -1) in D0_TETRAHEDRAL
                and cn == 4.0}
            sim = spectra.get((mid, r.element, "K"))
            if sim is None:
                row["error"] = spectra.incomplete.get((mid, r.element, "K"), "not simulated")
                rows.append(row)
                continue
            simulated = XANESSpectrum(np.asarray(sim.energy), np.asarray(sim.mu),
                                      element=r.element, edge="K",
                                      source=f"{mid} {r.element} K ({preset})")
            row["n_sites"] = len(sim.sites)
            row["seconds_per_site"] = float(np.mean([s.wall_time_s for s in sim.sites]))
            try:
                agreement = spectral_agreement(r.spectrum, simulated)
                row.update(agreement.__dict__)
                width = core_hole_width(r.element)
                lorentz = spectral_agreement(r.spectrum, broaden(simulated, width, "lorentzian"))
                row["core_hole_width_ev"] = width
                row["pearson_lorentz_broadened"] = lorentz.pearson_broadened
                row["best_fwhm_after_lorentz_ev"] = lorentz.best_fwhm_ev
                row["pre_edge_measured"] = pre_edge_height(r.spectrum)
                row["pre_edge_simulated"] = pre_edge_height(simulated)
                row["white_line_ratio"] = (white_line_height(simulated)
                                           / white_line_height(r.spectrum))
                row["offset_measured"] = edge_offset(r.spectrum)
                row["offset_simulated"] = edge_offset(simulated)
            except (SpectrumError, SpecfusionError) as exc:
                row["error"] = str(exc).splitlines()[0]
            rows.append(row)
    return pd.DataFrame(rows)


def preset_summary(study: pd.DataFrame) -> pd.DataFrame:
    """One row per preset: fidelity, pre-edge, white line, chemical shift and cost.

    Columns: ``preset``, ``n`` (records scored), ``pearson_e0`` / ``pearson_aligned`` /
    ``pearson_broadened`` (medians), ``best_fwhm_ev`` (median),
    ``pearson_lorentz_broadened`` (median, core-hole Lorentzian first), ``pre_edge_error_d0`` (mean
    absolute error of the pre-edge height over tetrahedral d⁰ records, edge-step units),
    ``white_line_ratio`` (median), ``shift_spearman``, ``seconds_per_site`` (mean) and
    ``cost_vs_fast``. Presets run on a subset are compared on the records they have.
    """
    ok = study.loc[study.get("error", pd.Series(index=study.index, dtype=object)).isna()]
    rows = []
    fast_cost = ok.loc[ok["preset"] == "fast", "seconds_per_site"]
    for preset, group in ok.groupby("preset", sort=False):
        d0 = group.loc[group["d0_tetrahedral"].astype(bool)]
        shifts = shift_agreement(group)
        same = ok.loc[(ok["preset"] == "fast") & ok["key"].isin(group["key"]),
                      "seconds_per_site"]
        rows.append({
            "preset": preset, "n": len(group),
            "pearson_e0": float(group["pearson_e0"].median()),
            "pearson_aligned": float(group["pearson_aligned"].median()),
            "pearson_broadened": float(group["pearson_broadened"].median()),
            "best_fwhm_ev": float(group["best_fwhm_ev"].median()),
            "pearson_lorentz_broadened": float(group["pearson_lorentz_broadened"].median())
            if "pearson_lorentz_broadened" in group else math.nan,
            "pre_edge_error_d0": float((d0["pre_edge_simulated"]
                                        - d0["pre_edge_measured"]).abs().mean())
            if len(d0) else math.nan,
            "white_line_ratio": float(group["white_line_ratio"].median()),
            "shift_spearman": shifts["spearman"],
            "seconds_per_site": float(group["seconds_per_site"].mean()),
            "cost_vs_fast": float(group["seconds_per_site"].mean() / same.mean())
            if len(same) and len(fast_cost) else math.nan,
        })
    return pd.DataFrame(rows)


def choose_preset(summary: pd.DataFrame, *, cost_cap: float = 2.0,
                  shape_tolerance: float = 0.02, min_shift_gain: float = 0.3
                  ) -> tuple[str, str]:
    """The default preset by fidelity per cost (see the module docstring).

    The aligned, broadened Pearson r cannot see the chemical shift (the alignment removes
    it by construction), and the shift is the textbook oxidation-state signal. The rule is
    therefore: among presets costing at most ``cost_cap`` times ``fast`` whose median
    broadened Pearson r is at most ``shape_tolerance`` below ``fast``'s, take the one whose
    chemical-shift Spearman beats ``fast``'s by at least ``min_shift_gain`` (the best such);
    failing that, the best shape gain of at least ``shape_tolerance``; failing that,
    ``fast``.

    Args:
        summary: :func:`preset_summary` of the development half.
        cost_cap: Largest cost relative to ``fast``.
        shape_tolerance: Largest loss (and smallest gain) of median broadened Pearson r.
        min_shift_gain: Smallest gain in chemical-shift Spearman.

    Returns:
        ``(preset, reason)``.

    Raises:
        ConfigurationError: The summary has no ``fast`` row.
    """
    if "fast" not in set(summary["preset"]):
        raise ConfigurationError("the preset summary has no 'fast' row to compare with")
    fast = summary.loc[summary["preset"] == "fast"].iloc[0]
    shape0 = float(fast["pearson_broadened"])
    shift0 = float(fast.get("shift_spearman", math.nan))
    eligible = summary.loc[(summary["preset"] != "fast")
                           & (summary["cost_vs_fast"] <= cost_cap)
                           & (summary["pearson_broadened"] >= shape0 - shape_tolerance)]
    if "shift_spearman" in eligible and not math.isnan(shift0):
        better = eligible.loc[eligible["shift_spearman"] >= shift0 + min_shift_gain]
        if len(better):
            row = better.sort_values("shift_spearman", ascending=False).iloc[0]
            return str(row["preset"]), (
                f"chemical-shift Spearman {row['shift_spearman']:.2f} vs {shift0:.2f} (fast), "
                f"median broadened Pearson {row['pearson_broadened']:.3f} vs {shape0:.3f}, "
                f"at {row['cost_vs_fast']:.2f}x the cost (cap {cost_cap:g}x)")
    shape = eligible.loc[eligible["pearson_broadened"] >= shape0 + shape_tolerance]
    if len(shape):
        row = shape.sort_values("pearson_broadened", ascending=False).iloc[0]
        return str(row["preset"]), (
            f"median broadened Pearson {row['pearson_broadened']:.3f} vs {shape0:.3f} (fast) "
            f"at {row['cost_vs_fast']:.2f}x the cost (cap {cost_cap:g}x)")
    return "fast", "no preset within the cost cap reproduces measured spectra better than 'fast'"
