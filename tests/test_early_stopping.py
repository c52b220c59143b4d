from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from specfusion_lib.early_stopping import EarlyStopping


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
