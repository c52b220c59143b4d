"""One compound from its spectra to a structure, with every step kept (Fig. S22–S25).

Notebook 10 walks through Ca2MnAlO5 (SI Fig. S22–S24) and DyCrO3, CuInS2 and ZnCu2SnS4
(SI Fig. S25). For each compound the inputs are what an experiment would give: the K-edge
XANES of its transition metals (the snapshot's simulated spectra stand in for measured ones)
and its powder pattern (simulated from the snapshot's structure). The predictions come from
the trained models:

* TM oxidation states and CNs, and any other property with a checkpoint, from
  :class:`~specfusion_lib.properties.predict.Predictor` (notebooks 02 and 04). When the
  predictor refuses the compound (an element its models never saw) the search runs without
  those predictions (common oxidation states, no CN constraint) and the note says so.
* Crystal-system probabilities from the PXRD classifier
  (:class:`~specfusion_lib.crystal_system.training.CrystalSystemPredictor`, notebook 07).

:func:`choose_compound` finds a named compound in the snapshot; when it is missing, or its TM
spectra are, it says so and picks another compound of the snapshot that has them (never a
made-up input).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import SpecfusionError
from specfusion_lib.inference.benchmark import snapshot_xanes, true_site_labels
from specfusion_lib.inference.search import (
    SearchResult,
    SearchSettings,
    infer_structure,
    state_probabilities,
)
from specfusion_lib.inference.templates import TemplateDatabase
from specfusion_lib.spectra.pxrd import PXRDPattern, simulate_pattern
from specfusion_lib.spectra.xanes import XANESSpectrum

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = ["CompoundChoice", "CompoundInference", "choose_compound", "examples_row",
           "infer_compound", "panel_entry", "predicted_inputs", "walkthrough_figures",
           "walkthrough_tables"]


@dataclass(frozen=True)
class CompoundChoice:
    """Which snapshot material stands for a requested compound.

    Attributes:
        requested: The formula asked for.
        material_id: The material used (None when the snapshot has no usable one).
        formula: Its reduced formula.
        note: What was done and why ("" when the requested compound is used).
    """

    requested: str
    material_id: str | None
    formula: str
    note: str = ""


def _usable(snapshot: Snapshot, material_id: str, elements: Sequence[str]) -> bool:
    tms = [el for el in elements if el in TRANSITION_METALS]
    return bool(tms) and set(tms) <= set(snapshot_xanes(snapshot, material_id, tms))


def choose_compound(snapshot: Snapshot, formula: str, *, exclude: Sequence[str] = (),
                    fallback: bool = True) -> CompoundChoice:
    """The snapshot material of ``formula`` whose TMs all have a spectrum, or a stand-in.

    Stand-in (with ``fallback``): among the materials not in ``exclude`` whose every TM has a
    spectrum, the one with the most elements (ties: material id order).

    Args:
        snapshot: A loaded snapshot.
        formula: Reduced formula (``"Ca2MnAlO5"``; the spelling is normalised by pymatgen).
        exclude: Material ids not to use (already shown).
        fallback: Pick a stand-in when the compound is unusable.
    """
    from pymatgen.core import Composition

    target = Composition(formula).reduced_formula
    m = snapshot.materials
    same = m[(m["formula"] == target) & ~m["material_id"].isin(exclude)]
    for row in same.sort_values("material_id").itertuples():
        if _usable(snapshot, row.material_id, row.elements):
            return CompoundChoice(formula, row.material_id, row.formula)
    why = ("is not in this snapshot" if same.empty else
           "is in this snapshot but without K-edge XANES of all its transition metals")
    if not fallback:
        return CompoundChoice(formula, None, "", f"{formula} {why}")
    pool = m[~m["material_id"].isin(exclude)].sort_values(
        ["nelements", "material_id"], ascending=[False, True])
    for row in pool.itertuples():
        if _usable(snapshot, row.material_id, row.elements):
            return CompoundChoice(formula, row.material_id, row.formula,
                                  f"{formula} {why}; shown instead: {row.formula} "
                                  f"({row.material_id}), the compound of the snapshot with "
                                  "the most elements that has XANES of all its TMs")
    return CompoundChoice(formula, None, "", f"{formula} {why}, and no other compound of the "
                                             "snapshot has XANES of all its TMs")


def predicted_inputs(
    snapshot: Snapshot, material_id: str, predictor: Any, crystal_predictor: Any,
    pattern: PXRDPattern, spectra: Mapping[str, XANESSpectrum],
) -> tuple[dict[str, int], dict[str, int], dict[str, float], pd.DataFrame, list[str],
           dict[str, dict[int, float]]]:
    """The search inputs predicted from a compound's spectra, and its property table.

    Returns:
        ``(oxidation_states, coordination_numbers, crystal_system_probabilities,
        properties, notes, oxidation_state_probabilities)``; ``properties`` has
        ``property``, ``element``, ``predicted``, ``reference`` (the snapshot's label; true
        per-TM labels for element tasks); the last maps each TM to the oxidation-state
        model's {state: probability}, which the search weighs instead of the argmax.
    """
    row = snapshot.materials.set_index("material_id").loc[material_id]
    elements = list(row["elements"])
    notes: list[str] = []
    ox: dict[str, int] = {}
    ox_probs: dict[str, dict[int, float]] = {}
    cn: dict[str, int] = {}
    props = pd.DataFrame(columns=["property", "element", "predicted", "reference"])
    true_ox, true_cn = true_site_labels(snapshot.sites(material_id))
    if predictor is None:
        notes.append("no XANES models: oxidation states from the common states, CN free")
    else:
        try:
            table = predictor.predict(spectra, elements)
        except SpecfusionError as exc:
            notes.append(f"XANES models refused the compound ({exc}); oxidation states from "
                         "the common states, CN free")
        else:
            rows = []
            for r in table.itertuples():
                value = r.prediction
                if r.task == "oxidation_state":
                    ox[r.element] = int(round(float(value)))
                    if states := state_probabilities(r.probabilities):
                        ox_probs[r.element] = states
                    reference: Any = true_ox.get(r.element, "—")
                elif r.task == "coordination_number":
                    cn[r.element] = int(round(float(value)))
                    reference = true_cn.get(r.element, "—")
                else:
                    reference = row[r.task] if r.task in row.index else "—"
                name = "crystal_system (XANES model)" if r.task == "crystal_system" else r.task
                rows.append({"property": name, "element": r.element,
                             "predicted": _fmt(value), "reference": _fmt(reference)})
            props = pd.DataFrame(rows, columns=props.columns)
    probs = (crystal_predictor.predict_patterns(pattern)
             if hasattr(crystal_predictor, "predict_patterns")
             else crystal_predictor.predict_proba(pattern)).iloc[0].to_dict()
    system = max(probs, key=probs.get)
    props = pd.concat([props, pd.DataFrame([{
        "property": "crystal_system (PXRD model)", "element": "", "predicted": system,
        "reference": row["crystal_system"]}])], ignore_index=True)
    return ox, cn, {k: float(v) for k, v in probs.items()}, props, notes, ox_probs


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.3g}"
    return str(value)


@dataclass(eq=False)
class CompoundInference:
    """Everything notebook 10 shows for one compound.

    Attributes:
        choice: Which material was used.
        formula: Its formula.
        crystal_system: Its true crystal system.
        pxrd: The input pattern.
        xanes: Element → input spectrum.
        properties: Predicted vs reference properties.
        notes: What was run and data caveats.
        result: The search result (None when the search failed; see ``notes``).
        template_note: Whether the compound's own entry was in the template database.
    """

    choice: CompoundChoice
    formula: str
    crystal_system: str
    pxrd: PXRDPattern
    xanes: dict[str, XANESSpectrum]
    properties: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    result: SearchResult | None = None
    template_note: str = ""

    @property
    def found(self) -> bool:
        """Whether the top answer has the compound's formula and crystal system."""
        top = None if self.result is None else self.result.top
        return bool(top is not None and top["formula"] == self.formula
                    and top["crystal_system"] == self.crystal_system)


