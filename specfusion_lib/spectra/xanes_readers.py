"""Readers of user XANES files: two-column text, CSV (``omega,mu``) and XDI.

:func:`read_xanes` is the one entry point; it recognises the format from the file's first line
and extension (or ``fmt``), returns a :class:`~specfusion_lib.spectra.xanes.XANESSpectrum`
whose ``source`` is the file, and -- when the absorbing element is known -- checks that the
spectrum shows that element's edge (:func:`~specfusion_lib.spectra.xanes.check_edge`).

Formats:

* **Two-column text** (``fmt="columns"``): energy (eV) and μ, separated by blanks, tabs or
  commas. Lines starting with ``#`` are comments; one header line naming the columns is
  allowed. Files with more columns are read when a header (or the last comment line before
  the data, as in FEFF's ``xmu.dat``: ``# omega e k mu mu0 chi``) names the energy and μ
  columns, or when ``columns=`` says which ones to use.
* **CSV** (``fmt="csv"``): as above with a header line ``omega,mu`` (the authors' example
  format) or ``energy,mu``.
* **XDI** (``fmt="xdi"``, first line ``# XDI/1.0``; Ravel & Newville's XAS Data Interchange
  format): columns named by ``# Column.N: name [unit]`` lines (or the label line after
  ``#----``); μ from a ``mutrans`` / ``mufluor`` / ``mu`` column, or computed as
  ln(i0 / itrans) in transmission and ifluor / i0 in fluorescence (``mode``); energies in keV
  are converted to eV, and a monochromator ``angle`` column is converted with
  ``Mono.d_spacing``. ``# Element.symbol:`` and ``# Element.edge:`` give element and edge.

Every problem raises :class:`~specfusion_lib.core.errors.SpectrumFileError` (or
:class:`~specfusion_lib.core.errors.ElementError` for an unknown element symbol,
:class:`~specfusion_lib.core.errors.WrongElementError` /
:class:`~specfusion_lib.core.errors.SpectrumError` when the edge is wrong or missing) with the file
path and, where it applies, the line number in the message. Energies must be strictly increasing; a
fully reversed axis (a scan recorded from high to low energy) is flipped, anything else
non-monotonic or duplicated is rejected -- never silently sorted. Readers never write to disk.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specfusion_lib.core.errors import ConfigurationError, SpectrumFileError, WrongElementError
from specfusion_lib.spectra.xanes import (
    KNOWN_EDGES,
    MIN_POINTS,
    XANESSpectrum,
    canonical_element,
    check_edge,
)

__all__ = [
    "ENERGY_NAMES",
    "FORMATS",
    "MU_NAMES",
    "detect_format",
    "read_columns",
    "read_xanes",
    "read_xdi",
]

#: Formats understood by :func:`read_xanes`.
FORMATS: tuple[str, ...] = ("columns", "csv", "xdi")
#: Column names recognised as the energy axis (compared lower-case, units stripped).
ENERGY_NAMES: tuple[str, ...] = ("energy", "omega", "e", "en", "ene", "energy_ev")
#: Column names recognised as μ(E), in order of preference in ``mode="auto"``.
MU_NAMES: tuple[str, ...] = ("mu", "xmu", "mu_e", "absorption", "abs")
_TRANS_MU = ("mutrans", "mu_trans", "mut")
_FLUOR_MU = ("mufluor", "mu_fluor", "muf")
_NORM_MU = ("normtrans", "normfluor", "norm", "flat")
_HC_EV_ANGSTROM = 12398.419843320026  # h c in eV Å (CODATA 2018)
_MODES = ("auto", "transmission", "fluorescence")


# --------------------------------------------------------------------------------------------
# Low-level helpers
# --------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """Read a text file, with a :class:`SpectrumFileError` naming it on every failure."""
    if not path.exists():
        raise SpectrumFileError(f"{path}: file not found")
    if path.is_dir():
        raise SpectrumFileError(f"{path}: is a directory, not a spectrum file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpectrumFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not raw.strip():
        raise SpectrumFileError(f"{path}: the file is empty")
    if b"\x00" in raw[:8192]:
        raise SpectrumFileError(f"{path}: binary file, not a text spectrum")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _tokens(line: str) -> list[str]:
    if "," in line:
        return [p.strip() for p in line.split(",")]
    if ";" in line:
        return [p.strip() for p in line.split(";")]
    return line.split()


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _clean_name(name: str) -> tuple[str, str]:
    """Lower-case column name without its unit, and the unit (``"Energy (keV)"`` -> energy, kev)."""
    text = name.strip().strip("\"'").lower()
    unit = ""
    m = re.match(r"^(.*?)\s*[\(\[](.*?)[\)\]]\s*$", text)
    if m:
        text, unit = m.group(1), m.group(2)
    elif "/" in text:
        text, unit = text.split("/", 1)
    return re.sub(r"[\s\-]+", "_", text.strip()), unit.strip()


@dataclass
class _Table:
    names: list[str] | None
    units: list[str] | None
    data: np.ndarray  # rows x columns
    lines: np.ndarray  # 1-based line number of each row


def _parse_table(text: str, path: Path, *, allow_header: bool) -> _Table:
    """Numeric rows of a text file; ``#`` lines are comments; optionally one header line."""
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    header: list[str] | None = None
    last_comment: str | None = None
    comment_before_data: str | None = None
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if not rows:
                last_comment = line.lstrip("#").strip()
            continue
        tokens = _tokens(line)
        values = []
        for token in tokens:
            try:
                values.append(float(token))
            except ValueError:
                break
        if len(values) != len(tokens):
            if allow_header and not rows and header is None:
                header = tokens
                continue
            bad = tokens[len(values)]
            shown = repr(bad) if bad else "an empty field"
            raise SpectrumFileError(f"{path}: line {number}: non-numeric value {shown}")
        if rows and len(values) != len(rows[0]):
            raise SpectrumFileError(
                f"{path}: line {number}: {len(values)} column(s), but the first data line "
                f"(line {line_numbers[0]}) has {len(rows[0])}"
            )
        if not rows:
            comment_before_data = last_comment
        rows.append(values)
        line_numbers.append(number)
    if not rows:
        raise SpectrumFileError(f"{path}: no numeric data lines found")
    ncol = len(rows[0])
    names = header
    if names is not None and len(names) != ncol:
        raise SpectrumFileError(
            f"{path}: the header names {len(names)} column(s) ({', '.join(names)}) but the "
            f"data have {ncol}"
        )
    if names is None and comment_before_data:
        guess = _tokens(comment_before_data)
        if len(guess) == ncol and not any(_is_number(t) for t in guess):
            names = guess
    units = None
    if names is not None:
        cleaned = [_clean_name(n) for n in names]
        names, units = [c[0] for c in cleaned], [c[1] for c in cleaned]
    return _Table(names, units, np.array(rows, dtype=np.float64), np.array(line_numbers))


