"""Structure templates for the enumerated formulas (SI §S2.2, §S2.4).

A *template* is a known crystal structure whose sites can host the elements of a candidate
formula. :class:`TemplateDatabase` holds the known structures (the active snapshot, and the
Materials Project through ``mp-api`` when a key is set: :func:`fetch_mp_templates`);
:func:`retrieve_templates` finds and ranks the templates of every formula of a
:class:`~specfusion_lib.inference.formulas.FormulaEnumeration`.

Method
------
Hierarchical constraints, as in SI §S2.2:

1. **Crystal system** (primary, always required): the template's crystal system is one of the
   systems predicted from the PXRD pattern. The systems are taken in order of predicted
   probability; the most probable one always, further ones (at most
   ``max_crystal_systems``, each with probability ≥ ``min_system_probability``) only rank
   after every template of a more probable system.
2. **Composition type**: the template's reduced formula has the candidate formula's anonymous
   formula (pymatgen convention: ``Ca2MnAlO5`` and ``Ca2FeGaO5`` are both ``ABC2D5``), and an
   *element mapping* pairs each target element with a template element of the same count.
   Every pair must have the same charge sign (cation on a cation site). Where several
   elements share a count, every bijection is tried and the best kept.
3. **Coordination** of the transition metals: the template element a target TM replaces has
   the coordination number predicted from the TM's XANES.

Every pair is classified, and a mapping takes the loosest class of its pairs (its *level*):

``exact``
    same element category (:func:`specfusion_lib.core.elements.element_type`), same oxidation
    states *per site* and, for a TM with a predicted CN, the same CN in the template. A
    target state is compared with the template element's per-site labels
    (:meth:`TemplateDatabase.site_states`): a mixed valence Fe²⁺₁Fe³⁺₂ matches a template
    whose Co sites are one third Co²⁺ and two thirds Co³⁺ (Co3O4), not one of mean 2.67 from
    a single site kind; radii are then the site-fraction-weighted Shannon radii;
``relaxed``
    same element category, oxidation state or CN differ (SI: "comparable");
``substitution``
    SI §S2.4, for systems with no template of the same categories: the two elements are in
    the same periodic-table group, or their Shannon radii differ by at most
    ``substitution_radius_tol`` (relative).

Ranking (best first): crystal-system rank, level, templates with non-negative formation energy
after those with negative (SI §S2.2: "priority given to thermodynamically stable
structures"; entries without the value count as stable), then the score

.. math:: s = \\bar\\rho + w_{CN}\\,\\overline{|\\Delta CN|/CN} + w_q\\,f_q ,

where :math:`\\bar\\rho` is the count-weighted mean relative Shannon-radius mismatch
:math:`|r_e - r_t| / r_t` of the pairs (radii from
:func:`specfusion_lib.inference.radii.shannon_radius` at the target's predicted CN for a TM and
at the template site's CN otherwise; a pair whose radius pymatgen does not tabulate counts as
:data:`MISSING_RADIUS_MISMATCH`), the second term the mean relative CN difference of the TMs
and :math:`f_q` the fraction of pairs whose oxidation states differ. Ties: template formula,
then id.

Every match also carries its ``substitution_probability``: the conditional probability that
the target's ions take the template's ions' places, the product over the mapped pairs of
pymatgen's data-mined ionic substitution probabilities (``SubstitutionProbability``, the
λ table of Hautier et al., Inorg. Chem. 50, 656 (2011), mined from the ICSD); a mixed or
multi-site state contributes the site-fraction-weighted geometric mean over its states (an
ion the table does not know gets pymatgen's default weight exp(α), α = −5). The
search over probabilities (:mod:`~specfusion_lib.inference.search`) orders the templates of
one hypothesis by it: a template with the target's own cation (ZnSe for ZnS) or a chemically
close one is a better geometric match than one with merely a similar radius.

Template oxidation states: the snapshot's per-site bond-valence labels for the TMs, the other
elements from ``Composition.oxi_state_guesses`` with those TM states fixed (bond valence on the
structure when that fails); template CNs: the snapshot's per-site CrystalNN labels
(multiplicity-weighted mode), CrystalNN on the structure for elements without labels. Both are
computed lazily and cached, so a database serves many searches (notebook 09).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Structure

from specfusion_lib.core.elements import TRANSITION_METALS, element_type
from specfusion_lib.core.errors import ConfigurationError, DataSourceError, SnapshotError
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS, crystal_system
from specfusion_lib.inference.formulas import (
    FormulaEnumeration,
    Valence,
    format_valences,
    site_fractions,
)
from specfusion_lib.inference.radii import shannon_radius
from specfusion_lib.properties.features import weighted_mode

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "LEVELS",
    "MISSING_RADIUS_MISMATCH",
    "MP_TEMPLATE_FIELDS",
    "RetrievalResult",
    "RetrievalSettings",
    "TemplateDatabase",
    "crystal_system_order",
    "fetch_mp_templates",
    "retrieve_templates",
    "substitution_probability",
]

#: Constraint levels, strictest first (see the module docstring).
LEVELS: tuple[str, ...] = ("exact", "relaxed", "substitution")
#: Relative radius mismatch charged for a pair whose Shannon radius is not tabulated.
MISSING_RADIUS_MISMATCH: float = 0.25

_MATCH_COLUMNS = [
    "rank", "formula", "anonymous_formula", "oxidation_states", "valences", "template_id",
    "template_formula", "template_source", "crystal_system", "system_rank",
    "system_probability", "level", "mapping", "radius_mismatch", "cn_mismatch",
    "valence_mismatch", "score", "substitution_probability", "formation_energy_per_atom",
    "stable",
]


@dataclass(frozen=True)
class RetrievalSettings:
    """Settings of :func:`retrieve_templates` (defaults used throughout the package).

    Attributes:
        max_crystal_systems: Most predicted crystal systems searched.
        min_system_probability: Further systems need at least this probability.
        max_level: Loosest constraint level allowed (one of :data:`LEVELS`).
        substitution_radius_tol: Largest relative Shannon-radius difference of a
            cross-category pair at the ``substitution`` level.
        cn_weight: Weight of the relative CN difference in the score.
        valence_weight: Weight of the fraction of pairs with different oxidation states.
        max_formulas: Consider only the first formulas of the enumeration (None: all).
        max_matches: Keep at most this many ranked matches (None: all).
    """

    max_crystal_systems: int = 2
    min_system_probability: float = 0.05
    max_level: str = "substitution"
    substitution_radius_tol: float = 0.15
    cn_weight: float = 0.1
    valence_weight: float = 0.2
    max_formulas: int | None = None
    max_matches: int | None = 500

    def __post_init__(self) -> None:
        if self.max_level not in LEVELS:
            raise ConfigurationError(f"max_level must be one of {LEVELS}, got "
                                     f"{self.max_level!r}")
        if self.max_crystal_systems < 1:
            raise ConfigurationError("max_crystal_systems must be ≥ 1")


def crystal_system_order(
    probabilities: Mapping[str, float] | str,
    max_systems: int = 1,
    min_probability: float = 0.0,
) -> list[tuple[str, float]]:
    """The crystal systems to search, most probable first.

    Args:
        probabilities: System → probability (e.g. one row of the PXRD classifier's
            ``predict_proba``), or one system name (probability 1).
        max_systems: Most systems returned.
        min_probability: Systems after the first need at least this probability.

    Returns:
        ``[(system, probability), ...]`` with at least the most probable system.

    Raises:
        ConfigurationError: Unknown system names or no probabilities.
    """
    if isinstance(probabilities, str):
        probabilities = {probabilities: 1.0}
    clean: dict[str, float] = {}
    for name, p in dict(probabilities).items():
        key = str(name).strip().lower()
        if key not in CRYSTAL_SYSTEMS:
            raise ConfigurationError(f"unknown crystal system {name!r}; expected one of "
                                     f"{CRYSTAL_SYSTEMS}")
        clean[key] = float(p)
    if not clean:
        raise ConfigurationError("no crystal-system probabilities given")
    ranked = sorted(clean.items(), key=lambda kv: (-kv[1], CRYSTAL_SYSTEMS.index(kv[0])))
    out = [ranked[0]]
    out += [(s, p) for s, p in ranked[1:] if p >= min_probability][: max(0, max_systems - 1)]
    return out


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------


@dataclass
class _Caches:
    """Lazily computed per-template data, shared by the filtered copies of a database."""

    structures: dict[str, Structure] = field(default_factory=dict)
    amounts: dict[str, dict[str, int]] = field(default_factory=dict)
    valences: dict[str, dict[str, float] | None] = field(default_factory=dict)
    cns: dict[tuple[str, str], int | None] = field(default_factory=dict)
    site_states: dict[tuple[str, str], dict[int, float] | None] = field(default_factory=dict)


_TABLE_COLUMNS = ["material_id", "formula", "anonymous_formula", "crystal_system",
                  "formation_energy_per_atom", "source"]


class TemplateDatabase:
    """Known structures that serve as templates.

    Attributes:
        table: One row per structure: ``material_id``, ``formula`` (reduced),
            ``anonymous_formula``, ``crystal_system``, ``formation_energy_per_atom`` (NaN when
            absent), ``source`` (``"snapshot:<id>"``, ``"mp"``, ...).
        name: Description for tables and messages.
    """

    def __init__(self, table: pd.DataFrame, structures: Mapping[str, Structure | str],
                 sites: Mapping[str, list[dict[str, Any]] | None], *, name: str,
                 caches: _Caches | None = None) -> None:
        missing = set(_TABLE_COLUMNS) - set(table.columns)
        if missing:
            raise SnapshotError(f"template table of {name}: missing columns {sorted(missing)}")
        self.table = table[_TABLE_COLUMNS].reset_index(drop=True)
        self.name = name
        self._raw = structures
        self._sites = sites
        self._caches = caches or _Caches()
        self._index: dict[tuple[str, str], list[str]] | None = None
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"TemplateDatabase({self.name!r}, {len(self)} structures)"

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> TemplateDatabase:
        """Every structure of a loaded snapshot (with its per-site labels)."""
        m = snapshot.materials
        formulas = m["formula"].astype(str)
        anonymous = {f: Composition(f).anonymized_formula for f in set(formulas)}
        table = pd.DataFrame({
            "material_id": m["material_id"].astype(str),
            "formula": formulas,
            "anonymous_formula": formulas.map(anonymous),
            "crystal_system": m["crystal_system"],
            "formation_energy_per_atom": pd.to_numeric(m["formation_energy_per_atom"],
                                                       errors="coerce"),
            "source": f"snapshot:{str(snapshot.snapshot_id)[:12]}",
        })
        structures = dict(zip(table["material_id"], m["structure"], strict=True))
        sites = {mid: (None if raw is None or (isinstance(raw, float) and math.isnan(raw))
                       else json.loads(raw))
                 for mid, raw in zip(table["material_id"], m["sites"], strict=True)}
        missing = table["crystal_system"].isna()
        if missing.any():  # computed from the structure when the label is absent
            for i in np.flatnonzero(missing.to_numpy()):
                mid = table.at[i, "material_id"]
                table.at[i, "crystal_system"] = crystal_system(
                    Structure.from_dict(json.loads(structures[mid])))
        return cls(table, structures, sites, name=f"snapshot {snapshot.path}")

    @classmethod
    def from_records(cls, records: Sequence[Any], *, source: str,
                     name: str | None = None) -> TemplateDatabase:
        """Templates from :class:`~specfusion_lib.data.snapshot.MaterialRecord` objects.

        The crystal system is taken from the record's labels, or computed with spglib.
        """
        rows, structures, sites = [], {}, {}
        for rec in records:
            comp = rec.structure.composition
            system = rec.labels.get("crystal_system") or crystal_system(rec.structure)
            energy = rec.labels.get("formation_energy_per_atom")
            rows.append({"material_id": str(rec.material_id), "formula": comp.reduced_formula,
                         "anonymous_formula": comp.anonymized_formula,
                         "crystal_system": str(system).lower(),
                         "formation_energy_per_atom": math.nan if energy is None
                         else float(energy),
                         "source": source})
            structures[str(rec.material_id)] = rec.structure
            sites[str(rec.material_id)] = rec.sites
        table = pd.DataFrame(rows, columns=_TABLE_COLUMNS)
        return cls(table, structures, sites, name=name or source)

    def combine(self, other: TemplateDatabase) -> TemplateDatabase:
        """This database and ``other`` (entries of ``other`` with an id already here are
        dropped)."""
        extra = other.table[~other.table["material_id"].isin(self.table["material_id"])]
        table = pd.concat([self.table, extra], ignore_index=True)
        structures = {**other._raw, **self._raw}
        sites = {**other._sites, **self._sites}
        return TemplateDatabase(table, structures, sites, name=f"{self.name} + {other.name}")

    def without(self, material_ids: Iterable[str] = (),
                formula_systems: Iterable[tuple[str, str]] = ()) -> TemplateDatabase:
        """A copy without some entries (caches shared).

        Args:
            material_ids: Ids to remove.
            formula_systems: ``(reduced formula, crystal system)`` pairs to remove: every
                polymorph entry of that formula in that system goes.
        """
        ids = set(map(str, material_ids))
        pairs = {(f, str(s).lower()) for f, s in formula_systems}
        keep = ~self.table["material_id"].isin(ids)
        if pairs:
            keep &= ~pd.Series([(f, s) in pairs for f, s in zip(
                self.table["formula"], self.table["crystal_system"], strict=True)],
                index=self.table.index)
        return TemplateDatabase(self.table[keep], self._raw, self._sites,
                                name=self.name, caches=self._caches)

    def without_target(self, material_id: str) -> TemplateDatabase:
        """A copy without a target compound: its own entry and every entry with its reduced
        formula and crystal system (the benchmark of notebook 09)."""
        rows = self.table[self.table["material_id"] == str(material_id)]
        if rows.empty:
            raise SnapshotError(f"{self.name}: no entry {material_id!r}")
        row = rows.iloc[0]
        return self.without([material_id], [(row["formula"], row["crystal_system"])])

    def without_family(self, material_id: str, families: Mapping[str, str]) -> TemplateDatabase:
        """A copy without a target's whole structure family (every entry whose family in
        ``families`` is the target's) and, as :meth:`without_target`, every entry with its
        reduced formula and crystal system: the stricter variant of notebook 09.

        Raises:
            SnapshotError: The target is not an entry, or ``families`` does not know it.
        """
        rows = self.table[self.table["material_id"] == str(material_id)]
        if rows.empty:
            raise SnapshotError(f"{self.name}: no entry {material_id!r}")
        family = families.get(str(material_id))
        if family is None:
            raise SnapshotError(f"{self.name}: no structure family for {material_id!r}")
        members = [m for m in self.table["material_id"] if families.get(str(m)) == family]
        row = rows.iloc[0]
        return self.without(members, [(row["formula"], row["crystal_system"])])

    # ------------------------------------------------------------------ per-template data

    def structure(self, material_id: str) -> Structure:
        """The template's structure (parsed once)."""
        cache = self._caches.structures
        if material_id not in cache:
            if material_id not in self._raw:
                raise SnapshotError(f"{self.name}: no structure for {material_id!r}")
            raw = self._raw[material_id]
            cache[material_id] = (raw if isinstance(raw, Structure)
                                  else Structure.from_dict(json.loads(raw)))
        return cache[material_id]

    def amounts(self, material_id: str) -> dict[str, int]:
        """Element → count in the reduced formula."""
        cache = self._caches.amounts
        if material_id not in cache:
            formula = self.table.loc[self.table["material_id"] == material_id, "formula"]
            comp = Composition(formula.iloc[0]).reduced_composition
            cache[material_id] = {str(el): int(round(n)) for el, n in comp.items()}
        return cache[material_id]

    def valences(self, material_id: str) -> dict[str, float] | None:
        """Element → (mean) oxidation state of the template, or None when unassignable."""
        cache = self._caches.valences
        if material_id not in cache:
            cache[material_id] = self._compute_valences(material_id)
        return cache[material_id]

    def _compute_valences(self, material_id: str) -> dict[str, float] | None:
        sites = self._sites.get(material_id) or []
        fixed: dict[str, list[int]] = {}
        for s in sites:
            if s.get("oxidation_state") is not None:
                fixed.setdefault(str(s["element"]), []).append(int(s["oxidation_state"]))
        comp = Composition(self.amounts(material_id))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                guesses = comp.oxi_state_guesses(
                    oxi_states_override={k: sorted(set(v)) for k, v in fixed.items()},
                    max_sites=-50)
            except ValueError:
                guesses = ()
            if guesses:
                return {str(k): float(v) for k, v in guesses[0].items()}
            from pymatgen.analysis.bond_valence import BVAnalyzer

            structure = self.structure(material_id)
            try:
                values = BVAnalyzer().get_valences(structure)
            except ValueError:
                return None
        out: dict[str, list[float]] = {}
        for site, v in zip(structure, values, strict=True):
            out.setdefault(site.specie.symbol, []).append(float(v))
        return {el: float(np.mean(v)) for el, v in out.items()}

    def site_states(self, material_id: str, element: str) -> dict[int, float] | None:
        """State → fraction of ``element``'s sites in the template, from the per-site
        oxidation-state labels (multiplicity-weighted; ``{2: 1/3, 3: 2/3}`` for Fe in
        Fe3O4), or None when the template has no labels for the element."""
        key = (material_id, element)
        cache = self._caches.site_states
        if key not in cache:
            weights: dict[int, float] = {}
            for s in self._sites.get(material_id) or []:
                if s.get("element") == element and s.get("oxidation_state") is not None:
                    state = int(round(float(s["oxidation_state"])))
                    weights[state] = weights.get(state, 0.0) + float(s.get("multiplicity") or 1)
            total = sum(weights.values())
            cache[key] = ({q: w / total for q, w in sorted(weights.items())} if total > 0
                          else None)
        return cache[key]

    def coordination(self, material_id: str, element: str) -> int | None:
        """Multiplicity-weighted modal CN of ``element`` in the template.

        From the per-site labels when present, else CrystalNN on the element's first site.
        """
        key = (material_id, element)
        cache = self._caches.cns
        if key not in cache:
            labelled = [s for s in (self._sites.get(material_id) or [])
                        if s.get("element") == element and s.get("coordination_number")
                        is not None]
            if labelled:
                cache[key] = int(weighted_mode(
                    [float(s["coordination_number"]) for s in labelled],
                    [float(s.get("multiplicity") or 1) for s in labelled]))
            else:
                cache[key] = self._crystalnn(material_id, element)
        return cache[key]

    def _crystalnn(self, material_id: str, element: str) -> int | None:
        from specfusion_lib.data.structure_labels import site_coordination_numbers

        structure = self.structure(material_id)
        index = next((i for i, s in enumerate(structure) if s.specie.symbol == element), None)
        if index is None:
            return None
        with warnings.catch_warnings():  # CrystalNN warns when it falls back to atomic radii
            warnings.simplefilter("ignore", UserWarning)
            return int(site_coordination_numbers(structure, [index])[index])

    def anonymous_formulas(self, crystal_system_name: str) -> set[str]:
        """Anonymous formulas of the templates in one crystal system."""
        self.lookup(crystal_system_name, "")
        assert self._index is not None
        return {anon for (system, anon) in self._index if system == crystal_system_name}

    def lookup(self, crystal_system_name: str, anonymous_formula: str) -> list[str]:
        """Ids of the templates with this crystal system and anonymous formula."""
        if self._index is None:
            index: dict[tuple[str, str], list[str]] = {}
            for mid, system, anon in zip(self.table["material_id"],
                                         self.table["crystal_system"],
                                         self.table["anonymous_formula"], strict=True):
                index.setdefault((str(system), str(anon)), []).append(str(mid))
            self._index = index
        return self._index.get((crystal_system_name, anonymous_formula), [])

    def row(self, material_id: str) -> pd.Series:
        """The table row of a template."""
        if self._positions is None:
            self._positions = {str(m): i for i, m in enumerate(self.table["material_id"])}
        if material_id not in self._positions:
            raise SnapshotError(f"{self.name}: no entry {material_id!r}")
        return self.table.iloc[self._positions[material_id]]


