"""Structure-derived labels on textbook structures."""

from __future__ import annotations

import warnings
from functools import cache

import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ElementError
from specfusion_lib.data import structure_labels as lb

# Textbook structures (room-temperature lattice parameters)
_BUILDERS = {
    "MnO": lambda: Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.445), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ),
    "TiO2": lambda: Structure.from_spacegroup(  # rutile
        "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    ),
    "Co3O4": lambda: Structure.from_spacegroup(  # spinel, origin choice 2
        "Fd-3m:2",
        Lattice.cubic(8.084),
        ["Co", "Co", "O"],
        [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.263, 0.263, 0.263]],
    ),
    "Fe2O3": lambda: Structure.from_spacegroup(  # corundum (hematite)
        "R-3c", Lattice.hexagonal(5.035, 13.75), ["Fe", "O"], [[0, 0, 0.3553], [0.3059, 0, 0.25]]
    ),
    "ZnO": lambda: Structure.from_spacegroup(  # wurtzite
        "P6_3mc",
        Lattice.hexagonal(3.25, 5.207),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
    ),
    "Fe": lambda: Structure.from_spacegroup(  # bcc metal: no bond-valence solution
        "Im-3m", Lattice.cubic(2.87), ["Fe"], [[0, 0, 0]]
    ),
}


@cache
def structure(name: str) -> Structure:
    return _BUILDERS[name]()


@cache
def labels(name: str) -> lb.StructureLabels:
    with warnings.catch_warnings():
        # CrystalNN on the undecorated Fe metal: falls back to atomic radii (expected)
        warnings.filterwarnings("ignore", message="CrystalNN: cannot locate")
        return lb.structure_labels(structure(name))


@pytest.mark.parametrize(
    ("name", "system", "number"),
    [
        ("MnO", "cubic", 225),
        ("TiO2", "tetragonal", 136),
        ("Co3O4", "cubic", 227),
        ("Fe2O3", "trigonal", 167),
        ("ZnO", "hexagonal", 186),
        ("Fe", "cubic", 229),
    ],
)
def test_crystal_system_and_space_group(name, system, number):
    assert lb.crystal_system(structure(name)) == system
    sym = lb.symmetry_labels(structure(name))
    assert (sym.crystal_system, sym.space_group_number) == (system, number)
    assert (labels(name).crystal_system, labels(name).space_group_number) == (system, number)


def test_low_symmetry_crystal_systems():
    ortho = Structure.from_spacegroup(
        "Pmmm", Lattice.orthorhombic(3.0, 4.0, 5.0), ["Fe", "O"], [[0, 0, 0], [0.5, 0, 0]]
    )
    mono = Structure(
        Lattice.monoclinic(3.0, 4.0, 5.0, 100.0), ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0]]
    )
    tri = Structure(
        Lattice.from_parameters(5.0, 6.0, 7.0, 80.0, 85.0, 95.0),
        ["Fe", "O", "O"],
        [[0, 0, 0], [0.31, 0.22, 0.13], [0.6, 0.7, 0.45]],
    )
    assert lb.crystal_system(ortho) == "orthorhombic"
    assert lb.crystal_system(mono) == "monoclinic"
    assert lb.crystal_system(tri) == "triclinic"


@pytest.mark.parametrize(
    ("name", "element", "oxidation_state", "cn"),
    [
        ("MnO", "Mn", 2, 6),
        ("TiO2", "Ti", 4, 6),
        ("Fe2O3", "Fe", 3, 6),
        ("ZnO", "Zn", 2, 4),
    ],
)
def test_single_site_oxides(name, element, oxidation_state, cn):
    lab = labels(name)
    assert len(lab.sites) == 1
    site = lab.sites[0]
    assert (site.element, site.oxidation_state, site.coordination_number) == (
        element,
        oxidation_state,
        cn,
    )
    assert site.multiplicity == sum(1 for s in structure(name) if s.specie.symbol == element)
    assert lab.oxidation_states_available


