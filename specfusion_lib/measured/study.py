"""Validation on measured spectra: Table 1, Fig. 5c,d and S26–S31 analogues (notebook 11).

The paper validates SpecFusionNet, trained on simulated spectra, on seven synthesized compounds
(main text Table 1, SI Table S1). Here the measured K-edge spectra of ``experiment.csv``
(:mod:`specfusion_lib.data.measured`) play that role. Steps, each a function:

1. :func:`match_measured`: each measured record is matched to a compound of the active
   snapshot: first by material id (an MP snapshot shares the file's ``mp-`` ids), else by
   reduced formula. Several entries with that formula (polymorphs) are ranked: an entry with
   a simulated spectrum of the measured element first, then the compound the snapshot's
   manifest names as built from the known structure (``named_compounds``, written by the demo
   build), then the lowest ``formation_energy_per_atom`` (the most stable polymorph by the
   snapshot's label; in the demo snapshot a CGCNN surrogate), then the id. The chosen entry
   and the rule are reported.
2. :func:`plan_holdout`: the matched compounds (and any extra formulas, e.g. the phases of
   notebook 12) are removed from the training materials, so that neither the measured nor the
   simulated spectrum of a validation compound was seen in training and the sim→experiment
   gap is not flattered by memorisation. When too few materials would remain (the 10-compound
   test fixture) nothing is held out and the plan says so.
3. :func:`train_validation_models`: SpecFusionNet per task via
   :func:`specfusion_lib.properties.runs.run_tasks` (checkpoints in ``checkpoint_dir/<variant>``),
   either on the spectra as preprocessed everywhere else (``"baseline"``), with E0 placed by
   :class:`~specfusion_lib.measured.domain_shift.E0TemplateAligner` at training and prediction time
   (``"e0_aligned"``), or with domain-randomised copies of the training spectra
   (``"randomised"``, :mod:`specfusion_lib.properties.randomised`).
4. :func:`predict_records`: every measured TM spectrum, and the snapshot's simulated spectrum
   of the same compound and element, through :class:`~specfusion_lib.properties.predict.Predictor`.
5. :func:`compare_with_references`: reference values are the labels of the matched snapshot
   entry: structure-derived (oxidation state, coordination number, crystal system, density)
   and whatever else the snapshot has, with the source of each (:func:`label_sources`; in the
   demo snapshot band gap, Fermi level, formation energy and is_magnetic are CGCNN / CHGNet
   surrogates, not measurements). :func:`table1_analogue` lays them out like the paper's
   Table 1 (absolute errors, ✓/✗ for oxidation state + CN and for crystal system) and
   :func:`gap_table` puts the metrics on simulated and on measured spectra of the same
   compounds side by side: the domain shift as a number.

The paper's own numbers are in :data:`~specfusion_lib.core.paper.TABLE1` and
:data:`~specfusion_lib.core.paper.TABLE_S1` (from :mod:`specfusion_lib.core.paper`; shown, never
mixed with ours).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from specfusion_lib.core import paper
from specfusion_lib.core.errors import ConfigurationError, SpecfusionError
from specfusion_lib.core.profiles import Profile
from specfusion_lib.core.tasks import TASKS
from specfusion_lib.data.measured import MeasuredRecord
from specfusion_lib.measured.domain_shift import E0TemplateAligner
from specfusion_lib.properties.features import FEATURE_TASKS, FeatureSet, weighted_mode
from specfusion_lib.properties.predict import Predictor
from specfusion_lib.properties.runs import TaskRun, run_tasks
from specfusion_lib.spectra.augment import DomainRandomisation
from specfusion_lib.spectra.xanes import ProcessedXANES, XANESSpectrum

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "MEASURED_TASKS",
    "MIN_TRAINING_MATERIALS",
    "MIXTURE_FORMULAS",
    "REMEDY_TASKS",
    "VARIANTS",
    "Holdout",
    "MeasuredValidation",
    "SnapshotMatch",
    "ValidationModels",
    "agreement_frame",
    "compare_with_references",
    "gap_table",
    "label_sources",
    "match_measured",
    "matches_table",
    "overlays",
    "paper_table1",
    "paper_table_s1",
    "plan_holdout",
    "predict_records",
    "prediction_inputs",
    "pxrd_crystal_system",
    "run_measured_validation",
    "structural_summary",
    "reference_labels",
    "table1_analogue",
    "train_validation_models",
    "training_features",
    "validation_features",
]

#: Tasks predicted for each measured compound (Table 1 / S1 rows; ``is_gap_direct`` and
#: ``ordering`` are not in the paper's Table S1).
MEASURED_TASKS: tuple[str, ...] = (
    "oxidation_state", "coordination_number", "crystal_system", "has_band_gap", "is_magnetic",
    "band_gap", "formation_energy_per_atom", "efermi", "density")
#: Model variants: spectra preprocessed as everywhere else, E0 aligned to templates, or
#: domain-randomised training copies (:func:`train_validation_models`).
VARIANTS: tuple[str, ...] = ("baseline", "e0_aligned", "randomised")
#: Hold out the validation compounds only if at least this many training materials remain.
MIN_TRAINING_MATERIALS: int = 30
_ALIGNER_FILE = "e0_templates.json"
_STRUCTURE_SOURCES = {
    "oxidation_state": "bond valence (pymatgen BVAnalyzer) on the snapshot structure, "
                       "multiplicity-weighted mode over the element's sites",
    "coordination_number": "CrystalNN on the snapshot structure, multiplicity-weighted mode "
                           "over the element's sites",
}


# Table 1 columns: task → (column, paper column).
_TABLE1_REGRESSION = {"formation_energy_per_atom": "E_f", "efermi": "E_fermi",
                      "band_gap": "E_g", "density": "density"}


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 (absolute errors and ✓/✗), with its source in ``source``."""
    return pd.DataFrame(paper.TABLE1).assign(source=paper.TABLE1_SOURCE)


