"""The real Materials Project structures: counts, the check/train separation, the committed
family-wise validation part, error reporting on a damaged file and :func:`seen_families`."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import ChecksumError, ConfigurationError, SnapshotError
from specfusion_lib.data import real_structures as rs
from specfusion_lib.data.families import structure_family_key

CHECK_CRYSTAL_SYSTEMS = {"orthorhombic": 320, "tetragonal": 300, "cubic": 295, "trigonal": 274,
                         "monoclinic": 175, "hexagonal": 125, "triclinic": 54}


@pytest.fixture(scope="module")
def train() -> rs.RealStructureSet:
    return rs.load_real_structures("train")


@pytest.fixture(scope="module")
def check() -> rs.RealStructureSet:
    return rs.load_real_structures("check")


def test_folder_is_the_repository_data_folder() -> None:
    expected = Path(__file__).resolve().parents[1] / "data" / "real_structures"
    assert expected == rs.REAL_STRUCTURES_DIR
    for part in rs.PARTS:
        raw = rs.real_structures_path(part).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == rs.FILE_SHA256[part]
    readme = (rs.REAL_STRUCTURES_DIR / "README.md").read_text()
    assert "## In specfusion" in readme
    assert all(digest in readme for digest in rs.FILE_SHA256.values())


def test_documented_counts(train: rs.RealStructureSet, check: rs.RealStructureSet) -> None:
    assert (train.part, len(train)) == ("train", 1045)
    assert (check.part, len(check)) == ("check", 1543)
    assert dict(Counter(check.crystal_systems)) == CHECK_CRYSTAL_SYSTEMS
    for data in (train, check):
        assert len(set(data.material_ids)) == len(data)
        for name in ("formulas", "crystal_systems", "space_groups", "structures", "sources",
                     "has_tm", "family_keys", "families"):
            assert len(getattr(data, name)) == len(data), name
        assert data.has_tm.dtype == bool
        # the structural key's space group is the record's (both spglib at 0.1 Å)
        assert [int(k.rsplit("_", 1)[1]) for k in data.family_keys] == list(data.space_groups)
    # records without a material id get "<part>-<row>" ids
    assert any(m.startswith("check-") for m in check.material_ids)
    assert rs.load_real_structures("train") is train  # cached


def test_check_formulas_never_occur_in_train(train: rs.RealStructureSet,
                                             check: rs.RealStructureSet) -> None:
    assert not set(check.formulas) & set(train.formulas)
    reduced_train = {s.composition.reduced_formula for s in train.structures}
    reduced_check = {s.composition.reduced_formula for s in check.structures}
    assert not reduced_check & reduced_train


def test_frame_and_subset(check: rs.RealStructureSet) -> None:
    frame = check.to_frame()
    assert len(frame) == len(check) and "structure" not in frame.columns
    assert frame["material_id"].tolist() == list(check.material_ids)
    part = check.subset([5, 2])
    assert part.material_ids == (check.material_ids[5], check.material_ids[2])
    assert part.structures[0] is check.structures[5]
    assert len(check.subset(check.has_tm)) == int(check.has_tm.sum())


def test_committed_validation_part(train: rs.RealStructureSet) -> None:
    stored = json.loads(rs.VALIDATION_FILE.read_text())
    assert stored == rs.make_validation_part(train)
    assert stored["train_sha256"] == rs.FILE_SHA256["train"]
    fit, val = rs.validation_part(train)
    assert len(fit) + len(val) == len(train)
    assert not set(fit.tolist()) & set(val.tolist())
    assert 0.15 * len(train) <= len(val) <= 0.25 * len(train)
    families = np.asarray(train.families)
    assert not set(families[fit]) & set(families[val])  # no family on both sides
    assert set(families[val]) == set(stored["families"])
    assert {train.material_ids[i] for i in val} == set(stored["material_ids"])


def test_validation_part_rejects_another_train_file(train: rs.RealStructureSet,
                                                    tmp_path: Path) -> None:
    stored = json.loads(rs.VALIDATION_FILE.read_text())
    bad = tmp_path / "validation_part.json"
    bad.write_text(json.dumps({**stored, "train_sha256": "0" * 64}))
    with pytest.raises(SnapshotError, match="SHA-256"):
        rs.validation_part(train, bad)
    bad.write_text(json.dumps({**stored, "material_ids": ["mp-does-not-exist"]}))
    with pytest.raises(SnapshotError, match="not in the train set"):
        rs.validation_part(train, bad)


def _write_gz(path: Path, lines: list[str]) -> None:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_damaged_copy_raises_snapshot_error(tmp_path: Path) -> None:
    lines = gzip.decompress(rs.real_structures_path("train").read_bytes()).decode().splitlines()
    target = tmp_path / "mp_structures_train.jsonl.gz"
    record = json.loads(lines[2])
    del record["structure"]
    _write_gz(target, [lines[0], lines[1], json.dumps(record)])
    with pytest.raises(SnapshotError, match=r"mp_structures_train\.jsonl\.gz, line 3: missing"):
        rs.load_real_structures("train", tmp_path)
    _write_gz(target, [lines[0], lines[1][:-10]])
    with pytest.raises(SnapshotError, match=r"mp_structures_train\.jsonl\.gz, line 2: bad JSON"):
        rs.load_real_structures("train", tmp_path)
    target.write_bytes(b"not gzip")
    with pytest.raises(SnapshotError, match=r"mp_structures_train\.jsonl\.gz"):
        rs.load_real_structures("train", tmp_path)
    with pytest.raises(SnapshotError, match=r"mp_structures_check\.jsonl\.gz.*not found"):
        rs.load_real_structures("check", tmp_path)
    _write_gz(target, [lines[0], lines[0]])
    with pytest.raises(SnapshotError, match="duplicate material ids"):
        rs.load_real_structures("train", tmp_path)
    _write_gz(target, lines[:3])  # a good copy elsewhere loads (no checksum to compare with)
    assert len(rs.load_real_structures("train", tmp_path)) == 3


def test_bad_checksum_and_unknown_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(rs.FILE_SHA256, "train", "0" * 64)
    with pytest.raises(ChecksumError, match=r"mp_structures_train\.jsonl\.gz: bad checksum"):
        rs.load_real_structures("train")
    with pytest.raises(ConfigurationError):
        rs.load_real_structures("test")


def _hand_set(structures: list[Structure]) -> rs.RealStructureSet:
    n = len(structures)
    return rs.RealStructureSet(
        part="check", material_ids=tuple(f"x-{i}" for i in range(n)),
        formulas=tuple(s.composition.reduced_formula for s in structures),
        crystal_systems=("cubic",) * n, space_groups=(0,) * n, structures=tuple(structures),
        sources=("hand",) * n, has_tm=np.zeros(n, dtype=bool),
        family_keys=tuple(structure_family_key(s) for s in structures))


def test_seen_families_on_a_hand_made_case() -> None:
    def rock_salt(a: str, b: str, lattice: float) -> Structure:
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]])

    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    check = _hand_set([rock_salt("Na", "Cl", 5.64), cscl, rock_salt("Mg", "O", 4.21)])
    assert check.family_keys == ("AB_225", "AB_221", "AB_225")
    training = [structure_family_key(rock_salt("K", "Br", 6.6))]
    assert rs.seen_families(check, training).tolist() == [True, False, True]
    assert rs.seen_families(check, []).tolist() == [False, False, False]
    assert check.families == check.family_keys


def _fake_feff(structure, site_index, edge="K", preset="fast", *, material_id=None,
               timeout=None, overrides=None, radius=10.0):
    """Synthetic site spectrum; the first compound's sites fail unless run with a 7 Å
    cluster (rescued by the radius-7 rung), the second compound's always fail in pot."""
    import numpy as np
    from pymatgen.core import Element

    from specfusion_lib.core.errors import SimulationError
    from specfusion_lib.simulate import feff

    symbol = structure[site_index].specie.symbol
    if material_id == _FAKE_IDS[1] or (material_id == _FAKE_IDS[0] and radius != 7.0):
        raise SimulationError(f"FEFF10 failed for {material_id}, absorber {symbol} site "
                              f"{site_index} in stage pot: synthetic")
    e0 = 100.0 * Element(symbol).Z
    energy = np.linspace(e0 - 20.0, e0 + 80.0, 101)
    mu = 1.0 / (1.0 + np.exp(-(energy - e0)))
    return feff.SiteSpectrum(energy, mu, symbol, site_index, edge, preset, "fake", 0.01,
                             cards=feff.preset_cards(preset, edge, overrides), radius=radius)


