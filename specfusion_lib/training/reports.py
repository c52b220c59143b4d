"""Classifier accuracy with honest uncertainty: Wilson intervals, top-k, per class, per group.

A per-class accuracy on a few dozen triclinic structures is a rough number, so every accuracy
here is reported with its **Wilson score interval**. For ``k`` successes in ``n`` trials,
``p̂ = k / n`` and ``z = Φ⁻¹(1/2 + c/2)`` the normal quantile of the confidence ``c``
(``z ≈ 1.96`` at 95 %)::

    centre = (p̂ + z² / (2n)) / (1 + z² / n)
    half   = z / (1 + z² / n) · sqrt(p̂ (1 − p̂) / n + z² / (4n²))
    CI     = [centre − half, centre + half]

The interval stays inside [0, 1] and is not degenerate at 0 or ``n`` successes (its lower
bound is exactly 0 for ``k = 0`` and its upper bound exactly 1 for ``k = n``), unlike the
normal approximation ``p̂ ± z sqrt(p̂ (1 − p̂) / n)``. With no trials (``n = 0``) it is
``(nan, nan)``.

**Top-k**: a sample is top-k correct when its true class is among the ``k`` most probable
classes (ties broken towards the lower class index), so top-1 is the plain accuracy and
top-k never decreases with ``k``. The **balanced** accuracy is the mean of the per-class
accuracies over the classes present (``n_c > 0``)::

    balanced = (1 / |P|) · Σ_{c ∈ P} k_c / n_c,   P = {c : n_c > 0}

It has no interval here (its sampling distribution is not binomial).

Functions:

* :func:`wilson_interval` / :func:`wilson_intervals`: the interval, scalar or vectorised.
* :func:`top_k_correct`: per sample, whether the true class is in the top ``k``.
* :func:`accuracy_table`: top-1 / top-2 with intervals per (group, class), plus ``overall``
  and ``balanced`` rows per group.
* :func:`noise_curve`: :func:`accuracy_table` at every noise level of a render function.
* :func:`headline`: the few numbers of one group worth quoting in a sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm

from specfusion_lib.core.errors import ConfigurationError

__all__ = [
    "GROUP_ALL",
    "TABLE_COLUMNS",
    "accuracy_table",
    "headline",
    "noise_curve",
    "top_k_correct",
    "wilson_interval",
    "wilson_intervals",
]

#: Name of the group holding every sample (always present in :func:`accuracy_table`).
GROUP_ALL: str = "all"
#: Columns of :func:`accuracy_table` after the caller's constant columns.
TABLE_COLUMNS: tuple[str, ...] = ("group", "crystal_system", "n", "top1", "top1_ci_low",
                                  "top1_ci_high", "top2", "top2_ci_low", "top2_ci_high")
#: Summary rows of every group, after its per-class rows.
_OVERALL, _BALANCED = "overall", "balanced"


def _z(confidence: float) -> float:
    """Two-sided normal quantile of ``confidence`` (1.96 at 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ConfigurationError(f"confidence must lie in (0, 1), got {confidence!r}")
    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_intervals(successes: ArrayLike, n: ArrayLike, confidence: float = 0.95
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval (module docstring), element by element.

    Args:
        successes: Success counts, any shape broadcastable with ``n``.
        n: Trial counts, same (broadcast) shape.
        confidence: Confidence level in (0, 1).

    Returns:
        ``(low, high)``: float arrays of the broadcast shape, NaN where ``n == 0``.

    Raises:
        ConfigurationError: If a count is not finite, if not ``0 ≤ successes ≤ n``, if the
            shapes do not broadcast, or if ``confidence`` is outside (0, 1).
    """
    z = _z(confidence)
    try:
        k, m = np.broadcast_arrays(np.asarray(successes, dtype=float),
                                   np.asarray(n, dtype=float))
    except ValueError as exc:
        raise ConfigurationError(f"successes and n do not broadcast: {exc}") from exc
    if not (np.isfinite(k).all() and np.isfinite(m).all()):
        raise ConfigurationError("successes and n must be finite")
    if np.any(k < 0) or np.any(k > m):
        bad = np.flatnonzero(((k < 0) | (k > m)).ravel())[0]
        raise ConfigurationError("successes must satisfy 0 <= successes <= n, got "
                                 f"successes={k.ravel()[bad]:g}, n={m.ravel()[bad]:g}")
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / m
        denom = 1.0 + z2 / m
        centre = (p + z2 / (2.0 * m)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / m + z2 / (4.0 * m * m))
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(k == m, 1.0, np.clip(centre + half, 0.0, 1.0))
    empty = m == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``successes`` in ``n`` trials (module docstring).

    Args:
        successes: Number of successes, ``0 ≤ successes ≤ n``.
        n: Number of trials.
        confidence: Confidence level in (0, 1).

    Returns:
        ``(low, high)``; ``(nan, nan)`` when ``n == 0``.

    Raises:
        ConfigurationError: Unless ``0 ≤ successes ≤ n`` and ``0 < confidence < 1``.

    Example:
        >>> tuple(round(b, 4) for b in wilson_interval(8, 10))
        (0.4902, 0.9433)
    """
    if np.ndim(successes) or np.ndim(n):
        raise ConfigurationError("wilson_interval takes scalars; use wilson_intervals")
    low, high = wilson_intervals(successes, n, confidence)
    return float(low), float(high)


def _check_probabilities(probabilities: ArrayLike, y_true: ArrayLike,
                         n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C)`` float probabilities and ``(N,)`` int labels in ``[0, C)``, or raise."""
    prob = np.asarray(probabilities, dtype=float)
    y = np.asarray(y_true)
    if y.ndim != 1 or prob.ndim != 2 or prob.shape[0] != y.shape[0]:
        raise ConfigurationError(f"probabilities of shape {prob.shape} do not match labels "
                                 f"of shape {y.shape} (expected (N, C) and (N,))")
    if n_classes is not None and prob.shape[1] != n_classes:
        raise ConfigurationError(f"probabilities have {prob.shape[1]} columns for "
                                 f"{n_classes} class names")
    if not np.issubdtype(y.dtype, np.integer):
        try:
            yf = y.astype(float)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError("labels must be integer class indices") from exc
        if not (np.isfinite(yf).all() and (yf == np.round(yf)).all()):
            raise ConfigurationError("labels must be integer class indices")
        y = yf
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= prob.shape[1]):
        raise ConfigurationError(f"labels must lie in [0, {prob.shape[1]}), got "
                                 f"[{y.min()}, {y.max()}]")
    return prob, y


def top_k_correct(probabilities: ArrayLike, y_true: ArrayLike, k: int) -> np.ndarray:
    """Whether each sample's true class is among its ``k`` most probable classes.

    Ties are broken towards the lower class index (stable sort), so ``k = 1`` agrees with
    ``argmax``. ``k ≥ C`` marks every sample correct.

    Args:
        probabilities: ``(N, C)`` class probabilities (or any scores ranking the classes).
        y_true: ``(N,)`` integer class indices in ``[0, C)``.
        k: How many top classes count, ``k ≥ 1``.

    Returns:
        ``(N,)`` bool array.

    Raises:
        ConfigurationError: On mismatched shapes, labels out of range or ``k < 1``.
    """
    if int(k) != k or k < 1:
        raise ConfigurationError(f"k must be a positive integer, got {k!r}")
    prob, y = _check_probabilities(probabilities, y_true)
    top = np.argsort(-prob, axis=1, kind="stable")[:, :int(k)]
    return (top == y[:, None]).any(axis=1)


def _group_rows(hit1: np.ndarray, hit2: np.ndarray, y: np.ndarray, class_names: Sequence[str],
                group: str, confidence: float) -> list[dict[str, Any]]:
    """Rows of one group: per class, ``overall`` and ``balanced``.

    Args:
        hit1: ``(M,)`` bool top-1 correctness of the group's samples.
        hit2: ``(M,)`` bool top-2 correctness.
        y: ``(M,)`` labels.
        class_names: The ``C`` class names.
        group: Group name written in every row.
        confidence: Confidence of the intervals.
    """
    masks = [y == c for c in range(len(class_names))] + [np.ones(len(y), dtype=bool)]
    n = np.array([m.sum() for m in masks], dtype=np.int64)
    k1 = np.array([hit1[m].sum() for m in masks], dtype=np.int64)
    k2 = np.array([hit2[m].sum() for m in masks], dtype=np.int64)
    low1, high1 = wilson_intervals(k1, n, confidence)
    low2, high2 = wilson_intervals(k2, n, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc1 = np.where(n > 0, k1 / np.maximum(n, 1), np.nan)
        acc2 = np.where(n > 0, k2 / np.maximum(n, 1), np.nan)
    names = [str(c) for c in class_names] + [_OVERALL]
    rows = [{"group": group, "crystal_system": names[i], "n": int(n[i]),
             "top1": float(acc1[i]), "top1_ci_low": float(low1[i]),
             "top1_ci_high": float(high1[i]), "top2": float(acc2[i]),
             "top2_ci_low": float(low2[i]), "top2_ci_high": float(high2[i])}
            for i in range(len(names))]
    present = n[:-1] > 0
    rows.append({"group": group, "crystal_system": _BALANCED, "n": int(n[-1]),
                 "top1": float(acc1[:-1][present].mean()) if present.any() else np.nan,
                 "top1_ci_low": np.nan, "top1_ci_high": np.nan,
                 "top2": float(acc2[:-1][present].mean()) if present.any() else np.nan,
                 "top2_ci_low": np.nan, "top2_ci_high": np.nan})
    return rows


def accuracy_table(probabilities: ArrayLike, y_true: ArrayLike, class_names: Sequence[str], *,
                   groups: Mapping[str, ArrayLike] | None = None, confidence: float = 0.95,
                   **columns: Any) -> pd.DataFrame:
    """Top-1 / top-2 accuracy with Wilson intervals per class, overall and balanced.

    The group ``"all"`` (every sample) comes first, then each of ``groups`` in its order. In
    each group there is one row per class (in ``class_names`` order; a class without samples
    gets ``n = 0`` and NaN values), then ``overall`` (all the group's samples) and
    ``balanced`` (mean of the per-class accuracies over the classes with ``n > 0``; ``n`` is
    the group size, intervals NaN; its ``top2`` is the mean per-class top-2). With a single
    class, top-2 equals top-1 (every sample is correct).

    Args:
        probabilities: ``(N, C)`` class probabilities.
        y_true: ``(N,)`` integer class indices in ``[0, C)``.
        class_names: The ``C`` class names (e.g. the seven crystal systems).
        groups: Optional group name → ``(N,)`` bool mask (e.g. ``"seen families"`` /
            ``"unseen families"``). Masks may overlap; the name ``"all"`` is reserved.
        confidence: Confidence level of the intervals, in (0, 1).
        **columns: Constant columns put first, in the given order (e.g.
            ``split="real check"``, ``variant="clean"``, ``model="CNN-Transformer"``).

    Returns:
        DataFrame with the ``columns`` keys, then :data:`TABLE_COLUMNS`: ``group``,
        ``crystal_system``, ``n``, ``top1``, ``top1_ci_low``, ``top1_ci_high``, ``top2``,
        ``top2_ci_low``, ``top2_ci_high``; ``(1 + len(groups)) · (C + 2)`` rows.

    Raises:
        ConfigurationError: On mismatched shapes, labels out of range, a group mask of the
            wrong shape, a group named ``"all"``, a constant column clashing with a table
            column, or an invalid confidence.
    """
    prob, y = _check_probabilities(probabilities, y_true, len(class_names))
    clash = sorted(set(columns) & set(TABLE_COLUMNS))
    if clash:
        raise ConfigurationError(f"constant columns {clash} clash with the table's columns")
    _z(confidence)
    masks: dict[str, np.ndarray] = {GROUP_ALL: np.ones(len(y), dtype=bool)}
    for name, mask in (groups or {}).items():
        if str(name) == GROUP_ALL:
            raise ConfigurationError(f"group name {GROUP_ALL!r} is reserved for every sample")
        m = np.asarray(mask)
        if m.shape != y.shape or not (m.dtype == bool or np.isin(m, (0, 1)).all()):
            raise ConfigurationError(f"group {name!r}: mask of shape {m.shape} and dtype "
                                     f"{m.dtype}, expected a bool mask of shape {y.shape}")
        masks[str(name)] = m.astype(bool)
    hit1 = top_k_correct(prob, y, 1)
    hit2 = top_k_correct(prob, y, 2)
    rows: list[dict[str, Any]] = []
    for name, m in masks.items():
        rows += _group_rows(hit1[m], hit2[m], y[m], class_names, name, confidence)
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for i, (key, value) in enumerate(columns.items()):
        frame.insert(i, key, value)
    return frame


def noise_curve(predict_fn: Callable[[np.ndarray], ArrayLike],
                render_fn: Callable[[float], ArrayLike], levels: Sequence[float],
                y_true: ArrayLike, class_names: Sequence[str], **columns: Any) -> pd.DataFrame:
    """:func:`accuracy_table` (group ``"all"``) at every noise level.

    Framework-free: the model and the pattern renderer come in as plain callables, e.g.
    ``render_fn = lambda s: check.render(None, rng, conditions.with_noise(s))`` and
    ``predict_fn = lambda x: predict_probabilities(model, x)``.

    Args:
        predict_fn: Patterns ``(N, L)`` → class probabilities ``(N, C)``.
        render_fn: Noise level → patterns ``(N, L)`` of the same ``N`` samples, in order.
        levels: Noise levels, in the order of the output.
        y_true: ``(N,)`` integer class indices.
        class_names: The ``C`` class names.
        **columns: Constant columns, as in :func:`accuracy_table`.

    Returns:
        DataFrame with ``noise_level`` first, then the :func:`accuracy_table` columns;
        ``len(levels) · (C + 2)`` rows.

    Raises:
        ConfigurationError: If ``levels`` is empty, or as :func:`accuracy_table`.
    """
    if "noise_level" in columns:
        raise ConfigurationError("'noise_level' is set by noise_curve, not a constant column")
    if len(levels) == 0:
        raise ConfigurationError("noise_curve needs at least one noise level")
    frames = []
    for level in levels:
        patterns = np.asarray(render_fn(float(level)))
        table = accuracy_table(predict_fn(patterns), y_true, class_names, **columns)
        table.insert(0, "noise_level", float(level))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def headline(table: pd.DataFrame, group: str = GROUP_ALL) -> dict[str, float | str]:
    """The numbers of one group worth quoting: overall top-1 with its interval, and more.

    Args:
        table: An :func:`accuracy_table` (one variant / split: with several, the first
            ``overall`` and ``balanced`` rows of the group are used and the weakest class
            is taken over all of its rows).
        group: Group to summarise.

    Returns:
        ``top1``, ``top1_ci_low``, ``top1_ci_high``, ``top2``, ``balanced``, ``n``
        (floats), ``min_class_top1`` (the lowest per-class top-1 over the classes with
        ``n > 0``, NaN if none) and ``min_class`` (its class name, ``""`` if none; ties go
        to the first class in table order).

    Raises:
        ConfigurationError: If the table has no ``overall`` row for ``group``.
    """
    part = table[table["group"] == group]
    overall = part[part["crystal_system"] == _OVERALL]
    balanced = part[part["crystal_system"] == _BALANCED]
    if overall.empty or balanced.empty:
        raise ConfigurationError(f"no overall / balanced rows for group {group!r}; groups "
                                 f"present: {sorted(table['group'].unique())}")
    o, b = overall.iloc[0], balanced.iloc[0]
    classes = part[~part["crystal_system"].isin([_OVERALL, _BALANCED]) & (part["n"] > 0)]
    worst = classes.iloc[int(np.argmin(classes["top1"].to_numpy()))] if len(classes) else None
    return {"top1": float(o["top1"]), "top1_ci_low": float(o["top1_ci_low"]),
            "top1_ci_high": float(o["top1_ci_high"]), "top2": float(o["top2"]),
            "balanced": float(b["top1"]), "n": float(o["n"]),
            "min_class_top1": float(worst["top1"]) if worst is not None else float("nan"),
            "min_class": str(worst["crystal_system"]) if worst is not None else ""}
