"""A PXRD crystal-system model that holds on real structures, and its real-structure check.

The demo's structures come from about a hundred prototypes, so a classifier trained on them
alone learns the prototypes' peak positions: 0.44 on real Materials Project structures
against 0.75 on its own random test split (issue "honest numbers"). This module trains the
same CNN-Transformer (:class:`~specfusion_lib.models.pxrd_net.PXRDCrystalSystemNet`) on

* the **training families of the demo** (the family split of
  :func:`~specfusion_lib.training.splits.split_indices` with the snapshot's families, seed
  :attr:`SymmetryTrainingSettings.seed`: the demo test families are never seen), and
* the **real training structures** (:mod:`specfusion_lib.data.real_structures`,
  ``mp_structures_train`` without its fixed validation part),

every epoch under fresh **symmetry-preserving lattice strain**
(:mod:`specfusion_lib.crystal_system.reflections`) and the pattern augmentation of
:data:`~specfusion_lib.crystal_system.patterns.TRAINING_CONDITIONS`, with rows drawn with
probability ∝ (class count)^−``balance`` so that rare systems (triclinic) are seen often.
Early stopping and every choice (sources, strain, balance, size) use only the **validation
part** of the real training file (whole families), rendered once under
:data:`~specfusion_lib.crystal_system.patterns.MEASUREMENT_CONDITIONS`.

It is then reported, never tuned, on

* the **real-structure check** (``mp_structures_check``, 1,543 structures whose formulas
  are in neither the demo nor the training file), patterns from the package's own
  simulator (:func:`~specfusion_lib.spectra.pxrd.simulate_peaks`), clean and at noise
  levels, split into families seen / unseen in training (structural key,
  :func:`~specfusion_lib.data.families.structure_family_key`), and
* the **demo family-split test part**.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import Profile
from specfusion_lib.crystal_system.patterns import (
    CLEAN_CONDITIONS,
    MEASUREMENT_CONDITIONS,
    TRAINING_CONDITIONS,
        StickPatterns,
    _simulate_all,
    read_stick_cache,
    render_sticks,
    simulate_sticks,
    stick_cache_path,
    write_stick_cache,
)
from specfusion_lib.crystal_system.reflections import (
    ReflectionTables,
    StrainSettings,
    concat_tables,
    reflection_tables,
    strained_sticks,
)
from specfusion_lib.data.families import snapshot_families
from specfusion_lib.data.real_structures import (
    RealStructureSet,
    load_real_structures,
    seen_families,
    validation_part,
)
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.models.pxrd_net import PXRDCrystalSystemNet
from specfusion_lib.spectra import pxrd
from specfusion_lib.training.checkpoints import (
    jsonable,
    load,
    save_checkpoint,
    snapshot_metadata,
)
from specfusion_lib.training.loop import batched_logits, fit_classifier
from specfusion_lib.training.reports import accuracy_table
from specfusion_lib.training.splits import capped_rows, split_groups, split_indices

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "CHECK_NOISE_LEVELS",
    "SHIPPED_CHECKPOINT",
    "RealPatternData",
    "SymmetryTrainingSettings",
    "check_report",
    "load_symmetry_model",
    "cnn_predictor",
    "predict_probabilities",
    "real_pattern_data",
    "sklearn_predictor",
    "train_symmetry_model",
    "without_training_rows",
]

#: The shipped checkpoint (trained by :func:`train_symmetry_model` with the default settings;
#: its JSON sidecar holds the settings, data checksums and validation metrics).
SHIPPED_CHECKPOINT = (Path(__file__).resolve().parents[2] / "data" / "models"
                      / "pxrd-crystal-system-symmetry-seed0.pt")
#: Noise σ (fraction of the strongest peak) of the check's accuracy-vs-noise curve.
CHECK_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.02, 0.05, 0.10, 0.20)
_CLASS_INDEX = {c: i for i, c in enumerate(CRYSTAL_SYSTEMS)}


@dataclass(frozen=True)
class SymmetryTrainingSettings:
    """Settings of :func:`train_symmetry_model` (chosen on the validation part only).

    Attributes:
        sources: Training sources, a subset of ``("demo", "real")``.
        patterns_per_epoch: Rows drawn (with replacement) and rendered anew every epoch.
        max_epochs: Epoch cap.
        patience: Early-stopping patience (validation loss).
        balance: Exponent of the class re-weighting (0: as in the data, 1: uniform).
        strain: Amplitude of the lattice strain (``StrainSettings(0, 0)``: none).
        learning_rate: Adam learning rate.
        batch_size: Mini-batch size.
        seed: Seed of the demo family split, the weights, the draws and the augmentation.
        model: Extra :class:`PXRDCrystalSystemNet` arguments.
    """

    sources: tuple[str, ...] = ("demo", "real")
    patterns_per_epoch: int = 6144
    max_epochs: int = 12
    patience: int = 4
    balance: float = 0.5
    strain: StrainSettings = field(default_factory=StrainSettings)
    learning_rate: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    model: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sources or set(self.sources) - {"demo", "real"}:
            raise ConfigurationError(f"sources must be a non-empty subset of ('demo', 'real'), "
                                     f"got {self.sources}")
        if self.patterns_per_epoch < 1 or self.max_epochs < 1 or not 0 <= self.balance <= 1:
            raise ConfigurationError(f"invalid training settings: {self}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (checkpoint metadata)."""
        out = asdict(self)
        out["sources"] = list(self.sources)
        out["model"] = dict(self.model)
        return out


