"""CGXAS: per-site spectra in the snapshot, crystal graphs, the universal network, its
calibration to measured spectra and the leave-one-compound-out protocol."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ChecksumError, ElementError, SnapshotError, SpectrumError
from specfusion_lib.data.snapshot import load_snapshot, write_site_spectra
from specfusion_lib.xas_structure import calibration as cal
from specfusion_lib.xas_structure import cgxas_study as cs
from specfusion_lib.xas_structure.cgxas import (
    CGXASForward,
    CGXASNet,
    CGXASSettings,
    SiteTargets,
    build_graphs,
    predict_targets,
    rse_loss,
    site_targets,
    train_cgxas,
)
from specfusion_lib.xas_structure.crystal_graph import (
    ATOM_FEATURE_DIM,
    MAX_NEIGHBOURS,
    atom_features,
    batch_graphs,
    build_graph,
)
from specfusion_lib.xas_structure.grid import (
    N_GRID_POINTS,
    edge_energy,
    grid_window,
    to_grid_partial,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "snapshot"
TINY = CGXASSettings(hidden=16, n_conv=2, decoder_depth=2, max_epochs=4, patience=3)


def _rocksalt(a: float = 4.4, cation: str = "Mn") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def _step(element: str, shift: float = 0.0) -> np.ndarray:
    grid = grid_window(element)
    return 1.0 / (1 + np.exp(-(grid.relative - 10.0 - shift) / 1.5))


@pytest.fixture()
def snapshot_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "snapshot"
    shutil.copytree(FIXTURE, dest)
    return dest


def _site_rows(snapshot) -> pd.DataFrame:
    rows = []
    for row in snapshot.spectra.itertuples(index=False):
        rows.append({"material_id": row.material_id, "element": row.element, "edge": row.edge,
                     "site_index": 0, "multiplicity": 1, "source": "test",
                     "energy": row.energy, "mu": row.mu})
    return pd.DataFrame(rows)


def test_site_spectra_supplement_is_verified_and_keeps_the_snapshot_id(snapshot_copy: Path
                                                                         ) -> None:
    before = load_snapshot(snapshot_copy)
    assert before.site_spectra() is None
    rows = _site_rows(before)
    entry = write_site_spectra(snapshot_copy, rows, description="test rows")
    after = load_snapshot(snapshot_copy)
    assert after.snapshot_id == before.snapshot_id
    assert after.site_spectra_sha256 == entry["sha256"]
    assert len(after.site_spectra()) == len(rows)
    assert not list(snapshot_copy.glob("*.tmp"))
    target = snapshot_copy / "site_spectra.parquet"
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumError, match="site_spectra.parquet"):
        load_snapshot(snapshot_copy)


def test_site_spectra_of_unknown_materials_or_duplicates_are_refused(snapshot_copy: Path
                                                                      ) -> None:
    rows = _site_rows(load_snapshot(snapshot_copy))
    with pytest.raises(SnapshotError, match="not in the snapshot"):
        write_site_spectra(snapshot_copy, rows.assign(material_id="nope"))
    with pytest.raises(SnapshotError, match="duplicate"):
        write_site_spectra(snapshot_copy, pd.concat([rows, rows.iloc[:1]]))
    assert load_snapshot(snapshot_copy).site_spectra() is None


def test_demo_site_spectra_average_to_the_snapshot_spectra() -> None:
    demo = load_snapshot(ROOT / "data" / "demo", verify=False)
    sites = demo.site_spectra()
    assert sites is not None and len(sites) > len(demo.spectra)
    spectra = demo.spectra.set_index(["material_id", "element"])
    multi = sites.groupby(["material_id", "element"]).filter(lambda g: len(g) > 1)
    for (mid, element), group in list(multi.groupby(["material_id", "element"]))[:20]:
        weights = group["multiplicity"].to_numpy(float)
        energy = spectra.loc[(mid, element), "energy"]
        mu = sum(w * np.interp(energy, e, m) for w, e, m in
                 zip(weights, group["energy"], group["mu"], strict=True)) / weights.sum()
        np.testing.assert_allclose(mu, spectra.loc[(mid, element), "mu"], rtol=0,
                                   atol=1e-3 * np.abs(mu).max())


def test_crystal_graph_keeps_the_nearest_twelve_neighbours() -> None:
    graph = build_graph(_rocksalt())
    assert graph.n_atoms == 8
    assert np.bincount(graph.src).max() <= MAX_NEIGHBOURS
    first = graph.distance[graph.src == 0]
    assert np.all(np.diff(first) >= 0)
    assert first[0] == pytest.approx(2.2, abs=1e-6)
    assert atom_features(graph.numbers).shape == (8, ATOM_FEATURE_DIM)
    batch = batch_graphs([graph, graph])
    assert int(batch.src.max()) == 15 and batch.offsets.tolist() == [0, 8]


def test_disordered_structure_is_refused() -> None:
    disordered = Structure(Lattice.cubic(4), [{"Mn": 0.5, "Fe": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        build_graph(disordered)


def test_universal_network_is_invariant_to_site_order_and_non_negative() -> None:
    torch.manual_seed(0)
    model = CGXASNet(hidden=16, n_conv=2, decoder_depth=2).eval()
    forward = CGXASForward(model)
    s = _rocksalt()
    shuffled = Structure.from_sites(list(reversed(s.sites)))
    a, b = forward.predict_structures([s, shuffled], "Mn")
    assert a.shape == (N_GRID_POINTS,)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert (a >= 0).all()
    with pytest.raises(ElementError, match="no Fe site"):
        forward.predict_structures([s], "Fe")


def test_training_lowers_the_loss_and_checkpoint_round_trip(tmp_path: Path) -> None:
    structures = {f"m{i}": _rocksalt(4.0 + 0.2 * i, c) for i, c in
                  enumerate(["Mn", "Fe", "Ni", "Co", "Mn", "Fe"])}
    graphs = {m: build_graph(s) for m, s in structures.items()}
    ids = np.array(list(structures), dtype=object)
    els = np.array([s[0].specie.symbol for s in structures.values()], dtype=object)
    mu = np.array([_step(e, i) for i, e in enumerate(els)], dtype=np.float32)
    targets = SiteTargets(ids, els, [np.array([0]) for _ in ids], mu, "site")
    model, loop = train_cgxas(graphs, targets.subset(range(4)), targets.subset([4, 5]),
                              settings=CGXASSettings(hidden=16, n_conv=2, decoder_depth=2,
                                                     max_epochs=30, patience=30, batch_size=2))
    losses = [h["train_loss"] for h in loop.history]
    assert losses[-1] < losses[0]
    forward = CGXASForward(model, {"elements": ["Mn", "Fe", "Ni", "Co"]})
    path = forward.save(tmp_path / "cgxas.pt")
    again = CGXASForward.load(path)
    np.testing.assert_allclose(again.predict_structures([structures["m0"]], "Mn"),
                               forward.predict_structures([structures["m0"]], "Mn"), atol=1e-6)
    with pytest.raises(ElementError, match="were not among them"):
        again.predict_structures([_rocksalt(cation="Cu")], "Cu")


def test_rse_loss_uses_only_covered_points() -> None:
    y = torch.ones(1, 4)
    p = torch.tensor([[1.0, 1.0, 5.0, 5.0]])
    assert float(rse_loss(p, y)) == pytest.approx(32 / 4)
    assert float(rse_loss(p, y, torch.tensor([[True, True, False, False]]))) == 0.0


def test_energy_calibration_moves_the_edge_by_its_shift() -> None:
    calib = cal.EnergyCalibration(["Fe"])
    with torch.no_grad():
        calib.shift.fill_(3.0)
        calib.log_width.fill_(-8.0)  # σ ≈ 0: no broadening
    grid = grid_window("Fe")
    y = torch.from_numpy(_step("Fe")[None].astype(np.float32))
    out = calib(y, ["Fe"]).detach().numpy()[0]
    assert edge_energy(out, grid.energies) - edge_energy(y[0].numpy(), grid.energies) == \
        pytest.approx(3.0, abs=0.15)
    assert calib.parameters_of("Cu")[0] == pytest.approx(3.0)  # unseen element: shared shift


def test_partial_grid_masks_what_the_data_do_not_cover() -> None:
    grid = grid_window("Mn")
    energy = np.arange(grid.edge_energy - 5, grid.edge_energy + 50, 0.5)
    mu = 1 / (1 + np.exp(-(energy - grid.edge_energy - 8) / 1.5))
    y, covered = to_grid_partial(energy, mu, "Mn", source="short.csv")
    assert 0.6 < covered.mean() < 0.8 and not covered[0] and not covered[-1]
    with pytest.raises(SpectrumError, match="short2.csv"):
        to_grid_partial(energy[energy > grid.edge_energy + 20], mu[energy > grid.edge_energy + 20],
                        "Mn", source="short2.csv")


def _measured(model: CGXASNet, shift: float) -> cal.MeasuredSet:
    """Measured-like set: the model's own spectra shifted by ``shift`` eV."""
    structures = [_rocksalt(4.0 + 0.1 * i, c) for i, c in
                  enumerate(["Mn", "Mn", "Fe", "Fe", "Ni", "Co"])]
    elements = np.array([s[0].specie.symbol for s in structures], dtype=object)
    base = cal.MeasuredSet(np.array([f"r{i}" for i in range(6)], dtype=object),
                           np.array([f"F{i}" for i in range(6)], dtype=object), elements,
                           np.array([f"m{i}" for i in range(6)], dtype=object), structures,
                           np.zeros((6, N_GRID_POINTS), np.float32),
                           np.ones((6, N_GRID_POINTS), bool))
    shifted = cal.EnergyCalibration()
    with torch.no_grad():
        shifted.shift.fill_(shift)
        shifted.log_width.fill_(-8.0)
        base.mu = shifted(torch.from_numpy(cal.Calibrated(model, None, "x").predict(base)),
                          list(elements)).numpy()
    base.formula[1] = "F0"  # two records of one compound leave together
    return base


