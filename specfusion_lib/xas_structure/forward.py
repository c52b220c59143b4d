"""XAStruct forward model: structure → K-edge XANES on the absolute grid, one head per element.

The model, as XAStruct builds it (seed 002, §3.2): a graph encoder embeds every site of the
crystal, the embeddings are averaged over the absorber and its immediate neighbours, and a
3-layer SGMLP (two SBlocks and a final GatedLinear, :mod:`.sgmlp`) maps the pooled vector to
the spectrum. The encoder here is the frozen pretrained CHGNet (:mod:`.encoder`), so training
touches only the head: :class:`XAStructHead` maps a pooled embedding ``(batch, 64)`` to the
edge-normalised μ on the element's grid ``(batch, N_GRID_POINTS)``. It standardises its input
with the training rows' mean and spread and predicts the deviation from the training rows'
mean spectrum (both stored as buffers), so an untrained head already gives the mean-spectrum
baseline. One head per absorbing element, as XAStruct trains them.

Training (:func:`train_head`): mean-squared error, AdamW (weight decay 0.01 as in XAStruct;
learning rate 1e-3 rather than XAStruct's 1e-4, which is set for 100 k spectra and a GPU),
shuffled mini-batches of 32, early stopping on the validation part.

:class:`XAStructForward` is the forward-model interface that notebooks 13 and 15 and the
structure search use: ``predict_structures(structures, element)`` returns spectra on
:func:`~.grid.grid_window` ``(element).energies``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from pymatgen.core import Structure
from torch import Tensor, nn

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.errors import ElementError, InputFileError
from specfusion_lib.training.loop import EpochLoop
from specfusion_lib.xas_structure.encoder import (
    ENCODER_NAME,
    FEATURE_DIM,
    pool_features,
    site_features,
)
from specfusion_lib.xas_structure.fitting import fit_network
from specfusion_lib.xas_structure.grid import N_GRID_POINTS, grid_window
from specfusion_lib.xas_structure.local_env import element_environments
from specfusion_lib.xas_structure.sgmlp import SGMLP

__all__ = [
    "ForwardModel",
    "GriddedXANES",
    "TrainSettings",
    "XAStructForward",
    "XAStructHead",
    "train_head",
]

logger = logging.getLogger(__name__)


class XAStructHead(nn.Module):
    """Pooled structure embedding → spectrum on the grid.

    Args:
        in_dim: Embedding width (CHGNet: 64).
        out_dim: Grid points.
        hidden: Width of the two SBlocks.
        variant: SGMLP variant (:data:`~.sgmlp.HEAD_VARIANTS`).
        dropout: Dropout after each block.

    Shapes: ``(batch, in_dim) → (batch, out_dim)``.
    """

    def __init__(self, in_dim: int = FEATURE_DIM, out_dim: int = N_GRID_POINTS,
                 hidden: int = 256, variant: str = "sgmlp", dropout: float = 0.0) -> None:
        super().__init__()
        self.model_args = {"in_dim": int(in_dim), "out_dim": int(out_dim), "hidden": int(hidden),
                           "variant": str(variant), "dropout": float(dropout)}
        self.net = SGMLP([in_dim, hidden, hidden, out_dim], variant=variant, dropout=dropout)
        self.register_buffer("x_mean", torch.zeros(in_dim))
        self.register_buffer("x_scale", torch.ones(in_dim))
        self.register_buffer("y_mean", torch.zeros(out_dim))

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (checkpoints rebuild the model from them)."""
        return dict(self.model_args)

    def reset_parameters(self) -> None:
        """Re-initialise the SGMLP (normalisation buffers are kept)."""
        self.net.reset_parameters()

    def set_normalisation(self, features: np.ndarray, mu: np.ndarray) -> None:
        """Input mean / spread and output mean from the training rows."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
        self.x_mean.copy_(x.mean(0))
        self.x_scale.copy_(x.std(0, unbiased=False).clamp_min(1e-6))
        self.y_mean.copy_(y.mean(0))

    def forward(self, x: Tensor) -> Tensor:
        return self.y_mean + self.net((x - self.x_mean) / self.x_scale)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of one head (see the module docstring for the choices)."""

    max_epochs: int = 400
    patience: int = 40
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 32
    hidden: int = 256
    dropout: float = 0.1


def train_head(features: np.ndarray, mu: np.ndarray, train: np.ndarray, val: np.ndarray, *,
               variant: str = "sgmlp", seed: int = 0,
               settings: TrainSettings | None = None) -> tuple[XAStructHead, EpochLoop]:
    """Train one element's head on rows ``train``, early-stopped on rows ``val``.

    Args:
        features: Pooled embeddings, shape ``(n, FEATURE_DIM)``.
        mu: Spectra on the grid, shape ``(n, N_GRID_POINTS)``.
        train, val: Row indices.
        variant: SGMLP variant.
        seed: Seed of the initialisation and the batch order.
        settings: Optimisation settings.

    Returns:
        ``(head, loop)`` with the best validation weights loaded, in eval mode.
    """
    settings = settings or TrainSettings()
    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(mu), dtype=torch.float32)
    head = XAStructHead(x.shape[1], y.shape[1], hidden=settings.hidden, variant=variant,
                        dropout=settings.dropout)
    head.set_normalisation(x[train].numpy(), y[train].numpy())
    loop = fit_network(head, lambda rows: nn.functional.mse_loss(head(x[rows]), y[rows]),
                       np.asarray(train), np.asarray(val), seed=seed,
                       max_epochs=settings.max_epochs, patience=settings.patience,
                       lr=settings.learning_rate, batch_size=settings.batch_size,
                       weight_decay=settings.weight_decay,
                       desc=f"XAStruct head ({variant})")
    return head, loop


