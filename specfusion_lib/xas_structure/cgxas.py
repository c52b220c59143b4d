"""CGXAS: one crystal-graph network predicting the K-edge XANES of every absorbing element.

The model as CGXAS builds it (seed 003, Fig. 6b and Methods B), on our grid and data:

1. **Graph encoder.** Node features from element properties (:mod:`.crystal_graph`) are
   embedded by a linear layer to ``hidden`` channels. ``n_conv`` graph-convolution modules
   follow, each a gated convolution (CGCNN / geo-CGNN gate: for the edge ``i ← j`` with
   distance features ``e_ij``, ``z = [h_i, h_j, e_ij]`` and the message
   ``σ(W_f z + b_f) ⊙ softplus(W_s z + b_s)``, summed over the neighbours of ``i``), a
   residual connection with layer normalisation and a one-layer perceptron (SiLU). The
   outputs ``ω^k`` of the modules are summed with weights ``1/k!`` into the **latent site
   vector** of every atom.
2. **Decoder.** A ``decoder_depth``-layer perceptron (SiLU between layers, ReLU at the end so
   no intensity is negative) maps each site vector to that site's spectrum: ``N_GRID_POINTS``
   values of edge-normalised μ on the absorbing element's absolute grid (:mod:`.grid`). The
   same decoder serves every element; the site vector carries the element.
3. **Mask pooling.** A spectrum of a compound is the mean of the site spectra over the sites
   it covers: one site for a per-site FEFF spectrum, every site of the element for a
   site-averaged one. A snapshot with per-site spectra (the ``site_spectra`` supplement)
   trains on sites; one without trains on the averages through the same pooling.

Differences to the paper, chosen for 2 CPU cores and ~3,000 training spectra instead of
341,405: distances only as edge features (no plane-wave basis), widths ``hidden = 96`` and
depths ``n_conv = 3`` / ``decoder_depth = 4`` by default (the paper: 256, 5, 5), AdamW with
learning rate 1e-3 (paper: Adam, 1e-4 for 100 epochs on a GPU). Loss: RSE, as CGXAS.

:class:`CGXASNet` is the torch module (constructor arguments kept as ``hparams``);
:class:`CGXASForward` wraps it with the forward-model interface the XAStruct models share
(``predict_structures(structures, element)``), an optional energy calibration
(:mod:`.calibration`) and ``save``/``load``; :func:`train_cgxas` is the training loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure
from torch import Tensor, nn
from tqdm.auto import tqdm

from specfusion_lib.core.errors import ElementError, InputFileError, SpectrumError
from specfusion_lib.training.loop import EpochLoop
from specfusion_lib.xas_structure.crystal_graph import (
    ATOM_FEATURE_DIM,
    N_GAUSSIANS,
    CrystalGraph,
    GaussianExpansion,
    GraphBatch,
    batch_graphs,
    build_graph,
)
from specfusion_lib.xas_structure.fitting import fit_network
from specfusion_lib.xas_structure.grid import N_GRID_POINTS, grid_window, to_grid

__all__ = [
    "CGXASForward",
    "CGXASNet",
    "CGXASSettings",
    "GatedGraphConv",
    "SiteTargets",
    "average_targets",
    "build_graphs",
    "rse_loss",
    "site_targets",
    "train_cgxas",
]

logger = logging.getLogger(__name__)


class GatedGraphConv(nn.Module):
    """One graph-convolution module: gated messages, residual + LayerNorm, perceptron.

    Args:
        dim: Node channels.
        edge_dim: Edge-feature channels.
    """

    def __init__(self, dim: int, edge_dim: int) -> None:
        super().__init__()
        self.message = nn.Linear(2 * dim + edge_dim, 2 * dim)
        self.norm = nn.LayerNorm(dim)
        self.update = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the weights."""
        self.message.reset_parameters()
        self.norm.reset_parameters()
        self.update.reset_parameters()

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge: Tensor) -> Tensor:
        """Nodes ``(N, dim)``, edges ``(E,)``/``(E,)``/``(E, edge_dim)`` → nodes ``(N, dim)``.

        ``W [h_i, h_j, e_ij] + b`` is computed as ``(W_c h)_i + (W_n h)_j + W_e e_ij + b``
        with the column blocks of ``W``: the node products are taken once per node, not once
        per edge (the same function, about five times fewer operations on ~12 edges per
        node).
        """
        dim = h.shape[1]
        weight = self.message.weight
        centre = h @ weight[:, :dim].T
        neighbour = h @ weight[:, dim:2 * dim].T
        z = centre[src] + neighbour[dst] + nn.functional.linear(edge, weight[:, 2 * dim:],
                                                                self.message.bias)
        gate, core = z.chunk(2, dim=1)
        messages = torch.sigmoid(gate) * nn.functional.softplus(core)
        summed = torch.zeros_like(h).index_add_(0, src, messages)
        return nn.functional.silu(self.update(self.norm(h + summed)))


