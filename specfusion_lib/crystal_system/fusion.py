"""XANES-only vs PXRD-only vs fused XANES+PXRD crystal-system models (SI Fig. S21).

Behind notebook 08. The paper finds PXRD alone best (0.81), the fused model at 0.66 and XANES
alone at 0.48 (main text, discussion of Fig. S21): crystal-system classification depends on
long-range symmetry, which only the diffraction pattern encodes.

Method (:func:`compare_modalities`), per seed of the profile:

1. **Same materials**: those with a usable TM K-edge XANES
   (:func:`specfusion_lib.properties.features.build_features`), a simulated pattern and a
   crystal-system label.
2. **XANES only**: SpecFusionNet with the ``crystal_system`` task
   (:func:`specfusion_lib.properties.train.train_task`, SI §S1.1 protocol, 70/15/15 split seeded
   with the seed; checkpoint ``crystal_system-fig-s21-seed<N>.pt``). Its split (material ids) is the
   split of the two other models.
3. **PXRD only**: the CNN-Transformer
   (:func:`specfusion_lib.crystal_system.training.train_crystal_system_model`) on the same training,
   validation and test materials (checkpoint ``pxrd-crystal-system-fig-s21-seed<N>.pt``).
4. **XANES + PXRD**: :class:`~specfusion_lib.models.pxrd_net.FusedCrystalSystemNet`,
   the PXRD embedding concatenated with SpecFusionNet's pooled compound embedding, trained
   jointly end to end with the same protocol, the same per-epoch pattern augmentation and the
   same validation / test patterns (and the same augmented copies per epoch,
   :func:`specfusion_lib.crystal_system.training.epoch_copies`) as the PXRD-only model (checkpoint
   ``pxrd-xanes-crystal-system-fig-s21-seed<N>.pt``). Feature-level fusion is what the paper
   compares (a late fusion of the two models' probabilities could not fall below the better
   model in the way the paper reports).

Every checkpoint is resumed when it matches the snapshot, profile, seed, split and
hyper-parameters. The tagged file names keep these models out of ``specfusion predict`` and
``specfusion predict-crystal-system``, which load the untagged checkpoints of notebooks 02 and 07.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.paper import FIG_S21_ACCURACY
from specfusion_lib.core.profiles import Profile, get_profile
from specfusion_lib.crystal_system.patterns import TRAINING_CONDITIONS
from specfusion_lib.crystal_system.training import (
    _STREAM_TEST,
    _STREAM_TRAIN,
    _STREAM_VAL,
    CPU_THREADS,
    CrystalSystemData,
    _test_frame,
    _training_meta,
    crystal_system_data,
    train_crystal_system_model,
    training_rows,
)
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.models.pxrd_net import FusedCrystalSystemNet
from specfusion_lib.properties.features import FeatureSet, TaskNotAvailableError, build_features
from specfusion_lib.properties.train import fit_descriptor_normalization, train_task
from specfusion_lib.training.checkpoints import (
    checkpoint_file,
    load_matching_checkpoint,
    profile_metadata,
    save_checkpoint,
    snapshot_metadata,
)
from specfusion_lib.training.loop import batched_logits, fit_classifier, resolve_device
from specfusion_lib.training.metrics import baseline_metrics, metrics_from_table
from specfusion_lib.training.splits import split_ids

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "MODALITIES",
    "S21_TAG",
    "ModalityComparison",
    "ModalityRun",
    "compare_modalities",
    "train_fused_model",
]


#: The three inputs, in the order of SI Fig. S21.
MODALITIES: tuple[str, ...] = ("XANES only", "PXRD only", "XANES + PXRD")
#: Checkpoint tag of the models of this comparison.
S21_TAG = "fig-s21"


@dataclass
class ModalityRun:
    """One model of the comparison (one modality, one seed).

    Attributes:
        modality: One of :data:`MODALITIES`.
        seed: Seed of the split and the training.
        metrics: Test accuracy, macro-F1, n_test.
        baseline: Majority class of the training part on the test part.
        predictions: ``material_id``, ``y_true``, ``y_pred``.
        n_train: Training materials.
        n_val: Validation materials.
        epochs_run: Epochs trained.
        checkpoint: Checkpoint path, if written.
        resumed: Loaded from an existing checkpoint.
    """

    modality: str
    seed: int
    metrics: dict[str, float]
    baseline: dict[str, float]
    predictions: pd.DataFrame
    n_train: int
    n_val: int
    epochs_run: int
    checkpoint: Path | None = None
    resumed: bool = False


@dataclass
class ModalityComparison:
    """The three models for every seed, or why the comparison is not possible.

    Attributes:
        runs: Every :class:`ModalityRun`.
        n_materials: Materials with XANES, a pattern and a label.
        reason: Why nothing was trained ("" when trained).
        excluded: Reason → materials left out.
    """

    runs: list[ModalityRun] = field(default_factory=list)
    n_materials: int = 0
    reason: str = ""
    excluded: dict[str, int] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Per modality: ``accuracy`` (mean over seeds), ``accuracy_std``, ``f1_macro``,
        ``majority_class``, ``n_train``, ``n_test``, ``paper_value``, ``paper_text``,
        ``paper_source`` and ``status``."""
        rows = []
        for modality in MODALITIES:
            runs = [r for r in self.runs if r.modality == modality]
            acc = np.array([r.metrics["accuracy"] for r in runs], dtype=float)
            f1 = np.array([r.metrics["f1_macro"] for r in runs], dtype=float)
            maj = np.array([r.baseline["accuracy"] for r in runs], dtype=float)
            pv = FIG_S21_ACCURACY[modality]
            rows.append({
                "modality": modality,
                "accuracy": float(acc.mean()) if acc.size else math.nan,
                "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else math.nan,
                "f1_macro": float(f1.mean()) if f1.size else math.nan,
                "majority_class": float(maj.mean()) if maj.size else math.nan,
                "n_train": int(runs[0].n_train) if runs else 0,
                "n_test": int(runs[0].metrics["n_test"]) if runs else 0,
                "seeds": len(runs),
                "paper_value": pv.value, "paper_text": pv.text, "paper_source": pv.source,
                "status": "trained" if runs else (self.reason or "not trained"),
            })
        return pd.DataFrame(rows)

    def predictions(self) -> pd.DataFrame:
        """Test predictions of every model: ``modality``, ``seed``, ``material_id``,
        ``y_true``, ``y_pred``."""
        frames = [r.predictions[["material_id", "y_true", "y_pred"]].assign(
            modality=r.modality, seed=r.seed) for r in self.runs]
        if not frames:
            return pd.DataFrame(columns=["modality", "seed", "material_id", "y_true", "y_pred"])
        out = pd.concat(frames, ignore_index=True)
        return out[["modality", "seed", "material_id", "y_true", "y_pred"]]