def paper_table_s1() -> pd.DataFrame:
    """The paper's Table S1 in long form: compound, property, predicted, experimental."""
    rows = [{"compound": c, "property": p, "predicted": v[0], "experimental": v[1]}
            for c, props in paper.TABLE_S1.items() for p, v in props.items()]
    return pd.DataFrame(rows).assign(source=paper.TABLE1_SOURCE)


# --------------------------------------------------------------------------------------------
# Matching measured records to snapshot compounds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SnapshotMatch:
    """The snapshot compound a measured record is compared with.

    Attributes:
        key: The measured record's key.
        element: Absorbing element of the record.
        material_id: The chosen snapshot entry (``None``: no compound with this formula).
        formula: The entry's reduced formula.
        elements: The entry's elements.
        rule: How the entry was chosen.
        candidates: Every entry that matched (ids).
        simulated: The entry's simulated spectrum of ``element`` (``None`` if absent).
    """

    key: str
    element: str
    material_id: str | None
    formula: str = ""
    elements: tuple[str, ...] = ()
    rule: str = ""
    candidates: tuple[str, ...] = ()
    simulated: XANESSpectrum | None = None

    @property
    def matched(self) -> bool:
        """Whether a snapshot compound was found."""
        return self.material_id is not None


def match_measured(records: Sequence[MeasuredRecord], snapshot: Snapshot,
                   edge: str = "K") -> dict[str, SnapshotMatch]:
    """Match every measured record to a snapshot compound (see the module docstring).

    Returns:
        Record key → :class:`SnapshotMatch` (``material_id`` ``None`` when nothing matched).
    """
    materials = snapshot.materials
    spectra = snapshot.spectra
    spectra = spectra.loc[spectra["edge"].astype(str).str.upper() == edge.upper()]
    with_spectrum = {(m, str(e)) for m, e in zip(spectra["material_id"], spectra["element"],
                                                  strict=True)}
    by_id = materials.set_index("material_id", drop=False)
    manifest = getattr(snapshot, "manifest", None) or {}
    named = {str(m) for m in (manifest.get("named_compounds") or {}).values()}
    out: dict[str, SnapshotMatch] = {}
    for rec in records:
        if rec.mp_id in by_id.index:
            cands = by_id.loc[[rec.mp_id]]
            rule = f"same material id ({rec.mp_id})"
        else:
            cands = materials.loc[materials["formula"] == rec.reduced_formula]
            rule = f"reduced formula {rec.reduced_formula}"
        if cands.empty:
            out[rec.key] = SnapshotMatch(rec.key, rec.element, None,
                                         rule=f"no snapshot compound with id {rec.mp_id} or "
                                              f"formula {rec.reduced_formula}")
            logger.warning("measured record %s: no snapshot compound with id %s or formula %s",
                           rec.key, rec.mp_id, rec.reduced_formula)
            continue
        fe = cands["formation_energy_per_atom"].astype(float)
        ranked = cands.assign(
            _spec=[(m, rec.element) not in with_spectrum for m in cands["material_id"]],
            _named=[m not in named for m in cands["material_id"]],
            _fe=fe.fillna(np.inf)).sort_values(["_spec", "_named", "_fe", "material_id"])
        best = ranked.iloc[0]
        mid = str(best["material_id"])
        if len(cands) > 1:
            n_spec = int((~ranked["_spec"]).sum())
            rule += (f"; {len(cands)} entries, {n_spec} with a simulated {rec.element} {edge} "
                     "spectrum; chosen: with spectrum, then the named compound (known "
                     "structure), then lowest formation_energy_per_atom")
            if mid in named:
                rule += " (the named compound)"
        simulated = None
        if (mid, rec.element) in with_spectrum:
            row = spectra.loc[(spectra["material_id"] == mid)
                              & (spectra["element"] == rec.element)].iloc[0]
            simulated = XANESSpectrum(np.asarray(row["energy"]), np.asarray(row["mu"]),
                                      element=rec.element, edge=edge,
                                      source=f"{snapshot.path} {mid} {rec.element} {edge} "
                                             f"({row.get('source', 'simulated')})")
        out[rec.key] = SnapshotMatch(rec.key, rec.element, mid, str(best["formula"]),
                                     tuple(str(e) for e in best["elements"]), rule,
                                     tuple(str(m) for m in ranked["material_id"]), simulated)
    logger.info("matched %d of %d measured record(s) to snapshot compounds (%d with a "
                "simulated spectrum)", sum(m.material_id is not None for m in out.values()),
                len(out), sum(m.simulated is not None for m in out.values()))
    return out


