"""The structure-inference pipeline in one call (SI §S2, main text Fig. 5a).

::

    from specfusion_lib.inference import search
    result = search.infer_structure(
        ["Ca", "Mn", "Al", "O"], oxidation_states={"Mn": 3}, coordination_numbers={"Mn": 6},
        crystal_system_probabilities={"orthorhombic": 0.8, "monoclinic": 0.1, ...},
        database=TemplateDatabase.from_snapshot(snapshot), pxrd=pattern, xanes={"Mn": spec})
    result.ranking.head()
    search.write_candidates(result, "out/")

The inputs are *predictions* given as plain values (TM oxidation states and coordination
numbers from the SpecFusionNet per-element models, crystal-system probabilities from the PXRD
classifier), so the search does not depend on how they were produced.

Stages (each writes one table of :class:`SearchResult`):

1. ``formulas``: charge-balanced formulas (:func:`~specfusion_lib.inference.formulas.
   enumerate_formulas`).
2. ``templates``: ranked template matches (:func:`~specfusion_lib.inference.templates.
   retrieve_templates`).
3. ``screen`` (``n_screen`` > 0 and a PXRD pattern given): the best ``n_screen`` matches are
   substituted (unrelaxed, volume rescaled, reduced to the primitive cell) and their
   simulated patterns compared with the input (R_PXRD). With ``refine_lattice`` (default)
   each candidate's cell is then fitted to the input pattern within its own symmetry
   (:mod:`~specfusion_lib.inference.lattice_refinement`: a substituted template has the
   right structure type but axes off by a few per cent, which alone can make R_PXRD as poor
   as a wrong structure's); only the coarse stage runs for every candidate, the finer stages
   for the best ones until ``n_refined`` are settled (:func:`_refine_screen`). The screen is
   ordered by ``R_PXRD − τ·ln(prior / best prior)`` (with oxidation-state probabilities;
   else by R_PXRD), R_PXRD the refined one where there is one; a candidate of the top
   formula that fits as well (``symmetry_tolerance_r``) and whose refined structure has a
   higher-symmetry crystal system than the top's answer goes first, in that system
   (:func:`_prefer_symmetry`). ~0.1 s per candidate: no relaxation, no FEFF.
4. ``model`` (``ranking`` ``"model"`` or ``"hybrid"``, XANES inputs and a forward model
   given): every screened candidate's XANES is predicted by the forward structure→spectrum
   model (:class:`~specfusion_lib.inference.candidates.ModelXanesSimulator`, milliseconds
   per spectrum) on the unrelaxed structure and compared with the input; the screen is
   re-ordered by the validation score of (R_PXRD, model XANES similarity).
5. ``validation`` (``n_validate`` > 0, not with ``ranking="model"``): the best
   ``n_validate`` candidates (in screen order, else retrieval order; with
   ``diverse_formulas`` the best candidate of each formula comes before a second template
   of any formula) are relaxed (CHGNet), their PXRD and FEFF10 XANES simulated and compared
   with the inputs (R_PXRD, XANES similarity, validation score;
   :mod:`~specfusion_lib.inference.candidates`).
6. ``ranking``: validated candidates by validation score, then the screened ones in screen
   order, then the remaining matches by retrieval rank. The first row is the answer.

Three ranking modes (``SearchSettings.ranking``): ``"feff"`` (PXRD screen, then CHGNet +
FEFF10 for the best ``n_validate``), ``"model"`` (PXRD screen + forward-model XANES, no
relaxation or FEFF) and ``"hybrid"`` (the forward model orders the screen, CHGNet + FEFF10
validate only its best ``n_validate``).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter
from tqdm.auto import tqdm

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.elements import TRANSITION_METALS, normalize_symbol
from specfusion_lib.core.errors import ConfigurationError, SpecfusionError
from specfusion_lib.data.structure_labels import crystal_system
from specfusion_lib.inference.candidates import (
    R_PXRD_MAX_SCALE,
    R_PXRD_SMOOTHING_DEG,
    Candidate,
    ModelXanesSimulator,
    PatternCache,
    Relaxer,
    XanesSimulator,
    pxrd_agreement,
    r_pxrd,
    simulate_candidate_pattern,
    substitute,
    validation_score,
    xanes_similarity,
)
from specfusion_lib.inference.formulas import (
    MAX_COUNT,
    FormulaEnumeration,
    MixedValence,
    Valence,
    element_valences,
    enumerate_formulas,
)
from specfusion_lib.inference.lattice_refinement import (
    MAX_STRAIN,
    LatticeFit,
    LatticeFitter,
    fit_result,
    reflection_list,
)
from specfusion_lib.inference.templates import (
    RetrievalResult,
    RetrievalSettings,
    TemplateDatabase,
    retrieve_templates,
)
from specfusion_lib.spectra.pxrd import PXRDPattern
from specfusion_lib.spectra.xanes import XANESSpectrum

logger = logging.getLogger(__name__)

__all__ = [
    "RANKING_MODES",
    "SEARCH_CRYSTAL_SYSTEMS",
    "SearchInputs",
    "expected_state",
    "mixed_pairs",
    "plausible_states",
    "valence_probability",
    "state_probabilities",
    "SearchResult",
    "SearchSettings",
    "infer_structure",
    "write_candidates",
]

_STAGES = ("validated", "screened", "retrieved")
#: Crystal systems a search weighs by default (most probable first; the retrieval's
#: ``max_crystal_systems``, with no probability floor): all of them, the classifier's
#: probability a prior of the screen score (``system_prior``), not a filter. With cell
#: refinement (``refine_lattice``) this, ``n_screen`` = 40, ``n_refined`` = 3,
#: ``prior_weight`` = 0.07, ``system_prior`` = True and the no-match threshold were chosen on the
#: validation part of notebook 09's compounds (quick profile, 2026-12-05; top-1 of its 54
#: compounds: 0.72 for this; 0.70 with τ = 0.05 or 5 refined; 0.72 with 60 screened, twice
#: the time; 0.69 without widening at the no-match threshold; 0.67 without the system prior;
#: 0.54 for the previous search: four systems, 20 screened, no refinement). Then
#: ``widened_n_screen`` (2026-12-05, same part, the models retrained from scratch: 0.70 with
#: 40 screened when widened): 0.74 with 80, **0.76 with 120**, 0.76 with 200; with 120,
#: τ = 0.05 or 0.10 0.74; mixing 7 % of a uniform prior into the crystal-system
#: probabilities changed one answer each way (not adopted).
SEARCH_CRYSTAL_SYSTEMS: int = 7
#: Ranking modes of :class:`SearchSettings` (module docstring).
RANKING_MODES: tuple[str, ...] = ("feff", "model", "hybrid")


@dataclass(frozen=True)
class SearchSettings:
    """Settings of :func:`infer_structure`.

    Attributes:
        max_count: Largest element count of an enumerated formula (SI: 15).
        retrieval: Template retrieval settings.
        n_screen: Matches substituted and screened by their PXRD (0: no screen).
        n_validate: Candidates relaxed and simulated (PXRD + FEFF XANES); FEFF takes
            ~5–30 s per inequivalent site, so this bounds the cost (0: no validation).
        diverse_formulas: Validate the best candidate of each formula before a second
            template of the same formula.
        relax: Relax validated candidates (CHGNet).
        simulate_xanes: Simulate the validated candidates' XANES (FEFF10) when input
            spectra are given.
        smoothing_deg: Gaussian FWHM (° 2θ) of the R_PXRD comparison.
        max_scale: Largest relative d-spacing rescaling of a candidate in R_PXRD.
        coverage: With oxidation-state probabilities, the states of a TM searched are the
            most probable ones until their probabilities sum to at least ``coverage`` (a 95 %
            credible set; :func:`plausible_states`) ...
        min_probability: ... none below this probability (the most probable one always) ...
        max_hypotheses: ... and at most this many per TM.
        mixed_valence: With oxidation-state probabilities, also try every two plausible
            states one apart together on distinct sites (:func:`mixed_pairs`; Fe²⁺/Fe³⁺ for
            Fe3O4), with prior :func:`valence_probability`; a TM without a prediction takes
            its common positive states, two one apart also together.
        no_match_r_pxrd: R_PXRD above which the best candidate is no match (``None``: no
            verdict). Set on a validation part of notebook 09's compounds
            (:func:`~specfusion_lib.inference.benchmark.no_match_threshold`). When the best
            candidate is above it, the search widens its hypotheses once (oxidation states
            down to probability 0.01, up to 6 per TM; at least 4 crystal systems, down to
            0.01; ``widened_n_screen`` candidates screened)
            and, if still nothing is within, says "no match" and keeps the closest candidates.
        widened_n_screen: Candidates screened by the widened search (at least ``n_screen``).
            A search that found nothing within the threshold has usually screened only the
            first template or two of each hypothesis (the screen takes the first template
            of every hypothesis before a second of any), so the right structure type is
            often a few templates deeper (CoS hexagonal: the third NiS template).
        symmetry_tolerance_r: Symmetry preference (:func:`_prefer_symmetry`): a candidate of
            the top formula whose refined R_PXRD is within this of the top's and whose
            refined structure's crystal system is a special case of the top's answer (cubic of
            tetragonal, ...) becomes the answer, in that system (0: off). Fe3O4 of the demo,
            cubic within the labels' 0.1 Å but with c/a = 1.016, is called tetragonal by the
            PXRD classifier, and a tetragonal spinel template wins on that prior (R_PXRD 0.039)
            while a V3O4-type candidate refines to a cubic cell (0.045). On the validation
            part of notebook 09 it never acted (top-1 0.759 with and without it).
        system_prior: The prior of the screen score includes the crystal-system probability
            (``prior``), not only the oxidation states' (``hypothesis_prior``)
            (:data:`SEARCH_CRYSTAL_SYSTEMS`).
        prior_weight: τ of the screen score ``R_PXRD − τ·ln(prior / best prior)``: the
            PXRD agreement read as a likelihood ``exp(−R/τ)`` times the prior (the R_PXRD
            difference between a hypothesis and one ten times less probable is 0.16; chosen
            on the validation part of notebook 09, :data:`SEARCH_CRYSTAL_SYSTEMS`).
        refine_lattice: Fit every screened candidate's cell to the input pattern before
            comparing (:mod:`~specfusion_lib.inference.lattice_refinement`); validated
            candidates are relaxed from the refined cell.
        n_refined: ... the finer stages of that fit run until this many candidates are
            settled (:func:`_refine_screen`) ...
        max_strain: ... and no axis changes by more than this fraction.
        ranking: ``"feff"``, ``"model"`` or ``"hybrid"`` (module docstring); the last two
            need a ``forward_model``.
        progress: Show progress bars.
    """

    max_count: int = MAX_COUNT
    retrieval: RetrievalSettings = field(
        default_factory=lambda: RetrievalSettings(max_crystal_systems=SEARCH_CRYSTAL_SYSTEMS,
                                                  min_system_probability=0.0))
    n_screen: int = 40
    n_validate: int = 4
    diverse_formulas: bool = True
    relax: bool = True
    simulate_xanes: bool = True
    smoothing_deg: float = R_PXRD_SMOOTHING_DEG
    max_scale: float = R_PXRD_MAX_SCALE
    coverage: float = 0.95
    min_probability: float = 0.05
    max_hypotheses: int = 3
    mixed_valence: bool = True
    prior_weight: float = 0.07
    system_prior: bool = True
    refine_lattice: bool = True
    n_refined: int = 3
    max_strain: float = MAX_STRAIN
    no_match_r_pxrd: float | None = None
    widened_n_screen: int = 120
    symmetry_tolerance_r: float = 0.01
    ranking: str = "feff"
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.symmetry_tolerance_r >= 0:
            raise ConfigurationError(f"symmetry_tolerance_r must be >= 0 (0: off), got "
                                     f"{self.symmetry_tolerance_r!r}")
        if self.ranking not in RANKING_MODES:
            raise ConfigurationError(f"ranking must be one of {RANKING_MODES}, got "
                                     f"{self.ranking!r}")


@dataclass(frozen=True, eq=False)
class SearchInputs:
    """What the search was given.

    Attributes:
        elements: Element symbols of the unknown compound.
        oxidation_states: Element → state(s) (predicted for the TMs).
        coordination_numbers: TM → predicted CN.
        crystal_system_probabilities: System → probability.
        pxrd: Input pattern, if any.
        xanes: Element → input spectrum.
        oxidation_state_probabilities: TM → {state: probability} as given (empty: the
            states of ``oxidation_states`` are hard constraints).
        mixed_valence: TM → pairs of states tried together on distinct sites.
    """

    elements: tuple[str, ...]
    oxidation_states: Mapping[str, Any]
    coordination_numbers: Mapping[str, int]
    crystal_system_probabilities: Mapping[str, float]
    pxrd: PXRDPattern | None
    xanes: Mapping[str, XANESSpectrum]
    oxidation_state_probabilities: Mapping[str, Mapping[int, float]] = field(
        default_factory=dict)
    mixed_valence: Mapping[str, Sequence[tuple[int, int]]] = field(default_factory=dict)

    def hypotheses(self) -> pd.DataFrame:
        """Every hypothesis the search weighs: ``kind`` (the average oxidation state of an
        element, :func:`expected_state`, for information; an oxidation state; a mixed
        valence of two states; a crystal system), ``element``, ``value``, ``probability``,
        ``searched``."""
        rows = []
        for el in dict.fromkeys([*self.oxidation_state_probabilities, *self.mixed_valence]):
            probs = self.oxidation_state_probabilities.get(el)
            if probs:
                rows.append({"kind": "average oxidation state", "element": el,
                             "value": round(expected_state(probs), 2),
                             "probability": math.nan, "searched": None})
                searched = set(_as_states(self.oxidation_states.get(el)))
                for state, p in sorted(probs.items(), key=lambda kv: -kv[1]):
                    rows.append({"kind": "oxidation state", "element": el,
                                 "value": int(state), "probability": float(p),
                                 "searched": int(state) in searched})
            for low, high in self.mixed_valence.get(el, ()):  # unpredicted TM: no probability
                rows.append({"kind": "mixed valence", "element": el,
                             "value": f"{low:+d}/{high:+d}",
                             "probability": (valence_probability(
                                 probs, MixedValence(low, high, 1, 1)) if probs else math.nan),
                             "searched": True})
        for system, p in sorted(self.crystal_system_probabilities.items(),
                                key=lambda kv: -kv[1]):
            rows.append({"kind": "crystal system", "element": "", "value": system,
                         "probability": float(p), "searched": None})
        return pd.DataFrame(rows, columns=["kind", "element", "value", "probability",
                                           "searched"])


@dataclass(eq=False)
class SearchResult:
    """Every intermediate table of a search and the ranked answer.

    Attributes:
        inputs: The inputs.
        settings: The settings.
        enumeration: Stage 1, the charge-balanced formulas.
        retrieval: Stage 2, ranked template matches.
        screen: Stage 3, one row per screened candidate (``candidate_id``, ``formula``,
            ``template_id``, ``template_formula``, ``crystal_system``, ``level``,
            ``retrieval_rank``, ``volume_ratio``, ``r_pxrd_unrelaxed``, ``r_pxrd_screen``
            (the R_PXRD that orders the screen); with ``refine_lattice`` ``r_pxrd_bound``,
            ``r_pxrd_refined`` and ``lattice_strain`` (:func:`_refine_screen`); with
            probabilities ``hypothesis_prior`` and ``screen_score``; with a forward model
            ``xanes_model``
            and ``model_score``), in screen order.
        validation: Stage 5, one row per validated candidate (``candidate_id``, ``formula``,
            ``template_formula``, ``crystal_system``, ``crystal_system_relaxed``,
            ``relaxed``, ``relax_note``, ``r_pxrd``, ``pxrd_similarity``, ``pxrd_scale``
            (the d-spacing rescaling of the best R_PXRD),
            ``xanes_similarity``, ``xanes_<El>`` per element, ``xanes_note``,
            ``validation_score``).
        ranking: Stage 6, best first: ``final_rank``, ``stage``, ``candidate_id``,
            ``formula``, ``crystal_system``, ``template_id``, ``template_formula``,
            ``level``, ``retrieval_rank``, ``r_pxrd``, ``xanes_similarity``,
            ``validation_score``.
        candidates: Candidate id → :class:`~specfusion_lib.inference.candidates.Candidate`.
        structures: Candidate id → final structure (relaxed when validated; the cell fitted
            to the input pattern when refined in the screen).
        patterns: Candidate id → simulated PXRD pattern of the final structure.
        spectra: ``(candidate id, element)`` → simulated XANES.
        timings: Stage → wall seconds.
        verdict: ``"match"``, ``"no match"`` (best R_PXRD above
            ``settings.no_match_r_pxrd`` even after widening), or ``""`` (no threshold).
        widened: Whether the hypotheses were widened.
    """

    inputs: SearchInputs
    settings: SearchSettings
    enumeration: FormulaEnumeration
    retrieval: RetrievalResult
    screen: pd.DataFrame
    validation: pd.DataFrame
    ranking: pd.DataFrame
    candidates: dict[str, Candidate]
    structures: dict[str, Structure]
    patterns: dict[str, PXRDPattern]
    spectra: dict[tuple[str, str], XANESSpectrum]
    timings: dict[str, float]
    verdict: str = ""
    widened: bool = False

    @property
    def best_r_pxrd(self) -> float:
        """Lowest R_PXRD of any screened or validated candidate (NaN without a pattern)."""
        values = [*self.screen.get("r_pxrd_unrelaxed", pd.Series(dtype=float)).tolist(),
                  *self.screen.get("r_pxrd_refined", pd.Series(dtype=float)).tolist(),
                  *self.validation.get("r_pxrd", pd.Series(dtype=float)).tolist()]
        values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        return min(values) if values else math.nan

    @property
    def top(self) -> pd.Series | None:
        """The best-ranked answer (None when no template matched)."""
        return None if self.ranking.empty else self.ranking.iloc[0]

    def summary(self) -> pd.DataFrame:
        """Counts per stage and wall times (for notebooks)."""
        return pd.DataFrame([
            {"stage": "formulas", "count": len(self.enumeration),
             "seconds": self.timings.get("formulas", math.nan)},
            {"stage": "templates", "count": len(self.retrieval),
             "seconds": self.timings.get("templates", math.nan)},
            {"stage": "screen", "count": len(self.screen),
             "seconds": self.timings.get("screen", math.nan)},
            {"stage": "model", "count": int(self.screen.get("xanes_model",
                                                            pd.Series(dtype=float)).notna().sum()),
             "seconds": self.timings.get("model", math.nan)},
            {"stage": "validation", "count": len(self.validation),
             "seconds": self.timings.get("validation", math.nan)},
        ])


def _clean_inputs(elements: Sequence[str], oxidation_states: Mapping[str, Any] | None,
                  coordination_numbers: Mapping[str, int] | None,
                  xanes: Mapping[str, XANESSpectrum] | None) -> tuple[
                      tuple[str, ...], dict[str, Any], dict[str, int], dict[str, XANESSpectrum]]:
    symbols = tuple(normalize_symbol(e) for e in elements)
    ox = {normalize_symbol(k): v for k, v in (oxidation_states or {}).items()}
    cns = {normalize_symbol(k): int(v) for k, v in (coordination_numbers or {}).items()
           if v is not None}
    spectra = {normalize_symbol(k): v for k, v in (xanes or {}).items()}
    for name, keys in (("coordination numbers", cns), ("XANES spectra", spectra)):
        unknown = set(keys) - set(symbols)
        if unknown:
            raise ConfigurationError(f"{name} given for {' '.join(sorted(unknown))}, not "
                                     f"among the elements {' '.join(symbols)}")
    return symbols, ox, cns, spectra


def _as_states(value: Any) -> list[float]:
    if value is None:
        return []
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [float(value)]
    return [float(v) for v in value]


def state_probabilities(probabilities: Any) -> dict[int, float]:
    """A predictor's ``{class name: probability}`` of an oxidation state as ``{state:
    probability}`` (class names such as ``"3"`` or ``"3.0"``); ``{}`` for anything else."""
    if not isinstance(probabilities, Mapping):
        return {}
    return {int(round(float(k))): float(v) for k, v in probabilities.items()}


def expected_state(probabilities: Mapping[int, float]) -> float:
    """The average oxidation state Σ p·q of a model's state probabilities.

    A site-averaged spectrum of a mixed-valence compound is a superposition of its sites'
    spectra, so the model's probability is shared between the two states and the expected
    value falls between them (Fe3O4: between 2 and 3); :func:`mixed_pairs` turns two such
    plausible states into a mixed-valence hypothesis.
    """
    total = float(sum(probabilities.values()))
    if total <= 0:
        raise ConfigurationError("oxidation-state probabilities sum to zero")
    return float(sum(int(q) * p for q, p in probabilities.items()) / total)


def plausible_states(probabilities: Mapping[int, float], *, min_probability: float,
                     max_hypotheses: int, coverage: float = 1.0) -> list[int]:
    """States in decreasing probability until they cover ``coverage`` of the probability,
    each with at least ``min_probability`` (the most probable always), at most
    ``max_hypotheses``. ``{2: 0.86, 3: 0.10, 4: 0.03}`` gives ``[2, 3]`` at coverage 0.95."""
    ranked = sorted(probabilities.items(), key=lambda kv: (-kv[1], kv[0]))
    keep: list[int] = []
    covered = 0.0
    for state, p in ranked:
        if keep and (covered >= coverage - 1e-9 or p < min_probability):
            break
        keep.append(int(state))
        covered += float(p)
    return keep[:max(1, max_hypotheses)]


def mixed_pairs(states: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs of plausible states one apart, ``[(2, 3)]`` for ``[3, 2]``: the mixed valences
    the search tries (an element on two kinds of site, as Fe in Fe3O4)."""
    ordered = sorted(set(int(q) for q in states))
    return [(a, b) for a, b in itertools.pairwise(ordered) if b - a == 1 and a * b > 0]


