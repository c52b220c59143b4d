"""Train-and-report helpers behind notebooks 02–04 (Fig. 2c–h, S8, per-TM classifiers).

The notebooks only call these functions; each returns plain pandas objects that the notebook
displays and :func:`specfusion_lib.plotting.common.save_table` writes.

* :func:`run_tasks` trains every requested task with the SI §S1.1 protocol
  (:func:`specfusion_lib.properties.train.train_task_seeds`) and keeps a :class:`TaskRun` per
  task. A task whose label the snapshot lacks (or has for fewer than three materials) is *not
  available in this snapshot*: it is kept as a run without results and reported as such, never
  faked.
* :func:`metrics_table` puts each metric next to the paper's value
  (:data:`~specfusion_lib.core.paper.PROPERTY_VALUES`) and
  the trivial baseline computed on the same test part (majority class of the training part;
  training mean), so a reader sees what the model earns over a constant guess.
* :func:`confusion_matrix` (Fig. S8), :func:`parity_frame` (Fig. 2d–g),
  :func:`partial_vs_all_table` (Fig. 2h) and :func:`per_element_accuracy` (oxidation state
  and coordination number per TM element) prepare the data of the figures drawn by
  :mod:`specfusion_lib.plotting.properties`.

Paper values are those of :mod:`specfusion_lib.core.paper`, quoted as the paper states them:
:data:`~specfusion_lib.core.paper.PROPERTY_VALUES` (Fig. 2c–g, S8; the XANES-only crystal
system of Fig. S21) and the all-element vs TM-only differences of Fig. 2h. The paper gives no
per-task numbers in the text, so none are invented here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.paper import (
    FIG2H_BAND_GAP_MAE_DIFFERENCE,
    FIG2H_F1_DIFFERENCE,
    PROPERTY_VALUES,
)
from specfusion_lib.core.profiles import Profile, get_profile
from specfusion_lib.core.tasks import CLASSIFICATION_TASKS, REGRESSION_TASKS
from specfusion_lib.properties.features import (
    ELEMENT_TASKS,
    FeatureSet,
    TaskNotAvailableError,
    TaskSpec,
    build_features,
    get_task_spec,
    task_data,
)
from specfusion_lib.properties.randomised import Randomiser
from specfusion_lib.properties.train import SeedSummary, train_task_seeds
from specfusion_lib.spectra.augment import DomainRandomisation

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "ELEMENT_TASKS",
    "ELEMENT_TASK_RANDOMISATION",
    "NOT_AVAILABLE",
    "PARITY_FIGURES",
    "PROPERTY_TASKS",
    "TaskRun",
    "confusion_matrix",
    "element_augment",
    "label_counts_table",
    "metrics_table",
    "paired_features",
    "paper_reference_table",
    "parity_frame",
    "partial_vs_all_table",
    "split_comparison_table",
    "per_element_accuracy",
    "per_element_table",
    "run_tasks",
]

#: Status of a task whose label the snapshot lacks.
NOT_AVAILABLE = "not available in this snapshot"

#: Notebook 02's tasks: the paper's four classification and four regression targets
#: (Fig. 2c–g) plus the XANES-only crystal system (compared with Fig. S21).
PROPERTY_TASKS: tuple[str, ...] = (*CLASSIFICATION_TASKS, "crystal_system", *REGRESSION_TASKS)

#: Regression target → figure stem of its parity plot (Fig. 2d–g).
PARITY_FIGURES: dict[str, str] = {
    "formation_energy_per_atom": "fig2d_parity_formation_energy",
    "efermi": "fig2e_parity_efermi",
    "band_gap": "fig2f_parity_band_gap",
    "density": "fig2g_parity_density",
}

#: Domain randomisation of the per-TM oxidation-state / CN models that users run on
#: measured spectra (notebook 04, reused by notebooks 09 and 10 and ``specfusion predict``):
#: chosen on the development half of the measured compounds
#: (``benchmarks/measured_variants.py``).
ELEMENT_TASK_RANDOMISATION = DomainRandomisation(copies=2)


def element_augment(snapshot: Snapshot, enabled: bool = True) -> Randomiser | None:
    """The ``augment`` of the oxidation-state / CN models (one definition for every notebook
    that trains or resumes them, so their checkpoints match): a
    :class:`~specfusion_lib.properties.randomised.Randomiser` with
    :data:`ELEMENT_TASK_RANDOMISATION`, or ``None`` when not ``enabled``."""
    return Randomiser(snapshot, ELEMENT_TASK_RANDOMISATION) if enabled else None


_METRICS = {"classification": ("accuracy", "f1_macro"), "regression": ("mae", "r2")}
_BASELINE_NAME = {"classification": "majority class of the training part",
                  "regression": "mean of the training part"}



def paper_reference_table(tasks: Iterable[str] | None = None) -> pd.DataFrame:
    """The paper's values used in the comparisons, with their source.

    Args:
        tasks: Restrict to these tasks (default: every task with a paper value).

    Returns:
        Columns ``task``, ``metric``, ``paper_value``, ``bound``, ``source``.
    """
    wanted = None if tasks is None else set(tasks)
    rows = [{"task": t, "metric": m, "paper_value": v.text, "bound": v.bound or "value",
             "source": v.source}
            for (t, m), v in PROPERTY_VALUES.items() if wanted is None or t in wanted]
    for task, metric, v in (
            ("band_gap (all-element vs TM-only)", "|Δ mae|", FIG2H_BAND_GAP_MAE_DIFFERENCE),
            ("classification (all-element vs TM-only)", "Δ f1_macro", FIG2H_F1_DIFFERENCE)):
        rows.append({"task": task, "metric": metric, "paper_value": v.text,
                     "bound": v.bound or "value", "source": v.source})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class TaskRun:
    """One task of a notebook: its seeds' results, or why it is not available.

    Attributes:
        task: Task name.
        spec: The task's :class:`~specfusion_lib.properties.features.TaskSpec`.
        summary: The seeds' results (``None`` when not available).
        reason: Why the task is not available ("" when it is).
    """

    task: str
    spec: TaskSpec
    summary: SeedSummary | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether the task was trained."""
        return self.summary is not None

    @property
    def status(self) -> str:
        """``"trained"`` or :data:`NOT_AVAILABLE`."""
        return "trained" if self.available else NOT_AVAILABLE

    def predictions(self) -> pd.DataFrame:
        """Test predictions of every seed (``seed`` column added); empty if not available."""
        if self.summary is None:
            return pd.DataFrame(columns=["seed", "material_id", "y_true", "y_pred"])
        return pd.concat([r.predictions.assign(seed=r.seed) for r in self.summary.results],
                         ignore_index=True)


