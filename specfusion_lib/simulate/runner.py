"""Resumable, parallel FEFF10 builds: plan site jobs, run them into a cache, assemble spectra.

A dataset build needs one FEFF run per symmetry-inequivalent absorbing site of every
(material, element). This module splits that into three steps:

1. :func:`plan_jobs` lists the :class:`SiteJob` s (inequivalent sites and multiplicities from
   :func:`specfusion_lib.simulate.feff.inequivalent_sites`).
2. :func:`run_jobs` runs the jobs whose spectrum is not yet in a
   :class:`~specfusion_lib.simulate.cache.SpectrumCache`, on a local process pool (default), on
   a ``dask.distributed`` cluster (``scheduler_address``) or serially. The parent process
   writes every result to the cache the moment it arrives, so an interrupted build (Ctrl-C,
   a killed job, a crashed node) loses only the spectra in flight; running the same call again
   continues where it stopped. FEFF failures are recorded in the cache and in the
   :class:`RunReport` and do not stop the build.
3. :func:`assemble_spectra` averages each (material, element, edge)'s site spectra by
   multiplicity; a material with a missing or failed site is reported, never half-averaged.

Cache keys hash the ``feff.inp`` text of a job, which takes ~0.1 s per site to build. The
cache's key index therefore maps a cheap fingerprint of each job (structure JSON, site, edge,
preset cards, FEFF and pymatgen versions, cluster radius and
:data:`~specfusion_lib.simulate.feff.FEFF_INPUT_VERSION`) to its key. That version is a
constant bumped by hand whenever the feff.inp text changes; fingerprints deliberately do not
hash the source of :mod:`specfusion_lib.simulate.feff`, so editing or moving that module
keeps a committed key index hitting. A stale index would hand out the old keys, i.e. the
old spectra: ``tests/test_feff_cache.py`` rebuilds the feff.inp of some jobs of the committed
demo build and fails when their keys differ from the index.

Scaling to Materials-Project size: start a dask scheduler and workers on the cluster
(``dask scheduler`` / ``dask worker tcp://host:8786 --nthreads 1 --nworkers N``; one FEFF run
uses one core, so one thread per worker process) and pass ``scheduler_address``. The workers
need the same Python environment; they do not need to see the cache directory, since only the
parent process reads and writes it. ``max_pending`` bounds how many jobs are submitted at a time
(memory of the scheduler, and what an interruption loses).

Example::

    jobs = plan_jobs(structures, {"mp-19": ["Mn"]}, preset="fast")
    cache = SpectrumCache("data/cache/feff")
    report = run_jobs(jobs, cache)                 # Ctrl-C and rerun: it continues
    spectra = assemble_spectra(jobs, cache)        # {("mp-19", "Mn", "K"): SimulatedXANES}
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pymatgen.core import Element, Structure
from tqdm.auto import tqdm

from specfusion_lib.core.errors import ConfigurationError, SimulationError, SpecfusionError
from specfusion_lib.simulate import feff
from specfusion_lib.simulate.cache import CACHE_SCHEMA, SpectrumCache, cache_key, failed_stage

logger = logging.getLogger(__name__)

__all__ = [
    "AssembledSpectra",
    "JobFailure",
    "RunReport",
    "SiteJob",
    "assemble_spectra",
    "job_keys",
    "plan_jobs",
    "run_jobs",
]

#: Executors :func:`run_jobs` accepts.
EXECUTORS = ("auto", "process", "dask", "serial")

# Jobs whose key is computed per task in the parallel key phase.
_KEY_CHUNK_MAX = 64


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteJob:
    """One FEFF run: an absorbing site of a material.

    Plain data (the structure as a pymatgen dict), so a job pickles to worker processes and
    dask workers.

    Attributes:
        material_id: Identifier of the material.
        structure: The structure as ``Structure.as_dict()``.
        site_index: Index of the absorbing site.
        multiplicity: Number of symmetry-equivalent sites this site stands for.
        element: Absorbing element symbol.
        edge: Absorption edge.
        preset: FEFF card preset (a key of :data:`specfusion_lib.simulate.feff.PRESETS`).
        formula: Reduced formula (for metadata and messages).
    """

    material_id: str
    structure: Mapping[str, Any] = field(repr=False)
    site_index: int
    multiplicity: int
    element: str
    edge: str = "K"
    preset: str = "fast"
    formula: str = ""

    @property
    def label(self) -> str:
        """Short description for messages."""
        formula = f" ({self.formula})" if self.formula else ""
        return (f"{self.material_id}{formula} {self.element} site {self.site_index} "
                f"{self.edge} edge, preset {self.preset}")

    def build_structure(self) -> Structure:
        """The pymatgen structure of the job."""
        return Structure.from_dict(dict(self.structure))


def plan_jobs(
    structures: Mapping[str, Structure | Mapping[str, Any]],
    elements_by_material: Mapping[str, str | Sequence[str]],
    edge: str = "K",
    preset: str = "fast",
    *,
    symprec: float = feff.SYMPREC,
    progress: bool = False,
) -> list[SiteJob]:
    """The site jobs of a build: one per inequivalent absorbing site.

    Args:
        structures: Material id -> ordered pymatgen structure (or its ``as_dict()``).
        elements_by_material: Material id -> absorbing element(s). Materials not listed here
            get no jobs.
        edge: Absorption edge.
        preset: FEFF card preset.
        symprec: Symmetry tolerance (Å) for :func:`~specfusion_lib.simulate.feff.
            inequivalent_sites`.
        progress: Show a tqdm progress bar (symmetry analysis takes ~0.03 s per material).

    Returns:
        Jobs ordered by material (in ``elements_by_material`` order), element, site index.

    Raises:
        ConfigurationError: Unknown preset or edge, or an element list for a material that has
            no structure.
        ElementError: An element is unknown or absent from its material's structure.
        SimulationError: A structure is disordered.
    """
    edge_u = feff.preset_cards(preset, edge)["EDGE"]
    missing = [mid for mid in elements_by_material if mid not in structures]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ConfigurationError(f"plan_jobs: no structure for {len(missing)} material(s): "
                                 f"{shown}")
    jobs: list[SiteJob] = []
    for mid, elements in tqdm(elements_by_material.items(), desc="planning FEFF jobs",
                              unit="material", disable=not progress):
        given = structures[mid]
        structure = given if isinstance(given, Structure) else Structure.from_dict(dict(given))
        as_dict = structure.as_dict()  # shared by the material's jobs
        formula = structure.composition.reduced_formula
        for element in [elements] if isinstance(elements, str) else list(elements):
            sites = feff.inequivalent_sites(structure, element, symprec, material_id=str(mid))
            symbol = Element(str(element).strip().capitalize()).symbol
            for index, multiplicity in sites:
                jobs.append(SiteJob(str(mid), as_dict, int(index), int(multiplicity), symbol,
                                    edge_u, preset, formula))
    logger.info("planned %d FEFF site jobs for %d material(s) (%s edge, preset %s)",
                len(jobs), len(elements_by_material), edge_u, preset)
    return jobs


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _fingerprint_salt() -> str:
    """What, besides the job, determines the feff.inp text and the key.

    The declared :data:`~specfusion_lib.simulate.feff.FEFF_INPUT_VERSION` stands for the code
    that writes feff.inp, not a hash of that code's source: editing or moving
    ``feff.py`` without changing its output keeps every fingerprint (and a committed key
    index) valid.
    """
    try:
        pymatgen = importlib.metadata.version("pymatgen")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        pymatgen = "?"
    return json.dumps({
        "schema": CACHE_SCHEMA,
        "feff_input": feff.FEFF_INPUT_VERSION,
        "pymatgen": pymatgen,
        "radius": feff.CLUSTER_RADIUS,
        "layout": _FINGERPRINT_LAYOUT,
    }, sort_keys=True)


#: Version of the fingerprint's own layout (:func:`_structure_json`); part of the salt.
_FINGERPRINT_LAYOUT = 2


def _structure_json(structure: Mapping[str, Any]) -> str:
    """The structure's defining content as canonical JSON: lattice matrix, charge and each
    site's species, fractional coordinates and properties, exactly as stored. Quantities
    ``as_dict()`` derives from them (lattice lengths, angles and volume, Cartesian
    coordinates) are left out: their last bits depend on the machine's floating-point
    library, which made fingerprints, and a committed key index, machine-dependent."""
    content = {
        "charge": structure.get("charge"),
        "matrix": structure["lattice"]["matrix"],
        "sites": [{"species": site["species"], "abc": site["abc"],
                   "properties": site.get("properties") or {}}
                  for site in structure["sites"]],
    }
    return json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))


def _fingerprint(job: SiteJob, feff_version: str, structure_json: str) -> str:
    """A cheap stand-in for the key of a job (no ``feff.inp`` is built).

    The SHA-256 of :func:`_fingerprint_salt`, the FEFF version, the structure's defining
    content (:func:`_structure_json`), the site, the preset and its cards (which include the
    edge). Equal fingerprints imply equal
    ``feff.inp`` text as long as :data:`~specfusion_lib.simulate.feff.FEFF_INPUT_VERSION` is
    bumped with every change of that text, so the cache's key index can map fingerprints to
    keys.
    """
    try:
        cards = feff.preset_cards(job.preset, job.edge)
    except ConfigurationError:
        cards = {"preset": job.preset, "edge": job.edge}
    digest = hashlib.sha256()
    for part in (_fingerprint_salt(), feff_version, structure_json, str(int(job.site_index)),
                 json.dumps(cards, sort_keys=True), job.preset):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _key_of(job: SiteJob, feff_version: str) -> str:
    """Build the job's feff.inp and hash it (raises SpecfusionError on bad input)."""
    text = feff.feff_input(job.build_structure(), job.site_index, job.edge, job.preset)
    return cache_key(text, feff_version)