def _first(names: Sequence[str], candidates: Sequence[str]) -> int | None:
    for candidate in candidates:
        if candidate in names:
            return list(names).index(candidate)
    return None


def _line_of(table: _Table, mask: np.ndarray) -> int:
    return int(table.lines[int(np.argmax(mask))])


def _mu_from_named_columns(table: _Table, mode: str, path: Path) -> tuple[int, np.ndarray, str]:
    """Index of the energy column, μ and a description of how μ was obtained."""
    names = table.names or []
    e_idx = _first(names, ENERGY_NAMES)
    listed = ", ".join(names)
    if e_idx is None:
        raise SpectrumFileError(
            f"{path}: missing columns: no energy column (one of {', '.join(ENERGY_NAMES)}) "
            f"among [{listed}]"
        )
    col = {name: table.data[:, names.index(name)] for name in reversed(names)}

    def direct(candidates: Sequence[str]) -> tuple[np.ndarray, str] | None:
        i = _first(names, candidates)
        return None if i is None else (table.data[:, i], names[i])

    def transmission() -> tuple[np.ndarray, str] | None:
        if "i0" not in col or "itrans" not in col:
            return None
        i0, it = col["i0"], col["itrans"]
        bad = ~((i0 > 0) & (it > 0))
        if bad.any():
            raise SpectrumFileError(
                f"{path}: line {_line_of(table, bad)}: i0 and itrans must be positive to "
                "compute mu = ln(i0/itrans)"
            )
        return np.log(i0 / it), "ln(i0/itrans)"

    def fluorescence() -> tuple[np.ndarray, str] | None:
        if "i0" not in col or "ifluor" not in col:
            return None
        i0 = col["i0"]
        bad = ~(i0 > 0)
        if bad.any():
            raise SpectrumFileError(
                f"{path}: line {_line_of(table, bad)}: i0 must be positive to compute "
                "mu = ifluor/i0"
            )
        return col["ifluor"] / i0, "ifluor/i0"

    if mode == "transmission":
        order = [lambda: direct(_TRANS_MU), transmission]
        wanted = "transmission data (a mutrans column, or i0 and itrans)"
    elif mode == "fluorescence":
        order = [lambda: direct(_FLUOR_MU), fluorescence]
        wanted = "fluorescence data (a mufluor column, or i0 and ifluor)"
    else:
        order = [
            lambda: direct(MU_NAMES),
            lambda: direct(_TRANS_MU),
            lambda: direct(_FLUOR_MU),
            lambda: direct(_NORM_MU),
            transmission,
            fluorescence,
        ]
        wanted = "mu data (a mu, mutrans or mufluor column, or i0 with itrans or ifluor)"
    for attempt in order:
        found = attempt()
        if found is not None:
            return e_idx, found[0], found[1]
    raise SpectrumFileError(f"{path}: missing columns: no {wanted} among [{listed}]")


