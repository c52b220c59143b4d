"""FEFF10 K-edge spectra of the transition metals in the real Materials Project structures.

The real structures of ``data/real_structures/`` (:mod:`specfusion_lib.data.real_structures`)
carry real chemistry and real structure families that the substituted demo pool lacks. This
module runs the FEFF10 site jobs of their transition-metal K edges into one resumable cache
(default ``data/real_build/feff``), in the background, over as many runs as it takes:

* **Plan** (:func:`plan_real_jobs`): every inequivalent site of every transition metal
  (:data:`~specfusion_lib.core.elements.TRANSITION_METALS`) of the chosen parts, the
  ``check`` part first (the real-structure check needs its spectra; it is never trained on),
  then ``train``. Inside a part, materials in file order.
* **Run** (:func:`run_real_build`): :func:`~specfusion_lib.simulate.runner.run_jobs` with the
  retry ladder (:data:`~specfusion_lib.simulate.feff.RETRY_LADDER`), a per-stage timeout and
  a time budget (``max_minutes``: the run stops cleanly, keeping every finished spectrum,
  and the next run continues).
* **Snapshot** (:func:`build_real_snapshot`): the spectra the cache holds for one part,
  with the part's TM compounds and their structure-derived labels (crystal system, density,
  bond-valence oxidation states and CrystalNN coordination numbers per site, cached in
  ``<build>/labels``), written as a snapshot (source ``real-<part>``) that every notebook
  reads like the demo. A compound whose TM spectra are missing or failed has none; labels
  that cannot be computed stay absent.
* **Report** (:func:`build_report`, written to ``<build>/report.json`` after every run):
  jobs planned, done, failed; failures on the first attempt (the rate *before* the ladder)
  and after it, the rescues per ladder rung, per element and part; compounds and structure
  families per absorbing element, planned and complete; the FEFF settings used
  (preset cards; spectra a rung rescued keep their own cards in the cache); the commit of
  the code that ran.

Command line::

    python -m specfusion_lib.data.real_spectra --parts check train --preset fast-scf \\
        --max-minutes 150
    python -m specfusion_lib.data.real_spectra --snapshot check build/real_check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from specfusion_lib.core.atomic import atomic_write_text
from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.data.real_structures import load_real_structures
from specfusion_lib.simulate import feff
from specfusion_lib.simulate.cache import SpectrumCache
from specfusion_lib.simulate.runner import RunReport, SiteJob, job_keys, plan_jobs, run_jobs

#: Where the labels of a real-structure snapshot come from.
REAL_LABEL_SOURCES = {
    "crystal_system": "spglib (symprec 0.1) on the Materials Project structure",
    "density": "computed from the Materials Project structure",
}

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BUILD_DIR",
    "DEFAULT_PRESET",
    "build_real_snapshot",
    "build_report",
    "plan_real_jobs",
    "run_real_build",
]

#: Build folder (``feff/`` cache, ``report.json``).
DEFAULT_BUILD_DIR: Path = Path(__file__).resolve().parents[2] / "data" / "real_build"
#: Preset of the real-structure spectra (chosen on the development half of the measured
#: compounds, see :mod:`specfusion_lib.measured.preset_study`).
DEFAULT_PRESET = "fast-scf"
#: Seconds allowed per FEFF stage (a hung stage fails the attempt, the ladder goes on).
STAGE_TIMEOUT_S = 600.0
_PART_ORDER = ("check", "train")


def plan_real_jobs(parts: Sequence[str] = _PART_ORDER, preset: str = DEFAULT_PRESET, *,
                   max_materials: int | None = None) -> list[SiteJob]:
    """Site jobs of every TM K edge of the real structures, ``check`` first.

    Material ids are prefixed with the part (``check:mp-123``) so that a structure present
    in both parts is never confused.

    Args:
        parts: Parts in the order to plan them.
        preset: FEFF card preset.
        max_materials: Only the first TM compounds of each part (a trial run).

    Raises:
        ConfigurationError: An unknown part.
    """
    jobs: list[SiteJob] = []
    for part in parts:
        if part not in _PART_ORDER:
            raise ConfigurationError(f"unknown real-structure part {part!r}; "
                                     f"choose from {_PART_ORDER}")
        data = load_real_structures(part)
        structures, plan = {}, {}
        for mid, structure in zip(data.material_ids, data.structures, strict=True):
            metals = sorted({e.symbol for e in structure.composition.elements}
                            & set(TRANSITION_METALS))
            if metals and (max_materials is None or len(plan) < max_materials):
                key = f"{part}:{mid}"
                structures[key] = structure
                plan[key] = metals
        jobs.extend(plan_jobs(structures, plan, edge="K", preset=preset))
    return jobs


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no", "specfusion_lib"],
                               capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def _coverage(jobs: Sequence[SiteJob], done_sites: set[int]) -> dict[str, dict[str, int]]:
    """Per absorbing element: compounds and structure families planned and complete (every
    site of the element done), from the family keys of the real-structure files."""
    families: dict[str, str] = {}
    for part in sorted({j.material_id.split(":", 1)[0] for j in jobs}):
        data = load_real_structures(part)
        families.update({f"{part}:{m}": f"{part}:{f}" for m, f in
                         zip(data.material_ids, data.families, strict=True)})
    complete: dict[tuple[str, str], bool] = {}
    for i, job in enumerate(jobs):
        key = (job.material_id, job.element)
        complete[key] = complete.get(key, True) and i in done_sites
    out: dict[str, dict[str, int]] = {}
    for (_, element), ok in sorted(complete.items()):
        row = out.setdefault(element, {"compounds": 0, "compounds_done": 0})
        row["compounds"] += 1
        row["compounds_done"] += int(ok)
    for element, row in out.items():
        keys = [(mid, ok) for (mid, el), ok in complete.items() if el == element]
        row["families"] = len({families[m] for m, _ in keys})
        row["families_done"] = len({families[m] for m, ok in keys if ok})
    return out


def build_report(jobs: Sequence[SiteJob], cache: SpectrumCache) -> dict[str, Any]:
    """Counts of the build from the cache (see the module docstring)."""
    keys = job_keys(jobs, cache)
    done_sites: set[int] = set()
    per: dict[str, Counter] = defaultdict(Counter)
    rescued: Counter = Counter()
    failed_stages: Counter = Counter()
    failures = []
    for index, (job, key) in enumerate(zip(jobs, keys, strict=True)):
        part = job.material_id.split(":", 1)[0]
        entry = cache.get(key) if key else None
        for group in (f"part:{part}", f"element:{job.element}", "all"):
            per[group]["planned"] += 1
            if entry is None:
                continue
            per[group]["attempted"] += 1
            if entry.failed:
                per[group]["failed"] += 1
                per[group]["failed_first"] += 1
            else:
                per[group]["done"] += 1
                done_sites.add(index)
                if entry.spectrum.retry:
                    per[group]["failed_first"] += 1
                    per[group]["rescued"] += 1
        if entry is not None and entry.failed:
            failed_stages[entry.stage or "unknown"] += 1
            failures.append({"material": job.material_id, "formula": job.formula,
                             "element": job.element, "site": job.site_index,
                             "stage": entry.stage,
                             "error": (entry.error or "").strip().splitlines()[0][:300]})
        elif entry is not None and entry.spectrum.retry:
            rescued[entry.spectrum.retry] += 1
    def rates(c: Counter) -> dict[str, Any]:
        n = c["attempted"]
        return {**dict(c), "failure_rate_first_attempt": c["failed_first"] / n if n else None,
                "failure_rate_after_ladder": c["failed"] / n if n else None}
    presets = sorted({j.preset for j in jobs})
    return {
        "presets": {p: feff.preset_cards(p) for p in presets},
        "retry_ladder": [{"name": s.name, "overrides": dict(s.overrides), "radius": s.radius,
                          "why": s.why} for s in feff.RETRY_LADDER],
        "retry_ladder_version": feff.RETRY_LADDER_VERSION,
        "feff_version": feff.feff_version(),
        "totals": rates(per["all"]),
        "by_part": {g.split(":", 1)[1]: rates(c) for g, c in sorted(per.items())
                    if g.startswith("part:")},
        "by_element": {g.split(":", 1)[1]: rates(c) for g, c in sorted(per.items())
                       if g.startswith("element:")},
        "coverage_by_element": _coverage(jobs, done_sites),
        "rescued_by": dict(rescued),
        "failed_stages": dict(failed_stages),
        "failures": failures,
    }


@contextlib.contextmanager
def _time_budget(minutes: float | None) -> Iterator[None]:
    """Raise KeyboardInterrupt in this process after ``minutes`` (SIGALRM), or on SIGTERM."""
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")
    old_alarm = signal.signal(signal.SIGALRM, stop)
    old_term = signal.signal(signal.SIGTERM, stop)
    if minutes:
        signal.setitimer(signal.ITIMER_REAL, float(minutes) * 60.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, old_term)


def run_real_build(build_dir: str | os.PathLike[str] = DEFAULT_BUILD_DIR, *,
                   parts: Sequence[str] = _PART_ORDER, preset: str = DEFAULT_PRESET,
                   workers: int | None = None, max_minutes: float | None = None,
                   max_materials: int | None = None, progress: bool = True,
                   executor: str = "auto", simulate: Any = None) -> dict[str, Any]:
    """Run (or continue) the real-structure FEFF build and write its report.

    Args:
        build_dir: Folder of the ``feff/`` cache and ``report.json``.
        parts: Real-structure parts, in the order to run them.
        preset: FEFF card preset.
        workers: FEFF worker processes (default: all cores).
        max_minutes: Stop cleanly after this long (finished spectra are kept).
        max_materials: Only the first TM compounds of each part (a trial run).
        progress: Show a progress bar.
        executor: Passed to :func:`~specfusion_lib.simulate.runner.run_jobs`.
        simulate: Replaces the FEFF site simulation (tests), see
            :func:`~specfusion_lib.simulate.runner.run_jobs`.

    Returns:
        The report (also written to ``<build_dir>/report.json``).
    """
    build = Path(build_dir)
    cache = SpectrumCache(build / "feff")
    jobs = plan_real_jobs(parts, preset, max_materials=max_materials)
    t0 = time.perf_counter()
    commit = _git_commit()  # the code this run starts from
    report: RunReport | None = None
    interrupted = False
    try:
        with _time_budget(max_minutes):
            report = run_jobs(jobs, cache, workers=workers, progress=progress,
                              timeout=STAGE_TIMEOUT_S, executor=executor, simulate=simulate)
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("real build stopped after %.1f min; run again to continue",
                       (time.perf_counter() - t0) / 60)
    summary = build_report(jobs, cache)
    summary["last_run"] = {
        "commit": commit, "parts": list(parts), "preset": preset,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "minutes": round((time.perf_counter() - t0) / 60, 2), "interrupted": interrupted,
        "summary": report.summary() if report is not None else "interrupted",
    }
    build.mkdir(parents=True, exist_ok=True)
    atomic_write_text(build / "report.json", json.dumps(summary, indent=1, sort_keys=True))
    logger.info("real build: %s", json.dumps(summary["totals"]))
    return summary


def build_real_snapshot(part: str, out: str | os.PathLike[str], *,
                        build_dir: str | os.PathLike[str] = DEFAULT_BUILD_DIR,
                        preset: str = DEFAULT_PRESET, max_materials: int | None = None,
                        progress: bool = True) -> Path:
    """Write the snapshot of one real-structure part from the build's cache (no FEFF run).

    Args:
        part: ``"train"`` or ``"check"`` (the check is never trained on: use it to score).
        out: Snapshot folder (replaced atomically).
        build_dir: The build folder (``feff/`` cache, ``labels/`` cache).
        preset: Preset of the spectra to assemble.
        max_materials: Only the first TM compounds (as planned by :func:`plan_real_jobs`).
        progress: Show progress bars.

    Returns:
        The snapshot path.

    Raises:
        SnapshotError: No spectrum of the part is in the cache yet.
    """
    from tqdm.auto import tqdm

    from specfusion_lib.core.errors import SnapshotError, SpecfusionError
    from specfusion_lib.data.snapshot import MaterialRecord, SpectrumRecord, write_snapshot
    from specfusion_lib.data.structure_labels import cached_structure_labels
    from specfusion_lib.simulate.runner import assemble_spectra

    build = Path(build_dir)
    jobs = plan_real_jobs([part], preset, max_materials=max_materials)
    assembled = assemble_spectra(jobs, SpectrumCache(build / "feff"), warn=False)
    if not assembled:
        raise SnapshotError(f"{build / 'feff'}: no {preset} spectrum of the {part} part yet; "
                            "run python -m specfusion_lib.data.real_spectra first")
    data = load_real_structures(part)
    structures = {f"{part}:{m}": s for m, s in zip(data.material_ids, data.structures,
                                                   strict=True)}
    materials, failed = [], {}
    for key in tqdm(dict.fromkeys(j.material_id for j in jobs), desc="structure labels",
                    disable=not progress):
        structure = structures[key]
        try:
            labels = cached_structure_labels(key, structure, build / "labels")
        except SpecfusionError as exc:
            failed[key] = str(exc)
            labels = {"crystal_system": None, "density": float(structure.density),
                      "sites": None}
        materials.append(MaterialRecord(key, structure,
                                        {"crystal_system": labels["crystal_system"],
                                         "density": labels["density"]}, labels["sites"]))
    spectra = [SpectrumRecord(mid, element, edge, result.energy, result.mu,
                              source=f"feff10:{result.preset}", settings=result.settings())
               for (mid, element, edge), result in sorted(assembled.items())]
    return write_snapshot(
        out, materials, spectra, source=f"real-{part}", overwrite=True,
        description=(f"Real Materials Project structures ({part} part of data/real_structures, "
                     "CC BY 4.0, see its README) with FEFF10 K-edge XANES of their transition "
                     f"metals simulated by specfusion ({preset} preset, retry ladder). Only "
                     "structure-derived labels: crystal system, density, bond-valence "
                     "oxidation states and CrystalNN coordination numbers."),
        label_sources=dict(REAL_LABEL_SOURCES),
        extra={"simulation": {"code": "FEFF10 via feff10-rs", "version": feff.feff_version(),
                              "preset": preset, "edge": "K",
                              "retry_ladder_version": feff.RETRY_LADDER_VERSION},
               "build": {"part": part, "tm_compounds": len(materials),
                         "spectra_planned": len({(j.material_id, j.element) for j in jobs}),
                         "spectra_done": len(spectra),
                         "spectra_incomplete": len(assembled.incomplete),
                         "materials_with_structure_label_errors": failed}})


def main(argv: Sequence[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_BUILD_DIR))
    parser.add_argument("--parts", nargs="+", default=list(_PART_ORDER))
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--max-materials", type=int, default=None)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite report.json from the cache (keeping the last run's entry) "
                             "without running FEFF")
    parser.add_argument("--snapshot", nargs=2, metavar=("PART", "OUT"), default=None,
                        help="write the snapshot of PART (train or check) to OUT from the "
                             "cache instead of running FEFF")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: "
                                                   "%(message)s")
    if args.report_only:
        path = Path(args.out) / "report.json"
        previous = json.loads(path.read_text()) if path.is_file() else {}
        summary = build_report(plan_real_jobs(args.parts, args.preset,
                                              max_materials=args.max_materials),
                               SpectrumCache(Path(args.out) / "feff"))
        summary["last_run"] = previous.get("last_run", {})
        atomic_write_text(path, json.dumps(summary, indent=1, sort_keys=True))
        print(json.dumps(summary["totals"]))
        return
    if args.snapshot:
        part, out = args.snapshot
        print(build_real_snapshot(part, out, build_dir=args.out, preset=args.preset,
                                  max_materials=args.max_materials))
        return
    run_real_build(args.out, parts=args.parts, preset=args.preset, workers=args.workers,
                   max_minutes=args.max_minutes, max_materials=args.max_materials)


if __name__ == "__main__":
    main()