def _xanes_tensors(features: FeatureSet) -> list[torch.Tensor]:
    return [torch.as_tensor(features.descriptors, dtype=torch.float32),
            torch.as_tensor(features.element_mask), torch.as_tensor(features.tm_mask),
            torch.as_tensor(features.spectra, dtype=torch.float32),
            torch.as_tensor(features.spectrum_mask)]


def train_fused_model(
    snapshot: Snapshot,
    profile: Profile,
    seed: int,
    data: CrystalSystemData,
    features: FeatureSet,
    split: Sequence[np.ndarray],
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    resume: bool = True,
    device: str | torch.device | None = None,
) -> ModalityRun:
    """Train the fused XANES+PXRD crystal-system model on a given split.

    Args:
        snapshot: The snapshot (for the checkpoint metadata).
        profile: Training settings.
        seed: Seed of the weights, batch order and pattern augmentation.
        data: Patterns and labels, rows aligned with ``features``.
        features: XANES inputs of the same materials in the same order.
        split: ``(train, val, test)`` row indices.
        checkpoint_dir: Write ``pxrd-xanes-crystal-system-fig-s21-seed<N>.pt`` here.
        progress: Show a progress bar.
        resume: Reuse a matching finished checkpoint.
        device: Torch device (default: CUDA for the paper profile when present, else CPU).

    Returns:
        A :class:`ModalityRun` (modality ``"XANES + PXRD"``).

    Raises:
        ConfigurationError: If patterns and XANES inputs are not aligned.
    """
    if tuple(features.material_ids) != tuple(data.material_ids):
        raise ConfigurationError("patterns and XANES inputs must hold the same materials in "
                                 "the same order")
    train_idx, val_idx, test_idx = (np.asarray(s, dtype=np.int64) for s in split)
    part_ids = split_ids(data.material_ids, (train_idx, val_idx, test_idx))
    torch.manual_seed(int(seed))
    model = FusedCrystalSystemNet(
        n_classes=len(CRYSTAL_SYSTEMS), pxrd={"n_points": int(data.grid.size)},
        xanes={"n_descriptors": features.n_descriptors, "n_points": features.n_points})
    epochs = int(profile.max_epochs)
    path = (None if checkpoint_dir is None else
            checkpoint_file(checkpoint_dir, "pxrd-xanes-crystal-system", S21_TAG,
                            f"seed{int(seed)}"))
    xanes = _xanes_tensors(features)
    val_patterns = data.measured_patterns(val_idx, seed, _STREAM_VAL)
    test_patterns = data.measured_patterns(test_idx, seed, _STREAM_TEST)

    def inputs(patterns: np.ndarray, idx: np.ndarray) -> list[torch.Tensor]:
        rows = torch.as_tensor(idx, dtype=torch.long)
        return [torch.from_numpy(patterns), *(t[rows] for t in xanes)]

    found = None if path is None or not resume else load_matching_checkpoint(path, snapshot, {
        "seed": int(seed), "split": part_ids, "profile": profile_metadata(profile, epochs),
        "hparams": model.hparams, "training_patterns": _training_meta(train_idx, profile)})
    if found is not None:
        loaded, meta = found
        out = batched_logits(loaded, inputs(test_patterns, test_idx), torch.device("cpu"))
        frame = _test_frame(data, test_idx, torch.softmax(out, 1).numpy())
        return ModalityRun("XANES + PXRD", int(seed), meta["metrics"], meta["baseline"],
                           frame, len(train_idx), len(val_idx), meta["epochs_run"], path, True)

    mean, std = fit_descriptor_normalization(features.subset(train_idx))
    model.set_descriptor_normalization(mean, std)

    rows = training_rows(train_idx, profile)

    def epoch_inputs(epoch: int) -> list[torch.Tensor]:
        rng = np.random.default_rng([int(seed), _STREAM_TRAIN, epoch])
        return inputs(data.sticks.render(rows, rng, TRAINING_CONDITIONS), rows)

    dev = resolve_device(device, profile)
    fit = fit_classifier(model, epoch_inputs, torch.as_tensor(data.y[rows]),
                         inputs(val_patterns, val_idx), torch.as_tensor(data.y[val_idx]),
                         profile, int(seed), max_epochs=epochs, device=dev,
                         threads=CPU_THREADS, progress=progress,
                         desc=f"XANES+PXRD seed {seed}")
    out = batched_logits(model, inputs(test_patterns, test_idx), dev)
    frame = _test_frame(data, test_idx, torch.softmax(out, 1).numpy())
    metrics = metrics_from_table("classification", frame)
    baseline = baseline_metrics("classification", data.y[train_idx], data.y[test_idx])
    model = model.cpu().eval()
    if path is not None:
        save_checkpoint(path, model, {
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "task": {"name": "crystal_system", "kind": "classification", "level": "material",
                     "unit": "", "class_names": list(CRYSTAL_SYSTEMS), "input": "xanes+pxrd"},
            "seed": int(seed), "profile": profile_metadata(profile, epochs), "split": part_ids,
            "training_patterns": _training_meta(train_idx, profile),
            "normalization": {"descriptor_names": list(features.descriptor_names),
                              "descriptor_mean": mean, "descriptor_std": std},
            "metrics": metrics, "baseline": baseline, "history": fit.history,
            "best_epoch": fit.best_epoch, "epochs_run": len(fit.history),
            "samples_per_second": fit.samples_per_second,
            "snapshot": snapshot_metadata(snapshot)})
    return ModalityRun("XANES + PXRD", int(seed), metrics, baseline, frame, len(train_idx),
                       len(val_idx), len(fit.history), path, False)