def matches_table(records: Sequence[MeasuredRecord], matches: Mapping[str, SnapshotMatch],
                  snapshot: Snapshot | None = None) -> pd.DataFrame:
    """One row per measured record: the chosen snapshot entry, the rule and the candidates."""
    crystal = {}
    if snapshot is not None:
        crystal = dict(zip(snapshot.materials["material_id"],
                           snapshot.materials["crystal_system"], strict=True))
    rows = []
    for rec in records:
        m = matches[rec.key]
        rows.append({"key": rec.key, "formula": rec.formula, "element": rec.element,
                     "tm": rec.is_transition_metal, "mp_id": rec.mp_id,
                     "snapshot_entry": m.material_id or "—",
                     "entry_crystal_system": crystal.get(m.material_id, "") or "",
                     "simulated_spectrum": m.simulated is not None,
                     "candidates": len(m.candidates), "rule": m.rule})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Hold-out of the validation compounds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holdout:
    """Which materials are kept out of training.

    Attributes:
        applied: Whether anything is held out.
        formulas: The reduced formulas held out (asked for).
        material_ids: Snapshot entries held out (every entry with such a formula).
        n_training: Materials left for training.
        reason: A sentence for the notebook.
    """

    applied: bool
    formulas: tuple[str, ...]
    material_ids: tuple[str, ...]
    n_training: int
    reason: str


def plan_holdout(snapshot: Snapshot, features: FeatureSet, formulas: Sequence[str], *,
                 min_training: int = MIN_TRAINING_MATERIALS) -> Holdout:
    """Hold out every snapshot entry with one of ``formulas`` (all polymorphs).

    Args:
        snapshot: The snapshot.
        features: The inputs the models would be trained on.
        formulas: Reduced formulas of the validation compounds.
        min_training: Hold out only if at least this many materials of ``features`` remain.

    Returns:
        A :class:`Holdout`.
    """
    wanted = tuple(sorted(set(formulas)))
    formula_of = dict(zip(snapshot.materials["material_id"], snapshot.materials["formula"],
                          strict=True))
    held = tuple(m for m in features.material_ids if formula_of.get(m) in wanted)
    remaining = len(features) - len(held)
    if not held:
        return Holdout(False, wanted, (), len(features),
                       "no validation compound is among the training materials")
    if remaining < min_training:
        return Holdout(False, wanted, (), len(features),
                       f"only {remaining} training materials would remain (< {min_training}): "
                       "nothing is held out, so the models saw the validation compounds' "
                       "simulated spectra in training and predictions on them are in-sample")
    return Holdout(True, wanted, held, remaining,
                   f"{len(held)} snapshot entries with the validation formulas are held out "
                   f"of training; {remaining} materials remain")


def training_features(features: FeatureSet, holdout: Holdout) -> FeatureSet:
    """``features`` without the held-out materials."""
    if not holdout.applied:
        return features
    held = set(holdout.material_ids)
    keep = [i for i, m in enumerate(features.material_ids) if m not in held]
    return features.subset(keep)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class ValidationModels:
    """Models of one variant, ready to predict.

    Attributes:
        variant: ``"baseline"`` or ``"e0_aligned"``.
        runs: Task → :class:`~specfusion_lib.properties.runs.TaskRun`.
        predictor: The trained tasks' checkpoints loaded (``None`` if no task was trained).
        aligner: The fitted E0 aligner (``"e0_aligned"`` only).
        checkpoint_dir: Where the checkpoints (and the aligner's templates) are.
    """

    variant: str
    runs: dict[str, TaskRun]
    predictor: Predictor | None
    aligner: E0TemplateAligner | None
    checkpoint_dir: Path

    def prepare(self, spectrum: XANESSpectrum) -> XANESSpectrum | ProcessedXANES:
        """The model input of a raw spectrum for this variant."""
        return spectrum if self.aligner is None else self.aligner.transform(spectrum)

    @property
    def trained_tasks(self) -> list[str]:
        """Tasks with a trained model."""
        return [t for t, r in self.runs.items() if r.available]