def valence_probability(probabilities: Mapping[int, float], valence: Valence) -> float:
    """Prior of one element's valence hypothesis: the model probability of a single state; for
    a mixed valence the smaller probability of its two states (both must be present; fixed a
    priori, not tuned)."""
    if isinstance(valence, MixedValence):
        return min(probabilities.get(valence.low, 0.0), probabilities.get(valence.high, 0.0))
    return probabilities.get(int(valence), 0.0)


def _apply_priors(retrieval: RetrievalResult,
                  probabilities: Mapping[str, Mapping[int, float]],
                  max_matches: int | None = None) -> RetrievalResult:
    """Matches re-ordered for a search over oxidation-state hypotheses: each match's
    ``hypothesis_prior`` (product over the TMs of the probability of its state) and ``prior``
    (times the crystal-system probability). Within a (formula, system, states) hypothesis
    the templates go by ``substitution_probability`` (the chemically closest template first,
    :func:`~specfusion_lib.inference.templates.substitution_probability`); across hypotheses
    the first template of every hypothesis, by prior, then the second of each, and so on, so
    the PXRD screen sees every plausible hypothesis before a second template of any. At most
    ``max_matches`` kept (after this ordering, so a less probable crystal system is not cut
    first)."""
    table = retrieval.table.copy()
    if table.empty:
        return RetrievalResult(table.assign(hypothesis_prior=[], prior=[]),
                               retrieval.crystal_systems, retrieval.n_formulas,
                               retrieval.database)
    table["hypothesis_prior"] = [
        float(np.prod([valence_probability(probabilities[el], v) for el, v in val.items()
                       if el in probabilities])) for val in table["valences"]]
    table["prior"] = table["system_probability"] * table["hypothesis_prior"]
    table = table.sort_values(["substitution_probability", "rank"], ascending=[False, True],
                              kind="stable")
    table["_round"] = table.groupby(["formula", "crystal_system", "oxidation_states"],
                                    sort=False).cumcount()
    table = table.sort_values(["_round", "prior", "rank"], ascending=[True, False, True],
                              kind="stable").drop(columns="_round").reset_index(drop=True)
    if max_matches is not None:
        table = table.head(max_matches)
    table["rank"] = np.arange(1, len(table) + 1)
    return RetrievalResult(table, retrieval.crystal_systems, retrieval.n_formulas,
                           retrieval.database)


