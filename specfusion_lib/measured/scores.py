"""Oxidation state and coordination number on measured spectra, scored per half and element.

:func:`structural_scores` turns the compared predictions of notebook 11
(:func:`~specfusion_lib.measured.study.compare_with_references`) into the table the targets
are read from: one row per (variant, input, half, task, element) with the count, the
accuracy, its 95 % Wilson interval (:func:`~specfusion_lib.training.reports.wilson_interval`)
and the **majority-class baseline** beside it: the accuracy of always answering the most
frequent class of the element among the *training* materials (not the scored ones).

Rules:

* A record is scored in the half of its compound (:mod:`specfusion_lib.measured.halves`) and
  in ``"all"``; a compound in neither half (a non-TM record) is left out.
* **Mixed valence**: an oxidation-state prediction counts as right when it is the
  oxidation state of any of the element's sites (Mn₃O₄: 2 or 3), as the issue asks, since
  the spectrum is a superposition of the sites'. The coordination number is scored against
  the multiplicity-weighted mode of the sites (the training label).
* ``both``: oxidation state and CN right for the same record.

:func:`confusion` gives the reference × prediction counts of one task and selection.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from specfusion_lib.properties.features import weighted_mode
from specfusion_lib.training.reports import wilson_interval

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot
    from specfusion_lib.measured.halves import MeasuredHalves

__all__ = ["SCORE_COLUMNS", "confusion", "majority_classes", "site_states",
           "structural_scores"]

#: Columns of :func:`structural_scores`.
SCORE_COLUMNS = ["variant", "input", "split", "task", "element", "n", "correct", "accuracy",
                 "ci_low", "ci_high", "majority_baseline"]
_TASKS = ("oxidation_state", "coordination_number")


def _name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _sites(raw: Any) -> list[dict[str, Any]]:
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return []
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def site_states(snapshot: Snapshot, material_id: str, element: str) -> dict[str, set[str]]:
    """Class names of every site of ``element`` in a material, per task."""
    row = snapshot.materials.loc[snapshot.materials["material_id"] == material_id]
    out: dict[str, set[str]] = {t: set() for t in _TASKS}
    if row.empty:
        return out
    for site in _sites(row.iloc[0]["sites"]):
        if site.get("element") != element:
            continue
        for task in _TASKS:
            if site.get(task) is not None:
                out[task].add(_name(float(site[task])))
    return out


def majority_classes(snapshot: Snapshot, exclude_formulas: Sequence[str] = ()
                     ) -> dict[str, dict[str, str]]:
    """Most frequent training label per task and element (materials of ``exclude_formulas``
    left out), as the models' labels are built (weighted mode over an element's sites)."""
    counts: dict[str, dict[str, Counter]] = {t: defaultdict(Counter) for t in _TASKS}
    skip = set(exclude_formulas)
    for formula, raw in zip(snapshot.materials["formula"], snapshot.materials["sites"],
                            strict=True):
        if formula in skip:
            continue
        per: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for site in _sites(raw):
            for task in _TASKS:
                if site.get(task) is not None:
                    per[(task, site["element"])].append(
                        (float(site[task]), float(site.get("multiplicity") or 1)))
        for (task, element), values in per.items():
            mode = weighted_mode([v for v, _ in values], [w for _, w in values])
            counts[task][element][_name(mode)] += 1
    return {t: {e: c.most_common(1)[0][0] for e, c in per_el.items()}
            for t, per_el in counts.items()}


def _record_table(compared: pd.DataFrame, snapshot: Snapshot,
                  halves: MeasuredHalves) -> pd.DataFrame:
    sub = compared.loc[compared["task"].isin(_TASKS) & compared["reference"].notna()].copy()
    sub = sub.loc[sub["formula"].isin(set(halves.development) | set(halves.scoring))]
    states = {}
    right = []
    for row in sub.itertuples(index=False):
        key = (row.material_id, row.element)
        if key not in states:
            states[key] = site_states(snapshot, row.material_id, row.element)
        pred = str(row.prediction)
        if row.task == "oxidation_state" and len(states[key]["oxidation_state"]) > 1:
            right.append(pred in states[key]["oxidation_state"])
        else:
            right.append(pred == str(row.reference))
    sub["right"] = right
    sub["split"] = [halves.half_of(f) for f in sub["formula"]]
    return sub


def structural_scores(compared: pd.DataFrame, snapshot: Snapshot, halves: MeasuredHalves, *,
                      exclude_formulas: Sequence[str] = ()) -> pd.DataFrame:
    """The score table (see the module docstring).

    Args:
        compared: Output of :func:`~specfusion_lib.measured.study.compare_with_references`.
        snapshot: The snapshot (site labels, training labels of the baseline).
        halves: The committed halves.
        exclude_formulas: Formulas held out of training (left out of the majority baseline).

    Returns:
        A frame with :data:`SCORE_COLUMNS`; ``element`` is ``"all"`` for the pooled rows,
        ``split`` is ``"development"``, ``"scoring"`` or ``"all"``.
    """
    records = _record_table(compared, snapshot, halves)
    majority = majority_classes(snapshot, exclude_formulas)
    rows = []
    for (variant, kind), group in records.groupby(["variant", "input"], sort=False):
        per_record = group.pivot_table(index=["key", "element", "split"], columns="task",
                                       values="right", aggfunc="first").reset_index()
        refs = group.pivot_table(index="key", columns="task", values="reference",
                                 aggfunc="first")
        for split in ("development", "scoring", "all"):
            chosen = per_record if split == "all" else per_record.loc[
                per_record["split"] == split]
            for element in ["all", *sorted(chosen["element"].unique())]:
                sel = chosen if element == "all" else chosen.loc[chosen["element"] == element]
                for task in (*_TASKS, "both"):
                    if task == "both":
                        ok = sel.dropna(subset=list(_TASKS))
                        hits = (ok[_TASKS[0]].astype(bool) & ok[_TASKS[1]].astype(bool))
                        base_hits = [all(majority[t].get(e) == str(refs.loc[k, t])
                                         for t in _TASKS) for k, e in
                                     zip(ok["key"], ok["element"], strict=True)]
                    else:
                        ok = sel.dropna(subset=[task])
                        hits = ok[task].astype(bool)
                        base_hits = [majority[task].get(e) == str(refs.loc[k, task])
                                     for k, e in zip(ok["key"], ok["element"], strict=True)]
                    n, k = len(ok), int(hits.sum())
                    low, high = wilson_interval(k, n) if n else (np.nan, np.nan)
                    rows.append({"variant": variant, "input": kind, "split": split,
                                 "task": task, "element": element, "n": n, "correct": k,
                                 "accuracy": k / n if n else np.nan, "ci_low": low,
                                 "ci_high": high,
                                 "majority_baseline": float(np.mean(base_hits)) if n
                                 else np.nan})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def confusion(compared: pd.DataFrame, task: str, *, variant: str, input_kind: str,
              formulas: Sequence[str] | None = None) -> pd.DataFrame:
    """Reference (rows) × prediction (columns) counts of one task and selection."""
    sub = compared.loc[(compared["task"] == task) & (compared["variant"] == variant)
                       & (compared["input"] == input_kind) & compared["reference"].notna()]
    if formulas is not None:
        sub = sub.loc[sub["formula"].isin(set(formulas))]
    return pd.crosstab(sub["reference"].astype(str), sub["prediction"].astype(str),
                       rownames=["reference"], colnames=["prediction"])
