"""Crystal system from a powder pattern: data, training, checkpoints and prediction.

The PXRD branch of the paper (main text Fig. 4c,d; SI Fig. S18–S20): a CNN-Transformer
(:class:`~specfusion_lib.models.pxrd_net.PXRDCrystalSystemNet`) classifies simulated
powder patterns into the seven crystal systems
(:data:`~specfusion_lib.data.structure_labels.CRYSTAL_SYSTEMS`).

Data (:func:`crystal_system_data`)
    Every material of the snapshot with a structure and a ``crystal_system`` label (spglib,
    see :mod:`specfusion_lib.data.structure_labels`). Reflections are simulated once and cached
    (:func:`specfusion_lib.crystal_system.patterns.simulate_sticks`); the profile's
    ``max_pxrd_materials`` cap keeps a seeded (seed 0) random subset (materials named in
    ``keep_ids`` always stay in it). Labels are indices into the seven systems, so a
    class absent from a small snapshot simply has no examples; the network always has seven
    outputs.

Protocol (:func:`train_crystal_system_model`, SI §S1.1 as for SpecFusionNet)
    70 / 15 / 15 % split by material (:func:`~specfusion_lib.training.splits.split_indices`, seeded
    with the training seed); Adam with the profile's learning rate and batch size; cross-entropy;
    early stopping on the validation loss with the profile's patience and epoch cap, best
    weights restored. Training patterns are rendered anew every epoch from a generator seeded
    with ``(seed, epoch)`` under
    :data:`~specfusion_lib.crystal_system.patterns.TRAINING_CONDITIONS` (random peak widths,
    per-peak intensities, zero shift, texture, background and noise), so the network never memorises
    one noisy copy. When the training part holds fewer patterns than the profile's
    ``min_patterns_per_epoch``, every epoch renders :func:`epoch_copies` independently augmented
    copies of each training pattern: with a few hundred materials one pass is only a handful of
    optimiser steps, and early stopping would otherwise give up before the network has left its
    initial plateau (seen in SI Fig. S21's PXRD-only model on 225 materials: best epoch 2, every
    test pattern called cubic). Validation and test patterns are rendered once with fixed
    seeds under :data:`~specfusion_lib.crystal_system.patterns.MEASUREMENT_CONDITIONS` (the
    simulator's default widths, 2 % noise). Metrics on the test part: accuracy, macro-F1 and the
    majority-class baseline of the training part.

Checkpoints
    ``<checkpoint_dir>/pxrd-crystal-system[-<tag>]-seed<N>.pt`` (+ ``.json``) through
    :func:`~specfusion_lib.training.checkpoints.save_checkpoint`; the metadata holds the snapshot id
    and file checksums, the split, the grid and wavelength, the augmentation settings, the metrics
    and the training history. A finished checkpoint matching the snapshot, profile, seed and
    hyper-parameters is loaded instead of retrained. The file names do not match the
    ``<task>-seed<N>.pt`` pattern of :class:`specfusion_lib.properties.predict.Predictor`, so XANES
    predictions never load a PXRD model by mistake.

Prediction (:class:`CrystalSystemPredictor`)
    A measured or simulated pattern (:class:`~specfusion_lib.spectra.pxrd.PXRDPattern`, e.g.
    from :func:`~specfusion_lib.spectra.pxrd.read_pattern`) is converted to the model's
    wavelength at constant d and interpolated onto its grid
    (:func:`~specfusion_lib.spectra.pxrd.to_grid`, at least half of 10–80° covered), scaled to
    a maximum of 1 and classified; several seeds are averaged. The command line is
    ``specfusion predict-crystal-system pattern.xy``
    (:func:`specfusion_lib.cli.crystal_system.add_predict_crystal_system_parser`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from specfusion_lib.core.errors import ConfigurationError, InputFileError
from specfusion_lib.core.profiles import Profile, get_profile
from specfusion_lib.crystal_system.patterns import (
    MEASUREMENT_CONDITIONS,
    TRAINING_CONDITIONS,
    PatternConditions,
    StickPatterns,
    simulate_sticks,
)
from specfusion_lib.data.families import families_of
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.models.pxrd_net import PXRDCrystalSystemNet
from specfusion_lib.spectra import pxrd
from specfusion_lib.training.checkpoints import (
    checkpoint_file,
    jsonable,
    load,
    load_matching_checkpoint,
    profile_metadata,
    save_checkpoint,
    snapshot_metadata,
)
from specfusion_lib.training.loop import (
    batched_logits,
    cpu_threads,
    fit_classifier,
    resolve_device,
)
from specfusion_lib.training.metrics import (
    baseline_metrics,
    metrics_from_table,
    prediction_table,
)
from specfusion_lib.training.splits import capped_rows, resolve_split, split_groups, split_ids

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "CHECKPOINT_STEM",
    "CPU_THREADS",
    "CrystalSystemData",
    "CrystalSystemPredictor",
    "CrystalSystemRun",
    "checkpoint_path",
    "confusion_table",
    "crystal_system_data",
    "epoch_copies",
    "per_class_table",
    "predict_crystal_system",
    "train_crystal_system_model",
    "train_crystal_system_seeds",
    "training_rows",
]


#: File stem of the PXRD crystal-system checkpoints.
CHECKPOINT_STEM = "pxrd-crystal-system"
_STREAM_VAL, _STREAM_TEST, _STREAM_TRAIN, _STREAM_BASELINE = 1, 2, 3, 4  # random streams
_EVAL_BATCH = 256
#: Torch intra-op threads while training / predicting on the CPU; ``None`` keeps torch's
#: setting (one thread per physical core). Measured with ``benchmarks/pxrd.py`` on the 2-core
#: reference machine (torch 2.13, 2026-12-06): two threads train 864 patterns/s (671 with the
#: per-epoch rendering) against 623 (518) with one, and predict one pattern in 5.1 instead
#: of 5.8 ms. (An earlier measurement, with an earlier version of the network and the
#: benchmark, had one thread four times faster, 317 vs 75 patterns/s; it no longer holds.)
CPU_THREADS: int | None = None
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_STEM}-seed(\d+)\.pt$")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CrystalSystemData:
    """Reflections and crystal-system labels of the labelled materials.

    Attributes:
        sticks: Reflections of the ``N`` labelled materials.
        y: ``(N,)`` int64, index into :data:`~specfusion_lib.data.structure_labels.CRYSTAL_SYSTEMS`.
        excluded: Reason → number of materials left out (no structure, label absent, ...).
        families: Structure family of every material (the split key,
            :mod:`specfusion_lib.data.families`; ``None`` if unknown).
    """

    sticks: StickPatterns
    y: np.ndarray
    excluded: Mapping[str, int] = field(default_factory=dict)
    families: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.y.shape != (len(self.sticks),):
            raise ConfigurationError(f"y must have shape ({len(self.sticks)},), "
                                     f"got {self.y.shape}")
        if self.families is not None and len(self.families) != len(self.sticks):
            raise ConfigurationError(f"families must have {len(self.sticks)} entries, "
                                     f"got {len(self.families)}")

    def __len__(self) -> int:
        return len(self.sticks)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The seven crystal systems (index order of :attr:`y`)."""
        return CRYSTAL_SYSTEMS

    @property
    def material_ids(self) -> tuple[str, ...]:
        """Material ids, row order."""
        return self.sticks.material_ids

    @property
    def grid(self) -> np.ndarray:
        """2θ grid of the patterns, degrees."""
        return self.sticks.grid

    def subset(self, indices: Sequence[int] | np.ndarray) -> CrystalSystemData:
        """The materials at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        families = None if self.families is None else tuple(self.families[i] for i in idx)
        return CrystalSystemData(self.sticks.subset(idx), self.y[idx], dict(self.excluded),
                                 families)

    def label_counts(self, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, int]:
        """Materials per crystal system (all seven, zeros included)."""
        y = self.y if indices is None else self.y[np.asarray(indices, dtype=np.int64)]
        return {c: int((y == i).sum()) for i, c in enumerate(CRYSTAL_SYSTEMS)}

    def measured_patterns(self, indices: Sequence[int] | np.ndarray, seed: int, stream: int,
                          conditions: PatternConditions = MEASUREMENT_CONDITIONS) -> np.ndarray:
        """Patterns under fixed, seeded conditions (validation / test): ``(n, L)`` float32."""
        rng = np.random.default_rng([int(seed), int(stream)])
        return self.sticks.render(indices, rng, conditions)


def crystal_system_data(
    snapshot: Snapshot,
    profile: Profile | str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    material_ids: Sequence[str] | None = None,
    keep_ids: Sequence[str] = (),
    progress: bool = False,
) -> CrystalSystemData:
    """Reflections and labels of every labelled material of a snapshot.

    Args:
        snapshot: A loaded snapshot.
        profile: Applies the profile's ``max_pxrd_materials`` cap (seeded subset); ``None``:
            no cap.
        cache_dir: Stick cache folder (see
            :func:`~specfusion_lib.crystal_system.patterns.simulate_sticks`).
        material_ids: Only these materials, in this order (no cap applied).
        keep_ids: Materials that stay in a capped subset (e.g. compounds that must be held
            out for a benchmark); the rest of the cap is a seeded draw from the others.
        progress: Show a progress bar while simulating.

    Returns:
        A :class:`CrystalSystemData` (possibly empty).
    """
    sticks = simulate_sticks(snapshot, cache_dir=cache_dir, progress=progress)
    excluded: dict[str, int] = {}
    if sticks.skipped:
        excluded["pattern not simulated"] = len(sticks.skipped)
    if material_ids is not None:
        have = set(sticks.material_ids)
        missing = [m for m in material_ids if m not in have]
        if missing:
            excluded["pattern not simulated"] = len(missing)
        sticks = sticks.subset(sticks.index_of([m for m in material_ids if m in have]))
    index = {c: i for i, c in enumerate(CRYSTAL_SYSTEMS)}
    keep = [i for i, c in enumerate(sticks.crystal_systems) if c in index]
    if len(keep) < len(sticks):
        excluded["label absent"] = len(sticks) - len(keep)
    sticks = sticks.subset(keep)
    y = np.array([index[c] for c in sticks.crystal_systems], dtype=np.int64)
    data = CrystalSystemData(sticks, y, excluded, families_of(snapshot, sticks.material_ids))
    prof = get_profile(profile) if isinstance(profile, str) else profile
    cap = None if (prof is None or material_ids is not None) else prof.max_pxrd_materials
    if cap is not None and len(data) > cap:
        data = data.subset(capped_rows(data.material_ids, int(cap), keep_ids))
    return data


# --------------------------------------------------------------------------------------------
# A generic early-stopping loop (also used by the fused XANES+PXRD model)
# --------------------------------------------------------------------------------------------







# --------------------------------------------------------------------------------------------
# Training run
# --------------------------------------------------------------------------------------------


@dataclass
class CrystalSystemRun:
    """One trained PXRD crystal-system model (one seed).

    Attributes:
        model: The network (best validation epoch, eval mode).
        seed: Training (and split) seed.
        metrics: Test ``accuracy``, ``f1_macro`` (over the classes present), ``n_test``.
        baseline: The majority class of the training part on the same test part.
        split: ``{"train": ids, "val": ids, "test": ids}``.
        predictions: Test predictions: ``material_id``, ``formula``, ``y_true``, ``y_pred``
            and one probability column per crystal system.
        history: Per epoch losses and validation accuracy.
        best_epoch: Epoch whose weights were kept.
        epochs_run: Epochs trained.
        metadata: Everything stored with the checkpoint.
        data: The patterns the run was trained on (for baselines and noise curves).
        split_indices: ``(train, val, test)`` row indices into ``data``.
        test_patterns: ``(N_test, L)`` the test patterns as rendered (seeded).
        checkpoint: Checkpoint path, if written.
        train_seconds: Optimisation wall time.
        samples_per_second: Training patterns per second.
        resumed: Loaded from an existing checkpoint instead of trained.
    """

    model: PXRDCrystalSystemNet
    seed: int
    metrics: dict[str, float]
    baseline: dict[str, float]
    split: dict[str, list[str]]
    predictions: pd.DataFrame
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    metadata: dict[str, Any]
    data: CrystalSystemData
    split_indices: tuple[np.ndarray, np.ndarray, np.ndarray]
    test_patterns: np.ndarray
    checkpoint: Path | None = None
    train_seconds: float = math.nan
    samples_per_second: float = math.nan
    resumed: bool = False

    @property
    def class_names(self) -> tuple[str, ...]:
        """The seven crystal systems."""
        return CRYSTAL_SYSTEMS

    def confusion_matrix(self) -> pd.DataFrame:
        """Test counts, true classes as rows, predicted as columns (all seven systems)."""
        return confusion_table(self.predictions["y_true"], self.predictions["y_pred"])

    def per_class_accuracy(self) -> pd.DataFrame:
        """Per crystal system: ``n_train``, ``n_test``, ``correct``, ``accuracy`` (recall;
        NaN where the test part has no example)."""
        return per_class_table(self.predictions["y_true"], self.predictions["y_pred"],
                               self.data.label_counts(self.split_indices[0]))


def confusion_table(y_true: Sequence[str], y_pred: Sequence[str]) -> pd.DataFrame:
    """Confusion counts over the seven crystal systems (rows true, columns predicted)."""
    table = pd.crosstab(pd.Categorical(list(y_true), categories=list(CRYSTAL_SYSTEMS)),
                        pd.Categorical(list(y_pred), categories=list(CRYSTAL_SYSTEMS)),
                        dropna=False)
    table.index.name, table.columns.name = "true", "predicted"
    return table.astype(int)


def per_class_table(y_true: Sequence[str], y_pred: Sequence[str],
                    train_counts: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Per crystal system: test count, correct predictions and accuracy (= recall)."""
    t, p = np.asarray(list(y_true), dtype=object), np.asarray(list(y_pred), dtype=object)
    rows = []
    for c in CRYSTAL_SYSTEMS:
        mask = t == c
        n, ok = int(mask.sum()), int((p[mask] == c).sum())
        row = {"crystal_system": c, "n_test": n, "correct": ok,
               "accuracy": ok / n if n else math.nan}
        if train_counts is not None:
            row = {"crystal_system": c, "n_train": int(train_counts.get(c, 0)),
                   **{k: v for k, v in row.items() if k != "crystal_system"}}
        rows.append(row)
    return pd.DataFrame(rows)