def train_validation_models(snapshot: Snapshot, features: FeatureSet, tasks: Sequence[str],
                            profile: Profile | str, checkpoint_dir: str | os.PathLike[str], *,
                            variant: str = "baseline", progress: bool = False,
                            randomisation: DomainRandomisation | None = None, seed: int = 0,
                            **train_kwargs: Any) -> ValidationModels:
    """Train (or resume) one model per task for a variant and load them for prediction.

    Args:
        snapshot: The snapshot.
        features: The training inputs (after :func:`training_features`).
        tasks: Task names.
        profile: Profile or its name.
        checkpoint_dir: Parent folder; the variant's checkpoints go to
            ``checkpoint_dir/<variant>`` (kept apart from notebook 02's checkpoints, which
            are trained on every material).
        variant: One of :data:`VARIANTS`: ``"baseline"`` (the inputs as they are),
            ``"e0_aligned"`` (E0 placed on element templates) or ``"randomised"`` (training
            rows plus domain-randomised copies, :mod:`specfusion_lib.properties.randomised`;
            validation and test rows stay clean).
        progress: Show progress bars.
        randomisation: Ranges of the ``"randomised"`` variant (default
            :class:`~specfusion_lib.spectra.augment.DomainRandomisation`).
        seed: Seed of the randomised copies.
        **train_kwargs: Passed to :func:`~specfusion_lib.properties.runs.run_tasks`.

    Returns:
        A :class:`ValidationModels`.

    Raises:
        ConfigurationError: Unknown variant or task.
    """
    if variant not in VARIANTS:
        raise ConfigurationError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    folder = Path(checkpoint_dir) / variant
    aligner = None
    inputs = features
    if variant == "e0_aligned":
        aligner = E0TemplateAligner().fit(snapshot, features)
        inputs = aligner.transform_features(snapshot, features)
        aligner.save(folder / _ALIGNER_FILE)
    elif variant == "randomised":
        from specfusion_lib.properties.randomised import Randomiser

        train_kwargs["augment"] = Randomiser(snapshot, randomisation, seed)
    logger.info("measured validation, %s variant: training %d task(s) into %s", variant,
                len(tasks), folder)
    runs = run_tasks(snapshot, tasks, profile, features=inputs, checkpoint_dir=folder,
                     progress=progress, **train_kwargs)
    trained = [t for t, r in runs.items() if r.available]
    for task, run in runs.items():
        if not run.available:
            logger.warning("measured validation, %s variant: task %s not trained: %s",
                           variant, task, run.reason)
    predictor = Predictor.from_dir(folder, trained) if trained else None
    return ValidationModels(variant, runs, predictor, aligner, folder)


# --------------------------------------------------------------------------------------------
# Predictions and references
# --------------------------------------------------------------------------------------------


_PRED_COLUMNS = ["variant", "key", "formula", "element", "material_id", "input", "task",
                 "kind", "prediction", "probability", "unit", "status"]


def predict_records(models: ValidationModels, records: Sequence[MeasuredRecord],
                    matches: Mapping[str, SnapshotMatch], *,
                    inputs: Sequence[str] = ("measured", "simulated")) -> pd.DataFrame:
    """Predict every task for each measured TM record, from its measured and simulated spectra.

    A record whose compound is not in the snapshot, whose spectrum cannot be preprocessed, or
    whose elements no model saw gets one row with ``task`` "" and the reason in ``status``.

    Args:
        models: The variant's models (their :meth:`ValidationModels.prepare` is applied).
        records: Measured records (non-TM absorbers are skipped: not model inputs).
        matches: From :func:`match_measured`.
        inputs: ``"measured"`` and/or ``"simulated"``.

    Returns:
        Long table with columns ``variant``, ``key``, ``formula``, ``element``,
        ``material_id``, ``input``, ``task``, ``kind``, ``prediction``, ``probability``,
        ``unit``, ``status`` (``"ok"`` or the reason).
    """
    rows: list[dict[str, Any]] = []
    for rec in records:
        if not rec.is_transition_metal:
            continue
        match = matches[rec.key]
        base = {"variant": models.variant, "key": rec.key, "formula": rec.formula,
                "element": rec.element, "material_id": match.material_id or ""}
        for kind in inputs:
            spectrum = rec.spectrum if kind == "measured" else match.simulated
            reason = ("no matching snapshot compound" if not match.matched
                      else "no trained model" if models.predictor is None
                      else "no simulated spectrum in the snapshot" if spectrum is None else "")
            if not reason:
                try:
                    table = models.predictor.predict({rec.element: models.prepare(spectrum)},
                                                     match.elements)
                except SpecfusionError as exc:
                    reason = str(exc)
            if reason:
                rows.append({**base, "input": kind, "task": "", "kind": "", "prediction": None,
                             "probability": math.nan, "unit": "", "status": reason})
                continue
            for t in table.itertuples(index=False):
                if t.element and t.element != rec.element:
                    continue
                rows.append({**base, "input": kind, "task": t.task, "kind": t.kind,
                             "prediction": t.prediction, "probability": t.probability,
                             "unit": t.unit, "status": "ok"})
    return pd.DataFrame(rows, columns=_PRED_COLUMNS)


def _class_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def reference_labels(snapshot: Snapshot, material_id: str, element: str) -> dict[str, Any]:
    """Reference value of every task of :data:`FEATURE_TASKS` for one compound and TM.

    Material-level labels come from the snapshot's materials table (classification labels as
    the tasks' class names); oxidation state and coordination number are the
    multiplicity-weighted mode over the element's sites in the ``sites`` column, as the
    models' labels are (:mod:`specfusion_lib.properties.features`). Absent labels are ``None``.
    """
    materials = snapshot.materials
    row = materials.loc[materials["material_id"] == material_id]
    if row.empty:
        raise ConfigurationError(f"material {material_id!r} is not in the snapshot")
    out: dict[str, Any] = {}
    for name, spec in FEATURE_TASKS.items():
        if spec.level == "element":
            continue
        value = (TASKS[name].labels(row).iloc[0] if name in TASKS
                 else row.iloc[0][spec.source_field])
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        out[name] = None if missing else value
    raw = row.iloc[0]["sites"]
    sites = json.loads(raw) if isinstance(raw, str) else (raw or [])
    for key in ("oxidation_state", "coordination_number"):
        vals = [(float(s[key]), float(s.get("multiplicity") or 1)) for s in sites
                if s.get("element") == element and s.get(key) is not None]
        out[key] = (_class_name(weighted_mode([v for v, _ in vals], [w for _, w in vals]))
                    if vals else None)
    return out


