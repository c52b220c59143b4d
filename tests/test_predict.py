"""User-facing prediction (``predict_properties``, ``specfusion predict``) on fixture models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specfusion_lib.cli import main
from specfusion_lib.core.errors import (
    ConfigurationError,
    ElementError,
    InputFileError,
    WrongElementError,
)
from specfusion_lib.properties.predict import (
    TRAINING_ELEMENTS_KEY,
    Predictor,
    assign_spectra,
    predict_properties,
    predictions_to_json,
)
from specfusion_lib.properties.runs import run_tasks
from specfusion_lib.spectra.xanes import XANESSpectrum, tabulated_edge_energy
from specfusion_lib.training.checkpoints import load

TASKS = ("density", "crystal_system", "oxidation_state")

#: A small network and one epoch: the tests check plumbing, not accuracy.
SMALL = {"model_kwargs": {"d_model": 32, "conv_channels": (8, 16), "element_hidden": 16,
                          "fusion_hidden": 32, "ffn_dim": 32, "head_hidden": 16,
                          "n_attention_layers": 1},
         "max_epochs": 1}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, fixture_snapshot) -> Path:
    """Smoke-profile (2-epoch) models of three tasks trained on the fixture snapshot."""
    root = tmp_path_factory.mktemp("checkpoints")
    runs = run_tasks(fixture_snapshot, TASKS, "smoke", checkpoint_dir=root, **SMALL)
    assert all(r.available for r in runs.values())
    return root


def _spectrum(snapshot, material_id: str, element: str) -> XANESSpectrum:
    rows = snapshot.spectra
    row = rows[(rows["material_id"] == material_id) & (rows["element"] == element)].iloc[0]
    return XANESSpectrum(np.asarray(row["energy"]), np.asarray(row["mu"]), element=element)


def _seen_compound(snapshot, checkpoints: Path) -> tuple[str, list[str], str]:
    """A fixture material with one TM whose elements every model saw in training."""
    seen = None
    for path in checkpoints.glob("*.pt"):
        elements = set(load(path)[1][TRAINING_ELEMENTS_KEY])
        seen = elements if seen is None else seen & elements
    tms = {"Mn", "Ni", "Ti", "Cr", "Zn", "Cu", "Co"}
    for row in snapshot.materials.itertuples():
        els = [str(e) for e in row.elements]
        metals = [e for e in els if e in tms]
        if len(metals) == 1 and set(els) <= seen:
            return row.material_id, els, metals[0]
    pytest.skip("no fixture material whose elements every model saw")


def _write_csv(path: Path, spectrum: XANESSpectrum, shift: float = 0.0) -> Path:
    pd.DataFrame({"omega": spectrum.energy + shift, "mu": spectrum.mu}).to_csv(path,
                                                                              index=False)
    return path


def test_checkpoints_record_training_elements(checkpoints: Path) -> None:
    for path in checkpoints.glob("*.pt"):
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta[TRAINING_ELEMENTS_KEY] == sorted(meta[TRAINING_ELEMENTS_KEY])
        assert "O" in meta[TRAINING_ELEMENTS_KEY]


def test_predict_every_property(fixture_snapshot, checkpoints: Path) -> None:
    mid, elements, tm = _seen_compound(fixture_snapshot, checkpoints)
    table = predict_properties({tm: _spectrum(fixture_snapshot, mid, tm)}, elements,
                               checkpoints)
    assert set(table["task"]) == set(TASKS)
    density = table[table["task"] == "density"].iloc[0]
    assert np.isfinite(density["prediction"]) and density["unit"] == "g/cm$^3$"
    crystal = table[table["task"] == "crystal_system"].iloc[0]
    assert crystal["prediction"] in crystal["probabilities"]
    assert sum(crystal["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    ox = table[table["task"] == "oxidation_state"]
    assert list(ox["element"]) == [tm]  # one row per TM element, none for the anions
    payload = json.loads(predictions_to_json(table))
    assert len(payload["predictions"]) == len(table)


def test_predictor_reuses_loaded_models(fixture_snapshot, checkpoints: Path) -> None:
    mid, elements, tm = _seen_compound(fixture_snapshot, checkpoints)
    predictor = Predictor.from_dir(checkpoints, tasks=["density"])
    assert predictor.tasks == ["density"]
    spectra = {tm: _spectrum(fixture_snapshot, mid, tm)}
    a, b = predictor.predict(spectra, elements), predictor.predict(spectra, elements)
    assert a["prediction"].iloc[0] == pytest.approx(b["prediction"].iloc[0])


def test_cli_predict_json_assigns_files_by_edge(fixture_snapshot, checkpoints: Path,
                                                tmp_path: Path, capsys) -> None:
    mid, elements, tm = _seen_compound(fixture_snapshot, checkpoints)
    path = _write_csv(tmp_path / "sample.csv", _spectrum(fixture_snapshot, mid, tm))
    rc = main.main(["predict", "--xanes", str(path), "--elements", *elements,
                   "--checkpoint-dir", str(checkpoints), "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["spectra"] == {tm: str(path)}
    assert {p["task"] for p in payload["predictions"]} == set(TASKS)
    rc = main.main(["predict", "--xanes", f"{tm}={path}", "--elements", *elements,
                   "--checkpoint-dir", str(checkpoints)])
    assert rc == 0
    assert "crystal_system" in capsys.readouterr().out


def test_wrong_element_spectrum(fixture_snapshot, checkpoints: Path, tmp_path: Path,
                                capsys) -> None:
    mn = _spectrum(fixture_snapshot, "fx-MnO", "Mn")
    with pytest.raises(WrongElementError):
        predict_properties({"Ni": mn.replace(element=None)}, ["Ni", "O"], checkpoints)
    with pytest.raises(WrongElementError):
        predict_properties({"Ni": mn}, ["Ni", "O"], checkpoints)
    path = _write_csv(tmp_path / "mn.csv", mn)
    with pytest.raises(WrongElementError):
        predict_properties({"Ni": path}, ["Ni", "O"], checkpoints)
    with pytest.raises(WrongElementError, match="matches none"):
        assign_spectra([path], ["Ni", "O"])
    rc = main.main(["predict", "--xanes", f"Ni={path}", "--elements", "Ni", "O",
                   "--checkpoint-dir", str(checkpoints)])
    assert rc == 2
    assert "error:" in capsys.readouterr().err


def test_unseen_element(fixture_snapshot, checkpoints: Path) -> None:
    mn = _spectrum(fixture_snapshot, "fx-MnO", "Mn")
    # a Mn spectrum moved onto the Fe K edge: a valid Fe spectrum, but no model saw Fe
    shift = tabulated_edge_energy("Fe") - tabulated_edge_energy("Mn")
    fe = XANESSpectrum(mn.energy + shift, mn.mu, element="Fe")
    with pytest.raises(ElementError, match="Fe"):
        predict_properties({"Fe": fe}, ["Fe", "O"], checkpoints)
    with pytest.raises(ElementError, match="never saw"):
        predict_properties({"Mn": mn}, ["Mn", "F"], checkpoints)
    with pytest.raises(ElementError):
        predict_properties({"Mn": mn}, ["Mn", "Xx"], checkpoints)


def test_missing_inputs(fixture_snapshot, checkpoints: Path, tmp_path: Path) -> None:
    mn = _spectrum(fixture_snapshot, "fx-MnO", "Mn")
    with pytest.raises(InputFileError, match="no such checkpoint folder"):
        predict_properties({"Mn": mn}, ["Mn", "O"], tmp_path / "nowhere")
    with pytest.raises(InputFileError, match="no model checkpoints"):
        predict_properties({"Mn": mn}, ["Mn", "O"], tmp_path)
    with pytest.raises(ConfigurationError, match="band_gap"):
        predict_properties({"Mn": mn}, ["Mn", "O"], checkpoints, tasks=["band_gap"])
    with pytest.raises(ConfigurationError, match="no spectrum given"):
        predict_properties({}, ["Mn", "O"], checkpoints)
    with pytest.raises(ConfigurationError, match="not among"):
        predict_properties({"Mn": mn}, ["Ni", "O"], checkpoints)
