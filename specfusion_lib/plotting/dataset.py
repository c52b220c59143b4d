"""Dataset-statistics figures of notebook 01 (SI Fig. S1–S3, S6, S7, S17).

Each function takes plain data (counts, label series, spectra on a grid) and returns a
matplotlib ``Figure``; :func:`~specfusion_lib.plotting.common.save_figure` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from pymatgen.core import Element

from specfusion_lib.plotting.common import NOT_AVAILABLE, message_panel

__all__ = [
    "plot_classification_distributions",
    "plot_nelements_distribution",
    "plot_periodic_table_counts",
    "plot_regression_distributions",
    "plot_spectra_by_element",
    "plot_top_formulas",
]


def _table_position(symbol: str) -> tuple[int, int]:
    """(row, column) of an element in the 18-column periodic table, f-block rows 8 and 9."""
    element = Element(symbol)
    if element.is_lanthanoid:
        return 8, 3 + element.Z - 57
    if element.is_actinoid:
        return 9, 3 + element.Z - 89
    return element.row, element.group


def plot_periodic_table_counts(counts: Mapping[str, int], title: str = "") -> Figure:
    """Fig. S1: periodic table coloured by how many materials contain each element.

    Cells of elements present show the atomic number, symbol and count; absent elements
    are grey. The colour scale is logarithmic.
    """
    fig, ax = plt.subplots(figsize=(11, 6.2))
    present = {k: v for k, v in counts.items() if v > 0}
    norm = LogNorm(vmin=1, vmax=max(present.values(), default=1) or 1)
    cmap = plt.get_cmap("viridis")
    for z in range(1, 104):
        symbol = Element.from_Z(z).symbol
        row, col = _table_position(symbol)
        y = row + (0.4 if row >= 8 else 0)
        count = counts.get(symbol, 0)
        face = cmap(norm(count)) if count > 0 else (0.88, 0.88, 0.88, 1.0)
        ax.add_patch(plt.Rectangle((col - 0.5, y - 0.5), 0.96, 0.96, facecolor=face,
                                   edgecolor="white"))
        text_colour = "white" if count > 0 and norm(count) < 0.6 else "black"
        ax.text(col - 0.42, y - 0.3, str(z), fontsize=5, color=text_colour, va="center")
        ax.text(col, y - 0.02, symbol, fontsize=8, ha="center", va="center",
                color=text_colour, weight="bold")
        if count > 0:
            ax.text(col, y + 0.3, str(count), fontsize=5.5, ha="center", va="center",
                    color=text_colour)
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(9.95, 0.45)
    ax.set_aspect("equal")
    ax.axis("off")
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, fraction=0.025, pad=0.01, label="materials containing element")
    ax.set_title(title or "Elements in the dataset (count of materials)")
    return fig


def plot_nelements_distribution(nelements: pd.Series, title: str = "") -> Figure:
    """Fig. S2: number of materials by number of elements."""
    counts = nelements.value_counts().sort_index()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(counts.index.astype(str), counts.values, color="#3b6ea8")
    for x, v in zip(counts.index.astype(str), counts.values, strict=True):
        ax.text(x, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("number of elements")
    ax.set_ylabel("materials")
    ax.set_title(title or "Compounds by number of elements")
    return fig


def plot_top_formulas(counts: pd.Series, title: str = "") -> Figure:
    """Fig. S3: frequency of the most common anonymous formulas (bar chart, top first)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.barh(counts.index[::-1], counts.values[::-1], color="#5a9f68")
    ax.set_xlabel("materials")
    ax.set_title(title or f"Top {len(counts)} anonymous formulas")
    return fig


def _not_available(ax: plt.Axes, title: str) -> None:
    message_panel(ax, NOT_AVAILABLE, title)


def plot_classification_distributions(labels: Mapping[str, tuple[str, Sequence[str],
                                                                 pd.Series]]) -> Figure:
    """Fig. S6: class counts of each classification task.

    Args:
        labels: task name → (title, class order, labels per material with None for absent).
    """
    n = len(labels)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    for ax, (title, classes, series) in zip(axes[0], labels.values(), strict=True):
        present = series.dropna()
        if present.empty:
            _not_available(ax, title)
            continue
        counts = present.value_counts().reindex(list(classes), fill_value=0)
        ax.bar(counts.index, counts.values, color="#8c5fa8")
        ax.set_title(f"{title} (n={len(present)})")
        ax.tick_params(axis="x", rotation=30)
    axes[0][0].set_ylabel("materials")
    fig.tight_layout()
    return fig


def plot_regression_distributions(values: Mapping[str, tuple[str, pd.Series]]) -> Figure:
    """Fig. S7: histograms of each regression target.

    Args:
        values: task name → (axis label with unit, values per material with NaN for absent).
    """
    n = len(values)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    for ax, (label, series) in zip(axes[0], values.values(), strict=True):
        present = series.dropna()
        if present.empty:
            _not_available(ax, label)
            continue
        ax.hist(present.values, bins=min(40, max(5, len(present) // 3)), color="#c2703d")
        ax.set_xlabel(label)
        ax.set_title(f"n={len(present)}, mean {present.mean():.2f}")
    axes[0][0].set_ylabel("materials")
    fig.tight_layout()
    return fig


def plot_spectra_by_element(grid: np.ndarray, spectra: Mapping[str, np.ndarray],
                            xlabel: str = "E − E0 (eV)", ylabel: str = "standardised μ",
                            title: str = "") -> Figure:
    """Fig. S17: processed spectra, one colour per absorbing element.

    Each element's spectra are drawn thin and translucent, with their mean in bold.

    Args:
        grid: Energy grid relative to E0, shape ``(n_points,)``.
        spectra: element → array of shape ``(n_spectra, n_points)``.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.get_cmap("tab20")
    for i, (element, block) in enumerate(sorted(spectra.items(),
                                                key=lambda kv: Element(kv[0]).Z)):
        colour = colours(i % 20)
        block = np.atleast_2d(block)
        ax.plot(grid, block.T, color=colour, alpha=0.12, lw=0.6)
        ax.plot(grid, block.mean(axis=0), color=colour, lw=1.8,
                label=f"{element} (n={len(block)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(ncol=2, fontsize=7)
    ax.set_title(title or "Standardised transition-metal K-edge XANES")
    return fig
