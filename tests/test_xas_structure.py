"""XAStruct on the package's data layer: grid, local-environment labels, SGMLP, metrics,
baselines, forward and inverse studies (on a slice of the committed demo table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError, ElementError, SpectrumError
from specfusion_lib.xas_structure import study as xs
from specfusion_lib.xas_structure.baselines import MeanSpectrum, NearestNeighbourSpectrum
from specfusion_lib.xas_structure.dataset import XAStructData
from specfusion_lib.xas_structure.forward import TrainSettings, XAStructForward
from specfusion_lib.xas_structure.grid import (
    N_GRID_POINTS,
    WINDOW_SPAN_EV,
    edge_energy,
    grid_window,
    to_grid,
)
from specfusion_lib.xas_structure.local_env import element_environments
from specfusion_lib.xas_structure.metrics import spectrum_metrics, summarise
from specfusion_lib.xas_structure.sgmlp import HEAD_VARIANTS, SGMLP

ROOT = Path(__file__).resolve().parents[1]
FAST = TrainSettings(max_epochs=15, patience=5)


def _rocksalt(a: float = 4.4) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Mn", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def demo_table() -> XAStructData:
    files = sorted((ROOT / "data" / "xastruct").glob("dataset-*.npz"))
    if not files:
        pytest.fail("data/xastruct holds no XAStruct table: run notebook 13 once")
    tables = [XAStructData.load(f) for f in files]
    data = max(tables, key=len)  # the demo's (the real check's is smaller)
    keep = np.isin(data.element, ["Cu", "V"])
    return data.subset(keep)


def test_grid_is_absolute_and_fixed_per_element() -> None:
    fe = grid_window("Fe")
    assert len(fe.energies) == N_GRID_POINTS
    assert fe.energies[-1] - fe.energies[0] == pytest.approx(WINDOW_SPAN_EV)
    assert fe.relative[0] == pytest.approx(-8.0)
    assert grid_window("Ag").start_ev > 0  # FEFF10's 4d edges sit above the tabulated energy


def test_to_grid_normalises_a_step_and_finds_its_edge() -> None:
    grid = grid_window("Fe")
    energy = np.arange(grid.edge_energy - 30, grid.edge_energy + 120, 0.5)
    mu = 0.2 + 3.0 / (1 + np.exp(-(energy - (grid.edge_energy + 10.0)) / 1.0))
    y = to_grid(energy, mu, "Fe")
    assert y[0] == pytest.approx(0.0, abs=0.02)
    assert y[-1] == pytest.approx(1.0, abs=0.02)
    assert edge_energy(y, grid.energies) == pytest.approx(grid.edge_energy + 10.0, abs=0.3)


def test_to_grid_refuses_a_spectrum_that_misses_the_window() -> None:
    grid = grid_window("Fe")
    energy = np.arange(grid.edge_energy + 40, grid.edge_energy + 200, 1.0)
    mu = 1 + 0.5 / (1 + np.exp(-(energy - (grid.edge_energy + 60)) / 2.0))
    with pytest.raises(SpectrumError, match="cover"):
        to_grid(energy, mu, "Fe", source="late.xdi")


def test_local_environment_of_rocksalt_mno() -> None:
    env = element_environments(_rocksalt(4.4), ["Mn"])["Mn"]
    assert env.cn == 6
    assert env.mnnd == pytest.approx(2.2, abs=1e-6)
    assert env.neighbour_type == "O"
    assert 0 in env.pool_weights and len(env.pool_weights) > 1
    with pytest.raises(ElementError, match="no Fe"):
        element_environments(_rocksalt(), ["Fe"])


@pytest.mark.parametrize("variant", sorted(HEAD_VARIANTS))
def test_sgmlp_variants_map_shapes_and_differ_in_layers(variant: str) -> None:
    torch.manual_seed(0)
    net = SGMLP([8, 16, 16, 5], variant=variant)
    assert net(torch.randn(3, 8)).shape == (3, 5)
    gated, swiglu = HEAD_VARIANTS[variant]
    names = {type(m).__name__ for m in net.modules()}
    assert ("GatedLinear" in names) == gated
    assert ("SwiGLU" in names) == swiglu


def test_sgmlp_rejects_unknown_variant() -> None:
    with pytest.raises(ConfigurationError, match="variant"):
        SGMLP([4, 4], variant="gelu")


def test_metrics_of_a_perfect_and_a_shifted_prediction() -> None:
    grid = grid_window("Cu").energies
    y = 1 / (1 + np.exp(-(grid - grid[40]) / 1.5))
    perfect = spectrum_metrics(y[None], y[None], grid).iloc[0]
    assert perfect["mae"] == 0 and perfect["rse"] == 0
    assert perfect["pearson"] == pytest.approx(1.0)
    assert perfect["edge_error_ev"] == pytest.approx(0.0, abs=1e-9)
    step = grid[1] - grid[0]
    shifted = spectrum_metrics(y[None], np.roll(y, 5)[None], grid).iloc[0]
    assert shifted["edge_error_ev"] == pytest.approx(5 * step, abs=0.1)
    offset = spectrum_metrics(y[None], (y + 0.1)[None], grid).iloc[0]
    assert offset["mae"] == pytest.approx(0.1)
    table = summarise(shifted.to_frame().T.assign(element="Cu"))
    assert list(table["element"]) == ["Cu", "all"]


def test_nearest_neighbour_baseline_returns_the_closest_training_spectrum() -> None:
    x = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    mu = np.arange(3)[:, None] * np.ones((3, 4))
    nn = NearestNeighbourSpectrum().fit(x, mu)
    assert np.array_equal(nn.predict(np.array([[9.0, 1.0]])), mu[[1]])
    assert np.allclose(MeanSpectrum().fit(x, mu).predict(x[:2]), 1.0)


def test_material_split_keeps_families_apart(demo_table: XAStructData) -> None:
    parts = xs.material_split(demo_table, seed=0, split_by="family")
    for family in set(demo_table.family):
        assert len(set(parts[demo_table.family == family])) == 1
    per_material = {}
    for m, p in zip(demo_table.material_id, parts, strict=True):
        assert per_material.setdefault(m, p) == p


def test_forward_study_scores_model_and_baselines_and_round_trips(
        demo_table: XAStructData, tmp_path: Path) -> None:
    study = xs.forward_study(demo_table, variants=("sgmlp", "mlp"), settings=FAST)
    models = set(study.per_spectrum["model"])
    assert {xs.model_name("sgmlp"), xs.model_name("mlp"), "mean spectrum",
            "nearest neighbour"} <= models
    assert set(study.per_spectrum["element"]) == {"Cu", "V"}
    test_ids = set(demo_table.material_id[study.parts == "test"])
    train_ids = set(demo_table.material_id[study.parts == "train"])
    assert set(study.per_spectrum["material_id"]) <= test_ids
    assert not test_ids & train_ids
    study.forward.save(tmp_path / "fw")
    again = XAStructForward.load(tmp_path / "fw")
    x = demo_table.features[:4]
    el = demo_table.element[0]
    assert np.allclose(again.predict_features(x, el), study.forward.predict_features(x, el))
    with pytest.raises(ElementError, match="no Fe K-edge head"):
        again.predict_features(x, "Fe")
    headline = xs.forward_headline(summarise(study.per_spectrum, by=("model", "split")))
    assert headline.loc[headline["model"] == xs.model_name("sgmlp"), "paper_mae"].iloc[0]


def test_forward_model_predicts_a_structure_on_the_grid(demo_table: XAStructData) -> None:
    study = xs.forward_study(demo_table, settings=FAST, elements=["V"], baselines=False)
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.1), ["V", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    spectrum = study.forward.predict_structure(structure, "V")
    assert spectrum.mu.shape == (N_GRID_POINTS,)
    assert np.array_equal(spectrum.energy, grid_window("V").energies)
    with pytest.raises(ElementError, match="no Cu"):
        study.forward.pooled_features([structure], "Cu")


def test_inverse_study_trains_every_model_on_the_same_rows(demo_table: XAStructData) -> None:
    study = xs.inverse_study(demo_table, max_epochs=5, patience=3)
    pred = study.predictions
    for target, names in xs.INVERSE_MODELS.items():
        assert set(pred.loc[pred["target"] == target, "model"]) == set(names)
    majority = pred[(pred["target"] == "cn") & (pred["model"] == "majority class")]
    for _, part in majority.groupby("element"):
        assert part["pred"].nunique() == 1
    summary = xs.inverse_summary(pred)
    acc = summary["accuracy"].dropna()
    assert ((acc >= 0) & (acc <= 1)).all()
    assert (summary.loc[summary["target"] == "mnnd", "mae"] > 0).all()
    headline = xs.inverse_headline(summary)
    assert "0.0350" in set(headline["paper_value"].str[:6])


def test_predict_xanes_names_the_file_and_the_missing_element(tmp_path: Path) -> None:
    from specfusion_lib.core.errors import InputFileError
    from specfusion_lib.xas_structure.user import predict_xanes

    with pytest.raises(InputFileError, match="no such structure file"):
        predict_xanes(tmp_path / "absent.cif", "Fe", model_dir=tmp_path)
    cif = tmp_path / "mno.cif"
    _rocksalt().to(filename=str(cif))
    with pytest.raises(ElementError, match="holds no Fe"):
        predict_xanes(cif, "Fe", model_dir=tmp_path)
    assert not (tmp_path / "forward").exists()  # refused before any model was trained
