"""Materials Project data source (SPEC §3, source 1).

Downloads the paper's selection of Materials Project (MP) materials through ``mp-api`` and
writes it as a snapshot (:mod:`specfusion_lib.data.snapshot`):

* **Selection** (as in the paper): 2–5 elements, at least one transition metal (Sc–Zn, Y–Cd,
  :data:`specfusion_lib.core.elements.TRANSITION_METALS`), no noble gases; deprecated MP entries are
  left out. By default (``require_xanes=True``) only materials that have K-edge XANES in MP's
  XAS collection are kept, and with the transition-metal rule at least one of those spectra
  must be of a transition metal: the models of the paper need TM spectra.
  The number of elements, the excluded noble gases, the XAS availability
  (``has_props=["xas"]``) and the deprecation flag are filtered by the server; "at least one
  transition metal" is asked as one query per transition metal (the API's ``elements`` filter
  means "contains all of"), and every rule is checked again on the client on the returned
  structures (:func:`in_selection`).
* **Labels**: the summary fields named in :data:`~specfusion_lib.data.snapshot.LABEL_FIELDS`
  (``band_gap``, ``is_gap_direct``, ``is_metal``, ``is_magnetic``, ``ordering``,
  ``formation_energy_per_atom``, ``efermi``, ``density``, ``symmetry.crystal_system``) and the
  structure (:func:`summary_doc_to_record`). Absent values stay ``None``; MP's ordering
  ``"Unknown"`` counts as absent. Per absorbing-site oxidation states (bond valence) and
  coordination numbers (CrystalNN) are computed from the MP structure with
  :func:`specfusion_lib.data.structure_labels.structure_labels` (``site_labels=True``).
* **Spectra**: every K-edge XANES document of MP's XAS collection for those materials
  (:func:`xas_doc_to_record`). The collection holds one spectrum per (material, absorbing
  element, edge, type): the site-weighted average over the element's inequivalent sites of
  FEFF9 spectra. They are stored on MP's own energy grid with ``source="mp:xas"``.

Paging, resume and retries
--------------------------
The work is split into three resumable steps, each persisted in a cache folder (default
``<out>.partial/``) with atomic writes (temporary file + :func:`os.replace`):

1. the list of material ids (one small JSON file per server query, then ``ids.json``);
2. chunks of ``chunk_size`` ids: summary documents, then the XAS documents of the chunk's
   selected materials; each finished chunk is one JSON-lines file ``chunk-NNNNN.jsonl``;
3. per-site labels, one ``sites-NNNNN.json`` per chunk (CPU work, no network).

An interrupted run (network failure, Ctrl-C, crash) started again with the same arguments
skips every finished file. The cache remembers the arguments that define its content; a run
with different ones refuses to mix them (:class:`~specfusion_lib.core.errors.ConfigurationError`).
Each request is retried on transient errors (``MPRestError`` from the client, ``requests``
network errors, timeouts) with exponential backoff (``backoff_s``, ``2 * backoff_s``, ...);
client errors that cannot succeed on a retry (HTTP 4xx other than 408/429, a bad API key)
fail at once. A request that still fails raises
:class:`~specfusion_lib.core.errors.DataSourceError` naming the step and chunk. Once the snapshot
is written the cache folder is removed.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pymatgen.core import Structure
from tqdm.auto import tqdm

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.elements import NOBLE_GASES, TRANSITION_METALS
from specfusion_lib.core.errors import (
    ConfigurationError,
    DataSourceError,
    MissingAPIKeyError,
    SnapshotError,
    SpecfusionError,
)
from specfusion_lib.core.tasks import CRYSTAL_SYSTEMS, TASKS
from specfusion_lib.data.snapshot import (
    LABEL_FIELDS,
    MaterialRecord,
    SpectrumRecord,
    write_snapshot,
)

logger = logging.getLogger(__name__)

__all__ = [
    "API_KEY_HELP",
    "DEFAULT_BACKOFF_S",
    "DEFAULT_CHUNK_SIZE",
    "MP_LABEL_SOURCE",
    "SUMMARY_FIELDS",
    "XAS_EDGE",
    "XAS_FIELDS",
    "XAS_SPECTRUM_TYPE",
    "fetch_mp_snapshot",
    "in_selection",
    "resolve_api_key",
    "summary_doc_to_record",
    "xas_doc_to_record",
]

T = TypeVar("T")

#: Summary fields requested per material (labels, symmetry and structure).
SUMMARY_FIELDS: tuple[str, ...] = (
    "material_id",
    "band_gap",
    "is_gap_direct",
    "is_metal",
    "is_magnetic",
    "ordering",
    "formation_energy_per_atom",
    "efermi",
    "density",
    "symmetry",
    "structure",
)
#: Fields requested from the XAS collection (emmet-core ``XASDoc``; ``task_id`` is the
#: material id there).
XAS_FIELDS: tuple[str, ...] = ("task_id", "absorbing_element", "edge", "spectrum_type",
                               "spectrum")
#: Absorption edge and spectrum type kept from the XAS collection.
XAS_EDGE = "K"
XAS_SPECTRUM_TYPE = "XANES"
#: Provenance of the summary labels written to the manifest.
MP_LABEL_SOURCE = "Materials Project summary (DFT)"
#: Provenance of the per-site labels.
SITE_LABEL_SOURCE = ("specfusion_lib.data.structure_labels on the MP structure: bond valence "
                     "(pymatgen BVAnalyzer) oxidation states, CrystalNN coordination numbers")
#: Help shown when no API key is found.
API_KEY_HELP = (
    "No Materials Project API key found. Get a free key at "
    "https://next-gen.materialsproject.org/api (log in, then copy it from the API page), "
    "then either `export MP_API_KEY=<your key>` or pass it with `--api-key` "
    "(api_key=... in Python)."
)
DEFAULT_CHUNK_SIZE = 500
DEFAULT_BACKOFF_S = 2.0

_CACHE_FORMAT = 1
_ORDERINGS = frozenset(TASKS["ordering"].classes)
# MPRestError messages that a retry cannot fix (the client folds HTTP errors into one type).
_STATUS_RE = re.compile(r"status code (\d{3})")
_PERMANENT_MARKERS = ("API key", "does not support the request", "unknown to",
                      "is not a valid property", "is invalid")


# --------------------------------------------------------------------------- selection


def in_selection(
    elements: Iterable[str],
    *,
    elements_range: tuple[int, int] = (2, 5),
    require_transition_metal: bool = True,
    exclude_noble_gases: bool = True,
) -> bool:
    """Whether a composition passes the paper's selection.

    Args:
        elements: Element symbols of the material (duplicates are ignored).
        elements_range: Inclusive minimum and maximum number of distinct elements.
        require_transition_metal: Require at least one of Sc–Zn, Y–Cd.
        exclude_noble_gases: Reject any noble gas.

    Returns:
        True when every rule holds.
    """
    symbols = {str(el) for el in elements}
    lo, hi = elements_range
    if not lo <= len(symbols) <= hi:
        return False
    if require_transition_metal and not symbols & TRANSITION_METALS:
        return False
    return not (exclude_noble_gases and symbols & NOBLE_GASES)


@dataclass(frozen=True)
class _Selection:
    elements_range: tuple[int, int]
    require_transition_metal: bool
    exclude_noble_gases: bool
    require_xanes: bool
    max_materials: int | None

    def accepts(self, elements: Iterable[str]) -> bool:
        return in_selection(elements, elements_range=self.elements_range,
                            require_transition_metal=self.require_transition_metal,
                            exclude_noble_gases=self.exclude_noble_gases)

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "elements_range": list(self.elements_range),
            "require_transition_metal": self.require_transition_metal,
            "transition_metals": sorted(TRANSITION_METALS) if self.require_transition_metal
            else None,
            "exclude_noble_gases": self.exclude_noble_gases,
            "noble_gases": sorted(NOBLE_GASES) if self.exclude_noble_gases else None,
            "require_xanes": self.require_xanes,
            "deprecated": False,
            "max_materials": self.max_materials,
            "xas": {"edge": XAS_EDGE, "spectrum_type": XAS_SPECTRUM_TYPE},
        }


# --------------------------------------------------------------------------- conversion


def _field(doc: Any, name: str) -> Any:
    """A field of an emmet document, an mp-api partial document or a plain dict (or None)."""
    if isinstance(doc, Mapping):
        return doc.get(name)
    return getattr(doc, name, None)


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _symbol(value: Any) -> str:
    symbol = getattr(value, "symbol", None)
    return str(symbol if symbol is not None else _enum_value(value))


def _display_id(value: Any) -> str:
    """String of an MP id; AlphaIDs of legacy materials in their ``mp-<int>`` form."""
    legacy = getattr(value, "string", None)
    return str(legacy) if isinstance(legacy, str) else str(value)


@cache
def _id_key(material_id: str) -> tuple[str, int, str]:
    """Key identifying a material whichever id spelling is used (``mp-149`` = ``mp-ft``).

    MP mints ids as integers rendered either as ``mp-<int>`` (legacy) or as alphabetical
    AlphaIDs; summary and XAS documents need not use the same rendering.
    """
    from emmet.core.mpid import AlphaID

    try:
        alpha = AlphaID(material_id)
        prefix, number = alpha.parts
        return (str(prefix), int(number), "")
    except (ValueError, TypeError, IndexError):
        return ("", -1, str(material_id))


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def summary_doc_to_record(doc: Any) -> MaterialRecord:
    """Convert an MP summary document into a :class:`MaterialRecord`.

    Pure function: no network access. Accepts an emmet-core ``SummaryDoc``, the partial
    documents mp-api returns when ``fields`` are given, or the plain dict form
    (``use_document_model=False``).

    Args:
        doc: The summary document.

    Returns:
        The record with the labels of :data:`LABEL_FIELDS`: ``crystal_system`` from
        ``symmetry.crystal_system`` in lower case, ``ordering`` as ``"NM"``, ``"FM"``,
        ``"AFM"`` or ``"FiM"`` (MP's ``"Unknown"`` becomes ``None``); absent or non-finite
        values stay ``None``. ``sites`` is left ``None``.

    Raises:
        DataSourceError: The document has no material id or no structure.
    """
    raw_id = _field(doc, "material_id")
    if raw_id is None:
        raise DataSourceError("Materials Project summary document without material_id")
    material_id = str(raw_id)
    structure = _field(doc, "structure")
    if structure is None:
        raise DataSourceError(f"Materials Project material {material_id}: no structure in the "
                              "summary document")
    if isinstance(structure, Mapping):
        structure = Structure.from_dict(structure)
    if not isinstance(structure, Structure):
        raise DataSourceError(f"Materials Project material {material_id}: structure of "
                              f"unexpected type {type(structure).__name__}")

    labels: dict[str, Any] = {}
    for name, kind in LABEL_FIELDS.items():
        if name == "crystal_system":
            continue
        value = _field(doc, name)
        if value is None:
            labels[name] = None
        elif kind == "float":
            labels[name] = _float_or_none(value)
        elif kind == "bool":
            labels[name] = bool(value)
        else:
            labels[name] = str(_enum_value(value))
    if labels.get("ordering") not in _ORDERINGS:
        labels["ordering"] = None

    symmetry = _field(doc, "symmetry")
    system = None if symmetry is None else _field(symmetry, "crystal_system")
    system = None if system is None else str(_enum_value(system)).strip().lower()
    labels["crystal_system"] = system if system in CRYSTAL_SYSTEMS else None
    return MaterialRecord(material_id=material_id, structure=structure, labels=labels)


def _clean_grid(energy: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by energy and average μ over exactly repeated energies."""
    if energy.size > 1 and np.any(np.diff(energy) <= 0):
        grid, inverse = np.unique(energy, return_inverse=True)
        mu = np.bincount(inverse, weights=mu) / np.bincount(inverse)
        energy = grid
    return energy, mu


def xas_doc_to_record(doc: Any, *, material_id: str | None = None) -> SpectrumRecord:
    """Convert an MP XAS document into a :class:`SpectrumRecord` (``source="mp:xas"``).

    Pure function: no network access. Accepts an emmet-core ``XASDoc``, an mp-api partial
    document or the plain dict form. The spectrum is kept on MP's energy grid: ``energy`` is
    ``spectrum.x`` (eV) and ``mu`` is ``spectrum.y``; points are sorted by energy and exactly
    repeated energies averaged (MP's grids are already strictly increasing).

    Args:
        doc: The XAS document. Its ``spectrum`` is a pymatgen ``XAS`` (or its dict).
        material_id: Material id to store; default the document's ``task_id`` (the material
            id in MP's XAS collection; ``material_id`` in older documents), legacy AlphaIDs
            written as ``mp-<int>``.

    Returns:
        The spectrum record; ``kind`` is the document's spectrum type (``"XANES"``).

    Raises:
        DataSourceError: No id, absorbing element, edge or spectrum, or NaN in the spectrum.
    """
    raw_id = material_id
    if raw_id is None:
        raw_id = _field(doc, "task_id")
        if raw_id is None:
            raw_id = _field(doc, "material_id")
    if raw_id is None:
        raise DataSourceError("Materials Project XAS document without task_id/material_id")
    mid = _display_id(raw_id)
    element, edge = _field(doc, "absorbing_element"), _field(doc, "edge")
    spectrum = _field(doc, "spectrum")
    if element is None or edge is None or spectrum is None:
        raise DataSourceError(f"Materials Project XAS document of {mid}: absorbing_element, "
                              "edge or spectrum missing")
    spectrum_type = _field(doc, "spectrum_type")
    kind = XAS_SPECTRUM_TYPE if spectrum_type is None else str(_enum_value(spectrum_type))
    energy = np.asarray(_field(spectrum, "x"), dtype=float).ravel()
    mu = np.asarray(_field(spectrum, "y"), dtype=float).ravel()
    key = f"{mid} {_symbol(element)} {_enum_value(edge)}"
    if energy.size == 0 or energy.shape != mu.shape:
        raise DataSourceError(f"Materials Project XAS spectrum {key}: x and y are empty or of "
                              f"different lengths ({energy.size}, {mu.size})")
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))):
        raise DataSourceError(f"Materials Project XAS spectrum {key}: NaN or inf in x or y")
    energy, mu = _clean_grid(energy, mu)
    return SpectrumRecord(material_id=mid, element=_symbol(element),
                          edge=str(_enum_value(edge)), energy=energy, mu=mu,
                          source="mp:xas", kind=kind)


