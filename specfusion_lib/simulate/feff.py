"""FEFF10 XANES simulation of crystal structures through the ``feff10-rs`` package.

The ``feff10-rs`` wheel installs the Python module ``feff10`` (not ``feff10_rs``): PyO3
bindings around the FEFF10 Fortran code, which run each FEFF stage (``rdinp``, ``atomic``,
``pot``, ``xsph``, ``fms``, ``mkgtr``, ``path``, ``genfmt``, ``ff2x``, ...) in a fresh worker
process of the current interpreter. No ``feff`` executable is needed on ``PATH``.

This module

1. writes a ``feff.inp`` for one absorbing site: the ``POTENTIALS`` and ``ATOMS`` blocks come
   from pymatgen (:class:`pymatgen.io.feff.inputs.Potential` / ``Atoms``, the same blocks
   pymatgen's ``MPXANESSet`` writes, cluster radius 10 Å) and the cards from a preset in
   :data:`PRESETS`;
2. runs the FEFF pipeline in a child Python process (so FEFF's console output goes to a log
   file instead of the caller's terminal, and a timeout can kill the whole process group),
   reads ``xmu.dat`` and returns a :class:`SiteSpectrum` on FEFF's absolute energy grid;
3. averages the spectra of the symmetry-inequivalent sites of an element, weighted by their
   multiplicity (:func:`simulate_xanes`, :func:`average_site_spectra`).

Presets (see :data:`PRESETS`):

* ``"paper"``: the cards of the paper's SI §S3.1 (``COREHOLE NONE``, ``EDGE K``,
  ``CONTROL 1 1 1 1 1 1``, ``SCF 5.0 0 50 0.1 3``, ``FMS 6.0 1``, ``AFOLP 0.9``,
  ``XANES 4 0.05 0.1``, ``RSIGMA``) on FEFF's default XANES energy grid. About 100-330 s per
  spectrum on one core (SPEC §9).
* ``"fast"``: no SCF and a 5.0 Å FMS cluster (SPEC §9: 4.5-27 s per spectrum, Pearson
  correlation 0.94-0.98 with the paper preset after alignment), plus an ``EGRID`` card.
  FEFF's default XANES grid starts only ~3.8 eV below the Fermi level E_F (measured: 9-15 eV
  below the max-derivative E0 of MnO, NiO, TiO2, Cr2O3, less where E0 lies closer to E_F)
  and ends at k = 4 Å⁻¹ (E_F + 61 eV). The fast grid starts 20 eV below E_F (2 eV steps
  where μ is only the smooth core-hole tail, then 0.4 eV steps up to E_F), keeps the paper's
  Δk = 0.05 Å⁻¹ up to k = 4 Å⁻¹ and adds Δk = 0.1 Å⁻¹ up to k = 4.6 Å⁻¹ (E_F + 81 eV):
  104 instead of 89 points (~15 % more FMS time). With E0 - E_F between 5 and 25 eV (25 when
  E0 lands on a sharp post-edge resonance of an unbroadened spectrum, as for rutile), every
  fast spectrum covers the preprocessing window E0 - 10 eV ... E0 + 46 eV.

All functions are pure (no module state besides constants); results are plain frozen
dataclasses, so a content-addressed cache or a process pool can wrap them. The feff.inp text
(:func:`feff_input`) determines the result and is what a cache should hash; a change of that
text must come with a new :data:`FEFF_INPUT_VERSION`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from pymatgen.core import Element, Structure

from specfusion_lib.core.errors import ConfigurationError, ElementError, SimulationError

__all__ = [
    "CLUSTER_RADIUS",
    "FEFF_INPUT_VERSION",
    "PRESETS",
    "RETRY_LADDER",
    "RETRY_LADDER_VERSION",
    "SYMPREC",
    "RetryStep",
    "SiteSpectrum",
    "SimulatedXANES",
    "average_site_spectra",
    "failed_stage",
    "feff_input",
    "feff_version",
    "inequivalent_sites",
    "preset_cards",
    "simulate_site",
    "simulate_site_with_retries",
    "simulate_xanes",
]

#: FEFF cards of each preset, in the order they are written to ``feff.inp``. A value is the
#: text after the card name ("" for a bare card); multi-line values (``EGRID``) are written as
#: the card name on its own line followed by the value's lines. ``EDGE`` is replaced by the
#: ``edge`` argument of the simulation functions.
PRESETS: dict[str, dict[str, str]] = {
    # SI §S3.1 of the paper, verbatim.
    "paper": {
        "EDGE": "K",
        "CONTROL": "1 1 1 1 1 1",
        "COREHOLE": "NONE",
        "SCF": "5.0 0 50 0.1 3",
        "FMS": "6.0 1",
        "AFOLP": "0.9",
        "XANES": "4 0.05 0.1",
        "RSIGMA": "",
    },
    # No SCF, FMS 5.0 Å (SPEC §9), and an energy grid from 20 eV below to 81 eV above the
    # Fermi level. EGRID energies are relative to the Fermi level (eV), k in 1/Å; "last"
    # continues where the previous grid ended. The XANES card stays: it selects XANES.
    "fast": {
        "EDGE": "K",
        "CONTROL": "1 1 1 1 1 1",
        "COREHOLE": "NONE",
        "FMS": "5.0 1",
        "AFOLP": "0.9",
        "XANES": "4 0.05 0.1",
        "RSIGMA": "",
        "EGRID": "e_grid -20 -4 2.0\ne_grid last 0 0.4\nk_grid last 4.0 0.05\nk_grid last 4.6 0.1",
    },
    # The fast grid plus a small self-consistent potential (SCF over a 3.0 Å cluster, at most
    # 15 iterations, convergence 0.2, mixing 1) and a 4.0 Å FMS cluster. The SCF Fermi level
    # is what lets bound d states below the edge show: without SCF, FEFF's Fermi level lies
    # above them and the pre-edge peak of tetrahedral d0 ions (CrO4 2-) is cut away. Cost and
    # fidelity against measured spectra: benchmarks/feff_presets.py and
    # specfusion_lib.measured.preset_study.
    "fast-scf": {
        "EDGE": "K",
        "CONTROL": "1 1 1 1 1 1",
        "COREHOLE": "NONE",
        "SCF": "3.0 0 15 0.2 1",
        "FMS": "4.0 1",
        "AFOLP": "0.9",
        "XANES": "4 0.05 0.1",
        "RSIGMA": "",
        "EGRID": "e_grid -20 -4 2.0\ne_grid last 0 0.4\nk_grid last 4.0 0.05\nk_grid last 4.6 0.1",
    },
}

@dataclass(frozen=True)
class RetryStep:
    """One rung of the retry ladder: what changes when a site run failed.

    Attributes:
        name: Short name, stored with the spectrum it rescued.
        overrides: Card overrides on top of the job's preset (see :func:`preset_cards`;
            ``None`` removes a card).
        radius: Cluster radius (Å) of the ATOMS block, ``None`` for the job's own.
        why: What the change addresses.
    """

    name: str
    overrides: Mapping[str, str | None] = field(default_factory=dict)
    radius: float | None = None
    why: str = ""


#: Settings tried, in order, after a site run failed (:func:`simulate_site_with_retries`).
#: Cheapest and least invasive first; each rung is a documented FEFF knob for the stage that
#: fails most on real structures (``pot``: the overlapped-atom potentials and muffin-tin
#: radii). Which rung rescues which failure is recorded with the spectrum and counted by the
#: build report.
RETRY_LADDER: tuple[RetryStep, ...] = (
    RetryStep("afolp-0.8", {"AFOLP": "0.8"},
              why="smaller automatic muffin-tin overlap (short bonds: N3-, CN-, CO3 2-)"),
    RetryStep("no-afolp", {"AFOLP": None},
              why="FEFF's own muffin-tin radii instead of the automatic overlap"),
    RetryStep("no-scf", {"SCF": None},
              why="no self-consistency (only changes presets with SCF)"),
    RetryStep("radius-7", {"AFOLP": None, "SCF": None}, radius=7.0,
              why="a smaller cluster for the overlapped-atom potentials"),
    RetryStep("dirac-hara", {"AFOLP": None, "SCF": None, "EXCHANGE": "2 0 0"}, radius=7.0,
              why="Dirac-Hara exchange instead of Hedin-Lundqvist"),
)

#: Version of :data:`RETRY_LADDER`, stored with every failure so that a build with another
#: ladder tries again the failures recorded under this one.
RETRY_LADDER_VERSION = "1"

#: Radius (Å) of the atom cluster written to ATOMS (pymatgen's MPXANESSet default).
CLUSTER_RADIUS = 10.0

#: Version of the ``feff.inp`` text that :func:`feff_input` writes. Bump it by hand (any new
#: string) in the same change whenever the text written for a given structure, site, edge and
#: preset changes (cluster, POTENTIALS or ATOMS rendering, rounding, card layout); leave it
#: alone for edits that do not change the text (docstrings, refactoring, moving this module).
#: The FEFF runner's job fingerprints (:mod:`specfusion_lib.simulate.runner`) include it
#: instead of a hash of this file, so a cache's key index survives such edits; a forgotten
#: bump is caught by ``tests/test_feff_cache.py``, which rebuilds the feff.inp of some jobs
#: of the committed demo build and compares their keys with the index.
FEFF_INPUT_VERSION = "1"

#: Symmetry tolerance (Å) used to find inequivalent absorbing sites.
SYMPREC = 0.1

#: Edge labels FEFF's EDGE card accepts (K and L/M/N subshells).
_EDGES = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5", "N1", "N2", "N3", "N4", "N5",
          "N6", "N7")

#: Lines of FEFF output kept in error messages.
_LOG_TAIL_LINES = 15

_MARK = "@@specfusion"

# Child process: runs the FEFF pipeline on <workdir>/feff.inp, printing stage markers; the
# parent captures stdout+stderr (FEFF's console output included) into feff.log.
_CHILD_SCRIPT = f"""
import sys
import feff10