def _keys_task(jobs: Sequence[SiteJob], feff_version: str) -> list[tuple[bool, str]]:
    """Worker task: ``(True, key)`` or ``(False, error message)`` per job."""
    out: list[tuple[bool, str]] = []
    for job in jobs:
        try:
            out.append((True, _key_of(job, feff_version)))
        except SpecfusionError as exc:
            out.append((False, f"cannot build the FEFF input of {job.label}: {exc}"))
    return out


def _fingerprints(jobs: Sequence[SiteJob], version: str) -> list[str]:
    """:func:`_fingerprint` of every job (each distinct structure serialised once)."""
    texts: dict[int, str] = {}
    out = []
    for job in jobs:
        ident = id(job.structure)
        if ident not in texts:
            texts[ident] = _structure_json(job.structure)
        out.append(_fingerprint(job, version, texts[ident]))
    return out


def job_keys(
    jobs: Sequence[SiteJob],
    cache: SpectrumCache | None = None,
    *,
    feff_version: str | None = None,
) -> list[str | None]:
    """The cache keys of jobs, computed in this process (looked up in the key index first).

    Args:
        jobs: The jobs.
        cache: A cache whose key index is used and extended; ``None``: compute every key.
        feff_version: FEFF version string; default the installed one.

    Returns:
        One key per job, ``None`` where the FEFF input cannot be built.
    """
    version = feff_version or feff.feff_version()
    resolved = _resolve_keys(jobs, cache, version, _SerialBackend(), progress=False)
    return [key for key, _ in resolved]


