"""SpecFusionNet trained per task and seed with the protocol of SI §S1.1.

The loop, early stopping, splits, metrics and checkpoints are the shared training core
(:mod:`specfusion_lib.training`); this module adds what is particular to SpecFusionNet: its
inputs, target standardisation, losses, metadata and predictions.

Protocol (one model per task and seed, as in the paper):

* **Split**: the labelled materials are split 70 / 15 / 15 % into train / validation / test
  with a seeded permutation (:func:`~specfusion_lib.training.splits.split_indices`; the split
  seed defaults to the training
  seed, so each of the five seeds also sees a different split). The material ids of each part
  are stored in the run's metadata and checkpoint. The split is by *material*: element-level
  tasks never have elements of one compound in two parts. The profile's ``max_materials``
  cap keeps a seeded (seed 0) random subset of the labelled materials first.
* **Optimisation**: Adam, learning rate from the profile (1e-3), mini-batches from the
  profile (64), shuffled with a seeded generator.
* **Losses**: cross-entropy for classification (element-level tasks: over the labelled TM
  elements); L1 for regression, on targets standardised with the *training* mean and standard
  deviation (stored with the run; predictions are transformed back).
* **Early stopping** on the validation loss: training stops when it has not improved for
  ``patience`` epochs or after ``max_epochs`` (both from the profile); the weights of the
  best validation epoch are restored.
* **Metrics** on the test part: accuracy and macro-F1 (classification), MAE, RMSE and R²
  (regression), next to the trivial baselines computed on the same test part: the majority
  class of the training part, and the training mean.
* **Seeds**: :func:`train_task_seeds` runs every seed of the profile and reports mean ± std
  (sample standard deviation; NaN for a single seed).

Descriptor standardisation (mean / std of the numeric descriptor columns over the elements of
the training materials) is stored in the model's buffers and in the metadata. Spectra are
z-scored per spectrum by :func:`~specfusion_lib.spectra.xanes.preprocess_xanes` and need no
fitted statistics.

Checkpoints: :mod:`specfusion_lib.training.checkpoints` (one ``.pt`` with weights and
metadata: snapshot id and file checksums, task, seed, split ids, normalisation statistics,
class names, metrics, versions, hyper-parameters; a ``.json`` copy beside it).

Resuming: with ``checkpoint_dir``, a finished (task, seed) whose checkpoint matches the
snapshot, profile and hyper-parameters is loaded instead of retrained, so an interrupted
multi-seed run resumes without redoing finished seeds.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import Profile, get_profile
from specfusion_lib.models.specfusionnet import MultiTaskSpecFusionNet, SpecFusionNet
from specfusion_lib.properties.features import (
    IGNORE_INDEX,
    FeatureSet,
    TaskData,
    build_features,
    concat_features,
    require_task,
    task_data,
)
from specfusion_lib.training.checkpoints import (
    checkpoint_file,
    full_metadata,
    load_matching_checkpoint,
    profile_metadata,
    save_checkpoint,
    snapshot_metadata,
)
from specfusion_lib.training.loop import batched_logits, fit_epochs, resolve_device
from specfusion_lib.training.metrics import (
    baseline_metrics,
    metrics_from_table,
    prediction_table,
)
from specfusion_lib.training.splits import (
    capped_rows,
    resolve_split,
    split_groups,
    split_indices,
)

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "SeedSummary",
    "TrainResult",
    "check_features_match",
    "fit_descriptor_normalization",
    "predict",
    "train_model",
    "train_task",
    "train_task_seeds",
]

# --------------------------------------------------------------------------------------------
# Split and metrics
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Tensors, normalisation, prediction
# --------------------------------------------------------------------------------------------


def _input_tensors(features: FeatureSet, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.as_tensor(features.descriptors, dtype=torch.float32, device=device),
        torch.as_tensor(features.element_mask, device=device),
        torch.as_tensor(features.tm_mask, device=device),
        torch.as_tensor(features.spectra, dtype=torch.float32, device=device),
        torch.as_tensor(features.spectrum_mask, device=device),
    )


def fit_descriptor_normalization(features: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each descriptor column over the real elements of ``features``.

    One-hot type columns (names starting with ``type_``) are left unscaled (mean 0, std 1);
    columns without spread get std 1.

    Returns:
        ``(mean, std)``, each of shape ``(D,)``.
    """
    rows = features.descriptors[features.element_mask].astype(np.float64)
    mean = rows.mean(axis=0)
    std = rows.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    onehot = np.array([n.startswith("type_") for n in features.descriptor_names])
    mean[onehot], std[onehot] = 0.0, 1.0
    return mean, std


