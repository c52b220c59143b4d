"""XAStruct inverse models: K-edge XANES on the absolute grid → local structure.

Three targets per (material, absorbing element), labels of :mod:`.local_env`:

* **Coordination number** -- a random forest per element (XAStruct's choice: unified models
  failed to converge for rare CNs); baselines an MLP and the majority class. Input: the
  normalised μ on the element's grid.
* **Mean nearest-neighbour distance (MNND, Å)** -- one model for every element
  (:class:`MNNDNet`): an SGMLP embeds each grid point's absolute energy ``E_i`` and each
  ``μ_i`` (pointwise, XAStruct eqs. 7–8), the two embeddings are concatenated per point and
  passed through Conv1D–BatchNorm–ReLU–AvgPool (eq. 11) and an SGMLP head. The absolute
  energy tells the network which element's edge it sees. Baseline: a random forest on μ plus
  the element's tabulated edge energy.
* **Neighbour type** -- the most frequent neighbour element; an SGMLP classifier per element
  (:class:`NeighbourTypeNet`) on μ; baselines a random forest and the majority class.

Networks are trained with AdamW (weight decay 0.01 as XAStruct; learning rate 1e-3),
early-stopped on the validation rows; MSE for MNND, cross-entropy for the classifiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from specfusion_lib.xas_structure.fitting import fit_network
from specfusion_lib.xas_structure.sgmlp import SGMLP

__all__ = [
    "ENERGY_SCALE_EV",
    "MNNDNet",
    "MajorityClass",
    "NeighbourTypeNet",
    "cn_mlp",
    "cn_random_forest",
    "fit_mnnd_net",
    "fit_neighbour_net",
    "mnnd_random_forest",
    "neighbour_random_forest",
    "neighbour_probabilities",
    "predict_mnnd",
]

#: Absolute energies enter the MNND network divided by this (eV): 0.45–2.7 for Sc–Cd K edges.
ENERGY_SCALE_EV = 1.0e4


class MajorityClass:
    """Predict the most frequent training class (ties: the smallest label)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> MajorityClass:
        values, counts = np.unique(np.asarray(y), return_counts=True)
        self.class_ = values[np.argmax(counts)]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.class_)


def cn_random_forest(seed: int = 0) -> RandomForestClassifier:
    """XAStruct's CN classifier (one per element)."""
    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def cn_mlp(seed: int = 0):
    """MLP baseline of the CN classifier (standardised input)."""
    return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128, 64),
                                                         max_iter=300, early_stopping=True,
                                                         random_state=seed))


def neighbour_random_forest(seed: int = 0) -> RandomForestClassifier:
    """Random-forest baseline of the neighbour-type classifier."""
    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def mnnd_random_forest(seed: int = 0) -> RandomForestRegressor:
    """Random-forest baseline of the MNND regressor (input: μ and the tabulated edge energy)."""
    return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)


