"""Figures of the structure-inference notebooks 09 and 10 (Fig. 5b, S22–S25).

Every function takes plain data (tables of :mod:`specfusion_lib.inference`, patterns and
spectra), returns a matplotlib ``Figure`` and writes nothing. Panels without data say why
instead of showing numbers.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specfusion_lib.core.errors import SpecfusionError
from specfusion_lib.core.paper import FIG5B_TOP1
from specfusion_lib.core.tasks import CRYSTAL_SYSTEMS
from specfusion_lib.plotting.common import apply_style, message_panel
from specfusion_lib.spectra.pxrd import PXRDPattern
from specfusion_lib.spectra.xanes import XANESSpectrum, find_e0, normalize_edge_step

__all__ = [
    "plot_compound_panels",
    "plot_inference_workflow",
    "plot_pxrd_comparison",
    "plot_top1_by_nelements",
    "plot_xanes_comparison",
]

_TARGET = "#c0392b"
_COLORS = ("#2e8b57", "#2f5fa7", "#8e44ad", "#d68910", "#5d6d7e", "#17a589")
_PAPER = "#c2703d"


def _wrap(lines: Sequence[str], width: int) -> str:
    return "\n".join(textwrap.fill(str(line), width, subsequent_indent="  ")
                     for line in lines)


def _message(ax: plt.Axes, text: str, title: str = "") -> None:
    message_panel(ax, text, title)


def plot_top1_by_nelements(accuracy: pd.DataFrame, note: str = "",
                           paper_value: float = FIG5B_TOP1.value,
                           paper_text: str = FIG5B_TOP1.text) -> Figure:
    """Fig. 5b: top-1 accuracy of (formula, crystal system) by number of elements.

    Args:
        accuracy: :func:`specfusion_lib.inference.benchmark.accuracy_by_nelements`.
        note: Text shown under the title (e.g. that each target was removed from the
            template database before its search).
        paper_value: The paper's bound, drawn as a dashed line (default:
            :data:`specfusion_lib.core.paper.FIG5B_TOP1`).
        paper_text: How the paper states it.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    if accuracy.empty or accuracy["n"].sum() == 0:
        _message(ax, "no held-out compound with predictions: not enough data in this "
                     "snapshot", "Fig. 5b · top-1 accuracy")
        return fig
    accuracy = accuracy[accuracy["nelements"] >= 0]  # the validation / scoring parts: tables
    groups = list(dict.fromkeys(accuracy.sort_values("nelements", key=lambda s: s.replace(
        0, 99))["group"]))
    variants = list(dict.fromkeys(accuracy["variant"]))
    width = 0.8 / max(1, len(variants))
    x = np.arange(len(groups))
    for k, variant in enumerate(variants):
        sub = accuracy[accuracy["variant"] == variant].set_index("group").reindex(groups)
        acc = sub["top1_accuracy"].to_numpy(dtype=float)
        lo = acc - sub["ci_low"].to_numpy(dtype=float)
        hi = sub["ci_high"].to_numpy(dtype=float) - acc
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, np.nan_to_num(acc), width * 0.92, color=_COLORS[k % len(_COLORS)],
               label=variant, yerr=np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)]),
               capsize=2, error_kw={"lw": 0.8})
        for p, a, n in zip(pos, acc, sub["n"].fillna(0).astype(int), strict=True):
            label = "n=0" if n == 0 else f"{a:.2f}\nn={n}"
            ax.text(p, (0 if n == 0 or math.isnan(a) else a) + 0.02, label, ha="center",
                    va="bottom", fontsize=6.5)
    ax.axhline(paper_value, color=_PAPER, ls="--", lw=1)
    ax.text(len(groups) - 0.5, paper_value + 0.01, f"paper {paper_text}", color=_PAPER,
            ha="right", va="bottom", fontsize=7)
    ax.set_xticks(x, groups)
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("top-1 accuracy (formula + crystal system)")
    title = "Fig. 5b · structure inference on held-out compounds"
    ax.set_title(title + ("\n" + _wrap([note], 120) if note else ""), fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(variants) + 1,
              fontsize=7)
    return fig