class CGXASNet(nn.Module):
    """Crystal graph → per-site spectra (module docstring).

    Args:
        hidden: Channels of the node features and of the decoder's hidden layers.
        n_conv: Graph-convolution modules.
        decoder_depth: Linear layers of the decoder (≥ 1).
        n_points: Points of every output spectrum.
        n_gaussians: Gaussians of the distance expansion.
    """

    def __init__(self, hidden: int = 96, n_conv: int = 3, decoder_depth: int = 4,
                 n_points: int = N_GRID_POINTS, n_gaussians: int = N_GAUSSIANS) -> None:
        super().__init__()
        if min(hidden, n_conv, decoder_depth, n_points, n_gaussians) < 1:
            raise ValueError("CGXASNet: every size must be at least 1")
        self.model_args = {"hidden": hidden, "n_conv": n_conv, "decoder_depth": decoder_depth,
                           "n_points": n_points, "n_gaussians": n_gaussians}
        self.expand = GaussianExpansion(n_gaussians)
        self.embed = nn.Linear(ATOM_FEATURE_DIM, hidden)
        self.convs = nn.ModuleList(GatedGraphConv(hidden, n_gaussians) for _ in range(n_conv))
        widths = [hidden] * decoder_depth + [n_points]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:],
                                                                       strict=True))
        self.reset_parameters()

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (stored in checkpoints)."""
        return dict(self.model_args)

    def reset_parameters(self) -> None:
        """Re-initialise every weight."""
        self.embed.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for layer in self.decoder:
            layer.reset_parameters()

    def site_vectors(self, batch: GraphBatch) -> Tensor:
        """Latent site vectors ``Σ_k ω^k / k!``, shape ``(N, hidden)``."""
        h = self.embed(batch.atom_fea)
        edge = self.expand(batch.distance)
        total = torch.zeros_like(h)
        for k, conv in enumerate(self.convs, start=1):
            h = conv(h, batch.src, batch.dst, edge)
            total = total + h / math.factorial(k)
        return total

    def decode(self, vectors: Tensor) -> Tensor:
        """Site vectors ``(M, hidden)`` → site spectra ``(M, n_points)`` (non-negative)."""
        x = vectors
        for i, layer in enumerate(self.decoder):
            x = layer(x)
            x = nn.functional.silu(x) if i < len(self.decoder) - 1 else nn.functional.relu(x)
        return x

    def forward(self, batch: GraphBatch, site_index: Tensor, pool_row: Tensor,
                n_rows: int) -> Tensor:
        """Pooled spectra of ``n_rows`` targets.

        Args:
            batch: The graphs.
            site_index: Batch node index of every pooled site, shape ``(K,)``.
            pool_row: Target row of every pooled site, shape ``(K,)``.
            n_rows: Number of targets.

        Returns:
            Shape ``(n_rows, n_points)``: the mean site spectrum of each row's sites.
        """
        spectra = self.decode(self.site_vectors(batch)[site_index])
        return pool_sites(spectra, pool_row, n_rows)


def pool_sites(spectra: Tensor, pool_row: Tensor, n_rows: int) -> Tensor:
    """Mean of site spectra ``(K, n)`` per target row → ``(n_rows, n)`` (mask pooling)."""
    total = torch.zeros(n_rows, spectra.shape[1], dtype=spectra.dtype).index_add_(
        0, pool_row, spectra)
    count = torch.zeros(n_rows, dtype=spectra.dtype).index_add_(
        0, pool_row, torch.ones_like(pool_row, dtype=spectra.dtype))
    return total / count.clamp(min=1)[:, None]


def rse_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over rows of ``Σ (y − ŷ)² / Σ y²`` (CGXAS eq. 1), optionally over masked points.

    Shapes: ``(m, n)`` each; ``mask`` boolean ``(m, n)`` or ``None``.
    """
    weight = torch.ones_like(target) if mask is None else mask.to(target.dtype)
    num = (weight * (pred - target) ** 2).sum(dim=1)
    den = (weight * target ** 2).sum(dim=1).clamp(min=1e-8)
    return (num / den).mean()


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class SiteTargets:
    """Spectra the universal model is trained or scored on.

    Attributes:
        material_id: Material of every row, shape ``(m,)``.
        element: Absorbing element of every row, shape ``(m,)``.
        sites: Structure site indices pooled by every row (one site, or every site of the
            element), length ``m``.
        mu: Edge-normalised μ on the element's grid, shape ``(m, N_GRID_POINTS)``.
        kind: ``"site"`` (per-site spectra) or ``"average"`` (site-averaged spectra).
        skipped: Element → rows that could not be put on the grid.
    """

    material_id: np.ndarray
    element: np.ndarray
    sites: list[np.ndarray]
    mu: np.ndarray
    kind: str
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.material_id)

    def subset(self, rows: np.ndarray | Sequence[int] | Sequence[bool]) -> SiteTargets:
        """The targets of ``rows`` (indices or a boolean mask)."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, int)
        return SiteTargets(self.material_id[idx], self.element[idx],
                           [self.sites[i] for i in idx], self.mu[idx], self.kind,
                           dict(self.skipped))

    def elements(self) -> list[str]:
        """Absorbing elements present, sorted."""
        return sorted(set(self.element.tolist()))


def _element_sites(structure: Structure, element: str) -> np.ndarray:
    return np.array([i for i, site in enumerate(structure) if site.specie.symbol == element],
                    dtype=np.int64)


def site_targets(snapshot, *, elements: Sequence[str] | None = None) -> SiteTargets:
    """Training targets of a snapshot: its per-site spectra when it has the supplement,
    otherwise its site-averaged spectra pooled over every site of the element.

    Args:
        snapshot: The snapshot.
        elements: Absorbing elements to keep (default every one that fits its grid).

    Returns:
        The targets; rows whose spectrum does not cover the element's grid are skipped and
        counted per element.
    """
    frame = snapshot.site_spectra()
    kind = "site"
    if frame is None:
        frame = snapshot.spectra.loc[snapshot.spectra["edge"].astype(str) == "K"]
        kind = "average"
    frame = frame.loc[frame["edge"].astype(str) == "K"]
    if elements is not None:
        frame = frame.loc[frame["element"].isin(list(elements))]
    ids, els, sites, mus, skipped = [], [], [], [], {}
    for row in tqdm(frame.itertuples(index=False), total=len(frame), desc="gridding spectra",
                    unit="spectrum", disable=len(frame) < 500):
        try:
            mu = to_grid(row.energy, row.mu, row.element,
                         source=f"{snapshot.path} {row.material_id} {row.element}")
        except SpectrumError:
            skipped[row.element] = skipped.get(row.element, 0) + 1
            continue
        if kind == "site":
            pooled = np.array([int(row.site_index)], dtype=np.int64)
        else:
            pooled = _element_sites(snapshot.structure(row.material_id), row.element)
        ids.append(str(row.material_id))
        els.append(str(row.element))
        sites.append(pooled)
        mus.append(mu)
    if skipped:
        logger.info("%s: %d spectra outside their element's grid, left out: %s", snapshot.path,
                    sum(skipped.values()), dict(sorted(skipped.items())))
    mu_arr = np.array(mus, dtype=np.float32).reshape(-1, N_GRID_POINTS)
    return SiteTargets(np.array(ids, dtype=object), np.array(els, dtype=object), sites, mu_arr,
                       kind, skipped)


def average_targets(snapshot, material_id: Sequence[str], element: Sequence[str],
                    mu: np.ndarray) -> SiteTargets:
    """Targets of site-averaged spectra already on the grid (e.g. the XAStruct table's rows):
    every site of the element is pooled."""
    sites = [_element_sites(snapshot.structure(m), e)
             for m, e in zip(material_id, element, strict=True)]
    return SiteTargets(np.asarray(material_id, dtype=object), np.asarray(element, dtype=object),
                       sites, np.asarray(mu, dtype=np.float32), "average")


def build_graphs(snapshot, material_ids: Sequence[str], *, progress: bool = False
                 ) -> dict[str, CrystalGraph]:
    """Crystal graphs of the snapshot's materials ``material_ids`` (about 1 ms each)."""
    return {m: build_graph(snapshot.structure(m))
            for m in tqdm(sorted(set(material_ids)), desc="crystal graphs", unit="material",
                          disable=not progress)}


@dataclass
class _Batcher:
    """Targets grouped by material, turned into batches of graphs."""

    graphs: Mapping[str, CrystalGraph]
    targets: SiteTargets

    def __post_init__(self) -> None:
        self.materials = np.array(sorted(set(self.targets.material_id.tolist())), dtype=object)
        index = {m: i for i, m in enumerate(self.materials)}
        self.rows_of: list[list[int]] = [[] for _ in self.materials]
        for row, m in enumerate(self.targets.material_id):
            self.rows_of[index[m]].append(row)
        self.mu = torch.from_numpy(np.asarray(self.targets.mu, dtype=np.float32))

    def batch(self, material_rows: Sequence[int]) -> tuple[GraphBatch, Tensor, Tensor, Tensor]:
        """Graphs of materials ``material_rows`` and their targets.

        Returns:
            ``(graphs, site_index, pool_row, target_rows)``.
        """
        mats = [self.materials[i] for i in material_rows]
        batch = batch_graphs([self.graphs[m] for m in mats])
        offsets = batch.offsets.numpy()
        site_index, pool_row, rows = [], [], []
        for g, i in enumerate(material_rows):
            for row in self.rows_of[i]:
                sites = self.targets.sites[row]
                site_index.append(sites + offsets[g])
                pool_row.append(np.full(len(sites), len(rows)))
                rows.append(row)
        return (batch, torch.from_numpy(np.concatenate(site_index)),
                torch.from_numpy(np.concatenate(pool_row)), torch.tensor(rows))


def predict_targets(model: CGXASNet, graphs: Mapping[str, CrystalGraph], targets: SiteTargets,
                    *, batch_size: int = 64) -> np.ndarray:
    """Model spectra of every target row, shape ``(m, N_GRID_POINTS)``."""
    batcher = _Batcher(graphs, targets)
    out = np.zeros((len(targets), model.model_args["n_points"]), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(batcher.materials), batch_size):
            mats = list(range(start, min(start + batch_size, len(batcher.materials))))
            batch, site_index, pool_row, rows = batcher.batch(mats)
            out[rows.numpy()] = model(batch, site_index, pool_row, len(rows)).numpy()
    return out


@dataclass(frozen=True)
class CGXASSettings:
    """Training settings of :func:`train_cgxas`.

    Attributes:
        hidden, n_conv, decoder_depth: Architecture (:class:`CGXASNet`).
        max_epochs, patience: Early stopping on the validation RSE.
        lr, weight_decay: AdamW.
        batch_size: Materials per mini-batch.
    """

    hidden: int = 96
    n_conv: int = 3
    decoder_depth: int = 4
    max_epochs: int = 150
    patience: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 16


def train_cgxas(graphs: Mapping[str, CrystalGraph], train: SiteTargets, val: SiteTargets, *,
                settings: CGXASSettings = CGXASSettings(), seed: int = 0,
                model: CGXASNet | None = None) -> tuple[CGXASNet, EpochLoop]:
    """Train (or continue training) the universal model.

    Args:
        graphs: Crystal graph of every material of ``train`` and ``val``.
        train, val: Targets (validation: early stopping only).
        settings: Training settings.
        seed: Seeds the initial weights and the batch order.
        model: Start from this model instead of a new one.

    Returns:
        The model (best validation weights, eval mode) and the loop record (``history`` with
        ``train_loss`` and ``val_loss`` per epoch, both RSE).
    """
    torch.manual_seed(seed)
    if model is None:
        model = CGXASNet(settings.hidden, settings.n_conv, settings.decoder_depth)
    train_b, val_b = _Batcher(graphs, train), _Batcher(graphs, val)
    val_all = list(range(len(val_b.materials)))
    val_batch = val_b.batch(val_all)

    def loss_of(rows: Tensor) -> Tensor:
        if model.training:
            batch, site_index, pool_row, target = train_b.batch(rows.tolist())
            mu = train_b.mu[target]
        else:
            batch, site_index, pool_row, target = val_batch
            mu = val_b.mu[target]
        return rse_loss(model(batch, site_index, pool_row, len(target)), mu)

    loop = fit_network(model, loss_of, np.arange(len(train_b.materials)), np.array(val_all),
                       seed=seed, max_epochs=settings.max_epochs, patience=settings.patience,
                       lr=settings.lr, batch_size=settings.batch_size,
                       weight_decay=settings.weight_decay, desc="CGXAS universal")
    logger.info("CGXAS: best epoch %d of %d, val RSE %.4f, %.1f s", loop.best_epoch,
                len(loop.history), min(h["val_loss"] for h in loop.history),
                loop.train_seconds)
    return model, loop


# --------------------------------------------------------------------------------------------
# Forward-model interface
# --------------------------------------------------------------------------------------------


class CGXASForward:
    """The universal model as a forward model (``predict_structures(structures, element)``).

    Args:
        model: The trained network.
        metadata: Provenance (snapshot, split, seed, elements seen in training, metrics).
        calibration: Optional energy calibration applied to every prediction
            (:class:`~specfusion_lib.xas_structure.calibration.EnergyCalibration`).
    """

    def __init__(self, model: CGXASNet, metadata: Mapping[str, Any] | None = None,
                 calibration: nn.Module | None = None) -> None:
        self.model = model.eval()
        self.metadata = dict(metadata or {})
        self.calibration = calibration
        self.elements = tuple(self.metadata.get("elements", ()))

    def _check(self, element: str) -> str:
        symbol = grid_window(element).element
        if self.elements and symbol not in self.elements:
            raise ElementError(f"the CGXAS model was trained on {', '.join(self.elements)}; "
                               f"{symbol} K edges were not among them")
        return symbol

    def site_vectors(self, structures: Sequence[Structure]) -> list[np.ndarray]:
        """Latent site vectors of every site of each structure, ``(n_sites, hidden)`` each."""
        out = []
        with torch.no_grad():
            for structure in structures:
                batch = batch_graphs([build_graph(structure)])
                out.append(self.model.site_vectors(batch).numpy())
        return out

    def predict_structures(self, structures: Sequence[Structure], element: str) -> np.ndarray:
        """Spectra of ``element`` in each structure, shape ``(n, N_GRID_POINTS)`` on
        ``grid_window(element).energies``.

        Raises:
            ElementError: The element is not in a structure, or the model never saw it.
        """
        symbol = self._check(element)
        if not structures:
            return np.zeros((0, N_GRID_POINTS))
        graphs, sites = {}, []
        for i, structure in enumerate(structures):
            idx = _element_sites(structure, symbol)
            if not len(idx):
                raise ElementError(f"structure {i} ({structure.composition.reduced_formula}) "
                                   f"has no {symbol} site")
            graphs[str(i)] = build_graph(structure)
            sites.append(idx)
        targets = SiteTargets(np.array([str(i) for i in range(len(structures))], dtype=object),
                              np.array([symbol] * len(structures), dtype=object), sites,
                              np.zeros((len(structures), N_GRID_POINTS), np.float32), "average")
        pred = predict_targets(self.model, graphs, targets)
        if self.calibration is not None:
            with torch.no_grad():
                pred = self.calibration(torch.from_numpy(pred), [symbol] * len(pred)).numpy()
        return pred

    def save(self, path: str | Path) -> Path:
        """Write the network (and calibration, if any) as checkpoints with metadata."""
        from specfusion_lib.training.checkpoints import save_checkpoint

        target = Path(path)
        save_checkpoint(target, self.model, {**self.metadata, "kind": "CGXAS universal"})
        if self.calibration is not None:
            save_checkpoint(target.with_name(target.stem + "-calibration.pt"),
                            self.calibration, {**self.metadata, "kind": "CGXAS calibration"})
        return target

    @classmethod
    def load(cls, path: str | Path) -> CGXASForward:
        """Read a model written by :meth:`save` (its calibration too, when present).

        Raises:
            InputFileError: Missing, corrupted or foreign checkpoint (named).
        """
        from specfusion_lib.training.checkpoints import load

        model, meta = load(path)
        if not isinstance(model, CGXASNet):
            raise InputFileError(f"{path}: holds a {type(model).__name__}, not a CGXAS model")
        calibration = None
        calib_path = Path(path).with_name(Path(path).stem + "-calibration.pt")
        if calib_path.is_file():
            calibration, _ = load(calib_path)
        return cls(model, meta, calibration)
