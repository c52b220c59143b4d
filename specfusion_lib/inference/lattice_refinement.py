"""Fit a candidate's unit cell to the input powder pattern (atoms fixed, symmetry kept).

A template with substituted elements (:func:`~specfusion_lib.inference.candidates.substitute`)
has the right structure type but the template's cell, rescaled isotropically by ionic radii:
its axes are off by a few per cent, each by a different amount, which moves the high-angle
peaks by more than their width. The profile R factor of the right structure type is then
often as poor as that of a wrong one (notebook 09: right answers with R_PXRD above 1.3).
Structure solution from powder data refines the cell against the pattern first (Pawley and
Le Bail fits); this module does the cheap version of that: the fractional coordinates and
the structure factors stay the candidate's, only the metric of the cell changes, within the
candidate's own symmetry and a bounded strain.

Method
------
1. **Allowed metrics** (:func:`metric_basis`): the metric tensor :math:`G = A A^T` of the
   cell (rows of ``A`` the lattice vectors) is kept invariant by the point-group operations
   :math:`W` of the candidate's space group (fractional coordinates; spglib through pymatgen,
   ``symprec``): :math:`W^T G W = G`. Averaging the six unit symmetric matrices over the group
   and an SVD give a basis :math:`B_k` of the invariant ones (k = 1 cubic, 2 tetragonal,
   trigonal and hexagonal, 3 orthorhombic, 4 monoclinic, 6 triclinic), so
   :math:`G(c) = G_0 + \\sum_k c_k B_k`. Each :math:`B_k` is scaled so that its largest
   element relative to :math:`\\sqrt{G_{0,ii} G_{0,jj}}` is 1: :math:`c_k` is a relative
   change of the metric, about twice the relative change of the axis lengths. A structure
   whose symmetry cannot be found gets the isotropic direction :math:`B = G_0` only.
2. **Reflections** (:func:`reflection_list`): every reciprocal-lattice point up to the largest
   :math:`\\sin\\theta/\\lambda` of the grid (plus the largest strain), structure factors
   :math:`F = \\sum_j o_j f_j(s) e^{2\\pi i h \\cdot x_j}` with pymatgen's atomic scattering
   parameters (the same form factors as pymatgen's ``XRDCalculator``, which simulates the
   patterns everywhere else), one of each Friedel pair; reflections that keep one
   d-spacing under every allowed metric are merged (their :math:`|F|^2` summed).
3. **Profile** (:meth:`LatticeFitter.profiles`, many metrics at once): for :math:`G(c)`,
   :math:`1/d^2 = h^T G^{-1} h`, 2θ by Bragg's law, intensity
   :math:`|F|^2 (1 + \\cos^2 2\\theta) / (\\sin^2\\theta \\cos\\theta)`, sticks shared
   linearly between their two neighbouring points of a grid with about five points per
   :math:`w` and convolved with a Gaussian of FWHM :math:`\\sqrt{w^2 + w_0^2}` (:math:`w`
   the stage's smoothing, :math:`w_0` the simulated peak width), normalised to unit area.
4. **Fit**: minimise :math:`R_w(c) = \\sum_i |y^\\mathrm{ref}_i - y_i(c)|` (the reference
   smoothed with the same :math:`w`, unit area) over :math:`|c_k| \\le
   2\\,\\varepsilon_\\mathrm{max}` in stages of decreasing :math:`w`
   (:data:`FIT_SMOOTHING_SCHEDULE_DEG`). The coarse stage (:meth:`LatticeFitter.coarse`)
   evaluates a quasi-random (Sobol) sample of the whole box, the unstrained cell and
   ± :data:`START_STRAIN` along each direction at once (a split peak can be indexed either
   way round, so there are several minima) and descends from the best two distinct points
   by a batched pattern search (:meth:`LatticeFitter.descend`: all neighbours on a cube
   around the point at once, step halved when none improves); the finer stages
   (:meth:`LatticeFitter.finish`) continue each descent. Since a wider Gaussian is the
   narrower one convolved again and a convolution never increases an L1 distance,
   :math:`\\min_c R_{w}(c) \\le \\min_c R_{w'}(c)` for :math:`w > w'`: the coarse
   stage's R bounds the refined one from below (up to the grid and the local search), which
   lets the search refine to the end only the candidates that can still win
   (:func:`~specfusion_lib.inference.search._refine_screen`).
5. **Result** (:func:`fit_result`): the candidate with the refined cell (same fractional
   coordinates), its pattern with the peak shape of
   :func:`~specfusion_lib.spectra.pxrd.simulate_pattern` (:func:`reflection_pattern`, which
   reproduces that function for the unstrained cell) compared with the input by
   :func:`~specfusion_lib.inference.candidates.r_pxrd`, so the refined R_PXRD is the same
   quantity as the unrefined one.

The fit only moves peaks; intensities that disagree because the atoms sit elsewhere (another
structure type, a different internal parameter) still count against the candidate. The
bound :data:`MAX_STRAIN` (8 % on an axis) is wider than the substitution's volume error
(:data:`~specfusion_lib.inference.candidates.VOLUME_SCALE_LIMITS`) plus the anisotropy of a
sibling structure, and far narrower than what would let one structure type mimic another.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.ndimage import gaussian_filter1d
from scipy.stats import qmc

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.spectra.pxrd import (
    FWHM_GAUSS,
    FWHM_TO_SIGMA,
    PEAK_MARGIN_DEG,
    PXRDPattern,
    PXRDPeaks,
    pattern_from_peaks,
    two_theta_grid,
    wavelength_angstrom,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FIT_SMOOTHING_SCHEDULE_DEG",
    "MAX_STRAIN",
    "LatticeFit",
    "LatticeFitter",
    "ReflectionList",
    "fit_result",
    "metric_basis",
    "reflection_list",
    "reflection_pattern",
    "refine_lattice",
    "strained_structure",
]

#: Largest relative change of an axis length (the bound on the metric is twice this).
MAX_STRAIN: float = 0.08
#: Gaussian smoothing (FWHM, ° 2θ) of the fit's stages, coarse to fine; the last one is the
#: comparison smoothing of R_PXRD (:data:`~specfusion_lib.inference.candidates.
#: R_PXRD_SMOOTHING_DEG`).
FIT_SMOOTHING_SCHEDULE_DEG: tuple[float, ...] = (2.0, 1.0, 0.5)
#: The coarse stage starts from the candidate's cell and from ± this metric change along each
#: allowed direction (a split peak can be indexed either way round; module docstring, step 4).
START_STRAIN: float = 0.08
_UPPER = (np.array([0, 1, 2, 0, 0, 1]), np.array([0, 1, 2, 1, 2, 2]))  # G⁻¹ elements
_SYMPREC = 0.1
_POINTS_PER_FWHM = 5  # profile points per FWHM of a stage's smoothing
_SOBOL_LOG2 = 7  # 2**7 quasi-random points in the coarse stage (twice that for k ≥ 3)
_N_BASINS = 2  # coarse minima taken through the finer stages
_COARSE_STEP, _COARSE_TOL = 0.02, 0.002  # pattern search steps of the coarse stage
_FINE_STEP, _FINE_TOL = 0.005, 5e-4  # ... and of the finer stages
_DISTINCT = 0.03  # coarse starting points closer than this (max |Δc|) are one basin
_ABSENT = 1e-8  # |F|² below this fraction of the strongest: systematically absent


def metric_basis(structure: Structure, symprec: float = _SYMPREC) -> np.ndarray:
    """Directions in which the cell's metric may change without breaking its symmetry.

    Args:
        structure: The candidate (any cell; the basis is expressed in it).
        symprec: Symmetry tolerance (Å) of the space-group analysis.

    Returns:
        Array ``(k, 3, 3)`` of symmetric matrices, scaled as in the module docstring
        (method, step 1); ``k = 1`` (the isotropic direction) when the symmetry cannot be
        determined.
    """
    g0 = structure.lattice.matrix @ structure.lattice.matrix.T
    try:
        ops = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(
            cartesian=False)
    except (ValueError, TypeError, RuntimeError) as exc:  # spglib could not analyse the cell
        logger.debug("lattice refinement: no symmetry for %s (%s); isotropic only",
                     structure.composition.reduced_formula, exc)
        return (g0 / np.abs(g0).max())[None, :, :]
    rotations = [np.rint(op.rotation_matrix) for op in ops] or [np.eye(3)]
    averaged = []
    for i in range(3):
        for j in range(i, 3):
            unit = np.zeros((3, 3))
            unit[i, j] = unit[j, i] = 1.0
            averaged.append((sum(w.T @ unit @ w for w in rotations) / len(rotations)).ravel())
    _, singular, vt = np.linalg.svd(np.asarray(averaged))
    k = int((singular > 1e-8 * singular[0]).sum())
    norm = np.sqrt(np.outer(np.diag(g0), np.diag(g0)))
    basis = []
    for row in vt[:k]:
        b = row.reshape(3, 3)
        b = (b + b.T) / 2.0
        basis.append(b / np.abs(b / norm).max())
    return np.asarray(basis)


@dataclass(frozen=True)
class ReflectionList:
    """Reflections of a candidate for :class:`LatticeFitter` (module docstring, step 2).

    Attributes:
        hkl: Miller indices in the candidate's cell, shape ``(n, 3)`` (float).
        f2: :math:`|F|^2` of each (merged) reflection, shape ``(n,)``.
        metric: The candidate's metric tensor :math:`G_0`, shape ``(3, 3)``.
        basis: The allowed metric changes (:func:`metric_basis`), shape ``(k, 3, 3)``.
    """

    hkl: np.ndarray
    f2: np.ndarray
    metric: np.ndarray
    basis: np.ndarray

    def __len__(self) -> int:
        return int(self.f2.size)


def _form_factor(symbol: str, z: int, s2: np.ndarray) -> np.ndarray:
    try:
        coeff = np.asarray(ATOMIC_SCATTERING_PARAMS[symbol], dtype=float)
    except KeyError:
        raise ConfigurationError(f"no X-ray scattering factors for {symbol}") from None
    return z - 41.78214 * s2 * (coeff[None, :, 0] * np.exp(-coeff[None, :, 1] * s2[:, None])
                                ).sum(axis=1)


def reflection_list(structure: Structure, *, wavelength: str | float = "CuKa",
                    two_theta_max: float | None = None, max_strain: float = MAX_STRAIN,
                    symprec: float = _SYMPREC) -> ReflectionList:
    """Reflections of ``structure`` that can reach the grid under any allowed strain.

    Args:
        structure: The candidate.
        wavelength: Radiation (pymatgen name or Å).
        two_theta_max: Largest 2θ of interest (default: the end of the package's grid).
        max_strain: Largest relative axis change of the fit (widens the d-range).
        symprec: Symmetry tolerance of :func:`metric_basis`.

    Returns:
        :class:`ReflectionList`.
    """
    lam = wavelength_angstrom(wavelength)
    top = float(two_theta_grid()[-1]) if two_theta_max is None else float(two_theta_max)
    g_max = 2.0 * math.sin(math.radians(min(top, 179.0) / 2.0)) / lam * (1.0 + 2 * max_strain)
    g0 = structure.lattice.matrix @ structure.lattice.matrix.T
    basis = metric_basis(structure, symprec)
    points = structure.lattice.reciprocal_lattice_crystallographic.get_points_in_sphere(
        [[0, 0, 0]], [0, 0, 0], g_max)
    hkl = np.rint(np.array([p[0] for p in points], dtype=float)).astype(int).reshape(-1, 3)
    g = np.array([p[1] for p in points], dtype=float)
    h, k, ell = hkl.T
    half = (h > 0) | ((h == 0) & (k > 0)) | ((h == 0) & (k == 0) & (ell > 0))
    hkl, g = hkl[half], g[half]
    s2 = (g / 2.0) ** 2
    factor = np.zeros(len(g), dtype=complex)
    for site in structure:
        phase = np.exp(2j * np.pi * (hkl @ np.asarray(site.frac_coords, dtype=float)))
        for species, occupancy in site.species.items():
            factor += occupancy * _form_factor(species.symbol, species.Z, s2) * phase
    f2 = np.abs(factor) ** 2
    keep = f2 > _ABSENT * max(float(f2.max(initial=0.0)), 1e-30)
    hkl, f2 = hkl[keep].astype(float), f2[keep]
    if not len(f2):
        return ReflectionList(np.zeros((0, 3)), np.zeros(0), g0, basis)
    # reflections with one d-spacing under every allowed metric: the same at G0 and at a
    # generic allowed metric (fixed seed, so the merge is reproducible)
    rng = np.random.default_rng(0)
    g1 = g0 + np.tensordot(rng.uniform(0.01, 0.03, len(basis)), basis, axes=1)
    q = np.stack([np.einsum("ni,ij,nj->n", hkl, np.linalg.inv(m), hkl) for m in (g0, g1)],
                 axis=1)
    _, group = np.unique(np.rint(q * 1e7).astype(np.int64), axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    merged = np.bincount(group, weights=f2)
    first = np.zeros(len(merged), dtype=int)
    first[group[::-1]] = np.arange(len(group))[::-1]
    return ReflectionList(hkl[first], merged, g0, basis)


@dataclass(frozen=True)
class LatticeFit:
    """Outcome of :func:`refine_lattice`.

    Attributes:
        structure: The candidate with the refined cell (same fractional coordinates).
        pattern: Its simulated pattern (package grid).
        r_pxrd: R_PXRD of the refined candidate against the input
            (:func:`~specfusion_lib.inference.candidates.r_pxrd`).
        r_pxrd_start: R_PXRD of the candidate as given (same function).
        strain: Relative change of each axis length ``(a, b, c)``.
        n_parameters: Free metric parameters (the ``k`` of :func:`metric_basis`).
        n_evaluations: Profile evaluations of the fit.
    """

    structure: Structure
    pattern: PXRDPattern
    r_pxrd: float
    r_pxrd_start: float
    strain: tuple[float, float, float]
    n_parameters: int
    n_evaluations: int


class LatticeFitter:
    """Profile R factor of a candidate as a function of its metric (module docstring).

    Args:
        reference: The input pattern (any grid; put on the package's grid).
        reflections: The candidate's :class:`ReflectionList`.
        wavelength: Radiation of the patterns.
        max_strain: Largest relative axis change.
        peak_fwhm: The simulated patterns' own Gaussian peak width (° 2θ).
    """

    def __init__(self, reference: PXRDPattern | np.ndarray, reflections: ReflectionList, *,
                 wavelength: str | float = "CuKa", max_strain: float = MAX_STRAIN,
                 peak_fwhm: float = FWHM_GAUSS) -> None:
        from specfusion_lib.inference.candidates import pattern_on_grid

        if max_strain <= 0:
            raise ConfigurationError("max_strain must be > 0")
        self.grid = two_theta_grid()
        self.step = float(np.median(np.diff(self.grid)))
        self.reference = np.clip(np.nan_to_num(pattern_on_grid(reference, self.grid)), 0.0,
                                 None)
        if self.reference.sum() <= 0:
            raise ConfigurationError("a PXRD pattern without positive intensity cannot be "
                                     "compared")
        self.reflections = reflections
        self.lam = wavelength_angstrom(wavelength)
        self.max_strain = float(max_strain)
        self.peak_fwhm = float(peak_fwhm)
        self.n_evaluations = 0
        self._smoothed: dict[float, np.ndarray] = {}
        h = reflections.hkl
        self._monomials = np.stack([h[:, 0] ** 2, h[:, 1] ** 2, h[:, 2] ** 2,
                                    2 * h[:, 0] * h[:, 1], 2 * h[:, 0] * h[:, 2],
                                    2 * h[:, 1] * h[:, 2]], axis=1)

    def _stride(self, fwhm: float) -> int:
        """Grid points per profile point at smoothing ``fwhm``: about ten per FWHM (a wide
        stage does not need the 0.02° grid, and its cost falls with the stride)."""
        return max(1, int(round(fwhm / _POINTS_PER_FWHM / self.step)))

    def smoothed_reference(self, fwhm: float) -> np.ndarray:
        """The input smoothed with a Gaussian of FWHM ``fwhm`` (°), sampled every
        :meth:`_stride` grid points, unit area."""
        if fwhm not in self._smoothed:
            y = gaussian_filter1d(self.reference, fwhm * FWHM_TO_SIGMA / self.step,
                                  mode="constant")[:: self._stride(fwhm)]
            self._smoothed[fwhm] = y / y.sum()
        return self._smoothed[fwhm]

    def metric(self, c: Sequence[float]) -> np.ndarray:
        """:math:`G(c) = G_0 + \\sum_k c_k B_k`, shape ``(3, 3)``."""
        r = self.reflections
        return r.metric + np.tensordot(np.asarray(c, dtype=float), r.basis, axes=1)

    def profiles(self, c: np.ndarray, fwhm: float) -> tuple[np.ndarray, np.ndarray]:
        """The candidate's unit-area profiles for many metrics at once.

        Args:
            c: Metric parameters, shape ``(m, k)``.
            fwhm: Smoothing of the stage (°).

        Returns:
            ``(profiles, valid)``: shape ``(m, n)`` on the stage's grid (every
            :meth:`_stride`-th point of the package's grid) and ``(m,)``, False where
            ``G(c)`` is not a metric or no reflection falls on the grid.
        """
        r = self.reflections
        stride = self._stride(fwhm)
        n = len(self.grid[::stride])
        c = np.atleast_2d(np.asarray(c, dtype=float))
        metrics = r.metric[None] + np.tensordot(c, r.basis, axes=1)
        valid = np.linalg.det(metrics) > 0
        inverse = np.linalg.inv(np.where(valid[:, None, None], metrics, np.eye(3)))
        # 1/d² = hᵀ G⁻¹ h as one product: the six independent elements of each G⁻¹ times the
        # reflections' monomials (h², k², l², 2hk, 2hl, 2kl)
        q = inverse[:, _UPPER[0], _UPPER[1]] @ self._monomials.T
        valid &= np.all(q > 0, axis=1)
        sin_theta = self.lam * np.sqrt(np.clip(q, 1e-12, None)) / 2.0
        ok = valid[:, None] & (sin_theta < 1.0)
        s2 = np.where(ok, sin_theta, 0.5) ** 2
        # Lorentz-polarisation (1 + cos² 2θ) / (sin² θ cos θ) from sin θ alone
        lp = (1.0 + (1.0 - 2.0 * s2) ** 2) / (s2 * np.sqrt(1.0 - s2))
        position = (np.degrees(2.0 * np.arcsin(np.sqrt(s2))) - self.grid[0]) / (
            self.step * stride)
        ok &= (position >= 0) & (position < n - 1)
        row, col = np.nonzero(ok)
        lower = np.floor(position[row, col]).astype(int)
        share = position[row, col] - lower
        weight = r.f2[col] * lp[row, col]
        flat = row * n + lower
        size = len(c) * n
        y = (np.bincount(flat, weights=weight * (1.0 - share), minlength=size)
             + np.bincount(flat + 1, weights=weight * share, minlength=size))[:size]
        y = gaussian_filter1d(y.reshape(len(c), n), math.hypot(fwhm, self.peak_fwhm)
                              * FWHM_TO_SIGMA / (self.step * stride), axis=1, mode="constant")
        total = y.sum(axis=1)
        valid &= total > 0
        return y / np.where(total > 0, total, 1.0)[:, None], valid

    def r_factors(self, c: np.ndarray, fwhm: float) -> np.ndarray:
        """Profile R factors of many metrics ``G(c)`` (``c`` shape ``(m, k)``) at smoothing
        ``fwhm``, shape ``(m,)``: 2 for an invalid metric, 2 plus the excess outside the
        bounds (so an optimiser turns back)."""
        c = np.atleast_2d(np.asarray(c, dtype=float))
        self.n_evaluations += len(c)
        excess = np.clip(np.abs(c) - 2.0 * self.max_strain, 0.0, None).sum(axis=1)
        y, valid = self.profiles(np.clip(c, -2.0 * self.max_strain, 2.0 * self.max_strain),
                                 fwhm)
        values = np.abs(self.smoothed_reference(fwhm)[None, :] - y).sum(axis=1)
        return np.where(valid & (excess == 0), values, 2.0 + excess)

    def r_factor(self, c: Sequence[float], fwhm: float) -> float:
        """Profile R factor of one metric ``G(c)`` (:meth:`r_factors`)."""
        return float(self.r_factors(np.asarray(c, dtype=float)[None, :], fwhm)[0])

    def _offsets(self) -> np.ndarray:
        """Search directions of :meth:`descend`: every corner, edge and face of the unit cube
        around the point (3^k − 1 of them) for k ≤ 3, else 64 Sobol directions and the ± unit
        vectors, shape ``(n, k)``."""
        k = len(self.reflections.basis)
        if k <= 3:
            grid = np.array(list(itertools.product((-1.0, 0.0, 1.0), repeat=k)))
            return grid[np.abs(grid).sum(axis=1) > 0]
        sample = 2.0 * qmc.Sobol(k, seed=1).random_base2(6) - 1.0
        return np.vstack([np.eye(k), -np.eye(k), sample])

    def descend(self, start: np.ndarray, fwhm: float, step: float, tol: float
                ) -> tuple[float, np.ndarray]:
        """Batched pattern search from ``start``: all :meth:`_offsets` at ``step`` are
        evaluated at once; move to the best if it improves, else halve the step; stop below
        ``tol``. Returns ``(R, c)``."""
        offsets = self._offsets()
        x = np.asarray(start, dtype=float)
        r = self.r_factor(x, fwhm)
        while step >= tol:
            trial = x[None, :] + step * offsets
            values = self.r_factors(trial, fwhm)
            i = int(np.argmin(values))
            if values[i] < r:
                x, r = trial[i], float(values[i])
            else:
                step /= 2.0
        return r, x

    def coarse(self, fwhm: float = FIT_SMOOTHING_SCHEDULE_DEG[0]
               ) -> list[tuple[float, np.ndarray]]:
        """The coarse stage (module docstring, step 4): a quasi-random (Sobol) sample of the
        allowed box plus the candidate's cell and ± :data:`START_STRAIN` along each
        direction, evaluated at once, then Powell's method from the best distinct points.

        Returns:
            Up to ``_N_BASINS`` ``(R, c)`` pairs, best first. The smallest R bounds the
            finer stages' R factor from below (module docstring: a wider Gaussian is the
            narrower one convolved again, and a convolution never increases an L1 distance).
        """
        k = len(self.reflections.basis)
        half_width = 2.0 * self.max_strain
        sample = qmc.Sobol(k, seed=0).random_base2(_SOBOL_LOG2 + (1 if k >= 3 else 0))
        points = np.vstack([np.zeros((1, k)),
                            START_STRAIN * np.vstack([np.eye(k), -np.eye(k)]),
                            (2.0 * sample - 1.0) * half_width])
        values = self.r_factors(points, fwhm)
        starts: list[np.ndarray] = []
        for i in np.argsort(values, kind="stable"):
            if all(np.abs(points[i] - x).max() > _DISTINCT for x in starts):
                starts.append(points[i])
            if len(starts) == _N_BASINS:
                break
        found = sorted((self.descend(x, fwhm, _COARSE_STEP, _COARSE_TOL) for x in starts),
                       key=lambda t: t[0])
        return found

    def finish(self, basins: Sequence[tuple[float, np.ndarray]],
               schedule: Sequence[float] = FIT_SMOOTHING_SCHEDULE_DEG[1:]
               ) -> tuple[float, np.ndarray]:
        """The finer stages from each coarse minimum; the best ``(R, c)`` at the last
        smoothing (the candidate's own cell when nothing beats it)."""
        k = len(self.reflections.basis)
        last = float(schedule[-1]) if len(schedule) else FIT_SMOOTHING_SCHEDULE_DEG[-1]
        best = (self.r_factor(np.zeros(k), last), np.zeros(k))
        for _, x in basins:
            r = self.r_factor(x, last) if not len(schedule) else math.inf
            for fwhm in schedule:  # each stage returns R at its own smoothing, the last at last
                r, x = self.descend(x, float(fwhm), _FINE_STEP, _FINE_TOL)
            if r < best[0]:
                best = (r, x)
        return best

    def fit(self, schedule: Sequence[float] = FIT_SMOOTHING_SCHEDULE_DEG) -> np.ndarray:
        """The metric parameters ``c`` that minimise the R factor (module docstring, step 4),
        shape ``(k,)``; zeros when no strain lowers the finest stage's R factor."""
        if not schedule:
            raise ConfigurationError("the smoothing schedule is empty")
        return self.finish(self.coarse(float(schedule[0])), schedule[1:])[1]


def strained_structure(structure: Structure, metric: np.ndarray) -> Structure:
    """``structure`` with the cell of ``metric`` (same fractional coordinates and species).

    Args:
        structure: The candidate.
        metric: Metric tensor ``(3, 3)`` of the new cell.
    """
    a, b, c = np.sqrt(np.diag(metric))
    alpha = math.degrees(math.acos(np.clip(metric[1, 2] / (b * c), -1.0, 1.0)))
    beta = math.degrees(math.acos(np.clip(metric[0, 2] / (a * c), -1.0, 1.0)))
    gamma = math.degrees(math.acos(np.clip(metric[0, 1] / (a * b), -1.0, 1.0)))
    lattice = Lattice.from_parameters(a, b, c, alpha, beta, gamma)
    return Structure(lattice, structure.species_and_occu, structure.frac_coords,
                     site_properties=structure.site_properties or None)


def reflection_pattern(reflections: ReflectionList, metric: np.ndarray | None = None, *,
                       wavelength: str | float = "CuKa") -> PXRDPattern:
    """The broadened pattern of a reflection list at ``metric`` (default its own cell), on the
    package's grid, with the peak shape of :func:`~specfusion_lib.spectra.pxrd.
    simulate_pattern` (which it reproduces for the unstrained cell: same reflections, form
    factors and Lorentz-polarisation factor, without pymatgen's merging of coincident peaks,
    which does not change a profile)."""
    lam = wavelength_angstrom(wavelength)
    m = reflections.metric if metric is None else np.asarray(metric, dtype=float)
    grid = two_theta_grid()
    q = np.einsum("ni,ij,nj->n", reflections.hkl, np.linalg.inv(m), reflections.hkl)
    sin_theta = lam * np.sqrt(np.clip(q, 0.0, None)) / 2.0
    ok = (sin_theta > 0) & (sin_theta < 1.0)
    theta = np.arcsin(sin_theta[ok])
    two_theta = np.degrees(2.0 * theta)
    intensity = reflections.f2[ok] * ((1.0 + np.cos(2.0 * theta) ** 2)
                                      / (np.sin(theta) ** 2 * np.cos(theta)))
    keep = ((two_theta >= grid[0] - PEAK_MARGIN_DEG) & (two_theta <= grid[-1] + PEAK_MARGIN_DEG)
            & (intensity > 0))
    order = np.argsort(two_theta[keep], kind="stable")
    two_theta, intensity, theta = two_theta[keep][order], intensity[keep][order], \
        theta[keep][order]
    if intensity.size:
        intensity = intensity / intensity.max()
    peaks = PXRDPeaks(two_theta, intensity, lam / (2.0 * np.sin(theta)),
                      tuple(() for _ in two_theta), wavelength)
    return pattern_from_peaks(peaks, grid)


def fit_result(reference: PXRDPattern | np.ndarray, structure: Structure,
               fitter: LatticeFitter, c: np.ndarray, *,
               start_pattern: PXRDPattern | None = None,
               r_start: float | None = None) -> LatticeFit:
    """The :class:`LatticeFit` of the metric parameters ``c`` found by ``fitter``: the
    strained candidate, its pattern (:func:`reflection_pattern`) and R_PXRD; the candidate
    unchanged when that R_PXRD is not below the unstrained one (the fit's Gaussian profile
    and the full comparison can disagree by a little). ``start_pattern`` and ``r_start``, the
    unstrained candidate's pattern and R_PXRD, are computed when not given."""
    from specfusion_lib.inference.candidates import r_pxrd

    start = (reflection_pattern(fitter.reflections) if start_pattern is None
             else start_pattern)
    r_start = r_pxrd(reference, start) if r_start is None else float(r_start)
    k = len(fitter.reflections.basis)
    unchanged = LatticeFit(structure, start, r_start, r_start, (0.0, 0.0, 0.0), k,
                           fitter.n_evaluations)
    if not np.any(c):
        return unchanged
    pattern = reflection_pattern(fitter.reflections, fitter.metric(c))
    r_refined = r_pxrd(reference, pattern)
    if not r_refined < r_start:
        return unchanged
    refined = strained_structure(structure, fitter.metric(c))
    strain = np.array(refined.lattice.abc) / np.array(structure.lattice.abc) - 1.0
    return LatticeFit(refined, pattern, r_refined, r_start,
                      (float(strain[0]), float(strain[1]), float(strain[2])), k,
                      fitter.n_evaluations)


def refine_lattice(reference: PXRDPattern | np.ndarray, structure: Structure, *,
                   max_strain: float = MAX_STRAIN,
                   schedule: Sequence[float] = FIT_SMOOTHING_SCHEDULE_DEG,
                   start_pattern: PXRDPattern | None = None,
                   symprec: float = _SYMPREC) -> LatticeFit:
    """Refine the cell of ``structure`` against ``reference`` (module docstring).

    Args:
        reference: The input pattern.
        structure: The candidate (ordered or disordered; fractional coordinates kept).
        max_strain: Largest relative change of an axis length.
        schedule: Smoothing FWHMs (°) of the fit's stages, coarse to fine.
        start_pattern: The candidate's simulated pattern if already known.
        symprec: Symmetry tolerance of :func:`metric_basis`.

    Returns:
        :class:`LatticeFit`; the candidate unchanged (strain 0) when no strain lowers
        R_PXRD.

    Raises:
        ConfigurationError: A pattern without positive intensity, an element without
            scattering factors, ``max_strain`` ≤ 0, an empty schedule.
    """
    reflections = reflection_list(structure, max_strain=max_strain, symprec=symprec)
    fitter = LatticeFitter(reference, reflections, max_strain=max_strain)
    c = fitter.fit(schedule) if len(reflections) else np.zeros(len(reflections.basis))
    return fit_result(reference, structure, fitter, c, start_pattern=start_pattern)
