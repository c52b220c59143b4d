"""Ablation studies by zero-masking (main text Fig. 3b,c; SI §S1.2, Fig. S13, S14).

What each input of SpecFusionNet contributes, measured as the paper does: a component is
"removed" by zero-masking it, which keeps the parameter count identical (SI §S1.2), the model
is **retrained** with the component masked under the same protocol (same profile, split and
seed as the full model), and the change of the test metric is reported. Retraining (rather
than masking a trained model at inference) asks "how much worse can the model do *without*
this input", so the network may compensate with the others, as in the paper's "the resulting
accuracy or MAE degradation quantified each component's contribution".

The ablations (:data:`ABLATIONS`):

* ``no_tm_fusion``: the TM–XANES fusion block's output is zeroed (no spectral information
  reaches the element tokens; SI Fig. S13, "masked transition-metal fusion matrix");
* ``no_non_tm``: the non-TM embedding branch is zeroed (SI Fig. S13, "masked
  non-transition-metal fusion matrix");
* ``<scope>-<group>`` for scope ``tm`` / ``non_tm`` and each descriptor group of
  :data:`~specfusion_lib.properties.features.DESCRIPTOR_GROUPS` (χ, r_atom, IE1–IE3, Z, type): the
  group's standardised descriptor columns are set to zero (the training mean; the one-hot
  type columns to all-zero) at the input of that branch only (Fig. 3b,c, S14).

Metrics: MAE for regression, macro-F1 and accuracy for classification. Every seed pairs an
ablated run with the full model of the same seed and split, so ``Δ = ablated − full`` is a
paired difference; :meth:`AblationStudy.summary` reports its mean ± sample standard deviation
over the seeds and the *degradation* (ΔMAE, or −ΔF1 / −Δaccuracy: positive = worse). With a
single seed (the quick profile) the spread is unknown and Δ mixes the effect with training
noise; the summary says so. To give every profile a scale for that noise, the full model is
also retrained with another weight seed (seed + :data:`NOISE_SEED_OFFSET`) on the *same*
split: ``|Δ|`` between the two full models is the *retraining-noise reference*
(:meth:`AblationStudy.summary` column ``noise``; an ablation's ``|Δ|`` below it cannot be told
apart from a retrained copy of the full model). Checkpoints of ablated runs carry the tag
``ablation-<name>`` (ignored by ``specfusion predict``); the full model is the untagged
checkpoint that notebook 02 writes, reused when it matches. A profile with
``ablation_max_materials`` (quick) trains every run of the study, the full model included, on
that smaller seeded subset (:func:`ablation_profile`), so its full model is trained anew and
saved with the tag ``ablation-baseline``, never over notebook 02's model.

Paper statements (main text, Fig. 3b,c and S14; SI Fig. S13) compared by
:func:`paper_comparison`: Z has the most pervasive influence (removing it raises the MAE in
every task); element type affects density most; ionisation energies matter most for
band-structure quantities; masking the TM fusion block or the non-TM branch lowers accuracy.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

from specfusion_lib.core.elements import descriptor_columns
from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import Profile, get_profile
from specfusion_lib.core.tasks import TASKS
from specfusion_lib.models.specfusionnet import count_parameters
from specfusion_lib.properties.features import (
    DESCRIPTOR_GROUPS,
    FeatureSet,
    build_features,
    descriptor_group_indices,
    get_task_spec,
)
from specfusion_lib.properties.runs import NOT_AVAILABLE, run_tasks

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "ABLATIONS",
    "BAND_STRUCTURE_TASKS",
    "BASELINE",
    "GROUP_LABELS",
    "METRICS",
    "NOISE",
    "NOISE_SEED_OFFSET",
    "PAPER_STATEMENTS",
    "PROFILE_TASKS",
    "SCOPES",
    "Ablation",
    "AblationStudy",
    "ablation_profile",
    "ablation_table",
    "default_tasks",
    "paper_comparison",
    "run_ablation",
]

#: Name of the full model.
BASELINE = "baseline"
#: Name of the retraining-noise reference: the full model retrained with another weight seed
#: on the same split.
NOISE = "retrain_noise"
#: Weight-seed offset of the retraining-noise reference.
NOISE_SEED_OFFSET = 1000
#: Element scopes of the descriptor ablations → label.
SCOPES: dict[str, str] = {"tm": "TM", "non_tm": "non-TM"}
#: Descriptor group → label in figures.
GROUP_LABELS: dict[str, str] = {"electronegativity": "χ", "atomic_radius": "r_atom",
                                "ionization_energies": "IE1–IE3", "Z": "Z", "type": "type"}
#: Metrics compared, per task kind; the first is the primary one (Fig. 3b,c: MAE; S14: F1).
METRICS: dict[str, tuple[str, ...]] = {"regression": ("mae",),
                                       "classification": ("f1_macro", "accuracy")}
#: Tasks whose labels describe the band structure (for the ionisation-energy statement).
BAND_STRUCTURE_TASKS: tuple[str, ...] = ("band_gap", "has_band_gap", "is_gap_direct", "efermi")
#: Tasks ablated per profile. Every ablation retrains one model per task and seed, so the
#: quick profile takes a subset: two regression targets the paper discusses (band gap:
#: ionisation energies; density: type) and one classification task (SI Fig. S13, S14). The
#: paper profile takes all eight tasks of Fig. 2c–g.
PROFILE_TASKS: dict[str, tuple[str, ...]] = {
    "smoke": ("band_gap", "density", "is_magnetic"),
    "quick": ("band_gap", "density", "is_magnetic"),
    "paper": tuple(TASKS),
}


@dataclass(frozen=True)
class Ablation:
    """One masked variant of SpecFusionNet.

    Attributes:
        name: Identifier (``"no_tm_fusion"``, ``"tm-Z"``, ...).
        label: Label in figures.
        component: ``"baseline"``, ``"module"`` or ``"descriptor"``.
        scope: ``"tm"`` / ``"non_tm"`` for descriptor ablations, else ``""``.
        group: Descriptor group (descriptor ablations), else ``""``.
        model_kwargs: Model arguments that apply the masking.
    """

    name: str
    label: str
    component: str
    scope: str = ""
    group: str = ""
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Checkpoint tag (``""`` for the full model: notebook 02's checkpoint, shared when
        the ablation runs under the same profile; see :func:`run_ablation`)."""
        return "" if self.name == BASELINE else f"ablation-{self.name}"