def test_shift_calibration_recovers_a_known_energy_offset() -> None:
    torch.manual_seed(0)
    model = CGXASNet(hidden=16, n_conv=2, decoder_depth=2)
    with torch.no_grad():  # a decoder whose output rises with the grid: a spectrum with an edge
        model.decoder[-1].bias.copy_(torch.linspace(-2, 2, N_GRID_POINTS))
    data = _measured(model, 4.0)
    fitted = cal.fit_calibration(model, data, "c_shift_broaden",
                                 settings=cal.CalibrationSettings(epochs=300))
    assert fitted.energy.parameters_of("Fe")[0] == pytest.approx(4.0, abs=0.6)


def test_leave_one_compound_out_never_fits_on_the_scored_compound(monkeypatch) -> None:
    torch.manual_seed(0)
    model = CGXASNet(hidden=16, n_conv=2, decoder_depth=2)
    data = _measured(model, 2.0)
    seen: list[set[str]] = []
    real_fit = cal.fit_calibration

    def spy(model, subset, variant, **kwargs):
        seen.append(set(subset.formula.tolist()))
        return real_fit(model, subset, variant, **kwargs)

    monkeypatch.setattr(cal, "fit_calibration", spy)
    settings = cal.CalibrationSettings(epochs=3, epochs_everything=2, epochs_per_layer=1,
                                       inner_folds=2)
    result = cal.loco_calibration(model, data, settings=settings)
    scores = result.scores
    assert set(scores["variant"]) == {"before", *cal.VARIANTS, "nested"}
    nested = scores[scores["variant"] == "nested"]
    assert len(nested) == len(data) and set(nested["chosen"]) <= set(cal.VARIANTS)
    # every fit of the outer fold of a compound excludes it: 5 compounds, 4 + 2·4 fits each
    assert len(seen) == 5 * (4 + 2 * 4)
    assert all(len(s) <= 4 for s in seen)
    assert ("nested", "r1") in result.predictions
    summary = cal.calibration_summary(scores, min_records=2)
    pooled = summary[summary["element"] == "all"]
    assert list(pooled["variant"]) == ["before", *cal.VARIANTS, "nested"]
    assert set(summary["element"]) == {"all", "Mn", "Fe"}  # Ni, Co: one record each