def _select_columns(
    table: _Table,
    path: Path,
    mode: str,
    columns: tuple[int | str, int | str] | None,
) -> tuple[np.ndarray, np.ndarray]:
    ncol = table.data.shape[1]
    if columns is not None:
        idx = []
        for which in columns:
            if isinstance(which, str):
                key = _clean_name(which)[0]
                if not table.names or key not in table.names:
                    raise SpectrumFileError(
                        f"{path}: missing columns: no column named {which!r} "
                        f"(columns: {', '.join(table.names or []) or 'unnamed'})"
                    )
                idx.append(table.names.index(key))
            else:
                if not -ncol <= int(which) < ncol:
                    raise SpectrumFileError(
                        f"{path}: missing columns: column {which} requested, the file has {ncol}"
                    )
                idx.append(int(which))
        e_idx, mu = idx[0], table.data[:, idx[1]]
    elif ncol < 2:
        raise SpectrumFileError(
            f"{path}: missing columns: {ncol} column found, two are needed (energy, mu)"
        )
    elif table.names is not None:
        names = table.names
        e_named = _first(names, ENERGY_NAMES)
        mu_named = [
            i
            for i in (_first(names, c) for c in (MU_NAMES, _TRANS_MU, _FLUOR_MU, _NORM_MU))
            if i is not None
        ]
        detectors = {"i0", "itrans"} <= set(names) or {"i0", "ifluor"} <= set(names)
        if ncol == 2 and not (e_named is not None and (mu_named or detectors)):
            # Two columns with unfamiliar names: (energy, mu) in file order, unless the one
            # recognised name says otherwise.
            mu_first = bool(mu_named) and mu_named[0] == 0
            e_idx = e_named if e_named is not None else (1 if mu_first else 0)
            mu = table.data[:, 1 - e_idx]
        else:
            e_idx, mu, _ = _mu_from_named_columns(table, mode, path)
    elif ncol == 2:
        e_idx, mu = 0, table.data[:, 1]
    else:
        raise SpectrumFileError(
            f"{path}: missing columns: {ncol} columns and no header naming them; expected two "
            "columns (energy, mu), a header such as 'energy mu', or columns=(i, j)"
        )
    energy = table.data[:, e_idx]
    unit = (table.units or [""] * ncol)[e_idx]
    if unit == "kev":
        energy = energy * 1000.0
    return energy, mu


