"""FEFF10 throughput per preset and agreement between presets, through the cached runner.

For the first ``--n`` compounds (the ten simple oxides of SPEC §9 as textbook structures, in
the order MnO, NiO, ZnO, Cr2O3, MnO2, Fe2O3, FeO, VO, CdO, V2O3, then the named compounds of
the demo pool ``--pool``, CHGNet-relaxed; K edge of the first transition metal) this

1. runs the ``fast`` preset with :func:`specfusion_lib.simulate.runner.run_jobs` into a
   :class:`~specfusion_lib.simulate.cache.SpectrumCache` (default
   ``data/benchmark_cache/feff``, committed, so that a rerun only reads the cache) and
   reports the FEFF wall time per spectrum (one FEFF run per inequivalent site) and the
   spectra per hour per core (one FEFF run uses one core);
2. with ``--paper``, does the same with the ``paper`` preset (SI cards; ~2-5 minutes per
   spectrum on one core) for the first ``--paper-n`` compounds;
3. for every compound with both presets in the cache (computed now or earlier), compares the
   site-averaged spectra: both are preprocessed with
   :func:`specfusion_lib.spectra.xanes.preprocess_xanes` (max-derivative E0, edge-step
   normalisation, 200 points on E0 - 10 ... E0 + 46 eV) and aligned with
   :func:`~specfusion_lib.spectra.xanes.align_by_correlation`; it prints the Pearson
   correlation at zero shift (E0 alignment only) and after the best shift;
4. unless ``--no-measured``, compares the fast preset with measured spectra: every record of
   ``experiment.csv`` (:func:`specfusion_lib.data.measured.read_measured_xanes`) is matched to
   a compound of the snapshot ``--snapshot`` (default the committed demo, whose spectra are the
   fast preset; :func:`specfusion_lib.measured.study.match_measured`) and the two spectra are
   compared by :func:`specfusion_lib.measured.domain_shift.spectral_agreement`: Pearson r with each
   spectrum on its own E0 (what the models see), after the best shift of the simulated window
   (E0 alignment by correlation, within 15 eV) and, in addition, with the simulated μ(E)
   Gaussian-broadened to the FWHM that fits best.

Per-spectrum times are the FEFF wall times stored in the cache with each spectrum, so they
describe the machine and load at the time the spectrum was computed (the load average is
printed; SPEC §9 notes two FEFF processes on two cores run at full speed each when the cores
are otherwise idle). ``this run`` also reports the throughput of the current call, spectra per
hour of wall time per worker, when anything was computed.

Usage::

    python benchmarks/feff.py [--n 4] [--paper [--paper-n 1]] [--workers 2] [--pool DIR]
                              [--cache DIR] [--scheduler tcp://host:8786]
                              [--snapshot data/demo | --no-measured]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import SpecfusionError
from specfusion_lib.simulate import feff
from specfusion_lib.simulate.cache import SpectrumCache
from specfusion_lib.simulate.runner import (
    RunReport,
    SiteJob,
    assemble_spectra,
    job_keys,
    plan_jobs,
    run_jobs,
)
from specfusion_lib.spectra.xanes import XANESSpectrum, align_by_correlation, preprocess_xanes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "data" / "benchmark_cache" / "feff"
DEFAULT_POOL = ROOT / "data" / "demo_build" / "pool"
DEFAULT_SNAPSHOT = ROOT / "data" / "demo"


def _oxides() -> dict[str, tuple[Structure, str]]:
    """The simple oxides of SPEC §9 (textbook structures): name -> (structure, absorber)."""

    def rocksalt(metal: str, a: float) -> Structure:
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [metal, "O"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]])

    def corundum(metal: str, a: float, c: float, z: float, x: float) -> Structure:
        return Structure.from_spacegroup("R-3c", Lattice.hexagonal(a, c), [metal, "O"],
                                         [[0, 0, z], [x, 0, 0.25]])

    return {
        "MnO": (rocksalt("Mn", 4.445), "Mn"),
        "NiO": (rocksalt("Ni", 4.177), "Ni"),
        # wurtzite: a = 3.250 Å, c = 5.207 Å, u = 0.3825
        "ZnO": (Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.250, 5.207),
                                          ["Zn", "O"], [[1 / 3, 2 / 3, 0],
                                                        [1 / 3, 2 / 3, 0.3825]]), "Zn"),
        # corundum type: Cr2O3 (eskolaite), Fe2O3 (hematite), V2O3 (karelianite)
        "Cr2O3": (corundum("Cr", 4.959, 13.594, 0.3475, 0.3058), "Cr"),
        # rutile type (pyrolusite): a = 4.398 Å, c = 2.873 Å, O x = 0.3046
        "MnO2": (Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.398, 2.873),
                                           ["Mn", "O"], [[0, 0, 0], [0.3046, 0.3046, 0]]),
                 "Mn"),
        "Fe2O3": (corundum("Fe", 5.036, 13.749, 0.3553, 0.3059), "Fe"),
        "FeO": (rocksalt("Fe", 4.307), "Fe"),
        "VO": (rocksalt("V", 4.08), "V"),
        "CdO": (rocksalt("Cd", 4.695), "Cd"),
        "V2O3": (corundum("V", 4.952, 14.003, 0.3463, 0.3117), "V"),
    }


def _pool_compounds(pool_dir: Path) -> dict[str, tuple[Structure, str]]:
    """Named compounds of the demo pool (CHGNet-relaxed): name -> (structure, absorber).

    The absorber is the compound's first transition metal in alphabetical order; compounds
    sharing a reduced formula with one of :func:`_oxides` are left out.
    """
    from specfusion_lib.core.elements import is_transition_metal
    from specfusion_lib.data.demo_pool import load_pool

    out = {}
    for entry in sorted(load_pool(pool_dir), key=lambda e: e.candidate_id):
        name = entry.provenance.get("named")
        if not name or name in out:
            continue
        metals = sorted({s.specie.symbol for s in entry.structure
                         if is_transition_metal(s.specie.symbol)})
        out[str(name)] = (entry.structure, metals[0])
    return out


def _compounds(n: int, pool_dir: Path | None) -> tuple[dict[str, Structure],
                                                       dict[str, list[str]]]:
    """Structures and absorbing element of the first n compounds: the ten oxides, then the
    named compounds of the demo pool (when ``pool_dir`` holds one)."""
    table = _oxides()
    if pool_dir is not None and pool_dir.is_dir():
        table |= {k: v for k, v in _pool_compounds(pool_dir).items() if k not in table}
    chosen = list(table.items())[:n]
    if len(chosen) < n:
        print(f"# only {len(chosen)} compounds available (asked for {n}); "
              "pass --pool with a built demo pool for more")
    return ({name: s for name, (s, _) in chosen}, {name: [el] for name, (_, el) in chosen})


def _site_times(jobs: list[SiteJob], cache: SpectrumCache) -> dict[str, tuple[str, float]]:
    """Stored FEFF wall times of the jobs' spectra: key -> (label, seconds)."""
    times = {}
    for job, key in zip(jobs, job_keys(jobs, cache), strict=True):
        entry = None if key is None else cache.get(key)
        if entry is not None and not entry.failed:
            label = f"{job.material_id}:{job.element}{job.site_index}"
            times[key] = (label, float(entry.spectrum.wall_time_s))
    return times


