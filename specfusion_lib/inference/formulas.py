"""Charge-balanced formulas from oxidation states (SI §S2.1).

Given the elements of an unknown compound and their oxidation states (the transition metals'
from the XANES models, the other elements' common valences), :func:`enumerate_formulas` lists
every integer composition that is electrically neutral.

Method
------
For elements :math:`e_1 … e_k` with oxidation states :math:`q_1 … q_k` the counts
:math:`n_i \\in \\{1, …, N\\}` (``max_count`` :math:`N`, default 15 as in SI §S2.1) must satisfy
the bounded integer linear equation

.. math:: \\sum_i q_i n_i = 0 .

It is solved by a vectorised, pruned expansion rather than one nested loop per element: the
partial solutions for :math:`e_1 … e_j` are rows of an integer array; adding :math:`e_{j+1}`
broadcasts every row against the :math:`N` possible counts, and rows whose partial charge can
no longer be cancelled by the remaining elements (it lies outside the interval of charges the
remaining elements can contribute with counts in :math:`[1, N]`) are dropped at once. The work
is one array operation per element, and the pruning keeps the arrays small (a few hundred
thousand rows at most for five elements).

* Integer multiples are removed: only rows whose counts have greatest common divisor 1 are
  kept (``np.gcd.reduce``), so Ca2Mn2Al2O8 is not listed next to CaMnAlO4.
* Every element must occur (count ≥ 1): the elements are those the spectra and the user
  name.
* Several oxidation states per element are allowed: each combination (one state per element)
  is solved and a formula balanced by several combinations is listed once, with all of them.
  An element takes a single oxidation state within one formula (no mixed valence: Fe3O4 needs
  Fe²⁺ and Fe³⁺ together and is not produced from one predicted state).

Valences of elements without a prediction (:func:`element_valences`): pymatgen's
``Element.common_oxidation_states`` (zero excluded) filtered by a sign rule that encodes the
chemical intuition of SI §S2.1 (Ca²⁺, Al³⁺, O²⁻): metals (transition metals, lanthanides and
actinides, other metals) take only positive states; the most electronegative element of the
compound (Pauling χ) takes only negative states; the remaining non-metals and metalloids take
all their common states (so P is tried as P⁵⁺ in a phosphate and as P³⁻ in a phosphide).
A transition metal without a predicted state falls back to its positive common states.

Order of the result: fewest atoms in the formula first (the simplest compositions), then by
formula string, so the table is deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymatgen.core import Element
from pymatgen.core.composition import reduce_formula

from specfusion_lib.core.elements import element_type, normalize_symbol
from specfusion_lib.core.errors import ChargeBalanceError, ConfigurationError

__all__ = [
    "MAX_COUNT",
    "MAX_VALENCE_COMBINATIONS",
    "FormulaEnumeration",
    "element_valences",
    "enumerate_formulas",
    "format_valences",
    "solve_charge_balance",
]

#: Largest count of an element in a formula (SI §S2.1: "each element count ≤ 15").
MAX_COUNT: int = 15
#: Most valence combinations (one state per element) solved for one search.
MAX_VALENCE_COMBINATIONS: int = 512

_METAL_TYPES = frozenset({"transition_metal", "lanthanide_actinide", "other_metal"})


def _sign(x: int) -> str:
    return f"+{x}" if x > 0 else str(x)


def format_valences(valences: Mapping[str, int]) -> str:
    """``{"Ca": 2, "O": -2}`` → ``"Ca+2 O-2"``."""
    return " ".join(f"{el}{_sign(int(q))}" for el, q in valences.items())


def element_valences(
    elements: Sequence[str],
    oxidation_states: Mapping[str, int | Iterable[int]] | None = None,
) -> dict[str, tuple[int, ...]]:
    """The oxidation states tried for each element (see the module docstring).

    Args:
        elements: Every element of the compound.
        oxidation_states: Element → state or states (predicted for transition metals, or
            given by the user for any element); these override the common-state rule.

    Returns:
        Element → tuple of non-zero integer states, in the order of ``elements``.

    Raises:
        ElementError: An unknown element symbol.
        ConfigurationError: An element given twice, a state for an element that is not in
            ``elements``, or a non-integer or zero state.
        ChargeBalanceError: An element with no usable state under the sign rule.
    """
    symbols = [normalize_symbol(e) for e in elements]
    if len(set(symbols)) != len(symbols):
        raise ConfigurationError(f"elements must be given once each, got {' '.join(symbols)}")
    if not symbols:
        raise ConfigurationError("no elements given")
    given: dict[str, tuple[int, ...]] = {}
    for el, states in (oxidation_states or {}).items():
        sym = normalize_symbol(el)
        if sym not in symbols:
            raise ConfigurationError(
                f"an oxidation state was given for {sym}, which is not among the elements "
                f"{' '.join(symbols)}")
        values = [states] if isinstance(states, int | float | np.integer) else list(states)
        clean = []
        for v in values:
            if not float(v).is_integer() or int(v) == 0:
                raise ConfigurationError(
                    f"oxidation state {v!r} of {sym} must be a non-zero integer")
            clean.append(int(v))
        if not clean:
            raise ConfigurationError(f"empty list of oxidation states for {sym}")
        given[sym] = tuple(dict.fromkeys(clean))
    anion = max(symbols, key=lambda s: (Element(s).X if not math.isnan(Element(s).X) else 0.0))
    out: dict[str, tuple[int, ...]] = {}
    for sym in symbols:
        if sym in given:
            out[sym] = given[sym]
            continue
        common = [int(q) for q in Element(sym).common_oxidation_states if int(q) != 0]
        if element_type(sym) in _METAL_TYPES:
            states = [q for q in common if q > 0]
        elif sym == anion and len(symbols) > 1:
            states = [q for q in common if q < 0]
        else:
            states = common
        if not states:
            raise ChargeBalanceError(
                f"{sym} has no usable common oxidation state in {' '.join(symbols)} "
                f"(common states {tuple(Element(sym).common_oxidation_states)}); give its "
                "state explicitly")
        out[sym] = tuple(states)
    return out


def solve_charge_balance(charges: Sequence[int], max_count: int = MAX_COUNT) -> np.ndarray:
    """All count vectors n (1 ≤ nᵢ ≤ ``max_count``, gcd 1) with Σ qᵢ nᵢ = 0.

    Method: the pruned, vectorised expansion of the module docstring.

    Args:
        charges: One integer charge per element, shape ``(k,)``.
        max_count: Largest count per element.

    Returns:
        Integer array of shape ``(m, k)`` (``m`` may be 0), rows sorted lexicographically.
    """
    q = np.asarray(charges, dtype=np.int64)
    if q.ndim != 1 or q.size == 0:
        raise ConfigurationError("charges must be a non-empty 1-D sequence")
    if max_count < 1:
        raise ConfigurationError(f"max_count must be ≥ 1, got {max_count}")
    counts = np.arange(1, max_count + 1, dtype=np.int64)
    lo_each = np.minimum(q, q * max_count)
    hi_each = np.maximum(q, q * max_count)
    # Charge interval the elements after position j can still contribute.
    lo_rest = np.concatenate([np.cumsum(lo_each[::-1])[::-1][1:], [0]])
    hi_rest = np.concatenate([np.cumsum(hi_each[::-1])[::-1][1:], [0]])
    rows = np.zeros((1, 0), dtype=np.int64)
    charge = np.zeros(1, dtype=np.int64)
    for j in range(q.size):
        n_rows = rows.shape[0]
        rows = np.hstack([np.repeat(rows, max_count, axis=0), np.tile(counts, n_rows)[:, None]])
        charge = np.repeat(charge, max_count) + q[j] * np.tile(counts, n_rows)
        keep = (-charge >= lo_rest[j]) & (-charge <= hi_rest[j])
        rows, charge = rows[keep], charge[keep]
    rows = rows[charge == 0]
    if rows.size:
        rows = rows[np.gcd.reduce(rows, axis=1) == 1]
    return rows


@dataclass(frozen=True)
class FormulaEnumeration:
    """The charge-balanced formulas of a set of elements.

    Attributes:
        elements: The elements, in the order given.
        valences: Element → oxidation states tried.
        max_count: Largest count per element.
        combinations: Every combination of states tried (element → state), indexed by the
            ``assignment_ids`` of the table.
        table: One row per formula: ``formula`` (pymatgen's reduced formula),
            ``anonymous_formula`` (pymatgen's convention, e.g. ``ABC2D5``), ``n_atoms``, one
            column per element with its count, ``oxidation_states`` (every balancing
            assignment, ``"Ca+2 Mn+3 Al+3 O-2"``, joined by ``"; "``) and
            ``assignment_ids`` (tuple of indices into ``combinations``).
    """

    elements: tuple[str, ...]
    valences: Mapping[str, tuple[int, ...]]
    max_count: int
    combinations: tuple[Mapping[str, int], ...]
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @property
    def formulas(self) -> list[str]:
        """The reduced formulas, in table order."""
        return self.table["formula"].tolist()

    def assignments(self, formula: str) -> list[Mapping[str, int]]:
        """The oxidation-state assignments that balance ``formula`` (a formula of the table).

        Raises:
            ConfigurationError: ``formula`` is not in the table.
        """
        rows = self.table.loc[self.table["formula"] == formula, "assignment_ids"]
        if rows.empty:
            raise ConfigurationError(f"{formula} is not among the enumerated formulas")
        return [self.combinations[i] for i in rows.iloc[0]]


def _anonymous(sorted_counts: tuple[int, ...]) -> str:
    """pymatgen's anonymized formula of counts sorted ascending (gcd 1): (1, 1, 2) → AB C2."""
    return "".join(f"{chr(65 + i)}{n if n != 1 else ''}" for i, n in enumerate(sorted_counts))


def enumerate_formulas(
    elements: Sequence[str],
    oxidation_states: Mapping[str, int | Iterable[int]] | None = None,
    *,
    max_count: int = MAX_COUNT,
) -> FormulaEnumeration:
    """Every charge-balanced formula of the elements (SI §S2.1).

    Args:
        elements: Every element of the compound, e.g. ``["Ca", "Mn", "Al", "O"]``.
        oxidation_states: Element → predicted (or known) state or states, e.g.
            ``{"Mn": 3}``; other elements use :func:`element_valences`.
        max_count: Largest count of an element (default 15).

    Returns:
        A :class:`FormulaEnumeration` (at least one formula).

    Raises:
        ElementError: An unknown element symbol.
        ConfigurationError: Invalid states or too many valence combinations.
        ChargeBalanceError: No composition balances; the message names the elements and the
            states tried.
    """
    valences = element_valences(elements, oxidation_states)
    symbols = tuple(valences)
    combos = list(itertools.product(*valences.values()))
    if len(combos) > MAX_VALENCE_COMBINATIONS:
        raise ConfigurationError(
            f"{len(combos)} combinations of oxidation states for {' '.join(symbols)} (limit "
            f"{MAX_VALENCE_COMBINATIONS}); give fewer states per element")
    solutions = [solve_charge_balance(combo, max_count) for combo in combos]
    if not any(len(s) for s in solutions):
        tried = "; ".join(f"{el} {'/'.join(_sign(q) for q in qs)}"
                          for el, qs in valences.items())
        raise ChargeBalanceError(
            f"no charge-balanced composition of {' '.join(symbols)} with counts 1–{max_count} "
            f"and oxidation states {tried}")
    stacked = np.vstack([s for s in solutions if len(s)])
    combo_of_row = np.concatenate([np.full(len(s), i) for i, s in enumerate(solutions)
                                   if len(s)])
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1]
    ids = [tuple(int(i) for i in part) for part in np.split(combo_of_row[order], bounds)]
    combinations = tuple(dict(zip(symbols, (int(c) for c in combo), strict=True))
                         for combo in combos)
    labels = [format_valences(c) for c in combinations]
    sorted_counts = np.sort(unique, axis=1)
    anonymous: dict[tuple[int, ...], str] = {}
    table = pd.DataFrame({
        "formula": [reduce_formula(dict(zip(symbols, map(int, row), strict=True)))[0]
                    for row in unique],
        "anonymous_formula": [anonymous.setdefault(key, _anonymous(key))
                              for key in map(tuple, sorted_counts.tolist())],
        "n_atoms": unique.sum(axis=1).astype(int),
    })
    for j, sym in enumerate(symbols):
        table[sym] = unique[:, j].astype(int)
    table["oxidation_states"] = ["; ".join(labels[i] for i in t) for t in ids]
    table["assignment_ids"] = list(ids)
    table = table.sort_values(["n_atoms", "formula"], kind="stable").reset_index(drop=True)
    return FormulaEnumeration(symbols, valences, int(max_count), combinations, table)
