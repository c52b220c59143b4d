"""Benchmark of the structure inference on held-out compounds (main text Fig. 5b).

The paper reports a top-1 accuracy of the simultaneous (empirical formula, crystal system)
prediction above 0.80 for binary to quinary compounds of its held-out theoretical test set
(main text, Fig. 5b; :data:`~specfusion_lib.core.paper.FIG5B_TOP1`). Notebook 09 reproduces the
measurement on the active snapshot:

1. **Held-out compounds** (:func:`held_out_compounds`): the test part of the per-TM oxidation
   state model (first seed). Their predicted TM oxidation states are that model's test
   predictions; their CNs are the CN model's test predictions where the CN model held the
   compound out too, and unconstrained otherwise (the two models split their own labelled
   materials). A TM without a label has no prediction: its states fall back to the common
   ones.
2. **Crystal system**: a PXRD classifier trained with a split whose test part holds exactly
   these compounds (:func:`crystal_system_split`), so no benchmark compound was seen by any
   of the three models. Its probabilities for the compounds' test patterns (rendered with
   the classifier's measurement conditions) are the crystal-system input.
3. **Search** (:func:`run_benchmark`): for each compound, the template database *without the
   compound itself* (its entry and every entry with its reduced formula and crystal system,
   :meth:`~specfusion_lib.inference.templates.TemplateDatabase.without_target`), then
   :func:`~specfusion_lib.inference.search.infer_structure` with the compound's simulated
   PXRD pattern as input. By default stages 1–3 (enumeration, retrieval, PXRD screen of the
   unrelaxed candidates); :func:`validate_examples` runs the full validation (CHGNet + FEFF)
   for a few compounds.
   With ``families`` the target's **whole structure family** goes as well
   (:meth:`~specfusion_lib.inference.templates.TemplateDatabase.without_family`): the demo's
   substitution siblings of a compound share its prototype, so removing only the compound
   leaves templates that are the answer in all but the element names.
4. **Score**: top-1 is correct when the best candidate's reduced formula and crystal system
   both equal the compound's; top-3 when they are among the first three distinct (formula,
   crystal system) answers of the ranking (:func:`accuracy_by_nelements`, both with Wilson
   95 % intervals).

The same search with the *true* oxidation states, CNs and crystal system (``oracle=True``)
separates the cost of wrong predictions from the limits of the template search itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import ConfigurationError, SpecfusionError
from specfusion_lib.core.paper import FIG5B_TOP1
from specfusion_lib.core.parallel import available_cpus
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.inference.search import SearchSettings, infer_structure
from specfusion_lib.inference.templates import TemplateDatabase
from specfusion_lib.properties.features import weighted_mode
from specfusion_lib.spectra.pxrd import simulate_pattern
from specfusion_lib.spectra.xanes import XANESSpectrum

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "BENCHMARK_COLUMNS",
    "N_ELEMENT_NAMES",
    "BenchmarkVariant",
    "accuracy_by_nelements",
    "benchmark_crystal_probabilities",
    "crystal_system_split",
    "held_out_compounds",
    "probabilities_table",
    "run_benchmark",
    "run_benchmark_variants",
    "snapshot_xanes",
    "true_site_labels",
    "validate_examples",
    "wilson_interval",
]

#: Number of elements → name used in the figure.
N_ELEMENT_NAMES = {1: "unary", 2: "binary", 3: "ternary", 4: "quaternary", 5: "quinary",
                   6: "senary"}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaNs for ``n`` = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def true_site_labels(sites: Sequence[Mapping[str, Any]] | None
                     ) -> tuple[dict[str, int], dict[str, int]]:
    """Per-TM (oxidation state, CN): multiplicity-weighted modes of the per-site labels."""
    ox: dict[str, int] = {}
    cn: dict[str, int] = {}
    by_el: dict[str, list[Mapping[str, Any]]] = {}
    for s in sites or []:
        by_el.setdefault(str(s["element"]), []).append(s)
    for el, group in by_el.items():
        w = [float(s.get("multiplicity") or 1) for s in group]
        if all(s.get("oxidation_state") is not None for s in group):
            ox[el] = int(weighted_mode([float(s["oxidation_state"]) for s in group], w))
        if all(s.get("coordination_number") is not None for s in group):
            cn[el] = int(weighted_mode([float(s["coordination_number"]) for s in group], w))
    return ox, cn


def true_average_states(sites: Sequence[Mapping[str, Any]] | None) -> dict[str, float]:
    """Per-TM multiplicity-weighted mean of the per-site oxidation states (8/3 for Fe in
    Fe3O4, whose modal label is 3): the truth a mixed-valence search needs."""
    sums: dict[str, list[float]] = {}
    for s in sites or []:
        if s.get("oxidation_state") is None:
            continue
        w = float(s.get("multiplicity") or 1)
        acc = sums.setdefault(str(s["element"]), [0.0, 0.0])
        acc[0] += w * float(s["oxidation_state"])
        acc[1] += w
    return {el: (round(a / w) if abs(a / w - round(a / w)) < 1e-9 else a / w)
            for el, (a, w) in sums.items() if w > 0}


def _tm_probabilities(compound: Any) -> dict[str, dict[int, float]]:
    """The oxidation-state model's {state: probability} of a compound's TMs (a row of
    :func:`held_out_compounds`, as a named tuple or a Series); ``{}`` without them."""
    probs = getattr(compound, "oxidation_state_probabilities", None) or {}
    return {el: p for el, p in probs.items() if el in TRANSITION_METALS}


def _class_int(value: Any) -> int:
    return int(round(float(value)))


def class_probabilities(result: Any, features: Any, material_ids: Sequence[str]
                        ) -> dict[str, dict[str, dict[int, float]]]:
    """Per-TM class probabilities of an element-level classification run for some materials.

    Args:
        result: A :class:`~specfusion_lib.properties.train.TrainResult` (its model and
            metadata).
        features: The :class:`~specfusion_lib.properties.features.FeatureSet` it was trained
            on (or one with the same inputs).
        material_ids: Materials to predict.

    Returns:
        Material id → TM → {class as int: probability}; materials absent from ``features``
        are left out.
    """
    from specfusion_lib.properties.train import predict

    index = {m: i for i, m in enumerate(features.material_ids)}
    rows = [index[m] for m in material_ids if m in index]
    if not rows:
        return {}
    sub = features.subset(rows)
    probs = predict(result.model, sub, result.metadata)
    classes = [_class_int(c) for c in result.class_names]
    out: dict[str, dict[str, dict[int, float]]] = {}
    for k, mid in enumerate(sub.material_ids):
        out[mid] = {el: {classes[c]: float(probs[k, e, c]) for c in range(len(classes))}
                    for e, el in enumerate(sub.elements[k]) if sub.tm_mask[k, e]}
    return out


def held_out_compounds(snapshot: Snapshot, element_runs: Mapping[str, Any],
                       features: Any = None, *,
                       material_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The benchmark compounds and their predicted TM labels (module docstring, step 1).

    The compounds are the test part of the oxidation-state model (first seed). The two
    element models split their own labelled materials, so a compound of that test part may
    have been in the CN model's training or validation part: its CN is then left out
    (unconstrained) rather than taken from a model that saw it.

    Args:
        snapshot: The snapshot the models were trained on.
        element_runs: :func:`specfusion_lib.properties.runs.run_tasks` output for
            ``("oxidation_state", "coordination_number")``.
        features: The feature set the models were trained on (for the class
            probabilities).
        material_ids: Other compounds than the test part (the mixed-valence cases of notebook
            09): predicted here from ``features`` (required then), with ``ox_held_out``
            saying whether the oxidation-state model saw them.

    Returns:
        One row per compound: ``material_id``, ``formula``, ``nelements``, ``elements``,
        ``crystal_system`` (true), ``oxidation_states`` / ``coordination_numbers``
        (predicted, element → int), ``cn_held_out`` (whether the CN model held the compound
        out), ``true_oxidation_states``, ``true_coordination_numbers``, ``labels_correct``
        (every predicted TM label equals the true one) and, with ``features``,
        ``oxidation_state_probabilities`` (TM → {state: probability}, the model's softmax).
        Empty when the oxidation-state model is not available.
    """
    columns = ["material_id", "formula", "nelements", "elements", "crystal_system",
               "oxidation_states", "coordination_numbers", "cn_held_out",
               "true_oxidation_states", "true_coordination_numbers", "labels_correct",
               "oxidation_state_probabilities", "true_average_states", "ox_held_out"]
    ox_run = element_runs.get("oxidation_state")
    if ox_run is None or ox_run.summary is None:
        return pd.DataFrame(columns=columns)
    ox_result = ox_run.summary.results[0]
    test = list(dict.fromkeys(ox_result.split["test"]))
    held_out = set(test)
    if material_ids is not None:
        if features is None:
            raise ConfigurationError("held_out_compounds: material_ids need features")
        test = [str(m) for m in material_ids]
    cn_test: set[str] = set()
    cn_pred = pd.DataFrame(columns=["material_id", "element", "y_pred"])
    cn_run = element_runs.get("coordination_number")
    if cn_run is not None and cn_run.summary is not None:
        cn_result = cn_run.summary.results[0]
        cn_test = set(cn_result.split["test"])
        cn_pred = cn_result.predictions
    ox_pred = ox_result.predictions
    ox_probs = class_probabilities(ox_result, features, test) if features is not None else {}
    m = snapshot.materials.set_index("material_id")
    rows = []
    for mid in test:
        if mid not in m.index:
            continue
        row = m.loc[mid]
        true_ox, true_cn = true_site_labels(snapshot.sites(mid))
        ox = {str(r.element): _class_int(r.y_pred)
              for r in ox_pred[ox_pred["material_id"] == mid].itertuples()}
        if not ox and mid in ox_probs:  # not in the test part: the argmax of its softmax
            ox = {el: max(p, key=p.get) for el, p in ox_probs[mid].items()}
        cn = ({str(r.element): _class_int(r.y_pred)
               for r in cn_pred[cn_pred["material_id"] == mid].itertuples()}
              if mid in cn_test else {})
        correct = all(true_ox.get(el) == v for el, v in ox.items()) and \
            all(true_cn.get(el) == v for el, v in cn.items())
        rows.append({"material_id": mid, "formula": row["formula"],
                     "nelements": int(row["nelements"]), "elements": list(row["elements"]),
                     "crystal_system": row["crystal_system"], "oxidation_states": ox,
                     "coordination_numbers": cn, "cn_held_out": mid in cn_test,
                     "true_oxidation_states": true_ox, "true_coordination_numbers": true_cn,
                     "labels_correct": bool(correct),
                     "oxidation_state_probabilities": ox_probs.get(mid, {}),
                     "true_average_states": true_average_states(snapshot.sites(mid)),
                     "ox_held_out": mid in held_out})
    return pd.DataFrame(rows, columns=columns)


