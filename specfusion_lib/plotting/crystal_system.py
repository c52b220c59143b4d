"""Figures of the PXRD notebooks 07 and 08 (Fig. 4c,d; SI Fig. S18–S21; noise robustness).

Like :mod:`specfusion_lib.plotting.common`, every function takes plain data, returns a matplotlib
``Figure`` and writes nothing. Where a snapshot lacks the data for a panel, the panel says so
instead of showing numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specfusion_lib.core.paper import FIG4D_ACCURACY
from specfusion_lib.core.tasks import CRYSTAL_SYSTEMS
from specfusion_lib.plotting.common import apply_style, message_panel

__all__ = [
    "plot_accuracy_vs_noise",
    "plot_architecture",
    "plot_class_distribution",
    "plot_confusion_and_per_class",
    "plot_example_patterns",
    "plot_modality_comparison",
    "plot_preprocessing_example",
]

_OURS, _BASE, _PAPER, _RF = "#3b6ea8", "#b8b8b8", "#c2703d", "#6a9e5b"


def _message(ax: plt.Axes, text: str, title: str = "") -> None:
    message_panel(ax, text, title)


def plot_class_distribution(counts: pd.DataFrame, title: str = "") -> Figure:
    """Fig. 4c: materials per crystal system, split into train / validation / test.

    Args:
        counts: Index = crystal systems; columns ``train``, ``val``, ``test`` (counts).
        title: Figure title.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    x = np.arange(len(counts))
    bottom = np.zeros(len(counts))
    colours = {"train": _OURS, "val": "#8fb3d9", "test": _PAPER}
    for part in ("train", "val", "test"):
        if part in counts:
            values = counts[part].to_numpy(dtype=float)
            ax.bar(x, values, 0.7, bottom=bottom, color=colours[part], label=part)
            bottom += values
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{int(total)}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [str(c) for c in counts.index], rotation=30, ha="right")
    ax.set_ylabel("materials")
    ax.set_title(title or "Crystal systems of the PXRD dataset")
    ax.legend(fontsize=7)
    if bottom.sum() == 0:
        _message(ax, "no labelled material in this snapshot")
    fig.tight_layout()
    return fig


