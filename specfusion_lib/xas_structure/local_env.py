"""Local-structure labels of an absorbing element, as XAStruct defines them.

For every absorbing element of a structure (one label set per (material, element), matching
the snapshot's one spectrum per (material, element, edge)):

* **CN** -- the CrystalNN coordination number of each symmetry-inequivalent site of the
  element, averaged with the sites' multiplicities (``cn_mean``) and rounded to the nearest
  integer for the classifier (``cn``). CrystalNN runs on the structure decorated with
  bond-valence oxidation states when BVAnalyzer assigns them, exactly as the snapshot's
  per-site CN labels (:func:`specfusion_lib.data.structure_labels.structure_labels`).
* **MNND** -- the mean absorber–neighbour distance (Å) over the CrystalNN neighbours of a site,
  averaged over the element's sites with their multiplicities.
* **Neighbour type** -- the most frequent element among the CrystalNN neighbours of the
  element's sites (counted with the sites' multiplicities; ties go to the lighter element).

It also returns the sites the forward model pools over ("the absorber and its immediate
neighbours", XAStruct eq. 3): each inequivalent absorber site and its CrystalNN neighbours,
weighted by the site's multiplicity (:attr:`ElementEnvironment.pool_weights`).

The labels are computed once per snapshot and cached (:func:`cached_environments`), keyed by
material id and a hash of the structure, with the method and versions in the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.analysis.local_env import CrystalNN
from pymatgen.core import Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.errors import ElementError
from specfusion_lib.data.structure_labels import SYMPREC, _require_ordered, site_oxidation_states

__all__ = [
    "ENV_CACHE_SCHEMA",
    "ElementEnvironment",
    "cached_environments",
    "element_environments",
    "structure_hash",
]

logger = logging.getLogger(__name__)

#: Schema of the cache files written by :func:`cached_environments`.
ENV_CACHE_SCHEMA = 1


@dataclass
class ElementEnvironment:
    """Local-structure labels of one absorbing element in one structure.

    Attributes:
        element: Absorbing element.
        cn: Rounded multiplicity-weighted mean CrystalNN coordination number.
        cn_mean: Unrounded mean CN.
        mnnd: Mean absorber–neighbour distance (Å).
        neighbour_type: Most frequent neighbour element.
        neighbour_counts: Neighbour element → count (weighted by site multiplicity).
        n_sites: Number of sites of the element in the cell.
        pool_weights: Site index → pooling weight (absorbers and their neighbours).
        oxidation_states_used: Whether CrystalNN saw bond-valence oxidation states.
    """

    element: str
    cn: int
    cn_mean: float
    mnnd: float
    neighbour_type: str
    neighbour_counts: dict[str, int]
    n_sites: int
    pool_weights: dict[int, float] = field(default_factory=dict)
    oxidation_states_used: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (site indices as strings)."""
        out = asdict(self)
        out["pool_weights"] = {str(k): v for k, v in self.pool_weights.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ElementEnvironment:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["pool_weights"] = {int(k): float(v) for k, v in values["pool_weights"].items()}
        return cls(**values)


def structure_hash(structure: Structure) -> str:
    """SHA-256 of a structure's JSON (lattice, species, coordinates), first 16 hex digits."""
    text = json.dumps(structure.as_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def element_environments(structure: Structure, elements: Iterable[str] | None = None,
                         *, symprec: float = SYMPREC) -> dict[str, ElementEnvironment]:
    """Labels of the requested absorbing elements (default: every element of the structure).

    Args:
        structure: An ordered structure.
        elements: Absorbing elements.
        symprec: Symmetry tolerance (Å) of the site equivalence classes.

    Returns:
        Element → :class:`ElementEnvironment`.

    Raises:
        DisorderedStructureError: Partial occupancies.
        ElementError: A requested element is not in the structure.
    """
    _require_ordered(structure)
    present = {el.symbol for el in structure.composition}
    wanted = sorted(present if elements is None else set(elements))
    missing = [el for el in wanted if el not in present]
    if missing:
        raise ElementError(f"{structure.composition.reduced_formula}: no {', '.join(missing)} "
                           "sites in the structure")
    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    classes = sga.get_symmetrized_structure().equivalent_indices
    oxi = site_oxidation_states(structure)
    work = structure
    if oxi is not None:
        work = structure.copy()
        work.add_oxidation_state_by_site(oxi)
    cnn = CrystalNN()
    out: dict[str, ElementEnvironment] = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No oxidation states specified")
        # CrystalNN falls back to covalent radii for unusual ions and warns each time; the
        # fallback is part of the method and the labels stay defined.
        warnings.filterwarnings("ignore", message="CrystalNN: cannot locate an appropriate")
        for element in wanted:
            groups = [g for g in classes if structure[g[0]].specie.symbol == element]
            cn_sum = dist_sum = 0.0
            counts: Counter[str] = Counter()
            weights: dict[int, float] = {}
            n_sites = 0
            for group in groups:
                rep, mult = int(group[0]), len(group)
                n_sites += mult
                info = cnn.get_nn_info(work, rep)
                cn_sum += mult * len(info)
                dists = [float(np.linalg.norm(n["site"].coords - structure[rep].coords))
                         for n in info]
                dist_sum += mult * (float(np.mean(dists)) if dists else 0.0)
                weights[rep] = weights.get(rep, 0.0) + mult
                for n in info:
                    counts[n["site"].specie.symbol] += mult
                    weights[int(n["site_index"])] = weights.get(int(n["site_index"]), 0.0) + mult
            cn_mean = cn_sum / n_sites
            top = max(counts.items(), key=lambda kv: (kv[1], -Element(kv[0]).Z))[0] \
                if counts else ""
            out[element] = ElementEnvironment(
                element=element, cn=int(round(cn_mean)), cn_mean=float(cn_mean),
                mnnd=float(dist_sum / n_sites), neighbour_type=top,
                neighbour_counts=dict(sorted(counts.items())), n_sites=n_sites,
                pool_weights=weights, oxidation_states_used=oxi is not None)
    return out


def cached_environments(key: str, structure: Structure, elements: Iterable[str],
                        cache: str | Path) -> dict[str, ElementEnvironment]:
    """:func:`element_environments`, cached as ``<cache>/<key>.json``.

    The file stores the structure hash; a changed structure, another schema or a half-written
    file is recomputed. Files are written atomically.
    """
    wanted = sorted(set(elements))
    path = Path(cache) / f"{key.replace(':', '_')}.json"
    digest = structure_hash(structure)
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:
            stored = {}
        if (stored.get("schema") == ENV_CACHE_SCHEMA and stored.get("structure") == digest
                and set(wanted) <= set(stored.get("environments", {}))):
            return {el: ElementEnvironment.from_dict(stored["environments"][el])
                    for el in wanted}
    envs = element_environments(structure, wanted)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({
        "schema": ENV_CACHE_SCHEMA, "structure": digest, "method": "CrystalNN (pymatgen)",
        "environments": {el: env.to_dict() for el, env in envs.items()}}))
    return envs
