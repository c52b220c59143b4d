"""FEFF10 wrapper: presets, input, site averaging, one real run and failures."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import xraydb
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import (
    ConfigurationError,
    ElementError,
    SimulationError,
    SpecfusionError,
)
from specfusion_lib.simulate import feff


def _mno() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.445), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _co3o4() -> Structure:
    """Spinel Co3O4: Co on the tetrahedral 8a and octahedral 16d sites (conventional cell)."""
    return Structure.from_spacegroup(
        "Fd-3m:2",
        Lattice.cubic(8.08),
        ["Co", "Co", "O"],
        [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.2625, 0.2625, 0.2625]],
    )


def _site(energy: np.ndarray, mu: np.ndarray, index: int, mult: int) -> feff.SiteSpectrum:
    return feff.SiteSpectrum(energy=energy, mu=mu, element="Co", site_index=index, edge="K",
                             preset="fast", feff_version="test", wall_time_s=0.0,
                             multiplicity=mult)


# ------------------------------------------------------------------ pure functions (no FEFF)


def test_paper_preset_has_the_si_cards() -> None:
    cards = feff.preset_cards("paper")
    assert cards == {
        "EDGE": "K", "CONTROL": "1 1 1 1 1 1", "COREHOLE": "NONE", "SCF": "5.0 0 50 0.1 3",
        "FMS": "6.0 1", "AFOLP": "0.9", "XANES": "4 0.05 0.1", "RSIGMA": "",
    }


def test_fast_preset_and_overrides() -> None:
    cards = feff.preset_cards("fast", edge="l3", overrides={"fms": "4.0 1", "EGRID": None})
    assert "SCF" not in cards and "EGRID" not in cards
    assert cards["FMS"] == "4.0 1" and cards["EDGE"] == "L3"
    assert "EGRID" in feff.PRESETS["fast"]  # the table itself is untouched
    with pytest.raises(ConfigurationError, match="unknown FEFF preset 'slow'"):
        feff.preset_cards("slow")
    with pytest.raises(ConfigurationError, match="edge"):
        feff.preset_cards("fast", edge="Q")


def test_feff_input_text() -> None:
    text = feff.feff_input(_mno(), 0, preset="fast", material_id="t-1")
    lines = text.splitlines()
    assert "FMS 5.0 1" in lines and "RSIGMA" in lines and "EDGE K" in lines
    assert not any(ln.startswith("SCF") for ln in lines)
    egrid = lines.index("EGRID")
    assert lines[egrid + 1].startswith("e_grid -20")
    assert text.index("EGRID") < text.index("POTENTIALS") < text.index("ATOMS")
    assert "t-1 MnO" in lines[0]
    # ipot 0 is the absorber, Mn at the origin
    atoms = lines[lines.index("ATOMS") + 2].split()
    assert [float(x) for x in atoms[:3]] == [0.0, 0.0, 0.0] and atoms[3:5] == ["0", "Mn"]
    with pytest.raises(ConfigurationError, match="out of range"):
        feff.feff_input(_mno(), 99)


def test_feff_input_is_canonical() -> None:
    """Two constructions of the same crystal give the same text (the cache hashes it)."""
    sites = ([[0, 0, 0], [0.5, 0.5, 0.5]])
    a = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.445), ["Mn", "O"], sites)
    b = Structure.from_spacegroup(
        "Fm-3m", Lattice.from_parameters(4.445, 4.445, 4.445, 90, 90, 90), ["Mn", "O"], sites)
    assert feff.feff_input(a, 0) == feff.feff_input(b, 0)
    assert "e-1" not in feff.feff_input(b, 0)  # no floating-point noise


def test_inequivalent_sites_of_spinel() -> None:
    classes = feff.inequivalent_sites(_co3o4(), "Co")
    assert len(classes) == 2
    assert sorted(m for _, m in classes) == [8, 16]
    assert feff.inequivalent_sites(_mno(), "Mn") == [(0, 4)]
    with pytest.raises(ElementError, match="Fe is not in t-9 \\(MnO\\)"):
        feff.inequivalent_sites(_mno(), "Fe", material_id="t-9")
    with pytest.raises(ElementError, match="unknown element"):
        feff.inequivalent_sites(_mno(), "Xx")


def test_average_weights_by_multiplicity() -> None:
    e1 = np.linspace(100.0, 200.0, 101)
    e2 = np.linspace(95.0, 190.0, 77)  # different grid, overlap 100-190
    a = _site(e1, np.ones_like(e1), 0, 1)
    b = _site(e2, np.full_like(e2, 4.0), 1, 3)
    energy, mu = feff.average_site_spectra([a, b])
    assert energy[0] == pytest.approx(100.0) and energy[-1] == pytest.approx(190.0)
    assert np.all(np.diff(energy) > 0)
    np.testing.assert_allclose(mu, (1 * 1.0 + 3 * 4.0) / 4)
    # explicit weights override multiplicities; linear spectra stay exact on the union grid
    lin = _site(e2, e2 - 95.0, 1, 3)
    energy, mu = feff.average_site_spectra([a, lin], weights=[1.0, 1.0])
    np.testing.assert_allclose(mu, 0.5 * (1.0 + energy - 95.0))
    with pytest.raises(SimulationError, match="no common energy range"):
        feff.average_site_spectra([a, _site(e1 + 500.0, e1, 2, 1)])
    with pytest.raises(ConfigurationError):
        feff.average_site_spectra([a, b], weights=[1.0])


def test_disordered_structure_is_refused() -> None:
    s = _mno()
    s.replace_species({"Mn": {"Mn": 0.5, "Fe": 0.5}})
    with pytest.raises(SimulationError, match="partial occupancies"):
        feff.feff_input(s, 0, material_id="t-dis")


def test_version_string() -> None:
    assert feff.feff_version().startswith("FEFF 10")
    assert "feff10-rs" in feff.feff_version()


# ------------------------------------------------------------------ real FEFF runs


@pytest.fixture(scope="module")
def mno_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[feff.SimulatedXANES, Path]:
    """One real fast-preset run; temporary FEFF directories go to a private folder."""
    scratch = tmp_path_factory.mktemp("scratch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(scratch))
        res = feff.simulate_xanes(_mno(), "Mn", preset="fast", material_id="t-mno")
    return res, scratch


@pytest.mark.feff
def test_fast_run_gives_a_k_edge(mno_run: tuple[feff.SimulatedXANES, Path]) -> None:
    res, scratch = mno_run
    assert list(scratch.iterdir()) == []  # the temporary work directory was removed
    assert res.formula == "MnO" and res.element == "Mn" and res.material_id == "t-mno"
    assert len(res.sites) == 1 and res.sites[0].multiplicity == 4
    assert res.feff_version.startswith("FEFF 10")
    e, mu = res.energy, res.mu
    assert np.all(np.isfinite(mu)) and np.all(np.diff(e) > 0) and e.size > 50
    edge = xraydb.xray_edge("Mn", "K").energy
    assert e[0] < edge - 10.0 < edge + 40.0 < e[-1]
    below = mu[e < edge - 5.0].mean()
    above = mu[(e > edge + 15.0) & (e < edge + 45.0)].mean()
    assert above > 5.0 * below and 0.5 < above < 2.0  # FEFF normalises μ to ~1 above the edge
    # the fast grid starts well below the max-derivative E0 (SPEC §4 window E0-10 eV)
    fine = np.arange(e[0], e[-1], 0.1)
    e0 = fine[np.argmax(np.gradient(np.interp(fine, e, mu)))]
    assert e[0] < e0 - 10.0 and e[-1] > e0 + 46.0
    site = res.sites[0]
    assert e[0] < site.e_fermi < e0 + 5.0
    assert site.workdir is None and site.cards["FMS"] == "5.0 1"


@pytest.mark.feff
def test_feff_failure_names_structure_site_and_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # Mn and O 0.15 Å apart: FEFF's potential stage finds no interstitial region and stops.
    bad = Structure(Lattice.cubic(3.0), ["Mn", "O"], [[0, 0, 0], [0.05, 0, 0]])
    with pytest.raises(SimulationError) as info:
        feff.simulate_site(bad, 0, material_id="bad-1")
    msg = str(info.value)
    assert "bad-1 (MnO)" in msg and "Mn site 0" in msg and "stage pot" in msg
    assert "last lines of FEFF's output" in msg
    assert isinstance(info.value, SpecfusionError)
    assert list(tmp_path.iterdir()) == []  # the temporary work directory was removed


@pytest.mark.feff
def test_stage_timeout_and_kept_workdir(tmp_path: Path) -> None:
    # 1 s per stage: the FMS stage (10-30 s here) or an earlier one on a busy machine times out
    with pytest.raises(SimulationError, match=r"in stage \w+: .*timed out after 1s") as info:
        feff.simulate_site(_mno(), 0, workdir=tmp_path / "run", timeout=1.0)
    assert f"FEFF files kept in {tmp_path / 'run'}" in str(info.value)
    assert (tmp_path / "run" / "feff.inp").exists() and (tmp_path / "run" / "feff.log").exists()


def test_input_error_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SimulationError, match="stage rdinp.*unrecognized keyword 'NOTACARD'"):
        # an unknown card makes FEFF's input parser stop before any stage runs
        feff.simulate_site(_mno(), 0, overrides={"NOTACARD": "1"})
    assert list(tmp_path.iterdir()) == []
