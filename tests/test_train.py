"""Features, training protocol, metrics and checkpoints on a synthetic snapshot and the fixture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError, InputFileError
from specfusion_lib.core.profiles import Profile
from specfusion_lib.data.snapshot import (
    MaterialRecord,
    SpectrumRecord,
    load_snapshot,
    write_snapshot,
)
from specfusion_lib.properties.features import (
    IGNORE_INDEX,
    TaskNotAvailableError,
    available_tasks,
    build_features,
    descriptor_group_indices,
    features_for_compound,
    task_data,
    weighted_mode,
)
from specfusion_lib.properties.train import (
    TrainResult,
    predict,
    train_model,
    train_task,
    train_task_seeds,
)
from specfusion_lib.spectra.xanes import XANESSpectrum, tabulated_edge_energy
from specfusion_lib.training.checkpoints import (
    load,
    load_matching_checkpoint,
    metadata_path,
    save_checkpoint,
)
from specfusion_lib.training.metrics import (
    baseline_metrics,
    classification_metrics,
    regression_metrics,
)

torch.set_num_threads(1)

SMALL = {"d_model": 32, "conv_channels": (8, 16), "pooled_length": 8, "element_hidden": 16,
         "fusion_hidden": 32, "n_heads": 4, "n_attention_layers": 1, "ffn_dim": 32,
         "head_hidden": 16, "dropout": 0.0}
TINY = Profile("test", seeds=(0, 1), max_epochs=4, patience=2, max_materials=None,
               batch_size=16)

TMS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu")


def _mu(energy: np.ndarray, edge: float, shift: float, white: float) -> np.ndarray:
    x = energy - edge - shift
    mu = 0.5 + np.arctan(x / 1.0) / np.pi
    mu += white * 1.5**2 / ((x - 4.0) ** 2 + 1.5**2)
    return mu + 0.04 * np.sin((x - 12.0) / 9.0) * (x > 12.0) + 0.1


def _synthetic_records(n: int = 36, seed: int = 0):
    """CsCl-type TM-O / TM-S and cubic perovskite Sr-TM-O3 cells with synthetic K-edge spectra.

    Cells are built from explicit coordinates (``Structure.from_spacegroup`` takes ~1 s).

    The oxidation state (2 for the binaries, 4 for perovskites) shifts the edge, the label
    ``is_magnetic`` follows the white-line height; band gap is left absent everywhere.
    """
    rng = np.random.default_rng(seed)
    materials, spectra = [], []
    for i in range(n):
        tm = TMS[i % len(TMS)]
        perovskite = i % 3 == 0
        if perovskite:
            s = Structure(Lattice.cubic(3.9 + 0.05 * rng.random()), ["Sr", tm, "O", "O", "O"],
                          [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
            ox, cn, mult = 4, 6, 1
        else:
            anion = "O" if i % 2 else "S"
            s = Structure(Lattice.cubic(2.6 + 0.3 * rng.random()), [tm, anion],
                          [[0, 0, 0], [0.5, 0.5, 0.5]])
            ox, cn, mult = 2, 6, 4
        magnetic = bool(i % 4 < 2)
        mid = f"syn-{i:03d}"
        materials.append(MaterialRecord(
            mid, s,
            {"density": s.density, "crystal_system": "cubic", "is_magnetic": magnetic,
             "formation_energy_per_atom": -1.0 - 0.5 * ox + 0.1 * rng.normal()},
            [{"element": tm, "site_index": 0, "multiplicity": mult, "oxidation_state": ox,
              "coordination_number": cn}]))
        edge = tabulated_edge_energy(tm)
        energy = np.arange(edge - 60.0, edge + 100.0, 0.5)
        mu = _mu(energy, edge, 2.0 * ox, 1.2 if magnetic else 0.3)
        spectra.append(SpectrumRecord(mid, tm, "K", energy, mu + 0.003 * rng.normal(
            size=energy.size), source="synthetic"))
        if not perovskite and i % 2:
            o_edge = tabulated_edge_energy("O")
            o_energy = np.arange(o_edge - 30.0, o_edge + 80.0, 0.5)
            spectra.append(SpectrumRecord(mid, "O", "K", o_energy, _mu(o_energy, o_edge, 0, 0.5),
                                          source="synthetic"))
    # one unusable spectrum: its energy range misses the Ni K edge -> skipped and reported
    s = Structure(Lattice.cubic(2.7), ["Ni", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    materials.append(MaterialRecord("syn-bad", s, {"density": s.density}))
    edge = tabulated_edge_energy("Ni")
    energy = np.arange(edge - 400.0, edge - 200.0, 0.5)
    spectra.append(SpectrumRecord("syn-bad", "Ni", "K", energy, np.arctan(energy - edge + 300),
                                  source="synthetic"))
    return materials, spectra


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    materials, spectra = _synthetic_records()
    path = write_snapshot(tmp_path_factory.mktemp("syn") / "snap", materials, spectra,
                          source="synthetic-test")
    return load_snapshot(path)


@pytest.fixture(scope="module")
def synthetic_features(synthetic):
    return build_features(synthetic)


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------


def test_features_shapes_masks_and_skips(synthetic, synthetic_features) -> None:
    f = synthetic_features
    n = len(f)
    assert n == 36  # syn-bad is dropped: its only spectrum fails preprocessing
    assert f.dropped_materials == {"syn-bad": "no usable spectrum"}
    assert [s.material_id for s in f.skipped] == ["syn-bad"]
    assert f.descriptors.shape == (n, 3, 11) and f.spectra.shape == (n, 3, 200)
    assert f.element_mask.sum(axis=1).tolist() == [len(e) for e in f.elements]
    i = f.material_ids.index("syn-000")  # perovskite Sr Ti O3
    assert f.elements[i] == ("O", "Sr", "Ti")
    assert f.tm_mask[i].tolist() == [False, False, True]
    assert f.spectrum_mask[i].tolist() == [False, False, True]
    # TM-only variant ignores the O K-edge spectra; the all-element variant uses them
    j = f.material_ids.index("syn-001")
    assert f.spectrum_mask[j].sum() == 1
    full = build_features(synthetic, all_element=True)
    assert full.spectrum_mask[full.material_ids.index("syn-001")].sum() == 2
    # padding is zero
    assert np.all(f.descriptors[~f.element_mask] == 0) and np.all(f.spectra[~f.spectrum_mask] == 0)
    spec = f.spectra[f.spectrum_mask]
    np.testing.assert_allclose(spec.mean(axis=1), 0.0, atol=1e-5)  # per-spectrum z-score
    # one compound from user spectra gives the same row as the snapshot path
    row = synthetic.spectra.query("material_id == 'syn-001'")
    raw = {r.element: XANESSpectrum(r.energy, r.mu, r.element) for r in row.itertuples()}
    one = features_for_compound(f.elements[j], raw, max_elements=3)
    np.testing.assert_allclose(one.spectra[0], f.spectra[j], atol=1e-6)
    np.testing.assert_array_equal(one.descriptors[0], f.descriptors[j])
    np.testing.assert_array_equal(one.spectrum_mask[0], f.spectrum_mask[j])
    sub = f.subset([3, 1])
    assert sub.material_ids == (f.material_ids[3], f.material_ids[1])
    assert descriptor_group_indices(["ionization_energies"]) == (2, 3, 4)
    with pytest.raises(ConfigurationError):
        descriptor_group_indices(["colour"])


def test_task_labels_exclusion_and_element_level(synthetic, synthetic_features) -> None:
    mag = task_data(synthetic, "is_magnetic", synthetic_features)
    assert mag.class_names == ("non-magnetic", "magnetic") and mag.y.dtype == np.int64
    assert len(mag) == 36
    dens = task_data(synthetic, "density", synthetic_features)
    assert dens.y.dtype == np.float32 and len(dens) == 36
    assert dens.excluded == {"no usable spectrum": 1}
    ox = task_data(synthetic, "oxidation_state", synthetic_features)
    assert ox.class_names == ("2", "4")
    assert ox.y.shape == (36, 3)
    # exactly one labelled element (the TM) per material, IGNORE_INDEX elsewhere
    assert np.all((ox.y != IGNORE_INDEX).sum(axis=1) == 1)
    assert np.all(ox.features.tm_mask[ox.y != IGNORE_INDEX])
    avail = available_tasks(synthetic)
    assert avail["oxidation_state"] and avail["density"] and not avail["band_gap"]


def test_weighted_mode_multiplicity_and_ties() -> None:
    # Co3O4: 8 tetrahedral Co2+ and 16 octahedral Co3+ -> 3
    assert weighted_mode([2, 3], [8, 16]) == 3
    assert weighted_mode([4, 6], [8, 16]) == 6
    assert weighted_mode([3, 2], [4, 4]) == 2  # tie -> smaller value


def test_absent_task_raises_not_available(synthetic, synthetic_features) -> None:
    for task in ("band_gap", "has_band_gap", "efermi", "ordering"):
        with pytest.raises(TaskNotAvailableError, match="not available in this snapshot"):
            task_data(synthetic, task, synthetic_features)
    with pytest.raises(ConfigurationError, match="not available in this snapshot"):
        train_task(synthetic, "band_gap", TINY, features=synthetic_features, progress=False)
    with pytest.raises(ConfigurationError, match="unknown task"):
        task_data(synthetic, "colour", synthetic_features)


# --------------------------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------------------------




def test_metrics_and_baselines() -> None:
    m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    assert m["accuracy"] == 0.75 and 0 < m["f1_macro"] < 1
    r = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert r["mae"] == pytest.approx(1 / 3) and r["r2"] == pytest.approx(0.5)
    assert math.isnan(regression_metrics(np.array([1.0]), np.array([2.0]))["r2"])
    b = baseline_metrics("classification", np.array([1, 1, 0]), np.array([1, 0]))
    assert b["accuracy"] == 0.5
    b = baseline_metrics("regression", np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert b["mae"] == pytest.approx(1.0)


def test_loss_falls_classification_and_element_level(synthetic, synthetic_features) -> None:
    prof = Profile("t", seeds=(0,), max_epochs=12, patience=50, max_materials=None,
                   batch_size=16)
    for task in ("is_magnetic", "oxidation_state"):
        data = task_data(synthetic, task, synthetic_features)
        res = train_model(data, prof, seed=0, model_kwargs=SMALL)
        losses = [h["train_loss"] for h in res.history]
        assert len(losses) == 12
        assert np.mean(losses[-3:]) < 0.8 * losses[0], (task, losses)
        assert set(res.metrics) == {"accuracy", "f1_macro", "n_test"}
        assert set(res.baseline) == {"accuracy", "f1_macro", "n_test"}
        assert res.samples_per_second > 0


@pytest.fixture(scope="module")
def regression_run(synthetic, synthetic_features, tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[TrainResult, Path]:
    """One formation-energy run with a checkpoint, shared by the round-trip tests."""
    folder = tmp_path_factory.mktemp("checkpoints")
    res = train_task(synthetic, "formation_energy_per_atom", TINY, seed=0,
                     features=synthetic_features, model_kwargs=SMALL,
                     checkpoint_dir=folder, progress=False)
    return res, folder


def test_train_task_writes_a_checkpoint_named_by_task_and_seed(regression_run) -> None:
    res, folder = regression_run
    assert res.checkpoint == folder / "formation_energy_per_atom-seed0.pt"
    assert json.loads(metadata_path(res.checkpoint).read_text())["seed"] == 0


def test_train_task_result_reports_the_protocol(regression_run) -> None:
    res, _ = regression_run
    assert res.epochs_run <= 4 and 1 <= res.best_epoch <= res.epochs_run
    assert set(res.metrics) == {"mae", "rmse", "r2", "n_test"}
    assert {"train", "val", "test"} == set(res.split)
    assert len(res.predictions) == len(res.split["test"]) == res.metrics["n_test"]


def test_checkpoint_metadata_records_snapshot_task_split_and_normalisation(
        regression_run, synthetic) -> None:
    res, _ = regression_run
    _, meta = load(res.checkpoint)
    assert meta["snapshot"]["id"] == synthetic.snapshot_id
    assert set(meta["snapshot"]["files"]) == {"materials.parquet", "spectra.parquet"}
    assert meta["task"]["name"] == "formation_energy_per_atom" and meta["seed"] == 0
    assert meta["split"] == res.split
    assert meta["normalization"]["target"]["std"] > 0
    assert len(meta["normalization"]["descriptor_mean"]) == 11
    assert meta["hparams"]["d_model"] == 32 and meta["library_version"]


def test_loaded_model_predicts_as_the_trained_one_in_physical_units(
        regression_run, synthetic_features) -> None:
    res, _ = regression_run
    model, meta = load(res.checkpoint)
    np.testing.assert_array_equal(predict(model, synthetic_features, meta),
                                  predict(res.model.cpu(), synthetic_features, res.metadata))
    test_rows = synthetic_features.index_of(res.split["test"])
    values = predict(model, synthetic_features.subset(test_rows), meta)
    np.testing.assert_allclose(values, res.predictions["y_pred"].to_numpy(), rtol=1e-5)


def test_same_run_is_resumed_from_its_checkpoint(regression_run, synthetic,
                                                 synthetic_features) -> None:
    res, folder = regression_run
    again = train_task(synthetic, "formation_energy_per_atom", TINY, seed=0,
                       features=synthetic_features, model_kwargs=SMALL,
                       checkpoint_dir=folder, progress=False)
    assert again.resumed and again.metrics == pytest.approx(res.metrics, nan_ok=True)


def test_other_hyper_parameters_retrain_on_the_same_split(synthetic, synthetic_features,
                                                          tmp_path: Path) -> None:
    first = train_task(synthetic, "formation_energy_per_atom", TINY, seed=0,
                       features=synthetic_features, model_kwargs=SMALL,
                       checkpoint_dir=tmp_path, progress=False)
    other = train_task(synthetic, "formation_energy_per_atom", TINY, seed=0,
                       features=synthetic_features, model_kwargs={**SMALL, "dropout": 0.2},
                       checkpoint_dir=tmp_path, progress=False)
    assert not other.resumed and other.split == first.split  # same seed, same split
    path = other.checkpoint
    assert load_matching_checkpoint(path, synthetic, {"seed": 0}, {"dropout": 0.2}) is not None
    assert load_matching_checkpoint(path, synthetic, {"seed": 0}, {"dropout": 0.1}) is None


def test_resume_rule_refuses_other_seed_snapshot_and_unreadable_files(
        regression_run, synthetic, tmp_path: Path) -> None:
    res, _ = regression_run
    path = res.checkpoint
    assert load_matching_checkpoint(path, synthetic, {"seed": 0}) is not None
    assert load_matching_checkpoint(path, synthetic, {"seed": 1}) is None
    assert load_matching_checkpoint(path, object(), {"seed": 0}) is None  # other snapshot
    assert load_matching_checkpoint(tmp_path / "missing.pt", synthetic, {}) is None
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert load_matching_checkpoint(broken, synthetic, {}) is None


def test_checkpoint_errors(tmp_path: Path) -> None:
    from specfusion_lib.models import SpecFusionNet

    with pytest.raises(InputFileError, match="no such checkpoint"):
        load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputFileError, match="junk.pt"):
        load(junk)
    model = SpecFusionNet(n_outputs=2, **SMALL)
    path = save_checkpoint(tmp_path / "m.pt", model, {"task": {"name": "x"}, "value": np.nan})
    loaded, meta = load(path)
    assert meta["value"] is None and meta["model_class"] == "SpecFusionNet"
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputFileError, match="truncated.pt"):
        load(truncated)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.0.bias"] += 1.0
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(InputFileError, match="SHA-256"):
        load(tmp_path / "tampered.pt")


def test_train_task_seeds_mean_std(synthetic, synthetic_features) -> None:
    summary = train_task_seeds(synthetic, "is_magnetic", TINY, features=synthetic_features,
                               model_kwargs=SMALL, progress=False)
    assert [r.seed for r in summary.results] == [0, 1]
    assert summary.results[0].split["test"] != summary.results[1].split["test"]
    assert set(summary.mean) == {"accuracy", "f1_macro"}
    assert "±" in summary.format("accuracy")
    rerun = train_task(synthetic, "is_magnetic", TINY, seed=1, features=synthetic_features,
                       model_kwargs=SMALL, progress=False)
    assert rerun.split == summary.results[1].split  # split reproducible with the seed
    assert rerun.history == summary.results[1].history  # training deterministic on CPU
    table = summary.table()
    assert list(table["seed"]) == [0, 1] and "baseline_accuracy" in table


def test_fixture_snapshot_density_and_absent_labels(fixture_snapshot) -> None:
    """The real FEFF fixture: structure labels train; model labels are not available."""
    feats = build_features(fixture_snapshot)
    assert len(feats) >= 3 and feats.spectrum_mask.any(axis=1).all()
    res = train_task(fixture_snapshot, "density", TINY, seed=0, features=feats,
                     model_kwargs=SMALL, progress=False)
    assert res.metrics["n_test"] >= 1 and np.isfinite(res.metrics["mae"])
    ox = task_data(fixture_snapshot, "coordination_number", feats)
    assert ox.y.shape[0] >= 1
    with pytest.raises(TaskNotAvailableError):
        train_task(fixture_snapshot, "band_gap", TINY, features=feats, progress=False)
