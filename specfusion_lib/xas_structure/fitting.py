"""The training loop every XAStruct network shares (forward heads, MNND and neighbour-type
networks): AdamW with XAStruct's weight decay (0.01), shuffled mini-batches, early stopping on
the validation rows (:func:`specfusion_lib.training.loop.fit_epochs`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from specfusion_lib.training.loop import EpochLoop, fit_epochs

__all__ = ["fit_network"]


def fit_network(model: nn.Module, loss_of: Callable[[Tensor], Tensor], train: np.ndarray,
                val: np.ndarray, *, seed: int, max_epochs: int, patience: int,
                lr: float = 1e-3, batch_size: int = 32, weight_decay: float = 0.01,
                desc: str) -> EpochLoop:
    """Train ``model`` with AdamW (XAStruct: weight decay 0.01) on mini-batches of ``train`` rows.

    ``loss_of(rows)`` returns the mean loss of those rows (LongTensor of row indices); the
    validation loss is ``loss_of(val)``, the early-stopping criterion of
    :func:`~specfusion_lib.training.loop.fit_epochs`. A batch of one row is skipped for
    models with batch normalisation. Returns the loop record (best weights restored).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    val_t = torch.as_tensor(np.asarray(val), dtype=torch.long)

    def train_batch(rows: Tensor) -> dict[str, tuple[float, int]]:
        if len(rows) < 2 and any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
            return {}
        opt.zero_grad()
        loss = loss_of(rows)
        loss.backward()
        opt.step()
        return {"train_loss": (loss.item(), len(rows))}

    def validate(means: dict[str, float]) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            return {**means, "val_loss": float(loss_of(val_t))}

    return fit_epochs(model, np.asarray(train), max_epochs=max_epochs, batch_size=batch_size,
                      patience=patience, seed=seed, device=torch.device("cpu"),
                      train_batch=train_batch, validate=validate, desc=desc)
