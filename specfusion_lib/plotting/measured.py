"""Figures of notebooks 11 and 12: measured vs simulated XANES, domain shift, composites.

Like :mod:`specfusion_lib.plotting.common`, every function takes plain data (the tables and
dataclasses of :mod:`specfusion_lib.measured.study`, :mod:`specfusion_lib.measured.domain_shift` and
:mod:`specfusion_lib.measured.mixtures`), returns a matplotlib ``Figure`` and writes nothing. Where
there is nothing to show, the figure says why instead of showing numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specfusion_lib.measured.domain_shift import Overlay
from specfusion_lib.measured.mixtures import Composite
from specfusion_lib.plotting.common import apply_style, message_panel

__all__ = [
    "plot_composite_predictions",
    "plot_composite_probabilities",
    "plot_composite_spectra",
    "plot_domain_gap",
    "plot_overlays",
    "plot_preset_comparison",
    "plot_spectral_agreement",
]

_MEAS, _SIM, _SHIFT, _ALIGN = "#222222", "#3b6ea8", "#c2703d", "#5a9e5a"


def _message(ax: plt.Axes, text: str, title: str = "") -> None:
    message_panel(ax, text, title)


def plot_overlays(overlays: Sequence[Overlay], *, ncols: int = 3,
                  empty_reason: str = "no measured spectrum has a simulated counterpart "
                                      "in this snapshot") -> Figure:
    """Fig. S26–S31 analogue: measured vs simulated XANES of each compound.

    Each panel shows the edge-step-normalised spectra against E − E0 (each on its own E0, as
    the models see them) and the simulated spectrum moved by the correlation-maximising
    shift; the title gives both Pearson correlations.
    """
    apply_style()
    n = max(len(overlays), 1)
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.5 * rows), squeeze=False)
    flat = axes.ravel()
    if not overlays:
        _message(flat[0], empty_reason, "measured vs simulated XANES")
    for ax, ov in zip(flat, overlays, strict=False):
        ax.plot(ov.grid, ov.measured, color=_MEAS, lw=1.3, label="measured")
        ax.plot(ov.grid, ov.simulated, color=_SIM, lw=1.0, ls="--", label="FEFF10, own E0")
        ax.plot(ov.grid + ov.shift_ev, ov.simulated, color=_SHIFT, lw=1.0,
                label=f"FEFF10 shifted {ov.shift_ev:+.1f} eV")
        ax.set_xlim(ov.grid[0], ov.grid[-1])
        ax.set_title(f"{ov.label}\nr = {ov.pearson_e0:.2f} (own E0), "
                     f"{ov.pearson_aligned:.2f} (aligned)", fontsize=8)
        ax.set_xlabel("E − E0 (eV)")
        ax.set_ylabel("normalised μ")
        ax.legend(fontsize=6, loc="lower right")
    for ax in flat[len(overlays) if overlays else 1:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_spectral_agreement(table: pd.DataFrame, labels: Mapping[str, str] | None = None
                            ) -> Figure:
    """Fig. 5c,d analogue: Pearson correlation of measured vs simulated spectra per compound.

    Bars: each spectrum on its own E0 (the model inputs), both E0s placed on the element
    templates (the remedy), the best shift, and the best shift with the best broadening.

    Args:
        table: :func:`specfusion_lib.measured.domain_shift.agreement_table`.
        labels: Key → display label.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(table) + 2.0), 3.4))
    if table.empty:
        _message(ax, "no measured spectrum has a simulated counterpart in this snapshot",
                 "measured vs simulated agreement")
        return fig
    names = [(labels or {}).get(k, k) for k in table["key"]]
    x = np.arange(len(table))
    bars = [("pearson_e0", "own E0 (model input)", _SIM),
            ("pearson_template", "E0 on element templates (remedy)", _ALIGN),
            ("pearson_aligned", "best shift", _SHIFT),
            ("pearson_broadened", "best shift + best broadening", "#9a7fb8")]
    bars = [b for b in bars if b[0] in table and table[b[0]].notna().any()]
    width = 0.8 / len(bars)
    for k, (col, label, color) in enumerate(bars):
        med = float(table[col].median())
        ax.bar(x + (k - (len(bars) - 1) / 2) * width, table[col], width, color=color,
               label=f"{label} (median {med:.2f})")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("Pearson r, measured vs FEFF10")
    ax.set_ylim(min(0.0, float(table[[b[0] for b in bars]].min().min()) - 0.05), 1.0)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Measured vs simulated XANES (56 eV model window)")
    fig.tight_layout()
    return fig


