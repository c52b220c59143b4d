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
* **Mixed valence** (``mixed_valence``, or a non-integer state such as the average oxidation
  state 2.67 of a TM model): an element may take two states on distinct sites. It is then
  split into two columns, one per state, each with count ≥ 1, solved like two elements and
  merged again: Fe²⁺₁Fe³⁺₂O₄ is listed as Fe3O4 with the assignment
  :class:`MixedValence` ``Fe+2×1 +3×2``. The merged counts obey ``max_count`` and the
  gcd rule; the split is kept with the assignment (templates compare it with their per-site
  states).

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
from dataclasses import dataclass, field

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
    "MixedValence",
    "Valence",
    "element_valences",
    "enumerate_formulas",
    "format_valences",
    "mixed_valence_pairs",
    "site_fractions",
    "solve_charge_balance",
]

#: Largest count of an element in a formula (SI §S2.1: "each element count ≤ 15").
MAX_COUNT: int = 15
#: Most valence combinations (one state per element) solved for one search.
MAX_VALENCE_COMBINATIONS: int = 512

_METAL_TYPES = frozenset({"transition_metal", "lanthanide_actinide", "other_metal"})


def _sign(x: int) -> str:
    return f"+{x}" if x > 0 else str(x)


@dataclass(frozen=True)
class MixedValence:
    """An element on two kinds of site with different oxidation states (Fe²⁺₁Fe³⁺₂ in Fe3O4).

    Attributes:
        low: The lower state.
        high: The higher state.
        n_low: Sites at ``low`` per formula unit of the solved (unreduced) composition.
        n_high: Sites at ``high``; only the ratio ``n_low : n_high`` matters.
    """

    low: int
    high: int
    n_low: int
    n_high: int

    def __post_init__(self) -> None:
        if not self.low < self.high or self.n_low < 1 or self.n_high < 1:
            raise ConfigurationError(f"invalid mixed valence {self!r}: need low < high and "
                                     "one site or more of each")

    @property
    def mean(self) -> float:
        """The average oxidation state."""
        return (self.low * self.n_low + self.high * self.n_high) / (self.n_low + self.n_high)

    @property
    def fractions(self) -> dict[int, float]:
        """State → fraction of the element's sites."""
        n = self.n_low + self.n_high
        return {self.low: self.n_low / n, self.high: self.n_high / n}

    def __float__(self) -> float:
        return self.mean

    def __str__(self) -> str:
        return f"{_sign(self.low)}×{self.n_low} {_sign(self.high)}×{self.n_high}"


#: An element's oxidation state in one assignment: one state, or two on distinct sites.
Valence = int | MixedValence


def site_fractions(valence: Valence | float) -> dict[int, float]:
    """State → fraction of the element's sites (``{state: 1.0}`` for a single state)."""
    if isinstance(valence, MixedValence):
        return valence.fractions
    return {int(round(float(valence))): 1.0}


