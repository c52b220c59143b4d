"""Logging: the opt-in handler, the environment variable, the CLI option and long-job records."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Element, Lattice, Structure

from specfusion_lib.cli.main import main
from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import SimulationError
from specfusion_lib.core.logs import ENV_VAR, PACKAGE_LOGGER, configure_logging, parse_level
from specfusion_lib.simulate import feff
from specfusion_lib.simulate.cache import SpectrumCache
from specfusion_lib.simulate.runner import plan_jobs, run_jobs


def _ours(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if getattr(h, "_specfusion_handler", False)]


@pytest.fixture
def package_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The package logger, with its handlers and level restored after the test."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    logger = logging.getLogger(PACKAGE_LOGGER)
    handlers, level = list(logger.handlers), logger.level
    for handler in _ours(logger):
        logger.removeHandler(handler)
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


# ------------------------------------------------------------------ configure_logging


def test_configure_logging_is_idempotent(package_logger: logging.Logger) -> None:
    configure_logging("INFO")
    configure_logging("debug")
    assert len(_ours(package_logger)) == 1
    assert package_logger.level == logging.DEBUG
    configure_logging(logging.WARNING)
    assert len(_ours(package_logger)) == 1 and package_logger.level == logging.WARNING


def test_environment_variable_sets_the_level(package_logger: logging.Logger,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "debug")
    configure_logging()
    assert package_logger.level == logging.DEBUG
    configure_logging("ERROR")  # the environment wins over the default of the caller
    assert package_logger.level == logging.DEBUG
    configure_logging("ERROR", env=False)  # an explicit choice (the CLI option) wins
    assert package_logger.level == logging.ERROR
    monkeypatch.setenv(ENV_VAR, "loud")
    with pytest.warns(UserWarning, match="SPECFUSION_LOG_LEVEL='loud' ignored"):
        configure_logging("WARNING")
    assert package_logger.level == logging.WARNING
    assert len(_ours(package_logger)) == 1


def test_parse_level() -> None:
    assert parse_level("info") == logging.INFO and parse_level("15") == 15
    assert parse_level(logging.ERROR) == logging.ERROR
    with pytest.raises(ValueError, match="invalid log level"):
        parse_level("chatty")


def test_records_go_to_the_current_stderr_in_the_concise_format(
        package_logger: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    logging.getLogger("specfusion_lib.some.module").info("wrote %d file(s)", 3)
    logging.getLogger("specfusion_lib.some.module").debug("not shown")
    err = capsys.readouterr().err
    assert "INFO specfusion_lib.some.module: wrote 3 file(s)" in err
    assert "not shown" not in err


@pytest.mark.parametrize("env_level", [None, "DEBUG"])
def test_import_configures_logging_only_when_asked(env_level: str | None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if env_level is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, env_level)
    code = ("import logging, specfusion_lib; lg = logging.getLogger('specfusion_lib'); "
            "print(sorted(type(h).__name__ for h in lg.handlers), lg.level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    if env_level is None:
        assert out.strip() == "['NullHandler'] 0"
    else:
        assert "_CurrentStderrHandler" in out and out.strip().endswith(str(logging.DEBUG))


# ------------------------------------------------------------------ the command line


def test_cli_accepts_log_level(package_logger: logging.Logger, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-level", "debug", "data", "verify", str(tmp_path)]) == 2
    assert package_logger.level == logging.DEBUG and len(_ours(package_logger)) == 1
    assert "manifest.json missing" in capsys.readouterr().err
    assert main(["data", "verify", str(tmp_path)]) == 2  # default level
    assert package_logger.level == logging.INFO and len(_ours(package_logger)) == 1
    with pytest.raises(SystemExit):
        main(["--log-level", "chatty", "data", "verify", str(tmp_path)])


# ------------------------------------------------------------------ long jobs


def _fake_simulate(structure: Structure, site_index: int, edge: str = "K",
                   preset: str = "fast", *, material_id: str | None = None,
                   timeout: float | None = None) -> feff.SiteSpectrum:
    """A synthetic site spectrum; FEFF "fails" in stage pot for ids containing 'bad'."""
    symbol = structure[site_index].specie.symbol
    if material_id and "bad" in material_id:
        raise SimulationError(f"FEFF10 failed for {material_id}, absorber {symbol} site "
                              f"{site_index} in stage pot: synthetic failure")
    e0 = 100.0 * Element(symbol).Z
    energy = np.linspace(e0 - 20.0, e0 + 80.0, 120)
    return feff.SiteSpectrum(energy=energy, mu=1.0 / (1.0 + np.exp(-(energy - e0))),
                             element=symbol, site_index=site_index, edge=edge, preset=preset,
                             feff_version="fake", wall_time_s=0.01, e_fermi=e0 - 5.0,
                             cards=feff.preset_cards(preset, edge))


def _refuse(*args: object, **kwargs: object) -> feff.SiteSpectrum:
    raise AssertionError("everything should come from the cache")


def _rocksalt(metal: str) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.4), [metal, "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def test_feff_runner_logs_counts_cache_hits_and_failures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(feff, "feff_version", lambda: "FEFF test")
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    jobs = plan_jobs({"t-MnO": _rocksalt("Mn"), "bad-Cr": _rocksalt("Cr")},
                     {"t-MnO": ["Mn"], "bad-Cr": ["Cr"]})
    assert "planned 2 FEFF site jobs for 2 material(s)" in caplog.text
    cache = SpectrumCache(tmp_path / "feff")
    run_jobs(jobs, cache, executor="serial", progress=False, simulate=_fake_simulate)
    failed = [r for r in caplog.records if r.levelno == logging.WARNING
              and r.getMessage().startswith("FEFF failed")]
    assert len(failed) == 1
    message = failed[0].getMessage()
    assert "bad-Cr" in message and "Cr site 0" in message and "stage pot" in message
    assert "0 of 2 from cache" in caplog.text and "1 computed" in caplog.text
    assert "takes no 'overrides' / 'radius' keywords: FEFF failures are not retried" in \
        caplog.text

    caplog.clear()
    # the failure was recorded without the retry ladder (the fake takes no overrides, which
    # was logged); a run without a ladder skips it as known
    run_jobs(jobs, cache, executor="serial", progress=False, simulate=_refuse, retry_ladder=())
    assert "1 of 2 from cache, 1 known failure(s) skipped, 0 to compute" in caplog.text
    assert any(r.levelno == logging.WARNING and "1 FEFF spectra skipped" in r.getMessage()
               for r in caplog.records)
    assert all(r.name == "specfusion_lib.simulate.runner" for r in caplog.records)


def test_build_features_logs_skipped_spectra(fixture_snapshot,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from specfusion_lib.properties.features import build_features

    spectra = fixture_snapshot.spectra
    first = spectra.loc[spectra["element"].isin(TRANSITION_METALS)].iloc[[0]]
    doubled = types.SimpleNamespace(  # the snapshot with one spectrum listed twice
        materials=fixture_snapshot.materials, snapshot_id=fixture_snapshot.snapshot_id,
        spectra=pd.concat([spectra, first], ignore_index=True))
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    features = build_features(doubled)
    assert len(features.skipped) >= 1
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    assert "duplicate spectrum" in warnings_[0].getMessage()
    assert str(first["material_id"].iloc[0]) in warnings_[0].getMessage()
    assert any(r.levelno == logging.INFO and f"{len(features)} material(s) kept" in r.getMessage()
               for r in caplog.records)