def plot_domain_gap(gap: pd.DataFrame) -> Figure:
    """Metrics on simulated vs measured spectra of the same compounds, per model variant.

    Left: accuracy of the classification tasks; right: MAE of the regression tasks. For each
    task, bars for (variant, input) pairs; the gap is measured − simulated.

    Args:
        gap: :func:`specfusion_lib.measured.study.gap_table`.
    """
    apply_style()
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6), squeeze=False)
    if gap.empty:
        for ax, title in zip(axes[0], ("accuracy", "MAE"), strict=True):
            _message(ax, "no compound has both a measured and a simulated spectrum with a "
                         "reference in this snapshot", title)
        fig.tight_layout()
        return fig
    variants = list(dict.fromkeys(gap["variant"]))
    series = [(v, i) for v in variants for i in ("simulated", "measured")]
    colors = {("simulated", 0): "#9db8d9", ("measured", 0): _SIM,
              ("simulated", 1): "#a9d3a9", ("measured", 1): _ALIGN}
    for ax, metric, title in zip(axes[0], ("accuracy", "mae"),
                                 ("accuracy (higher is better)", "MAE (lower is better)"),
                                 strict=True):
        sub = gap.loc[gap["metric"] == metric]
        tasks = list(dict.fromkeys(sub["task"]))
        if not tasks:
            _message(ax, "no task of this kind was evaluated", title)
            continue
        x = np.arange(len(tasks))
        width = 0.8 / len(series)
        for k, (variant, inp) in enumerate(series):
            vals = (sub.loc[(sub["variant"] == variant)].set_index("task")[inp]
                    .reindex(tasks))
            ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width,
                   color=colors.get((inp, variants.index(variant) % 2), "0.5"),
                   label=f"{variant}, {inp} spectra")
        n = int(sub["n"].max())
        ax.set_xticks(x, tasks, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{title}; n ≤ {n} compounds")
        if metric == "accuracy":
            ax.set_ylim(0, 1.05)
        ax.legend(fontsize=6)
    fig.suptitle("Domain shift: the same models on simulated vs measured spectra", fontsize=10)
    fig.tight_layout()
    return fig


def plot_composite_spectra(series: Mapping[str, Sequence[Composite]]) -> Figure:
    """Fig. 6a analogue: each composite's element-resolved normalised spectra vs fraction.

    Args:
        series: Case title → composites (from
            :func:`specfusion_lib.measured.mixtures.mixture_series`).
    """
    apply_style()
    panels = [(case, el) for case, comps in series.items() if comps
              for el in sorted({e for c in comps for e in c.spectra})]
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 2.9), squeeze=False)
    if not panels:
        _message(axes[0][0], "no composite could be built (phase spectra missing)", "Fig. 6a")
    cmap = plt.get_cmap("viridis")
    for ax, (case, el) in zip(axes[0], panels, strict=False):
        for comp in series[case]:
            s = comp.spectra.get(el)
            if s is None:
                continue
            ax.plot(s.energy, s.mu, color=cmap(comp.fraction), lw=0.9,
                    label=f"{comp.fraction:g}")
        ax.set_title(f"{case}: {el} K edge", fontsize=9)
        ax.set_xlabel("energy (eV)")
        ax.set_ylabel("normalised μ")
        ax.legend(title=f"fraction {series[case][0].names[1]}", fontsize=6, title_fontsize=6,
                  ncol=2)
    fig.tight_layout()
    return fig


