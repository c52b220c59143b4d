"""Labels derived from a crystal structure: symmetry, density, oxidation states, coordination.

These are the labels SPEC §3 calls *exact for the structure*: they are computed from a pymatgen
:class:`~pymatgen.core.Structure` by deterministic algorithms, not predicted.

Method
------
* **Crystal system and space group**: :class:`~pymatgen.symmetry.analyzer.SpacegroupAnalyzer`
  (spglib) with a symmetry tolerance ``symprec`` (default :data:`SYMPREC` = 0.1 Å, the value
  the Materials Project uses for its symmetry fields). Crystal systems are returned in lower
  case, as pymatgen and the paper (SI §S2.2) write them; :func:`normalize_crystal_system`
  maps other spellings (``"Cubic"``) onto :data:`CRYSTAL_SYSTEMS`.
* **Density**: ``Structure.density`` in g/cm³.
* **Oxidation states**: bond-valence analysis, :class:`~pymatgen.analysis.bond_valence.BVAnalyzer`
  (O'Keeffe & Brese parameters, maximum a-posteriori assignment of integer valences that is
  charge neutral). When BVAnalyzer cannot assign valences (metals and intermetallics, unusual
  bonding, exotic anions) the label is **absent** (``None``); no value is ever guessed.
* **Coordination numbers**: :class:`~pymatgen.analysis.local_env.CrystalNN` (Pan et al.,
  Inorg. Chem. 2021), the integer CN of its most probable neighbour set. Where bond valence
  succeeded the structure is first decorated with those oxidation states, as CrystalNN
  recommends (they select ionic rather than atomic radii for its distance normalisation);
  otherwise the undecorated structure is used. CrystalNN is comparatively slow, so it is only
  evaluated on the requested sites (one representative per symmetry-inequivalent site in
  :func:`structure_labels`).
* **Per-site labels**: sites are grouped into symmetry-equivalence classes by
  ``SpacegroupAnalyzer.get_symmetrized_structure().equivalent_indices``; each class is reported
  once with its first site index and its multiplicity (number of sites of the class in the
  given cell). Absorbing elements default to the paper's transition metals (Sc–Zn, Y–Cd,
  :data:`specfusion_lib.core.elements.TRANSITION_METALS`).

Only ordered structures are supported; a structure with partial occupancies raises
:class:`DisorderedStructureError`.

Pitfall with textbook structures: ``Structure.from_spacegroup("Fd-3m", ...)`` uses origin
choice 1. Spinel coordinates tabulated in origin choice 2 (A at 8a = (1/8, 1/8, 1/8), B at 16d
= (1/2, 1/2, 1/2), O at 32e with x ≈ 0.26) need the symbol ``"Fd-3m:2"``; with plain
``"Fd-3m"`` they yield a wrong, unphysical structure.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pymatgen.analysis.bond_valence import BVAnalyzer
from pymatgen.analysis.local_env import CrystalNN
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.elements import TRANSITION_METALS, normalize_symbol
from specfusion_lib.core.errors import DisorderedStructureError
from specfusion_lib.core.tasks import CRYSTAL_SYSTEMS

__all__ = [
    "CRYSTAL_SYSTEMS",
    "LABEL_CACHE_SCHEMA",
    "SYMPREC",
    "DisorderedStructureError",
    "ElementSiteSummary",
    "SiteLabel",
    "StructureLabels",
    "SymmetryLabels",
    "cached_structure_labels",
    "crystal_system",
    "density",
    "element_site_summary",
    "normalize_crystal_system",
    "site_coordination_numbers",
    "site_oxidation_states",
    "structure_labels",
    "symmetry_labels",
]

#: Default symmetry tolerance in Å (the Materials Project's value).
SYMPREC: float = 0.1


@dataclass(frozen=True)
class SymmetryLabels:
    """Symmetry of a structure.

    Attributes:
        crystal_system: One of :data:`CRYSTAL_SYSTEMS`.
        space_group_number: International space-group number, 1–230.
        space_group_symbol: Hermann–Mauguin symbol, e.g. ``"Fm-3m"``.
    """

    crystal_system: str
    space_group_number: int
    space_group_symbol: str


@dataclass(frozen=True)
class SiteLabel:
    """Labels of one symmetry-inequivalent site of an absorbing element.

    Attributes:
        element: Element symbol.
        site_index: Index (in the given structure) of the class's first site.
        multiplicity: Number of sites of this equivalence class in the given cell.
        oxidation_state: Bond-valence oxidation state, ``None`` when BVAnalyzer failed.
        coordination_number: CrystalNN coordination number.
    """

    element: str
    site_index: int
    multiplicity: int
    oxidation_state: int | None
    coordination_number: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with the snapshot's per-site field names."""
        return asdict(self)


