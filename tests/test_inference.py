"""Structure inference (SI §S2): formulas, template retrieval, candidates, the whole search.

FEFF10 and CHGNet are replaced by small injected fakes here (they take seconds to minutes);
``benchmarks/structure_inference.py`` and notebooks 09/10 run the real ones.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from specfusion_lib.core.errors import ChargeBalanceError, ConfigurationError, ElementError
from specfusion_lib.data.snapshot import MaterialRecord
from specfusion_lib.data.structure_labels import crystal_system
from specfusion_lib.inference.candidates import (
    pxrd_agreement,
    pxrd_similarity,
    r_pxrd,
    substitute,
    validation_score,
    xanes_similarity,
)
from specfusion_lib.inference.formulas import (
    element_valences,
    enumerate_formulas,
    solve_charge_balance,
)
from specfusion_lib.inference.radii import shannon_radius
from specfusion_lib.inference.search import SearchSettings, infer_structure, write_candidates
from specfusion_lib.inference.templates import (
    RetrievalSettings,
    TemplateDatabase,
    crystal_system_order,
    fetch_mp_templates,
    retrieve_templates,
)
from specfusion_lib.simulate.relax import RelaxOutcome
from specfusion_lib.spectra.pxrd import (
    PXRDPeaks,
    pattern_from_peaks,
    simulate_pattern,
    two_theta_grid,
)
from specfusion_lib.spectra.xanes import XANESSpectrum

# --------------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------------


def _balanced(row, enumeration) -> bool:
    return any(sum(a[el] * int(row[el]) for el in enumeration.elements) == 0
               for a in enumeration.assignments(row["formula"]))


def test_ca_mn_al_o_yields_the_walkthrough_formulas() -> None:
    result = enumerate_formulas(["Ca", "Mn", "Al", "O"], {"Mn": 3})
    assert {"CaMnAlO4", "Ca2MnAlO5"} <= set(result.formulas)
    assert result.valences == {"Ca": (2,), "Mn": (3,), "Al": (3,), "O": (-2,)}
    table = result.table
    assert table["formula"].is_unique
    counts = table[list(result.elements)].to_numpy()
    assert counts.min() >= 1 and counts.max() <= 15
    assert all(_balanced(row, result) for _, row in table.iterrows())
    assert all(math.gcd(*map(int, row)) == 1 for row in counts)  # multiples removed
    assert table["n_atoms"].is_monotonic_increasing
    for formula, anonymous in zip(table["formula"], table["anonymous_formula"], strict=True):
        comp = Composition(formula)
        assert comp.reduced_formula == formula and comp.anonymized_formula == anonymous


def test_multiples_are_removed_and_counts_bounded() -> None:
    assert enumerate_formulas(["Fe", "O"], {"Fe": 3}).formulas == ["Fe2O3"]
    small = enumerate_formulas(["Ca", "Mn", "Al", "O"], {"Mn": 3}, max_count=5)
    assert {"CaMnAlO4", "Ca2MnAlO5"} <= set(small.formulas)
    assert "Ca3MnAlO6" not in small.formulas  # needs six O
    assert small.table[["Ca", "Mn", "Al", "O"]].to_numpy().max() <= 5
    with pytest.raises(ChargeBalanceError):
        enumerate_formulas(["Fe", "O"], {"Fe": 3}, max_count=2)


def test_solver_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 5))
        charges = [int(q) for q in rng.choice([-3, -2, -1, 1, 2, 3, 4, 5], size=k)]
        n = 6
        brute = {c for c in itertools.product(range(1, n + 1), repeat=k)
                 if sum(q * x for q, x in zip(charges, c, strict=True)) == 0
                 and math.gcd(*c) == 1}
        fast = {tuple(map(int, row)) for row in solve_charge_balance(charges, n)}
        assert fast == brute, charges


def test_unbalanceable_input_names_the_elements() -> None:
    with pytest.raises(ChargeBalanceError, match="Ca Al"):
        enumerate_formulas(["Ca", "Al"])
    with pytest.raises(ChargeBalanceError, match="Mn"):
        enumerate_formulas(["Mn", "Fe"], {"Mn": 2, "Fe": 3})
    with pytest.raises(ElementError):
        enumerate_formulas(["Ca", "Xx", "O"])
    with pytest.raises(ConfigurationError):
        enumerate_formulas(["Fe", "O"], {"Ni": 2})


def test_non_tm_valences_follow_the_sign_rule() -> None:
    v = element_valences(["Zn", "Cu", "Sn", "S"], {"Zn": 2, "Cu": [1, 2]})
    assert v["S"] == (-2,) and all(q > 0 for q in v["Sn"]) and v["Cu"] == (1, 2)
    assert set(element_valences(["Li", "Fe", "P", "O"], {"Fe": 2})["P"]) == {-3, 3, 5}
    result = enumerate_formulas(["Zn", "Cu", "Sn", "S"], {"Zn": 2, "Cu": [1, 2]})
    assert "ZnCu2SnS4" in result.formulas  # kesterite, with Cu+ and Sn4+
    assert {"Zn": 2, "Cu": 1, "Sn": 4, "S": -2} in result.assignments("ZnCu2SnS4")


def test_shannon_radius_lookup() -> None:
    assert shannon_radius("Mn", 3, 6) == pytest.approx(0.785)  # high spin
    assert shannon_radius("O", -2, 6) == pytest.approx(1.26)
    assert shannon_radius("Mn", 3, 4) == pytest.approx(0.72)  # nearest tabulated CN (V)
    assert shannon_radius("Zn", 2, 4) < shannon_radius("Zn", 2, 6)


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(fixture_snapshot) -> TemplateDatabase:
    return TemplateDatabase.from_snapshot(fixture_snapshot)


def test_crystal_system_order() -> None:
    probs = {"cubic": 0.1, "tetragonal": 0.7, "trigonal": 0.17, "triclinic": 0.03}
    assert crystal_system_order(probs, 2, 0.05) == [("tetragonal", 0.7), ("trigonal", 0.17)]
    assert crystal_system_order(probs, 1) == [("tetragonal", 0.7)]
    assert crystal_system_order("Cubic") == [("cubic", 1.0)]
    with pytest.raises(ConfigurationError):
        crystal_system_order({"rhombic": 1.0})


def test_retrieval_requires_the_crystal_system_and_removes_the_target(database) -> None:
    formulas = enumerate_formulas(["Ni", "O"], {"Ni": 2})
    full = retrieve_templates(formulas, database, "cubic", {"Ni": 6})
    assert "fx-NiO" in set(full.table["template_id"])  # the target itself, when present
    db = database.without_target("fx-NiO")
    assert "fx-NiO" not in set(db.table["material_id"])
    result = retrieve_templates(formulas, db, "cubic", {"Ni": 6})
    assert set(result.table["template_id"]) == {"fx-MnO", "fx-MnS"}
    assert (result.table["crystal_system"] == "cubic").all()
    systems = db.table.set_index("material_id")["crystal_system"]
    assert all(systems[t] == "cubic" for t in result.table["template_id"])
    assert result.best["template_id"] == "fx-MnO"  # smaller radius mismatch than MnS
    assert result.best["mapping"] == {"Ni": "Mn", "O": "O"}
    assert result.best["level"] == "exact"
    assert retrieve_templates(formulas, db, "tetragonal", {"Ni": 6}).table.empty
    # same reduced formula and crystal system counts as the target: removed too
    twin = db.without([], [("MnO", "cubic")])
    assert "fx-MnO" not in set(twin.table["material_id"])


def test_retrieval_levels_and_coordination(database) -> None:
    db = database.without_target("fx-NiO")
    formulas = enumerate_formulas(["Ni", "O"], {"Ni": 2})
    # a predicted CN the templates do not have: only the relaxed level matches
    wrong_cn = retrieve_templates(formulas, db, "cubic", {"Ni": 4})
    assert set(wrong_cn.table["level"]) == {"relaxed"}
    strict = retrieve_templates(formulas, db, "cubic", {"Ni": 4},
                                RetrievalSettings(max_level="exact"))
    assert strict.table.empty
    # Mg is no TM: only the substitution level (same radius range as Mn2+) pairs it with Mn
    mg = retrieve_templates(enumerate_formulas(["Mg", "O"], {"Mg": 2}), db, "cubic")
    assert set(mg.table["level"]) == {"substitution"}
    assert retrieve_templates(enumerate_formulas(["Mg", "O"], {"Mg": 2}), db, "cubic",
                              settings=RetrievalSettings(max_level="relaxed")).table.empty


def test_second_crystal_system_ranks_after_the_first(database) -> None:
    formulas = enumerate_formulas(["Ti", "O"], {"Ti": 4})
    result = retrieve_templates(formulas, database, {"cubic": 0.6, "tetragonal": 0.4})
    assert result.table["crystal_system"].tolist() == ["tetragonal"]  # no cubic TiO2 type
    assert result.table["system_rank"].tolist() == [1]


def test_mp_templates_through_an_injected_client(database, monkeypatch) -> None:
    docs = [{"material_id": "mp-19006", "structure": database.structure("fx-MnO").as_dict(),
             "symmetry": {"crystal_system": "Cubic"}, "formation_energy_per_atom": -2.0}]

    class Summary:
        calls: list[dict] = []

        def search(self, **kwargs):
            self.calls.append(kwargs)
            return [d for d in docs if "AB" in kwargs["formula"]]

    class Client:
        class materials:  # noqa: N801 - mimics MPRester's attribute
            summary = Summary()

    mp = fetch_mp_templates(["AB", "AB2"], ["cubic"], client=Client())
    assert mp.table["material_id"].tolist() == ["mp-19006"]
    call = Client.materials.summary.calls[0]
    assert call["formula"] == ["AB", "AB2"] and call["deprecated"] is False
    combined = database.without_target("fx-MnO").combine(mp)
    result = retrieve_templates(enumerate_formulas(["Mn", "O"], {"Mn": 2}), combined, "cubic",
                                {"Mn": 6})
    assert result.best["template_id"] == "mp-19006"
    monkeypatch.delenv("MP_API_KEY", raising=False)
    from specfusion_lib.core.errors import MissingAPIKeyError

    with pytest.raises(MissingAPIKeyError):
        fetch_mp_templates(["AB"], ["cubic"])


# --------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------


def test_r_pxrd_is_zero_for_identical_patterns_and_grows_with_difference() -> None:
    grid = two_theta_grid()

    def pattern(shift: float):
        peaks = PXRDPeaks(np.array([30.0, 45.0, 60.0]) + shift, np.array([1.0, 0.5, 0.3]),
                          np.array([2.98, 2.01, 1.54]), ((), (), ()), "CuKa")
        return pattern_from_peaks(peaks, grid)

    ref = pattern(0.0)
    assert r_pxrd(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert r_pxrd(ref, ref, smoothing_deg=0.0, max_scale=0.0) == pytest.approx(0.0, abs=1e-12)
    assert pxrd_similarity(ref, ref) == pytest.approx(1.0)
    values = [r_pxrd(ref, pattern(d), smoothing_deg=0.0, max_scale=0.0)
              for d in (0.05, 0.2, 1.0, 5.0)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert values[0] > 0.0 and values[-1] <= 2.0 + 1e-9
    # scale invariant: patterns are normalised to unit area
    assert r_pxrd(ref.intensity * 7.0, ref.intensity) == pytest.approx(0.0, abs=1e-12)


def test_r_pxrd_tolerates_a_lattice_constant_error_but_not_another_structure() -> None:
    perovskite = Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                           [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])
    larger = perovskite.copy()
    larger.scale_lattice(perovskite.volume * 1.02**3)  # 2 % longer lattice
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]])
    ref = simulate_pattern(perovskite)
    same = pxrd_agreement(ref, simulate_pattern(larger))
    assert same.r_pxrd < 0.15 and same.similarity > 0.99
    assert same.scale == pytest.approx(1 / 1.02, abs=0.002)
    assert r_pxrd(ref, simulate_pattern(larger), max_scale=0.0) > 1.0
    assert r_pxrd(ref, simulate_pattern(rocksalt)) > 1.0


def test_substitution_produces_the_requested_formula(database) -> None:
    template = database.structure("fx-SrTiO3")
    new, ratio = substitute(template, {"Ba": "Sr", "Zr": "Ti", "O": "O"},
                            target_valences={"Ba": 2, "Zr": 4, "O": -2},
                            template_valences=database.valences("fx-SrTiO3"))
    assert new.composition.reduced_formula == "BaZrO3"
    assert ratio > 1.0 and new.volume == pytest.approx(template.volume * ratio)
    np.testing.assert_allclose(new.frac_coords, template.frac_coords)
    swapped, _ = substitute(database.structure("fx-MnS"), {"S": "Mn", "Mn": "S"},
                            rescale_volume=False)
    assert swapped.composition.reduced_formula == "MnS"
    assert [s.specie.symbol for s in swapped] != [s.specie.symbol
                                                  for s in database.structure("fx-MnS")]
    with pytest.raises(ConfigurationError):
        substitute(template, {"Ba": "Sr", "O": "O"})


def test_xanes_similarity_and_validation_score(fixture_snapshot) -> None:
    row = fixture_snapshot.spectra_of("fx-NiO").iloc[0]
    spectrum = XANESSpectrum(row["energy"], row["mu"], element="Ni")
    assert xanes_similarity(spectrum, spectrum) == pytest.approx(1.0, abs=1e-6)
    shifted = spectrum.replace(energy=spectrum.energy + 2.0)
    assert xanes_similarity(spectrum, shifted) > 0.99  # alignment removes an E0 offset
    assert validation_score(0.0, 1.0) == 0.0
    assert validation_score(1.0, None) == 0.5
    assert math.isnan(validation_score(None, math.nan))


# --------------------------------------------------------------------------------------------
# The whole search, with fake simulators
# --------------------------------------------------------------------------------------------


class FakeRelaxer:
    """Shrinks the cell by 1 % (a stand-in for CHGNet) and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, structure: Structure) -> RelaxOutcome:
        self.calls += 1
        out = structure.copy()
        out.scale_lattice(structure.volume * 0.97)
        return RelaxOutcome(out, -5.0 * len(out), None, 3, True, 0.01)