workdir = sys.argv[1]
timeout = None if sys.argv[2] == "none" else float(sys.argv[2])

def progress(stage, info):
    print("{_MARK} " + info.kind + " " + stage.executable_name, flush=True)

try:
    inp = feff10.FeffInput.from_file(workdir + "/feff.inp")
    config = feff10.FeffConfig(workdir, inp, stage_timeout=timeout)
    feff10.FeffPipeline(config).run_with_progress(progress)
except feff10.FeffError as exc:
    print("{_MARK} error " + type(exc).__name__ + ": " + str(exc), flush=True)
    sys.exit(3)
"""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteSpectrum:
    """The simulated XANES of one absorbing site.

    Attributes:
        energy: Photon energies (eV) on FEFF's absolute grid (``xmu.dat`` column ``omega``),
            strictly increasing.
        mu: μ(E) as written by FEFF (normalised by FEFF to the atomic μ0 50 eV above the edge).
        element: Absorbing element symbol.
        site_index: Index of the absorbing site in the structure that was simulated.
        edge: Absorption edge (``"K"``, ``"L3"``, ...).
        preset: Name of the card preset.
        feff_version: FEFF and ``feff10-rs`` versions, e.g. ``"FEFF 10.0.0 (feff10-rs 0.2.4)"``.
        wall_time_s: Wall-clock seconds of the FEFF run (child process included).
        multiplicity: Number of symmetry-equivalent sites this site stands for (1 unless set
            by :func:`simulate_xanes`).
        e_fermi: Absolute energy (eV) of FEFF's Fermi level (k = 0), or NaN if not on the grid.
        cards: The FEFF cards used (card name -> value), after overrides.
        workdir: The FEFF work directory if it was kept, else ``None``.
        radius: Radius (Å) of the ATOMS cluster used.
        retry: Name of the :data:`RETRY_LADDER` step that produced the spectrum, ``""`` when
            the first run succeeded.
    """

    energy: np.ndarray
    mu: np.ndarray
    element: str
    site_index: int
    edge: str
    preset: str
    feff_version: str
    wall_time_s: float
    multiplicity: int = 1
    e_fermi: float = math.nan
    cards: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    radius: float = CLUSTER_RADIUS
    retry: str = ""


@dataclass(frozen=True)
class SimulatedXANES:
    """Site-averaged XANES of one element in one structure.

    Attributes:
        energy: Common energy grid (eV): the union of the site grids inside their intersection.
        mu: Multiplicity-weighted average of the site spectra on ``energy``.
        element: Absorbing element symbol.
        edge: Absorption edge.
        preset: Name of the card preset.
        material_id: Identifier given by the caller, or ``None``.
        formula: Reduced formula of the structure.
        sites: The per-site spectra (each with its ``multiplicity``).
        feff_version: FEFF and ``feff10-rs`` versions.
        wall_time_s: Total wall-clock seconds of all site runs.
    """

    energy: np.ndarray
    mu: np.ndarray
    element: str
    edge: str
    preset: str
    material_id: str | None
    formula: str
    sites: tuple[SiteSpectrum, ...]
    feff_version: str
    wall_time_s: float

    def settings(self) -> dict[str, object]:
        """How this spectrum was made: preset, FEFF version and, per site, the cards, the
        cluster radius and the retry rung (``""``: first attempt) — for the snapshot."""
        return {"preset": self.preset, "feff_version": self.feff_version,
                "sites": [{"site_index": int(s.site_index), "multiplicity": int(s.multiplicity),
                           "cards": dict(s.cards), "radius": float(s.radius),
                           "retry": s.retry} for s in self.sites]}


# --------------------------------------------------------------------------------------------
# Versions, presets, input
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def feff_version() -> str:
    """The FEFF version bundled with the installed ``feff10-rs`` and the package version.

    Returns:
        For example ``"FEFF 10.0.0 (feff10-rs 0.2.4)"``; ``"FEFF 10 (feff10-rs X)"`` if the
        bundled FEFF version string cannot be found in the extension module.

    Raises:
        SimulationError: If ``feff10-rs`` is not installed.
    """
    try:
        package = importlib.metadata.version("feff10-rs")
        import feff10._feff10 as ext
    except (importlib.metadata.PackageNotFoundError, ImportError) as exc:
        raise SimulationError(
            "FEFF10 is not available: install the 'feff10-rs' package (pip install feff10-rs)"
        ) from exc
    core = "10"
    with contextlib.suppress(OSError):
        found = re.search(rb"FEFF (10\.\d+\.\d+)", Path(ext.__file__).read_bytes())
        if found:
            core = found.group(1).decode()
    return f"FEFF {core} (feff10-rs {package})"


def preset_cards(
    preset: str, edge: str = "K", overrides: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The FEFF cards of a preset for an edge, with optional overrides.

    Args:
        preset: A key of :data:`PRESETS`.
        edge: Absorption edge written to the ``EDGE`` card.
        overrides: Card name -> value to set (appended if new), or ``None`` to remove a card.
            Card names are case-insensitive.

    Returns:
        Card name -> value, in ``feff.inp`` order.

    Raises:
        ConfigurationError: On an unknown preset or edge, or an override of ``POTENTIALS``,
            ``ATOMS`` or ``END`` (those come from the structure).
    """
    if preset not in PRESETS:
        raise ConfigurationError(
            f"unknown FEFF preset {preset!r}; choose one of {sorted(PRESETS)}"
        )
    edge_u = str(edge).strip().upper()
    if edge_u not in _EDGES:
        raise ConfigurationError(f"unknown absorption edge {edge!r}; choose one of {_EDGES}")
    cards = dict(PRESETS[preset])
    cards["EDGE"] = edge_u
    for name, value in (overrides or {}).items():
        key = str(name).strip().upper()
        if key in ("POTENTIALS", "ATOMS", "END"):
            raise ConfigurationError(f"the FEFF {key} card is built from the structure")
        if value is None:
            cards.pop(key, None)
        else:
            cards[key] = str(value)
    return cards


