"""Measured spectra of experiment.csv, validation helpers, domain shift and composites."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from specfusion_lib.core import paper
from specfusion_lib.core.elements import TRANSITION_METALS
from specfusion_lib.core.errors import (
    ConfigurationError,
    InputFileError,
    SpectrumFileError,
    WrongElementError,
)
from specfusion_lib.data.measured import (
    MEASURED_FILE,
    default_measured_path,
    measured_catalogue,
    measured_quirks,
    read_measured_xanes,
)
from specfusion_lib.measured import study
from specfusion_lib.measured.domain_shift import E0TemplateAligner, spectral_agreement
from specfusion_lib.measured.mixtures import (
    Phase,
    absorber_weights,
    dominant_phase,
    mix_phases,
    mixture_series,
)
from specfusion_lib.properties.features import build_features
from specfusion_lib.properties.predict import Predictor
from specfusion_lib.properties.runs import run_tasks
from specfusion_lib.spectra.xanes import (
    EDGE_TOLERANCE_EV,
    XANESSpectrum,
    broaden,
    find_e0,
    normalize_edge_step,
    preprocess_xanes,
    tabulated_edge_energy,
)


@pytest.fixture(scope="module")
def records():
    return read_measured_xanes()


@pytest.fixture(scope="module")
def csv_rows() -> tuple[list[str], list[dict[str, str]]]:
    text = default_measured_path().read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------------- reader


def test_reader_yields_thirty_records_with_metadata(records) -> None:
    assert len(records) == 30
    assert len({r.key for r in records}) == 30  # keys unique although one xas_id repeats
    assert sum(r.is_transition_metal for r in records) == 24
    assert {r.element for r in records} == {"V", "Cr", "Mn", "Fe", "Ni", "Cu", "Zn", "Sr",
                                            "Cd", "Si", "B", "Al", "Na", "Co"}
    by_key = {r.key: r for r in records}
    v2o5 = [r for r in records if r.formula == "V2O5"]
    assert {r.collection for r in v2o5} == {"XASLIB", "Louis"}
    mn3o4 = next(r for r in records if r.formula == "Mn3O4")
    assert mn3o4.coordination_numbers == (6, 4) and mn3o4.coordination_number == 6
    assert by_key["mp-1692-Cu@xaslib"].reduced_formula == "CuO"
    assert all(r.spectrum.source and MEASURED_FILE in r.spectrum.source for r in records)
    assert {r.technique for r in records if r.element in {"Si", "B", "Al", "Na"}} == {"EELS"}


def test_e0_of_every_record_lies_near_its_element_edge(records) -> None:
    for r in records:
        e0 = find_e0(r.spectrum)
        assert abs(e0 - tabulated_edge_energy(r.element)) <= EDGE_TOLERANCE_EV, r.key
        assert r.spectrum.energy[0] < e0 < r.spectrum.energy[-1]


def test_measured_spectra_go_through_the_common_preprocessing(records) -> None:
    done = {}
    for r in records:
        try:
            done[r.key] = preprocess_xanes(r.spectrum)
        except Exception as exc:  # noqa: BLE001 - the one refusal is asserted below
            done[r.key] = exc
    failed = [k for k, v in done.items() if isinstance(v, Exception)]
    assert failed == ["mp-1143-Al@eelsdb"]  # Al2O3 covers only 67 % of the window
    assert all(v.values.shape == (200,) for v in done.values() if not isinstance(v, Exception))


def test_catalogue_and_quirks_describe_the_file(records) -> None:
    catalogue = measured_catalogue(records)
    assert len(catalogue) == 30 and catalogue["tm"].sum() == 24
    quirks = measured_quirks(records).set_index("finding")["details"]
    assert "mp-25620-V" in quirks["duplicated xas_id"]
    assert "mvc-894" in quirks["ids kept as given"]
    assert "V2O5_Ref_normE.txt" in quirks["inconsistent link kept as given"]
    assert "intensity scaling" in quirks.index


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="nope.csv: file not found"):
        read_measured_xanes(tmp_path / "nope.csv")


def test_missing_columns_are_named(tmp_path: Path, csv_rows) -> None:
    header, rows = csv_rows
    short = [c for c in header if c != "x_axis_energy"]
    path = _write(tmp_path / "short.csv", short,
                  [{k: v for k, v in rows[0].items() if k in short}])
    with pytest.raises(SpectrumFileError, match=r"short\.csv: missing columns: x_axis_energy"):
        read_measured_xanes(path)


@pytest.mark.parametrize("column, value, message", [
    ("x_axis_energy", "(5460.0, oops)", "x_axis_energy' is not a tuple/list of numbers"),
    ("x_axis_energy", "(5460.0, 5461.0)", "x_axis_energy has 2 values but interp_spectrum"),
    ("y7", "0.5", "the y<k> columns disagree with interp_spectrum"),
    ("formula", "CrO3", "absorbing element V is not in the formula CrO3"),
])
def test_bad_row_names_file_line_and_record(tmp_path: Path, csv_rows, column, value,
                                            message) -> None:
    header, rows = csv_rows
    bad = dict(rows[1])
    bad[column] = value
    path = _write(tmp_path / "bad.csv", header, [rows[0], bad])
    with pytest.raises(SpectrumFileError) as info:
        read_measured_xanes(path)
    text = str(info.value)
    assert f"{path}: line 3 (mp-25787-V)" in text and message in text


def test_duplicated_energy_names_the_line(tmp_path: Path, csv_rows) -> None:
    header, rows = csv_rows
    bad = dict(rows[0])
    energies = list(eval(bad["x_axis_energy"]))  # noqa: S307 - our own test data
    energies[5] = energies[4]
    bad["x_axis_energy"] = repr(tuple(energies))
    path = _write(tmp_path / "dup.csv", header, [bad])
    with pytest.raises(SpectrumFileError, match=r"dup\.csv: line 2 .*duplicated energies"):
        read_measured_xanes(path)


def test_wrong_element_is_refused_with_the_line(tmp_path: Path, csv_rows) -> None:
    header, rows = csv_rows
    bad = dict(rows[0])  # a V K-edge spectrum declared as Cr in CrO
    bad["absorbing_species"], bad["formula"] = "Cr", "CrO"
    path = _write(tmp_path / "wrong.csv", header, [bad])
    with pytest.raises(WrongElementError, match=r"wrong\.csv: line 2"):
        read_measured_xanes(path)


# ------------------------------------------------------------------------------ matching


def test_matching_and_references_on_the_fixture(records, fixture_snapshot) -> None:
    matches = study.match_measured(records, fixture_snapshot)
    mno = matches["mp-714882-Mn@xaslib"]
    assert mno.material_id == "fx-MnO" and mno.simulated is not None
    assert mno.elements == ("Mn", "O")
    assert not matches["mp-25620-V@xaslib"].matched
    ref = study.reference_labels(fixture_snapshot, "fx-MnO", "Mn")
    assert ref["oxidation_state"] == "2" and ref["coordination_number"] == "6"
    assert ref["crystal_system"] == "cubic" and ref["band_gap"] is None
    features = build_features(fixture_snapshot)
    train, holdout = study.validation_features(fixture_snapshot, records, matches,
                                                    features)
    assert not holdout.applied and "nothing is held out" in holdout.reason
    assert len(train) == len(features)
    applied = study.plan_holdout(fixture_snapshot, features, ["MnO"], min_training=2)
    assert applied.applied and applied.material_ids == ("fx-MnO",)
    assert "fx-MnO" not in study.training_features(features, applied).material_ids


def test_pxrd_crystal_system_says_when_no_model_exists(records, fixture_snapshot,
                                                       tmp_path: Path) -> None:
    matches = study.match_measured(records, fixture_snapshot)
    table = study.pxrd_crystal_system(fixture_snapshot, matches, tmp_path)
    assert len(table) == 1 and table["status"].iloc[0].startswith("not available")


def _compared(rows: list[tuple]) -> pd.DataFrame:
    cols = ["variant", "key", "input", "task", "kind", "prediction", "reference",
            "abs_error", "correct"]
    return pd.DataFrame(rows, columns=cols).assign(formula="X", element="Mn",
                                                   material_id="m", status="ok")


def test_gap_table_signs_and_agreement() -> None:
    rows = []
    for key, sim_ok, meas_ok in (("a", 1.0, 1.0), ("b", 1.0, 0.0)):
        for inp, ok in (("simulated", sim_ok), ("measured", meas_ok)):
            rows.append(("baseline", key, inp, "oxidation_state", "classification",
                         "2" if ok else "3", "2", math.nan, ok))
            rows.append(("baseline", key, inp, "coordination_number", "classification",
                         "6", "6", math.nan, 1.0))
            err = 0.1 if inp == "simulated" else 0.5
            rows.append(("baseline", key, inp, "band_gap", "regression", 1.0 + err, 1.0,
                         err, math.nan))
    gap = study.gap_table(_compared(rows)).set_index("task")
    assert gap.loc["oxidation_state", "simulated"] == 1.0
    assert gap.loc["oxidation_state", "measured"] == 0.5
    assert gap.loc["oxidation_state", "gap"] == -0.5
    assert gap.loc["oxidation_state", "agreement"] == 0.5
    assert gap.loc["band_gap", "gap"] == pytest.approx(0.4)
    assert gap.loc["band_gap", "agreement"] == pytest.approx(0.4)
    assert gap.loc["valence_and_cn", "measured"] == 0.5
    summary = study.structural_summary(_compared(rows))
    assert summary["valence_and_cn"] == (1, 2)


def test_published_tables_are_laid_out_from_the_paper_constants() -> None:
    t1 = study.paper_table1()
    assert t1.drop(columns="source").to_dict("records") == [dict(r) for r in paper.TABLE1]
    assert (t1["source"] == paper.TABLE1_SOURCE).all()
    s1 = study.paper_table_s1()
    assert not s1.duplicated(["compound", "property"]).any()
    back: dict[str, dict[str, tuple[str, str]]] = {}
    for row in s1.itertuples(index=False):
        back.setdefault(row.compound, {})[row.property] = (row.predicted, row.experimental)
    assert back == paper.TABLE_S1  # long form holds every (predicted, experimental) pair
    assert (s1["source"] == paper.TABLE1_SOURCE).all()
    assert set(t1["compound"]) == set(paper.TABLE_S1)  # Table 1 and S1: the same compounds


def _predicted(keys: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": "baseline", "input": inp, "key": key, "formula": key.upper(),
                          "material_id": f"m-{key}", "status": status}
                         for key, status in keys.items() for inp in ("measured", "simulated")])


def test_table1_analogue_puts_our_errors_in_the_papers_columns() -> None:
    rows = []
    for inp, err, os_pred in (("measured", 0.4, "3"), ("simulated", 0.1, "2")):
        rows += [("baseline", "a", inp, "band_gap", "regression", 1.0 + err, 1.0, err, math.nan),
                 ("baseline", "a", inp, "oxidation_state", "classification", os_pred, "2",
                  math.nan, float(os_pred == "2")),
                 ("baseline", "a", inp, "coordination_number", "classification", "6", "6",
                  math.nan, 1.0),
                 ("baseline", "a", inp, "crystal_system", "classification", "cubic", "cubic",
                  math.nan, 1.0)]
    compared = _compared(rows).assign(file_cn="6")
    predictions = _predicted({"a": "ok", "b": "no simulated spectrum"})
    table = study.table1_analogue(compared, predictions).set_index("key")
    paper_columns = [c for c in study.paper_table1().columns
                     if c not in {"compound", "valence_and_cn", "crystal_system", "source"}]
    assert paper_columns and all(f"{c} |err|" in table.columns for c in paper_columns)
    a = table.loc["a"]
    assert a["compound"] == "A" and a["snapshot entry"] == "m-a" and a["status"] == "ok"
    assert a["E_g |err|"] == "0.40" and a["E_g pred / ref"] == "1.40 / 1.00"
    assert a["density |err|"] == "—"  # no density row: no error claimed
    assert a["valence & CN"] == "✗" and a["crystal system"] == "✓"  # oxidation state wrong
    assert a["oxidation state pred / ref"] == "3 / 2"
    assert table.loc["b", "status"] == "no simulated spectrum"
    assert table.loc["b", "E_g |err|"] == "—"
    simulated = study.table1_analogue(compared, predictions, input_kind="simulated")
    sim = simulated.set_index("key").loc["a"]
    assert sim["E_g |err|"] == "0.10" and sim["valence & CN"] == "✓"


def test_structural_summary_quotes_the_papers_count_from_table1() -> None:
    rows = [("baseline", "a", "measured", task, "classification", "2", "2", math.nan, 1.0)
            for task in ("oxidation_state", "coordination_number")]
    text = study.structural_summary(_compared(rows))["text"]
    right = sum(r["valence_and_cn"] == "✓" for r in paper.TABLE1)
    assert f"(paper, Table 1: {right}/{len(paper.TABLE1)})" in text
    assert "both for 1/1 compounds" in text


# ------------------------------------------------------------------------- domain shift


def _edge(e0: float, white: float = 1.2, width: float = 1.0, start: float = -30.0,
          stop: float = 80.0, step: float = 0.25, element: str = "Mn") -> XANESSpectrum:
    e = np.arange(e0 + start, e0 + stop, step)
    x = e - e0
    mu = (0.5 + np.arctan(x / width) / np.pi + white * np.exp(-0.5 * ((x - 4.0) / 1.5) ** 2)
          + 0.15 * np.sin(x / 6.0) * (x > 8))
    return XANESSpectrum(e, mu, element=element)


def test_broadening_remedy_lowers_the_white_line_and_is_recovered() -> None:
    sharp = _edge(6545.0)
    wide = broaden(sharp, 3.0)
    n_sharp, n_wide = normalize_edge_step(sharp), normalize_edge_step(wide)
    assert n_wide.mu_norm.max() < n_sharp.mu_norm.max() - 0.1  # white line lower and wider
    agreement = spectral_agreement(wide, sharp)
    assert agreement.best_fwhm_ev == pytest.approx(3.0)
    assert agreement.pearson_broadened > agreement.pearson_aligned
    assert agreement.pearson_broadened > 0.999


def test_template_aligner_never_lowers_the_template_correlation(fixture_snapshot,
                                                                tmp_path: Path) -> None:
    features = build_features(fixture_snapshot)
    aligner = E0TemplateAligner(n_iter=2).fit(fixture_snapshot, features)
    assert set(aligner.templates_) >= {"Mn", "Ni"}
    spectra = fixture_snapshot.spectra
    for row in spectra.loc[spectra["element"].isin(["Mn", "Ni", "Co"])].itertuples():
        s = XANESSpectrum(np.asarray(row.energy), np.asarray(row.mu), element=row.element)
        own, moved = preprocess_xanes(s), aligner.transform(s)
        t = aligner.templates_[row.element]
        assert (np.corrcoef(moved.values, t)[0, 1]
                >= np.corrcoef(own.values, t)[0, 1] - 1e-6)
        assert moved.e0 == pytest.approx(own.e0 - aligner.shift_of(s))
    aligned = aligner.transform_features(fixture_snapshot, features)
    assert aligned.spectra.shape == features.spectra.shape
    assert np.array_equal(aligned.spectrum_mask, features.spectrum_mask)
    back = E0TemplateAligner.load(aligner.save(tmp_path / "t.json"))
    assert back.templates_.keys() == aligner.templates_.keys()
    with pytest.raises(InputFileError, match="no such E0 template file"):
        E0TemplateAligner.load(tmp_path / "missing.json")
    with pytest.raises(ConfigurationError, match="not fitted"):
        E0TemplateAligner().transform(s)


def test_predictor_accepts_preprocessed_spectra(fixture_snapshot, tmp_path: Path) -> None:
    small = {"model_kwargs": {"d_model": 32, "conv_channels": (8, 16), "element_hidden": 16,
                              "fusion_hidden": 32, "ffn_dim": 32, "head_hidden": 16,
                              "n_attention_layers": 1}, "max_epochs": 1}
    run_tasks(fixture_snapshot, ["density"], "smoke", checkpoint_dir=tmp_path, **small)
    predictor = Predictor.from_dir(tmp_path)
    seen = predictor.seen_elements()
    row = next(r for r in fixture_snapshot.materials.itertuples()
               if set(r.elements) <= seen and sum(e in TRANSITION_METALS for e in r.elements) == 1)
    el = next(e for e in row.elements if e in TRANSITION_METALS)
    sp = fixture_snapshot.spectra
    rec = sp[(sp["material_id"] == row.material_id) & (sp["element"] == el)].iloc[0]
    raw = XANESSpectrum(np.asarray(rec["energy"]), np.asarray(rec["mu"]), element=el)
    a = predictor.predict({el: raw}, list(row.elements))
    b = predictor.predict({el: preprocess_xanes(raw)}, list(row.elements))
    assert a["prediction"].iloc[0] == pytest.approx(b["prediction"].iloc[0])
    with pytest.raises(ConfigurationError, match="the model needs 200 points"):
        predictor.predict({el: preprocess_xanes(raw, n_points=100)}, list(row.elements))
    with pytest.raises(WrongElementError):
        predictor.predict({"O": preprocess_xanes(raw)}, list(row.elements))


# ------------------------------------------------------------------------------ mixtures


def _phase(formula: str, spectra: dict[str, XANESSpectrum], kind: str = "simulated") -> Phase:
    return Phase(formula, Composition(formula), spectra, kind)


def test_mixture_of_a_shared_metal_is_linear_between_the_pure_phases() -> None:
    a = _phase("MnO", {"Mn": _edge(6544.0, white=0.8)})
    b = _phase("MnO2", {"Mn": _edge(6551.0, white=1.6, start=-25.0)})
    pure_a, pure_b = mix_phases(a, b, 0.0), mix_phases(a, b, 1.0)
    assert pure_a.elements == ("Mn", "O") and pure_b.elements == ("Mn", "O")
    assert np.allclose(pure_a.spectra["Mn"].mu, normalize_edge_step(a.spectra["Mn"]).mu_norm)
    assert np.allclose(pure_b.spectra["Mn"].mu, normalize_edge_step(b.spectra["Mn"]).mu_norm)
    series = mixture_series(a, b, [0.2, 0.5, 0.7])
    grid = series[0].spectra["Mn"].energy
    ya = np.interp(grid, pure_a.spectra["Mn"].energy, pure_a.spectra["Mn"].mu)
    yb = np.interp(grid, pure_b.spectra["Mn"].energy, pure_b.spectra["Mn"].mu)
    for comp in series:
        wa, wb = comp.weights["Mn"]
        assert (wa, wb) == pytest.approx((1 - comp.fraction, comp.fraction))
        assert np.allclose(comp.spectra["Mn"].mu, wa * ya + wb * yb)
    assert comp.composition.almost_equals(Composition({"Mn": 1.0, "O": 1.7}))


def test_absorber_weights_count_atoms_per_formula_unit() -> None:
    w = absorber_weights(Composition("Fe2O3"), Composition("FeO"), 0.5)
    assert w["Fe"] == pytest.approx((2 / 3, 1 / 3))
    with pytest.raises(ConfigurationError, match=r"fraction must lie in \[0, 1\]"):
        absorber_weights(Composition("FeO"), Composition("Fe2O3"), 1.5)


def test_disjoint_metals_keep_each_phase_edge_at_every_fraction() -> None:
    a = _phase("Cu2O", {"Cu": _edge(8981.0, element="Cu")})
    b = _phase("TiO2", {"Ti": _edge(4980.0, element="Ti")})
    assert mix_phases(a, b, 0.0).elements == ("Cu", "O")
    assert mix_phases(a, b, 1.0).elements == ("O", "Ti")
    for f in (0.1, 0.5, 0.9):
        comp = mix_phases(a, b, f)
        assert comp.elements == ("Cu", "O", "Ti")
        assert np.allclose(comp.spectra["Cu"].mu, normalize_edge_step(a.spectra["Cu"]).mu_norm)
        assert np.allclose(comp.spectra["Ti"].mu, normalize_edge_step(b.spectra["Ti"]).mu_norm)


def test_mixing_refuses_inconsistent_phases() -> None:
    with pytest.raises(ConfigurationError, match="no spectrum of the transition metal"):
        _phase("Cu2O", {})
    a = _phase("MnO", {"Mn": _edge(6544.0)}, kind="measured")
    b = _phase("MnO2", {"Mn": _edge(6551.0)})
    with pytest.raises(ConfigurationError, match="cannot be mixed"):
        mix_phases(a, b, 0.5)
    assert mix_phases(a, b, 0.0).spectra["Mn"] is not None  # one phase alone is fine


def test_dominant_phase_picks_the_closer_pure_prediction() -> None:
    rows = [{"fraction": f, "task": "band_gap", "prediction": v, "status": "ok"}
            for f, v in ((0.0, 0.5), (0.5, 3.0), (1.0, 3.2))]
    out = dominant_phase(pd.DataFrame(rows), ("Cu2O", "TiO2"))
    assert out["dominant"] == "TiO2" and "dominated by TiO2" in out["statement"]
    empty = dominant_phase(pd.DataFrame(columns=["fraction", "task", "prediction", "status"]),
                           ("A", "B"))
    assert empty["dominant"] == ""
    rows[2]["prediction"] = 0.55  # pure phases predicted alike: no dominance is claimed
    alike = dominant_phase(pd.DataFrame(rows), ("Cu2O", "TiO2"))
    assert alike["dominant"] == "" and "no dominance can be read" in alike["statement"]


def test_matching_prefers_the_named_compound_among_polymorphs(records) -> None:
    energy = np.linspace(5450.0, 5550.0, 200)
    mu = 1.0 / (1.0 + np.exp(-(energy - 5470.0)))
    materials = pd.DataFrame({
        "material_id": ["demo-a", "demo-b"], "formula": ["VO", "VO"],
        "formation_energy_per_atom": [-2.0, -1.5], "elements": [["O", "V"], ["O", "V"]]})
    spectra = pd.DataFrame({"material_id": ["demo-a", "demo-b"], "element": ["V", "V"],
                            "edge": ["K", "K"], "energy": [energy, energy], "mu": [mu, mu],
                            "source": ["feff10:fast"] * 2})
    vo = [r for r in records if r.formula == "VO"]

    def snapshot(manifest: dict) -> SimpleNamespace:
        return SimpleNamespace(materials=materials, spectra=spectra, manifest=manifest,
                               path=Path("demo"))

    plain = study.match_measured(vo, snapshot({}))[vo[0].key]
    assert plain.material_id == "demo-a"  # lowest formation energy
    named = study.match_measured(vo, snapshot({"named_compounds": {"VO": "demo-b"}}))
    assert named[vo[0].key].material_id == "demo-b"  # the known (named) structure wins
    assert "(the named compound)" in named[vo[0].key].rule