# --------------------------------------------------------------------------- retries


def resolve_api_key(api_key: str | None = None) -> str:
    """The API key from the argument or the ``MP_API_KEY`` environment variable.

    Raises:
        MissingAPIKeyError: Neither is set; the message says how to get a key.
    """
    key = api_key if api_key else os.environ.get("MP_API_KEY", "")
    key = key.strip()
    if not key:
        raise MissingAPIKeyError(API_KEY_HELP)
    return key


@cache
def _transient_errors() -> tuple[type[BaseException], ...]:
    import requests
    from mp_api.client.core.exceptions import MPRestError

    return (MPRestError, requests.exceptions.RequestException, ConnectionError, TimeoutError)


def _is_permanent(exc: BaseException) -> bool:
    message = str(exc)
    status = _STATUS_RE.search(message)
    if status and status.group(1).startswith("4") and status.group(1) not in {"408", "429"}:
        return True
    return any(marker in message for marker in _PERMANENT_MARKERS)


def _with_retries(call: Callable[[], T], *, what: str, retries: int, backoff_s: float,
                  sleep: Callable[[float], None] | None = None) -> T:
    """Run ``call``; retry transient errors with exponential backoff, then DataSourceError."""
    errors = _transient_errors()
    sleep = sleep or time.sleep
    for attempt in range(retries + 1):
        try:
            return call()
        except errors as exc:
            if _is_permanent(exc):
                raise DataSourceError(
                    f"Materials Project request for {what} failed: {exc}") from exc
            if attempt == retries:
                raise DataSourceError(
                    f"Materials Project request for {what} failed after {retries + 1} "
                    f"attempt(s): {type(exc).__name__}: {exc}. Run again to resume; finished "
                    "work is kept.") from exc
            logger.warning("Materials Project request for %s: %s: %s; retry %d of %d in %.0f s",
                           what, type(exc).__name__, exc, attempt + 1, retries,
                           backoff_s * 2**attempt)
            sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _accepts(func: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def _open_client(client: Any, api_key: str | None, *, retries: int,
                 backoff_s: float) -> Iterator[Any]:
    if client is not None:
        yield client
        return

    def connect() -> Any:
        from mp_api.client import MPRester

        return MPRester(api_key=api_key, mute_progress_bars=True)  # ours are shown instead

    rester = _with_retries(connect, what="connecting to the API", retries=retries,
                           backoff_s=backoff_s)
    with rester:
        yield rester


# --------------------------------------------------------------------------- cache


class _Cache:
    """Resumable work folder: id lists, finished chunks and site labels."""

    def __init__(self, root: Path, fingerprint: dict[str, Any]) -> None:
        self.root = root
        self.fingerprint = fingerprint
        state_path = root / "state.json"
        if state_path.is_file():
            try:
                state = json.loads(state_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataSourceError(f"{state_path}: unreadable cache state ({exc}); delete "
                                      f"{root} to start over") from exc
            if state.get("fingerprint") != fingerprint:
                raise ConfigurationError(
                    f"{root}: this resume cache was made with different settings "
                    f"({state.get('fingerprint')}) than now ({fingerprint}); run with the "
                    f"same settings to resume, or delete {root} (or pass another cache_dir) "
                    "to start over")
            self.state = state
        else:
            (root / "ids").mkdir(parents=True, exist_ok=True)
            self.state = {"fingerprint": fingerprint}
            self.save_state()

    def save_state(self) -> None:
        atomic_write_text(self.root / "state.json", json.dumps(self.state, indent=1))

    def _read_json(self, path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            warnings.warn(f"{path}: unreadable cache file; fetching it again", stacklevel=3)
            return None

    def read_ids(self, label: str | None = None) -> list[str] | None:
        return self._read_json(self.root / ("ids.json" if label is None
                                            else f"ids/{label}.json"))

    def write_ids(self, ids: Sequence[str], label: str | None = None) -> None:
        path = self.root / ("ids.json" if label is None else f"ids/{label}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(list(ids)))

    def chunk_path(self, index: int) -> Path:
        return self.root / f"chunk-{index:05d}.jsonl"

    def read_chunk(self, index: int, ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """Rows of a finished chunk, or None when it must be fetched (again)."""
        path = self.chunk_path(index)
        if not path.is_file():
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        except json.JSONDecodeError:
            warnings.warn(f"{path}: unreadable chunk file; fetching the chunk again",
                          stacklevel=3)
            return None
        if not rows or rows[0].get("record") != "chunk" or rows[0].get("ids") != list(ids):
            warnings.warn(f"{path}: chunk file does not match the id list; fetching again",
                          stacklevel=3)
            return None
        return rows

    def write_chunk(self, index: int, rows: Sequence[Mapping[str, Any]]) -> None:
        atomic_write_text(self.chunk_path(index),
                           "".join(json.dumps(row) + "\n" for row in rows))

    def read_sites(self, index: int) -> dict[str, Any] | None:
        return self._read_json(self.root / f"sites-{index:05d}.json")

    def write_sites(self, index: int, sites: Mapping[str, Any]) -> None:
        atomic_write_text(self.root / f"sites-{index:05d}.json", json.dumps(dict(sites)))


# --------------------------------------------------------------------------- fetching


def _list_material_ids(mpr: Any, selection: _Selection, cache_: _Cache, *, retries: int,
                       backoff_s: float, progress: bool) -> list[str]:
    """Step 1: ids of the selected materials (cached per server query, then as a whole)."""
    cached = cache_.read_ids()
    if cached is not None:
        logger.info("MP material ids: %d from the resume cache", len(cached))
        return cached
    search = mpr.materials.summary.search
    common: dict[str, Any] = {
        "num_elements": tuple(selection.elements_range),
        "deprecated": False,
        "fields": ["material_id"],
    }
    if selection.exclude_noble_gases:
        common["exclude_elements"] = sorted(NOBLE_GASES)
    if selection.require_xanes:
        common["has_props"] = ["xas"]
    if _accepts(search, "include_gnome"):
        common["include_gnome"] = False  # GNoMe r2SCAN entries: no XAS, other functional
    queries: list[tuple[str, dict[str, Any]]] = (
        [(tm, {"elements": [tm]}) for tm in sorted(TRANSITION_METALS)]
        if selection.require_transition_metal else [("all", {})]
    )
    found: dict[tuple[str, int, str], str] = {}
    for label, extra in tqdm(queries, desc="MP material ids", unit="query",
                             disable=not progress):
        part = cache_.read_ids(label)
        if part is None:
            docs = _with_retries(lambda extra=extra: search(**common, **extra),
                                 what=f"the material-id list (query {label!r})",
                                 retries=retries, backoff_s=backoff_s)
            part = [str(_field(doc, "material_id")) for doc in docs
                    if _field(doc, "material_id") is not None]
            cache_.write_ids(part, label)
        for mid in part:
            found.setdefault(_id_key(mid), mid)
    ids = [found[key] for key in sorted(found)]
    if selection.max_materials is not None:
        ids = ids[: selection.max_materials]
    cache_.write_ids(ids)
    logger.info("MP material ids: %d selected (%d queries)", len(ids), len(queries))
    return ids


def _material_row(record: MaterialRecord) -> dict[str, Any]:
    return {"record": "material", "material_id": record.material_id,
            "structure": record.structure.as_dict(), "labels": record.labels}


def _spectrum_row(record: SpectrumRecord) -> dict[str, Any]:
    return {"record": "spectrum", "material_id": record.material_id,
            "element": record.element, "edge": record.edge, "kind": record.kind,
            "source": record.source, "energy": record.energy.tolist(),
            "mu": record.mu.tolist()}


def _fetch_chunk(mpr: Any, index: int, ids: Sequence[str], selection: _Selection, *,
                 retries: int, backoff_s: float) -> list[dict[str, Any]]:
    """Step 2 for one chunk: summary documents, client-side selection, XAS documents."""
    where = f"chunk {index} ({len(ids)} ids, {ids[0]} … {ids[-1]})"
    counts = {"requested": len(ids), "not_returned": 0, "bad_document": 0,
              "outside_selection": 0, "without_xanes": 0, "materials": 0, "spectra": 0,
              "bad_spectrum": 0, "duplicate_spectrum": 0}
    docs = _with_retries(
        lambda: mpr.materials.summary.search(material_ids=list(ids),
                                             fields=list(SUMMARY_FIELDS)),
        what=f"summary documents of {where}", retries=retries, backoff_s=backoff_s)
    wanted = {_id_key(mid) for mid in ids}
    returned: set[tuple[str, int, str]] = set()
    materials: dict[tuple[str, int, str], MaterialRecord] = {}
    for doc in docs:
        try:
            record = summary_doc_to_record(doc)
        except (DataSourceError, SnapshotError, ValueError, KeyError) as exc:
            counts["bad_document"] += 1
            warnings.warn(f"{where}: skipped a summary document ({exc})", stacklevel=2)
            continue
        key = _id_key(record.material_id)
        if key not in wanted or key in returned:
            continue
        returned.add(key)
        if not selection.accepts(el.symbol for el in record.structure.composition.elements):
            counts["outside_selection"] += 1
            continue
        materials[key] = record
    counts["not_returned"] = len(wanted - returned)

    spectra: dict[tuple[str, str, str], SpectrumRecord] = {}
    if materials:
        from emmet.core.types.enums import XasEdge, XasType

        xas_docs = _with_retries(
            lambda: mpr.materials.xas.search(
                task_ids=[m.material_id for m in materials.values()],
                edge=XasEdge(XAS_EDGE), spectrum_type=XasType(XAS_SPECTRUM_TYPE),
                fields=list(XAS_FIELDS)),
            what=f"XAS documents of {where}", retries=retries, backoff_s=backoff_s)
        for doc in xas_docs:
            if (str(_enum_value(_field(doc, "edge"))) != XAS_EDGE
                    or str(_enum_value(_field(doc, "spectrum_type"))) != XAS_SPECTRUM_TYPE):
                continue
            raw_id = _field(doc, "task_id") or _field(doc, "material_id")
            owner = None if raw_id is None else materials.get(_id_key(_display_id(raw_id)))
            if owner is None:
                continue
            try:
                record = xas_doc_to_record(doc, material_id=owner.material_id)
            except (DataSourceError, SnapshotError, ValueError, TypeError) as exc:
                counts["bad_spectrum"] += 1
                warnings.warn(f"{where}: skipped an XAS document ({exc})", stacklevel=2)
                continue
            skey = (record.material_id, record.element, record.edge)
            if skey in spectra:
                counts["duplicate_spectrum"] += 1
                continue
            spectra[skey] = record

    if selection.require_xanes:
        absorbers: dict[str, set[str]] = {}
        for mid, element, _ in spectra:
            absorbers.setdefault(mid, set()).add(element)
        for key, record in list(materials.items()):
            have = absorbers.get(record.material_id, set())
            if selection.require_transition_metal:
                have = have & TRANSITION_METALS
            if not have:
                counts["without_xanes"] += 1
                del materials[key]
        kept = {m.material_id for m in materials.values()}
        spectra = {k: s for k, s in spectra.items() if k[0] in kept}
    counts["materials"], counts["spectra"] = len(materials), len(spectra)

    rows: list[dict[str, Any]] = [{"record": "chunk", "index": index, "ids": list(ids),
                                   "counts": counts}]
    rows += [_material_row(m) for m in materials.values()]
    rows += [_spectrum_row(s) for s in spectra.values()]
    return rows


def _site_labels_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Step 3 for one chunk: per absorbing-site labels of each material (None on failure)."""
    from specfusion_lib.data.structure_labels import structure_labels

    out: dict[str, Any] = {}
    for row in rows:
        if row.get("record") != "material":
            continue
        try:
            labels = structure_labels(Structure.from_dict(row["structure"]))
            out[row["material_id"]] = [site.to_dict() for site in labels.sites]
        except (SpecfusionError, ValueError, RuntimeError) as exc:
            warnings.warn(f"{row['material_id']}: no site labels ({exc})", stacklevel=2)
            out[row["material_id"]] = None
    return out


def fetch_mp_snapshot(
    out: str | os.PathLike[str],
    *,
    api_key: str | None = None,
    elements_range: tuple[int, int] = (2, 5),
    require_transition_metal: bool = True,
    exclude_noble_gases: bool = True,
    require_xanes: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_materials: int | None = None,
    retries: int = 3,
    backoff_s: float = DEFAULT_BACKOFF_S,
    cache_dir: str | os.PathLike[str] | None = None,
    client: Any = None,
    progress: bool = True,
    site_labels: bool = True,
    overwrite: bool = False,
) -> Path:
    """Download the paper's Materials Project selection into a snapshot.

    Resumable: finished work is kept in ``cache_dir`` and skipped when the function is called
    again with the same arguments after an interruption (see the module docstring).

    Args:
        out: Snapshot folder to write.
        api_key: Materials Project API key; default ``$MP_API_KEY``. Not needed when
            ``client`` is given.
        elements_range: Inclusive minimum and maximum number of elements.
        require_transition_metal: Keep only materials with a transition metal (Sc–Zn, Y–Cd).
        exclude_noble_gases: Drop materials containing a noble gas.
        require_xanes: Keep only materials with K-edge XANES in MP's XAS collection (of a
            transition metal when ``require_transition_metal``).
        chunk_size: Material ids per request chunk (one cache file each).
        max_materials: Cap on the number of material ids fetched (the first ones in id
            order; for trial runs). The snapshot can hold fewer after client-side filtering.
        retries: Retries per request after a transient error.
        backoff_s: First retry delay in seconds; doubled at every further retry.
        cache_dir: Resume cache folder; default ``<out>.partial``. Removed on success.
        client: Object with the ``MPRester`` interface (``client.materials.summary.search``,
            ``client.materials.xas.search``); default a new ``mp_api.client.MPRester``.
        progress: Show tqdm progress bars.
        site_labels: Compute per absorbing-site oxidation states and coordination numbers
            (:func:`specfusion_lib.data.structure_labels.structure_labels`) for the ``sites``
            column.
        overwrite: Replace an existing snapshot at ``out``.

    Returns:
        The snapshot folder.

    Raises:
        MissingAPIKeyError: No client and no API key.
        DataSourceError: A request failed permanently or after all retries.
        ConfigurationError: Invalid arguments, or a cache made with other settings.
        SnapshotError: ``out`` exists and ``overwrite`` is False.
    """
    out = Path(out)
    lo, hi = (int(v) for v in elements_range)
    if not 1 <= lo <= hi:
        raise ConfigurationError(f"elements_range must be (min, max) with 1 <= min <= max, "
                                 f"got {elements_range}")
    if chunk_size < 1 or retries < 0 or backoff_s < 0:
        raise ConfigurationError("chunk_size must be >= 1, retries and backoff_s >= 0")
    if max_materials is not None and max_materials < 1:
        raise ConfigurationError(f"max_materials must be >= 1, got {max_materials}")
    if out.exists() and not overwrite:
        raise SnapshotError(f"{out}: snapshot already exists (pass overwrite=True)")
    key = resolve_api_key(api_key) if client is None else None

    selection = _Selection((lo, hi), bool(require_transition_metal),
                           bool(exclude_noble_gases), bool(require_xanes), max_materials)
    fingerprint = {"format": _CACHE_FORMAT, "selection": asdict(selection),
                   "chunk_size": int(chunk_size)}
    fingerprint["selection"]["elements_range"] = [lo, hi]
    root = Path(cache_dir) if cache_dir is not None else out.with_name(out.name + ".partial")
    cache_ = _Cache(root, fingerprint)
    t0 = time.perf_counter()
    logger.info("fetching Materials Project snapshot to %s (resume cache %s)", out, root)

    with _open_client(client, key, retries=retries, backoff_s=backoff_s) as mpr:
        version = getattr(mpr, "db_version", None)
        version = version if isinstance(version, str) else None
        previous = cache_.state.get("mp_database_version")
        if previous and version and previous != version:
            warnings.warn(f"{root}: resuming a download begun on MP database {previous}; the "
                          f"server now serves {version}, so the snapshot mixes both",
                          stacklevel=2)
        if version and not previous:
            cache_.state["mp_database_version"] = version
            cache_.save_state()

        ids = _list_material_ids(mpr, selection, cache_, retries=retries,
                                 backoff_s=backoff_s, progress=progress)
        chunks = [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]
        todo = [i for i, chunk in enumerate(chunks) if cache_.read_chunk(i, chunk) is None]
        logger.info("MP chunks: %d of %d from the resume cache, %d to download",
                    len(chunks) - len(todo), len(chunks), len(todo))
        with tqdm(total=len(chunks), initial=len(chunks) - len(todo), desc="MP chunks",
                  unit="chunk", disable=not progress) as bar:
            for index in todo:
                rows = _fetch_chunk(mpr, index, chunks[index], selection, retries=retries,
                                    backoff_s=backoff_s)
                cache_.write_chunk(index, rows)
                logger.debug("MP chunk %d: %s", index, rows[0]["counts"])
                bar.update(1)

    materials: list[MaterialRecord] = []
    spectra: list[SpectrumRecord] = []
    totals: dict[str, int] = {}
    desc = "site labels + assembly" if site_labels else "assembling snapshot"
    for index, chunk in enumerate(tqdm(chunks, desc=desc, unit="chunk", disable=not progress)):
        rows = cache_.read_chunk(index, chunk)
        if rows is None:  # pragma: no cover - written just above
            raise DataSourceError(f"{cache_.chunk_path(index)}: chunk vanished during the run")
        for name, count in rows[0]["counts"].items():
            totals[name] = totals.get(name, 0) + int(count)
        sites: Mapping[str, Any] = {}
        if site_labels:
            sites = cache_.read_sites(index)
            if sites is None:
                sites = _site_labels_of(rows)
                cache_.write_sites(index, sites)
        for row in rows[1:]:
            if row["record"] == "material":
                materials.append(MaterialRecord(
                    material_id=row["material_id"],
                    structure=Structure.from_dict(row["structure"]),
                    labels=row["labels"], sites=sites.get(row["material_id"])))
            elif row["record"] == "spectrum":
                spectra.append(SpectrumRecord(
                    material_id=row["material_id"], element=row["element"],
                    edge=row["edge"], energy=row["energy"], mu=row["mu"],
                    source=row["source"], kind=row["kind"]))
    if totals.get("bad_document") or totals.get("bad_spectrum"):
        warnings.warn(f"skipped {totals.get('bad_document', 0)} malformed summary and "
                      f"{totals.get('bad_spectrum', 0)} malformed XAS document(s); counts in "
                      "the manifest's 'mp_fetch' entry", stacklevel=2)

    if not materials:
        raise DataSourceError(
            f"the selection matched no Materials Project material ({totals}); nothing to "
            f"write to {out}")

    label_sources = {name: MP_LABEL_SOURCE for name in LABEL_FIELDS}
    if site_labels:
        label_sources.update(oxidation_state=SITE_LABEL_SOURCE,
                             coordination_number=SITE_LABEL_SOURCE)
    extra: dict[str, Any] = {
        "selection": selection.manifest_entry(),
        "mp_fetch": {"material_ids": len(ids), "chunk_size": chunk_size, "counts": totals},
        "mp_xas": ("Materials Project XAS collection: FEFF9 K-edge XANES, site-weighted "
                   "average over each absorbing element's inequivalent sites, MP energy grid"),
    }
    version = cache_.state.get("mp_database_version")
    if version:
        extra["mp_database_version"] = version
    description = (f"Materials Project: {len(materials)} materials with {lo}–{hi} elements"
                   + (", at least one transition metal (Sc–Zn, Y–Cd)"
                      if require_transition_metal else "")
                   + (", no noble gases" if exclude_noble_gases else "")
                   + f"; {len(spectra)} K-edge XANES spectra from the MP XAS collection; "
                     "labels from the MP summary (DFT)")
    path = write_snapshot(out, materials, spectra, source="mp", description=description,
                          label_sources=label_sources, extra=extra, overwrite=overwrite)
    shutil.rmtree(root, ignore_errors=True)
    logger.info("wrote Materials Project snapshot %s: %d materials, %d spectra (%.1f s)",
                path, len(materials), len(spectra), time.perf_counter() - t0)
    return path