def compare_modalities(
    snapshot: Snapshot,
    profile: Profile | str = "quick",
    *,
    seeds: Sequence[int] | None = None,
    features: FeatureSet | None = None,
    data: CrystalSystemData | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> ModalityComparison:
    """Train the XANES-only, PXRD-only and fused models on the same materials and splits.

    Args:
        snapshot: A loaded snapshot.
        profile: Profile or its name (seeds, epochs, patience, split, material cap).
        seeds: Seeds (default: the profile's).
        features: TM-only XANES inputs (built here when ``None``).
        data: PXRD patterns and labels of the labelled materials (built when ``None``).
        cache_dir: Stick cache folder.
        checkpoint_dir: Where the nine (3 × seeds) checkpoints go (resumable).
        progress: Show progress bars.

    Returns:
        A :class:`ModalityComparison`; with fewer than three usable materials it holds no
        runs and says why.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if features is None:
        try:
            features = build_features(snapshot)
        except ConfigurationError as exc:
            return ModalityComparison(reason=f"no XANES inputs: {exc}")
    if data is None:
        data = crystal_system_data(snapshot, None, cache_dir=cache_dir, progress=progress)
    labelled = set(data.material_ids)
    common = [m for m in features.material_ids if m in labelled]
    excluded = {"XANES but no labelled pattern": len(features) - len(common),
                "labelled pattern but no usable XANES": len(labelled) - len(common)}
    if len(common) < 3:
        return ModalityComparison(n_materials=len(common), excluded=excluded,
                                  reason=f"only {len(common)} materials have XANES, a pattern "
                                         "and a crystal-system label; at least 3 are needed")
    feats = features.subset(features.index_of(common))
    runs: list[ModalityRun] = []
    for seed in (prof.seeds if seeds is None else seeds):
        try:
            xres = train_task(snapshot, "crystal_system", prof, int(seed), features=feats,
                              checkpoint_dir=checkpoint_dir, tag=S21_TAG, progress=progress)
        except TaskNotAvailableError as exc:
            return ModalityComparison(n_materials=len(common), excluded=excluded,
                                      reason=str(exc))
        split = xres.split
        runs.append(ModalityRun("XANES only", int(seed), xres.metrics, xres.baseline,
                                xres.predictions, len(split["train"]), len(split["val"]),
                                xres.epochs_run, xres.checkpoint, xres.resumed))
        order = [*split["train"], *split["val"], *split["test"]]
        n_tr, n_va = len(split["train"]), len(split["val"])
        parts = (np.arange(n_tr), np.arange(n_tr, n_tr + n_va), np.arange(n_tr + n_va,
                                                                           len(order)))
        sub = data.subset(data.sticks.index_of(order))
        pres = train_crystal_system_model(snapshot, prof, seed=int(seed), data=sub, split=parts,
                                          checkpoint_dir=checkpoint_dir, tag=S21_TAG,
                                          progress=progress)
        runs.append(ModalityRun("PXRD only", int(seed), pres.metrics, pres.baseline,
                                pres.predictions, n_tr, n_va, pres.epochs_run, pres.checkpoint,
                                pres.resumed))
        runs.append(train_fused_model(snapshot, prof, int(seed), sub,
                                      feats.subset(feats.index_of(order)), parts,
                                      checkpoint_dir=checkpoint_dir, progress=progress))
    return ModalityComparison(runs, len(common), "", excluded)