def label_sources(snapshot: Snapshot) -> dict[str, str]:
    """Where the reference value of each task comes from (the snapshot's manifest)."""
    sources = dict(snapshot.manifest.get("label_sources") or {})
    out = {}
    for name, spec in FEATURE_TASKS.items():
        if spec.level == "element":
            out[name] = sources.get(name, _STRUCTURE_SOURCES[name])
        elif name == "has_band_gap":
            out[name] = "band_gap > 0; band_gap: " + sources.get("band_gap", "not stated")
        else:
            out[name] = sources.get(spec.source_field, "not stated in the manifest")
    return out


def compare_with_references(predictions: pd.DataFrame, snapshot: Snapshot,
                            records: Sequence[MeasuredRecord]) -> pd.DataFrame:
    """Add the reference value, its source, the absolute error and correctness.

    Returns:
        ``predictions`` (rows with ``status`` "ok") plus ``reference``, ``source``,
        ``abs_error`` (regression), ``correct`` (classification; NaN without reference) and,
        for coordination number, ``file_cn`` (the CN label of ``experiment.csv``).
    """
    ok = predictions.loc[predictions["status"] == "ok"].copy()
    sources = label_sources(snapshot)
    file_cn = {r.key: r.coordination_number for r in records}
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    refs, errs, correct, srcs, cns = [], [], [], [], []
    for row in ok.itertuples(index=False):
        k = (row.material_id, row.element)
        if k not in cache:
            cache[k] = reference_labels(snapshot, row.material_id, row.element)
        ref = cache[k].get(row.task)
        refs.append(ref)
        srcs.append(sources.get(row.task, ""))
        cn = file_cn.get(row.key)
        cns.append(str(cn) if row.task == "coordination_number" and cn is not None else "")
        if ref is None:
            errs.append(math.nan)
            correct.append(math.nan)
        elif row.kind == "regression":
            errs.append(abs(float(row.prediction) - float(ref)))
            correct.append(math.nan)
        else:
            errs.append(math.nan)
            correct.append(float(str(row.prediction) == str(ref)))
    return ok.assign(reference=refs, source=srcs, abs_error=errs, correct=correct,
                     file_cn=cns).reset_index(drop=True)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def table1_analogue(compared: pd.DataFrame, predictions: pd.DataFrame, *,
                    variant: str = "baseline", input_kind: str = "measured") -> pd.DataFrame:
    """Table 1 layout: one row per measured record, errors and ✓/✗ per property.

    Args:
        compared: From :func:`compare_with_references`.
        predictions: From :func:`predict_records` (for records that could not be predicted).
        variant: Model variant to show.
        input_kind: ``"measured"`` (Table 1) or ``"simulated"`` (the same compounds from their
            simulated spectra).

    Returns:
        Columns ``compound``, ``key``, ``snapshot entry``, ``E_f |err|``, ``E_fermi |err|``,
        ``E_g |err|``, ``density |err|`` (absolute errors; "—" without reference),
        ``E_g pred / ref``, ``oxidation state pred / ref``, ``CN pred / ref / file``,
        ``valence & CN`` (✓ both right, ✗ otherwise), ``crystal system pred / ref`` and
        ``crystal system`` (✓/✗), ``band gap class``, ``magnetic`` (✓/✗), ``status``.
    """
    sub = compared.loc[(compared["variant"] == variant) & (compared["input"] == input_kind)]
    pred = predictions.loc[(predictions["variant"] == variant)
                           & (predictions["input"] == input_kind)]
    rows = []
    for key, group in pred.groupby("key", sort=False):
        first = group.iloc[0]
        base = {"compound": first["formula"], "key": key,
                "snapshot entry": first["material_id"] or "—"}
        if (group["status"] != "ok").all():
            rows.append({**base, "status": str(group["status"].iloc[0])})
            continue
        by_task = {r.task: r for r in sub.loc[sub["key"] == key].itertuples(index=False)}
        row = {**base, **_table1_cells(by_task), "status": "ok"}
        rows.append(row)
    columns = ["compound", "key", "snapshot entry", *[f"{c} |err|" for c in
               _TABLE1_REGRESSION.values()], "E_g pred / ref", "oxidation state pred / ref",
               "CN pred / ref / file", "valence & CN", "crystal system pred / ref",
               "crystal system", "band gap class", "magnetic", "status"]
    return pd.DataFrame(rows, columns=columns).fillna("—")


