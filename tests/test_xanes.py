"""Tests of specfusion_lib.spectra.xanes on synthetic spectra (arctan edge + peaks + noise)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specfusion_lib.core.errors import (
    ConfigurationError,
    ElementError,
    SpectrumError,
    SpectrumFileError,
    WrongElementError,
)
from specfusion_lib.spectra.xanes import (
    N_POINTS,
    WINDOW_EV,
    Alignment,
    XANESSpectrum,
    align_by_correlation,
    broaden,
    canonical_element,
    check_edge,
    find_e0,
    normalize_edge_step,
    preprocess_xanes,
    resample_window,
    standardize,
    tabulated_edge_energy,
)

FE_K = 7112.0
FAST = settings(max_examples=25, deadline=None)


def model_mu(energy, edge=7122.0, step=1.0, white_line=0.8, width=1.0, offset=0.0, slope=0.0):
    """Arctan edge of height ``step`` + Lorentzian white line + weak post-edge wiggle."""
    x = np.asarray(energy, dtype=float) - edge
    mu = step * (0.5 + np.arctan(x / width) / np.pi)
    mu = mu + white_line * step * 1.5**2 / ((x - 4.0) ** 2 + 1.5**2)
    mu = mu + 0.04 * step * np.sin((x - 12.0) / 9.0) * (x > 12.0)
    return offset + slope * x + mu


def measured_grid(edge=7122.0):
    """A beamline-like grid: coarse pre-edge, fine XANES, k-spaced EXAFS up to ~+450 eV."""
    pre = np.arange(edge - 222.0, edge - 22.0, 5.0)
    xanes = np.arange(edge - 22.0, edge + 78.0, 0.25)
    k = np.arange(4.6, 11.0, 0.05)
    exafs = edge + 3.81 * k**2
    return np.concatenate([pre, xanes, exafs[exafs > xanes[-1] + 0.1]])


def feff_grid(edge=7122.0):
    """FEFF's default-like XANES grid: starts ~4 eV below the edge, ends ~+100 eV."""
    near = np.arange(edge - 4.0, edge + 25.0, 0.3)
    k = np.arange(2.7, 5.1, 0.07)
    far = edge + 3.81 * k**2
    return np.concatenate([near, far[far > near[-1] + 0.1]])


def measured(edge=7122.0, noise=2e-3, seed=0, element="Fe", **kw):
    e = measured_grid(edge)
    mu = model_mu(e, edge=edge, **{"offset": 0.3, "slope": -2e-4, "step": 1.2, **kw})
    mu = mu + np.random.default_rng(seed).normal(0.0, noise, e.size)
    return XANESSpectrum(e, mu, element=element, source=None)


def simulated(edge=7122.0, element="Fe", **kw):
    e = feff_grid(edge)
    return XANESSpectrum(e, model_mu(e, edge=edge, **{"white_line": 1.5, **kw}), element=element)


def true_derivative_max(edge=7122.0, **kw):
    """E0 by definition: the first local maximum of dμ/dE reaching half of the largest one."""
    e = np.arange(edge - 30, edge + 30, 0.001)
    d = np.gradient(model_mu(e, edge=edge, **kw), e)
    peaks = np.flatnonzero((d[1:-1] >= d[:-2]) & (d[1:-1] >= d[2:])) + 1
    return float(e[peaks[d[peaks] >= 0.5 * d.max()][0]])


# ------------------------------------------------------------------------------- the type


def test_spectrum_copies_and_freezes_arrays():
    e = np.linspace(7000, 7300, 50)
    mu = model_mu(e)
    s = XANESSpectrum(list(e), mu, element="fe", edge="k")
    assert s.element == "Fe" and s.edge == "K" and len(s) == 50
    assert s.energy.dtype == np.float64
    with pytest.raises(ValueError):
        s.energy[0] = 1.0
    mu[0] = 99.0
    assert s.mu[0] != 99.0