class FakeXanes:
    """A stand-in for FEFF: the reference spectrum with a white-line bump that grows with the
    candidate's volume mismatch to the target (so a better lattice gives a closer spectrum)."""

    def __init__(self, reference: XANESSpectrum, volume_per_atom: float) -> None:
        self.reference = reference
        self.volume_per_atom = volume_per_atom
        self.calls: list[tuple[list[str], list[str]]] = []
        self.failures_: dict = {}

    def __call__(self, structures, elements):
        self.calls.append((sorted(structures), list(elements)))
        out = {}
        e = self.reference.energy
        bump = np.exp(-0.5 * ((e - e[len(e) // 2]) / 3.0) ** 2)
        for cid, structure in structures.items():
            mismatch = abs(structure.volume / len(structure) / self.volume_per_atom - 1.0)
            mu = np.asarray(self.reference.mu) + 20.0 * mismatch * bump
            for el in elements:
                out[(cid, el)] = self.reference.replace(mu=mu, element=el)
        return out


def test_full_search_with_injected_simulators(database, fixture_snapshot, tmp_path) -> None:
    target = database.structure("fx-NiO")
    row = fixture_snapshot.spectra_of("fx-NiO").iloc[0]
    spectrum = XANESSpectrum(row["energy"], row["mu"], element="Ni")
    relaxer = FakeRelaxer()
    xanes = FakeXanes(spectrum, target.volume / len(target))
    result = infer_structure(
        ["Ni", "O"], {"Ni": 2}, {"Ni": 6}, {"cubic": 0.9, "tetragonal": 0.1},
        database.without_target("fx-NiO"), pxrd=simulate_pattern(target),
        xanes={"Ni": spectrum},
        settings=SearchSettings(n_screen=5, n_validate=2, refine_lattice=False),
        relaxer=relaxer, xanes_simulator=xanes)
    assert result.enumeration.formulas == ["NiO"]
    assert len(result.retrieval) == 2 and len(result.screen) == 2
    assert relaxer.calls == 2 and len(xanes.calls) == 1 and xanes.calls[0][1] == ["Ni"]
    v = result.validation
    assert list(v["candidate_id"]) == ["c01", "c02"]
    assert v["validation_score"].is_monotonic_increasing
    sims = v.set_index("candidate_id")["xanes_similarity"]
    assert 0.5 < sims["c02"] < sims["c01"] < 1.0
    assert (v["r_pxrd"] > 0).all() and (v["pxrd_similarity"] < 1).all()
    top = result.top
    assert (top["formula"], top["crystal_system"], top["template_id"]) == \
        ("NiO", "cubic", "fx-MnO")
    assert top["stage"] == "validated"
    assert result.structures["c01"].composition.reduced_formula == "NiO"
    assert result.structures["c01"].volume == pytest.approx(
        result.candidates["c01"].structure.volume * 0.97)

    summary = write_candidates(result, tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert summary.name == "summary.csv" and not [f for f in files if f.endswith(".tmp")]
    cifs = [f for f in files if f.endswith(".cif")]
    assert cifs[0].startswith("rank01_NiO_c01")
    assert Structure.from_file(tmp_path / "out" / cifs[0]).composition.reduced_formula == "NiO"
    import pandas as pd

    table = pd.read_csv(summary)
    assert table["cif"].iloc[0] == cifs[0] and table["final_rank"].tolist()[:2] == [1, 2]


def test_search_without_validation_ranks_by_retrieval(database) -> None:
    result = infer_structure(["Ni", "O"], {"Ni": 2}, {"Ni": 6}, "cubic",
                             database.without_target("fx-NiO"),
                             settings=SearchSettings(n_screen=0, n_validate=0))
    assert result.validation.empty and result.screen.empty
    assert result.ranking["stage"].tolist() == ["retrieved", "retrieved"]
    assert result.top["template_id"] == "fx-MnO"
    with pytest.raises(ConfigurationError):
        infer_structure(["Ni", "O"], {"Ni": 2}, {"Fe": 6}, "cubic", database)


def test_records_database_computes_missing_labels() -> None:
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]])
    db = TemplateDatabase.from_records([MaterialRecord("x-1", rocksalt)], source="test")
    assert db.table.at[0, "crystal_system"] == "cubic"
    assert db.valences("x-1") == {"Mg": 2.0, "O": -2.0}
    assert db.coordination("x-1", "Mg") == 6  # CrystalNN, no site labels here
    assert len(db) == 1


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    import argparse

    from specfusion_lib.cli.infer_structure import add_infer_structure_parser

    parser = argparse.ArgumentParser(prog="specfusion")
    add_infer_structure_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["infer-structure", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def nio_inputs(fixture_snapshot, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("nio")
    row = fixture_snapshot.spectra_of("fx-NiO").iloc[0]
    xanes = root / "Ni.csv"
    xanes.write_text("omega,mu\n" + "\n".join(f"{e},{m}" for e, m in
                                               zip(row["energy"], row["mu"], strict=True)))
    pattern = simulate_pattern(fixture_snapshot.structure("fx-NiO")).to_xy(root / "NiO.xy")
    return xanes, pattern


def test_cli_errors_name_the_problem(nio_inputs, tmp_path, fixture_snapshot_path) -> None:
    from specfusion_lib.core.errors import InputFileError

    xanes, pattern = nio_inputs
    common = ["--xanes", str(xanes), "--pxrd", str(pattern), "--elements", "Ni", "O",
              "--data", str(fixture_snapshot_path), "--out", str(tmp_path / "out")]
    with pytest.raises(InputFileError, match="nowhere"):
        _cli([*common, "--checkpoint-dir", str(tmp_path / "nowhere")])
    with pytest.raises(ConfigurationError, match="Ni3"):
        _cli([*common, "--oxidation-state", "Ni3"])
    with pytest.raises(ChargeBalanceError, match="Ni O"):
        _cli([*common, "--oxidation-state", "Ni=-2", "--crystal-system", "cubic"])
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_writes_ranked_cifs(nio_inputs, tmp_path, fixture_snapshot_path, capsys) -> None:
    """Known oxidation state and crystal system: no models needed; one real CHGNet run."""
    xanes, pattern = nio_inputs
    out = tmp_path / "out"
    status = _cli(["--xanes", str(xanes), "--pxrd", str(pattern), "--elements", "Ni", "O",
                   "--data", str(fixture_snapshot_path), "--out", str(out),
                   "--oxidation-state", "Ni=2", "--crystal-system", "cubic", "--no-feff",
                   "--n-candidates", "1"])
    assert status == 0
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "formula"] == "NiO" and summary.loc[0, "stage"] == "validated"
    cif = out / summary.loc[0, "cif"]
    assert Structure.from_file(cif).composition.reduced_formula == "NiO"
    assert "NiO" in capsys.readouterr().out


def test_cli_model_ranking_with_the_shipped_models(nio_inputs, tmp_path, fixture_snapshot_path,
                                                  capsys) -> None:
    """No --crystal-system: the shipped peak model gives the systems; --ranking model: the
    shipped CGXAS model scores the XANES of the screened candidates (no CHGNet, no FEFF)."""
    import pandas as pd

    xanes, pattern = nio_inputs
    out = tmp_path / "out"
    status = _cli(["--xanes", str(xanes), "--pxrd", str(pattern), "--elements", "Ni", "O",
                   "--data", str(fixture_snapshot_path), "--out", str(out),
                   "--oxidation-state", "Ni=2", "--ranking", "model"])
    assert status == 0
    summary = pd.read_csv(out / "summary.csv")
    screened = summary[summary["stage"] == "screened"]
    assert len(screened) and screened["xanes_similarity"].notna().all()
    assert (summary["stage"] != "validated").all()
    printed = capsys.readouterr().out
    assert "crystal system cubic" in printed  # rock salt, from the peak model


# --------------------------------------------------------------------------------------------
# Benchmark helpers (notebook 09)
# --------------------------------------------------------------------------------------------


def test_crystal_system_split_holds_out_exactly_the_targets() -> None:
    from specfusion_lib.inference.benchmark import crystal_system_split

    ids = [f"m{i}" for i in range(40)]
    train, val, test = crystal_system_split(ids, ["m3", "m17", "absent"], seed=1)
    assert [ids[i] for i in test] == ["m3", "m17"]
    assert len(val) == round(0.15 * 38) and not set(train) & set(val)
    assert sorted([*train, *val, *test]) == list(range(40))


def test_wilson_interval_and_accuracy_table() -> None:
    import pandas as pd

    from specfusion_lib.inference.benchmark import accuracy_by_nelements, wilson_interval

    lo, hi = wilson_interval(8, 10)
    assert 0.44 < lo < 0.8 < hi < 0.97
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    table = pd.DataFrame({"nelements": [2, 2, 3, 3, 3], "correct": [1, 0, 1, 1, 0],
                          "top3_correct": [1, 1, 1, 1, 0],
                          "formula_correct": [1, 1, 1, 1, 0],
                          "system_correct": [1, 0, 1, 1, 1]}).astype({"correct": bool})
    acc = accuracy_by_nelements({"v": table}).set_index("group")
    assert acc.loc["binary", "top3_accuracy"] == 1.0 and acc.loc["all", "top3_correct"] == 4
    assert acc.loc["all", "top3_ci_low"] < 0.8 < acc.loc["all", "top3_ci_high"]
    assert acc.loc["binary", "top1_accuracy"] == 0.5 and acc.loc["binary", "n"] == 2
    assert acc.loc["ternary", "correct"] == 2 and acc.loc["all", "n"] == 5
    assert acc.loc["ternary", "system_accuracy"] == 1.0


def test_benchmark_removes_each_target(fixture_snapshot, database) -> None:
    import pandas as pd

    from specfusion_lib.inference.benchmark import run_benchmark, true_site_labels
    from specfusion_lib.inference.search import SearchSettings

    rows = []
    for mid in ("fx-NiO", "fx-MnO", "fx-ZnO"):
        row = fixture_snapshot.materials.set_index("material_id").loc[mid]
        ox, cn = true_site_labels(fixture_snapshot.sites(mid))
        rows.append({"material_id": mid, "formula": row["formula"], "nelements": 2,
                     "elements": list(row["elements"]), "crystal_system": row["crystal_system"],
                     "oxidation_states": ox, "coordination_numbers": cn,
                     "true_oxidation_states": ox, "true_coordination_numbers": cn,
                     "labels_correct": True})
    compounds = pd.DataFrame(rows)
    result = run_benchmark(fixture_snapshot, compounds, pd.DataFrame(), database, oracle=True,
                           settings=SearchSettings(n_screen=3, n_validate=0)).set_index(
        "material_id")
    assert result.loc["fx-NiO", "top_template"] == "MnO" and result.loc["fx-NiO", "correct"]
    # NiO and MnS are both rocksalt: either template gives rocksalt MnO
    assert result.loc["fx-MnO", "top_template"] in {"NiO", "MnS"}
    assert result.loc["fx-MnO", "correct"] and result.loc["fx-MnO", "top_stage"] == "screened"
    # the only hexagonal AB structure is ZnO itself: removed, so nothing is found
    assert not result.loc["fx-ZnO", "correct"]
    assert result.loc["fx-ZnO", "note"].startswith("no template")
    assert result.loc["fx-NiO", "top3_correct"] and not result.loc["fx-ZnO", "top3_correct"]
    assert (result["n_templates_removed"] >= 1).all()
    # with the rocksalt family (NiO, MnO, MnS) removed as a whole, no rocksalt template is left
    families = {m: "rocksalt" if m in {"fx-NiO", "fx-MnO", "fx-MnS"} else m
                for m in fixture_snapshot.materials["material_id"]}
    strict = run_benchmark(fixture_snapshot, compounds.iloc[:1], pd.DataFrame(), database,
                           oracle=True, families=families,
                           settings=SearchSettings(n_screen=3, n_validate=0)).iloc[0]
    assert strict["n_templates_removed"] == 3 and not strict["correct"]
    # several variants at once, in two worker processes: the same rows as one by one
    from specfusion_lib.inference.benchmark import BenchmarkVariant, run_benchmark_variants

    both = run_benchmark_variants(
        fixture_snapshot, compounds, pd.DataFrame(), database,
        {"own entry": BenchmarkVariant(oracle=True),
         "family": BenchmarkVariant(oracle=True, families=families)},
        settings=SearchSettings(n_screen=3, n_validate=0), workers=2)
    stable = ["material_id", "top_formula", "top_system", "top_template", "correct",
              "top3_correct", "n_templates_removed", "note"]
    pd.testing.assert_frame_equal(both["own entry"][stable], result.reset_index()[stable])
    assert both["family"].iloc[0][stable].equals(strict[stable])


def test_choose_compound_says_when_it_uses_a_stand_in(fixture_snapshot) -> None:
    from specfusion_lib.inference.walkthrough import choose_compound

    own = choose_compound(fixture_snapshot, "NiO")
    assert (own.material_id, own.note) == ("fx-NiO", "")
    stand_in = choose_compound(fixture_snapshot, "Ca2MnAlO5")
    assert stand_in.material_id == "fx-LiCoO2"  # most elements with TM spectra, first id
    assert "Ca2MnAlO5 is not in this snapshot" in stand_in.note and "LiCoO2" in stand_in.note
    other = choose_compound(fixture_snapshot, "Ca2MnAlO5", exclude=["fx-LiCoO2"])
    assert other.material_id == "fx-SrTiO3"
    none = choose_compound(fixture_snapshot, "Ca2MnAlO5", fallback=False)
    assert none.material_id is None and "not in this snapshot" in none.note


def test_search_over_probabilities_recovers_a_wrong_argmax(database) -> None:
    from specfusion_lib.inference.search import plausible_states

    assert plausible_states({3: 0.55, 2: 0.4, 4: 0.05}, min_probability=0.1,
                            max_hypotheses=3) == [3, 2]
    assert plausible_states({4: 0.02, 3: 0.01}, min_probability=0.1, max_hypotheses=3) == [4]
    target = database.structure("fx-NiO")
    settings = SearchSettings(n_screen=10, n_validate=0)
    args = (["Ni", "O"], {"Ni": 3}, {}, {"cubic": 1.0}, database.without_target("fx-NiO"))
    hard = infer_structure(*args, pxrd=simulate_pattern(target), settings=settings)
    assert "NiO" not in hard.enumeration.formulas  # the argmax Ni3+ rules NiO out
    soft = infer_structure(*args, pxrd=simulate_pattern(target), settings=settings,
                           oxidation_state_probabilities={"Ni": {3: 0.55, 2: 0.4, 4: 0.05}})
    assert set(soft.enumeration.formulas) >= {"NiO", "Ni2O3"}
    assert soft.top["formula"] == "NiO"  # the pattern outweighs a 0.55 / 0.40 prior
    hyp = soft.inputs.hypotheses()
    ni = hyp[hyp["kind"] == "oxidation state"].set_index("value")
    assert ni.loc[2, "searched"] and not ni.loc[4, "searched"]
    assert soft.retrieval.table["prior"].notna().all()


def test_no_match_verdict_widens_then_says_so(database) -> None:
    target = database.structure("fx-ZnO")  # the only hexagonal AB structure: removed below
    db = database.without_target("fx-ZnO")
    strict = SearchSettings(n_screen=5, n_validate=0, no_match_r_pxrd=0.05)
    result = infer_structure(["Zn", "O"], {"Zn": 2}, {}, {"hexagonal": 0.9, "cubic": 0.1}, db,
                             pxrd=simulate_pattern(target), settings=strict)
    assert result.widened and result.verdict == "no match"
    assert len(result.ranking) > 0  # the closest candidates are still there
    nio = database.structure("fx-NiO")
    found = infer_structure(["Ni", "O"], {"Ni": 2}, {}, {"cubic": 1.0},
                            database.without_target("fx-NiO"), pxrd=simulate_pattern(nio),
                            settings=SearchSettings(n_screen=5, n_validate=0,
                                                    no_match_r_pxrd=1.9))
    assert found.verdict == "match" and not found.widened


def test_no_match_threshold_is_set_on_the_validation_part_only() -> None:
    import pandas as pd

    from specfusion_lib.inference.benchmark import (
        no_match_scores,
        no_match_threshold,
        validation_part,
    )

    ids = [f"m{i}" for i in range(20)]
    val = validation_part(ids, seed=0)
    assert len(val) == 10 and val == validation_part(list(reversed(ids)), seed=0)
    table = pd.DataFrame({"material_id": ids, "correct": [i % 2 == 0 for i in range(20)],
                          "top_r_pxrd": [0.1 if i % 2 == 0 else 0.9 for i in range(20)]})
    table.loc[~table["material_id"].isin(val) & table["correct"], "top_r_pxrd"] = 5.0
    assert no_match_threshold(table, val) == pytest.approx(0.1)  # scoring part ignored
    scores = no_match_scores(table, 0.5, val).set_index("part")
    assert scores.loc["validation", "wrong_flagged"] == scores.loc["validation", "wrong"]
    assert scores.loc["scoring", "right_kept"] == 0


def test_fe2o3_example_returns_corundum_or_no_match() -> None:
    """The issue's case: the inputs that once gave four "validated" FeO candidates (Fe²⁺ with
    CN 4 predicted) must now give corundum-type Fe2O3 or say "no match", also with hematite
    itself taken out of the templates."""
    from specfusion_lib.data.snapshot import load_snapshot
    from specfusion_lib.spectra.pxrd import read_pattern, to_grid

    root = Path(__file__).resolve().parents[1]
    pattern = to_grid(read_pattern(root / "examples" / "fe2o3" / "hematite.xy"))
    demo = TemplateDatabase.from_snapshot(load_snapshot(root / "data" / "demo", verify=False))
    systems = {"tetragonal": 0.43, "trigonal": 0.25, "cubic": 0.14, "orthorhombic": 0.09}
    settings = SearchSettings(n_screen=10, n_validate=0, no_match_r_pxrd=1.02)
    for database in (demo, demo.without_target("demo-9b12c2460007")):
        result = infer_structure(["Fe", "O"], {}, {"Fe": 4}, systems, database, pxrd=pattern,
                                 settings=settings,
                                 oxidation_state_probabilities={"Fe": {2: 0.93, 3: 0.05,
                                                                       4: 0.02}})
        assert result.verdict == "no match" or (
            (result.top["formula"], result.top["crystal_system"]) == ("Fe2O3", "trigonal"))
        # Fe3+ (p = 0.05) completes the 95 % set of states, so it is searched at once
        assert 3 in result.inputs.oxidation_states["Fe"]


# --------------------------------------------------------------------------------------------
# Mixed valence
# --------------------------------------------------------------------------------------------


def test_mixed_valence_is_enumerated_on_distinct_sites() -> None:
    from specfusion_lib.inference.formulas import MixedValence, mixed_valence_pairs

    assert mixed_valence_pairs({"Fe": 2.67, "Ni": [2, 3]}) == ({"Ni": [2, 3]},
                                                               {"Fe": [(2, 3)]})
    average = enumerate_formulas(["Fe", "O"], {"Fe": 2.67})
    assert average.table["mixed_valence"].all()  # an average means two kinds of site
    (fe3o4,) = average.assignments("Fe3O4")
    assert fe3o4["Fe"] == MixedValence(2, 3, 1, 2) and fe3o4["Fe"].mean == pytest.approx(8 / 3)
    assert str(fe3o4["Fe"]) == "+2×1 +3×2"
    both = enumerate_formulas(["Fe", "O"], {"Fe": [2, 3]}, mixed_valence={"Fe": [(2, 3)]})
    assert {"FeO", "Fe2O3", "Fe3O4", "Fe4O5"} <= set(both.formulas)
    assert not both.table.set_index("formula").loc["Fe2O3", "mixed_valence"]
    for _, row in both.table.iterrows():  # every assignment balances the merged formula
        for a in both.assignments(row["formula"]):
            assert sum(float(a[el]) * row[el] for el in both.elements) == pytest.approx(0)
        assert row[list(both.elements)].max() <= 15
        assert math.gcd(*map(int, row[list(both.elements)])) == 1
    with pytest.raises(ConfigurationError, match="negative and a positive"):
        enumerate_formulas(["Fe", "O"], {"Fe": 0.5})
    with pytest.raises(ConfigurationError, match="not among the elements"):
        enumerate_formulas(["Fe", "O"], {"Fe": 3}, mixed_valence={"Co": [(2, 3)]})


def _spinel(metal: str) -> Structure:
    """A normal spinel AB2O4 with one metal (Fd-3m, origin choice 2)."""
    return Structure.from_spacegroup(
        "Fd-3m", Lattice.cubic(8.08), [metal, metal, "O"],
        [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.263, 0.263, 0.263]])


@pytest.fixture(scope="module")
def spinel_database() -> TemplateDatabase:
    sites = [{"element": "Co", "oxidation_state": 2, "coordination_number": 4,
              "multiplicity": 8},
             {"element": "Co", "oxidation_state": 3, "coordination_number": 6,
              "multiplicity": 16}]
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Ni", "O"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]])
    corundum_like = Structure.from_spacegroup(  # a cubic A2B3 (bixbyite-like stand-in)
        "Pm-3m", Lattice.cubic(3.8), ["Mn", "Mn", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    records = [MaterialRecord("sp-Co3O4", _spinel("Co"), sites=sites),
               MaterialRecord("rs-NiO", rocksalt), MaterialRecord("x-Mn2O3", corundum_like)]
    return TemplateDatabase.from_records(records, source="test")


def test_per_site_valences_match_a_mixed_valence_template(spinel_database) -> None:
    from specfusion_lib.inference.formulas import MixedValence

    db = spinel_database
    assert db.site_states("sp-Co3O4", "Co") == pytest.approx({2: 1 / 3, 3: 2 / 3})
    assert db.site_states("rs-NiO", "Ni") is None  # no labels: the mean state is compared
    mixed = retrieve_templates(enumerate_formulas(["Fe", "O"], {"Fe": 2.67}), db, "cubic")
    row = mixed.table.set_index("formula").loc["Fe3O4"]
    assert row["level"] == "exact" and row["valences"]["Fe"] == MixedValence(2, 3, 1, 2)
    single = retrieve_templates(enumerate_formulas(["Fe", "O"], {"Fe": [3, 2]}), db, "cubic")
    assert "Fe3O4" not in set(single.table["formula"])  # no single state balances Fe3O4


def test_search_over_probabilities_finds_a_mixed_valence_compound(spinel_database) -> None:
    target = _spinel("Fe")
    settings = SearchSettings(n_screen=10, n_validate=0)
    args = (["Fe", "O"], {"Fe": 3}, {}, {"cubic": 1.0}, spinel_database)
    hard = infer_structure(*args, pxrd=simulate_pattern(target), settings=settings)
    assert "Fe3O4" not in hard.enumeration.formulas
    soft = infer_structure(*args, pxrd=simulate_pattern(target), settings=settings,
                           oxidation_state_probabilities={"Fe": {3: 0.55, 2: 0.4, 4: 0.05}})
    assert soft.top["formula"] == "Fe3O4" and soft.top["template_id"] == "sp-Co3O4"
    assert soft.top["r_pxrd"] < 0.1
    hyp = soft.inputs.hypotheses().set_index("kind")
    assert hyp.loc["mixed valence", "value"] == "+2/+3"
    assert hyp.loc["mixed valence", "probability"] == pytest.approx(0.4)
    no_mixed = infer_structure(*args, pxrd=simulate_pattern(target),
                               settings=SearchSettings(n_screen=10, n_validate=0,
                                                       mixed_valence=False),
                               oxidation_state_probabilities={"Fe": {3: 0.55, 2: 0.4}})
    assert "Fe3O4" not in no_mixed.enumeration.formulas
    average = infer_structure(["Fe", "O"], {"Fe": 2.7}, {}, {"cubic": 1.0}, spinel_database,
                              pxrd=simulate_pattern(target), settings=settings)
    assert average.top["formula"] == "Fe3O4"


class FakeForward:
    """A stand-in forward model: a K edge on the element's grid whose edge sits 4 eV higher
    for every structure whose formula is not ``right``."""

    def __init__(self, right: str) -> None:
        self.right = right
        self.calls = 0

    def curve(self, element: str, shift: float) -> np.ndarray:
        from specfusion_lib.xas_structure.grid import grid_window

        e = grid_window(element).energies
        e0 = e[len(e) // 3] + shift
        return 1.0 / (1.0 + np.exp(-(e - e0) / 1.5)) + 0.4 * np.exp(-0.5 * ((e - e0 - 6) / 3) ** 2)

    def predict_structures(self, structures, element):
        self.calls += 1
        return np.stack([self.curve(element, 0.0 if s.composition.reduced_formula == self.right
                                    else 4.0) for s in structures])


def test_ranking_modes_model_and_hybrid(spinel_database) -> None:
    from specfusion_lib.xas_structure.grid import grid_window

    forward = FakeForward("Fe3O4")
    xanes = {"Fe": XANESSpectrum(grid_window("Fe").energies, forward.curve("Fe", 0.0),
                                 element="Fe")}
    target = _spinel("Fe")
    args = (["Fe", "O"], {"Fe": [2, 3]}, {}, {"cubic": 1.0}, spinel_database)
    common = {"pxrd": simulate_pattern(target), "xanes": xanes,
              "oxidation_state_probabilities": {"Fe": {3: 0.5, 2: 0.5}}}
    with pytest.raises(ConfigurationError, match="forward_model"):
        infer_structure(*args, settings=SearchSettings(ranking="model"), **common)
    with pytest.raises(ConfigurationError, match="ranking must be one of"):
        SearchSettings(ranking="fastest")
    model = infer_structure(*args, settings=SearchSettings(n_screen=10, ranking="model"),
                            forward_model=forward, **common)
    assert model.validation.empty and forward.calls == 1  # one batch, no CHGNet / FEFF
    assert model.screen["xanes_model"].notna().all()
    best = model.screen.iloc[0]
    assert best["formula"] == "Fe3O4" and best["xanes_model"] > 0.99
    assert (model.screen["xanes_model"] <= best["xanes_model"] + 1e-9).all()
    assert model.top["formula"] == "Fe3O4" and model.top["validation_score"] == best["model_score"]
    relaxer = FakeRelaxer()
    feff = FakeXanes(xanes["Fe"], target.volume / len(target))
    hybrid = infer_structure(*args, settings=SearchSettings(n_screen=10, n_validate=1,
                                                            ranking="hybrid"),
                             forward_model=forward, relaxer=relaxer, xanes_simulator=feff,
                             **common)
    assert relaxer.calls == 1 and len(feff.calls) == 1  # only the model's best is validated
    assert hybrid.validation["formula"].tolist() == ["Fe3O4"]
    assert "model" in set(hybrid.summary()["stage"])


def test_plausible_states_cover_95_percent_and_expected_state() -> None:
    from specfusion_lib.inference.search import expected_state, mixed_pairs, plausible_states

    probs = {2: 0.86, 3: 0.099, 4: 0.03, 1: 0.011}  # Ca2MnAlO5's Mn, notebook 10
    assert plausible_states(probs, min_probability=0.05, max_hypotheses=3,
                            coverage=0.95) == [2, 3]
    assert plausible_states(probs, min_probability=0.1, max_hypotheses=3) == [2]
    assert plausible_states({3: 0.97, 2: 0.03}, min_probability=0.01, max_hypotheses=3,
                            coverage=0.95) == [3]
    assert plausible_states({3: 0.4, 2: 0.3, 4: 0.2, 5: 0.1}, min_probability=0.05,
                            max_hypotheses=2, coverage=0.95) == [3, 2]
    assert expected_state({2: 1 / 3, 3: 2 / 3}) == pytest.approx(8 / 3)
    with pytest.raises(ConfigurationError):
        expected_state({2: 0.0})
    assert mixed_pairs([3, 2, 5]) == [(2, 3)] and mixed_pairs([-1, 1]) == []


def test_true_average_states_and_system_input_accuracy() -> None:
    import pandas as pd

    from specfusion_lib.inference.benchmark import system_input_accuracy, true_average_states

    sites = [{"element": "Fe", "oxidation_state": 2, "multiplicity": 2},
             {"element": "Fe", "oxidation_state": 3, "multiplicity": 4},
             {"element": "Ni", "oxidation_state": 2, "multiplicity": 1}]
    avg = true_average_states(sites)
    assert avg["Fe"] == pytest.approx(8 / 3) and avg["Ni"] == 2 and isinstance(avg["Ni"], int)
    compounds = pd.DataFrame({"material_id": ["a", "b", "c"],
                              "crystal_system": ["cubic", "cubic", "hexagonal"]})
    probs = pd.DataFrame({"cubic": [0.9, 0.2, 0.5], "hexagonal": [0.1, 0.7, 0.4],
                          "trigonal": [0.0, 0.1, 0.1]}, index=["a", "b", "c"])
    row = system_input_accuracy(compounds, {"m": probs}).iloc[0]
    assert row["n"] == 3 and row["top1"] == pytest.approx(1 / 3)
    assert row["top2"] == pytest.approx(1.0) and row["top1_ci_low"] < 1 / 3 < row["top1_ci_high"]


def test_pattern_cache_reuses_candidates_without_changing_the_answer(spinel_database) -> None:
    from specfusion_lib.inference.candidates import PatternCache

    target = _spinel("Fe")
    args = (["Fe", "O"], {"Fe": 3}, {}, {"cubic": 1.0}, spinel_database)
    for refine in (False, True):
        cache = PatternCache(maxsize=256)
        common = {"pxrd": simulate_pattern(target),
                  "settings": SearchSettings(n_validate=0, refine_lattice=refine),
                  "oxidation_state_probabilities": {"Fe": {3: 0.55, 2: 0.4}}}
        plain = infer_structure(*args, **common)
        first = infer_structure(*args, pattern_cache=cache, **common)
        assert cache.hits == 0 and len(cache) == cache.misses > 0
        computed = cache.misses
        second = infer_structure(*args, pattern_cache=cache, **common)
        assert cache.misses == computed and cache.hits > 0  # nothing computed twice
        for result in (first, second):
            for column in ("r_pxrd_unrelaxed", "r_pxrd_screen"):
                assert result.screen[column].tolist() == pytest.approx(
                    plain.screen[column].tolist(), nan_ok=True)
            assert result.top["formula"] == plain.top["formula"]
    common = {"pxrd": simulate_pattern(target), "settings": SearchSettings(n_validate=0),
              "oxidation_state_probabilities": {"Fe": {3: 0.55, 2: 0.4}}}
    tiny = PatternCache(maxsize=1)
    infer_structure(*args, pattern_cache=tiny, **common)
    assert len(tiny) == 1
    with pytest.raises(ConfigurationError):
        PatternCache(maxsize=0)


def test_a_tm_without_a_prediction_may_be_mixed_valent(spinel_database) -> None:
    from specfusion_lib.inference.formulas import MixedValence

    result = infer_structure(["Fe", "Ni", "O"], {}, {}, {"cubic": 1.0}, spinel_database,
                             settings=SearchSettings(n_screen=0, n_validate=0),
                             oxidation_state_probabilities={"Ni": {2: 0.9, 3: 0.1}})
    assert result.inputs.mixed_valence["Fe"] == [(2, 3)]  # Fe's common states 2, 3
    assert any(isinstance(a["Fe"], MixedValence) for a in result.enumeration.combinations)
    hyp = result.inputs.hypotheses()
    fe = hyp[(hyp["element"] == "Fe") & (hyp["kind"] == "mixed valence")]
    assert fe["value"].tolist() == ["+2/+3"] and fe["probability"].isna().all()


def test_screen_refines_cells_and_finds_a_strained_structure() -> None:
    """A template of the right type with axes 4-5 % off loses on the plain R_PXRD; after the
    screen fits its cell to the pattern it is the answer, with R_PXRD near 0."""
    def pnma(metal: str, lattice: Lattice) -> Structure:
        return Structure.from_spacegroup("Pnma", lattice, [metal, "S"],
                                         [[0.0, 0.25, 0.2], [0.19, 0.25, 0.58]])

    records = [MaterialRecord("or-FeS", pnma("Fe", Lattice.orthorhombic(5.4, 3.9, 7.1))),
               MaterialRecord("rs-NiS", Structure.from_spacegroup(
                   "Fm-3m", Lattice.cubic(5.2), ["Ni", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]]))]
    database = TemplateDatabase.from_records(records, source="test")
    target = pnma("Fe", Lattice.orthorhombic(5.4 * 1.05, 3.9 * 0.955, 7.1 * 1.02))
    args = (["Fe", "S"], {"Fe": 2}, {}, {"orthorhombic": 0.5, "cubic": 0.5}, database)
    common = {"pxrd": simulate_pattern(target)}
    plain = infer_structure(*args, settings=SearchSettings(n_validate=0, refine_lattice=False),
                            **common)
    refined = infer_structure(*args, settings=SearchSettings(n_validate=0), **common)
    right = plain.screen.set_index("template_id").loc["or-FeS"]
    assert right["r_pxrd_unrelaxed"] > 0.8
    top = refined.screen.iloc[0]
    assert top["template_id"] == "or-FeS" and top["r_pxrd_refined"] < 0.1
    assert top["r_pxrd_bound"] <= top["r_pxrd_refined"] + 0.05  # coarse R bounds the fine one
    assert 0.02 < top["lattice_strain"] < 0.08
    assert refined.top["crystal_system"] == "orthorhombic"
    cell = refined.structures[top["candidate_id"]].lattice.abc
    assert np.ptp(np.array(sorted(cell)) / np.array(sorted(target.lattice.abc))) < 0.01
    assert refined.best_r_pxrd == pytest.approx(top["r_pxrd_refined"])
    # validation relaxes the refined cell, not the substituted one
    validated = infer_structure(*args, settings=SearchSettings(n_validate=1),
                                relaxer=FakeRelaxer(), **common)
    cid = validated.validation["candidate_id"].iloc[0]
    assert validated.structures[cid].volume == pytest.approx(
        refined.structures[top["candidate_id"]].volume * 0.97, rel=1e-6)


def test_an_equally_good_higher_symmetry_description_is_the_answer() -> None:
    """A pseudo-cubic target whose classifier says tetragonal: the tetragonal template wins on
    the prior, a cubic one fits the pattern as well, so the answer is cubic (the symmetry
    preference); a cubic template of another structure type, which fits poorly, is not."""
    def rocksalt(metal: str, lattice: Lattice) -> Structure:
        return Structure(lattice, [metal] * 4 + ["O"] * 4,
                         [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                          [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]])

    tetragonal = MaterialRecord("tet-NiO", rocksalt("Ni", Lattice.tetragonal(4.18, 4.18 * 1.08)))
    cubic = MaterialRecord("rs-CoO", rocksalt("Co", Lattice.cubic(4.26)))
    zincblende = MaterialRecord("zb-ZnO", Structure.from_spacegroup(
        "F-43m", Lattice.cubic(4.6), ["Zn", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]]))
    assert crystal_system(tetragonal.structure) == "tetragonal"
    target = rocksalt("Fe", Lattice.cubic(4.33))

    def search(records: list[MaterialRecord], tolerance: float | None = None):
        settings = SearchSettings(n_validate=0)
        if tolerance is not None:
            settings = SearchSettings(n_validate=0, symmetry_tolerance_r=tolerance)
        return infer_structure(["Fe", "O"], {}, {}, {"tetragonal": 0.98, "cubic": 0.02},
                               TemplateDatabase.from_records(records, source="test"),
                               pxrd=simulate_pattern(target), settings=settings,
                               oxidation_state_probabilities={"Fe": {2: 1.0}})

    off = search([tetragonal, cubic], tolerance=0.0)
    assert off.top["template_id"] == "tet-NiO" and off.top["crystal_system"] == "tetragonal"
    on = search([tetragonal, cubic])
    assert on.top["formula"] == "FeO" and on.top["crystal_system"] == "cubic"
    assert on.top["r_pxrd"] <= off.top["r_pxrd"] + SearchSettings().symmetry_tolerance_r
    assert on.screen["answer_system"].iloc[0] == on.screen["structure_system"].iloc[0] == "cubic"
    poor = search([tetragonal, zincblende])
    assert poor.top["template_id"] == "tet-NiO" and poor.top["crystal_system"] == "tetragonal"
    with pytest.raises(ConfigurationError, match="symmetry_tolerance_r"):
        SearchSettings(symmetry_tolerance_r=-0.01)
    with pytest.raises(ConfigurationError, match="symmetry_tolerance_r"):
        SearchSettings(symmetry_tolerance_r=math.nan)