def _formula(structure: Structure) -> str:
    return structure.composition.reduced_formula


def _describe(structure: Structure, material_id: str | None) -> str:
    formula = _formula(structure)
    return f"{material_id} ({formula})" if material_id else formula


def _site_symbol(structure: Structure, index: int) -> str | None:
    """Element symbol of an ordered site, ``None`` for a disordered one."""
    site = structure[index]
    if not site.is_ordered:
        return None
    return site.species.elements[0].symbol


def _plain_structure(structure: Structure, material_id: str | None) -> Structure:
    """A copy without oxidation states; SimulationError for a disordered structure."""
    if not isinstance(structure, Structure):
        raise SimulationError(
            f"FEFF input for {material_id or 'a structure'}: expected a pymatgen Structure, "
            f"got {type(structure).__name__}"
        )
    if not structure.is_ordered:
        raise SimulationError(
            f"cannot simulate {_describe(structure, material_id)} with FEFF: the structure has "
            "partial occupancies; order it first (e.g. OrderDisorderedStructureTransformation)"
        )
    plain = structure.copy()
    plain.remove_oxidation_states()
    return plain


def _check_site(structure: Structure, site_index: int, material_id: str | None) -> str:
    n = len(structure)
    if not isinstance(site_index, int | np.integer) or not -n <= int(site_index) < n:
        raise ConfigurationError(
            f"site index {site_index!r} is out of range for {_describe(structure, material_id)}"
            f" ({n} sites)"
        )
    return _site_symbol(structure, int(site_index)) or "?"