def _throughput(preset: str, jobs: list[SiteJob], cache: SpectrumCache,
                report: RunReport | None) -> None:
    stored = _site_times(jobs, cache)
    if not stored:
        print(f"{preset:6s}: no spectra in the cache")
        return
    times = [t for _, t in stored.values()]
    mean = statistics.fmean(times)
    print(f"{preset:6s}: {len(times)} spectra, FEFF s/spectrum mean {mean:.1f} "
          f"median {statistics.median(times):.1f} min {min(times):.1f} max {max(times):.1f}"
          f" -> {3600.0 / mean:.0f} spectra/hour/core")
    print("        per spectrum (s): "
          + ", ".join(f"{label} {t:.1f}" for label, t in stored.values()))
    if report is not None and report.n_computed:
        per_worker = 3600.0 * report.n_computed / report.wall_time_s / report.workers
        print(f"        this run: {report.n_computed} computed in {report.wall_time_s:.0f} s "
              f"on {report.workers} {report.executor} worker(s) -> {per_worker:.0f} "
              "spectra/hour/worker (wall clock, cache and planning included)")
    if report is not None and report.failures:
        for failure in report.failures:
            print(f"        FAILED {failure.job.label}: {failure.message.splitlines()[0]}")


def _run(preset: str, structures: dict, elements: dict, cache: SpectrumCache,
         args: argparse.Namespace) -> tuple[list[SiteJob], RunReport]:
    jobs = plan_jobs(structures, elements, preset=preset)
    report = run_jobs(jobs, cache, executor=args.executor, workers=args.workers,
                      scheduler_address=args.scheduler, progress=True)
    print(f"# {report.summary()}")
    return jobs, report


def _correlations(structures: dict, elements: dict, cache: SpectrumCache) -> None:
    fast = assemble_spectra(plan_jobs(structures, elements, preset="fast"), cache, warn=False)
    paper = assemble_spectra(plan_jobs(structures, elements, preset="paper"), cache,
                             warn=False)
    common = [k for k in fast if k in paper]
    if not common:
        print("# preset agreement: no compound has both presets in the cache "
              "(run with --paper)")
        return
    print("# preset agreement, fast vs paper (preprocess_xanes, window E0-10..E0+46 eV):")
    print(f"{'material':11s} {'elem':4s} {'E0fast':>9s} {'E0paper':>9s} {'r(E0)':>7s} "
          f"{'shift':>6s} {'r(aligned)':>10s}")
    rs = []
    for key in common:
        mid, element, edge = key
        try:
            pf = preprocess_xanes(XANESSpectrum(fast[key].energy, fast[key].mu, element, edge))
            pp = preprocess_xanes(XANESSpectrum(paper[key].energy, paper[key].mu, element,
                                                edge))
            r0 = align_by_correlation(pf, pp, max_shift_ev=0.0).correlation
            best = align_by_correlation(pf, pp)
        except SpecfusionError as exc:
            print(f"{mid:11s} {element:4s} cannot compare: {exc}")
            continue
        rs.append(best.correlation)
        print(f"{mid:11s} {element:4s} {pf.e0:9.1f} {pp.e0:9.1f} {r0:7.3f} "
              f"{best.shift_ev:+6.1f} {best.correlation:10.3f}")
    if rs:
        print(f"# aligned Pearson r over {len(rs)} compound(s): min {min(rs):.3f} "
              f"median {statistics.median(rs):.3f} max {max(rs):.3f}")