# --------------------------------------------------------------------------------------------
# Backends: serial, local process pool, dask.distributed
# --------------------------------------------------------------------------------------------


class _WorkerStop(BaseException):
    """Raised inside a process-pool worker on SIGTERM while a job runs."""


_IN_JOB = False


def _on_sigterm(signum: int, frame: Any) -> None:  # pragma: no cover - runs in workers
    if _IN_JOB:
        raise _WorkerStop()  # unwinds through feff's cleanup (kills the FEFF process group)
    os._exit(1)


def _worker_init() -> None:  # pragma: no cover - runs in workers
    """Process-pool worker setup: the parent handles Ctrl-C and stops workers with SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a task; in a pool worker, a SIGTERM during the task ends the worker after cleanup."""
    global _IN_JOB
    _IN_JOB = True
    try:
        return fn(*args)
    except _WorkerStop:  # pragma: no cover - runs in workers
        os._exit(1)
    finally:
        _IN_JOB = False


class _SerialBackend:
    name = "serial"
    workers = 1
    window = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - delivered like a pool's future
            future.set_exception(exc)
        return future

    def wait(self, pending: set) -> tuple[set, set]:
        return set(pending), set()

    @staticmethod
    def outcome(future: Any) -> tuple[bool, Any]:
        try:
            return True, future.result()
        except Exception as exc:  # noqa: BLE001
            return False, exc

    def cancel(self, pending: Iterable[Any]) -> None:
        pass

    def close(self, interrupted: bool = False) -> None:
        pass


class _ProcessBackend(_SerialBackend):
    name = "process"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.window = 2 * workers
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        return self.pool.submit(_guarded, fn, *args)

    def wait(self, pending: set) -> tuple[set, set]:
        done, not_done = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        return set(done), set(not_done)

    def cancel(self, pending: Iterable[Any]) -> None:
        for future in pending:
            future.cancel()

    def close(self, interrupted: bool = False) -> None:
        if interrupted:
            # Running jobs cannot be cancelled: stop their workers (SIGTERM; each kills its
            # FEFF process group first) instead of waiting minutes for them.
            processes = getattr(self.pool, "_processes", None) or {}
            for process in list(processes.values()):
                with contextlib.suppress(Exception):
                    process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


