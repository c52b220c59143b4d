"""Atomic descriptors of the element-feature encoder (SI Fig. S5) and element categories.

SpecFusionNet describes every element of a compound by seven atomic descriptors (main text and
SI §S1.2): Pauling electronegativity χ, atomic radius r_atom, the first three ionization
energies IE1–IE3, atomic number Z and an element *type*. Transition metals (TMs) and the other
elements are encoded by separate branches.

Method
------
All numeric values are read from pymatgen's periodic table (``pymatgen.core.Element``):

* ``electronegativity``: ``Element.X``, Pauling scale (dimensionless).
* ``atomic_radius``: ``Element.atomic_radius``, the *empirical* radius (Slater 1964), Å. The
  calculated (Clementi) radius is not mixed in where the empirical one is missing, so that the
  column has a single source.
* ``ie1``, ``ie2``, ``ie3``: ``Element.ionization_energies[0:3]`` (NIST), eV.
* ``Z``: atomic number.
* ``type``: one of :data:`ELEMENT_TYPES`, assigned from the fixed tables below (not from
  pymatgen's ``is_*`` flags, whose conventions differ between versions).

Missing values are never filled silently. pymatgen has no Pauling χ for He, Ne, Ar and the
superheavy elements, no empirical radius for He, Ne, Kr, Xe, Rn and most actinides, and no IE2
for H (one electron) or IE3 for H and He. :func:`element_descriptors` keeps these as ``NaN`` and
lists them in :attr:`ElementDescriptors.missing`. :func:`descriptor_matrix` then fills them by a
documented rule (default: the column median over every element of the periodic table that has
the value, see :func:`reference_medians`) and can return the boolean ``missing`` mask alongside.

Definitions
-----------
*Transition metal* follows the paper: the 3d and 4d metals Sc–Zn and Y–Cd (SPEC §3, the
dataset's selection rule "at least one TM"; their K-edges are the XANES inputs of the TM
branch). The 5d metals Hf–Hg are **not** TMs in this sense (:func:`is_transition_metal`
returns ``False``; the paper treats their L-edges only in an extension, Fig. S9–S12). For the
``type`` *descriptor*, however, chemistry decides: every d-block metal of groups 3–12 except La
and Ac (3d, 4d, 5d and 6d) has type ``"transition_metal"``; La–Lu and Ac–Lr are
``"lanthanide_actinide"``. So ``element_type("W") == "transition_metal"`` while
``is_transition_metal("W") is False``.

*Metalloids* are the six commonly recognised ones (B, Si, Ge, As, Sb, Te); Po counts as an
other metal and At as a non-metal (a halogen). The superheavy p-block elements Nh–Lv are other
metals, Ts a non-metal and Og a noble gas (non-metal type); they carry almost no data anyway.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal, overload

import numpy as np
from pymatgen.core import Element

from specfusion_lib.core.errors import ElementError

__all__ = [
    "DESCRIPTOR_NAMES",
    "ELEMENT_TYPES",
    "LANTHANIDES_ACTINIDES",
    "METALLOIDS",
    "NOBLE_GASES",
    "NON_METALS",
    "NUMERIC_DESCRIPTOR_NAMES",
    "TRANSITION_METALS",
    "TRANSITION_METALS_3D",
    "TRANSITION_METALS_4D",
    "TRANSITION_METALS_5D",
    "TYPE_TRANSITION_METALS",
    "ElementDescriptors",
    "descriptor_columns",
    "descriptor_matrix",
    "element_descriptors",
    "element_type",
    "is_noble_gas",
    "is_transition_metal",
    "normalize_symbol",
    "reference_medians",
]

# --------------------------------------------------------------------------------------------
# Constants (one table)
# --------------------------------------------------------------------------------------------

#: 3d transition metals, Sc–Zn.
TRANSITION_METALS_3D: tuple[str, ...] = (
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
)  # fmt: skip
#: 4d transition metals, Y–Cd.
TRANSITION_METALS_4D: tuple[str, ...] = (
    "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
)  # fmt: skip
#: 5d metals Hf–Hg: d-block (type ``"transition_metal"``) but *not* TMs in the paper's sense.
TRANSITION_METALS_5D: tuple[str, ...] = (
    "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
)  # fmt: skip
#: The paper's transition metals (SPEC §3): Sc–Zn and Y–Cd. 5d metals are not included.
TRANSITION_METALS: frozenset[str] = frozenset(TRANSITION_METALS_3D + TRANSITION_METALS_4D)
#: Elements whose ``type`` descriptor is ``"transition_metal"``: groups 3–12 without La, Ac.
TYPE_TRANSITION_METALS: frozenset[str] = TRANSITION_METALS | frozenset(
    TRANSITION_METALS_5D + ("Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn")
)
#: Noble gases (excluded from the paper's dataset).
NOBLE_GASES: frozenset[str] = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Og"})
#: La–Lu (Z 57–71) and Ac–Lr (Z 89–103).
LANTHANIDES_ACTINIDES: frozenset[str] = frozenset(
    Element.from_Z(z).symbol for z in (*range(57, 72), *range(89, 104))
)
#: The six commonly recognised metalloids.
METALLOIDS: frozenset[str] = frozenset({"B", "Si", "Ge", "As", "Sb", "Te"})
#: Non-metals, noble gases included.
NON_METALS: frozenset[str] = (
    frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Se", "Br", "I", "At", "Ts"}) | NOBLE_GASES
)

#: Element type categories, in the order of their integer codes and one-hot columns.
ELEMENT_TYPES: tuple[str, ...] = (
    "transition_metal",
    "lanthanide_actinide",
    "other_metal",
    "metalloid",
    "non_metal",
)
#: The seven descriptors of SI Fig. S5, in the paper's order.
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "electronegativity",
    "atomic_radius",
    "ie1",
    "ie2",
    "ie3",
    "Z",
    "type",
)
#: The numeric descriptors (all but ``type``), the columns that may have missing values.
NUMERIC_DESCRIPTOR_NAMES: tuple[str, ...] = DESCRIPTOR_NAMES[:-1]

_ISOTOPE_LABELS = {"D": "H", "T": "H"}
_FILL_RULES = ("median", "zero", "nan")
_TYPE_ENCODINGS = ("onehot", "integer")


# --------------------------------------------------------------------------------------------
# Symbols and categories
# --------------------------------------------------------------------------------------------


def normalize_symbol(symbol: str | Element) -> str:
    """Return the canonical element symbol, or raise :class:`ElementError`.

    Args:
        symbol: An element symbol (case-sensitive, e.g. ``"Fe"``), a pymatgen ``Element`` or
            any object with a ``symbol`` attribute (a ``Species`` such as ``Fe2+``).

    Returns:
        The symbol as pymatgen spells it.

    Raises:
        ElementError: If the symbol is not an element of the periodic table. Isotope labels
            (``"D"``, ``"T"``) are rejected with a hint to use ``"H"``.
    """
    sym = getattr(symbol, "symbol", symbol)
    if not isinstance(sym, str):
        raise ElementError(f"element symbol must be a string, got {type(symbol).__name__}")
    if sym in _ISOTOPE_LABELS:
        raise ElementError(
            f"unknown element symbol {sym!r} (an isotope label; use {_ISOTOPE_LABELS[sym]!r})"
        )
    if not Element.is_valid_symbol(sym):
        hint = ""
        if Element.is_valid_symbol(sym.strip().capitalize()):
            hint = f"; did you mean {sym.strip().capitalize()!r}?"
        raise ElementError(f"unknown element symbol {sym!r}{hint}")
    return sym


def is_transition_metal(symbol: str | Element) -> bool:
    """Whether an element is a transition metal in the paper's sense (Sc–Zn, Y–Cd).

    5d metals (Hf–Hg) return ``False``; see :data:`TRANSITION_METALS` and the module docstring.

    Raises:
        ElementError: If the symbol is unknown.
    """
    return normalize_symbol(symbol) in TRANSITION_METALS


def is_noble_gas(symbol: str | Element) -> bool:
    """Whether an element is a noble gas (He, Ne, Ar, Kr, Xe, Rn, Og).

    Raises:
        ElementError: If the symbol is unknown.
    """
    return normalize_symbol(symbol) in NOBLE_GASES


def element_type(symbol: str | Element) -> str:
    """Return the element-type category of the ``type`` descriptor (one of ELEMENT_TYPES).

    Raises:
        ElementError: If the symbol is unknown.
    """
    sym = normalize_symbol(symbol)
    if sym in TYPE_TRANSITION_METALS:
        return "transition_metal"
    if sym in LANTHANIDES_ACTINIDES:
        return "lanthanide_actinide"
    if sym in METALLOIDS:
        return "metalloid"
    if sym in NON_METALS:
        return "non_metal"
    return "other_metal"


# --------------------------------------------------------------------------------------------
# Descriptors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElementDescriptors:
    """The SI Fig. S5 descriptors of one element.

    Attributes:
        symbol: Element symbol.
        Z: Atomic number.
        electronegativity: Pauling χ, ``NaN`` when pymatgen has none.
        atomic_radius: Empirical atomic radius in Å, ``NaN`` when missing.
        ie1: First ionization energy in eV, ``NaN`` when missing.
        ie2: Second ionization energy in eV (``NaN`` for H, which has one electron).
        ie3: Third ionization energy in eV (``NaN`` for H and He).
        type: Element type category, one of :data:`ELEMENT_TYPES`.
        is_transition_metal: Paper's TM definition (Sc–Zn, Y–Cd).
        missing: Names of the numeric descriptors that are ``NaN``.
    """

    symbol: str
    Z: int
    electronegativity: float
    atomic_radius: float
    ie1: float
    ie2: float
    ie3: float
    type: str
    is_transition_metal: bool
    missing: tuple[str, ...]

    @property
    def type_code(self) -> int:
        """Integer code of :attr:`type` (its index in :data:`ELEMENT_TYPES`)."""
        return ELEMENT_TYPES.index(self.type)

    def numeric(self) -> np.ndarray:
        """The six numeric descriptors (χ, r, IE1, IE2, IE3, Z) as float64, ``NaN`` kept."""
        return np.array([getattr(self, name) for name in NUMERIC_DESCRIPTOR_NAMES], dtype=float)


def _as_float(value: object) -> float:
    if value is None:
        return math.nan
    out = float(value)  # FloatWithUnit -> float
    return out if math.isfinite(out) else math.nan


@cache
def _descriptors(sym: str) -> ElementDescriptors:
    el = Element(sym)
    with warnings.catch_warnings():
        # pymatgen warns (and returns NaN) for elements without a Pauling χ / IE data.
        warnings.simplefilter("ignore", UserWarning)
        chi = _as_float(el.X)
        ies = el.ionization_energies or []
    ie = [_as_float(ies[i]) if i < len(ies) else math.nan for i in range(3)]
    values = {
        "electronegativity": chi,
        "atomic_radius": _as_float(el.atomic_radius),
        "ie1": ie[0],
        "ie2": ie[1],
        "ie3": ie[2],
        "Z": float(el.Z),
    }
    missing = tuple(name for name in NUMERIC_DESCRIPTOR_NAMES if math.isnan(values[name]))
    return ElementDescriptors(
        symbol=sym,
        Z=int(el.Z),
        electronegativity=values["electronegativity"],
        atomic_radius=values["atomic_radius"],
        ie1=values["ie1"],
        ie2=values["ie2"],
        ie3=values["ie3"],
        type=element_type(sym),
        is_transition_metal=sym in TRANSITION_METALS,
        missing=missing,
    )


def element_descriptors(symbol: str | Element) -> ElementDescriptors:
    """Return the SI Fig. S5 descriptors of one element, missing values as ``NaN``.

    Args:
        symbol: Element symbol (``"Fe"``), pymatgen ``Element`` or ``Species``.

    Returns:
        The element's :class:`ElementDescriptors` (cached; the object is immutable).

    Raises:
        ElementError: If the symbol is unknown, e.g. ``unknown element symbol 'Xx'``.
    """
    return _descriptors(normalize_symbol(symbol))


@lru_cache(maxsize=1)
def _reference_medians() -> tuple[float, ...]:
    table = np.array([_descriptors(el.symbol).numeric() for el in Element])
    return tuple(float(v) for v in np.nanmedian(table, axis=0))


def reference_medians() -> dict[str, float]:
    """Column medians used by ``fill="median"``, over all 118 elements having the value.

    Returns:
        Mapping numeric descriptor name → median (χ ≈ 1.6, r ≈ 1.4 Å, ...).
    """
    return dict(zip(NUMERIC_DESCRIPTOR_NAMES, _reference_medians(), strict=True))


def descriptor_columns(type_encoding: Literal["onehot", "integer"] = "onehot") -> tuple[str, ...]:
    """Column names of :func:`descriptor_matrix` for a given type encoding.

    ``"onehot"``: the six numeric descriptors then ``type_<category>`` for each of
    :data:`ELEMENT_TYPES` (11 columns). ``"integer"``: the six numeric descriptors then
    ``type`` holding the integer code (7 columns, same names as :data:`DESCRIPTOR_NAMES`).
    """
    if type_encoding == "onehot":
        return NUMERIC_DESCRIPTOR_NAMES + tuple(f"type_{t}" for t in ELEMENT_TYPES)
    if type_encoding == "integer":
        return DESCRIPTOR_NAMES
    raise ValueError(f"type_encoding must be one of {_TYPE_ENCODINGS}, got {type_encoding!r}")


@overload
def descriptor_matrix(
    symbols: Iterable[str | Element],
    *,
    type_encoding: Literal["onehot", "integer"] = ...,
    fill: Literal["median", "zero", "nan"] = ...,
    return_mask: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def descriptor_matrix(
    symbols: Iterable[str | Element],
    *,
    type_encoding: Literal["onehot", "integer"] = ...,
    fill: Literal["median", "zero", "nan"] = ...,
    return_mask: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...


def descriptor_matrix(
    symbols: Iterable[str | Element],
    *,
    type_encoding: Literal["onehot", "integer"] = "onehot",
    fill: Literal["median", "zero", "nan"] = "median",
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Stack the descriptors of several elements into a float matrix.

    Columns are :func:`descriptor_columns` ``(type_encoding)``: χ, r_atom (Å), IE1, IE2, IE3
    (eV), Z, then the type as a one-hot block (default; the encoder sees no artificial order
    between categories) or as one integer-code column. Values are raw (not standardised);
    scaling belongs to the model's preprocessing.

    Missing numeric values are filled column-wise according to ``fill``:

    * ``"median"`` (default): the median of that descriptor over every element of the
      periodic table that has it (:func:`reference_medians`), a neutral value that does not
      depend on the batch.
    * ``"zero"``: 0.0 (useful when the mask is fed to the model as well).
    * ``"nan"``: left as ``NaN``.

    Args:
        symbols: Element symbols, one row each (repeats allowed).
        type_encoding: ``"onehot"`` or ``"integer"``.
        fill: Imputation rule for missing values.
        return_mask: Also return the boolean mask of filled entries (same shape as the matrix;
            ``True`` where a value was missing; type columns are never missing).

    Returns:
        The matrix of shape ``(len(symbols), n_columns)``, or ``(matrix, mask)``.

    Raises:
        ElementError: If a symbol is unknown.
        ValueError: If ``fill`` or ``type_encoding`` is not one of the allowed values.
    """
    if fill not in _FILL_RULES:
        raise ValueError(f"fill must be one of {_FILL_RULES}, got {fill!r}")
    columns = descriptor_columns(type_encoding)
    descs = [element_descriptors(s) for s in symbols]
    n_num = len(NUMERIC_DESCRIPTOR_NAMES)
    out = np.zeros((len(descs), len(columns)), dtype=float)
    if descs:
        out[:, :n_num] = np.stack([d.numeric() for d in descs])
        codes = np.array([d.type_code for d in descs])
        if type_encoding == "onehot":
            out[np.arange(len(descs)), n_num + codes] = 1.0
        else:
            out[:, n_num] = codes
    mask = np.isnan(out)
    if fill == "median":
        medians = np.array(_reference_medians() + (0.0,) * (len(columns) - n_num))
        out = np.where(mask, medians[None, :], out)
    elif fill == "zero":
        out = np.where(mask, 0.0, out)
    return (out, mask) if return_mask else out
