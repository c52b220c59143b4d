"""Figures of notebook 15: the universal CGXAS model and its calibration to measured spectra.

Analogues of CGXAS (seed 003) Fig. 2a (loss curves), 2b (error distribution), 3a (Pearson per
element of universal vs per-element models: :func:`~.xas_structure.plot_metric_by_element`),
3b,c (t-SNE of latent site vectors), 4 (measured samples among the simulated ones), 5b (edge
error before/after calibration) and 5c–h (measured vs predicted spectra). Every function takes
plain tables, draws into ``ax`` (or a new figure) and returns the ``Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specfusion_lib.plotting.common import apply_style, axes_or_new, message_panel

__all__ = [
    "plot_calibration_examples",
    "plot_edge_error_by_variant",
    "plot_error_distribution",
    "plot_loss_curves",
    "plot_measured_among_simulated",
    "plot_tsne",
]


def plot_loss_curves(history: pd.DataFrame, *, ax: plt.Axes | None = None) -> Figure:
    """Training and validation RSE per epoch (CGXAS Fig. 2a).

    Args:
        history: Columns ``epoch``, ``train_loss``, ``val_loss``.
    """
    fig, ax = axes_or_new(ax, (5, 3.2))
    if history.empty:
        message_panel(ax, "no training history")
        return fig
    ax.plot(history["epoch"], history["train_loss"], label="training")
    ax.plot(history["epoch"], history["val_loss"], label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RSE")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_error_distribution(per_spectrum: pd.DataFrame, models: Sequence[str], *,
                            metric: str = "rse", ax: plt.Axes | None = None) -> Figure:
    """Histogram of a per-spectrum metric of the test spectra, one outline per model
    (CGXAS Fig. 2b)."""
    fig, ax = axes_or_new(ax, (5, 3.2))
    values = [per_spectrum.loc[per_spectrum["model"] == m, metric].dropna() for m in models]
    if not any(len(v) for v in values):
        message_panel(ax, "no test spectra")
        return fig
    top = max(float(np.quantile(v, 0.98)) for v in values if len(v))
    bins = np.linspace(0, top, 30)
    for model, v in zip(models, values, strict=True):
        if len(v):
            ax.hist(v.clip(upper=top), bins=bins, histtype="step", lw=1.5,
                    label=f"{model} (mean {v.mean():.3f})")
    ax.set_xlabel(metric.upper())
    ax.set_ylabel("test spectra")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_tsne(xy: np.ndarray, labels: Sequence[str], *, title: str = "", max_labels: int = 12,
              ax: plt.Axes | None = None) -> Figure:
    """2-D embedding coloured by category; the ``max_labels`` most frequent get their own
    colour, the rest are grey ("other") (CGXAS Fig. 3b,c)."""
    fig, ax = axes_or_new(ax, (5.2, 4.2))
    if len(xy) == 0:
        message_panel(ax, "no sites")
        return fig
    labels = np.asarray(labels, dtype=object)
    common = pd.Series(labels).value_counts().index[:max_labels].tolist()
    other = ~np.isin(labels, common)
    if other.any():
        ax.scatter(xy[other, 0], xy[other, 1], s=4, c="0.8", label="other")
    cmap = plt.get_cmap("tab20")
    for k, label in enumerate(common):
        sel = labels == label
        ax.scatter(xy[sel, 0], xy[sel, 1], s=5, color=cmap(k % 20), label=str(label))
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, markerscale=2, ncol=2, loc="best")
    fig.tight_layout()
    return fig


def plot_measured_among_simulated(simulated_xy: np.ndarray, measured_xy: np.ndarray,
                                  measured_labels: Sequence[str], *, title: str = "",
                                  ax: plt.Axes | None = None) -> Figure:
    """Predicted spectra of the snapshot (dots) and of the measured compounds (stars) in one
    t-SNE map (CGXAS Fig. 4)."""
    fig, ax = axes_or_new(ax, (5, 4))
    if len(simulated_xy) == 0:
        message_panel(ax, "no spectra")
        return fig
    ax.scatter(simulated_xy[:, 0], simulated_xy[:, 1], s=5, c="tab:blue", alpha=0.5,
               label="snapshot compounds")
    if len(measured_xy):
        ax.scatter(measured_xy[:, 0], measured_xy[:, 1], s=90, marker="*", c="tab:red",
                   edgecolor="k", lw=0.5, label="measured compounds")
        for (x, y), text in zip(measured_xy, measured_labels, strict=True):
            ax.annotate(text, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_edge_error_by_variant(summary: pd.DataFrame, *, reference: tuple[float, float] | None
                               = None, ax: plt.Axes | None = None) -> Figure:
    """Mean edge-energy error per calibration variant, pooled and per element (CGXAS
    Fig. 5b); ``reference`` = the paper's (before, after) values, drawn as lines."""
    fig, ax = axes_or_new(ax, (8, 3.4))
    if summary.empty:
        message_panel(ax, "no measured spectra")
        return fig
    variants = list(dict.fromkeys(summary["variant"]))
    elements = list(dict.fromkeys(summary["element"]))
    width = 0.8 / len(variants)
    x = np.arange(len(elements))
    for k, variant in enumerate(variants):
        sub = summary[summary["variant"] == variant].set_index("element")
        ax.bar(x + (k - (len(variants) - 1) / 2) * width,
               [sub["edge_error_ev"].get(el, np.nan) for el in elements], width, label=variant)
    if reference is not None:
        ax.axhline(reference[0], color="k", ls=":", lw=1, label="CGXAS before")
        ax.axhline(reference[1], color="k", ls="--", lw=1, label="CGXAS after")
    ax.set_xticks(x, [f"{el}\n(n={int(summary[summary['element'] == el]['n'].iloc[0])})"
                      for el in elements], fontsize=7)
    ax.set_ylabel("edge-energy error (eV)")
    ax.legend(fontsize=6, ncol=4)
    fig.tight_layout()
    return fig


def plot_calibration_examples(energies: Sequence[np.ndarray], measured: Sequence[np.ndarray],
                              covered: Sequence[np.ndarray], before: Sequence[np.ndarray],
                              after: Sequence[np.ndarray], titles: Sequence[str], *,
                              after_label: str = "calibrated") -> Figure:
    """Measured spectrum, prediction before and after calibration, one panel per record
    (CGXAS Fig. 5c–h). Energies relative to the tabulated edge."""
    apply_style()
    n = len(titles)
    if n == 0:
        fig, ax = plt.subplots(figsize=(5, 3))
        message_panel(ax, "no measured spectra")
        return fig
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.3 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        e = np.asarray(energies[k])
        cov = np.asarray(covered[k], bool)
        ax.plot(e[cov], np.asarray(measured[k])[cov], "k", lw=1.5, label="measured")
        ax.plot(e, before[k], color="tab:blue", lw=1, label="before")
        ax.plot(e, after[k], color="tab:red", lw=1, label=after_label)
        ax.set_title(titles[k], fontsize=7)
        ax.tick_params(labelsize=6)
        if k == 0:
            ax.legend(fontsize=6)
    fig.supxlabel("E − tabulated K edge (eV)", fontsize=8)
    fig.tight_layout()
    return fig