def _table1_cells(by_task: Mapping[str, Any]) -> dict[str, str]:
    """The Table 1 cells of one record from its compared rows (task → row)."""

    def get(task: str, attr: str) -> Any:
        r = by_task.get(task)
        return None if r is None else getattr(r, attr)

    def mark(task: str) -> str:
        c = get(task, "correct")
        return "—" if c is None or (isinstance(c, float) and math.isnan(c)) else (
            "✓" if c else "✗")

    row: dict[str, str] = {}
    for task, col in _TABLE1_REGRESSION.items():
        row[f"{col} |err|"] = _fmt(get(task, "abs_error"))
    row["E_g pred / ref"] = f"{_fmt(get('band_gap', 'prediction'))} / " \
                            f"{_fmt(get('band_gap', 'reference'))}"
    row["oxidation state pred / ref"] = f"{_fmt(get('oxidation_state', 'prediction'))} / " \
                                        f"{_fmt(get('oxidation_state', 'reference'))}"
    row["CN pred / ref / file"] = (f"{_fmt(get('coordination_number', 'prediction'))} / "
                                   f"{_fmt(get('coordination_number', 'reference'))} / "
                                   f"{get('coordination_number', 'file_cn') or '—'}")
    os_c, cn_c = get("oxidation_state", "correct"), get("coordination_number", "correct")
    known = [c for c in (os_c, cn_c) if c is not None and not math.isnan(c)]
    row["valence & CN"] = "—" if len(known) < 2 else "✓" if all(known) else "✗"
    row["crystal system pred / ref"] = (f"{_fmt(get('crystal_system', 'prediction'))} / "
                                        f"{_fmt(get('crystal_system', 'reference'))}")
    row["crystal system"] = mark("crystal_system")
    row["band gap class"] = mark("has_band_gap")
    row["magnetic"] = mark("is_magnetic")
    return row


def gap_table(compared: pd.DataFrame) -> pd.DataFrame:
    """Metrics on simulated vs measured spectra of the same compounds, per variant and task.

    Only records with both a measured and a simulated prediction and a reference count.
    Classification: accuracy; regression: MAE. ``gap`` = measured − simulated (negative
    accuracy gap / positive MAE gap = worse on measured spectra). ``agreement``: fraction of
    records whose measured and simulated predictions are the same class, or the mean absolute
    difference of the two regression predictions. A ``valence_and_cn`` row counts records
    with both oxidation state and CN right.

    Returns:
        Columns ``variant``, ``task``, ``metric``, ``n``, ``simulated``, ``measured``, ``gap``,
        ``agreement``.
    """
    rows = []
    frame = compared.copy()
    if frame.empty:
        return pd.DataFrame(columns=["variant", "task", "metric", "n", "simulated",
                                     "measured", "gap", "agreement"])
    joint = (frame.loc[frame["task"].isin(["oxidation_state", "coordination_number"])]
             .groupby(["variant", "key", "input"], as_index=False)
             .agg(correct=("correct", lambda c: float(c.min()) if c.notna().all()
                           and len(c) == 2 else math.nan),
                  prediction=("prediction", lambda p: "/".join(map(str, p))))
             .assign(task="valence_and_cn", kind="classification", abs_error=math.nan,
                     reference=""))
    frame = pd.concat([frame, joint], ignore_index=True)
    for (variant, task), group in frame.groupby(["variant", "task"], sort=False):
        kind = group["kind"].iloc[0]
        value = "abs_error" if kind == "regression" else "correct"
        wide = group.pivot_table(index="key", columns="input", values=value, aggfunc="first")
        preds = group.pivot_table(index="key", columns="input", values="prediction",
                                  aggfunc="first")
        if not {"measured", "simulated"} <= set(wide.columns):
            continue
        both = wide.dropna(subset=["measured", "simulated"])
        if both.empty:
            continue
        p = preds.loc[both.index]
        if kind == "regression":
            agree = float(np.mean(np.abs(p["measured"].astype(float)
                                         - p["simulated"].astype(float))))
        else:
            agree = float(np.mean(p["measured"].astype(str) == p["simulated"].astype(str)))
        sim, meas = float(both["simulated"].mean()), float(both["measured"].mean())
        rows.append({"variant": variant, "task": task,
                     "metric": "mae" if kind == "regression" else "accuracy",
                     "n": len(both), "simulated": sim, "measured": meas, "gap": meas - sim,
                     "agreement": agree})
    return pd.DataFrame(rows, columns=["variant", "task", "metric", "n", "simulated",
                                       "measured", "gap", "agreement"])


def prediction_inputs(records: Sequence[MeasuredRecord],
                      matches: Mapping[str, SnapshotMatch]) -> list[tuple[MeasuredRecord,
                                                                           SnapshotMatch]]:
    """The (record, match) pairs with a TM absorber and a simulated spectrum (the gap set)."""
    return [(r, matches[r.key]) for r in records
            if r.is_transition_metal and matches[r.key].simulated is not None]



# --------------------------------------------------------------------------------------------
# The whole study (notebook 11)
# --------------------------------------------------------------------------------------------


#: Tasks retrained for the remedy variant (oxidation state, CN and the band gap; the other
#: tasks are compared on the baseline only, to keep the quick profile short).
REMEDY_TASKS: tuple[str, ...] = ("oxidation_state", "coordination_number", "band_gap")
#: Tasks of the domain-randomised variant (its training set is 1 + copies times larger).
RANDOMISED_TASKS: tuple[str, ...] = ("oxidation_state", "coordination_number")
#: Phases of notebook 12's composites; held out with the measured compounds so that both
#: notebooks share one set of models.
MIXTURE_FORMULAS: tuple[str, ...] = ("Cu2O", "TiO2")