@pytest.mark.parametrize(
    ("energy", "mu", "words"),
    [
        (np.linspace(7000, 7100, 5), np.ones(5), "too few points"),
        (np.linspace(7000, 7100, 20), np.ones(19), "points"),
        (np.linspace(7000, 7100, 20), np.r_[np.ones(19), np.nan], "NaN"),
        (np.r_[np.linspace(7000, 7100, 19), np.inf], np.ones(20), "NaN/inf"),
        (np.r_[np.linspace(7000, 7100, 19), 7050.0], np.ones(20), "non-monotonic"),
        (np.r_[np.linspace(7000, 7100, 19), 7100.0], np.ones(20), "duplicated"),
        (np.ones((4, 5)), np.ones((4, 5)), "1-D"),
        (["a"] * 12, np.ones(12), "not numeric"),
    ],
)
def test_spectrum_validation(energy, mu, words):
    with pytest.raises(SpectrumError, match=words) as info:
        XANESSpectrum(energy, mu)
    assert not isinstance(info.value, SpectrumFileError)
    with pytest.raises(SpectrumFileError, match=words) as info:
        XANESSpectrum(energy, mu, source="/data/sample.dat")
    assert "/data/sample.dat" in str(info.value)


def test_spectrum_unknown_element_and_edge():
    e = np.linspace(7000, 7300, 50)
    with pytest.raises(ElementError, match="Xx") as info:
        XANESSpectrum(e, model_mu(e), element="Xx", source="a.dat")
    assert "a.dat" in str(info.value)
    with pytest.raises(ConfigurationError, match="edge"):
        XANESSpectrum(e, model_mu(e), element="Fe", edge="Q")
    assert canonical_element(" mn ") == "Mn"
    with pytest.raises(ElementError):
        canonical_element("Fe2")
    assert tabulated_edge_energy("Fe") == pytest.approx(FE_K)
    with pytest.raises(SpectrumError, match="no tabulated L3"):
        tabulated_edge_energy("H", "L3")


# ------------------------------------------------------------------------------- E0


def test_find_e0_measured_and_simulated():
    target = true_derivative_max(step=1.2)
    assert find_e0(measured()) == pytest.approx(target, abs=0.5)
    target_sim = true_derivative_max(white_line=1.5)
    assert find_e0(simulated()) == pytest.approx(target_sim, abs=0.3)


def test_find_e0_ignores_a_big_post_edge_rise_when_the_element_is_known():
    e = measured_grid()
    mu = model_mu(e) + 3.0 * (0.5 + np.arctan((e - 7190.0) / 0.3) / np.pi)
    s = XANESSpectrum(e, mu, element="Fe")
    assert abs(find_e0(s) - 7124) < 3
    assert abs(find_e0(s, search_ev=None) - 7190) < 1


def test_find_e0_search_range_missing_the_data():
    s = simulated(edge=7722.0, element="Fe").replace(source="co.dat")
    with pytest.raises(SpectrumError, match="misses the Fe K edge") as info:
        find_e0(s)
    assert "co.dat" in str(info.value)
    with pytest.raises(ConfigurationError):
        find_e0(s, smooth_ev=-1)


@FAST
@given(delta=st.floats(-60.0, 60.0), noise=st.sampled_from([0.0, 1e-3]))
def test_find_e0_moves_with_an_energy_shift(delta, noise):
    s = measured(noise=noise, element=None)
    shifted = s.replace(energy=s.energy + delta)
    assert find_e0(shifted) - find_e0(s) == pytest.approx(delta, abs=0.02)


@FAST
@given(delta=st.floats(-8.0, 8.0))
def test_find_e0_shift_with_element_search_window(delta):
    s = simulated()
    shifted = s.replace(energy=s.energy + delta)
    assert find_e0(shifted) - find_e0(s) == pytest.approx(delta, abs=0.02)


# ------------------------------------------------------------------------------- check_edge


def test_check_edge_accepts_the_right_element_with_chemical_shift():
    for edge in (7112.0, 7118.0, 7127.0, 7131.0):
        assert abs(check_edge(measured(edge=edge)) - edge) < 4
        assert abs(check_edge(simulated(edge=edge)) - edge) < 4