def checkpoint_path(checkpoint_dir: str | os.PathLike[str], seed: int, tag: str = "") -> Path:
    """``<checkpoint_dir>/pxrd-crystal-system[-<tag>]-seed<seed>.pt``."""
    return checkpoint_file(checkpoint_dir, CHECKPOINT_STEM, tag, f"seed{int(seed)}")


def _pattern_meta(data: CrystalSystemData) -> dict[str, Any]:
    return {"two_theta_range": list(data.sticks.two_theta_range), "step": data.sticks.step,
            "wavelength": data.sticks.wavelength, "n_points": int(data.grid.size),
            "training_conditions": TRAINING_CONDITIONS.as_dict(),
            "measurement_conditions": MEASUREMENT_CONDITIONS.as_dict(),
            "input": "pattern scaled to a maximum of 1 on the grid"}


def _test_frame(data: CrystalSystemData, test_idx: np.ndarray, probs: np.ndarray
                ) -> pd.DataFrame:
    """Test predictions (:func:`~specfusion_lib.training.metrics.prediction_table`)."""
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    return prediction_table([data.material_ids[i] for i in test_idx], data.y[test_idx], pred,
                            class_names=CRYSTAL_SYSTEMS, probabilities=probs,
                            columns={"formula": [data.sticks.formulas[i] for i in test_idx]})


