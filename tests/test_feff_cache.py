"""FEFF spectrum cache and the resumable, parallel runner (FEFF mocked except one run)."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import re
import signal
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Element, Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError, SimulationError
from specfusion_lib.simulate import feff, runner
from specfusion_lib.simulate.cache import (
    CacheStats,
    SpectrumCache,
    cache_key,
    failed_stage,
)
from specfusion_lib.simulate.runner import (
    SiteJob,
    assemble_spectra,
    job_keys,
    plan_jobs,
    run_jobs,
)

# ------------------------------------------------------------------ structures and a fake FEFF

#: Environment variable naming the folder where the fake simulator logs its calls (visible to
#: forked pool workers and to in-process dask workers).
LOG_ENV = "SPECFUSION_TEST_FEFF_CALLS"


def _rocksalt(metal: str, a: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [metal, "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


@functools.lru_cache(maxsize=1)
def _structures() -> dict[str, Structure]:
    """Test structures (shared: never modify them, copy first)."""
    return {
        "t-MnO": _rocksalt("Mn", 4.445),
        "t-NiO": _rocksalt("Ni", 4.177),
        "t-TiO2": Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959),
                                            ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]),
        # spinel: Co on 8a (tetrahedral) and 16d (octahedral), primitive cell 2 + 4 Co
        "t-Co3O4": Structure.from_spacegroup(
            "Fd-3m:2", Lattice.cubic(8.084), ["Co", "Co", "O"],
            [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.2631, 0.2631, 0.2631]],
        ).get_primitive_structure(),
        "t-ZnO": Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.207),
                                           ["Zn", "O"], [[1 / 3, 2 / 3, 0],
                                                         [1 / 3, 2 / 3, 0.3825]]),
    }


ELEMENTS = {"t-MnO": ["Mn"], "t-NiO": "Ni", "t-TiO2": ["Ti", "O"], "t-Co3O4": ["Co"],
            "t-ZnO": ["Zn"]}


@pytest.fixture(scope="module")
def jobs() -> list[SiteJob]:
    return plan_jobs(_structures(), ELEMENTS, preset="fast")


def fake_simulate(structure: Structure, site_index: int, edge: str = "K", preset: str = "fast",
                  *, material_id: str | None = None, timeout: float | None = None,
                  overrides: dict | None = None, radius: float = feff.CLUSTER_RADIUS,
                  ) -> feff.SiteSpectrum:
    """Deterministic synthetic site spectrum; logs each call; fails for ids with 'bad', and
    for ids with 'fragile' unless run with a 7 Å cluster (the ``radius-7`` retry rung)."""
    folder = os.environ.get(LOG_ENV)
    call = uuid.uuid4().hex
    if folder:
        (Path(folder) / f"{call}.call").write_text(f"{material_id} {site_index}")
    delay = float(os.environ.get(LOG_ENV + "_SLEEP", "0"))
    if delay:  # a slow "FEFF run"; a marker says it was not cut short
        time.sleep(delay)
        if folder:
            (Path(folder) / f"{call}.done").write_text("")
    symbol = structure[site_index].specie.symbol
    if material_id and "bad" in material_id:
        raise SimulationError(f"FEFF10 failed for {material_id}, absorber {symbol} site "
                              f"{site_index} (K edge, preset 'fast') in stage pot: "
                              "synthetic failure")
    if material_id and "fragile" in material_id and radius != 7.0:
        raise SimulationError(f"FEFF10 failed for {material_id}, absorber {symbol} site "
                              f"{site_index} (K edge, preset 'fast') in stage pot: "
                              "synthetic failure below a 7 A cluster")
    if material_id and "oops" in material_id:
        raise RuntimeError("a bug, not a FEFF failure")
    z = Element(symbol).Z
    e0 = 100.0 * z + 7.0 * site_index
    energy = np.linspace(e0 - 20.0, e0 + 80.0, 120 + site_index)
    mu = (1.0 / (1.0 + np.exp(-(energy - e0) / 1.5))
          + 0.3 * np.exp(-0.5 * ((energy - e0 - 5.0 - site_index) / 2.0) ** 2))
    if material_id and "nan" in material_id:
        mu[5] = np.nan
    return feff.SiteSpectrum(energy=energy, mu=mu, element=symbol, site_index=site_index,
                             edge=edge, preset=preset, feff_version="fake", wall_time_s=0.01,
                             e_fermi=e0 - 5.0, cards=feff.preset_cards(preset, edge, overrides),
                             radius=radius)


class InterruptAfter:
    """A fake simulator that behaves like Ctrl-C after ``n`` successful calls (serial only)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, *args, **kwargs) -> feff.SiteSpectrum:
        if self.calls >= self.n:
            raise KeyboardInterrupt
        self.calls += 1
        return fake_simulate(*args, **kwargs)