def _build_ablations() -> dict[str, Ablation]:
    out = [
        Ablation(BASELINE, "full model", "baseline"),
        Ablation("no_tm_fusion", "TM–XANES fusion masked", "module",
                 model_kwargs={"use_tm_fusion": False}),
        Ablation("no_non_tm", "non-TM branch masked", "module",
                 model_kwargs={"use_non_tm": False}),
    ]
    for scope, scope_label in SCOPES.items():
        for group in DESCRIPTOR_GROUPS:
            columns = list(descriptor_group_indices([group]))
            out.append(Ablation(f"{scope}-{group}", f"{GROUP_LABELS[group]} ({scope_label})",
                                "descriptor", scope, group,
                                {f"masked_{scope}_descriptors": columns}))
    return {a.name: a for a in out}


#: Every ablation of the study, by name (the full model first).
ABLATIONS: dict[str, Ablation] = _build_ablations()


def default_tasks(profile: Profile | str) -> tuple[str, ...]:
    """The tasks ablated in a profile (:data:`PROFILE_TASKS`; all tasks for other profiles)."""
    name = profile if isinstance(profile, str) else profile.name
    return PROFILE_TASKS.get(name, tuple(TASKS))


@dataclass
class AblationStudy:
    """Runs of every (task, ablation, seed) and their comparison with the full model.

    Attributes:
        tasks: Tasks studied.
        ablations: Ablations run (the full model first).
        runs: One row per trained (task, ablation, seed): ``task``, ``kind``, ``ablation``,
            ``seed`` (the split and the full model it is paired with), ``train_seed``, the
            metrics, ``n_test``, ``parameters``, ``resumed``. Rows with ablation
            :data:`NOISE` are the retraining-noise reference.
        not_available: Task → why it could not be trained (label absent, too few materials).
        profile: Name of the profile.
    """

    tasks: tuple[str, ...]
    ablations: tuple[Ablation, ...]
    runs: pd.DataFrame
    not_available: dict[str, str]
    profile: str

    def deltas(self) -> pd.DataFrame:
        """Paired per-seed differences ablated − full model.

        Returns:
            ``task``, ``kind``, ``ablation``, ``seed``, ``metric``, ``full``, ``ablated``,
            ``delta``, ``degradation`` (positive = worse).
        """
        cols = ["task", "kind", "ablation", "seed", "metric", "full", "ablated", "delta",
                "degradation"]
        if self.runs.empty:
            return pd.DataFrame(columns=cols)
        rows = []
        base = self.runs[self.runs["ablation"] == BASELINE].set_index(["task", "seed"])
        for rec in self.runs[self.runs["ablation"] != BASELINE].itertuples(index=False):
            key = (rec.task, rec.seed)
            if key not in base.index:
                continue
            for metric in METRICS[rec.kind]:
                full = float(base.loc[key, metric])
                ablated = float(getattr(rec, metric))
                delta = ablated - full
                rows.append({"task": rec.task, "kind": rec.kind, "ablation": rec.ablation,
                             "seed": rec.seed, "metric": metric, "full": full,
                             "ablated": ablated, "delta": delta,
                             "degradation": delta if metric == "mae" else -delta})
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> pd.DataFrame:
        """Mean ± std over seeds of every (task, ablation, metric), plus unavailable tasks.

        Returns:
            ``task``, ``kind``, ``ablation``, ``label``, ``component``, ``scope``, ``group``,
            ``metric``, ``status``, ``full_mean``, ``ablated_mean``, ``delta_mean``,
            ``delta_std``, ``degradation_mean``, ``n_seeds``, ``resolved`` (``True`` when
            the mean degradation exceeds twice its standard error; ``None`` with one seed),
            ``noise`` (mean ``|Δ|`` of the retraining-noise reference; NaN without it) and
            ``exceeds_noise`` (``|mean Δ| > noise``; ``None`` without it).
        """
        deltas = self.deltas()
        noise = deltas[deltas["ablation"] == NOISE].assign(abs_delta=lambda d: d["delta"].abs())
        noise_of = noise.groupby(["task", "metric"])["abs_delta"].mean().to_dict()
        rows = []
        for task in self.tasks:
            kind = get_task_spec(task).kind
            for abl in self.ablations:
                if abl.name == BASELINE:
                    continue
                for metric in METRICS[kind]:
                    row: dict[str, Any] = {
                        "task": task, "kind": kind, "ablation": abl.name, "label": abl.label,
                        "component": abl.component, "scope": abl.scope, "group": abl.group,
                        "metric": metric, "status": NOT_AVAILABLE, "full_mean": math.nan,
                        "ablated_mean": math.nan, "delta_mean": math.nan,
                        "delta_std": math.nan, "degradation_mean": math.nan, "n_seeds": 0,
                        "resolved": None, "noise": noise_of.get((task, metric), math.nan),
                        "exceeds_noise": None}
                    sub = deltas[(deltas["task"] == task) & (deltas["ablation"] == abl.name)
                                 & (deltas["metric"] == metric)]
                    if not sub.empty:
                        n = len(sub)
                        std = float(sub["delta"].std(ddof=1)) if n > 1 else math.nan
                        degr = float(sub["degradation"].mean())
                        row.update({
                            "status": "trained", "full_mean": float(sub["full"].mean()),
                            "ablated_mean": float(sub["ablated"].mean()),
                            "delta_mean": float(sub["delta"].mean()), "delta_std": std,
                            "degradation_mean": degr, "n_seeds": n,
                            "resolved": (None if n < 2 else
                                         bool(abs(degr) > 2 * std / math.sqrt(n)))})
                        if math.isfinite(row["noise"]):
                            row["exceeds_noise"] = bool(abs(degr) > row["noise"])
                    rows.append(row)
        return pd.DataFrame(rows)

    def parameter_counts(self) -> pd.DataFrame:
        """Trainable parameters of each ablation's models (identical by construction)."""
        if self.runs.empty:
            return pd.DataFrame(columns=["ablation", "parameters"])
        return (self.runs.groupby("ablation", sort=False)["parameters"]
                .agg(lambda s: sorted(set(s))[0] if len(set(s)) == 1 else -1)
                .reset_index())


