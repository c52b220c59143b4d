"""Measured K-edge XANES that ship in ``maml-apps-rfxas`` (``maml/apps/rfxas/experiment.csv``).

The file holds 30 measured K-edge spectra (XASLIB, the EELS database and a third collection
named "Louis" in the file), each with a Materials Project id, a formula, the absorbing element
and the absorber's coordination-number and coordination-environment labels. It is read in
place from the installed package through :mod:`importlib.resources`; this project keeps no
copy of it. :func:`read_measured_xanes` returns one :class:`MeasuredRecord` per data row, whose
``spectrum`` is the same :class:`~specfusion_lib.spectra.xanes.XANESSpectrum` every other
reader returns, so measured spectra go through exactly the preprocessing of simulated ones
(:func:`~specfusion_lib.spectra.xanes.preprocess_xanes`).

What the reader handles (each finding is also computed from the data by
:func:`measured_quirks`, so a changed file is described as it is):

* **String-encoded arrays.** ``x_axis_energy`` and ``interp_spectrum`` are Python tuples
  written as strings (``"(5460.006, 5460.30, ...)"``); they are parsed with
  :func:`ast.literal_eval` (literals only, no code is run). The columns ``y1`` ... ``y200``
  repeat ``interp_spectrum``; the two must agree (``Y_COLUMN_TOLERANCE``), else the row is
  rejected.
* **Units and scaling.** No units are stated; the energies are in eV (every spectrum shows
  its element's tabulated K edge inside its energy range, which :func:`check_edge` verifies).
  The intensities are min–max scaled to [0, 1], not edge-step normalised; the normal
  preprocessing normalises the edge step.
* **Grid.** Every spectrum was resampled by the file's authors to 200 uniform points over
  38–92 eV, starting between 35 eV below and 3 eV above the tabulated edge (most about 5 eV
  below), so the pre-edge baseline is short; Al2O3 (38 eV) covers only 67 % of the model
  window and is refused by the preprocessing.
* **Duplicates.** The same ``xas_id`` occurs twice (V2O5 from two collections) and the same
  compound appears with two MP ids (V2O3, VO2); records are keyed ``<xas_id>@<collection>``.
* **Ids and links.** One id is not an ``mp-`` id (``mvc-894``, Ni2O3); one row's link names
  another compound's file (NiO pointing to ``V2O5_Ref_normE.txt``). They are kept as given
  and listed.
* **Techniques and elements.** Five spectra are EELS core-loss K edges (Si, B, Al twice, Na),
  not X-ray absorption; six absorbers are not transition metals (the models read TM spectra).
* **Coordination labels.** ``top_1_coord_num`` (``"CN_6"``) and ``cnum_ranked_order_label``
  (``"CN_6-CN_4"`` for Mn3O4, two sites) are parsed into numbers; the labels are kept as given.

Every problem raises :class:`~specfusion_lib.core.errors.SpectrumFileError` (or
:class:`~specfusion_lib.core.errors.WrongElementError` /
:class:`~specfusion_lib.core.errors.SpectrumError` from the edge check) whose message names the
file, the line and the record.
"""

from __future__ import annotations

import ast
import csv
import importlib.resources
import io
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import InputFileError, SpecfusionError, SpectrumFileError
from specfusion_lib.spectra.xanes import XANESSpectrum, canonical_element, check_edge

__all__ = [
    "MEASURED_FILE",
    "MEASURED_PACKAGE",
    "REQUIRED_COLUMNS",
    "Y_COLUMN_TOLERANCE",
    "MeasuredRecord",
    "default_measured_path",
    "measured_catalogue",
    "measured_quirks",
    "read_measured_xanes",
]

#: Package that ships the measured spectra, and the file inside it.
MEASURED_PACKAGE = "maml.apps.rfxas"
MEASURED_FILE = "experiment.csv"
#: Columns the reader needs.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "xas_id", "absorbing_species", "source_note", "formula", "mp_id", "Spectral_entry_link",
    "interp_spectrum", "x_axis_energy", "top_1_coord_num", "cnum_ranked_order_label",
    "gs_cnum_cenv_top1", "ele_tm_alka_metalloid",
)
#: Largest accepted difference between the ``y<k>`` columns and ``interp_spectrum``.
Y_COLUMN_TOLERANCE: float = 1e-9