def infer_compound(
    snapshot: Snapshot, choice: CompoundChoice, database: TemplateDatabase, predictor: Any,
    crystal_predictor: Any, *, settings: SearchSettings | None = None,
    remove_target: bool = False, relaxer: Any = None, xanes_simulator: Any = None,
) -> CompoundInference:
    """Predict the inputs of a chosen compound and run the search.

    Args:
        snapshot: The snapshot.
        choice: From :func:`choose_compound` (``material_id`` must be set).
        database: Template database.
        predictor: A :class:`~specfusion_lib.properties.predict.Predictor` (or None).
        crystal_predictor: A
            :class:`~specfusion_lib.crystal_system.training.CrystalSystemPredictor` or a
            :class:`~specfusion_lib.crystal_system.peak_classifier.PeakIndexingClassifier`.
        settings: Search settings.
        remove_target: Remove the compound's own entry (and its formula + system twins) from
            the templates, as in the benchmark of notebook 09.
        relaxer: Passed to :func:`~specfusion_lib.inference.search.infer_structure`.
        xanes_simulator: Passed to :func:`~specfusion_lib.inference.search.infer_structure`.
    """
    if choice.material_id is None:
        raise SpecfusionError(f"no material to infer: {choice.note}")
    mid = choice.material_id
    row = snapshot.materials.set_index("material_id").loc[mid]
    elements = list(row["elements"])
    pattern = simulate_pattern(snapshot.structure(mid))
    spectra = snapshot_xanes(snapshot, mid, [el for el in elements if el in TRANSITION_METALS])
    ox, cn, probs, props, notes, ox_probs = predicted_inputs(
        snapshot, mid, predictor, crystal_predictor, pattern, spectra)
    if choice.note:
        notes.insert(0, choice.note)
    db = database.without_target(mid) if remove_target else database
    template_note = ("the compound's own entry was removed from the template database"
                     if remove_target else
                     "the compound's own entry is in the template database (as for a known "
                     "compound in a real search); notebook 09 removes it")
    out = CompoundInference(choice, row["formula"], row["crystal_system"], pattern, spectra,
                            props, notes, None, template_note)
    try:
        out.result = infer_structure(elements, ox, cn, probs, db, pxrd=pattern, xanes=spectra,
                                     settings=settings, relaxer=relaxer,
                                     xanes_simulator=xanes_simulator,
                                     oxidation_state_probabilities=ox_probs)
    except SpecfusionError as exc:
        out.notes.append(f"search failed: {type(exc).__name__}: {exc}")
    return out


