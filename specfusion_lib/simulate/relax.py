"""CHGNet relaxation and the physical checks of a relaxed structure.

Used by the demo pool (:mod:`specfusion_lib.data.demo_pool`, which caches every relaxation)
and by structure inference (:mod:`specfusion_lib.inference.candidates`, which relaxes the
substituted templates). The pretrained CHGNet weights ship in the ``chgnet`` package; nothing
is downloaded.

**Relaxation** (:func:`chgnet_relaxer`): CHGNet's ``StructOptimizer`` on the CPU, FIRE with
the Fréchet cell filter (positions and cell), ``fmax`` 0.1 eV/Å, at most 300 steps; a run is
*converged* when the optimiser stopped before the step limit.

**Physical checks** (:func:`assess_relaxation`). A relaxed structure is rejected when

* its volume changed by more than ``max_volume_change`` (30 %) from the unrelaxed structure,
  a sign that the template does not suit the chemistry (``volume_change``);
* two atoms are closer than ``min_distance`` (0.7 Å) or than ``min_distance_ratio`` (0.5)
  times the sum of their atomic radii (``min_distance``);
* its density is outside ``density_range`` (1–25 g/cm³) (``density``);
* CHGNet's energy is not finite or not negative per atom (``energy``).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

__all__ = ["RelaxOutcome", "RelaxSettings", "Relaxer", "assess_relaxation", "chgnet_relaxer"]


@dataclass(frozen=True)
class RelaxSettings:
    """Relaxation settings and physical-check thresholds (defaults: the demo pool's).

    Attributes:
        fmax: Force convergence criterion, eV/Å.
        max_steps: Maximum number of optimiser steps.
        relax_cell: Relax the cell as well as the positions.
        threads: Torch / BLAS CPU threads of the relaxation.
        max_volume_change: Maximum relative volume change during the relaxation.
        min_distance: Minimum interatomic distance after the relaxation, Å.
        min_distance_ratio: Minimum ratio of an interatomic distance to the sum of the two
            atomic radii.
        density_range: Allowed density after the relaxation, g/cm³.
    """

    fmax: float = 0.1
    max_steps: int = 300
    relax_cell: bool = True
    threads: int = 1
    max_volume_change: float = 0.30
    min_distance: float = 0.7
    min_distance_ratio: float = 0.5
    density_range: tuple[float, float] = (1.0, 25.0)


@dataclass(frozen=True)
class RelaxOutcome:
    """What a relaxer returns.

    Attributes:
        structure: Final structure.
        energy: Total energy in eV.
        magmoms: Magnetic moment per site in μB (None when the model gives none).
        n_steps: Optimiser steps taken.
        converged: Whether the optimiser stopped before the step limit.
        max_force: Largest atomic force of the final structure in eV/Å (NaN if unknown).
    """

    structure: Structure
    energy: float
    magmoms: list[float] | None
    n_steps: int
    converged: bool
    max_force: float = math.nan


Relaxer = Callable[[Structure], RelaxOutcome]


def chgnet_relaxer(settings: RelaxSettings | None = None) -> Relaxer:
    """A relaxer running CHGNet's ``StructOptimizer`` on the CPU.

    The pretrained model ships in the ``chgnet`` package. FIRE with the Fréchet cell filter,
    ``settings.fmax`` and ``settings.max_steps``. ``torch`` *and* the process's BLAS / OpenMP
    pools (numpy's and scipy's OpenBLAS, torch's libgomp; through ``threadpoolctl``) use
    ``settings.threads`` threads: with only torch limited, idle OpenBLAS threads spin and a
    relaxation next to a FEFF process on a 2-core machine ran about 6x slower (12 s instead
    of 1.9 s per relaxation, measured on the demo pool).
    The number of steps is the number of optimiser iterations recorded by CHGNet's
    trajectory observer; converged means fewer steps than the limit.
    """
    import torch
    from chgnet.model import CHGNet, StructOptimizer
    from threadpoolctl import threadpool_limits

    s = settings or RelaxSettings()
    torch.set_num_threads(max(1, s.threads))
    threadpool_limits(limits=max(1, s.threads))  # process-wide, for the relaxer's lifetime
    with contextlib.redirect_stdout(None):
        model = CHGNet.load(verbose=False)
        optimizer = StructOptimizer(model=model, use_device="cpu")

    def relax(structure: Structure) -> RelaxOutcome:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            result = optimizer.relax(structure, fmax=s.fmax, steps=s.max_steps,
                                     relax_cell=s.relax_cell, verbose=False)
        traj = result["trajectory"]
        final = result["final_structure"]
        n_steps = max(len(traj.energies) - 2, 0)
        forces = np.asarray(traj.forces[-1]) if traj.forces else None
        max_force = float(np.linalg.norm(forces, axis=1).max()) if forces is not None else math.nan
        magmoms = final.site_properties.get("magmom")
        return RelaxOutcome(final, float(traj.energies[-1]),
                            [round(float(m), 4) for m in magmoms] if magmoms else None,
                            n_steps, n_steps < s.max_steps, max_force)

    return relax


def _min_distance(structure: Structure) -> tuple[float, float]:
    """(minimum distance in Å, minimum ratio distance / sum of atomic radii)."""
    if len(structure) == 1:
        a, b, c = structure.lattice.abc
        return min(a, b, c), math.inf
    dm = structure.distance_matrix.copy()
    np.fill_diagonal(dm, np.inf)
    radii = np.array([float(site.specie.atomic_radius or 1.5) for site in structure])
    ratio = dm / (radii[:, None] + radii[None, :])
    # periodic images of the same atom: the shortest lattice vector
    self_image = min(structure.lattice.abc)
    return float(min(dm.min(), self_image)), float(ratio.min())


def assess_relaxation(initial: Structure, final: Structure, energy_per_atom: float,
                      settings: RelaxSettings | None = None
                      ) -> tuple[str | None, dict[str, float]]:
    """Check a relaxed structure for physical sense (the checks of the module docstring).

    Args:
        initial: The unrelaxed candidate.
        final: The relaxed structure.
        energy_per_atom: Final energy, eV/atom.
        settings: Thresholds.

    Returns:
        ``(reason, metrics)``: ``reason`` is None when the structure passes, otherwise a
        message starting with the failed check's name (``volume_change``, ``min_distance``,
        ``density``, ``energy``). ``metrics`` holds ``volume_change`` (relative),
        ``min_distance`` (Å), ``min_distance_ratio`` and ``density`` (g/cm³).
    """
    s = settings or RelaxSettings()
    dv = final.volume / initial.volume - 1.0
    dmin, ratio = _min_distance(final)
    dens = float(final.density)
    metrics = {"volume_change": round(dv, 5), "min_distance": round(dmin, 4),
               "min_distance_ratio": round(ratio, 4) if math.isfinite(ratio) else None,
               "density": round(dens, 4)}
    if not math.isfinite(energy_per_atom) or energy_per_atom >= 0:
        return f"energy: {energy_per_atom:.3f} eV/atom is not finite and negative", metrics
    if abs(dv) > s.max_volume_change:
        return (f"volume_change: {100 * dv:+.1f} % exceeds ±{100 * s.max_volume_change:.0f} %",
                metrics)
    if dmin < s.min_distance or ratio < s.min_distance_ratio:
        return (f"min_distance: {dmin:.2f} Å (ratio {ratio:.2f} to the atomic radii sum; "
                f"limits {s.min_distance} Å, {s.min_distance_ratio})", metrics)
    lo, hi = s.density_range
    if not lo <= dens <= hi:
        return f"density: {dens:.2f} g/cm3 outside [{lo}, {hi}]", metrics
    return None, metrics