#: Collections named in ``source_note`` → (short name, technique).
_COLLECTIONS: dict[str, tuple[str, str]] = {
    "cars.uchicago.edu/xaslib": ("XASLIB", "XAS"),
    "eels": ("EELS DB", "EELS"),
    "louis": ("Louis", "XAS"),
}
_MP_ID = re.compile(r"^mp-\d+$")
_CN = re.compile(r"^CN_(\d+)$")


@dataclass(frozen=True, eq=False)
class MeasuredRecord:
    """One measured spectrum of ``experiment.csv`` and its metadata, as given in the file.

    Attributes:
        key: Unique key ``<xas_id>@<collection>`` (the ``xas_id`` alone is not unique).
        xas_id: The file's ``xas_id``.
        line: Line of the record in the file (1-based, header = line 1).
        mp_id: The file's ``mp_id`` (not always an ``mp-`` id).
        formula: Formula as written in the file.
        reduced_formula: pymatgen's reduced formula of ``formula`` (for matching).
        element: Absorbing element.
        collection: Where the spectrum comes from (``XASLIB``, ``EELS DB``, ``Louis``).
        technique: ``"XAS"`` or ``"EELS"`` (core-loss K edge).
        source_note: The file's ``source_note``.
        link: The file's ``Spectral_entry_link``.
        element_class: The file's ``ele_tm_alka_metalloid`` (``TM``, ``Metalloid``, ...).
        coordination_label: The file's ``top_1_coord_num`` (``"CN_6"``).
        coordination_number: ``coordination_label`` as a number (None if not ``CN_<n>``).
        coordination_numbers: Every CN of ``cnum_ranked_order_label`` (``(6, 4)`` for Mn3O4).
        environment_label: The file's ``gs_cnum_cenv_top1`` ("" when empty).
        spectrum: The spectrum (energies in eV, intensities as given: min–max scaled).
        notes: Row-level findings (non-MP id, link naming another compound, ...).
    """

    key: str
    xas_id: str
    line: int
    mp_id: str
    formula: str
    reduced_formula: str
    element: str
    collection: str
    technique: str
    source_note: str
    link: str
    element_class: str
    coordination_label: str
    coordination_number: int | None
    coordination_numbers: tuple[int, ...]
    environment_label: str
    spectrum: XANESSpectrum
    notes: tuple[str, ...] = ()

    @property
    def is_transition_metal(self) -> bool:
        """Whether the absorber is a transition metal (Sc–Zn, Y–Cd), i.e. a model input."""
        return self.element in TRANSITION_METALS

    @property
    def label(self) -> str:
        """``"V2O5 V K (XASLIB)"`` for tables and figure titles."""
        return f"{self.formula} {self.element} K ({self.collection})"


def default_measured_path() -> Path:
    """Location of ``experiment.csv`` inside the installed ``maml-apps-rfxas`` package.

    Raises:
        InputFileError: If the package is not installed or does not contain the file.
    """
    try:
        resource = importlib.resources.files(MEASURED_PACKAGE) / MEASURED_FILE
    except ModuleNotFoundError as exc:
        raise InputFileError(
            f"package {MEASURED_PACKAGE!r} (PyPI: maml-apps-rfxas) is not installed; it ships "
            f"the measured spectra {MEASURED_FILE} ({exc})") from None
    if not resource.is_file():
        raise InputFileError(f"{resource}: {MEASURED_FILE} is missing from the installed "
                             f"{MEASURED_PACKAGE} package")
    return Path(str(resource))


def _fail(path: Path, line: int, key: str, message: str) -> SpectrumFileError:
    where = f"{path}: line {line}" + (f" ({key})" if key else "")
    return SpectrumFileError(f"{where}: {message}")