def _probability_bars(ax: plt.Axes, probs: Mapping[str, float], true_system: str | None
                      ) -> None:
    values = [float(probs.get(c, 0.0)) for c in CRYSTAL_SYSTEMS]
    colors = [_TARGET if c == true_system else "#7f8c8d" for c in CRYSTAL_SYSTEMS]
    ax.barh(range(len(CRYSTAL_SYSTEMS)), values, color=colors)
    ax.set_yticks(range(len(CRYSTAL_SYSTEMS)), CRYSTAL_SYSTEMS, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability (PXRD model)")


def plot_inference_workflow(result: Any, title: str, *, true_formula: str | None = None,
                            true_system: str | None = None, notes: Sequence[str] = ()
                            ) -> Figure:
    """Fig. S22: the search step by step for one compound.

    Panels: (a) the predicted inputs (TM oxidation states and CNs, crystal-system
    probabilities), (b) the enumerated formulas and those with templates, (c) the ranked
    candidates with R_PXRD and XANES similarity.

    Args:
        result: A :class:`~specfusion_lib.inference.search.SearchResult`.
        title: Figure title.
        true_formula: The compound's formula (marked in the panels), if known.
        true_system: Its crystal system, if known.
        notes: Extra lines for panel (a) (what was run, data caveats).
    """
    apply_style()
    fig = plt.figure(figsize=(12.0, 4.2))
    grid = fig.add_gridspec(1, 3, width_ratios=[0.8, 1.0, 1.2], wspace=0.75)
    ax_a, ax_b, ax_c = (fig.add_subplot(grid[0, i]) for i in range(3))
    inputs = result.inputs
    _probability_bars(ax_a, inputs.crystal_system_probabilities, true_system)
    lines = [f"elements: {' '.join(inputs.elements)}"]
    for el, q in inputs.oxidation_states.items():
        cn = inputs.coordination_numbers.get(el)
        lines.append(f"{el}: oxidation state {q}" + (f", CN {cn}" if cn else ""))
    lines += list(notes)
    ax_a.set_title("(a) predicted inputs", loc="left")
    ax_a.text(0.0, -0.32, _wrap(lines, 150), transform=ax_a.transAxes, fontsize=7, va="top")

    enum = result.enumeration.table
    matches = result.retrieval.table
    ax_b.set_title(f"(b) {len(enum)} charge-balanced formulas", loc="left")
    ax_b.axis("off")
    text = [f"{'formula':<16}{'templates':>9}  best level"]
    with_templates = list(dict.fromkeys(matches["formula"])) if len(matches) else []
    for formula in with_templates[:12]:
        sub = matches[matches["formula"] == formula]
        mark = "  <- true" if formula == true_formula else ""
        text.append(f"{formula[:16]:<16}{len(sub):>9}  {sub['level'].iloc[0]}{mark}")
    if len(with_templates) > 12:
        text.append(f"... {len(with_templates) - 12} more formulas with templates")
    without = [f for f in enum["formula"] if f not in set(with_templates)]
    text.append("")
    text.append(f"{len(without)} formulas without a template in the searched systems,")
    text.append("e.g. " + ", ".join(without[:4]) if without else "none")
    if true_formula and true_formula not in set(enum["formula"]):
        text.append(f"true formula {true_formula} not enumerated")
    ax_b.text(0.0, 1.0, "\n".join(text), transform=ax_b.transAxes, fontsize=7, va="top",
              family="monospace")

    ax_c.set_title("(c) ranked candidates", loc="left")
    ranking = result.ranking.head(8)
    if ranking.empty:
        _message(ax_c, "no template matched the constraints")
        return fig
    labels = [f"{r.formula} <- {r.template_formula}" for r in ranking.itertuples()]
    y = np.arange(len(ranking))
    r_vals = ranking["r_pxrd"].to_numpy(dtype=float)
    ax_c.barh(y - 0.2, np.nan_to_num(r_vals), 0.4, color="#2f5fa7", label="R_PXRD (0 = same)")
    sims = ranking["xanes_similarity"].to_numpy(dtype=float)
    if np.isfinite(sims).any():
        ax_c.barh(y + 0.2, np.nan_to_num(1 - sims), 0.4, color="#2e8b57",
                  label="1 − XANES similarity")
    ax_c.set_yticks(y, labels, fontsize=7)
    ax_c.invert_yaxis()
    right = max(0.1, float(np.nanmax(np.r_[r_vals, 1 - sims, 0.0])))
    ax_c.set_xlim(0, right * 1.45)
    for yi, r in zip(y, ranking.itertuples(), strict=True):
        ax_c.text(right * 1.44, yi, f"{r.stage}, {r.crystal_system}", va="center",
                  ha="right", fontsize=6, color="0.3")
        if r.formula == true_formula and r.crystal_system == true_system:
            ax_c.get_yticklabels()[yi].set_color(_TARGET)
    ax_c.set_xlabel("lower is better")
    ax_c.legend(fontsize=6.5, loc="lower right", bbox_to_anchor=(1.0, -0.35))
    fig.suptitle(title, fontsize=10, y=1.02)
    return fig


def plot_pxrd_comparison(target: PXRDPattern, candidates: Mapping[str, PXRDPattern],
                         r_values: Mapping[str, float] | None = None,
                         title: str = "", target_label: str = "target") -> Figure:
    """Fig. S23: the input pattern and the candidates' simulated patterns, offset.

    Args:
        target: The input pattern (red).
        candidates: Label → simulated pattern of a candidate.
        r_values: Label → R_PXRD, shown next to each curve.
        title: Title.
        target_label: Legend label of the input.
    """
    apply_style()
    n = len(candidates) + 1
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 1.0 * n))
    curves = [(target_label, target, _TARGET)] + [
        (label, p, _COLORS[i % len(_COLORS)]) for i, (label, p) in enumerate(candidates.items())]
    for k, (label, pattern, color) in enumerate(curves):
        y = np.asarray(pattern.intensity, dtype=float)
        top = y.max() if y.size and y.max() > 0 else 1.0
        offset = 1.15 * (n - 1 - k)
        ax.plot(pattern.two_theta, y / top + offset, color=color, lw=0.8)
        extra = ""
        if r_values and label in r_values and math.isfinite(r_values[label]):
            extra = f"   R_PXRD = {r_values[label]:.2f}"
        ax.text(pattern.two_theta[-1], offset + 0.55, f"{label}{extra}", ha="right",
                fontsize=7, color=color)
    ax.set_xlabel("2θ (°, Cu Kα)")
    ax.set_yticks([])
    ax.set_ylabel("intensity (offset)")
    ax.set_title(title or "Fig. S23 · PXRD of the target and the candidates")
    return fig


