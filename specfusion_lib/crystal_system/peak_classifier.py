"""Crystal system from peak positions and indexing fits: a gradient-boosted classifier.

:mod:`specfusion_lib.crystal_system.peak_features` turns a pattern into peak positions in Q²
and the scores of cubic, tetragonal, hexagonal and orthorhombic indexing fits. This module
trains scikit-learn's ``HistGradientBoostingClassifier`` on those features of the same
training rows as :func:`~specfusion_lib.crystal_system.generalisation.train_symmetry_model`
(the demo's training families + the real training structures outside the validation part):
each structure rendered ``renders`` times, once unstrained and then under fresh
symmetry-preserving lattice strain, each time with the training augmentation of
:data:`~specfusion_lib.crystal_system.patterns.TRAINING_CONDITIONS`; rows weighted by
(class count)^−``balance``. Chosen over the CNN on the validation part of the real training
structures (0.639 vs 0.472 accuracy at 2 % noise, 216 structures).

The fitted classifier is saved with :mod:`pickle` beside a JSON sidecar holding its
settings, metrics, the sha256 of the pickle and the versions of scikit-learn / numpy;
:meth:`PeakIndexingClassifier.load` refuses a file whose checksum or scikit-learn version
differs (pickles are only safe to load from a trusted source: this is the package's own
file, checked against the sidecar).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import logging
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from specfusion_lib.core.atomic import atomic_write, atomic_write_text
from specfusion_lib.core.errors import ConfigurationError, InputFileError
from specfusion_lib.crystal_system.patterns import (
    MEASUREMENT_CONDITIONS,
    TRAINING_CONDITIONS,
    render_sticks,
)
from specfusion_lib.crystal_system.peak_features import FEATURE_NAMES, peak_feature_matrix
from specfusion_lib.crystal_system.reflections import StrainSettings, strained_sticks
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS

if TYPE_CHECKING:
    from specfusion_lib.crystal_system.generalisation import RealPatternData

logger = logging.getLogger(__name__)

__all__ = ["SHIPPED_PEAK_MODEL", "PeakIndexingClassifier", "PeakModelSettings",
           "train_peak_model"]

#: The shipped classifier (trained by :func:`train_peak_model` with the default settings).
SHIPPED_PEAK_MODEL = (Path(__file__).resolve().parents[2] / "data" / "models"
                      / "pxrd-crystal-system-peaks-seed0.pkl")


@dataclass(frozen=True)
class PeakModelSettings:
    """Settings of :func:`train_peak_model`.

    Attributes:
        renders: Patterns per training structure (the first unstrained).
        strain: Lattice strain of the other renders.
        balance: Exponent of the class re-weighting (0: none, 1: uniform classes).
        lowered: Add, in every strained render, the sample of training cells distorted to
            monoclinic / triclinic (``RealPatternData.lowered``).
        max_iter: Boosting iterations.
        learning_rate: Boosting learning rate.
        max_leaf_nodes: Leaves per tree.
        l2_regularization: L2 penalty of the leaf values.
        seed: Seed of the renders and the booster.
    """

    renders: int = 5
    strain: StrainSettings = field(default_factory=StrainSettings)
    balance: float = 0.5
    lowered: bool = True
    max_iter: int = 300
    learning_rate: float = 0.08
    max_leaf_nodes: int = 31
    l2_regularization: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.renders < 1 or not 0 <= self.balance <= 1 or self.max_iter < 1:
            raise ConfigurationError(f"invalid peak-model settings: {self}")


class PeakIndexingClassifier:
    """A fitted peak-feature classifier with its metadata.

    Attributes:
        model_: The fitted ``HistGradientBoostingClassifier``.
        metadata: Settings, sizes, validation metrics, data checksums.
    """

    def __init__(self, model: HistGradientBoostingClassifier, metadata: dict[str, Any]
                 ) -> None:
        self.model_ = model
        self.metadata = metadata

    @property
    def grid(self) -> np.ndarray:
        """The 2θ grid the patterns must be on."""
        lo, hi = self.metadata["patterns"]["two_theta_range"]
        from specfusion_lib.spectra.pxrd import two_theta_grid

        return two_theta_grid((lo, hi), self.metadata["patterns"]["step"])

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 7)`` of feature rows ``(N, F)``."""
        prob = self.model_.predict_proba(np.asarray(features, dtype=np.float32))
        out = np.zeros((prob.shape[0], len(CRYSTAL_SYSTEMS)))
        out[:, self.model_.classes_] = prob
        return out

    def predict_proba(self, patterns: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, 7)`` of patterns ``(N, L)`` on :attr:`grid`."""
        x = np.asarray(patterns, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.grid.size:
            raise ConfigurationError(f"patterns must have shape (N, {self.grid.size}), "
                                     f"got {x.shape}")
        return self.predict_features(peak_feature_matrix(x, self.grid))

    def predict_patterns(self, patterns: Any) -> pd.DataFrame:
        """Crystal-system probabilities of :class:`~specfusion_lib.spectra.pxrd.PXRDPattern`
        objects (one or a sequence, any 2θ grid; put on :attr:`grid` first): one row per
        pattern, one column per system, as ``CrystalSystemPredictor.predict_proba``."""
        from specfusion_lib.spectra.pxrd import PXRDPattern, to_grid

        items = [patterns] if isinstance(patterns, PXRDPattern) else list(patterns)
        x = np.stack([to_grid(p, self.grid).intensity for p in items])
        return pd.DataFrame(self.predict_proba(x), columns=list(CRYSTAL_SYSTEMS))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (pickle) and ``path.with_suffix('.json')`` atomically."""
        path = Path(path)
        payload = pickle.dumps(self.model_, protocol=pickle.HIGHEST_PROTOCOL)
        meta = {**self.metadata, "sha256": hashlib.sha256(payload).hexdigest()}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(payload))
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
        self.metadata = meta
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str] = SHIPPED_PEAK_MODEL) -> PeakIndexingClassifier:
        """Load a saved classifier after checking its sidecar.

        Raises:
            InputFileError: Missing file or sidecar, checksum mismatch, other scikit-learn.
        """
        path = Path(path)
        side = path.with_suffix(".json")
        try:
            payload = path.read_bytes()
            meta = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{path}: cannot read the classifier or its sidecar "
                                 f"({exc})") from exc
        if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
            raise InputFileError(f"{path}: checksum differs from {side.name}")
        have = importlib.metadata.version("scikit-learn")
        if meta.get("versions", {}).get("scikit-learn") != have:
            raise InputFileError(f"{path}: saved with scikit-learn "
                                 f"{meta.get('versions', {}).get('scikit-learn')}, this is "
                                 f"{have}; retrain with train_peak_model")
        return cls(pickle.loads(payload), meta)  # noqa: S301 - own file, checksum verified