def _numbers(text: str, column: str, path: Path, line: int, key: str) -> np.ndarray:
    """A string-encoded tuple/list of numbers → float array."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise _fail(path, line, key, f"column {column!r} is not a tuple/list of numbers "
                                     f"(starts {text[:40]!r})") from None
    if not isinstance(value, (tuple, list)) or not value:
        raise _fail(path, line, key, f"column {column!r} is not a non-empty tuple/list")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _fail(path, line, key, f"column {column!r} holds non-numeric entries")
    return np.asarray(value, dtype=np.float64)


def _collection(note: str, link: str) -> tuple[str, str]:
    text = f"{note} {link}".lower()
    for needle, (name, technique) in _COLLECTIONS.items():
        if needle in text:
            return name, ("EELS" if "eelsdb" in link.lower() else technique)
    return note.strip() or "unknown", "XAS"


def _cn(label: str) -> int | None:
    m = _CN.match(label.strip())
    return int(m.group(1)) if m else None


def _row_notes(row: dict[str, str], formula: str) -> list[str]:
    notes = []
    mp_id = row["mp_id"].strip()
    if not _MP_ID.match(mp_id):
        notes.append(f"id {mp_id!r} is not a Materials Project 'mp-' id")
    link = row["Spectral_entry_link"].strip()
    stem = link.rstrip("/").rsplit("/", 1)[-1]
    # File-name links (not numeric ids) should name the compound.
    if re.search(r"[A-Za-z]", stem) and "." in stem:
        compound = re.split(r"[_.]", stem)[0]
        if compound and compound.lower() != formula.lower():
            notes.append(f"link names another compound's file ({stem})")
    return notes


def read_measured_xanes(path: str | os.PathLike[str] | None = None, *,
                        check: bool = True) -> list[MeasuredRecord]:
    """Read the measured spectra of ``experiment.csv`` (or a file with the same columns).

    Method: the CSV is parsed with :mod:`csv` (quoted fields hold the string-encoded arrays);
    each row's ``x_axis_energy`` and ``interp_spectrum`` are parsed as literals, compared with
    the ``y<k>`` columns when present, and turned into a
    :class:`~specfusion_lib.spectra.xanes.XANESSpectrum` whose ``source`` names the file, the
    line and the record (so every later error names them too). With ``check``, the
    spectrum must show its element's tabulated K edge
    (:func:`~specfusion_lib.spectra.xanes.check_edge`), which also confirms the energies are
    in eV. The coordination labels are parsed into numbers.

    Args:
        path: The CSV (default: the installed package's ``experiment.csv``).
        check: Check each spectrum's edge against its element.

    Returns:
        One :class:`MeasuredRecord` per data row, in file order.

    Raises:
        InputFileError: The package or file is missing.
        SpectrumFileError: Missing columns, an unparsable or inconsistent row (message names
            the file, the line and the record).
        WrongElementError: A spectrum shows another element's edge.
        SpectrumError: A spectrum's energy range misses its element's edge.
        ElementError: An unknown element symbol.
    """
    target = default_measured_path() if path is None else Path(path)
    if not target.is_file():
        raise SpectrumFileError(f"{target}: file not found")
    try:
        text = target.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpectrumFileError(f"{target}: cannot read the file ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise SpectrumFileError(f"{target}: missing columns: {', '.join(missing)}")
    y_columns = sorted((c for c in columns if re.fullmatch(r"y\d+", c)),
                       key=lambda c: int(c[1:]))

    from pymatgen.core import Composition

    records: list[MeasuredRecord] = []
    seen: Counter[str] = Counter()
    line = 1
    for row in reader:
        line = reader.line_num
        xas_id = (row.get("xas_id") or "").strip()
        if None in row or any(row.get(c) is None for c in REQUIRED_COLUMNS):
            raise _fail(target, line, xas_id, f"{len(columns)} columns expected, the row has "
                                              "a different number")
        energy = _numbers(row["x_axis_energy"], "x_axis_energy", target, line, xas_id)
        mu = _numbers(row["interp_spectrum"], "interp_spectrum", target, line, xas_id)
        if energy.size != mu.size:
            raise _fail(target, line, xas_id, f"x_axis_energy has {energy.size} values but "
                                              f"interp_spectrum has {mu.size}")
        if y_columns:
            try:
                ys = np.array([float(row[c]) for c in y_columns])
            except ValueError:
                raise _fail(target, line, xas_id, "non-numeric value in the y<k> columns") \
                    from None
            if ys.size != mu.size or not np.allclose(ys, mu, rtol=0, atol=Y_COLUMN_TOLERANCE):
                raise _fail(target, line, xas_id, "the y<k> columns disagree with "
                                                  "interp_spectrum")
        formula = row["formula"].strip()
        try:
            reduced = Composition(formula).reduced_formula
        except (ValueError, KeyError) as exc:
            raise _fail(target, line, xas_id, f"formula {formula!r} cannot be parsed "
                                              f"({exc})") from None
        try:
            element = canonical_element(row["absorbing_species"])
        except SpecfusionError:
            raise _fail(target, line, xas_id, "unknown absorbing element "
                                              f"{row['absorbing_species']!r}") from None
        if element not in Composition(formula).as_dict():
            raise _fail(target, line, xas_id, f"absorbing element {element} is not in the "
                                              f"formula {formula}")
        collection, technique = _collection(row["source_note"], row["Spectral_entry_link"])
        slug = re.sub(r"[^a-z0-9]+", "", collection.lower()) or "unknown"
        key = f"{xas_id}@{slug}"
        seen[key] += 1
        if seen[key] > 1:
            key = f"{key}#{seen[key]}"
        source = f"{target}: line {line} ({key})"
        try:
            spectrum = XANESSpectrum(energy, mu, element=element, edge="K", source=source)
        except SpecfusionError as exc:
            raise SpectrumFileError(str(exc)) from None
        if check:
            check_edge(spectrum)
        environment = row["gs_cnum_cenv_top1"].strip()
        numbers = tuple(n for n in (_cn(p) for p in row["cnum_ranked_order_label"].split("-"))
                        if n is not None)
        records.append(MeasuredRecord(
            key=key, xas_id=xas_id, line=line, mp_id=row["mp_id"].strip(), formula=formula,
            reduced_formula=reduced, element=element, collection=collection,
            technique=technique, source_note=row["source_note"].strip(),
            link=row["Spectral_entry_link"].strip(),
            element_class=row["ele_tm_alka_metalloid"].strip(),
            coordination_label=row["top_1_coord_num"].strip(),
            coordination_number=_cn(row["top_1_coord_num"]), coordination_numbers=numbers,
            environment_label="" if environment.lower() == "nan" else environment,
            spectrum=spectrum, notes=tuple(_row_notes(row, formula))))
    if not records:
        raise SpectrumFileError(f"{target}: no data rows")
    return records


def measured_catalogue(records: Sequence[MeasuredRecord]) -> pd.DataFrame:
    """One row per record: key, formula, element, ids, collection, CN labels, energy range.

    Returns:
        Columns ``key``, ``formula``, ``element``, ``tm`` (is a transition metal), ``mp_id``,
        ``collection``, ``technique``, ``cn_label``, ``cn_all``, ``environment``,
        ``e_min``, ``e_max``, ``points``, ``notes``.
    """
    return pd.DataFrame([{
        "key": r.key, "formula": r.formula, "element": r.element,
        "tm": r.is_transition_metal, "mp_id": r.mp_id, "collection": r.collection,
        "technique": r.technique, "cn_label": r.coordination_label,
        "cn_all": ", ".join(map(str, r.coordination_numbers)),
        "environment": r.environment_label, "e_min": float(r.spectrum.energy[0]),
        "e_max": float(r.spectrum.energy[-1]), "points": len(r.spectrum),
        "notes": "; ".join(r.notes)} for r in records])


def measured_quirks(records: Sequence[MeasuredRecord]) -> pd.DataFrame:
    """What the reader had to handle in the file, computed from the records.

    Returns:
        Columns ``finding`` and ``details`` (one row per kind of finding).
    """
    from specfusion_lib.spectra.xanes import tabulated_edge_energy

    rows: list[dict[str, str]] = [{
        "finding": "string-encoded arrays",
        "details": "x_axis_energy and interp_spectrum are Python tuples written as strings "
                   "(parsed with ast.literal_eval); the y1..yN columns repeat interp_spectrum "
                   f"(checked equal within {Y_COLUMN_TOLERANCE:g})"}]
    lows = [float(r.spectrum.mu.min()) for r in records]
    highs = [float(r.spectrum.mu.max()) for r in records]
    if np.allclose(lows, 0.0) and np.allclose(highs, 1.0):
        rows.append({"finding": "intensity scaling",
                     "details": "every spectrum is min-max scaled to [0, 1], not edge-step "
                                "normalised; preprocess_xanes normalises the edge step"})
    steps = [np.diff(r.spectrum.energy) for r in records]
    uniform = all(np.ptp(s) < 1e-6 * max(1.0, float(s.mean())) for s in steps)
    spans = [float(np.ptp(r.spectrum.energy)) for r in records]
    below = [tabulated_edge_energy(r.element) - float(r.spectrum.energy[0]) for r in records]
    sizes = sorted({len(r.spectrum) for r in records})
    points = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    rows.append({"finding": "energy grid",
                 "details": f"{'uniform ' if uniform else ''}grids of {points} points, steps "
                            f"{min(float(s.mean()) for s in steps):.2f}-"
                            f"{max(float(s.mean()) for s in steps):.2f} eV, spans "
                            f"{min(spans):.0f}-{max(spans):.0f} eV; the first point lies "
                            f"{-max(below):+.1f} to {-min(below):+.1f} eV from the tabulated "
                            "edge energy, so the pre-edge is short (energies in eV; units are "
                            "not stated in the file)"})
    ids = Counter(r.xas_id for r in records)
    dup_ids = sorted(i for i, n in ids.items() if n > 1)
    if dup_ids:
        rows.append({"finding": "duplicated xas_id",
                     "details": f"{', '.join(dup_ids)}: more than one row each; records are keyed "
                                "<xas_id>@<collection>"})
    by_formula: dict[str, list[MeasuredRecord]] = {}
    for r in records:
        by_formula.setdefault(f"{r.reduced_formula} {r.element}", []).append(r)
    repeated = {f: rs for f, rs in by_formula.items() if len(rs) > 1}
    if repeated:
        rows.append({"finding": "same compound measured more than once",
                     "details": "; ".join(
                         f"{f}: " + ", ".join(f"{r.mp_id} ({r.collection})" for r in rs)
                         for f, rs in sorted(repeated.items()))})
    for note_kind in ("not a Materials Project", "link names another"):
        hits = [f"{r.formula} ({r.key}): {n}" for r in records for n in r.notes
                if note_kind in n]
        if hits:
            rows.append({"finding": "ids kept as given" if note_kind.startswith("not")
                         else "inconsistent link kept as given", "details": "; ".join(hits)})
    eels = [f"{r.formula} {r.element}" for r in records if r.technique == "EELS"]
    if eels:
        rows.append({"finding": "EELS core-loss spectra",
                     "details": f"{', '.join(eels)} are EELS K edges (eelsdb.eu), not X-ray "
                                "absorption"})
    non_tm = [f"{r.formula} {r.element}" for r in records if not r.is_transition_metal]
    if non_tm:
        rows.append({"finding": "absorbers that are not transition metals",
                     "details": f"{', '.join(non_tm)}: not model inputs (the models read TM "
                                "K-edge spectra)"})
    multi = [f"{r.formula}: {'-'.join(f'CN_{n}' for n in r.coordination_numbers)}"
             for r in records if len(r.coordination_numbers) > 1]
    if multi:
        rows.append({"finding": "several coordination numbers",
                     "details": "; ".join(multi) + " (top_1_coord_num used as the file's CN)"})
    return pd.DataFrame(rows, columns=["finding", "details"])