def _build_candidates(retrieval: RetrievalResult, database: TemplateDatabase,
                      n: int) -> dict[str, Candidate]:
    out: dict[str, Candidate] = {}
    built: set[tuple[str, str]] = set()
    for _, match in retrieval.table.iterrows():
        if len(out) >= n:
            break
        key = (match["formula"], match["template_id"])
        if key in built:  # the same structure under another oxidation-state assignment
            continue
        built.add(key)
        valences = {el: float(v) for el, v in match["valences"].items()}
        structure, ratio = substitute(
            database.structure(match["template_id"]), match["mapping"],
            target_valences=valences, template_valences=database.valences(match["template_id"]))
        structure = structure.get_primitive_structure()  # fewer atoms for CHGNet
        cid = f"c{len(out) + 1:02d}"
        out[cid] = Candidate(cid, match["formula"], match["template_id"],
                             match["template_formula"], match["crystal_system"],
                             match["level"], dict(match["mapping"]), int(match["rank"]),
                             structure, {"volume_ratio": ratio, "valences": valences})
    return out


def _choose(order: Sequence[str], candidates: Mapping[str, Candidate], n: int,
            diverse: bool) -> list[str]:
    if not diverse:
        return list(order[:n])
    chosen: list[str] = []
    rounds: dict[str, list[str]] = {}
    for cid in order:
        rounds.setdefault(candidates[cid].formula, []).append(cid)
    depth = 0
    while len(chosen) < n and any(len(v) > depth for v in rounds.values()):
        for cids in rounds.values():
            if len(cids) > depth and len(chosen) < n:
                chosen.append(cids[depth])
        depth += 1
    return chosen