def ablation_profile(profile: Profile) -> Profile:
    """The profile of the ablation runs: ``max_materials`` lowered to the profile's
    ``ablation_max_materials`` when that is set and smaller (the study retrains the model
    once per ablation, task and seed, so quick runs use fewer materials than notebook 02)."""
    cap = profile.ablation_max_materials
    if cap is None or (profile.max_materials is not None and profile.max_materials <= cap):
        return profile
    return replace(profile, max_materials=int(cap))


def run_ablation(
    snapshot: Snapshot,
    tasks: Sequence[str] | None = None,
    profile: Profile | str = "quick",
    *,
    ablations: Sequence[str] | None = None,
    features: FeatureSet | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    seeds: Sequence[int] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    noise_reference: bool = True,
    progress: bool = False,
) -> AblationStudy:
    """Retrain SpecFusionNet with each ablation and collect the test metrics.

    Args:
        snapshot: A loaded snapshot.
        tasks: Material-level tasks (default: :func:`default_tasks` of the profile).
        profile: Profile or its name (seeds, epochs, split, ...).
        ablations: Names from :data:`ABLATIONS` (default: all; the full model is always
            added).
        features: Pre-built inputs shared by every run.
        checkpoint_dir: Write and reuse checkpoints here (tag ``ablation-<name>``).
        seeds: Seeds (default: the profile's).
        model_kwargs: Network size arguments applied to every variant (e.g. a small model
            for tests); the ablation switches are added per variant.
        noise_reference: Also retrain the full model with weight seed
            ``seed + NOISE_SEED_OFFSET`` on the split of ``seed`` (the retraining-noise
            reference; one extra run per task and seed).
        progress: Show a progress bar over (ablation, task).

    Returns:
        An :class:`AblationStudy`.

    Raises:
        ConfigurationError: Unknown task or ablation, an element-level task, or
            ``model_kwargs`` that set an ablation switch.
    """
    given = get_profile(profile) if isinstance(profile, str) else profile
    prof = ablation_profile(given)
    # The full model shares notebook 02's untagged checkpoint only when it is the same run;
    # on a lowered material cap it gets its own tag, so it never replaces notebook 02's model
    # (which ``specfusion predict`` and notebooks 06 and 10 load).
    baseline_tag = "" if prof == given else f"ablation-{BASELINE}"
    tasks = tuple(default_tasks(prof) if tasks is None else tasks)
    for task in tasks:
        if get_task_spec(task).level != "material":
            raise ConfigurationError(f"ablations are run on material-level tasks; {task!r} "
                                     "is element level")
    names = list(ABLATIONS) if ablations is None else [BASELINE, *(a for a in ablations
                                                                    if a != BASELINE)]
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ConfigurationError(f"unknown ablation(s) {unknown}; choose from {list(ABLATIONS)}")
    base_kwargs = dict(model_kwargs or {})
    switches = {k for a in ABLATIONS.values() for k in a.model_kwargs} | {"masked_descriptors"}
    if switches & set(base_kwargs):
        raise ConfigurationError(f"model_kwargs may not set ablation switches "
                                 f"{sorted(switches & set(base_kwargs))}")
    if features is None:
        features = build_features(snapshot)
    chosen = [ABLATIONS[n] for n in names]
    seed_list = [int(s) for s in (prof.seeds if seeds is None else seeds)]
    jobs: list[tuple[str, str, dict[str, Any], list[int], int | None]] = [
        (abl.name, task, {**base_kwargs, **abl.model_kwargs}, seed_list, None)
        for abl in chosen for task in tasks]
    if noise_reference:
        jobs += [(NOISE, task, base_kwargs, [s + NOISE_SEED_OFFSET], s)
                 for task in tasks for s in seed_list]
    rows: list[dict[str, Any]] = []
    not_available: dict[str, str] = {}
    t0 = time.perf_counter()
    logger.info("ablation study (%s profile): %d run(s) = %d variant(s) x %d task(s)%s, "
                "seeds %s", prof.name, len(jobs), len(chosen), len(tasks),
                " + noise reference" if noise_reference else "", seed_list)
    bar = tqdm(jobs, desc="ablations", disable=not progress)
    for name, task, kwargs, run_seeds, split_seed in bar:
        if task in not_available:
            continue
        bar.set_postfix_str(f"{name} / {task}")
        extra = {} if split_seed is None else {"split_seed": split_seed}
        tag = baseline_tag if name == BASELINE else f"ablation-{name}"
        run = run_tasks(snapshot, [task], prof, features=features,
                        checkpoint_dir=checkpoint_dir, model_kwargs=kwargs or None,
                        tag=tag, seeds=run_seeds, **extra)[task]
        if run.summary is None:
            not_available[task] = run.reason
            logger.warning("ablation: task %s skipped, not available: %s", task, run.reason)
            continue
        logger.debug("ablation %s / %s: %d seed run(s), %d resumed from checkpoints", name, task,
                     len(run.summary.results), sum(bool(r.resumed) for r in run.summary.results))
        for result in run.summary.results:
            rows.append({"task": task, "kind": result.kind, "ablation": name,
                         "seed": result.seed if split_seed is None else split_seed,
                         "train_seed": result.seed,
                         **{m: result.metrics.get(m, math.nan) for m in METRICS[result.kind]},
                         "n_test": result.metrics.get("n_test", 0),
                         "parameters": count_parameters(result.model),
                         "resumed": result.resumed})
    columns = ["task", "kind", "ablation", "seed", "train_seed", "mae", "f1_macro", "accuracy",
               "n_test", "parameters", "resumed"]
    runs = pd.DataFrame(rows).reindex(columns=columns)
    logger.info("ablation study done: %d seed run(s) (%d resumed from checkpoints), %d task(s) "
                "not available, %.1f s", len(rows), sum(bool(r["resumed"]) for r in rows),
                len(not_available), time.perf_counter() - t0)
    return AblationStudy(tasks, tuple(chosen), runs, not_available, prof.name)