def panel_entry(inference: CompoundInference, name: str) -> dict[str, Any]:
    """The mapping :func:`~specfusion_lib.plotting.inference.plot_compound_panels` draws."""
    entry: dict[str, Any] = {"name": name, "pxrd": inference.pxrd,
                             "properties": inference.properties}
    element = next(iter(inference.xanes), None)
    entry["xanes"] = inference.xanes.get(element) if element else None
    result = inference.result
    top = None if result is None else result.top
    if top is None:
        entry["summary"] = [*inference.notes, "no candidate structure"]
        return entry
    cid = top["candidate_id"]
    entry["candidate_pxrd"] = result.patterns.get(cid)
    entry["candidate_xanes"] = result.spectra.get((cid, element)) if element else None
    r = top["r_pxrd"]
    sim = top["xanes_similarity"]
    entry["summary"] = [
        f"inferred: {top['formula']} ({top['crystal_system']})",
        f"template: {top['template_formula']} ({top['template_id']}), {top['level']}",
        f"R_PXRD = {r:.3f}" if isinstance(r, float) and math.isfinite(r) else "R_PXRD: —",
        f"XANES similarity = {sim:.3f}" if isinstance(sim, float) and math.isfinite(sim)
        else "XANES similarity: not simulated",
        f"stage: {top['stage']}",
        f"true: {inference.formula} ({inference.crystal_system}) -> "
        f"{'found' if inference.found else 'not found'}",
        *inference.notes,
    ]
    return entry


