"""The demo structure pool: prototypes shipped in PyPI packages, substituted, relaxed with CHGNet.

SPEC §3 source 2 (``demo``) needs a pool of crystal structures that the project builds itself,
without the Materials Project: at least 1,500 charge-balanced compounds with 2–5 elements, at
least one transition metal (Sc–Zn, Y–Cd, :data:`specfusion_lib.core.elements.TRANSITION_METALS`) and
no noble gas, relaxed with CHGNet. This module builds that pool in three steps that can be
run, inspected and resumed separately.

Method
------
**1. Prototypes** (:func:`load_prototypes`). Two structure libraries ship inside installed
packages:

* pymatgen's AFLOW prototype library, ``pymatgen/analysis/prototypes/aflow_prototypes.json.gz``
  (288 structures of the AFLOW Library of Crystallographic Prototypes, Mehl et al., Comput.
  Mater. Sci. 136, S1 (2017)), the data behind ``AflowPrototypeMatcher``;
* robocrys' mineral database, ``robocrys/condense/mineral_db.json.gz`` (180 structures with
  mineral names, used by robocrys' ``MineralMatcher``).

The robocrys database is a subset of the AFLOW library: every one of its 180 structures is
identical (``StructureMatcher``) to the AFLOW entry of the same label. Each prototype therefore
has one primary source (the AFLOW library) and records in ``also_in`` when robocrys ships it
too; the mineral name comes from either. A prototype is keyed ``"<aflow label>:<formula>"``
(the label alone is not unique: marcasite FeS2 and hydrophilite CaCl2 share one).

A few structures the named compounds need are not in either library (pyrochlore,
brownmillerite, pseudobrookite, V2O5, Ln2TiO5, chromates). They are built with
``Structure.from_spacegroup`` from published lattice parameters and Wyckoff positions, see
:data:`TEXTBOOK_STRUCTURES` (source ``"textbook"``; the reference is stored with each entry).
They are starting points for the CHGNet relaxation, which refines them.

**2. Candidates** (:func:`candidate_structures`, pure and deterministic, no relaxation).

* *Oxidation states of a prototype*: bond valence (``BVAnalyzer``) on the structure; when it
  fails, the first integer guess of ``Composition.oxi_state_guesses``. Prototypes that admit
  neither (metals and intermetallics) cannot be substituted ionically and are skipped, as are
  molecular crystals and hydrides (:data:`EXCLUDED_PROTOTYPE_FORMULAS`, anything with H).
* *Named compounds* (:data:`NAMED_COMPOUNDS`): every compound the paper and the notebooks
  refer to by name, each built from one stated prototype by an element substitution (or from
  a textbook structure). They come first and are never dropped by a cap.
* *Rule "prototype"*: the prototype itself, if it already satisfies the selection.
* *Rule "substitution_probability"*: pymatgen's data-mined substitution model
  (``SubstitutionPredictor``, Hautier et al., Inorg. Chem. 50, 656 (2011)) proposes new
  species lists for the prototype's species with a joint probability above
  ``PoolSettings.probability_threshold``.
* *Rules "same_group" / "ionic_radius"*: one or two species are replaced by species of the
  same oxidation state whose Shannon ionic radius (``Species.ionic_radius``) differs by at
  most ``same_group_radius_tol`` (same periodic-table group) or ``radius_tol`` (any group).
* *Selection* of every substituted structure: charge balanced (the species charges sum to
  zero) with plausible oxidation states: for a transition metal any state the ICSD has seen
  (``Element.icsd_oxidation_states``), for any other element one of its common states
  (``Element.common_oxidation_states``; this removes La2+, In+ and the like); 2–5
  elements, ≥ 1 transition metal, no noble gas, only elements of
  :data:`ALLOWED_ELEMENTS` (Z ≤ 83 without H, Tc, Pm and noble gases), at most
  ``max_sites`` sites in the primitive cell (default 40, to bound FEFF and CHGNet cost).
* *Volume*: the substituted cell is rescaled by reference lattice scaling, lengths ∝ the
  sum over sites of the Shannon ionic radii (atomic radii where an ionic one is missing):
  V = V_prototype · (Σ r_new / Σ r_old)³, clamped to :data:`VOLUME_SCALE_LIMITS`, so that
  the relaxation starts near the right density (see :func:`_scale_volume`).
* *Order and caps*: inside a prototype the candidates are ordered prototype first, then the
  probability-ranked and radius-ranked lists interleaved (ties broken by a seeded shuffle);
  at most ``per_prototype_cap`` per prototype. The pool takes the named compounds, then one
  candidate of each prototype in turn (round robin, prototypes in key order) until
  ``max_candidates``, so a partial relaxation run still covers every structure type.
* *Deduplication*: a candidate is dropped when ``StructureMatcher`` (default tolerances)
  finds it equivalent to an earlier one with the same reduced formula (grouping by formula
  keeps this fast); the earlier, higher-priority candidate wins.

**3. Relaxation** (:func:`relax_candidates`): CHGNet (``chgnet.model.StructOptimizer``, the
pretrained weights ship in the ``chgnet`` package, CPU), FIRE with the Fréchet cell filter
(positions and cell), ``fmax`` 0.1 eV/Å, at most 300 steps. A run is *converged* when the
optimiser stopped before the step limit. Each outcome is written atomically (temporary file
+ rename) as one JSON file ``records/<key>.json`` where the key is the SHA-256 of the
unrelaxed structure (rounded lattice, species, fractional coordinates) and of the relaxation
settings (:meth:`PoolSettings.relax_fingerprint`), so a rerun skips finished work and a change
of settings relaxes again. Failures are stored too, with their reason. The record keeps the
final structure, CHGNet's total energy and energy per atom, and its magnetic moment per site
(μB; used for ``is_magnetic``).

**Physical checks** (:func:`~specfusion_lib.simulate.relax.assess_relaxation`), applied when
a record is written and again by :func:`load_pool` with the current settings (so thresholds
can change without relaxing again). A relaxed structure is dropped when the relaxation did
not converge within the step limit (reason ``not_converged``) or when it fails a check of
:mod:`specfusion_lib.simulate.relax` (volume change, minimum distance, density, energy).

:func:`write_index` summarises the cache in ``index.json`` (counts per source and rule,
failures by reason, named compounds present, time per relaxation).

Command line (one process; resumable; stops cleanly on SIGINT/SIGTERM or after
``--max-minutes``)::

    python -m specfusion_lib.data.demo_pool --out data/demo_build/pool --max-minutes 40
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gzip
import hashlib
import json
import logging
import math
import os
import random
import signal
import statistics
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from importlib import metadata
from itertools import combinations, product
from pathlib import Path
from typing import Any

from pymatgen.core import Composition, Element, Lattice, Species, Structure
from tqdm.auto import tqdm

from specfusion_lib.core.atomic import atomic_write_bytes, atomic_write_text
from specfusion_lib.core.elements import NOBLE_GASES, TRANSITION_METALS
from specfusion_lib.core.errors import ChargeBalanceError, ConfigurationError, SimulationError
from specfusion_lib.core.logs import configure_logging
from specfusion_lib.simulate.relax import (
    Relaxer,
    RelaxOutcome,
    RelaxSettings,
    assess_relaxation,
    chgnet_relaxer,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ALLOWED_ELEMENTS",
    "EXCLUDED_PROTOTYPE_FORMULAS",
    "NAMED_COMPOUNDS",
    "NOT_BUILT",
    "SOURCES",
    "TEXTBOOK_STRUCTURES",
    "Candidate",
    "NamedCompound",
    "PoolEntry",
    "PoolSettings",
    "Prototype",
    "RelaxOutcome",
    "RelaxReport",
    "TextbookStructure",
    "assess_relaxation",
    "candidate_structures",
    "chgnet_relaxer",
    "deduplicate",
    "experiment_compounds",
    "load_candidates",
    "load_pool",
    "load_prototypes",
    "main",
    "named_candidates",
    "relax_candidates",
    "save_candidates",
    "selection_reason",
    "structure_hash",
    "write_index",
]

# --------------------------------------------------------------------------------------------
# Constants (one table)
# --------------------------------------------------------------------------------------------

#: Version of the record / index / candidate-file layout.
SCHEMA_VERSION = 1
#: Version of the candidate-generation rules; part of the candidate-list fingerprint, so a
#: saved list is rebuilt when the rules change. Bump it with every change of the rules.
RULES_VERSION = 2
#: Source identifiers: package data files the prototypes come from.
SOURCE_AFLOW = "pymatgen:analysis/prototypes/aflow_prototypes.json.gz"
SOURCE_ROBOCRYS = "robocrys:condense/mineral_db.json.gz"
SOURCE_TEXTBOOK = "textbook"
SOURCES: tuple[str, ...] = (SOURCE_AFLOW, SOURCE_ROBOCRYS, SOURCE_TEXTBOOK)
#: Candidate rules, in priority order.
RULES: tuple[str, ...] = ("named", "prototype", "substitution_probability", "same_group",
                          "ionic_radius")
#: Elements a candidate may contain: Z ≤ 83 (Bi), without H (hydrides and hydroxides are
#: outside the paper's selection), Tc and Pm (no stable isotope) and the noble gases.
ALLOWED_ELEMENTS: frozenset[str] = frozenset(
    Element.from_Z(z).symbol for z in range(1, 84)
) - {"H", "Tc", "Pm"} - NOBLE_GASES
#: Prototypes that are molecular crystals (no ionic substitution makes sense) by formula.
EXCLUDED_PROTOTYPE_FORMULAS: frozenset[str] = frozenset(
    {"CO", "CNCl", "KCSN", "KAg(CN)2", "SiF4", "N2", "O2", "Cl2", "I2"}
)
#: Allowed ratio (scaled volume / prototype volume) of the radius-based volume rescaling.
VOLUME_SCALE_LIMITS: tuple[float, float] = (0.5, 2.0)
#: Folder and file names inside the cache folder.
RECORDS_DIR = "records"
INDEX_FILE = "index.json"
CANDIDATES_FILE = "candidates.json.gz"
#: Decimals kept when hashing a structure (lattice in Å, fractional coordinates).
HASH_DECIMALS = 5


@dataclass(frozen=True)
class PoolSettings:
    """Every number that defines the pool (defaults are the published demo pool's).

    Attributes:
        probability_threshold: Minimum joint probability of a ``SubstitutionPredictor``
            proposal (pymatgen's default is 1e-3).
        same_group_radius_tol: Maximum relative difference of Shannon ionic radii for a
            substitution within the same periodic-table group.
        radius_tol: Maximum relative radius difference for a substitution across groups.
        radius_options: Number of closest-radius substitutes per species used for double
            substitutions.
        max_sites: Maximum number of sites of the primitive cell (FEFF and CHGNet cost).
        min_elements: Minimum number of elements.
        max_elements: Maximum number of elements.
        per_prototype_cap: Maximum number of candidates taken from one prototype.
        max_candidates: Maximum size of the candidate list (named compounds included).
        seed: Seed of the shuffle that breaks ties inside a prototype's candidate list.
        relax: CHGNet relaxation settings and the physical-check thresholds.
    """

    probability_threshold: float = 1e-3
    same_group_radius_tol: float = 0.25
    radius_tol: float = 0.10
    radius_options: int = 6
    max_sites: int = 40
    min_elements: int = 2
    max_elements: int = 5
    per_prototype_cap: int = 80
    max_candidates: int = 3000
    seed: int = 0
    relax: RelaxSettings = RelaxSettings()

    def candidate_fingerprint(self) -> str:
        """SHA-256 of the settings that define the candidate list."""
        keys = ("probability_threshold", "same_group_radius_tol", "radius_tol",
                "radius_options", "max_sites", "min_elements", "max_elements",
                "per_prototype_cap", "max_candidates", "seed")
        return _sha256_json({k: getattr(self, k) for k in keys}
                            | {"schema": SCHEMA_VERSION, "rules": RULES_VERSION})

    def relax_fingerprint(self) -> dict[str, Any]:
        """Settings and software that determine a relaxation's result (part of its cache key).

        The physical-check thresholds are deliberately not part of it: they are re-applied
        when the pool is loaded.
        """
        r = self.relax
        return {"fmax": r.fmax, "max_steps": r.max_steps, "relax_cell": r.relax_cell,
                "optimizer": "FIRE", "filter": "FrechetCellFilter",
                "chgnet": _version("chgnet"), "schema": SCHEMA_VERSION}


# --------------------------------------------------------------------------------------------
# Textbook structures and named compounds
# --------------------------------------------------------------------------------------------

_ORTHO = (90.0, 90.0, 90.0)


@dataclass(frozen=True)
class TextbookStructure:
    """A structure built with ``Structure.from_spacegroup`` from published crystal data.

    Attributes:
        name: Key in :data:`TEXTBOOK_STRUCTURES`.
        spacegroup: Hermann–Mauguin symbol with origin choice where it matters.
        lattice: (a, b, c, α, β, γ) in Å and degrees.
        species: Species of the asymmetric unit.
        coords: Fractional coordinates of the asymmetric unit.
        reference: Where the structure type and the numbers are described.
    """

    name: str
    spacegroup: str
    lattice: tuple[float, float, float, float, float, float]
    species: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]
    reference: str

    def structure(self) -> Structure:
        """The structure (primitive cell)."""
        conv = Structure.from_spacegroup(self.spacegroup, Lattice.from_parameters(*self.lattice),
                                         list(self.species), [list(c) for c in self.coords])
        return conv.get_primitive_structure()


#: Textbook structures, all checked to give sensible cation–anion distances and a
#: bond-valence charge-balanced decoration before relaxation.
TEXTBOOK_STRUCTURES: dict[str, TextbookStructure] = {
    t.name: t for t in (
        TextbookStructure(
            "brownmillerite-Ca2MnAlO5", "Pnma", (5.4253, 14.7687, 5.5980, *_ORTHO),
            ("Ca", "Mn", "Al", "O", "O", "O"),
            ((0.0209, 0.1083, 0.4811), (0.0, 0.0, 0.0), (0.9468, 0.25, 0.9341),
             (0.2617, 0.9843, 0.2382), (0.0242, 0.1409, 0.0708), (0.8719, 0.25, 0.6155)),
            "brownmillerite Ca2Fe2O5 (Colville, Acta Cryst. B26, 1469 (1970); Pnma setting) "
            "with Mn3+ on the octahedral 4a and Al3+ on the tetrahedral 4c site, the "
            "ordering found in Ca2Al(x)(Fe,Mn)(2-x)O5 (Stöber et al., J. Solid State Chem. "
            "197, 420 (2013))"),
        TextbookStructure(
            "Ln2TiO5-Y2TiO5", "Pnma", (10.35, 3.70, 11.25, *_ORTHO),
            ("Y", "Y", "Ti", "O", "O", "O", "O", "O"),
            ((0.1160, 0.25, 0.2236), (0.1376, 0.25, 0.5578), (0.1758, 0.25, 0.8834),
             (0.4888, 0.25, 0.1035), (0.2575, 0.25, 0.0420), (0.3130, 0.25, 0.7595),
             (0.0175, 0.25, 0.7420), (0.2540, 0.25, 0.3935)),
            "orthorhombic Ln2TiO5 type, Pnma, TiO5 square pyramids (Mumme & Wadsley, Acta "
            "Cryst. B24, 1327 (1968)); Y2TiO5 cell a 10.35, b 3.70, c 11.25 Å"),
        TextbookStructure(
            "pyrochlore-Y2Ti2O7", "Fd-3m:2", (10.095, 10.095, 10.095, *_ORTHO),
            ("Y", "Ti", "O", "O"),
            ((0.5, 0.5, 0.5), (0.0, 0.0, 0.0), (0.3284, 0.125, 0.125), (0.375, 0.375, 0.375)),
            "cubic pyrochlore, origin choice 2: Y 16d, Ti 16c, O 48f (x 0.328), O' 8b "
            "(Subramanian et al., Prog. Solid State Chem. 15, 55 (1983))"),
        TextbookStructure(
            "pseudobrookite-TiFe2O5", "Cmcm", (3.732, 9.793, 9.979, *_ORTHO),
            ("Fe", "Ti", "O", "O", "O"),
            ((0.0, 0.1355, 0.5652), (0.0, 0.1915, 0.25), (0.0, 0.7721, 0.25),
             (0.0, 0.0466, 0.1149), (0.0, 0.3123, 0.0693)),
            "pseudobrookite Fe2TiO5, Cmcm (Bbmm) with Fe 8f, Ti 4c (Pauling, Z. Kristallogr. "
            "73, 97 (1930); Tiedemann et al., Z. Kristallogr. 158, 239 (1982)); the ordered "
            "end member"),
        TextbookStructure(
            "V2O5", "Pmmn:2", (11.512, 3.564, 4.368, *_ORTHO),
            ("V", "O", "O", "O"),
            ((0.10118, 0.25, 0.89166), (0.1043, 0.25, 0.531), (0.0689, 0.75, 0.003),
             (0.25, 0.25, 0.001)),
            "orthorhombic V2O5 (shcherbinaite), Pmmn origin choice 2 (Enjalbert & Galy, Acta "
            "Cryst. C42, 1467 (1986))"),
        TextbookStructure(
            "beta-K2SO4-K2CrO4", "Pnma", (7.662, 5.919, 10.391, *_ORTHO),
            ("K", "K", "Cr", "O", "O", "O"),
            ((0.1768, 0.25, 0.0818), (-0.0115, 0.25, 0.7046), (0.2358, 0.25, 0.4155),
             (0.0315, 0.25, 0.4032), (0.2970, 0.25, 0.5579), (0.2997, 0.0410, 0.3484)),
            "beta-K2SO4 (arcanite) type: atomic coordinates of K2SO4 (Robinson, J. Phys. Chem. "
            "62, 925 (1958), Pnam transformed to Pnma) in the K2CrO4 cell (a 7.662, b 5.919, "
            "c 10.391 Å); the relaxation adjusts the Cr–O bonds"),
        TextbookStructure(
            "Na2CrO4", "Cmcm", (5.861, 9.259, 7.138, *_ORTHO),
            ("Na", "Na", "Cr", "O", "O"),
            ((0.0, 0.0, 0.0), (0.0, 0.6777, 0.25), (0.0, 0.3521, 0.25), (0.2338, 0.4580, 0.25),
             (0.0, 0.25, 0.0622)),
            "orthorhombic Na2CrO4, Cmcm (Na2SO4-III type; Nimmo, Acta Cryst. B37, 431 "
            "(1981))"),
    )
}


@dataclass(frozen=True)
class NamedCompound:
    """A compound the paper or the notebooks name, and how the pool builds it.

    Attributes:
        formula: Reduced formula as pymatgen writes it.
        roles: Where it is used (paper figure, notebook, experiment.csv).
        prototype: ``"<aflow label>:<formula>"`` of :func:`load_prototypes` or
            ``"textbook:<name>"`` of :data:`TEXTBOOK_STRUCTURES`.
        substitution: Element replacements applied to every site of the element.
        partial: Ordered replacements ``(old, new, count)``: the first ``count`` sites of
            ``old`` (in site order of the prototype) become ``new``; used where a compound
            orders two cations on one prototype site.
        note: Choice of prototype, reference and caveats.
    """

    formula: str
    roles: tuple[str, ...]
    prototype: str
    substitution: tuple[tuple[str, str], ...] = ()
    partial: tuple[tuple[str, str, int], ...] = ()
    note: str = ""


_RS = "AB_cF8_225_a_b:NaCl"
_COR = "A2B3_hR10_167_c_e:Al2O3"
_RUT = "A2B_tP6_136_f_a:TiO2"
_SPI = "A2BC4_cF56_227_d_a_e:MgAl2O4"
_PEROV = "AB3C_oP20_62_c_cd_a:CaTiO3"
_LAY = "ABC2_hR4_166_a_b_c:NaCrS2"
_EXP = "experiment.csv"

#: The named compounds (SPEC §6–7 and the issue), in build order. Each is always part of the
#: candidate list; :data:`NOT_BUILT` lists the ones that could not be built.
NAMED_COMPOUNDS: tuple[NamedCompound, ...] = (
    NamedCompound("Ca2MnAlO5", ("walkthrough Fig. S22-S24",), "textbook:brownmillerite-Ca2MnAlO5",
                  note="brownmillerite, see TEXTBOOK_STRUCTURES"),
    NamedCompound("CaMnAlO4", ("walkthrough Fig. S22-S24",), _SPI, (("Mg", "Ca"),),
                  (("Al", "Mn", 2),),
                  note="no experimental structure is known to us; the AB2O4 spinel prototype "
                       "(MgAl2O4) with Ca on the tetrahedral site and Mn3+/Al3+ ordered on "
                       "the octahedral sites (2 of the 4 B sites of the primitive cell) is "
                       "used as the walkthrough's alternative candidate"),
    NamedCompound("Y2TiO5", ("Grad-CAM Fig. 3",), "textbook:Ln2TiO5-Y2TiO5"),
    NamedCompound("Y2Ti2O7", ("Grad-CAM Fig. 3",), "textbook:pyrochlore-Y2Ti2O7"),
    NamedCompound("YTiO3", ("Grad-CAM Fig. 3",), _PEROV, (("Ca", "Y"),),
                  note="orthorhombic GdFeO3-type perovskite (Pnma), as YTiO3 (Maclean et al., "
                       "J. Solid State Chem. 30, 35 (1979))"),
    NamedCompound("TiFe2O5", ("Table 1", "Fig. 6"), "textbook:pseudobrookite-TiFe2O5"),
    NamedCompound("MnS", ("Table 1", "Fig. 6"), _RS, (("Na", "Mn"), ("Cl", "S")),
                  note="rocksalt alabandite"),
    NamedCompound("ZnFe2O4", ("Table 1", "Fig. 6"), _SPI, (("Mg", "Zn"), ("Al", "Fe")),
                  note="normal spinel (franklinite)"),
    NamedCompound("CoFe2O4", ("Table 1", "Fig. 6"), _SPI, (("Mg", "Co"), ("Al", "Fe")),
                  note="spinel with the normal cation arrangement; real CoFe2O4 is largely "
                       "inverse (Co on octahedral sites), which needs a lower-symmetry "
                       "ordering"),
    NamedCompound("V2O5", ("Table 1", "Fig. 6", _EXP), "textbook:V2O5"),
    NamedCompound("Co2O3", ("Table 1", "Fig. 6"), _COR, (("Al", "Co"),),
                  note="corundum type"),
    NamedCompound("Co3O4", ("Table 1", "Fig. 6"), _SPI, (("Mg", "Co"), ("Al", "Co")),
                  note="normal spinel, Co2+ tetrahedral and Co3+ octahedral"),
    NamedCompound("Cu2O", ("Table 1", "Fig. 6"), "A2B_cP6_224_b_a:Cu2O", note="cuprite"),
    NamedCompound("TiO2", ("Table 1", "Fig. 6"), _RUT, note="rutile"),
    NamedCompound("DyCrO3", ("Fig. S25",), _PEROV, (("Ca", "Dy"), ("Ti", "Cr")),
                  note="orthorhombic GdFeO3-type perovskite (Pnma)"),
    NamedCompound("CuInS2", ("Fig. S25",), "ABC2_tI16_122_a_b_d:FeCuS2", (("Fe", "In"),),
                  note="chalcopyrite"),
    NamedCompound("Cu2ZnSnS4", ("Fig. S25 (ZnCu2SnS4)",), "A2BC4D_tI16_121_d_a_i_b:FeCu2SnS4",
                  (("Fe", "Zn"),),
                  note="stannite-type cation order (I-42m); kesterite (I-4) differs only in "
                       "the Cu/Zn order"),
    NamedCompound("VO", (_EXP,), _RS, (("Na", "V"), ("Cl", "O")), note="rocksalt"),
    NamedCompound("V2O3", (_EXP,), _COR, (("Al", "V"),), note="corundum (karelianite)"),
    NamedCompound("VO2", (_EXP,), _RUT, (("Ti", "V"),),
                  note="rutile-type (R) VO2; the room-temperature M1 phase is a monoclinic "
                       "distortion of it"),
    NamedCompound("K2CrO4", (_EXP,), "textbook:beta-K2SO4-K2CrO4"),
    NamedCompound("Na2CrO4", (_EXP,), "textbook:Na2CrO4"),
    NamedCompound("Cr2O3", (_EXP,), _COR, (("Al", "Cr"),), note="corundum (eskolaite)"),
    NamedCompound("Mn3O4", (_EXP,), "A3B4_tI28_141_ad_h:Mn3O4", note="hausmannite"),
    NamedCompound("Mn2O3", (_EXP,), "AB3C6_cI80_206_a_d_e:Mn3FeO6", (("Fe", "Mn"),),
                  note="bixbyite (cubic Ia-3 setting; alpha-Mn2O3 is a slight orthorhombic "
                       "distortion)"),
    NamedCompound("MnO", (_EXP,), _RS, (("Na", "Mn"), ("Cl", "O")), note="rocksalt (manganosite)"),
    NamedCompound("MnO2", (_EXP,), _RUT, (("Ti", "Mn"),), note="rutile (pyrolusite)"),
    NamedCompound("Fe2O3", (_EXP,), _COR, (("Al", "Fe"),), note="corundum (hematite)"),
    NamedCompound("FeO", (_EXP,), _RS, (("Na", "Fe"), ("Cl", "O")), note="rocksalt (wüstite)"),
    NamedCompound("Ni2O3", (_EXP,), _COR, (("Al", "Ni"),),
                  note="corundum type; the measured Ni2O3 is poorly crystalline, MP's mvc-894 "
                       "is a hypothetical structure"),
    NamedCompound("CuO", (_EXP,), "AB_mC8_15_c_e:CuO", note="tenorite"),
    NamedCompound("ZnO", (_EXP,), "AB_hP4_186_b_b:ZnS", (("S", "O"),), note="wurtzite (zincite)"),
    NamedCompound("CdO", (_EXP,), _RS, (("Na", "Cd"), ("Cl", "O")), note="rocksalt (monteponite)"),
    NamedCompound("LiCoO2", (_EXP,), _LAY, (("Na", "Li"), ("Cr", "Co"), ("S", "O")),
                  note="layered alpha-NaFeO2 type (R-3m)"),
    NamedCompound("NiO", (_EXP,), _RS, (("Na", "Ni"), ("Cl", "O")), note="rocksalt (bunsenite)"),
    NamedCompound("LiNiO2", (_EXP,), _LAY, (("Na", "Li"), ("Cr", "Ni"), ("S", "O")),
                  note="layered alpha-NaFeO2 type (R-3m)"),
)

#: Transition-metal compounds of experiment.csv that the pool does not build, with the reason.
NOT_BUILT: dict[str, str] = {
    "K2Cr2O7": "triclinic P-1 (Z = 4, 44 atoms, 22 independent positions) or monoclinic "
               "C2/c; no prototype of this type ships in the installed packages and the "
               "atomic coordinates were not available offline",
}


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Prototype:
    """A prototype structure from a package's structure library.

    Attributes:
        key: ``"<aflow label>:<reduced formula>"``.
        label: AFLOW prototype label.
        formula: Reduced formula of the prototype.
        mineral: Mineral or common name ("" when the library has none).
        structure: The structure as shipped.
        source: Primary source (:data:`SOURCE_AFLOW`).
        also_in: Other sources shipping the same structure.
    """

    key: str
    label: str
    formula: str
    mineral: str
    structure: Structure
    source: str
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Candidate:
    """An unrelaxed pool candidate and its provenance.

    Attributes:
        structure: Unrelaxed structure (no oxidation-state decoration), volume rescaled.
        formula: Reduced formula.
        oxidation_states: Average oxidation state per element (sums to zero with the
            composition).
        rule: One of :data:`RULES`.
        source: Primary source of the prototype (:data:`SOURCES`).
        prototype: Prototype key (or ``"textbook:<name>"``).
        mineral: Mineral name of the prototype, "" when none.
        parent_formula: Formula of the prototype.
        substitution: Applied replacements, ``{"Mg2+": "Zn2+"}`` (species or elements).
        score: Substitution probability (rule ``substitution_probability``), minus the sum
            of relative radius differences (radius rules), 1.0 otherwise.
        named: The named compound's formula when this is one, else "".
        also_in: Other sources shipping the prototype.
        reference: Reference or note.
    """

    structure: Structure
    formula: str
    oxidation_states: dict[str, float]
    rule: str
    source: str
    prototype: str
    mineral: str = ""
    parent_formula: str = ""
    substitution: dict[str, str] = field(default_factory=dict)
    score: float = 1.0
    named: str = ""
    also_in: tuple[str, ...] = ()
    reference: str = ""

    @property
    def candidate_id(self) -> str:
        """Stable id from the structure hash: ``demo-<12 hex digits>``."""
        return f"demo-{structure_hash(self.structure)[:12]}"

    def provenance(self) -> dict[str, Any]:
        """JSON-able provenance (everything but the structure)."""
        return {"candidate_id": self.candidate_id, "formula": self.formula,
                "oxidation_states": self.oxidation_states, "rule": self.rule,
                "source": self.source, "also_in": list(self.also_in),
                "prototype": self.prototype, "mineral": self.mineral,
                "parent_formula": self.parent_formula, "substitution": self.substitution,
                "score": self.score, "named": self.named, "reference": self.reference}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (provenance + structure)."""
        return self.provenance() | {"structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict`."""
        return cls(structure=Structure.from_dict(d["structure"]), formula=d["formula"],
                   oxidation_states=d["oxidation_states"], rule=d["rule"], source=d["source"],
                   prototype=d["prototype"], mineral=d["mineral"],
                   parent_formula=d["parent_formula"], substitution=d["substitution"],
                   score=d["score"], named=d["named"], also_in=tuple(d["also_in"]),
                   reference=d["reference"])

    def cache_key(self, settings: PoolSettings) -> str:
        """Content address of this candidate's relaxation: structure + relaxation settings."""
        return _sha256_json({"structure": structure_hash(self.structure),
                             "relax": settings.relax_fingerprint()})


@dataclass
class RelaxReport:
    """Summary of one :func:`relax_candidates` call.

    Attributes:
        total: Candidates given.
        cached: Candidates whose record already existed (skipped).
        relaxed: Relaxations run now.
        ok: Records written now that passed every check.
        failed: Records written now that failed (not converged, exception, unphysical).
        remaining: Candidates left when the call stopped early (time budget, signal).
        seconds: Wall time of each relaxation run now.
        stopped: Why the call stopped early ("" when it finished).
    """

    total: int = 0
    cached: int = 0
    relaxed: int = 0
    ok: int = 0
    failed: int = 0
    remaining: int = 0
    seconds: list[float] = field(default_factory=list)
    stopped: str = ""

    @property
    def seconds_per_relaxation(self) -> float:
        """Mean wall time of the relaxations run now (NaN when none)."""
        return statistics.fmean(self.seconds) if self.seconds else math.nan


@dataclass(frozen=True, eq=False)
class PoolEntry:
    """A relaxed structure of the pool that passed every check.

    Attributes:
        candidate_id: Stable id (``demo-…``) of the unrelaxed candidate.
        formula: Reduced formula.
        structure: CHGNet-relaxed structure.
        energy_per_atom: CHGNet energy, eV/atom.
        magmoms: CHGNet magnetic moment per site (μB), site order of ``structure``.
        provenance: Source, prototype, mineral, substitution, rule, named compound, ….
        metrics: Volume change, minimum distance, density, steps, seconds.
        key: Cache key (record file name).
    """

    candidate_id: str
    formula: str
    structure: Structure
    energy_per_atom: float
    magmoms: list[float] | None
    provenance: dict[str, Any]
    metrics: dict[str, Any]
    key: str

    def to_material_record(self) -> Any:
        """A :class:`~specfusion_lib.data.snapshot.MaterialRecord` with structure labels.

        Only labels exact for the structure are set (``density``, ``crystal_system``);
        model labels are added by the snapshot builder.
        """
        from specfusion_lib.data.snapshot import MaterialRecord
        from specfusion_lib.data.structure_labels import crystal_system

        return MaterialRecord(self.candidate_id, self.structure,
                              {"density": float(self.structure.density),
                               "crystal_system": crystal_system(self.structure)})


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def structure_hash(structure: Structure) -> str:
    """SHA-256 of a structure's content, insensitive to float noise and decoration.

    Method: lattice matrix rounded to :data:`HASH_DECIMALS` decimals (Å), element symbols
    (oxidation states dropped), fractional coordinates wrapped into [0, 1) and rounded; the
    sites are sorted so that their order does not matter.
    """
    def r(x: float) -> float:
        return round(float(x), HASH_DECIMALS) + 0.0

    lattice = [[r(x) for x in row] for row in structure.lattice.matrix]
    sites = sorted(
        (site.specie.symbol if hasattr(site.specie, "symbol") else str(site.specie),
         *[r(r(c) % 1.0) for c in site.frac_coords])
        for site in structure
    )
    return _sha256_json({"lattice": lattice, "sites": sites})


def _symbol(sp: Any) -> str:
    return sp.symbol if hasattr(sp, "symbol") else str(sp)


def selection_reason(composition: Composition, n_sites: int,
                     settings: PoolSettings | None = None) -> str | None:
    """Why a composition is outside the pool's selection, or ``None`` when it is inside.

    The selection (SPEC §3): ``min_elements``–``max_elements`` elements, at least one
    transition metal (Sc–Zn, Y–Cd), no noble gas, only :data:`ALLOWED_ELEMENTS`, at most
    ``max_sites`` sites.
    """
    s = settings or PoolSettings()
    elements = {_symbol(el) for el in composition.elements}
    if not s.min_elements <= len(elements) <= s.max_elements:
        return f"{len(elements)} elements (allowed {s.min_elements}-{s.max_elements})"
    if not elements & TRANSITION_METALS:
        return "no transition metal"
    if elements & NOBLE_GASES:
        return "contains a noble gas"
    if not elements <= ALLOWED_ELEMENTS:
        return f"element(s) not allowed: {sorted(elements - ALLOWED_ELEMENTS)}"
    if n_sites > s.max_sites:
        return f"{n_sites} sites (max {s.max_sites})"
    return None


def _decorate(structure: Structure) -> Structure | None:
    """Oxidation-state decorated copy: bond valence, else the first integer guess."""
    from pymatgen.analysis.bond_valence import BVAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return BVAnalyzer().get_oxi_state_decorated_structure(structure)
        except (ValueError, RuntimeError):
            pass
        guesses = structure.composition.oxi_state_guesses(max_sites=-50)
    for guess in guesses:
        if all(float(v).is_integer() for v in guess.values()):
            out = structure.copy()
            out.add_oxidation_state_by_element({k: int(v) for k, v in guess.items()})
            return out
    return None


def _average_oxidation_states(decorated: Structure) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    for site in decorated:
        total[site.specie.symbol] += float(site.specie.oxi_state)
        count[site.specie.symbol] += 1
    return {el: round(total[el] / count[el], 6) for el in sorted(total)}


def _charge(decorated: Structure) -> float:
    return float(sum(site.specie.oxi_state for site in decorated))


def _site_radius(sp: Any) -> float:
    """Shannon ionic radius of a species (Å), its element's atomic radius when unknown."""
    q = getattr(sp, "oxi_state", None)
    r = _radius(_symbol(sp), int(q)) if q is not None and float(q).is_integer() else None
    if r is None:
        r = float(Element(_symbol(sp)).atomic_radius or 1.5)
    return r


def _scale_volume(new: Structure, parent: Structure) -> Structure:
    """Rescale ``new`` from its isostructural ``parent`` (both decorated, same site order).

    Reference lattice scaling: lengths scale with the sum over sites of the ionic radii,
    V_new = V_parent · (Σ_i r_new,i / Σ_i r_parent,i)³, the ratio clamped to
    :data:`VOLUME_SCALE_LIMITS`. (pymatgen's ``RLSVolumePredictor`` sums over *species*
    with n^(1/3) weights, which is not invariant when two species of the parent become one,
    e.g. Mn3FeO6 → Mn2O3; the per-site sum is.)
    """
    if len(new) != len(parent):
        return new.copy()
    num = sum(_site_radius(site.specie) for site in new)
    den = sum(_site_radius(site.specie) for site in parent)
    lo, hi = VOLUME_SCALE_LIMITS
    ratio = min(max((num / den) ** 3, lo), hi)
    out = new.copy()
    out.scale_lattice(parent.volume * ratio)
    return out


def _undecorated(structure: Structure) -> Structure:
    out = structure.copy()
    out.remove_oxidation_states()
    for key in list(out.site_properties):
        out.remove_site_property(key)
    return out


# --------------------------------------------------------------------------------------------
# Prototypes
# --------------------------------------------------------------------------------------------


_AFLOW_FILE = "pymatgen/analysis/prototypes/aflow_prototypes.json.gz"
_ROBOCRYS_FILE = "robocrys/condense/mineral_db.json.gz"
_EXPERIMENT_FILE = "maml/apps/rfxas/experiment.csv"


def _package_file(distribution: str, relpath: str) -> Path:
    """Path of a data file inside an installed distribution, without importing the package.

    (Importing ``pymatgen.analysis.prototypes`` parses all 288 prototypes with BibTeX
    validation and importing ``robocrys`` pulls in its text generator: 25 s together.)
    """
    try:
        path = Path(str(metadata.distribution(distribution).locate_file(relpath)))
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"package {distribution!r} is not installed") from exc
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data file of {distribution!r} not found")
    return path


@cache
def _load_prototypes() -> tuple[Prototype, ...]:
    with gzip.open(_package_file("pymatgen", _AFLOW_FILE), "rt", encoding="utf-8") as fh:
        entries = json.load(fh)
    robocrys: dict[str, str] = {}
    try:
        with gzip.open(_package_file("robocrys", _ROBOCRYS_FILE), "rt", encoding="utf-8") as fh:
            db = json.load(fh)
        cols = db["columns"]
        for label, row in zip(db["index"], db["data"], strict=True):
            rec = dict(zip(cols, row, strict=True))
            formula = Structure.from_dict(rec["structure"]).composition.reduced_formula
            robocrys[f"{label}:{formula}"] = rec["mineral"] or ""
    except FileNotFoundError:  # robocrys is optional for loading: provenance only
        pass
    out: dict[str, Prototype] = {}
    for entry in entries:
        structure = Structure.from_dict(entry["snl"])
        label = entry["tags"]["aflow"]
        formula = structure.composition.reduced_formula
        key = f"{label}:{formula}"
        if key in out:
            raise SimulationError(f"{SOURCE_AFLOW}: prototype key {key!r} is not unique")
        also = (SOURCE_ROBOCRYS,) if key in robocrys else ()
        mineral = entry["tags"].get("mineral") or robocrys.get(key, "")
        out[key] = Prototype(key, label, formula, mineral, structure, SOURCE_AFLOW, also)
    return tuple(out[k] for k in sorted(out))


def load_prototypes() -> dict[str, Prototype]:
    """All AFLOW prototypes shipped with pymatgen, robocrys membership recorded.

    Returns:
        Prototype key (``"<aflow label>:<formula>"``) → :class:`Prototype`, sorted by key.
        The robocrys mineral database adds no structure of its own (it is a subset), only
        the ``also_in`` mark and mineral names.
    """
    return {p.key: p for p in _load_prototypes()}


def _prototype_structure(key: str) -> tuple[Structure, str, str, str, tuple[str, ...], str]:
    """(structure, source, mineral, parent formula, also_in, reference) of a prototype key."""
    if key.startswith("textbook:"):
        name = key.split(":", 1)[1]
        if name not in TEXTBOOK_STRUCTURES:
            raise ConfigurationError(f"unknown textbook structure {name!r}")
        t = TEXTBOOK_STRUCTURES[name]
        s = t.structure()
        return s, SOURCE_TEXTBOOK, "", s.composition.reduced_formula, (), t.reference
    protos = load_prototypes()
    if key not in protos:
        raise ConfigurationError(f"unknown prototype {key!r}")
    p = protos[key]
    return p.structure, p.source, p.mineral, p.formula, p.also_in, "AFLOW prototype " + p.label


# --------------------------------------------------------------------------------------------
# Named compounds
# --------------------------------------------------------------------------------------------


def _transfer_oxidation_states(new: Structure, parent: Structure | None) -> Structure | None:
    """Decorate ``new`` with the oxidation states of the isostructural ``parent``, site by site.

    Accepted only when the result is charge neutral and every (element, state) pair is one
    the ICSD has seen; otherwise None.
    """
    if parent is None or len(parent) != len(new):
        return None
    out = new.copy()
    for i, (site, ref) in enumerate(zip(new, parent, strict=True)):
        q = getattr(ref.specie, "oxi_state", None)
        if q is None or not float(q).is_integer() or int(q) not in _icsd_states(
                _symbol(site.specie)):
            return None
        out.replace(i, Species(_symbol(site.specie), int(q)), properties=None)
    return out if abs(_charge(out)) < 1e-6 else None


def _decorate_named(new: Structure, parent_dec: Structure | None) -> Structure | None:
    """Oxidation states of a named compound: parent's site states, else guesses / BV.

    Order: (1) the prototype's site oxidation states carried over to the substituted sites
    (Mg2+ → Co2+, Al3+ → Co3+ gives Co3O4 its two sites); (2) the first integer guess of
    ``Composition.oxi_state_guesses`` for the new composition (LiNiO2 → Ni3+); (3) bond
    valence on the new structure.
    """
    out = _transfer_oxidation_states(new, parent_dec)
    if out is not None:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guesses = new.composition.oxi_state_guesses(max_sites=-50)
    for guess in guesses:
        if all(float(v).is_integer() for v in guess.values()):
            out = new.copy()
            out.add_oxidation_state_by_element({k: int(v) for k, v in guess.items()})
            return out
    return _decorate(new)


def _build_named(named: NamedCompound, settings: PoolSettings) -> Candidate:
    parent, source, mineral, parent_formula, also_in, reference = _prototype_structure(
        named.prototype)
    new = parent.copy()
    for old, new_el, count in named.partial:
        idx = [i for i, site in enumerate(new) if site.specie.symbol == old][:count]
        if len(idx) < count:
            raise ConfigurationError(f"{named.formula}: prototype has fewer than {count} {old}")
        for i in idx:
            new.replace(i, new_el, properties=None)
    if named.substitution:
        new.replace_species(dict(named.substitution))
    formula = new.composition.reduced_formula
    if Composition(formula) != Composition(named.formula):
        raise ConfigurationError(f"named compound {named.formula}: built {formula}")
    substituted = bool(named.substitution or named.partial)
    parent_dec = (_decorated_prototype(named.prototype) if not named.prototype.startswith(
        "textbook:") else _decorate(parent)) if substituted else None
    decorated = _decorate_named(new, parent_dec) if substituted else _decorate(new)
    if decorated is None or abs(_charge(decorated)) > 1e-6:
        raise ChargeBalanceError(f"named compound {named.formula}: no charge-balanced "
                                 "oxidation states for the built structure")
    structure = _scale_volume(decorated, parent_dec) if parent_dec is not None else new
    sub = {a: b for a, b in named.substitution}
    sub |= {f"{a}[{c} sites]": b for a, b, c in named.partial}
    return Candidate(
        structure=_undecorated(structure), formula=formula,
        oxidation_states=_average_oxidation_states(decorated), rule="named", source=source,
        prototype=named.prototype, mineral=mineral, parent_formula=parent_formula,
        substitution=sub, score=1.0, named=named.formula, also_in=also_in,
        reference="; ".join(x for x in (reference, named.note) if x))


def named_candidates(settings: PoolSettings | None = None) -> list[Candidate]:
    """Build every compound of :data:`NAMED_COMPOUNDS` (unrelaxed, volume rescaled).

    Raises:
        ChargeBalanceError: A built structure cannot be charge balanced (a table error).
        ConfigurationError: The table names an unknown prototype or the wrong formula.
    """
    s = settings or PoolSettings()
    return [_build_named(n, s) for n in NAMED_COMPOUNDS]


# --------------------------------------------------------------------------------------------
# Substitution candidates
# --------------------------------------------------------------------------------------------


@cache
def _icsd_states(symbol: str) -> frozenset[int]:
    return frozenset(int(x) for x in Element(symbol).icsd_oxidation_states)


@cache
def _radius(symbol: str, charge: int) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = Species(symbol, charge).ionic_radius
        except (ValueError, KeyError):
            return None
    return float(r) if r else None


@cache
def _group(symbol: str) -> int:
    return int(Element(symbol).group)


def _radius_substitutes(sp: Species, settings: PoolSettings) -> list[tuple[Species, float, str]]:
    """Same-charge species with a similar Shannon radius: (species, |Δr|/r, rule)."""
    q = sp.oxi_state
    if q is None or not float(q).is_integer():
        return []
    q = int(q)
    r0 = _radius(sp.symbol, q)
    if r0 is None:
        return []
    out = []
    for el in sorted(ALLOWED_ELEMENTS):
        if el == sp.symbol or q not in _icsd_states(el):
            continue
        r = _radius(el, q)
        if r is None:
            continue
        rel = abs(r / r0 - 1.0)
        same = _group(el) == _group(sp.symbol)
        if rel <= (settings.same_group_radius_tol if same else settings.radius_tol):
            out.append((Species(el, q), rel, "same_group" if same else "ionic_radius"))
    out.sort(key=lambda t: (t[1], str(t[0])))
    return out


@cache
def _predictor(threshold: float) -> Any:
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionPredictor,
    )

    return SubstitutionPredictor(threshold=threshold)


def _probability_maps(species: Sequence[Species], settings: PoolSettings
                      ) -> list[tuple[dict[Species, Species], float]]:
    predictor = _predictor(settings.probability_threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            preds = predictor.list_prediction(list(species), to_this_composition=False)
        except ValueError:  # a species the probability model does not know
            return []
    out = []
    for p in preds:
        mapping = {old: new for old, new in p["substitutions"].items()}
        if all(old == new for old, new in mapping.items()):
            continue
        out.append((mapping, float(p["probability"])))
    out.sort(key=lambda t: (-t[1], sorted((str(k), str(v)) for k, v in t[0].items())))
    return out


def _radius_maps(species: Sequence[Species], settings: PoolSettings
                 ) -> list[tuple[dict[Species, Species], float, str]]:
    options = {sp: _radius_substitutes(sp, settings) for sp in species}
    out: list[tuple[dict[Species, Species], float, str]] = []
    for sp in species:
        for new, rel, rule in options[sp]:
            out.append(({sp: new}, -rel, rule))
    for a, b in combinations(species, 2):
        for (na, ra, rula), (nb, rb, rulb) in product(options[a][: settings.radius_options],
                                                      options[b][: settings.radius_options]):
            if na == nb:
                continue
            rule = "same_group" if rula == rulb == "same_group" else "ionic_radius"
            out.append(({a: na, b: nb}, -(ra + rb), rule))
    return out


@cache
def _decorated_prototype(key: str) -> Structure | None:
    """Oxidation-state decorated prototype structure (cached; None when impossible)."""
    return _decorate(load_prototypes()[key].structure)


def _prototype_usable(proto: Prototype, settings: PoolSettings) -> Structure | None:
    """Decorated prototype structure, or None when it cannot be used for substitution."""
    s = proto.structure
    if proto.formula in EXCLUDED_PROTOTYPE_FORMULAS or len(s.composition) < settings.min_elements:
        return None
    if len(s) > settings.max_sites or not s.is_ordered:
        return None
    if "H" in {el.symbol for el in s.composition.elements}:
        return None
    decorated = _decorated_prototype(proto.key)
    return None if decorated is None else decorated.copy()


def _apply(decorated: Structure, mapping: dict[Species, Species]) -> Structure:
    out = decorated.copy()
    out.replace_species(dict(mapping))
    return out


@cache
def _common_states(symbol: str) -> frozenset[int]:
    return frozenset(int(x) for x in Element(symbol).common_oxidation_states)


def _plausible_state(symbol: str, q: float | None) -> bool:
    """TMs: any ICSD-observed state; other elements: a common state (no La2+, In+, ...)."""
    if q is None or not float(q).is_integer():
        return False
    allowed = _icsd_states(symbol) if symbol in TRANSITION_METALS else _common_states(symbol)
    return int(q) in allowed


def _valid_substituted(new: Structure, settings: PoolSettings) -> bool:
    if abs(_charge(new)) > 1e-6:
        return False
    if not all(_plausible_state(sp.symbol, sp.oxi_state) for sp in new.composition):
        return False
    return selection_reason(new.composition, len(new), settings) is None


def _prototype_candidates(proto: Prototype, settings: PoolSettings) -> list[Candidate]:
    """Ordered, filtered, capped candidates derived from one prototype (unscaled volume)."""
    decorated = _prototype_usable(proto, settings)
    if decorated is None:
        return []
    species = sorted(set(decorated.species), key=str)
    base = dict(source=proto.source, prototype=proto.key, mineral=proto.mineral,
                parent_formula=proto.formula, also_in=proto.also_in,
                reference=f"AFLOW prototype {proto.label}")
    head: list[Candidate] = []
    if abs(_charge(decorated)) < 1e-6 and _valid_substituted(decorated, settings):
        head.append(Candidate(structure=decorated, formula=proto.formula,
                              oxidation_states=_average_oxidation_states(decorated),
                              rule="prototype", **base))
    lists: list[list[Candidate]] = [[], []]
    for mapping, prob in _probability_maps(species, settings):
        new = _apply(decorated, mapping)
        if _valid_substituted(new, settings):
            lists[0].append(Candidate(
                structure=new, formula=new.composition.reduced_formula,
                oxidation_states=_average_oxidation_states(new),
                rule="substitution_probability",
                substitution={str(k): str(v) for k, v in mapping.items() if k != v},
                score=prob, **base))
    for mapping, score, rule in _radius_maps(species, settings):
        new = _apply(decorated, mapping)
        if _valid_substituted(new, settings):
            lists[1].append(Candidate(
                structure=new, formula=new.composition.reduced_formula,
                oxidation_states=_average_oxidation_states(new), rule=rule,
                substitution={str(k): str(v) for k, v in mapping.items()}, score=score,
                **base))
    rng = random.Random(f"{settings.seed}:{proto.key}")
    for lst in lists:
        # stable sort by score after a seeded shuffle: ties are broken reproducibly at random
        rng.shuffle(lst)
        lst.sort(key=lambda c: -c.score)
    ordered = head[:]
    seen = {_site_signature(c.structure) for c in head}
    for pair in zip(*lists, strict=False):
        for c in pair:
            sig = _site_signature(c.structure)
            if sig not in seen:
                seen.add(sig)
                ordered.append(c)
    longer = lists[0] if len(lists[0]) > len(lists[1]) else lists[1]
    for c in longer[min(len(lists[0]), len(lists[1])):]:
        sig = _site_signature(c.structure)
        if sig not in seen:
            seen.add(sig)
            ordered.append(c)
    return ordered[: settings.per_prototype_cap]


def _site_signature(structure: Structure) -> tuple[str, ...]:
    return tuple(_symbol(site.specie) for site in structure)


def _finalise(c: Candidate, proto: Prototype) -> Candidate:
    """Rescale the volume from the prototype and drop the decoration."""
    parent = _decorated_prototype(proto.key)
    scaled = _scale_volume(c.structure, parent) if c.rule != "prototype" and parent else (
        c.structure)
    return replace(c, structure=_undecorated(scaled))


def deduplicate(candidates: Iterable[Candidate], matcher: Any = None,
                keep: Iterable[Candidate] = ()) -> list[Candidate]:
    """Drop candidates equivalent to an earlier one (first occurrence wins).

    Method: candidates are grouped by reduced formula and each new candidate is compared
    with ``StructureMatcher.fit`` (pymatgen defaults: ltol 0.2, stol 0.3, angle_tol 5°,
    primitive cell, volume scaled) against the kept ones of its formula only.

    Args:
        candidates: In priority order.
        matcher: A ``StructureMatcher`` (default tolerances when None).
        keep: Already accepted candidates to compare against (not returned).

    Returns:
        The kept candidates of ``candidates``, order preserved.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    sm = matcher or StructureMatcher()
    groups: dict[str, list[Structure]] = defaultdict(list)
    for c in keep:
        groups[c.formula].append(c.structure)
    out = []
    for c in candidates:
        group = groups[c.formula]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if any(sm.fit(c.structure, other) for other in group):
                continue
        group.append(c.structure)
        out.append(c)
    return out


def candidate_structures(settings: PoolSettings | None = None, *,
                         prototypes: Iterable[str] | None = None, include_named: bool = True,
                         progress: bool = False) -> list[Candidate]:
    """The ordered, deduplicated candidate list (pure; no relaxation).

    Args:
        settings: Pool settings (defaults when None).
        prototypes: Prototype keys to expand (default: every AFLOW prototype).
        include_named: Put the :data:`NAMED_COMPOUNDS` first.
        progress: Show a tqdm bar over the prototypes.

    Returns:
        Named compounds, then the prototypes' candidates in round-robin order, at most
        ``settings.max_candidates`` (named compounds are never cut), duplicates removed.
        Deterministic: the same settings and package versions give the same list.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    s = settings or PoolSettings()
    protos = load_prototypes()
    keys = sorted(protos) if prototypes is None else sorted(set(prototypes))
    unknown = [k for k in keys if k not in protos]
    if unknown:
        raise ConfigurationError(f"unknown prototype key(s) {unknown}")
    matcher = StructureMatcher()
    groups: dict[str, list[Structure]] = defaultdict(list)
    out: list[Candidate] = []

    def accept(cand: Candidate) -> bool:
        group = groups[cand.formula]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if any(matcher.fit(cand.structure, other) for other in group):
                return False
        group.append(cand.structure)
        out.append(cand)
        return True

    if include_named:
        for cand in named_candidates(s):
            accept(cand)
    queues: dict[str, list[Candidate]] = {}
    for key in tqdm(keys, desc="prototypes", disable=not progress):
        cands = _prototype_candidates(protos[key], s)
        if cands:
            queues[key] = cands[::-1]  # pop() from the end = take in order
    limit = max(s.max_candidates, len(out))
    while queues and len(out) < limit:
        for key in list(queues):
            if len(out) >= limit:
                break
            queue = queues[key]
            while queue and not accept(_finalise(queue.pop(), protos[key])):
                pass
            if not queue:
                del queues[key]
    return out


def save_candidates(candidates: Sequence[Candidate], path: str | os.PathLike[str],
                    settings: PoolSettings | None = None) -> Path:
    """Write a candidate list as gzipped JSON (atomically), tagged with the settings."""
    s = settings or PoolSettings()
    payload = {"schema": SCHEMA_VERSION, "fingerprint": s.candidate_fingerprint(),
               "settings": asdict(s), "candidates": [c.to_dict() for c in candidates]}
    out = Path(path)
    atomic_write_bytes(out, gzip.compress(json.dumps(payload).encode(), mtime=0))
    return out


def load_candidates(path: str | os.PathLike[str], settings: PoolSettings | None = None
                    ) -> list[Candidate] | None:
    """Read a candidate list; ``None`` when missing or built with other settings."""
    p = Path(path)
    if not p.is_file():
        return None
    payload = json.loads(gzip.decompress(p.read_bytes()))
    s = settings or PoolSettings()
    if payload.get("fingerprint") != s.candidate_fingerprint():
        return None
    return [Candidate.from_dict(d) for d in payload["candidates"]]


# --------------------------------------------------------------------------------------------
# Relaxation
# --------------------------------------------------------------------------------------------


def _record_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / RECORDS_DIR / f"{key}.json"


def _relax_one(c: Candidate, relaxer: Relaxer, settings: PoolSettings) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec: dict[str, Any] = {
        "schema": SCHEMA_VERSION, "key": c.cache_key(settings), "provenance": c.provenance(),
        "relax_settings": settings.relax_fingerprint(),
        "initial_structure": c.structure.as_dict(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        outcome = relaxer(c.structure)
    except Exception as exc:  # noqa: BLE001 - any simulator failure is recorded, not fatal
        rec |= {"status": "failed", "reason": f"exception: {type(exc).__name__}: {exc}"[:500],
                "seconds": round(time.perf_counter() - t0, 3)}
        return rec
    final = _undecorated(outcome.structure)
    epa = outcome.energy / len(final)
    reason, metrics = assess_relaxation(c.structure, final, epa, settings.relax)
    if not outcome.converged:
        reason = (f"not_converged: {outcome.n_steps} steps, max force "
                  f"{outcome.max_force:.3f} eV/Å > fmax {settings.relax.fmax}")
    rec |= {
        "status": "ok" if reason is None else "failed", "reason": reason,
        "converged": outcome.converged, "n_steps": outcome.n_steps,
        "max_force": None if math.isnan(outcome.max_force) else round(outcome.max_force, 5),
        "energy": outcome.energy, "energy_per_atom": epa, "magmoms": outcome.magmoms,
        "final_structure": final.as_dict(), "metrics": metrics,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return rec


class _StopRequested(Exception):
    pass


def relax_candidates(candidates: Sequence[Candidate], cache_dir: str | os.PathLike[str],
                     settings: PoolSettings | None = None, *, relaxer: Relaxer | None = None,
                     max_seconds: float | None = None, limit: int | None = None,
                     progress: bool = True, index_every: int = 25) -> RelaxReport:
    """Relax candidates into the content-addressed cache, skipping finished ones.

    Args:
        candidates: In the order to relax (named compounds first in the default list).
        cache_dir: Cache folder; records go to ``<cache_dir>/records/<key>.json``.
        settings: Pool settings.
        relaxer: Callable ``structure -> RelaxOutcome``; default :func:`chgnet_relaxer`
            (created lazily, only when something needs relaxing).
        max_seconds: Do not start a new relaxation after this wall time.
        limit: Relax at most this many new candidates.
        progress: Show a tqdm bar.
        index_every: Rewrite ``index.json`` after this many new records (and at the end).

    Returns:
        A :class:`RelaxReport`. Stops cleanly on SIGINT/SIGTERM after the current
        relaxation (``stopped="signal"``); every finished record is on disk.
    """
    s = settings or PoolSettings()
    root = Path(cache_dir)
    (root / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (root / RECORDS_DIR).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    report = RelaxReport(total=len(candidates))
    todo = []
    for c in candidates:
        if _record_path(root, c.cache_key(s)).is_file():
            report.cached += 1
        else:
            todo.append(c)
    logger.info("relaxation pool %s: %d of %d candidates from cache, %d to relax", root,
                report.cached, report.total, len(todo))
    stop = {"flag": False}

    def _handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop["flag"] = True

    old_handlers = {}
    with contextlib.suppress(ValueError):  # not in the main thread: no signal handling
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, _handler)
    start = time.monotonic()
    try:
        bar = tqdm(todo, desc="CHGNet relaxation", disable=not progress or not todo)
        for n, c in enumerate(bar):
            if stop["flag"]:
                report.stopped = "signal"
            elif max_seconds is not None and time.monotonic() - start > max_seconds:
                report.stopped = "time budget"
            elif limit is not None and report.relaxed >= limit:
                report.stopped = "limit"
            if report.stopped:
                report.remaining = len(todo) - n
                logger.warning("relaxation stopped (%s) with %d candidate(s) left; rerun to "
                               "continue", report.stopped, report.remaining)
                break
            if relaxer is None:
                relaxer = chgnet_relaxer(s.relax)
            rec = _relax_one(c, relaxer, s)
            atomic_write_text(_record_path(root, rec["key"]), json.dumps(rec))
            report.relaxed += 1
            report.seconds.append(rec["seconds"])
            if rec["status"] == "ok":
                report.ok += 1
            else:
                report.failed += 1
                logger.warning("relaxation of %s (%s) rejected: %s", c.candidate_id, c.formula,
                               rec.get("reason"))
            bar.set_postfix(ok=report.ok, failed=report.failed,
                            s_per=f"{report.seconds_per_relaxation:.1f}")
            if index_every and report.relaxed % index_every == 0:
                write_index(root, candidates, s)
        bar.close()
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    write_index(root, candidates, s)
    logger.info("relaxed %d candidate(s) in %.1f s (%d ok, %d failed), %d from cache, %d "
                "remaining", report.relaxed, time.monotonic() - start, report.ok,
                report.failed, report.cached, report.remaining)
    return report


def _read_records(cache_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((cache_dir / RECORDS_DIR).glob("*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            warnings.warn(f"{path}: unreadable record skipped ({exc})", stacklevel=2)
    return out


def _evaluate(rec: dict[str, Any], settings: PoolSettings) -> str | None:
    """Failure reason of a record under the current settings (None: part of the pool)."""
    if rec.get("final_structure") is None:
        return rec.get("reason") or "failed"
    if not rec.get("converged", False):
        return rec.get("reason") or "not_converged"
    reason, _ = assess_relaxation(Structure.from_dict(rec["initial_structure"]),
                                  Structure.from_dict(rec["final_structure"]),
                                  float(rec["energy_per_atom"]),
                                  settings.relax)
    return reason


def load_pool(cache_dir: str | os.PathLike[str], settings: PoolSettings | None = None,
              ) -> list[PoolEntry]:
    """The relaxed structures of a cache that pass every check, sorted by candidate id.

    Records made with other relaxation settings are ignored; the physical checks are
    re-applied with ``settings``.
    """
    s = settings or PoolSettings()
    fp = s.relax_fingerprint()
    out = []
    for rec in _read_records(Path(cache_dir)):
        if rec.get("relax_settings") != fp or _evaluate(rec, s) is not None:
            continue
        prov = rec["provenance"]
        metrics = dict(rec.get("metrics") or {})
        metrics |= {"n_steps": rec.get("n_steps"), "seconds": rec.get("seconds")}
        out.append(PoolEntry(prov["candidate_id"], prov["formula"],
                             Structure.from_dict(rec["final_structure"]),
                             float(rec["energy_per_atom"]), rec.get("magmoms"), prov, metrics,
                             rec["key"]))
    out.sort(key=lambda e: e.candidate_id)
    logger.info("loaded %d relaxed structures from %s", len(out), cache_dir)
    return out


def write_index(cache_dir: str | os.PathLike[str], candidates: Sequence[Candidate] | None = None,
                settings: PoolSettings | None = None) -> dict[str, Any]:
    """Summarise the cache in ``<cache_dir>/index.json`` (atomically) and return it.

    Contents: candidate counts per source and rule (when ``candidates`` is given), relaxed
    counts (ok / failed, failures by check), pool counts per source, prototype and rule,
    named compounds present / failed / pending / not built, seconds per relaxation
    (mean, median), settings and software versions.
    """
    s = settings or PoolSettings()
    root = Path(cache_dir)
    fp = s.relax_fingerprint()
    records = [r for r in _read_records(root) if r.get("relax_settings") == fp]
    ok, failures = [], Counter()
    named_status: dict[str, str] = {}
    for rec in records:
        reason = _evaluate(rec, s)
        named = rec["provenance"].get("named")
        if reason is None:
            ok.append(rec)
            if named:
                named_status[named] = "present"
        else:
            failures[reason.split(":", 1)[0]] += 1
            if named and named_status.get(named) != "present":
                named_status[named] = f"failed ({reason})"

    def per_source(provs: Iterable[dict[str, Any]]) -> dict[str, int]:
        cnt: Counter[str] = Counter()
        for p in provs:
            cnt[p["source"]] += 1
            for other in p.get("also_in", []):
                cnt[f"{other} (also)"] += 1
        return dict(sorted(cnt.items()))

    secs = [float(r["seconds"]) for r in records if r.get("seconds") is not None]
    index: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "settings": asdict(s), "relax_settings": fp,
        "software": {p: _version(p) for p in ("pymatgen", "robocrys", "chgnet", "torch")},
        "relaxed": len(records), "pool": len(ok), "failed": sum(failures.values()),
        "failures_by_check": dict(sorted(failures.items())),
        "pool_per_source": per_source(r["provenance"] for r in ok),
        "pool_per_rule": dict(sorted(Counter(r["provenance"]["rule"] for r in ok).items())),
        "pool_prototypes": len({r["provenance"]["prototype"] for r in ok}),
        "seconds_per_relaxation": {
            "mean": round(statistics.fmean(secs), 2) if secs else None,
            "median": round(statistics.median(secs), 2) if secs else None,
            "total_hours": round(sum(secs) / 3600, 3)},
    }
    if candidates is not None:
        done = {r["key"] for r in records}
        index["candidates"] = len(candidates)
        index["candidates_per_source"] = per_source(c.provenance() for c in candidates)
        index["candidates_per_rule"] = dict(sorted(Counter(c.rule for c in candidates).items()))
        index["candidates_pending"] = sum(c.cache_key(s) not in done for c in candidates)
    for n in NAMED_COMPOUNDS:
        named_status.setdefault(n.formula, "pending")
    index["named"] = dict(sorted(named_status.items()))
    index["named_present"] = sorted(k for k, v in named_status.items() if v == "present")
    index["not_built"] = NOT_BUILT
    atomic_write_text(root / INDEX_FILE, json.dumps(index, indent=1, sort_keys=False) + "\n")
    return index


# --------------------------------------------------------------------------------------------
# Reference compounds of experiment.csv
# --------------------------------------------------------------------------------------------


def experiment_compounds() -> dict[str, list[str]]:
    """Formulas of the measured spectra in maml-apps-rfxas' ``experiment.csv``.

    Returns:
        ``{"transition_metal": [...], "other": [...]}`` (reduced formulas, sorted, unique).
        Only the first group belongs in the pool (SPEC §3 selection).
    """
    import csv

    with open(_package_file("maml-apps-rfxas", _EXPERIMENT_FILE), newline="",
              encoding="utf-8") as fh:
        formulas = {Composition(row["formula"]).reduced_formula for row in csv.DictReader(fh)}
    tm = sorted(f for f in formulas
                if {el.symbol for el in Composition(f).elements} & TRANSITION_METALS)
    return {"transition_metal": tm, "other": sorted(formulas - set(tm))}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or resume) the demo pool: candidates, then CHGNet relaxations, then the index.

    The candidate list is cached in ``<out>/candidates.json.gz`` (rebuilt when the settings
    change). Relaxations resume from ``<out>/records``.
    """
    parser = argparse.ArgumentParser(prog="python -m specfusion_lib.data.demo_pool",
                                     description="Build or resume the demo structure pool.")
    parser.add_argument("--out", default="data/demo_build/pool", help="cache folder")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no relaxation after this many minutes")
    parser.add_argument("--limit", type=int, default=None, help="relax at most N now")
    parser.add_argument("--max-candidates", type=int, default=PoolSettings.max_candidates)
    parser.add_argument("--threads", type=int, default=RelaxSettings.threads)
    parser.add_argument("--candidates-only", action="store_true",
                        help="build and save the candidate list, relax nothing")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--log-level", type=str.upper, default=None,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
                        help="level of the log messages on stderr (default: "
                             "$SPECFUSION_LOG_LEVEL, else INFO)")
    args = parser.parse_args(argv)
    if args.log_level is None:
        configure_logging("INFO")  # SPECFUSION_LOG_LEVEL, when set, wins
    else:
        configure_logging(args.log_level, env=False)
    settings = PoolSettings(max_candidates=args.max_candidates,
                            relax=RelaxSettings(threads=args.threads))
    out = Path(args.out)
    cpath = out / CANDIDATES_FILE
    candidates = load_candidates(cpath, settings)
    if candidates is None:
        t0 = time.perf_counter()
        candidates = candidate_structures(settings, progress=not args.no_progress)
        save_candidates(candidates, cpath, settings)
        print(f"built {len(candidates)} candidates in {time.perf_counter() - t0:.0f} s")
    else:
        print(f"loaded {len(candidates)} candidates from {cpath}")
    src = Counter(c.source for c in candidates)
    rules = Counter(c.rule for c in candidates)
    print("per source:", dict(src), "per rule:", dict(rules))
    if args.candidates_only:
        write_index(out, candidates, settings)
        return 0
    report = relax_candidates(
        candidates, out, settings,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
        limit=args.limit, progress=not args.no_progress)
    print(f"relaxed {report.relaxed} now ({report.ok} ok, {report.failed} failed), "
          f"{report.cached} cached, {report.remaining} remaining"
          + (f", stopped: {report.stopped}" if report.stopped else "")
          + (f"; {report.seconds_per_relaxation:.1f} s per relaxation" if report.seconds else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