@dataclass(frozen=True, eq=False)
class RealPatternData:
    """Everything the model is trained, validated and checked on.

    Attributes:
        tables: Reflection tables of the training rows (demo training families, then real
            training structures outside the validation part).
        y: ``(N,)`` class index of every training row.
        sources: ``(N,)`` ``"demo"`` or ``"real"``.
        training_keys: Structural keys of all training rows (for seen / unseen).
        val: Sticks of the validation part; ``y_val`` its classes.
        check: Sticks of the real-structure check; ``y_check`` its classes; ``check_seen``
            whether each check row's family occurs in training.
        demo_test: Sticks of the demo's family-split test part; ``y_demo_test`` its classes.
        checksums: sha256 of the real-structure files and the snapshot id.
        lowered: Reflection tables (Friedel pairs merged only) of a seeded sample of the
            training structures, to be distorted to ``lowered_targets`` (``"monoclinic"``
            or ``"triclinic"``): the triclinic / monoclinic examples the real data lack.
    """

    tables: ReflectionTables
    y: np.ndarray
    sources: np.ndarray
    training_keys: frozenset[str]
    val: StickPatterns
    y_val: np.ndarray
    check: StickPatterns
    y_check: np.ndarray
    check_seen: np.ndarray
    demo_test: StickPatterns
    y_demo_test: np.ndarray
    checksums: Mapping[str, str]
    lowered: ReflectionTables | None = None
    lowered_targets: tuple[str, ...] = ()


def _labels(systems: Sequence[str | None]) -> np.ndarray:
    return np.array([_CLASS_INDEX[str(c)] for c in systems], dtype=np.int64)


def _real_sticks(real: RealStructureSet, cache_dir: Path | None, name: str) -> StickPatterns:
    """Sticks of real structures from the package's simulator (cached per part)."""
    path = None if cache_dir is None else stick_cache_path(cache_dir, name)
    sticks = None if path is None else read_stick_cache(path)
    if sticks is not None and sticks.material_ids == real.material_ids:
        return sticks
    frame = pd.DataFrame({
        "material_id": list(real.material_ids), "formula": list(real.formulas),
        "crystal_system": list(real.crystal_systems),
        "structure": [json.dumps(s.as_dict()) for s in real.structures]})
    sticks = _simulate_all(frame, f"real-{real.part}", pxrd.WAVELENGTH, pxrd.TWO_THETA_RANGE,
                           pxrd.TWO_THETA_STEP, False, 1)
    if sticks.skipped:
        raise ConfigurationError(f"real {real.part} structures without a pattern: "
                                 f"{dict(list(sticks.skipped.items())[:3])}")
    if path is not None:
        write_stick_cache(path, sticks)
    return sticks


