"""Evaluation of the PXRD crystal-system model: baseline, paper values, noise robustness.

Behind notebook 07 (main text Fig. 4c,d; SI Fig. S18–S20):

* :data:`~specfusion_lib.core.paper.FIG4D_ACCURACY`: the numbers the paper states (main text,
  Fig. 4d and the discussion of Fig. S20): overall accuracy, cubic and hexagonal,
  orthorhombic, monoclinic and triclinic. No per-class number is given for tetragonal and
  trigonal.
* :func:`random_forest_baseline`: what a network earns over a simple model. The pattern is
  reduced to the maximum intensity in 0.2° bins (:class:`PatternBinner`, 351 features on
  10–80°) and classified by a random forest (scikit-learn), trained on the *same* training
  materials with the same kind of augmented patterns (several independently augmented copies
  of each), evaluated on the *same* test patterns as the network.
* :func:`noise_curve` (our addition): accuracy on the test materials as the Gaussian noise σ
  grows (:data:`NOISE_LEVELS`), every other perturbation kept identical (the same random
  numbers are drawn for every level, so only σ changes). σ = 0.02 is the test condition of
  the headline number.
* :func:`metrics_table`: overall and per-class accuracy, mean ± std over seeds, next to the
  majority-class baseline, the random forest and the paper.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.paper import FIG4D_ACCURACY
from specfusion_lib.core.parallel import available_cpus
from specfusion_lib.crystal_system.patterns import MEASUREMENT_CONDITIONS, TRAINING_CONDITIONS
from specfusion_lib.crystal_system.training import (
    _STREAM_BASELINE,
    _STREAM_TEST,
    CrystalSystemData,
    CrystalSystemRun,
    _probabilities,
    per_class_table,
)
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.spectra import pxrd
from specfusion_lib.training.metrics import classification_metrics

__all__ = [
    "NOISE_LEVELS",
    "BaselineResult",
    "PatternBinner",
    "PreprocessingExample",
    "class_distribution",
    "low_symmetry_examples",
    "metrics_table",
    "noise_curve",
    "preprocessing_example",
    "random_forest_baseline",
]

#: Noise σ of the robustness curve (fraction of the strongest peak).
NOISE_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)



class PatternBinner(TransformerMixin, BaseEstimator):
    """Reduce patterns on a uniform 2θ grid to the maximum intensity per bin.

    Args:
        bin_width_deg: Bin width in degrees 2θ.
        two_theta_range: Range of the input grid, degrees.
        step: Step of the input grid, degrees.

    Shapes:
        ``X`` ``(n, L)`` → ``(n, n_bins)``; ``L`` must match the grid.
    """

    def __init__(self, bin_width_deg: float = 0.2,
                 two_theta_range: tuple[float, float] = pxrd.TWO_THETA_RANGE,
                 step: float = pxrd.TWO_THETA_STEP) -> None:
        self.bin_width_deg = bin_width_deg
        self.two_theta_range = two_theta_range
        self.step = step

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> PatternBinner:  # noqa: N803
        """Compute the bin edges (``edges_``, ``n_points_``)."""
        grid = pxrd.two_theta_grid(tuple(self.two_theta_range), self.step)
        if np.asarray(X).shape[1] != grid.size:
            raise ConfigurationError(f"patterns have {np.asarray(X).shape[1]} points, the grid "
                                     f"{grid.size}")
        per_bin = int(round(self.bin_width_deg / self.step))
        if per_bin < 1 or abs(per_bin * self.step - self.bin_width_deg) > 1e-9:
            raise ConfigurationError(f"bin_width_deg {self.bin_width_deg} must be a positive "
                                     f"multiple of the grid step {self.step}")
        self.edges_ = np.arange(0, grid.size, per_bin)
        self.n_points_ = grid.size
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Maximum per bin: ``(n, n_bins)``."""
        x = np.asarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_points_:
            raise ConfigurationError(f"patterns must have shape (n, {self.n_points_})")
        return np.maximum.reduceat(x, self.edges_, axis=1)


@dataclass
class BaselineResult:
    """The random-forest baseline of one run (same split, same test patterns).

    Attributes:
        seed: The run's seed.
        pipeline: Fitted ``PatternBinner → RandomForestClassifier``.
        metrics: Test accuracy, macro-F1, n_test.
        predictions: ``material_id``, ``y_true``, ``y_pred`` on the test part.
        per_class: Per-class accuracy on the test part.
    """

    seed: int
    pipeline: Pipeline
    metrics: dict[str, float]
    predictions: pd.DataFrame
    per_class: pd.DataFrame

    def predict_patterns(self, patterns: np.ndarray) -> np.ndarray:
        """Predicted crystal-system names of patterns on the grid ``(n, L)``."""
        return self.pipeline.predict(np.asarray(patterns, dtype=np.float32))