def _render_cards(cards: Mapping[str, str]) -> list[str]:
    """Card lines; multi-line cards (EGRID) go last, since FEFF reads their data lines up to
    the next *known* card name."""
    single = [f"{name} {value}".rstrip() for name, value in cards.items() if "\n" not in value]
    blocks: list[str] = []
    for name, value in cards.items():
        if "\n" in value:
            blocks.append(name)
            blocks.extend(part.strip() for part in value.splitlines() if part.strip())
    return single + blocks


_COORD_DECIMALS = 5


def _render_atoms(atoms) -> str:
    """The ATOMS card in a canonical form (the text that the cache hashes).

    pymatgen's own rendering prints floating-point noise (``-1.36089e-16``) and orders atoms
    at equal distance by an internal index, so two constructions of the same crystal give
    different text. Here coordinates are rounded to :data:`_COORD_DECIMALS` decimals (-0
    printed as 0) and atoms are sorted by (distance, x, y, z); the absorber stays first.
    """
    rows = []
    for x, y, z, ipot, tag, dist, _ in atoms.get_lines():
        xyz = [round(float(v), _COORD_DECIMALS) + 0.0 for v in (x, y, z)]
        rows.append((round(float(dist), _COORD_DECIMALS) + 0.0, *xyz, int(ipot), str(tag)))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    lines = ["ATOMS", "*        x          y          z   ipot  tag   distance"]
    lines += [f"{x:10.5f} {y:10.5f} {z:10.5f} {ipot:6d}  {tag:<4s} {d:9.5f}"
              for d, x, y, z, ipot, tag in rows]
    lines.append("END")
    return "\n".join(lines)