def test_spinel_two_cobalt_sites():
    lab = labels("Co3O4")
    by_cn = {s.coordination_number: s for s in lab.sites}
    assert set(by_cn) == {4, 6}
    assert (by_cn[4].oxidation_state, by_cn[4].multiplicity) == (2, 8)  # tetrahedral 8a
    assert (by_cn[6].oxidation_state, by_cn[6].multiplicity) == (3, 16)  # octahedral 16d
    summary = lb.element_site_summary(lab)["Co"]
    assert summary.n_sites == 24
    assert summary.mean_oxidation_state == pytest.approx(8 / 3)
    assert summary.oxidation_states == (2, 3)
    assert summary.coordination_numbers == (4, 6)
    assert summary.mean_coordination_number == pytest.approx(16 / 3)


def test_spinel_origin_choice_1_gives_same_labels():
    s1 = Structure.from_spacegroup(
        "Fd-3m",
        Lattice.cubic(8.084),
        ["Co", "Co", "O"],
        [[0, 0, 0], [0.625, 0.625, 0.625], [0.388, 0.388, 0.388]],
    )
    got = {
        (s.oxidation_state, s.coordination_number, s.multiplicity)
        for s in lb.structure_labels(s1).sites
    }
    assert got == {(2, 4, 8), (3, 6, 16)}


def test_anion_sites_on_request():
    lab = lb.structure_labels(structure("TiO2"), absorbers=["O"])
    assert [(s.element, s.oxidation_state, s.coordination_number) for s in lab.sites] == [
        ("O", -2, 3)
    ]
    assert lb.structure_labels(structure("TiO2"), absorbers=["Fe"]).sites == ()
    with pytest.raises(ElementError, match="'Xx'"):
        lb.structure_labels(structure("TiO2"), absorbers=["Xx"])


def test_bond_valence_failure_gives_none():
    fe = structure("Fe")
    assert lb.site_oxidation_states(fe) is None
    lab = labels("Fe")
    assert not lab.oxidation_states_available
    assert [(s.oxidation_state, s.coordination_number) for s in lab.sites] == [(None, 8)]
    summary = lb.element_site_summary(lab)["Fe"]
    assert summary.mean_oxidation_state is None
    assert summary.oxidation_states == ()


def test_site_oxidation_states_per_site():
    assert lb.site_oxidation_states(structure("MnO")) == [2] * 4 + [-2] * 4


def test_coordination_numbers_only_requested_sites():
    tio2 = structure("TiO2")
    oxi = [4, 4, -2, -2, -2, -2]
    assert lb.site_coordination_numbers(tio2, [0, 2], oxidation_states=oxi) == {0: 6, 2: 3}
    zno = structure("ZnO")
    assert lb.site_coordination_numbers(zno, oxidation_states=[2, 2, -2, -2]) == {
        0: 4,
        1: 4,
        2: 4,
        3: 4,
    }
    with pytest.raises(IndexError):
        lb.site_coordination_numbers(tio2, [6])


def test_density():
    # MnO: 4 formula units in a cubic cell of 4.445 Å
    expected = 4 * (54.938044 + 15.999) / 6.02214076e23 / (4.445e-8) ** 3
    assert lb.density(structure("MnO")) == pytest.approx(expected, rel=1e-4)
    assert labels("MnO").density == pytest.approx(expected, rel=1e-4)


def test_disordered_structure_raises():
    dis = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.3), [{"Mn": 0.5, "Fe": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    with pytest.raises(lb.DisorderedStructureError, match="partially occupied"):
        lb.structure_labels(dis)


def test_normalize_crystal_system():
    assert lb.normalize_crystal_system("Cubic") == "cubic"
    assert lb.normalize_crystal_system(" TRIGONAL ") == "trigonal"
    assert len(lb.CRYSTAL_SYSTEMS) == 7
    with pytest.raises(ValueError, match="rhombohedral"):
        lb.normalize_crystal_system("rhombohedral")


def test_to_dict_uses_snapshot_field_names():
    d = labels("MnO").to_dict()
    assert d["crystal_system"] == "cubic"
    assert d["sites"] == [
        {
            "element": "Mn",
            "site_index": 0,
            "multiplicity": 4,
            "oxidation_state": 2,
            "coordination_number": 6,
        }
    ]
