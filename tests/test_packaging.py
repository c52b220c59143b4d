"""Packaging: lock file, environment.yml, CLI entry point, run_all.sh options."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from specfusion_lib.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: '{line}' is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_lock_pins_every_direct_dependency() -> None:
    pins = _lock()
    assert pins["torch"] == "2.13.0"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    for dep in deps:
        name = re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} missing from the lock"


def test_environment_yml_installs_the_lock() -> None:
    text = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in text
    assert "-r requirements.lock" in text
    assert "-e ." in text


def test_cli_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("data", "preprocess-xanes", "simulate-pxrd", "figures-index"):
        assert command in out


def test_fetch_mp_without_key_is_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("MP_API_KEY", raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "specfusion_lib", "data", "fetch-mp", "--out",
         str(tmp_path / "mp")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "MP_API_KEY" in result.stderr and "materialsproject.org" in result.stderr
    assert not (tmp_path / "mp").exists()


def test_cli_reports_bad_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", str(tmp_path)]) == 2
    assert "manifest.json missing" in capsys.readouterr().err


def test_run_all_rejects_unknown_profile() -> None:
    result = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--profile", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown profile 'nope'" in result.stderr


def test_cli_parser_does_not_import_torch() -> None:
    code = ("import sys; from specfusion_lib.cli.main import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'pymatgen', 'pandas') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, f"building the parser imported {done.stdout.strip()}"