# --------------------------------------------------------------------------------------------
# Materials Project
# --------------------------------------------------------------------------------------------

#: Summary fields requested for MP templates.
MP_TEMPLATE_FIELDS: tuple[str, ...] = ("material_id", "structure", "symmetry",
                                       "formation_energy_per_atom")


def fetch_mp_templates(
    anonymous_formulas: Sequence[str],
    crystal_systems: Sequence[str],
    *,
    api_key: str | None = None,
    client: Any = None,
    max_results: int = 2000,
) -> TemplateDatabase:
    """Templates from the Materials Project (``mp-api``), for users with ``MP_API_KEY``.

    One summary query per crystal system, with every anonymous formula at once (the API
    accepts anonymous formulas such as ``ABC2D5``), non-deprecated entries only.

    Args:
        anonymous_formulas: Anonymous formulas of the enumerated candidates.
        crystal_systems: Crystal systems to search.
        api_key: API key (default ``$MP_API_KEY``).
        client: An object with the ``MPRester`` interface (``client.materials.summary.search``);
            default a new ``mp_api.client.MPRester``. Tests pass a fake.
        max_results: Stop after this many structures per crystal system.

    Returns:
        A :class:`TemplateDatabase` of source ``"mp"``.

    Raises:
        MissingAPIKeyError: No key and no client.
        DataSourceError: The request failed.
    """
    from specfusion_lib.data.mp import resolve_api_key, summary_doc_to_record

    systems = [str(s).lower() for s in crystal_systems]
    formulas = sorted(set(anonymous_formulas))
    if not formulas or not systems:
        return TemplateDatabase.from_records([], source="mp", name="Materials Project")
    if client is None:
        from mp_api.client import MPRester

        key = resolve_api_key(api_key)
        with MPRester(api_key=key, mute_progress_bars=True) as rester:
            return fetch_mp_templates(formulas, systems, client=rester,
                                      max_results=max_results)
    from emmet.core.symmetry import CrystalSystem

    records = []
    for system in systems:
        try:
            docs = client.materials.summary.search(
                formula=formulas, crystal_system=CrystalSystem(system.capitalize()),
                deprecated=False, fields=list(MP_TEMPLATE_FIELDS), num_chunks=None,
                chunk_size=min(1000, max_results))
        except Exception as exc:  # mp-api raises its own and requests' errors
            raise DataSourceError(
                f"Materials Project template query ({system}, {len(formulas)} anonymous "
                f"formulas) failed: {type(exc).__name__}: {exc}") from exc
        for doc in list(docs)[:max_results]:
            records.append(summary_doc_to_record(doc))
    return TemplateDatabase.from_records(records, source="mp", name="Materials Project")


# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalResult:
    """Ranked templates of every enumerated formula.

    Attributes:
        table: One row per (formula, assignment, template) with its best element mapping,
            best first: ``rank``, ``formula``, ``anonymous_formula``, ``oxidation_states``,
            ``valences`` (target element → state), ``template_id``, ``template_formula``,
            ``template_source``, ``crystal_system``,
            ``system_rank``, ``system_probability``, ``level``, ``mapping`` (target element
            → template element), ``radius_mismatch``, ``cn_mismatch``,
            ``valence_mismatch``, ``score``, ``substitution_probability``,
            ``formation_energy_per_atom``, ``stable``.
        crystal_systems: The systems searched, ``[(system, probability), ...]``.
        n_formulas: Formulas considered.
        database: Name of the template database.
    """

    table: pd.DataFrame
    crystal_systems: list[tuple[str, float]]
    n_formulas: int
    database: str

    def __len__(self) -> int:
        return len(self.table)

    @property
    def best(self) -> pd.Series | None:
        """The top-ranked match, or None when nothing matched."""
        return None if self.table.empty else self.table.iloc[0]

    def per_formula(self) -> pd.DataFrame:
        """The best template of each formula (formulas in rank order)."""
        return self.table.drop_duplicates("formula").reset_index(drop=True)