def real_pattern_data(snapshot: Snapshot, *, seed: int = 0,
                      cache_dir: str | os.PathLike[str] | None = None,
                      split: tuple[float, float, float] = (0.70, 0.15, 0.15),
                      max_real_structures: int | None = None,
                      n_lowered: int = 1000,
                      progress: bool = False) -> RealPatternData:
    """Assemble the training rows, the validation part, the check and the demo test part.

    Args:
        snapshot: The demo (or another) snapshot with ``crystal_system`` labels.
        seed: Seed of the demo's family split.
        cache_dir: Folder of the reflection / stick caches (``None``: in memory).
        split: Fractions of the demo family split (its validation part is not used: the real
            validation part decides early stopping).
        max_real_structures: Keep a seeded subset of this many structures of each real file
            (the smoke profile; ``None``: all). A capped check is not the check.
        n_lowered: Training structures sampled (seeded) for the symmetry-lowering
            distortion; a cell with three 90° angles is lowered to monoclinic or triclinic
            (alternately), any other to triclinic.
        progress: Show progress bars.
    """
    folder = None if cache_dir is None or max_real_structures else Path(cache_dir)
    demo_sticks = simulate_sticks(snapshot, cache_dir=cache_dir, progress=progress)
    labelled = [i for i, c in enumerate(demo_sticks.crystal_systems) if c in _CLASS_INDEX]
    demo_sticks = demo_sticks.subset(labelled)
    families = snapshot_families(snapshot)
    groups = [families[m] for m in demo_sticks.material_ids]
    groups, _ = split_groups("family", groups, len(groups))
    d_train, d_val, d_test = split_indices(len(demo_sticks), split, seed, groups=groups)
    d_fit = np.sort(np.concatenate([d_train, d_val]))
    fit_ids = [demo_sticks.material_ids[i] for i in d_fit]
    sid = str(snapshot.snapshot_id)[:16]
    demo_tables = reflection_tables(
        fit_ids, [snapshot.structure(m) for m in fit_ids], progress=progress,
        cache=None if folder is None else folder / f"reflections-{sid}-split{seed}.npz")
    train = load_real_structures("train")
    check = load_real_structures("check")
    fit_rows, val_rows = validation_part(train)
    if max_real_structures is not None:
        cap = int(max_real_structures)
        fit_rows = fit_rows[capped_rows([train.material_ids[i] for i in fit_rows], cap)]
        val_rows = val_rows[capped_rows([train.material_ids[i] for i in val_rows], cap)]
        check = check.subset(capped_rows(check.material_ids, cap))
    real_fit = train.subset(fit_rows)
    real_tables = reflection_tables(
        real_fit.material_ids, real_fit.structures, progress=progress,
        cache=None if folder is None else folder / "reflections-real-train-fit.npz")
    tables = concat_tables(demo_tables, real_tables)
    label_of = dict(zip(demo_sticks.material_ids, demo_sticks.crystal_systems, strict=True))
    label_of.update(zip(real_fit.material_ids, real_fit.crystal_systems, strict=True))
    y = _labels([label_of[m] for m in tables.material_ids])
    sources = np.array(["demo"] * len(demo_tables) + ["real"] * len(real_tables))
    demo_keys = {snapshot_families(snapshot, parents={})[m] for m in fit_ids}
    training_keys = frozenset(demo_keys | set(real_fit.family_keys))
    structures = [*(snapshot.structure(m) for m in fit_ids), *real_fit.structures]
    ids = [*fit_ids, *real_fit.material_ids]
    pick = np.sort(np.random.default_rng([seed, 41]).choice(
        len(ids), min(int(n_lowered), len(ids)), replace=False))
    lowered = reflection_tables(
        [ids[i] for i in pick], [structures[i] for i in pick], merge_as="triclinic",
        progress=progress, cache=None if folder is None
        else folder / f"reflections-lowered-{sid}-split{seed}-n{int(n_lowered)}.npz")
    targets = tuple(
        "monoclinic" if k % 2 == 0 and np.allclose(lowered.parameters[k, 3:], 90.0, atol=0.5)
        else "triclinic" for k in range(len(lowered)))
    val_sticks = _real_sticks(train.subset(val_rows), folder, "real-validation")
    check_sticks = _real_sticks(check, folder, "real-check")
    return RealPatternData(
        tables=tables, y=y, sources=sources, training_keys=training_keys,
        val=val_sticks, y_val=_labels(val_sticks.crystal_systems),
        check=check_sticks, y_check=_labels(check_sticks.crystal_systems),
        check_seen=seen_families(check, training_keys),
        demo_test=demo_sticks.subset(d_test),
        y_demo_test=_labels([demo_sticks.crystal_systems[i] for i in d_test]),
        checksums={"snapshot": str(snapshot.snapshot_id), **_real_checksums()},
        lowered=lowered, lowered_targets=targets)