def feff_input(
    structure: Structure,
    site_index: int,
    edge: str = "K",
    preset: str = "fast",
    *,
    material_id: str | None = None,
    radius: float = CLUSTER_RADIUS,
    overrides: Mapping[str, str | None] | None = None,
) -> str:
    """The ``feff.inp`` text for one absorbing site.

    Args:
        structure: An ordered pymatgen structure (oxidation states are ignored).
        site_index: Index of the absorbing site.
        edge: Absorption edge.
        preset: A key of :data:`PRESETS`.
        material_id: Written to a TITLE line (and used in error messages).
        radius: Radius (Å) of the ATOMS cluster around the absorber.
        overrides: Card overrides, see :func:`preset_cards`.

    Returns:
        The complete ``feff.inp`` text.

    Raises:
        ConfigurationError: Unknown preset or edge, or a site index out of range.
        SimulationError: A disordered structure, or pymatgen cannot build the cluster.
    """
    from pymatgen.io.feff.inputs import Atoms, Potential

    cards = preset_cards(preset, edge, overrides)
    plain = _plain_structure(structure, material_id)
    symbol = _check_site(plain, site_index, material_id)
    index = int(site_index) % len(plain)
    try:
        potentials = str(Potential(plain, index, radius))
        atoms = _render_atoms(Atoms(plain, index, radius))
    except (ValueError, KeyError) as exc:
        raise SimulationError(
            f"cannot build the FEFF cluster of {_describe(structure, material_id)} around site "
            f"{index} ({symbol}): {exc}"
        ) from exc
    titles = [
        f"TITLE {material_id or 'structure'} {_formula(plain)}",
        f"TITLE absorber {symbol} site {index}, {cards['EDGE']} edge, preset {preset}",
        "TITLE written by specfusion_lib.simulate.feff",
    ]
    return "\n".join([*titles, "", *_render_cards(cards), "", potentials, "", atoms]) + "\n"


# --------------------------------------------------------------------------------------------
# Running FEFF
# --------------------------------------------------------------------------------------------


def _log_tail(log_text: str, n: int = _LOG_TAIL_LINES) -> str:
    """The last ``n`` lines of FEFF's own output (markers, progress and the error echo cut)."""
    lines = []
    for ln in log_text.splitlines():
        if ln.startswith(f"{_MARK} error"):
            break  # the exception text that follows is already in the message
        if ln.strip() and not ln.startswith(_MARK) and not ln.startswith("Energy point"):
            lines.append(ln.rstrip())
    return "\n".join("    " + ln for ln in lines[-n:]) or "    (no output)"


def _failed_stage(log_text: str) -> tuple[str, str]:
    """(stage, reason) of a failed run from the child's log."""
    started: list[str] = []
    finished: set[str] = set()
    reason = ""
    for line in log_text.splitlines():
        if not line.startswith(_MARK):
            continue
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        if parts[1] == "starting":
            started.append(parts[2].strip())
        elif parts[1] == "finished":
            finished.add(parts[2].strip())
        elif parts[1] == "error":
            reason = parts[2].strip()
    named = re.search(r"stage '(\w+)' failed", reason)
    if named:
        return named.group(1), reason.splitlines()[0]
    running = [s for s in started if s not in finished]
    if running:
        return running[-1], reason or "the stage did not finish"
    if not started:
        return "rdinp (input)", reason or "FEFF did not start"
    return "ff2x (output)", reason or "no xmu.dat was written"


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _run_feff(workdir: Path, timeout: float | None) -> tuple[bool, str]:
    """Run the pipeline on ``workdir/feff.inp`` in a child process; (success, log text)."""
    log_path = workdir / "feff.log"
    stage_timeout = "none" if timeout is None else repr(float(timeout))
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_SCRIPT, str(workdir), stage_timeout],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=(os.name == "posix"),
        )
        try:
            # Per-stage timeouts are enforced by feff10; this outer limit only catches a hang.
            rc = proc.wait(timeout=None if timeout is None else 20.0 * float(timeout) + 60.0)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = None
        except BaseException:
            _kill_group(proc)
            raise
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if rc is None:
        text += f"\n{_MARK} error timeout: FEFF did not finish in time\n"
    return rc == 0, text


