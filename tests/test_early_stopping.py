from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from specfusion_lib.training.loop import EarlyStopping, fit_epochs


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