def _finish(
    path: Path,
    energy: np.ndarray,
    mu: np.ndarray,
    lines: np.ndarray,
    element: str | None,
    edge: str,
    check: bool,
) -> XANESSpectrum:
    """Validate the arrays (with line numbers), build the spectrum and check its edge."""
    for name, values in (("energy", energy), ("mu", mu)):
        bad = ~np.isfinite(values)
        if bad.any():
            raise SpectrumFileError(
                f"{path}: line {int(lines[int(np.argmax(bad))])}: {name} is NaN or infinite "
                f"({int(bad.sum())} such value(s) in the file)"
            )
    if energy.size < MIN_POINTS:
        raise SpectrumFileError(
            f"{path}: too few points ({energy.size}); at least {MIN_POINTS} are needed"
        )
    step = np.diff(energy)
    if np.any(step == 0):
        i = int(np.argmax(step == 0))
        raise SpectrumFileError(
            f"{path}: duplicated energies: {energy[i]:g} eV on lines {lines[i]} and {lines[i + 1]}"
        )
    if np.all(step < 0):  # a scan recorded from high to low energy: flip it
        energy, mu, lines = energy[::-1], mu[::-1], lines[::-1]
    elif np.any(step < 0):
        i = int(np.argmax(step < 0))
        raise SpectrumFileError(
            f"{path}: non-monotonic energies: {energy[i + 1]:g} eV on line {lines[i + 1]} "
            f"follows {energy[i]:g} eV on line {lines[i]}; energies must increase "
            "(the file is not sorted automatically)"
        )
    spectrum = XANESSpectrum(energy, mu, element=element, edge=edge, source=str(path))
    if check and spectrum.element is not None:
        check_edge(spectrum)
    return spectrum


def _resolve_element(path: Path, given: str | None, declared: str | None) -> str | None:
    element = canonical_element(given, str(path)) if given is not None else None
    if declared is not None:
        declared_canon = canonical_element(declared, str(path))
        if element is not None and element != declared_canon:
            raise WrongElementError(
                f"{path}: the file declares element {declared_canon}, but element={element} "
                "was given"
            )
        element = element or declared_canon
    return element


def _resolve_edge(path: Path, given: str | None, declared: str | None) -> str:
    if given is not None and str(given).strip().upper() not in KNOWN_EDGES:
        raise ConfigurationError(
            f"unknown absorption edge {given!r}; expected one of {', '.join(KNOWN_EDGES)}"
        )
    if declared is not None and declared.strip().upper() not in KNOWN_EDGES:
        raise SpectrumFileError(f"{path}: unknown absorption edge {declared!r} in the header")
    g = None if given is None else str(given).strip().upper()
    d = None if declared is None else declared.strip().upper()
    if g is not None and d is not None and g != d:
        raise SpectrumFileError(f"{path}: the file declares the {d} edge, but edge={g} was given")
    return g or d or "K"


def _check_mode(mode: str) -> str:
    if mode not in _MODES:
        raise ConfigurationError(f"unknown mode {mode!r}; expected one of {', '.join(_MODES)}")
    return mode


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def read_columns(
    path: str | Path,
    element: str | None = None,
    edge: str | None = None,
    *,
    mode: str = "auto",
    columns: tuple[int | str, int | str] | None = None,
    check: bool = True,
) -> XANESSpectrum:
    """Read a two-column text or CSV XANES file (energy in eV, μ).

    Args:
        path: The file.
        element: Absorbing element; when given, the edge is checked.
        edge: Absorption edge (default ``"K"``).
        mode: With several named columns: ``"auto"``, ``"transmission"`` or
            ``"fluorescence"`` (which μ to use or compute).
        columns: ``(energy, mu)`` column indices (0-based) or names, overriding detection.
        check: Whether to check the edge against the element (:func:`check_edge`).

    Returns:
        The spectrum, with ``source`` set to the path.

    Raises:
        SpectrumFileError: On any problem with the file (message names file and line).
        ElementError: For an unknown element symbol.
        WrongElementError: If the spectrum shows another element's edge.
        SpectrumError: If the energy range misses the element's edge.
    """
    path = Path(path)
    _check_mode(mode)
    element = _resolve_element(path, element, None)
    edge = _resolve_edge(path, edge, None)
    table = _parse_table(_read_text(path), path, allow_header=True)
    energy, mu = _select_columns(table, path, mode, columns)
    return _finish(path, energy, mu, table.lines, element, edge, check)