def without_training_rows(data: RealPatternData, material_ids: Iterable[str]
                          ) -> RealPatternData:
    """``data`` whose training rows (and symmetry-lowered rows) leave out some materials.

    For a model that must not see given compounds (the structure-inference benchmark of
    notebook 09 trains the peak model without its targets' families). The validation part,
    the check and the demo test part are unchanged.

    Raises:
        ConfigurationError: No training row would be left.
    """
    drop = set(map(str, material_ids))
    keep = np.array([m not in drop for m in data.tables.material_ids], dtype=bool)
    if not keep.any():
        raise ConfigurationError("every training row was excluded")
    lowered, targets = data.lowered, data.lowered_targets
    if lowered is not None and len(lowered):
        kept = [i for i, m in enumerate(lowered.material_ids) if m not in drop]
        lowered = lowered.subset(kept)
        targets = tuple(targets[i] for i in kept)
    excluded = sorted(drop & set(data.tables.material_ids))
    digest = hashlib.sha256("\n".join(excluded).encode()).hexdigest()
    return replace(data, tables=data.tables.subset(np.flatnonzero(keep)), y=data.y[keep],
                   sources=data.sources[keep], lowered=lowered, lowered_targets=targets,
                   checksums={**data.checksums, "excluded_training_rows": digest})


def _real_checksums() -> dict[str, str]:
    from specfusion_lib.data.real_structures import FILE_SHA256

    return {f"real_{part}": sha for part, sha in FILE_SHA256.items()}


def _draw_rows(y: np.ndarray, n: int, balance: float, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(y, minlength=len(CRYSTAL_SYSTEMS)).astype(float)
    weight = (1.0 / np.maximum(counts[y], 1.0)) ** balance
    return rng.choice(len(y), int(n), replace=True, p=weight / weight.sum())


def train_symmetry_model(data: RealPatternData,
                         settings: SymmetryTrainingSettings = SymmetryTrainingSettings(), *,
                         checkpoint: str | os.PathLike[str] | None = None,
                         snapshot: Snapshot | None = None, threads: int | None = 2,
                         progress: bool = False) -> tuple[PXRDCrystalSystemNet, dict[str, Any]]:
    """Train the crystal-system model on strained demo + real patterns (module docstring).

    Args:
        data: :func:`real_pattern_data`.
        settings: Training settings.
        checkpoint: Write the model and its metadata here.
        snapshot: For the checkpoint's snapshot metadata.
        threads: Torch CPU threads.
        progress: Progress bar over epochs.

    Returns:
        ``(model, metadata)``; metadata holds the settings, sizes, the validation metrics and
        the data checksums (never a check number: the check is reported, not stored here).
    """
    keep = np.isin(data.sources, list(settings.sources))
    rows_all = np.flatnonzero(keep)
    if rows_all.size == 0:
        raise ConfigurationError(f"no training rows for sources {settings.sources}")
    rng = np.random.default_rng([settings.seed, 11])
    picked = rows_all[_draw_rows(data.y[rows_all], settings.patterns_per_epoch,
                                 settings.balance, rng)]
    grid = data.val.grid
    strained = settings.strain.length > 0 or settings.strain.angle > 0

    def epoch_inputs(epoch: int) -> list[torch.Tensor]:
        gen = np.random.default_rng([settings.seed, 12, epoch])
        pos, amp = strained_sticks(data.tables, picked, gen if strained else None,
                                   settings.strain)
        return [torch.from_numpy(render_sticks(pos, amp, grid, gen, TRAINING_CONDITIONS))]

    x_val = data.val.render(None, np.random.default_rng([settings.seed, 13]),
                            MEASUREMENT_CONDITIONS)
    torch.manual_seed(settings.seed)
    model = PXRDCrystalSystemNet(n_classes=len(CRYSTAL_SYSTEMS), n_points=grid.size,
                                 **dict(settings.model))
    prof = Profile("symmetry", seeds=(settings.seed,), max_epochs=settings.max_epochs,
                   patience=settings.patience, max_materials=None,
                   learning_rate=settings.learning_rate, batch_size=settings.batch_size)
    t0 = time.perf_counter()
    fit = fit_classifier(model, epoch_inputs, torch.as_tensor(data.y[picked]),
                         [torch.from_numpy(x_val)], torch.as_tensor(data.y_val), prof,
                         settings.seed, device=torch.device("cpu"), threads=threads,
                         progress=progress, desc="PXRD symmetry model")
    model = model.cpu().eval()
    val_probs = predict_probabilities(model, x_val)
    metadata: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "task": {"name": "crystal_system", "kind": "classification", "level": "material",
                 "unit": "", "class_names": list(CRYSTAL_SYSTEMS), "input": "pxrd"},
        "model": "symmetry",
        "settings": settings.as_dict(),
        "training_rows": {"demo": int((data.sources[rows_all] == "demo").sum()),
                          "real": int((data.sources[rows_all] == "real").sum())},
        "validation_rows": len(data.y_val),
        "validation_accuracy": float((val_probs.argmax(1) == data.y_val).mean()),
        "history": fit.history, "best_epoch": fit.best_epoch,
        "epochs_run": len(fit.history), "train_seconds": time.perf_counter() - t0,
        "data_checksums": dict(data.checksums),
        "snapshot": snapshot_metadata(snapshot) if snapshot is not None else None,
        "patterns": {"wavelength": pxrd.WAVELENGTH,
                     "two_theta_range": list(pxrd.TWO_THETA_RANGE),
                     "step": pxrd.TWO_THETA_STEP},
    }
    metadata = jsonable(metadata)
    if checkpoint is not None:
        save_checkpoint(Path(checkpoint), model, metadata)
    return model, metadata


