"""Real Materials Project structures: a train file and a check file that is never trained on.

``data/real_structures/`` holds two gzipped JSON-lines files of Materials Project crystal
structures (provenance, licences and the field list in the folder's ``README.md``):

* ``mp_structures_train.jsonl.gz`` (1,045 structures) may be used for training, e.g. to add
  structure families that the demo's prototypes lack;
* ``mp_structures_check.jsonl.gz`` (1,543 structures) is the real-structure check every
  notebook reports. **Never train on it**, and make no modelling choice with it.

:func:`load_real_structures` reads one part into a :class:`RealStructureSet` (ids, formulas,
crystal systems, space groups, pymatgen structures, sources, transition-metal flag and the
structural family key of :mod:`specfusion_lib.data.families`). Both files are verified against
the SHA-256 checksums in :data:`FILE_SHA256` when read from the package's folder, and parsed
sets are cached per process (parsing and the family keys take a few seconds).

Every modelling choice (hyper-parameters, early stopping, model selection) uses the fixed,
family-wise validation part of the train file committed as ``validation_part.json``
(:data:`VALIDATION_FILE`): :func:`make_validation_part` deals whole families to it,
:func:`write_validation_part` writes it and :func:`validation_part` returns the fit and
validation rows of the train set. :func:`seen_families` tells which check rows share a
structural key with the training structures, so that reports can separate seen from unseen
families.

Example::

    from specfusion_lib.data.real_structures import load_real_structures, validation_part

    train = load_real_structures("train")
    fit_rows, val_rows = validation_part(train)
    check = load_real_structures("check")
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.errors import ChecksumError, ConfigurationError, SnapshotError
from specfusion_lib.data.families import family_groups, structure_family_key
from specfusion_lib.data.structure_labels import normalize_crystal_system
from specfusion_lib.training.splits import split_indices

logger = logging.getLogger(__name__)

__all__ = [
    "FILE_SHA256",
    "PARTS",
    "REAL_STRUCTURES_DIR",
    "VALIDATION_FILE",
    "RealStructureSet",
    "load_real_structures",
    "make_validation_part",
    "real_structures_path",
    "seen_families",
    "validation_part",
    "write_validation_part",
]

#: The package's folder of real structures (``<repository>/data/real_structures``).
REAL_STRUCTURES_DIR: Path = Path(__file__).resolve().parents[2] / "data" / "real_structures"
#: The two parts: ``"train"`` may be trained on, ``"check"`` never.
PARTS: tuple[str, ...] = ("train", "check")
#: SHA-256 of the committed files, verified when they are read from :data:`REAL_STRUCTURES_DIR`.
FILE_SHA256: dict[str, str] = {
    "train": "6956125dccbb1cd265b5f0aa64361523b0272423b548ba637f3702fd8c56f22e",
    "check": "a8e7d44fe9ef23a0e9c83a3a586a411961a8652e30abf794cefb62b49e597dd6",
}
#: The committed family-wise validation part of the train file.
VALIDATION_FILE: Path = REAL_STRUCTURES_DIR / "validation_part.json"

#: Fields every record must carry (``material_id`` is optional, ``nelements`` is not used).
_REQUIRED_FIELDS = ("formula", "crystal_system", "space_group", "has_tm", "sources",
                    "structure")


@dataclass(frozen=True, eq=False)
class RealStructureSet:
    """One part of the real structures, one entry per structure in file order.

    Attributes:
        part: ``"train"`` or ``"check"``.
        material_ids: The record's ``material_id``, or ``"<part>-<row:04d>"`` (row counted
            from 0 in the file) when the source gives none; unique.
        formulas: Reduced formulas.
        crystal_systems: Lower-case crystal systems (``"cubic"``, ...), see
            :func:`~specfusion_lib.data.structure_labels.normalize_crystal_system`.
        space_groups: spglib space-group numbers (symprec 0.1 Å).
        structures: The pymatgen structures.
        sources: The record's sources, duplicates dropped, joined by ``","``
            (e.g. ``"phonon_dielectric,piezoelectric"``).
        has_tm: Whether the structure contains a transition metal (Sc–Zn, Y–Cd), bool array.
        family_keys: Structural keys
            (:func:`~specfusion_lib.data.families.structure_family_key`).
        sha256: SHA-256 of the file the set was read from (empty for a hand-made set).
    """

    part: str
    material_ids: tuple[str, ...]
    formulas: tuple[str, ...]
    crystal_systems: tuple[str, ...]
    space_groups: tuple[int, ...]
    structures: tuple[Structure, ...]
    sources: tuple[str, ...]
    has_tm: np.ndarray
    family_keys: tuple[str, ...]
    sha256: str = ""

    def __post_init__(self) -> None:
        n = len(self.material_ids)
        lengths = {name: len(getattr(self, name)) for name in (
            "formulas", "crystal_systems", "space_groups", "structures", "sources", "has_tm",
            "family_keys")}
        wrong = {name: k for name, k in lengths.items() if k != n}
        if wrong:
            raise SnapshotError(f"real structures ({self.part}): {n} material ids but {wrong}")
        if len(set(self.material_ids)) != n:
            dupes = sorted(m for m, k in Counter(self.material_ids).items() if k > 1)
            raise SnapshotError(f"real structures ({self.part}): duplicate material ids "
                                f"{dupes[:5]}")
        flags = np.array(self.has_tm, dtype=bool)
        flags.setflags(write=False)
        object.__setattr__(self, "has_tm", flags)

    def __len__(self) -> int:
        return len(self.material_ids)

    def subset(self, indices: Sequence[int] | np.ndarray) -> RealStructureSet:
        """The rows ``indices`` (integer positions or a boolean mask), in the order given.

        Args:
            indices: Row positions, or a boolean mask of length ``len(self)``.

        Returns:
            A new set of the same part.
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ConfigurationError(f"boolean mask of shape {idx.shape} for {len(self)} "
                                         "rows")
            idx = np.flatnonzero(idx)
        rows = [int(i) for i in idx.reshape(-1)]

        def pick(values: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(values[i] for i in rows)

        return RealStructureSet(
            part=self.part, material_ids=pick(self.material_ids), formulas=pick(self.formulas),
            crystal_systems=pick(self.crystal_systems), space_groups=pick(self.space_groups),
            structures=pick(self.structures), sources=pick(self.sources),
            has_tm=self.has_tm[rows] if rows else np.zeros(0, dtype=bool),
            family_keys=pick(self.family_keys), sha256=self.sha256)

    @property
    def families(self) -> tuple[str, ...]:
        """Family of every row (:func:`~specfusion_lib.data.families.family_groups` of the
        structural keys; the real structures carry no provenance links)."""
        family_of = family_groups(self.material_ids, self.family_keys)
        return tuple(family_of[m] for m in self.material_ids)

    def to_frame(self) -> pd.DataFrame:
        """One row per structure (without the structures), indexed 0..n-1."""
        return pd.DataFrame({
            "material_id": list(self.material_ids),
            "formula": list(self.formulas),
            "crystal_system": list(self.crystal_systems),
            "space_group": np.asarray(self.space_groups, dtype=np.int64),
            "sources": list(self.sources),
            "has_tm": np.asarray(self.has_tm, dtype=bool),
            "family_key": list(self.family_keys),
            "family": list(self.families),
        })


#: Parsed sets per (resolved path, part), with the SHA-256 of the bytes they were parsed from.
_CACHE: dict[tuple[str, str], tuple[str, RealStructureSet]] = {}


def real_structures_path(part: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Path of one part's file, ``<root>/mp_structures_<part>.jsonl.gz``.

    Args:
        part: ``"train"`` or ``"check"``.
        root: Folder of the files (default :data:`REAL_STRUCTURES_DIR`).

    Raises:
        ConfigurationError: For an unknown part.
    """
    if part not in PARTS:
        raise ConfigurationError(f"unknown real-structure part {part!r}; expected one of "
                                 f"{PARTS}")
    folder = Path(root) if root is not None else REAL_STRUCTURES_DIR
    return folder / f"mp_structures_{part}.jsonl.gz"


def _is_default_root(root: str | os.PathLike[str] | None) -> bool:
    return root is None or Path(root).resolve() == REAL_STRUCTURES_DIR.resolve()


def _parse(path: Path, part: str, raw: bytes, sha256: str) -> RealStructureSet:
    """Parse the bytes of a gzipped JSON-lines file into a :class:`RealStructureSet`."""
    try:
        text = gzip.decompress(raw).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: not a readable gzip file of UTF-8 text ({exc})") from exc
    columns: dict[str, list[Any]] = {name: [] for name in (
        "material_ids", "formulas", "crystal_systems", "space_groups", "structures", "sources",
        "has_tm", "family_keys")}
    row = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise SnapshotError(f"{where}: bad JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise SnapshotError(f"{where}: a record must be a JSON object, not "
                                f"{type(record).__name__}")
        missing = [name for name in _REQUIRED_FIELDS if name not in record]
        if missing:
            raise SnapshotError(f"{where}: missing field(s) {missing}")
        try:
            material_id = record.get("material_id")
            sources = record["sources"]
            if isinstance(sources, str) or not isinstance(sources, Sequence):
                raise TypeError(f"sources must be a list, not {type(sources).__name__}")
            structure = Structure.from_dict(record["structure"])
            columns["material_ids"].append(str(material_id) if material_id else
                                           f"{part}-{row:04d}")
            columns["formulas"].append(str(record["formula"]))
            columns["crystal_systems"].append(normalize_crystal_system(record["crystal_system"]))
            columns["space_groups"].append(int(record["space_group"]))
            columns["sources"].append(",".join(dict.fromkeys(str(s) for s in sources)))
            columns["has_tm"].append(bool(record["has_tm"]))
            columns["structures"].append(structure)
            columns["family_keys"].append(structure_family_key(structure))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise SnapshotError(f"{where}: bad record ({type(exc).__name__}: {exc})") from exc
        row += 1
    if row == 0:
        raise SnapshotError(f"{path}: no records")
    fields = {name: tuple(values) for name, values in columns.items()}
    fields["has_tm"] = np.asarray(columns["has_tm"], dtype=bool)
    try:
        return RealStructureSet(part=part, sha256=sha256, **fields)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc


def load_real_structures(part: str, root: str | os.PathLike[str] | None = None, *,
                         verify: bool = True) -> RealStructureSet:
    """Read one part of the real structures.

    The file's bytes are read (and hashed) on every call; the parsed set is cached per
    ``(resolved path, part)`` and reused while the file's SHA-256 is unchanged.

    Args:
        part: ``"train"`` or ``"check"`` (never train on ``"check"``).
        root: Folder of the files (default :data:`REAL_STRUCTURES_DIR`).
        verify: Compare the file's SHA-256 with :data:`FILE_SHA256` (only for the default
            folder; files elsewhere have no known checksum).

    Returns:
        The :class:`RealStructureSet` of the part, in file order.

    Raises:
        ConfigurationError: For an unknown part.
        SnapshotError: If the file is missing or unreadable, its checksum differs
            (:class:`~specfusion_lib.core.errors.ChecksumError`), a line is not valid JSON,
            a record lacks a field or holds a bad value, or material ids repeat.
    """
    path = real_structures_path(part, root)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise SnapshotError(f"{path}: real-structure file ({part}) not found") from exc
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read the real-structure file ({exc})") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if verify and _is_default_root(root) and digest != FILE_SHA256[part]:
        raise ChecksumError(f"{path}: bad checksum: SHA-256 {digest}, expected "
                            f"{FILE_SHA256[part]}")
    key = (str(path.resolve()), part)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    start = time.perf_counter()
    parsed = _parse(path, part, raw, digest)
    _CACHE[key] = (digest, parsed)
    logger.info("real structures (%s): %d structures, %d families read from %s in %.1f s",
                part, len(parsed), len(set(parsed.families)), path,
                time.perf_counter() - start)
    return parsed


def make_validation_part(train: RealStructureSet, fraction: float = 0.2, seed: int = 0
                         ) -> dict[str, Any]:
    """Deal whole families of the train set to a validation part.

    Uses :func:`~specfusion_lib.training.splits.split_indices` with the families as groups
    and fractions ``(1 - fraction, fraction / 2, fraction / 2)``; its validation and test parts
    together form the validation part (deterministic for a seed; no family on both sides).

    Args:
        train: The train set (:func:`load_real_structures` ``("train")``).
        fraction: Share of the structures in the validation part, in (0, 1).
        seed: Seed of the family permutation.

    Returns:
        ``{"seed", "fraction", "families", "material_ids", "train_sha256"}``: the validation
        part's families and material ids, both sorted, and :data:`FILE_SHA256` ``["train"]``.

    Raises:
        ConfigurationError: If ``train`` is not a train set or ``fraction`` is out of range.
    """
    if train.part != "train":
        raise ConfigurationError(f"the validation part is made of the train set, not the "
                                 f"{train.part!r} set")
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigurationError(f"validation fraction must be in (0, 1), got {fraction}")
    fraction = float(fraction)
    families = train.families
    _, val, test = split_indices(len(train), (1.0 - fraction, fraction / 2, fraction / 2),
                                 seed, groups=families)
    rows = np.concatenate([val, test])
    return {
        "seed": int(seed),
        "fraction": fraction,
        "families": sorted({families[i] for i in rows}),
        "material_ids": sorted(train.material_ids[i] for i in rows),
        "train_sha256": FILE_SHA256["train"],
    }


def write_validation_part(path: str | os.PathLike[str] = VALIDATION_FILE, *,
                          fraction: float = 0.2, seed: int = 0) -> Path:
    """Write :func:`make_validation_part` of the committed train file atomically as JSON.

    Args:
        path: Output file (default :data:`VALIDATION_FILE`).
        fraction: Share of the structures in the validation part.
        seed: Seed of the family permutation.

    Returns:
        The path written.
    """
    part = make_validation_part(load_real_structures("train"), fraction, seed)
    target = atomic_write_text(path, json.dumps(part, indent=1) + "\n")
    logger.info("validation part: %d structures in %d families written to %s",
                len(part["material_ids"]), len(part["families"]), target)
    return target


def validation_part(train: RealStructureSet, path: str | os.PathLike[str] = VALIDATION_FILE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Fit and validation rows of the train set, from the committed validation part.

    Args:
        train: The train set (:func:`load_real_structures` ``("train")``).
        path: The validation-part file (default :data:`VALIDATION_FILE`).

    Returns:
        ``(fit_rows, validation_rows)``: sorted integer row indices into ``train``.

    Raises:
        ConfigurationError: If ``train`` is not a train set.
        SnapshotError: If the file is missing or malformed, was made from another train file
            (``train_sha256``), or names material ids that ``train`` lacks.
    """
    if train.part != "train":
        raise ConfigurationError(f"the validation part belongs to the train set, not the "
                                 f"{train.part!r} set")
    source = Path(path)
    try:
        stored = json.loads(source.read_text(encoding="utf-8"))
        stored_sha = str(stored["train_sha256"])
        ids = [str(m) for m in stored["material_ids"]]
    except FileNotFoundError as exc:
        raise SnapshotError(f"{source}: validation part not found") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{source}: not a readable validation part ({exc})") from exc
    expected = train.sha256 or FILE_SHA256["train"]
    if stored_sha != expected:
        raise SnapshotError(f"{source}: made from the train file with SHA-256 {stored_sha}, "
                            f"not {expected}")
    row_of = {m: i for i, m in enumerate(train.material_ids)}
    unknown = [m for m in ids if m not in row_of]
    if unknown:
        raise SnapshotError(f"{source}: {len(unknown)} material ids not in the train set, e.g. "
                            f"{unknown[:5]}")
    mask = np.zeros(len(train), dtype=bool)
    mask[[row_of[m] for m in ids]] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def seen_families(check: RealStructureSet, training_keys: Iterable[str]) -> np.ndarray:
    """Whether each row's structural key is among the training structures' keys.

    Args:
        check: The set to test (usually the check set).
        training_keys: Structural keys
            (:func:`~specfusion_lib.data.families.structure_family_key`) of the structures a
            model was trained on.

    Returns:
        Boolean array, one entry per row of ``check``.
    """
    known = {str(k) for k in training_keys}
    return np.fromiter((k in known for k in check.family_keys), dtype=bool,
                       count=len(check))