def _read_xmu(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(energy, mu, e_fermi) from FEFF's xmu.dat (columns omega, e, k, mu, mu0, chi)."""
    data = np.loadtxt(path, comments="#", ndmin=2)
    if data.shape[1] < 4 or data.shape[0] < 5:
        raise ValueError(f"xmu.dat has shape {data.shape}, expected >= 5 rows and 4 columns")
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    keep = np.concatenate([[True], np.diff(data[:, 0]) > 1e-9])
    data = data[keep]
    energy, k, mu = data[:, 0], data[:, 2], data[:, 3]
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))):
        raise ValueError("xmu.dat contains NaN or infinite values")
    e_fermi = math.nan
    if k[0] <= 0.0 <= k[-1]:
        e_fermi = float(np.interp(0.0, k, energy))
    return energy, mu, e_fermi


def _feff_core_version(log_text: str, workdir: Path) -> str | None:
    log_dat = workdir / "log.dat"
    text = log_text
    if log_dat.exists():
        text = log_dat.read_text(encoding="utf-8", errors="replace") + text
    found = re.search(r"FEFF version FEFF\s*([\d.]+)", text)
    return found.group(1) if found else None


def simulate_site(
    structure: Structure,
    site_index: int,
    edge: str = "K",
    preset: str = "fast",
    workdir: str | os.PathLike[str] | None = None,
    *,
    material_id: str | None = None,
    keep_workdir: bool = False,
    radius: float = CLUSTER_RADIUS,
    overrides: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
) -> SiteSpectrum:
    """Simulate the XANES of one absorbing site with FEFF10.

    Args:
        structure: An ordered pymatgen structure.
        site_index: Index of the absorbing site.
        edge: Absorption edge (``"K"``, ``"L3"``, ...).
        preset: A key of :data:`PRESETS` (``"fast"`` or ``"paper"``).
        workdir: Directory for FEFF's files. A directory given here is created if needed and
            never deleted (it must not hold another run's files). ``None``: a temporary
            directory, removed afterwards unless ``keep_workdir``.
        material_id: Names the structure in the TITLE and in error messages.
        keep_workdir: Keep the temporary work directory (its path is in the result).
        radius: Radius (Å) of the ATOMS cluster.
        overrides: Card overrides, see :func:`preset_cards`.
        timeout: Seconds allowed per FEFF stage; ``None`` for no limit.

    Returns:
        The site's spectrum on FEFF's absolute energy grid.

    Raises:
        ConfigurationError: Unknown preset or edge, or a site index out of range.
        SimulationError: FEFF failed; the message names the structure, the absorbing site, the
            FEFF stage that failed and ends with the last lines of FEFF's output.
    """
    text = feff_input(structure, site_index, edge, preset, material_id=material_id,
                      radius=radius, overrides=overrides)
    cards = preset_cards(preset, edge, overrides)
    index = int(site_index) % len(structure)
    symbol = _site_symbol(structure, index) or "?"
    where = (f"{_describe(structure, material_id)}, absorber {symbol} site {index} "
             f"({cards['EDGE']} edge, preset {preset!r})")

    temporary = workdir is None
    if temporary:
        path = Path(tempfile.mkdtemp(prefix="specfusion-feff-"))
    else:
        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        stale = path / "xmu.dat"
        if stale.exists():
            stale.unlink()
    keep = keep_workdir or not temporary
    try:
        (path / "feff.inp").write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        ok, log_text = _run_feff(path, timeout)
        wall = time.perf_counter() - t0
        location = f"\n  FEFF files kept in {path}" if keep else ""
        if not ok:
            stage, reason = _failed_stage(log_text)
            raise SimulationError(
                f"FEFF10 failed for {where} in stage {stage}: {reason}{location}\n"
                f"  last lines of FEFF's output:\n{_log_tail(log_text)}"
            )
        try:
            energy, mu, e_fermi = _read_xmu(path / "xmu.dat")
        except (OSError, ValueError) as exc:
            raise SimulationError(
                f"FEFF10 failed for {where} in stage ff2x (output): unusable xmu.dat: {exc}"
                f"{location}\n  last lines of FEFF's output:\n{_log_tail(log_text)}"
            ) from exc
        core = _feff_core_version(log_text, path)
        version = feff_version()
        if core:
            version = re.sub(r"^FEFF [\d.]+", f"FEFF {core}", version)
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
    energy.setflags(write=False)
    mu.setflags(write=False)
    return SiteSpectrum(
        energy=energy,
        mu=mu,
        element=symbol,
        site_index=index,
        edge=cards["EDGE"],
        preset=preset,
        feff_version=version,
        wall_time_s=wall,
        e_fermi=e_fermi,
        cards=cards,
        workdir=str(path) if keep else None,
        radius=float(radius),
    )


