"""Every notebook runs top to bottom under papermill in the smoke profile; the tables that
notebooks 00–02 write agree with what the library computes on the same fixture snapshot."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
from pymatgen.core import Element

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


# --------------------------------------------------------------------------------------------
# Executed notebooks: each runs once per module, shared by the tests below
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutedNotebook:
    """A notebook executed in the smoke profile on the fixture snapshot."""

    output: Path
    figures: Path
    checkpoints: Path | None

    def table(self, slug: str) -> pd.DataFrame:
        """A table the notebook wrote with ``save_table`` (``figures/tables/<slug>.csv``)."""
        path = self.figures / "tables" / f"{slug}.csv"
        assert path.is_file(), f"{self.output.name} did not write tables/{slug}.csv"
        return pd.read_csv(path)


class NotebookRuns:
    """Executes a notebook on first request and hands back the same run afterwards."""

    def __init__(self, factory: pytest.TempPathFactory, kernel: str, snapshot: Path) -> None:
        self._factory, self._kernel, self._snapshot = factory, kernel, snapshot
        self._done: dict[str, ExecutedNotebook | BaseException] = {}

    def __call__(self, stem: str) -> ExecutedNotebook:
        if stem not in self._done:
            try:
                self._done[stem] = self._execute(stem)
            except Exception as exc:
                self._done[stem] = exc
                raise
        done = self._done[stem]
        if isinstance(done, BaseException):
            last = (str(done).strip().splitlines() or [""])[-1]
            pytest.fail(f"{stem} failed when first executed in this module (see "
                        f"test_notebook_runs_in_smoke_profile[{stem}]): {last}")
        return done

    def _execute(self, stem: str) -> ExecutedNotebook:
        path = ROOT / "notebooks" / f"{stem}.ipynb"
        work = self._factory.mktemp(stem)
        figures = work / "figures"
        parameters: dict[str, str] = {"profile": "smoke", "data": str(self._snapshot),
                                      "figures_dir": str(figures)}
        checkpoints = None
        if "checkpoint_dir =" in _parameters_source(path):  # keep test checkpoints out of build/
            checkpoints = work / "checkpoints"
            parameters["checkpoint_dir"] = str(checkpoints)
        output = work / path.name
        pm.execute_notebook(str(path), str(output), kernel_name=self._kernel, cwd=str(ROOT),
                            parameters=parameters, progress_bar=False)
        return ExecutedNotebook(output, figures, checkpoints)


@pytest.fixture(scope="module")
def executed_notebook(tmp_path_factory: pytest.TempPathFactory, jupyter_kernel: str,
                      fixture_snapshot_path: Path) -> NotebookRuns:
    """``executed_notebook("02_property_prediction")``: that notebook's smoke run."""
    return NotebookRuns(tmp_path_factory, jupyter_kernel, fixture_snapshot_path)


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(path: Path, executed_notebook: NotebookRuns) -> None:
    run = executed_notebook(path.stem)
    expected = {e.stem for e in CATALOGUE if e.notebook == path.stem and not e.optional}
    written = {p.stem for p in run.figures.rglob("*") if p.is_file()}
    assert expected <= written, f"{path.name} did not write {sorted(expected - written)}"


# --------------------------------------------------------------------------------------------
# What the notebooks wrote, against the fixture snapshot
# --------------------------------------------------------------------------------------------


@pytest.mark.notebook
def test_notebook_00_counts_table_matches_the_snapshot(executed_notebook: NotebookRuns,
                                                       fixture_snapshot) -> None:
    counts = executed_notebook("00_data").table("snapshot_summary")
    value = dict(zip(counts["quantity"], counts["value"].astype(int), strict=True))
    materials, spectra = fixture_snapshot.materials, fixture_snapshot.spectra
    assert value["materials"] == len(materials)
    assert value["spectra"] == len(spectra)
    by_edge = spectra.groupby(["element", "edge"]).size()
    for (element, edge), n in by_edge.items():
        assert value[f"spectra {element} {edge}"] == n, (element, edge)
    assert sum(v for k, v in value.items() if k.startswith("spectra ")) == len(spectra)
    labels = {k.removeprefix("label "): v for k, v in value.items() if k.startswith("label ")}
    assert {"density", "band_gap"} <= set(labels)
    for name, n in labels.items():
        assert n == int(materials[name].notna().sum()), name


@pytest.mark.notebook
def test_notebook_01_statistics_tables_match_the_snapshot(executed_notebook: NotebookRuns,
                                                          fixture_snapshot) -> None:
    from specfusion_lib.data import statistics

    run = executed_notebook("01_dataset_statistics")
    table = run.table("element_counts")
    written = dict(zip(table["element"], table["materials"], strict=True))
    by_hand = Counter(el for els in fixture_snapshot.materials["elements"] for el in els)
    assert written == dict(by_hand)
    assert written == statistics.element_counts(fixture_snapshot).to_dict()
    assert list(table["element"]) == sorted(written, key=lambda el: Element(el).Z)
    nel = run.table("nelements_counts")
    assert dict(zip(nel["nelements"], nel["materials"], strict=True)) == dict(
        Counter(len(els) for els in fixture_snapshot.materials["elements"]))


def _recorded_run(checkpoints: Path, task: str) -> dict:
    path = checkpoints / f"{task}-seed0.json"
    assert path.is_file(), f"notebook 02 wrote no checkpoint metadata for {task}"
    return json.loads(path.read_text())


def _baseline_on_split(labels: pd.Series, split: dict[str, list[str]], kind: str,
                       class_names: list[str]) -> dict[str, float]:
    """The trivial baseline recomputed from the raw labels of the recorded split."""
    train, test = labels[split["train"]], labels[split["test"]]
    if kind == "regression":
        train, test = train.astype(float), test.astype(float)
        return {"mae": float(np.mean(np.abs(test - train.mean())))}
    counts = train.value_counts()
    majority = next(c for c in class_names if counts.get(c, 0) == counts.max())  # ties: first
    return {"accuracy": float(np.mean(test == majority))}


@pytest.mark.notebook
def test_notebook_02_metrics_match_the_recorded_split(executed_notebook: NotebookRuns,
                                                      fixture_snapshot) -> None:
    from specfusion_lib.core.tasks import ALL_TASKS
    from specfusion_lib.properties.runs import NOT_AVAILABLE

    run = executed_notebook("02_property_prediction")
    assert run.checkpoints is not None
    metrics = run.table("property_prediction_metrics")
    materials = fixture_snapshot.materials.set_index("material_id")
    checked = set()
    for row in metrics.itertuples(index=False):
        task = ALL_TASKS[row.task]
        if row.status == NOT_AVAILABLE:
            assert not task.available(fixture_snapshot.materials), row.task
            assert not (run.checkpoints / f"{row.task}-seed0.pt").exists(), row.task
            continue
        assert row.status == "trained"
        meta = _recorded_run(run.checkpoints, row.task)
        assert row.seeds == 1 and row.n_test == len(meta["split"]["test"]), row.task
        recorded = meta["metrics"][row.metric]  # NaN is stored as null
        assert row.ours_mean == pytest.approx(np.nan if recorded is None else recorded,
                                              nan_ok=True), (row.task, row.metric)
        baseline = _baseline_on_split(task.labels(materials), meta["split"], row.kind,
                                      meta["task"]["class_names"])
        if row.metric in baseline:
            assert row.baseline_value == pytest.approx(baseline[row.metric], rel=1e-5), \
                (row.task, row.metric)
            checked.add(row.kind)
    assert checked == {"classification", "regression"}  # density and crystal system at least
