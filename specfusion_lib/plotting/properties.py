"""Figures of the model notebooks: Fig. 2c–h, S8 and the per-TM classifiers.

Like :mod:`specfusion_lib.plotting.common`, every function takes plain data (the tables of
:mod:`specfusion_lib.properties.runs`), returns a matplotlib ``Figure`` and writes nothing. A
task that is not available in the snapshot gets a panel that says so instead of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specfusion_lib.core.paper import (
    CLASSIFICATION_SCORE,
    FIG2H_BAND_GAP_MAE_DIFFERENCE,
    FIG2H_F1_DIFFERENCE,
    PROPERTY_VALUES,
)
from specfusion_lib.plotting.common import apply_style, message_panel
from specfusion_lib.properties.runs import NOT_AVAILABLE

__all__ = [
    "plot_classification_metrics",
    "plot_confusion_matrices",
    "plot_parity",
    "plot_partial_vs_all",
    "plot_per_element_accuracy",
]

_OURS, _BASE, _PAPER = "#3b6ea8", "#b8b8b8", "#c2703d"


def _not_available_panel(ax: plt.Axes, title: str, detail: str = "") -> None:
    message_panel(ax, NOT_AVAILABLE + (f"\n{detail}" if detail else ""), title)


def plot_classification_metrics(table: pd.DataFrame) -> Figure:
    """Fig. 2c: accuracy and macro-F1 of every classification task.

    Bars: ours (mean ± std over seeds) and the majority-class baseline; a marker at the
    paper's value (dashed line for the paper's bound). Tasks not available in the snapshot
    keep their slot, labelled as such.

    Args:
        table: :func:`specfusion_lib.properties.runs.metrics_table` (its classification rows
            are used).
    """
    apply_style()
    cls = table[table["kind"] == "classification"]
    tasks = list(dict.fromkeys(cls["task"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.5 * len(tasks) + 2), 3.4),
                             sharey=True, squeeze=False)
    x = np.arange(len(tasks))
    for ax, metric, label in zip(axes[0], ("accuracy", "f1_macro"), ("accuracy", "macro-F1"),
                                 strict=True):
        sub = cls[cls["metric"] == metric].set_index("task").reindex(tasks)
        ours = sub["ours_mean"].to_numpy(dtype=float)
        err = np.nan_to_num(sub["ours_std"].to_numpy(dtype=float))
        base = sub["baseline_value"].to_numpy(dtype=float)
        ax.bar(x - 0.2, np.nan_to_num(ours), 0.4, yerr=err, color=_OURS, label="SpecFusionNet")
        ax.bar(x + 0.2, np.nan_to_num(base), 0.4, color=_BASE, label="majority class")
        labelled = False
        for i, task in enumerate(tasks):
            if not math.isfinite(ours[i]):
                ax.text(i, 0.04, NOT_AVAILABLE, rotation=90, ha="center", va="bottom",
                        fontsize=6.5, color="0.4", style="italic")
            paper = PROPERTY_VALUES.get((task, metric))
            if paper is not None:
                ax.hlines(paper.value, i - 0.45, i + 0.45, colors=_PAPER,
                          linestyles="--" if paper.bound else "-", lw=1.5,
                          label=None if labelled else "paper (dashed: bound)")
                labelled = True
        ax.set_xticks(x, tasks, rotation=35, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title(label)
    axes[0][0].set_ylabel("score on the test part")
    axes[0][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"Classification (paper: accuracy and macro-F1 {CLASSIFICATION_SCORE.text}, "
                 "Fig. 2c)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion_matrices(matrices: Mapping[str, pd.DataFrame | None],
                            titles: Mapping[str, str] | None = None) -> Figure:
    """SI Fig. S8: confusion matrices (counts, row-normalised colour) of each task.

    Args:
        matrices: Task → matrix from :func:`specfusion_lib.properties.runs.confusion_matrix`
            (``None`` for a task not available).
        titles: Task → panel title (default: the task name).
    """
    apply_style()
    titles = dict(titles or {})
    n = max(1, len(matrices))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (task, matrix) in zip(axes.flat, matrices.items(), strict=False):
        title = titles.get(task, task)
        if matrix is None or int(matrix.to_numpy().sum()) == 0:
            _not_available_panel(ax, title)
            continue
        counts = matrix.to_numpy()
        totals = counts.sum(axis=1, keepdims=True)
        frac = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(counts):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > 0.6 else "black")
        labels = [str(c) for c in matrix.columns]
        ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), [str(c) for c in matrix.index], fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} (n={int(counts.sum())})")
    fig.tight_layout()
    return fig


def plot_parity(frame: pd.DataFrame, title: str, unit: str,
                metrics: pd.DataFrame | None = None, paper_value: str = "") -> Figure:
    """Fig. 2d–g: predicted vs true values of a regression target on the test part.

    Args:
        frame: :func:`specfusion_lib.properties.runs.parity_frame` (empty when not available).
        title: Target name.
        unit: Target unit.
        metrics: The task's rows of :func:`~specfusion_lib.properties.runs.metrics_table`
            (MAE, R² and the baseline MAE are printed on the panel).
        paper_value: The paper's MAE as it states it (``PaperValue.text`` of
            :data:`specfusion_lib.core.paper.PROPERTY_VALUES`).
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    if frame.empty:
        _not_available_panel(ax, title, f"(paper: MAE {paper_value})" if paper_value else "")
        return fig
    y, p = frame["y_true"].to_numpy(float), frame["y_pred"].to_numpy(float)
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.8, ls="--")
    ax.scatter(y, p, s=14, alpha=0.7, color=_OURS, edgecolor="none")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"true ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    lines = [f"n = {len(y)}"]
    if metrics is not None and not metrics.empty:
        by = metrics.set_index("metric")
        if "mae" in by.index:
            lines.append(f"MAE {by.loc['mae', 'ours']}")
            lines.append(f"baseline MAE {by.loc['mae', 'baseline_value']:.3f}")
        if "r2" in by.index:
            lines.append(f"R² {by.loc['r2', 'ours']}")
    if paper_value:
        lines.append(f"paper MAE {paper_value}")
    ax.text(0.03, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=7.5)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_partial_vs_all(table: pd.DataFrame) -> Figure:
    """Fig. 2h: TM-edges-only vs all-element inputs, per task.

    Args:
        table: :func:`specfusion_lib.properties.runs.partial_vs_all_table`.
    """
    apply_style()
    groups = [("classification", "macro-F1", "f1_macro"), ("regression", "MAE", "mae")]
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 0.9 * len(table) + 3), 3.4),
                             squeeze=False)
    for ax, (kind, label, _metric) in zip(axes[0], groups, strict=True):
        sub = table[table["kind"] == kind].reset_index(drop=True)
        if sub.empty:
            _not_available_panel(ax, label)
            continue
        x = np.arange(len(sub))
        tm = sub["tm_only"].to_numpy(float)
        al = sub["all_element"].to_numpy(float)
        ax.bar(x - 0.2, np.nan_to_num(tm), 0.4, color=_OURS, label="TM edges only",
               yerr=np.nan_to_num(sub["tm_only_std"].to_numpy(float)))
        ax.bar(x + 0.2, np.nan_to_num(al), 0.4, color=_PAPER, label="all elements",
               yerr=np.nan_to_num(sub["all_element_std"].to_numpy(float)))
        top = np.nanmax(np.concatenate([tm, al, [1e-9]]))
        for i, row in sub.iterrows():
            if row["status"] != "trained":
                ax.text(i, 0.03 * (top if math.isfinite(top) and top > 0 else 1),
                        NOT_AVAILABLE, rotation=90, ha="center", va="bottom", fontsize=6.5,
                        color="0.4", style="italic")
        ax.set_xticks(x, sub["task"], rotation=35, ha="right")
        paper = (f"|Δ| {FIG2H_F1_DIFFERENCE.text}" if kind == "classification"
                 else f"band gap |Δ| = {FIG2H_BAND_GAP_MAE_DIFFERENCE.text}")
        ax.set_title(f"{label} (paper: {paper})")
    axes[0][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Partial (TM-only) vs all-element XANES on the same compounds (Fig. 2h)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_per_element_accuracy(tables: Mapping[str, pd.DataFrame],
                              titles: Mapping[str, str] | None = None) -> Figure:
    """Accuracy per TM element of the element-level classifiers, next to the baseline.

    Args:
        tables: Task → :func:`specfusion_lib.properties.runs.per_element_accuracy`.
        titles: Task → panel title.
    """
    apply_style()
    titles = dict(titles or {})
    fig, axes = plt.subplots(1, max(1, len(tables)), figsize=(4.2 * max(1, len(tables)), 3.2),
                             squeeze=False)
    for ax, (task, table) in zip(axes[0], tables.items(), strict=False):
        title = titles.get(task, task)
        trained = table[table["status"] == "trained"] if "status" in table else table
        if trained.empty:
            _not_available_panel(ax, title)
            continue
        x = np.arange(len(trained))
        ax.bar(x - 0.2, trained["accuracy"], 0.4, color=_OURS, label="SpecFusionNet")
        ax.bar(x + 0.2, trained["baseline_accuracy"], 0.4, color=_BASE,
               label="element's majority class")
        for i, n in enumerate(trained["n_test"]):
            ax.text(i, 1.02, f"n={n}", ha="center", fontsize=6.5)
        ax.set_xticks(x, trained["element"])
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("accuracy (test part)")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
