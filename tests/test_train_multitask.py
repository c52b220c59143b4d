"""Multi-task training: masked labels, protocol, determinism, checkpoints, task errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from specfusion_lib.core.elements import TRANSITION_METALS, descriptor_columns, descriptor_matrix
from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import Profile
from specfusion_lib.data.snapshot import Snapshot
from specfusion_lib.models import MultiTaskSpecFusionNet, SpecFusionNet
from specfusion_lib.properties.features import (
    IGNORE_INDEX,
    FeatureSet,
    TaskData,
    TaskNotAvailableError,
    build_features,
    get_task_spec,
)
from specfusion_lib.properties.multitask import (
    MultiTaskData,
    checkpoint_file,
    multitask_data,
    predict_multitask,
    train_multitask,
)
from specfusion_lib.properties.train import predict
from specfusion_lib.training.checkpoints import load, metadata_path

torch.set_num_threads(1)

SMALL = {"d_model": 16, "conv_channels": (4, 8), "pooled_length": 4, "element_hidden": 16,
         "fusion_hidden": 16, "n_heads": 2, "n_attention_layers": 1, "ffn_dim": 16,
         "head_hidden": 16, "dropout": 0.1}
TINY = Profile("test", seeds=(0,), max_epochs=3, patience=3, max_materials=None,
               batch_size=8)
TMS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu")
ANIONS = ("O", "S", "F")
N = 40
L = 64


def _synthetic(n: int = N, seed: int = 0) -> tuple[FeatureSet, dict[str, TaskData]]:
    """``n`` compounds TM + anion (+ Sr), each TM spectrum a peak placed by a hidden valence.

    Tasks: ``density`` (regression, from valence and TM), ``has_band_gap`` (valence > 0) and
    ``oxidation_state`` (element level: the TM's valence class).
    """
    rng = np.random.default_rng(seed)
    grid = np.linspace(-1.0, 1.0, L)
    e = 3
    names = descriptor_columns("onehot")
    desc = np.zeros((n, e, len(names)), np.float32)
    element_mask = np.zeros((n, e), bool)
    tm_mask = np.zeros((n, e), bool)
    spectra = np.zeros((n, e, L), np.float32)
    elements, valence = [], rng.integers(0, 3, n)
    ox = np.full((n, e), IGNORE_INDEX, np.int64)
    for i in range(n):
        symbols = (TMS[i % len(TMS)], ANIONS[i % 3]) + (("Sr",) if i % 4 == 0 else ())
        elements.append(symbols)
        desc[i, :len(symbols)] = descriptor_matrix(symbols, type_encoding="onehot",
                                                   fill="median")
        element_mask[i, :len(symbols)] = True
        tm_mask[i, 0] = symbols[0] in TRANSITION_METALS
        mu = np.exp(-0.5 * ((grid - 0.5 * valence[i] + 0.5) / 0.15) ** 2)
        mu += 0.02 * rng.normal(size=L)
        spectra[i, 0] = (mu - mu.mean()) / mu.std()
        ox[i, 0] = valence[i]
    features = FeatureSet(tuple(f"m{i:02d}" for i in range(n)), tuple(elements), desc,
                          element_mask, tm_mask, spectra, tm_mask.copy(), names,
                          window=(-1.0, 1.0))
    density = (3.0 + valence + 0.1 * (np.arange(n) % len(TMS))).astype(np.float32)
    tasks = {
        "density": TaskData(get_task_spec("density"), features, density),
        "has_band_gap": TaskData(get_task_spec("has_band_gap"), features,
                                 (valence > 0).astype(np.int64), ("no gap", "gap")),
        "oxidation_state": TaskData(get_task_spec("oxidation_state"), features, ox,
                                    ("2", "3", "4")),
    }
    return features, tasks


def _partial() -> MultiTaskData:
    """Density labelled on rows 0–27, band-gap presence on rows 12–39, ox. state on 0–33."""
    _, tasks = _synthetic()
    return MultiTaskData.from_task_data({
        "density": tasks["density"].subset(np.arange(0, 28)),
        "has_band_gap": tasks["has_band_gap"].subset(np.arange(12, N)),
        "oxidation_state": tasks["oxidation_state"].subset(np.arange(0, 34)),
    })


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def test_union_masks_and_validation() -> None:
    data = _partial()
    assert len(data) == N and data.tasks == ("density", "has_band_gap", "oxidation_state")
    assert data.features.material_ids[0] == "m00"
    dens, gap = data.masks["density"], data.masks["has_band_gap"]
    assert dens.sum() == 28 and gap.sum() == 28 and (dens | gap).all()
    # absent labels are masked, never filled in
    assert np.isnan(data.targets["density"][~dens]).all()
    assert (data.targets["has_band_gap"][~gap] == IGNORE_INDEX).all()
    assert data.targets["oxidation_state"].shape == (N, 3)
    assert data.n_outputs("density") == 1 and data.n_outputs("oxidation_state") == 3
    back = data.task_data("density")
    assert back.features.material_ids == tuple(f"m{i:02d}" for i in range(28))
    counts = data.label_counts()
    assert counts["density"] == {"n": 28}
    assert counts["has_band_gap"] == data.task_data("has_band_gap").label_counts()
    assert sum(counts["has_band_gap"].values()) == 28
    assert sum(counts["oxidation_state"].values()) == 34  # one TM per labelled row
    with pytest.raises(ConfigurationError, match="not in this multi-task data"):
        data.task_data("band_gap")
    # a material carrying no label at all is refused
    _, tasks = _synthetic()
    with pytest.raises(ConfigurationError, match="at least one label"):
        MultiTaskData(tasks["density"].features, {"density": tasks["density"].spec},
                      {"density": tasks["density"].y},
                      {"density": np.arange(N) < 30})
    with pytest.raises(ConfigurationError, match="class indices"):
        MultiTaskData.from_task_data({"has_band_gap": replace(
            tasks["has_band_gap"], y=tasks["has_band_gap"].y + 5)})
    with pytest.raises(ConfigurationError, match="is for task"):
        MultiTaskData.from_task_data({"band_gap": tasks["density"]})


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def test_masked_labels_do_not_contribute() -> None:
    data = _partial()
    ref = train_multitask(data, TINY, seed=0, model_kwargs=SMALL)
    dens, gap = data.masks["density"], data.masks["has_band_gap"]
    ox_y = data.targets["oxidation_state"].copy()
    ox_y[~data.masks["oxidation_state"], 0] = 0  # a valid class on masked-out rows
    changed = replace(data, targets={
        "density": np.where(dens, data.targets["density"], 1e6).astype(np.float32),
        "has_band_gap": np.where(gap, data.targets["has_band_gap"], 1),
        "oxidation_state": ox_y,
    })
    other = train_multitask(changed, TINY, seed=0, model_kwargs=SMALL)
    assert other.history == ref.history
    assert _same_state(_state(other.model), _state(ref.model))
    assert other.metrics == ref.metrics and other.baseline == ref.baseline
    assert (other.metadata["normalization"]["targets"]
            == ref.metadata["normalization"]["targets"])
    # the check can fail: changing a *labelled* target does change training
    labelled = replace(data, targets={**data.targets, "density": np.where(
        dens, data.targets["density"] + 5.0, np.nan).astype(np.float32)})
    moved = train_multitask(labelled, TINY, seed=0, model_kwargs=SMALL)
    assert moved.history != ref.history
    # a task with weight 0 does not steer the shared encoder
    zero = {"task_weights": {"density": 0.0}, "model_kwargs": SMALL}
    a = train_multitask(data, TINY, seed=0, **zero)
    b = train_multitask(labelled, TINY, seed=0, **zero)
    assert _same_state(_state(a.model.encoder), _state(b.model.encoder))
    with pytest.raises(ConfigurationError, match="not trained"):
        train_multitask(data, TINY, task_weights={"band_gap": 1.0}, model_kwargs=SMALL)
    with pytest.raises(ConfigurationError, match="non-negative"):
        train_multitask(data, TINY, task_weights={"density": -1.0}, model_kwargs=SMALL)


def test_loss_falls_metrics_and_metadata() -> None:
    data = _partial()
    prof = Profile("t", seeds=(0,), max_epochs=15, patience=50, max_materials=None,
                   batch_size=8)
    res = train_multitask(data, prof, seed=0, model_kwargs={**SMALL, "dropout": 0.0})
    losses = [h["train_loss"] for h in res.history]
    assert res.epochs_run == len(losses) == 15 and 1 <= res.best_epoch <= 15
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses
    first = res.history[0]
    assert first["train_loss"] == pytest.approx(
        sum(first[f"train_loss:{t}"] for t in data.tasks))
    assert set(res.metrics["density"]) == {"mae", "rmse", "r2", "n_test"}
    assert set(res.metrics["has_band_gap"]) == {"accuracy", "f1_macro", "n_test"}
    assert set(res.baseline["oxidation_state"]) == {"accuracy", "f1_macro", "n_test"}
    test_rows = data.features.index_of(res.split["test"])
    for task in data.tasks:  # metrics only over the test rows carrying the label
        assert res.metrics[task]["n_test"] == data.masks[task][test_rows].sum()
        assert len(res.predictions[task]) == res.metrics[task]["n_test"]
    assert "element" in res.predictions["oxidation_state"]
    assert sorted(res.split["train"] + res.split["val"] + res.split["test"]) == sorted(
        data.features.material_ids)
    meta = res.metadata
    assert meta["seed"] == 0 and meta["model_class"] == "MultiTaskSpecFusionNet"
    train_rows = data.features.index_of(res.split["train"])
    y = data.targets["density"][train_rows][data.masks["density"][train_rows]]
    assert meta["normalization"]["targets"]["density"]["mean"] == pytest.approx(
        float(y.mean()), rel=1e-6)
    assert meta["normalization"]["targets"]["has_band_gap"] is None
    assert len(meta["normalization"]["descriptor_mean"]) == data.features.n_descriptors
    assert meta["tasks"]["oxidation_state"]["level"] == "element"
    assert meta["training_elements"] and meta["profile"]["max_epochs"] == 15
    assert res.samples_per_second > 0 and len(res.table()) == 3


def test_deterministic_given_seed() -> None:
    data = _partial()
    a = train_multitask(data, TINY, seed=3, model_kwargs=SMALL)
    b = train_multitask(data, TINY, seed=3, model_kwargs=SMALL)
    assert a.split == b.split and a.history == b.history
    assert _same_state(_state(a.model), _state(b.model))
    c = train_multitask(data, TINY, seed=4, model_kwargs=SMALL)
    assert c.split != a.split


def test_checkpoint_round_trip_identical_outputs(tmp_path: Path) -> None:
    data = _partial()
    res = train_multitask(data, TINY, seed=0, model_kwargs=SMALL)
    path = res.save(checkpoint_file(tmp_path, 0, "syn"))
    assert path == tmp_path / "multitask-syn-s0.pt" and metadata_path(path).is_file()
    model, meta = load(path)
    assert isinstance(model, MultiTaskSpecFusionNet)
    assert meta["hparams"]["task_outputs"] == {"density": 1, "has_band_gap": 2,
                                               "oxidation_state": 3}
    assert meta["split"] == res.split and meta["tasks"].keys() == res.metadata["tasks"].keys()
    new = predict_multitask(model, data.features, meta)
    old = predict_multitask(res.model, data.features, res.metadata)
    assert new.keys() == old.keys()
    for task in new:
        np.testing.assert_array_equal(new[task], old[task])
    assert new["oxidation_state"].shape == (N, 3, 3)
    np.testing.assert_allclose(new["has_band_gap"].sum(axis=1), 1.0, rtol=1e-5)
    # the test frame holds the same regression predictions in physical units
    frame = res.predictions["density"]
    rows = data.features.index_of(frame["material_id"])
    np.testing.assert_allclose(new["density"][rows], frame["y_pred"], rtol=1e-5)
    with pytest.raises(ConfigurationError, match="predict_multitask"):
        predict(model, data.features, meta)
    with pytest.raises(ConfigurationError, match="MultiTaskSpecFusionNet"):
        predict_multitask(SpecFusionNet(n_outputs=1, n_points=L, **SMALL), data.features)


# --------------------------------------------------------------------------------------------
# snapshot path
# --------------------------------------------------------------------------------------------


def test_fixture_snapshot_tasks_and_partial_labels(fixture_snapshot) -> None:
    feats = build_features(fixture_snapshot)
    with pytest.raises(TaskNotAvailableError, match="not available in this snapshot"):
        multitask_data(fixture_snapshot, ["density", "band_gap"], feats)
    with pytest.raises(ConfigurationError, match="unknown task"):
        multitask_data(fixture_snapshot, ["density", "colour"], feats)
    with pytest.raises(ConfigurationError, match="more than once"):
        multitask_data(fixture_snapshot, ["density", "density"], feats)
    with pytest.raises(TaskNotAvailableError, match="none of the tasks"):
        multitask_data(fixture_snapshot, ["band_gap", "efermi"], feats,
                       skip_unavailable=True)
    # density absent for three materials, crystal system for two others: masked, not dropped
    materials = fixture_snapshot.materials.copy()
    materials.loc[:2, "density"] = np.nan
    materials.loc[7:8, "crystal_system"] = None
    partial = Snapshot(fixture_snapshot.path, fixture_snapshot.manifest, materials,
                       fixture_snapshot.spectra)
    data = multitask_data(partial, ["density", "crystal_system", "oxidation_state",
                                    "band_gap"], feats, skip_unavailable=True)
    assert data.tasks == ("density", "crystal_system", "oxidation_state")
    assert "band_gap" in data.not_available and len(data) == len(feats)
    assert data.features.material_ids == feats.material_ids
    assert data.masks["density"].tolist() == [False] * 3 + [True] * 7
    assert data.masks["crystal_system"].sum() == 8
    assert data.snapshot["id"] == fixture_snapshot.snapshot_id
    capped = multitask_data(fixture_snapshot, ["density"], feats, max_materials=6)
    assert len(capped) == 6
    res = train_multitask(data, Profile("t", (0,), 2, 2, None, batch_size=4), seed=0,
                          model_kwargs=SMALL)
    assert res.metadata["snapshot"]["id"] == fixture_snapshot.snapshot_id
    assert res.metadata["not_available"].keys() == {"band_gap"}
    assert all(np.isfinite(h["val_loss"]) for h in res.history)
