"""Shared fixtures: the committed fixture snapshot and the Jupyter kernel for notebooks.

Markers: ``notebook`` and ``feff`` tests are also ``slow``, so ``pytest -m "not slow"`` is the
fast inner loop.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_SNAPSHOT = ROOT / "tests" / "fixtures" / "snapshot"
KERNEL_NAME = "specfusion"
#: Markers whose tests always take more than a few seconds.
SLOW_MARKERS = ("notebook", "feff")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Notebook executions and real FEFF runs are slow tests too."""
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def fixture_snapshot_path() -> Path:
    """Path of the small committed snapshot (spectra simulated with FEFF10 by our code)."""
    if not (FIXTURE_SNAPSHOT / "manifest.json").is_file():
        pytest.fail(f"{FIXTURE_SNAPSHOT} is missing: run `specfusion data build-fixture`")
    return FIXTURE_SNAPSHOT


@pytest.fixture(scope="session")
def fixture_snapshot(fixture_snapshot_path: Path):
    from specfusion_lib.data.snapshot import load_snapshot

    return load_snapshot(fixture_snapshot_path)


@pytest.fixture(scope="session")
def jupyter_kernel() -> str:
    """Name of a kernel running this interpreter (registered inside the venv if missing)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL_NAME not in specs:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
                        "--name", KERNEL_NAME, "--display-name", "Python (specfusion)"],
                       check=True, capture_output=True)
    return KERNEL_NAME
