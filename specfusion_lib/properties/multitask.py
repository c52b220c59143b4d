"""Multi-task training: one shared SpecFusionNet encoder, one head per target (SPEC §5 option).

The paper trains one model per task (:mod:`specfusion_lib.properties.train`). This module trains a
:class:`~specfusion_lib.models.specfusionnet.MultiTaskSpecFusionNet` on several targets at
once with the same SI §S1.1 protocol, so the two can be compared on equal terms.

Data (:func:`multitask_data` → :class:`MultiTaskData`):

* the labels of every task are read with :func:`~specfusion_lib.properties.features.task_data` (the
  single-task path, so the same materials are excluded for the same reasons);
* the rows are the **union** of the materials that carry at least one of the labels, with
  one shared :class:`~specfusion_lib.properties.features.FeatureSet`;
* per task there is a target array and a row mask (``True`` = the material carries this
  label). A label a material lacks is **masked out** of that task's loss, metrics,
  baselines and target statistics; it is never filled in. Masked regression targets are NaN,
  masked classification targets :data:`~specfusion_lib.properties.features.IGNORE_INDEX`; the
  training code selects rows by the mask and never reads those values.
* Element-level tasks (``oxidation_state``, ``coordination_number``) are supported: their
  targets have shape ``(N, E)`` with :data:`~specfusion_lib.properties.features.IGNORE_INDEX` at
  unlabelled elements, the head is applied per element token, and the cross-entropy runs
  over the labelled TM elements of the labelled rows.
* A task the snapshot lacks raises
  :class:`~specfusion_lib.properties.features.TaskNotAvailableError` ("not available in this
  snapshot"), or, with ``skip_unavailable=True``, is left out and reported in
  :attr:`MultiTaskData.not_available`.

Training (:func:`train_multitask`), as :func:`~specfusion_lib.properties.train.train_model` does for
one task:

* **Split** 70 / 15 / 15 % of the union rows by material (:func:`~specfusion_lib.properties.train.
  split_indices`, seeded with the training seed unless ``split`` is given).
* **Normalisation**: descriptor mean / std over the elements of the training materials
  (model buffers + metadata); each regression target standardised with the mean / std of
  its *labelled training rows* (metadata; predictions are transformed back).
* **Optimisation**: Adam with the profile's learning rate and batch size, seeded shuffling.
* **Loss** per mini-batch: ``Σ_t w_t · L_t`` where ``L_t`` is the mean L1 loss
  (regression, standardised units) or cross-entropy (classification) over the rows (or, for
  element-level tasks, labelled elements) of the batch that carry task ``t``'s label; a task
  with no labelled row in the batch contributes nothing. ``w_t`` are the ``task_weights``
  (default 1).
* **Early stopping** on the validation loss ``Σ_t w_t · L_t^val`` (each ``L_t^val`` the
  mean over the task's labelled validation rows / elements) with the profile's patience and
  epoch cap; the weights of the best epoch are restored.
* **Metrics** on each task's labelled test rows (accuracy / macro-F1 or MAE / RMSE / R²),
  next to the trivial baselines (training majority class / training mean of the same task).

Checkpoints: :func:`~specfusion_lib.training.checkpoints.save_checkpoint` /
:func:`~specfusion_lib.training.checkpoints.load` store and rebuild the model with this module's
metadata (:meth:`MultiTaskResult.save`). The metadata has a ``tasks`` entry instead of the
single-task ``task`` entry, so do not name such files ``<task>-seed<N>.pt`` (the pattern
:meth:`~specfusion_lib.properties.predict.Predictor.from_dir` loads); :func:`checkpoint_file` gives
a name that does not clash. :func:`predict_multitask` turns a loaded model's outputs into
physical units / class probabilities.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import Profile, get_profile
from specfusion_lib.models.specfusionnet import MultiTaskSpecFusionNet
from specfusion_lib.properties.features import (
    IGNORE_INDEX,
    FeatureSet,
    TaskData,
    TaskNotAvailableError,
    TaskSpec,
    build_features,
    get_task_spec,
    require_task,
    task_data,
)
from specfusion_lib.properties.train import (
    _input_tensors,
    _loss,
    _n_targets,
    _test_frame,
    check_features_match,
    fit_descriptor_normalization,
)
from specfusion_lib.training.checkpoints import (
    checkpoint_file as _checkpoint_file,
)
from specfusion_lib.training.checkpoints import (
    full_metadata,
    profile_metadata,
    save_checkpoint,
    snapshot_metadata,
)
from specfusion_lib.training.loop import fit_epochs, resolve_device
from specfusion_lib.training.metrics import baseline_metrics, metrics_from_table
from specfusion_lib.training.splits import capped_rows, resolve_split, split_groups

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "MultiTaskData",
    "MultiTaskResult",
    "checkpoint_file",
    "multitask_data",
    "predict_multitask",
    "train_multitask",
]

#: Materials per forward pass when evaluating (validation, test, prediction).
_EVAL_BATCH = 256


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _union_features(feature_sets: Sequence[FeatureSet]) -> tuple[FeatureSet, list[str]]:
    """Rows of several FeatureSets (same padding), each material once, first-seen order."""
    first = feature_sets[0]
    for fs in feature_sets[1:]:
        if (fs.max_elements, fs.n_descriptors, fs.n_points) != (
                first.max_elements, first.n_descriptors, first.n_points):
            raise ConfigurationError(
                "the tasks' features differ in padding / descriptors / points "
                f"({(fs.max_elements, fs.n_descriptors, fs.n_points)} vs "
                f"{(first.max_elements, first.n_descriptors, first.n_points)}); build them "
                "from one FeatureSet")
    where: dict[str, tuple[int, int]] = {}
    for k, fs in enumerate(feature_sets):
        for i, mid in enumerate(fs.material_ids):
            where.setdefault(mid, (k, i))
    ids = list(where)
    pick = [where[m] for m in ids]

    def stack(name: str) -> np.ndarray:
        return np.stack([getattr(feature_sets[k], name)[i] for k, i in pick])

    union = replace(
        first,
        material_ids=tuple(ids),
        elements=tuple(feature_sets[k].elements[i] for k, i in pick),
        descriptors=stack("descriptors"),
        element_mask=stack("element_mask"),
        tm_mask=stack("tm_mask"),
        spectra=stack("spectra"),
        spectrum_mask=stack("spectrum_mask"),
        families=(None if any(feature_sets[k].families is None for k, _ in pick)
                  else tuple(feature_sets[k].families[i] for k, i in pick)),
    )
    return union, ids


@dataclass(frozen=True, eq=False)
class MultiTaskData:
    """Shared inputs and masked per-task labels of several tasks.

    Attributes:
        features: Inputs of the ``N`` materials carrying at least one of the labels.
        specs: Task name → :class:`~specfusion_lib.properties.features.TaskSpec`, in head order.
        targets: Task name → labels: material level ``(N,)`` (float32 values, NaN where
            masked; int64 class indices, :data:`IGNORE_INDEX` where masked); element level
            ``(N, E)`` int64 class indices, :data:`IGNORE_INDEX` at unlabelled elements.
        masks: Task name → ``(N,)`` bool, ``True`` where the material carries the label.
            Only these rows enter the task's loss, target statistics, metrics and baseline.
        class_names: Task name → class names (empty for regression).
        excluded: Task name → reason → number of materials the single-task path left out.
        not_available: Task name → message, for tasks skipped because the snapshot lacks
            them (``multitask_data(..., skip_unavailable=True)``).
        snapshot: Snapshot id, source and file checksums (``None`` for synthetic data).
    """

    features: FeatureSet
    specs: Mapping[str, TaskSpec]
    targets: Mapping[str, np.ndarray]
    masks: Mapping[str, np.ndarray]
    class_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    excluded: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    not_available: Mapping[str, str] = field(default_factory=dict)
    snapshot: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        n, e = len(self.features), self.features.max_elements
        names = list(self.specs)
        if not names:
            raise ConfigurationError("multi-task data needs at least one task")
        for attr in ("targets", "masks"):
            if list(getattr(self, attr)) != names:
                raise ConfigurationError(f"{attr} must have the tasks {names} in that order, "
                                         f"got {list(getattr(self, attr))}")
        any_label = np.zeros(n, dtype=bool)
        for name, spec in self.specs.items():
            y, mask = self.targets[name], self.masks[name]
            if mask.shape != (n,) or mask.dtype != np.bool_:
                raise ConfigurationError(f"mask of task {name!r} must be a bool array of shape "
                                         f"({n},), got {mask.dtype} {mask.shape}")
            shape = (n, e) if spec.level == "element" else (n,)
            if y.shape != shape:
                raise ConfigurationError(f"targets of task {name!r} must have shape {shape}, "
                                         f"got {y.shape}")
            if not mask.any():
                raise ConfigurationError(f"task {name!r} has no labelled material")
            labelled = y[mask]
            if spec.kind == "regression":
                if not np.all(np.isfinite(labelled)):
                    raise ConfigurationError(f"task {name!r}: labelled regression targets "
                                             "must be finite")
            else:
                n_classes = len(self.class_names.get(name, ()))
                if n_classes < 1:
                    raise ConfigurationError(f"classification task {name!r} needs class names")
                valid = (labelled[labelled != IGNORE_INDEX] if spec.level == "element"
                         else labelled)
                if valid.size and (valid.min() < 0 or valid.max() >= n_classes):
                    raise ConfigurationError(f"task {name!r}: class indices must lie in "
                                             f"0..{n_classes - 1}")
                if spec.level == "element" and np.any(
                        (labelled == IGNORE_INDEX).all(axis=1)):
                    raise ConfigurationError(f"task {name!r}: a row marked as labelled has no "
                                             "labelled element")
            any_label |= mask
        if not any_label.all():
            missing = [self.features.material_ids[i] for i in np.flatnonzero(~any_label)[:5]]
            raise ConfigurationError(f"every material must carry at least one label; "
                                     f"{int((~any_label).sum())} carry none (e.g. {missing})")

    def __len__(self) -> int:
        return len(self.features)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Task names, in head order."""
        return tuple(self.specs)

    def n_outputs(self, task: str) -> int:
        """Output width of a task's head: classes, or 1 for regression."""
        return (len(self.class_names[task]) if self.specs[task].kind == "classification"
                else 1)

    def subset(self, indices: Sequence[int] | np.ndarray) -> MultiTaskData:
        """The data of the materials at ``indices`` (each task must keep a labelled row)."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(self, features=self.features.subset(idx),
                       targets={t: y[idx] for t, y in self.targets.items()},
                       masks={t: m[idx] for t, m in self.masks.items()})

    def task_data(self, task: str) -> TaskData:
        """One task's labelled rows as single-task :class:`~.features.TaskData`.

        Raises:
            ConfigurationError: If ``task`` is not one of :attr:`tasks`.
        """
        if task not in self.specs:
            raise ConfigurationError(f"task {task!r} is not in this multi-task data "
                                     f"({list(self.specs)})")
        rows = np.flatnonzero(self.masks[task])
        return TaskData(self.specs[task], self.features.subset(rows), self.targets[task][rows],
                        tuple(self.class_names.get(task, ())),
                        dict(self.excluded.get(task, {})))

    def label_counts(self) -> dict[str, dict[str, int]]:
        """Per task: labelled samples per class (classification) or ``{"n": ...}``."""
        return {t: self.task_data(t).label_counts() for t in self.specs}

    @classmethod
    def from_task_data(cls, tasks: Mapping[str, TaskData], *,
                       not_available: Mapping[str, str] | None = None,
                       snapshot: Mapping[str, Any] | None = None) -> MultiTaskData:
        """Join single-task data into one multi-task set over the union of their materials.

        Rows are the materials of every task's features, each once, in first-seen order
        (tasks in the given order); the inputs of a material are taken from the first task
        that has it, so all tasks' features must come from one
        :class:`~specfusion_lib.properties.features.FeatureSet` (same padding).

        Args:
            tasks: Task name → its :class:`~specfusion_lib.properties.features.TaskData` (the key
                must be the task's name).
            not_available: Tasks left out because the snapshot lacks them (name → message).
            snapshot: Snapshot metadata to carry into the run's metadata.

        Raises:
            ConfigurationError: No task, a key that differs from its task's name, or
                features that do not fit together.
        """
        if not tasks:
            raise ConfigurationError("multi-task data needs at least one task")
        for name, data in tasks.items():
            if data.spec.name != name:
                raise ConfigurationError(f"task data under {name!r} is for task "
                                         f"{data.spec.name!r}")
        union, ids = _union_features([d.features for d in tasks.values()])
        row_of = {m: i for i, m in enumerate(ids)}
        n, e = len(ids), union.max_elements
        targets, masks = {}, {}
        for name, data in tasks.items():
            rows = np.array([row_of[m] for m in data.features.material_ids], dtype=np.int64)
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            if data.spec.level == "element":
                y = np.full((n, e), IGNORE_INDEX, dtype=np.int64)
            elif data.spec.kind == "regression":
                y = np.full(n, np.nan, dtype=np.float32)
            else:
                y = np.full(n, IGNORE_INDEX, dtype=np.int64)
            y[rows] = data.y
            targets[name], masks[name] = y, mask
        return cls(features=union, specs={t: d.spec for t, d in tasks.items()},
                   targets=targets, masks=masks,
                   class_names={t: tuple(d.class_names) for t, d in tasks.items()},
                   excluded={t: dict(d.excluded) for t, d in tasks.items()},
                   not_available=dict(not_available or {}), snapshot=snapshot)


def _task_names(tasks: Iterable[str]) -> list[str]:
    names = [tasks] if isinstance(tasks, str) else list(tasks)
    if not names:
        raise ConfigurationError("give at least one task for multi-task training")
    duplicates = sorted({t for t in names if names.count(t) > 1})
    if duplicates:
        raise ConfigurationError(f"task(s) {duplicates} given more than once")
    for name in names:
        get_task_spec(name)  # unknown names raise ConfigurationError
    return names


def multitask_data(
    snapshot: Snapshot,
    tasks: Iterable[str],
    features: FeatureSet | None = None,
    *,
    all_element: bool = False,
    max_materials: int | None = None,
    skip_unavailable: bool = False,
) -> MultiTaskData:
    """Labels of several tasks over one shared set of inputs, absent labels masked.

    Each task's labels are read with :func:`~specfusion_lib.properties.features.task_data`; the rows
    are the union of the materials (with a usable spectrum) that carry at least one of them.

    Args:
        snapshot: A loaded :class:`~specfusion_lib.data.snapshot.Snapshot`.
        tasks: Names of :data:`~specfusion_lib.properties.features.FEATURE_TASKS` (material- and
            element-level tasks may be mixed); the order is the head order.
        features: Pre-built inputs (:func:`~specfusion_lib.properties.features.build_features`);
            built here when ``None``.
        all_element: Passed to ``build_features`` when ``features`` is ``None`` (must match
            ``features.all_element`` otherwise).
        max_materials: Keep a seeded (seed 0, as
            :func:`~specfusion_lib.properties.train.train_task`) random subset of this many union
            materials (e.g. the profile's cap).
        skip_unavailable: Leave out tasks the snapshot lacks (listed in
            :attr:`MultiTaskData.not_available`) instead of raising.

    Returns:
        A :class:`MultiTaskData`.

    Raises:
        ConfigurationError: No task, a task given twice, an unknown task, or
            ``all_element`` not matching ``features``.
        TaskNotAvailableError: A task the snapshot lacks (without ``skip_unavailable``), or
            none of the tasks available.
    """
    names = _task_names(tasks)
    not_available: dict[str, str] = {}
    wanted = []
    for name in names:  # cheap label check before the spectra are preprocessed
        try:
            require_task(snapshot, name)
            wanted.append(name)
        except TaskNotAvailableError as exc:
            if not skip_unavailable:
                raise
            not_available[name] = str(exc)
    if not wanted:
        raise TaskNotAvailableError(f"none of the tasks {names} is available in this snapshot: "
                                    + "; ".join(not_available.values()))
    if features is None:
        features = build_features(snapshot, all_element=all_element)
    elif features.all_element != all_element:
        raise ConfigurationError(f"features were built with all_element={features.all_element}"
                                 f", the run asks for all_element={all_element}")
    per_task: dict[str, TaskData] = {}
    for name in wanted:
        try:
            per_task[name] = task_data(snapshot, name, features)
        except TaskNotAvailableError as exc:
            if not skip_unavailable:
                raise
            not_available[name] = str(exc)
    if not per_task:
        raise TaskNotAvailableError(f"none of the tasks {names} is available in this snapshot: "
                                    + "; ".join(not_available.values()))
    # rows in the order of ``features`` (task_data keeps that order)
    order = {m: i for i, m in enumerate(features.material_ids)}
    data = MultiTaskData.from_task_data(per_task, not_available=not_available,
                                        snapshot=snapshot_metadata(snapshot))
    data = data.subset(np.argsort([order[m] for m in data.features.material_ids],
                                  kind="stable"))
    if max_materials is not None and len(data) > max_materials:
        data = data.subset(capped_rows(data.features.material_ids, int(max_materials)))
    return data


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class MultiTaskResult:
    """Outcome of one multi-task training run (one seed).

    Attributes:
        tasks: Task names, in head order.
        seed: Training seed.
        metrics: Task → test metrics on its labelled test rows (accuracy, f1_macro or mae,
            rmse, r2; n_test).
        baseline: Task → the trivial predictor's metrics on the same rows.
        history: Per epoch: ``epoch``, ``train_loss``, ``val_loss`` (weighted sums) and
            ``train_loss:<task>`` / ``val_loss:<task>`` (NaN where the part has no label).
        best_epoch: Epoch (1-based) whose weights were kept.
        epochs_run: Epochs trained.
        split: ``{"train": ids, "val": ids, "test": ids}`` over the union materials.
        class_names: Task → classes (empty for regression).
        predictions: Task → test predictions (``material_id`` (+ ``element``), ``y_true``,
            ``y_pred``) as :func:`~specfusion_lib.properties.train.train_model` gives them.
        model: The trained model (best epoch, eval mode, on its training device).
        metadata: Everything stored with the checkpoint.
        task_weights: Task → loss weight.
        checkpoint: Checkpoint path, once :meth:`save` wrote one.
        train_seconds: Wall time of the training epochs (without validation).
        samples_per_second: Training materials per second (each with all its labels).
    """

    tasks: tuple[str, ...]
    seed: int
    metrics: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]]
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    split: dict[str, list[str]]
    class_names: dict[str, tuple[str, ...]]
    predictions: dict[str, pd.DataFrame]
    model: MultiTaskSpecFusionNet
    metadata: dict[str, Any]
    task_weights: dict[str, float]
    checkpoint: Path | None = None
    train_seconds: float = math.nan
    samples_per_second: float = math.nan

    def table(self) -> pd.DataFrame:
        """One row per task: metrics, baseline metrics (``baseline_`` prefix), weight."""
        rows = []
        for task in self.tasks:
            row: dict[str, Any] = {"task": task, "seed": self.seed, **self.metrics[task]}
            row.update({f"baseline_{k}": v for k, v in self.baseline[task].items()
                        if k != "n_test"})
            row["task_weight"] = self.task_weights[task]
            rows.append(row)
        return pd.DataFrame(rows)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model and metadata with
        :func:`~specfusion_lib.training.checkpoints.save_checkpoint`."""
        self.checkpoint = save_checkpoint(path, self.model, self.metadata)
        return self.checkpoint


def checkpoint_file(checkpoint_dir: str | os.PathLike[str], seed: int, tag: str = "") -> Path:
    """``<dir>/multitask[-<tag>]-s<seed>.pt``: a name Predictor.from_dir does not pick up."""
    return _checkpoint_file(checkpoint_dir, "multitask", tag, f"s{int(seed)}")


def _weights(tasks: Sequence[str], task_weights: Mapping[str, float] | None) -> dict[str, float]:
    given = dict(task_weights or {})
    unknown = sorted(set(given) - set(tasks))
    if unknown:
        raise ConfigurationError(f"task_weights name task(s) {unknown} that are not trained "
                                 f"({list(tasks)})")
    weights = {t: float(given.get(t, 1.0)) for t in tasks}
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise ConfigurationError(f"task weights must be finite and non-negative, got {weights}")
    if not any(w > 0 for w in weights.values()):
        raise ConfigurationError("at least one task weight must be positive")
    return weights


@torch.no_grad()
def _raw_outputs(model: MultiTaskSpecFusionNet, inputs: Sequence[torch.Tensor],
                 idx: np.ndarray | None, batch_size: int = _EVAL_BATCH) -> dict[str, torch.Tensor]:
    """Eval-mode outputs of rows ``idx`` (all rows for ``None``), per task, on the CPU."""
    model.eval()
    n = inputs[0].shape[0]
    order = torch.arange(n) if idx is None else torch.as_tensor(idx, dtype=torch.long)
    outs: dict[str, list[torch.Tensor]] = {t: [] for t in model.heads}
    for start in range(0, len(order), batch_size):
        b = order[start:start + batch_size].to(inputs[0].device)
        for task, out in model(*(t[b] for t in inputs)).items():
            outs[task].append(out.float().cpu())
    return {t: (torch.cat(v, dim=0) if v else torch.empty(0)) for t, v in outs.items()}


class _Targets:
    """Per-task target tensors, masks and loss evaluation on a device.

    Regression targets are standardised with the statistics of their labelled training rows.
    """

    def __init__(self, data: MultiTaskData, train_idx: np.ndarray,
                 device: torch.device) -> None:
        self.specs = dict(data.specs)
        self.stats: dict[str, dict[str, float] | None] = {}
        self.y: dict[str, torch.Tensor] = {}
        self.mask: dict[str, torch.Tensor] = {}
        for task, spec in self.specs.items():
            y, mask = data.targets[task], data.masks[task]
            train_rows = train_idx[mask[train_idx]]
            if _n_targets(spec.level, torch.as_tensor(y[train_rows])) == 0:
                raise ConfigurationError(
                    f"task {task!r} has no labelled material in the training part "
                    f"({int(mask.sum())} labelled in total); use more data or another split")
            if spec.kind == "regression":
                values = y[train_rows].astype(np.float64)
                std = float(values.std())
                stats = {"mean": float(values.mean()), "std": std if std > 1e-12 else 1.0}
                self.stats[task] = stats
                self.y[task] = torch.as_tensor((y - stats["mean"]) / stats["std"],
                                               dtype=torch.float32, device=device)
            else:
                self.stats[task] = None
                self.y[task] = torch.as_tensor(y, dtype=torch.long, device=device)
            self.mask[task] = torch.as_tensor(mask, device=device)

    def losses(self, out: Mapping[str, torch.Tensor], rows: torch.Tensor,
               reduction: str = "mean") -> dict[str, tuple[torch.Tensor, int]]:
        """Task → (loss, number of labelled targets) over the labelled ``rows``.

        ``out`` holds the model outputs of ``rows`` (same order). Tasks without a labelled
        target among ``rows`` are left out.
        """
        result = {}
        for task, spec in self.specs.items():
            keep = self.mask[task][rows]
            if not bool(keep.any()):
                continue
            y = self.y[task][rows[keep]]
            count = _n_targets(spec.level, y)
            if count == 0:
                continue
            result[task] = (_loss(spec.kind, spec.level, out[task][keep], y, reduction), count)
        return result


def train_multitask(
    data: MultiTaskData,
    profile: Profile | str = "quick",
    seed: int = 0,
    *,
    split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    task_weights: Mapping[str, float] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    max_epochs: int | None = None,
    progress: bool = False,
) -> MultiTaskResult:
    """Train one MultiTaskSpecFusionNet on several targets (SI §S1.1 protocol, masked losses).

    Args:
        data: Shared inputs and masked labels (:func:`multitask_data`).
        profile: A :class:`~specfusion_lib.core.profiles.Profile` or its name (epochs, patience,
            learning rate, batch size, split fractions). The profile's ``max_materials`` is
            not applied here (pass it to :func:`multitask_data`).
        seed: Seed of the weights, dropout and batch order (and of the split unless
            ``split`` is given).
        split: ``(train, val, test)`` row indices into ``data`` (default:
            :func:`~specfusion_lib.training.splits.split_indices` with ``seed``).
        task_weights: Task → weight of its loss in the sum (default 1 for every task).
        model_kwargs: Extra :class:`~specfusion_lib.models.specfusionnet.
            MultiTaskSpecFusionNet` arguments (sizes, ablation switches); ``task_outputs``,
            ``element_level_tasks``, ``n_descriptors``, ``n_points`` and ``all_element``
            come from ``data``.
        device: Torch device (default: CUDA for the paper profile when present, else CPU).
        max_epochs: Override the profile's epoch cap.
        progress: Show a progress bar over epochs.

    Returns:
        A :class:`MultiTaskResult`; its metadata is complete for
        :func:`~specfusion_lib.training.checkpoints.save_checkpoint` (:meth:`MultiTaskResult.save`).

    Raises:
        ConfigurationError: Fewer than 3 materials, an empty training / validation part, a
            task without a labelled training row, invalid weights or model arguments.

    Note:
        Seeds torch's global random number generator with ``seed``.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    dev = resolve_device(device, prof)
    tasks = data.tasks
    weights = _weights(tasks, task_weights)
    groups, split_method = split_groups(prof.split_by, data.features.families, len(data))
    if split is not None:
        split_method = "given"
    train_idx, val_idx, test_idx = resolve_split(len(data), prof.split, seed, split,
                                                 groups=groups)
    epochs = int(prof.max_epochs if max_epochs is None else max_epochs)

    torch.manual_seed(seed)
    kwargs = dict(model_kwargs or {})
    features = data.features
    fixed = {"task_outputs": {t: data.n_outputs(t) for t in tasks},
             "element_level_tasks": [t for t in tasks if data.specs[t].level == "element"],
             "n_descriptors": features.n_descriptors, "n_points": features.n_points,
             "all_element": features.all_element}
    clash = set(kwargs) & set(fixed)
    if clash:
        raise ConfigurationError(f"model_kwargs may not set {sorted(clash)} (taken from data)")
    try:
        model = MultiTaskSpecFusionNet(**fixed, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid MultiTaskSpecFusionNet arguments: {exc}") from None
    d_mean, d_std = fit_descriptor_normalization(features.subset(train_idx))
    model.set_descriptor_normalization(d_mean, d_std)
    model.to(dev)

    inputs = _input_tensors(features, dev)
    targets = _Targets(data, train_idx, dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=prof.learning_rate)
    val_t = torch.as_tensor(val_idx, dtype=torch.long, device=dev)

    def train_batch(b: torch.Tensor) -> dict[str, tuple[float, int]] | None:
        parts = targets.losses(model(*(t[b] for t in inputs)), b)
        if not parts:
            return None
        optimizer.zero_grad(set_to_none=True)
        loss = sum(weights[t] * value for t, (value, _) in parts.items())
        loss.backward()
        optimizer.step()
        return {t: (float(value.detach()), k) for t, (value, k) in parts.items()}

    def validate(train: dict[str, float]) -> dict[str, float]:
        val_out = {t: o.to(dev) for t, o in _raw_outputs(model, inputs, val_idx).items()}
        val_parts = targets.losses(val_out, val_t, "sum")
        val_by_task = {t: (float(val_parts[t][0]) / val_parts[t][1] if t in val_parts
                           else math.nan) for t in tasks}
        train_by_task = {t: train.get(t, math.nan) for t in tasks}
        entry = {
            "train_loss": sum(weights[t] * v for t, v in train_by_task.items()
                              if not math.isnan(v)),
            "val_loss": sum(weights[t] * v for t, v in val_by_task.items()
                            if not math.isnan(v)),
        }
        entry.update({f"train_loss:{t}": v for t, v in train_by_task.items()})
        entry.update({f"val_loss:{t}": v for t, v in val_by_task.items()})
        return entry

    loop = fit_epochs(model, train_idx, max_epochs=epochs, batch_size=int(prof.batch_size),
                      patience=prof.patience, seed=seed, device=dev, train_batch=train_batch,
                      validate=validate, desc=f"multi-task ({len(tasks)}) seed {seed}",
                      progress=progress)
    history, best_epoch = loop.history, loop.best_epoch

    test_out = _raw_outputs(model, inputs, test_idx)
    metrics, baseline, frames = {}, {}, {}
    for task in tasks:
        spec, y, mask = data.specs[task], data.targets[task], data.masks[task]
        keep = mask[test_idx]
        view = TaskData(spec, features, y, tuple(data.class_names.get(task, ())))
        frames[task] = _test_frame(view, test_idx[keep], test_out[task][torch.as_tensor(keep)],
                                   targets.stats[task])
        metrics[task] = metrics_from_table(spec.kind, frames[task])
        baseline[task] = baseline_metrics(spec.kind, y[train_idx[mask[train_idx]]],
                                          y[test_idx[keep]])
    ids = features.material_ids
    split_ids = {name: [ids[i] for i in part]
                 for name, part in zip(("train", "val", "test"),
                                       (train_idx, val_idx, test_idx), strict=True)}
    samples_per_second = loop.samples_per_second
    metadata: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "multitask": True,
        "tasks": {t: {"name": t, "kind": data.specs[t].kind, "level": data.specs[t].level,
                      "unit": data.specs[t].unit,
                      "class_names": list(data.class_names.get(t, ()))} for t in tasks},
        "task_weights": weights,
        "seed": int(seed),
        "profile": profile_metadata(prof, epochs),
        "split": split_ids,
        "split_method": split_method,
        "training_elements": sorted({el for i in train_idx for el in features.elements[i]}),
        "normalization": {
            "descriptor_names": list(features.descriptor_names),
            "descriptor_mean": d_mean, "descriptor_std": d_std,
            "targets": dict(targets.stats),
            "spectra": {"method": "per-spectrum z-score (preprocess_xanes)",
                        "edge": features.edge, "window_ev": list(features.window),
                        "n_points": features.n_points, "all_element": features.all_element},
        },
        "metrics": metrics,
        "baseline": baseline,
        "history": history,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "label_counts": data.label_counts(),
        "excluded": {t: dict(v) for t, v in data.excluded.items()},
        "not_available": dict(data.not_available),
        "skipped_spectra": len(features.skipped),
        "samples_per_second": samples_per_second,
    }
    if data.snapshot is not None:
        metadata["snapshot"] = dict(data.snapshot)
    return MultiTaskResult(
        tasks=tasks, seed=int(seed), metrics=metrics, baseline=baseline, history=history,
        best_epoch=best_epoch, epochs_run=len(history), split=split_ids,
        class_names={t: tuple(data.class_names.get(t, ())) for t in tasks},
        predictions=frames, model=model, metadata=full_metadata(model, metadata),
        task_weights=weights, train_seconds=loop.train_seconds,
        samples_per_second=samples_per_second,
    )


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


def predict_multitask(model: MultiTaskSpecFusionNet, features: FeatureSet,
                      metadata: Mapping[str, Any] | None = None, *,
                      batch_size: int = _EVAL_BATCH) -> dict[str, np.ndarray]:
    """Predictions of a multi-task model per task, in physical units / as probabilities.

    Args:
        model: A trained :class:`~specfusion_lib.models.specfusionnet.MultiTaskSpecFusionNet`.
        features: Inputs (:func:`~specfusion_lib.properties.features.build_features` or
            :func:`~specfusion_lib.properties.features.features_for_compound`).
        metadata: The run's metadata (:attr:`MultiTaskResult.metadata` or from
            :func:`~specfusion_lib.training.checkpoints.load`); without it the raw outputs are
            returned.
        batch_size: Materials per forward pass.

    Returns:
        Task → regression ``(N,)`` values in the target's unit; classification ``(N, C)``
        probabilities, or ``(N, E, C)`` for element-level tasks (padded elements'
        rows are meaningless; use ``features.tm_mask``).

    Raises:
        ConfigurationError: ``model`` is not a multi-task model, ``metadata`` is not a
            multi-task run's, or the features do not fit the model's spectra settings.
    """
    if not isinstance(model, MultiTaskSpecFusionNet):
        raise ConfigurationError(f"predict_multitask needs a MultiTaskSpecFusionNet, got "
                                 f"{type(model).__name__}; use "
                                 "specfusion_lib.properties.train.predict")
    device = next(model.parameters()).device
    if metadata is not None:
        if "tasks" not in metadata or "targets" not in metadata.get("normalization", {}):
            raise ConfigurationError("metadata is not a multi-task run's (no 'tasks' entry)")
        check_features_match(features, metadata)
    out = _raw_outputs(model, _input_tensors(features, device), None, batch_size)
    if metadata is None:
        return {t: v.numpy() for t, v in out.items()}
    result = {}
    for task, raw in out.items():
        if metadata["tasks"][task]["kind"] == "regression":
            stats = metadata["normalization"]["targets"][task]
            result[task] = raw[..., 0].numpy() * stats["std"] + stats["mean"]
        else:
            result[task] = torch.softmax(raw, dim=-1).numpy()
    return result