def failed_stage(message: str) -> str | None:
    """The FEFF stage named in a :class:`~specfusion_lib.core.errors.SimulationError` message.

    Args:
        message: The error message (``"FEFF10 failed for ... in stage fms: ..."``).

    Returns:
        The stage (``"fms"``, ``"rdinp (input)"``, ...), or ``None`` if the message names none.
    """
    found = re.search(r"\bin stage (\w+(?: \([\w ]+\))?)", message)
    return found.group(1) if found else None


def simulate_site_with_retries(
    structure: Structure,
    site_index: int,
    edge: str = "K",
    preset: str = "fast",
    *,
    material_id: str | None = None,
    timeout: float | None = None,
    ladder: Sequence[RetryStep] = RETRY_LADDER,
    simulate=None,
) -> SiteSpectrum:
    """:func:`simulate_site`, and on failure the rungs of ``ladder`` in turn until one works.

    A rung that would run exactly the cards and radius of an earlier attempt (``no-scf`` on
    a preset without SCF) is skipped.

    Args:
        structure: An ordered pymatgen structure.
        site_index: Index of the absorbing site.
        edge: Absorption edge.
        preset: Card preset of the first attempt; the rungs override it.
        material_id: Names the structure in messages.
        timeout: Seconds allowed per FEFF stage.
        ladder: The rungs (default :data:`RETRY_LADDER`); empty: no retry.
        simulate: Replaces :func:`simulate_site` (same signature), for tests.

    Returns:
        The first spectrum obtained; its ``retry`` names the rung (``""``: first attempt).

    Raises:
        SimulationError: Every attempt failed. The message is the first attempt's (structure,
            site, stage) followed by one line per rung with the stage it failed in.
    """
    run = simulate or simulate_site
    try:
        return run(structure, site_index, edge, preset, material_id=material_id,
                   timeout=timeout)
    except SimulationError as first:
        failure = first
    tried = {(tuple(sorted(preset_cards(preset, edge).items())), float(CLUSTER_RADIUS))}
    lines = []
    for step in ladder:
        cards = tuple(sorted(preset_cards(preset, edge, step.overrides).items()))
        radius = float(step.radius or CLUSTER_RADIUS)
        if (cards, radius) in tried:
            continue
        tried.add((cards, radius))
        try:
            spectrum = run(structure, site_index, edge, preset, material_id=material_id,
                           timeout=timeout, overrides=dict(step.overrides), radius=radius)
        except SimulationError as exc:
            lines.append(f"  retry {step.name}: failed in stage "
                         f"{failed_stage(str(exc)) or 'unknown'}")
            continue
        return replace(spectrum, retry=step.name)
    raise SimulationError(str(failure).rstrip() + "\n" + "\n".join(
        lines or ["  (no retry step applies)"])) from failure


# --------------------------------------------------------------------------------------------
# Site averaging
# --------------------------------------------------------------------------------------------


def inequivalent_sites(
    structure: Structure,
    element: str,
    symprec: float = SYMPREC,
    *,
    material_id: str | None = None,
) -> list[tuple[int, int]]:
    """Symmetry-inequivalent sites of an element and their multiplicities.

    Uses pymatgen's ``SpacegroupAnalyzer(...).get_symmetrized_structure()``; if spglib finds
    no symmetry at this tolerance every site of the element counts as its own class.

    Args:
        structure: An ordered pymatgen structure.
        element: Element symbol (oxidation states in the structure are ignored).
        symprec: Symmetry tolerance (Å).
        material_id: Used in error messages.

    Returns:
        ``[(site_index, multiplicity), ...]`` with the first site of each class, ordered by
        site index; the multiplicities add up to the element's number of sites.

    Raises:
        ElementError: ``element`` is not a chemical element or is absent from the structure.
        SimulationError: The structure is disordered.
    """
    try:
        symbol = Element(str(element).strip().capitalize()).symbol
    except ValueError as exc:
        raise ElementError(f"unknown element symbol {element!r}") from exc
    plain = _plain_structure(structure, material_id)
    members = [i for i in range(len(plain)) if _site_symbol(plain, i) == symbol]
    if not members:
        raise ElementError(
            f"absorbing element {symbol} is not in {_describe(structure, material_id)} "
            f"(elements: {', '.join(sorted(e.symbol for e in plain.composition.elements))})"
        )
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    groups: list[list[int]] = []
    with contextlib.suppress(Exception):  # spglib failure: fall back to one class per site
        sym = SpacegroupAnalyzer(plain, symprec=symprec).get_symmetrized_structure()
        groups = [sorted(g) for g in sym.equivalent_indices]
    wanted = set(members)
    classes = [g for g in groups if g and g[0] in wanted]
    if sum(len(g) for g in classes) != len(members):
        classes = [[i] for i in members]
    return sorted((g[0], len(g)) for g in classes)