def run_tasks(
    snapshot: Snapshot,
    tasks: Sequence[str],
    profile: Profile | str = "quick",
    *,
    features: FeatureSet | None = None,
    all_element: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    **train_kwargs: Any,
) -> dict[str, TaskRun]:
    """Train each task for every seed of the profile; unavailable tasks are kept as such.

    Args:
        snapshot: A loaded snapshot.
        tasks: Task names (:data:`~specfusion_lib.properties.features.FEATURE_TASKS`).
        profile: Profile or its name.
        features: Pre-built inputs shared by every task (built here when ``None``).
        all_element: Use every element's spectrum (Fig. 2h baseline).
        checkpoint_dir: Write (and resume from) checkpoints here; their metadata records the
            elements of the training materials, so that
            :func:`specfusion_lib.properties.predict.predict_properties` can refuse unseen elements.
        progress: Show progress bars.
        **train_kwargs: Passed to :func:`specfusion_lib.properties.train.train_task` (e.g.
            ``model_kwargs`` for a smaller network, ``max_epochs``, ``seeds``).

    Returns:
        Task name → :class:`TaskRun`, in the order of ``tasks``.

    Raises:
        ConfigurationError: For an unknown task or profile.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    specs = {t: get_task_spec(t) for t in tasks}
    if features is None:
        features = build_features(snapshot, all_element=all_element)
    runs: dict[str, TaskRun] = {}
    for task, spec in specs.items():
        try:
            summary = train_task_seeds(snapshot, task, prof, features=features,
                                       all_element=all_element, checkpoint_dir=checkpoint_dir,
                                       progress=progress, **train_kwargs)
        except TaskNotAvailableError as exc:
            runs[task] = TaskRun(task, spec, reason=str(exc))
            continue
        except ConfigurationError as exc:
            if "too few labelled" not in str(exc):
                raise
            runs[task] = TaskRun(task, spec, reason=str(exc))
            continue
        runs[task] = TaskRun(task, spec, summary)
    return runs


def paired_features(snapshot: Snapshot, *, complete_only: bool = True
                    ) -> tuple[FeatureSet, FeatureSet]:
    """TM-only and all-element inputs of the *same* materials (Fig. 2h).

    Both feature sets hold exactly the materials that have a usable TM spectrum *and* a usable
    spectrum of every one of their elements (a compound missing, say, its O K edge would
    otherwise enter the "all-element" model with TM edges only), in the same order, so the two
    models of a task get the same split and test compounds.

    Args:
        snapshot: The snapshot.
        complete_only: Keep only compounds with a spectrum of every element (the Fig. 2h
            comparison); ``False`` keeps every compound with at least its TM spectra.

    Returns:
        ``(tm_only, all_element)``.
    """
    tm = build_features(snapshot)
    everything = build_features(snapshot, all_element=True)
    complete = np.all(everything.spectrum_mask == everything.element_mask, axis=1)
    if not complete_only:
        complete[:] = True
    in_all = {m for m, ok in zip(everything.material_ids, complete, strict=True) if ok}
    common = [m for m in tm.material_ids if m in in_all]
    e = max(tm.max_elements, everything.max_elements)
    return (build_features(snapshot, material_ids=common, max_elements=e),
            build_features(snapshot, all_element=True, material_ids=common, max_elements=e))


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _fmt(mean: float, std: float, n: int) -> str:
    if mean is None or not math.isfinite(mean):
        return "—"
    if n > 1 and std is not None and math.isfinite(std):
        return f"{mean:.3f} ± {std:.3f}"
    return f"{mean:.3f}"


def metrics_table(runs: Mapping[str, TaskRun]) -> pd.DataFrame:
    """Every metric next to the trivial baseline and the paper's value.

    Classification: accuracy and macro-F1; regression: MAE (in the target's unit) and R².
    Model metrics are mean ± sample std over seeds; the baseline is the same trivial
    predictor on each seed's test part, averaged.

    Returns:
        One row per (task, metric): ``task``, ``title``, ``kind``, ``metric``, ``status``,
        ``ours`` (formatted), ``ours_mean``, ``ours_std``, ``baseline``,
        ``baseline_value``, ``paper_value``, ``paper_source``, ``seeds``, ``n_test``,
        ``unit``. A task not available in the snapshot has ``status`` =
        :data:`NOT_AVAILABLE` and empty numbers.
    """
    rows = []
    for task, run in runs.items():
        spec = run.spec
        for metric in _METRICS[spec.kind]:
            paper = PROPERTY_VALUES.get((task, metric))
            row: dict[str, Any] = {
                "task": task, "title": spec.title, "kind": spec.kind, "metric": metric,
                "status": run.status, "ours": NOT_AVAILABLE, "ours_mean": math.nan,
                "ours_std": math.nan, "baseline": _BASELINE_NAME[spec.kind],
                "baseline_value": math.nan,
                "paper_value": paper.text if paper else "—",
                "paper_source": paper.source if paper else "",
                "seeds": 0, "n_test": 0, "unit": spec.unit if metric == "mae" else "",
            }
            if run.summary is not None:
                s = run.summary
                mean = s.mean.get(metric, math.nan)
                std = s.std.get(metric, math.nan)
                row.update({
                    "ours": _fmt(mean, std, len(s.results)), "ours_mean": mean,
                    "ours_std": std, "baseline_value": s.baseline_mean.get(metric, math.nan),
                    "seeds": len(s.results),
                    "n_test": int(sum(r.metrics.get("n_test", 0) for r in s.results)),
                })
            rows.append(row)
    return pd.DataFrame(rows)


def split_comparison_table(family: pd.DataFrame, random: pd.DataFrame) -> pd.DataFrame:
    """Every metric on the family split (the headline) beside the random split.

    Args:
        family: :func:`metrics_table` of runs split by structure family.
        random: :func:`metrics_table` of the same tasks split at random (paper protocol).

    Returns:
        One row per (task, metric): ``family``, ``random`` (means over seeds),
        ``random_minus_family`` (positive: the random split flatters an error-free metric
        such as accuracy; for MAE a negative value flatters), the baselines of both splits,
        ``paper_value`` and both test sizes.
    """
    keys = ["task", "metric"]
    left = family[[*keys, "title", "ours_mean", "baseline_value", "n_test", "paper_value",
                   "unit"]].rename(columns={"ours_mean": "family", "baseline_value":
                                            "family_baseline", "n_test": "family_n_test"})
    right = random[[*keys, "ours_mean", "baseline_value", "n_test"]].rename(columns={
        "ours_mean": "random", "baseline_value": "random_baseline",
        "n_test": "random_n_test"})
    out = left.merge(right, on=keys, how="outer")
    out["random_minus_family"] = out["random"] - out["family"]
    return out[[*keys, "title", "family", "random", "random_minus_family", "family_baseline",
                "random_baseline", "paper_value", "family_n_test", "random_n_test", "unit"]]


def label_counts_table(runs: Mapping[str, TaskRun]) -> pd.DataFrame:
    """Labelled samples per class (or ``n``) each trained task used, and excluded materials.

    The class balance is what the majority-class baseline exploits (compare SI Fig. S6, S7
    in notebook 01).
    """
    rows = []
    for task, run in runs.items():
        if run.summary is None:
            rows.append({"task": task, "status": NOT_AVAILABLE, "labels": "", "excluded": ""})
            continue
        meta = run.summary.results[0].metadata
        counts = ", ".join(f"{k}: {v}" for k, v in meta.get("label_counts", {}).items())
        excluded = ", ".join(f"{k}: {v}" for k, v in meta.get("excluded", {}).items())
        rows.append({"task": task, "status": run.status, "labels": counts,
                     "excluded": excluded})
    return pd.DataFrame(rows)


def confusion_matrix(run: TaskRun) -> pd.DataFrame | None:
    """Confusion matrix of a classification task, test parts of every seed pooled (Fig. S8).

    Returns:
        Counts with true classes as rows and predicted classes as columns (every class of
        the task, in its order), or ``None`` when the task is not available.

    Raises:
        ConfigurationError: For a regression task.
    """
    if run.spec.kind != "classification":
        raise ConfigurationError(f"{run.task} is a regression task: no confusion matrix")
    if run.summary is None:
        return None
    classes = list(run.summary.results[0].class_names)
    frame = run.predictions()
    table = pd.crosstab(pd.Categorical(frame["y_true"], categories=classes),
                        pd.Categorical(frame["y_pred"], categories=classes), dropna=False)
    table.index.name, table.columns.name = "true", "predicted"
    return table.astype(int)


def parity_frame(run: TaskRun) -> pd.DataFrame:
    """Test predictions of a regression task (every seed): ``seed``, ``material_id``,
    ``y_true``, ``y_pred`` (empty when not available).

    Raises:
        ConfigurationError: For a classification task.
    """
    if run.spec.kind != "regression":
        raise ConfigurationError(f"{run.task} is a classification task: no parity plot")
    return run.predictions()


def partial_vs_all_table(tm_runs: Mapping[str, TaskRun],
                         all_runs: Mapping[str, TaskRun]) -> pd.DataFrame:
    """TM-edges-only vs all-element inputs on the same compounds (Fig. 2h).

    Classification tasks are compared on macro-F1 (relative difference, the paper's "< 6 %"),
    regression tasks on MAE (absolute difference; the paper: 0.05 eV for the band gap).

    Returns:
        One row per task: ``task``, ``kind``, ``metric``, ``status``, ``tm_only``,
        ``tm_only_std``, ``all_element``, ``all_element_std``, ``difference``
        (all-element − TM-only), ``relative_difference``, ``paper``.
    """
    rows = []
    for task, tm in tm_runs.items():
        every = all_runs.get(task)
        metric = "f1_macro" if tm.spec.kind == "classification" else "mae"
        paper = ("|Δ| = 0.05 eV (band gap)" if task == "band_gap" else
                 "|Δ| < 6 %" if tm.spec.kind == "classification" else "—")
        row: dict[str, Any] = {"task": task, "kind": tm.spec.kind, "metric": metric,
                               "status": NOT_AVAILABLE, "tm_only": math.nan,
                               "tm_only_std": math.nan, "all_element": math.nan,
                               "all_element_std": math.nan, "difference": math.nan,
                               "relative_difference": math.nan, "paper": paper}
        if tm.summary is not None and every is not None and every.summary is not None:
            a, b = tm.summary.mean.get(metric, math.nan), every.summary.mean.get(metric, math.nan)
            row.update({"status": "trained", "tm_only": a,
                        "tm_only_std": tm.summary.std.get(metric, math.nan),
                        "all_element": b,
                        "all_element_std": every.summary.std.get(metric, math.nan),
                        "difference": b - a,
                        "relative_difference": (b - a) / a if a else math.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def per_element_accuracy(snapshot: Snapshot, run: TaskRun,
                         features: FeatureSet | None = None) -> pd.DataFrame:
    """Accuracy of an element-level task per TM element, next to a per-element baseline.

    The baseline predicts, for each element, the most common class of that element in the
    training part (falling back to the overall majority for an element absent from
    training): it shows how much the spectrum adds beyond "Ti is usually 4+".

    Args:
        snapshot: The snapshot the run was trained on.
        run: A run of ``oxidation_state`` or ``coordination_number``.
        features: The inputs the run used (rebuilt when ``None``).

    Returns:
        One row per element (seeds pooled): ``task``, ``element``, ``status``, ``n_test``,
        ``accuracy``, ``baseline_accuracy``, ``n_train`` (mean over seeds); a single row
        with ``status`` = :data:`NOT_AVAILABLE` when the task is not available.

    Raises:
        ConfigurationError: For a material-level task.
    """
    if run.spec.level != "element":
        raise ConfigurationError(f"{run.task} is not an element-level task")
    columns = ["task", "element", "status", "n_test", "accuracy", "baseline_accuracy",
               "n_train"]
    if run.summary is None:
        return pd.DataFrame([{"task": run.task, "element": "—", "status": NOT_AVAILABLE,
                              "n_test": 0, "accuracy": math.nan,
                              "baseline_accuracy": math.nan, "n_train": 0}])
    data = task_data(snapshot, run.task, features)
    names = np.asarray(data.class_names, dtype=object)
    rows = []
    for result in run.summary.results:
        train_rows = data.features.index_of(result.split["train"])
        per_el: dict[str, list[str]] = {}
        for i in train_rows:
            for j, el in enumerate(data.features.elements[i]):
                if data.y[i, j] >= 0:
                    per_el.setdefault(el, []).append(str(names[data.y[i, j]]))
        all_train = [c for v in per_el.values() for c in v]
        overall = pd.Series(all_train).mode().iloc[0] if all_train else ""
        majority = {el: pd.Series(v).mode().iloc[0] for el, v in per_el.items()}
        frame = result.predictions
        for el, group in frame.groupby("element"):
            guess = majority.get(el, overall)
            rows.append({"task": run.task, "element": el, "seed": result.seed,
                         "correct": int((group["y_true"] == group["y_pred"]).sum()),
                         "baseline_correct": int((group["y_true"] == guess).sum()),
                         "n_test": len(group), "n_train": len(per_el.get(el, []))})
    if not rows:
        return pd.DataFrame(columns=columns)
    raw = pd.DataFrame(rows).groupby(["task", "element"], as_index=False).agg(
        n_test=("n_test", "sum"), correct=("correct", "sum"),
        baseline_correct=("baseline_correct", "sum"), n_train=("n_train", "mean"))
    raw["accuracy"] = raw["correct"] / raw["n_test"]
    raw["baseline_accuracy"] = raw["baseline_correct"] / raw["n_test"]
    raw["status"] = "trained"
    return raw[columns].sort_values("element").reset_index(drop=True)


def per_element_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack :func:`per_element_accuracy` tables of several tasks into one."""
    frames = [t for t in tables.values() if not t.empty]
    if not frames:
        return pd.DataFrame(columns=["task", "element", "status", "n_test", "accuracy",
                                     "baseline_accuracy", "n_train"])
    return pd.concat(frames, ignore_index=True)