@dataclass(frozen=True)
class StructureLabels:
    """Structure-derived labels (Materials Project field names where they exist).

    Attributes:
        crystal_system: One of :data:`CRYSTAL_SYSTEMS`.
        space_group_number: International number, 1–230.
        space_group_symbol: Hermann–Mauguin symbol.
        density: Density in g/cm³.
        sites: One :class:`SiteLabel` per inequivalent site of the absorbing elements, ordered
            by site index.
        oxidation_states_available: Whether bond valence succeeded (``False`` means every
            ``oxidation_state`` is ``None``).
    """

    crystal_system: str
    space_group_number: int
    space_group_symbol: str
    density: float
    sites: tuple[SiteLabel, ...]
    oxidation_states_available: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict: scalar labels plus ``"sites"`` as a list of per-site dicts."""
        return {
            "crystal_system": self.crystal_system,
            "space_group_number": self.space_group_number,
            "space_group_symbol": self.space_group_symbol,
            "density": self.density,
            "sites": [s.to_dict() for s in self.sites],
        }


@dataclass(frozen=True)
class ElementSiteSummary:
    """Per-element summary over the element's inequivalent sites.

    Attributes:
        element: Element symbol.
        n_sites: Total number of sites of the element in the cell (sum of multiplicities).
        mean_oxidation_state: Multiplicity-weighted mean oxidation state; ``None`` if any site
            has no oxidation state.
        oxidation_states: Distinct oxidation states, ascending (empty if unavailable).
        mean_coordination_number: Multiplicity-weighted mean coordination number.
        coordination_numbers: Distinct coordination numbers, ascending.
    """

    element: str
    n_sites: int
    mean_oxidation_state: float | None
    oxidation_states: tuple[int, ...]
    mean_coordination_number: float
    coordination_numbers: tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Single labels
# --------------------------------------------------------------------------------------------


def _require_ordered(structure: Structure) -> None:
    if not structure.is_ordered:
        formula = structure.composition.reduced_formula
        raise DisorderedStructureError(
            f"structure {formula} has partially occupied sites; site labels need an ordered "
            "structure (order it first, e.g. with OrderDisorderedStructureTransformation)"
        )


def normalize_crystal_system(name: str) -> str:
    """Map a crystal-system name in any case (``"Cubic"``, ``"CUBIC"``) onto CRYSTAL_SYSTEMS.

    Raises:
        ValueError: If the name is not one of the seven crystal systems.
    """
    key = str(name).strip().lower()
    if key not in CRYSTAL_SYSTEMS:
        raise ValueError(f"unknown crystal system {name!r}; expected one of {CRYSTAL_SYSTEMS}")
    return key


def symmetry_labels(structure: Structure, symprec: float = SYMPREC) -> SymmetryLabels:
    """Crystal system and space group of a structure (spglib via SpacegroupAnalyzer).

    Args:
        structure: The structure.
        symprec: Symmetry tolerance in Å.

    Returns:
        The structure's :class:`SymmetryLabels`.
    """
    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    return SymmetryLabels(
        crystal_system=sga.get_crystal_system(),
        space_group_number=int(sga.get_space_group_number()),
        space_group_symbol=sga.get_space_group_symbol(),
    )


def crystal_system(structure: Structure, symprec: float = SYMPREC) -> str:
    """Crystal system of a structure, one of :data:`CRYSTAL_SYSTEMS`.

    Use :func:`symmetry_labels` to get the space group as well.
    """
    return symmetry_labels(structure, symprec).crystal_system


def density(structure: Structure) -> float:
    """Density of a structure in g/cm³."""
    return float(structure.density)


def site_oxidation_states(structure: Structure) -> list[int] | None:
    """Bond-valence oxidation state of every site, or ``None`` when it cannot be assigned.

    Args:
        structure: An ordered structure.

    Returns:
        One integer per site (in site order), or ``None`` if BVAnalyzer finds no
        charge-neutral assignment (e.g. metals, intermetallics). The label is then absent;
        nothing is guessed.

    Raises:
        DisorderedStructureError: If the structure has partial occupancies.
    """
    _require_ordered(structure)
    try:
        valences = BVAnalyzer().get_valences(structure)
    except ValueError:  # "Valences cannot be assigned!"
        return None
    return [int(v) for v in valences]


def site_coordination_numbers(
    structure: Structure,
    sites: Iterable[int] | None = None,
    *,
    oxidation_states: Sequence[int] | None = None,
) -> dict[int, int]:
    """CrystalNN coordination numbers of selected sites.

    Args:
        structure: An ordered structure.
        sites: Site indices to evaluate (default: all sites; CrystalNN takes roughly 1–10 ms
            per site, so pass only the sites you need).
        oxidation_states: Per-site oxidation states to decorate the structure with (e.g. from
            :func:`site_oxidation_states`). Without them the structure is used as given (its
            own oxidation states, if it carries any).

    Returns:
        Mapping site index → integer coordination number.

    Raises:
        DisorderedStructureError: If the structure has partial occupancies.
        IndexError: If a site index is out of range.
    """
    _require_ordered(structure)
    indices = range(len(structure)) if sites is None else list(sites)
    for i in indices:
        if not -len(structure) <= i < len(structure):
            raise IndexError(f"site index {i} out of range for {len(structure)} sites")
    work = structure
    if oxidation_states is not None:
        work = structure.copy()
        work.add_oxidation_state_by_site(list(oxidation_states))
    cnn = CrystalNN()
    with warnings.catch_warnings():
        # CrystalNN warns on every call when the structure carries no oxidation states.
        warnings.filterwarnings("ignore", message="No oxidation states specified")
        return {int(i): int(cnn.get_cn(work, int(i))) for i in indices}


# --------------------------------------------------------------------------------------------
# All labels of a structure
# --------------------------------------------------------------------------------------------


def structure_labels(
    structure: Structure,
    absorbers: Iterable[str] | None = None,
    *,
    symprec: float = SYMPREC,
) -> StructureLabels:
    """All structure-derived labels, with per-site labels of the absorbing elements.

    Args:
        structure: An ordered structure.
        absorbers: Element symbols whose inequivalent sites get per-site labels. Default: the
            transition metals (Sc–Zn, Y–Cd) present in the structure. Elements not present are
            ignored.
        symprec: Symmetry tolerance in Å for the space group and the site equivalence classes.

    Returns:
        :class:`StructureLabels`.

    Raises:
        DisorderedStructureError: If the structure has partial occupancies.
        ElementError: If an absorber symbol is unknown.
    """
    _require_ordered(structure)
    if absorbers is None:
        wanted = {el.symbol for el in structure.composition} & TRANSITION_METALS
    else:
        wanted = {normalize_symbol(s) for s in absorbers}

    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    sym = SymmetryLabels(
        crystal_system=sga.get_crystal_system(),
        space_group_number=int(sga.get_space_group_number()),
        space_group_symbol=sga.get_space_group_symbol(),
    )
    classes = [
        sorted(group)
        for group in sga.get_symmetrized_structure().equivalent_indices
        if structure[group[0]].specie.symbol in wanted
    ]
    classes.sort(key=lambda g: g[0])

    oxi = site_oxidation_states(structure) if classes else None
    cns = site_coordination_numbers(structure, [g[0] for g in classes], oxidation_states=oxi)
    sites = tuple(
        SiteLabel(
            element=structure[g[0]].specie.symbol,
            site_index=g[0],
            multiplicity=len(g),
            oxidation_state=None if oxi is None else oxi[g[0]],
            coordination_number=cns[g[0]],
        )
        for g in classes
    )
    return StructureLabels(
        crystal_system=sym.crystal_system,
        space_group_number=sym.space_group_number,
        space_group_symbol=sym.space_group_symbol,
        density=density(structure),
        sites=sites,
        oxidation_states_available=oxi is not None,
    )


def element_site_summary(labels: StructureLabels) -> dict[str, ElementSiteSummary]:
    """Summarise per-site labels per element.

    An element may occupy several inequivalent sites (Co in Co3O4: tetrahedral Co²⁺ on 8a and
    octahedral Co³⁺ on 16d). The summary gives the multiplicity-weighted means (Co3O4:
    oxidation state 8/3, CN 16/3) and the distinct values ((2, 3) and (4, 6)).

    Args:
        labels: Output of :func:`structure_labels`.

    Returns:
        Mapping element symbol → :class:`ElementSiteSummary`, in order of first appearance.
    """
    by_element: dict[str, list[SiteLabel]] = {}
    for site in labels.sites:
        by_element.setdefault(site.element, []).append(site)
    out: dict[str, ElementSiteSummary] = {}
    for element, sites in by_element.items():
        weights = [s.multiplicity for s in sites]
        total = sum(weights)
        oxis = [s.oxidation_state for s in sites]
        have_oxi = all(o is not None for o in oxis)
        mean_oxi = (
            sum(w * o for w, o in zip(weights, oxis, strict=True)) / total  # type: ignore[operator]
            if have_oxi
            else None
        )
        cns = [s.coordination_number for s in sites]
        out[element] = ElementSiteSummary(
            element=element,
            n_sites=total,
            mean_oxidation_state=mean_oxi,
            oxidation_states=tuple(sorted({o for o in oxis if o is not None})) if have_oxi else (),
            mean_coordination_number=sum(w * c for w, c in zip(weights, cns, strict=True)) / total,
            coordination_numbers=tuple(sorted(set(cns))),
        )
    return out


#: Schema of the structure-label cache files (:func:`cached_structure_labels`).
LABEL_CACHE_SCHEMA = 1


def cached_structure_labels(key: str, structure: Structure, cache: Path) -> dict[str, Any]:
    """:func:`structure_labels` as a dict, cached as ``<cache>/<key>.json``.

    A file of another schema or a half-written one (a killed run) is recomputed; files are
    written atomically.

    Args:
        key: File-name-safe identifier of the structure (``:`` is replaced by ``_``).
        structure: The structure.
        cache: Cache folder (created if missing).
    """
    path = Path(cache) / f"{key.replace(':', '_')}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("schema") == LABEL_CACHE_SCHEMA:
                return stored["labels"]
        except json.JSONDecodeError:
            path.unlink()  # half-written by a killed run: recompute
    labels = structure_labels(structure).to_dict()
    Path(cache).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"schema": LABEL_CACHE_SCHEMA, "labels": labels}))
    return labels
