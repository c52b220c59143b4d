"""Early stopping on the validation loss, shared by every trainer of the package.

SI §S1.1: training stops once the validation loss has not improved for ``patience``
consecutive epochs (or at the epoch cap), and the weights of the best validation epoch are
restored. :class:`EarlyStopping` keeps that bookkeeping in one place for
:func:`specfusion_lib.properties.train.train_model`, :func:`specfusion_lib.properties.multitask.train_multitask`
and :func:`specfusion_lib.crystal_system.training.fit_classifier`; :func:`fit_epochs` is the epoch loop
of the two SpecFusionNet trainers (seeded mini-batch order, timing, history, early stopping).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["EarlyStopping", "EpochLoop", "fit_epochs"]


class EarlyStopping:
    """Track the best validation loss, its epoch and a copy of its weights.

    Args:
        model: The model being trained; its current weights are the fallback "best" state
            (epoch 0) until an epoch improves on an infinite loss.
        patience: Epochs without improvement after which :meth:`step` says stop (>= 1).

    Attributes:
        best_loss: Lowest validation loss seen (``inf`` before the first epoch).
        best_epoch: Epoch (1-based) of ``best_loss``; 0 before the first improvement.
        best_state: Deep copy of the model's ``state_dict`` at ``best_epoch``.
    """

    def __init__(self, model: nn.Module, patience: int) -> None:
        if int(patience) < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.patience = int(patience)
        self.best_loss = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, Any] = copy.deepcopy(model.state_dict())
        self._since_best = 0

    def step(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        """Record one epoch's validation loss.

        A strictly lower loss becomes the best (weights copied); otherwise the counter of
        epochs without improvement grows. A NaN loss never improves.

        Returns:
            ``True`` when training should stop (``patience`` epochs without improvement).
        """
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self._since_best = float(val_loss), int(epoch), 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self._since_best += 1
        return self._since_best >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights into ``model`` and put it in eval mode."""
        model.load_state_dict(self.best_state)
        model.eval()


@dataclass
class EpochLoop:
    """What :func:`fit_epochs` did.

    Attributes:
        history: One entry per epoch: ``epoch`` and what ``validate`` returned.
        best_epoch: Epoch whose weights were restored (0: none improved on the start).
        train_seconds: Wall time of the training passes (validation excluded).
        samples_seen: Training rows processed over all epochs.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    train_seconds: float = 0.0
    samples_seen: int = 0

    @property
    def samples_per_second(self) -> float:
        """Training rows per second of training pass (NaN before any pass)."""
        return self.samples_seen / self.train_seconds if self.train_seconds > 0 else math.nan


def fit_epochs(
    model: nn.Module,
    train_idx: np.ndarray,
    *,
    max_epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    device: torch.device,
    train_batch: Callable[[torch.Tensor], Mapping[str, tuple[float, int]] | None],
    validate: Callable[[dict[str, float]], dict[str, float]],
    desc: str = "",
    progress: bool = False,
) -> EpochLoop:
    """Train with shuffled mini-batches until early stopping, then restore the best weights.

    Each epoch puts the model in train mode, draws a permutation of ``train_idx`` from a
    generator seeded with ``seed`` (so the batch order depends on the seed only) and calls
    ``train_batch`` on consecutive slices of ``batch_size`` rows. ``train_batch`` takes the
    optimiser step and returns, per loss name, ``(mean loss of the batch, number of targets)``
    (or ``None`` for a batch without targets); the loop averages them over the epoch,
    weighted by the counts (names without a target this epoch are absent). ``validate``
    receives these epoch means and returns the history entry, which must contain
    ``val_loss`` (the early-stopping criterion, :class:`EarlyStopping`).

    Args:
        model: The network (its best weights are loaded back at the end, in eval mode).
        train_idx: Training row indices, shape ``(n_train,)``.
        max_epochs: Epoch cap.
        batch_size: Rows per optimiser step.
        patience: Early-stopping patience in epochs.
        seed: Seed of the batch order.
        device: Device the row indices are moved to.
        train_batch: ``rows`` (LongTensor ``(b,)`` on ``device``) → per-loss ``(value, n)``.
        validate: Epoch's mean training losses → history entry (with ``val_loss``).
        desc: Progress-bar label.
        progress: Show a progress bar over epochs.

    Returns:
        An :class:`EpochLoop`.
    """
    generator = torch.Generator().manual_seed(int(seed))
    train_t = torch.as_tensor(np.asarray(train_idx), dtype=torch.long)
    stopper = EarlyStopping(model, patience)
    loop = EpochLoop()
    bar = tqdm(range(1, int(max_epochs) + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        order = train_t[torch.randperm(len(train_t), generator=generator)].to(device)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for start in range(0, len(order), int(batch_size)):
            for name, (value, n) in (train_batch(order[start:start + int(batch_size)])
                                     or {}).items():
                sums[name] = sums.get(name, 0.0) + float(value) * n
                counts[name] = counts.get(name, 0) + int(n)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        loop.train_seconds += time.perf_counter() - t0
        loop.samples_seen += len(order)
        entry = {"epoch": epoch, **validate({k: sums[k] / counts[k] for k in sums
                                             if counts[k]})}
        loop.history.append(entry)
        bar.set_postfix(val_loss=f"{entry['val_loss']:.4g}")
        if stopper.step(epoch, entry["val_loss"], model):
            break
    bar.close()
    stopper.restore(model)
    loop.best_epoch = stopper.best_epoch
    return loop
