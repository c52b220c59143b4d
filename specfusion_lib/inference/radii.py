"""Shannon radii of ions, for template ranking and volume rescaling (SI §S2.2, §S2.4).

Method
------
Radii are R. D. Shannon's (Acta Cryst. A32, 751 (1976)) *crystal* radii as tabulated in
pymatgen (``Element.data["Shannon radii"]``, the table behind ``Species.get_shannon_radius``),
in Å. Crystal radii are used rather than the "ionic" column because pymatgen's
``Species.ionic_radius`` (the fallback below) is on the crystal-radius scale (Mn³⁺ 0.785 Å,
O²⁻ 1.26 Å for six-fold coordination), so every number of this module shares one scale.

Lookup of ``(element, charge, cn)``:

1. the entry for the coordination number ``cn`` (Roman numeral, e.g. ``"VI"``; for CN 4 the
   tetrahedral ``"IV"`` before square-planar ``"IVSQ"``); when ``cn`` is not tabulated, the
   tabulated coordination number closest to it (ties: the larger one);
2. spin: high spin when the entry distinguishes spin states (the common state of 3d oxides at
   ambient conditions), otherwise the only entry;
3. without a Shannon entry for that charge: ``Species(element, charge).ionic_radius``;
4. otherwise ``None`` (the caller decides; nothing is invented).
"""

from __future__ import annotations

import re
import warnings
from functools import cache

from pymatgen.core import Element, Species

__all__ = ["ROMAN", "shannon_radius"]

#: Coordination number → Shannon's Roman numeral.
ROMAN: dict[int, str] = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII",
                         8: "VIII", 9: "IX", 10: "X", 11: "XI", 12: "XII", 14: "XIV"}
_FROM_ROMAN = {v: k for k, v in ROMAN.items()}
_SPIN_ORDER = ("High Spin", "", "Low Spin")


def _cn_of(label: str) -> int | None:
    return _FROM_ROMAN.get(re.sub(r"(SQ|PY)$", "", label))


@cache
def shannon_radius(element: str, charge: int, cn: int | None = None) -> float | None:
    """Shannon crystal radius (Å) of an ion, following the lookup of the module docstring.

    Args:
        element: Element symbol.
        charge: Integer oxidation state.
        cn: Coordination number (``None``: six-fold, Shannon's reference).

    Returns:
        The radius in Å, or ``None`` when pymatgen tabulates none for this ion.
    """
    table = Element(element).data.get("Shannon radii", {}).get(str(int(charge)))
    if table:
        wanted = 6 if cn is None else int(cn)
        labels = [(lab, _cn_of(lab)) for lab in table if _cn_of(lab) is not None]
        if labels:
            # closest CN; ties to the larger CN; plain label before SQ/PY variants
            label = min(labels, key=lambda t: (abs(t[1] - wanted), -t[1], len(t[0])))[0]
            spins = table[label]
            for spin in _SPIN_ORDER:
                if spin in spins:
                    return float(spins[spin]["crystal_radius"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            radius = Species(element, int(charge)).ionic_radius
        except (ValueError, KeyError):
            return None
    return float(radius) if radius else None