@dataclass(frozen=True)
class _Pair:
    level: int
    radius: float
    cn_diff: float
    valence_diff: bool


def _mean_radius(element: str, states: Mapping[int, float], cn: int | None) -> float | None:
    """Site-fraction-weighted Shannon radius of an element over its states (None when one is
    not tabulated)."""
    total = 0.0
    for q, fraction in states.items():
        r = shannon_radius(element, q, cn)
        if r is None:
            return None
        total += fraction * r
    return total


def _same_states(a: Mapping[int, float], b: Mapping[int, float], tol: float = 0.02) -> bool:
    return set(a) == set(b) and all(abs(a[q] - b[q]) <= tol for q in a)


def _signs_agree(q: Valence, q_t: float) -> bool:
    """Whether a target state and a template state are both cations or both anions."""
    return bool(np.sign(float(q)) == np.sign(q_t))


def _pair(target: str, q: Valence, cn_pred: int | None, template: str, q_t: float,
          t_states: Mapping[int, float] | None, cn_t: int | None, tol: float) -> _Pair | None:
    """Classify one (target element, template element) pair; None when impossible.

    The states compared are per site: the target's (one state, or the two of a mixed
    valence with their site fractions) against the template element's per-site labels
    (``t_states``) when it has them, else its mean state ``q_t``."""
    if not _signs_agree(q, q_t):
        return None
    same_type = element_type(target) == element_type(template)
    states = site_fractions(q)
    cn_target = cn_pred if cn_pred is not None else cn_t
    r_e = _mean_radius(target, states, cn_target)
    if t_states:
        r_t = _mean_radius(template, t_states, cn_t)
        valence_diff = not _same_states(states, t_states)
    else:
        r_t = shannon_radius(template, int(round(q_t)), cn_t)
        valence_diff = not math.isclose(float(q), q_t, abs_tol=1e-6)
    if target == template and not valence_diff and cn_target == cn_t:
        mismatch = 0.0
    elif r_e is None or r_t is None:
        mismatch = MISSING_RADIUS_MISMATCH
    else:
        mismatch = abs(r_e - r_t) / r_t
    cn_diff = (abs(cn_pred - cn_t) / cn_pred if cn_pred and cn_t is not None else 0.0)
    if same_type and not valence_diff and cn_diff == 0.0:
        level = 0
    elif same_type:
        level = 1
    elif (Element(target).group == Element(template).group
          or (r_e is not None and r_t is not None and abs(r_e - r_t) / r_t <= tol)):
        level = 2
    else:
        return None
    return _Pair(level, mismatch, cn_diff, valence_diff)