@dataclass
class MeasuredValidation:
    """Everything notebook 11 shows, computed by :func:`run_measured_validation`.

    Attributes:
        records: The measured records.
        matches: Record key → :class:`SnapshotMatch`.
        holdout: The hold-out plan.
        models: Variant → :class:`ValidationModels`.
        agreements: Record key → spectral agreement (pairs with a simulated spectrum).
        predictions: Long prediction table of every variant (:func:`predict_records`).
        compared: ``predictions`` with references (:func:`compare_with_references`).
    """

    records: list[MeasuredRecord]
    matches: dict[str, SnapshotMatch]
    holdout: Holdout
    models: dict[str, ValidationModels]
    agreements: dict[str, Any]
    predictions: pd.DataFrame
    compared: pd.DataFrame

    @property
    def labels(self) -> dict[str, str]:
        """Record key → display label."""
        return {r.key: r.label for r in self.records}


def validation_features(snapshot: Snapshot, records: Sequence[MeasuredRecord],
                        matches: Mapping[str, SnapshotMatch], features: FeatureSet, *,
                        extra_formulas: Sequence[str] = MIXTURE_FORMULAS,
                        min_training: int = MIN_TRAINING_MATERIALS
                        ) -> tuple[FeatureSet, Holdout]:
    """Training inputs without the validation compounds, and the plan that says so.

    The held-out formulas are those of every matched measured TM record plus
    ``extra_formulas``; notebooks 11 and 12 call this with the same arguments, so they train
    (or resume) the same models.
    """
    formulas = [m.formula for r in records if r.is_transition_metal
                for m in [matches[r.key]] if m.matched]
    holdout = plan_holdout(snapshot, features, [*formulas, *extra_formulas],
                           min_training=min_training)
    return training_features(features, holdout), holdout


def run_measured_validation(snapshot: Snapshot, records: Sequence[MeasuredRecord],
                            features: FeatureSet, profile: Profile | str,
                            checkpoint_dir: str | os.PathLike[str], *,
                            tasks: Sequence[str] = MEASURED_TASKS,
                            remedy_tasks: Sequence[str] = REMEDY_TASKS,
                            variants: Sequence[str] = VARIANTS,
                            progress: bool = False) -> MeasuredValidation:
    """Match, hold out, train the variants, compare spectra and predict (notebook 11).

    Args:
        snapshot: The snapshot.
        records: Measured records (:func:`~specfusion_lib.data.measured.read_measured_xanes`).
        features: Inputs of every material
            (:func:`~specfusion_lib.properties.features.build_features`).
        profile: Profile or its name.
        checkpoint_dir: Parent folder of the variants' checkpoints.
        tasks: Tasks of the baseline models.
        remedy_tasks: Tasks of the ``"e0_aligned"`` variant (the ``"randomised"`` one trains
            :data:`RANDOMISED_TASKS`).
        variants: Variants to train (:data:`VARIANTS`; ``"baseline"`` always).
        progress: Show progress bars.

    Returns:
        A :class:`MeasuredValidation`.
    """
    from specfusion_lib.measured.domain_shift import spectral_agreement

    t0 = time.perf_counter()
    records = list(records)
    logger.info("measured validation: %d record(s), %s profile", len(records),
                profile if isinstance(profile, str) else profile.name)
    matches = match_measured(records, snapshot)
    train, holdout = validation_features(snapshot, records, matches, features)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ConfigurationError(f"unknown variant(s) {unknown}; choose from {VARIANTS}")
    models = {"baseline": train_validation_models(snapshot, train, tasks, profile,
                                                  checkpoint_dir, variant="baseline",
                                                  progress=progress)}
    for variant in variants:
        if variant != "baseline":
            chosen = RANDOMISED_TASKS if variant == "randomised" else remedy_tasks
            models[variant] = train_validation_models(snapshot, train, chosen, profile,
                                                      checkpoint_dir, variant=variant,
                                                      progress=progress)
    aligner = models["e0_aligned"].aligner if "e0_aligned" in models else None
    agreements = {}
    for rec, match in prediction_inputs(records, matches):
        try:
            agreements[rec.key] = spectral_agreement(rec.spectrum, match.simulated,
                                                     aligner=aligner)
        except SpecfusionError as exc:
            logger.warning("measured record %s: no spectral agreement (%s)", rec.key, exc)
            continue  # a spectrum the preprocessing refuses has no agreement to report
    predictions = pd.concat([predict_records(m, records, matches) for m in models.values()],
                            ignore_index=True)
    compared = compare_with_references(predictions, snapshot, records)
    logger.info("measured validation done: %d prediction row(s) (%.1f s)", len(predictions),
                time.perf_counter() - t0)
    return MeasuredValidation(records, matches, holdout, models, agreements, predictions,
                              compared)