def _probabilities(model: nn.Module, patterns: np.ndarray, device: torch.device | None = None
                   ) -> np.ndarray:
    dev = device or next(model.parameters()).device
    logits = batched_logits(model, [torch.as_tensor(patterns, dtype=torch.float32)], dev)
    return torch.softmax(logits, dim=1).numpy() if len(logits) else np.zeros((0, 7))


def epoch_copies(n_train: int, min_patterns_per_epoch: int) -> int:
    """Augmented copies of each training pattern rendered per epoch.

    ``ceil(min_patterns_per_epoch / n_train)``, at least 1 (so 1 for any training part of at
    least ``min_patterns_per_epoch`` patterns, and always 1 when the minimum is 0).
    """
    if n_train <= 0:
        return 1
    return max(1, math.ceil(int(min_patterns_per_epoch) / int(n_train)))


def training_rows(train_idx: np.ndarray, prof: Profile) -> np.ndarray:
    """Row indices of one training epoch: ``train_idx`` repeated :func:`epoch_copies` times."""
    idx = np.asarray(train_idx, dtype=np.int64)
    return np.tile(idx, epoch_copies(idx.size, prof.min_patterns_per_epoch))


def _training_meta(train_idx: np.ndarray, prof: Profile) -> dict[str, int]:
    return {"min_patterns_per_epoch": int(prof.min_patterns_per_epoch),
            "copies_per_epoch": epoch_copies(len(train_idx), prof.min_patterns_per_epoch)}



