"""Structure families: the key that keeps near-identical siblings on one side of a split.

A random split of the demo puts substitution siblings of one prototype (up to 80 per
prototype) into training and test alike, so a model can score by recognising the family. Every
trainer therefore splits by *family* (:func:`specfusion_lib.training.splits.split_indices`
with ``groups``), and reports on real structures separate the families seen in training from
the unseen ones.

The key, the same for pool, real and generated structures:

1. **Structural key** (:func:`structure_family_key`): the anonymous reduced formula (pymatgen
   ``Composition.anonymized_formula``, elements replaced by A, B, C… in order of amount)
   joined with the spglib space-group number at ``symprec`` 0.1 Å, e.g. ``"ABC3_221"`` for
   every cubic perovskite. Computed from the structure alone, so it works for structures with
   no provenance (Materials Project, user files).
2. **Provenance links** (optional): structures that a source says were made from one parent
   (the demo pool's ``prototype`` field, :func:`demo_pool_parents`) belong to one family even
   when their structural keys differ.
3. **Family** (:func:`family_groups`): the connected components of materials joined by a
   shared structural key or a shared parent; each family is named by the smallest structural
   key in it.

Why not the key alone: measured on the demo snapshot (3,004 materials, 108 pool prototypes),
a split by structural key leaves 29-60 % of the test rows (three seeds) with a prototype
sibling in training, because CHGNet relaxation of a substituted sibling often lowers its
symmetry and a substitution can change the anonymous formula; pymatgen's AFLOW-style
protostructure label (Wyckoff letters included, elements in alphabetical order) is finer
still (303 labels, 71-93 % leak). With the provenance links no test row shares a prototype
with training (tested), and the demo falls into 71 families, the largest 7.5 % of it.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.errors import SnapshotError

logger = logging.getLogger(__name__)

__all__ = [
    "FAMILY_SYMPREC",
    "default_cache_dir",
    "demo_pool_parents",
    "families_of",
    "family_groups",
    "snapshot_families",
    "structural_keys",
    "structure_family_key",
]

#: spglib tolerance of the structural key (Å), the one of the snapshot's crystal-system label.
FAMILY_SYMPREC: float = 0.1
_CACHE_VERSION = 1


def structure_family_key(structure: Structure, symprec: float = FAMILY_SYMPREC) -> str:
    """``"<anonymous reduced formula>_<space-group number>"`` of a structure.

    Args:
        structure: The crystal structure.
        symprec: spglib symmetry tolerance in Å.

    Returns:
        The structural key, e.g. ``"AB_225"`` (rock salt) or ``"ABC3_221"``; the space group
        is ``0`` when spglib finds none.
    """
    anonymous = structure.composition.reduced_composition.anonymized_formula
    try:
        number = SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
    except (TypeError, ValueError) as exc:  # spglib gives up on a degenerate cell
        logger.warning("no space group for %s (%s); structural key uses 0",
                       structure.composition.reduced_formula, exc)
        number = 0
    return f"{anonymous}_{int(number)}"


def structural_keys(structures: Iterable[Structure], symprec: float = FAMILY_SYMPREC
                    ) -> list[str]:
    """:func:`structure_family_key` of every structure."""
    return [structure_family_key(s, symprec) for s in structures]


def family_groups(material_ids: Sequence[str], keys: Sequence[str],
                  parents: Mapping[str, str] | None = None) -> dict[str, str]:
    """Family of every material: connected components of shared keys and shared parents.

    Args:
        material_ids: Material ids, one per row.
        keys: Structural key of every row (:func:`structure_family_key`).
        parents: Optional ``{material_id: parent}`` (e.g. the pool prototype); materials
            absent from it have no provenance link.

    Returns:
        ``{material_id: family}``; a family is named by the smallest structural key in it.

    Raises:
        SnapshotError: If ``keys`` and ``material_ids`` differ in length.
    """
    if len(keys) != len(material_ids):
        raise SnapshotError(f"{len(keys)} structural keys for {len(material_ids)} materials")
    parent_of: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        root = node
        while parent_of.setdefault(root, root) != root:
            root = parent_of[root]
        while node != root:  # path compression
            parent_of[node], node = root, parent_of[node]
        return root

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent_of[max(ra, rb)] = min(ra, rb)

    parents = parents or {}
    for mid, key in zip(material_ids, keys, strict=True):
        union(("k", str(key)), ("m", str(mid)))
        if mid in parents and parents[mid] is not None:
            union(("k", str(key)), ("p", str(parents[mid])))
    name: dict[tuple[str, str], str] = {}
    for key in sorted(set(map(str, keys))):
        name.setdefault(find(("k", key)), key)
    return {str(mid): name[find(("m", str(mid)))] for mid in material_ids}


def demo_pool_parents(candidates_path: str | os.PathLike[str]) -> dict[str, str]:
    """``{candidate_id: prototype}`` of the demo pool's ``candidates.json.gz``.

    Raises:
        SnapshotError: If the file is missing or not a pool candidates file.
    """
    path = Path(candidates_path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
        return {str(c["candidate_id"]): str(c["prototype"]) for c in payload["candidates"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}: not a readable demo-pool candidates file ({exc})") from exc


def _default_parents(snapshot) -> dict[str, str]:
    """Provenance links a snapshot's source records (the demo pool's prototypes)."""
    if snapshot.source != "demo":
        return {}
    from specfusion_lib.data.demo import DEFAULT_BUILD_DIR

    for root in (snapshot.path.parent.parent, Path.cwd()):
        path = root / DEFAULT_BUILD_DIR / "pool" / "candidates.json.gz"
        if path.is_file():
            return demo_pool_parents(path)
    logger.warning("demo snapshot %s: pool candidates not found; families use the structural "
                   "key only", snapshot.path)
    return {}


def default_cache_dir() -> Path:
    """Folder of small derived caches: ``$SPECFUSION_CACHE_DIR`` or ``~/.cache/specfusion``."""
    env = os.environ.get("SPECFUSION_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "specfusion"


_MEMO: dict[tuple[str, str], dict[str, str]] = {}


def snapshot_families(snapshot, *, parents: Mapping[str, str] | None = None,
                      cache_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{material_id: family}`` of every material of a snapshot.

    The structural keys (about 3 ms per structure: 10 s for the demo's 3,004) are cached as
    ``<cache_dir>/families-<snapshot id>.json`` and kept in memory per snapshot id.

    Args:
        snapshot: A loaded :class:`~specfusion_lib.data.snapshot.Snapshot`.
        parents: Provenance links; default: the demo pool's prototypes for a demo snapshot,
            none otherwise.
        cache_dir: Folder of the structural-key cache (default :func:`default_cache_dir`).
    """
    memo_key = (str(snapshot.snapshot_id), "default" if parents is None else
                json.dumps(sorted(parents.items())))
    if memo_key in _MEMO:
        return dict(_MEMO[memo_key])
    ids = [str(m) for m in snapshot.materials["material_id"]]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = folder / f"families-{snapshot.snapshot_id}.json"
    keys: list[str] | None = None
    if cache.is_file():
        try:
            stored = json.loads(cache.read_text())
            if stored.get("version") == _CACHE_VERSION and stored.get("ids") == ids:
                keys = list(stored["keys"])
        except (OSError, ValueError) as exc:
            logger.warning("family cache %s unreadable (%s); recomputing", cache, exc)
    if keys is None:
        keys = structural_keys(snapshot.structure(m) for m in ids)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache, json.dumps({"version": _CACHE_VERSION, "ids": ids,
                                                 "keys": keys}))
        except OSError as exc:  # a read-only home: keep going without the cache
            logger.warning("could not write the family cache %s (%s)", cache, exc)
    links = _default_parents(snapshot) if parents is None else parents
    families = family_groups(ids, keys, links)
    _MEMO[memo_key] = families
    return dict(families)


def families_of(snapshot, material_ids: Sequence[str]) -> tuple[str, ...] | None:
    """Family of each of ``material_ids`` (:func:`snapshot_families`), ``None`` for an object
    that is not a snapshot with structures (synthetic test data)."""
    if not (hasattr(snapshot, "snapshot_id") and hasattr(snapshot, "structure")
            and "structure" in getattr(snapshot, "materials", {})):
        return None
    family_of = snapshot_families(snapshot)
    return tuple(family_of[str(m)] for m in material_ids)