def read_xdi(
    path: str | Path,
    element: str | None = None,
    edge: str | None = None,
    *,
    mode: str = "auto",
    check: bool = True,
) -> XANESSpectrum:
    """Read an XDI 1.0 file (XAS Data Interchange format).

    Method: header lines ``# Family.key: value`` are collected until the ``#----`` line (user
    comments after ``# ///`` are skipped); columns are named by ``# Column.N:`` lines (name and
    optional unit) or, failing those, by the label line after ``#----``. μ is taken from a
    ``mutrans`` / ``mufluor`` / ``mu`` column when present, else computed as ln(i0/itrans)
    (transmission) or ifluor/i0 (fluorescence); ``mode`` selects which (``"auto"`` prefers a
    direct μ column, then transmission). An energy column in keV is converted to eV; without an
    energy column, an ``angle`` column (degrees) is converted with ``Mono.d_spacing`` (Å) by
    Bragg's law, E = hc / (2 d sin θ). ``Element.symbol`` and ``Element.edge`` supply the
    element and edge; they must agree with ``element`` / ``edge`` when those are given.

    Args:
        path: The file.
        element: Absorbing element (default: from the header).
        edge: Absorption edge (default: from the header, else ``"K"``).
        mode: ``"auto"``, ``"transmission"`` or ``"fluorescence"``.
        check: Whether to check the edge against the element (:func:`check_edge`).

    Returns:
        The spectrum, with ``source`` set to the path.

    Raises:
        SpectrumFileError: On any problem with the file (message names file and line).
        ElementError: For an unknown element symbol (given or in the header).
        WrongElementError: If the header or the data contradict ``element``.
        SpectrumError: If the energy range misses the element's edge.
    """
    path = Path(path)
    _check_mode(mode)
    text = _read_text(path)
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not re.match(r"^#\s*XDI/", first, flags=re.IGNORECASE):
        raise SpectrumFileError(f"{path}: not an XDI file: the first line must be '# XDI/1.0 ...'")
    fields: dict[str, str] = {}
    label_line: str | None = None
    in_user_comments = False
    after_rule = False
    for raw_line in lines[1:]:
        line = raw_line.strip()
        if not line.startswith("#"):
            if line:
                break
            continue
        content = line.lstrip("#").strip()
        if content.startswith("///"):
            in_user_comments = True
            continue
        if content.startswith("---"):
            after_rule, in_user_comments = True, False
            continue
        if after_rule:
            if content:
                label_line = content
            continue
        if in_user_comments:
            continue
        key, sep, value = content.partition(":")
        if sep and re.match(r"^[A-Za-z_][\w]*\.[\w]+$", key.strip()):
            fields[key.strip().lower()] = value.strip()

    table = _parse_table(text, path, allow_header=False)
    ncol = table.data.shape[1]
    named: dict[int, tuple[str, str]] = {}
    for key, value in fields.items():
        m = re.match(r"^column\.(\d+)$", key)
        if m and value:
            number = int(m.group(1))
            if not 1 <= number <= ncol:
                raise SpectrumFileError(
                    f"{path}: header names Column.{number} but the data have {ncol} column(s)"
                )
            parts = value.split()
            named[number - 1] = (
                _clean_name(parts[0])[0],
                parts[1].lower() if len(parts) > 1 else "",
            )
    if named:
        table.names = [named.get(i, (f"column_{i + 1}", ""))[0] for i in range(ncol)]
        table.units = [named.get(i, ("", ""))[1] for i in range(ncol)]
    elif label_line is not None and len(label_line.split()) == ncol:
        cleaned = [_clean_name(t) for t in label_line.split()]
        table.names, table.units = [c[0] for c in cleaned], [c[1] for c in cleaned]
    else:
        raise SpectrumFileError(
            f"{path}: missing columns: the XDI header names no columns (no '# Column.N:' lines)"
        )

    if _first(table.names, ENERGY_NAMES) is None and "angle" in table.names:
        d_text = fields.get("mono.d_spacing")
        try:
            d_spacing = float(d_text.split()[0]) if d_text else math.nan
        except (ValueError, IndexError):
            d_spacing = math.nan
        if not d_spacing > 0:
            raise SpectrumFileError(
                f"{path}: missing columns: no energy column, and the angle column cannot be "
                "converted without a positive '# Mono.d_spacing:'"
            )
        i = table.names.index("angle")
        unit = table.units[i] if table.units else ""
        theta = table.data[:, i] if unit.startswith("rad") else np.radians(table.data[:, i])
        with np.errstate(divide="ignore", invalid="ignore"):
            table.data = table.data.copy()
            table.data[:, i] = _HC_EV_ANGSTROM / (2.0 * d_spacing * np.sin(theta))
        table.names[i] = "energy"
        if table.units:
            table.units[i] = "ev"

    element = _resolve_element(path, element, fields.get("element.symbol"))
    edge = _resolve_edge(path, edge, fields.get("element.edge"))
    e_idx, mu, _how = _mu_from_named_columns(table, mode, path)
    energy = table.data[:, e_idx]
    if table.units and table.units[e_idx] == "kev":
        energy = energy * 1000.0
    return _finish(path, energy, mu, table.lines, element, edge, check)