def test_check_edge_wrong_element_in_range():
    e = np.arange(6400.0, 7500.0, 0.5)
    s = XANESSpectrum(e, model_mu(e, edge=6545.0), element="Fe", source="/x/mn_sample.dat")
    with pytest.raises(WrongElementError) as info:
        check_edge(s)
    msg = str(info.value)
    assert "/x/mn_sample.dat" in msg and "Fe K" in msg and "7112.0" in msg
    assert "6400.0-7499.5" in msg and "Mn K" in msg


def test_check_edge_range_misses_the_edge():
    s = measured().replace(element="Zn", source="fe_as_zn.dat")
    with pytest.raises(WrongElementError, match="misses the Zn K edge") as info:
        check_edge(s)
    assert "fe_as_zn.dat" in str(info.value) and "Fe K" in str(info.value)
    kev = measured()
    kev = kev.replace(energy=kev.energy / 1000.0, source="kev.dat")
    with pytest.raises(SpectrumError, match="keV") as info:
        check_edge(kev)
    assert "kev.dat" in str(info.value) and "misses the Fe K edge" in str(info.value)
    assert not isinstance(info.value, WrongElementError)


def test_check_edge_needs_an_element():
    with pytest.raises(SpectrumError, match="element is not known"):
        check_edge(measured(element=None))


def test_check_edge_tolerates_a_glitch_if_the_edge_is_there():
    s = measured()
    mu = s.mu.copy()
    i = np.searchsorted(s.energy, 7400.0)
    mu[i:] += 3.0  # a detector jump far above the edge, larger than the edge itself
    e0 = check_edge(s.replace(mu=mu))
    assert abs(e0 - 7124) < 3


# ------------------------------------------------------------------------------- normalisation


def test_normalize_arctan_edge_gives_known_step_and_unit_post_edge():
    s = measured(noise=1e-3)
    n = normalize_edge_step(s)
    assert n.pre_kind == "line" and n.nnorm == 2
    assert n.edge_step == pytest.approx(1.2, rel=0.03)
    rel = s.energy - n.e0
    assert np.mean(n.mu_norm[(rel > 150) & (rel < 400)]) == pytest.approx(1.0, abs=0.03)
    assert np.mean(n.mu_flat[rel > 60]) == pytest.approx(1.0, abs=0.03)
    assert np.mean(n.mu_norm[rel < -30]) == pytest.approx(0.0, abs=0.01)
    assert n.pre_coefs[1] == pytest.approx(-2e-4, abs=4e-5)  # + the arctan tail


def test_normalize_simulated_uses_a_constant_pre_edge():
    s = simulated()
    n = normalize_edge_step(s)
    assert n.pre_kind == "constant" and n.pre_coefs[1] == 0.0
    assert n.nnorm in (0, 1)
    assert 0.8 < n.edge_step < 1.3
    rel = s.energy - n.e0
    assert np.mean(n.mu_flat[rel > 40]) == pytest.approx(1.0, abs=0.06)


def test_normalize_short_measured_pre_edge_with_a_pre_edge_peak():
    # Measured XANES cut 18 eV below E0 with a strong pre-edge peak: a line fitted there would
    # tilt (and once made the edge step of a real MnO2 spectrum negative); a constant is used.
    e = np.arange(7106.0, 7180.0, 0.3)
    peak = 0.25 * np.exp(-0.5 * ((e - 7114.0) / 1.0) ** 2)
    s = XANESSpectrum(e, 0.1 + model_mu(e, white_line=0.3) + peak, element="Fe")
    n = normalize_edge_step(s)
    assert n.pre_kind == "constant"
    assert n.edge_step == pytest.approx(1.0, rel=0.1)


@FAST
@given(
    scale=st.floats(0.05, 20.0),
    offset=st.floats(-5.0, 5.0),
    slope=st.floats(-1e-3, 1e-3),
)
def test_normalize_is_invariant_to_scale_and_linear_background(scale, offset, slope):
    s = measured(noise=1e-3)
    ref = normalize_edge_step(s)
    changed = s.replace(mu=scale * s.mu + offset + slope * (s.energy - 7000.0))
    out = normalize_edge_step(changed)
    assert out.e0 == pytest.approx(ref.e0, abs=1e-6)
    assert out.edge_step == pytest.approx(scale * ref.edge_step, rel=1e-6)
    np.testing.assert_allclose(out.mu_norm, ref.mu_norm, atol=1e-6)
    np.testing.assert_allclose(out.mu_flat, ref.mu_flat, atol=1e-6)