def refuse(*args, **kwargs) -> feff.SiteSpectrum:
    raise AssertionError("the simulator must not be called: everything is cached")


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A function returning the number of fake-simulator calls so far."""
    folder = tmp_path / "calls"
    folder.mkdir()
    monkeypatch.setenv(LOG_ENV, str(folder))
    return lambda: len(list(folder.glob("*.call")))


def _spectrum(site_index: int = 0, n: int = 50) -> feff.SiteSpectrum:
    energy = np.linspace(6530.0, 6600.0, n)
    return feff.SiteSpectrum(energy=energy, mu=np.tanh((energy - 6545.0) / 3.0) + 1.0,
                             element="Mn", site_index=site_index, edge="K", preset="fast",
                             feff_version="FEFF 10.0.0 (test)", wall_time_s=1.5,
                             multiplicity=4, e_fermi=6540.0, cards={"FMS": "5.0 1"})


def _contents(cache: SpectrumCache) -> dict[str, tuple]:
    out = {}
    for key in cache:
        entry = cache.get(key)
        out[key] = ((entry.error,) if entry.failed
                    else (tuple(entry.spectrum.energy), tuple(entry.spectrum.mu)))
    return out


def _temp_files(root: Path) -> list[Path]:
    return list(root.rglob(".*.tmp"))


# ------------------------------------------------------------------ keys


def test_key_changes_with_preset_edge_site_and_version() -> None:
    mno = _structures()["t-MnO"]
    base = feff.feff_input(mno, 0, "K", "fast")
    version = "FEFF 10.0.0 (feff10-rs 0.2.4)"
    key = cache_key(base, version)
    assert len(key) == 64 and key == cache_key(base, version)
    others = {
        "preset": cache_key(feff.feff_input(mno, 0, "K", "paper"), version),
        "edge": cache_key(feff.feff_input(mno, 0, "L3", "fast"), version),
        "site": cache_key(feff.feff_input(mno, 1, "K", "fast"), version),
        "version": cache_key(base, "FEFF 10.0.1 (feff10-rs 0.2.5)"),
        "structure": cache_key(feff.feff_input(_rocksalt("Mn", 4.5), 0), version),
    }
    assert key not in others.values() and len(set(others.values())) == len(others)
    # TITLE lines (material id) are comments to FEFF: same input, same entry
    assert cache_key(feff.feff_input(mno, 0, material_id="mp-19"), version) == key
    assert SpectrumCache.key(base) == cache_key(base, feff.feff_version())


def test_failed_stage_is_parsed() -> None:
    assert failed_stage("FEFF10 failed for X, absorber Mn site 0 (K edge, preset 'fast') in "
                        "stage fms: boom") == "fms"
    assert failed_stage("... in stage rdinp (input): FEFF did not start") == "rdinp (input)"
    assert failed_stage("something else") is None


# ------------------------------------------------------------------ cache files


def test_cache_round_trip_leaves_no_temp_files(tmp_path: Path) -> None:
    cache = SpectrumCache(tmp_path / "c")
    key, bad = "ab" + "0" * 62, "cd" + "1" * 62
    assert key not in cache and cache.get(key) is None
    spectrum = _spectrum()
    path = cache.put(key, spectrum, material_id="mp-19", formula="MnO")
    assert path == tmp_path / "c" / "ab" / f"{key}.json"
    entry = cache.get(key)
    assert key in cache and not entry.failed
    got = entry.spectrum
    np.testing.assert_array_equal(got.energy, spectrum.energy)  # exact (JSON floats round-trip)
    np.testing.assert_array_equal(got.mu, spectrum.mu)
    assert (got.element, got.site_index, got.multiplicity, got.e_fermi, got.feff_version) == (
        "Mn", 0, 4, 6540.0, "FEFF 10.0.0 (test)")
    assert entry.metadata["material_id"] == "mp-19" and entry.metadata["wall_time_s"] == 1.5
    assert dict(got.cards) == {"FMS": "5.0 1"}

    cache.put_failure(bad, "FEFF10 failed for mp-1 ... in stage fms: diverged", site_index=3)
    failure = cache.get(bad)
    assert bad in cache and failure.failed and failure.stage == "fms"
    assert failure.metadata["site_index"] == 3 and "diverged" in failure.error

    assert cache.stats() == CacheStats(spectra=1, failures=1, corrupt=0, temp_files=0,
                                       index_keys=0, bytes=cache.stats().bytes)
    assert _temp_files(tmp_path) == []
    assert sorted(cache.keys()) == [key, bad]
    with pytest.raises(ConfigurationError, match="invalid FEFF cache key"):
        cache.get("../../etc/passwd")
    nan = feff.SiteSpectrum(energy=np.array([1.0, 2.0]), mu=np.array([0.0, np.nan]),
                            element="Mn", site_index=0, edge="K", preset="fast",
                            feff_version="x", wall_time_s=0.0)
    with pytest.raises(ConfigurationError, match="unusable spectrum"):
        cache.put(key, nan)


def test_truncated_or_foreign_file_is_a_miss(tmp_path: Path) -> None:
    cache = SpectrumCache(tmp_path)
    key, other = "ab" + "2" * 62, "ab" + "3" * 62
    path = cache.put(key, _spectrum())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # a write cut short (not by us: we are atomic)
    assert cache.get(key) is None and key not in cache and key in cache.corrupt_keys
    cache.path(other).write_bytes(raw)  # complete, but the key inside does not match
    assert cache.get(other) is None
    doc = json.loads(raw)
    doc["mu"] = doc["mu"][:-1]  # arrays of unequal length
    path.write_text(json.dumps(doc))
    assert cache.get(key) is None
    assert cache.stats().corrupt == 2
    cache.put(key, _spectrum())  # recomputing replaces the bad file
    assert key in cache and key not in cache.corrupt_keys


def test_failed_write_keeps_old_entry_and_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SpectrumCache(tmp_path)
    key = "ef" + "4" * 62
    cache.put(key, _spectrum(n=50))

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        cache.put(key, _spectrum(n=80))
    monkeypatch.undo()
    assert cache.get(key).spectrum.energy.size == 50
    assert _temp_files(tmp_path) == []


def test_clean_temp_removes_only_stale_files(tmp_path: Path) -> None:
    cache = SpectrumCache(tmp_path)
    (tmp_path / "ab").mkdir()
    stale, fresh = tmp_path / "ab" / ".x.json.1.tmp", tmp_path / "ab" / ".y.json.2.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert cache.stats().temp_files == 2
    assert cache.clean_temp() == 1
    assert not stale.exists() and fresh.exists()


# ------------------------------------------------------------------ planning


def test_plan_jobs(jobs: list[SiteJob]) -> None:
    by_group: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for job in jobs:
        by_group.setdefault((job.material_id, job.element), []).append(
            (job.site_index, job.multiplicity))
        assert job.edge == "K" and job.preset == "fast"
    assert list(by_group) == [("t-MnO", "Mn"), ("t-NiO", "Ni"), ("t-TiO2", "Ti"),
                              ("t-TiO2", "O"), ("t-Co3O4", "Co"), ("t-ZnO", "Zn")]
    assert sorted(m for _, m in by_group[("t-Co3O4", "Co")]) == [2, 4]  # 8a + 16d, primitive
    assert sum(m for _, m in by_group[("t-TiO2", "O")]) == 4
    assert jobs[0].formula == "MnO" and "t-MnO (MnO) Mn site 0" in jobs[0].label
    with pytest.raises(ConfigurationError, match="no structure for 1 material"):
        plan_jobs(_structures(), {"t-XYZ": ["Mn"]})
    with pytest.raises(ConfigurationError, match="preset"):
        plan_jobs(_structures(), ELEMENTS, preset="slow")


# ------------------------------------------------------------------ running


def test_serial_run_resumes_after_interrupt(tmp_path: Path, jobs: list[SiteJob],
                                            calls) -> None:
    cache = SpectrumCache(tmp_path / "cache")
    n = len(jobs)
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, cache, executor="serial", progress=False, simulate=InterruptAfter(3))
    assert cache.stats().spectra == 3 and _temp_files(tmp_path) == []
    assert cache.stats().index_keys == n  # keys were remembered, not rebuilt on the rerun

    assert calls() == 3
    report = run_jobs(jobs, cache, executor="serial", progress=False, simulate=fake_simulate)
    assert calls() == 3 + n - 3
    assert (report.n_jobs, report.n_unique, report.n_cached, report.n_computed) == (
        n, n, 3, n - 3)
    assert report.ok and "from cache" in report.summary()

    again = run_jobs(jobs, cache, executor="serial", progress=False, simulate=refuse)
    assert again.n_cached == n and again.n_computed == 0 and calls() == n


def test_failures_are_recorded_not_fatal_and_retried_on_request(
        tmp_path: Path, jobs: list[SiteJob], calls) -> None:
    cro = _structures()["t-MnO"].copy()
    cro.replace_species({"Mn": "Cr"})
    bad = plan_jobs({"bad-Cr": cro}, {"bad-Cr": ["Cr"]})
    cache = SpectrumCache(tmp_path)
    report = run_jobs([*jobs, *bad], cache, executor="serial", progress=False,
                      simulate=fake_simulate, retry_ladder=())
    assert report.n_computed == len(jobs) and report.n_failed == 1
    failure = report.failures[0]
    assert failure.job.material_id == "bad-Cr" and failure.stage == "pot" and failure.cached
    assert cache.get(failure.key).failed

    again = run_jobs([*jobs, *bad], cache, executor="serial", progress=False, simulate=refuse,
                     retry_ladder=())
    assert again.n_skipped_failed == 1 and again.failures[0].previous
    assert calls() == len(jobs) + 1
    retried = run_jobs(bad, cache, executor="serial", progress=False, retry_failed=True,
                       simulate=fake_simulate, retry_ladder=())
    assert retried.n_failed == 1 and not retried.failures[0].previous
    assert calls() == len(jobs) + 2

    with pytest.warns(UserWarning, match="1 material/element spectra are incomplete"):
        spectra = assemble_spectra([*jobs, *bad], cache)
    assert ("bad-Cr", "Cr", "K") not in spectra
    assert "FEFF failed in stage pot" in spectra.incomplete[("bad-Cr", "Cr", "K")]
    assert len(spectra) == len({(j.material_id, j.element) for j in jobs})


def test_unusable_output_is_cached_and_unexpected_errors_are_retried(
        tmp_path: Path, calls) -> None:
    cache = SpectrumCache(tmp_path)
    mno, nio = _structures()["t-MnO"], _structures()["t-NiO"]
    jobs = plan_jobs({"nan-1": mno, "oops-1": nio}, {"nan-1": "Mn", "oops-1": "Ni"})
    report = run_jobs(jobs, cache, executor="serial", progress=False, simulate=fake_simulate)
    nan, oops = report.failures
    assert nan.cached and nan.stage == "ff2x (output)" and "unusable" in nan.message
    assert not oops.cached and "RuntimeError: a bug" in oops.message
    assert cache.get(nan.key).failed and oops.key not in cache
    again = run_jobs(jobs, cache, executor="serial", progress=False, simulate=fake_simulate)
    assert again.n_skipped_failed == 1 and calls() == 3  # only the unexpected error reran


def test_corrupt_entry_is_recomputed(tmp_path: Path, jobs: list[SiteJob], calls) -> None:
    cache = SpectrumCache(tmp_path)
    run_jobs(jobs[:3], cache, executor="serial", progress=False, simulate=fake_simulate)
    key = job_keys(jobs[:1], cache)[0]
    path = cache.path(key)
    path.write_bytes(path.read_bytes()[:100])
    report = run_jobs(jobs[:3], cache, executor="serial", progress=False,
                      simulate=fake_simulate)
    assert (report.n_cached, report.n_computed, calls()) == (2, 1, 4)
    assert key in cache


def test_duplicate_structures_run_once(tmp_path: Path, calls) -> None:
    mno = _structures()["t-MnO"]
    jobs = plan_jobs({"a": mno, "b": mno.copy(), "c": mno.as_dict()},
                     {"a": "Mn", "b": "Mn", "c": "Mn"})
    report = run_jobs(jobs, SpectrumCache(tmp_path), executor="serial", progress=False,
                      simulate=fake_simulate)
    assert (report.n_jobs, report.n_unique, report.n_computed, calls()) == (3, 1, 1, 1)
    assert set(assemble_spectra(jobs, SpectrumCache(tmp_path))) == {
        ("a", "Mn", "K"), ("b", "Mn", "K"), ("c", "Mn", "K")}


def test_process_pool_gives_the_serial_cache(tmp_path: Path, jobs: list[SiteJob],
                                             calls) -> None:
    serial = SpectrumCache(tmp_path / "serial")
    pooled = SpectrumCache(tmp_path / "pool")
    run_jobs(jobs, serial, executor="serial", progress=False, simulate=fake_simulate)
    report = run_jobs(jobs, pooled, workers=2, progress=False, simulate=fake_simulate)
    assert report.executor == "process" and report.workers == 2 and report.ok
    assert calls() == 2 * len(jobs)
    assert _contents(pooled) == _contents(serial) and len(_contents(serial)) == len(jobs)
    assert multiprocessing.active_children() == []


def test_process_pool_interrupt_stops_workers_and_resumes(
        tmp_path: Path, jobs: list[SiteJob], calls, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SpectrumCache(tmp_path / "cache")
    job_keys(jobs, cache)  # keys into the index, so the run starts simulating at once
    monkeypatch.setenv(LOG_ENV + "_SLEEP", "0.6")
    # SIGINT may be ignored when the suite runs as a background job: restore Python's handler
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl-C after 1 s
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_jobs(jobs, cache, workers=2, progress=False, simulate=fake_simulate)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    # the pool is gone, and the jobs that were running were stopped, not awaited
    assert multiprocessing.active_children() == []
    time.sleep(0.7)
    folder = Path(os.environ[LOG_ENV])
    assert len(list(folder.glob("*.done"))) < calls()
    done = cache.stats().spectra
    assert 0 < done < len(jobs) and _temp_files(tmp_path) == []

    monkeypatch.setenv(LOG_ENV + "_SLEEP", "0")
    before = calls()
    report = run_jobs(jobs, cache, workers=2, progress=False, simulate=fake_simulate)
    assert report.n_cached == done and report.n_computed == len(jobs) - done
    assert calls() - before == len(jobs) - done


def test_dask_local_cluster_gives_the_serial_cache(tmp_path: Path, jobs: list[SiteJob],
                                                   calls) -> None:
    distributed = pytest.importorskip("distributed")
    serial = SpectrumCache(tmp_path / "serial")
    run_jobs(jobs, serial, executor="serial", progress=False, simulate=fake_simulate)
    on_dask = SpectrumCache(tmp_path / "dask")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster:
            report = run_jobs(jobs, on_dask, scheduler_address=cluster.scheduler_address,
                              progress=False, simulate=fake_simulate)
    assert report.executor == "dask" and report.ok and report.n_computed == len(jobs)
    assert _contents(on_dask) == _contents(serial)
    assert calls() == 2 * len(jobs)


def test_executor_options_are_checked(tmp_path: Path, jobs: list[SiteJob]) -> None:
    cache = SpectrumCache(tmp_path)
    with pytest.raises(ConfigurationError, match="unknown executor"):
        run_jobs(jobs, cache, executor="threads")
    with pytest.raises(ConfigurationError, match="needs a scheduler_address"):
        run_jobs(jobs, cache, executor="dask")
    with pytest.raises(ConfigurationError, match="scheduler_address is given"):
        run_jobs(jobs, cache, executor="process", scheduler_address="tcp://localhost:1")
    with pytest.raises(ConfigurationError, match="workers"):
        run_jobs(jobs, cache, workers=0)


# ------------------------------------------------------------------ assembling


def test_assemble_weights_sites_and_refuses_half_materials(
        tmp_path: Path, jobs: list[SiteJob]) -> None:
    cache = SpectrumCache(tmp_path)
    run_jobs(jobs, cache, executor="serial", progress=False, simulate=fake_simulate)
    spectra = assemble_spectra(jobs, cache)
    assert not spectra.incomplete and len(spectra) == 6
    co = spectra[("t-Co3O4", "Co", "K")]
    assert isinstance(co, feff.SimulatedXANES) and co.formula == "Co3O4"
    assert sorted(s.multiplicity for s in co.sites) == [2, 4]
    energy, mu = feff.average_site_spectra(co.sites)
    np.testing.assert_allclose(co.energy, energy)
    np.testing.assert_allclose(co.mu, mu)
    # weights are the multiplicities: the 16d site counts twice as much as the 8a site
    s_a, s_b = co.sites
    alone = (s_a.multiplicity * np.interp(co.energy, s_a.energy, s_a.mu)
             + s_b.multiplicity * np.interp(co.energy, s_b.energy, s_b.mu)) / 6.0
    np.testing.assert_allclose(co.mu, alone)

    co_jobs = [j for j in jobs if j.material_id == "t-Co3O4"]
    cache.discard(job_keys(co_jobs[:1], cache)[0])
    with pytest.warns(UserWarning, match="incomplete"):
        partial = assemble_spectra(jobs, cache)
    assert ("t-Co3O4", "Co", "K") not in partial and len(partial) == 5
    assert "not simulated yet" in partial.incomplete[("t-Co3O4", "Co", "K")]


# ------------------------------------------------------------------ one real FEFF run


@pytest.mark.feff
def test_real_feff_run_through_runner_then_cache_hit(tmp_path: Path) -> None:
    mno = _rocksalt("Mn", 4.445)
    jobs = plan_jobs({"t-MnO": mno}, {"t-MnO": ["Mn"]}, preset="fast")
    assert len(jobs) == 1
    cache = SpectrumCache(tmp_path / "cache")
    first = run_jobs(jobs, cache, executor="serial", progress=False)
    assert first.ok and first.n_computed == 1 and first.compute_time_s > 0
    second = run_jobs(jobs, cache, executor="serial", progress=False, simulate=refuse)
    assert second.n_cached == 1 and second.n_computed == 0
    entry = cache.get(job_keys(jobs, cache)[0])
    assert entry.spectrum.feff_version.startswith("FEFF 10")
    assert entry.metadata["material_id"] == "t-MnO" and entry.metadata["preset"] == "fast"
    xanes = assemble_spectra(jobs, cache)[("t-MnO", "Mn", "K")]
    assert 6500 < xanes.energy[0] < 6560 < xanes.energy[-1]
    assert np.all(np.diff(xanes.energy) > 0) and np.ptp(xanes.mu) > 0.5
    assert _temp_files(tmp_path) == []


# ------------------------------------------------------------------ the committed demo build cache

#: The committed demo build (pool, frozen subsets, FEFF cache with its key index).
DEMO_BUILD = Path(__file__).resolve().parents[1] / "data" / "demo_build"
#: Every this-many-th compound of the frozen XANES subset is checked: 10 of 1,600, spread over
#: the named compounds, the all-element subset and the seeded draw.
DEMO_SAMPLE_STEP = 160
_CANDIDATE_ID = re.compile(r'"candidate_id":\s*"([^"]+)"')


@pytest.fixture(scope="module")
def demo_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[SiteJob], SpectrumCache]:
    """The FEFF jobs ``build-demo`` plans for a sample of the committed XANES subset.

    The same planning calls as :func:`specfusion_lib.data.demo.build_demo_snapshot`, on a pool
    folder holding only the sampled compounds' relaxation records (loading the whole pool
    takes ~20 s).
    """
    if not DEMO_BUILD.is_dir():
        pytest.skip(f"{DEMO_BUILD} is absent: no committed demo build to check")
    from specfusion_lib.data.demo import (
        ALL_ELEMENT_SUBSET_FILE,
        XANES_SUBSET_FILE,
        plan_demo_spectra,
    )
    from specfusion_lib.data.demo_pool import RECORDS_DIR, load_pool

    xanes_ids = json.loads((DEMO_BUILD / XANES_SUBSET_FILE).read_text())["candidate_ids"]
    all_ids = json.loads((DEMO_BUILD / ALL_ELEMENT_SUBSET_FILE).read_text())["candidate_ids"]
    sample = set(xanes_ids[::DEMO_SAMPLE_STEP])
    records = tmp_path_factory.mktemp("demo_pool") / RECORDS_DIR
    records.mkdir()
    for path in sorted((DEMO_BUILD / "pool" / RECORDS_DIR).glob("*.json")):
        text = path.read_text(encoding="utf-8")
        found = _CANDIDATE_ID.search(text)
        if found and found.group(1) in sample:
            (records / path.name).write_text(text, encoding="utf-8")
    entries = load_pool(records.parent)
    assert {e.candidate_id for e in entries} == sample, "sampled compounds missing from the pool"
    plan = plan_demo_spectra(entries, all_element_ids=all_ids, xanes_ids=xanes_ids)
    jobs = plan_jobs({e.candidate_id: e.structure for e in entries}, plan, edge="K",
                     preset="fast")
    assert len(jobs) >= len(sample)
    return jobs, SpectrumCache(DEMO_BUILD / "feff")


_REBUILD_HINT = ("regenerate the key index: runner.job_keys(<jobs build-demo plans>, "
                 "SpectrumCache('data/demo_build/feff')) after removing the stale "
                 "data/demo_build/feff/index/*.json")


def test_committed_demo_cache_hits_without_building_inputs(
        demo_sample: tuple[list[SiteJob], SpectrumCache],
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, cache = demo_sample
    version = feff.feff_version()
    index = cache.load_key_index()
    prints = runner._fingerprints(jobs, version)
    unindexed = [job.label for job, fp in zip(jobs, prints, strict=True) if fp not in index]
    assert not unindexed, (f"{len(unindexed)} of {len(jobs)} planned jobs miss the committed "
                           f"key index (first: {unindexed[0]}); {_REBUILD_HINT}")
    absent = [job.label for job, fp in zip(jobs, prints, strict=True)
              if cache.get(index[fp]) is None]
    assert not absent, f"the index points to keys without a cache entry: {absent}"

    def no_input(*args: object, **kwargs: object) -> str:
        raise AssertionError("a feff.inp was built although the key index covers the job")

    monkeypatch.setattr(feff, "feff_input", no_input)
    assert job_keys(jobs, cache, feff_version=version) == [index[fp] for fp in prints]


def test_committed_demo_index_matches_fresh_inputs(
        demo_sample: tuple[list[SiteJob], SpectrumCache]) -> None:
    jobs, cache = demo_sample
    version = feff.feff_version()
    index = cache.load_key_index()
    chosen = [jobs[0], jobs[len(jobs) // 2], jobs[-1]]
    fresh = job_keys(chosen, None, feff_version=version)  # builds every feff.inp
    indexed = [index.get(fp) for fp in runner._fingerprints(chosen, version)]
    assert fresh == indexed, (
        "the feff.inp text differs from the one the committed key index was built from: a "
        "change of feff_input's text needs a new feff.FEFF_INPUT_VERSION and new spectra for "
        "data/demo_build/feff (rerun the demo build); if the text did not change, "
        + _REBUILD_HINT)


def test_fingerprint_follows_the_declared_feff_input_version(
        jobs: list[SiteJob], monkeypatch: pytest.MonkeyPatch) -> None:
    before = runner._fingerprints(jobs, "FEFF test")
    monkeypatch.setattr(feff, "FEFF_INPUT_VERSION", feff.FEFF_INPUT_VERSION + "-changed")
    runner._fingerprint_salt.cache_clear()
    try:
        after = runner._fingerprints(jobs, "FEFF test")
    finally:
        monkeypatch.undo()
        runner._fingerprint_salt.cache_clear()
    assert not set(before) & set(after)
    assert runner._fingerprints(jobs, "FEFF test") == before


def test_fingerprint_ignores_what_as_dict_derives(jobs: list[SiteJob]) -> None:
    """Lattice lengths, angles, volume and Cartesian coordinates are recomputed by
    ``as_dict()`` with machine-dependent last bits: they must not move a fingerprint (a
    committed key index would then miss on another machine); the matrix, species and
    fractional coordinates must."""
    import copy
    import dataclasses

    job = jobs[0]
    noisy = copy.deepcopy(job.structure)
    noisy["lattice"]["a"] = float(np.nextafter(noisy["lattice"]["a"], np.inf))
    noisy["lattice"]["volume"] *= 1 + 1e-15
    noisy["sites"][0]["xyz"] = [float(np.nextafter(x, np.inf)) for x in noisy["sites"][0]["xyz"]]
    (base,) = runner._fingerprints([job], "FEFF test")
    (same,) = runner._fingerprints([dataclasses.replace(job, structure=noisy)], "FEFF test")
    assert same == base
    moved = copy.deepcopy(job.structure)
    moved["sites"][0]["abc"][0] += 1e-9
    (other,) = runner._fingerprints([dataclasses.replace(job, structure=moved)], "FEFF test")
    assert other != base


def test_retry_ladder_rescues_records_the_rung_and_reruns_failures_of_an_older_ladder(
        tmp_path: Path, calls) -> None:
    mno = _structures()["t-MnO"]
    cro = mno.copy()
    cro.replace_species({"Mn": "Cr"})
    fragile = plan_jobs({"fragile-Mn": mno}, {"fragile-Mn": ["Mn"]})
    bad = plan_jobs({"bad-Cr": cro}, {"bad-Cr": ["Cr"]})
    cache = SpectrumCache(tmp_path)
    # Without the ladder the fragile job fails and is recorded without a ladder tag.
    first = run_jobs([*fragile, *bad], cache, executor="serial", progress=False,
                     simulate=fake_simulate, retry_ladder=())
    assert first.n_failed == 2 and first.n_rescued == 0
    assert calls() == 2
    # With the ladder both failures are tried again: the fragile one is rescued by the
    # radius-7 rung (after afolp-0.8 and no-afolp; no-scf is skipped: "fast" has no SCF).
    second = run_jobs([*fragile, *bad], cache, executor="serial", progress=False,
                      simulate=fake_simulate)
    assert second.n_rescued == 1 and second.rescued_by == {"radius-7": 1}
    assert calls() == 2 + (1 + 3) + (1 + 4)
    entry = cache.get(job_keys(fragile, cache)[0])
    assert entry.spectrum.retry == "radius-7" and entry.spectrum.radius == 7.0
    assert "AFOLP" not in entry.spectrum.cards and entry.metadata["retry"] == "radius-7"
    # The bad one failed every rung; the message names each rung's stage, and a rerun with
    # the same ladder skips it.
    assert second.n_failed == 1
    message = second.failures[0].message
    assert second.failures[0].stage == "pot" and "retry dirac-hara: failed in stage pot" in message
    third = run_jobs([*fragile, *bad], cache, executor="serial", progress=False, simulate=refuse)
    assert third.n_skipped_failed == 1 and third.n_cached == 1
    spectra = assemble_spectra(fragile, cache)
    assert spectra[("fragile-Mn", "Mn", "K")].sites[0].retry == "radius-7"
    made = spectra[("fragile-Mn", "Mn", "K")].settings()
    assert made["preset"] == "fast" and made["sites"][0]["retry"] == "radius-7"
    assert made["sites"][0]["radius"] == 7.0 and "AFOLP" not in made["sites"][0]["cards"]
