"""Figures of notebooks 13 and 14: XAStruct forward (structure → XANES) and inverse
(XANES → CN, MNND, neighbour type).

Every function takes the plain tables of :mod:`specfusion_lib.xas_structure.study` and
:mod:`specfusion_lib.xas_structure.metrics`, draws into ``ax`` (or a new figure) and returns the
``Figure``; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specfusion_lib.plotting.common import apply_style, axes_or_new, message_panel

__all__ = [
    "plot_cn_confusion",
    "plot_forward_examples",
    "plot_metric_by_element",
    "plot_mnnd_parity",
]


def plot_forward_examples(energies: dict[str, np.ndarray], examples: pd.DataFrame,
                          true_mu: dict[int, np.ndarray], pred_mu: dict[int, np.ndarray],
                          baseline_mu: dict[int, np.ndarray] | None = None) -> Figure:
    """Best, median and worst test spectrum (by the model's MAE) of each element.

    Args:
        energies: Element → grid energies relative to the tabulated edge (eV).
        examples: Rows ``element``, ``rank`` (``best``/``median``/``worst``), ``row``,
            ``material_id``, ``mae``.
        true_mu, pred_mu, baseline_mu: Row → FEFF10, model and nearest-neighbour spectra.
    """
    apply_style()
    elements = list(dict.fromkeys(examples["element"]))
    ranks = ["best", "median", "worst"]
    if not elements:
        fig, ax = plt.subplots(figsize=(5, 3))
        message_panel(ax, "no test spectra")
        return fig
    fig, axes = plt.subplots(len(elements), 3, figsize=(10.5, 1.9 * len(elements)),
                             squeeze=False, sharex="row")
    for i, element in enumerate(elements):
        for j, rank in enumerate(ranks):
            ax = axes[i, j]
            sel = examples[(examples["element"] == element) & (examples["rank"] == rank)]
            if sel.empty:
                message_panel(ax, "—")
                continue
            r = sel.iloc[0]
            x = energies[element]
            ax.plot(x, true_mu[int(r["row"])], color="k", lw=1.2, label="FEFF10")
            ax.plot(x, pred_mu[int(r["row"])], color="C3", lw=1.0, label="XAStruct")
            if baseline_mu is not None:
                ax.plot(x, baseline_mu[int(r["row"])], color="C0", lw=0.8, ls="--",
                        label="nearest neighbour")
            ax.set_title(f"{element} {rank}: {r['material_id']} (MAE {r['mae']:.3f})",
                         fontsize=7)
            ax.tick_params(labelsize=6)
            if i == len(elements) - 1:
                ax.set_xlabel("E − E_K(tab) (eV)", fontsize=7)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_metric_by_element(summary: pd.DataFrame, metric: str = "mae", *,
                           models: Sequence[str] | None = None, ax: plt.Axes | None = None,
                           reference: float | None = None, reference_label: str = "") -> Figure:
    """Grouped bars of ``metric`` per element (and pooled), one bar per model.

    Args:
        summary: :func:`~specfusion_lib.xas_structure.metrics.summarise` rows (``model``,
            ``element``, ``metric``).
        metric: Column to draw.
        models: Models in drawing order (default: as they appear).
        ax: Axes to draw into.
        reference: A paper value drawn as a horizontal line.
        reference_label: Its label.
    """
    fig, ax = axes_or_new(ax, (11, 3.6))
    if summary.empty:
        message_panel(ax, "no results")
        return fig
    models = list(models) if models is not None else list(dict.fromkeys(summary["model"]))
    elements = list(dict.fromkeys(summary["element"]))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(elements))
    for k, model in enumerate(models):
        sub = summary[summary["model"] == model].set_index("element")
        values = [sub[metric].get(el, np.nan) for el in elements]
        ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width, label=model)
    if reference is not None:
        ax.axhline(reference, color="k", ls=":", lw=1, label=reference_label)
    ax.set_xticks(x, elements, fontsize=7)
    ax.set_ylabel(metric)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    return fig


def plot_cn_confusion(predictions: pd.DataFrame, elements: Sequence[str], *,
                      model: str) -> Figure:
    """Row-normalised CN confusion matrices of ``model``, one panel per element."""
    apply_style()
    elements = list(elements)
    ncol = min(4, max(len(elements), 1))
    nrow = max(1, int(np.ceil(len(elements) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 2.8 * nrow), squeeze=False)
    for ax in axes.flat[len(elements):]:
        ax.axis("off")
    for ax, element in zip(axes.flat, elements, strict=False):
        sub = predictions[(predictions["model"] == model) & (predictions["element"] == element)]
        if sub.empty:
            message_panel(ax, "no test rows", title=element)
            continue
        labels = sorted(set(sub["true"]) | set(sub["pred"]), key=lambda s: int(s))
        index = {c: i for i, c in enumerate(labels)}
        m = np.zeros((len(labels), len(labels)))
        for t, p in zip(sub["true"], sub["pred"], strict=True):
            m[index[t], index[p]] += 1
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        acc = float((sub["true"] == sub["pred"]).mean())
        ax.set_title(f"{element}: accuracy {acc:.2f} (n={len(sub)})", fontsize=7)
        ax.set_xlabel("predicted CN", fontsize=6)
        ax.set_ylabel("true CN", fontsize=6)
    fig.tight_layout()
    return fig


def plot_mnnd_parity(predictions: pd.DataFrame, *, models: Sequence[str],
                     ax: plt.Axes | None = None) -> Figure:
    """Predicted against true MNND (Å) per model, with each model's MAE and slope."""
    fig, ax = axes_or_new(ax, (4.2, 4.0))
    if predictions.empty:
        message_panel(ax, "no MNND predictions")
        return fig
    lo = float(predictions[["true", "pred"]].astype(float).min().min())
    hi = float(predictions[["true", "pred"]].astype(float).max().max())
    for k, model in enumerate(models):
        sub = predictions[predictions["model"] == model]
        t, p = sub["true"].astype(float), sub["pred"].astype(float)
        if len(sub) < 2:
            continue
        slope = np.polyfit(t, p, 1)[0]
        ax.scatter(t, p, s=8, alpha=0.6, color=f"C{k}",
                   label=f"{model}: MAE {np.abs(t - p).mean():.3f} Å, slope {slope:.2f}")
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xlabel("true MNND (Å)")
    ax.set_ylabel("predicted MNND (Å)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