def test_universal_study_loads_a_matching_checkpoint_and_retrains_otherwise(tmp_path: Path
                                                                            ) -> None:
    from specfusion_lib.xas_structure.study import profile_table

    snapshot = load_snapshot(FIXTURE)
    table = profile_table(snapshot, None)
    path = tmp_path / "u.pt"
    first = cs.universal_study(snapshot, table, settings=TINY, save_to=path)
    assert path.is_file() and first.metadata["targets"] == "average"
    assert json.loads(path.with_suffix(".json").read_text())["snapshot_id"] == \
        snapshot.snapshot_id
    again = cs.universal_study(snapshot, table, settings=TINY, checkpoints=[path])
    assert again.history.equals(first.history)  # loaded: the stored history, no new training
    for a, b in zip(first.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)
    other = CGXASSettings(hidden=8, n_conv=1, decoder_depth=1, max_epochs=2, patience=2)
    retrained = cs.universal_study(snapshot, table, settings=other, checkpoints=[path])
    assert retrained.model.model_args["hidden"] == 8


def test_site_targets_fall_back_to_site_averages() -> None:
    snapshot = load_snapshot(FIXTURE)
    targets = site_targets(snapshot)
    assert targets.kind == "average" and len(targets) > 0
    mid, element = targets.material_id[0], targets.element[0]
    structure = snapshot.structure(mid)
    assert all(structure[i].specie.symbol == element for i in targets.sites[0])
    graphs = build_graphs(snapshot, targets.material_id)
    pred = predict_targets(CGXASNet(hidden=8, n_conv=1, decoder_depth=1), graphs, targets)
    assert pred.shape == (len(targets), N_GRID_POINTS)


