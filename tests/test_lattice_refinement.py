"""Cell refinement of a candidate against the input pattern (inference/lattice_refinement.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.inference.candidates import r_pxrd
from specfusion_lib.inference.lattice_refinement import (
    LatticeFitter,
    metric_basis,
    refine_lattice,
    reflection_list,
    reflection_pattern,
)
from specfusion_lib.spectra.pxrd import PXRDPattern, simulate_pattern, two_theta_grid


def _rocksalt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def _rutile() -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                     [[0, 0, 0], [0.305, 0.305, 0]])


def _orthorhombic() -> Structure:
    return Structure.from_spacegroup("Pnma", Lattice.orthorhombic(5.4, 3.9, 7.1),
                                     ["Fe", "S"], [[0.0, 0.25, 0.2], [0.19, 0.25, 0.58]])


def _monoclinic() -> Structure:
    return Structure.from_spacegroup("P2_1/c", Lattice.monoclinic(5.1, 5.2, 5.3, 99.0),
                                     ["Zr", "O", "O"],
                                     [[0.276, 0.04, 0.208], [0.07, 0.332, 0.345],
                                      [0.45, 0.757, 0.479]])


def _triclinic() -> Structure:
    lattice = Lattice.from_parameters(5.0, 5.6, 6.1, 82.0, 95.0, 101.0)
    return Structure(lattice, ["Cu", "O", "O"], [[0.1, 0.2, 0.3], [0.6, 0.1, 0.8],
                                                  [0.3, 0.7, 0.45]])


@pytest.mark.parametrize(("structure", "k"), [
    (_rocksalt(), 1), (_rutile(), 2), (_orthorhombic(), 3), (_monoclinic(), 4),
    (_triclinic(), 6)])
def test_allowed_metric_changes_follow_the_crystal_system(structure: Structure, k: int) -> None:
    basis = metric_basis(structure)
    assert basis.shape == (k, 3, 3)
    # every direction is symmetric and keeps the primitive cell's symmetry
    assert np.allclose(basis, np.transpose(basis, (0, 2, 1)))
    primitive = metric_basis(structure.get_primitive_structure())
    assert len(primitive) == k


@pytest.mark.parametrize("structure", [_rocksalt(), _rutile(), _monoclinic(), _triclinic()])
def test_reflection_pattern_reproduces_the_simulated_pattern(structure: Structure) -> None:
    """Own structure factors and Lorentz-polarisation factor = pymatgen's XRDCalculator."""
    ours = reflection_pattern(reflection_list(structure))
    theirs = simulate_pattern(structure)
    assert r_pxrd(theirs, ours, smoothing_deg=0.0, max_scale=0.0) < 1e-3


def test_profile_of_the_unstrained_cell_reproduces_the_simulated_pattern() -> None:
    structure = _orthorhombic()
    pattern = simulate_pattern(structure)
    fitter = LatticeFitter(pattern, reflection_list(structure))
    assert fitter.r_factor(np.zeros(3), 0.5) < 0.1  # same peaks, Gaussian vs Voigt shape
    strained = fitter.r_factor(np.array([0.06, -0.04, 0.02]), 0.5)
    assert strained > 0.5


def test_refinement_recovers_an_anisotropic_strain() -> None:
    structure = _orthorhombic()
    target = structure.copy()
    target.lattice = Lattice.orthorhombic(5.4 * 1.045, 3.9 * 0.97, 7.1 * 1.01)
    reference = simulate_pattern(target)
    fit = refine_lattice(reference, structure)
    assert fit.r_pxrd_start > 0.8
    assert fit.r_pxrd < 0.05
    assert fit.r_pxrd == pytest.approx(r_pxrd(reference, fit.pattern))
    # the fit's axes are the target's up to the isotropic rescaling R_PXRD allows
    ratio = np.array(fit.structure.lattice.abc) / np.array(target.lattice.abc)
    assert np.ptp(ratio) < 0.01
    assert fit.n_parameters == 3
    assert np.allclose(fit.structure.frac_coords, structure.frac_coords)


def test_refinement_keeps_the_symmetry_of_the_candidate() -> None:
    """A cubic candidate cannot take a tetragonal distortion; a tetragonal one can."""
    cubic = _rocksalt()
    distorted = cubic.copy()
    distorted.lattice = Lattice.tetragonal(4.2, 4.2 * 1.06)
    reference = simulate_pattern(distorted)
    from_cubic = refine_lattice(reference, cubic)
    assert all(abs(s - from_cubic.strain[0]) < 1e-6 for s in from_cubic.strain)
    tetragonal = cubic.copy()
    tetragonal.lattice = Lattice.tetragonal(4.2, 4.2 * 1.01)
    conventional = Structure.from_spacegroup("I4/mmm", Lattice.tetragonal(4.2 / 2**0.5, 4.2 * 1.01),
                                             ["Mg", "O"], [[0, 0, 0], [0, 0, 0.5]])
    from_tetragonal = refine_lattice(reference, conventional)
    assert from_tetragonal.r_pxrd < 0.1 < from_cubic.r_pxrd


def test_a_right_candidate_beats_a_wrong_one_after_refinement() -> None:
    target = _rutile()
    target.lattice = Lattice.tetragonal(4.59 * 1.05, 2.96 * 0.96)
    reference = simulate_pattern(target)
    right = refine_lattice(reference, _rutile())
    wrong = refine_lattice(reference, _rocksalt())
    assert right.r_pxrd < 0.1
    assert wrong.r_pxrd > 0.8


def test_refinement_rejects_empty_patterns_and_bad_bounds() -> None:
    empty = PXRDPattern(two_theta_grid(), np.zeros(two_theta_grid().size))
    with pytest.raises(ConfigurationError, match="positive intensity"):
        refine_lattice(empty, _rocksalt())
    with pytest.raises(ConfigurationError, match="max_strain"):
        LatticeFitter(simulate_pattern(_rocksalt()), reflection_list(_rocksalt()),
                      max_strain=0.0)