def walkthrough_tables(inference: CompoundInference) -> dict[str, pd.DataFrame]:
    """The tables of Fig. S22: ``formulas``, ``templates`` and ``candidates`` (ranking joined
    with the validation columns); one-row tables with a ``note`` when the search failed."""
    result = inference.result
    if result is None:
        note = pd.DataFrame([{"note": "; ".join(inference.notes) or "search not run"}])
        return {"formulas": note, "templates": note, "candidates": note}
    templates = result.retrieval.table.assign(mapping=[
        " ".join(f"{k}<-{v}" for k, v in m.items()) for m in result.retrieval.table["mapping"]])
    extra = result.validation.drop(columns=["formula", "template_formula", "crystal_system",
                                            "r_pxrd", "xanes_similarity", "validation_score"],
                                   errors="ignore")
    candidates = result.ranking.merge(extra, how="left", on="candidate_id")
    return {"formulas": result.enumeration.table.drop(columns=["assignment_ids"]),
            "templates": templates, "candidates": candidates}


def walkthrough_figures(inference: CompoundInference, *, feff_ran: bool) -> dict[str, Any]:
    """Fig. S22 (``workflow``), S23 (``pxrd``) and S24 (``xanes``) of one compound."""
    from specfusion_lib.plotting import inference as pi

    result = inference.result
    formula = inference.formula
    element = next(iter(inference.xanes), None)
    target_xanes = inference.xanes.get(element) if element else None
    if result is None:
        why = "; ".join(inference.notes) or "search not run"
        return {
            "workflow": pi.plot_compound_panels([{"name": formula, "message": why}],
                                                f"Fig. S22 · {formula}"),
            "pxrd": pi.plot_pxrd_comparison(inference.pxrd, {}, title=f"Fig. S23 · {formula}"
                                            f" (no candidates: {why})"[:120]),
            "xanes": pi.plot_xanes_comparison(target_xanes, {}, message=why,
                                              title=f"Fig. S24 · {formula}"),
        }
    validated = result.validation
    labels = {r.candidate_id: f"{r.formula} ({r.candidate_id}, from {r.template_formula})"
              for r in validated.itertuples()}
    stages = (f"{len(validated)} candidates validated (CHGNet"
              + (" + FEFF10)" if feff_ran else "; FEFF10 not run in this profile)"))
    return {
        "workflow": pi.plot_inference_workflow(
            result, f"Fig. S22 · structure inference of {formula}", true_formula=formula,
            true_system=inference.crystal_system,
            notes=[stages, inference.template_note, *inference.notes]),
        "pxrd": pi.plot_pxrd_comparison(
            inference.pxrd, {labels[c]: result.patterns[c] for c in labels},
            {labels[c]: v for c, v in zip(validated["candidate_id"], validated["r_pxrd"],
                                          strict=True)},
            title=f"Fig. S23 · PXRD: {formula} (input) and the relaxed candidates",
            target_label=f"{formula} input"),
        "xanes": pi.plot_xanes_comparison(
            target_xanes, {labels[c]: result.spectra.get((c, element)) for c in labels},
            {labels[c]: v for c, v in zip(validated["candidate_id"],
                                          validated["xanes_similarity"], strict=True)},
            title=f"Fig. S24 · {element} K-edge XANES: {formula} and the candidates",
            message="" if feff_ran else "FEFF10 not run in this profile",
            target_label=f"{formula} input"),
    }


def examples_row(requested: str, inference: CompoundInference | None,
                 choice: CompoundChoice) -> dict[str, Any]:
    """One row of the Fig. S25 table."""
    if inference is None:
        return {"requested": requested, "used": "", "material_id": "", "note": choice.note}
    top = None if inference.result is None else inference.result.top
    return {"requested": requested, "used": inference.formula,
            "material_id": choice.material_id, "crystal_system": inference.crystal_system,
            "inferred_formula": None if top is None else top["formula"],
            "inferred_system": None if top is None else top["crystal_system"],
            "template": None if top is None else top["template_formula"],
            "r_pxrd": None if top is None else top["r_pxrd"],
            "xanes_similarity": None if top is None else top["xanes_similarity"],
            "stage": None if top is None else top["stage"],
            "found": inference.found, "note": "; ".join(inference.notes)}