class _DaskBackend(_SerialBackend):
    name = "dask"

    def __init__(self, scheduler_address: Any, max_pending: int | None) -> None:
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise ConfigurationError("the dask executor needs 'dask[distributed]'") from exc
        self._distributed = distributed
        if isinstance(scheduler_address, distributed.Client):
            self.client, self._own = scheduler_address, False
        else:
            try:
                self.client = distributed.Client(scheduler_address, set_as_default=False)
            except OSError as exc:
                raise SimulationError(f"cannot connect to the dask scheduler at "
                                      f"{scheduler_address!r}: {exc}") from exc
            self._own = True
        threads = sum(self.client.nthreads().values())
        self.workers = threads
        self.window = max_pending or max(64, 4 * threads)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(_guarded, fn, *args, pure=False)

    def wait(self, pending: set) -> tuple[set, set]:
        with self.client.as_current():  # wait() uses the current client, not ours
            done, not_done = self._distributed.wait(list(pending),
                                                    return_when="FIRST_COMPLETED")
        return set(done), set(not_done)

    def cancel(self, pending: Iterable[Any]) -> None:
        pending = list(pending)
        if pending:
            with contextlib.suppress(Exception):
                self.client.cancel(pending)

    def close(self, interrupted: bool = False) -> None:
        if self._own:
            with contextlib.suppress(Exception):
                self.client.close()


def _backend(executor: str, workers: int | None, scheduler_address: Any,
             max_pending: int | None) -> _SerialBackend:
    if executor not in EXECUTORS:
        raise ConfigurationError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    if executor == "auto":
        executor = "dask" if scheduler_address is not None else "process"
    if scheduler_address is not None and executor != "dask":
        raise ConfigurationError(f"scheduler_address is given but executor={executor!r}; "
                                 "use executor='dask' (or 'auto')")
    if workers is not None and workers < 1:
        raise ConfigurationError(f"workers must be >= 1, got {workers}")
    if max_pending is not None and max_pending < 1:
        raise ConfigurationError(f"max_pending must be >= 1, got {max_pending}")
    if executor == "serial":
        return _SerialBackend()
    if executor == "process":
        backend = _ProcessBackend(workers or os.cpu_count() or 1)
        if max_pending:
            backend.window = max_pending
        return backend
    if scheduler_address is None:
        raise ConfigurationError("executor='dask' needs a scheduler_address (e.g. "
                                 "'tcp://host:8786' or LocalCluster().scheduler_address)")
    return _DaskBackend(scheduler_address, max_pending)


def _drive(backend: _SerialBackend, tasks: Iterable[tuple[Any, tuple]],
           handle: Callable[[Any, bool, Any], None]) -> None:
    """Submit ``(tag, args)`` tasks through ``backend``, at most ``backend.window`` at a time,
    and call ``handle(tag, ok, result_or_exception)`` in this process as each finishes.

    On KeyboardInterrupt, results that already arrived are still handled, pending tasks are
    cancelled and the exception propagates.
    """
    iterator = iter(tasks)
    pending: dict[Any, Any] = {}

    def finish(futures: Iterable[Any]) -> None:
        for future in futures:
            tag = pending.pop(future)
            ok, value = backend.outcome(future)
            handle(tag, ok, value)

    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < backend.window:
                item = next(iterator, None)
                if item is None:
                    exhausted = True
                    break
                tag, args = item
                pending[backend.submit(*args)] = tag
            if not pending:
                break
            done, _ = backend.wait(set(pending))
            finish(done)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            with contextlib.suppress(Exception):
                finish([f for f in list(pending) if _finished_ok(f)])
        backend.cancel(pending)
        raise


