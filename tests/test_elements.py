"""Atomic descriptors (SI Fig. S5), element categories and symbol validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Element, Species

from specfusion_lib.core import elements as el
from specfusion_lib.core.errors import ElementError

ALL_SYMBOLS = [e.symbol for e in Element]


def test_iron_known_values():
    fe = el.element_descriptors("Fe")
    assert fe.Z == 26
    assert fe.electronegativity == pytest.approx(1.83)
    assert fe.atomic_radius == pytest.approx(1.40)
    assert fe.ie1 == pytest.approx(7.9025, abs=1e-3)
    assert fe.ie2 == pytest.approx(16.199, abs=1e-3)
    assert fe.ie3 == pytest.approx(30.651, abs=1e-3)
    assert fe.type == "transition_metal"
    assert fe.is_transition_metal
    assert fe.missing == ()


def test_oxygen_known_values():
    o = el.element_descriptors("O")
    assert (o.Z, o.electronegativity, o.type) == (8, pytest.approx(3.44), "non_metal")
    assert o.ie1 == pytest.approx(13.618, abs=1e-3)
    assert not o.is_transition_metal


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("Ti", "transition_metal"),
        ("Cd", "transition_metal"),
        ("W", "transition_metal"),
        ("La", "lanthanide_actinide"),
        ("Lu", "lanthanide_actinide"),
        ("U", "lanthanide_actinide"),
        ("Na", "other_metal"),
        ("Al", "other_metal"),
        ("Bi", "other_metal"),
        ("Si", "metalloid"),
        ("Te", "metalloid"),
        ("S", "non_metal"),
        ("Ar", "non_metal"),
        ("H", "non_metal"),
    ],
)
def test_element_type(symbol, expected):
    assert el.element_type(symbol) == expected


def test_transition_metal_set_is_paper_definition():
    assert len(el.TRANSITION_METALS) == 20
    for sym in ("Sc", "Fe", "Zn", "Y", "Mo", "Cd"):
        assert el.is_transition_metal(sym)
    # 5d metals, lanthanides and main-group metals are not TMs in the paper's sense
    for sym in ("Hf", "W", "Pt", "Hg", "La", "Ce", "Al", "Ca", "O"):
        assert not el.is_transition_metal(sym)
    assert set(el.TRANSITION_METALS_5D).isdisjoint(el.TRANSITION_METALS)
    assert el.TRANSITION_METALS < el.TYPE_TRANSITION_METALS


def test_noble_gases():
    assert {"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Og"} == el.NOBLE_GASES
    assert el.is_noble_gas("Xe") and not el.is_noble_gas("F")


def test_types_partition_the_periodic_table():
    counts = {t: 0 for t in el.ELEMENT_TYPES}
    for sym in ALL_SYMBOLS:
        counts[el.element_type(sym)] += 1
    assert sum(counts.values()) == 118
    assert counts["metalloid"] == 6
    assert counts["lanthanide_actinide"] == 30


@pytest.mark.parametrize("bad", ["Xx", "fe", "", "Fe2", "D"])
def test_unknown_symbol_raises(bad):
    with pytest.raises(ElementError, match=f"unknown element symbol {bad!r}"):
        el.element_descriptors(bad)


def test_lowercase_symbol_gets_hint():
    with pytest.raises(ElementError, match="did you mean 'Fe'"):
        el.is_transition_metal("fe")


def test_non_string_raises():
    with pytest.raises(ElementError):
        el.element_descriptors(26)  # type: ignore[arg-type]


def test_accepts_pymatgen_objects():
    assert el.element_descriptors(Element("Co")).Z == 27
    assert el.element_descriptors(Species("Co", 3)).symbol == "Co"


def test_missing_values_are_explicit():
    h = el.element_descriptors("H")
    assert h.missing == ("ie2", "ie3")
    assert math.isnan(h.ie2) and math.isnan(h.ie3)
    he = el.element_descriptors("He")
    assert set(he.missing) == {"electronegativity", "atomic_radius", "ie3"}


def test_descriptor_matrix_shapes_and_onehot():
    syms = ["Fe", "O", "La", "Si", "Na"]
    m = el.descriptor_matrix(syms)
    assert m.shape == (5, 11)
    assert el.descriptor_columns()[:6] == el.NUMERIC_DESCRIPTOR_NAMES
    onehot = m[:, 6:]
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)
    np.testing.assert_array_equal(onehot.argmax(axis=1), [0, 4, 1, 3, 2])
    mi = el.descriptor_matrix(syms, type_encoding="integer")
    assert mi.shape == (5, 7)
    assert el.descriptor_columns("integer") == el.DESCRIPTOR_NAMES
    np.testing.assert_array_equal(mi[:, 6], [0, 4, 1, 3, 2])
    np.testing.assert_array_equal(mi[:, :6], m[:, :6])


def test_descriptor_matrix_imputation_is_documented_and_masked():
    m, mask = el.descriptor_matrix(["Fe", "H"], return_mask=True)
    assert not mask[0].any()
    cols = el.descriptor_columns()
    assert mask[1].tolist() == [c in ("ie2", "ie3") for c in cols]
    med = el.reference_medians()
    assert m[1, cols.index("ie2")] == pytest.approx(med["ie2"])
    assert m[1, cols.index("ie3")] == pytest.approx(med["ie3"])
    assert np.isfinite(m).all()

    nan = el.descriptor_matrix(["H"], fill="nan")
    assert np.isnan(nan[0, cols.index("ie2")])
    zero = el.descriptor_matrix(["H"], fill="zero")
    assert zero[0, cols.index("ie3")] == 0.0


def test_descriptor_matrix_bad_options_and_empty():
    with pytest.raises(ValueError, match="fill"):
        el.descriptor_matrix(["Fe"], fill="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="type_encoding"):
        el.descriptor_matrix(["Fe"], type_encoding="label")  # type: ignore[arg-type]
    assert el.descriptor_matrix([]).shape == (0, 11)
    with pytest.raises(ElementError, match="'Qq'"):
        el.descriptor_matrix(["Fe", "Qq"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(ALL_SYMBOLS), min_size=1, max_size=6))
def test_matrix_rows_match_single_descriptors(symbols):
    m, mask = el.descriptor_matrix(symbols, fill="nan", return_mask=True)
    for row, sym in zip(m, symbols, strict=True):
        d = el.element_descriptors(sym)
        np.testing.assert_array_equal(row[:6], d.numeric())
        assert row[6 + d.type_code] == 1.0
    np.testing.assert_array_equal(mask, np.isnan(m))
