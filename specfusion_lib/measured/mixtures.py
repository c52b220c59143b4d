"""Two-phase composites: their element-resolved XANES and predictions vs fraction (Fig. 6).

What a XANES measurement of a composite gives
---------------------------------------------
A K-edge spectrum is element-selective: the Cu K edge of a Cu2O/TiO2 composite comes from
every Cu atom of the sample, the Ti K edge from every Ti atom. Absorption adds up, so the raw
μ(E) at an element's edge is the sum over phases of (number of that element's atoms in the
phase) × (that phase's absorption per atom). After the usual edge-step normalisation, which
divides by the total edge jump, the normalised spectrum of element X is the average of the
phases' normalised X spectra weighted by the fraction of X atoms in each phase::

    mu_X(E) = sum_p w_p,X * mu_p,X(E),  w_p,X = n_p,X * x_p / sum_q n_q,X * x_q

with ``x_p`` the amount of phase ``p`` (formula units) and ``n_p,X`` the X atoms per formula
unit. Consequences:

* **Disjoint transition metals** (Cu2O/TiO2): Cu occurs only in Cu2O, so for every fraction
  strictly between 0 and 1 the composite's normalised Cu K edge *is* Cu2O's, and its Ti K edge
  is TiO2's. Only the composition changes with the fraction (and, in a real measurement, the
  edge-jump heights and the signal-to-noise, which normalisation removes). SpecFusionNet
  describes the non-spectral part of a compound by its *set* of elements (descriptors carry no
  stoichiometry), so its inputs, and thus its predictions, are the same for every fraction in
  (0, 1): the question the paper's Fig. 6 answers is which phase's spectrum dominates the
  prediction for the composite, not how it varies with the amount.
* **A shared transition metal** (MnO/MnO2, or two polymorphs): the normalised spectrum moves
  linearly from one phase's to the other's with the absorber-weighted fraction, and the
  predictions can vary continuously.

Spectra of one element from two phases are combined on a common energy grid (their overlap,
at the finer of the two median steps) after edge-step normalisation
(:func:`~specfusion_lib.spectra.xanes.normalize_edge_step`, ``mu_norm``); they must be on the
same absolute energy calibration (both measured, or both simulated), which :func:`mix_phases`
checks through :attr:`Phase.kind`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import ConfigurationError, SpecfusionError, SpectrumError
from specfusion_lib.data.measured import MeasuredRecord
from specfusion_lib.spectra.xanes import (
    ProcessedXANES,
    XANESSpectrum,
    normalize_edge_step,
)

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "KINDS",
    "MIN_OVERLAP_EV",
    "Composite",
    "Phase",
    "absorber_weights",
    "composites_table",
    "dominant_phase",
    "mix_phases",
    "mixture_series",
    "phase_from_measured",
    "phase_from_snapshot",
    "predict_mixtures",
    "pure_phase_references",
    "resolve_phase",
]

#: Kinds of spectra a phase can carry (spectra of one element are only mixed within a kind).
KINDS: tuple[str, ...] = ("measured", "simulated")
#: Smallest energy overlap (eV) of two spectra of one element that are mixed.
MIN_OVERLAP_EV: float = 30.0


@dataclass(frozen=True, eq=False)
class Phase:
    """One phase of a composite: formula unit and the K-edge spectra of its TMs.

    Attributes:
        name: Display name (usually the formula).
        composition: The formula unit.
        spectra: Element → raw spectrum of that element in this phase (every transition
            metal of ``composition`` needs one).
        kind: ``"measured"`` or ``"simulated"``.
        source: Where the spectra come from (shown in tables).
        material_id: The snapshot entry the spectra come from (simulated phases).

    Raises:
        ConfigurationError: A TM without spectrum, a spectrum of an element not in the
            phase, or an unknown kind.
    """

    name: str
    composition: Composition
    spectra: Mapping[str, XANESSpectrum]
    kind: str
    source: str = ""
    material_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigurationError(f"phase {self.name}: kind must be one of {KINDS}")
        present = {el.symbol for el in self.composition.elements}
        extra = sorted(set(self.spectra) - present)
        if extra:
            raise ConfigurationError(f"phase {self.name}: spectra of {', '.join(extra)}, which "
                                     f"is not in {self.composition.reduced_formula}")
        missing = sorted(e for e in present if e in TRANSITION_METALS and e not in self.spectra)
        if missing:
            raise ConfigurationError(f"phase {self.name}: no spectrum of the transition "
                                     f"metal(s) {', '.join(missing)}")


@dataclass(frozen=True, eq=False)
class Composite:
    """A composite of two phases at one fraction.

    Attributes:
        fraction: Amount of phase B in formula units, ``x_B / (x_A + x_B)``.
        composition: ``(1 - fraction) A + fraction B``.
        elements: Elements present (amount > 0), sorted.
        spectra: Element → normalised spectrum (``mu_norm``) of the composite.
        weights: Element → (weight of A, weight of B) of its spectrum.
        names: (name of A, name of B).
    """

    fraction: float
    composition: Composition
    elements: tuple[str, ...]
    spectra: dict[str, XANESSpectrum]
    weights: dict[str, tuple[float, float]] = field(default_factory=dict)
    names: tuple[str, str] = ("A", "B")


def absorber_weights(a: Composition, b: Composition,
                     fraction: float) -> dict[str, tuple[float, float]]:
    """Share of each element's atoms in phase A and B at a phase-B fraction.

    Method: ``w_A = (1 - f) n_A / ((1 - f) n_A + f n_B)``, ``w_B = 1 - w_A`` with ``n`` the
    atoms per formula unit; elements with no atoms at this fraction are left out.

    Raises:
        ConfigurationError: ``fraction`` outside [0, 1].
    """
    f = float(fraction)
    if not 0.0 <= f <= 1.0 or math.isnan(f):
        raise ConfigurationError(f"fraction must lie in [0, 1], got {fraction}")
    out = {}
    for el in sorted({e.symbol for e in a.elements} | {e.symbol for e in b.elements}):
        na, nb = (1.0 - f) * a[el], f * b[el]
        if na + nb > 0:
            out[el] = (na / (na + nb), nb / (na + nb))
    return out


def _normalised(spectrum: XANESSpectrum) -> XANESSpectrum:
    norm = normalize_edge_step(spectrum)
    return spectrum.replace(mu=norm.mu_norm)


def _mix_two(a: XANESSpectrum, b: XANESSpectrum, wa: float, wb: float,
             where: str) -> XANESSpectrum:
    lo, hi = max(a.energy[0], b.energy[0]), min(a.energy[-1], b.energy[-1])
    if hi - lo < MIN_OVERLAP_EV:
        raise SpectrumError(f"{where}: the two spectra overlap on {max(hi - lo, 0):.1f} eV only "
                            f"(at least {MIN_OVERLAP_EV:g} eV needed to mix them)")
    step = min(float(np.median(np.diff(a.energy))), float(np.median(np.diff(b.energy))))
    grid = np.linspace(lo, hi, int(np.floor((hi - lo) / step)) + 1)
    na, nb = _normalised(a), _normalised(b)
    mu = wa * np.interp(grid, na.energy, na.mu) + wb * np.interp(grid, nb.energy, nb.mu)
    return XANESSpectrum(grid, mu, element=a.element, edge=a.edge, source=where)


def mix_phases(a: Phase, b: Phase, fraction: float) -> Composite:
    """The composite of ``a`` and ``b`` at a phase-B fraction (see the module docstring).

    Method: for each element with a spectrum in a phase that contributes atoms of it, the
    phases' normalised spectra are weighted by :func:`absorber_weights`; an element whose
    atoms all come from one phase gets that phase's normalised spectrum on its own grid, two
    contributing phases are combined on the overlap of their grids.

    Args:
        a: Phase A (``fraction`` = 0 is pure A).
        b: Phase B (``fraction`` = 1 is pure B).
        fraction: Amount of B in formula units, in [0, 1].

    Returns:
        A :class:`Composite`.

    Raises:
        ConfigurationError: ``fraction`` outside [0, 1], or spectra of one element of
            different kinds (measured vs simulated: different energy calibrations).
        SpectrumError: Two spectra of one element that overlap too little.
    """
    weights = absorber_weights(a.composition, b.composition, fraction)
    f = float(fraction)
    composition = a.composition * (1.0 - f) + b.composition * f if 0 < f < 1 else (
        a.composition if f == 0 else b.composition)
    spectra: dict[str, XANESSpectrum] = {}
    for el, (wa, wb) in weights.items():
        sa = a.spectra.get(el) if wa > 0 else None
        sb = b.spectra.get(el) if wb > 0 else None
        where = f"{a.name}/{b.name} composite, {el} K, fraction {f:g}"
        if sa is not None and sb is not None:
            if a.kind != b.kind:
                raise ConfigurationError(
                    f"{where}: a {a.kind} and a {b.kind} spectrum of {el} cannot be mixed "
                    "(different energy calibrations); use spectra of one kind")
            spectra[el] = _mix_two(sa, sb, wa, wb, where)
        elif sa is not None or sb is not None:
            one = _normalised(sa if sa is not None else sb)
            spectra[el] = one.replace(source=f"{where} ({a.name if sa is not None else b.name})")
    return Composite(f, composition, tuple(weights), spectra, weights, (a.name, b.name))


def mixture_series(a: Phase, b: Phase, fractions: Iterable[float]) -> list[Composite]:
    """:func:`mix_phases` at every fraction."""
    return [mix_phases(a, b, f) for f in fractions]


# --------------------------------------------------------------------------------------------
# Building phases
# --------------------------------------------------------------------------------------------


def phase_from_measured(records: Sequence[MeasuredRecord], formula: str) -> Phase | None:
    """A phase from measured spectra of ``formula`` (one per TM; first record in file order).

    Returns:
        The phase, or ``None`` when a TM of the formula has no measured spectrum.
    """
    comp = Composition(formula)
    reduced = comp.reduced_formula
    spectra: dict[str, XANESSpectrum] = {}
    used: list[str] = []
    for rec in records:
        if rec.reduced_formula == reduced and rec.element not in spectra:
            spectra[rec.element] = rec.spectrum
            used.append(rec.key)
    tms = {e.symbol for e in comp.elements if e.symbol in TRANSITION_METALS}
    if not tms or not tms <= set(spectra):
        return None
    spectra = {el: s for el, s in spectra.items() if el in tms}
    return Phase(reduced, Composition(reduced), spectra, "measured",
                 f"measured, experiment.csv ({', '.join(used)})")


def phase_from_snapshot(snapshot: Snapshot, formula: str, edge: str = "K") -> Phase | None:
    """A phase from a snapshot's simulated spectra of ``formula``.

    Among the entries with this reduced formula that have a spectrum of every TM, the one with
    the lowest ``formation_energy_per_atom`` is used (then the smallest id).

    Returns:
        The phase, or ``None`` when no entry has a spectrum of every TM.
    """
    reduced = Composition(formula).reduced_formula
    materials = snapshot.materials
    cands = materials.loc[materials["formula"] == reduced]
    spectra = snapshot.spectra
    spectra = spectra.loc[spectra["edge"].astype(str).str.upper() == edge.upper()]
    usable = []
    for row in cands.itertuples(index=False):
        tms = [str(e) for e in row.elements if str(e) in TRANSITION_METALS]
        found = spectra.loc[(spectra["material_id"] == row.material_id)
                            & spectra["element"].isin(tms)]
        if tms and set(found["element"]) >= set(tms):
            fe = row.formation_energy_per_atom
            usable.append((math.inf if fe is None or math.isnan(fe) else float(fe),
                           str(row.material_id), found))
    if not usable:
        return None
    _, mid, found = sorted(usable, key=lambda u: (u[0], u[1]))[0]
    out = {}
    for rec in found.itertuples(index=False):
        out.setdefault(str(rec.element), XANESSpectrum(
            np.asarray(rec.energy), np.asarray(rec.mu), element=str(rec.element), edge=edge,
            source=f"{snapshot.path} {mid} {rec.element} {edge}"))
    return Phase(reduced, Composition(reduced), out, "simulated",
                 f"simulated, snapshot entry {mid} ({snapshot.source})", mid)


def resolve_phase(formula: str, records: Sequence[MeasuredRecord],
                  snapshot: Snapshot) -> tuple[Phase | None, str]:
    """Measured spectra where ``experiment.csv`` has every TM of ``formula``, else simulated.

    Returns:
        ``(phase, note)``; ``phase`` is ``None`` when neither source has the spectra, and the
        note says which source was used or why none.
    """
    measured = phase_from_measured(records, formula)
    if measured is not None:
        return measured, measured.source
    simulated = phase_from_snapshot(snapshot, formula)
    if simulated is not None:
        return simulated, simulated.source + " (no measured spectrum in experiment.csv)"
    return None, (f"{formula}: no measured spectrum in experiment.csv and no snapshot entry "
                  "with a simulated spectrum of every TM")


def pure_phase_references(snapshot: Snapshot, a: Phase, b: Phase,
                          task: str = "band_gap") -> dict[float, float]:
    """The snapshot's label of a regression task for the pure phases (fractions 0 and 1).

    The phase's snapshot entry is used when it has one (simulated phases), else the entry of
    that reduced formula with the lowest ``formation_energy_per_atom``. A phase without entry
    or label is left out.

    Returns:
        ``{0.0: value of A, 1.0: value of B}`` (only the known ones).
    """
    materials = snapshot.materials
    out: dict[float, float] = {}
    for fraction, phase in ((0.0, a), (1.0, b)):
        rows = (materials.loc[materials["material_id"] == phase.material_id]
                if phase.material_id else
                materials.loc[materials["formula"] == phase.composition.reduced_formula]
                .sort_values(["formation_energy_per_atom", "material_id"]))
        if rows.empty or task not in rows.columns:
            continue
        value = rows.iloc[0][task]
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            out[fraction] = float(value)
    return out


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


_COLUMNS = ["fraction", "task", "element", "kind", "prediction", "probability",
            "probabilities", "unit", "status"]


def predict_mixtures(predictor: Any, composites: Sequence[Composite], *,
                     prepare: Callable[[XANESSpectrum], XANESSpectrum | ProcessedXANES]
                     | None = None) -> pd.DataFrame:
    """Predict every loaded task for each composite.

    Args:
        predictor: A :class:`~specfusion_lib.properties.predict.Predictor`.
        composites: From :func:`mixture_series`.
        prepare: Applied to each spectrum before prediction (e.g.
            :meth:`specfusion_lib.measured.domain_shift.E0TemplateAligner.transform` for models
            trained on aligned spectra).

    Returns:
        One row per (fraction, task[, element]): ``fraction``, ``task``, ``element``,
        ``kind``, ``prediction``, ``probability``, ``probabilities``, ``unit``, ``status``
        (``"ok"`` or why the composite could not be predicted).
    """
    rows: list[dict[str, Any]] = []
    for comp in composites:
        spectra = {el: (prepare(s) if prepare is not None else s)
                   for el, s in comp.spectra.items() if el in TRANSITION_METALS}
        try:
            table = predictor.predict(spectra, comp.elements)
        except SpecfusionError as exc:
            rows.append({"fraction": comp.fraction, "task": "", "element": "", "kind": "",
                         "prediction": None, "probability": math.nan, "probabilities": {},
                         "unit": "", "status": str(exc)})
            continue
        for t in table.itertuples(index=False):
            rows.append({"fraction": comp.fraction, "task": t.task, "element": t.element,
                         "kind": t.kind, "prediction": t.prediction,
                         "probability": t.probability, "probabilities": t.probabilities,
                         "unit": t.unit, "status": "ok"})
    return pd.DataFrame(rows, columns=_COLUMNS)


def dominant_phase(predictions: pd.DataFrame, names: tuple[str, str],
                   task: str = "band_gap", min_contrast: float = 0.1) -> dict[str, Any]:
    """Which pure phase the composite's prediction of a regression task follows.

    Method: the predictions at fraction 0 (pure A) and 1 (pure B) are compared with the mean
    prediction over the fractions strictly between; the closer pure phase dominates. When
    the two pure phases are predicted within ``min_contrast`` of each other, no dominance
    can be read and none is claimed.

    Returns:
        ``{"task", "pure_a", "pure_b", "composite_mean", "composite_min", "composite_max",
        "dominant", "statement"}``; ``dominant`` is "" when the task or a pure phase was not
        predicted.
    """
    sub = predictions.loc[(predictions["task"] == task) & (predictions["status"] == "ok")]
    values = sub.groupby("fraction")["prediction"].first().astype(float)
    pure_a, pure_b = values.get(0.0, math.nan), values.get(1.0, math.nan)
    inner = values[(values.index > 0) & (values.index < 1)]
    out: dict[str, Any] = {"task": task, "pure_a": pure_a, "pure_b": pure_b,
                           "composite_mean": float(inner.mean()) if len(inner) else math.nan,
                           "composite_min": float(inner.min()) if len(inner) else math.nan,
                           "composite_max": float(inner.max()) if len(inner) else math.nan,
                           "dominant": "", "statement": ""}
    if math.isnan(pure_a) or math.isnan(pure_b) or not len(inner):
        out["statement"] = f"{task}: not enough predictions to tell which phase dominates"
        return out
    da, db = abs(out["composite_mean"] - pure_a), abs(out["composite_mean"] - pure_b)
    if abs(pure_a - pure_b) < min_contrast:
        who = (f"neither phase (the pure phases differ by less than {min_contrast:g}, so no "
               "dominance can be read)")
    else:
        out["dominant"] = names[0] if da < db else names[1] if db < da else ""
        who = out["dominant"] or "neither phase (equidistant)"
    out["statement"] = (f"{task}: pure {names[0]} {pure_a:.2f}, pure {names[1]} {pure_b:.2f}, "
                        f"composite {out['composite_min']:.2f}–{out['composite_max']:.2f} "
                        f"(mean {out['composite_mean']:.2f}): dominated by {who}")
    return out


def composites_table(composites: Sequence[Composite]) -> pd.DataFrame:
    """Fraction, composition, per-element spectrum weights and E0 of each composite.

    The E0 column (:func:`~specfusion_lib.spectra.xanes.find_e0` of the composite spectrum,
    as the preprocessing finds it) shows where the model window sits: a spectrum with two
    edges of similar strength (MnO + MnO2) jumps from one phase's edge to the other's at some
    fraction, and the predictions jump with it.
    """
    from specfusion_lib.spectra.xanes import find_e0

    rows = []
    for c in composites:
        row: dict[str, Any] = {"fraction": c.fraction, "composition": c.composition.formula,
                               "elements": " ".join(c.elements)}
        for el, (wa, wb) in c.weights.items():
            if el not in c.spectra:
                continue
            row[f"w_{el} ({c.names[0]} / {c.names[1]})"] = f"{wa:.2f} / {wb:.2f}"
            try:
                row[f"E0_{el} (eV)"] = round(find_e0(c.spectra[el]), 2)
            except SpecfusionError as exc:
                row[f"E0_{el} (eV)"] = f"not found: {exc}"
        rows.append(row)
    return pd.DataFrame(rows)