class MNNDNet(nn.Module):
    """One MNND regressor for every element (see the module docstring).

    Args:
        n_points: Grid points.
        embed: Width of each pointwise embedding.
        channels: Conv1D output channels.
        kernel: Conv1D kernel size (odd).
        pool: AvgPool window.
        hidden: Width of the head's SBlocks.

    Shapes: ``energy (batch, n_points)`` (absolute eV / ``ENERGY_SCALE_EV``), ``mu (batch,
    n_points)`` → ``(batch,)`` MNND in Å (standardised inside with the training mean/spread).
    """

    def __init__(self, n_points: int = 100, embed: int = 16, channels: int = 32,
                 kernel: int = 5, pool: int = 4, hidden: int = 128) -> None:
        super().__init__()
        self.model_args = {"n_points": n_points, "embed": embed, "channels": channels,
                           "kernel": kernel, "pool": pool, "hidden": hidden}
        self.embed_energy = SGMLP([1, embed, embed])
        self.embed_mu = SGMLP([1, embed, embed])
        self.conv = nn.Sequential(nn.Conv1d(2 * embed, channels, kernel, padding=kernel // 2),
                                  nn.BatchNorm1d(channels), nn.ReLU(), nn.AvgPool1d(pool))
        self.head = SGMLP([channels * (n_points // pool), hidden, hidden, 1])
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_scale", torch.ones(()))

    @property
    def hparams(self) -> dict[str, Any]:
        return dict(self.model_args)

    def forward(self, energy: Tensor, mu: Tensor) -> Tensor:
        ze = self.embed_energy(energy.unsqueeze(-1))  # (b, n, embed)
        za = self.embed_mu(mu.unsqueeze(-1))
        z = torch.cat([ze, za], dim=-1).transpose(1, 2)  # (b, 2 embed, n)
        h = self.conv(z).flatten(1)
        return self.y_mean + self.y_scale * self.head(h).squeeze(-1)


class NeighbourTypeNet(nn.Module):
    """SGMLP classifier μ ``(batch, n_points)`` → logits ``(batch, n_classes)``."""

    def __init__(self, n_points: int = 100, n_classes: int = 2, hidden: int = 128,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.model_args = {"n_points": n_points, "n_classes": n_classes, "hidden": hidden,
                           "dropout": dropout}
        self.net = SGMLP([n_points, hidden, hidden, n_classes], dropout=dropout)

    @property
    def hparams(self) -> dict[str, Any]:
        return dict(self.model_args)

    def forward(self, mu: Tensor) -> Tensor:
        return self.net(mu)


def fit_mnnd_net(energy: np.ndarray, mu: np.ndarray, mnnd: np.ndarray, train: np.ndarray,
                 val: np.ndarray, *, seed: int = 0, max_epochs: int = 300, patience: int = 30
                 ) -> tuple[MNNDNet, Any]:
    """Train :class:`MNNDNet` on rows ``train`` (early stopping on ``val``).

    Args:
        energy: Absolute grid energies (eV) of every row, shape ``(n, n_points)``.
        mu: Normalised spectra, shape ``(n, n_points)``.
        mnnd: Targets (Å), shape ``(n,)``.
    """
    torch.manual_seed(seed)
    e = torch.as_tensor(np.asarray(energy) / ENERGY_SCALE_EV, dtype=torch.float32)
    x = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(mnnd), dtype=torch.float32)
    model = MNNDNet(n_points=x.shape[1])
    model.y_mean.fill_(float(y[train].mean()))
    model.y_scale.fill_(float(y[train].std().clamp_min(1e-3)))
    loop = fit_network(model, lambda r: nn.functional.mse_loss(model(e[r], x[r]), y[r]), train, val,
                seed=seed, max_epochs=max_epochs, patience=patience, batch_size=64,
                desc="MNND net")
    return model, loop


@torch.no_grad()
def predict_mnnd(model: MNNDNet, energy: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """MNND (Å) of each row, shape ``(n,)``."""
    model.eval()
    return model(torch.as_tensor(np.asarray(energy) / ENERGY_SCALE_EV, dtype=torch.float32),
                 torch.as_tensor(np.asarray(mu), dtype=torch.float32)).numpy()


def fit_neighbour_net(mu: np.ndarray, labels: Sequence[str], train: np.ndarray,
                      val: np.ndarray, *, seed: int = 0, max_epochs: int = 300,
                      patience: int = 30) -> tuple[NeighbourTypeNet, list[str]]:
    """Train :class:`NeighbourTypeNet` on rows ``train``; classes are the training labels.

    Returns:
        ``(model, classes)``; validation rows of an unseen class are ignored for early
        stopping.
    """
    torch.manual_seed(seed)
    labels = np.asarray(labels)
    classes = sorted(set(labels[train]))
    index = {c: i for i, c in enumerate(classes)}
    x = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
    y = torch.as_tensor([index.get(c, -100) for c in labels], dtype=torch.long)
    val = np.asarray([v for v in val if labels[v] in index], dtype=np.int64)
    if len(val) == 0:
        val = np.asarray(train)
    model = NeighbourTypeNet(n_points=x.shape[1], n_classes=max(len(classes), 1))
    fit_network(model, lambda r: nn.functional.cross_entropy(model(x[r]), y[r]), train, val,
         seed=seed, max_epochs=max_epochs, patience=patience, desc="neighbour-type net")
    return model, classes


@torch.no_grad()
def neighbour_probabilities(model: NeighbourTypeNet, mu: np.ndarray) -> np.ndarray:
    """Class probabilities, shape ``(n, n_classes)``."""
    model.eval()
    return torch.softmax(model(torch.as_tensor(np.asarray(mu), dtype=torch.float32)), -1).numpy()
