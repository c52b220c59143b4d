"""The small fixture snapshot the tests and smoke runs use (committed under ``tests/``).

A handful of textbook compounds covering five crystal systems and two to three elements,
built with ``Structure.from_spacegroup`` from published lattice parameters (ICSD-style
textbook values), labelled with the exact structure-derived labels of
:mod:`specfusion_lib.data.structure_labels` and with K-edge XANES simulated by this package's FEFF10
wrapper (``fast`` preset). Labels that need a model or a DFT calculation (band gap, Fermi
level, formation energy, magnetism) are absent: the fixture exercises the "not available in
this snapshot" path of every notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Lattice, Structure
from tqdm.auto import tqdm

from specfusion_lib.data.snapshot import MaterialRecord, SpectrumRecord, write_snapshot

__all__ = ["FIXTURE_COMPOUNDS", "FixtureCompound", "build_fixture_snapshot",
           "fixture_structures"]


@dataclass(frozen=True)
class FixtureCompound:
    """A textbook structure: space group, lattice, species and fractional coordinates.

    Attributes:
        material_id: Id in the fixture snapshot.
        spacegroup: Hermann–Mauguin symbol understood by pymatgen (with origin choice).
        lattice: (a, b, c, alpha, beta, gamma) in Å and degrees.
        species: Species of the asymmetric unit.
        coords: Fractional coordinates of the asymmetric unit.
        edges: Absorbing elements whose K-edge XANES is simulated.
        reference: Where the structure is described.
    """

    material_id: str
    spacegroup: str
    lattice: tuple[float, float, float, float, float, float]
    species: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]
    edges: tuple[str, ...]
    reference: str

    def structure(self) -> Structure:
        """Build the structure from the space group and asymmetric unit."""
        return Structure.from_spacegroup(
            self.spacegroup, Lattice.from_parameters(*self.lattice), list(self.species),
            [list(c) for c in self.coords])


_CUBIC = (90.0, 90.0, 90.0)
_HEX = (90.0, 90.0, 120.0)

FIXTURE_COMPOUNDS: tuple[FixtureCompound, ...] = (
    FixtureCompound("fx-MnO", "Fm-3m", (4.445, 4.445, 4.445, *_CUBIC), ("Mn", "O"),
                    ((0, 0, 0), (0.5, 0.5, 0.5)), ("Mn", "O"), "rocksalt"),
    FixtureCompound("fx-NiO", "Fm-3m", (4.177, 4.177, 4.177, *_CUBIC), ("Ni", "O"),
                    ((0, 0, 0), (0.5, 0.5, 0.5)), ("Ni",), "rocksalt"),
    FixtureCompound("fx-MnS", "Fm-3m", (5.224, 5.224, 5.224, *_CUBIC), ("Mn", "S"),
                    ((0, 0, 0), (0.5, 0.5, 0.5)), ("Mn",), "rocksalt (alabandite)"),
    FixtureCompound("fx-TiO2", "P4_2/mnm", (4.594, 4.594, 2.959, *_CUBIC), ("Ti", "O"),
                    ((0, 0, 0), (0.3048, 0.3048, 0)), ("Ti", "O"), "rutile"),
    FixtureCompound("fx-SrTiO3", "Pm-3m", (3.905, 3.905, 3.905, *_CUBIC), ("Sr", "Ti", "O"),
                    ((0.5, 0.5, 0.5), (0, 0, 0), (0.5, 0, 0)), ("Ti",), "cubic perovskite"),
    FixtureCompound("fx-Cr2O3", "R-3c", (4.959, 4.959, 13.594, *_HEX), ("Cr", "O"),
                    ((0, 0, 0.3475), (0.3058, 0, 0.25)), ("Cr",), "corundum (eskolaite)"),
    FixtureCompound("fx-ZnO", "P6_3mc", (3.250, 3.250, 5.207, *_HEX), ("Zn", "O"),
                    ((1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.3825)), ("Zn",), "wurtzite"),
    FixtureCompound("fx-CuO", "C2/c", (4.684, 3.423, 5.129, 90.0, 99.54, 90.0), ("Cu", "O"),
                    ((0.25, 0.25, 0), (0, 0.4184, 0.25)), ("Cu",), "tenorite"),
    FixtureCompound("fx-LiCoO2", "R-3m", (2.816, 2.816, 14.05, *_HEX), ("Li", "Co", "O"),
                    ((0, 0, 0.5), (0, 0, 0), (0, 0, 0.2396)), ("Co",), "layered α-NaFeO2 type"),
    FixtureCompound("fx-Co3O4", "Fd-3m:2", (8.084, 8.084, 8.084, *_CUBIC), ("Co", "Co", "O"),
                    ((0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (0.2631, 0.2631, 0.2631)),
                    ("Co",), "normal spinel, origin choice 2"),
)


def fixture_structures() -> dict[str, Structure]:
    """Material id → structure of every fixture compound."""
    return {c.material_id: c.structure() for c in FIXTURE_COMPOUNDS}


def build_fixture_snapshot(out: str | os.PathLike[str], *, preset: str = "fast",
                           overwrite: bool = False) -> Path:
    """Simulate the fixture compounds with FEFF10 and write them as a snapshot.

    Args:
        out: Snapshot folder to write.
        preset: FEFF10 preset of :mod:`specfusion_lib.simulate.feff`.
        overwrite: Replace an existing snapshot.

    Returns:
        The snapshot folder.
    """
    from specfusion_lib.data.structure_labels import structure_labels
    from specfusion_lib.simulate.feff import feff_version, simulate_xanes

    materials, spectra = [], []
    for compound in tqdm(FIXTURE_COMPOUNDS, desc="fixture compounds"):
        structure = compound.structure()
        labels = structure_labels(structure)
        materials.append(MaterialRecord(
            compound.material_id, structure,
            {"crystal_system": labels.crystal_system, "density": labels.density},
            labels.to_dict()["sites"]))
        for element in compound.edges:
            result = simulate_xanes(structure, element, edge="K", preset=preset,
                                    material_id=compound.material_id)
            spectra.append(SpectrumRecord(compound.material_id, element, "K", result.energy,
                                          result.mu, source=f"feff10:{preset}"))
    return write_snapshot(
        out, materials, spectra, source="fixture",
        description=("Test fixture: textbook structures of simple oxides and a sulfide, "
                     f"K-edge XANES simulated with FEFF10 ({preset} preset) by specfusion. "
                     "Only structure-derived labels; model labels are absent on purpose."),
        label_sources={"crystal_system": "spglib (symprec 0.1) on the structure",
                       "density": "computed from the structure"},
        extra={"simulation": {"code": "FEFF10 via feff10-rs", "version": feff_version(),
                              "preset": preset, "edge": "K"},
               "compounds": {c.material_id: c.reference for c in FIXTURE_COMPOUNDS}},
        overwrite=overwrite,
    )
