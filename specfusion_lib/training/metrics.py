"""Test metrics, trivial baselines and the test-prediction table of every trainer.

Classification: accuracy and macro-F1 (over the classes present); regression: MAE, RMSE and R².
The trivial baselines are computed on the same test part: the majority class of the training
part, and the training mean (SI §S1.1 reports the models; the baselines show what a constant
guess scores). :func:`prediction_table` is the one layout of test predictions
(``material_id``, optional context columns, ``y_true``, ``y_pred``, ``p_<class>``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

#: Label of an unlabelled position in element-level classification targets.
IGNORE_INDEX: int = -1

__all__ = [
    "IGNORE_INDEX",
    "baseline_metrics",
    "classification_metrics",
    "metrics_from_table",
    "prediction_table",
    "regression_metrics",
]


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (over the classes present in ``y_true`` or ``y_pred``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        return {"accuracy": math.nan, "f1_macro": math.nan, "n_test": 0}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "n_test": int(y_true.size),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² (R² is NaN with fewer than two test samples or constant targets)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.size == 0:
        return {"mae": math.nan, "rmse": math.nan, "r2": math.nan, "n_test": 0}
    r2 = (float(r2_score(y_true, y_pred))
          if y_true.size >= 2 and np.ptp(y_true) > 0 else math.nan)
    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
        "r2": r2,
        "n_test": int(y_true.size),
    }


def baseline_metrics(kind: str, y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """Metrics of the trivial predictor on the test part.

    Classification: always the majority class of the training part (ties: lowest index).
    Regression: always the training mean.

    Args:
        kind: ``"classification"`` or ``"regression"``.
        y_train: Training labels (flattened; :data:`IGNORE_INDEX` entries are dropped).
        y_test: Test labels (same convention).
    """
    y_train, y_test = np.asarray(y_train).ravel(), np.asarray(y_test).ravel()
    if kind == "classification":
        y_train = y_train[y_train != IGNORE_INDEX]
        y_test = y_test[y_test != IGNORE_INDEX]
        majority = int(np.bincount(y_train.astype(np.int64)).argmax())
        return classification_metrics(y_test, np.full_like(y_test, majority))
    return regression_metrics(y_test, np.full(y_test.shape, float(np.mean(y_train))))


def prediction_table(material_ids: Sequence[str], y_true: Sequence, y_pred: Sequence, *,
                     class_names: Sequence[str] | None = None,
                     probabilities: np.ndarray | None = None,
                     columns: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """The test predictions of a run, one row per predicted target.

    Args:
        material_ids: Material of each row.
        y_true: True values, or class indices when ``class_names`` is given.
        y_pred: Predicted values, or class indices.
        class_names: Class names; indices are written as names.
        probabilities: ``(N, C)`` class probabilities, written as ``p_<class>`` columns.
        columns: Context columns placed after ``material_id`` (e.g. ``element``, ``formula``).

    Returns:
        Columns ``material_id``, the context columns, ``y_true``, ``y_pred`` (+ ``p_*``).
    """
    frame = pd.DataFrame({"material_id": list(material_ids)})
    for name, values in (columns or {}).items():
        frame[name] = list(values)
    if class_names is None:
        frame["y_true"] = np.asarray(y_true, dtype=float)
        frame["y_pred"] = np.asarray(y_pred, dtype=float)
    else:
        names = np.asarray(class_names, dtype=object)
        true_idx = np.asarray(y_true, dtype=np.int64)
        pred_idx = np.asarray(y_pred, dtype=np.int64)
        frame["y_true"] = names[true_idx] if true_idx.size else np.array([], dtype=object)
        frame["y_pred"] = names[pred_idx] if pred_idx.size else np.array([], dtype=object)
    if probabilities is not None and class_names is not None:
        probs = np.asarray(probabilities)  # kept in the model's precision (float32)
        for k, c in enumerate(class_names):
            frame[f"p_{c}"] = probs[:, k] if len(probs) else np.array([], dtype=float)
    return frame


def metrics_from_table(kind: str, frame: pd.DataFrame) -> dict[str, float]:
    """Metrics of a :func:`prediction_table` (``kind``: classification or regression)."""
    if kind == "regression":
        return regression_metrics(frame["y_true"].to_numpy(), frame["y_pred"].to_numpy())
    return classification_metrics(frame["y_true"].to_numpy(dtype=str),
                                  frame["y_pred"].to_numpy(dtype=str))
