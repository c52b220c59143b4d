"""Deletion curves: are the Grad-CAM maps faithful to the model? (beyond the paper)

A map is *faithful* if the points it marks are the ones the prediction depends on. The
deletion test (Samek et al., IEEE TNNLS 28, 2660 (2017); Petsiuk et al., BMVC 2018) checks
this directly. Method, as computed by :func:`deletion_curve`, for each compound:

1. Grad-CAM (:func:`~specfusion_lib.interpret.gradcam.grad_cam`) gives an attribution for
   each of the ``P = S · L`` points of the compound's ``S`` encoded spectra.
2. The points are ranked by attribution, highest first (ties, e.g. the many exact zeros after
   the ReLU, in a seeded random order so that no energy position is favoured).
3. For each fraction ``f`` of :data:`DELETION_FRACTIONS` the top ``k = round(f · P)`` points
   are *deleted*: set to ``baseline`` (default 0, the mean of a z-scored spectrum). The same
   ``k`` points are also deleted at random, ``n_random`` times with a seeded generator.
4. The change of the prediction is recorded: ``|y(x_k) − y(x)|``, with ``y`` the predicted
   value in the target's unit (regression) or the probability of the attributed class
   (classification).

If the maps are faithful the attributed curve rises faster than the random one; the area
under each curve (mean over compounds, trapezoid rule over ``f``) summarises this. At
``f = 0`` both curves are 0 and at ``f = 1`` they coincide (everything is deleted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.interpret.gradcam import (
    compound_tensors,
    grad_cam,
    held_out_rows,
    model_outputs,
    used_spectra,
)
from specfusion_lib.properties.features import FeatureSet

__all__ = [
    "DELETION_FRACTIONS",
    "DeletionCurve",
    "deletion_curve",
    "deletion_curves_for_runs",
    "deletion_frame",
    "faithfulness_table",
]

#: Fractions of a compound's spectrum points deleted.
DELETION_FRACTIONS: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                                         0.6, 0.8, 1.0)


@dataclass(frozen=True, eq=False)
class DeletionCurve:
    """Change of the prediction as the most-attributed / random points are deleted.

    Attributes:
        task: Task name ("" if not known).
        kind: ``"classification"`` or ``"regression"``.
        unit: Unit of the change (the target's unit, or "probability").
        fractions: ``(K,)`` deleted fractions of the points.
        material_ids: ``N`` compounds.
        attributed: ``(N, K)`` change when the top-attributed points are deleted.
        random: ``(N, K)`` mean change over the random deletions.
        random_std: ``(N, K)`` standard deviation over the random deletions.
        n_random: Random deletions per compound and fraction.
    """

    task: str
    kind: str
    unit: str
    fractions: np.ndarray
    material_ids: tuple[str, ...]
    attributed: np.ndarray
    random: np.ndarray
    random_std: np.ndarray
    n_random: int

    def frame(self) -> pd.DataFrame:
        """Mean curves: ``fraction``, ``attributed_mean``, ``attributed_sem``,
        ``random_mean``, ``random_sem``, ``n_compounds`` (plus ``task``, ``unit``)."""
        n = len(self.material_ids)

        def sem(a: np.ndarray) -> np.ndarray:
            return a.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(a.shape[1], np.nan)

        return pd.DataFrame({
            "task": self.task, "unit": self.unit, "fraction": self.fractions,
            "attributed_mean": self.attributed.mean(axis=0) if n else np.nan,
            "attributed_sem": sem(self.attributed) if n else np.nan,
            "random_mean": self.random.mean(axis=0) if n else np.nan,
            "random_sem": sem(self.random) if n else np.nan,
            "n_compounds": n,
        })

    def areas(self) -> dict[str, float]:
        """Area under each curve per compound (trapezoid over the fractions), averaged.

        Returns:
            ``attributed``, ``random``, ``ratio`` (attributed / random) and
            ``share_attributed_larger`` (fraction of compounds whose attributed area exceeds
            the random one).
        """
        if not len(self.material_ids):
            return {"attributed": np.nan, "random": np.nan, "ratio": np.nan,
                    "share_attributed_larger": np.nan}
        att = np.trapezoid(self.attributed, self.fractions, axis=1)
        rnd = np.trapezoid(self.random, self.fractions, axis=1)
        mean_att, mean_rnd = float(att.mean()), float(rnd.mean())
        return {"attributed": mean_att, "random": mean_rnd,
                "ratio": mean_att / mean_rnd if mean_rnd > 0 else np.nan,
                "share_attributed_larger": float(np.mean(att > rnd))}


def _deletion_counts(fractions: np.ndarray, n_points: int) -> np.ndarray:
    return np.rint(fractions * n_points).astype(np.int64)


def deletion_curve(
    model: nn.Module,
    features: FeatureSet,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    fractions: Sequence[float] = DELETION_FRACTIONS,
    n_random: int = 5,
    baseline: float = 0.0,
    seed: int = 0,
) -> DeletionCurve:
    """Deletion curves of the Grad-CAM maps of the selected compounds (module docstring).

    Args:
        model: A trained material-level SpecFusionNet.
        features: Inputs.
        indices: Rows of ``features`` (default: all).
        metadata: The run's metadata (task, class names, target standardisation).
        fractions: Deleted fractions, increasing, within [0, 1].
        n_random: Random deletions per compound and fraction.
        baseline: Value deleted points are set to.
        seed: Seed of the tie-breaking and of the random deletions.

    Returns:
        A :class:`DeletionCurve` over the compounds with at least one encoded spectrum.

    Raises:
        ConfigurationError: For invalid fractions or ``n_random < 1`` (and see
            :func:`~specfusion_lib.interpret.gradcam.grad_cam`).
    """
    frac = np.asarray(fractions, dtype=float)
    if frac.ndim != 1 or frac.size < 2 or np.any(np.diff(frac) <= 0) or frac[0] < 0 \
            or frac[-1] > 1:
        raise ConfigurationError(f"fractions must increase within [0, 1], got {tuple(fractions)}")
    if n_random < 1:
        raise ConfigurationError(f"n_random must be at least 1, got {n_random}")
    rows = (np.arange(len(features)) if indices is None
            else np.asarray(indices, dtype=np.int64).reshape(-1))
    cams = grad_cam(model, features, rows, metadata=metadata)
    kind = cams[0].kind if cams else ("regression" if model.n_outputs == 1 else
                                      "classification")
    unit = ("probability" if kind == "classification"
            else str((metadata or {}).get("task", {}).get("unit", "")) or "output")
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    ids, attributed, random_mean, random_std = [], [], [], []
    try:
        for row, cam in zip(rows, cams, strict=True):
            desc, elem, tm, spec, smask = compound_tensors(features, np.array([row]), device)
            used = used_spectra(model, elem, tm, smask)[0].cpu().numpy()
            cols = np.flatnonzero(used)
            if cols.size == 0:
                continue
            scores = cam.raw_attribution.reshape(-1)  # (S·L,), spectra in the order of cols
            n_pts = scores.size
            shuffle = rng.permutation(n_pts)
            order = shuffle[np.argsort(-scores[shuffle], kind="stable")]
            counts = _deletion_counts(frac, n_pts)
            orders = [order] + [rng.permutation(n_pts) for _ in range(n_random)]
            variants = [cam.spectra]  # the unmodified input, in the same batch as the rest
            for ranking in orders:
                for k in counts:
                    flat = cam.spectra.reshape(-1).copy()
                    flat[ranking[:k]] = baseline
                    variants.append(flat.reshape(cam.spectra.shape))
            batch = spec.repeat(len(variants), 1, 1)
            stacked = torch.as_tensor(np.stack(variants), dtype=batch.dtype, device=device)
            batch[:, cols] = stacked
            n_var = len(variants)
            target = torch.full((n_var,), cam.target, dtype=torch.long, device=device)
            inputs = (desc.repeat(n_var, 1, 1), elem.repeat(n_var, 1), tm.repeat(n_var, 1),
                      batch, smask.repeat(n_var, 1))
            y = model_outputs(model, inputs, kind, target, metadata).cpu().numpy()
            change = np.abs(y[1:] - y[0]).reshape(len(orders), len(counts))
            ids.append(cam.material_id)
            attributed.append(change[0])
            random_mean.append(change[1:].mean(axis=0))
            random_std.append(change[1:].std(axis=0))
    finally:
        model.train(was_training)

    def as_array(values: list[np.ndarray]) -> np.ndarray:
        return np.asarray(values, dtype=float).reshape(-1, frac.size)

    return DeletionCurve(
        task=str((metadata or {}).get("task", {}).get("name", "")), kind=kind, unit=unit,
        fractions=frac, material_ids=tuple(ids), attributed=as_array(attributed),
        random=as_array(random_mean), random_std=as_array(random_std), n_random=int(n_random))


def deletion_curves_for_runs(runs: Mapping[str, Any], features: FeatureSet, *,
                             fractions: Sequence[float] = DELETION_FRACTIONS,
                             n_random: int = 5, seed: int = 0) -> dict[str, DeletionCurve | str]:
    """Deletion curves of each task's model (first seed) on its test compounds.

    Args:
        runs: Task → :class:`~specfusion_lib.properties.runs.TaskRun`.
        features: The inputs the runs were trained on.
        fractions: Deleted fractions.
        n_random: Random deletions per compound and fraction.
        seed: Seed of tie-breaking and random deletions.

    Returns:
        Task → :class:`DeletionCurve`, or why there is none (as a string).
    """
    out: dict[str, DeletionCurve | str] = {}
    for task, run in runs.items():
        rows = held_out_rows(run, features)
        if getattr(run, "summary", None) is None:
            out[task] = f"{task}: not available in this snapshot"
            continue
        if rows.size == 0:
            out[task] = "no test compound"
            continue
        result = run.summary.results[0]
        out[task] = deletion_curve(result.model, features, rows, metadata=result.metadata,
                                   fractions=fractions, n_random=n_random, seed=seed)
    return out


def faithfulness_table(curves: Mapping[str, DeletionCurve | str]) -> pd.DataFrame:
    """Areas under the deletion curves per task (:meth:`DeletionCurve.areas`).

    Returns:
        ``task``, ``status``, ``attributed``, ``random``, ``ratio``,
        ``share_attributed_larger``, ``n_compounds``; a task without a curve keeps its row
        with the reason as ``status``.
    """
    rows = []
    for task, curve in curves.items():
        if isinstance(curve, DeletionCurve):
            rows.append({"task": task, "status": "computed", **curve.areas(),
                         "n_compounds": len(curve.material_ids)})
        else:
            rows.append({"task": task, "status": str(curve), "n_compounds": 0})
    return pd.DataFrame(rows, columns=["task", "status", "attributed", "random", "ratio",
                                       "share_attributed_larger", "n_compounds"])


def deletion_frame(curves: Mapping[str, DeletionCurve | str]) -> pd.DataFrame:
    """The mean curves (:meth:`DeletionCurve.frame`) of every task, stacked."""
    frames = [c.frame() for c in curves.values() if isinstance(c, DeletionCurve)]
    if not frames:
        return pd.DataFrame(columns=["task", "unit", "fraction", "attributed_mean",
                                     "attributed_sem", "random_mean", "random_sem",
                                     "n_compounds"])
    return pd.concat(frames, ignore_index=True)