def _relax(relaxer: Relaxer, start: Structure) -> tuple[Structure, bool, str]:
    from specfusion_lib.simulate.relax import assess_relaxation

    try:
        outcome = relaxer(start)
    except Exception as exc:  # noqa: BLE001 - any simulator failure is recorded, not fatal
        return start, False, f"relaxation failed: {type(exc).__name__}: {exc}"[:300]
    final = outcome.structure.copy()
    final.remove_oxidation_states()
    for key in list(final.site_properties):
        final.remove_site_property(key)
    reason, _ = assess_relaxation(start, final, outcome.energy / len(final))
    notes = []
    if not outcome.converged:
        notes.append(f"not converged in {outcome.n_steps} steps")
    if reason:
        notes.append(reason)
    return final, True, "; ".join(notes)


def infer_structure(
    elements: Sequence[str],
    oxidation_states: Mapping[str, Any] | None,
    coordination_numbers: Mapping[str, int] | None,
    crystal_system_probabilities: Mapping[str, float] | str,
    database: TemplateDatabase,
    *,
    pxrd: PXRDPattern | None = None,
    xanes: Mapping[str, XANESSpectrum] | None = None,
    settings: SearchSettings | None = None,
    relaxer: Relaxer | None = None,
    xanes_simulator: XanesSimulator | None = None,
    oxidation_state_probabilities: Mapping[str, Mapping[int, float]] | None = None,
    forward_model: Any = None,
    pattern_cache: PatternCache | None = None,
) -> SearchResult:
    """Run the whole search (module docstring).

    Args:
        elements: Every element of the unknown compound.
        oxidation_states: Element → predicted state (or states); non-TMs default to their
            common states.
        coordination_numbers: TM → predicted coordination number.
        crystal_system_probabilities: Predicted crystal system → probability (or one name).
        database: Template structures.
        pxrd: The input PXRD pattern (any grid; converted to the package's grid).
        xanes: Element → input XANES spectrum.
        settings: Search settings.
        relaxer: Structure → ``RelaxOutcome``; default CHGNet
            (:func:`~specfusion_lib.inference.candidates.chgnet_relaxer_for_search`),
            created only when needed.
        xanes_simulator: ``({id: structure}, elements)`` → ``{(id, element): spectrum}``;
            default :class:`~specfusion_lib.inference.candidates.FeffXanesSimulator`.
        oxidation_state_probabilities: TM → {state: probability} of the oxidation-state
            model. Given, the search enumerates every plausible state of each TM
            (:func:`plausible_states`) instead of one, orders the template matches by prior
            (:func:`_apply_priors`) and ranks the screened candidates by
            ``R_PXRD − τ·ln(prior / best prior)`` (``settings.prior_weight``); the states in
            ``oxidation_states`` are then ignored for those TMs.
        forward_model: Structure → spectrum model for ``ranking`` ``"model"`` / ``"hybrid"``
            (``predict_structures(structures, element)``, e.g.
            :class:`~specfusion_lib.xas_structure.cgxas.CGXASForward`).
        pattern_cache: Reuse the screen's candidate patterns across searches on the same
            template database (:class:`~specfusion_lib.inference.candidates.PatternCache`).

    Returns:
        A :class:`SearchResult`.

    Raises:
        ElementError: Unknown element symbols.
        ChargeBalanceError: No charge-balanced formula exists.
        ConfigurationError: Inconsistent inputs (a CN or spectrum for an element that is not
            in ``elements``, unknown crystal systems, ...).
    """
    s = settings or SearchSettings()
    symbols, ox, cns, spectra = _clean_inputs(elements, oxidation_states,
                                              coordination_numbers, xanes)
    probs = ({crystal_system_probabilities: 1.0} if isinstance(crystal_system_probabilities, str)
             else {str(k): float(v) for k, v in crystal_system_probabilities.items()})
    ox_probs = {normalize_symbol(el): {int(k): float(v) for k, v in p.items()}
                for el, p in (oxidation_state_probabilities or {}).items() if p}
    unknown = set(ox_probs) - set(symbols)
    if unknown:
        raise ConfigurationError(f"oxidation-state probabilities given for "
                                 f"{' '.join(sorted(unknown))}, not among the elements "
                                 f"{' '.join(symbols)}")
    mixed: dict[str, list[tuple[int, int]]] = {}
    for el, p in ox_probs.items():
        ox[el] = plausible_states(p, min_probability=s.min_probability,
                                  max_hypotheses=s.max_hypotheses, coverage=s.coverage)
        if s.mixed_valence and (pairs := mixed_pairs(ox[el])):
            mixed[el] = pairs
    if s.mixed_valence and oxidation_state_probabilities is not None:
        # probability mode: a TM the models could not predict takes the states the
        # enumeration gives it (its common positive ones), two one apart also together
        for el in symbols:
            if (el in TRANSITION_METALS and el not in ox_probs and el not in ox
                    and (pairs := mixed_pairs(element_valences([el])[el]))):
                mixed[el] = pairs
    inputs = SearchInputs(symbols, ox, cns, probs, pxrd, spectra, ox_probs, mixed)
    timings: dict[str, float] = {}
    logger.debug("structure search for %s: PXRD %s, XANES of %s", "-".join(symbols),
                "given" if pxrd is not None else "not given", ", ".join(spectra) or "none")

    t0 = time.perf_counter()
    enumeration = enumerate_formulas(symbols, ox, max_count=s.max_count, mixed_valence=mixed)
    timings["formulas"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if ox_probs:  # cap the matches after ordering by prior, not in crystal-system order
        retrieval = _apply_priors(
            retrieve_templates(enumeration, database, probs, cns,
                               replace(s.retrieval, max_matches=None)),
            ox_probs, s.retrieval.max_matches)
    else:
        retrieval = retrieve_templates(enumeration, database, probs, cns, s.retrieval)
    timings["templates"] = time.perf_counter() - t0
    logger.debug("structure search: %d formula(s), %d template match(es)",
                len(enumeration.table), len(retrieval.table))

    n_build = max(s.n_screen if pxrd is not None else 0, s.n_validate)
    t0 = time.perf_counter()
    candidates = _build_candidates(retrieval, database, n_build)
    structures = {cid: c.structure for cid, c in candidates.items()}
    patterns: dict[str, PXRDPattern] = {}
    screen_rows = []
    if pxrd is not None and s.n_screen > 0:
        for cid in list(candidates)[: s.n_screen]:
            cand = candidates[cid]
            r_unrelaxed = math.nan  # with refine_lattice: simulated for the refined ones only
            if not s.refine_lattice:
                patterns[cid] = _candidate_pattern(cand, pattern_cache)
                r_unrelaxed = r_pxrd(pxrd, patterns[cid], smoothing_deg=s.smoothing_deg,
                                     max_scale=s.max_scale)
            screen_rows.append({
                "candidate_id": cid, "formula": cand.formula, "template_id": cand.template_id,
                "template_formula": cand.template_formula,
                "crystal_system": cand.crystal_system, "level": cand.level,
                "retrieval_rank": cand.retrieval_rank,
                "volume_ratio": cand.metadata["volume_ratio"],
                "r_pxrd_unrelaxed": r_unrelaxed,
            })
    screen = pd.DataFrame(screen_rows, columns=[
        "candidate_id", "formula", "template_id", "template_formula", "crystal_system",
        "level", "retrieval_rank", "volume_ratio", "r_pxrd_unrelaxed"])
    penalty = pd.Series(0.0, index=screen.index)
    if not screen.empty and ox_probs:
        column = "prior" if s.system_prior else "hypothesis_prior"
        prior = retrieval.table.set_index("rank")[column]
        best = max(float(prior.max()), 1e-12)
        screen["hypothesis_prior"] = [float(prior[r]) for r in screen["retrieval_rank"]]
        penalty = -s.prior_weight * np.log(np.maximum(screen["hypothesis_prior"], 1e-12)
                                           / best)
    screen["r_pxrd_screen"] = screen["r_pxrd_unrelaxed"]
    if not screen.empty and s.refine_lattice:
        screen, fits = _refine_screen(screen, penalty, candidates, pxrd, s, pattern_cache)
        for cid, fit in fits.items():
            structures[cid], patterns[cid] = fit.structure, fit.pattern
    if not screen.empty and ox_probs:
        screen["screen_score"] = screen["r_pxrd_screen"] + penalty
        screen = screen.sort_values(["screen_score", "retrieval_rank"],
                                    kind="stable").reset_index(drop=True)
    elif not screen.empty:
        screen = screen.sort_values(["r_pxrd_screen", "retrieval_rank"],
                                    kind="stable").reset_index(drop=True)
    if not screen.empty:
        screen["answer_system"] = screen["crystal_system"]
        if s.symmetry_tolerance_r > 0:
            screen = _prefer_symmetry(screen, structures, s.symmetry_tolerance_r)
    timings["screen"] = time.perf_counter() - t0

    if s.ranking != "feff":
        if forward_model is None:
            raise ConfigurationError(f"ranking={s.ranking!r} needs a forward_model")
        t0 = time.perf_counter()
        screen = _model_screen(screen, structures, inputs, ModelXanesSimulator(forward_model))
        timings["model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    order = screen["candidate_id"].tolist() if not screen.empty else list(candidates)
    chosen = ([] if s.ranking == "model"
              else _choose(order, candidates, s.n_validate, s.diverse_formulas))
    validation, sim_spectra = _validate(chosen, candidates, structures, patterns, inputs, s,
                                        relaxer, xanes_simulator)
    timings["validation"] = time.perf_counter() - t0

    ranking = _rank(retrieval, candidates, screen, validation)
    logger.debug("structure search done: %d candidate(s) built, %d screened by PXRD, %d "
                "validated (%.1f s)", len(candidates), len(screen), len(validation),
                sum(timings.values()))
    result = SearchResult(inputs, s, enumeration, retrieval, screen, validation, ranking,
                          candidates, structures, patterns, sim_spectra, timings)
    if s.no_match_r_pxrd is None or pxrd is None:
        return result
    return _verdict(result, s.no_match_r_pxrd, lambda wide: infer_structure(
        elements, oxidation_states, coordination_numbers, crystal_system_probabilities,
        database, pxrd=pxrd, xanes=xanes, settings=wide, relaxer=relaxer,
        xanes_simulator=xanes_simulator,
        oxidation_state_probabilities=oxidation_state_probabilities,
        forward_model=forward_model, pattern_cache=pattern_cache))


def _cached(cache: PatternCache | None, kind: str, key: tuple,
            compute: Callable[[], Any]) -> Any:
    """``compute()``, through ``cache`` (entry ``(kind, key)``) when one is given."""
    return compute() if cache is None else cache.get(kind, key, compute)


def _candidate_key(cand: Candidate) -> tuple:
    """The cache key of a substituted candidate (:meth:`PatternCache.key`)."""
    return PatternCache.key(cand.template_id, cand.mapping, cand.metadata["valences"])


def _candidate_pattern(cand: Candidate, cache: PatternCache | None) -> PXRDPattern:
    """The substituted candidate's simulated pattern (through ``cache`` when given)."""
    return _cached(cache, "pattern", _candidate_key(cand),
                   lambda: simulate_candidate_pattern(cand.structure))


def _refine_screen(screen: pd.DataFrame, penalty: pd.Series,
                   candidates: Mapping[str, Candidate], pxrd: PXRDPattern, s: SearchSettings,
                   cache: PatternCache | None
                   ) -> tuple[pd.DataFrame, dict[str, LatticeFit]]:
    """Refine the screened candidates' cells against the input pattern
    (:mod:`~specfusion_lib.inference.lattice_refinement`), cheaply: every candidate gets the
    coarse stage, whose R factor bounds its refined one from below; the finer stages run in
    order of bound + prior penalty until ``s.n_refined`` candidates have refined scores no
    worse than the next candidate's bound (no later candidate can enter that top).

    Adds ``r_pxrd_bound`` (coarse-stage R), ``r_pxrd_refined`` (R_PXRD of the refined
    candidate; NaN when not refined to the end), ``lattice_strain`` (largest relative axis
    change) and sets ``r_pxrd_screen`` to the refined R_PXRD where there is one, else the
    bound; ``r_pxrd_unrelaxed`` is simulated only for the candidates refined to the end (NaN
    for the others). Returns the table and the refined candidates (:class:`LatticeFit`)."""
    reference_key = PatternCache.reference_key(pxrd)
    fitters: dict[str, LatticeFitter] = {}
    bounds: dict[str, float] = {}
    basins: dict[str, list[tuple[float, np.ndarray]]] = {}
    unrelaxed: dict[str, float] = {}
    keys = {cid: _candidate_key(candidates[cid]) for cid in screen["candidate_id"]}

    def start_r(cid: str) -> tuple[PXRDPattern, float]:
        pattern = _candidate_pattern(candidates[cid], cache)
        unrelaxed[cid] = r_pxrd(pxrd, pattern, smoothing_deg=s.smoothing_deg,
                                max_scale=s.max_scale)
        return pattern, unrelaxed[cid]

    for cid in screen["candidate_id"]:
        structure = candidates[cid].structure
        reflections = _cached(cache, "reflections", keys[cid],
                              lambda st=structure: reflection_list(st, max_strain=s.max_strain))
        if not len(reflections):  # nothing to fit: the plain comparison
            start_r(cid)
            continue
        fitters[cid] = LatticeFitter(pxrd, reflections, max_strain=s.max_strain)
        basins[cid] = _cached(cache, "coarse", (reference_key, *keys[cid]),
                              fitters[cid].coarse)
        bounds[cid] = basins[cid][0][0] if basins[cid] else 2.0
    pen = dict(zip(screen["candidate_id"], penalty, strict=True))
    fits: dict[str, LatticeFit] = {}
    scores: list[float] = []
    for cid in sorted(bounds, key=lambda cid: bounds[cid] + pen[cid]):
        if (len(scores) >= s.n_refined
                and bounds[cid] + pen[cid] > sorted(scores)[s.n_refined - 1]):
            break

        def finish(cid: str = cid) -> LatticeFit:
            pattern, r_start = start_r(cid)
            _, c = fitters[cid].finish(basins[cid])
            return fit_result(pxrd, candidates[cid].structure, fitters[cid], c,
                              start_pattern=pattern, r_start=r_start)

        fits[cid] = _cached(cache, "refined", (reference_key, *keys[cid]), finish)
        unrelaxed[cid] = fits[cid].r_pxrd_start
        scores.append(fits[cid].r_pxrd + pen[cid])
    out = screen.copy()
    out["r_pxrd_unrelaxed"] = [unrelaxed.get(cid, math.nan) for cid in out["candidate_id"]]
    out["r_pxrd_bound"] = [bounds.get(cid, math.nan) for cid in out["candidate_id"]]
    out["r_pxrd_refined"] = [fits[cid].r_pxrd if cid in fits else math.nan
                             for cid in out["candidate_id"]]
    out["lattice_strain"] = [max(abs(x) for x in fits[cid].strain) if cid in fits else math.nan
                             for cid in out["candidate_id"]]
    out["r_pxrd_screen"] = out["r_pxrd_refined"].fillna(out["r_pxrd_bound"]).fillna(
        out["r_pxrd_unrelaxed"])
    logger.debug("lattice refinement: %d screened, %d refined to the end", len(out), len(fits))
    return out, {cid: fit for cid, fit in fits.items() if any(fit.strain)}


def _verdict(result: SearchResult, threshold: float,
             search_again: Callable[[SearchSettings], SearchResult]) -> SearchResult:
    """``"match"`` when the best R_PXRD is within ``threshold``; otherwise one search with
    widened hypotheses (``search_again``; no verdict of its own), the better of the two kept,
    ``"match"`` or ``"no match"`` by the same threshold."""
    if result.best_r_pxrd <= threshold:
        result.verdict = "match"
        return result
    s = result.settings
    wide = replace(s, min_probability=min(s.min_probability, 0.01), coverage=1.0,
                   n_screen=max(s.n_screen, s.widened_n_screen),
                   max_hypotheses=max(s.max_hypotheses, 6), no_match_r_pxrd=None,
                   retrieval=replace(s.retrieval,
                                     max_crystal_systems=max(s.retrieval.max_crystal_systems, 4),
                                     min_system_probability=min(
                                         s.retrieval.min_system_probability, 0.01)))
    if math.isnan(result.best_r_pxrd):
        logger.info("structure search: no candidate screened; widening the hypotheses")
    else:
        logger.info("structure search: best R_PXRD %.2f above %.2f; widening the hypotheses",
                    result.best_r_pxrd, threshold)
    again = search_again(wide)
    best = again if not again.best_r_pxrd > result.best_r_pxrd else result
    best.widened = True
    best.verdict = "match" if best.best_r_pxrd <= threshold else "no match"
    return best


def _similarities(cid: str, elements: Sequence[str],
                  spectra: Mapping[tuple[str, str], XANESSpectrum],
                  reference: Mapping[str, XANESSpectrum], failures: Mapping[tuple[str, str], str],
                  source: str) -> tuple[dict[str, float], list[str]]:
    """One candidate's XANES similarity to the input spectra, per element, and a note for
    each element not compared (missing spectrum with the simulator's reason, or a spectrum
    that cannot be preprocessed), each also logged."""
    values: dict[str, float] = {}
    notes: list[str] = []
    for el in elements:
        sim = spectra.get((cid, el))
        if sim is None:
            reason = failures.get((cid, el), f"no {source} spectrum")
            notes.append(f"{el}: {reason}")
            logger.warning("candidate %s: no %s %s XANES (%s)", cid, source, el, reason)
            continue
        try:
            values[el] = xanes_similarity(reference[el], sim)
        except SpecfusionError as exc:
            notes.append(f"{el}: {exc}")
            logger.warning("candidate %s: %s XANES not compared (%s)", cid, el, exc)
    return values, notes


def _model_screen(screen: pd.DataFrame, structures: Mapping[str, Structure],
                  inputs: SearchInputs, simulator: ModelXanesSimulator) -> pd.DataFrame:
    """The screen with ``xanes_model`` (mean similarity of the forward model's spectra of the
    unrelaxed candidates, in the refined cell where there is one, to the input spectra) and
    ``model_score`` (validation score of the screen's PXRD term and that similarity), ordered
    by ``model_score``."""
    elements = [el for el in inputs.elements if el in inputs.xanes]
    if screen.empty or not elements:
        return screen.assign(xanes_model=math.nan, model_score=math.nan)
    spectra = simulator({cid: structures[cid] for cid in screen["candidate_id"]}, elements)
    similarity = []
    for cid in screen["candidate_id"]:
        values, _ = _similarities(cid, elements, spectra, inputs.xanes, simulator.failures_,
                                  "forward-model")
        similarity.append(float(np.mean(list(values.values()))) if values else math.nan)
    base = screen["screen_score"] if "screen_score" in screen else screen["r_pxrd_screen"]
    out = screen.assign(xanes_model=similarity)
    out["model_score"] = [validation_score(b, x) for b, x in zip(base, similarity, strict=True)]
    return out.sort_values(["model_score", "retrieval_rank"], kind="stable",
                           na_position="last").reset_index(drop=True)


def _validate(chosen: Sequence[str], candidates: Mapping[str, Candidate],
              structures: dict[str, Structure], patterns: dict[str, PXRDPattern],
              inputs: SearchInputs, s: SearchSettings, relaxer: Relaxer | None,
              xanes_simulator: XanesSimulator | None,
              ) -> tuple[pd.DataFrame, dict[tuple[str, str], XANESSpectrum]]:
    xanes_elements = [el for el in inputs.elements if el in inputs.xanes]
    columns = ["candidate_id", "formula", "template_formula", "crystal_system",
               "crystal_system_relaxed", "relaxed", "relax_note", "r_pxrd", "pxrd_similarity",
               "pxrd_scale", "xanes_similarity", *[f"xanes_{el}" for el in xanes_elements],
               "xanes_note", "validation_score"]
    if not chosen:
        return pd.DataFrame(columns=columns), {}
    rows: dict[str, dict[str, Any]] = {}
    if s.relax and relaxer is None:
        from specfusion_lib.inference.candidates import chgnet_relaxer_for_search

        relaxer = chgnet_relaxer_for_search()
    for cid in tqdm(chosen, desc="relaxing candidates", disable=not s.progress):
        cand = candidates[cid]
        start = structures.get(cid, cand.structure)  # the refined cell when there is one
        if s.relax:
            final, relaxed, note = _relax(relaxer, start)  # type: ignore[arg-type]
            if not relaxed:
                logger.warning("candidate %s (%s): %s; validated unrelaxed", cid, cand.formula,
                               note)
        else:
            final, relaxed, note = start, False, "not relaxed (relax=False)"
        structures[cid] = final
        patterns[cid] = simulate_candidate_pattern(final)
        try:
            system_relaxed = crystal_system(final)
        except SpecfusionError as exc:
            system_relaxed = f"unknown ({exc})"
        row: dict[str, Any] = {
            "candidate_id": cid, "formula": cand.formula,
            "template_formula": cand.template_formula, "crystal_system": cand.crystal_system,
            "crystal_system_relaxed": system_relaxed, "relaxed": relaxed, "relax_note": note,
            "r_pxrd": math.nan, "pxrd_similarity": math.nan, "pxrd_scale": math.nan,
            "xanes_similarity": math.nan,
            "xanes_note": "",
        }
        if inputs.pxrd is not None:
            agreement = pxrd_agreement(inputs.pxrd, patterns[cid], smoothing_deg=s.smoothing_deg,
                                       max_scale=s.max_scale)
            row["r_pxrd"] = agreement.r_pxrd
            row["pxrd_similarity"] = agreement.similarity
            row["pxrd_scale"] = agreement.scale
        rows[cid] = row
    sim_spectra: dict[tuple[str, str], XANESSpectrum] = {}
    if xanes_elements and s.simulate_xanes:
        if xanes_simulator is None:
            from specfusion_lib.inference.candidates import FeffXanesSimulator

            xanes_simulator = FeffXanesSimulator(progress=s.progress)
        sim_spectra = dict(xanes_simulator({cid: structures[cid] for cid in chosen},
                                           xanes_elements))
        failures = getattr(xanes_simulator, "failures_", {})
        for cid in chosen:
            values, notes = _similarities(cid, xanes_elements, sim_spectra, inputs.xanes,
                                          failures, "simulated")
            rows[cid].update({f"xanes_{el}": v for el, v in values.items()})
            rows[cid]["xanes_similarity"] = (float(np.mean(list(values.values()))) if values
                                             else math.nan)
            rows[cid]["xanes_note"] = "; ".join(notes)[:300]
    elif xanes_elements:
        for cid in chosen:
            rows[cid]["xanes_note"] = "XANES not simulated (simulate_xanes=False)"
    for row in rows.values():
        row["validation_score"] = validation_score(row["r_pxrd"], row["xanes_similarity"])
    table = pd.DataFrame(list(rows.values()), columns=columns)
    table = table.sort_values(["validation_score"], kind="stable", na_position="last")
    return table.reset_index(drop=True), sim_spectra


#: Point-group order of each crystal system's holohedry, and the systems whose lattices can
#: be special cases of it (a cubic cell is a tetragonal one with c = a, ...).
_HOLOHEDRY_ORDER = {"triclinic": 2, "monoclinic": 4, "orthorhombic": 8, "trigonal": 12,
                    "tetragonal": 16, "hexagonal": 24, "cubic": 48}
_SPECIALISES = {"cubic": {"triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal"},
                "hexagonal": {"triclinic", "monoclinic", "orthorhombic", "trigonal"},
                "tetragonal": {"triclinic", "monoclinic", "orthorhombic"},
                "trigonal": {"triclinic", "monoclinic"},
                "orthorhombic": {"triclinic", "monoclinic"},
                "monoclinic": {"triclinic"}, "triclinic": set()}


def _prefer_symmetry(screen: pd.DataFrame, structures: Mapping[str, Structure],
                     tolerance: float) -> pd.DataFrame:
    """The screen with the highest-symmetry equally good description of the top formula first.

    The rivals are the other candidates of the top candidate's formula refined to the end
    with an R_PXRD no worse than the top's plus ``tolerance`` (a rival may fit better and
    still rank lower on the prior). A rival's own crystal system is that of
    its refined structure at the labels' tolerance
    (:func:`~specfusion_lib.data.structure_labels.crystal_system`: a template labelled
    tetragonal whose substituted, refined cell is cubic within 0.1 Å is cubic). If it is a
    special case of the top's answer (cubic of tetragonal, ...), the rival of highest
    symmetry moves to the top with that system as its ``answer_system``: of two descriptions
    the pattern cannot tell apart, the higher symmetry is the answer, as in crystallographic
    practice. Adds ``structure_system`` (the rivals' systems; None elsewhere).
    """
    out = screen.assign(structure_system=pd.Series(None, index=screen.index, dtype=object))
    if "r_pxrd_refined" not in out.columns or len(out) < 2:
        return out
    top = out.iloc[0]
    rivals = out.index[1:][(out["formula"].iloc[1:] == top["formula"]).to_numpy()
                           & (out["r_pxrd_refined"].iloc[1:]
                              <= float(top["r_pxrd_screen"]) + tolerance).to_numpy()]
    higher = []
    for i in rivals:
        try:
            system = crystal_system(structures[out.at[i, "candidate_id"]])
        except SpecfusionError as exc:
            logger.debug("candidate %s: no crystal system (%s)", out.at[i, "candidate_id"], exc)
            continue
        out.at[i, "structure_system"] = system
        if top["answer_system"] in _SPECIALISES[system]:
            higher.append(i)
    if not higher:
        return out
    best = max(higher, key=lambda i: (_HOLOHEDRY_ORDER[out.at[i, "structure_system"]], -i))
    out.at[best, "answer_system"] = out.at[best, "structure_system"]
    logger.debug("symmetry preference: %s (%s, R_PXRD %.3f) before %s (%s, R_PXRD %.3f)",
                 out.at[best, "candidate_id"], out.at[best, "answer_system"],
                 out.at[best, "r_pxrd_refined"], top["candidate_id"], top["answer_system"],
                 float(top["r_pxrd_screen"]))
    order = [best, *[i for i in out.index if i != best]]
    return out.loc[order].reset_index(drop=True)


def _rank(retrieval: RetrievalResult, candidates: Mapping[str, Candidate],
          screen: pd.DataFrame, validation: pd.DataFrame) -> pd.DataFrame:
    by_rank = {c.retrieval_rank: cid for cid, c in candidates.items()}
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    val = validation.set_index("candidate_id") if not validation.empty else None
    scr = screen.set_index("candidate_id") if not screen.empty else None

    def add(stage: str, rank: int, cid: str | None) -> None:
        match = retrieval.table.iloc[rank - 1]
        row = {"stage": stage, "candidate_id": cid or "", "formula": match["formula"],
               "crystal_system": match["crystal_system"],
               "template_id": match["template_id"],
               "template_formula": match["template_formula"], "level": match["level"],
               "retrieval_rank": rank, "r_pxrd": math.nan, "xanes_similarity": math.nan,
               "validation_score": math.nan}
        if cid is not None and val is not None and cid in val.index:
            row.update({k: val.at[cid, k] for k in ("r_pxrd", "xanes_similarity",
                                                   "validation_score")})
        elif cid is not None and scr is not None and cid in scr.index:
            refined = scr.at[cid, "r_pxrd_refined"] if "r_pxrd_refined" in scr.columns else None
            row["r_pxrd"] = (refined if refined is not None and math.isfinite(refined)
                             else scr.at[cid, "r_pxrd_unrelaxed"])
            if "xanes_model" in scr.columns:
                row["xanes_similarity"] = scr.at[cid, "xanes_model"]
                row["validation_score"] = scr.at[cid, "model_score"]
        if cid is not None and scr is not None and cid in scr.index:  # screen: answer_system
            row["crystal_system"] = scr.at[cid, "answer_system"]
        rows.append(row)
        seen.add(rank)

    for cid in validation["candidate_id"] if not validation.empty else []:
        add("validated", candidates[cid].retrieval_rank, cid)
    for cid in screen["candidate_id"] if not screen.empty else []:
        if candidates[cid].retrieval_rank not in seen:
            add("screened", candidates[cid].retrieval_rank, cid)
    for rank in retrieval.table["rank"]:
        if int(rank) not in seen:
            add("retrieved", int(rank), by_rank.get(int(rank)))
    table = pd.DataFrame(rows, columns=[
        "stage", "candidate_id", "formula", "crystal_system", "template_id",
        "template_formula", "level", "retrieval_rank", "r_pxrd", "xanes_similarity",
        "validation_score"])
    table.insert(0, "final_rank", np.arange(1, len(table) + 1))
    return table


def write_candidates(result: SearchResult, out_dir: str | os.PathLike[str], *,
                     n: int | None = None) -> Path:
    """Write the ranked candidates as CIF files and the tables as CSV (each file atomically).

    Files: ``rank01_<formula>_<candidate>.cif`` … (candidates that have a structure, in final
    order), ``formulas.csv``, ``templates.csv``, ``screen.csv``, ``validation.csv`` and, last,
    ``summary.csv`` (the ranking with the CIF file of each row).

    Args:
        result: A search result.
        out_dir: Output folder (created).
        n: Write at most this many CIF files (default: every candidate with a structure).

    Returns:
        The path of ``summary.csv``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranking = result.ranking.copy()
    files = []
    written = 0
    for _, row in ranking.iterrows():
        cid = row["candidate_id"]
        if not cid or cid not in result.structures or (n is not None and written >= n):
            files.append("")
            continue
        name = f"rank{int(row['final_rank']):02d}_{row['formula']}_{cid}.cif"
        name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
        atomic_write_text(out / name, str(CifWriter(result.structures[cid])))
        files.append(name)
        written += 1
    ranking["cif"] = files
    formulas = result.enumeration.table.drop(columns=["assignment_ids"])
    atomic_write_text(out / "formulas.csv", formulas.to_csv(index=False))
    templates = result.retrieval.table.assign(
        mapping=[" ".join(f"{k}<-{v}" for k, v in m.items())
                 for m in result.retrieval.table["mapping"]])
    atomic_write_text(out / "templates.csv", templates.to_csv(index=False))
    atomic_write_text(out / "screen.csv", result.screen.to_csv(index=False))
    atomic_write_text(out / "validation.csv", result.validation.to_csv(index=False))
    summary = atomic_write_text(out / "summary.csv", ranking.to_csv(index=False))
    logger.info("wrote %d candidate CIF file(s) and the search tables to %s", written, out)
    return summary