def check_features_match(features: FeatureSet, metadata: Mapping[str, Any]) -> None:
    """Check that ``features`` fit the spectra settings a model was trained on.

    Args:
        features: Inputs to predict on.
        metadata: The run's metadata (its ``normalization.spectra`` entry).

    Raises:
        ConfigurationError: If the window / number of points differ, or an all-element
            model gets TM-only features.
    """
    spectra = metadata["normalization"]["spectra"]
    if (int(spectra["n_points"]) != features.n_points
            or tuple(spectra["window_ev"]) != tuple(features.window)):
        raise ConfigurationError(
            f"features have {features.n_points} points on window {features.window} eV, "
            f"the model was trained on {spectra['n_points']} points on "
            f"{tuple(spectra['window_ev'])} eV")
    if spectra["all_element"] and not features.all_element:
        raise ConfigurationError("an all-element model needs features built with "
                                 "all_element=True")


def predict(model: nn.Module, features: FeatureSet, metadata: Mapping[str, Any] | None = None,
            *, batch_size: int = 256) -> np.ndarray:
    """Predictions of a single-task model in physical units / as class probabilities.

    Args:
        model: A :class:`~specfusion_lib.models.specfusionnet.SpecFusionNet`.
        features: Inputs (e.g. from :func:`~specfusion_lib.properties.features.build_features`).
        metadata: The run's metadata (from :func:`load` or :attr:`TrainResult.metadata`);
            supplies the task kind and the target standardisation. Without it the raw
            outputs are returned.
        batch_size: Materials per forward pass.

    Returns:
        Regression: ``(N,)`` values in the target's unit. Classification: ``(N, C)``
        probabilities, or ``(N, E, C)`` for element-level tasks (rows of padded elements are
        meaningless; use ``features.tm_mask``).

    Raises:
        ConfigurationError: If the features' window / points differ from the training run's,
            or an all-element model gets TM-only features, or ``model`` is a
            :class:`~specfusion_lib.models.specfusionnet.MultiTaskSpecFusionNet`.
    """
    if isinstance(model, MultiTaskSpecFusionNet):
        raise ConfigurationError("predict() takes a single-task model; use "
                                 "specfusion_lib.properties.multitask.predict_multitask for a "
                                 "MultiTaskSpecFusionNet")
    device = next(model.parameters()).device
    if metadata is not None:
        check_features_match(features, metadata)
    out = batched_logits(model, _input_tensors(features, device), device, batch_size)
    if metadata is None:
        return out.numpy()
    task = metadata["task"]
    if task["kind"] == "regression":
        stats = metadata["normalization"]["target"]
        return out[..., 0].numpy() * stats["std"] + stats["mean"]
    return torch.softmax(out, dim=-1).numpy()


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """Outcome of one training run (one task, one seed).

    Attributes:
        task: Task name.
        kind: ``"classification"`` or ``"regression"``.
        level: ``"material"`` or ``"element"``.
        seed: Training seed.
        metrics: Test metrics (accuracy, f1_macro or mae, rmse, r2; n_test).
        baseline: The trivial predictor's metrics on the same test part.
        history: Per epoch: ``epoch``, ``train_loss``, ``val_loss``.
        best_epoch: Epoch (1-based) whose weights were kept.
        epochs_run: Epochs trained.
        split: ``{"train": ids, "val": ids, "test": ids}``.
        class_names: Classes (classification).
        predictions: Test predictions: ``material_id`` (+ ``element``), ``y_true``,
            ``y_pred`` (values, or class names for classification).
        model: The trained model (best epoch, eval mode, on its training device).
        metadata: Everything stored with the checkpoint.
        checkpoint: Checkpoint path, if one was written.
        train_seconds: Wall time of the training epochs (without validation).
        samples_per_second: Training materials per second.
        resumed: Whether the run was loaded from an existing checkpoint.
    """

    task: str
    kind: str
    level: str
    seed: int
    metrics: dict[str, float]
    baseline: dict[str, float]
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    split: dict[str, list[str]]
    class_names: tuple[str, ...]
    predictions: pd.DataFrame
    model: nn.Module
    metadata: dict[str, Any]
    checkpoint: Path | None = None
    train_seconds: float = math.nan
    samples_per_second: float = math.nan
    resumed: bool = False


