"""Figures of the interpretability notebooks: Fig. 3b–f, S13–S16 and the deletion curves.

Like :mod:`specfusion_lib.plotting.common`, every function takes plain data (tables of
:mod:`specfusion_lib.interpret`, Grad-CAM results, a pymatgen structure), returns a matplotlib
``Figure`` and writes nothing. Where a task is not available in the snapshot, or there is not
enough data, the panel says so instead of showing numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymatgen.vis
from matplotlib.figure import Figure
from monty.serialization import loadfn
from pymatgen.core import Element, Structure

from specfusion_lib.core.tasks import TASKS
from specfusion_lib.interpret.ablation import GROUP_LABELS, SCOPES
from specfusion_lib.interpret.faithfulness import DeletionCurve
from specfusion_lib.interpret.gradcam import REGIONS, GradCAMResult, region_caption
from specfusion_lib.plotting.common import apply_style, message_panel
from specfusion_lib.properties.runs import NOT_AVAILABLE

__all__ = [
    "plot_deletion_curves",
    "plot_descriptor_ablation",
    "plot_fusion_ablation",
    "plot_gradcam",
    "plot_region_summary",
    "plot_structure",
]

_FULL, _ABL1, _ABL2 = "#3b6ea8", "#c2703d", "#5a9f68"
_REGION_COLOURS = {"pre-edge": "#8c5fa8", "edge": "#c2703d", "post-edge": "#3b6ea8"}
_NOISE_TEXT = ("grey band: ±|Δ| between the full model and a copy retrained with another "
               "weight seed on the same split (retraining noise)")
_METRIC_LABELS = {"mae": "MAE", "f1_macro": "macro-F1", "accuracy": "accuracy"}


def _message_panel(ax: plt.Axes, title: str, text: str = NOT_AVAILABLE) -> None:
    message_panel(ax, text, title, title_size=9)


def _task_title(task: str) -> str:
    return TASKS[task].title if task in TASKS else task


def _unit(task: str) -> str:
    return TASKS[task].unit if task in TASKS else ""


def _seed_text(n: int) -> str:
    return "1 seed: no spread" if n < 2 else f"mean ± std over {n} seeds"


# --------------------------------------------------------------------------------------------
# Ablations (notebook 05)
# --------------------------------------------------------------------------------------------


def plot_fusion_ablation(summary: pd.DataFrame) -> Figure:
    """SI Fig. S13: full model vs TM–XANES fusion masked vs non-TM branch masked.

    One panel per task: accuracy for classification tasks (as in Fig. S13), MAE for
    regression tasks (our addition), mean over seeds with the sample std as error bar.

    Args:
        summary: :meth:`specfusion_lib.interpret.AblationStudy.summary`.
    """
    apply_style()
    tasks = list(dict.fromkeys(summary["task"]))
    n = max(1, len(tasks))
    fig, axes = plt.subplots(1, n, figsize=(2.5 * n + 0.5, 3.2), squeeze=False)
    seeds = 0
    for ax, task in zip(axes[0], tasks, strict=False):
        sub = summary[(summary["task"] == task) & (summary["component"] == "module")]
        kind = sub["kind"].iloc[0] if not sub.empty else "regression"
        metric = "accuracy" if kind == "classification" else "mae"
        sub = sub[sub["metric"] == metric]
        title = _task_title(task)
        if sub.empty or (sub["status"] != "trained").all():
            _message_panel(ax, title)
            continue
        seeds = int(sub["n_seeds"].max())
        full = float(sub["full_mean"].iloc[0])
        names = ["full\nmodel", "TM fusion\nmasked", "non-TM\nbranch\nmasked"]
        values = [full]
        errors = [0.0]
        for abl in ("no_tm_fusion", "no_non_tm"):
            row = sub[sub["ablation"] == abl]
            values.append(float(row["ablated_mean"].iloc[0]) if not row.empty else math.nan)
            errors.append(float(np.nan_to_num(row["delta_std"].iloc[0])) if not row.empty
                          else 0.0)
        x = np.arange(3)
        noise = float(sub["noise"].iloc[0]) if "noise" in sub else math.nan
        if math.isfinite(noise):
            ax.axhspan(full - noise, full + noise, color="0.85", zorder=0)
        ax.bar(x, np.nan_to_num(values), color=[_FULL, _ABL1, _ABL2],
               yerr=errors if seeds > 1 else None, capsize=3)
        for xi, v in zip(x, values, strict=True):
            if math.isfinite(v):
                ax.text(xi, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, fontsize=7)
        unit = f" ({_unit(task)})" if metric == "mae" and _unit(task) else ""
        ax.set_ylabel(_METRIC_LABELS[metric] + unit)
        if metric == "accuracy":
            ax.set_ylim(0, 1.08)
        ax.set_title(title, fontsize=9)
    fig.suptitle("Ablation of the fusion block and the non-TM branch (SI Fig. S13; "
                 f"retrained with zero-masking, {_seed_text(seeds)})\n{_NOISE_TEXT}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_descriptor_ablation(summary: pd.DataFrame, kind: str,
                             scopes: Sequence[str] = ("tm", "non_tm"), title: str = "") -> Figure:
    """Fig. 3b,c and SI Fig. S14: change of the test metric when a descriptor group is masked.

    Rows: element scopes (TM, non-TM); columns: tasks of ``kind``. Bars: Δ = ablated − full
    (ΔMAE in the task's unit for regression: up is worse; ΔF1 for classification: down is
    worse), error bars the sample std over seeds.

    Args:
        summary: :meth:`specfusion_lib.interpret.AblationStudy.summary`.
        kind: ``"regression"`` (ΔMAE) or ``"classification"`` (ΔF1).
        scopes: Which scopes to draw, one row each.
        title: Figure title.
    """
    apply_style()
    metric = "mae" if kind == "regression" else "f1_macro"
    sub_all = summary[(summary["component"] == "descriptor") & (summary["kind"] == kind)
                      & (summary["metric"] == metric)]
    tasks = list(dict.fromkeys(summary.loc[summary["kind"] == kind, "task"]))
    n_cols = max(1, len(tasks))
    fig, axes = plt.subplots(len(scopes), n_cols, figsize=(2.8 * n_cols + 0.6,
                                                           2.7 * len(scopes)), squeeze=False)
    groups = list(GROUP_LABELS)
    seeds = 0
    for r, scope in enumerate(scopes):
        for c in range(n_cols):
            ax = axes[r][c]
            task = tasks[c] if tasks else ""
            panel = f"{_task_title(task)} · {SCOPES[scope]}" if task else SCOPES[scope]
            sub = sub_all[(sub_all["task"] == task) & (sub_all["scope"] == scope)
                          & (sub_all["status"] == "trained")].set_index("group")
            if sub.empty:
                _message_panel(ax, panel, NOT_AVAILABLE if task else
                               f"no {kind} task in this study")
                continue
            seeds = max(seeds, int(sub["n_seeds"].max()))
            sub = sub.reindex(groups)
            delta = sub["delta_mean"].to_numpy(float)
            err = np.nan_to_num(sub["delta_std"].to_numpy(float))
            worse = delta > 0 if metric == "mae" else delta < 0
            colours = [_ABL1 if w else _FULL for w in worse]
            x = np.arange(len(groups))
            noise = float(sub["noise"].dropna().iloc[0]) if sub["noise"].notna().any() \
                else math.nan
            if math.isfinite(noise):
                ax.axhspan(-noise, noise, color="0.85", zorder=0)
            ax.bar(x, np.nan_to_num(delta), color=colours,
                   yerr=err if int(sub["n_seeds"].max()) > 1 else None, capsize=2)
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_xticks(x, [GROUP_LABELS[g] for g in groups], rotation=30, ha="right")
            unit = f" ({_unit(task)})" if metric == "mae" and _unit(task) else ""
            ax.set_ylabel(("ΔMAE" if metric == "mae" else "ΔF1") + unit)
            full = float(sub["full_mean"].dropna().iloc[0])
            ax.set_title(f"{panel}\nfull model {_METRIC_LABELS[metric]} {full:.3f}",
                         fontsize=8.5)
    worse_text = "orange: worse without the descriptor"
    fig.suptitle((title or "Descriptor ablation") + f" ({_seed_text(seeds)}; {worse_text})"
                 f"\n{_NOISE_TEXT}", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Grad-CAM (notebook 06)
# --------------------------------------------------------------------------------------------


def _draw_map(ax: plt.Axes, result: GradCAMResult, s: int,
              regions: Mapping[str, tuple[float, float]]) -> None:
    grid, spectrum, att = result.grid, result.spectra[s], result.attribution[s]
    lo = float(spectrum.min()) - 0.3
    hi = float(spectrum.max()) + 0.3
    step = float(np.mean(np.diff(grid)))
    edges = np.concatenate([grid - step / 2, [grid[-1] + step / 2]])
    ax.pcolormesh(edges, [lo, hi], att[None, :], cmap="Reds", vmin=0.0, vmax=1.0,
                  shading="flat", alpha=0.75, rasterized=True)
    ax.plot(grid, spectrum, color="black", lw=1.0)
    for name, (a, b) in regions.items():
        ax.axvline(a, color="0.45", lw=0.6, ls="--")
        ax.text((a + b) / 2, hi, name.replace("-edge", ""), ha="center", va="top",
                fontsize=6.5, color="0.3")
    ax.set_ylim(lo, hi)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("E − E0 (eV)")
    ax.set_ylabel("standardised μ")


def _draw_region_bars(ax: plt.Axes, result: GradCAMResult,
                      regions: Mapping[str, tuple[float, float]]) -> None:
    table = result.regions(regions)
    names = list(regions)
    elements = list(result.elements)
    width = 0.8 / max(1, len(elements))
    x = np.arange(len(names))
    cmap = plt.get_cmap("tab10")
    for k, el in enumerate(elements):
        vals = (table[table["element"] == el].set_index("region")
                .reindex(names)["share_of_compound"].to_numpy(float))
        ax.bar(x - 0.4 + width * (k + 0.5), np.nan_to_num(vals), width, color=cmap(k % 10),
               label=el)
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of the compound's attention")
    ax.legend(fontsize=7, title="K edge", title_fontsize=7)


def plot_gradcam(panels: Mapping[str, GradCAMResult | str], title: str = "",
                 structure: Structure | None = None,
                 regions: Mapping[str, tuple[float, float]] = REGIONS) -> Figure:
    """Fig. 3d,e, S15, S16: Grad-CAM maps over the input spectra of one compound per task.

    Each row is one task: the compound's spectra (black) over a band coloured by the
    normalised Grad-CAM attention (white 0 → red 1; normalised by the compound's maximum, so
    the spectra of one row are comparable), region boundaries dashed, and a bar chart of the
    region-integrated attention (share of the compound's total per element and region). With
    ``structure`` a projection of the crystal structure is added on the right (Fig. 3f, S15,
    S16 right panels).

    Args:
        panels: Task → Grad-CAM result of the compound, or a message (e.g. "not available in
            this snapshot") drawn instead.
        title: Figure title (compound, and the note when it replaces the paper's).
        structure: Optional structure for the right panel.
        regions: Region definition (written into the caption).
    """
    apply_style()
    n_rows = max(1, len(panels))
    n_spec = max([len(r.elements) for r in panels.values() if isinstance(r, GradCAMResult)]
                 + [1])
    n_cols = n_spec + 1 + (1 if structure is not None else 0)
    fig = plt.figure(figsize=(3.1 * n_cols, 2.7 * n_rows + 0.7))
    grid = fig.add_gridspec(n_rows, n_cols)
    for r, (task, result) in enumerate(panels.items()):
        label = _task_title(task)
        if not isinstance(result, GradCAMResult) or not result.elements:
            ax = fig.add_subplot(grid[r, :n_spec + 1])
            _message_panel(ax, label, result if isinstance(result, str) else
                           "no spectrum read by the model")
            continue
        for s, element in enumerate(result.elements):
            ax = fig.add_subplot(grid[r, s])
            _draw_map(ax, result, s, regions)
            pred = (f"predicted {result.prediction:.3g} {_unit(task)}"
                    if result.kind == "regression"
                    else f"p({result.target_name}) = {result.prediction:.2f}")
            ax.set_title(f"{label}: {element} K edge\n{pred}", fontsize=8)
        ax = fig.add_subplot(grid[r, n_spec])
        _draw_region_bars(ax, result, regions)
        ax.set_title(f"{label}: region-integrated attention", fontsize=8)
    if structure is not None:
        ax = fig.add_subplot(grid[:, n_cols - 1])
        _draw_structure(ax, structure)
    fig.suptitle(f"{title}\nGrad-CAM on the last convolutions (3 branches summed). "
                 f"Regions: {region_caption(regions)}", fontsize=8.5)
    fig.tight_layout()
    return fig


@cache
def _element_colours() -> dict[str, tuple[float, float, float]]:
    """VESTA's element colours, from the colour table that ships with pymatgen."""
    table = loadfn(Path(pymatgen.vis.__file__).parent / "ElementColorSchemes.yaml")
    return {el: tuple(c / 255 for c in rgb) for el, rgb in table["VESTA"].items()}


def _projection_axis(structure: Structure) -> int:
    """The lattice vector to look along: the one leaving the most atoms apart in projection."""
    lattice = structure.lattice.matrix
    best, best_count = 2, -1
    for axis in (2, 0, 1):
        normal = lattice[axis] / np.linalg.norm(lattice[axis])
        flat = structure.cart_coords - np.outer(structure.cart_coords @ normal, normal)
        count = len({tuple(np.round(v / 0.3).astype(int)) for v in flat})
        if count > best_count:
            best, best_count = axis, count
    return best


def _draw_structure(ax: plt.Axes, structure: Structure, title: str = "") -> None:
    """Atoms of the cell projected along the lattice vector that hides the fewest atoms,
    coloured by element (VESTA colours) and sized by atomic radius, with the cell outlined."""
    lattice = structure.lattice.matrix
    axis = _projection_axis(structure)
    i, j = (k for k in range(3) if k != axis)
    normal = lattice[axis] / np.linalg.norm(lattice[axis])
    e1 = lattice[i] - (lattice[i] @ normal) * normal
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    cart = structure.cart_coords
    xy = np.stack([cart @ e1, cart @ e2], axis=1)
    depth = cart @ normal
    corners = np.array([np.zeros(3), lattice[i], lattice[i] + lattice[j], lattice[j],
                        np.zeros(3)])
    ax.plot(corners @ e1, corners @ e2, color="0.4", lw=0.8)
    symbols = [site.specie.symbol for site in structure]
    species = sorted(set(symbols), key=lambda el: Element(el).Z)
    colour = {el: _element_colours().get(el, (0.6, 0.6, 0.6)) for el in species}
    for n in np.argsort(depth):  # deeper atoms first, nearer ones drawn over them
        radius = float(Element(symbols[n]).atomic_radius or 1.0)
        ax.scatter(xy[n, 0], xy[n, 1], s=60 * radius ** 2, color=colour[symbols[n]],
                   edgecolor="black", linewidth=0.4, alpha=0.9)
    for el in species:
        ax.scatter([], [], s=40, color=colour[el], edgecolor="black", linewidth=0.4, label=el)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(species))
    names = "abc"
    ax.set_title(title or f"{structure.composition.reduced_formula}: cell viewed along "
                 f"{names[axis]}", fontsize=8)


def plot_structure(structure: Structure | None, title: str = "",
                   message: str = "no compound to show") -> Figure:
    """Fig. 3f: the crystal structure of an example compound (cell in projection).

    Args:
        structure: The structure (``None``: ``message`` is drawn instead).
        title: Title (default: the reduced formula).
        message: Text shown without a structure.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(4.0, 4.0))
    if structure is None:
        _message_panel(ax, title or "structure", message)
        return fig
    _draw_structure(ax, structure, title)
    fig.tight_layout()
    return fig


def plot_region_summary(summary: pd.DataFrame, title: str = "") -> Figure:
    """How the highlighted region moves between targets: mean share of attention per region.

    Args:
        summary: :func:`specfusion_lib.interpret.region_summary` (over many compounds).
        title: Figure title.
    """
    apply_style()
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    if summary.empty:
        _message_panel(ax, title or "Grad-CAM regions", "not enough data")
        return fig
    tasks = list(dict.fromkeys(summary["task"]))
    regions = list(dict.fromkeys(summary["region"]))
    width = 0.8 / max(1, len(regions))
    x = np.arange(len(tasks))
    for k, region in enumerate(regions):
        sub = summary[summary["region"] == region].set_index("task").reindex(tasks)
        ax.bar(x - 0.4 + width * (k + 0.5), sub["share_mean"].to_numpy(float), width,
               yerr=np.nan_to_num(sub["share_std"].to_numpy(float)), capsize=2,
               color=_REGION_COLOURS.get(region), label=region)
    counts = summary.groupby("task", sort=False)["n_spectra"].max().reindex(tasks)
    ax.set_xticks(x, [f"{_task_title(t)}\n(n={n} spectra)" for t, n in counts.items()],
                  fontsize=7.5)
    ax.set_ylabel("share of a spectrum's attention")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, title=region_caption(), title_fontsize=6)
    ax.set_title(title or "Grad-CAM attention by region (test compounds, mean ± std)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_deletion_curves(curves: Mapping[str, DeletionCurve | str]) -> Figure:
    """Faithfulness check: prediction change when the top-attributed vs random points are
    deleted (mean over compounds ± standard error).

    Args:
        curves: Task → :class:`~specfusion_lib.interpret.DeletionCurve`, or a message drawn
            instead.
    """
    apply_style()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.1), squeeze=False)
    for ax, (task, curve) in zip(axes[0], curves.items(), strict=False):
        label = _task_title(task)
        if not isinstance(curve, DeletionCurve) or not curve.material_ids:
            _message_panel(ax, label, curve if isinstance(curve, str) else "not enough data")
            continue
        frame = curve.frame()
        for col, colour, name in (("attributed", _ABL1, "most attributed first"),
                                  ("random", _FULL, f"random ({curve.n_random}×)")):
            mean = frame[f"{col}_mean"].to_numpy(float)
            sem = np.nan_to_num(frame[f"{col}_sem"].to_numpy(float))
            ax.plot(frame["fraction"], mean, color=colour, label=name, marker="o", ms=3)
            ax.fill_between(frame["fraction"], mean - sem, mean + sem, color=colour, alpha=0.2)
        areas = curve.areas()
        ax.text(0.03, 0.97, f"n = {len(curve.material_ids)} compounds\n"
                f"area: {areas['attributed']:.3g} vs {areas['random']:.3g}\n"
                f"attributed > random in {100 * areas['share_attributed_larger']:.0f}%",
                transform=ax.transAxes, va="top", fontsize=7)
        ax.set_xlabel("fraction of spectrum points deleted")
        unit = "" if curve.unit in ("", "output") else f" ({curve.unit})"
        ax.set_ylabel("|Δ prediction|" + unit if curve.kind == "regression"
                      else "|Δ p(class)|")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Deletion test of the Grad-CAM maps (points set to 0; faithful maps rise "
                 "faster than random)", fontsize=9)
    fig.tight_layout()
    return fig