def load_symmetry_model(path: str | os.PathLike[str] = SHIPPED_CHECKPOINT
                        ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`train_symmetry_model` (default: the shipped one)."""
    return load(Path(path))


def cnn_predictor(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The ``predict`` function of :func:`check_report` for a PXRD network."""
    return lambda patterns: predict_probabilities(model, patterns)


def sklearn_predictor(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The ``predict`` function of :func:`check_report` for a fitted scikit-learn classifier
    of patterns (e.g. the random-forest baseline's pipeline); its classes may be indices or
    crystal-system names; classes it never saw get 0."""
    columns = np.array([_CLASS_INDEX[str(c)] if str(c) in _CLASS_INDEX else int(c)
                        for c in estimator.classes_], dtype=np.int64)

    def predict(patterns: np.ndarray) -> np.ndarray:
        prob = estimator.predict_proba(patterns)
        out = np.zeros((prob.shape[0], len(CRYSTAL_SYSTEMS)))
        out[:, columns] = prob
        return out

    return predict


def predict_probabilities(model: torch.nn.Module, patterns: np.ndarray) -> np.ndarray:
    """Class probabilities ``(N, 7)`` of patterns ``(N, L)`` from a PXRD network."""
    logits = batched_logits(model.eval(), [torch.from_numpy(np.asarray(patterns, np.float32))],
                            torch.device("cpu"), 256, None)
    return torch.softmax(logits.float(), dim=1).numpy()


def check_report(predictors: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                 data: RealPatternData, *, noise_levels: Sequence[float] = CHECK_NOISE_LEVELS,
                 seed: int = 0) -> dict[str, pd.DataFrame]:
    """Accuracy tables of classifiers on the check (clean, measurement-like, noise curve),
    on the validation part and on the demo family-split test part.

    Every pattern set is rendered once (seeded) and given to every classifier.

    Args:
        predictors: Variant name → patterns ``(N, L)`` → class probabilities ``(N, 7)``
            (e.g. ``PeakIndexingClassifier.predict_proba``, :func:`cnn_predictor`,
            :func:`sklearn_predictor`).
        data: :func:`real_pattern_data`.
        noise_levels: Noise σ of the accuracy-vs-noise curve.
        seed: Seed of the rendered patterns.

    Returns:
        ``{"check": per class, seen / unseen / all, clean and measured;
        "noise": accuracy vs noise σ on the check; "demo_test": per class on the demo's
        family test part; "validation": per class on the validation part}``, every table
        with ``split``, ``variant`` and ``patterns`` columns.
    """
    groups = {"seen families": data.check_seen, "unseen families": ~data.check_seen}
    measured = "measured (2 % noise)"
    sets = [("check", "real check", "clean", data.check, data.y_check, groups,
             [seed, 21], CLEAN_CONDITIONS, None),
            ("check", "real check", measured, data.check, data.y_check, groups,
             [seed, 21], MEASUREMENT_CONDITIONS, None),
            *(("noise", "real check", "measured", data.check, data.y_check, None,
               [seed, 22], MEASUREMENT_CONDITIONS.with_noise(level), float(level))
              for level in noise_levels),
            ("demo_test", "demo family test", measured, data.demo_test, data.y_demo_test,
             None, [seed, 23], MEASUREMENT_CONDITIONS, None),
            ("validation", "real validation part", measured, data.val, data.y_val, None,
             [seed, 13], MEASUREMENT_CONDITIONS, None)]
    frames: dict[str, list[pd.DataFrame]] = {"check": [], "noise": [], "demo_test": [],
                                             "validation": []}
    for key, split, patterns, sticks, y, grp, stream, cond, level in sets:
        x = sticks.render(None, np.random.default_rng(stream), cond)
        for variant, predict in predictors.items():
            table = accuracy_table(predict(x), y, CRYSTAL_SYSTEMS, groups=grp, split=split,
                                   variant=variant, patterns=patterns)
            if level is not None:
                table.insert(0, "noise_level", level)
            frames[key].append(table)
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame()
            for k, v in frames.items()}