def _loss(kind: str, level: str, out: torch.Tensor, y: torch.Tensor,
          reduction: str = "mean") -> torch.Tensor:
    if kind == "regression":
        return F.l1_loss(out[..., 0], y, reduction=reduction)
    if level == "element":
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction=reduction)
    return F.cross_entropy(out, y, reduction=reduction)


def _n_targets(level: str, y: torch.Tensor) -> int:
    return int((y != IGNORE_INDEX).sum()) if level == "element" else int(y.shape[0])


def _test_frame(data: TaskData, idx: np.ndarray, out: torch.Tensor,
                target_stats: Mapping[str, float] | None) -> pd.DataFrame:
    """The :func:`~specfusion_lib.training.metrics.prediction_table` of test rows ``idx``."""
    ids = [data.features.material_ids[i] for i in idx]
    spec = data.spec
    if spec.kind == "regression":
        pred = out[:, 0].numpy() * target_stats["std"] + target_stats["mean"]  # type: ignore[index]
        return prediction_table(ids, data.y[idx].astype(float), pred.astype(float))
    if spec.level == "element":
        labels = data.y[idx]
        pred = out.argmax(dim=-1).numpy()
        cells = [(r, j) for r in range(len(idx)) for j in range(labels.shape[1])
                 if labels[r, j] != IGNORE_INDEX]
        return prediction_table(
            [ids[r] for r, _ in cells], [labels[r, j] for r, j in cells],
            [pred[r, j] for r, j in cells], class_names=data.class_names,
            columns={"element": [data.features.elements[idx[r]][j] for r, j in cells]})
    return prediction_table(ids, data.y[idx], out.argmax(dim=-1).numpy(),
                            class_names=data.class_names)