def structural_summary(compared: pd.DataFrame, *, variant: str = "baseline",
                       input_kind: str = "measured") -> dict[str, Any]:
    """Oxidation state, CN and both together: correct / evaluated records.

    Returns:
        ``{"oxidation_state": (k, n), "coordination_number": (k, n),
        "valence_and_cn": (k, n), "text": "..."}``.
    """
    sub = compared.loc[(compared["variant"] == variant) & (compared["input"] == input_kind)
                       & compared["task"].isin(["oxidation_state", "coordination_number"])
                       & compared["correct"].notna()]
    out: dict[str, Any] = {}
    for task in ("oxidation_state", "coordination_number"):
        t = sub.loc[sub["task"] == task]
        out[task] = (int(t["correct"].sum()), len(t))
    both = sub.groupby("key")["correct"].agg(["min", "count"])
    both = both.loc[both["count"] == 2]
    out["valence_and_cn"] = (int(both["min"].sum()), len(both))
    k, n = out["valence_and_cn"]
    paper_k, paper_n = paper.TABLE1_VALENCE_AND_CN_CONSISTENT
    out["text"] = (f"{variant} models, {input_kind} spectra: oxidation state right for "
                   f"{out['oxidation_state'][0]}/{out['oxidation_state'][1]}, CN for "
                   f"{out['coordination_number'][0]}/{out['coordination_number'][1]}, both for "
                   f"{k}/{n} compounds (paper, Table 1: {paper_k}/{paper_n})")
    return out


def pxrd_crystal_system(snapshot: Snapshot, matches: Mapping[str, SnapshotMatch],
                        checkpoint_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Crystal system from a trained PXRD model, on patterns simulated from matched structures.

    No measured powder pattern comes with ``experiment.csv``; the pattern of each matched
    snapshot structure is simulated (:func:`~specfusion_lib.spectra.pxrd.simulate_pattern`)
    and classified by the PXRD CNN-Transformer checkpoints in ``checkpoint_dir`` (notebook 07
    writes them; :class:`specfusion_lib.crystal_system.training.CrystalSystemPredictor`). That model
    was trained on the snapshot's structures without hold-out, so each row says whether the
    compound was in its training part: this checks the PXRD branch on these compounds'
    *simulated* patterns, partly in-sample, not on measurements. (Training a held-out PXRD
    model here would cost as much as notebook 07.)

    Returns:
        One row per matched entry: ``material_id``, ``formula``, ``predicted``,
        ``probability``, ``reference`` (spglib label), ``correct``, ``in_training``,
        ``model_snapshot`` (whether the model was trained on this snapshot), ``input``,
        ``status``; or one row whose ``status`` says why nothing was predicted.
    """
    from specfusion_lib.core.errors import InputFileError
    from specfusion_lib.crystal_system import training as cs
    from specfusion_lib.spectra.pxrd import simulate_pattern

    ids = sorted({m.material_id for m in matches.values() if m.matched})
    if not ids:
        return pd.DataFrame([{"status": "no measured compound matches a snapshot entry"}])
    try:
        predictor = cs.CrystalSystemPredictor.load(checkpoint_dir)
    except InputFileError as exc:
        return pd.DataFrame([{"status": f"not available: {exc}"}])
    trained_on = {str(m.get("snapshot", {}).get("id")) for m in predictor.metadata}
    seen = {mid for m in predictor.metadata for mid in m.get("split", {}).get("train", [])}
    same = getattr(snapshot, "snapshot_id", None) in trained_on
    patterns = [simulate_pattern(snapshot.structure(m), predictor.grid,
                                 wavelength=predictor.wavelength) for m in ids]
    probs = predictor.predict_proba(patterns)
    materials = snapshot.materials.set_index("material_id")
    rows = []
    for i, mid in enumerate(ids):
        best = str(probs.iloc[i].idxmax())
        ref = materials.at[mid, "crystal_system"]
        rows.append({"material_id": mid, "formula": materials.at[mid, "formula"],
                     "predicted": best, "probability": float(probs.iloc[i].max()),
                     "reference": ref, "correct": best == ref,
                     "in_training": (mid in seen) if same else None,
                     "model_snapshot": "this snapshot" if same else "another snapshot",
                     "input": "PXRD simulated from the snapshot structure (no measured "
                              "pattern available)", "status": "ok"})
    return pd.DataFrame(rows)


def overlays(study: MeasuredValidation) -> list[Any]:
    """Overlay data of every (measured, simulated) pair with an agreement (Fig. S26–S31)."""
    from specfusion_lib.measured.domain_shift import overlay

    out = []
    for rec, match in prediction_inputs(study.records, study.matches):
        agreement = study.agreements.get(rec.key)
        if agreement is None:
            continue
        out.append(overlay(f"{rec.label} vs {match.material_id}", rec.spectrum,
                           match.simulated, agreement))
    return out


def agreement_frame(study: MeasuredValidation) -> pd.DataFrame:
    """The spectral agreements with formula, element and snapshot entry (one row per pair)."""
    from specfusion_lib.measured.domain_shift import agreement_table

    table = agreement_table(study.agreements)
    info = {r.key: (r.formula, r.element, r.collection) for r in study.records}
    return table.assign(
        formula=[info[k][0] for k in table["key"]], element=[info[k][1] for k in table["key"]],
        collection=[info[k][2] for k in table["key"]],
        snapshot_entry=[study.matches[k].material_id for k in table["key"]])
