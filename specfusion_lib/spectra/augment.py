"""Domain randomisation: simulated XANES made to vary the way measured spectra vary.

Measured spectra differ from FEFF10 spectra of the same compound in ways that have nothing
to do with the compound: the energy calibration (a few eV between beamlines), the resolution
(instrumental Gaussian on top of the core-hole width), counting noise, a sloping background,
the step of the energy grid and how far the scan reaches below and above the edge
(``experiment.csv`` starts most scans only ~5 eV below the edge, so the edge-step
normalisation sees almost no pre-edge line). A model trained on clean FEFF spectra has never
seen any of that. :func:`randomise_spectrum` draws one such variation of a raw μ(E):

1. **broadening**: Gaussian, FWHM uniform in ``fwhm_ev`` (:func:`~specfusion_lib.spectra.
   xanes.broaden`);
2. **scan range**: the spectrum is cut to ``E0 - pre`` … ``E0 + post`` with ``pre`` and
   ``post`` uniform in ``pre_edge_ev`` / ``post_edge_ev`` (E0 of the clean spectrum,
   :func:`~specfusion_lib.spectra.xanes.find_e0`);
3. **grid**: linear resampling on a uniform grid, step uniform in ``step_ev``;
4. **background**: a line ``slope · (E − E0) · J`` with ``J`` the spectrum's range of μ and
   ``slope`` uniform in ``±slope_per_ev``;
5. **noise**: Gaussian, σ uniform in ``noise`` times ``J``.

:func:`randomised_e0` adds the calibration error: E0 as found plus a shift uniform in
``±e0_jitter_ev``, used by the preprocessing to place the model window. Every draw comes from
the ``numpy.random.Generator`` passed in, so a seed fixes the whole augmented set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specfusion_lib.core.errors import ConfigurationError, SpectrumError
from specfusion_lib.spectra.xanes import XANESSpectrum, broaden, find_e0

__all__ = ["DomainRandomisation", "randomise_spectrum", "randomised_e0"]


def _check_range(name: str, value: tuple[float, float], low: float = 0.0) -> None:
    if len(value) != 2 or not value[0] <= value[1] or value[0] < low:
        raise ConfigurationError(f"DomainRandomisation.{name} must be (min, max) with "
                                 f"{low} <= min <= max, got {value}")


@dataclass(frozen=True)
class DomainRandomisation:
    """Ranges of the random variations (see the module docstring).

    Attributes:
        fwhm_ev: Extra Gaussian broadening FWHM range (eV).
        pre_edge_ev: How far below E0 the scan starts (eV).
        post_edge_ev: How far above E0 the scan ends (eV); at least 40 so the model window
            (E0 + 46 eV) stays mostly covered.
        step_ev: Grid step range (eV).
        slope_per_ev: Largest background slope, in units of μ's range per eV.
        noise: Noise σ range, in units of μ's range.
        e0_jitter_ev: Largest calibration shift of E0 (eV).
        copies: Randomised copies per training spectrum (besides the clean one).
    """

    fwhm_ev: tuple[float, float] = (0.0, 3.0)
    pre_edge_ev: tuple[float, float] = (4.0, 30.0)
    post_edge_ev: tuple[float, float] = (50.0, 90.0)
    step_ev: tuple[float, float] = (0.2, 0.6)
    slope_per_ev: float = 0.002
    noise: tuple[float, float] = (0.0, 0.01)
    e0_jitter_ev: float = 1.5
    copies: int = 2

    def __post_init__(self) -> None:
        _check_range("fwhm_ev", self.fwhm_ev)
        _check_range("pre_edge_ev", self.pre_edge_ev, low=1.0)
        _check_range("post_edge_ev", self.post_edge_ev, low=40.0)
        _check_range("step_ev", self.step_ev, low=0.01)
        _check_range("noise", self.noise)
        if self.slope_per_ev < 0 or self.e0_jitter_ev < 0:
            raise ConfigurationError("slope_per_ev and e0_jitter_ev must be >= 0")
        if self.copies < 1:
            raise ConfigurationError(f"copies must be >= 1, got {self.copies}")


def randomise_spectrum(spectrum: XANESSpectrum, rng: np.random.Generator,
                       settings: DomainRandomisation | None = None) -> XANESSpectrum:
    """One random measured-like variation of a raw spectrum.

    Args:
        spectrum: Raw μ(E) (simulated), absolute energies.
        rng: Random generator (the only source of randomness).
        settings: The ranges (default :class:`DomainRandomisation`).

    Returns:
        A new spectrum with the same element, edge and source (suffixed ``[randomised]``).

    Raises:
        SpectrumError: The clean spectrum has no edge, or less than 10 points survive the cut.
    """
    settings = settings or DomainRandomisation()
    e0 = find_e0(spectrum)
    fwhm = rng.uniform(*settings.fwhm_ev)
    work = broaden(spectrum, fwhm) if fwhm > 0 else spectrum
    lo = max(e0 - rng.uniform(*settings.pre_edge_ev), float(work.energy[0]))
    hi = min(e0 + rng.uniform(*settings.post_edge_ev), float(work.energy[-1]))
    step = rng.uniform(*settings.step_ev)
    grid = np.arange(lo, hi + 1e-9, step)
    if grid.size < 10:
        raise SpectrumError(f"{spectrum.source or 'spectrum'}: fewer than 10 points left "
                            "after the random scan range")
    mu = np.interp(grid, work.energy, work.mu)
    scale = float(np.ptp(mu)) or 1.0
    mu = mu + rng.uniform(-settings.slope_per_ev, settings.slope_per_ev) * (grid - e0) * scale
    sigma = rng.uniform(*settings.noise) * scale
    if sigma > 0:
        mu = mu + rng.normal(0.0, sigma, size=mu.shape)
    return XANESSpectrum(grid, mu, element=spectrum.element, edge=spectrum.edge,
                         source=f"{spectrum.source or 'spectrum'} [randomised]")


def randomised_e0(spectrum: XANESSpectrum, rng: np.random.Generator,
                  settings: DomainRandomisation | None = None) -> float:
    """E0 of ``spectrum`` plus a calibration shift uniform in ``±e0_jitter_ev``."""
    settings = settings or DomainRandomisation()
    return find_e0(spectrum) + rng.uniform(-settings.e0_jitter_ev, settings.e0_jitter_ev)