# --------------------------------------------------------------------------------------------
# The paper's statements next to ours
# --------------------------------------------------------------------------------------------

#: The paper's statements about the ablations (id → (statement, source)).
PAPER_STATEMENTS: dict[str, tuple[str, str]] = {
    "z_pervasive": ("Z exerted the most pervasive influence: removing it raised the MAE "
                    "across all prediction tasks", "main text, Fig. 3b,c and S14"),
    "type_density": ("The type descriptor most strongly affected density prediction",
                     "main text, Fig. 3b,c"),
    "ie_band_structure": ("Ionisation energies were particularly important for "
                          "band-structure-related quantities", "main text, Fig. 3b,c and S14"),
    "modules": ("Masking the TM–XANES fusion block or the non-TM branch lowers accuracy",
                "SI §S1.2, Fig. S13"),
}


def _primary(summary: pd.DataFrame) -> pd.DataFrame:
    trained = summary[summary["status"] == "trained"]
    keep = [(k == "regression" and m == "mae") or (k == "classification" and m == "f1_macro")
            for k, m in zip(trained["kind"], trained["metric"], strict=True)]
    return trained[keep]


def _seed_note(summary: pd.DataFrame) -> str:
    trained = summary[summary["status"] == "trained"]
    if trained.empty:
        return ""
    n = int(trained["n_seeds"].min())
    return " (1 seed: the spread over seeds is unknown)" if n < 2 else f" ({n} seeds)"