def detect_format(path: str | Path, text: str | None = None) -> str:
    """Guess the format of a XANES file: ``"xdi"``, ``"csv"`` or ``"columns"``.

    An XDI header (first line ``# XDI/...``) or the ``.xdi`` extension means XDI; the
    ``.csv`` extension means CSV; anything else is read as columns of numbers.
    """
    path = Path(path)
    if text is None:
        text = _read_text(path)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if re.match(r"^#\s*XDI/", first, flags=re.IGNORECASE) or path.suffix.lower() == ".xdi":
        return "xdi"
    if path.suffix.lower() == ".csv":
        return "csv"
    return "columns"


def read_xanes(
    path: str | Path,
    element: str | None = None,
    edge: str | None = None,
    fmt: str | None = None,
    *,
    mode: str = "auto",
    columns: tuple[int | str, int | str] | None = None,
    check: bool = True,
) -> XANESSpectrum:
    """Read a user's XANES file in any supported format.

    Dispatches to :func:`read_xdi` or :func:`read_columns` (which also reads CSV) after
    :func:`detect_format`, unless ``fmt`` names the format. When the absorbing element is
    known (``element`` or the XDI header), the spectrum is checked to show that element's
    edge (:func:`~specfusion_lib.spectra.xanes.check_edge`; ``check=False`` skips this).

    Args:
        path: The file.
        element: Absorbing element symbol.
        edge: Absorption edge (default: the XDI header's, else ``"K"``).
        fmt: ``"columns"``, ``"csv"``, ``"xdi"`` or ``None`` (detect).
        mode: ``"auto"``, ``"transmission"`` or ``"fluorescence"``; which μ to use or compute
            when a file has detector columns (XDI, or named columns).
        columns: For text/CSV files: ``(energy, mu)`` column indices or names.
        check: Whether to check the edge against the element.

    Returns:
        A :class:`~specfusion_lib.spectra.xanes.XANESSpectrum` with ``source`` = the path.

    Raises:
        SpectrumFileError: The file is missing, empty, lacks columns, has non-numeric, NaN or
            infinite values, duplicated or non-monotonic energies, or too few points.
        ElementError: The element symbol is unknown.
        WrongElementError: The spectrum is of another element.
        SpectrumError: The energy range misses the element's edge.
        ConfigurationError: ``fmt``, ``mode`` or ``edge`` is not a known value.
    """
    path = Path(path)
    if fmt is None:
        fmt = detect_format(path)
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown XANES format {fmt!r}; expected one of {FORMATS}")
    if fmt == "xdi":
        if columns is not None:
            raise ConfigurationError("columns= applies to text and CSV files, not XDI")
        return read_xdi(path, element, edge, mode=mode, check=check)
    return read_columns(path, element, edge, mode=mode, columns=columns, check=check)