def format_valences(valences: Mapping[str, Valence]) -> str:
    """``{"Ca": 2, "O": -2}`` → ``"Ca+2 O-2"``; a mixed valence as ``"Fe+2×1 +3×2"``."""
    return " ".join(f"{el}{q}" if isinstance(q, MixedValence) else f"{el}{_sign(int(q))}"
                    for el, q in valences.items())


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
        combinations: Every assignment of states that balances a formula (element → state
            or :class:`MixedValence`), indexed by the ``assignment_ids`` of the table.
        table: One row per formula: ``formula`` (pymatgen's reduced formula),
            ``anonymous_formula`` (pymatgen's convention, e.g. ``ABC2D5``), ``n_atoms``, one
            column per element with its count, ``oxidation_states`` (every balancing
            assignment, ``"Ca+2 Mn+3 Al+3 O-2"``, joined by ``"; "``), ``mixed_valence``
            (whether an assignment puts an element in two states) and ``assignment_ids``
            (tuple of indices into ``combinations``).
        mixed_valence: Element → the pairs of states it was also allowed on distinct sites.
    """

    elements: tuple[str, ...]
    valences: Mapping[str, tuple[int, ...]]
    max_count: int
    combinations: tuple[Mapping[str, Valence], ...]
    table: pd.DataFrame
    mixed_valence: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def formulas(self) -> list[str]:
        """The reduced formulas, in table order."""
        return self.table["formula"].tolist()

    def assignments(self, formula: str) -> list[Mapping[str, Valence]]:
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


def mixed_valence_pairs(
    oxidation_states: Mapping[str, float | Iterable[float]] | None,
) -> tuple[dict[str, int | list[int]], dict[str, list[tuple[int, int]]]]:
    """Split given states into whole states and mixed-valence pairs.

    A non-integer state ``q`` (an average oxidation state, e.g. 2.67 for Fe3O4) becomes the
    pair ``(⌊q⌋, ⌈q⌉)`` of states on distinct sites.

    Returns:
        ``(whole, pairs)``: element → integer state(s) (elements with whole states only), and
        element → pairs.

    Raises:
        ConfigurationError: A zero or non-finite state, or an average that brackets zero.
    """
    whole: dict[str, int | list[int]] = {}
    pairs: dict[str, list[tuple[int, int]]] = {}
    for el, states in (oxidation_states or {}).items():
        values = [states] if isinstance(states, int | float | np.integer | np.floating) \
            else list(states)
        ints = []
        for v in values:
            v = float(v)
            if not math.isfinite(v) or v == 0:
                raise ConfigurationError(f"oxidation state {v!r} of {el} must be finite and "
                                         "non-zero")
            if v.is_integer():
                ints.append(int(v))
                continue
            low, high = math.floor(v), math.ceil(v)
            if low <= 0 <= high:
                raise ConfigurationError(f"average oxidation state {v} of {el} lies between "
                                         "a negative and a positive state")
            pairs.setdefault(el, []).append((low, high))
        if ints:
            whole[el] = ints
    return whole, pairs


def _choices(valences: Mapping[str, tuple[int, ...]],
             pairs: Mapping[str, Sequence[tuple[int, int]]],
             only_mixed: set[str]) -> list[list[int | tuple[int, int]]]:
    out = []
    for el, states in valences.items():
        options: list[int | tuple[int, int]] = [] if el in only_mixed else list(states)
        for low, high in pairs.get(el, ()):
            if (low, high) not in options and low < high and low * high > 0:
                options.append((low, high))
        out.append(options)
    return out


def enumerate_formulas(
    elements: Sequence[str],
    oxidation_states: Mapping[str, float | Iterable[float]] | None = None,
    *,
    max_count: int = MAX_COUNT,
    mixed_valence: Mapping[str, Iterable[tuple[int, int]]] | None = None,
) -> FormulaEnumeration:
    """Every charge-balanced formula of the elements (SI §S2.1).

    Args:
        elements: Every element of the compound, e.g. ``["Ca", "Mn", "Al", "O"]``.
        oxidation_states: Element → predicted (or known) state or states, e.g.
            ``{"Mn": 3}``; other elements use :func:`element_valences`. A non-integer state
            (an average, ``{"Fe": 2.67}``) means the mixed valence ``(⌊q⌋, ⌈q⌉)`` on distinct
            sites (:func:`mixed_valence_pairs`).
        max_count: Largest count of an element (default 15).
        mixed_valence: Element → pairs ``(low, high)`` of states it may also take together,
            on distinct sites, in addition to its single states.

    Returns:
        A :class:`FormulaEnumeration` (at least one formula).

    Raises:
        ElementError: An unknown element symbol.
        ConfigurationError: Invalid states or too many valence combinations.
        ChargeBalanceError: No composition balances; the message names the elements and the
            states tried.
    """
    whole, pairs = mixed_valence_pairs(oxidation_states)
    only_mixed = {normalize_symbol(el) for el in pairs if el not in whole}
    valences = element_valences(elements, whole)
    pairs = {normalize_symbol(el): list(v) for el, v in pairs.items()}
    for el, extra in (mixed_valence or {}).items():
        pairs.setdefault(normalize_symbol(el), []).extend(
            (int(a), int(b)) for a, b in extra)
    unknown = set(pairs) - set(valences)
    if unknown:
        raise ConfigurationError(f"a mixed valence was given for {' '.join(sorted(unknown))}, "
                                 f"not among the elements {' '.join(valences)}")
    symbols = tuple(valences)
    combos = list(itertools.product(*_choices(valences, pairs, only_mixed)))
    if len(combos) > MAX_VALENCE_COMBINATIONS:
        raise ConfigurationError(
            f"{len(combos)} combinations of oxidation states for {' '.join(symbols)} (limit "
            f"{MAX_VALENCE_COMBINATIONS}); give fewer states per element")
    rows: dict[tuple[int, ...], list[int]] = {}
    combinations: list[Mapping[str, Valence]] = []
    index: dict[tuple[tuple[str, Valence], ...], int] = {}
    for combo in combos:
        charges, owner = [], []
        for j, choice in enumerate(combo):
            for q in (choice if isinstance(choice, tuple) else (choice,)):
                charges.append(q)
                owner.append(j)
        solved = solve_charge_balance(charges, max_count)
        if not len(solved):
            continue
        merged = np.zeros((len(solved), len(symbols)), dtype=np.int64)
        np.add.at(merged.T, np.asarray(owner), solved.T)
        for row, split in zip(merged, solved, strict=True):
            if row.max() > max_count:
                continue
            g = int(np.gcd.reduce(row))
            key = tuple(int(n) // g for n in row)
            assignment: dict[str, Valence] = {}
            col = 0
            for sym, choice in zip(symbols, combo, strict=True):
                if isinstance(choice, tuple):
                    assignment[sym] = MixedValence(choice[0], choice[1], int(split[col]),
                                                   int(split[col + 1]))
                    col += 2
                else:
                    assignment[sym] = int(choice)
                    col += 1
            ident = tuple(assignment.items())
            if ident not in index:
                index[ident] = len(combinations)
                combinations.append(assignment)
            ids = rows.setdefault(key, [])
            if index[ident] not in ids:
                ids.append(index[ident])
    if not rows:
        tried = "; ".join(f"{el} {'/'.join(_sign(q) for q in qs)}"
                          for el, qs in valences.items())
        mixed = "; ".join(f"{el} {'/'.join(f'{a:+d}&{b:+d}' for a, b in v)}"
                          for el, v in pairs.items())
        raise ChargeBalanceError(
            f"no charge-balanced composition of {' '.join(symbols)} with counts 1–{max_count} "
            f"and oxidation states {tried}" + (f" (mixed: {mixed})" if mixed else ""))
    unique = np.array(sorted(rows), dtype=np.int64).reshape(len(rows), len(symbols))
    ids = [tuple(sorted(rows[tuple(int(n) for n in row)])) for row in unique]
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
    table["mixed_valence"] = [any(isinstance(v, MixedValence) for i in t
                                  for v in combinations[i].values()) for t in ids]
    table["assignment_ids"] = list(ids)
    table = table.sort_values(["n_atoms", "formula"], kind="stable").reset_index(drop=True)
    return FormulaEnumeration(symbols, valences, int(max_count), tuple(combinations), table,
                              {el: tuple(v) for el, v in pairs.items()})
