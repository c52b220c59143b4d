"""Tests of the demo structure pool builder (specfusion_lib.data.demo_pool)."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Composition, Lattice, Structure

from specfusion_lib.core.elements import NOBLE_GASES, TRANSITION_METALS
from specfusion_lib.data import demo_pool as dp
from specfusion_lib.simulate.relax import RelaxSettings

RUTILE = "A2B_tP6_136_f_a:TiO2"
ROCKSALT = "AB_cF8_225_a_b:NaCl"


@pytest.fixture(scope="module")
def named() -> list[dp.Candidate]:
    return dp.named_candidates()


@pytest.fixture(scope="module")
def small_candidates() -> list[dp.Candidate]:
    settings = dp.PoolSettings(max_candidates=80, per_prototype_cap=40)
    return dp.candidate_structures(settings, prototypes=[RUTILE, ROCKSALT], include_named=False)


def _charge(c: dp.Candidate) -> float:
    comp = c.structure.composition
    return sum(c.oxidation_states[el.symbol] * amt for el, amt in comp.items())


def _rocksalt(a: float = 4.445, el: str = "Mn") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [el, "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def test_named_compounds_built_with_right_formula_and_charge_balance(named):
    assert len(named) == len(dp.NAMED_COMPOUNDS)
    for spec, cand in zip(dp.NAMED_COMPOUNDS, named, strict=True):
        assert Composition(cand.formula) == Composition(spec.formula), spec.formula
        assert cand.named == spec.formula and cand.rule == "named"
        assert abs(_charge(cand)) < 1e-3, spec.formula
        assert Composition(cand.formula).oxi_state_guesses(), spec.formula
        assert dp.selection_reason(cand.structure.composition, len(cand.structure)) is None
        assert cand.source in dp.SOURCES and cand.prototype and cand.reference
        assert 0.5 < cand.structure.density < 12, spec.formula


def test_issue_compounds_are_named():
    required = ["Ca2MnAlO5", "CaMnAlO4", "Y2TiO5", "Y2Ti2O7", "YTiO3", "TiFe2O5", "MnS",
                "ZnFe2O4", "CoFe2O4", "V2O5", "Co2O3", "Co3O4", "Cu2O", "TiO2", "DyCrO3",
                "CuInS2", "ZnCu2SnS4"]
    have = {Composition(n.formula) for n in dp.NAMED_COMPOUNDS}
    assert all(Composition(f) in have for f in required)


def test_experiment_csv_transition_metal_compounds_are_named_or_reported():
    exp = dp.experiment_compounds()
    have = {Composition(n.formula) for n in dp.NAMED_COMPOUNDS}
    missing = [f for f in exp["transition_metal"] if Composition(f) not in have]
    assert sorted(missing) == sorted(dp.NOT_BUILT)
    assert set(exp["other"]) == {"SrCO3", "SiO2", "B2O3", "Al2O3", "AlPO4", "Na2O"}


def test_prototypes_come_from_packages_with_robocrys_marked():
    protos = dp.load_prototypes()
    assert len(protos) == 288
    in_robocrys = [p for p in protos.values() if dp.SOURCE_ROBOCRYS in p.also_in]
    assert len(in_robocrys) == 180
    assert protos["A2BC4_cF56_227_d_a_e:MgAl2O4"].mineral == "Spinel"


def test_candidates_obey_the_selection(small_candidates):
    assert len(small_candidates) > 20
    for c in small_candidates:
        elements = {el.symbol for el in c.structure.composition.elements}
        assert 2 <= len(elements) <= 5
        assert elements & TRANSITION_METALS
        assert not elements & NOBLE_GASES
        assert len(c.structure) <= dp.PoolSettings().max_sites
        assert abs(_charge(c)) < 1e-3
        assert c.rule in dp.RULES and c.source == dp.SOURCE_AFLOW
        assert c.prototype in (RUTILE, ROCKSALT)
    rules = {c.rule for c in small_candidates}
    assert {"prototype", "substitution_probability"} <= rules
    assert rules & {"same_group", "ionic_radius"}
    ids = [c.candidate_id for c in small_candidates]
    assert len(ids) == len(set(ids))


def test_candidates_are_deterministic(small_candidates):
    settings = dp.PoolSettings(max_candidates=80, per_prototype_cap=40)
    again = dp.candidate_structures(settings, prototypes=[RUTILE, ROCKSALT],
                                    include_named=False)
    assert [c.candidate_id for c in again] == [c.candidate_id for c in small_candidates]


def test_candidate_round_trip_through_json(tmp_path, small_candidates):
    path = dp.save_candidates(small_candidates[:5], tmp_path / "c.json.gz")
    back = dp.load_candidates(path)
    assert [c.candidate_id for c in back] == [c.candidate_id for c in small_candidates[:5]]
    assert back[0].provenance() == small_candidates[0].provenance()
    assert dp.load_candidates(path, dp.PoolSettings(max_candidates=7)) is None


def test_deduplicate_collapses_equivalent_structures():
    prim = _rocksalt()
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.5), ["Mn", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])
    conv.translate_sites(list(range(len(conv))), [0.1, 0.2, 0.3])
    other = _rocksalt(el="Ni")

    def cand(s: Structure) -> dp.Candidate:
        return dp.Candidate(structure=s, formula=s.composition.reduced_formula,
                            oxidation_states={}, rule="prototype", source=dp.SOURCE_AFLOW,
                            prototype=ROCKSALT)

    kept = dp.deduplicate([cand(prim), cand(conv), cand(other)])
    assert [c.formula for c in kept] == ["MnO", "NiO"]
    assert kept[0].structure is prim


def test_structure_hash_ignores_order_decoration_and_noise():
    s = _rocksalt()
    t = Structure(s.lattice, list(reversed(s.species)), list(reversed(s.frac_coords)))
    t.add_oxidation_state_by_element({"Mn": 2, "O": -2})
    t.translate_sites([0], [1e-9, 0, 1.0])
    assert dp.structure_hash(s) == dp.structure_hash(t)
    u = s.copy()
    u.scale_lattice(s.volume * 1.01)
    assert dp.structure_hash(s) != dp.structure_hash(u)


class FakeRelaxer:
    """Counts calls; returns the input scaled by ``volume_factor``."""

    def __init__(self, volume_factor: float = 1.02, converged: bool = True):
        self.calls = 0
        self.volume_factor = volume_factor
        self.converged = converged

    def __call__(self, structure: Structure) -> dp.RelaxOutcome:
        self.calls += 1
        out = structure.copy()
        out.scale_lattice(structure.volume * self.volume_factor)
        return dp.RelaxOutcome(out, -5.0 * len(out), [4.5] + [0.0] * (len(out) - 1), 12,
                               self.converged, 0.05)


def _tiny(named) -> list[dp.Candidate]:
    return [c for c in named if c.named in ("MnO", "NiO")]


def test_relaxation_is_cached_and_resumed(tmp_path, named):
    cands = _tiny(named)
    fake = FakeRelaxer()
    rep = dp.relax_candidates(cands, tmp_path, relaxer=fake, progress=False)
    assert (rep.relaxed, rep.ok, rep.failed, rep.cached, fake.calls) == (2, 2, 0, 0, 2)
    records = sorted((tmp_path / dp.RECORDS_DIR).glob("*.json"))
    assert [p.stem for p in records] == sorted(c.cache_key(dp.PoolSettings()) for c in cands)
    rep2 = dp.relax_candidates(cands, tmp_path, relaxer=fake, progress=False)
    assert (rep2.relaxed, rep2.cached, fake.calls) == (0, 2, 2)
    pool = dp.load_pool(tmp_path)
    assert sorted(e.formula for e in pool) == ["MnO", "NiO"]
    entry = pool[0]
    assert entry.energy_per_atom == pytest.approx(-5.0)
    assert entry.magmoms[0] == pytest.approx(4.5) and len(entry.magmoms) == len(entry.structure)
    assert entry.provenance["source"] == dp.SOURCE_AFLOW and entry.provenance["named"]
    assert entry.metrics["volume_change"] == pytest.approx(0.02, abs=1e-4)
    index = json.loads((tmp_path / dp.INDEX_FILE).read_text())
    assert index["pool"] == 2 and {"MnO", "NiO"} <= set(index["named_present"])
    assert index["candidates"] == 2 and index["candidates_pending"] == 0
    # other relaxation settings: a different key, relaxed again
    rep3 = dp.relax_candidates(cands[:1], tmp_path,
                               dp.PoolSettings(relax=RelaxSettings(fmax=0.05)), relaxer=fake,
                               progress=False)
    assert rep3.relaxed == 1 and fake.calls == 3


def test_limit_stops_cleanly_and_resumes(tmp_path, named):
    cands = _tiny(named)
    fake = FakeRelaxer()
    rep = dp.relax_candidates(cands, tmp_path, relaxer=fake, limit=1, progress=False)
    assert (rep.relaxed, rep.remaining, rep.stopped) == (1, 1, "limit")
    rep = dp.relax_candidates(cands, tmp_path, relaxer=fake, progress=False)
    assert (rep.relaxed, rep.cached, fake.calls) == (1, 1, 2)
    assert not list((tmp_path / dp.RECORDS_DIR).glob(".*.tmp"))


@pytest.mark.parametrize(("fake", "check"), [
    (FakeRelaxer(volume_factor=1.8), "volume_change"),
    (FakeRelaxer(converged=False), "not_converged"),
])
def test_unphysical_or_unconverged_results_are_dropped_with_reason(tmp_path, named, fake, check):
    cands = _tiny(named)[:1]
    rep = dp.relax_candidates(cands, tmp_path, relaxer=fake, progress=False)
    assert (rep.ok, rep.failed) == (0, 1)
    rec = json.loads(next((tmp_path / dp.RECORDS_DIR).glob("*.json")).read_text())
    assert rec["status"] == "failed" and rec["reason"].startswith(check)
    assert dp.load_pool(tmp_path) == []
    index = json.loads((tmp_path / dp.INDEX_FILE).read_text())
    assert index["failures_by_check"] == {check: 1}
    assert index["named"][cands[0].named].startswith("failed")


def test_relaxer_exception_is_recorded(tmp_path, named):
    def boom(structure: Structure) -> dp.RelaxOutcome:
        raise RuntimeError("model exploded")

    rep = dp.relax_candidates(_tiny(named)[:1], tmp_path, relaxer=boom, progress=False)
    assert rep.failed == 1
    rec = json.loads(next((tmp_path / dp.RECORDS_DIR).glob("*.json")).read_text())
    assert "model exploded" in rec["reason"]


def test_assess_relaxation_checks():
    s = _rocksalt()
    assert dp.assess_relaxation(s, s, -4.0)[0] is None
    collapsed = Structure(s.lattice, ["Mn", "O"], [[0, 0, 0], [0.05, 0.05, 0.05]])
    assert dp.assess_relaxation(s, collapsed, -4.0)[0].startswith("min_distance")
    assert dp.assess_relaxation(s, s, 0.3)[0].startswith("energy")
    light = Structure(Lattice.cubic(3.2), ["Sc", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    reason, metrics = dp.assess_relaxation(light, light, -4.0,
                                           RelaxSettings(density_range=(5.0, 25.0)))
    assert reason.startswith("density") and metrics["density"] < 5.0


@pytest.mark.slow
def test_chgnet_relaxes_a_tiny_structure(tmp_path):
    relaxer = dp.chgnet_relaxer()
    start = _rocksalt(4.6)
    out = relaxer(start)
    assert out.converged and out.n_steps < 300
    assert out.energy / len(start) < 0
    assert out.magmoms is not None and len(out.magmoms) == 2
    assert dp.assess_relaxation(start, out.structure, out.energy / 2)[0] is None
