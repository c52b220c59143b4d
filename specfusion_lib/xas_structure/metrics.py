"""Metrics of predicted spectra, written out (XAStruct and CGXAS definitions).

For a reference spectrum ``y`` and a prediction ``ŷ`` on the same grid of ``n`` points
(edge-normalised μ, :mod:`.grid`):

* **MAE** ``= (1/n) Σ |y_i − ŷ_i|`` (XAStruct's forward metric; their K-edge XANES value
  0.0537 covers all elements and their own grid, so it is a reference, not like-for-like).
* **RSE** ``= Σ (y_i − ŷ_i)² / Σ y_i²`` (CGXAS eq. 1; their universal model: 0.0202 on
  average over its test set).
* **Pearson** ``r`` between ``y`` and ``ŷ`` over the grid (CGXAS Fig. 3a reports it per element);
  per element we give its median and the share of spectra above 0.9.
* **Edge-energy error** ``= |E_edge(ŷ) − E_edge(y)|`` in eV, with ``E_edge`` the half-step
  crossing of :func:`~.grid.edge_energy`; a spectrum without a crossing gives ``nan`` and is
  left out of the mean (the count is reported).

:func:`spectrum_metrics` gives one row per spectrum, :func:`summarise` the per-element and
pooled table (pooled = every spectrum counted once, not a mean of element means).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from specfusion_lib.xas_structure.grid import edge_energy

__all__ = ["PEARSON_GOOD", "POOLED", "spectrum_metrics", "summarise"]

#: Pearson threshold of the "share of good spectra" column.
PEARSON_GOOD = 0.9
#: Element label of the pooled row.
POOLED = "all"


def spectrum_metrics(y_true: np.ndarray, y_pred: np.ndarray, energies: np.ndarray | Sequence,
                     mask: np.ndarray | None = None) -> pd.DataFrame:
    """Per-spectrum metrics.

    Args:
        y_true, y_pred: Shape ``(m, n)``.
        energies: The grid, shape ``(n,)``, or one grid per row, shape ``(m, n)``.
        mask: Grid points to score, boolean ``(m, n)`` (measured spectra that cover part of
            the window, :func:`~.grid.to_grid_partial`); ``None``: every point. The edge
            energies are found on the whole rows (the reference's uncovered points hold the
            nearest measured value).

    Returns:
        Columns ``mae``, ``rse``, ``pearson``, ``edge_error_ev`` (one row per spectrum).
    """
    y = np.atleast_2d(np.asarray(y_true, float))
    p = np.atleast_2d(np.asarray(y_pred, float))
    e = np.asarray(energies, float)
    grids = np.broadcast_to(e, y.shape) if e.ndim == 1 else e
    w = np.ones_like(y) if mask is None else np.asarray(mask, float).reshape(y.shape)
    count = np.maximum(w.sum(axis=1), 1)
    mae = (w * np.abs(y - p)).sum(axis=1) / count
    rse = (w * (y - p) ** 2).sum(axis=1) / np.maximum((w * y ** 2).sum(axis=1), 1e-12)
    yc = w * (y - ((w * y).sum(axis=1) / count)[:, None])
    pc = w * (p - ((w * p).sum(axis=1) / count)[:, None])
    denom = np.sqrt((yc ** 2).sum(axis=1) * (pc ** 2).sum(axis=1))
    pearson = np.where(denom > 0, (yc * pc).sum(axis=1) / np.where(denom > 0, denom, 1), np.nan)
    edge_true = np.array([edge_energy(row, g) for row, g in zip(y, grids, strict=True)])
    edge_pred = np.array([edge_energy(row, g) for row, g in zip(p, grids, strict=True)])
    return pd.DataFrame({"mae": mae, "rse": rse, "pearson": pearson,
                         "edge_error_ev": np.abs(edge_pred - edge_true)})


def _summary_row(frame: pd.DataFrame) -> dict[str, float]:
    edge = frame["edge_error_ev"].dropna()
    return {"n": len(frame), "mae": frame["mae"].mean(), "rse": frame["rse"].mean(),
            "rse_median": frame["rse"].median(), "pearson_median": frame["pearson"].median(),
            "share_pearson_above_0.9": float((frame["pearson"] > PEARSON_GOOD).mean()),
            "edge_error_ev": edge.mean() if len(edge) else np.nan,
            "n_edge": len(edge)}


def summarise(per_spectrum: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per-element and pooled summary of :func:`spectrum_metrics` rows.

    Args:
        per_spectrum: Rows with an ``element`` column plus the metric columns (and ``by``).
        by: Further grouping columns (e.g. ``("model", "split")``).

    Returns:
        One row per (``by`` …, element) and per ``by`` with ``element == POOLED``.
    """
    rows = []
    keys = list(by)
    if per_spectrum.empty:
        return pd.DataFrame(columns=[*keys, "element", "n", "mae", "rse", "rse_median",
                                     "pearson_median", "share_pearson_above_0.9",
                                     "edge_error_ev", "n_edge"])
    groups = per_spectrum.groupby(keys, sort=False) if keys else [((), per_spectrum)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = dict(zip(keys, key, strict=True))
        for element, sub in part.groupby("element", sort=True):
            rows.append({**base, "element": element, **_summary_row(sub)})
        rows.append({**base, "element": POOLED, **_summary_row(part)})
    return pd.DataFrame(rows)
