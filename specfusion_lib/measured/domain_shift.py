"""Simulated vs measured XANES: agreement, broadening, and E0 alignment to element templates.

Models here are trained on FEFF10 spectra and applied to measured ones. Two differences
between the domains are measurable on spectra alone (:func:`spectral_agreement`):

* **Resolution.** Simulated spectra without a core hole or instrumental broadening have
  sharper, taller white lines. :func:`spectral_agreement` finds the Gaussian FWHM that,
  applied to the simulated μ(E) (:func:`~specfusion_lib.spectra.xanes.broaden`), best
  matches the measured spectrum; :func:`fit_broadening` takes the median over compounds.
* **E0 definition.** E0 is the first strong maximum of dμ/dE
  (:func:`~specfusion_lib.spectra.xanes.find_e0`). On simulated spectra it often lands on a
  shoulder a few eV away from where it lands on the measured spectrum of the same compound,
  so the 56 eV model windows start at different points of the same edge. Pearson correlations
  are computed both with each spectrum on its own E0 (what the models see) and after the
  shift that maximises the correlation
  (:func:`~specfusion_lib.spectra.xanes.align_by_correlation`).

Remedy kept as a library option: :class:`E0TemplateAligner`. It learns, per absorbing element,
the mean preprocessed spectrum of the training materials (the *template*) and re-places E0 of
any spectrum, simulated or measured, by the shift that best correlates it with its element's
template (E0' = E0 − shift, shifts within ``max_shift_ev``). No reference spectrum of the
compound itself is needed, so it applies to unknown samples. It is used at training time
(:meth:`E0TemplateAligner.transform_features` on the training inputs) *and* at prediction time
(:meth:`E0TemplateAligner.transform`, whose :class:`~specfusion_lib.spectra.xanes.ProcessedXANES`
:class:`~specfusion_lib.properties.predict.Predictor` accepts); models trained on aligned inputs
must be fed aligned inputs. Templates are refined ``n_iter`` times (align the training spectra
to the templates, recompute the templates). The fitted state is saved next to the checkpoints
(:meth:`E0TemplateAligner.save`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.errors import (
    ConfigurationError,
    InputFileError,
    SpecfusionError,
    SpectrumError,
)
from specfusion_lib.properties.features import FeatureSet
from specfusion_lib.spectra.xanes import (
    MIN_COVERAGE,
    N_POINTS,
    WINDOW_EV,
    ProcessedXANES,
    XANESSpectrum,
    align_by_correlation,
    preprocess_xanes,
)

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "BROADENING_GRID_EV",
    "MAX_SHIFT_EV",
    "E0TemplateAligner",
    "Overlay",
    "SpectralAgreement",
    "agreement_table",
    "fit_broadening",
    "overlay",
    "spectral_agreement",
]

#: Gaussian FWHMs (eV) tried by :func:`spectral_agreement` on the simulated spectrum.
BROADENING_GRID_EV: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0,
                                          12.0, 15.0)
#: Largest E0 correction (eV) of the alignments; simulated and measured E0s found as
#: derivative maxima differ by up to ~14 eV (SPEC §9).
MAX_SHIFT_EV: float = 12.0
_FORMAT = "specfusion-e0-templates"


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class SpectralAgreement:
    """Agreement of a simulated and a measured spectrum of one compound and element.

    All correlations are Pearson correlations of the preprocessed spectra (200 points, 56 eV
    window around each spectrum's E0, edge-step normalised, standardised).

    Attributes:
        e0_measured: E0 of the measured spectrum (eV, absolute).
        e0_simulated: E0 of the simulated spectrum (eV, absolute).
        pearson_e0: Each spectrum on its own E0 (what the models see).
        shift_ev: Shift of the simulated window maximising the correlation.
        pearson_aligned: Correlation after that shift (on the overlap).
        best_fwhm_ev: Gaussian FWHM of the simulated μ(E) maximising the aligned correlation.
        pearson_broadened: Aligned correlation with that broadening.
        pearson_e0_broadened: Own-E0 correlation with that broadening.
        pearson_template: Correlation when both E0s are placed on the element template of an
            :class:`E0TemplateAligner` (NaN without aligner or template).
    """

    e0_measured: float
    e0_simulated: float
    pearson_e0: float
    shift_ev: float
    pearson_aligned: float
    best_fwhm_ev: float
    pearson_broadened: float
    pearson_e0_broadened: float
    pearson_template: float = math.nan


def spectral_agreement(measured: XANESSpectrum, simulated: XANESSpectrum, *,
                       fwhm_grid: Sequence[float] = BROADENING_GRID_EV,
                       max_shift_ev: float = 15.0,
                       aligner: E0TemplateAligner | None = None) -> SpectralAgreement:
    """Compare a measured and a simulated spectrum of the same compound and element.

    Method: both spectra go through :func:`~specfusion_lib.spectra.xanes.preprocess_xanes`
    (own E0 each). ``pearson_e0`` correlates the two inputs point by point;
    :func:`~specfusion_lib.spectra.xanes.align_by_correlation` then finds the shift of the
    simulated window (within ``max_shift_ev``) that maximises the correlation. For each FWHM
    of ``fwhm_grid`` the simulated μ(E) is Gaussian-broadened before preprocessing and the
    aligned correlation recomputed; the best FWHM is reported (the smallest on ties); a FWHM
    that broadens the edge past what the preprocessing accepts is skipped. With
    an ``aligner``, both spectra are also preprocessed on template-aligned E0s
    (:meth:`E0TemplateAligner.transform`) and correlated point by point.

    Args:
        measured: Measured spectrum.
        simulated: Simulated spectrum of the same element.
        fwhm_grid: Broadening FWHMs to try (eV, 0 = none).
        max_shift_ev: Largest alignment shift (eV).
        aligner: A fitted :class:`E0TemplateAligner` (optional).

    Returns:
        A :class:`SpectralAgreement`.

    Raises:
        SpectrumError: If either spectrum cannot be preprocessed or aligned.
        ConfigurationError: For spectra of different elements or an empty ``fwhm_grid``.
    """
    if measured.element != simulated.element:
        raise ConfigurationError(f"{measured.label} and {simulated.label} are spectra of "
                                 "different elements")
    if not fwhm_grid:
        raise ConfigurationError("fwhm_grid must name at least one FWHM")
    pm = preprocess_xanes(measured)
    ps = preprocess_xanes(simulated)
    base = align_by_correlation(pm, ps, max_shift_ev=max_shift_ev)
    best = (-math.inf, 0.0, 0.0)
    for fwhm in sorted(float(f) for f in fwhm_grid):
        try:
            pb = preprocess_xanes(simulated, broaden_fwhm_ev=fwhm or None)
            al = align_by_correlation(pm, pb, max_shift_ev=max_shift_ev)
        except SpectrumError:  # broadened past recognition (no edge left): not a candidate
            if fwhm == 0:
                raise
            continue
        if al.correlation > best[0] + 1e-9:
            best = (al.correlation, fwhm, _pearson(pm.values, pb.values))
    template = math.nan
    if aligner is not None and aligner.templates_ is not None \
            and measured.element in aligner.templates_:
        template = _pearson(aligner.transform(measured).values,
                            aligner.transform(simulated).values)
    return SpectralAgreement(
        e0_measured=pm.e0, e0_simulated=ps.e0, pearson_e0=_pearson(pm.values, ps.values),
        shift_ev=base.shift_ev, pearson_aligned=base.correlation, best_fwhm_ev=best[1],
        pearson_broadened=best[0], pearson_e0_broadened=best[2], pearson_template=template)


@dataclass(frozen=True, eq=False)
class Overlay:
    """Data of one measured-vs-simulated overlay panel (Fig. S26–S31 analogue).

    Attributes:
        label: Panel title.
        grid: Energies relative to E0 (eV), ``(L,)``.
        measured: Edge-step-normalised measured spectrum on ``grid`` (own E0), ``(L,)``.
        simulated: Edge-step-normalised simulated spectrum on ``grid`` (own E0), ``(L,)``.
        shift_ev: Correlation-maximising shift of the simulated spectrum.
        pearson_e0: Correlation on own E0s.
        pearson_aligned: Correlation after the shift.
    """

    label: str
    grid: np.ndarray
    measured: np.ndarray
    simulated: np.ndarray
    shift_ev: float
    pearson_e0: float
    pearson_aligned: float


def overlay(label: str, measured: XANESSpectrum, simulated: XANESSpectrum,
            agreement: SpectralAgreement) -> Overlay:
    """The normalised (not standardised) spectra of a pair for plotting."""
    pm = preprocess_xanes(measured, standardize=False)
    ps = preprocess_xanes(simulated, standardize=False)
    return Overlay(label, pm.grid, pm.values, ps.values, agreement.shift_ev,
                   agreement.pearson_e0, agreement.pearson_aligned)


def fit_broadening(agreements: Iterable[SpectralAgreement]) -> float:
    """The experimental resolution estimate: median best FWHM over compounds (eV).

    Raises:
        ConfigurationError: If no agreement is given.
    """
    values = [a.best_fwhm_ev for a in agreements]
    if not values:
        raise ConfigurationError("no spectral agreements to fit a broadening to")
    return float(np.median(values))


def agreement_table(agreements: Mapping[str, SpectralAgreement]) -> pd.DataFrame:
    """The agreements as a table, one row per key (e.g. measured record key).

    Returns:
        Columns ``key`` and the fields of :class:`SpectralAgreement`.
    """
    rows = [{"key": k, **a.__dict__} for k, a in agreements.items()]
    return pd.DataFrame(rows, columns=["key", *SpectralAgreement.__dataclass_fields__])


class E0TemplateAligner:
    """Re-place E0 by correlation with a per-element template (scikit-learn style).

    Hyperparameters are constructor arguments; :meth:`fit` sets the fitted state
    (``templates_``, ``grid_``, ``shift_stats_``).

    Args:
        max_shift_ev: Largest E0 correction (eV).
        step_ev: Step of the trial shifts (eV).
        n_iter: Template refinements (1: templates from own-E0 spectra only).
        min_coverage: Smallest covered fraction of the window after the shift; spectra that
            fall below keep their own E0.
        window: Window (eV relative to E0) of the model inputs.
        n_points: Points per spectrum.
    """

    def __init__(self, max_shift_ev: float = MAX_SHIFT_EV, step_ev: float = 0.1,
                 n_iter: int = 2, min_coverage: float = MIN_COVERAGE,
                 window: tuple[float, float] = WINDOW_EV, n_points: int = N_POINTS) -> None:
        self.max_shift_ev = max_shift_ev
        self.step_ev = step_ev
        self.n_iter = n_iter
        self.min_coverage = min_coverage
        self.window = window
        self.n_points = n_points
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Forget the fitted state."""
        self.templates_: dict[str, np.ndarray] | None = None
        self.grid_: np.ndarray | None = None
        self.shift_stats_: dict[str, dict[str, float]] = {}

    def _check(self) -> None:
        if self.max_shift_ev < 0 or self.step_ev <= 0 or self.n_iter < 1:
            raise ConfigurationError("max_shift_ev >= 0, step_ev > 0 and n_iter >= 1 needed")

    # ---------------------------------------------------------------------------- fitting

    @staticmethod
    def _raw_spectra(snapshot: Snapshot, features: FeatureSet
                     ) -> list[tuple[int, int, XANESSpectrum]]:
        """(row, element slot, raw spectrum) of every spectrum in ``features``."""
        spectra = snapshot.spectra
        spectra = spectra.loc[spectra["edge"].astype(str).str.upper() == features.edge.upper()]
        first = {}
        for rec in spectra.itertuples(index=False):
            first.setdefault((rec.material_id, str(rec.element)), rec)
        out = []
        for i, mid in enumerate(features.material_ids):
            for j, el in enumerate(features.elements[i]):
                if not features.spectrum_mask[i, j]:
                    continue
                rec = first.get((mid, el))
                if rec is None:
                    raise ConfigurationError(f"{mid} {el}: spectrum in the features but not "
                                             "in the snapshot")
                out.append((i, j, XANESSpectrum(np.asarray(rec.energy), np.asarray(rec.mu),
                                                element=el, edge=features.edge,
                                                source=f"{mid} {el} {features.edge}")))
        return out

    def _templates(self, values: Mapping[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        return {el: np.mean(np.stack(v), axis=0) for el, v in values.items() if v}

    def fit(self, snapshot: Snapshot, features: FeatureSet) -> E0TemplateAligner:
        """Learn one template per element from the spectra of ``features``.

        Args:
            snapshot: The snapshot the features were built from (raw spectra).
            features: The training inputs (only their spectra are used).

        Returns:
            ``self``.

        Raises:
            ConfigurationError: Invalid hyperparameters, features with another window, or
                features without spectra.
        """
        self._check()
        if tuple(features.window) != tuple(self.window) or features.n_points != self.n_points:
            raise ConfigurationError(f"features on {features.window} eV / {features.n_points} "
                                     f"points; the aligner uses {self.window} / {self.n_points}")
        values: dict[str, list[np.ndarray]] = {}
        for i, j in zip(*np.nonzero(features.spectrum_mask), strict=True):
            values.setdefault(features.elements[i][j], []).append(
                features.spectra[i, j].astype(np.float64))
        if not values:
            raise ConfigurationError("the features hold no spectra to build templates from")
        self.grid_ = np.linspace(self.window[0], self.window[1], self.n_points)
        self.templates_ = self._templates(values)
        raw = self._raw_spectra(snapshot, features) if self.n_iter > 1 else []
        shifts: dict[str, list[float]] = {}
        for _ in range(self.n_iter - 1):
            values, shifts = {}, {}
            for _i, _j, spectrum in raw:
                processed, shift = self._align(spectrum)
                values.setdefault(spectrum.element, []).append(processed.values)
                shifts.setdefault(spectrum.element, []).append(shift)
            self.templates_ = self._templates(values)
        self.shift_stats_ = {el: {"n": len(v), "median_shift_ev": float(np.median(v)),
                                  "max_abs_shift_ev": float(np.max(np.abs(v)))}
                             for el, v in shifts.items()}
        return self

    # ---------------------------------------------------------------------------- applying

    def _align(self, spectrum: XANESSpectrum) -> tuple[ProcessedXANES, float]:
        if self.templates_ is None or self.grid_ is None:
            raise ConfigurationError("E0TemplateAligner is not fitted; call fit() first")
        own = preprocess_xanes(spectrum, window=self.window, n_points=self.n_points)
        template = self.templates_.get(str(spectrum.element))
        if template is None:
            return own, 0.0
        al = align_by_correlation((self.grid_, template), own, max_shift_ev=self.max_shift_ev,
                                  step_ev=self.step_ev)
        if abs(al.shift_ev) < 1e-9:
            return own, 0.0
        try:
            moved = preprocess_xanes(spectrum, e0=own.e0 - al.shift_ev, window=self.window,
                                     n_points=self.n_points, min_coverage=self.min_coverage)
        except SpecfusionError:
            return own, 0.0  # the shifted window leaves the data: keep the spectrum's own E0
        return moved, float(al.shift_ev)

    def transform(self, spectrum: XANESSpectrum) -> ProcessedXANES:
        """Preprocess ``spectrum`` with E0 re-placed on its element's template.

        An element without a template keeps its own E0 (derivative maximum).

        Returns:
            A standardised :class:`~specfusion_lib.spectra.xanes.ProcessedXANES` whose
            ``e0`` is the aligned edge energy.

        Raises:
            SpectrumError: If the spectrum cannot be preprocessed at all.
            ConfigurationError: If the aligner is not fitted.
        """
        return self._align(spectrum)[0]

    def shift_of(self, spectrum: XANESSpectrum) -> float:
        """The E0 correction (eV) :meth:`transform` applies (E0' = E0 − shift)."""
        return self._align(spectrum)[1]

    def transform_features(self, snapshot: Snapshot, features: FeatureSet) -> FeatureSet:
        """The same inputs with every spectrum re-preprocessed on its aligned E0.

        Args:
            snapshot: The snapshot the features were built from (raw spectra).
            features: Inputs from :func:`~specfusion_lib.properties.features.build_features`.

        Returns:
            A :class:`~specfusion_lib.properties.features.FeatureSet` with the same materials,
            masks and descriptors and aligned spectra.
        """
        spectra = features.spectra.copy()
        for i, j, spectrum in self._raw_spectra(snapshot, features):
            spectra[i, j] = self.transform(spectrum).values.astype(np.float32)
        return replace(features, spectra=spectra)

    # ---------------------------------------------------------------------------- storage

    def to_dict(self) -> dict[str, Any]:
        """Hyperparameters and fitted state as plain JSON types."""
        if self.templates_ is None:
            raise ConfigurationError("E0TemplateAligner is not fitted; call fit() first")
        return {"format": _FORMAT, "max_shift_ev": self.max_shift_ev, "step_ev": self.step_ev,
                "n_iter": self.n_iter, "min_coverage": self.min_coverage,
                "window": list(self.window), "n_points": self.n_points,
                "templates": {el: t.tolist() for el, t in self.templates_.items()},
                "shift_stats": self.shift_stats_}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> E0TemplateAligner:
        """Rebuild a fitted aligner from :meth:`to_dict` output."""
        if state.get("format") != _FORMAT:
            raise ConfigurationError("not an E0TemplateAligner state")
        obj = cls(max_shift_ev=float(state["max_shift_ev"]), step_ev=float(state["step_ev"]),
                  n_iter=int(state["n_iter"]), min_coverage=float(state["min_coverage"]),
                  window=(float(state["window"][0]), float(state["window"][1])),
                  n_points=int(state["n_points"]))
        obj.templates_ = {el: np.asarray(v, dtype=np.float64)
                          for el, v in state["templates"].items()}
        obj.grid_ = np.linspace(obj.window[0], obj.window[1], obj.n_points)
        obj.shift_stats_ = dict(state.get("shift_stats", {}))
        return obj

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted state as JSON (atomically)."""
        return atomic_write_text(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> E0TemplateAligner:
        """Read a state written by :meth:`save`.

        Raises:
            InputFileError: Missing or unreadable file.
        """
        target = Path(path)
        try:
            state = json.loads(target.read_text(encoding="utf-8"))
            return cls.from_dict(state)
        except FileNotFoundError:
            raise InputFileError(f"{target}: no such E0 template file") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError,
                ConfigurationError) as exc:
            raise InputFileError(f"{target}: not an E0 template file ({exc})") from None