def _measured_folder(folder: Path, formulas: tuple[str, ...]) -> None:
    from specfusion_lib.data.measured import read_measured_xanes
    from specfusion_lib.measured.study import match_measured

    demo = load_snapshot(ROOT / "data" / "demo", verify=False)
    records = [r for r in read_measured_xanes() if r.formula in formulas]
    matches = match_measured(records, demo)
    folder.mkdir(parents=True, exist_ok=True)
    for rec in records:
        stem = folder / rec.reduced_formula
        rows = "".join(f"{e},{m}\n" for e, m in zip(rec.spectrum.energy, rec.spectrum.mu,
                                                    strict=True))
        stem.with_suffix(".csv").write_text("energy,mu\n" + rows)
        demo.structure(matches[rec.key].material_id).to(filename=str(stem.with_suffix(".cif")))


def test_calibrate_command_writes_a_model_that_predict_xanes_uses(tmp_path: Path) -> None:
    from specfusion_lib.cli.main import main

    _measured_folder(tmp_path / "measured", ("NiO", "LiCoO2"))
    out = tmp_path / "cal.pt"
    assert main(["calibrate", "--measured", str(tmp_path / "measured"), "--variant",
                 "c_shift_broaden", "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["calibration"]["variant"] == "c_shift_broaden"
    assert len(meta["calibration"]["measured_sha256"]) == 2
    assert out.with_name("cal-calibration.pt").is_file()
    csv_out = tmp_path / "ni.csv"
    assert main(["predict-xanes", str(tmp_path / "measured" / "NiO.cif"), "--element", "Ni",
                 "--calibrated", str(out), "--out", str(csv_out)]) == 0
    assert len(csv_out.read_text().splitlines()) == N_GRID_POINTS + 1


def test_calibrate_names_a_spectrum_without_its_structure(tmp_path: Path) -> None:
    from specfusion_lib.core.errors import InputFileError
    from specfusion_lib.xas_structure.user_calibration import read_measured_pairs

    _measured_folder(tmp_path / "m", ("NiO",))
    (tmp_path / "m" / "NiO.cif").unlink()
    with pytest.raises(InputFileError, match=r"NiO\.csv: no structure NiO\.cif"):
        read_measured_pairs(tmp_path / "m")


def test_calibrated_snapshot_replaces_tm_spectra_with_the_models(tmp_path: Path) -> None:
    from specfusion_lib.xas_structure.calibrated_data import calibrated_snapshot

    snapshot = load_snapshot(FIXTURE)
    torch.manual_seed(0)
    fitted = cal.Calibrated(CGXASNet(hidden=8, n_conv=1, decoder_depth=1), None, "test")
    derived = load_snapshot(calibrated_snapshot(snapshot, fitted, tmp_path / "derived"))
    assert derived.manifest["derived_from"] == snapshot.snapshot_id
    assert len(derived.materials) == len(snapshot.materials)
    assert set(derived.spectra["source"]) == {"cgxas:calibrated"}
    row = derived.spectra.iloc[0]
    np.testing.assert_allclose(row["energy"], grid_window(row["element"]).energies)
    assert derived.materials["crystal_system"].tolist() == \
        snapshot.materials["crystal_system"].tolist()