def test_normalize_errors():
    s = measured().replace(source="bad.dat")
    with pytest.raises(SpectrumError, match="outside the data") as info:
        normalize_edge_step(s, e0=9000.0)
    assert "bad.dat" in str(info.value)
    with pytest.raises(SpectrumError, match="no data below E0"):
        normalize_edge_step(s, e0=float(s.energy[0]))
    with pytest.raises(SpectrumError, match="post-edge"):
        normalize_edge_step(s, e0=float(s.energy[-3]))
    falling = s.replace(mu=-s.mu)
    with pytest.raises(SpectrumError, match="not positive"):
        normalize_edge_step(falling, e0=7124.0)
    with pytest.raises(ConfigurationError):
        normalize_edge_step(s, pre=(-30, -100))
    with pytest.raises(ConfigurationError):
        normalize_edge_step(s, nnorm=5)


def test_normalize_explicit_ranges():
    n = normalize_edge_step(measured(), e0=7124.0, pre=(-150, -40), norm=(50, 300), nnorm=1)
    assert n.pre_range == (-150.0, -40.0) and n.norm_range == (50.0, 300.0) and n.nnorm == 1
    assert n.e0 == 7124.0


# ------------------------------------------------------------------------------- window


def test_resample_window_defaults():
    s = measured()
    grid, values, coverage = resample_window(s.energy, s.mu, 7124.0)
    assert grid.size == values.size == N_POINTS == 200
    assert grid[0] == WINDOW_EV[0] and grid[-1] == WINDOW_EV[1]
    assert WINDOW_EV[1] - WINDOW_EV[0] == 56.0
    assert coverage == 1.0


def test_resample_window_extrapolates_and_reports_coverage():
    s = simulated()
    n = normalize_edge_step(s)
    grid, values, coverage = resample_window(s.energy, n.mu_flat, n.e0)
    missing = s.energy[0] - (n.e0 + WINDOW_EV[0])
    assert coverage == pytest.approx(1.0 - missing / 56.0, abs=0.01)
    below = grid + n.e0 < s.energy[0]
    assert below.any() and np.all(values[below] == n.mu_flat[0])
    with pytest.raises(SpectrumError, match="cover only") as info:
        resample_window(s.energy, n.mu_flat, n.e0, window=(-40, 16), source="sim.dat")
    assert "sim.dat" in str(info.value)
    with pytest.raises(ConfigurationError):
        resample_window(s.energy, n.mu_flat, n.e0, window=(10, -10))
    with pytest.raises(ConfigurationError):
        resample_window(s.energy, n.mu_flat, n.e0, n_points=1)


@FAST
@given(n_points=st.integers(2, 600), lo=st.floats(-15.0, -1.0), width=st.floats(20.0, 60.0))
def test_resample_window_length(n_points, lo, width):
    s = measured()
    grid, values, _ = resample_window(s.energy, s.mu, 7124.0, (lo, lo + width), n_points)
    assert grid.shape == values.shape == (n_points,)


# ------------------------------------------------------------------------------- standardise


@FAST
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=300).filter(
        lambda v: np.std(v) > 1e-3 * max(1.0, np.max(np.abs(v)))
    )
)
def test_standardize_mean_zero_std_one(values):
    z = standardize(np.array(values))
    assert abs(z.mean()) < 1e-9 and z.std() == pytest.approx(1.0, abs=1e-9)


def test_standardize_rows_and_errors():
    x = np.random.default_rng(1).normal(3.0, 2.0, (4, 50))
    z = standardize(x)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1.0)
    np.testing.assert_array_equal(standardize(x, method="none"), x)
    with pytest.raises(SpectrumError, match="constant"):
        standardize(np.ones(10))
    with pytest.raises(ConfigurationError):
        standardize(x, method="minmax")


# ------------------------------------------------------------------------------- pipeline


