"""Every notebook runs top to bottom under papermill in the smoke profile."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill as pm
import pytest

from specfusion_lib.plotting.figures_index import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _parameters_source(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(c.source for c in nb.cells
                   if "parameters" in c.get("metadata", {}).get("tags", []))


def test_notebooks_exist_and_are_numbered() -> None:
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"]
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)), "notebook numbers must be unique"


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", [])))
            for c in nb.cells]


def test_every_notebook_has_a_text_twin_and_no_twin_is_orphaned() -> None:
    twins = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")}
    assert twins == {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_and_its_percent_twin_are_in_sync(path: Path) -> None:
    twin = jupytext.read(path.with_suffix(".py"), fmt="py:percent")
    notebook = nbformat.read(path, as_version=4)
    assert _cells(twin) == _cells(notebook), (
        f"{path.name} and {path.with_suffix('.py').name} differ: run "
        f"`jupytext --sync {path.with_suffix('.py').relative_to(ROOT)}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_parameters_cell(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    for name in ("profile", "data", "figures_dir"):
        assert f"{name} =" in tagged[0].source, f"{path.name}: parameter {name} missing"
    outputs = [c for c in nb.cells if c.cell_type == "code" and c.get("outputs")]
    assert not outputs, f"{path.name}: commit notebooks without outputs"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(path: Path, tmp_path: Path, jupyter_kernel: str,
                                        fixture_snapshot_path: Path) -> None:
    figures = tmp_path / "figures"
    parameters = {"profile": "smoke", "data": str(fixture_snapshot_path),
                  "figures_dir": str(figures)}
    if "checkpoint_dir =" in _parameters_source(path):  # keep test checkpoints out of build/
        parameters["checkpoint_dir"] = str(tmp_path / "checkpoints")
    pm.execute_notebook(str(path), str(tmp_path / path.name), kernel_name=jupyter_kernel,
                        cwd=str(ROOT), parameters=parameters, progress_bar=False)
    expected = {e.stem for e in CATALOGUE if e.notebook == path.stem and not e.optional}
    written = {p.stem for p in figures.rglob("*") if p.is_file()}
    assert expected <= written, f"{path.name} did not write {sorted(expected - written)}"