def _finished_ok(future: Any) -> bool:
    try:
        if isinstance(future, cf.Future):
            return future.done() and not future.cancelled() and future.exception() is None
        return getattr(future, "status", "") == "finished"
    except Exception:  # noqa: BLE001
        return False


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _resolve_keys(jobs: Sequence[SiteJob], cache: SpectrumCache | None, version: str,
                  backend: _SerialBackend, progress: bool) -> list[tuple[str | None, str | None]]:
    """(key, input error) per job: from the cache's key index, else computed on ``backend``."""
    prints = _fingerprints(jobs, version)
    index = cache.load_key_index() if cache is not None else {}
    result: list[tuple[str | None, str | None]] = [(index.get(fp), None) for fp in prints]
    missing = [i for i, (key, _) in enumerate(result) if key is None]
    logger.debug("FEFF cache keys: %d of %d job(s) from the key index",
                 len(jobs) - len(missing), len(jobs))
    if not missing:
        return result
    # one computation per distinct fingerprint
    first: dict[str, int] = {}
    for i in missing:
        first.setdefault(prints[i], i)
    todo = list(first.values())
    size = max(1, min(_KEY_CHUNK_MAX, len(todo) // (4 * max(backend.workers, 1)) or 1))
    learned: dict[str, str] = {}
    errors: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc="FEFF inputs (cache keys)", unit="site",
               disable=not progress or len(todo) < 16)

    def handle(chunk: list[int], ok: bool, value: Any) -> None:
        if not ok:
            raise value
        for i, (good, text) in zip(chunk, value, strict=True):
            (learned if good else errors)[prints[i]] = text
        bar.update(len(chunk))

    try:
        _drive(backend, ((chunk, (_keys_task, [jobs[i] for i in chunk], version))
                         for chunk in _chunks(todo, size)), handle)
    finally:
        bar.close()
        if cache is not None:
            cache.save_key_index(learned)
    for i in missing:
        fp = prints[i]
        result[i] = (learned.get(fp), errors.get(fp))
    return result


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _simulate_task(job: SiteJob, simulate: Callable[..., feff.SiteSpectrum],
                   timeout: float | None,
                   ladder: Sequence[feff.RetryStep] = ()) -> tuple:
    """Worker task: ``("ok", SiteSpectrum)`` or ``("failed", message, stage)``."""
    try:
        if ladder:
            spectrum = feff.simulate_site_with_retries(
                job.build_structure(), job.site_index, job.edge, job.preset,
                material_id=job.material_id, timeout=timeout, ladder=ladder, simulate=simulate)
        else:
            spectrum = simulate(job.build_structure(), job.site_index, job.edge, job.preset,
                                material_id=job.material_id, timeout=timeout)
    except SpecfusionError as exc:
        message = str(exc)
        return ("failed", message, failed_stage(message))
    return ("ok", spectrum)


@dataclass(frozen=True)
class JobFailure:
    """A job without a spectrum.

    Attributes:
        job: The job.
        key: Its cache key (``None`` if its FEFF input could not be built).
        message: The error message.
        stage: The FEFF stage that failed, if known.
        cached: Whether the failure is recorded in the cache (reruns skip the job unless
            ``retry_failed``); ``False`` for input errors and unexpected errors, which a rerun
            tries again.
        previous: Whether the failure was already in the cache before this run.
    """

    job: SiteJob
    key: str | None
    message: str
    stage: str | None = None
    cached: bool = False
    previous: bool = False


@dataclass
class RunReport:
    """What :func:`run_jobs` did.

    Attributes:
        n_jobs: Jobs given.
        n_unique: Distinct spectra among them (jobs with equal keys run once).
        n_cached: Distinct spectra already in the cache before the run.
        n_computed: Distinct spectra simulated successfully in this run.
        n_skipped_failed: Distinct spectra skipped because the cache records a failure.
        n_rescued: Distinct spectra computed in this run by a rung of the retry ladder after
            the first attempt failed.
        rescued_by: Ladder rung name -> spectra it rescued in this run.
        failures: One entry per job without a spectrum (new, skipped known-bad, input errors).
        executor: ``"serial"``, ``"process"`` or ``"dask"``.
        workers: Worker processes (process pool), threads (dask) or 1.
        wall_time_s: Wall-clock seconds of the run.
        compute_time_s: Sum of the FEFF wall times of the spectra computed in this run.
    """

    n_jobs: int = 0
    n_unique: int = 0
    n_cached: int = 0
    n_computed: int = 0
    n_skipped_failed: int = 0
    n_rescued: int = 0
    rescued_by: dict[str, int] = field(default_factory=dict)
    failures: list[JobFailure] = field(default_factory=list)
    executor: str = "serial"
    workers: int = 1
    wall_time_s: float = 0.0
    compute_time_s: float = 0.0

    @property
    def n_failed(self) -> int:
        """Jobs without a spectrum."""
        return len(self.failures)

    @property
    def ok(self) -> bool:
        """Whether every job has a spectrum."""
        return not self.failures

    def summary(self) -> str:
        """One line for logs."""
        return (f"{self.n_jobs} FEFF jobs ({self.n_unique} distinct spectra): "
                f"{self.n_cached} from cache, {self.n_computed} computed "
                f"({self.n_rescued} by a retry), {self.n_failed} job(s) failed "
                f"({self.n_skipped_failed} known failure(s) "
                f"skipped); {self.executor} x{self.workers}, {self.wall_time_s:.1f} s")


def run_jobs(
    jobs: Sequence[SiteJob],
    cache: SpectrumCache,
    *,
    executor: str = "auto",
    workers: int | None = None,
    scheduler_address: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
    timeout: float | None = None,
    max_pending: int | None = None,
    simulate: Callable[..., feff.SiteSpectrum] | None = None,
    retry_ladder: Sequence[feff.RetryStep] = feff.RETRY_LADDER,
) -> RunReport:
    """Simulate the jobs whose spectra are not in the cache, writing each result as it arrives.

    Interruption: on Ctrl-C (KeyboardInterrupt) results that already arrived are written,
    pending jobs are cancelled, local worker processes are stopped (their FEFF processes
    killed) and the KeyboardInterrupt propagates; calling ``run_jobs`` again with the same
    jobs and cache computes only what is missing. Tasks already running on a dask cluster
    finish there but their results are dropped.

    Args:
        jobs: Jobs from :func:`plan_jobs` (jobs with equal keys are simulated once).
        cache: Where results are read and written.
        executor: ``"process"`` (a local ``ProcessPoolExecutor``), ``"dask"`` (a
            ``dask.distributed`` cluster at ``scheduler_address``), ``"serial"`` (this process),
            or ``"auto"``: ``"dask"`` when ``scheduler_address`` is given, else ``"process"``.
        workers: Worker processes of the process pool; default ``os.cpu_count()``.
        scheduler_address: Address of a dask scheduler (``"tcp://host:8786"``), or a
            ``distributed.Client`` to reuse.
        progress: Show tqdm progress bars.
        retry_failed: Run again the jobs whose failure the cache records.
        timeout: Seconds allowed per FEFF stage (``simulate_site``'s ``timeout``).
        max_pending: Most jobs submitted at a time; default 2 x workers (process pool) or
            max(64, 4 x threads) (dask).
        simulate: Replaces :func:`~specfusion_lib.simulate.feff.simulate_site` (same
            signature: ``(structure, site_index, edge, preset, *, material_id, timeout)``);
            must be picklable (a module-level function) for the process and dask executors.
            The retry ladder needs it to accept ``overrides`` and ``radius`` keywords; one
            that does not is run without the ladder (logged).
        retry_ladder: Rungs tried after a failed first attempt
            (:func:`~specfusion_lib.simulate.feff.simulate_site_with_retries`; default
            :data:`~specfusion_lib.simulate.feff.RETRY_LADDER`, ``()`` for none). A spectrum a
            rung produced is cached under the job's key with the cards it was run with and
            the rung's name (``retry``). A failure cached without having gone through this
            ladder (another :data:`~specfusion_lib.simulate.feff.RETRY_LADDER_VERSION`, or
            none) is tried again.

    Returns:
        A :class:`RunReport`.

    Raises:
        ConfigurationError: Invalid executor options.
        SimulationError: FEFF is not installed, the dask scheduler cannot be reached or a
            local worker process died (finished results are cached; rerun to continue).
        KeyboardInterrupt: After the cleanup described above.
    """
    t0 = time.perf_counter()
    simulate = simulate or feff.simulate_site
    if retry_ladder and not _accepts_ladder(simulate):
        logger.warning("the simulate function %r takes no 'overrides' / 'radius' keywords: "
                       "FEFF failures are not retried", getattr(simulate, "__name__", simulate))
        retry_ladder = ()
    version = feff.feff_version()
    backend = _backend(executor, workers, scheduler_address, max_pending)
    report = RunReport(n_jobs=len(jobs), executor=backend.name, workers=backend.workers)
    cache.clean_temp()
    interrupted = False
    try:
        resolved = _resolve_keys(jobs, cache, version, backend, progress)
        by_key: dict[str, list[int]] = {}
        for i, (key, error) in enumerate(resolved):
            if key is None:
                report.failures.append(JobFailure(jobs[i], None, error or "no key"))
                logger.warning("FEFF job skipped: %s", error or jobs[i].label)
            else:
                by_key.setdefault(key, []).append(i)
        report.n_unique = len(by_key)

        ladder_tag = _ladder_tag(retry_ladder)
        todo: list[str] = []
        for key, members in by_key.items():
            entry = cache.get(key)
            stale_failure = (entry is not None and entry.failed and retry_ladder
                             and entry.metadata.get("retry_ladder") != ladder_tag)
            if entry is None or (entry.failed and retry_failed) or stale_failure:
                todo.append(key)
            elif entry.failed:
                report.n_skipped_failed += 1
                report.failures.extend(
                    JobFailure(jobs[i], key, entry.error or "", entry.stage, True, True)
                    for i in members)
            else:
                report.n_cached += 1
        logger.info("FEFF run: %d job(s), %d distinct spectra: %d of %d from cache, %d known "
                    "failure(s) skipped, %d to compute (%s x%d)", report.n_jobs,
                    report.n_unique, report.n_cached, report.n_unique,
                    report.n_skipped_failed, len(todo), backend.name, backend.workers)
        if report.n_skipped_failed:
            logger.warning("%d FEFF spectra skipped: the cache records a failure "
                           "(retry_failed=True runs them again)", report.n_skipped_failed)

        bar = tqdm(total=report.n_unique, initial=report.n_unique - len(todo),
                   desc=f"FEFF spectra ({jobs[0].preset})" if jobs else "FEFF spectra",
                   unit="spectrum", disable=not progress, smoothing=0.05)

        def handle(key: str, ok: bool, value: Any) -> None:
            members = by_key[key]
            job = jobs[members[0]]
            meta = {"material_id": job.material_id, "formula": job.formula,
                    "multiplicity": job.multiplicity, "site_index": job.site_index}
            if not ok:  # an unexpected error: reported, not cached (a rerun tries again)
                if isinstance(value, cf.BrokenExecutor):
                    raise SimulationError(
                        "a FEFF worker process died (out of memory or killed?); finished "
                        "spectra are cached, run again to continue") from value
                message = f"{type(value).__name__}: {value}"
                report.failures.extend(JobFailure(jobs[i], key, message) for i in members)
                logger.warning("FEFF job %s raised an unexpected error (not cached, a rerun "
                               "tries again): %s", job.label, message)
                value = ("reported",)
            if value[0] == "ok":
                try:
                    cache.put(key, value[1], **meta)
                except ConfigurationError as exc:  # NaN or unordered energies from FEFF
                    value = ("failed", f"{job.label}: unusable FEFF output: {exc}",
                             "ff2x (output)")
                else:
                    report.n_computed += 1
                    report.compute_time_s += float(value[1].wall_time_s)
                    if value[1].retry:
                        report.n_rescued += 1
                        report.rescued_by[value[1].retry] = (
                            report.rescued_by.get(value[1].retry, 0) + 1)
                        logger.info("FEFF %s rescued by retry step %s", job.label,
                                    value[1].retry)
            if value[0] == "failed":
                _, message, stage = value
                cache.put_failure(key, message, stage, element=job.element, edge=job.edge,
                                  preset=job.preset, feff_version=version,
                                  retry_ladder=ladder_tag, **meta)
                logger.warning("FEFF failed: %s (%s), %s site %d, stage %s: %s",
                               job.material_id, job.formula or "?", job.element,
                               job.site_index, stage or "unknown", _first_line(message))
                report.failures.extend(JobFailure(jobs[i], key, message, stage, True)
                                       for i in members)
            bar.update(1)
            if report.failures:
                bar.set_postfix(failed=len(report.failures), refresh=False)

        try:
            _drive(backend, ((key, (_simulate_task, jobs[by_key[key][0]], simulate, timeout,
                                    tuple(retry_ladder)))
                             for key in todo), handle)
        finally:
            bar.close()
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("FEFF run interrupted after %.1f s: %d spectra computed and cached; "
                       "run again to continue", time.perf_counter() - t0, report.n_computed)
        raise
    finally:
        backend.close(interrupted=interrupted)
        report.wall_time_s = time.perf_counter() - t0
    report.failures.sort(key=lambda f: (f.job.material_id, f.job.element, f.job.site_index))
    logger.info("FEFF run done: %s", report.summary())
    return report


def _accepts_ladder(simulate: Callable[..., Any]) -> bool:
    """Whether ``simulate`` takes the keywords a retry rung passes (``overrides``,
    ``radius``), by name or through ``**kwargs``."""
    try:
        params = inspect.signature(simulate).parameters.values()
    except (TypeError, ValueError):  # a builtin or an object without a signature: try it
        return True
    names = {p.name for p in params}
    return ({"overrides", "radius"} <= names
            or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params))