def plot_confusion_and_per_class(confusion: pd.DataFrame, table: pd.DataFrame,
                                 title: str = "") -> Figure:
    """Fig. 4d (and the per-class accuracies discussed with Fig. S20).

    Left: confusion matrix of the test parts (counts; colour = fraction of the true class).
    Right: per-class accuracy of the network and the random forest, with the paper's values
    (:data:`specfusion_lib.core.paper.FIG4D_ACCURACY`; a dashed line is a bound, a band a
    stated range).

    Args:
        confusion: :meth:`~specfusion_lib.crystal_system.training.CrystalSystemRun.confusion_matrix`
            (summed over seeds).
        table: :func:`specfusion_lib.crystal_system.reports.metrics_table`.
        title: Figure title.
    """
    apply_style()
    fig, (ax_c, ax_b) = plt.subplots(1, 2, figsize=(9.6, 3.9),
                                     gridspec_kw={"width_ratios": [1.0, 1.15]})
    counts = confusion.to_numpy()
    if counts.sum() == 0:
        _message(ax_c, "no test material", "confusion matrix")
    else:
        totals = counts.sum(axis=1, keepdims=True)
        frac = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
        ax_c.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(counts):
            if v:
                ax_c.text(j, i, str(v), ha="center", va="center", fontsize=7,
                          color="white" if frac[i, j] > 0.6 else "black")
        labels = [str(c) for c in confusion.columns]
        ax_c.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=7)
        ax_c.set_yticks(range(len(labels)), [str(c) for c in confusion.index], fontsize=7)
        ax_c.set_xlabel("predicted")
        ax_c.set_ylabel("true")
        ax_c.set_title(f"confusion matrix (test, n={int(counts.sum())})")

    rows = table.set_index("crystal_system")
    names = ["overall", *CRYSTAL_SYSTEMS]
    x = np.arange(len(names))
    ours = rows.reindex(names)["accuracy"].to_numpy(dtype=float)
    err = np.nan_to_num(rows.reindex(names)["accuracy_std"].to_numpy(dtype=float))
    rf = rows.reindex(names)["random_forest"].to_numpy(dtype=float)
    n_test = rows.reindex(names)["n_test"].to_numpy(dtype=float)
    ax_b.bar(x - 0.2, np.nan_to_num(ours), 0.4, yerr=err, color=_OURS, label="CNN-Transformer")
    ax_b.bar(x + 0.2, np.nan_to_num(rf), 0.4, color=_RF, label="random forest (binned)")
    maj = rows.loc["overall", "majority_class"] if "overall" in rows.index else math.nan
    if math.isfinite(float(maj)):
        ax_b.hlines(float(maj), -0.45, 0.45, colors="0.3", lw=1.2, linestyles=":",
                    label="majority class")
    labelled = False
    for i, name in enumerate(names):
        if not n_test[i]:
            ax_b.text(i, 0.03, "no test example", rotation=90, ha="center", va="bottom",
                      fontsize=6.5, color="0.4", style="italic")
        pv = FIG4D_ACCURACY.get(name)
        if pv is None:
            continue
        if pv.span is not None:
            ax_b.fill_between([i - 0.45, i + 0.45], *pv.span, color=_PAPER, alpha=0.25,
                              lw=0, label=None if labelled else "paper")
        else:
            ax_b.hlines(pv.value, i - 0.45, i + 0.45, colors=_PAPER, lw=1.6,
                        linestyles="--" if pv.bound else "-",
                        label=None if labelled else "paper")
        labelled = True
    ax_b.set_xticks(x, [f"{n}\n(n={int(c)})" for n, c in zip(names, n_test, strict=True)],
                    rotation=40, ha="right", fontsize=7)
    ax_b.set_ylim(0, 1.05)
    ax_b.set_ylabel("test accuracy")
    ax_b.set_title("accuracy per crystal system")
    ax_b.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    overall = FIG4D_ACCURACY["overall"]
    fig.suptitle(title or f"PXRD crystal-system classification (paper: {overall.text} overall, "
                          "Fig. 4d)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_preprocessing_example(two_theta_sticks: np.ndarray, sticks: np.ndarray,
                               grid: np.ndarray, broadened: np.ndarray, measured: np.ndarray,
                               title: str = "") -> Figure:
    """SI Fig. S18: stick pattern → Voigt-broadened → with noise and background.

    Args:
        two_theta_sticks: Reflection positions, degrees.
        sticks: Integrated intensities (max 1).
        grid: 2θ grid of the patterns.
        broadened: The clean Voigt-broadened pattern on ``grid``.
        measured: The same with the measurement-like perturbations.
        title: Figure title (e.g. the formula).
    """
    apply_style()
    fig, axes = plt.subplots(3, 1, figsize=(6.4, 5.4), sharex=True)
    lo, hi = float(grid[0]), float(grid[-1])
    inside = (two_theta_sticks >= lo) & (two_theta_sticks <= hi)
    axes[0].vlines(two_theta_sticks[inside], 0, sticks[inside], color="k", lw=0.8)
    axes[0].set_title("reflections (pymatgen XRDCalculator, Cu Kα)", fontsize=8)
    axes[1].plot(grid, broadened, color=_OURS, lw=0.8)
    axes[1].set_title("Voigt broadening (FWHM_G 0.10°, FWHM_L 0.05°)", fontsize=8)
    axes[2].plot(grid, measured, color=_PAPER, lw=0.6)
    axes[2].set_title("+ zero shift, intensity perturbation, background, Gaussian noise "
                      "(σ = 2 %)", fontsize=8)
    for ax in axes:
        ax.set_ylabel("intensity")
    axes[-1].set_xlabel("2θ (degrees)")
    axes[-1].set_xlim(lo, hi)
    fig.suptitle(title or "PXRD preprocessing (SI Fig. S18)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_architecture(table: pd.DataFrame, title: str = "") -> Figure:
    """SI Fig. S19: the CNN-Transformer as a table of stages, output shapes and parameters.

    Args:
        table: :func:`specfusion_lib.models.pxrd_net.architecture_table` as a frame.
        title: Figure title.
    """
    apply_style()
    cells = [[str(r.stage), str(r.layer), str(tuple(r.output_shape)), f"{int(r.parameters):,}"]
             for r in table.itertuples()]
    total = int(table["parameters"].sum())
    cells.append(["total", "", "", f"{total:,}"])
    fig, ax = plt.subplots(figsize=(8.6, 0.32 * len(cells) + 0.9))
    ax.axis("off")
    tab = ax.table(cellText=cells, colLabels=["stage", "layer", "output shape", "parameters"],
                   loc="center", cellLoc="left", colLoc="left",
                   colWidths=[0.17, 0.55, 0.14, 0.12])
    tab.auto_set_font_size(False)
    tab.set_fontsize(7.5)
    tab.scale(1.0, 1.25)
    for (row, _), cell in tab.get_celld().items():
        if row == 0 or row == len(cells):
            cell.set_text_props(weight="bold")
    ax.set_title(title or "CNN-Transformer for the crystal system (SI Fig. S19)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_example_patterns(grid: np.ndarray, patterns: Sequence[np.ndarray],
                          labels: Sequence[str], probabilities: Sequence[Mapping[str, float]],
                          title: str = "") -> Figure:
    """SI Fig. S20: test patterns of low-symmetry materials with the predicted probabilities.

    Args:
        grid: 2θ grid.
        patterns: One test pattern per panel.
        labels: Panel label (formula and true crystal system).
        probabilities: Per panel, crystal system → probability.
        title: Figure title.
    """
    apply_style()
    n = max(1, len(patterns))
    fig, axes = plt.subplots(n, 1, figsize=(6.8, 1.9 * n + 0.4), sharex=True, squeeze=False)
    if not patterns:
        _message(axes[0][0], "no orthorhombic, monoclinic or triclinic test material in this "
                             "snapshot")
    for ax, y, label, probs in zip(axes[:, 0], patterns, labels, probabilities, strict=False):
        ax.plot(grid, y, color="k", lw=0.6)
        top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
        text = "\n".join(f"{c} {p:.2f}" for c, p in top)
        ax.text(0.99, 0.95, "predicted:\n" + text, transform=ax.transAxes, ha="right",
                va="top", fontsize=7)
        ax.set_title(label, fontsize=8, loc="left")
        ax.set_ylabel("intensity")
    axes[-1][0].set_xlabel("2θ (degrees)")
    fig.suptitle(title or "Peak-rich patterns of low-symmetry crystals (SI Fig. S20)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_noise(curve: pd.DataFrame, test_level: float = 0.02,
                           title: str = "") -> Figure:
    """Accuracy of the network and the random forest vs the noise σ (our addition).

    Args:
        curve: :func:`specfusion_lib.crystal_system.reports.noise_curve` (seeds are averaged).
        test_level: The σ of the headline test condition (marked).
        title: Figure title.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    if curve.empty or not np.isfinite(curve["accuracy"].to_numpy(dtype=float)).any():
        _message(ax, "no test material")
    else:
        mean = curve.groupby("noise_level")[["accuracy", "baseline_accuracy"]].mean()
        levels = mean.index.to_numpy(dtype=float)
        x = np.arange(len(levels))  # evenly spaced: the levels span two decades
        ax.plot(x, mean["accuracy"], "o-", color=_OURS, label="CNN-Transformer")
        if np.isfinite(mean["baseline_accuracy"].to_numpy(dtype=float)).any():
            ax.plot(x, mean["baseline_accuracy"], "s--", color=_RF,
                    label="random forest (binned)")
        hits = np.flatnonzero(np.isclose(levels, test_level))
        if hits.size:
            ax.axvline(hits[0], color="0.6", lw=0.8, ls=":")
            ax.text(hits[0], 0.02, " test condition", fontsize=7, color="0.4", rotation=90,
                    va="bottom")
        overall = FIG4D_ACCURACY["overall"]
        ax.axhline(overall.value, color=_PAPER, lw=1.2, ls="-",
                   label=f"paper ({overall.text} at its noise)")
        ax.set_xticks(x, [f"{100 * v:g}" for v in levels])
        ax.set_xlabel("Gaussian noise σ (% of the strongest peak)")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    ax.set_title(title or "Robustness to noise (training noise σ ≤ 5 %)")
    fig.tight_layout()
    return fig


def plot_modality_comparison(table: pd.DataFrame, title: str = "") -> Figure:
    """SI Fig. S21: crystal-system accuracy with XANES only, PXRD only and XANES + PXRD.

    Args:
        table: :meth:`specfusion_lib.crystal_system.fusion.ModalityComparison.table`.
        title: Figure title.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(5.0, 3.3))
    if table.empty or not np.isfinite(table["accuracy"].to_numpy(dtype=float)).any():
        reason = str(table["status"].iloc[0]) if not table.empty else "no data"
        _message(ax, reason)
    else:
        x = np.arange(len(table))
        acc = table["accuracy"].to_numpy(dtype=float)
        err = np.nan_to_num(table["accuracy_std"].to_numpy(dtype=float))
        ax.bar(x - 0.2, np.nan_to_num(acc), 0.4, yerr=err, color=_OURS, label="ours")
        ax.bar(x + 0.2, table["paper_value"].to_numpy(dtype=float), 0.4, color=_PAPER,
               alpha=0.8, label="paper (Fig. S21)")
        maj = table["majority_class"].to_numpy(dtype=float)
        if np.isfinite(maj).any():
            ax.hlines(float(np.nanmean(maj)), -0.5, len(table) - 0.5, colors="0.3", lw=1.0,
                      linestyles=":", label="majority class")
        for i, v in enumerate(acc):
            if math.isfinite(v):
                ax.text(i - 0.2, v + 0.02, f"{v:.2f}", ha="center", fontsize=7)
        ax.set_xticks(x, [str(m) for m in table["modality"]])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("test accuracy (same split)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        n = int(table["n_test"].iloc[0])
        ax.set_title(title or f"Crystal system by input modality (test n={n} per seed)")
    fig.tight_layout()
    return fig


def plot_check_noise_curve(curve: pd.DataFrame, title: str = "") -> Figure:
    """Overall top-1 accuracy (95 % Wilson band) on the real-structure check vs noise σ,
    one line per model variant, with the paper's value.

    Args:
        curve: ``noise`` table of :func:`specfusion_lib.crystal_system.generalisation.
            check_report` (columns ``noise_level``, ``variant``, ``crystal_system``,
            ``top1``, ``top1_ci_low``, ``top1_ci_high``).
        title: Figure title.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    rows = curve[curve["crystal_system"] == "overall"] if not curve.empty else curve
    if rows.empty:
        _message(ax, "no check structure")
        return fig
    levels = np.sort(rows["noise_level"].unique().astype(float))
    x = np.arange(len(levels))
    colors = (_OURS, "#7b4ea8", "#3ba89c", _RF, _BASE)
    for k, (variant, part) in enumerate(rows.groupby("variant", sort=False)):
        part = part.set_index("noise_level").reindex(levels)
        color = colors[k % len(colors)]
        ax.plot(x, part["top1"], "o-" if k == 0 else "s--", color=color, label=str(variant))
        ax.fill_between(x, part["top1_ci_low"].to_numpy(float),
                        part["top1_ci_high"].to_numpy(float), color=color, alpha=0.15)
    overall = FIG4D_ACCURACY["overall"]
    ax.axhline(overall.value, color=_PAPER, lw=1.2, label=f"paper ({overall.text}, random MP "
               "split)")
    ax.set_xticks(x, [f"{100 * v:g}" for v in levels])
    ax.set_xlabel("Gaussian noise σ (% of the strongest peak)")
    ax.set_ylabel("accuracy on the real-structure check")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title or "Real-structure check: accuracy vs noise")
    fig.tight_layout()
    return fig