def random_forest_baseline(run: CrystalSystemRun, *, bin_width_deg: float = 0.2,
                           n_estimators: int = 200, n_copies: int = 3) -> BaselineResult:
    """Train the binned-pattern random forest on a run's training part and test it.

    Args:
        run: A trained :class:`~specfusion_lib.crystal_system.training.CrystalSystemRun`.
        bin_width_deg: Bin width of :class:`PatternBinner`.
        n_estimators: Trees of the forest.
        n_copies: Independently augmented copies of each training pattern (training
            conditions of the network; seeds distinct from the network's epochs).

    Returns:
        A :class:`BaselineResult` on the run's test patterns.
    """
    data, (train_idx, _, test_idx) = run.data, run.split_indices
    sticks = data.sticks
    blocks = [sticks.render(train_idx, np.random.default_rng([run.seed, _STREAM_BASELINE, c]),
                            TRAINING_CONDITIONS) for c in range(int(n_copies))]
    x_train = np.concatenate(blocks)
    names = np.asarray(CRYSTAL_SYSTEMS, dtype=object)
    y_train = np.tile(names[data.y[train_idx]], int(n_copies)).astype(str)
    pipe = Pipeline([
        ("bin", PatternBinner(bin_width_deg, sticks.two_theta_range, sticks.step)),
        ("forest", RandomForestClassifier(n_estimators=int(n_estimators), random_state=run.seed,
                                          n_jobs=available_cpus())),
    ])
    pipe.fit(x_train, y_train)
    y_true = names[data.y[test_idx]].astype(str)
    y_pred = pipe.predict(run.test_patterns) if len(test_idx) else np.array([], dtype=str)
    frame = pd.DataFrame({"material_id": [data.material_ids[i] for i in test_idx],
                          "y_true": y_true, "y_pred": y_pred})
    return BaselineResult(run.seed, pipe, classification_metrics(y_true, y_pred), frame,
                          per_class_table(y_true, y_pred))


def noise_curve(runs: Sequence[CrystalSystemRun],
                baselines: Mapping[int, BaselineResult] | None = None,
                levels: Sequence[float] = NOISE_LEVELS) -> pd.DataFrame:
    """Test accuracy of the network (and baseline) as the noise σ grows.

    Args:
        runs: Trained runs (one per seed).
        baselines: Seed → random-forest baseline of that run (optional).
        levels: Noise σ values (fraction of the strongest peak).

    Returns:
        One row per (seed, noise level): ``seed``, ``noise_level``, ``accuracy``,
        ``baseline_accuracy`` (NaN without a baseline) and ``n_test``.
    """
    rows = []
    for run in runs:
        data, test_idx = run.data, run.split_indices[2]
        truth = data.y[test_idx]
        names = np.asarray(CRYSTAL_SYSTEMS, dtype=object)
        for level in levels:
            patterns = data.measured_patterns(test_idx, run.seed, _STREAM_TEST,
                                              MEASUREMENT_CONDITIONS.with_noise(level))
            acc = math.nan
            base = math.nan
            if len(test_idx):
                probs = _probabilities(run.model, patterns)
                acc = float((probs.argmax(axis=1) == truth).mean())
                if baselines is not None and run.seed in baselines:
                    pred = baselines[run.seed].predict_patterns(patterns)
                    base = float((pred == names[truth].astype(str)).mean())
            rows.append({"seed": run.seed, "noise_level": float(level), "accuracy": acc,
                         "baseline_accuracy": base, "n_test": int(len(test_idx))})
    return pd.DataFrame(rows)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan


def _fmt(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.3f} ± {std:.3f}" if math.isfinite(std) else f"{mean:.3f}"