def _ladder_tag(ladder: Sequence[feff.RetryStep]) -> str | None:
    """What a cached failure records about the ladder it went through (``None``: none)."""
    if not ladder:
        return None
    if tuple(ladder) == feff.RETRY_LADDER:
        return feff.RETRY_LADDER_VERSION
    return "custom:" + ",".join(step.name for step in ladder)


def _first_line(message: str, limit: int = 300) -> str:
    """The first line of an error message, shortened for a log record."""
    lines = (message or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


# --------------------------------------------------------------------------------------------
# Assembling
# --------------------------------------------------------------------------------------------


class AssembledSpectra(dict):
    """``{(material_id, element, edge): SimulatedXANES}`` plus the materials left out.

    Attributes:
        incomplete: ``{(material_id, element, edge): reason}`` for every group with a missing
            or failed site (or site grids that do not overlap); these have no entry.
    """

    def __init__(self) -> None:
        super().__init__()
        self.incomplete: dict[tuple[str, str, str], str] = {}


def assemble_spectra(
    jobs: Sequence[SiteJob],
    cache: SpectrumCache,
    *,
    warn: bool = True,
) -> AssembledSpectra:
    """Multiplicity-weighted site averages of every (material, element, edge) of the jobs.

    Args:
        jobs: The jobs of a build (all sites of each group must be among them).
        cache: The cache the jobs were run into.
        warn: Emit one warning summarising the incomplete groups, if any.

    Returns:
        An :class:`AssembledSpectra` dict of
        :class:`~specfusion_lib.simulate.feff.SimulatedXANES` (site spectra carry the job's
        multiplicity); groups with a missing or failed site are only listed in
        ``.incomplete``.

    Raises:
        ConfigurationError: One group's jobs mix presets.
    """
    keys = job_keys(jobs, cache)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault((job.material_id, job.element, job.edge), []).append(i)
    out = AssembledSpectra()
    for group, members in groups.items():
        presets = {jobs[i].preset for i in members}
        if len(presets) > 1:
            raise ConfigurationError(f"{group}: jobs mix presets {sorted(presets)}; assemble "
                                     "each preset separately")
        sites, reasons = [], []
        for i in sorted(members, key=lambda j: jobs[j].site_index):
            job, key = jobs[i], keys[i]
            entry = None if key is None else cache.get(key)
            if key is None:
                reasons.append(f"site {job.site_index}: the FEFF input cannot be built")
            elif entry is None:
                reasons.append(f"site {job.site_index}: not simulated yet")
            elif entry.failed:
                first = (entry.error or "").strip().splitlines()[:1]
                reasons.append(f"site {job.site_index}: FEFF failed"
                               + (f" in stage {entry.stage}" if entry.stage else "")
                               + (f" ({first[0][:200]})" if first else ""))
            else:
                sites.append(replace(entry.spectrum, multiplicity=int(job.multiplicity)))
        if not reasons:
            try:
                energy, mu = feff.average_site_spectra(sites)
            except SpecfusionError as exc:
                reasons.append(str(exc))
        if reasons:
            out.incomplete[group] = "; ".join(reasons)
            continue
        energy.setflags(write=False)
        mu.setflags(write=False)
        job = jobs[members[0]]
        out[group] = feff.SimulatedXANES(
            energy=energy, mu=mu, element=job.element, edge=job.edge, preset=job.preset,
            material_id=job.material_id, formula=job.formula, sites=tuple(sites),
            feff_version=sites[0].feff_version,
            wall_time_s=float(sum(s.wall_time_s for s in sites)))
    logger.info("assembled %d spectra from %d FEFF site jobs; %d incomplete",
                len(out), len(jobs), len(out.incomplete))
    for (mid, element, edge), reason in out.incomplete.items():
        logger.debug("incomplete: %s %s %s edge: %s", mid, element, edge, reason)
    if warn and out.incomplete:
        shown = ", ".join(f"{m} {e}" for m, e, _ in list(out.incomplete)[:5])
        more = " ..." if len(out.incomplete) > 5 else ""
        warnings.warn(f"{len(out.incomplete)} material/element spectra are incomplete (missing "
                      f"or failed sites), left out: {shown}{more}; see .incomplete",
                      stacklevel=2)
    return out
