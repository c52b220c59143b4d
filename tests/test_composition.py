"""Formula parsing and charge balance (SPEC §8: unknown symbol, unbalanceable formula)."""

from __future__ import annotations

import pytest

from specfusion_lib.core.composition import (
    charge_balanced_oxidation_states,
    is_charge_balanced,
    parse_formula,
)
from specfusion_lib.core.errors import ChargeBalanceError, ElementError


def test_parse_formula() -> None:
    assert parse_formula("Ca2MnAlO5").reduced_formula == "Ca2MnAlO5"


@pytest.mark.parametrize("formula", ["Xx2O3", "Fe2Qq", "", "Fe-O", "fe2o3"])
def test_unknown_symbols_and_garbage(formula: str) -> None:
    with pytest.raises(ElementError):
        parse_formula(formula)


def test_charge_balance() -> None:
    states = charge_balanced_oxidation_states("Ca2MnAlO5")
    assert states == {"Ca": 2.0, "Mn": 3.0, "Al": 3.0, "O": -2.0}
    assert charge_balanced_oxidation_states("Fe3O4")["Fe"] == pytest.approx(8 / 3)
    assert is_charge_balanced("CaMnAlO4")


@pytest.mark.parametrize("formula", ["NaO5", "CaF7", "FeF9"])
def test_unbalanceable_formula_is_a_clear_error(formula: str) -> None:
    with pytest.raises(ChargeBalanceError, match="cannot be charge-balanced"):
        charge_balanced_oxidation_states(formula)
    assert not is_charge_balanced(formula)


def test_fractional_amounts_are_refused() -> None:
    with pytest.raises(ChargeBalanceError, match="integer amounts"):
        charge_balanced_oxidation_states("KCl3O0.5")
