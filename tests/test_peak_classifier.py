"""Peak features and indexing fits; the peak-feature classifier's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.ensemble import HistGradientBoostingClassifier

from specfusion_lib.core.errors import ConfigurationError, InputFileError
from specfusion_lib.crystal_system.peak_classifier import PeakIndexingClassifier
from specfusion_lib.crystal_system.peak_features import (
    N_FEATURES,
    find_pattern_peaks,
    indexing_scores,
    peak_feature_matrix,
)
from specfusion_lib.spectra import pxrd


def _pattern(structure: Structure) -> tuple[np.ndarray, np.ndarray]:
    pat = pxrd.simulate_pattern(structure)
    return pat.intensity, pat.two_theta


STRUCTURES = {
    "cubic": Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"],
                                       [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "tetragonal": Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96),
                                            ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]),
    "hexagonal": Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21),
                                           ["Zn", "O"], [[1 / 3, 2 / 3, 0],
                                                         [1 / 3, 2 / 3, 0.382]]),
}


@pytest.mark.parametrize("system", list(STRUCTURES))
def test_the_right_lattice_form_indexes_every_peak(system):
    y, x = _pattern(STRUCTURES[system])
    positions, heights = find_pattern_peaks(y, x)
    assert positions.size >= 4 and 0.5 < heights.max() <= 1.0  # heights after smoothing
    scores = indexing_scores(positions)
    assert scores[system] == 1.0
    if system != "cubic":
        assert scores["cubic"] < 0.9  # a cubic cell does not explain them


def test_feature_matrix_shape_and_a_flat_pattern():
    y, x = _pattern(STRUCTURES["cubic"])
    f = peak_feature_matrix(np.stack([y, np.zeros_like(y)]), x)
    assert f.shape == (2, N_FEATURES) and f.dtype == np.float32
    assert np.all(f[1] == 0)  # no peak, no feature
    assert f[0, 0] > 0


def _tiny_classifier() -> PeakIndexingClassifier:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, N_FEATURES))
    y = np.repeat(np.arange(7), 10)
    model = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    import importlib.metadata

    meta = {"patterns": {"two_theta_range": [10.0, 80.0], "step": 0.02},
            "versions": {"scikit-learn": importlib.metadata.version("scikit-learn")}}
    return PeakIndexingClassifier(model, meta)


def test_save_load_round_trip_and_refusals(tmp_path):
    clf = _tiny_classifier()
    path = clf.save(tmp_path / "peaks.pkl")
    again = PeakIndexingClassifier.load(path)
    y, x = _pattern(STRUCTURES["tetragonal"])
    np.testing.assert_allclose(again.predict_proba(y[None]), clf.predict_proba(y[None]))
    assert again.predict_proba(y[None]).shape == (1, 7)
    with pytest.raises(ConfigurationError):
        clf.predict_proba(y[None, :100])
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(InputFileError, match="checksum"):
        PeakIndexingClassifier.load(path)
    clf.save(path)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["versions"]["scikit-learn"] = "0.0"
    side.write_text(json.dumps(meta))
    with pytest.raises(InputFileError, match="scikit-learn"):
        PeakIndexingClassifier.load(path)
    with pytest.raises(InputFileError):
        PeakIndexingClassifier.load(tmp_path / "missing.pkl")
