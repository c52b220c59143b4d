"""The shared training core: epoch loop, early stopping, splits, tables, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import Profile
from specfusion_lib.training.checkpoints import checkpoint_file, load, save_checkpoint
from specfusion_lib.training.loop import EarlyStopping, cpu_threads, fit_classifier, fit_epochs
from specfusion_lib.training.metrics import metrics_from_table, prediction_table
from specfusion_lib.training.splits import resolve_split, split_ids, split_indices


def _set(model: nn.Linear, value: float) -> None:
    with torch.no_grad():
        model.weight.fill_(value)


def test_keeps_best_weights_and_stops_after_patience() -> None:
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(model, patience=2)
    assert stopper.best_epoch == 0 and math.isinf(stopper.best_loss)
    _set(model, 1.0)
    assert not stopper.step(1, 0.9, model)
    _set(model, 2.0)
    assert not stopper.step(2, 0.5, model)  # new best
    _set(model, 3.0)
    assert not stopper.step(3, 0.5, model)  # equal is no improvement: 1 epoch
    _set(model, 4.0)
    assert stopper.step(4, float("nan"), model)  # NaN never improves: 2 epochs -> stop
    assert stopper.best_epoch == 2 and stopper.best_loss == pytest.approx(0.5)
    model.train()
    stopper.restore(model)
    assert not model.training
    assert torch.all(model.weight == 2.0)


def test_best_state_is_a_copy_and_patience_is_checked() -> None:
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(model, patience=1)
    _set(model, 1.0)
    stopper.step(1, 1.0, model)
    _set(model, 7.0)  # later in-place changes must not leak into the stored state
    assert torch.all(stopper.best_state["weight"] == 1.0)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(model, patience=0)


def _loop(seed: int, val_losses: list[float], skip_rows: frozenset[int] = frozenset()):
    model = nn.Linear(1, 1)
    seen: list[list[int]] = []
    means: list[dict[str, float]] = []

    def train_batch(rows: torch.Tensor):
        seen.append(rows.tolist())
        with torch.no_grad():
            model.weight += 1.0  # weights change every step: restore must undo it
        if set(rows.tolist()) <= skip_rows:
            return None
        return {"a": (float(len(rows)), len(rows)), "b": (2.0, 1)}

    def validate(train: dict[str, float]) -> dict[str, float]:
        means.append(train)
        return {"val_loss": val_losses[len(means) - 1], "train_loss": train.get("a", math.nan)}

    with torch.no_grad():
        model.weight.fill_(0.0)
    loop = fit_epochs(model, torch.arange(10).numpy(), max_epochs=len(val_losses),
                      batch_size=4, patience=2, seed=seed, device=torch.device("cpu"),
                      train_batch=train_batch, validate=validate)
    return loop, model, seen, means


def test_fit_epochs_stops_restores_and_averages() -> None:
    loop, model, seen, means = _loop(0, [3.0, 1.0, 2.0, 2.5, 0.1])
    assert [h["epoch"] for h in loop.history] == [1, 2, 3, 4]  # patience 2 after epoch 2
    assert loop.best_epoch == 2 and not model.training
    assert float(model.weight.detach()) == 6.0  # 3 steps per epoch x 2 epochs
    assert loop.samples_seen == 40 and loop.samples_per_second > 0
    assert all(sorted(sum(seen[3 * e:3 * e + 3], [])) == list(range(10)) for e in range(4))
    # batch means weighted by their counts: sizes 4, 4, 2 -> (16 + 16 + 4) / 10
    assert means[0]["a"] == pytest.approx(3.6) and means[0]["b"] == pytest.approx(2.0)
    assert loop.history[0]["train_loss"] == pytest.approx(3.6)


def test_fit_epochs_batch_order_follows_the_seed() -> None:
    first = _loop(0, [1.0, 1.0])[2]
    assert first == _loop(0, [1.0, 1.0])[2]
    assert first != _loop(1, [1.0, 1.0])[2]


def test_fit_epochs_batches_without_targets_are_left_out() -> None:
    _, _, seen, means = _loop(0, [1.0], skip_rows=frozenset(range(10)))
    assert len(seen) == 3 and means == [{}]


def test_cpu_threads_is_restored() -> None:
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before


# --------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------


def test_random_split_partitions_and_is_seeded() -> None:
    a, b = split_indices(100, seed=3), split_indices(100, seed=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert [len(p) for p in a] == [70, 15, 15]
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    assert not np.array_equal(a[2], split_indices(100, seed=4)[2])
    assert [len(p) for p in split_indices(10)] == [6, 2, 2]
    with pytest.raises(ConfigurationError, match="too few"):
        split_indices(2)


@pytest.mark.parametrize("seed", range(5))
def test_group_split_never_puts_a_group_on_two_sides(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = [f"family-{k}" for k in rng.integers(0, 25, size=300)]
    parts = split_indices(300, (0.7, 0.15, 0.15), seed, groups=groups)
    seen = [{groups[i] for i in part} for part in parts]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sorted(np.concatenate(parts).tolist()) == list(range(300))
    assert all(len(p) for p in parts)
    # the test part holds at least its share, overshooting by less than one group
    largest = max(groups.count(g) for g in set(groups))
    assert 45 <= len(parts[2]) < 45 + largest


def test_group_split_is_seeded_and_needs_three_groups() -> None:
    groups = ["a"] * 5 + ["b"] * 5 + ["c"] * 5 + ["d"] * 5
    one = split_indices(20, seed=1, groups=groups)
    for x, y in zip(one, split_indices(20, seed=1, groups=groups), strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ConfigurationError, match="too few groups"):
        split_indices(6, groups=["a", "a", "a", "b", "b", "b"])
    with pytest.raises(ConfigurationError, match="entries"):
        split_indices(6, groups=["a", "b", "c"])


def test_resolve_split_uses_a_given_split_and_refuses_empty_parts() -> None:
    parts = resolve_split(10, (0.7, 0.15, 0.15), 0, ([0, 1, 2], [3], [4]))
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3], [4]]
    with pytest.raises(ConfigurationError, match="must not be empty"):
        resolve_split(10, (0.7, 0.15, 0.15), 0, ([0, 1], [], [2]))
    assert split_ids(["x", "y", "z"], ([2], [0], [1])) == {"train": ["z"], "val": ["x"],
                                                           "test": ["y"]}


# --------------------------------------------------------------------------------------------
# metrics, tables, checkpoints
# --------------------------------------------------------------------------------------------


def test_prediction_table_names_classes_and_adds_probabilities() -> None:
    frame = prediction_table(["m1", "m2"], [0, 1], [1, 1], class_names=("a", "b"),
                             probabilities=np.array([[0.4, 0.6], [0.1, 0.9]]),
                             columns={"formula": ["X", "Y"]})
    assert list(frame.columns) == ["material_id", "formula", "y_true", "y_pred", "p_a", "p_b"]
    assert frame["y_true"].tolist() == ["a", "b"] and frame["y_pred"].tolist() == ["b", "b"]
    assert metrics_from_table("classification", frame)["accuracy"] == 0.5
    reg = prediction_table(["m1", "m2"], [1.0, 2.0], [1.5, 2.0])
    assert metrics_from_table("regression", reg)["mae"] == pytest.approx(0.25)


def test_checkpoint_file_joins_the_non_empty_parts(tmp_path) -> None:
    assert checkpoint_file(tmp_path, "band_gap", "", "tag", "seed3") == (
        tmp_path / "band_gap-tag-seed3.pt")


def test_builtin_networks_load_without_importing_their_trainers(tmp_path) -> None:
    from specfusion_lib.models.pxrd_net import PXRDCrystalSystemNet

    model = PXRDCrystalSystemNet(n_classes=7, n_points=64)
    path = save_checkpoint(tmp_path / "p.pt", model, {"seed": 0})
    loaded, meta = load(path)
    assert type(loaded).__name__ == "PXRDCrystalSystemNet" and meta["seed"] == 0


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------


def test_fit_epochs_calls_before_epoch_outside_the_timed_pass() -> None:
    model = nn.Linear(1, 1)
    calls: list[int] = []
    loop = fit_epochs(model, np.arange(4), max_epochs=3, batch_size=2, patience=5, seed=0,
                      device=torch.device("cpu"), train_batch=lambda b: {"l": (1.0, len(b))},
                      validate=lambda train: {"val_loss": 1.0}, before_epoch=calls.append)
    assert calls == [1, 2, 3] and len(loop.history) == 3 and loop.samples_seen == 12


def test_fit_classifier_learns_a_separable_problem_and_restores_the_best_epoch() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    model = nn.Linear(2, 2)
    prof = Profile("t", seeds=(0,), max_epochs=30, patience=30, max_materials=None, batch_size=16,
                   learning_rate=0.05)
    renders: list[int] = []

    def inputs(epoch: int) -> list[torch.Tensor]:
        renders.append(epoch)
        return [x]

    fit = fit_classifier(model, inputs, y, [x], y, prof, seed=0, threads=1)
    assert renders == list(range(1, 31))
    assert fit.history[-1]["val_accuracy"] >= 0.9
    best = min(h["val_loss"] for h in fit.history)
    assert fit.history[fit.best_epoch - 1]["val_loss"] == best


# --------------------------------------------------------------------------------------------
# checkpoints written by an earlier layout of the package
# --------------------------------------------------------------------------------------------

LEGACY = Path(__file__).parent / "fixtures" / "legacy_checkpoints"


def test_specfusionnet_checkpoint_of_the_old_layout_loads_and_predicts_the_same() -> None:
    model, meta = load(LEGACY / "specfusionnet-seed0.pt")
    assert type(model).__name__ == "SpecFusionNet" and meta["seed"] == 0
    assert model.config.masked_tm_descriptors == (2,) and model.config.d_model == 16
    io = np.load(LEGACY / "specfusionnet-io.npz")
    inputs = [torch.as_tensor(io[k]) for k in ("descriptors", "element_mask", "tm_mask",
                                               "spectra", "spectrum_mask")]
    with torch.no_grad():
        out = model(*inputs).numpy()
    np.testing.assert_allclose(out, io["output"], rtol=1e-5, atol=1e-6)


def test_pxrd_checkpoint_of_the_old_layout_loads_and_predicts_the_same() -> None:
    model, _ = load(LEGACY / "pxrd-crystal-system-seed0.pt")
    assert type(model).__name__ == "PXRDCrystalSystemNet"
    io = np.load(LEGACY / "pxrd-crystal-system-io.npz")
    with torch.no_grad():
        out = model(torch.as_tensor(io["patterns"])).numpy()
    np.testing.assert_allclose(out, io["output"], rtol=1e-5, atol=1e-6)
