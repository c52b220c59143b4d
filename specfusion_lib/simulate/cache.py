"""Content-addressed, crash-safe cache of FEFF10 site spectra.

One small JSON file per absorbing-site spectrum, named by a SHA-256 key of everything that
determines the result: the ``feff.inp`` text of the site (:func:`specfusion_lib.simulate.feff.
feff_input`, which encodes the structure, the absorbing site, the edge and the preset's cards),
the FEFF version and :data:`CACHE_SCHEMA`. Layout::

    <root>/ab/abcdef....json     one entry: a spectrum or a recorded failure
    <root>/index/<id>.json       key index: cheap job fingerprint -> key (see below)

Properties:

* **Atomic.** Every file is written to a temporary file in the same directory (``.*.tmp``),
  flushed to disk and renamed over the final name (:func:`os.replace`), so a reader sees the
  old entry, the new entry or nothing, never a half-written file. A process killed in the
  middle of a write leaves at most a temporary file, which is never read as an entry and
  which :meth:`SpectrumCache.clean_temp` removes.
* **Self-checking.** An entry that cannot be parsed (truncated, edited, wrong key, arrays of
  unequal length, non-finite or non-increasing energies) is treated as a miss: the spectrum is
  recomputed and the file replaced. The build never crashes on a bad cache file.
* **Failures are cached too.** A FEFF run that failed is stored with its error message and the
  FEFF stage that failed, so a rerun of a large build does not retry known-bad sites forever
  (:func:`specfusion_lib.simulate.runner.run_jobs` retries them with ``retry_failed=True``).
* **Content-addressed.** ``TITLE`` lines of ``feff.inp`` are comments for FEFF and are left out
  of the key, so the same structure under two material ids shares one entry.

The key index exists because building the ``feff.inp`` text is not free: pymatgen's cluster
construction takes ~0.1 s for a 50-atom cell, hours for a Materials-Project-sized build. The
runner therefore remembers, per job, a cheap fingerprint (the structure's JSON, site, edge,
preset cards, FEFF and pymatgen versions, and the declared
:data:`~specfusion_lib.simulate.feff.FEFF_INPUT_VERSION` of the feff.inp writer) -> key in
``index/``; a rerun looks keys up instead of rebuilding every input. Losing or invalidating the
index only costs recomputing keys, never spectra.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from specfusion_lib.core.atomic import TEMP_SUFFIX, atomic_write_text
from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.simulate.feff import CLUSTER_RADIUS, SiteSpectrum, failed_stage

__all__ = [
    "CACHE_SCHEMA",
    "CacheEntry",
    "CacheStats",
    "SpectrumCache",
    "cache_key",
    "failed_stage",
]

#: Version of the entry format; part of every key, so a format change never reads old files.
CACHE_SCHEMA = 1

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_INDEX_DIR = "index"
#: Merge the key index into one file when it has more files than this.
_INDEX_COMPACT_AT = 32
#: Temporary files older than this (seconds) belong to a writer that died.
STALE_TEMP_S = 300.0


def cache_key(feff_inp: str, feff_version: str) -> str:
    """The cache key of one site spectrum.

    Args:
        feff_inp: The ``feff.inp`` text of the site (:func:`~specfusion_lib.simulate.feff.
            feff_input`). ``TITLE`` lines are ignored (FEFF treats them as comments), and so
            are trailing blanks and line-ending differences.
        feff_version: FEFF version string (:func:`~specfusion_lib.simulate.feff.feff_version`).

    Returns:
        SHA-256 hex digest (64 characters) of the schema version, the FEFF version and the
        normalised input text.
    """
    lines = [ln.rstrip() for ln in feff_inp.splitlines()]
    body = "\n".join(ln for ln in lines if not ln.lstrip().upper().startswith("TITLE"))
    digest = hashlib.sha256()
    for part in (f"specfusion-feff-cache/{CACHE_SCHEMA}", feff_version.strip(), body.strip()):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One cache entry: a site spectrum or a recorded failure.

    Attributes:
        key: The entry's key.
        spectrum: The site spectrum, or ``None`` for a failure.
        error: The error message of a failed run, else ``None``.
        stage: The FEFF stage that failed, if known.
        metadata: What was stored with the entry (material id, formula, element, site index,
            multiplicity, edge, preset, FEFF version, wall time, creation time, ...).
    """

    key: str
    spectrum: SiteSpectrum | None
    error: str | None = None
    stage: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether the entry records a failure."""
        return self.spectrum is None


@dataclass(frozen=True)
class CacheStats:
    """Counts of the files in a cache (see :meth:`SpectrumCache.stats`).

    Attributes:
        spectra: Valid spectrum entries.
        failures: Valid failure entries.
        corrupt: Entry files that cannot be read (they count as misses).
        temp_files: Temporary files of interrupted writes.
        index_keys: Fingerprint -> key mappings in the key index.
        bytes: Total size of the entry files.
    """

    spectra: int
    failures: int
    corrupt: int
    temp_files: int
    index_keys: int
    bytes: int

    @property
    def entries(self) -> int:
        """Valid entries (spectra and failures)."""
        return self.spectra + self.failures


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _clean(value: Any) -> Any:
    """JSON-safe copy of metadata values (numpy scalars, tuples, NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _json_float(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


class SpectrumCache:
    """Content-addressed store of FEFF site spectra under a root directory.

    Safe to share between runs and between processes on one file system: entries are written
    atomically and never modified in place; two writers of the same key write the same
    content (last one wins).

    Args:
        root: Cache directory (created if missing).

    Raises:
        ConfigurationError: If ``root`` exists and is not a directory.

    Example::

        cache = SpectrumCache("data/cache/feff")
        key = cache.key(feff_input(structure, 0, preset="fast"))
        if key not in cache:
            cache.put(key, simulate_site(structure, 0, preset="fast"))
        spectrum = cache.get(key).spectrum
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ConfigurationError(f"FEFF cache {self.root}: exists and is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        #: Keys whose file was found unreadable by :meth:`get` in this object's lifetime.
        self.corrupt_keys: set[str] = set()

    def __repr__(self) -> str:
        return f"SpectrumCache({str(self.root)!r})"

    # ---------------------------------------------------------------------------- keys, paths

    @staticmethod
    def key(feff_inp: str, feff_version: str | None = None) -> str:
        """:func:`cache_key` of an input, with the installed FEFF version by default.

        Args:
            feff_inp: The site's ``feff.inp`` text.
            feff_version: FEFF version string; default
                :func:`~specfusion_lib.simulate.feff.feff_version`.

        Returns:
            The 64-character key.
        """
        if feff_version is None:
            from specfusion_lib.simulate.feff import feff_version as installed

            feff_version = installed()
        return cache_key(feff_inp, feff_version)

    def path(self, key: str) -> Path:
        """The entry file of a key.

        Raises:
            ConfigurationError: If ``key`` is not a 64-character lowercase hex string.
        """
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ConfigurationError(f"invalid FEFF cache key {key!r} (expected SHA-256 hex)")
        return self.root / key[:2] / f"{key}.json"

    # ---------------------------------------------------------------------------- read

    def _read(self, key: str) -> CacheEntry | None:
        path = self.path(key)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            self.corrupt_keys.add(key)
            return None
        entry = _parse_entry(key, raw)
        if entry is None:
            self.corrupt_keys.add(key)
        return entry

    def get(self, key: str) -> CacheEntry | None:
        """The entry of a key.

        Args:
            key: A key from :func:`cache_key` / :meth:`key`.

        Returns:
            The :class:`CacheEntry` (check :attr:`CacheEntry.failed`), or ``None`` when there
            is no readable entry. An unreadable (corrupt) file counts as a miss; its key is
            added to :attr:`corrupt_keys` and the next :meth:`put` replaces the file.
        """
        return self._read(key)

    def __contains__(self, key: object) -> bool:
        """Whether a readable entry (spectrum or failure) exists for ``key``."""
        return isinstance(key, str) and self._read(key) is not None

    # ---------------------------------------------------------------------------- write

    def put(self, key: str, spectrum: SiteSpectrum, **metadata: Any) -> Path:
        """Store a site spectrum atomically.

        Args:
            key: The spectrum's key.
            spectrum: The result of :func:`~specfusion_lib.simulate.feff.simulate_site`.
            **metadata: Extra JSON-able metadata to keep (``material_id``, ``formula``, ...).
                The spectrum's own fields (element, site index, multiplicity, edge, preset,
                FEFF version, wall time, cards) are always stored.

        Returns:
            The entry file.

        Raises:
            ConfigurationError: If the spectrum's arrays are unusable (unequal lengths,
                non-finite values or energies not strictly increasing).
        """
        energy = np.asarray(spectrum.energy, dtype=np.float64)
        mu = np.asarray(spectrum.mu, dtype=np.float64)
        if not _valid_arrays(energy, mu):
            raise ConfigurationError(
                f"refusing to cache an unusable spectrum (key {key[:12]}...): energy and mu "
                "must be finite, of equal length >= 2, with strictly increasing energy"
            )
        meta = {
            "element": spectrum.element,
            "site_index": int(spectrum.site_index),
            "multiplicity": int(spectrum.multiplicity),
            "edge": spectrum.edge,
            "preset": spectrum.preset,
            "feff_version": spectrum.feff_version,
            "wall_time_s": float(spectrum.wall_time_s),
            "cards": dict(spectrum.cards),
            "radius": float(spectrum.radius),
            "retry": spectrum.retry,
        }
        meta.update(metadata)
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        doc = {
            "schema": CACHE_SCHEMA,
            "key": key,
            "status": "ok",
            "energy": energy.tolist(),
            "mu": mu.tolist(),
            "e_fermi": _json_float(spectrum.e_fermi),
            "metadata": _clean(meta),
        }
        path = self.path(key)
        atomic_write_text(path, json.dumps(doc, allow_nan=False, separators=(",", ":")))
        self.corrupt_keys.discard(key)
        return path

    def put_failure(self, key: str, message: str, stage: str | None = None,
                    **metadata: Any) -> Path:
        """Record that the simulation of a key failed.

        Args:
            key: The key.
            message: The error message.
            stage: The FEFF stage that failed; default: parsed from ``message``
                (:func:`failed_stage`).
            **metadata: Extra JSON-able metadata (material id, element, site index, ...).

        Returns:
            The entry file.
        """
        meta = dict(metadata)
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        doc = {
            "schema": CACHE_SCHEMA,
            "key": key,
            "status": "failed",
            "error": str(message),
            "stage": stage if stage is not None else failed_stage(str(message)),
            "metadata": _clean(meta),
        }
        path = self.path(key)
        atomic_write_text(path, json.dumps(doc, allow_nan=False, separators=(",", ":")))
        self.corrupt_keys.discard(key)
        return path

    def discard(self, key: str) -> bool:
        """Remove the entry of a key; returns whether a file was removed."""
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    # ---------------------------------------------------------------------------- key index

    def load_key_index(self) -> dict[str, str]:
        """All fingerprint -> key mappings of the key index (unreadable files are skipped)."""
        index: dict[str, str] = {}
        for path in self._index_files():
            index.update(_read_index(path))
        return index

    def save_key_index(self, mapping: Mapping[str, str]) -> Path | None:
        """Add fingerprint -> key mappings to the index (one new file, written atomically).

        When the index has grown beyond a few dozen files they are merged into one.

        Args:
            mapping: New mappings.

        Returns:
            The file written, or ``None`` if ``mapping`` is empty.
        """
        if not mapping:
            return None
        clean = {str(k): str(v) for k, v in mapping.items() if _KEY_RE.match(str(v))}
        path = self.root / _INDEX_DIR / f"{uuid.uuid4().hex}.json"
        atomic_write_text(path, json.dumps({"schema": CACHE_SCHEMA, "keys": clean}))
        files = self._index_files()
        if len(files) > _INDEX_COMPACT_AT:
            merged: dict[str, str] = {}
            for f in files:
                merged.update(_read_index(f))
            target = self.root / _INDEX_DIR / f"{uuid.uuid4().hex}.json"
            atomic_write_text(target, json.dumps({"schema": CACHE_SCHEMA, "keys": merged}))
            for f in files:
                with contextlib.suppress(OSError):
                    f.unlink()
            return target
        return path

    def _index_files(self) -> list[Path]:
        folder = self.root / _INDEX_DIR
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))

    # ---------------------------------------------------------------------------- maintenance

    def _entry_files(self) -> Iterator[Path]:
        for sub in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            if sub.is_dir():
                yield from sorted(p for p in sub.glob("*.json") if not p.name.startswith("."))

    def _temp_files(self) -> list[Path]:
        return [p for p in self.root.rglob(f".*{TEMP_SUFFIX}") if p.is_file()]

    def keys(self) -> Iterator[str]:
        """Keys of all entry files (readable or not)."""
        for path in self._entry_files():
            if _KEY_RE.match(path.stem):
                yield path.stem

    def __iter__(self) -> Iterator[str]:
        """Iterate over :meth:`keys`."""
        return self.keys()

    def clean_temp(self, older_than_s: float = STALE_TEMP_S) -> int:
        """Remove temporary files left by writers that died (killed mid-write).

        Args:
            older_than_s: Only files older than this are removed, so that a concurrent
                writer's file in flight is left alone.

        Returns:
            The number of files removed.
        """
        now = time.time()
        removed = 0
        for path in self._temp_files():
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime >= older_than_s:
                    path.unlink()
                    removed += 1
        return removed

    def stats(self) -> CacheStats:
        """Counts of entries, failures, corrupt files and leftovers (reads every entry)."""
        spectra = failures = corrupt = size = 0
        for path in self._entry_files():
            try:
                raw = path.read_text(encoding="utf-8")
                size += path.stat().st_size
            except (OSError, UnicodeDecodeError):
                corrupt += 1
                continue
            entry = _parse_entry(path.stem, raw)
            if entry is None:
                corrupt += 1
            elif entry.failed:
                failures += 1
            else:
                spectra += 1
        return CacheStats(spectra=spectra, failures=failures, corrupt=corrupt,
                          temp_files=len(self._temp_files()),
                          index_keys=len(self.load_key_index()), bytes=size)


# -------------------------------------------------------------------------------- parsing


def _valid_arrays(energy: np.ndarray, mu: np.ndarray) -> bool:
    return (
        energy.ndim == 1
        and energy.shape == mu.shape
        and energy.size >= 2
        and bool(np.all(np.isfinite(energy)))
        and bool(np.all(np.isfinite(mu)))
        and bool(np.all(np.diff(energy) > 0))
    )


def _parse_entry(key: str, raw: str) -> CacheEntry | None:
    """The entry in ``raw``, or ``None`` if it is not a complete, consistent entry."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("schema") != CACHE_SCHEMA or doc.get("key") != key:
        return None
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return None
    status = doc.get("status")
    if status == "failed":
        error = doc.get("error")
        stage = doc.get("stage")
        if not isinstance(error, str) or not (stage is None or isinstance(stage, str)):
            return None
        return CacheEntry(key=key, spectrum=None, error=error, stage=stage, metadata=meta)
    if status != "ok":
        return None
    try:
        energy = np.asarray(doc["energy"], dtype=np.float64)
        mu = np.asarray(doc["mu"], dtype=np.float64)
        e_fermi = doc.get("e_fermi")
        e_fermi = math.nan if e_fermi is None else float(e_fermi)
        spectrum = SiteSpectrum(
            energy=energy,
            mu=mu,
            element=str(meta["element"]),
            site_index=int(meta["site_index"]),
            edge=str(meta["edge"]),
            preset=str(meta["preset"]),
            feff_version=str(meta["feff_version"]),
            wall_time_s=float(meta["wall_time_s"]),
            multiplicity=int(meta.get("multiplicity", 1)),
            e_fermi=e_fermi,
            cards=dict(meta.get("cards") or {}),
            radius=float(meta.get("radius", CLUSTER_RADIUS)),
            retry=str(meta.get("retry") or ""),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if not _valid_arrays(energy, mu):
        return None
    energy.setflags(write=False)
    mu.setflags(write=False)
    return CacheEntry(key=key, spectrum=spectrum, metadata=meta)


def _read_index(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != CACHE_SCHEMA:
        return {}
    keys = doc.get("keys")
    if not isinstance(keys, dict):
        return {}
    return {str(k): v for k, v in keys.items() if isinstance(v, str) and _KEY_RE.match(v)}