def train_model(
    data: TaskData,
    profile: Profile | str = "quick",
    seed: int = 0,
    *,
    split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    max_epochs: int | None = None,
    progress: bool = False,
    augment: Callable[[FeatureSet], FeatureSet] | None = None,
) -> TrainResult:
    """Train SpecFusionNet on prepared task data with the SI §S1.1 protocol.

    The lower-level entry point: :func:`train_task` reads the snapshot, calls this, and adds
    snapshot metadata and the checkpoint.

    Args:
        data: Inputs and labels (:func:`~specfusion_lib.properties.features.task_data`).
        profile: A :class:`~specfusion_lib.core.profiles.Profile` or its name.
        seed: Seed of the weights, dropout and batch order (and of the split unless ``split``
            is given).
        split: ``(train, val, test)`` row indices into ``data`` (default:
            :func:`split_indices` with ``seed``).
        model_kwargs: Extra :class:`~specfusion_lib.models.specfusionnet.SpecFusionNet`
            arguments (sizes, ablation switches). ``n_outputs``, ``element_level``,
            ``n_descriptors``, ``n_points`` and ``all_element`` come from ``data``.
        device: Torch device (default: CUDA for the paper profile when present, else CPU).
        max_epochs: Override the profile's epoch cap.
        progress: Show a progress bar over epochs.
        augment: Training-set augmentation: called with the inputs of the *training* rows
            (after the split), returns extra rows, a whole number of copies of those rows in
            their order (e.g. :func:`specfusion_lib.properties.randomised.randomiser`). The
            copies join the training part with their rows' labels; validation and test rows
            stay clean. Its ``description`` attribute (or ``repr``) is stored in the metadata
            as ``augmentation``.

    Returns:
        A :class:`TrainResult` (``checkpoint`` is ``None``; snapshot fields are absent from
        ``metadata``).

    Raises:
        ConfigurationError: For fewer than 3 labelled materials or invalid model arguments.

    Note:
        Seeds torch's global random number generator with ``seed``.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    spec = data.spec
    dev = resolve_device(device, prof)
    groups, split_method = split_groups(prof.split_by, data.features.families, len(data))
    train_idx, val_idx, test_idx = resolve_split(len(data), prof.split, seed, split,
                                                 groups=groups)
    epochs = int(prof.max_epochs if max_epochs is None else max_epochs)
    clean_ids = data.features.material_ids
    clean_parts = (train_idx, val_idx, test_idx)
    if augment is not None:
        data, train_idx = _augmented(data, train_idx, augment)

    torch.manual_seed(seed)
    kwargs = dict(model_kwargs or {})
    fixed = {"n_outputs": data.n_outputs, "element_level": spec.level == "element",
             "n_descriptors": data.features.n_descriptors, "n_points": data.features.n_points,
             "all_element": data.features.all_element}
    clash = set(kwargs) & set(fixed)
    if clash:
        raise ConfigurationError(f"model_kwargs may not set {sorted(clash)} (taken from data)")
    try:
        model = SpecFusionNet(**fixed, **kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"invalid SpecFusionNet arguments: {exc}") from None
    d_mean, d_std = fit_descriptor_normalization(data.features.subset(train_idx))
    model.set_descriptor_normalization(d_mean, d_std)
    model.to(dev)

    inputs = _input_tensors(data.features, dev)
    target_stats: dict[str, float] | None = None
    if spec.kind == "regression":
        y_train = data.y[train_idx].astype(np.float64)
        std = float(y_train.std())
        target_stats = {"mean": float(y_train.mean()), "std": std if std > 1e-12 else 1.0}
        y_all = torch.as_tensor((data.y - target_stats["mean"]) / target_stats["std"],
                                dtype=torch.float32, device=dev)
    else:
        y_all = torch.as_tensor(data.y, dtype=torch.long, device=dev)

    optimizer = torch.optim.Adam(model.parameters(), lr=prof.learning_rate)
    val_t = torch.as_tensor(val_idx, dtype=torch.long, device=dev)

    def train_batch(b: torch.Tensor) -> dict[str, tuple[float, int]]:
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(spec.kind, spec.level, model(*(t[b] for t in inputs)), y_all[b])
        loss.backward()
        optimizer.step()
        return {"train_loss": (float(loss.detach()), _n_targets(spec.level, y_all[b]))}

    def validate(train: dict[str, float]) -> dict[str, float]:
        val_out = batched_logits(model, inputs, dev, 256, val_idx).to(dev)
        val_loss = float(_loss(spec.kind, spec.level, val_out, y_all[val_t], "sum")) / max(
            1, _n_targets(spec.level, y_all[val_t]))
        return {"train_loss": train.get("train_loss", math.nan), "val_loss": val_loss}

    loop = fit_epochs(model, train_idx, max_epochs=epochs, batch_size=int(prof.batch_size),
                      patience=prof.patience, seed=seed, device=dev, train_batch=train_batch,
                      validate=validate, desc=f"{spec.name} seed {seed}", progress=progress)
    history, best_epoch = loop.history, loop.best_epoch

    test_out = batched_logits(model, inputs, dev, 256, test_idx)
    frame = _test_frame(data, test_idx, test_out, target_stats)
    metrics = metrics_from_table(spec.kind, frame)
    baseline = baseline_metrics(spec.kind, data.y[clean_parts[0]], data.y[test_idx])
    split_ids = {name: [clean_ids[i] for i in part]
                 for name, part in zip(("train", "val", "test"), clean_parts, strict=True)}
    metadata = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "task": {"name": spec.name, "kind": spec.kind, "level": spec.level,
                 "unit": spec.unit, "class_names": list(data.class_names)},
        "seed": int(seed),
        "profile": profile_metadata(prof, epochs),
        "split": split_ids,
        "split_method": "given" if split is not None else split_method,
        "augmentation": None if augment is None else str(getattr(augment, "description",
                                                                 repr(augment))),
        "training_elements": sorted({el for i in train_idx
                                     for el in data.features.elements[i]}),
        "normalization": {
            "descriptor_names": list(data.features.descriptor_names),
            "descriptor_mean": d_mean, "descriptor_std": d_std,
            "target": target_stats,
            "spectra": {"method": "per-spectrum z-score (preprocess_xanes)",
                        "edge": data.features.edge, "window_ev": list(data.features.window),
                        "n_points": data.features.n_points,
                        "all_element": data.features.all_element},
        },
        "metrics": metrics,
        "baseline": baseline,
        "history": history,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "label_counts": data.label_counts(),
        "excluded": dict(data.excluded),
        "skipped_spectra": len(data.features.skipped),
    }
    return TrainResult(
        task=spec.name, kind=spec.kind, level=spec.level, seed=int(seed), metrics=metrics,
        baseline=baseline, history=history, best_epoch=best_epoch, epochs_run=len(history),
        split=split_ids, class_names=tuple(data.class_names), predictions=frame, model=model,
        metadata=metadata, train_seconds=loop.train_seconds,
        samples_per_second=loop.samples_per_second,
    )


def _maybe_resume(path: Path, snapshot: Snapshot, data: TaskData, prof: Profile, seed: int,
                  split_seed: int, hparams_wanted: Mapping[str, Any],
                  max_epochs: int, augmentation: str | None = None) -> TrainResult | None:
    found = load_matching_checkpoint(
        path, snapshot,
        {"seed": seed, "split_seed": split_seed, "profile": profile_metadata(prof, max_epochs),
         "augmentation": augmentation},
        {**hparams_wanted, "all_element": data.features.all_element})
    if found is None or found[1]["task"]["name"] != data.spec.name:
        return None
    model, meta = found
    try:
        idx = data.features.index_of(meta["split"]["test"])
    except ConfigurationError:
        return None
    out = batched_logits(model, _input_tensors(data.features, torch.device("cpu")),
                         torch.device("cpu"), 256, idx)
    frame = _test_frame(data, idx, out, meta["normalization"]["target"])
    return TrainResult(
        task=data.spec.name, kind=data.spec.kind, level=data.spec.level, seed=seed,
        metrics=meta["metrics"], baseline=meta["baseline"], history=meta["history"],
        best_epoch=meta["best_epoch"], epochs_run=meta["epochs_run"], split=meta["split"],
        class_names=tuple(meta["task"]["class_names"]), predictions=frame, model=model,
        metadata=meta, checkpoint=path, resumed=True)


def _augmented(data: TaskData, train_idx: np.ndarray,
               augment: Callable[[FeatureSet], FeatureSet]) -> tuple[TaskData, np.ndarray]:
    """``data`` with the augmentation's copies of the training rows appended, and the
    training indices including them (see :func:`train_model`)."""
    extra = augment(data.features.subset(train_idx))
    if len(train_idx) == 0 or len(extra) % len(train_idx):
        raise ConfigurationError(f"the augmentation returned {len(extra)} rows for "
                                 f"{len(train_idx)} training rows (not a whole number of "
                                 "copies)")
    copies = len(extra) // len(train_idx)
    source = np.tile(train_idx, copies)
    n0 = len(data)
    features = concat_features(data.features, extra)
    y = np.concatenate([data.y, data.y[source]])
    augmented = replace(data, features=features, y=y)
    logger.info("training set augmented: %d rows + %d copies (%d per row)", len(train_idx),
                len(extra), copies)
    return augmented, np.concatenate([train_idx, np.arange(n0, n0 + len(extra))])


def _prepare(snapshot: Snapshot, task: str, prof: Profile, features: FeatureSet | None,
             all_element: bool) -> TaskData:
    require_task(snapshot, task)  # cheap check before the spectra are preprocessed
    if features is None:
        features = build_features(snapshot, all_element=all_element)
    elif features.all_element != all_element:
        raise ConfigurationError(f"features were built with all_element={features.all_element}"
                                 f", the run asks for all_element={all_element}")
    data = task_data(snapshot, task, features)
    cap = prof.max_materials
    if cap is not None and len(data) > cap:
        data = data.subset(capped_rows(data.features.material_ids, cap))
    return data


def train_task(
    snapshot: Snapshot,
    task: str,
    profile: Profile | str = "quick",
    seed: int | None = None,
    *,
    features: FeatureSet | None = None,
    all_element: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    tag: str = "",
    resume: bool = True,
    split_seed: int | None = None,
    device: str | torch.device | None = None,
    max_epochs: int | None = None,
    progress: bool = True,
    augment: Callable[[FeatureSet], FeatureSet] | None = None,
) -> TrainResult:
    """Train one SpecFusionNet for one task of a snapshot (SI §S1.1 protocol).

    Args:
        snapshot: A loaded :class:`~specfusion_lib.data.snapshot.Snapshot`.
        task: A name of :data:`~specfusion_lib.properties.features.FEATURE_TASKS`.
        profile: Profile or its name (epochs, patience, learning rate, batch size, split,
            material cap).
        seed: Training seed (default: the profile's first seed).
        features: Pre-built inputs (saves preprocessing the spectra again).
        all_element: Use every element's spectrum (Fig. 2h baseline).
        model_kwargs: Extra model arguments (sizes, ablation switches).
        checkpoint_dir: Write ``<task>[-all-element][-<tag>]-seed<seed>.pt`` (+ ``.json``)
            here; with ``resume`` an existing matching checkpoint is loaded instead.
        tag: Extra name part of the checkpoint (e.g. an ablation name).
        resume: Reuse a matching finished checkpoint in ``checkpoint_dir``.
        split_seed: Seed of the split (default: ``seed``).
        device: Torch device (default: see :func:`train_model`).
        max_epochs: Override the profile's epoch cap.
        progress: Show a progress bar.
        augment: Training-set augmentation (see :func:`train_model`); a checkpoint is reused
            only when it was trained with the same augmentation description.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TaskNotAvailableError: The snapshot has no label for ``task`` (a
            :class:`~specfusion_lib.core.errors.ConfigurationError`; report "not available in this
            snapshot").
        ConfigurationError: Unknown task or profile, too few labelled materials.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    seed = int(prof.seeds[0] if seed is None else seed)
    data = _prepare(snapshot, task, prof, features, all_element)
    epochs = int(prof.max_epochs if max_epochs is None else max_epochs)
    if prof.split_by == "random":  # never overwrite the family-split model
        tag = "-".join(t for t in (tag, "random-split") if t)
    path = (None if checkpoint_dir is None
            else checkpoint_file(checkpoint_dir, task, "all-element" if all_element else "", tag,
                            f"seed{seed}"))
    split_seed = seed if split_seed is None else int(split_seed)
    if path is not None and resume:
        done = _maybe_resume(path, snapshot, data, prof, seed, split_seed,
                             dict(model_kwargs or {}), epochs,
                             None if augment is None else str(getattr(
                                 augment, "description", repr(augment))))
        if done is not None:
            return done
    groups, split_method = split_groups(prof.split_by, data.features.families, len(data))
    split = split_indices(len(data), prof.split, split_seed, groups=groups)
    result = train_model(data, prof, seed, split=split, model_kwargs=model_kwargs,
                         device=device, max_epochs=epochs, progress=progress, augment=augment)
    result.metadata["snapshot"] = snapshot_metadata(snapshot)
    result.metadata["split_seed"] = split_seed
    result.metadata["split_method"] = split_method
    result.metadata["samples_per_second"] = result.samples_per_second
    result.metadata = full_metadata(result.model, result.metadata)
    if path is not None:
        save_checkpoint(path, result.model, result.metadata)
        result.checkpoint = path
    return result


@dataclass
class SeedSummary:
    """Several seeds of one task: the runs and mean ± std of every metric.

    Attributes:
        task: Task name.
        results: One :class:`TrainResult` per seed.
        mean: Metric → mean over seeds.
        std: Metric → sample standard deviation over seeds (NaN for one seed).
        baseline_mean: Baseline metric → mean over seeds.
    """

    task: str
    results: list[TrainResult]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    baseline_mean: dict[str, float] = field(default_factory=dict)

    def format(self, metric: str, digits: int = 3) -> str:
        """``"0.812 ± 0.031"`` (or ``"0.812 (1 seed)"``)."""
        m, s = self.mean[metric], self.std[metric]
        if math.isnan(s):
            return f"{m:.{digits}f} ({len(self.results)} seed)"
        return f"{m:.{digits}f} ± {s:.{digits}f}"

    def table(self) -> pd.DataFrame:
        """One row per seed with metrics and baseline metrics (``baseline_`` prefix)."""
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"task": self.task, "seed": r.seed, **r.metrics}
            row.update({f"baseline_{k}": v for k, v in r.baseline.items() if k != "n_test"})
            row.update({"best_epoch": r.best_epoch, "epochs_run": r.epochs_run})
            rows.append(row)
        return pd.DataFrame(rows)


def train_task_seeds(
    snapshot: Snapshot,
    task: str,
    profile: Profile | str = "quick",
    seeds: Sequence[int] | None = None,
    *,
    features: FeatureSet | None = None,
    all_element: bool = False,
    **kwargs: Any,
) -> SeedSummary:
    """Train one model per seed (default: the profile's seeds) and summarise mean ± std.

    The spectra are preprocessed once and shared by every seed. Keyword arguments are passed
    to :func:`train_task` (``checkpoint_dir`` makes the run resumable seed by seed).

    Raises:
        TaskNotAvailableError: The snapshot has no label for ``task``.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    require_task(snapshot, task)
    if features is None:
        features = build_features(snapshot, all_element=all_element)
    results = [train_task(snapshot, task, prof, s, features=features, all_element=all_element,
                          **kwargs)
               for s in (prof.seeds if seeds is None else seeds)]
    if not results:
        raise ConfigurationError("no seeds given")
    keys = [k for k, v in results[0].metrics.items() if k != "n_test" and v is not None]
    summary = SeedSummary(task, results)
    for k in keys:
        vals = np.array([np.nan if r.metrics.get(k) is None else r.metrics[k]
                         for r in results], dtype=float)
        summary.mean[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
        summary.std[k] = (float(np.nanstd(vals, ddof=1))
                          if np.isfinite(vals).sum() > 1 else math.nan)
        base = np.array([np.nan if r.baseline.get(k) is None else r.baseline[k]
                         for r in results], dtype=float)
        summary.baseline_mean[k] = (float(np.nanmean(base)) if np.isfinite(base).any()
                                    else math.nan)
    return summary