def _mappings(target_amounts: Mapping[str, int],
              template_amounts: Mapping[str, int]) -> Iterable[dict[str, str]]:
    """Every bijection target element → template element that preserves counts."""
    by_count_t: dict[int, list[str]] = {}
    for el, n in template_amounts.items():
        by_count_t.setdefault(n, []).append(el)
    by_count_e: dict[int, list[str]] = {}
    for el, n in target_amounts.items():
        by_count_e.setdefault(n, []).append(el)
    if sorted((n, len(v)) for n, v in by_count_e.items()) != sorted(
            (n, len(v)) for n, v in by_count_t.items()):
        return
    groups = [(by_count_e[n], by_count_t[n]) for n in sorted(by_count_e)]
    for choice in itertools.product(*(itertools.permutations(t) for _, t in groups)):
        mapping: dict[str, str] = {}
        for (targets, _), perm in zip(groups, choice, strict=True):
            mapping.update(zip(targets, perm, strict=True))
        yield mapping


def _best_mapping(
    amounts: Mapping[str, int], valences: Mapping[str, Valence],
    cns: Mapping[str, int], template_id: str, db: TemplateDatabase,
    settings: RetrievalSettings, max_level: int,
) -> tuple[dict[str, str], int, float, float, float, float] | None:
    t_amounts = db.amounts(template_id)
    t_valences = db.valences(template_id)
    if t_valences is None:
        return None
    best = None
    for mapping in _mappings(amounts, t_amounts):
        # the pairs that need no template CN first, and a TM's CN (CrystalNN on a template
        # element without a label, ~10 ms) only once its states have the same sign: a mapping
        # that fails elsewhere never pays for it
        found: dict[str, _Pair] = {}
        for el, t_el in sorted(mapping.items(), key=lambda kv: kv[0] in TRANSITION_METALS):
            is_tm = el in TRANSITION_METALS
            q_t = t_valences.get(t_el, 0.0)
            if not _signs_agree(valences[el], q_t):
                break
            cn_t = db.coordination(template_id, t_el) if is_tm else None
            pair = _pair(el, valences[el], cns.get(el) if is_tm else None, t_el, q_t,
                         db.site_states(template_id, t_el), cn_t,
                         settings.substitution_radius_tol)
            if pair is None or pair.level > max_level:
                break
            found[el] = pair
        else:
            pairs = [(amounts[el], el, found[el]) for el in mapping]
            total = float(sum(n for n, _, _ in pairs))
            level = max(p.level for _, _, p in pairs)
            radius = sum(n * p.radius for n, _, p in pairs) / total
            tm_pairs = [p for _, el, p in pairs if el in TRANSITION_METALS]
            cn_mis = float(np.mean([p.cn_diff for p in tm_pairs])) if tm_pairs else 0.0
            val_mis = sum(p.valence_diff for _, _, p in pairs) / len(pairs)
            score = radius + settings.cn_weight * cn_mis + settings.valence_weight * val_mis
            candidate = (mapping, level, radius, cn_mis, val_mis, score)
            if best is None or (level, score) < (best[1], best[5]):
                best = candidate
    return best


