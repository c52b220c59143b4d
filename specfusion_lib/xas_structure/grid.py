"""The absolute energy grid of the XANES forward and inverse models.

Every structure → spectrum model of the package (XAStruct per element, CGXAS universal)
predicts the *edge-normalised* μ(E) at :data:`N_GRID_POINTS` equally spaced energies of a
fixed window per absorbing element, given relative to the element's tabulated K-edge energy
(:func:`~specfusion_lib.spectra.xanes.tabulated_edge_energy`, Elam et al. 2002). The window is
absolute, not relative to each spectrum's own E0, so the chemical shift of the edge stays in
the data and a predicted edge position -- and its error in eV -- means something (CGXAS fixes
one energy range per element the same way; 100 points as there).

The window, per element (:func:`grid_window`):

* 3d metals Sc–Zn: −8 to +72 eV around the tabulated edge, step 80/99 ≈ 0.81 eV. FEFF10's
  absolute energies for these elements begin 11–19 eV below the tabulated edge (demo
  snapshot, fast preset), and measured spectra are calibrated to the tabulated edge, so
  both cover the window.
* 4d metals Y–Cd: the same 80 eV span, starting where FEFF10's simulated grid begins for every
  demo spectrum of that element (:data:`WINDOW_START_EV`): FEFF10 places the 4d K edges 15–30
  eV above the tabulated energy (median E0 offset on the demo: Zr 17, Mo 20, Ag 28 eV), so a
  window starting below the edge would be mostly extrapolated. This is FEFF's absolute-energy
  error, which the calibration to measured spectra (CGXAS issue) is there to learn.
* Any other element: −8 to +72 eV (a fallback; the models are trained on TM K edges).

Normalisation: :func:`~specfusion_lib.spectra.xanes.normalize_edge_step` (Athena / larch
convention) on the whole spectrum, then linear interpolation onto the grid. Grid points
outside the data take the nearest normalised value; a spectrum that covers less than
:data:`MIN_GRID_COVERAGE` of the window is refused.

The edge energy of a gridded spectrum (:func:`edge_energy`) is the first upward crossing of
half the edge step that stays above it for 10 eV, the definition of
:mod:`specfusion_lib.measured.chemical_shift` applied to the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specfusion_lib.core.errors import SpectrumError
from specfusion_lib.measured.chemical_shift import HALF_STEP, STAY_ABOVE_EV
from specfusion_lib.spectra.xanes import (
    XANESSpectrum,
    canonical_element,
    normalize_edge_step,
    sustained_crossing,
    tabulated_edge_energy,
)

__all__ = [
    "MIN_GRID_COVERAGE",
    "N_GRID_POINTS",
    "WINDOW_SPAN_EV",
    "WINDOW_START_EV",
    "AbsoluteGrid",
    "edge_energy",
    "edge_energies",
    "grid_window",
    "to_grid_partial",
    "to_grid",
]

#: Points of every element's grid (CGXAS: 100).
N_GRID_POINTS = 100
#: Width of every element's window (eV).
WINDOW_SPAN_EV = 80.0
#: Default start of the window relative to the tabulated K edge (eV).
DEFAULT_START_EV = -8.0
#: Window start (eV above the tabulated K edge) where FEFF10's absolute energies begin later.
WINDOW_START_EV: dict[str, float] = {
    "Y": -3.0, "Zr": -3.0, "Nb": -2.0, "Mo": 1.0, "Ru": 4.0, "Rh": 4.0, "Pd": 7.0,
    "Ag": 9.0, "Cd": 13.0,
}
#: Least fraction of the window the data must cover.
MIN_GRID_COVERAGE = 0.9
#: Least fraction of the window a measured spectrum must cover (:func:`to_grid_partial`).
MIN_PARTIAL_COVERAGE = 0.6


@dataclass(frozen=True)
class AbsoluteGrid:
    """The grid of one absorbing element.

    Attributes:
        element: Element symbol.
        edge_energy: Tabulated K-edge energy (eV).
        start_ev: Window start relative to ``edge_energy`` (eV).
        energies: Absolute energies (eV), shape ``(N_GRID_POINTS,)``.
    """

    element: str
    edge_energy: float
    start_ev: float
    energies: np.ndarray

    @property
    def step(self) -> float:
        """Grid step in eV."""
        return float(self.energies[1] - self.energies[0])

    @property
    def relative(self) -> np.ndarray:
        """Energies relative to the tabulated edge (eV)."""
        return self.energies - self.edge_energy


def grid_window(element: str) -> AbsoluteGrid:
    """The absolute grid of ``element`` (see the module docstring).

    Raises:
        ElementError: Unknown element symbol.
        SpectrumError: The element has no tabulated K edge.
    """
    symbol = canonical_element(element)
    e_k = tabulated_edge_energy(symbol, "K")
    start = WINDOW_START_EV.get(symbol, DEFAULT_START_EV)
    energies = e_k + start + np.linspace(0.0, WINDOW_SPAN_EV, N_GRID_POINTS)
    return AbsoluteGrid(symbol, e_k, start, energies)


def _normalised_on_grid(energy: np.ndarray, mu: np.ndarray, element: str,
                        source: str | None, min_coverage: float
                        ) -> tuple[AbsoluteGrid, np.ndarray, np.ndarray]:
    """Normalise (Athena/larch convention), check the coverage of the element's window and
    interpolate: ``(grid, μ on the grid, covered mask)``."""
    grid = grid_window(element)
    spectrum = XANESSpectrum(energy=np.asarray(energy, float), mu=np.asarray(mu, float),
                             element=grid.element, edge="K", source=source)
    norm = normalize_edge_step(spectrum)
    x = np.asarray(norm.energy, float)
    covered = (grid.energies >= x[0]) & (grid.energies <= x[-1])
    if covered.mean() < min_coverage:
        raise SpectrumError(
            f"{source or 'spectrum'}: the data ({x[0]:.1f}-{x[-1]:.1f} eV) cover "
            f"{covered.mean():.0%} of the {grid.element} K-edge grid "
            f"({grid.energies[0]:.1f}-{grid.energies[-1]:.1f} eV); at least "
            f"{min_coverage:.0%} is needed")
    return grid, np.interp(grid.energies, x, np.asarray(norm.mu_norm, float)), covered


def to_grid(energy: np.ndarray, mu: np.ndarray, element: str, *, source: str | None = None
            ) -> np.ndarray:
    """Edge-normalised μ of a spectrum on the element's absolute grid.

    Args:
        energy: Absolute energies (eV), strictly increasing, shape ``(n,)``.
        mu: μ(E), shape ``(n,)``.
        element: Absorbing element.
        source: Where the spectrum came from, for error messages.

    Returns:
        Normalised μ, shape ``(N_GRID_POINTS,)``.

    Raises:
        SpectrumError: The spectrum cannot be normalised, or covers less than
            :data:`MIN_GRID_COVERAGE` of the window.
    """
    return _normalised_on_grid(energy, mu, element, source, MIN_GRID_COVERAGE)[1]


def to_grid_partial(energy: np.ndarray, mu: np.ndarray, element: str, *,
                    source: str | None = None,
                    min_coverage: float = MIN_PARTIAL_COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`to_grid`, for spectra that cover only part of the window (measured XANES
    cut ~5 eV below and ~55 eV above the edge, as those of ``experiment.csv``).

    Returns:
        ``(mu, covered)``: normalised μ on the grid (points outside the data take the nearest
        value, which keeps the edge search meaningful) and the boolean mask of grid points
        inside the data (metrics and losses use only these), both shape ``(N_GRID_POINTS,)``.

    Raises:
        SpectrumError: The spectrum cannot be normalised, covers less than ``min_coverage``
            of the window, or its edge (half-step crossing) is not inside the covered part.
    """
    grid, gridded, covered = _normalised_on_grid(energy, mu, element, source, min_coverage)
    edge = edge_energy(gridded, grid.energies)
    inside = grid.energies[covered]
    if not np.isfinite(edge) or edge < inside[0] or edge > inside[-1]:
        raise SpectrumError(f"{source or 'spectrum'}: no edge crossing inside the part of the "
                            f"{grid.element} K-edge grid the data cover "
                            f"({inside[0]:.1f}-{inside[-1]:.1f} eV)")
    return gridded, covered


def edge_energy(mu: np.ndarray, energies: np.ndarray) -> float:
    """Edge position (eV) of a normalised spectrum on a grid: the first upward crossing of
    :data:`HALF_STEP` after which μ stays above it for :data:`STAY_ABOVE_EV` (or to the end
    of the grid); ``nan`` when there is none.

    Args:
        mu: Normalised μ, shape ``(n,)``.
        energies: The grid (eV), shape ``(n,)``.
    """
    found = sustained_crossing(energies, mu, HALF_STEP, STAY_ABOVE_EV, need_full_stay=False)
    return float("nan") if found is None else found


def edge_energies(mu: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """:func:`edge_energy` of every row of ``mu`` (shape ``(m, n)``), shape ``(m,)``."""
    return np.array([edge_energy(row, energies) for row in np.atleast_2d(mu)])
