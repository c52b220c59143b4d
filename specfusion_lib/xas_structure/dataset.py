"""The XAStruct table of a snapshot: one row per (material, absorbing element) K-edge spectrum.

Each row holds

* ``features``: the CHGNet embedding pooled over the absorber and its neighbours
  (:mod:`.encoder`), shape ``(FEATURE_DIM,)``;
* ``mu``: the edge-normalised spectrum on the element's absolute grid (:mod:`.grid`), shape
  ``(N_GRID_POINTS,)``;
* the local-structure labels of :mod:`.local_env` (``cn``, ``cn_mean``, ``mnnd``,
  ``neighbour_type``);
* the material's structure ``family`` (:func:`specfusion_lib.data.families.snapshot_families`)
  that the family split keeps together.

Building it costs a CHGNet pass (~0.1 s per structure on two cores) and a CrystalNN analysis
(~0.1–0.5 s per structure) per material, so the table is cached as
``<cache_dir>/dataset-<snapshot id>.npz`` (complete snapshots only; keyed by the snapshot's
checksum, so a changed snapshot is rebuilt) and the per-material local environments as JSON
files in ``env_dir``. The demo snapshot's table is committed in ``data/xastruct/``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specfusion_lib.core.atomic import atomic_write
from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import SpecfusionError
from specfusion_lib.xas_structure.encoder import (
    ENCODER_NAME,
    FEATURE_DIM,
    pool_features,
    site_features,
)
from specfusion_lib.xas_structure.grid import N_GRID_POINTS, to_grid
from specfusion_lib.xas_structure.local_env import cached_environments

__all__ = [
    "DATASET_SCHEMA",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_ENV_DIR",
    "XAStructData",
    "build_dataset",
    "default_cache_dir",
    "load_dataset",
]

logger = logging.getLogger(__name__)

#: Bump when the table's content changes (invalidates cached tables).
DATASET_SCHEMA = 1
#: Fallback table folder (tables go beside their snapshot; the demo's is committed there).
DEFAULT_CACHE_DIR = Path("data/xastruct")
#: Where the per-material local environments are cached (not committed).
DEFAULT_ENV_DIR = Path("build/xastruct/env")

_ARRAYS = ("material_id", "element", "family", "features", "mu", "cn", "cn_mean", "mnnd",
           "neighbour_type", "source")


@dataclass
class XAStructData:
    """Rows of (material, element) spectra with features and labels (see module docstring).

    Attributes:
        material_id, element, family, neighbour_type, source: String arrays, shape ``(n,)``.
        features: Pooled encoder features, shape ``(n, FEATURE_DIM)``.
        mu: Normalised spectra on the absolute grid, shape ``(n, N_GRID_POINTS)``.
        cn: Rounded coordination numbers, shape ``(n,)``.
        cn_mean, mnnd: Mean CN and MNND (Å), shape ``(n,)``.
        meta: Provenance: snapshot id, encoder, schema, skipped spectra.
    """

    material_id: np.ndarray
    element: np.ndarray
    family: np.ndarray
    features: np.ndarray
    mu: np.ndarray
    cn: np.ndarray
    cn_mean: np.ndarray
    mnnd: np.ndarray
    neighbour_type: np.ndarray
    source: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.material_id)

    def subset(self, rows: np.ndarray | Sequence[int] | Sequence[bool]) -> XAStructData:
        """The rows selected by an index or boolean array."""
        rows = np.asarray(rows)
        return XAStructData(**{k: getattr(self, k)[rows] for k in _ARRAYS}, meta=dict(self.meta))

    def of_element(self, element: str) -> XAStructData:
        """The rows of one absorbing element."""
        return self.subset(self.element == element)

    def element_counts(self) -> dict[str, int]:
        """Rows per absorbing element, most frequent first."""
        values, counts = np.unique(self.element, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return {str(values[i]): int(counts[i]) for i in order}

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` atomically (strings stored as unicode arrays)."""
        arrays = {k: getattr(self, k) for k in _ARRAYS}
        arrays["meta"] = np.array(json.dumps(self.meta))
        return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> XAStructData:
        """Read a table written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(**{k: z[k] for k in _ARRAYS}, meta=meta)


def _cache_path(cache_dir: Path, snapshot_id: str) -> Path:
    return cache_dir / f"dataset-{snapshot_id}.npz"


def default_cache_dir(snapshot) -> Path:
    """``xastruct/`` beside the snapshot's folder (``data/xastruct`` for ``data/demo``)."""
    path = getattr(snapshot, "path", None)
    return Path(path).parent / "xastruct" if path is not None else DEFAULT_CACHE_DIR


def load_dataset(snapshot, *, cache_dir: str | Path | None = None) -> XAStructData | None:
    """The cached complete table of ``snapshot``, or ``None`` if there is none (or it is stale)."""
    cache_dir = default_cache_dir(snapshot) if cache_dir is None else cache_dir
    path = _cache_path(Path(cache_dir), str(snapshot.snapshot_id))
    if not path.is_file():
        return None
    data = XAStructData.load(path)
    if (data.meta.get("schema") != DATASET_SCHEMA or data.meta.get("encoder") != ENCODER_NAME
            or data.meta.get("snapshot_id") != str(snapshot.snapshot_id)):
        logger.warning("XAStruct table %s is stale; rebuilding", path)
        return None
    return data