@functools.cache
def _substitution_model() -> Any:
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionProbability,
    )

    return SubstitutionProbability()


def substitution_probability(mapping: Mapping[str, str], valences: Mapping[str, Valence],
                             template_states: Mapping[str, Mapping[int, float]]) -> float:
    """Conditional probability that the target ions replace the template ions of
    ``mapping`` (module docstring).

    Args:
        mapping: Target element → template element.
        valences: Target element → state (or :class:`~specfusion_lib.inference.formulas.
            MixedValence`).
        template_states: Template element → {state: site fraction}.
    """
    log_p = 0.0
    for el, t_el in mapping.items():
        for q, f in site_fractions(valences[el]).items():
            for q_t, f_t in template_states[t_el].items():
                log_p += f * f_t * _log_cond_prob(el, int(q), t_el, int(q_t))
    return float(math.exp(log_p))


@functools.cache
def _log_cond_prob(element: str, state: int, template_element: str, template_state: int
                   ) -> float:
    from pymatgen.core import Species

    model = _substitution_model()
    s1, s2 = Species(element, state), Species(template_element, template_state)
    # an ion missing from the table: pymatgen's default weight exp(alpha)
    p = (model.cond_prob(s1, s2) if model.get_px(s2) > 0
         else math.exp(float(getattr(model, "alpha", -5.0))))
    return math.log(max(p, 1e-300))


