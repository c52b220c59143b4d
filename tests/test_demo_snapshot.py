"""The committed demo snapshot (``data/demo``): what issue 3 asks of it, checked on the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymatgen.core import Composition

from specfusion_lib.core.elements import is_transition_metal
from specfusion_lib.data.demo_pool import NAMED_COMPOUNDS, NOT_BUILT
from specfusion_lib.data.snapshot import load_snapshot

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"
#: Limits of the demo snapshot (issue 3, "Deliver" 4, 6 and 7).
MIN_PXRD_STRUCTURES = 3000
MIN_TM_XANES_COMPOUNDS = 1500
MIN_ALL_ELEMENT_COMPOUNDS = 300
MAX_BYTES = 40 * 1024**2


@pytest.fixture(scope="module")
def demo():
    if not (DEMO / "manifest.json").is_file():
        pytest.fail(f"{DEMO} has no manifest.json: the demo snapshot is not committed")
    return load_snapshot(DEMO)  # verifies every checksum


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DEMO / "manifest.json").read_text())


def test_size_and_checksummed_files(manifest: dict) -> None:
    files = sorted(p.name for p in DEMO.iterdir() if p.is_file() and p.name != "manifest.json")
    assert files == sorted([*manifest["files"], *manifest.get("supplements", {})])
    assert sum(p.stat().st_size for p in DEMO.iterdir()) <= MAX_BYTES


def test_manifest_counts_meet_the_issue(manifest: dict) -> None:
    build = manifest["build"]
    assert build["pxrd_structures"] >= MIN_PXRD_STRUCTURES
    assert build["compounds_with_every_tm_k_edge"] >= MIN_TM_XANES_COMPOUNDS
    assert build["compounds_with_every_element_k_edge"] >= MIN_ALL_ELEMENT_COMPOUNDS


def test_manifest_counts_match_the_tables(demo, manifest: dict) -> None:
    materials = demo.materials
    assert len(materials) == manifest["counts"]["materials"] == manifest["build"][
        "pxrd_structures"]
    spectra = demo.spectra
    assert len(spectra) == manifest["counts"]["spectra"]
    edges_of = spectra.groupby("material_id")["element"].agg(set).to_dict()
    every_tm = every_element = 0
    for row in materials.itertuples():
        elements = set(row.elements)
        have = edges_of.get(row.material_id, set())
        tms = {e for e in elements if is_transition_metal(e)}  # Sc–Zn, Y–Cd (the paper's)
        assert tms, f"{row.formula} has no transition metal"
        assert 2 <= len(elements) <= 5, row.formula
        every_tm += bool(have) and tms <= have
        every_element += elements <= have
    assert every_tm == manifest["build"]["compounds_with_every_tm_k_edge"]
    assert every_element == manifest["build"]["compounds_with_every_element_k_edge"]


def test_named_compounds_are_present(demo, manifest: dict) -> None:
    named = manifest["named_compounds"]
    expected = {n.formula for n in NAMED_COMPOUNDS} - set(NOT_BUILT)
    assert expected <= set(named), sorted(expected - set(named))
    formulas = demo.materials.set_index("material_id")["formula"]
    for formula, material_id in named.items():
        assert Composition(formulas[material_id]).reduced_composition == \
            Composition(formula).reduced_composition
