"""PXRD crystal-system model: network, pattern rendering, training, prediction, CLI, S21."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from specfusion_lib.cli.crystal_system import add_predict_crystal_system_parser
from specfusion_lib.core.errors import (
    ConfigurationError,
    InputFileError,
    SpecfusionError,
    SpectrumFileError,
)
from specfusion_lib.core.profiles import Profile
from specfusion_lib.crystal_system import reports as cse
from specfusion_lib.crystal_system import training as cs
from specfusion_lib.crystal_system.patterns import (
    MEASUREMENT_CONDITIONS,
    TRAINING_CONDITIONS,
    PatternConditions,
    simulate_sticks,
)
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.models.pxrd_net import (
    FusedCrystalSystemNet,
    PXRDCrystalSystemNet,
    architecture_table,
)
from specfusion_lib.models.specfusionnet import count_parameters
from specfusion_lib.spectra import pxrd
from specfusion_lib.training.splits import capped_rows

TINY = Profile("tiny", seeds=(0,), max_epochs=2, patience=2, max_materials=None)


@cache
def _rutile() -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                     [[0, 0, 0], [0.3048, 0.3048, 0]])


# ------------------------------------------------------------------------------------ model


def test_network_shapes_and_architecture_table() -> None:
    model = PXRDCrystalSystemNet()
    assert model.encoder.n_tokens == 54
    out = model(torch.rand(3, 3501))
    assert out.shape == (3, 7)
    table = pd.DataFrame(architecture_table(model))
    assert table["parameters"].sum() == count_parameters(model)
    assert tuple(table.iloc[-1]["output_shape"]) == (7,)
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(2, 100))


def test_reset_parameters_and_hparams_roundtrip() -> None:
    torch.manual_seed(0)
    model = PXRDCrystalSystemNet(n_points=1001, conv_channels=(4, 8), kernel_sizes=(5, 3),
                                 d_model=16, n_heads=2, n_layers=1, ffn_dim=32)
    clone = PXRDCrystalSystemNet(**model.hparams)
    clone.load_state_dict(model.state_dict())
    x = torch.rand(2, 1001)
    model.eval()
    clone.eval()
    assert torch.allclose(model(x), clone(x))
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError):
        PXRDCrystalSystemNet(n_layers=0)
    with pytest.raises(ValueError):
        PXRDCrystalSystemNet(kernel_sizes=(4, 3, 3, 3))


def test_fused_network_shapes() -> None:
    model = FusedCrystalSystemNet(pxrd={"n_points": 1001, "conv_channels": [4, 8],
                                        "kernel_sizes": [5, 3], "d_model": 16, "n_heads": 2},
                                  xanes={"n_descriptors": 11, "n_points": 200, "d_model": 32})
    b, e = 2, 3
    out = model(torch.rand(b, 1001), torch.rand(b, e, 11), torch.ones(b, e, dtype=torch.bool),
                torch.tensor([[True, False, False]] * b), torch.rand(b, e, 200),
                torch.tensor([[True, False, False]] * b))
    assert out.shape == (b, 7)
    assert FusedCrystalSystemNet(**model.hparams).hparams == model.hparams


# ------------------------------------------------------------------------------- rendering


def test_clean_render_matches_simulate_pattern(fixture_snapshot) -> None:
    sticks = simulate_sticks(fixture_snapshot)
    clean = sticks.render()
    for i, mid in enumerate(sticks.material_ids):
        row = fixture_snapshot.materials.set_index("material_id").loc[mid]
        ref = pxrd.simulate_pattern(Structure.from_dict(json.loads(row["structure"])))
        assert np.abs(clean[i] - ref.intensity).max() < 0.01, mid
    assert set(sticks.crystal_systems) <= set(CRYSTAL_SYSTEMS)


def test_render_is_seeded_and_noise_level_only_changes_noise(fixture_snapshot) -> None:
    sticks = simulate_sticks(fixture_snapshot)
    a = sticks.render(None, np.random.default_rng(1), TRAINING_CONDITIONS)
    b = sticks.render(None, np.random.default_rng(1), TRAINING_CONDITIONS)
    c = sticks.render(None, np.random.default_rng(2), TRAINING_CONDITIONS)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    quiet = sticks.render(None, np.random.default_rng(3), MEASUREMENT_CONDITIONS.with_noise(0))
    noisy = sticks.render(None, np.random.default_rng(3), MEASUREMENT_CONDITIONS.with_noise(0.05))
    residual = (noisy - quiet)[:, 100:-100]
    assert 0.03 < residual.std() < 0.06  # the noise (and a rescaling by the noisy maximum)
    with pytest.raises(ConfigurationError, match="rng"):
        sticks.render(None, None, TRAINING_CONDITIONS)
    with pytest.raises(ConfigurationError):
        PatternConditions(fwhm_gauss=(0.0, 0.1))


def test_zero_shift_moves_peaks(fixture_snapshot) -> None:
    sticks = simulate_sticks(fixture_snapshot, material_ids=["fx-MnO"])
    tt, inten = sticks.peaks(0)
    strongest = tt[np.argmax(inten)]
    grid = sticks.grid
    shifted = sticks.render(None, np.random.default_rng(0),
                            PatternConditions(zero_shift_deg=0.3))[0]
    clean = sticks.render()[0]
    win = np.abs(grid - strongest) < 1.0
    delta = grid[win][np.argmax(shifted[win])] - grid[win][np.argmax(clean[win])]
    assert 0 < abs(delta) <= 0.32


def test_stick_cache_roundtrip(fixture_snapshot, tmp_path: Path) -> None:
    first = simulate_sticks(fixture_snapshot, cache_dir=tmp_path)
    files = list(tmp_path.glob("pxrd-sticks-*.npz"))
    assert len(files) == 1
    again = simulate_sticks(fixture_snapshot, cache_dir=tmp_path)
    assert again.material_ids == first.material_ids
    np.testing.assert_array_equal(again.two_theta, first.two_theta)
    files[0].write_bytes(b"garbage")  # a broken cache is rebuilt, not trusted
    rebuilt = simulate_sticks(fixture_snapshot, cache_dir=tmp_path)
    np.testing.assert_array_equal(rebuilt.intensity, first.intensity)
    sub = first.subset(first.index_of(["fx-ZnO", "fx-MnO"]))
    assert sub.formulas == ("ZnO", "MnO")
    with pytest.raises(ConfigurationError):
        first.index_of(["nope"])


@pytest.mark.slow
def test_parallel_stick_simulation_equals_serial(fixture_snapshot, monkeypatch) -> None:
    from specfusion_lib.crystal_system import patterns

    serial = simulate_sticks(fixture_snapshot, workers=1)
    monkeypatch.setattr(patterns, "_STICK_CHUNK", 2)  # several chunks -> process pool
    pooled = simulate_sticks(fixture_snapshot, workers=2)
    assert pooled.material_ids == serial.material_ids
    assert pooled.skipped == serial.skipped
    np.testing.assert_array_equal(pooled.offsets, serial.offsets)
    np.testing.assert_allclose(pooled.intensity, serial.intensity)


def test_sticks_of_some_materials_without_cache(fixture_snapshot) -> None:
    some = simulate_sticks(fixture_snapshot, material_ids=["fx-ZnO", "fx-MnO"])
    assert some.material_ids == ("fx-ZnO", "fx-MnO")
    with pytest.raises(ConfigurationError, match="not in the snapshot"):
        simulate_sticks(fixture_snapshot, material_ids=["fx-ZnO", "nope"])


def test_capped_rows_keep_the_named_ids_and_are_seeded() -> None:
    ids = [f"m{i}" for i in range(50)]
    rows = capped_rows(ids, 10, keep_ids=["m3", "m47", "absent"])
    assert len(rows) == 10 and list(rows) == sorted(rows)
    assert {3, 47} <= set(rows.tolist())
    np.testing.assert_array_equal(rows, capped_rows(ids, 10, keep_ids=["m3", "m47"]))
    assert len(capped_rows(ids, 1, keep_ids=["m1", "m2"])) == 2  # kept ids beyond the cap
    assert len(capped_rows(ids, 80)) == 50


def test_pxrd_cap_is_its_own_profile_setting(fixture_snapshot) -> None:
    full = cs.crystal_system_data(fixture_snapshot, None)
    assert len(full) > 3
    only_xanes_cap = dataclasses.replace(TINY, max_materials=2)
    assert len(cs.crystal_system_data(fixture_snapshot, only_xanes_cap)) == len(full)
    capped = dataclasses.replace(TINY, max_pxrd_materials=3)
    keep = full.material_ids[-1]
    data = cs.crystal_system_data(fixture_snapshot, capped, keep_ids=[keep])
    assert len(data) == 3 and keep in data.material_ids


# -------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(fixture_snapshot, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("pxrd_ckpt")
    torch.set_num_threads(1)
    run = cs.train_crystal_system_model(fixture_snapshot, TINY, seed=0, checkpoint_dir=ckpt)
    return run, ckpt


def test_training_run_and_checkpoint(trained, fixture_snapshot) -> None:
    run, ckpt = trained
    assert run.checkpoint == ckpt / "pxrd-crystal-system-seed0.pt"
    assert run.checkpoint.is_file() and run.checkpoint.with_suffix(".json").is_file()
    meta = json.loads(run.checkpoint.with_suffix(".json").read_text())
    assert meta["snapshot"]["id"] == fixture_snapshot.snapshot_id
    assert meta["task"]["class_names"] == list(CRYSTAL_SYSTEMS)
    n = len(run.data)
    assert sum(len(v) for v in run.split.values()) == n == 10
    assert not set(run.split["train"]) & set(run.split["test"])
    assert run.epochs_run <= 2
    assert len(run.predictions) == len(run.split["test"]) == run.metrics["n_test"]
    probs = run.predictions[[f"p_{c}" for c in CRYSTAL_SYSTEMS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # classes absent from the fixture (triclinic, orthorhombic) do not break the tables
    per_class = run.per_class_accuracy()
    assert list(per_class["crystal_system"]) == list(CRYSTAL_SYSTEMS)
    assert per_class.set_index("crystal_system").loc["triclinic", "n_train"] == 0
    assert np.isnan(per_class.set_index("crystal_system").loc["triclinic", "accuracy"])
    assert run.confusion_matrix().to_numpy().sum() == run.metrics["n_test"]


def test_training_resumes_from_checkpoint(trained, fixture_snapshot) -> None:
    run, ckpt = trained
    again = cs.train_crystal_system_model(fixture_snapshot, TINY, seed=0, checkpoint_dir=ckpt)
    assert again.resumed
    pd.testing.assert_frame_equal(again.predictions, run.predictions, atol=1e-6)
    other = cs.train_crystal_system_model(fixture_snapshot, TINY, seed=0, checkpoint_dir=ckpt,
                                          max_epochs=1, tag="other")
    assert not other.resumed and other.checkpoint.name == "pxrd-crystal-system-other-seed0.pt"


def test_too_few_materials(fixture_snapshot) -> None:
    data = cs.crystal_system_data(fixture_snapshot, material_ids=["fx-MnO", "fx-ZnO"])
    with pytest.raises(ConfigurationError, match="too few"):
        cs.train_crystal_system_model(fixture_snapshot, TINY, data=data)


# ------------------------------------------------------------------------------ prediction


def test_predictor_probabilities(trained) -> None:
    run, ckpt = trained
    loaded = cs.CrystalSystemPredictor.load(ckpt)  # the tagged checkpoint is ignored
    assert len(loaded.models) == 1
    pattern = pxrd.simulate_pattern(_rutile())
    table = loaded.predict_proba([pattern, pattern])
    assert list(table.columns) == list(CRYSTAL_SYSTEMS) and len(table) == 2
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-5)
    from_run = cs.CrystalSystemPredictor.from_run(run).predict_proba(pattern)
    np.testing.assert_allclose(from_run.to_numpy(), table.iloc[:1].to_numpy(), atol=1e-6)
    # the same crystal measured with Mo Kα on another grid: converted at constant d
    moka = pxrd.simulate_pattern(_rutile(), pxrd.two_theta_grid((5.0, 40.0), 0.01),
                                 wavelength="MoKa")
    np.testing.assert_allclose(loaded.predict_proba(moka).to_numpy(),
                               table.iloc[:1].to_numpy(), atol=0.05)
    assert loaded.predict(pattern)[0] in CRYSTAL_SYSTEMS


def test_predictor_errors(trained, tmp_path: Path) -> None:
    _, ckpt = trained
    predictor = cs.CrystalSystemPredictor.load(ckpt / "pxrd-crystal-system-seed0.pt")
    pattern = pxrd.simulate_pattern(_rutile())
    unknown = pxrd.PXRDPattern(pattern.two_theta[::2] + 0.001, pattern.intensity[::2],
                               wavelength=None, source="x.xy")
    with pytest.raises(ConfigurationError, match="wavelength"):
        predictor.predict_proba(unknown)
    narrow = pxrd.PXRDPattern(np.linspace(10, 25, 500), np.ones(500), source="narrow.xy")
    with pytest.raises(SpectrumFileError, match="narrow.xy"):
        predictor.predict_proba(narrow)
    with pytest.raises(InputFileError, match="no PXRD crystal-system checkpoint"):
        cs.CrystalSystemPredictor.load(tmp_path)
    with pytest.raises(InputFileError, match="no such"):
        cs.CrystalSystemPredictor.load(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="specfusion")
    commands = parser.add_subparsers(dest="command", required=True)
    add_predict_crystal_system_parser(commands)
    return parser.parse_args(argv)


def test_cli_predicts_a_pattern_file(trained, tmp_path: Path, capsys) -> None:
    _, ckpt = trained
    path = pxrd.simulate_pattern(_rutile(), pxrd.two_theta_grid((5.0, 40.0), 0.01),
                                 wavelength="MoKa").to_xy(tmp_path / "rutile.xy")
    args = _cli(["predict-crystal-system", str(path), "--checkpoint-dir", str(ckpt),
                 "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["probabilities"]) == set(CRYSTAL_SYSTEMS)
    assert out["prediction"] == max(out["probabilities"], key=out["probabilities"].get)
    assert abs(sum(out["probabilities"].values()) - 1) < 1e-5
    args = _cli(["predict-crystal-system", str(path), "--checkpoint-dir", str(ckpt),
                 "--wavelength", "0.71073"])
    assert args.func(args) == 0
    assert "most probable crystal system" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["few_points", "narrow_range", "binary", "bad_wavelength"])
def test_cli_errors(trained, tmp_path: Path, case: str) -> None:
    _, ckpt = trained
    path = tmp_path / "p.xy"
    extra: list[str] = []
    if case == "few_points":
        x = np.linspace(10, 80, 50)
        path.write_text("\n".join(f"{a} {b}" for a, b in zip(x, np.ones(50), strict=True)))
        match = "at least 100"
    elif case == "narrow_range":
        x = np.linspace(60, 80, 500)
        path.write_text("\n".join(f"{a} {b}" for a, b in zip(x, np.ones(500), strict=True)))
        extra = ["--wavelength", "CuKa"]
        match = "at least 50%"
    elif case == "binary":
        path.write_bytes(bytes(range(256)) * 4)
        match = "not a text file"
    else:
        x = np.linspace(10, 80, 500)
        path.write_text("\n".join(f"{a} {b}" for a, b in zip(x, np.ones(500), strict=True)))
        extra = ["--wavelength", "XyzKa"]
        match = "unknown wavelength"
    args = _cli(["predict-crystal-system", str(path), "--checkpoint-dir", str(ckpt), *extra])
    with pytest.raises(SpecfusionError, match=match):
        args.func(args)


# ------------------------------------------------------------------------------ evaluation


def test_baseline_noise_curve_and_tables(trained) -> None:
    run, _ = trained
    base = cse.random_forest_baseline(run, n_estimators=10, n_copies=1)
    assert base.metrics["n_test"] == run.metrics["n_test"]
    assert base.pipeline.named_steps["bin"].transform(run.test_patterns).shape[1] == 351
    curve = cse.noise_curve([run], {run.seed: base}, levels=(0.0, 0.02))
    assert list(curve["noise_level"]) == [0.0, 0.02]
    # σ = 0.02 is the test condition: the curve reproduces the run's accuracy
    assert curve.loc[1, "accuracy"] == pytest.approx(run.metrics["accuracy"])
    assert curve.loc[1, "baseline_accuracy"] == pytest.approx(base.metrics["accuracy"])
    table = cse.metrics_table([run], {run.seed: base})
    assert list(table["crystal_system"]) == ["overall", *CRYSTAL_SYSTEMS]
    assert table.loc[0, "paper_value"] == "0.81"
    counts = cse.class_distribution(run.data, run.split_indices)
    assert counts["total"].sum() == len(run.data)
    assert (counts[["train", "val", "test"]].sum(axis=1) == counts["total"]).all()
    example = cse.preprocessing_example(run.data)
    assert example.formula == "TiO2" and example.broadened.max() == pytest.approx(1.0)


def test_modality_comparison_on_fixture(fixture_snapshot, tmp_path: Path) -> None:
    from specfusion_lib.crystal_system.fusion import MODALITIES, compare_modalities

    tiny = Profile("tiny", seeds=(0,), max_epochs=1, patience=1, max_materials=None)
    result = compare_modalities(fixture_snapshot, tiny, checkpoint_dir=tmp_path)
    table = result.table()
    assert list(table["modality"]) == list(MODALITIES)
    assert (table["status"] == "trained").all()
    assert table["n_test"].nunique() == 1  # same test part for all three
    preds = result.predictions()
    tests = {m: sorted(preds.loc[preds["modality"] == m, "material_id"]) for m in MODALITIES}
    assert tests["XANES only"] == tests["PXRD only"] == tests["XANES + PXRD"]
    again = compare_modalities(fixture_snapshot, tiny, checkpoint_dir=tmp_path)
    assert all(r.resumed for r in again.runs)


def test_epoch_copies() -> None:
    assert cs.epoch_copies(225, 1024) == 5
    assert cs.epoch_copies(656, 1024) == 2
    assert cs.epoch_copies(1024, 1024) == 1
    assert cs.epoch_copies(30_000, 1024) == 1
    assert cs.epoch_copies(7, 0) == 1
    assert cs.epoch_copies(0, 1024) == 1


def test_small_training_part_draws_independent_augmented_copies(fixture_snapshot,
                                                                 tmp_path: Path) -> None:
    prof = dataclasses.replace(TINY, max_epochs=1, patience=1, min_patterns_per_epoch=40)
    run = cs.train_crystal_system_model(fixture_snapshot, prof, seed=0, checkpoint_dir=tmp_path)
    train_idx = run.split_indices[0]
    copies = math.ceil(40 / len(train_idx))
    assert copies > 1
    assert run.metadata["training_patterns"] == {"min_patterns_per_epoch": 40,
                                                 "copies_per_epoch": copies}
    seen = run.samples_per_second * run.train_seconds
    assert seen == pytest.approx(copies * len(train_idx), rel=1e-6)
    rows = cs.training_rows(train_idx, prof)
    assert len(rows) == copies * len(train_idx)
    patterns = run.data.sticks.render(rows, np.random.default_rng(0), TRAINING_CONDITIONS)
    first, second = patterns[0], patterns[len(train_idx)]  # same material, two copies
    assert rows[0] == rows[len(train_idx)]
    assert not np.allclose(first, second)
    # a checkpoint trained with other copies per epoch is not reused
    again = cs.train_crystal_system_model(fixture_snapshot, dataclasses.replace(
        prof, min_patterns_per_epoch=0), seed=0, checkpoint_dir=tmp_path)
    assert not again.resumed
    assert again.metadata["training_patterns"]["copies_per_epoch"] == 1


def test_without_training_rows_drops_materials_and_records_the_exclusion() -> None:
    from specfusion_lib.core.errors import ConfigurationError
    from specfusion_lib.crystal_system.generalisation import (
        RealPatternData,
        without_training_rows,
    )
    from specfusion_lib.crystal_system.reflections import ReflectionTables

    def tables(ids: list[str]) -> ReflectionTables:
        n = len(ids)
        return ReflectionTables(tuple(ids), ("cubic",) * n, np.tile([4.0, 4, 4, 90, 90, 90],
                                                                    (n, 1)),
                                np.arange(0, 2 * n + 1, 2, dtype=np.int64),
                                np.ones((2 * n, 3), np.int16), np.ones(2 * n))

    data = RealPatternData(
        tables=tables(["a", "b", "c"]), y=np.array([6, 6, 3]),
        sources=np.array(["demo", "demo", "real"]), training_keys=frozenset(), val=None,
        y_val=np.zeros(0), check=None, y_check=np.zeros(0), check_seen=np.zeros(0),
        demo_test=None, y_demo_test=np.zeros(0), checksums={"snapshot": "s"},
        lowered=tables(["a", "c"]), lowered_targets=("triclinic", "monoclinic"))
    out = without_training_rows(data, ["b", "c", "zzz"])
    assert out.tables.material_ids == ("a",) and out.y.tolist() == [6]
    assert out.sources.tolist() == ["demo"] and out.lowered.material_ids == ("a",)
    assert out.lowered_targets == ("triclinic",)
    assert out.checksums["snapshot"] == "s" and len(out.checksums["excluded_training_rows"]) == 64
    again = without_training_rows(data, ["c", "b"])
    assert again.checksums == out.checksums  # the digest names what was excluded, not how
    with pytest.raises(ConfigurationError, match="every training row"):
        without_training_rows(data, ["a", "b", "c"])