def average_site_spectra(
    sites: Sequence[SiteSpectrum], weights: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted average of site spectra on a common energy grid.

    The common grid is the union of the sites' energy points inside the intersection of their
    ranges (points closer than 1 meV merged); each spectrum is linearly interpolated onto it.

    Args:
        sites: Site spectra (at least one).
        weights: One non-negative weight per site (not all zero); default: each site's
            ``multiplicity``.

    Returns:
        ``(energy, mu)`` of the weighted average.

    Raises:
        ConfigurationError: No sites, wrong number of weights or invalid weights.
        SimulationError: The site grids do not overlap.
    """
    if not sites:
        raise ConfigurationError("average_site_spectra needs at least one site spectrum")
    w = np.asarray(
        [s.multiplicity for s in sites] if weights is None else list(weights), dtype=float
    )
    if w.shape != (len(sites),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigurationError(
            f"need one non-negative weight per site ({len(sites)}), not all zero; got {w}"
        )
    lo = max(float(s.energy[0]) for s in sites)
    hi = min(float(s.energy[-1]) for s in sites)
    if not hi > lo:
        raise SimulationError(
            "the site spectra have no common energy range: "
            + ", ".join(f"site {s.site_index}: {s.energy[0]:.1f}-{s.energy[-1]:.1f} eV"
                        for s in sites)
        )
    points = np.concatenate([s.energy[(s.energy >= lo) & (s.energy <= hi)] for s in sites])
    grid = np.unique(np.concatenate([points, [lo, hi]]))
    grid = grid[np.concatenate([[True], np.diff(grid) > 1e-3])]
    stack = np.stack([np.interp(grid, s.energy, s.mu) for s in sites])
    mu = (w[:, None] * stack).sum(axis=0) / w.sum()
    return grid, mu


def simulate_xanes(
    structure: Structure,
    element: str,
    edge: str = "K",
    preset: str = "fast",
    material_id: str | None = None,
    *,
    symprec: float = SYMPREC,
    workdir: str | os.PathLike[str] | None = None,
    keep_workdir: bool = False,
    radius: float = CLUSTER_RADIUS,
    overrides: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
) -> SimulatedXANES:
    """Site-averaged XANES of an element: one FEFF run per inequivalent site.

    Args:
        structure: An ordered pymatgen structure.
        element: Absorbing element symbol.
        edge: Absorption edge.
        preset: A key of :data:`PRESETS`.
        material_id: Names the structure in the result and in error messages.
        symprec: Symmetry tolerance (Å) for finding inequivalent sites.
        workdir: Parent directory for the per-site work directories (``site_<index>``), kept;
            ``None``: temporary directories (removed unless ``keep_workdir``).
        keep_workdir: Keep the temporary work directories.
        radius: Radius (Å) of the ATOMS cluster.
        overrides: Card overrides, see :func:`preset_cards`.
        timeout: Seconds allowed per FEFF stage.

    Returns:
        The multiplicity-weighted average and the per-site spectra.

    Raises:
        ElementError: The element is unknown or absent from the structure.
        ConfigurationError: Unknown preset or edge.
        SimulationError: FEFF failed for a site (see :func:`simulate_site`).
    """
    preset_cards(preset, edge, overrides)  # fail fast on a bad preset/edge
    classes = inequivalent_sites(structure, element, symprec, material_id=material_id)
    sites = []
    for index, multiplicity in classes:
        site_dir = None if workdir is None else Path(workdir) / f"site_{index}"
        spectrum = simulate_site(
            structure, index, edge, preset, site_dir, material_id=material_id,
            keep_workdir=keep_workdir, radius=radius, overrides=overrides, timeout=timeout,
        )
        sites.append(_with_multiplicity(spectrum, multiplicity))
    energy, mu = average_site_spectra(sites)
    energy.setflags(write=False)
    mu.setflags(write=False)
    return SimulatedXANES(
        energy=energy,
        mu=mu,
        element=sites[0].element,
        edge=sites[0].edge,
        preset=preset,
        material_id=material_id,
        formula=_formula(structure),
        sites=tuple(sites),
        feff_version=sites[0].feff_version,
        wall_time_s=float(sum(s.wall_time_s for s in sites)),
    )


def _with_multiplicity(spectrum: SiteSpectrum, multiplicity: int) -> SiteSpectrum:
    return replace(spectrum, multiplicity=int(multiplicity))
