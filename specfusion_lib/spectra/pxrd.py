"""Powder X-ray diffraction: simulation, Voigt broadening, augmentation and user files.

The PXRD branch of the paper (main text, Fig. 4c,d and SI Fig. S18–S20) classifies the crystal
system from a powder pattern. Training patterns are simulated from structures, broadened with a
Voigt function to emulate the instrument, and corrupted with Gaussian noise and background.

Method
------
1. **Peaks** (:func:`simulate_peaks`): pymatgen's :class:`XRDCalculator` (kinematic structure
   factors with atomic scattering factors, Lorentz-polarisation factor, multiplicities; Cu Kα
   by default, the weighted Kα1/Kα2 mean 1.54184 Å). Peaks are computed a little beyond the
   grid (:data:`PEAK_MARGIN_DEG`) so that tails of reflections just outside it are present.
   Intensities are integrated intensities scaled to a maximum of 1; systematically absent
   reflections (round-off-level intensities) are dropped.
2. **Profile** (:func:`voigt_profile_pattern`): every peak *k* at 2θ_k with integrated intensity
   I_k contributes I_k·V(2θ − 2θ_k; σ_k, γ_k), where V is the area-normalised Voigt profile
   (:func:`scipy.special.voigt_profile`), σ = FWHM_G / (2√(2 ln 2)) and γ = FWHM_L / 2. The sum
   is evaluated for all peaks at once (chunks of :data:`_PEAK_CHUNK` peaks × grid points):
   exactly within :data:`_TAIL_WINDOW_WIDTHS` widths of each peak, by the analytic far tail
   L + (σ²/2)L″ beyond (below 10⁻⁷ of the peak height off), and scaled to a maximum of 1.
   Angle-dependent widths are optional: a Caglioti Gaussian width
   FWHM_G² = U tan²θ + V tanθ + W (:func:`caglioti_fwhm`) and a Scherrer Lorentzian width
   FWHM_L = Kλ / (L cos θ) (:func:`scherrer_fwhm`).
3. **Grid**: 2θ = 10–80° (:data:`TWO_THETA_RANGE`) in steps of 0.02° (:data:`TWO_THETA_STEP`),
   3501 points (:func:`two_theta_grid`). 10–80° is the range of a routine laboratory Cu Kα scan
   and holds the symmetry-diagnostic low-index reflections of almost all inorganic crystals;
   0.02° is a common laboratory step and samples the default peak (Voigt FWHM ≈ 0.13°) with
   6–7 points.
4. **Augmentation** (:func:`augment_pattern`, training time only): a random zero shift of the
   2θ axis (sample displacement), a smooth multiplicative intensity modulation (texture), a
   random smooth background (exponential decay at low angle plus a low-order polynomial) and
   additive Gaussian noise (counting statistics; Fig. S18). All amplitudes are fractions of the
   strongest peak. :func:`augment_peaks` perturbs each reflection's intensity individually
   (an empirical stand-in for preferred orientation) before broadening.
5. **User files** (:func:`read_pattern`, :func:`to_grid`): two columns 2θ (degrees) and
   intensity, whitespace/comma/semicolon separated, ``#`` comments, optional text header.
   :func:`to_grid` converts the 2θ axis to the target wavelength through Bragg's law at
   constant d (sin θ_t = (λ_t / λ_s) sin θ_s) and interpolates linearly onto the fixed grid;
   intensities are not corrected for the change of the Lorentz-polarisation factor.

Defaults are collected in the constants below.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pymatgen.analysis.diffraction.xrd import WAVELENGTHS, XRDCalculator
from pymatgen.core import Structure
from scipy.special import voigt_profile

from specfusion_lib.core.errors import ConfigurationError, SpectrumFileError

__all__ = [
    "FWHM_TO_SIGMA",
    "BACKGROUND",
    "FWHM_GAUSS",
    "FWHM_LORENTZ",
    "INTENSITY_JITTER",
    "MIN_COVERAGE",
    "MIN_POINTS",
    "NOISE_LEVEL",
    "PEAK_MARGIN_DEG",
    "TWO_THETA_RANGE",
    "TWO_THETA_STEP",
    "WAVELENGTH",
    "ZERO_SHIFT_DEG",
    "PXRDPattern",
    "PXRDPeaks",
    "augment_pattern",
    "augment_peaks",
    "caglioti_fwhm",
    "convert_two_theta",
    "pattern_from_peaks",
    "read_pattern",
    "scherrer_fwhm",
    "shift_pattern",
    "simulate_pattern",
    "simulate_peaks",
    "to_grid",
    "two_theta_grid",
    "voigt_profile_pattern",
    "wavelength_angstrom",
]

# --------------------------------------------------------------------------------------------
# Constants (one table)
# --------------------------------------------------------------------------------------------

#: Radiation of the simulated patterns (pymatgen name; weighted Kα1/Kα2 mean, 1.54184 Å).
WAVELENGTH: str = "CuKa"
#: The fixed 2θ grid of the model input, degrees (inclusive).
TWO_THETA_RANGE: tuple[float, float] = (10.0, 80.0)
#: Grid step in degrees: 10–80° → 3501 points.
TWO_THETA_STEP: float = 0.02
#: Peaks are simulated this far (degrees) outside the grid so that their tails enter it.
PEAK_MARGIN_DEG: float = 2.0
#: Gaussian (instrumental) FWHM, degrees 2θ: a laboratory Bragg–Brentano diffractometer.
FWHM_GAUSS: float = 0.10
#: Lorentzian (sample: size/strain) FWHM, degrees 2θ. Voigt FWHM with FWHM_GAUSS ≈ 0.13°.
FWHM_LORENTZ: float = 0.05
#: A user file needs at least this many points (fewer cannot sample peaks over a useful range).
MIN_POINTS: int = 100
#: A user pattern must cover at least this fraction of the target grid after conversion.
MIN_COVERAGE: float = 0.5
#: Default standard deviation of the additive Gaussian noise, fraction of the strongest peak.
NOISE_LEVEL: float = 0.02
#: Default maximum height of the random background, fraction of the strongest peak.
BACKGROUND: float = 0.05
#: Default maximum |zero shift| of the 2θ axis, degrees (uniform in ±this value).
ZERO_SHIFT_DEG: float = 0.05
#: Default strength of the intensity perturbation (std of the log-intensity factor).
INTENSITY_JITTER: float = 0.1

#: σ of a Gaussian per unit FWHM, 1 / (2 √(2 ln 2)).
FWHM_TO_SIGMA: float = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
_PEAK_CHUNK = 256
#: Half width of the exact Voigt evaluation around each peak, in units of the larger of σ and
#: γ: beyond it the analytic tail (:func:`_voigt_tail`) is used (for the default widths the
#: window is 1.27°, where the profile is 0.08 % of its peak height and the tail is right to
#: 1.5·10⁻⁸ of it).
_TAIL_WINDOW_WIDTHS = 30.0
_ABSENT_INTENSITY = 1e-8  # unscaled |F|²·LP·multiplicity (electrons²) below this: absent
_JITTER_DEGREE = 4  # Chebyshev degree of the smooth intensity modulation
_BACKGROUND_DEGREE = 3  # Chebyshev degree of the polynomial background
_BACKGROUND_TAU = (0.03, 0.3)  # decay length of the low-angle background, fraction of range
_WAVELENGTH_RE = re.compile(r"wavelength\s*[:=]\s*([A-Za-z0-9.+\-eE]+)", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Wavelengths and grids
# --------------------------------------------------------------------------------------------


def wavelength_angstrom(wavelength: str | float) -> float:
    """Wavelength in Å from a pymatgen name (``"CuKa"``, ``"MoKa1"``, ...) or a number.

    Raises:
        ConfigurationError: If the name is unknown or the number is not positive and finite.
    """
    if isinstance(wavelength, str):
        if wavelength in WAVELENGTHS:
            return float(WAVELENGTHS[wavelength])
        try:
            value = float(wavelength)
        except ValueError:
            raise ConfigurationError(
                f"unknown wavelength {wavelength!r}; use a number in Å or one of "
                f"{sorted(WAVELENGTHS)}"
            ) from None
    else:
        value = float(wavelength)
    if not np.isfinite(value) or value <= 0:
        raise ConfigurationError(f"wavelength must be a positive number of Å, got {wavelength!r}")
    return value


def two_theta_grid(
    two_theta_range: tuple[float, float] = TWO_THETA_RANGE, step: float = TWO_THETA_STEP
) -> np.ndarray:
    """Uniform 2θ grid in degrees, both ends included (default 10–80° at 0.02°, 3501 points).

    Raises:
        ValueError: If the range is empty, outside (0°, 180°) or not a multiple of the step.
    """
    lo, hi = map(float, two_theta_range)
    if not 0.0 <= lo < hi <= 180.0 or step <= 0:
        raise ValueError(f"invalid 2θ grid {two_theta_range} with step {step}")
    n_steps = (hi - lo) / step
    if abs(n_steps - round(n_steps)) > 1e-6:
        raise ValueError(f"2θ range {two_theta_range} is not a multiple of the step {step}")
    return np.linspace(lo, hi, int(round(n_steps)) + 1)


def convert_two_theta(
    two_theta: ArrayLike, source_wavelength: str | float, target_wavelength: str | float
) -> np.ndarray:
    """Convert 2θ (degrees) between wavelengths at constant d-spacing (Bragg's law).

    d = λ_s / (2 sin θ_s) = λ_t / (2 sin θ_t), so sin θ_t = (λ_t / λ_s) sin θ_s.

    Returns:
        2θ at the target wavelength; ``NaN`` where the reflection is not observable there
        (sin θ_t > 1, possible when the target wavelength is longer).
    """
    ratio = wavelength_angstrom(target_wavelength) / wavelength_angstrom(source_wavelength)
    sin_t = ratio * np.sin(np.deg2rad(np.asarray(two_theta, dtype=float)) / 2.0)
    with np.errstate(invalid="ignore"):
        return np.where(sin_t <= 1.0, 2.0 * np.rad2deg(np.arcsin(np.minimum(sin_t, 1.0))), np.nan)


def _uniform_step(two_theta: np.ndarray) -> float:
    diffs = np.diff(two_theta)
    if diffs.size == 0 or not np.allclose(diffs, diffs[0], rtol=1e-6, atol=1e-9) or diffs[0] <= 0:
        raise ValueError("augmentation needs a uniform, increasing 2θ grid")
    return float(diffs[0])


# --------------------------------------------------------------------------------------------
# Peaks and profiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PXRDPeaks:
    """Reflections of a structure (a stick pattern).

    Attributes:
        two_theta: Peak positions, degrees 2θ, ascending.
        intensity: Integrated intensities, scaled to a maximum of 1.
        d_spacing: Interplanar spacings, Å.
        hkls: Miller indices of each peak's families (four indices for hexagonal cells).
        wavelength: Radiation (pymatgen name or Å).
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    d_spacing: np.ndarray
    hkls: tuple[tuple[tuple[int, ...], ...], ...]
    wavelength: str | float

    def __len__(self) -> int:
        return int(self.two_theta.size)


def simulate_peaks(
    structure: Structure,
    wavelength: str | float = WAVELENGTH,
    two_theta_range: tuple[float, float] = TWO_THETA_RANGE,
) -> PXRDPeaks:
    """Reflections of a structure with pymatgen's XRDCalculator.

    Args:
        structure: The crystal structure.
        wavelength: pymatgen radiation name or wavelength in Å.
        two_theta_range: Range of peak positions in degrees.

    Returns:
        :class:`PXRDPeaks` (empty arrays if no reflection falls in the range).
    """
    lam = wavelength_angstrom(wavelength)
    calc = XRDCalculator(wavelength=wavelength if isinstance(wavelength, str) else lam)
    pat = calc.get_pattern(structure, scaled=False, two_theta_range=tuple(two_theta_range))
    intensity = np.asarray(pat.y, dtype=float)
    # Systematically absent reflections come out at round-off level (~1e-26) and survive
    # pymatgen's *relative* filter when no allowed reflection lies in the range.
    keep = np.flatnonzero(intensity > _ABSENT_INTENSITY)
    intensity = intensity[keep]
    if intensity.size:
        intensity = intensity / intensity.max()
    hkls = tuple(tuple(tuple(int(i) for i in fam["hkl"]) for fam in pat.hkls[k]) for k in keep)
    return PXRDPeaks(
        two_theta=np.asarray(pat.x, dtype=float)[keep],
        intensity=intensity,
        d_spacing=np.asarray(pat.d_hkls, dtype=float)[keep],
        hkls=hkls,
        wavelength=wavelength,
    )


def caglioti_fwhm(two_theta: ArrayLike, u: float, v: float, w: float) -> np.ndarray:
    """Caglioti Gaussian width, FWHM² = U tan²θ + V tanθ + W (degrees², θ = 2θ / 2).

    Returns:
        FWHM in degrees 2θ; negative arguments of the square root are clipped to 0.
    """
    tan_t = np.tan(np.deg2rad(np.asarray(two_theta, dtype=float)) / 2.0)
    return np.sqrt(np.clip(u * tan_t**2 + v * tan_t + w, 0.0, None))


def scherrer_fwhm(
    two_theta: ArrayLike,
    crystallite_size_nm: float,
    wavelength: str | float = WAVELENGTH,
    shape_factor: float = 0.9,
) -> np.ndarray:
    """Scherrer size broadening FWHM = Kλ / (L cos θ), returned in degrees 2θ."""
    lam_nm = wavelength_angstrom(wavelength) / 10.0
    cos_t = np.cos(np.deg2rad(np.asarray(two_theta, dtype=float)) / 2.0)
    return np.rad2deg(shape_factor * lam_nm / (crystallite_size_nm * cos_t))


def voigt_profile_pattern(
    positions: ArrayLike,
    intensities: ArrayLike,
    grid: ArrayLike,
    fwhm_gauss: float | ArrayLike = FWHM_GAUSS,
    fwhm_lorentz: float | ArrayLike = FWHM_LORENTZ,
    *,
    normalize: bool = True,
) -> np.ndarray:
    """Sum of Voigt peaks on a grid.

    Args:
        positions: Peak positions (degrees 2θ), shape ``(n_peaks,)``.
        intensities: Integrated peak intensities, shape ``(n_peaks,)``.
        grid: Evaluation points (degrees 2θ).
        fwhm_gauss: Gaussian FWHM in degrees, scalar or one per peak (see
            :func:`caglioti_fwhm`).
        fwhm_lorentz: Lorentzian FWHM in degrees, scalar or one per peak (see
            :func:`scherrer_fwhm`).
        normalize: Scale the result to a maximum of 1 (an all-zero result stays zero).

    Returns:
        Intensity on ``grid``.

    Raises:
        ValueError: On mismatched shapes or a peak whose two widths are both zero or negative.
    """
    x = np.asarray(grid, dtype=float)
    pos = np.atleast_1d(np.asarray(positions, dtype=float))
    amp = np.atleast_1d(np.asarray(intensities, dtype=float))
    if pos.shape != amp.shape or pos.ndim != 1:
        raise ValueError("positions and intensities must be 1-D arrays of the same length")
    fg = np.broadcast_to(np.asarray(fwhm_gauss, dtype=float), pos.shape)
    fl = np.broadcast_to(np.asarray(fwhm_lorentz, dtype=float), pos.shape)
    if np.any(fg < 0) or np.any(fl < 0) or np.any(fg + fl <= 0):
        raise ValueError("peak widths must be non-negative and not both zero")
    sigma = fg * FWHM_TO_SIGMA
    gamma = fl / 2.0
    out = np.zeros(x.shape, dtype=float)
    window = _TAIL_WINDOW_WIDTHS * float(np.max(np.maximum(sigma, gamma), initial=0.0))
    windowed = (x.ndim == 1 and x.size > 1 and bool(np.all(np.diff(x) > 0))
                and 2.0 * window < x[-1] - x[0])
    for start in range(0, pos.size, _PEAK_CHUNK):
        sl = slice(start, start + _PEAK_CHUNK)
        if windowed:
            out += _windowed_voigt_sum(pos[sl], amp[sl], sigma[sl], gamma[sl], x, window)
            continue
        prof = voigt_profile(
            x[None, ...] - pos[sl, None], sigma[sl, None], gamma[sl, None]
        )  # (chunk, n_grid)
        out += amp[sl] @ prof
    if normalize:
        peak = out.max(initial=0.0)
        if peak > 0:
            out /= peak
    return out


def _voigt_tail(d: np.ndarray, sigma: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """The Voigt profile far from its centre, L(d) + (σ²/2)·L''(d), L the Lorentzian of
    half width γ (the Gaussian's second moment acting on the Lorentzian; the next term is
    O(σ⁴ γ / d⁶))."""
    g2 = gamma * gamma
    d2 = np.square(d)
    inv_q = d2 + g2
    np.maximum(inv_q, np.finfo(float).tiny, out=inv_q)  # γ = 0 at d = 0: a zero tail
    np.reciprocal(inv_q, out=inv_q)  # 1 / (d² + γ²)
    d2 *= 6.0
    d2 -= 2.0 * g2
    d2 *= inv_q
    d2 *= inv_q
    d2 *= 0.5 * sigma * sigma
    d2 += 1.0  # 1 + (σ²/2)(6d² − 2γ²)/(d² + γ²)²
    d2 *= inv_q
    d2 *= gamma / np.pi
    return d2


def _windowed_voigt_sum(pos: np.ndarray, amp: np.ndarray, sigma: np.ndarray,
                        gamma: np.ndarray, x: np.ndarray, window: float) -> np.ndarray:
    """Σ_k amp_k·V(x − pos_k) on an increasing grid: the exact Voigt (Faddeeva function)
    within ``window`` of each peak, :func:`_voigt_tail` beyond (relative error below 10⁻⁷
    of the peak height there for the window :data:`_TAIL_WINDOW_WIDTHS` widths wide).

    Shapes: ``pos``, ``amp``, ``sigma``, ``gamma`` ``(n_peaks,)``; ``x`` ``(n_grid,)``;
    returns ``(n_grid,)``.
    """
    out = amp @ _voigt_tail(x[None, :] - pos[:, None], sigma[:, None], gamma[:, None])
    first = np.searchsorted(x, pos - window)
    width = int(np.max(np.searchsorted(x, pos + window, side="right") - first, initial=0))
    if width == 0:
        return out
    idx = first[:, None] + np.arange(width)[None, :]  # (n_peaks, width)
    inside = idx < x.size
    idx = np.minimum(idx, x.size - 1)
    d = x[idx] - pos[:, None]
    inside &= np.abs(d) <= window
    exact = voigt_profile(d, sigma[:, None], gamma[:, None])
    correction = (exact - _voigt_tail(d, sigma[:, None], gamma[:, None])) * amp[:, None]
    out += np.bincount(idx[inside], weights=correction[inside], minlength=x.size)
    return out


# --------------------------------------------------------------------------------------------
# Pattern container
# --------------------------------------------------------------------------------------------


def _readonly(a: ArrayLike) -> np.ndarray:
    arr = np.array(a, dtype=float)  # always a copy
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class PXRDPattern:
    """A powder pattern on a 2θ axis.

    Attributes:
        two_theta: 2θ in degrees, strictly increasing (read-only copy).
        intensity: Intensity, same shape (read-only copy).
        wavelength: Radiation (pymatgen name or Å); ``None`` if unknown.
        source: Where the pattern came from (file path, ``"simulated"``, ...), used in errors.
        metadata: Free-form information (formula, widths, comments of the file, ...).
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: str | float | None = WAVELENGTH
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x, y = _readonly(self.two_theta), _readonly(self.intensity)
        if x.ndim != 1 or x.shape != y.shape:
            raise ValueError("two_theta and intensity must be 1-D arrays of the same length")
        object.__setattr__(self, "two_theta", x)
        object.__setattr__(self, "intensity", y)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return int(self.two_theta.size)

    @property
    def wavelength_angstrom(self) -> float | None:
        """Wavelength in Å, or ``None`` if unknown."""
        return None if self.wavelength is None else wavelength_angstrom(self.wavelength)

    def to_xy(self, path: str | os.PathLike[str]) -> Path:
        """Write a two-column ``.xy`` text file (atomically: temporary file, then rename).

        The header holds ``# wavelength: ...`` (read back by :func:`read_pattern`) and the
        metadata as ``# key: value`` comment lines.

        Returns:
            The path written.
        """
        path = Path(path)
        lines = ["# specfusion PXRD pattern"]
        if self.wavelength is not None:
            lines.append(f"# wavelength: {self.wavelength}")
        for key, value in self.metadata.items():
            text = json.dumps(value, default=str) if not isinstance(value, str) else value
            lines.append(f"# {key}: {' '.join(text.splitlines())}")
        lines.append("# two_theta_deg intensity")
        body = "\n".join(
            f"{x:.6f} {y:.8e}" for x, y in zip(self.two_theta, self.intensity, strict=True)
        )
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n" + body + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def from_xy(
        cls, path: str | os.PathLike[str], wavelength: str | float | None = None
    ) -> PXRDPattern:
        """Read a two-column file; same as :func:`read_pattern`."""
        return read_pattern(path, wavelength=wavelength)


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


def pattern_from_peaks(
    peaks: PXRDPeaks,
    grid: ArrayLike | None = None,
    *,
    fwhm_gauss: float = FWHM_GAUSS,
    fwhm_lorentz: float = FWHM_LORENTZ,
    caglioti: tuple[float, float, float] | None = None,
    crystallite_size_nm: float | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PXRDPattern:
    """Broaden a stick pattern into a :class:`PXRDPattern` (see :func:`simulate_pattern`)."""
    x = two_theta_grid() if grid is None else np.asarray(grid, dtype=float)
    fg = fwhm_gauss if caglioti is None else caglioti_fwhm(peaks.two_theta, *caglioti)
    fl = (
        fwhm_lorentz
        if crystallite_size_nm is None
        else scherrer_fwhm(peaks.two_theta, crystallite_size_nm, peaks.wavelength)
    )
    y = voigt_profile_pattern(peaks.two_theta, peaks.intensity, x, fg, fl)
    meta: dict[str, Any] = {
        "n_peaks": len(peaks),
        "fwhm_gauss": fwhm_gauss if caglioti is None else None,
        "fwhm_lorentz": fwhm_lorentz if crystallite_size_nm is None else None,
        "caglioti_uvw": list(caglioti) if caglioti is not None else None,
        "crystallite_size_nm": crystallite_size_nm,
    }
    meta.update(metadata or {})
    return PXRDPattern(x, y, wavelength=peaks.wavelength, source="simulated", metadata=meta)


def simulate_pattern(
    structure: Structure,
    grid: ArrayLike | None = None,
    *,
    wavelength: str | float = WAVELENGTH,
    fwhm_gauss: float = FWHM_GAUSS,
    fwhm_lorentz: float = FWHM_LORENTZ,
    caglioti: tuple[float, float, float] | None = None,
    crystallite_size_nm: float | None = None,
) -> PXRDPattern:
    """Simulate a broadened powder pattern of a structure on a fixed grid.

    Args:
        structure: The crystal structure.
        grid: 2θ grid in degrees (default :func:`two_theta_grid`, 10–80° at 0.02°).
        wavelength: Radiation, default Cu Kα.
        fwhm_gauss: Constant Gaussian FWHM, degrees (ignored if ``caglioti`` is given).
        fwhm_lorentz: Constant Lorentzian FWHM, degrees (ignored if ``crystallite_size_nm``).
        caglioti: ``(U, V, W)`` in degrees² for an angle-dependent Gaussian width.
        crystallite_size_nm: Crystallite size for an angle-dependent Scherrer Lorentzian width.

    Returns:
        :class:`PXRDPattern` with intensity scaled to a maximum of 1 and metadata
        ``formula``, ``n_peaks`` and the widths used.
    """
    x = two_theta_grid() if grid is None else np.asarray(grid, dtype=float)
    lo = max(float(x.min()) - PEAK_MARGIN_DEG, 0.0)
    hi = min(float(x.max()) + PEAK_MARGIN_DEG, 180.0)
    peaks = simulate_peaks(structure, wavelength=wavelength, two_theta_range=(lo, hi))
    return pattern_from_peaks(
        peaks,
        x,
        fwhm_gauss=fwhm_gauss,
        fwhm_lorentz=fwhm_lorentz,
        caglioti=caglioti,
        crystallite_size_nm=crystallite_size_nm,
        metadata={"formula": structure.composition.reduced_formula},
    )


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------


def augment_peaks(
    peaks: PXRDPeaks,
    rng: np.random.Generator,
    *,
    intensity_jitter: float = INTENSITY_JITTER,
    zero_shift_deg: float = 0.0,
) -> PXRDPeaks:
    """Perturb each reflection's intensity (texture / preferred orientation) and position.

    Each intensity is multiplied by an independent log-normal factor exp(s·z − s²/2),
    z ~ N(0, 1), s = ``intensity_jitter`` (mean factor 1), then rescaled to a maximum of 1. All
    positions move by one common zero shift drawn uniformly from ±``zero_shift_deg``.

    Args:
        peaks: Stick pattern from :func:`simulate_peaks`.
        rng: Source of randomness.
        intensity_jitter: Standard deviation of the log-intensity factor.
        zero_shift_deg: Maximum absolute zero shift in degrees.

    Returns:
        A new :class:`PXRDPeaks`.
    """
    z = rng.standard_normal(len(peaks))
    shift = rng.uniform(-zero_shift_deg, zero_shift_deg) if zero_shift_deg > 0 else 0.0
    intensity = peaks.intensity * np.exp(intensity_jitter * z - intensity_jitter**2 / 2.0)
    if intensity.size and intensity.max() > 0:
        intensity = intensity / intensity.max()
    return replace(peaks, two_theta=peaks.two_theta + shift, intensity=intensity)


def shift_pattern(intensity: ArrayLike, two_theta: ArrayLike, delta_deg: ArrayLike) -> np.ndarray:
    """Move a pattern along a uniform 2θ grid: ``out(2θ) = in(2θ − δ)``.

    A positive δ moves peaks to higher angles. Linear interpolation; values beyond the ends
    repeat the end values.

    Args:
        intensity: Pattern(s), shape ``(n_points,)`` or ``(n, n_points)``.
        two_theta: The uniform grid, shape ``(n_points,)``.
        delta_deg: Shift in degrees, scalar or one per row.

    Returns:
        Shifted pattern(s), same shape as ``intensity``.
    """
    y = np.asarray(intensity, dtype=float)
    step = _uniform_step(np.asarray(two_theta, dtype=float))
    rows = np.atleast_2d(y)
    n, m = rows.shape
    delta = np.broadcast_to(np.asarray(delta_deg, dtype=float), (n,))
    f = np.arange(m)[None, :] - delta[:, None] / step
    f = np.clip(f, 0.0, m - 1.0)
    i0 = np.minimum(np.floor(f).astype(np.intp), m - 2) if m > 1 else np.zeros_like(f, np.intp)
    w = f - i0
    i1 = np.minimum(i0 + 1, m - 1)
    out = (1.0 - w) * np.take_along_axis(rows, i0, 1) + w * np.take_along_axis(rows, i1, 1)
    return out.reshape(y.shape)


def _chebyshev_basis(m: int, degree: int) -> np.ndarray:
    return np.polynomial.chebyshev.chebvander(np.linspace(-1.0, 1.0, m), degree)  # (m, deg+1)


def augment_pattern(
    pattern: PXRDPattern | ArrayLike,
    rng: np.random.Generator,
    *,
    noise_level: float | tuple[float, float] = NOISE_LEVEL,
    background: float = BACKGROUND,
    zero_shift_deg: float = ZERO_SHIFT_DEG,
    intensity_jitter: float = INTENSITY_JITTER,
    grid: ArrayLike | None = None,
    normalize: bool = True,
) -> PXRDPattern | np.ndarray:
    """Training-time augmentation of simulated patterns (SI Fig. S18), vectorised over a batch.

    Each row is first scaled to a maximum of 1 (so every amplitude below is a fraction of the
    strongest peak), then, in this order:

    1. zero shift: the pattern moves by δ ~ U(−``zero_shift_deg``, +``zero_shift_deg``);
    2. texture: multiplication by exp(``intensity_jitter`` · s(2θ)), s a random smooth curve
       (Chebyshev series of degree 4 with N(0, 1/5) coefficients, variance ≤ 1);
    3. background: A · shape(2θ), A ~ U(0, ``background``), shape a random mix of an
       exponential decay from the low-angle end (decay length 3–30 % of the range) and a
       random cubic, scaled to [0, 1];
    4. noise: additive N(0, σ²), σ = ``noise_level`` or σ ~ U(lo, hi) for a ``(lo, hi)`` pair;
    5. optional rescaling to a maximum of 1 (``normalize``). Negative values are kept.

    Every random number is always drawn (also for zero amplitudes), so with the same seed
    changing one amplitude leaves the other perturbations unchanged.

    Args:
        pattern: A :class:`PXRDPattern`, a 1-D intensity array or a 2-D batch
            ``(n, n_points)`` on a uniform grid.
        rng: Source of randomness (``numpy.random.default_rng(seed)``).
        noise_level: Noise standard deviation, or a ``(lo, hi)`` range drawn per row.
        background: Maximum background height.
        zero_shift_deg: Maximum absolute zero shift in degrees.
        intensity_jitter: Strength of the multiplicative texture modulation.
        grid: 2θ grid of array input; default :func:`two_theta_grid` (must match the length).
        normalize: Rescale each output row to a maximum of 1.

    Returns:
        Same kind as the input: a :class:`PXRDPattern` (metadata ``augmented=True``) or an
        array of the input's shape.

    Raises:
        ValueError: On a non-uniform grid, a length mismatch or negative amplitudes.
    """
    if isinstance(pattern, PXRDPattern):
        x, y = pattern.two_theta, np.asarray(pattern.intensity)
    else:
        y = np.asarray(pattern, dtype=float)
        x = two_theta_grid() if grid is None else np.asarray(grid, dtype=float)
    if y.ndim not in (1, 2) or y.shape[-1] != x.size:
        raise ValueError(
            f"intensity of shape {y.shape} does not match a 2θ grid of {x.size} points"
        )
    lo_noise, hi_noise = (
        (float(noise_level), float(noise_level))
        if np.isscalar(noise_level)
        else tuple(map(float, noise_level))  # type: ignore[arg-type]
    )
    if min(lo_noise, hi_noise, background, zero_shift_deg, intensity_jitter) < 0:
        raise ValueError("augmentation amplitudes must be non-negative")
    _uniform_step(x)  # raises on a non-uniform grid
    rows = np.atleast_2d(y).astype(float, copy=True)
    n, m = rows.shape

    # All random numbers, drawn in a fixed order.
    delta = rng.uniform(-1.0, 1.0, n) * zero_shift_deg
    tex_coef = rng.standard_normal((n, _JITTER_DEGREE + 1)) / np.sqrt(_JITTER_DEGREE + 1)
    bg_amp = rng.uniform(0.0, 1.0, n) * background
    bg_mix = rng.uniform(0.0, 1.0, n)
    bg_tau = rng.uniform(*_BACKGROUND_TAU, n)
    bg_coef = rng.standard_normal((n, _BACKGROUND_DEGREE + 1))
    sigma = lo_noise + (hi_noise - lo_noise) * rng.uniform(0.0, 1.0, n)
    noise = rng.standard_normal((n, m))

    scale = rows.max(axis=1, keepdims=True)
    rows /= np.where(scale > 0, scale, 1.0)
    if zero_shift_deg > 0:
        rows = shift_pattern(rows, x, delta)
    if intensity_jitter > 0:
        rows *= np.exp(intensity_jitter * (tex_coef @ _chebyshev_basis(m, _JITTER_DEGREE).T))
    if background > 0:
        t = np.linspace(0.0, 1.0, m)[None, :]
        poly = bg_coef @ _chebyshev_basis(m, _BACKGROUND_DEGREE).T
        poly -= poly.min(axis=1, keepdims=True)
        poly /= np.where((pmax := poly.max(axis=1, keepdims=True)) > 0, pmax, 1.0)
        shape = bg_mix[:, None] * np.exp(-t / bg_tau[:, None]) + (1 - bg_mix[:, None]) * poly
        shape /= shape.max(axis=1, keepdims=True)
        rows += bg_amp[:, None] * shape
    rows += sigma[:, None] * noise
    if normalize:
        top = rows.max(axis=1, keepdims=True)
        rows /= np.where(top > 0, top, 1.0)

    if isinstance(pattern, PXRDPattern):
        meta = {**pattern.metadata, "augmented": True}
        return replace(pattern, intensity=rows[0], metadata=meta)
    return rows.reshape(y.shape)


# --------------------------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------------------------


def _split(line: str) -> list[str]:
    if "," in line or ";" in line:
        return [tok.strip() for tok in re.split(r"[,;]", line)]
    return line.split()


def read_pattern(
    path: str | os.PathLike[str], wavelength: str | float | None = None
) -> PXRDPattern:
    """Read a measured pattern: two columns, 2θ in degrees and intensity.

    Accepted layout (``.xy``, ``.txt``, ``.dat``, ``.csv``, any extension): one point per line,
    columns separated by whitespace, commas or semicolons; lines starting with ``#`` are
    comments; non-numeric lines *before* the first data line are a header and skipped; extra
    columns (e.g. an uncertainty) are ignored. A comment ``# wavelength: CuKa`` (or a number in
    Å) sets the wavelength unless ``wavelength`` is given.

    Checks (each failure raises :class:`SpectrumFileError` naming the file): the file exists
    and is text; no text after the data starts; every data line has at least two values; no
    NaN or infinite values; 2θ strictly increasing and inside (0°, 180°); at least
    :data:`MIN_POINTS` (100) points. The coverage of the model grid is checked by
    :func:`to_grid`, which knows the target grid and wavelength.

    Args:
        path: The file.
        wavelength: Radiation of the measurement (pymatgen name or Å); overrides the file.

    Returns:
        :class:`PXRDPattern` with ``source`` = the path and the file's comments in
        ``metadata["comments"]``. ``wavelength`` is ``None`` when neither given nor in the file.
    """
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise SpectrumFileError(f"{where}: PXRD file not found")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SpectrumFileError(f"{where}: not a text file (cannot decode as UTF-8)") from None

    comments: list[str] = []
    rows: list[tuple[float, float]] = []
    line_numbers: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
            continue
        tokens = _split(line)
        try:
            values = [float(tok) for tok in tokens if tok != ""]
        except ValueError:
            if not rows:
                comments.append(line)  # header line
                continue
            raise SpectrumFileError(
                f"{where}: line {lineno}: non-numeric value in data line {line!r}"
            ) from None
        if len(values) < 2 or "" in tokens[:2]:
            raise SpectrumFileError(
                f"{where}: line {lineno}: expected two columns (2θ, intensity), "
                f"found {len(values)} value(s) in {line!r}"
            )
        rows.append((values[0], values[1]))
        line_numbers.append(lineno)

    if not rows:
        raise SpectrumFileError(f"{where}: no numeric data (expected two columns 2θ, intensity)")
    data = np.asarray(rows, dtype=float)
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise SpectrumFileError(f"{where}: line {line_numbers[i]}: NaN or infinite value")
    two_theta, intensity = data[:, 0], data[:, 1]
    steps = np.diff(two_theta)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0)) + 1
        kind = "repeated" if steps[i - 1] == 0 else "decreasing"
        raise SpectrumFileError(
            f"{where}: line {line_numbers[i]}: 2θ not strictly increasing ({kind}: "
            f"{two_theta[i - 1]:g} then {two_theta[i]:g})"
        )
    if two_theta[0] <= 0 or two_theta[-1] >= 180:
        raise SpectrumFileError(
            f"{where}: 2θ must lie inside (0°, 180°), found {two_theta[0]:g}–{two_theta[-1]:g}"
        )
    if two_theta.size < MIN_POINTS:
        raise SpectrumFileError(
            f"{where}: only {two_theta.size} data points, at least {MIN_POINTS} are required"
        )

    if wavelength is None:
        for comment in comments:
            match = _WAVELENGTH_RE.search(comment)
            if match:
                token = match.group(1)
                try:
                    wavelength_angstrom(token)
                except ConfigurationError as err:
                    raise SpectrumFileError(f"{where}: bad wavelength in header: {err}") from None
                wavelength = token if token in WAVELENGTHS else float(token)
                break
    else:
        wavelength_angstrom(wavelength)
    return PXRDPattern(
        two_theta, intensity, wavelength=wavelength, source=where, metadata={"comments": comments}
    )


def to_grid(
    pattern: PXRDPattern,
    grid: ArrayLike | None = None,
    *,
    source_wavelength: str | float | None = None,
    target_wavelength: str | float = WAVELENGTH,
    min_coverage: float = MIN_COVERAGE,
    fill_value: float = 0.0,
    normalize: bool = True,
) -> PXRDPattern:
    """Put a pattern onto the model's fixed grid, converting the wavelength if needed.

    The 2θ axis is converted at constant d (:func:`convert_two_theta`); points not observable
    at the target wavelength are dropped. The intensity is interpolated linearly onto ``grid``;
    grid points outside the converted range get ``fill_value``.

    Args:
        pattern: The pattern (e.g. from :func:`read_pattern`).
        grid: Target grid, default :func:`two_theta_grid` (10–80°, 0.02°).
        source_wavelength: Wavelength of ``pattern``; default ``pattern.wavelength``.
        target_wavelength: Wavelength of the grid, default Cu Kα.
        min_coverage: Minimum fraction of the grid's 2θ span the converted data must cover
            (default :data:`MIN_COVERAGE` = 0.5; the classifier is trained on full 10–80°
            patterns, and less than half of the range misses most diagnostic reflections).
        fill_value: Intensity outside the covered range.
        normalize: Scale to a maximum of 1.

    Returns:
        :class:`PXRDPattern` on ``grid`` at ``target_wavelength``; metadata adds
        ``source_wavelength`` and ``coverage``.

    Raises:
        ConfigurationError: If the source wavelength is unknown (neither given nor stored).
        SpectrumFileError: If the coverage is below ``min_coverage`` (message names the
            pattern's source file).
    """
    where = pattern.source or "<pattern>"
    src = source_wavelength if source_wavelength is not None else pattern.wavelength
    if src is None:
        raise ConfigurationError(
            f"{where}: the wavelength of the pattern is unknown; pass source_wavelength "
            "(e.g. 'CuKa' or a value in Å) or add '# wavelength: ...' to the file"
        )
    x = two_theta_grid() if grid is None else np.asarray(grid, dtype=float)
    converted = convert_two_theta(pattern.two_theta, src, target_wavelength)
    ok = np.isfinite(converted)
    tt, yy = converted[ok], pattern.intensity[ok]
    span = float(x[-1] - x[0])
    if tt.size >= 2:
        covered = max(0.0, min(float(tt[-1]), float(x[-1])) - max(float(tt[0]), float(x[0])))
    else:
        covered = 0.0
    coverage = covered / span if span > 0 else 0.0
    if coverage < min_coverage:
        got = f"{tt[0]:.2f}–{tt[-1]:.2f}°" if tt.size else "nothing"
        raise SpectrumFileError(
            f"{where}: the pattern covers {got} 2θ at {target_wavelength}, {coverage:.0%} of "
            f"the {x[0]:g}–{x[-1]:g}° grid; at least {min_coverage:.0%} is required"
        )
    y = np.interp(x, tt, yy, left=fill_value, right=fill_value)
    if normalize:
        top = y.max(initial=0.0)
        if top > 0:
            y = y / top
    meta = {**pattern.metadata, "source_wavelength": src, "coverage": coverage}
    return PXRDPattern(x, y, wavelength=target_wavelength, source=pattern.source, metadata=meta)