def _render_features(data: RealPatternData, settings: PeakModelSettings, progress: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    grid = data.val.grid
    rows = np.arange(len(data.tables))
    features, labels = [], []
    for r in range(settings.renders):
        gen = np.random.default_rng([settings.seed, 31, r])
        pos, amp = strained_sticks(data.tables, rows, gen if r > 0 else None, settings.strain)
        patterns = render_sticks(pos, amp, grid, gen, TRAINING_CONDITIONS)
        features.append(peak_feature_matrix(patterns, grid, progress=progress))
        labels.append(data.y)
        if r > 0 and settings.lowered and data.lowered is not None and len(data.lowered):
            pos, amp = strained_sticks(data.lowered, np.arange(len(data.lowered)), gen,
                                       settings.strain, lower_to=data.lowered_targets)
            patterns = render_sticks(pos, amp, grid, gen, TRAINING_CONDITIONS)
            features.append(peak_feature_matrix(patterns, grid, progress=progress))
            labels.append(np.array([CRYSTAL_SYSTEMS.index(t) for t in data.lowered_targets]))
        logger.info("peak model: render %d of %d done", r + 1, settings.renders)
    return np.concatenate(features), np.concatenate(labels)


def train_peak_model(data: RealPatternData, settings: PeakModelSettings = PeakModelSettings(),
                     *, path: str | os.PathLike[str] | None = None,
                     progress: bool = False) -> PeakIndexingClassifier:
    """Fit the peak-feature classifier on the training rows of ``data`` (module docstring).

    About 2 ms per rendered pattern for the features plus the rendering (3,227 structures ×
    5 renders) and about 20 s for the fit. Validation: the real validation part at 2 % noise.
    """
    t0 = time.perf_counter()
    x, y = _render_features(data, settings, progress)
    counts = np.bincount(y, minlength=len(CRYSTAL_SYSTEMS)).astype(float)
    weight = (1.0 / np.maximum(counts[y], 1.0)) ** settings.balance
    model = HistGradientBoostingClassifier(
        max_iter=settings.max_iter, learning_rate=settings.learning_rate,
        max_leaf_nodes=settings.max_leaf_nodes,
        l2_regularization=settings.l2_regularization, random_state=settings.seed)
    model.fit(x, y, sample_weight=weight / weight.mean())
    metadata: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "task": {"name": "crystal_system", "class_names": list(CRYSTAL_SYSTEMS),
                 "input": "pxrd peak features"},
        "settings": {**asdict(settings), "strain": asdict(settings.strain)},
        "features": list(FEATURE_NAMES),
        "training_rows": {"demo": int((data.sources == "demo").sum()),
                          "real": int((data.sources == "real").sum()),
                          "lowered": len(data.lowered_targets) if settings.lowered else 0,
                          "patterns": int(len(y))},
        "data_checksums": dict(data.checksums),
        "patterns": {"two_theta_range": [float(data.val.grid[0]), float(data.val.grid[-1])],
                     "step": float(data.val.grid[1] - data.val.grid[0])},
        "versions": {p: importlib.metadata.version(p) for p in ("scikit-learn", "numpy")},
    }
    classifier = PeakIndexingClassifier(model, metadata)
    x_val = data.val.render(None, np.random.default_rng([settings.seed, 13]),
                            MEASUREMENT_CONDITIONS)
    val_acc = float((classifier.predict_proba(x_val).argmax(1) == data.y_val).mean())
    metadata["validation_accuracy"] = val_acc
    metadata["train_seconds"] = time.perf_counter() - t0
    logger.info("peak model: validation accuracy %.3f (%d structures), %.0f s", val_acc,
                len(data.y_val), metadata["train_seconds"])
    if path is not None:
        classifier.save(path)
    return classifier