def test_preprocess_measured_and_simulated_line_up():
    p_meas = preprocess_xanes(measured(white_line=1.0))
    p_sim = preprocess_xanes(simulated(white_line=1.0))
    for p in (p_meas, p_sim):
        assert p.values.shape == p.grid.shape == (200,)
        assert abs(p.values.mean()) < 1e-9 and p.values.std() == pytest.approx(1.0)
        assert p.element == "Fe" and p.edge == "K" and p.standardized
    assert p_meas.coverage == 1.0 and 0.85 < p_sim.coverage < 1.0
    assert abs(p_meas.e0 - p_sim.e0) < 0.5
    assert np.corrcoef(p_meas.values, p_sim.values)[0, 1] > 0.97
    np.testing.assert_allclose(p_meas.energy, p_meas.grid + p_meas.e0)


def test_preprocess_options():
    raw = preprocess_xanes(measured(), standardize=False, e0=7124.0)
    assert raw.e0 == 7124.0 and not raw.standardized
    assert raw.values[0] == pytest.approx(0.0, abs=0.1)  # below the edge, normalised
    short = preprocess_xanes(measured(), n_points=64, window=(-5, 30))
    assert short.values.size == 64
    blurred = preprocess_xanes(simulated(), broaden_fwhm_ev=2.0, standardize=False)
    sharp = preprocess_xanes(simulated(), standardize=False)
    assert blurred.values.max() < sharp.values.max()


# ------------------------------------------------------------------------------- broaden, align


def test_broaden_lowers_the_white_line_and_keeps_the_step():
    s = simulated()
    for kind in ("gaussian", "lorentzian"):
        b = broaden(s, 2.5, kind=kind)
        assert b.energy is s.energy or np.array_equal(b.energy, s.energy)
        assert b.mu.max() < 0.9 * s.mu.max()
        assert b.mu[-1] == pytest.approx(s.mu[-1], abs=0.03)
        assert b.element == "Fe"
    assert broaden(s, 0.0) is s
    np.testing.assert_allclose(broaden(s, 0.01).mu, s.mu, atol=1e-3)
    with pytest.raises(ConfigurationError):
        broaden(s, -1.0)
    with pytest.raises(ConfigurationError):
        broaden(s, 1.0, kind="voigt")


def test_align_by_correlation_recovers_a_shift():
    a = preprocess_xanes(measured(noise=0.0), e0=7124.0)
    b = preprocess_xanes(measured(noise=0.0), e0=7124.0 - 3.7)  # b's E0 is 3.7 eV too low
    result = align_by_correlation(a, b)
    assert isinstance(result, Alignment)
    assert result.shift_ev == pytest.approx(-3.7, abs=0.05)
    assert result.correlation > 0.999
    base = align_by_correlation(a, a)
    assert base.shift_ev == pytest.approx(0.0, abs=0.02)
    s = measured(noise=0.0)
    moved = s.replace(energy=s.energy + 5.0)
    assert align_by_correlation(s, moved).shift_ev == pytest.approx(-5.0, abs=0.05)
    shift, corr = align_by_correlation((a.grid, a.values), (b.grid, b.values), max_shift_ev=10)
    assert shift == pytest.approx(-3.7, abs=0.05) and corr > 0.999


def test_align_by_correlation_errors():
    x = np.linspace(0, 10, 50)
    with pytest.raises(SpectrumError, match="overlap"):
        align_by_correlation((x, np.sin(x)), (x + 100, np.sin(x)), max_shift_ev=5)
    with pytest.raises(ConfigurationError):
        align_by_correlation("a", (x, x))
    with pytest.raises(ConfigurationError):
        align_by_correlation((x, x), (x, x), step_ev=0)


def test_spectrum_without_edge_is_refused():
    """A ramp has a positive 'edge step' by the fits but no edge: refused, not normalised."""
    e = np.linspace(8300.0, 8420.0, 200)
    ramp = XANESSpectrum(e, 1.0 + 1e-4 * (e - 8300.0), element="Ni", source="ramp.dat")
    with pytest.raises(SpectrumError, match="ramp.dat.*no absorption edge"):
        preprocess_xanes(ramp)
