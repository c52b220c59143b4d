"""Snapshot format: round trip, checksums, atomic writes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ChecksumError, SnapshotError
from specfusion_lib.data import snapshot as snap


def _rocksalt(a: float, cation: str) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), [cation, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _records() -> tuple[list[snap.MaterialRecord], list[snap.SpectrumRecord]]:
    mno, nio = _rocksalt(4.445, "Mn"), _rocksalt(4.177, "Ni")
    materials = [
        snap.MaterialRecord("t-1", mno, {"density": mno.density, "crystal_system": "cubic",
                                         "is_magnetic": True},
                            [{"element": "Mn", "site_index": 0, "multiplicity": 4,
                              "oxidation_state": 2, "coordination_number": 6}]),
        snap.MaterialRecord("t-2", nio, {"band_gap": 3.7}),
    ]
    grid = np.linspace(6520.0, 6600.0, 81)
    spectra = [
        snap.SpectrumRecord("t-1", "Mn", "K", grid, np.tanh(grid - 6540.0), "test",
                            settings={"preset": "fast-scf",
                                      "sites": [{"site_index": 0, "retry": "radius-7"}]}),
        snap.SpectrumRecord("t-2", "Ni", "K", grid + 1800.0, np.tanh(grid - 6540.0), "test"),
    ]
    return materials, spectra


@pytest.fixture
def written(tmp_path: Path) -> Path:
    materials, spectra = _records()
    return snap.write_snapshot(tmp_path / "snap", materials, spectra, source="test",
                               label_sources={"band_gap": "made up for a test"})


def test_round_trip(written: Path) -> None:
    loaded = snap.load_snapshot(written)
    assert len(loaded) == 2
    assert list(loaded.materials["material_id"]) == ["t-1", "t-2"]
    assert loaded.structure("t-1").composition.reduced_formula == "MnO"
    assert loaded.sites("t-1")[0]["coordination_number"] == 6
    assert loaded.sites("t-2") is None
    # absent labels stay absent (null), present ones round-trip
    row = loaded.materials.set_index("material_id").loc["t-2"]
    assert row["band_gap"] == pytest.approx(3.7)
    assert row["is_magnetic"] is None
    assert loaded.label_available("band_gap") and not loaded.label_available("efermi")
    spec = loaded.spectra_of("t-1").iloc[0]
    assert spec["energy"].shape == (81,) and spec["mu"][0] == pytest.approx(np.tanh(-20.0))
    # how each spectrum was made (a retried site keeps its rung); absent stays absent
    assert json.loads(spec["settings"])["sites"][0]["retry"] == "radius-7"
    assert loaded.spectra_of("t-2").iloc[0]["settings"] is None
    manifest = loaded.manifest
    assert manifest["counts"]["materials"] == 2
    assert manifest["counts"]["spectra_by_edge"] == {"Mn K": 1, "Ni K": 1}
    assert manifest["counts"]["labels_present"]["band_gap"] == 1
    assert manifest["label_sources"]["band_gap"] == "made up for a test"
    assert len(loaded.snapshot_id) == 64


@pytest.mark.slow
def test_snapshot_id_depends_on_content(tmp_path: Path, written: Path) -> None:
    materials, spectra = _records()
    spectra[0].mu[0] += 1.0
    other = snap.write_snapshot(tmp_path / "other", materials, spectra, source="test")
    assert snap.load_snapshot(other).snapshot_id != snap.load_snapshot(written).snapshot_id


def test_corrupted_file_is_refused(written: Path) -> None:
    target = written / snap.SPECTRA_FILE
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="spectra.parquet.*SHA-256"):
        snap.load_snapshot(written)


def test_truncated_file_is_refused(written: Path) -> None:
    target = written / snap.MATERIALS_FILE
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(ChecksumError, match="materials.parquet.*truncated"):
        snap.load_snapshot(written)


def test_missing_file_and_manifest(written: Path, tmp_path: Path) -> None:
    (written / snap.SPECTRA_FILE).unlink()
    with pytest.raises(SnapshotError, match="spectra.parquet.*missing"):
        snap.load_snapshot(written)
    with pytest.raises(SnapshotError, match="no snapshot folder"):
        snap.load_snapshot(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match="manifest.json missing"):
        snap.load_snapshot(tmp_path / "empty")


def test_bad_manifest(written: Path) -> None:
    manifest_path = written / snap.MANIFEST_FILE
    manifest_path.write_text("{not json")
    with pytest.raises(SnapshotError, match="not valid JSON"):
        snap.load_snapshot(written)
    manifest_path.write_text(json.dumps({"schema_version": 99, "files": {}}))
    with pytest.raises(SnapshotError, match="schema_version 99"):
        snap.load_snapshot(written)


def test_write_refuses_existing_and_bad_records(written: Path, tmp_path: Path) -> None:
    materials, spectra = _records()
    with pytest.raises(SnapshotError, match="already exists"):
        snap.write_snapshot(written, materials, spectra, source="test")
    with pytest.raises(SnapshotError, match="duplicate material ids"):
        snap.write_snapshot(tmp_path / "d", materials + materials[:1], [], source="test")
    orphan = snap.SpectrumRecord("nope", "Mn", "K", np.arange(3.0), np.zeros(3), "test")
    with pytest.raises(SnapshotError, match="unknown material ids"):
        snap.write_snapshot(tmp_path / "o", materials, [orphan], source="test")
    with pytest.raises(SnapshotError, match="unknown label"):
        snap.MaterialRecord("x", materials[0].structure, {"bandgap": 1.0})
    with pytest.raises(SnapshotError, match="strictly increasing"):
        snap.SpectrumRecord("x", "Mn", "K", np.array([1.0, 1.0, 2.0]), np.zeros(3), "t")
    with pytest.raises(SnapshotError, match="NaN"):
        snap.SpectrumRecord("x", "Mn", "K", np.arange(3.0), np.array([0, np.nan, 1]), "t")
    # nothing half-written is left beside the snapshots
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    materials, spectra = _records()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(snap, "file_sha256", boom)
    with pytest.raises(OSError, match="disk full"):
        snap.write_snapshot(tmp_path / "snap", materials, spectra, source="test")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_overwrite_replaces_atomically(written: Path) -> None:
    materials, spectra = _records()
    snap.write_snapshot(written, materials[:1], spectra[:1], source="test", overwrite=True)
    assert len(snap.load_snapshot(written)) == 1
    assert sorted(p.name for p in written.parent.iterdir()) == ["snap"]