def plot_composite_predictions(predictions: Mapping[str, pd.DataFrame], task: str, title: str,
                               unit: str = "", *,
                               references: Mapping[str, Mapping[float, float]] | None = None,
                               paper: tuple[str, float] | None = None) -> Figure:
    """Fig. 6b analogue: a regression prediction vs the fraction of phase B.

    Args:
        predictions: Case title → :func:`specfusion_lib.measured.mixtures.predict_mixtures` table.
        task: Regression task to plot.
        title: Axis title of the task.
        unit: Unit of the task.
        references: Case → {fraction: reference value} (the pure phases' snapshot labels).
        paper: (label, value) of a published value to mark (the paper's composite band gap).
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    drawn = 0
    for k, (case, table) in enumerate(predictions.items()):
        sub = table.loc[(table["task"] == task) & (table["status"] == "ok")]
        if sub.empty:
            continue
        values = sub.groupby("fraction")["prediction"].first().astype(float)
        color = plt.get_cmap("tab10")(k)
        ax.plot(values.index, values.to_numpy(), "o-", color=color, ms=3.5,
                label=f"{case}: predicted")
        for frac, ref in (references or {}).get(case, {}).items():
            ax.plot([frac], [ref], marker="*", ms=10, color=color, ls="none",
                    label=f"{case}: snapshot label at {frac:g}")
        drawn += 1
    if paper is not None:
        ax.axhline(paper[1], color="0.3", ls=":", lw=1.0, label=paper[0])
    if not drawn:
        _message(ax, f"{title}: not available (no trained model or no composite)", title)
        return fig
    ax.set_xlabel("fraction of phase B (formula units)")
    ax.set_ylabel(f"{title}" + (f" ({unit})" if unit else ""))
    ax.legend(fontsize=6)
    ax.set_title(f"{title} of two-phase composites")
    fig.tight_layout()
    return fig


def plot_composite_probabilities(predictions: Mapping[str, pd.DataFrame], task: str,
                                 title: str) -> Figure:
    """Class probabilities of an element-level task vs fraction (one panel per case/element).

    Args:
        predictions: Case title → :func:`specfusion_lib.measured.mixtures.predict_mixtures` table.
        task: Element-level classification task (``oxidation_state``).
        title: Title of the task.
    """
    apply_style()
    panels = []
    for case, table in predictions.items():
        sub = table.loc[(table["task"] == task) & (table["status"] == "ok")]
        for el in dict.fromkeys(sub["element"]):
            panels.append((case, el, sub.loc[sub["element"] == el]))
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 2.9), squeeze=False)
    if not panels:
        _message(axes[0][0], f"{title}: not available (no trained model or no composite)",
                 title)
    for ax, (case, el, sub) in zip(axes[0], panels, strict=False):
        probs = pd.DataFrame([{"fraction": r.fraction, **r.probabilities}
                              for r in sub.itertuples(index=False)]).set_index("fraction")
        for col in probs.columns:
            ax.plot(probs.index, probs[col], "o-", ms=3, label=str(col))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("fraction of phase B")
        ax.set_ylabel("probability")
        ax.set_title(f"{case}: {el} {title}", fontsize=9)
        ax.legend(fontsize=6, title="class", title_fontsize=6)
    fig.tight_layout()
    return fig


def plot_preset_comparison(study: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """FEFF10 presets against measured spectra of the development half (three panels).

    (a) median broadened Pearson r against the mean FEFF seconds per site; (b) pre-edge
    height (edge-step units) measured and per preset, one group per record, tetrahedral d⁰
    records first; (c) chemical shift: simulated against measured edge offset from the
    element's mean, per preset (the diagonal is a perfect reproduction).

    Args:
        study: Per-record table of :func:`specfusion_lib.measured.preset_study.run_preset_study`.
        summary: :func:`specfusion_lib.measured.preset_study.preset_summary` of ``study``.
    """
    apply_style()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8), squeeze=False)
    ax_cost, ax_pre, ax_shift = axes[0]
    if study.empty or summary.empty:
        for ax in axes[0]:
            _message(ax, "no preset study in this build")
        fig.tight_layout()
        return fig
    presets = list(summary["preset"])
    colors = dict(zip(presets, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for row in summary.itertuples(index=False):
        ax_cost.scatter(row.seconds_per_site, row.pearson_broadened, s=40,
                        color=colors[row.preset], label=f"{row.preset} (n={row.n})")
    ax_cost.set_xscale("log")
    ax_cost.set_xlabel("FEFF seconds per site (one core)")
    ax_cost.set_ylabel("median Pearson r (aligned, broadened)")
    ax_cost.set_title("(a) fidelity vs cost")
    ax_cost.legend(fontsize=7)

    ok = study.loc[study["pre_edge_simulated"].notna()] if "pre_edge_simulated" in study \
        else study.iloc[0:0]
    order = (ok.drop_duplicates("key").sort_values(["d0_tetrahedral", "key"],
                                                   ascending=[False, True])["key"].tolist())
    x = np.arange(len(order))
    width = 0.8 / (len(presets) + 1)
    measured = ok.drop_duplicates("key").set_index("key")["pre_edge_measured"].reindex(order)
    ax_pre.bar(x - 0.4 + width / 2, measured, width, color="black", label="measured")
    for k, preset in enumerate(presets, start=1):
        vals = ok.loc[ok["preset"] == preset].set_index("key")["pre_edge_simulated"]
        ax_pre.bar(x - 0.4 + width / 2 + k * width, vals.reindex(order), width,
                   color=colors[preset], label=preset)
    labels = ok.drop_duplicates("key").set_index("key")["formula"].reindex(order)
    ax_pre.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax_pre.set_ylabel("pre-edge height (edge steps)")
    ax_pre.set_title("(b) pre-edge peak (d⁰ tetrahedral first)")
    ax_pre.legend(fontsize=7)

    for preset in presets:
        sub = ok.loc[ok["preset"] == preset].dropna(subset=["offset_measured",
                                                           "offset_simulated"])
        if sub.empty:
            continue
        m = sub["offset_measured"] - sub.groupby("element")["offset_measured"].transform("mean")
        s = sub["offset_simulated"] - sub.groupby("element")["offset_simulated"].transform(
            "mean")
        ax_shift.scatter(m, s, s=25, color=colors[preset], label=preset)
    lim = ax_shift.get_xlim()
    ax_shift.plot(lim, lim, color="0.6", lw=0.8, ls="--")
    ax_shift.set_xlabel("measured edge shift (eV, from element mean)")
    ax_shift.set_ylabel("simulated edge shift (eV)")
    ax_shift.set_title("(c) chemical shift")
    ax_shift.legend(fontsize=7)
    fig.tight_layout()
    return fig