def _measured_agreement(snapshot_dir: Path) -> None:
    """Fast-preset spectra of the snapshot against the measured spectra of experiment.csv."""
    from specfusion_lib.data.measured import read_measured_xanes
    from specfusion_lib.data.snapshot import load_snapshot
    from specfusion_lib.measured.domain_shift import spectral_agreement
    from specfusion_lib.measured.study import match_measured

    snapshot = load_snapshot(snapshot_dir)
    preset = snapshot.manifest.get("simulation", {}).get("preset", "?")
    records = read_measured_xanes()
    matches = match_measured(records, snapshot)
    print(f"# simulated ({snapshot_dir.name}, preset {preset}) vs measured (experiment.csv): "
          "Pearson r on the preprocessed spectra (200 points, E0-10..E0+46 eV)")
    print(f"{'record':24s} {'formula':8s} {'entry':18s} {'r(E0)':>7s} {'shift':>6s} "
          f"{'r(aligned)':>10s} {'FWHM':>5s} {'r(broad.)':>9s}")
    r0s, ras, rbs, missing = [], [], [], []
    for rec in records:
        match = matches[rec.key]
        if match.simulated is None:
            missing.append(f"{rec.formula} {rec.element}")
            continue
        try:
            agr = spectral_agreement(rec.spectrum, match.simulated)
        except SpecfusionError as exc:
            print(f"{rec.key:24s} {rec.formula:8s} cannot compare: {exc}")
            continue
        r0s.append(agr.pearson_e0)
        ras.append(agr.pearson_aligned)
        rbs.append(agr.pearson_broadened)
        print(f"{rec.key:24s} {rec.formula:8s} {match.material_id:18s} {agr.pearson_e0:7.3f} "
              f"{agr.shift_ev:+6.1f} {agr.pearson_aligned:10.3f} {agr.best_fwhm_ev:5.1f} "
              f"{agr.pearson_broadened:9.3f}")
    if r0s:
        print(f"# {len(r0s)} measured spectra compared; median r: own E0 "
              f"{statistics.median(r0s):.3f}, aligned {statistics.median(ras):.3f}, aligned + "
              f"broadened {statistics.median(rbs):.3f}")
    if missing:
        print(f"# no simulated spectrum in the snapshot for {len(missing)} record(s): "
              + ", ".join(missing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4,
                        help="number of compounds: the ten oxides, then named pool compounds")
    parser.add_argument("--pool", type=Path, default=DEFAULT_POOL,
                        help="demo structure pool supplying compounds beyond the ten oxides")
    parser.add_argument("--paper", action="store_true",
                        help="also run the paper preset (SI cards; minutes per spectrum)")
    parser.add_argument("--paper-n", type=int, default=None,
                        help="compounds for the paper preset (default: --n)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--executor", default="auto",
                        choices=["auto", "process", "serial", "dask"])
    parser.add_argument("--workers", type=int, default=None,
                        help="process-pool workers (default: all cores)")
    parser.add_argument("--scheduler", default=None, help="dask scheduler address")
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT,
                        help="snapshot whose simulated spectra are compared with measured ones")
    parser.add_argument("--no-measured", action="store_true",
                        help="skip the comparison with the measured spectra")
    args = parser.parse_args()

    cache = SpectrumCache(args.cache)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    print(f"# {feff.feff_version()} on {platform.machine()} / {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; cache {cache.root}")
    structures, elements = _compounds(args.n, args.pool)
    print(f"# compounds: {', '.join(f'{m} ({e[0]})' for m, e in elements.items())}")
    t0 = time.perf_counter()

    jobs, report = _run("fast", structures, elements, cache, args)
    _throughput("fast", jobs, cache, report)

    k = args.n if args.paper_n is None else args.paper_n
    paper_structures = dict(list(structures.items())[:k])
    paper_elements = {m: elements[m] for m in paper_structures}
    paper_report = None
    if args.paper:
        paper_jobs, paper_report = _run("paper", paper_structures, paper_elements, cache, args)
    else:
        paper_jobs = plan_jobs(structures, elements, preset="paper")
    _throughput("paper", paper_jobs, cache, paper_report)

    _correlations(structures, elements, cache)
    if not args.no_measured:
        _measured_agreement(args.snapshot)
    print(f"# total wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