def _pxrdprofile_metadata(prof: Profile, epochs: int) -> dict[str, Any]:
    """The profile entry of a PXRD checkpoint: the XANES one plus the PXRD material cap."""
    return {**profile_metadata(prof, epochs), "max_pxrd_materials": prof.max_pxrd_materials}


def _maybe_resume(path: Path, snapshot: Snapshot, data: CrystalSystemData, prof: Profile,
                  seed: int, epochs: int, hparams: Mapping[str, Any],
                  part_ids: Mapping[str, list[str]], parts: tuple[np.ndarray, ...]
                  ) -> CrystalSystemRun | None:
    found = load_matching_checkpoint(path, snapshot, {
        "seed": seed, "profile": _pxrdprofile_metadata(prof, epochs), "hparams": dict(hparams),
        "patterns": _pattern_meta(data), "training_patterns": _training_meta(parts[0], prof),
        "split": dict(part_ids)})
    if found is None:
        return None
    model, meta = found
    test_patterns = data.measured_patterns(parts[2], seed, _STREAM_TEST)
    frame = _test_frame(data, parts[2], _probabilities(model, test_patterns))
    return CrystalSystemRun(
        model=model, seed=seed, metrics=meta["metrics"], baseline=meta["baseline"],
        split=meta["split"], predictions=frame, history=meta["history"],
        best_epoch=meta["best_epoch"], epochs_run=meta["epochs_run"], metadata=meta,
        data=data, split_indices=parts, test_patterns=test_patterns, checkpoint=path,
        train_seconds=meta.get("train_seconds") or math.nan,
        samples_per_second=meta.get("samples_per_second") or math.nan, resumed=True)