@dataclass(frozen=True)
class GriddedXANES:
    """A predicted spectrum on an element's absolute grid.

    Attributes:
        element: Absorbing element.
        energy: Absolute energies (eV), shape ``(N_GRID_POINTS,)``.
        mu: Edge-normalised μ, shape ``(N_GRID_POINTS,)``.
    """

    element: str
    energy: np.ndarray
    mu: np.ndarray

    def to_csv(self, path: str | Path) -> Path:
        """Write ``energy_eV,mu_norm`` rows atomically."""
        lines = ["energy_eV,mu_norm"] + [f"{e:.3f},{m:.6f}" for e, m in
                                         zip(self.energy, self.mu, strict=True)]
        return atomic_write_text(path, "\n".join(lines) + "\n")


class ForwardModel(Protocol):
    """What a structure → spectrum model offers (XAStruct per element, CGXAS universal)."""

    elements: tuple[str, ...]

    def predict_structures(self, structures: Sequence[Structure], element: str) -> np.ndarray:
        """Spectra of ``element`` in each structure on its grid, ``(n, N_GRID_POINTS)``."""


class XAStructForward:
    """Per-element XAStruct heads over the frozen CHGNet encoder (a :class:`ForwardModel`).

    Args:
        heads: Element → trained :class:`XAStructHead`.
        metadata: Provenance (snapshot, split, metrics); saved with the heads.
    """

    def __init__(self, heads: Mapping[str, XAStructHead], metadata: Mapping[str, Any] | None
                 = None) -> None:
        self.heads = dict(heads)
        self.metadata = dict(metadata or {})
        self.elements = tuple(sorted(self.heads))

    def _head(self, element: str) -> XAStructHead:
        if element not in self.heads:
            raise ElementError(f"the XAStruct forward model has no {element} K-edge head; it "
                               f"was trained for {', '.join(self.elements)}")
        return self.heads[element]

    @torch.no_grad()
    def predict_features(self, features: np.ndarray, element: str) -> np.ndarray:
        """Spectra from pooled embeddings ``(n, FEATURE_DIM)`` → ``(n, N_GRID_POINTS)``."""
        head = self._head(element).eval()
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        return head(x).numpy()

    def pooled_features(self, structures: Sequence[Structure], element: str) -> np.ndarray:
        """Pooled CHGNet embeddings of ``element`` in each structure, ``(n, FEATURE_DIM)``.

        Raises:
            ElementError: A structure holds no ``element``.
        """
        envs = [element_environments(s, [element])[element] for s in structures]
        feats = site_features(list(structures))
        return np.array([pool_features(f, e.pool_weights) for f, e in
                         zip(feats, envs, strict=True)], dtype=np.float32)

    def predict_structures(self, structures: Sequence[Structure], element: str) -> np.ndarray:
        """Spectra of ``element`` in each structure, ``(n, N_GRID_POINTS)``."""
        self._head(element)
        return self.predict_features(self.pooled_features(structures, element), element)

    def predict_structure(self, structure: Structure, element: str) -> GriddedXANES:
        """The predicted K-edge spectrum of ``element`` in one structure."""
        mu = self.predict_structures([structure], element)[0]
        return GriddedXANES(element, grid_window(element).energies, mu)

    def save(self, folder: str | Path) -> Path:
        """Write one checkpoint per head plus ``forward.json`` into ``folder``."""
        from specfusion_lib.training.checkpoints import save_checkpoint

        folder = Path(folder)
        for element, head in self.heads.items():
            save_checkpoint(folder / f"head_{element}.pt", head,
                            {**self.metadata, "element": element, "encoder": ENCODER_NAME})
        atomic_write_text(folder / "forward.json", json.dumps(
            {"elements": list(self.elements), "encoder": ENCODER_NAME, **self.metadata},
            indent=2, default=str) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> XAStructForward:
        """Read a model written by :meth:`save`.

        Raises:
            InputFileError: Missing or inconsistent files (named).
        """
        from specfusion_lib.training.checkpoints import load

        folder = Path(folder)
        index = folder / "forward.json"
        if not index.is_file():
            raise InputFileError(f"{index}: no XAStruct forward model here (forward.json "
                                 "missing)")
        meta = json.loads(index.read_text())
        if meta.get("encoder") != ENCODER_NAME:
            raise InputFileError(f"{index}: trained on encoder {meta.get('encoder')!r}, this "
                                 f"package provides {ENCODER_NAME!r}")
        heads = {}
        for element in meta["elements"]:
            model, _ = load(folder / f"head_{element}.pt")
            heads[element] = model
        return cls(heads, {k: v for k, v in meta.items() if k not in ("elements", "encoder")})