def build_dataset(snapshot, *, elements: Iterable[str] = TRANSITION_METALS,
                  material_ids: Sequence[str] | None = None,
                  cache_dir: str | Path | None = None,
                  env_dir: str | Path = DEFAULT_ENV_DIR,
                  progress: bool = True) -> XAStructData:
    """The XAStruct table of a snapshot's K-edge spectra of ``elements``.

    Args:
        snapshot: A loaded snapshot (structures and spectra).
        elements: Absorbing elements to keep (default: the 3d and 4d transition metals).
        material_ids: Only these materials (a profile's subset); ``None``: all, and the
            complete table is cached.
        cache_dir: Folder of the cached complete tables (default
            :func:`default_cache_dir`).
        env_dir: Folder of the per-material local-environment cache.
        progress: Show a progress bar.

    Returns:
        :class:`XAStructData`; spectra that cannot be put on the grid are skipped (counted in
        ``meta["skipped"]`` with the reason, and logged).
    """
    from tqdm.auto import tqdm

    from specfusion_lib.data.families import snapshot_families

    cache_dir = Path(default_cache_dir(snapshot) if cache_dir is None else cache_dir)
    if material_ids is None:
        cached = load_dataset(snapshot, cache_dir=cache_dir)
        if cached is not None:
            return cached
    wanted = set(elements)
    spectra = snapshot.spectra
    spectra = spectra[(spectra["edge"] == "K") & spectra["element"].isin(wanted)]
    if material_ids is not None:
        keep = {str(m) for m in material_ids}
        spectra = spectra[spectra["material_id"].astype(str).isin(keep)]
    family_of = snapshot_families(snapshot)
    by_material: dict[str, list] = {}
    for row in spectra.itertuples(index=False):
        by_material.setdefault(str(row.material_id), []).append(row)
    ids = sorted(by_material)
    rows: dict[str, list] = {k: [] for k in _ARRAYS}
    skipped: list[dict[str, str]] = []
    batch = 32
    bar = tqdm(total=len(ids), desc="XAStruct table", unit="material", disable=not progress)
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        structures = [snapshot.structure(m) for m in chunk]
        feats = site_features(structures)
        for mid, structure, fea in zip(chunk, structures, feats, strict=True):
            els = sorted({r.element for r in by_material[mid]})
            try:
                envs = cached_environments(mid, structure, els, Path(env_dir))
            except (SpecfusionError, ValueError) as exc:
                skipped += [{"material_id": mid, "element": e, "reason": f"local env: {exc}"}
                            for e in els]
                continue
            for r in by_material[mid]:
                try:
                    mu = to_grid(np.asarray(r.energy), np.asarray(r.mu), r.element,
                                 source=f"{mid} {r.element} K")
                except SpecfusionError as exc:
                    skipped.append({"material_id": mid, "element": r.element,
                                    "reason": str(exc)})
                    continue
                env = envs[r.element]
                rows["material_id"].append(mid)
                rows["element"].append(r.element)
                rows["family"].append(str(family_of[mid]))
                rows["features"].append(pool_features(fea, env.pool_weights))
                rows["mu"].append(mu)
                rows["cn"].append(env.cn)
                rows["cn_mean"].append(env.cn_mean)
                rows["mnnd"].append(env.mnnd)
                rows["neighbour_type"].append(env.neighbour_type)
                rows["source"].append(str(r.source))
        bar.update(len(chunk))
    bar.close()
    if skipped:
        logger.warning("XAStruct table: %d spectra skipped (first: %s)", len(skipped),
                       skipped[0])
    n = len(rows["material_id"])
    data = XAStructData(
        material_id=np.array(rows["material_id"], dtype=str),
        element=np.array(rows["element"], dtype=str),
        family=np.array(rows["family"], dtype=str),
        features=np.array(rows["features"], dtype=np.float32).reshape(n, FEATURE_DIM),
        mu=np.array(rows["mu"], dtype=np.float32).reshape(n, N_GRID_POINTS),
        cn=np.array(rows["cn"], dtype=np.int64),
        cn_mean=np.array(rows["cn_mean"], dtype=np.float64),
        mnnd=np.array(rows["mnnd"], dtype=np.float64),
        neighbour_type=np.array(rows["neighbour_type"], dtype=str),
        source=np.array(rows["source"], dtype=str),
        meta={"schema": DATASET_SCHEMA, "encoder": ENCODER_NAME,
              "snapshot_id": str(snapshot.snapshot_id), "elements": sorted(wanted),
              "labels": "CrystalNN (pymatgen) on bond-valence-decorated structures",
              "complete": material_ids is None, "skipped": skipped})
    if material_ids is None:
        data.save(_cache_path(cache_dir, str(snapshot.snapshot_id)))
    return data
