"""The one epoch loop of every trainer, with early stopping (SI §S1.1).

:func:`fit_epochs` trains with seeded, shuffled mini-batches and stops once the validation
loss has not improved for ``patience`` consecutive epochs (or at the epoch cap); the weights of
the best validation epoch are restored (:class:`EarlyStopping`). It is the loop of every
trainer of the package: the single-task and multi-task SpecFusionNet trainers
(:mod:`specfusion_lib.properties.train`, :mod:`specfusion_lib.properties.multitask`) call it
directly; the PXRD-only and fused crystal-system trainers
(:mod:`specfusion_lib.crystal_system.training`, :mod:`specfusion_lib.crystal_system.fusion`)
call it through :func:`fit_classifier` (Adam, cross-entropy, inputs re-rendered every epoch).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from tqdm.auto import tqdm

from specfusion_lib.core.profiles import Profile

__all__ = ["EarlyStopping", "EpochLoop", "batched_logits", "cpu_threads", "fit_classifier",
           "fit_epochs", "resolve_device"]

logger = logging.getLogger(__name__)

_EVAL_BATCH = 256


def resolve_device(device: str | torch.device | None, profile: Profile) -> torch.device:
    """``device`` if given, else CUDA for the ``paper`` profile when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    if profile.name == "paper" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None``: leave it); restored on exit."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    before_epoch: Callable[[int], None] | None = None,
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
    ``val_loss`` (the early-stopping criterion, :class:`EarlyStopping`). ``before_epoch``, if
    given, runs at the start of each epoch, outside the timed training pass (e.g. to render
    newly augmented inputs).

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
        before_epoch: Called with the epoch (1-based) before its training pass.
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
        if before_epoch is not None:
            before_epoch(epoch)
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
    logger.info("%s: %d epochs, best epoch %d (val_loss %.4g), %.1f samples/s", desc or "fit",
                len(loop.history), loop.best_epoch, stopper.best_loss, loop.samples_per_second)
    return loop


@torch.no_grad()
def batched_logits(model: nn.Module, inputs: Sequence[Tensor], device: torch.device,
                   batch_size: int = _EVAL_BATCH, idx: np.ndarray | None = None) -> Tensor:
    """Eval-mode outputs of ``model`` on rows of ``inputs``, in batches, on the CPU.

    Args:
        model: A network returning one tensor.
        inputs: Its input tensors, each ``(N, ...)``, on any device.
        device: Device each batch is moved to.
        batch_size: Rows per forward pass.
        idx: Rows to evaluate, in this order (default: all).

    Returns:
        ``(len(idx), ...)`` float tensor (empty when there are no rows).
    """
    model.eval()
    order = (torch.arange(inputs[0].shape[0]) if idx is None
             else torch.as_tensor(idx, dtype=torch.long))
    outs = []
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        outs.append(model(*(t[rows.to(t.device)].to(device) for t in inputs)).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def fit_classifier(
    model: nn.Module,
    train_inputs: Callable[[int], Sequence[Tensor]],
    y_train: Tensor,
    val_inputs: Sequence[Tensor],
    y_val: Tensor,
    profile: Profile,
    seed: int,
    *,
    max_epochs: int | None = None,
    device: torch.device | None = None,
    threads: int | None = None,
    progress: bool = False,
    desc: str = "train",
) -> EpochLoop:
    """Train a classifier with Adam, cross-entropy and :func:`fit_epochs`.

    Args:
        model: Takes the tensors of ``train_inputs(epoch)`` (each ``(N_train, ...)``) and
            returns logits ``(N, C)``.
        train_inputs: Epoch (1-based) → the training inputs of that epoch (new augmentation
            every epoch); rendering is not counted in the training time.
        y_train: ``(N_train,)`` class indices.
        val_inputs: Fixed validation inputs.
        y_val: ``(N_val,)`` class indices.
        profile: Learning rate, batch size, epoch cap and patience.
        seed: Seed of the batch order.
        max_epochs: Override the profile's epoch cap.
        device: Torch device (default CPU).
        threads: Torch intra-op threads while training on the CPU (``None``: leave as is).
        progress: Show a progress bar.
        desc: Progress bar label.

    Returns:
        An :class:`EpochLoop` whose history has ``train_loss``, ``val_loss`` and
        ``val_accuracy``; ``model`` holds the best validation epoch's weights, eval mode.
    """
    dev = device or torch.device("cpu")
    model.to(dev)
    epochs = int(profile.max_epochs if max_epochs is None else max_epochs)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.learning_rate)
    y = y_train.to(dev)
    current: list[Tensor] = []

    def render(epoch: int) -> None:
        current[:] = [t.to(dev) for t in train_inputs(epoch)]

    def train_batch(b: Tensor) -> dict[str, tuple[float, int]]:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(*(t[b] for t in current)), y[b])
        loss.backward()
        optimizer.step()
        return {"train_loss": (float(loss.detach()), len(b))}

    def validate(train: dict[str, float]) -> dict[str, float]:
        val_out = batched_logits(model, val_inputs, dev)
        return {"train_loss": train.get("train_loss", math.nan),
                "val_loss": float(F.cross_entropy(val_out, y_val)),
                "val_accuracy": float((val_out.argmax(1) == y_val).float().mean())}

    with cpu_threads(threads if dev.type == "cpu" else None):
        return fit_epochs(model, np.arange(len(y_train)), max_epochs=epochs,
                          batch_size=int(profile.batch_size), patience=profile.patience,
                          seed=seed, device=dev, train_batch=train_batch, validate=validate,
                          before_epoch=render, desc=desc, progress=progress)