def metrics_table(runs: Sequence[CrystalSystemRun],
                  baselines: Mapping[int, BaselineResult] | None = None) -> pd.DataFrame:
    """Overall and per-class test accuracy next to the baselines and the paper.

    Returns:
        One row for ``overall`` and one per crystal system: ``n_train``, ``n_test`` (summed
        over seeds), ``accuracy`` (mean), ``accuracy_std``, ``ours`` (formatted),
        ``random_forest`` (mean), ``majority_class`` (overall only), ``paper_value`` and
        ``paper_source``.
    """
    if not runs:
        raise ConfigurationError("metrics_table needs at least one run")
    rows = []
    overall = _mean_std([r.metrics["accuracy"] for r in runs])
    rf_overall = _mean_std([baselines[r.seed].metrics["accuracy"] for r in runs
                            if baselines and r.seed in baselines])
    majority = _mean_std([r.baseline["accuracy"] for r in runs])
    paper = FIG4D_ACCURACY["overall"]
    rows.append({"crystal_system": "overall",
                 "n_train": sum(len(r.split["train"]) for r in runs),
                 "n_test": sum(len(r.split["test"]) for r in runs),
                 "accuracy": overall[0], "accuracy_std": overall[1],
                 "ours": _fmt(*overall), "random_forest": rf_overall[0],
                 "majority_class": majority[0], "paper_value": paper.text,
                 "paper_source": paper.source})
    tables = [r.per_class_accuracy() for r in runs]
    rf_tables = [baselines[r.seed].per_class for r in runs if baselines and r.seed in baselines]
    for k, c in enumerate(CRYSTAL_SYSTEMS):
        acc = _mean_std([t.loc[k, "accuracy"] for t in tables])
        rf = _mean_std([t.loc[k, "accuracy"] for t in rf_tables])
        pv = FIG4D_ACCURACY.get(c)
        rows.append({"crystal_system": c,
                     "n_train": int(sum(t.loc[k, "n_train"] for t in tables)),
                     "n_test": int(sum(t.loc[k, "n_test"] for t in tables)),
                     "accuracy": acc[0], "accuracy_std": acc[1], "ours": _fmt(*acc),
                     "random_forest": rf[0], "majority_class": math.nan,
                     "paper_value": pv.text if pv else "", "paper_source": pv.source if pv else ""})
    return pd.DataFrame(rows)


def class_distribution(data: CrystalSystemData,
                       split: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """Materials per crystal system (Fig. 4c), split into train / val / test if given.

    Returns:
        Index = the seven crystal systems; columns ``train``, ``val``, ``test`` and
        ``total`` (or only ``total`` without a split).
    """
    frame = pd.DataFrame({"total": pd.Series(data.label_counts())})
    if split is not None:
        for name, part in zip(("train", "val", "test"), split, strict=True):
            frame[name] = pd.Series(data.label_counts(part))
        frame = frame[["train", "val", "test", "total"]]
    frame.index.name = "crystal_system"
    return frame


@dataclass
class PreprocessingExample:
    """The three stages of SI Fig. S18 for one material.

    Attributes:
        material_id: The material.
        formula: Its reduced formula.
        crystal_system: Its crystal system.
        stick_two_theta: Reflection positions, degrees.
        stick_intensity: Integrated intensities (max 1).
        grid: 2θ grid.
        broadened: Voigt-broadened pattern (simulator defaults).
        measured: With the measurement-like perturbations of the test patterns.
    """

    material_id: str
    formula: str
    crystal_system: str
    stick_two_theta: np.ndarray
    stick_intensity: np.ndarray
    grid: np.ndarray
    broadened: np.ndarray
    measured: np.ndarray


def preprocessing_example(data: CrystalSystemData, index: int | None = None,
                          prefer: Sequence[str] = ("TiO2", "ZnO", "CuO", "MnO"),
                          seed: int = 0) -> PreprocessingExample:
    """Stick pattern, broadened pattern and perturbed pattern of one material (SI Fig. S18).

    Args:
        data: The dataset.
        index: Row of the material; default: the first formula of ``prefer`` present,
            else row 0.
        prefer: Formulas to prefer as the example.
        seed: Seed of the perturbations.

    Raises:
        ConfigurationError: If the dataset is empty.
    """
    if len(data) == 0:
        raise ConfigurationError("no material to show")
    if index is None:
        formulas = list(data.sticks.formulas)
        index = next((formulas.index(f) for f in prefer if f in formulas), 0)
    tt, inten = data.sticks.peaks(index)
    clean = data.sticks.render([index])[0]
    measured = data.measured_patterns([index], seed, _STREAM_TEST)[0]
    return PreprocessingExample(data.material_ids[index], data.sticks.formulas[index],
                                CRYSTAL_SYSTEMS[int(data.y[index])], tt, inten, data.grid, clean,
                                measured)


def low_symmetry_examples(run: CrystalSystemRun,
                          systems: Sequence[str] = ("orthorhombic", "monoclinic", "triclinic")
                          ) -> list[dict[str, object]]:
    """One test material per low-symmetry system (SI Fig. S20), with its test pattern.

    Returns:
        Per system present in the test part (first such material): ``material_id``,
        ``formula``, ``crystal_system``, ``pattern`` (the test pattern) and
        ``probabilities`` (system → probability).
    """
    frame = run.predictions.reset_index(drop=True)
    out = []
    for system in systems:
        hits = frame.index[frame["y_true"] == system]
        if len(hits) == 0:
            continue
        row = frame.loc[hits[0]]
        out.append({"material_id": row["material_id"], "formula": row["formula"],
                    "crystal_system": system, "pattern": run.test_patterns[int(hits[0])],
                    "probabilities": {c: float(row[f"p_{c}"]) for c in CRYSTAL_SYSTEMS}})
    return out
