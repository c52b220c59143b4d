"""Reflection tables under strain, and the accuracy report with Wilson intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.crystal_system.patterns import render_sticks
from specfusion_lib.crystal_system.reflections import (
    StrainSettings,
    as_stick_patterns,
    concat_tables,
    reflection_tables,
    strain_parameters,
    strained_sticks,
)
from specfusion_lib.spectra import pxrd
from specfusion_lib.training.reports import (
    accuracy_table,
    headline,
    noise_curve,
    top_k_correct,
    wilson_interval,
)


def _structures() -> dict[str, Structure]:
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    rutile = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                       [[0, 0, 0], [0.305, 0.305, 0]])
    wurtzite = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                         [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])
    mono = Structure.from_spacegroup("P2_1/c", Lattice.monoclinic(5.1, 6.3, 7.2, 101.0),
                                     ["Cu", "O"], [[0, 0, 0], [0.21, 0.33, 0.12]])
    return {"MgO": rock_salt, "TiO2": rutile, "ZnO": wurtzite, "CuO2": mono}


def test_unstrained_tables_reproduce_the_simulator():
    structures = _structures()
    tables = reflection_tables(list(structures), list(structures.values()))
    assert tables.crystal_systems == ("cubic", "tetragonal", "hexagonal", "monoclinic")
    sticks = as_stick_patterns(tables)
    grid = pxrd.two_theta_grid()
    ours = render_sticks([sticks.peaks(i)[0] for i in range(4)],
                         [sticks.peaks(i)[1] for i in range(4)], grid)
    for i, structure in enumerate(structures.values()):
        ref = pxrd.simulate_pattern(structure, grid).intensity
        assert np.abs(ours[i] - ref).max() < 0.01


def test_strain_keeps_the_metric_of_the_crystal_system():
    rng = np.random.default_rng(0)
    par = np.array([4.0, 4.0, 6.0, 90.0, 90.0, 120.0])
    for _ in range(20):
        a, b, c, al, be, ga = strain_parameters(par, "hexagonal", rng, StrainSettings(0.05, 3))
        assert a == b and (al, be, ga) == (90.0, 90.0, 120.0) and c != 6.0
    cub = strain_parameters(np.array([5.0, 5, 5, 90, 90, 90]), "cubic", rng)
    assert cub[0] == cub[1] == cub[2] != 5.0
    mono = strain_parameters(np.array([5.0, 6, 7, 90, 101, 90]), "monoclinic", rng)
    assert mono[3] == 90 and mono[5] == 90 and mono[4] != 101
    with pytest.raises(ConfigurationError):
        StrainSettings(length=0.9)


def test_strained_cubic_peaks_keep_their_ratios_and_move():
    structures = _structures()
    tables = reflection_tables(["MgO"], [structures["MgO"]])
    base, _ = strained_sticks(tables, [0], None)
    moved, _ = strained_sticks(tables, [0], np.random.default_rng(3), StrainSettings(0.05, 0))
    q0 = np.sin(np.radians(base[0] / 2)) ** 2
    q1 = np.sin(np.radians(moved[0] / 2)) ** 2
    n = min(q0.size, q1.size, 6)
    assert not np.allclose(base[0][:n], moved[0][:n])
    np.testing.assert_allclose(q1[:n] / q1[0], q0[:n] / q0[0], rtol=1e-9)
    both = concat_tables(tables, reflection_tables(["TiO2"], [structures["TiO2"]]))
    assert both.material_ids == ("MgO", "TiO2") and len(both.subset([1])) == 1
    with pytest.raises(ConfigurationError):
        concat_tables(tables, tables)


def test_wilson_interval_hand_values_and_errors():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(np.isnan(wilson_interval(0, 0)))
    with pytest.raises(ConfigurationError):
        wilson_interval(11, 10)


def test_accuracy_table_counts_classes_groups_and_top2():
    prob = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    y = np.array([0, 2, 1, 2])
    assert top_k_correct(prob, y, 1).tolist() == [True, False, False, True]
    assert top_k_correct(prob, y, 2).tolist() == [True, True, True, True]
    table = accuracy_table(prob, y, ["a", "b", "c", "d"][:3], groups={"first": y != 1},
                           split="test")
    assert list(table.columns[:3]) == ["split", "group", "crystal_system"]
    row = table[(table.group == "all") & (table.crystal_system == "c")].iloc[0]
    assert (row.n, row.top1, row.top2) == (2, 0.5, 1.0)
    overall = headline(table)
    assert overall["top1"] == 0.5 and overall["min_class"] == "b"
    first = table[(table.group == "first") & (table.crystal_system == "b")].iloc[0]
    assert first.n == 0 and np.isnan(first.top1)
    balanced = table[(table.group == "all") & (table.crystal_system == "balanced")].iloc[0]
    assert balanced.top1 == pytest.approx((1.0 + 0.0 + 0.5) / 3)


def test_noise_curve_falls_with_noise():
    y = np.arange(50) % 2

    def render(level: float) -> np.ndarray:
        rng = np.random.default_rng(0)
        return (y[:, None] * 2.0 - 1.0) + rng.normal(0, 4 * level + 1e-9, (50, 1))

    def predict(x: np.ndarray) -> np.ndarray:
        p1 = 1 / (1 + np.exp(-5 * x[:, 0]))
        return np.stack([1 - p1, p1], axis=1)

    curve = noise_curve(predict, render, [0.0, 1.0], y, ["x", "y"], variant="v")
    overall = curve[curve.crystal_system == "overall"].set_index("noise_level")["top1"]
    assert overall[0.0] == 1.0 and overall[1.0] < 0.9
    assert isinstance(curve, pd.DataFrame) and (curve.variant == "v").all()


def test_lowering_distorts_to_the_target_metric_only():
    from specfusion_lib.crystal_system.reflections import lowered_parameters

    rng = np.random.default_rng(1)
    cubic = np.array([5.0, 5.0, 5.0, 90.0, 90.0, 90.0])
    mono = lowered_parameters(cubic, "monoclinic", rng)
    assert mono[3] == 90.0 and mono[5] == 90.0 and 1.5 <= abs(mono[4] - 90.0) <= 8.0
    tri = lowered_parameters(cubic, "triclinic", rng)
    assert np.all(np.abs(tri[3:] - 90.0) >= 1.5)
    with pytest.raises(ConfigurationError):
        lowered_parameters(np.array([3.0, 3.0, 5.0, 90.0, 90.0, 120.0]), "monoclinic", rng)
    with pytest.raises(ConfigurationError):
        lowered_parameters(cubic, "cubic", rng)
    structure = _structures()["MgO"]
    tables = reflection_tables(["MgO"], [structure], merge_as="triclinic")
    merged = reflection_tables(["MgO"], [structure])
    assert len(tables.rows(0)[0]) > len(merged.rows(0)[0])  # only Friedel pairs merged
    same, _ = strained_sticks(tables, [0], None)
    ref, _ = strained_sticks(merged, [0], None)
    np.testing.assert_allclose(np.unique(np.round(same[0], 6)), np.unique(np.round(ref[0], 6)))
    split, _ = strained_sticks(tables, [0], np.random.default_rng(2), lower_to=["triclinic"])
    assert np.unique(np.round(split[0], 3)).size > np.unique(np.round(ref[0], 3)).size


def test_sklearn_predictor_maps_named_and_indexed_classes_to_the_seven_columns():
    from sklearn.dummy import DummyClassifier

    from specfusion_lib.crystal_system.generalisation import sklearn_predictor

    x = np.zeros((4, 3))
    named = DummyClassifier(strategy="prior").fit(x, ["cubic", "cubic", "triclinic", "cubic"])
    prob = sklearn_predictor(named)(x[:1])
    assert prob.shape == (1, 7)
    assert prob[0, 6] == pytest.approx(0.75) and prob[0, 0] == pytest.approx(0.25)
    indexed = DummyClassifier(strategy="prior").fit(x, [2, 2, 3, 3])
    assert sklearn_predictor(indexed)(x[:1])[0, [2, 3]] == pytest.approx([0.5, 0.5])
