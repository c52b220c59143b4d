"""Formulas: parsing with clear errors and charge balance.

A user's formula (``"Ca2MnAlO5"``) is parsed with pymatgen's ``Composition``; an unknown
element symbol raises :class:`~specfusion_lib.core.errors.ElementError` and a formula for which no
set of common oxidation states sums to zero raises
:class:`~specfusion_lib.core.errors.ChargeBalanceError`. Charge balance uses pymatgen's
``Composition.oxi_state_guesses`` (ICSD-frequency-ranked oxidation states), so the rules are
pymatgen's, not ours.
"""

from __future__ import annotations

import re

from pymatgen.core import Composition

from specfusion_lib.core.elements import normalize_symbol
from specfusion_lib.core.errors import ChargeBalanceError, ElementError

__all__ = ["charge_balanced_oxidation_states", "is_charge_balanced", "parse_formula"]

_SYMBOL = re.compile(r"[A-Z][a-z]?")


def parse_formula(formula: str) -> Composition:
    """Parse a chemical formula, naming any unknown element symbol.

    Raises:
        ElementError: An unknown element symbol, or a string that is not a formula.
    """
    text = str(formula).strip()
    if not text or not re.fullmatch(r"[A-Za-z0-9().\s]+", text):
        raise ElementError(f"{formula!r} is not a chemical formula")
    for symbol in _SYMBOL.findall(text):
        normalize_symbol(symbol)
    try:
        composition = Composition(text)
    except (ValueError, KeyError) as exc:
        raise ElementError(f"{formula!r} is not a chemical formula ({exc})") from exc
    if composition.num_atoms <= 0:
        raise ElementError(f"{formula!r} contains no atoms")
    return composition


def charge_balanced_oxidation_states(formula: str | Composition) -> dict[str, float]:
    """The most likely charge-balanced oxidation state of each element of a formula.

    Args:
        formula: Formula string or pymatgen Composition.

    Returns:
        element symbol → oxidation state (a mean when the element takes several values,
        e.g. Fe 8/3 in Fe3O4).

    Raises:
        ElementError: See :func:`parse_formula`.
        ChargeBalanceError: No combination of common oxidation states sums to zero.
    """
    composition = parse_formula(formula) if isinstance(formula, str) else formula
    try:
        guesses = composition.oxi_state_guesses(max_sites=-50)
    except ValueError as exc:  # pymatgen refuses non-integer amounts
        raise ChargeBalanceError(
            f"{composition.formula}: charge balance needs integer amounts ({exc})") from exc
    if not guesses:
        raise ChargeBalanceError(
            f"{composition.reduced_formula} cannot be charge-balanced with the common "
            "oxidation states of its elements")
    return {str(el): float(v) for el, v in guesses[0].items()}


def is_charge_balanced(formula: str | Composition) -> bool:
    """Whether :func:`charge_balanced_oxidation_states` finds a balanced assignment."""
    try:
        charge_balanced_oxidation_states(formula)
    except ChargeBalanceError:
        return False
    return True
