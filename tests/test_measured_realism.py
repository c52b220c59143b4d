"""Measured-spectrum realism: halves, chemical shift, preset study, domain randomisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specfusion_lib.core.errors import ConfigurationError, InputFileError
from specfusion_lib.data.measured import read_measured_xanes
from specfusion_lib.measured.chemical_shift import (
    collection_spread,
    edge_position,
    shift_agreement,
)
from specfusion_lib.measured.halves import (
    DEFAULT_HALVES_PATH,
    load_halves,
    split_compounds,
    write_halves,
)
from specfusion_lib.measured.preset_study import (
    choose_preset,
    pre_edge_height,
    preset_summary,
    white_line_height,
)
from specfusion_lib.properties.features import build_features, task_data
from specfusion_lib.properties.randomised import Randomiser, randomised_copies
from specfusion_lib.spectra.augment import (
    DomainRandomisation,
    randomise_spectrum,
    randomised_e0,
)
from specfusion_lib.spectra.xanes import XANESSpectrum, find_e0, preprocess_xanes


@pytest.fixture(scope="module")
def records():
    return read_measured_xanes()


def _edge(e0: float = 6550.0, pre_peak: float = 0.0, white: float = 1.5,
          element: str = "Mn") -> XANESSpectrum:
    """A synthetic K edge: arctan step at e0, optional pre-edge peak 10 eV below, a white line."""
    energy = np.arange(e0 - 60.0, e0 + 120.0, 0.25)
    mu = (0.5 + np.arctan((energy - e0) / 1.0) / np.pi
          + (white - 1.0) * np.exp(-0.5 * ((energy - e0 - 6.0) / 2.5) ** 2)
          + pre_peak * np.exp(-0.5 * ((energy - e0 + 10.0) / 0.8) ** 2))
    return XANESSpectrum(energy, mu, element=element, edge="K", source="synthetic")


# ---------------------------------------------------------------------------------- halves


def test_committed_halves_are_the_rule_applied_to_the_measured_file(records) -> None:
    committed = load_halves(records)
    again = split_compounds(records, seed=committed.seed)
    assert committed.development == again.development
    assert committed.scoring == again.scoring
    assert not set(committed.development) & set(committed.scoring)
    # stratified: every element with >= 2 compounds has one on each side
    for element in set(committed.elements.values()):
        forms = [f for f, e in committed.elements.items() if e == element]
        if len(forms) >= 2:
            assert {committed.half_of(f) for f in forms} == {"development", "scoring"}
    # the two collections of one compound stay on one side
    assert committed.half_of("V2O5") in ("development", "scoring")
    assert abs(len(committed.development) - len(committed.scoring)) <= 1


def test_halves_file_errors_name_the_file(records, tmp_path: Path) -> None:
    path = tmp_path / "halves.json"
    with pytest.raises(InputFileError, match="halves.json.*missing"):
        load_halves(records, path)
    raw = json.loads(DEFAULT_HALVES_PATH.read_text())
    raw["scoring"] = [f for f in raw["scoring"] if f != "CuO"]
    path.write_text(json.dumps(raw))
    with pytest.raises(InputFileError, match="neither half: CuO"):
        load_halves(records, path)
    raw["scoring"].append(raw["development"][0])
    path.write_text(json.dumps(raw))
    with pytest.raises(InputFileError, match="in both halves"):
        load_halves(records, path)
    write_halves(split_compounds(records), path)
    assert load_halves(records, path).development == load_halves(records).development
    path.write_text("{not json")
    with pytest.raises(InputFileError, match="not a measured-halves file"):
        load_halves(records, path)


# --------------------------------------------------------------------------- chemical shift


def test_edge_position_reads_the_half_step_below_a_strong_pre_edge() -> None:
    plain = _edge(e0=6550.0)
    assert edge_position(plain) == pytest.approx(6550.0, abs=0.6)
    # a pre-edge peak taller than half the step must not capture the edge position
    peaked = _edge(e0=6550.0, pre_peak=0.9)
    assert edge_position(peaked) == pytest.approx(6550.0, abs=0.6)
    assert edge_position(_edge(e0=6554.0)) - edge_position(plain) == pytest.approx(4.0,
                                                                                  abs=0.3)


def test_shift_agreement_ranks_within_elements_and_spread_per_compound() -> None:
    frame = pd.DataFrame({
        "formula": ["MnO", "Mn2O3", "MnO2", "VO", "V2O5", "V2O5", "FeO"],
        "element": ["Mn", "Mn", "Mn", "V", "V", "V", "Fe"],
        "collection": ["a", "a", "a", "a", "a", "b", "a"],
        "offset_measured": [5.0, 10.0, 12.0, 9.0, 16.0, 17.0, 7.0],
        # simulated: the measured shifts, another absolute offset per element
        "offset_simulated": [1.0, 6.0, 8.0, 20.0, 27.0, 28.0, 0.0],
    })
    agreement = shift_agreement(frame)
    assert agreement["n_compounds"] == 5 and agreement["n_elements"] == 2  # FeO alone
    assert agreement["spearman"] == pytest.approx(1.0)
    assert agreement["slope"] == pytest.approx(1.0) and agreement["mae_ev"] < 1e-9
    reversed_frame = frame.assign(offset_simulated=-frame["offset_simulated"])
    assert shift_agreement(reversed_frame)["spearman"] < 0
    spread = collection_spread(frame)
    assert spread.to_dict("records") == [{"formula": "V2O5", "element": "V", "n": 2,
                                          "collections": "a, b", "range_ev": 1.0}]


# ----------------------------------------------------------------------------- preset study


def test_pre_edge_and_white_line_heights_are_in_edge_step_units() -> None:
    assert pre_edge_height(_edge(pre_peak=0.8)) == pytest.approx(0.8, abs=0.1)
    assert pre_edge_height(_edge(pre_peak=0.0)) < 0.1
    assert white_line_height(_edge(white=2.0)) > white_line_height(_edge(white=1.2)) + 0.5


def test_choose_preset_needs_a_gain_within_the_cost_cap() -> None:
    summary = pd.DataFrame({
        "preset": ["fast", "fast-scf", "paper"],
        "pearson_broadened": [0.94, 0.935, 0.99],
        "shift_spearman": [-0.2, 0.86, 0.9],
        "cost_vs_fast": [1.0, 1.1, 30.0],
    })
    # paper is better on both scores but over the cost cap; fast-scf keeps the shape
    # (within 0.02) and reproduces the chemical shift
    preset, reason = choose_preset(summary)
    assert preset == "fast-scf" and "chemical-shift Spearman 0.86" in reason
    assert choose_preset(summary, cost_cap=40.0)[0] == "paper"
    # a shape loss beyond the tolerance disqualifies it
    assert choose_preset(summary, shape_tolerance=0.001)[0] == "fast"
    # without a shift gain, a shape gain decides
    flat = summary.assign(shift_spearman=[0.5, 0.5, 0.5], pearson_broadened=[0.90, 0.95, 0.99])
    assert choose_preset(flat)[0] == "fast-scf"
    assert choose_preset(flat.assign(pearson_broadened=[0.9, 0.91, 0.99]))[0] == "fast"
    with pytest.raises(ConfigurationError, match="no 'fast' row"):
        choose_preset(summary.iloc[1:])


def test_preset_summary_compares_presets_on_shared_records() -> None:
    rows = []
    for preset, cost, pre in (("fast", 10.0, 0.05), ("fast-scf", 13.0, 0.8)):
        for key, formula, d0 in (("a", "K2CrO4", True), ("b", "MnO", False)):
            rows.append({"key": key, "formula": formula, "element": "Cr" if d0 else "Mn",
                         "preset": preset, "d0_tetrahedral": d0, "seconds_per_site": cost,
                         "pearson_e0": 0.5, "pearson_aligned": 0.7, "pearson_broadened": 0.8,
                         "best_fwhm_ev": 2.0, "pre_edge_measured": 0.9,
                         "pre_edge_simulated": pre, "white_line_ratio": 1.5,
                         "offset_measured": 5.0, "offset_simulated": 4.0, "error": None})
    summary = preset_summary(pd.DataFrame(rows)).set_index("preset")
    assert summary.loc["fast-scf", "cost_vs_fast"] == pytest.approx(1.3)
    assert summary.loc["fast", "pre_edge_error_d0"] == pytest.approx(0.85)
    assert summary.loc["fast-scf", "pre_edge_error_d0"] == pytest.approx(0.1)


# ---------------------------------------------------------------------- domain randomisation


def test_randomised_spectra_vary_as_configured_and_are_reproducible() -> None:
    clean = _edge(e0=6550.0)
    settings = DomainRandomisation(pre_edge_ev=(5.0, 5.0), post_edge_ev=(60.0, 60.0),
                                   step_ev=(0.5, 0.5), noise=(0.0, 0.0), slope_per_ev=0.0,
                                   fwhm_ev=(2.0, 2.0))
    a = randomise_spectrum(clean, np.random.default_rng(1), settings)
    b = randomise_spectrum(clean, np.random.default_rng(1), settings)
    np.testing.assert_array_equal(a.mu, b.mu)
    e0 = find_e0(clean)
    assert a.energy[0] == pytest.approx(e0 - 5.0) and a.energy[-1] <= e0 + 60.0 + 1e-6
    assert np.allclose(np.diff(a.energy), 0.5)
    assert a.mu.max() < clean.mu.max()  # broadened white line
    # the randomised spectrum still goes through the common preprocessing
    assert preprocess_xanes(a).values.shape == (200,)
    jitter = DomainRandomisation(e0_jitter_ev=2.0)
    shifts = [randomised_e0(clean, np.random.default_rng(s), jitter) - e0 for s in range(50)]
    assert max(np.abs(shifts)) <= 2.0 and np.std(shifts) > 0.5
    with pytest.raises(ConfigurationError, match="post_edge_ev"):
        DomainRandomisation(post_edge_ev=(20.0, 30.0))
    with pytest.raises(ConfigurationError, match="copies"):
        DomainRandomisation(copies=0)


def test_randomised_copies_keep_ids_families_and_labels(fixture_snapshot) -> None:
    features = build_features(fixture_snapshot)
    settings = DomainRandomisation(copies=2)
    copies = randomised_copies(fixture_snapshot, features, settings, seed=3)
    n = len(features)
    assert len(copies) == 2 * n
    assert copies.material_ids[:n] == features.material_ids == copies.material_ids[n:]
    assert copies.families == (None if features.families is None
                               else tuple(features.families) * 2)
    mask = features.spectrum_mask
    assert not np.allclose(copies.spectra[:n][mask], features.spectra[mask])
    assert not np.allclose(copies.spectra[:n][mask], copies.spectra[n:][mask])
    again = Randomiser(fixture_snapshot, settings, seed=3)(features)
    np.testing.assert_array_equal(again.spectra, copies.spectra)
    assert "seed 3" in Randomiser(fixture_snapshot, settings, seed=3).description
    # labels join by id: the copies carry the labels of their material
    data = task_data(fixture_snapshot, "oxidation_state", copies)
    clean = task_data(fixture_snapshot, "oxidation_state", features)
    assert len(data.features) == 2 * len(clean.features)


def test_trainer_augments_training_rows_only_and_keeps_clean_metrics(fixture_snapshot
                                                                     ) -> None:
    from specfusion_lib.properties.train import train_model

    features = build_features(fixture_snapshot)
    data = task_data(fixture_snapshot, "coordination_number", features)
    n = len(data)
    seen: list[int] = []

    def augment(rows):
        seen.append(len(rows))
        return randomised_copies(fixture_snapshot, rows, DomainRandomisation(copies=2))

    augment.description = "test augmentation"
    split = (np.arange(0, n - 4), np.arange(n - 4, n - 2), np.arange(n - 2, n))
    result = train_model(data, "smoke", 0, split=split, augment=augment, max_epochs=2)
    assert seen == [n - 4]  # only the training rows were augmented
    assert result.metadata["augmentation"] == "test augmentation"
    assert len(result.metadata["split"]["train"]) == n - 4  # the clean split is recorded
    assert result.metadata["split"]["test"] == [data.features.material_ids[i]
                                                for i in split[2]]
    plain = train_model(data, "smoke", 0, split=split, max_epochs=2)
    assert plain.metadata["augmentation"] is None
    assert plain.metrics["n_test"] == result.metrics["n_test"]


# ---------------------------------------------------------------------------------- scores


def test_structural_scores_count_mixed_valence_and_use_training_majority() -> None:
    from types import SimpleNamespace

    from specfusion_lib.measured.halves import MeasuredHalves
    from specfusion_lib.measured.scores import confusion, structural_scores

    def sites(*items):
        return json.dumps([{"element": e, "oxidation_state": o, "coordination_number": c,
                            "multiplicity": m} for e, o, c, m in items])

    snapshot = SimpleNamespace(materials=pd.DataFrame({
        "material_id": ["m1", "m2", "m3", "t1", "t2", "t3"],
        "formula": ["Mn3O4", "MnO2", "FeO", "MnO", "Mn2O3", "Fe2O3"],
        "sites": [sites(("Mn", 2, 4, 1), ("Mn", 3, 6, 2)), sites(("Mn", 4, 6, 1)),
                  sites(("Fe", 2, 6, 1)), sites(("Mn", 2, 6, 1)), sites(("Mn", 2, 6, 1)),
                  sites(("Fe", 3, 6, 1))],
    }))
    halves = MeasuredHalves(("FeO",), ("MnO2", "Mn3O4"), 0,
                            {"FeO": "Fe", "MnO2": "Mn", "Mn3O4": "Mn"})
    rows = []
    for key, formula, mid, el, ox, ox_ref, cn, cn_ref in (
            ("a", "Mn3O4", "m1", "Mn", "2", "3", "6", "6"),   # ox 2 is one of its states
            ("b", "MnO2", "m2", "Mn", "3", "4", "6", "6"),
            ("c", "FeO", "m3", "Fe", "2", "2", "4", "6")):
        for task, pred, ref in (("oxidation_state", ox, ox_ref),
                                ("coordination_number", cn, cn_ref)):
            rows.append({"variant": "baseline", "input": "measured", "key": key,
                         "formula": formula, "material_id": mid, "element": el, "task": task,
                         "prediction": pred, "reference": ref})
    compared = pd.DataFrame(rows)
    scores = structural_scores(compared, snapshot, halves,
                               exclude_formulas=["Mn3O4", "MnO2", "FeO"])
    get = scores.set_index(["split", "task", "element"])
    assert get.loc[("scoring", "oxidation_state", "all"), "correct"] == 1  # Mn3O4 only
    assert get.loc[("scoring", "coordination_number", "all"), "correct"] == 2
    assert get.loc[("scoring", "both", "all"), "correct"] == 1
    assert get.loc[("development", "both", "all"), "n"] == 1
    assert get.loc[("all", "oxidation_state", "all"), "n"] == 3
    # majority from training materials only: Mn -> 2 (MnO, Mn2O3 as given), Fe -> 3
    assert get.loc[("scoring", "oxidation_state", "Mn"), "majority_baseline"] == 0.0
    assert get.loc[("development", "oxidation_state", "Fe"), "majority_baseline"] == 0.0
    low, high = get.loc[("all", "oxidation_state", "all"), ["ci_low", "ci_high"]]
    assert 0 < low < 2 / 3 < high < 1
    table = confusion(compared, "oxidation_state", variant="baseline", input_kind="measured")
    assert table.loc["4", "3"] == 1 and int(table.values.sum()) == 3