def _normalised(spectrum: XANESSpectrum) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        e0 = find_e0(spectrum)
        norm = normalize_edge_step(spectrum, e0=e0)
    except SpecfusionError:
        return None
    return np.asarray(spectrum.energy) - e0, np.asarray(norm.mu_flat)


def plot_xanes_comparison(target: XANESSpectrum | None,
                          candidates: Mapping[str, XANESSpectrum | None],
                          similarities: Mapping[str, float] | None = None,
                          title: str = "", message: str = "",
                          target_label: str = "target") -> Figure:
    """Fig. S24: the input XANES and the candidates' FEFF spectra (edge-step normalised,
    energy relative to each spectrum's E0), offset.

    Args:
        target: The input spectrum (None: shown as missing).
        candidates: Label → simulated spectrum (None: not simulated).
        similarities: Label → XANES similarity, shown next to each curve.
        title: Title.
        message: Shown when there is nothing to compare (e.g. FEFF not run in this profile).
        target_label: Legend label of the input.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    title = title or "Fig. S24 · K-edge XANES of the target and the candidates"
    if target is None:
        _message(ax, message or "no input spectrum in this snapshot", title)
        return fig
    curves = [(target_label, target, _TARGET)] + [
        (label, s, _COLORS[i % len(_COLORS)]) for i, (label, s) in enumerate(candidates.items())]
    k = 0
    for label, spectrum, color in curves:
        if spectrum is None:
            continue
        xy = _normalised(spectrum)
        if xy is None:
            continue
        x, y = xy
        keep = (x > -20) & (x < 60)
        offset = 0.6 * k
        ax.plot(x[keep], y[keep] + offset, color=color, lw=1.0)
        extra = ""
        if similarities and label in similarities and math.isfinite(similarities[label]):
            extra = f" (similarity {similarities[label]:.2f})"
        ax.text(58, y[keep][-1] + offset + 0.05, f"{label}{extra}", ha="right", fontsize=7,
                color=color)
        k += 1
    if k <= 1 and message:
        ax.text(0.02, 0.02, message, transform=ax.transAxes, fontsize=7, color="0.35",
                style="italic")
    ax.set_xlabel("E − E0 (eV)")
    ax.set_ylabel("normalised μ(E) (offset)")
    ax.set_title(title)
    return fig


def plot_compound_panels(entries: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """Fig. S25: one row per compound: input PXRD and XANES against the inferred candidate,
    predicted properties against reference values, and the inferred structure.

    Args:
        entries: Per compound a mapping with ``name``, optional ``message`` (shown instead
            of the panels when the compound could not be run), ``pxrd`` (input pattern),
            ``candidate_pxrd``, ``xanes`` (input spectrum), ``candidate_xanes``,
            ``properties`` (DataFrame with ``property``, ``predicted``, ``reference``) and
            ``summary`` (text lines: inferred formula, crystal system, template, R_PXRD).
        title: Title.
    """
    apply_style()
    n = max(1, len(entries))
    fig, axes = plt.subplots(n, 4, figsize=(13.0, 2.6 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1.2, 1.0, 1.2, 1.0]})
    for row, entry in zip(axes, entries, strict=False):
        name = str(entry.get("name", ""))
        if entry.get("message"):
            for ax in row:
                ax.axis("off")
            row[0].text(0.0, 0.5, _wrap([f"{name}: {entry['message']}"], 150),
                        transform=row[0].transAxes, fontsize=8, style="italic", color="0.35",
                        va="center")
            continue
        ax = row[0]
        p, c = entry.get("pxrd"), entry.get("candidate_pxrd")
        if p is not None:
            y = np.asarray(p.intensity, dtype=float)
            ax.plot(p.two_theta, y / max(y.max(), 1e-12) + 1.1, color=_TARGET, lw=0.7,
                    label="input")
        if c is not None:
            y = np.asarray(c.intensity, dtype=float)
            ax.plot(c.two_theta, y / max(y.max(), 1e-12), color="#2f5fa7", lw=0.7,
                    label="inferred")
        ax.set_yticks([])
        ax.set_xlabel("2θ (°)")
        ax.set_title(f"{name} · PXRD", loc="left", fontsize=8)
        ax.legend(fontsize=6, loc="upper right")
        ax = row[1]
        target = entry.get("xanes")
        xy = _normalised(target) if target is not None else None
        if xy is None:
            _message(ax, "no input XANES", f"{name} · XANES")
        else:
            ax.plot(*xy, color=_TARGET, lw=0.9, label=f"input {target.element}")
            cand = entry.get("candidate_xanes")
            cxy = _normalised(cand) if cand is not None else None
            if cxy is not None:
                ax.plot(*cxy, color="#2f5fa7", lw=0.9, label="inferred (FEFF)")
            ax.set_xlim(-20, 60)
            ax.set_xlabel("E − E0 (eV)")
            ax.set_title(f"{name} · XANES", loc="left", fontsize=8)
            ax.legend(fontsize=6)
        ax = row[2]
        ax.axis("off")
        props = entry.get("properties")
        ax.set_title("predicted vs reference", loc="left", fontsize=8)
        if props is None or len(props) == 0:
            ax.text(0, 0.5, "no property model available", fontsize=7, style="italic",
                    transform=ax.transAxes)
        else:
            lines = [f"{'property':<28}{'predicted':>13}{'reference':>13}"]
            for r in props.itertuples():
                name = f"{r.property} {r.element}".strip() if r.element else str(r.property)
                lines.append(f"{name[:28]:<28}{str(r.predicted)[:12]:>13}"
                             f"{str(r.reference)[:12]:>13}")
            ax.text(0, 1.0, "\n".join(lines), fontsize=6.5, family="monospace", va="top",
                    transform=ax.transAxes)
        ax = row[3]
        ax.axis("off")
        ax.set_title("inferred structure", loc="left", fontsize=8)
        ax.text(0, 1.0, _wrap(entry.get("summary", []), 46), fontsize=6.5, va="top",
                transform=ax.transAxes)
    for extra in axes[len(entries):] if len(entries) < n else []:
        for ax in extra:
            ax.axis("off")
    if not entries:
        _message(axes[0][0], "no compound available in this snapshot")
    fig.suptitle(title or "Fig. S25 · structure inference of three compounds", fontsize=10)
    fig.subplots_adjust(left=0.04, right=0.98, top=0.9 if n == 1 else 0.94, bottom=0.1,
                        wspace=0.35, hspace=0.6)
    return fig
