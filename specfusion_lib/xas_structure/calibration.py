"""Calibrating the universal model to measured spectra (CGXAS §C, transfer learning).

A model trained on FEFF10 spectra predicts FEFF10's view of a compound: its absolute edge
energies are off by several eV (FEFF's Fermi level; the `fast` preset has no SCF and
hardly any chemical shift) and its white lines are sharper than measured ones. CGXAS fine-tunes
the pretrained network on a few dozen measured spectra of known structure; we do the same
with the measured TM K-edge spectra whose compound is in the snapshot, in four variants:

``a_last_layer``
    Only the decoder's last linear layer is trained.
``b_layerwise``
    The decoder is unfrozen layer by layer from the output backwards, a fixed number of
    epochs per stage (CGXAS: "optimized layer by layer", 30 epochs per layer).
``c_shift_broaden``
    The network is frozen; an :class:`EnergyCalibration` learns an energy shift and a
    Gaussian broadening (each a shared value plus a per-element deviation pulled to zero by
    a ridge penalty, so an element with one or no calibration spectrum falls back to the
    shared value).
``d_everything``
    Every weight of the network is trained (smaller learning rate).

Loss: RSE over the grid points the measured spectrum covers (:func:`~.cgxas.rse_loss`);
Adam, full batch, a fixed number of epochs per variant (no early stopping: there is no data
to spare for it). The structure of a measured compound is the snapshot compound it is matched
to (:func:`specfusion_lib.measured.study.match_measured`); its spectrum is put on the
element's grid with :func:`~.grid.to_grid_partial` (the ``experiment.csv`` spectra cover
about 58 eV, 73 % of the grid).

Evaluation (:func:`loco_calibration`): **leave one compound out** (records of the same reduced
formula leave together). For each held-out compound the variant is chosen by an inner
cross-validation over the remaining compounds only (grouped K-fold, criterion: mean edge-energy
error), refitted on all of them and applied to the held-out compound: a nested protocol in
which the scored compound takes part neither in the fine-tuning nor in the choice. Every
fixed variant is also scored by plain leave-one-compound-out beside it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure
from torch import Tensor, nn
from tqdm.auto import tqdm

from specfusion_lib.core.errors import SpectrumError
from specfusion_lib.xas_structure.cgxas import (
    CGXASNet,
    SiteTargets,
    _Batcher,
    _element_sites,
    build_graph,
    pool_sites,
    rse_loss,
)
from specfusion_lib.xas_structure.crystal_graph import CrystalGraph, GraphBatch
from specfusion_lib.xas_structure.grid import (
    N_GRID_POINTS,
    WINDOW_SPAN_EV,
    edge_energy,
    grid_window,
    to_grid_partial,
)
from specfusion_lib.xas_structure.metrics import spectrum_metrics

__all__ = [
    "VARIANTS",
    "Calibrated",
    "CalibrationResult",
    "CalibrationSettings",
    "EnergyCalibration",
    "MeasuredSet",
    "calibration_summary",
    "choose_variant",
    "fit_calibration",
    "loco_calibration",
    "measured_set",
]

logger = logging.getLogger(__name__)

#: The calibration variants (module docstring).
VARIANTS = ("a_last_layer", "b_layerwise", "c_shift_broaden", "d_everything")
_STEP_EV = WINDOW_SPAN_EV / (N_GRID_POINTS - 1)


class EnergyCalibration(nn.Module):
    """Energy shift and Gaussian broadening of predicted spectra, per element.

    ``shift(el) = s + δs_el`` (eV, positive moves the spectrum up in energy) and
    ``σ(el) = softplus(b + δb_el)`` (eV); elements not in ``elements`` use ``s`` and ``b``.

    Args:
        elements: Elements with their own deviation.
        kernel_half_width: Half width of the broadening kernel in grid points.
    """

    def __init__(self, elements: Sequence[str] = (), kernel_half_width: int = 12) -> None:
        super().__init__()
        self.model_args = {"elements": list(elements), "kernel_half_width": kernel_half_width}
        self.index = {el: i for i, el in enumerate(elements)}
        self.shift = nn.Parameter(torch.zeros(1))
        self.element_shift = nn.Parameter(torch.zeros(len(elements)))
        self.log_width = nn.Parameter(torch.full((1,), -2.0))
        self.element_log_width = nn.Parameter(torch.zeros(len(elements)))
        self.register_buffer("offsets", torch.arange(-kernel_half_width,
                                                     kernel_half_width + 1).float())

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments."""
        return dict(self.model_args)

    def _row_parameters(self, elements: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Shift and σ (eV) of every row, shape ``(m,)`` each."""
        idx = torch.tensor([self.index.get(str(e), -1) for e in elements])
        known = (idx >= 0).to(self.shift.dtype)
        safe = idx.clamp(min=0)
        dev_shift = self.element_shift[safe] * known if len(self.index) else torch.zeros(len(idx))
        dev_width = (self.element_log_width[safe] * known if len(self.index)
                     else torch.zeros(len(idx)))
        shift = self.shift + dev_shift
        sigma = nn.functional.softplus(self.log_width + dev_width)
        return shift, sigma

    def parameters_of(self, element: str) -> tuple[float, float]:
        """``(shift_eV, sigma_eV)`` of one element."""
        with torch.no_grad():
            shift, sigma = self._row_parameters([element])
        return float(shift[0]), float(sigma[0])

    def penalty(self) -> Tensor:
        """Ridge penalty of the per-element deviations."""
        if not len(self.index):
            return torch.zeros(())
        return 0.01 * (self.element_shift ** 2).mean() + (self.element_log_width ** 2).mean()

    def forward(self, spectra: Tensor, elements: Sequence[str]) -> Tensor:
        """Spectra ``(m, n)`` on their elements' grids → calibrated ``(m, n)``."""
        m, n = spectra.shape
        shift, sigma = self._row_parameters(elements)
        x = (torch.arange(n, dtype=spectra.dtype)[None, :] - (shift / _STEP_EV)[:, None]
             ).clamp(0, n - 1)
        lo = x.floor().long().clamp(max=n - 2)
        frac = x - lo
        shifted = spectra.gather(1, lo) * (1 - frac) + spectra.gather(1, lo + 1) * frac
        kernel = torch.exp(-0.5 * (self.offsets[None, :] * _STEP_EV
                                   / sigma.clamp(min=1e-3)[:, None]) ** 2)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        pad = len(self.offsets) // 2
        padded = torch.cat([shifted[:, :1].expand(m, pad), shifted,
                            shifted[:, -1:].expand(m, pad)], dim=1)
        windows = padded.unfold(1, len(self.offsets), 1)  # (m, n, 2 pad + 1)
        return (windows * kernel[:, None, :]).sum(dim=2)


@dataclass
class MeasuredSet:
    """Measured spectra of known structure, on the grid.

    Attributes:
        key: Record key of every row.
        formula: Reduced formula (the unit left out together).
        element: Absorbing element.
        material_id: Snapshot compound whose structure stands for the sample.
        structures: Those structures.
        mu: Normalised measured μ on the grid, shape ``(m, N_GRID_POINTS)``.
        covered: Grid points inside the data, shape ``(m, N_GRID_POINTS)``.
        excluded: Record key → why it is not in the set.
        graphs: Crystal graph of every structure (built on first use).
    """

    key: np.ndarray
    formula: np.ndarray
    element: np.ndarray
    material_id: np.ndarray
    structures: list[Structure]
    mu: np.ndarray
    covered: np.ndarray
    excluded: dict[str, str] = field(default_factory=dict)
    graphs: list[CrystalGraph] | None = None

    def __len__(self) -> int:
        return len(self.key)

    def crystal_graphs(self) -> list[CrystalGraph]:
        """The crystal graph of every row (built once)."""
        if self.graphs is None:
            self.graphs = [build_graph(s) for s in self.structures]
        return self.graphs

    def subset(self, rows: np.ndarray | Sequence[int]) -> MeasuredSet:
        """Rows ``rows`` (indices)."""
        idx = np.asarray(rows, dtype=int)
        graphs = self.crystal_graphs()
        return MeasuredSet(self.key[idx], self.formula[idx], self.element[idx],
                           self.material_id[idx], [self.structures[i] for i in idx],
                           self.mu[idx], self.covered[idx], dict(self.excluded),
                           [graphs[i] for i in idx])

    def energies(self) -> np.ndarray:
        """The grid of every row, shape ``(m, N_GRID_POINTS)``."""
        return np.array([grid_window(e).energies for e in self.element])

    def edges(self) -> np.ndarray:
        """Measured edge energies (eV), shape ``(m,)``."""
        return np.array([edge_energy(m, e) for m, e in zip(self.mu, self.energies(),
                                                           strict=True)])


def measured_set(records, snapshot, matches: Mapping[str, Any]) -> MeasuredSet:
    """The measured TM K-edge records whose compound is in ``snapshot``, on the grid.

    Args:
        records: :class:`~specfusion_lib.data.measured.MeasuredRecord` objects.
        snapshot: The snapshot (structures).
        matches: Record key → :class:`~specfusion_lib.measured.study.SnapshotMatch`.

    Returns:
        The set; records left out (no compound, not a TM, spectrum outside the grid) are
        listed in ``excluded`` with the reason.
    """
    rows: dict[str, list] = {k: [] for k in ("key", "formula", "element", "material_id",
                                             "structures", "mu", "covered")}
    excluded = {}
    for rec in records:
        match = matches.get(rec.key)
        if not rec.is_transition_metal:
            excluded[rec.key] = f"{rec.element} is not a transition metal"
            continue
        if match is None or not match.matched:
            excluded[rec.key] = "no snapshot compound with this formula"
            continue
        try:
            mu, covered = to_grid_partial(rec.spectrum.energy, rec.spectrum.mu, rec.element,
                                          source=rec.key)
        except SpectrumError as exc:
            excluded[rec.key] = str(exc)
            continue
        for name, value in (("key", rec.key), ("formula", rec.reduced_formula),
                            ("element", rec.element), ("material_id", match.material_id),
                            ("structures", snapshot.structure(match.material_id)),
                            ("mu", mu), ("covered", covered)):
            rows[name].append(value)
    for key, reason in excluded.items():
        logger.info("measured record %s left out of the calibration set: %s", key, reason)
    return MeasuredSet(np.array(rows["key"], dtype=object), np.array(rows["formula"], dtype=object),
                       np.array(rows["element"], dtype=object),
                       np.array(rows["material_id"], dtype=object), rows["structures"],
                       np.array(rows["mu"], dtype=np.float32).reshape(-1, N_GRID_POINTS),
                       np.array(rows["covered"], dtype=bool).reshape(-1, N_GRID_POINTS),
                       excluded)


@dataclass(frozen=True)
class CalibrationSettings:
    """Epochs and learning rates of the variants (Adam, full batch).

    Attributes:
        epochs: Epochs of ``a`` and ``c``.
        epochs_everything: Epochs of ``d``.
        epochs_per_layer: Epochs per unfrozen decoder layer of ``b``.
        lr: Learning rate of ``a`` and ``b``.
        lr_everything: Learning rate of ``d``.
        lr_shift: Learning rate of ``c``.
        inner_folds: Folds of the inner (variant-choosing) cross-validation.
    """

    epochs: int = 150
    epochs_everything: int = 50
    epochs_per_layer: int = 40
    lr: float = 1e-3
    lr_everything: float = 6e-4
    lr_shift: float = 0.05
    inner_folds: int = 4


class Calibrated:
    """A fitted calibration: predicts measured-like spectra for structures.

    Args:
        model: The (possibly fine-tuned) network.
        energy: The energy calibration, or ``None``.
        variant: Variant name.
    """

    def __init__(self, model: CGXASNet, energy: EnergyCalibration | None, variant: str) -> None:
        self.model = model.eval()
        self.energy = energy
        self.variant = variant

    def apply(self, spectra: np.ndarray, elements: Sequence[str]) -> np.ndarray:
        """The energy calibration (if any) applied to the network's spectra ``(m, n)``."""
        if self.energy is None:
            return spectra
        with torch.no_grad():
            return self.energy(torch.from_numpy(np.asarray(spectra, np.float32)),
                               list(elements)).numpy()

    def predict(self, data: MeasuredSet) -> np.ndarray:
        """Spectra of every row, shape ``(m, N_GRID_POINTS)``."""
        with torch.no_grad():
            pred = _forward(self.model, data)
            if self.energy is not None:
                pred = self.energy(pred, list(data.element))
        return pred.numpy()


def _batch(data: MeasuredSet) -> tuple[GraphBatch, Tensor, Tensor, Tensor]:
    """One graph batch of every row: ``(graphs, site_index, pool_row, rows)`` as
    :meth:`~.cgxas._Batcher.batch` gives them (each row pools every site of its element)."""
    ids = np.array([f"{i}" for i in range(len(data))], dtype=object)
    graphs = dict(zip(ids, data.crystal_graphs(), strict=True))
    sites = [_element_sites(s, e) for s, e in zip(data.structures, data.element, strict=True)]
    batcher = _Batcher(graphs, SiteTargets(ids, data.element.copy(), sites, data.mu, "average"))
    return batcher.batch(list(range(len(batcher.materials))))


def _forward(model: CGXASNet, data: MeasuredSet) -> Tensor:
    batch, site_index, pool_row, rows = _batch(data)
    pred = model(batch, site_index, pool_row, len(rows))
    out = torch.empty_like(pred)
    out[rows] = pred
    return out


def _train(params: list[nn.Parameter], loss: Any, epochs: int, lr: float) -> None:
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()


def fit_calibration(model: CGXASNet, data: MeasuredSet, variant: str, *,
                    settings: CalibrationSettings = CalibrationSettings(), seed: int = 0
                    ) -> Calibrated:
    """Fit one calibration variant on ``data`` (the pretrained ``model`` is not modified).

    Raises:
        ValueError: Unknown variant or empty data.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown calibration variant {variant!r}; known: {VARIANTS}")
    if not len(data):
        raise ValueError("no measured spectra to calibrate on")
    torch.manual_seed(seed)
    tuned = copy.deepcopy(model).eval()  # eval: no dropout / norm statistics to move
    for p in tuned.parameters():
        p.requires_grad_(False)
    target = torch.from_numpy(data.mu)
    mask = torch.from_numpy(data.covered)
    elements = list(data.element)
    if variant == "c_shift_broaden":
        with torch.no_grad():
            fixed = _forward(tuned, data)
        energy = EnergyCalibration(sorted(set(elements)))
        _train(list(energy.parameters()),
               lambda: rse_loss(energy(fixed, elements), target, mask) + energy.penalty(),
               settings.epochs, settings.lr_shift)
        return Calibrated(tuned, energy.eval(), variant)
    batch, site_index, pool_row, rows = _batch(data)
    target_rows, mask_rows = target[rows], mask[rows]
    if variant == "d_everything":
        params = list(tuned.parameters())
        for p in params:
            p.requires_grad_(True)
        _train(params, lambda: rse_loss(tuned(batch, site_index, pool_row, len(rows)),
                                        target_rows, mask_rows),
               settings.epochs_everything, settings.lr_everything)
        return Calibrated(tuned, None, variant)
    # a / b: the encoder is frozen, so the site vectors are fixed: train the decoder on them
    with torch.no_grad():
        vectors = tuned.site_vectors(batch)[site_index]

    def loss() -> Tensor:
        return rse_loss(pool_sites(tuned.decode(vectors), pool_row, len(rows)), target_rows,
                        mask_rows)

    layers = list(tuned.decoder)
    if variant == "a_last_layer":
        for p in layers[-1].parameters():
            p.requires_grad_(True)
        _train(list(layers[-1].parameters()), loss, settings.epochs, settings.lr)
    else:
        trainable: list[nn.Parameter] = []
        for layer in reversed(layers):
            for p in layer.parameters():
                p.requires_grad_(True)
            trainable.extend(layer.parameters())
            _train(trainable, loss, settings.epochs_per_layer, settings.lr)
    return Calibrated(tuned, None, variant)


def _scores(data: MeasuredSet, pred: np.ndarray) -> pd.DataFrame:
    frame = spectrum_metrics(data.mu, pred, data.energies(), mask=data.covered)
    edges_pred = np.array([edge_energy(p, e) for p, e in zip(pred, data.energies(),
                                                             strict=True)])
    frame.insert(0, "key", data.key)
    frame.insert(1, "formula", data.formula)
    frame.insert(2, "element", data.element)
    frame["edge_measured_ev"] = data.edges()
    frame["edge_predicted_ev"] = edges_pred
    frame["edge_signed_error_ev"] = edges_pred - frame["edge_measured_ev"]
    return frame


def _group_folds(formulas: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    unique = np.array(sorted(set(formulas.tolist())), dtype=object)
    order = np.random.default_rng(seed).permutation(len(unique))
    folds = [set(unique[order[i::k]].tolist()) for i in range(min(k, len(unique)))]
    return [np.flatnonzero([f in fold for f in formulas]) for fold in folds]


def choose_variant(model: CGXASNet, data: MeasuredSet, variants: Sequence[str],
                    settings: CalibrationSettings, seed: int) -> tuple[str, dict[str, float]]:
    """The variant of ``variants`` with the lowest mean edge-energy error in a grouped
    cross-validation over ``data``'s compounds (``settings.inner_folds`` folds); ties go to
    the earlier variant of :data:`VARIANTS`. Returns it and every variant's mean error."""
    scores: dict[str, list[float]] = {v: [] for v in variants}
    for held in _group_folds(data.formula, settings.inner_folds, seed):
        fit_rows = np.setdiff1d(np.arange(len(data)), held)
        if not len(fit_rows):
            continue
        for variant in variants:
            calibrated = fit_calibration(model, data.subset(fit_rows), variant,
                                         settings=settings, seed=seed)
            frame = _scores(data.subset(held), calibrated.predict(data.subset(held)))
            scores[variant].extend(frame["edge_error_ev"].fillna(WINDOW_SPAN_EV).tolist())
    means = {v: float(np.mean(s)) if s else np.inf for v, s in scores.items()}
    return min(variants, key=lambda v: (means[v], VARIANTS.index(v))), means


@dataclass
class CalibrationResult:
    """Scores and held-out predictions of :func:`loco_calibration`.

    Attributes:
        scores: One row per (record, ``variant``): ``variant`` is ``"before"`` (the pretrained
            model), each fixed variant (plain leave-one-compound-out) and ``"nested"`` (the
            variant chosen by the inner cross-validation, named in ``chosen``); the metric
            columns of :func:`~.metrics.spectrum_metrics` plus measured, predicted and signed
            edge energies.
        predictions: ``(variant, record key) → μ`` of the same rows.
    """

    scores: pd.DataFrame
    predictions: dict[tuple[str, str], np.ndarray]


def loco_calibration(model: CGXASNet, data: MeasuredSet, *,
                     variants: Sequence[str] = VARIANTS,
                     settings: CalibrationSettings = CalibrationSettings(), seed: int = 0,
                     nested: bool = True, progress: bool = False) -> CalibrationResult:
    """Leave-one-compound-out scores before and after calibration (module docstring).

    Args:
        model: The pretrained universal model (not modified).
        data: The measured spectra.
        variants: Variants to fit (and to choose from).
        settings: Epochs, learning rates and inner folds.
        seed: Seeds every fit and the inner folds.
        nested: Also run the nested choice (the headline).
        progress: Show a progress bar.
    """
    predictions: dict[tuple[str, str], np.ndarray] = {}

    def scored(subset: MeasuredSet, pred: np.ndarray, variant: str, chosen: str = ""
               ) -> pd.DataFrame:
        for key, row in zip(subset.key, pred, strict=True):
            predictions[(variant, str(key))] = row
        return _scores(subset, pred).assign(variant=variant, chosen=chosen)

    frames = [scored(data, Calibrated(model, None, "before").predict(data), "before")]
    formulas = sorted(set(data.formula.tolist()))
    for formula in tqdm(formulas, desc="leave-one-compound-out", unit="compound",
                        disable=not progress):
        held = np.flatnonzero(data.formula == formula)
        rest = np.setdiff1d(np.arange(len(data)), held)
        held_set, rest_set = data.subset(held), data.subset(rest)
        fitted = {}
        for variant in variants:
            fitted[variant] = fit_calibration(model, rest_set, variant, settings=settings,
                                              seed=seed)
            frames.append(scored(held_set, fitted[variant].predict(held_set), variant))
        if not nested:
            continue
        chosen, _ = choose_variant(model, rest_set, variants, settings, seed)
        frames.append(scored(held_set, fitted[chosen].predict(held_set), "nested", chosen))
    return CalibrationResult(pd.concat(frames, ignore_index=True), predictions)


def calibration_summary(scores: pd.DataFrame, *, min_records: int = 3) -> pd.DataFrame:
    """Mean edge error, RSE and median Pearson per ``variant`` pooled and per element with at
    least ``min_records`` records; ``edge_reduction`` is relative to ``"before"``."""
    rows = []
    for variant, part in scores.groupby("variant", sort=False):
        groups = [("all", part)] + [(el, sub) for el, sub in part.groupby("element")
                                   if len(sub) >= min_records]
        for element, sub in groups:
            rows.append({"variant": variant, "element": element, "n": len(sub),
                         "edge_error_ev": sub["edge_error_ev"].mean(),
                         "edge_signed_error_ev": sub["edge_signed_error_ev"].mean(),
                         "rse": sub["rse"].mean(), "pearson_median": sub["pearson"].median(),
                         "chosen": ", ".join(f"{k} {v}" for k, v in
                                             sub["chosen"].value_counts().items() if k)})
    out = pd.DataFrame(rows)
    before = out.loc[out["variant"] == "before"].set_index("element")["edge_error_ev"]
    out["edge_reduction"] = 1 - out["edge_error_ev"] / out["element"].map(before)
    return out