def _profile(profile: Any) -> Any:
    return get_profile(profile) if isinstance(profile, str) else profile


def crystal_system_split(material_ids: Sequence[str], test_ids: Sequence[str], seed: int = 0,
                         val_fraction: float = 0.15, families: Sequence[str] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split rows of a crystal-system dataset so that ``test_ids`` form the test part.

    Args:
        material_ids: Material id of each row of the data.
        test_ids: Ids to hold out (those not in the data are ignored).
        seed: Seed of the validation draw.
        val_fraction: Fraction of the remaining rows used for validation (at least one).
        families: Structure family of each row (:mod:`specfusion_lib.data.families`). When
            given, rows of a test compound's family that are not test compounds themselves
            are left out of training and validation, and validation takes whole families.

    Returns:
        ``(train, val, test)`` row indices.
    """
    wanted = set(map(str, test_ids))
    test = np.array([i for i, m in enumerate(material_ids) if str(m) in wanted], dtype=np.int64)
    banned = set() if families is None else {str(families[i]) for i in test}
    rest = np.array([i for i, m in enumerate(material_ids) if str(m) not in wanted
                     and (families is None or str(families[i]) not in banned)], dtype=np.int64)
    rng = np.random.default_rng(seed)
    if families is None or len(rest) < 2:
        rest = rest[rng.permutation(len(rest))]
        n_val = max(1, int(round(val_fraction * len(rest)))) if len(rest) > 1 else 0
        return np.sort(rest[n_val:]), np.sort(rest[:n_val]), test
    keys = sorted({str(families[i]) for i in rest})
    order = [keys[j] for j in rng.permutation(len(keys))]
    target = max(1, int(round(val_fraction * len(rest))))
    val_keys: set[str] = set()
    n_val = 0
    for key in order[:-1]:  # at least one family stays for training
        if n_val >= target:
            break
        val_keys.add(key)
        n_val += sum(1 for i in rest if str(families[i]) == key)
    in_val = np.array([str(families[i]) in val_keys for i in rest], dtype=bool)
    return np.sort(rest[~in_val]), np.sort(rest[in_val]), test


def benchmark_crystal_probabilities(
    snapshot: Snapshot, profile: Any, compounds: pd.DataFrame, *, seed: int = 0,
    checkpoint_dir: Any = None, cache_dir: Any = None, progress: bool = False,
) -> tuple[pd.DataFrame, Any, str]:
    """Crystal-system probabilities of the benchmark compounds from a PXRD classifier that
    never saw them (module docstring, step 2).

    The classifier (:func:`specfusion_lib.crystal_system.training.train_crystal_system_model`, tag
    ``inference-benchmark``) is trained with :func:`crystal_system_split`; a matching
    checkpoint in ``checkpoint_dir`` is reused; ``cache_dir`` caches the simulated reflections
    (as notebook 07 does).

    Returns:
        ``(probabilities, run, note)``: :func:`probabilities_table` of the compounds (rows of
        compounds without a pattern are missing), the run (None when nothing could be
        trained) and a note ("" when trained).
    """
    from specfusion_lib.crystal_system.training import (
        crystal_system_data,
        train_crystal_system_model,
    )

    empty = pd.DataFrame(columns=list(CRYSTAL_SYSTEMS), dtype=float)
    if compounds.empty:
        logger.warning("benchmark PXRD classifier not trained: no held-out compound")
        return empty, None, "no held-out compound: the PXRD classifier was not trained"
    data = crystal_system_data(snapshot, profile, cache_dir=cache_dir, progress=progress,
                               keep_ids=list(compounds["material_id"]))
    split = crystal_system_split(data.material_ids, compounds["material_id"], seed,
                                 families=data.families if _profile(profile).split_by ==
                                 "family" else None)
    if len(split[2]) == 0:
        logger.warning("benchmark PXRD classifier not trained: no held-out compound has a "
                       "simulated pattern")
        return empty, None, "no held-out compound has a simulated pattern"
    try:
        run = train_crystal_system_model(snapshot, profile, seed=seed,
                                         checkpoint_dir=checkpoint_dir, progress=progress,
                                         data=data, split=split, tag="inference-benchmark")
    except ConfigurationError as exc:
        logger.warning("benchmark PXRD classifier not trained: %s", exc)
        return empty, None, f"PXRD classifier not trained: {exc}"
    return probabilities_table(run.predictions), run, ""


def snapshot_xanes(snapshot: Snapshot, material_id: str, elements: Sequence[str] | None = None,
                   edge: str = "K") -> dict[str, XANESSpectrum]:
    """The snapshot's spectra of a material (element → spectrum), optionally some elements."""
    rows = snapshot.spectra_of(material_id, edge)
    out = {}
    for r in rows.itertuples():
        if elements is None or r.element in elements:
            out[str(r.element)] = XANESSpectrum(r.energy, r.mu, element=str(r.element),
                                                edge=str(r.edge),
                                                source=f"{material_id} ({r.source})")
    return out


def probabilities_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Crystal-system probabilities indexed by material id, one column per system.

    Args:
        predictions: Test predictions of a PXRD crystal-system run
            (:attr:`specfusion_lib.crystal_system.training.CrystalSystemRun.predictions`: columns
            ``material_id`` and ``p_<system>``), or a table that already has one column per
            system.
    """
    table = predictions.set_index("material_id") if "material_id" in predictions else \
        predictions
    table = table.rename(columns={f"p_{c}": c for c in CRYSTAL_SYSTEMS})
    return table[[c for c in CRYSTAL_SYSTEMS if c in table.columns]].astype(float)


def _probabilities(row: pd.Series | Mapping[str, float]) -> dict[str, float]:
    return {c: float(row[c]) for c in CRYSTAL_SYSTEMS if c in row}


#: Columns of a :func:`run_benchmark` table, in order.
BENCHMARK_COLUMNS: tuple[str, ...] = (
    "material_id", "formula", "nelements", "crystal_system", "predicted_system",
    "system_probability", "labels_correct", "n_formulas", "n_templates", "top_formula",
    "top_system", "top_template", "top_level", "top_stage", "formula_correct", "system_correct",
    "correct", "top3_correct", "top_r_pxrd", "formula_enumerated", "verdict", "widened",
    "n_templates_removed", "seconds", "note")


@dataclass(frozen=True)
class BenchmarkVariant:
    """How one variant of the benchmark searches (:func:`run_benchmark`).

    Attributes:
        oracle: Use the true oxidation states (per site: a mixed valence as its average,
            :func:`true_average_states`), CNs and crystal system instead of the predictions.
        families: Material id → structure family: remove each target's whole family from the
            templates, not only its own entry and formula (the stricter variant).
        use_probabilities: Search over the oxidation-state model's probabilities
            (``oxidation_state_probabilities`` of the compounds) instead of its argmax.
        settings: Search settings of this variant (``None``: those given to the run).
    """

    oracle: bool = False
    families: Mapping[str, str] | None = None
    use_probabilities: bool = False
    settings: SearchSettings | None = None


def run_benchmark(
    snapshot: Snapshot,
    compounds: pd.DataFrame,
    crystal_probabilities: pd.DataFrame,
    database: TemplateDatabase | None = None,
    *,
    settings: SearchSettings | None = None,
    oracle: bool = False,
    families: Mapping[str, str] | None = None,
    use_probabilities: bool = False,
    pattern_cache: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Search every compound with its own entry removed from the templates (docstring).

    Args:
        snapshot: The snapshot (structures of the targets).
        compounds: :func:`held_out_compounds`.
        crystal_probabilities: Indexed by material id, one column per crystal system
            (ignored with ``oracle``).
        database: Template database (default: every structure of ``snapshot``).
        settings: Search settings (default: no validation, the default PXRD screen).
        oracle, families, use_probabilities: The variant (:class:`BenchmarkVariant`).
        pattern_cache: A :class:`~specfusion_lib.inference.candidates.PatternCache` shared by
            the variants (same candidates, simulated once).
        progress: Show a progress bar.

    Returns:
        One row per compound (:data:`BENCHMARK_COLUMNS`): ``material_id``, ``formula``,
        ``nelements``, ``crystal_system``, ``predicted_system`` (most probable input system),
        ``system_probability``, ``labels_correct``, ``n_formulas``, ``n_templates``,
        ``top_formula``, ``top_system``, ``top_template``, ``top_level``, ``top_stage``,
        ``formula_correct``, ``system_correct``, ``correct``, ``top3_correct`` (the true
        (formula, system) among the first three distinct ones of the ranking),
        ``top_r_pxrd`` (R_PXRD of the answer), ``formula_enumerated`` (the true formula was
        among the enumerated ones), ``verdict`` and ``widened`` (with
        ``settings.no_match_r_pxrd``),
        ``n_templates_removed``, ``seconds``, ``note``.
    """
    variant = BenchmarkVariant(oracle=oracle, families=families,
                               use_probabilities=use_probabilities)
    return run_benchmark_variants(snapshot, compounds, crystal_probabilities, database,
                                  {"run": variant}, settings=settings, workers=1,
                                  pattern_cache=pattern_cache, progress=progress)["run"]


def run_benchmark_variants(
    snapshot: Snapshot,
    compounds: pd.DataFrame,
    crystal_probabilities: pd.DataFrame,
    database: TemplateDatabase | None,
    variants: Mapping[str, BenchmarkVariant],
    *,
    settings: SearchSettings | None = None,
    workers: int | None = 1,
    pattern_cache: Any = None,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """:func:`run_benchmark` for several variants, each compound's searches together.

    The variants of one compound run one after the other in the same process, so the
    candidates they share (most of them) are simulated and fitted once (one
    :class:`~specfusion_lib.inference.candidates.PatternCache` per process). With
    ``workers`` > 1 the compounds are shared out to that many processes (spawned; one
    thread each); every search is deterministic, so the tables are the same as with one.

    Args:
        snapshot, compounds, crystal_probabilities, database: As :func:`run_benchmark`.
        variants: Name → :class:`BenchmarkVariant`.
        settings: Search settings of the variants that have none of their own (default: no
            validation, the default screen).
        workers: Processes (1: this one; ``None``: the CPUs this process may use).
        pattern_cache: With one worker, the cache to use (default: a new one).
        progress: Show a progress bar (compounds done).

    Returns:
        Variant name → table (:func:`run_benchmark`), rows in the order of ``compounds``.
    """
    from specfusion_lib.inference.candidates import PatternCache

    s = settings or SearchSettings(n_validate=0)
    workers = available_cpus() if workers is None else int(workers)
    db = database or TemplateDatabase.from_snapshot(snapshot)
    targets = {mid: snapshot.structure(mid) for mid in compounds["material_id"]}
    probabilities = crystal_probabilities.reindex(
        [m for m in compounds["material_id"] if m in crystal_probabilities.index])
    start = time.perf_counter()
    logger.info("structure inference benchmark: %d compound(s), variants %s, %d worker(s)",
                len(compounds), ", ".join(variants), workers)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    bar = tqdm(total=len(compounds), desc="structure inference benchmark",
               disable=not progress)
    chunks = [compounds.iloc[i:i + 1] for i in range(len(compounds))]  # one compound each

    def collect(parts: Iterable[dict[str, list[dict[str, Any]]]]) -> None:
        for part in parts:
            for name in variants:
                rows[name].extend(part[name])
            bar.update(1)

    with bar:
        if workers <= 1 or len(chunks) < 2:
            cache = pattern_cache if pattern_cache is not None else PatternCache()
            collect(_search_compounds(chunk, targets, probabilities, db, variants, s, cache)
                    for chunk in chunks)
        else:
            # spawn: a forked copy of a process that already runs torch's thread pools can hang
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_init_worker, initargs=(db,)) as pool:
                futures = [pool.submit(_worker_search, chunk,
                                       {m: targets[m] for m in chunk["material_id"]},
                                       probabilities, variants, s) for chunk in chunks]
                collect(future.result() for future in futures)
    for name, table in rows.items():
        logger.info("structure inference benchmark, %s: %d of %d top-1 correct", name,
                    sum(r["correct"] for r in table), len(table))
    logger.info("structure inference benchmark done (%.1f s)", time.perf_counter() - start)
    return {name: pd.DataFrame(table, columns=list(BENCHMARK_COLUMNS))
            for name, table in rows.items()}


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(database: TemplateDatabase) -> None:
    """A benchmark worker: the template database, its own pattern cache, one thread."""
    from threadpoolctl import threadpool_limits

    from specfusion_lib.inference.candidates import PatternCache

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    _WORKER_STATE.update(database=database, cache=PatternCache())


def _worker_search(compounds: pd.DataFrame, targets: Mapping[str, Structure],
                   probabilities: pd.DataFrame, variants: Mapping[str, BenchmarkVariant],
                   settings: SearchSettings) -> dict[str, list[dict[str, Any]]]:
    return _search_compounds(compounds, targets, probabilities, _WORKER_STATE["database"],
                             variants, settings, _WORKER_STATE["cache"])


def _search_compounds(compounds: pd.DataFrame, targets: Mapping[str, Structure],
                      probabilities: pd.DataFrame, db: TemplateDatabase,
                      variants: Mapping[str, BenchmarkVariant], settings: SearchSettings,
                      cache: Any) -> dict[str, list[dict[str, Any]]]:
    """Every variant's row of each compound (:func:`run_benchmark`)."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for c in compounds.itertuples():
        pattern = simulate_pattern(targets[c.material_id])
        for name, v in variants.items():
            out[name].append(_search_compound(c, pattern, probabilities, db, v,
                                              v.settings or settings, cache))
    return out


def _search_compound(c: Any, pattern: Any, crystal_probabilities: pd.DataFrame,
                     db: TemplateDatabase, variant: BenchmarkVariant, s: SearchSettings,
                     pattern_cache: Any) -> dict[str, Any]:
    """One compound's benchmark row (:func:`run_benchmark`)."""
    t0 = time.perf_counter()
    if variant.oracle:  # the per-site truth: a mixed valence as its average state
        ox = getattr(c, "true_average_states", None) or c.true_oxidation_states
        cn = c.true_coordination_numbers
        probs: dict[str, float] = {c.crystal_system: 1.0}
    else:
        ox, cn = c.oxidation_states, c.coordination_numbers
        probs = _probabilities(crystal_probabilities.loc[c.material_id])
    ox = {el: v for el, v in ox.items() if el in TRANSITION_METALS}
    predicted = max(probs, key=probs.get)
    row: dict[str, Any] = {
        "material_id": c.material_id, "formula": c.formula, "nelements": c.nelements,
        "crystal_system": c.crystal_system, "predicted_system": predicted,
        "system_probability": probs[predicted],
        "labels_correct": True if variant.oracle else c.labels_correct,
        "n_formulas": 0, "n_templates": 0, "top_formula": "", "top_system": "",
        "top_template": "", "top_level": "", "top_stage": "", "note": "",
        "top3_correct": False, "top_r_pxrd": math.nan, "formula_enumerated": False,
        "verdict": "", "widened": False}
    templates = (db.without_family(c.material_id, variant.families)
                 if variant.families is not None else db.without_target(c.material_id))
    row["n_templates_removed"] = len(db) - len(templates)
    ox_probs = (_tm_probabilities(c) if variant.use_probabilities and not variant.oracle
                else None)
    try:
        result = infer_structure(
            c.elements, ox, cn, probs, templates, pxrd=pattern, settings=s,
            oxidation_state_probabilities=ox_probs, pattern_cache=pattern_cache)
    except SpecfusionError as exc:
        row["note"] = f"{type(exc).__name__}: {exc}"[:200]
        logger.warning("benchmark: search for %s (%s) failed: %s", c.material_id,
                       c.formula, row["note"])
    else:
        row["n_formulas"] = len(result.enumeration)
        row["formula_enumerated"] = c.formula in set(result.enumeration.formulas)
        row["verdict"], row["widened"] = result.verdict, result.widened
        row["n_templates"] = len(result.retrieval)
        top = result.top
        if top is None:
            row["note"] = "no template in the predicted crystal system(s)"
        else:
            row.update({"top_formula": top["formula"], "top_system": top["crystal_system"],
                        "top_template": top["template_formula"],
                        "top_level": top["level"], "top_stage": top["stage"]})
            answers = list(dict.fromkeys(zip(result.ranking["formula"],
                                             result.ranking["crystal_system"],
                                             strict=True)))[:3]
            row["top3_correct"] = (c.formula, c.crystal_system) in answers
            row["top_r_pxrd"] = float(top["r_pxrd"])
    row["formula_correct"] = row["top_formula"] == c.formula
    row["system_correct"] = row["top_system"] == c.crystal_system
    row["correct"] = bool(row["formula_correct"] and row["system_correct"])
    row["seconds"] = time.perf_counter() - t0
    return row


#: The mixed-valence compounds of the issue (each element on two kinds of site).
MIXED_VALENCE_FORMULAS: tuple[str, ...] = ("Fe3O4", "Co3O4", "Mn3O4")


def mixed_valence_ids(snapshot: Snapshot,
                      formulas: Sequence[str] = MIXED_VALENCE_FORMULAS) -> list[str]:
    """Ids of the snapshot's entries of ``formulas`` (the first entry of each, by id)."""
    m = snapshot.materials
    out = []
    for formula in formulas:
        ids = sorted(m.loc[m["formula"] == formula, "material_id"].astype(str))
        if ids:
            out.append(ids[0])
        else:
            logger.info("mixed-valence case %s is not in the snapshot", formula)
    return out


def mixed_valence_table(compounds: pd.DataFrame, results: Mapping[str, pd.DataFrame]
                        ) -> pd.DataFrame:
    """One row per (compound, variant) of the mixed-valence searches: the true average state,
    the model's average (:func:`~specfusion_lib.inference.search.expected_state`) and state
    probabilities, whether the model held the compound out, whether the formula was
    enumerated, the answer, top-1 and top-3."""
    from specfusion_lib.inference.search import expected_state

    info = compounds.set_index("material_id")
    rows = []
    for variant, table in results.items():
        for r in table.itertuples():
            c = info.loc[r.material_id]
            probs = _tm_probabilities(c)
            rows.append({
                "variant": variant, "material_id": r.material_id, "formula": r.formula,
                "crystal_system": r.crystal_system,
                "true_average_state": "; ".join(f"{el} {v:.2f}" for el, v in
                                                c["true_average_states"].items()),
                "model_average_state": "; ".join(f"{el} {expected_state(p):.2f}"
                                                 for el, p in probs.items()),
                "model_probabilities": "; ".join(
                    f"{el} " + " ".join(f"{q:+d}:{v:.2f}" for q, v in sorted(p.items())
                                        if v >= 0.01) for el, p in probs.items()),
                "ox_held_out": bool(c["ox_held_out"]),
                "enumerated": bool(r.formula_enumerated), "top_formula": r.top_formula,
                "top_system": r.top_system, "top_template": r.top_template,
                "top_r_pxrd": r.top_r_pxrd, "correct": bool(r.correct),
                "top3_correct": bool(r.top3_correct), "note": r.note})
    return pd.DataFrame(rows)


def system_input_accuracy(compounds: pd.DataFrame,
                          probabilities: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Top-1 / top-2 accuracy (Wilson 95 %) of crystal-system classifiers on the benchmark
    compounds, one row per classifier."""
    truth = compounds.set_index("material_id")["crystal_system"]
    rows = []
    for name, table in probabilities.items():
        ids = [m for m in truth.index if m in table.index]
        if not ids:
            rows.append({"classifier": name, "n": 0})
            continue
        p = table.loc[ids, [c for c in CRYSTAL_SYSTEMS if c in table.columns]]
        ranked = np.argsort(-p.to_numpy(), axis=1)
        names = np.array(p.columns)
        top1 = int(sum(names[r[0]] == truth[m] for m, r in zip(ids, ranked, strict=True)))
        top2 = int(sum(truth[m] in names[r[:2]] for m, r in zip(ids, ranked, strict=True)))
        lo, hi = wilson_interval(top1, len(ids))
        rows.append({"classifier": name, "n": len(ids), "top1": top1 / len(ids),
                     "top1_ci_low": lo, "top1_ci_high": hi, "top2": top2 / len(ids)})
    return pd.DataFrame(rows, columns=["classifier", "n", "top1", "top1_ci_low",
                                       "top1_ci_high", "top2"])


def validation_part(material_ids: Sequence[str], *, seed: int = 0,
                    fraction: float = 0.5) -> set[str]:
    """A fixed part of the benchmark compounds on which the no-match threshold is set (the
    rest is scored): a seeded hash order of the ids, so it does not depend on their order."""
    import hashlib

    ids = sorted(set(map(str, material_ids)),
                 key=lambda m: hashlib.sha256(f"{seed}:{m}".encode()).hexdigest())
    return set(ids[: int(round(fraction * len(ids)))])


def no_match_threshold(table: pd.DataFrame, validation: set[str], *,
                       keep: float = 0.9) -> float:
    """R_PXRD threshold above which an answer counts as no match: the ``keep`` quantile of
    ``top_r_pxrd`` over the right top-1 answers of the validation compounds (so that part keeps
    that share of its right answers); NaN when the part has no right answer."""
    part = table[table["material_id"].isin(validation) & table["correct"].astype(bool)]
    values = part["top_r_pxrd"].dropna()
    return float(np.quantile(values, keep)) if len(values) else math.nan


def no_match_scores(table: pd.DataFrame, threshold: float, validation: set[str]
                    ) -> pd.DataFrame:
    """What the verdict does on each part: right answers kept as matches, wrong answers
    turned into "no match" (``top_r_pxrd`` above ``threshold``; a search without an answer
    is a no match).

    Returns:
        One row per part (``validation``, ``scoring``): ``n``, ``right``, ``right_kept``,
        ``wrong``, ``wrong_flagged``, ``threshold``.
    """
    rows = []
    for part, mask in (("validation", table["material_id"].isin(validation)),
                       ("scoring", ~table["material_id"].isin(validation))):
        sub = table[mask]
        right = sub["correct"].astype(bool)
        r = sub["top_r_pxrd"].astype(float)
        no_match = ~(r <= threshold)
        rows.append({"part": part, "n": len(sub), "right": int(right.sum()),
                     "right_kept": int((right & ~no_match).sum()),
                     "wrong": int((~right).sum()),
                     "wrong_flagged": int((~right & no_match).sum()), "threshold": threshold})
    return pd.DataFrame(rows)


def accuracy_by_nelements(results: Mapping[str, pd.DataFrame],
                          validation: set[str] | None = None) -> pd.DataFrame:
    """Top-1 accuracy per number of elements (and overall) for each benchmark variant.

    Args:
        results: Variant name (``"predicted inputs"``, ``"true inputs"``, ...) →
            :func:`run_benchmark` table.
        validation: The validation part (:func:`validation_part`): adds the groups
            ``"validation part"`` (``nelements`` −1; search settings were compared on it) and
            ``"scoring part"`` (−2; never used for a choice).

    Returns:
        One row per (variant, group): ``variant``, ``nelements`` (0 for "all"),
        ``group`` (``binary``, …, ``all``, and the two parts), ``n``, ``correct``,
        ``top1_accuracy``,
        ``ci_low``, ``ci_high`` (Wilson 95 %), ``top3_correct``, ``top3_accuracy``,
        ``top3_ci_low``, ``top3_ci_high``, ``formula_accuracy``, ``system_accuracy``,
        ``paper_value``.
    """
    rows = []
    for variant, table in results.items():
        groups = [(int(k), g) for k, g in table.groupby("nelements")] if len(table) else []
        if validation is not None and len(table):
            in_val = table["material_id"].isin(validation)
            groups += [(-1, table[in_val]), (-2, table[~in_val])]
        for k, g in [*groups, (0, table)]:
            n, ok = len(g), int(g["correct"].sum()) if len(g) else 0
            lo, hi = wilson_interval(ok, n)
            ok3 = int(g["top3_correct"].sum()) if n and "top3_correct" in g else 0
            lo3, hi3 = wilson_interval(ok3, n)
            rows.append({
                "variant": variant, "nelements": k,
                "group": {0: "all", -1: "validation part", -2: "scoring part"}.get(
                    k, N_ELEMENT_NAMES.get(k, f"{k} elements")),
                "n": n, "correct": ok, "top1_accuracy": ok / n if n else math.nan,
                "ci_low": lo, "ci_high": hi, "top3_correct": ok3,
                "top3_accuracy": ok3 / n if n else math.nan, "top3_ci_low": lo3,
                "top3_ci_high": hi3,
                "formula_accuracy": float(g["formula_correct"].mean()) if n else math.nan,
                "system_accuracy": float(g["system_correct"].mean()) if n else math.nan,
                "paper_value": FIG5B_TOP1.text})
    return pd.DataFrame(rows, columns=["variant", "nelements", "group", "n", "correct",
                                       "top1_accuracy", "ci_low", "ci_high", "top3_correct",
                                       "top3_accuracy", "top3_ci_low", "top3_ci_high",
                                       "formula_accuracy", "system_accuracy", "paper_value"])


def validate_examples(
    snapshot: Snapshot,
    compounds: pd.DataFrame,
    crystal_probabilities: pd.DataFrame,
    database: TemplateDatabase | None = None,
    *,
    n_compounds: int = 2,
    settings: SearchSettings | None = None,
    modes: Sequence[str] = ("feff",),
    forward_model: Any = None,
    hybrid_validate: int = 1,
    use_probabilities: bool = True,
    relaxer: Any = None,
    xanes_simulator: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The search with XANES for a few benchmark compounds, in one or more ranking modes.

    The compounds are the first ``n_compounds`` (by material id) whose every TM has a
    spectrum in the snapshot; those spectra are the XANES input. Each compound is searched
    once per mode of ``modes`` (:data:`~specfusion_lib.inference.search.RANKING_MODES`):
    ``"feff"`` relaxes (CHGNet) and simulates (FEFF10) the PXRD screen's best
    ``settings.n_validate``; ``"model"`` scores every screened candidate with
    ``forward_model`` and runs neither; ``"hybrid"`` lets the model order the screen and
    validates only its best ``hybrid_validate`` with CHGNet + FEFF10. The seconds of each
    search are the cost of the mode.

    Returns:
        One row per (compound, mode): ``material_id``, ``formula``, ``nelements``,
        ``crystal_system``, ``ranking``, ``top_formula``, ``top_system``, ``top_template``,
        ``correct``, ``r_pxrd``, ``xanes_similarity``, ``n_validated``, ``seconds``,
        ``note``.
    """
    s = settings or SearchSettings(n_validate=2)
    s = replace(s, n_validate=max(1, s.n_validate))
    db = database or TemplateDatabase.from_snapshot(snapshot)
    chosen = []
    for c in compounds.sort_values("material_id").itertuples():
        tms = [el for el in c.elements if el in TRANSITION_METALS]
        spectra = snapshot_xanes(snapshot, c.material_id, tms)
        if tms and set(tms) <= set(spectra):
            chosen.append((c, spectra))
        if len(chosen) >= n_compounds:
            break
    rows = []
    start = time.perf_counter()
    logger.info("search with XANES of %d compound(s), ranking %s", len(chosen),
                ", ".join(modes))
    for (c, spectra), mode in tqdm([(x, m) for x in chosen for m in modes],
                                   desc="searches with XANES", disable=not progress):
        t0 = time.perf_counter()
        row: dict[str, Any] = {"material_id": c.material_id, "formula": c.formula,
                               "nelements": c.nelements, "crystal_system": c.crystal_system,
                               "ranking": mode, "top_formula": "", "top_system": "",
                               "top_template": "", "correct": False, "r_pxrd": math.nan,
                               "xanes_similarity": math.nan, "n_validated": 0, "note": ""}
        ox = {el: v for el, v in c.oxidation_states.items() if el in TRANSITION_METALS}
        ox_probs = _tm_probabilities(c) if use_probabilities else None
        mode_settings = replace(s, ranking=mode, n_validate=hybrid_validate
                                if mode == "hybrid" else s.n_validate)
        try:
            result = infer_structure(
                c.elements, ox, c.coordination_numbers,
                _probabilities(crystal_probabilities.loc[c.material_id]),
                db.without_target(c.material_id),
                pxrd=simulate_pattern(snapshot.structure(c.material_id)), xanes=spectra,
                settings=mode_settings, relaxer=relaxer, xanes_simulator=xanes_simulator,
                oxidation_state_probabilities=ox_probs, forward_model=forward_model)
        except SpecfusionError as exc:
            row["note"] = f"{type(exc).__name__}: {exc}"[:200]
            logger.warning("search of %s (%s), ranking %s, failed: %s", c.material_id,
                           c.formula, mode, row["note"])
        else:
            top = result.top
            row["n_validated"] = len(result.validation)
            if top is None:
                row["note"] = "no template in the predicted crystal system(s)"
            else:
                row.update({"top_formula": top["formula"], "top_system": top["crystal_system"],
                            "top_template": top["template_formula"], "r_pxrd": top["r_pxrd"],
                            "xanes_similarity": top["xanes_similarity"],
                            "correct": bool(top["formula"] == c.formula
                                            and top["crystal_system"] == c.crystal_system)})
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    logger.info("searches with XANES done: %d of %d correct (%.1f s)",
                sum(r["correct"] for r in rows), len(rows), time.perf_counter() - start)
    return pd.DataFrame(rows, columns=["material_id", "formula", "nelements", "crystal_system",
                                       "ranking", "top_formula", "top_system", "top_template",
                                       "correct", "r_pxrd", "xanes_similarity", "n_validated",
                                       "seconds", "note"])