def train_crystal_system_model(
    snapshot: Snapshot,
    profile: Profile | str = "quick",
    *,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    data: CrystalSystemData | None = None,
    split: Sequence[Sequence[int]] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    max_epochs: int | None = None,
    tag: str = "",
    resume: bool = True,
    device: str | torch.device | None = None,
) -> CrystalSystemRun:
    """Train the PXRD CNN-Transformer on a snapshot's structures (one seed).

    Args:
        snapshot: A loaded snapshot (structures and ``crystal_system`` labels).
        profile: Profile or its name (seeds, epochs, patience, learning rate, batch, split,
            material cap).
        seed: Seed of the split, the weights, the batch order and the augmentation.
        checkpoint_dir: Write ``pxrd-crystal-system[-<tag>]-seed<seed>.pt`` (+ ``.json``)
            here; with ``resume`` a matching finished checkpoint is loaded instead.
        progress: Show progress bars.
        cache_dir: Stick cache folder (simulated reflections; ``None``: simulate in memory).
        data: Pre-built data (saves simulating again; e.g. a subset for SI Fig. S21).
        split: ``(train, val, test)`` row indices into the data (default: seeded 70/15/15).
        model_kwargs: Extra :class:`~specfusion_lib.models.pxrd_net.PXRDCrystalSystemNet`
            arguments (sizes). ``n_classes`` and ``n_points`` are fixed by the data.
        max_epochs: Override the profile's epoch cap.
        tag: Extra name part of the checkpoint.
        resume: Reuse a matching finished checkpoint.
        device: Torch device (default: CUDA for the paper profile when present, else CPU).

    Returns:
        A :class:`CrystalSystemRun`.

    Raises:
        ConfigurationError: Fewer than 3 labelled materials, an empty training or validation
            part, or invalid model arguments.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    seed = int(seed)
    if data is None:
        data = crystal_system_data(snapshot, prof, cache_dir=cache_dir, progress=progress)
    if len(data) < 3:
        raise ConfigurationError(f"too few labelled materials ({len(data)}) with a simulated "
                                 "pattern for a train/validation/test split; at least 3 are "
                                 "needed")
    groups, split_method = split_groups(prof.split_by, data.families, len(data))
    if split is not None:
        split_method = "given"
    parts = resolve_split(len(data), prof.split, seed, split, groups=groups)
    train_idx, val_idx, test_idx = parts
    epochs = int(prof.max_epochs if max_epochs is None else max_epochs)
    kwargs = dict(model_kwargs or {})
    clash = set(kwargs) & {"n_classes", "n_points"}
    if clash:
        raise ConfigurationError(f"model_kwargs may not set {sorted(clash)} (taken from data)")
    try:
        torch.manual_seed(seed)
        model = PXRDCrystalSystemNet(n_classes=len(CRYSTAL_SYSTEMS), n_points=data.grid.size,
                                     **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid PXRDCrystalSystemNet arguments: {exc}") from None
    part_ids = split_ids(data.material_ids, parts)
    if split is None and prof.split_by == "random":  # never overwrite the family-split model
        tag = "-".join(t for t in (tag, "random-split") if t)
    path = None if checkpoint_dir is None else checkpoint_path(checkpoint_dir, seed, tag)
    if path is not None and resume:
        done = _maybe_resume(path, snapshot, data, prof, seed, epochs, model.hparams,
                             part_ids, parts)
        if done is not None:
            return done

    dev = resolve_device(device, prof)
    val_patterns = data.measured_patterns(val_idx, seed, _STREAM_VAL)
    test_patterns = data.measured_patterns(test_idx, seed, _STREAM_TEST)

    rows = training_rows(train_idx, prof)

    def epoch_inputs(epoch: int) -> list[Tensor]:
        rng = np.random.default_rng([seed, _STREAM_TRAIN, epoch])
        return [torch.from_numpy(data.sticks.render(rows, rng, TRAINING_CONDITIONS))]

    fit = fit_classifier(
        model, epoch_inputs, torch.as_tensor(data.y[rows]),
        [torch.from_numpy(val_patterns)], torch.as_tensor(data.y[val_idx]), prof, seed,
        max_epochs=epochs, device=dev, threads=CPU_THREADS, progress=progress,
        desc=f"PXRD crystal system seed {seed}")
    frame = _test_frame(data, test_idx, _probabilities(model, test_patterns, dev))
    metrics = metrics_from_table("classification", frame)
    baseline = baseline_metrics("classification", data.y[train_idx], data.y[test_idx])
    metadata: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "task": {"name": "crystal_system", "kind": "classification", "level": "material",
                 "unit": "", "class_names": list(CRYSTAL_SYSTEMS), "input": "pxrd"},
        "seed": seed,
        "profile": _pxrdprofile_metadata(prof, epochs),
        "split": part_ids,
        "split_method": split_method,
        "patterns": _pattern_meta(data),
        "training_patterns": _training_meta(train_idx, prof),
        "label_counts": data.label_counts(),
        "excluded": dict(data.excluded),
        "metrics": metrics,
        "baseline": baseline,
        "history": fit.history,
        "best_epoch": fit.best_epoch,
        "epochs_run": len(fit.history),
        "train_seconds": fit.train_seconds,
        "samples_per_second": fit.samples_per_second,
        "snapshot": snapshot_metadata(snapshot),
    }
    run = CrystalSystemRun(
        model=model.cpu().eval(), seed=seed, metrics=metrics, baseline=baseline,
        split=part_ids, predictions=frame, history=fit.history, best_epoch=fit.best_epoch,
        epochs_run=len(fit.history), metadata=jsonable(metadata), data=data,
        split_indices=parts, test_patterns=test_patterns, train_seconds=fit.train_seconds,
        samples_per_second=fit.samples_per_second)
    if path is not None:
        save_checkpoint(path, run.model, run.metadata)
        run.checkpoint = path
    return run


def train_crystal_system_seeds(
    snapshot: Snapshot,
    profile: Profile | str = "quick",
    *,
    seeds: Sequence[int] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data: CrystalSystemData | None = None,
    **kwargs: Any,
) -> list[CrystalSystemRun]:
    """One :func:`train_crystal_system_model` run per seed (default: the profile's seeds).

    The reflections are simulated (or loaded from the cache) once and shared by every seed.
    Keyword arguments go to :func:`train_crystal_system_model`.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if data is None:
        data = crystal_system_data(snapshot, prof, cache_dir=cache_dir,
                                   progress=bool(kwargs.get("progress", False)))
    return [train_crystal_system_model(snapshot, prof, seed=s, data=data, **kwargs)
            for s in (prof.seeds if seeds is None else seeds)]


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


class CrystalSystemPredictor:
    """Crystal-system probabilities of powder patterns from one or several trained models.

    Several models (seeds) are averaged. Every model must use the same grid and wavelength.

    Args:
        models: Trained :class:`~specfusion_lib.models.pxrd_net.PXRDCrystalSystemNet`.
        metadata: Their metadata (``patterns`` holds the grid and wavelength).

    Raises:
        ConfigurationError: No model, or models with different grids.
    """

    def __init__(self, models: Sequence[nn.Module], metadata: Sequence[Mapping[str, Any]]
                 ) -> None:
        if not models or len(models) != len(metadata):
            raise ConfigurationError("a CrystalSystemPredictor needs one metadata per model "
                                     "and at least one model")
        grids = {json.dumps([m["patterns"]["two_theta_range"], m["patterns"]["step"],
                             str(m["patterns"]["wavelength"])]) for m in metadata}
        if len(grids) > 1:
            raise ConfigurationError(f"the models use different grids: {sorted(grids)}")
        self.models = [m.cpu().eval() for m in models]
        self.metadata = [dict(m) for m in metadata]
        pat = self.metadata[0]["patterns"]
        self.grid = pxrd.two_theta_grid(tuple(pat["two_theta_range"]), float(pat["step"]))
        self.wavelength: str | float = pat["wavelength"]

    @classmethod
    def from_run(cls, run: CrystalSystemRun | Sequence[CrystalSystemRun]
                 ) -> CrystalSystemPredictor:
        """Wrap the model(s) of one or several :class:`CrystalSystemRun`."""
        runs = [run] if isinstance(run, CrystalSystemRun) else list(run)
        return cls([r.model for r in runs], [r.metadata for r in runs])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CrystalSystemPredictor:
        """Load a checkpoint file, or every ``pxrd-crystal-system-seed<N>.pt`` of a folder.

        Raises:
            InputFileError: Missing file/folder, no checkpoint in the folder, unreadable
                checkpoint, or a checkpoint that is not a PXRD crystal-system model.
        """
        target = Path(path)
        if target.is_dir():
            files = sorted(p for p in target.glob("*.pt") if _CHECKPOINT_RE.match(p.name))
            if not files:
                raise InputFileError(
                    f"{target}: no PXRD crystal-system checkpoint ({CHECKPOINT_STEM}-seed<N>.pt)"
                    "; train one first (notebook 07 writes build/checkpoints)")
        elif target.is_file():
            files = [target]
        else:
            raise InputFileError(f"{target}: no such checkpoint file or folder")
        models, metas = [], []
        for f in files:
            model, meta = load(f)
            if not isinstance(model, PXRDCrystalSystemNet) or "patterns" not in meta:
                raise InputFileError(f"{f}: not a PXRD crystal-system checkpoint")
            models.append(model)
            metas.append(meta)
        return cls(models, metas)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The seven crystal systems (column order of :meth:`predict_proba`)."""
        return CRYSTAL_SYSTEMS

    def prepare(self, patterns: pxrd.PXRDPattern | Sequence[pxrd.PXRDPattern], *,
                wavelength: str | float | None = None) -> np.ndarray:
        """Model inputs: each pattern on the model's grid and wavelength, maximum 1.

        Args:
            patterns: One pattern or a sequence.
            wavelength: Radiation of the patterns (overrides ``pattern.wavelength``).

        Returns:
            ``(n, L)`` float32.

        Raises:
            ConfigurationError: The wavelength of a pattern is unknown.
            SpectrumFileError: A pattern covers less than half of the model's 2θ range at
                its wavelength (message names the file).
        """
        items = [patterns] if isinstance(patterns, pxrd.PXRDPattern) else list(patterns)
        rows = np.empty((len(items), self.grid.size), dtype=np.float32)
        target = pxrd.wavelength_angstrom(self.wavelength)
        for i, pattern in enumerate(items):
            if not isinstance(pattern, pxrd.PXRDPattern):
                raise ConfigurationError(f"expected PXRDPattern objects, got "
                                         f"{type(pattern).__name__}")
            src = wavelength if wavelength is not None else pattern.wavelength
            same_grid = (pattern.two_theta.size == self.grid.size
                         and np.allclose(pattern.two_theta, self.grid, atol=1e-9))
            if (same_grid and src is not None
                    and math.isclose(pxrd.wavelength_angstrom(src), target, rel_tol=1e-9)):
                y = np.asarray(pattern.intensity, dtype=float)
                top = y.max(initial=0.0)
                rows[i] = y / top if top > 0 else y
            else:
                rows[i] = pxrd.to_grid(pattern, self.grid, source_wavelength=src,
                                       target_wavelength=self.wavelength).intensity
        return rows

    def predict_array(self, patterns: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 7)`` of patterns already on the grid, ``(n, L)``."""
        x = np.asarray(patterns, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.grid.size:
            raise ConfigurationError(f"patterns must have shape (n, {self.grid.size}), "
                                     f"got {x.shape}")
        with cpu_threads(CPU_THREADS):
            probs = np.mean([_probabilities(m, x, torch.device("cpu")) for m in self.models],
                            axis=0)
        return probs.reshape(len(x), len(CRYSTAL_SYSTEMS))

    def predict_proba(self, patterns: pxrd.PXRDPattern | Sequence[pxrd.PXRDPattern], *,
                      wavelength: str | float | None = None) -> pd.DataFrame:
        """Crystal-system probabilities of each pattern.

        Args:
            patterns: One :class:`~specfusion_lib.spectra.pxrd.PXRDPattern` or a sequence
                (e.g. from ``simulate_pattern`` or ``read_pattern``), any 2θ grid.
            wavelength: Radiation of the patterns (default: each pattern's own).

        Returns:
            One row per pattern (input order, RangeIndex), one column per crystal system in
            the order of :data:`~specfusion_lib.data.structure_labels.CRYSTAL_SYSTEMS`; rows sum to
            1 (the mean over the loaded seeds).
        """
        probs = self.predict_array(self.prepare(patterns, wavelength=wavelength))
        return pd.DataFrame(probs, columns=list(CRYSTAL_SYSTEMS))

    def predict(self, patterns: pxrd.PXRDPattern | Sequence[pxrd.PXRDPattern], *,
                wavelength: str | float | None = None) -> list[str]:
        """The most probable crystal system of each pattern."""
        table = self.predict_proba(patterns, wavelength=wavelength)
        return [str(c) for c in table.idxmax(axis=1)]


def predict_crystal_system(path: str | os.PathLike[str], checkpoint_dir: str | os.PathLike[str]
                           = "build/checkpoints", *, wavelength: str | float | None = None
                           ) -> pd.Series:
    """Crystal-system probabilities of one two-column pattern file.

    Args:
        path: 2θ / intensity file (see :func:`~specfusion_lib.spectra.pxrd.read_pattern`).
        checkpoint_dir: Folder (or file) of the PXRD crystal-system checkpoint(s).
        wavelength: Radiation (pymatgen name such as ``"CuKa"``/``"MoKa"`` or Å); default:
            the file's ``# wavelength:`` comment.

    Returns:
        Probabilities indexed by crystal system, sorted from most to least probable.

    Raises:
        SpectrumFileError: Unreadable file, too few points, or a 2θ range that covers less
            than half of the model's range.
        ConfigurationError: Unknown wavelength.
        InputFileError: No usable checkpoint.
    """
    pattern = pxrd.read_pattern(path, wavelength=wavelength)
    predictor = CrystalSystemPredictor.load(checkpoint_dir)
    return predictor.predict_proba(pattern).iloc[0].sort_values(ascending=False)