_FAKE_IDS: list[str] = []


def test_real_build_runs_resumes_and_reports_failure_rates_before_and_after_the_ladder(
        tmp_path) -> None:
    from specfusion_lib.data.real_spectra import plan_real_jobs, run_real_build

    jobs = plan_real_jobs(["check"], max_materials=3)
    ids = list(dict.fromkeys(j.material_id for j in jobs))
    assert len(ids) == 3 and all(i.startswith("check:") for i in ids)
    assert all(j.preset == "fast-scf" and j.element in TRANSITION_METALS for j in jobs)
    _FAKE_IDS[:] = ids[:2]
    report = run_real_build(tmp_path, parts=["check"], max_materials=3, executor="serial",
                            simulate=_fake_feff, progress=False)
    n = len(jobs)
    first = sum(j.material_id in ids[:2] for j in jobs)
    failed = sum(j.material_id == ids[1] for j in jobs)
    totals = report["totals"]
    assert totals["planned"] == totals["attempted"] == n
    assert totals["failed_first"] == first and totals["failed"] == failed
    assert totals["failure_rate_first_attempt"] == pytest.approx(first / n)
    assert totals["failure_rate_after_ladder"] == pytest.approx(failed / n)
    assert report["rescued_by"] == {"radius-7": first - failed}
    assert report["failed_stages"] == {"pot": failed}
    assert "SCF" in report["presets"]["fast-scf"]
    coverage = report["coverage_by_element"]
    assert sum(c["compounds"] for c in coverage.values()) == len({(j.material_id, j.element)
                                                                 for j in jobs})
    done = {(j.material_id, j.element) for j in jobs if j.material_id != ids[1]}
    assert sum(c["compounds_done"] for c in coverage.values()) == len(done)
    assert all(c["families_done"] <= c["families"] <= c["compounds"] for c in coverage.values())
    assert json.loads((tmp_path / "report.json").read_text())["totals"] == totals
    # a second run reads everything from the cache
    again = run_real_build(tmp_path, parts=["check"], max_materials=3, executor="serial",
                           simulate=_fake_feff, progress=False)
    assert again["totals"] == totals and "0 computed" in again["last_run"]["summary"]
    # the part's snapshot: compounds with every TM site done get spectra, labels from the
    # structure, and each spectrum says how it was made
    from specfusion_lib.data.real_spectra import build_real_snapshot
    from specfusion_lib.data.snapshot import load_snapshot

    path = build_real_snapshot("check", tmp_path / "snap", build_dir=tmp_path,
                               max_materials=3, progress=False)
    snap = load_snapshot(path)
    assert snap.source == "real-check" and len(snap.materials) == 3
    with_spectra = set(snap.spectra["material_id"])
    assert ids[1] not in with_spectra and ids[0] in with_spectra
    settings = json.loads(snap.spectra.loc[snap.spectra["material_id"] == ids[0],
                                           "settings"].iloc[0])
    assert {s["retry"] for s in settings["sites"]} == {"radius-7"}
    assert snap.materials["crystal_system"].notna().all()
    assert "Materials Project structure" in snap.manifest["label_sources"]["density"]
    assert any(tmp_path.joinpath("labels").iterdir())