def _verdict(agrees: bool | None, relevant: pd.DataFrame) -> str:
    if agrees is None:
        return "not testable here"
    word = "agrees" if agrees else "does not agree"
    flags = relevant["exceeds_noise"].dropna()
    noise = (f"; {int(flags.astype(bool).sum())} of {len(flags)} differences exceed the "
             "retraining-noise reference" if len(flags) else "")
    if (relevant["n_seeds"] < 2).any():
        return f"{word} (direction only, 1 seed{noise})"
    unresolved = relevant["resolved"].eq(False).any()
    detail = "some differences within 2 standard errors" if unresolved else ""
    extra = "; ".join(p for p in (detail, noise.lstrip("; ")) if p)
    return f"{word} ({extra})" if extra else word


def paper_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's ablation statements next to what this study found.

    Criteria (primary metric: MAE for regression, macro-F1 for classification; degradation =
    ΔMAE or −ΔF1, positive = worse), each per scope (TM, non-TM descriptors):

    * Z most pervasive: Z's ablation degrades at least as many tasks as any other group's,
      and degrades every task (checked per scope; agrees if it holds in either scope).
    * type for density: type has the largest density degradation among the groups.
    * IE for band-structure quantities: averaged over the band-structure tasks present, IE1–IE3
      rank first or second of the five groups by degradation.
    * modules: both module ablations degrade every task.

    Args:
        summary: :meth:`AblationStudy.summary`.

    Returns:
        ``statement``, ``source``, ``ours`` (what we measured), ``verdict``.
    """
    prim = _primary(summary)
    note = _seed_note(summary)
    desc = prim[prim["component"] == "descriptor"]
    rows = []

    def add(key: str, ours: str, agrees: bool | None, relevant: pd.DataFrame) -> None:
        statement, source = PAPER_STATEMENTS[key]
        rows.append({"statement": statement, "source": source, "ours": ours + note,
                     "verdict": _verdict(agrees, relevant)})

    # Z most pervasive
    parts, agree_any, any_data = [], False, False
    for scope, label in SCOPES.items():
        sub = desc[desc["scope"] == scope]
        if sub.empty:
            continue
        any_data = True
        n_tasks = sub["task"].nunique()
        worse = sub[sub["degradation_mean"] > 0].groupby("group")["task"].nunique()
        z = int(worse.get("Z", 0))
        best = int(worse.max()) if not worse.empty else 0
        parts.append(f"{label}: removing Z degraded {z}/{n_tasks} tasks (most by any group: "
                     f"{best})")
        agree_any |= (z == n_tasks and z >= best)
    add("z_pervasive", "; ".join(parts) or NOT_AVAILABLE, agree_any if any_data else None,
        desc[desc["group"] == "Z"])

    # type for density
    dens = desc[desc["task"] == "density"]
    parts, agree_any = [], False
    for scope, label in SCOPES.items():
        sub = dens[dens["scope"] == scope].sort_values("degradation_mean", ascending=False)
        if sub.empty:
            continue
        top = sub.iloc[0]
        type_delta = sub.loc[sub["group"] == "type", "delta_mean"]
        type_text = f"; type {type_delta.iloc[0]:+.3f}" if not type_delta.empty else ""
        parts.append(f"{label}: largest density ΔMAE from {GROUP_LABELS[top['group']]} "
                     f"({top['delta_mean']:+.3f} g/cm³{type_text})")
        agree_any |= top["group"] == "type"
    add("type_density", "; ".join(parts) or "density " + NOT_AVAILABLE,
        agree_any if parts else None, dens[dens["group"] == "type"])

    # IE for band-structure quantities
    band = desc[desc["task"].isin(BAND_STRUCTURE_TASKS)]
    parts, agree_any = [], False
    for scope, label in SCOPES.items():
        sub = band[band["scope"] == scope]
        if sub.empty:
            continue
        ranks = sub.groupby("task")["degradation_mean"].rank(ascending=False, method="min")
        ie_rank = float(ranks[sub["group"] == "ionization_energies"].mean())
        tasks = ", ".join(sorted(sub["task"].unique()))
        parts.append(f"{label}: IE1–IE3 rank {ie_rank:.1f} of {sub['group'].nunique()} "
                     f"groups ({tasks})")
        agree_any |= ie_rank <= 2
    add("ie_band_structure", "; ".join(parts) or "band-structure tasks " + NOT_AVAILABLE,
        agree_any if parts else None, band[band["group"] == "ionization_energies"])

    # modules
    mods = prim[prim["component"] == "module"]
    parts = []
    for name in ("no_tm_fusion", "no_non_tm"):
        sub = mods[mods["ablation"] == name]
        if sub.empty:
            continue
        vals = ", ".join(f"{t} {'ΔMAE' if m == 'mae' else 'ΔF1'} {d:+.3f}"
                         for t, m, d in zip(sub["task"], sub["metric"], sub["delta_mean"],
                                            strict=True))
        parts.append(f"{ABLATIONS[name].label}: {vals}")
    add("modules", "; ".join(parts) or NOT_AVAILABLE,
        bool((mods["degradation_mean"] > 0).all()) if not mods.empty else None, mods)
    return pd.DataFrame(rows)



def ablation_table(ablations: Sequence[Ablation] | None = None) -> pd.DataFrame:
    """What each ablation masks: ``ablation``, ``label``, ``component``, ``scope``,
    ``group``, ``masked`` (the model arguments, with descriptor column names)."""
    names = descriptor_columns("onehot")
    rows = []
    for abl in (ABLATIONS.values() if ablations is None else ablations):
        parts = []
        for key, value in abl.model_kwargs.items():
            if isinstance(value, list):
                parts.append(f"{key}={[names[c] for c in value]}")
            else:
                parts.append(f"{key}={value}")
        rows.append({"ablation": abl.name, "label": abl.label, "component": abl.component,
                     "scope": abl.scope, "group": abl.group,
                     "masked": "; ".join(parts) or "nothing (full model)"})
    return pd.DataFrame(rows)
