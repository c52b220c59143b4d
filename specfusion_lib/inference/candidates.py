"""Candidate structures: substitution onto templates, relaxation, spectral comparison (SI §S2.3).

Method
------
1. **Substitution** (:func:`substitute`): every site of a template element takes the target
   element the retrieval mapped onto it (simultaneously, so swaps are safe); lattice and
   fractional coordinates are kept. The volume is rescaled by reference lattice scaling,
   lengths proportional to the sum over sites of the Shannon radii,
   V = V_template · (Σ r_target / Σ r_template)³, the ratio clamped to
   :data:`VOLUME_SCALE_LIMITS` (radii: :func:`specfusion_lib.inference.radii.shannon_radius`
   at six-fold coordination; an ion pymatgen does not tabulate keeps the template's radius, so
   it does not change the volume).
2. **Relaxation**: CHGNet through :func:`specfusion_lib.simulate.relax.chgnet_relaxer` (FIRE,
   Fréchet cell filter, ``fmax`` and ``max_steps`` of :func:`chgnet_relaxer_for_search`). The
   SI uses DFT; CHGNet is the pretrained universal potential that ships with the package.
3. **PXRD comparison** (:func:`r_pxrd`): both patterns on the package's 2θ grid (10–80°,
   0.02°, Cu Kα; a user's pattern is put there by :func:`~specfusion_lib.spectra.pxrd.to_grid`),
   negative intensities clipped to 0, optionally convolved with a Gaussian of FWHM
   ``smoothing_deg`` and normalised to unit area; then the profile R factor

   .. math::

       R_\\mathrm{PXRD} = \\min_{s} \\sum_i |y_i^\\mathrm{ref} - y_i^\\mathrm{cand}(s)|
       \\Big/ \\sum_i y_i^\\mathrm{ref} \\in [0, 2],

   0 for identical patterns, 2 for patterns without common intensity. :math:`y(s)` is the
   candidate's pattern with every d-spacing multiplied by :math:`s` (an isotropic lattice
   rescaling: :math:`\\sin\\theta' = \\sin\\theta / s`), :math:`s` scanned over
   :math:`1 \\pm` ``max_scale`` (default :data:`R_PXRD_MAX_SCALE`, 4 %) in steps of 0.1 %;
   the best :math:`s` is returned by :func:`pxrd_agreement`. The rescaling removes the
   lattice-constant error of the relaxation method (CHGNet, like the PBE data it was trained
   on, overestimates lattice constants by 1–2 %), which would otherwise shift high-angle peaks
   by more than their width and dominate the factor; the smoothing (default
   :data:`R_PXRD_SMOOTHING_DEG`) absorbs the remaining anisotropic shifts.
   ``smoothing_deg=0, max_scale=0`` gives the plain profile R factor. (The SI's
   "R_PXRD > 0.50" treats R_PXRD as an agreement, higher is better, without defining it;
   :func:`pxrd_similarity`, the Pearson correlation of the same smoothed, rescaled patterns,
   is reported alongside for that reading.)
4. **XANES comparison** (:func:`xanes_similarity`): both spectra through the standard
   preprocessing (:func:`~specfusion_lib.spectra.xanes.preprocess_xanes`: E0, edge-step
   normalisation, 200 points on the window around E0, z-score), then the Pearson correlation
   after the energy shift (at most :data:`XANES_MAX_SHIFT_EV`) that maximises it
   (:func:`~specfusion_lib.spectra.xanes.align_by_correlation`): alignment dominates the
   agreement of spectra whose E0 was located on different features (SPEC §9).
   Simulation: FEFF10, ``fast`` preset, through the resumable runner
   (:class:`FeffXanesSimulator`); several FEFF processes run in parallel.
5. **Validation score** (:func:`validation_score`): the mean of the available terms
   R_PXRD / 2 and (1 − XANES similarity) / 2 (each in [0, 1]; lower is better).

Simulators are plain callables, so tests inject fakes and users can plug in their own
(``Relaxer``: structure → :class:`~specfusion_lib.data.demo_pool.RelaxOutcome`;
``XanesSimulator``: ``({id: structure}, elements)`` → ``{(id, element): XANESSpectrum}``).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pymatgen.core import Element, Lattice, Structure
from scipy.ndimage import gaussian_filter1d

from specfusion_lib.core.errors import ConfigurationError, SpecfusionError
from specfusion_lib.inference.radii import shannon_radius
from specfusion_lib.spectra.pxrd import PXRDPattern, simulate_pattern, to_grid, two_theta_grid
from specfusion_lib.spectra.xanes import XANESSpectrum, align_by_correlation, preprocess_xanes

__all__ = [
    "RELAX_FMAX",
    "RELAX_MAX_STEPS",
    "R_PXRD_MAX_SCALE",
    "R_PXRD_SCALE_STEP",
    "R_PXRD_SMOOTHING_DEG",
    "VOLUME_SCALE_LIMITS",
    "XANES_MAX_SHIFT_EV",
    "Candidate",
    "FeffXanesSimulator",
    "PatternCache",
    "ModelXanesSimulator",
    "Relaxer",
    "XanesSimulator",
    "chgnet_relaxer_for_search",
    "PXRDAgreement",
    "pattern_on_grid",
    "pxrd_agreement",
    "pxrd_similarity",
    "r_pxrd",
    "simulate_candidate_pattern",
    "substitute",
    "validation_score",
    "xanes_similarity",
]

#: Gaussian FWHM (degrees 2θ) applied to both patterns before R_PXRD (see the docstring).
R_PXRD_SMOOTHING_DEG: float = 0.5
#: Largest isotropic d-spacing rescaling tried in R_PXRD (relative), and its step.
R_PXRD_MAX_SCALE: float = 0.04
R_PXRD_SCALE_STEP: float = 0.001
#: Largest energy shift (eV) tried when aligning two preprocessed spectra.
XANES_MAX_SHIFT_EV: float = 5.0
#: Clamp of the volume ratio of a substituted structure to its template.
VOLUME_SCALE_LIMITS: tuple[float, float] = (0.6, 1.7)
#: CHGNet relaxation of candidates: force criterion (eV/Å) and step limit.
RELAX_FMAX: float = 0.1
RELAX_MAX_STEPS: int = 150

Relaxer = Callable[[Structure], Any]
XanesSimulator = Callable[[Mapping[str, Structure], Sequence[str]],
                          Mapping[tuple[str, str], XANESSpectrum]]


@dataclass(frozen=True, eq=False)
class Candidate:
    """A candidate structure built from a template.

    Attributes:
        candidate_id: Stable id within a search (``c01``, ``c02``, ...).
        formula: Target reduced formula.
        template_id: Template material id.
        template_formula: Template reduced formula.
        crystal_system: Template crystal system.
        level: Constraint level of the retrieval match.
        mapping: Target element → template element.
        retrieval_rank: Rank of the match in the retrieval table.
        structure: The substituted, volume-rescaled structure (unrelaxed).
        metadata: Free-form (volume ratio, ...).
    """

    candidate_id: str
    formula: str
    template_id: str
    template_formula: str
    crystal_system: str
    level: str
    mapping: Mapping[str, str]
    retrieval_rank: int
    structure: Structure
    metadata: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Substitution
# --------------------------------------------------------------------------------------------


def _radius(element: str, charge: float | None) -> float | None:
    if charge is None or not math.isfinite(charge):
        return None
    return shannon_radius(element, int(round(charge)))


def substitute(
    template: Structure,
    mapping: Mapping[str, str],
    *,
    target_valences: Mapping[str, float] | None = None,
    template_valences: Mapping[str, float] | None = None,
    rescale_volume: bool = True,
) -> tuple[Structure, float]:
    """Put the target elements onto a template's sites (module docstring, step 1).

    Args:
        template: The template structure (ordered).
        mapping: Target element → template element; every element of the template must be
            mapped from exactly one target element.
        target_valences: Oxidation states of the target elements (for the volume).
        template_valences: Oxidation states of the template elements (for the volume).
        rescale_volume: Rescale the cell by reference lattice scaling.

    Returns:
        ``(structure, volume_ratio)``: the undecorated substituted structure and the applied
        V_new / V_template (1.0 without rescaling).

    Raises:
        ConfigurationError: The mapping does not cover the template's elements one to one.
    """
    inverse: dict[str, str] = {}
    for target, source in mapping.items():
        if source in inverse:
            raise ConfigurationError(f"template element {source} is mapped from both "
                                     f"{inverse[source]} and {target}")
        inverse[source] = target
    present = {site.specie.symbol for site in template}
    if set(inverse) != present:
        raise ConfigurationError(
            f"mapping {dict(mapping)} does not cover the template elements {sorted(present)}")
    species = [inverse[site.specie.symbol] for site in template]
    ratio = 1.0
    if rescale_volume and target_valences and template_valences:
        num = den = 0.0
        for site, new in zip(template, species, strict=True):
            old = site.specie.symbol
            r_old = _radius(old, template_valences.get(old))
            r_new = _radius(new, target_valences.get(new))
            if r_old is None or r_new is None:
                r_old = r_new = float(Element(old).atomic_radius or 1.5)
            num += r_new
            den += r_old
        lo, hi = VOLUME_SCALE_LIMITS
        ratio = min(max((num / den) ** 3, lo), hi)
    lattice = Lattice(template.lattice.matrix)
    out = Structure(lattice, species, template.frac_coords, coords_are_cartesian=False)
    if ratio != 1.0:
        out.scale_lattice(template.volume * ratio)
    return out, float(ratio)


# --------------------------------------------------------------------------------------------
# PXRD comparison
# --------------------------------------------------------------------------------------------


def pattern_on_grid(pattern: PXRDPattern | ArrayLike,
                    grid: np.ndarray | None = None) -> np.ndarray:
    """Intensities of a pattern on the package's 2θ grid, shape ``(n_grid,)``.

    A :class:`PXRDPattern` on another grid (a user's file) is interpolated with
    :func:`~specfusion_lib.spectra.pxrd.to_grid`; an array must already be on ``grid``.
    """
    x = two_theta_grid() if grid is None else np.asarray(grid, dtype=float)
    if isinstance(pattern, PXRDPattern):
        if pattern.two_theta.shape == x.shape and np.allclose(pattern.two_theta, x):
            return np.asarray(pattern.intensity, dtype=float)
        return np.asarray(to_grid(pattern, x).intensity, dtype=float)
    y = np.asarray(pattern, dtype=float)
    if y.shape != x.shape:
        raise ConfigurationError(f"pattern has {y.shape} points, the grid {x.shape}")
    return y


def _smoothed(y: np.ndarray, smoothing_deg: float, step: float) -> np.ndarray:
    out = np.clip(np.nan_to_num(np.asarray(y, dtype=float)), 0.0, None)
    if smoothing_deg > 0:
        sigma = smoothing_deg / (2.0 * math.sqrt(2.0 * math.log(2.0))) / step
        out = gaussian_filter1d(out, sigma, mode="constant", axis=-1)
    return out


def _unit_area(y: np.ndarray) -> np.ndarray:
    total = y.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ConfigurationError("a PXRD pattern without positive intensity cannot be compared")
    return y / total


@dataclass(frozen=True)
class PXRDAgreement:
    """Agreement of a candidate's pattern with the input (:func:`pxrd_agreement`).

    Attributes:
        r_pxrd: Profile R factor at the best rescaling, in [0, 2] (0: identical).
        similarity: Pearson correlation of the two patterns at that rescaling.
        scale: The d-spacing factor s applied to the candidate (1: none).
    """

    r_pxrd: float
    similarity: float
    scale: float


def pxrd_agreement(reference: PXRDPattern | ArrayLike, candidate: PXRDPattern | ArrayLike, *,
                   smoothing_deg: float = R_PXRD_SMOOTHING_DEG,
                   max_scale: float = R_PXRD_MAX_SCALE,
                   grid: np.ndarray | None = None) -> PXRDAgreement:
    """R_PXRD, the Pearson similarity and the best d-spacing rescaling (docstring, step 3).

    Args:
        reference: The input (measured or target) pattern.
        candidate: The candidate's simulated pattern.
        smoothing_deg: Gaussian FWHM in degrees applied to both (0: none).
        max_scale: Largest relative d-spacing rescaling of the candidate (0: none).
        grid: The common 2θ grid (default :func:`~specfusion_lib.spectra.pxrd.two_theta_grid`).
    """
    if max_scale < 0 or smoothing_deg < 0:
        raise ConfigurationError("smoothing_deg and max_scale must be ≥ 0")
    x = two_theta_grid() if grid is None else np.asarray(grid, dtype=float)
    step = float(np.median(np.diff(x)))
    a = _unit_area(_smoothed(pattern_on_grid(reference, x), smoothing_deg, step))
    yc = np.clip(np.nan_to_num(pattern_on_grid(candidate, x)), 0.0, None)
    n_half = int(round(max_scale / R_PXRD_SCALE_STEP))
    scales = 1.0 + R_PXRD_SCALE_STEP * np.arange(-n_half, n_half + 1)
    # candidate angle that lands on grid angle x after rescaling d by s: sin θc = s sin θ
    sin_c = scales[:, None] * np.sin(np.radians(x) / 2.0)[None, :]
    inside = sin_c < 1.0
    xc = np.degrees(2.0 * np.arcsin(np.clip(sin_c, -1.0, 1.0)))
    moved = np.where(inside, np.interp(xc, x, yc, left=0.0, right=0.0), 0.0)
    b = _smoothed(moved, smoothing_deg, step)
    valid = b.sum(axis=1) > 0
    if not valid.any():
        raise ConfigurationError("a PXRD pattern without positive intensity cannot be compared")
    b = b[valid] / b[valid].sum(axis=1, keepdims=True)
    r = np.abs(a[None, :] - b).sum(axis=1)
    k = int(np.argmin(r))
    bk = b[k]
    sim = (float(np.corrcoef(a, bk)[0, 1]) if a.std() > 0 and bk.std() > 0 else math.nan)
    return PXRDAgreement(float(r[k]), sim, float(scales[valid][k]))


def r_pxrd(reference: PXRDPattern | ArrayLike, candidate: PXRDPattern | ArrayLike, *,
           smoothing_deg: float = R_PXRD_SMOOTHING_DEG, max_scale: float = R_PXRD_MAX_SCALE,
           grid: np.ndarray | None = None) -> float:
    """Profile R factor between two patterns (module docstring, step 3); 0 means identical.

    Args:
        reference: The input (measured or target) pattern.
        candidate: The candidate's simulated pattern.
        smoothing_deg: Gaussian FWHM in degrees applied to both (0: none).
        max_scale: Largest relative d-spacing rescaling of the candidate (0: none).
        grid: The common 2θ grid (default :func:`~specfusion_lib.spectra.pxrd.two_theta_grid`).

    Returns:
        R_PXRD in [0, 2].
    """
    return pxrd_agreement(reference, candidate, smoothing_deg=smoothing_deg,
                          max_scale=max_scale, grid=grid).r_pxrd


def pxrd_similarity(reference: PXRDPattern | ArrayLike, candidate: PXRDPattern | ArrayLike, *,
                    smoothing_deg: float = R_PXRD_SMOOTHING_DEG,
                    max_scale: float = R_PXRD_MAX_SCALE,
                    grid: np.ndarray | None = None) -> float:
    """Pearson correlation of the two smoothed patterns at the rescaling of :func:`r_pxrd`
    (1: identical)."""
    return pxrd_agreement(reference, candidate, smoothing_deg=smoothing_deg,
                          max_scale=max_scale, grid=grid).similarity


# --------------------------------------------------------------------------------------------
# XANES comparison
# --------------------------------------------------------------------------------------------


def xanes_similarity(reference: XANESSpectrum, candidate: XANESSpectrum, *,
                     max_shift_ev: float = XANES_MAX_SHIFT_EV) -> float:
    """Pearson correlation of two preprocessed spectra after alignment (docstring, step 4).

    Raises:
        SpectrumError: A spectrum cannot be preprocessed (no edge, too short, ...).
    """
    a = preprocess_xanes(reference)
    b = preprocess_xanes(candidate)
    return float(align_by_correlation(a, b, max_shift_ev=max_shift_ev).correlation)


def validation_score(r_pxrd_value: float | None, xanes_value: float | None) -> float:
    """Mean of the available terms R_PXRD / 2 and (1 − XANES similarity) / 2 (lower is
    better); NaN when neither is available."""
    terms = []
    if r_pxrd_value is not None and math.isfinite(r_pxrd_value):
        terms.append(r_pxrd_value / 2.0)
    if xanes_value is not None and math.isfinite(xanes_value):
        terms.append((1.0 - xanes_value) / 2.0)
    return float(np.mean(terms)) if terms else math.nan


def simulate_candidate_pattern(structure: Structure) -> PXRDPattern:
    """The candidate's simulated Cu Kα pattern on the package's grid."""
    return simulate_pattern(structure)


class PatternCache:
    """Simulated patterns (and cell refinements) of substituted candidates, shared by many
    searches on one template database (the benchmark of notebook 09 meets the same candidate
    in several variants).

    A substituted, volume-rescaled candidate is determined by its template, the element
    mapping and the target valences (:func:`substitute`), so these are the key of its pattern
    and reflections; a cell refinement also depends on the input pattern
    (:meth:`reference_key`). The least recently used entries go beyond ``maxsize`` (a pattern
    is ~28 kB).
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ConfigurationError("maxsize must be ≥ 1")
        self.maxsize = int(maxsize)
        self._store: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    @staticmethod
    def key(template_id: str, mapping: Mapping[str, str],
            valences: Mapping[str, float]) -> tuple:
        """The cache key of a candidate."""
        return (str(template_id), tuple(sorted(mapping.items())),
                tuple(sorted((el, round(float(v), 6)) for el, v in valences.items())))

    @staticmethod
    def reference_key(pattern: PXRDPattern) -> str:
        """A digest of an input pattern (the key of the refinements against it)."""
        digest = hashlib.sha1(np.ascontiguousarray(pattern.two_theta, dtype=float).tobytes())
        digest.update(np.ascontiguousarray(pattern.intensity, dtype=float).tobytes())
        return digest.hexdigest()

    def get(self, kind: str, key: tuple, compute: Callable[[], Any]) -> Any:
        """The cached ``(kind, key)`` entry, or ``compute()``'s result stored."""
        full = (kind, *key)
        if full in self._store:
            self.hits += 1
            self._store.move_to_end(full)
            return self._store[full]
        self.misses += 1
        value = compute()
        self._store[full] = value
        if len(self._store) > self.maxsize:
            self._store.popitem(last=False)
        return value

    def pattern(self, key: tuple, structure: Structure) -> PXRDPattern:
        """The cached pattern of ``key``, or ``structure``'s simulated and stored."""
        return self.get("pattern", key, lambda: simulate_candidate_pattern(structure))


# --------------------------------------------------------------------------------------------
# Simulators
# --------------------------------------------------------------------------------------------


def chgnet_relaxer_for_search(fmax: float = RELAX_FMAX, max_steps: int = RELAX_MAX_STEPS,
                              threads: int = 1) -> Relaxer:
    """CHGNet relaxer of the demo pool with the search's settings (loads the model once)."""
    from specfusion_lib.simulate.relax import RelaxSettings, chgnet_relaxer

    return chgnet_relaxer(RelaxSettings(fmax=fmax, max_steps=max_steps, threads=threads))


class FeffXanesSimulator:
    """FEFF10 K-edge XANES of candidate structures (site-averaged), in parallel, cached.

    Args:
        preset: FEFF card preset (``"fast"``: ~5–30 s per inequivalent site here).
        workers: FEFF processes run at once.
        cache_dir: Spectrum cache folder (kept between runs, so a rerun of a notebook reuses
            identical structures' spectra); ``None``: a temporary folder per call.
        timeout: Seconds allowed per FEFF stage.
        progress: Show progress bars.
    """

    def __init__(self, preset: str = "fast", workers: int = 2,
                 cache_dir: str | os.PathLike[str] | None = None,
                 timeout: float | None = 600.0, progress: bool = False) -> None:
        self.preset = preset
        self.workers = int(workers)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.timeout = timeout
        self.progress = progress
        self.failures_: dict[tuple[str, str], str] = {}

    def __call__(self, structures: Mapping[str, Structure],
                 elements: Sequence[str]) -> dict[tuple[str, str], XANESSpectrum]:
        """Simulate ``elements``' K edges for every structure.

        Returns:
            ``{(candidate id, element): XANESSpectrum}``; failures are left out and listed in
            ``failures_`` with their reason.
        """
        from specfusion_lib.simulate.cache import SpectrumCache
        from specfusion_lib.simulate.runner import assemble_spectra, plan_jobs, run_jobs

        self.failures_ = {}
        wanted = {cid: [el for el in elements
                        if any(site.specie.symbol == el for site in s)]
                  for cid, s in structures.items()}
        jobs = plan_jobs(dict(structures), wanted, preset=self.preset)
        if not jobs:
            return {}
        with tempfile.TemporaryDirectory(prefix="specfusion-feff-") as tmp:
            cache = SpectrumCache(self.cache_dir or tmp)
            executor = "serial" if self.workers <= 1 else "process"
            report = run_jobs(jobs, cache, executor=executor, workers=self.workers,
                              progress=self.progress, timeout=self.timeout)
            for failure in report.failures:
                key = (failure.job.material_id, failure.job.element)
                self.failures_[key] = failure.message
            assembled = assemble_spectra(jobs, cache, warn=False)
        out = {}
        for (cid, element, edge), sim in assembled.items():
            try:
                out[(cid, element)] = XANESSpectrum(sim.energy, sim.mu, element=element,
                                                    edge=edge, source=f"FEFF10 {cid}")
            except SpecfusionError as exc:
                self.failures_[(cid, element)] = str(exc)
        for key, reason in assembled.incomplete.items():
            self.failures_.setdefault((key[0], key[1]), reason)
        return out


class ModelXanesSimulator:
    """K-edge XANES of candidate structures from a forward structure→spectrum model.

    The fast ranking of the search (milliseconds per spectrum instead of FEFF's 5–30 s per
    site): any object with ``predict_structures(structures, element)`` → ``(n, N)`` spectra
    on ``grid_window(element).energies`` (:class:`~specfusion_lib.xas_structure.cgxas.
    CGXASForward`, XAStruct's forward model). Same call as :class:`FeffXanesSimulator`.

    Args:
        forward: The forward model.
        name: Source label of the spectra.
    """

    def __init__(self, forward: Any, name: str = "forward model") -> None:
        if not callable(getattr(forward, "predict_structures", None)):
            raise ConfigurationError("the forward model needs a predict_structures(structures, "
                                     "element) method")
        self.forward = forward
        self.name = name
        self.failures_: dict[tuple[str, str], str] = {}

    def __call__(self, structures: Mapping[str, Structure],
                 elements: Sequence[str]) -> dict[tuple[str, str], XANESSpectrum]:
        """Predict ``elements``' K edges for every structure that contains them (one batch
        per element); failures are listed in ``failures_`` with their reason."""
        from specfusion_lib.xas_structure.grid import grid_window

        self.failures_ = {}
        out: dict[tuple[str, str], XANESSpectrum] = {}
        for element in elements:
            ids = [cid for cid, s in structures.items()
                   if any(site.specie.symbol == element for site in s)]
            if not ids:
                continue
            try:
                spectra = self.forward.predict_structures([structures[c] for c in ids],
                                                          element)
                energies = grid_window(element).energies
            except SpecfusionError as exc:
                self.failures_.update({(cid, element): str(exc) for cid in ids})
                continue
            for cid, mu in zip(ids, spectra, strict=True):
                try:
                    out[(cid, element)] = XANESSpectrum(energies, mu, element=element,
                                                        edge="K", source=f"{self.name} {cid}")
                except SpecfusionError as exc:
                    self.failures_[(cid, element)] = str(exc)
        return out
