"""Early stopping on the validation loss, shared by every trainer of the package.

SI §S1.1: training stops once the validation loss has not improved for ``patience``
consecutive epochs (or at the epoch cap), and the weights of the best validation epoch are
restored. :class:`EarlyStopping` keeps that bookkeeping in one place for
:func:`specfusion_lib.train.train_model`, :func:`specfusion_lib.train_multitask.train_multitask`
and :func:`specfusion_lib.crystal_system.fit_classifier`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from torch import nn

__all__ = ["EarlyStopping"]


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
