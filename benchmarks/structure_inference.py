"""Wall time of the structure inference (SI §S2): the cheap stages and the full search.

1. **Enumeration + retrieval** (target under 1 s): charge-balanced formulas of Ca–Mn–Al–O
   with Mn³⁺ and template retrieval against every structure of the snapshot (``--data``),
   crystal system orthorhombic, Mn CN 6. The first call includes the lazy per-template work
   (parsing structures, oxidation states); the warm figure is the median of ``--repeat``
   calls on the same database, as in a benchmark over many compounds.
2. **Full search** (target under 5 minutes on 2 cores): :func:`~specfusion_lib.inference.
   search.infer_structure` for ``--formula`` (default DyCrO3, whose orthorhombic perovskite
   has enough templates for four candidates) with its simulated PXRD pattern and its TM
   K-edge XANES as inputs (the snapshot's spectrum; simulated with FEFF10 before the timing
   when the snapshot lacks it), the true TM oxidation states and CNs, the crystal system
   with probability 1, and ``--n-candidates`` candidates relaxed with CHGNet (one torch
   thread) and simulated with FEFF10 (``fast`` preset, ``--workers`` processes, no cache, so
   every spectrum is computed). The compound's own entry is removed from the templates.

3. **Ranking modes** (``--ranking all``): the same full search with ``ranking="feff"``
   (CHGNet + FEFF10 for ``--n-candidates``), ``"model"`` (the shipped CGXAS forward model
   scores every screened candidate's XANES; no CHGNet, no FEFF) and ``"hybrid"`` (the model
   orders the screen; CHGNet + FEFF10 for its best one only): seconds per search and the
   answer of each.

4. **PXRD screen with cell refinement** (``--screen``): the search without validation for
   ``--formula`` (own entry removed, true inputs, every crystal system) with
   ``refine_lattice`` off and on: seconds of the screen stage, seconds per screened
   candidate, how many were refined to the end, and the answer with its R_PXRD.

The load average is printed: FEFF and CHGNet times scale with how busy the cores are.

Usage::

    python benchmarks/structure_inference.py [--data data/demo] [--formula DyCrO3]
        [--n-candidates 4] [--workers 2] [--repeat 5] [--skip-full]
        [--ranking feff|model|hybrid|all] [--screen]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def enumeration_and_retrieval(database, repeat: int) -> dict[str, float]:
    """Seconds of enumeration + retrieval for Ca–Mn–Al–O (first call and warm median)."""
    from specfusion_lib.inference.formulas import enumerate_formulas
    from specfusion_lib.inference.templates import retrieve_templates

    def once() -> tuple[float, float, int, int]:
        t0 = time.perf_counter()
        enum = enumerate_formulas(["Ca", "Mn", "Al", "O"], {"Mn": 3})
        t1 = time.perf_counter()
        found = retrieve_templates(enum, database, "orthorhombic", {"Mn": 6})
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, len(enum), len(found)

    first = once()
    warm = [once() for _ in range(repeat)]
    return {"first_enumeration_s": first[0], "first_retrieval_s": first[1],
            "first_total_s": first[0] + first[1],
            "warm_enumeration_s": statistics.median(w[0] for w in warm),
            "warm_retrieval_s": statistics.median(w[1] for w in warm),
            "warm_total_s": statistics.median(w[0] + w[1] for w in warm),
            "n_formulas": first[2], "n_matches": first[3]}


def full_search(snapshot, database, formula: str, n_candidates: int, workers: int,
                ranking: str = "feff") -> None:
    """Run and print the timed full search (module docstring, parts 2 and 3)."""
    import torch

    from specfusion_lib.core.elements import TRANSITION_METALS
    from specfusion_lib.inference.benchmark import snapshot_xanes, true_site_labels
    from specfusion_lib.inference.candidates import FeffXanesSimulator, chgnet_relaxer_for_search
    from specfusion_lib.inference.search import SearchSettings, infer_structure
    from specfusion_lib.simulate.feff import simulate_xanes
    from specfusion_lib.spectra.pxrd import simulate_pattern
    from specfusion_lib.spectra.xanes import XANESSpectrum

    torch.set_num_threads(1)
    rows = snapshot.materials[snapshot.materials["formula"] == formula]
    if rows.empty:
        print(f"full search: {formula} is not in {snapshot.path}; skipped")
        return
    row = rows.sort_values("material_id").iloc[0]
    mid = row["material_id"]
    structure = snapshot.structure(mid)
    tms = [el for el in row["elements"] if el in TRANSITION_METALS]
    spectra = snapshot_xanes(snapshot, mid, tms)
    for el in tms:
        if el not in spectra:
            t0 = time.perf_counter()
            sim = simulate_xanes(structure, el, material_id=mid)
            spectra[el] = XANESSpectrum(sim.energy, sim.mu, element=el, source=f"FEFF {mid}")
            print(f"input {el} K-edge XANES of {formula} simulated first (not in the "
                  f"snapshot): {time.perf_counter() - t0:.1f} s, not part of the timing")
    ox, cn = true_site_labels(snapshot.sites(mid))
    pattern = simulate_pattern(structure)
    settings = SearchSettings(n_screen=10, n_validate=1 if ranking == "hybrid" else n_candidates,
                              diverse_formulas=False, ranking=ranking)
    forward = None
    t0 = time.perf_counter()
    if ranking != "feff":
        from specfusion_lib.xas_structure.cgxas import CGXASForward
        from specfusion_lib.xas_structure.cgxas_study import SHIPPED_CHECKPOINT

        forward = CGXASForward.load(ROOT / SHIPPED_CHECKPOINT)
    relaxer = chgnet_relaxer_for_search() if ranking != "model" else None
    t_load = time.perf_counter() - t0
    simulator = FeffXanesSimulator(workers=workers)
    t0 = time.perf_counter()
    result = infer_structure(list(row["elements"]), ox, cn, row["crystal_system"],
                             database.without_target(mid), pxrd=pattern, xanes=spectra,
                             settings=settings, relaxer=relaxer, xanes_simulator=simulator,
                             forward_model=forward)
    total = time.perf_counter() - t0
    print(f"\nfull search of {formula} ({mid}, {len(structure)} atoms), ranking {ranking}, "
          f"load average before: {_load()}")
    print(f"  inputs: true oxidation states {ox}, CN {cn}, crystal system "
          f"{row['crystal_system']}; XANES {', '.join(spectra)}; own entry removed")
    print(f"  model load (CHGNet/CGXAS)  {t_load:8.2f} s (before the search)")
    for stage, seconds in result.timings.items():
        print(f"  {stage:<26} {seconds:8.2f} s")
    print(f"  total                      {total:8.2f} s   (target < 300 s on 2 cores)")
    v = result.validation
    print(f"  {len(v)} candidates validated, {len(result.spectra)} FEFF spectra; failures: "
          f"{simulator.failures_ or 'none'}")
    cols = ["candidate_id", "formula", "template_formula", "relaxed", "r_pxrd",
            "xanes_similarity", "validation_score"]
    print(v[cols].to_string(index=False))
    top = result.top
    print(f"  top-1: {top['formula']} ({top['crystal_system']}) from {top['template_formula']}"
          if top is not None else "  no candidate")


def screen_timing(snapshot, database, formula: str, n_screen: int = 40) -> None:
    """Print the PXRD screen's wall time without and with cell refinement (part 4)."""
    from specfusion_lib.data.structure_labels import crystal_system
    from specfusion_lib.inference.search import SearchSettings, infer_structure
    from specfusion_lib.inference.templates import RetrievalSettings
    from specfusion_lib.spectra.pxrd import simulate_pattern

    matches = snapshot.materials[snapshot.materials["formula"] == formula].sort_values(
        "material_id")
    if matches.empty:
        print(f"screen: {formula} is not in {snapshot.path}; skipped")
        return
    mid = str(matches["material_id"].iloc[0])
    structure = snapshot.structure(mid)
    elements = sorted({site.specie.symbol for site in structure})
    system = crystal_system(structure)
    retrieval = RetrievalSettings(max_crystal_systems=7, min_system_probability=0.0)
    pattern = simulate_pattern(structure)
    print(f"\nPXRD screen of {formula} ({mid}, {system}), {n_screen} candidates, every "
          f"crystal system (prior 0.5 on the true one)")
    systems = {name: (0.5 if name == system else 0.5 / 6) for name in
               ("cubic", "hexagonal", "trigonal", "tetragonal", "orthorhombic",
                "monoclinic", "triclinic")}
    for refine in (False, True):
        settings = SearchSettings(n_screen=n_screen, n_validate=0, refine_lattice=refine,
                                  retrieval=retrieval)
        t0 = time.perf_counter()
        result = infer_structure(elements, {}, {}, systems, database.without_target(mid),
                                 pxrd=pattern, settings=settings)
        total = time.perf_counter() - t0
        screen = result.timings["screen"]
        refined = (int(result.screen["r_pxrd_refined"].notna().sum())
                   if "r_pxrd_refined" in result.screen else 0)
        top = result.top
        print(f"  refine_lattice={refine!s:<5}  screen {screen:6.2f} s "
              f"({screen / max(len(result.screen), 1):.3f} s per candidate, {refined} refined "
              f"to the end), search {total:6.2f} s; top-1 {top['formula']} "
              f"({top['crystal_system']}) from {top['template_formula']}, R_PXRD "
              f"{float(top['r_pxrd']):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "demo"))
    parser.add_argument("--formula", default="DyCrO3")
    parser.add_argument("--n-candidates", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--ranking", default="feff", choices=("feff", "model", "hybrid", "all"))
    parser.add_argument("--screen", action="store_true",
                        help="time the PXRD screen without and with cell refinement")
    args = parser.parse_args()

    from specfusion_lib.data.sources import open_snapshot
    from specfusion_lib.inference.templates import TemplateDatabase

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {_load()}")
    snapshot = open_snapshot(args.data)
    t0 = time.perf_counter()
    database = TemplateDatabase.from_snapshot(snapshot)
    print(f"template database: {len(database)} structures of {args.data} "
          f"({time.perf_counter() - t0:.2f} s to index)")
    r = enumeration_and_retrieval(database, args.repeat)
    print(f"enumeration + retrieval, Ca-Mn-Al-O (Mn3+, CN 6, orthorhombic): "
          f"{r['n_formulas']} formulas, {r['n_matches']} template matches")
    print(f"  first call   {r['first_enumeration_s']:.3f} s + {r['first_retrieval_s']:.3f} s "
          f"= {r['first_total_s']:.3f} s")
    print(f"  warm median  {r['warm_enumeration_s']:.3f} s + {r['warm_retrieval_s']:.3f} s "
          f"= {r['warm_total_s']:.3f} s   (target < 1 s)")
    if args.screen:
        screen_timing(snapshot, database, args.formula)
    if not args.skip_full:
        modes = ("feff", "model", "hybrid") if args.ranking == "all" else (args.ranking,)
        for mode in modes:
            full_search(snapshot, database, args.formula, args.n_candidates, args.workers,
                        ranking=mode)


if __name__ == "__main__":
    main()
