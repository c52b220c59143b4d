"""The committed fixture snapshot: consistent with its builder, and every spectrum usable."""

from __future__ import annotations

import pytest

from specfusion_lib.core.errors import SnapshotError
from specfusion_lib.data.fixture import FIXTURE_COMPOUNDS, fixture_structures
from specfusion_lib.data.sources import open_snapshot, snapshot_overview
from specfusion_lib.data.statistics import (
    element_counts,
    processed_spectra_by_element,
    top_anonymous_formulas,
)
from specfusion_lib.spectra.xanes import XANESSpectrum, preprocess_xanes, tabulated_edge_energy


@pytest.mark.slow
def test_fixture_matches_its_builder(fixture_snapshot) -> None:
    structures = fixture_structures()
    assert sorted(fixture_snapshot.materials["material_id"]) == sorted(structures)
    for material_id, structure in structures.items():
        assert fixture_snapshot.structure(material_id) == structure
    simulated = {(r.material_id, r.element) for r in fixture_snapshot.spectra.itertuples()}
    assert simulated == {(c.material_id, el) for c in FIXTURE_COMPOUNDS for el in c.edges}
    assert fixture_snapshot.manifest["simulation"]["preset"] == "fast"


def test_every_fixture_spectrum_preprocesses(fixture_snapshot) -> None:
    """Real FEFF10 spectra: E0 near the tabulated edge, positive step, full window."""
    for row in fixture_snapshot.spectra.itertuples():
        spectrum = XANESSpectrum(row.energy, row.mu, element=row.element, edge=row.edge)
        processed = preprocess_xanes(spectrum)
        shift = processed.e0 - tabulated_edge_energy(row.element, row.edge)
        assert -12.0 < shift < 20.0, (row.material_id, row.element, shift)
        assert processed.edge_step > 0, (row.material_id, row.element)
        assert processed.coverage == pytest.approx(1.0)
        assert processed.values.shape == (200,)


def test_statistics_of_fixture(fixture_snapshot) -> None:
    counts = element_counts(fixture_snapshot)
    assert counts["O"] == 9 and counts["Mn"] == 2 and counts["S"] == 1
    assert top_anonymous_formulas(fixture_snapshot, n=1).index[0] == "AB"
    grid, by_element, skipped = processed_spectra_by_element(fixture_snapshot)
    assert skipped.empty
    assert grid.shape == (200,) and by_element["Co"].shape == (2, 200)
    assert "O" not in by_element  # only transition metals by default


def test_overview_reports_absent_tasks(fixture_snapshot) -> None:
    tasks = snapshot_overview(fixture_snapshot)["tasks"].set_index("task")
    assert tasks.loc["band_gap", "status"] == "not available in this snapshot"
    assert tasks.loc["density", "status"] == "available"


def test_open_snapshot_missing_folder_says_how(tmp_path) -> None:
    with pytest.raises(SnapshotError, match="build-fixture.*fetch-mp"):
        open_snapshot(tmp_path / "nothing")