def _template_states(db: TemplateDatabase, template_id: str,
                     elements: Iterable[str]) -> dict[str, dict[int, float]]:
    valences = db.valences(template_id) or {}
    return {el: db.site_states(template_id, el) or {int(round(valences.get(el, 0.0))): 1.0}
            for el in elements}


def retrieve_templates(
    enumeration: FormulaEnumeration,
    database: TemplateDatabase,
    crystal_system_probabilities: Mapping[str, float] | str,
    coordination_numbers: Mapping[str, int] | None = None,
    settings: RetrievalSettings | None = None,
) -> RetrievalResult:
    """Find and rank the templates of every enumerated formula (module docstring).

    Args:
        enumeration: Output of :func:`~specfusion_lib.inference.formulas.enumerate_formulas`.
        database: Known structures (remove the target first when benchmarking).
        crystal_system_probabilities: Predicted system → probability, or one system.
        coordination_numbers: Predicted CN of each transition metal (may be partial).
        settings: Constraint and ranking settings.

    Returns:
        A :class:`RetrievalResult`; its table is empty when no template satisfies even the
        loosest allowed level.

    Raises:
        ConfigurationError: Unknown crystal systems or a CN for an element not in the
            enumeration.
    """
    s = settings or RetrievalSettings()
    systems = crystal_system_order(crystal_system_probabilities, s.max_crystal_systems,
                                   s.min_system_probability)
    cns = {str(k): int(v) for k, v in (coordination_numbers or {}).items() if v is not None}
    unknown = set(cns) - set(enumeration.elements)
    if unknown:
        raise ConfigurationError(f"coordination numbers given for {sorted(unknown)}, which "
                                 f"are not among {' '.join(enumeration.elements)}")
    max_level = LEVELS.index(s.max_level)
    formulas = enumeration.table if s.max_formulas is None else \
        enumeration.table.head(s.max_formulas)
    rows = []
    for system_rank, (system, prob) in enumerate(systems):
        present = database.anonymous_formulas(system)
        for _, frow in formulas[formulas["anonymous_formula"].isin(present)].iterrows():
            ids = database.lookup(system, frow["anonymous_formula"])
            amounts = {el: int(frow[el]) for el in enumeration.elements}
            for a in frow["assignment_ids"]:
                valences = enumeration.combinations[a]
                for tid in ids:
                    best = _best_mapping(amounts, valences, cns, tid, database, s, max_level)
                    if best is None:
                        continue
                    mapping, level, radius, cn_mis, val_mis, score = best
                    p_sub = substitution_probability(
                        mapping, valences, _template_states(database, tid, mapping.values()))
                    trow = database.row(tid)
                    energy = float(trow["formation_energy_per_atom"])
                    rows.append({
                        "formula": frow["formula"],
                        "anonymous_formula": frow["anonymous_formula"],
                        "oxidation_states": format_valences(valences),
                        "valences": dict(valences),
                        "template_id": tid, "template_formula": trow["formula"],
                        "template_source": trow["source"], "crystal_system": system,
                        "system_rank": system_rank, "system_probability": prob,
                        "level": LEVELS[level], "_level": level, "mapping": mapping,
                        "radius_mismatch": radius, "cn_mismatch": cn_mis,
                        "valence_mismatch": val_mis, "score": score,
                        "substitution_probability": p_sub,
                        "formation_energy_per_atom": energy,
                        "stable": not (math.isfinite(energy) and energy >= 0),
                    })
    table = pd.DataFrame(rows, columns=[*_MATCH_COLUMNS[1:], "_level"])
    if not table.empty:
        table = table.sort_values(
            ["system_rank", "_level", "stable", "score", "template_formula", "template_id",
             "formula"], ascending=[True, True, False, True, True, True, True],
            kind="stable").reset_index(drop=True)
        if s.max_matches is not None:
            table = table.head(s.max_matches)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.drop(columns="_level")
    return RetrievalResult(table[_MATCH_COLUMNS], systems, len(formulas), database.name)
