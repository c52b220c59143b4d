"""PXRD simulation, Voigt broadening, augmentation, wavelength conversion and file reading."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.analysis.diffraction.xrd import WAVELENGTHS
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError, SpectrumFileError
from specfusion_lib.spectra import pxrd

GRID = pxrd.two_theta_grid()
CU = WAVELENGTHS["CuKa"]


@cache
def mno() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.445), ["Mn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


@cache
def mno_pattern() -> pxrd.PXRDPattern:
    return pxrd.simulate_pattern(mno())


def _bragg_two_theta(d: float, wavelength: float = CU) -> float:
    return float(2 * np.degrees(np.arcsin(wavelength / (2 * d))))


# --------------------------------------------------------------------------- grid, peaks


def test_default_grid():
    assert GRID.size == 3501
    assert (GRID[0], GRID[-1]) == (10.0, 80.0)
    np.testing.assert_allclose(np.diff(GRID), 0.02)
    with pytest.raises(ValueError):
        pxrd.two_theta_grid((10.0, 80.01), 0.02)


def test_rocksalt_peaks_follow_bragg_law():
    peaks = pxrd.simulate_peaks(mno())
    a = 4.445
    # fcc: h, k, l all even or all odd; 10-80° with Cu Kα: 111, 200, 220, 311, 222
    assert [fam[0] for fam in peaks.hkls] == [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2)]
    for (hkl,), tt, d in zip(peaks.hkls, peaks.two_theta, peaks.d_spacing, strict=True):
        d_expected = a / np.sqrt(sum(i * i for i in hkl))
        assert d == pytest.approx(d_expected, rel=1e-9)
        assert tt == pytest.approx(_bragg_two_theta(d_expected), abs=1e-6)
    assert peaks.intensity.max() == 1.0
    assert int(np.argmax(peaks.intensity)) == 1  # (200) strongest in rocksalt MnO


def test_simulated_pattern_normalised_with_peak_at_200():
    pat = mno_pattern()
    assert pat.intensity.max() == pytest.approx(1.0)
    assert pat.two_theta[np.argmax(pat.intensity)] == pytest.approx(
        _bragg_two_theta(4.445 / 2), abs=0.02
    )
    assert pat.wavelength == "CuKa" and pat.metadata["formula"] == "MnO"
    assert pat.metadata["n_peaks"] == 5
    assert not pat.intensity.flags.writeable


def test_angle_dependent_widths():
    pat = pxrd.simulate_pattern(mno(), caglioti=(0.01, -0.005, 0.005), crystallite_size_nm=50)
    assert pat.intensity.max() == pytest.approx(1.0)
    assert pat.metadata["caglioti_uvw"] == [0.01, -0.005, 0.005]
    np.testing.assert_allclose(pxrd.caglioti_fwhm([20.0, 60.0], 0, 0, 0.01), 0.1)
    w = pxrd.scherrer_fwhm([30.0, 70.0], 20.0)
    assert w[1] > w[0] > 0
    # Scherrer: K λ / (L cos θ) in radians
    expected = np.degrees(0.9 * CU / 10 / (20.0 * np.cos(np.radians(15.0))))
    assert w[0] == pytest.approx(expected)


def test_empty_range_gives_zero_pattern():
    pat = pxrd.simulate_pattern(mno(), grid=np.linspace(10, 20, 501))
    assert pat.metadata["n_peaks"] == 0
    assert not pat.intensity.any()


# --------------------------------------------------------------------------- Voigt


@pytest.mark.parametrize(("fg", "fl"), [(0.2, 0.0), (0.0, 0.2), (0.1, 0.1)])
def test_voigt_single_peak_position_and_normalisation(fg, fl):
    y = pxrd.voigt_profile_pattern([45.0], [3.0], GRID, fg, fl)
    assert y.max() == pytest.approx(1.0)
    assert GRID[np.argmax(y)] == pytest.approx(45.0)
    i = int(np.argmax(y))
    np.testing.assert_allclose(y[i - 50 : i], y[i + 50 : i : -1], atol=1e-12)  # symmetric


def test_voigt_widths_and_area():
    fine = np.linspace(40, 50, 100001)
    y = pxrd.voigt_profile_pattern([45.0], [2.0], fine, 0.3, 0.0, normalize=False)
    above = fine[y >= y.max() / 2]
    assert above[-1] - above[0] == pytest.approx(0.3, abs=1e-3)  # Gaussian FWHM
    assert np.trapezoid(y, fine) == pytest.approx(2.0, rel=1e-6)  # integrated intensity
    y = pxrd.voigt_profile_pattern([45.0], [1.0], fine, 0.0, 0.3, normalize=False)
    above = fine[y >= y.max() / 2]
    assert above[-1] - above[0] == pytest.approx(0.3, abs=1e-3)  # Lorentzian FWHM


def test_voigt_per_peak_widths_and_errors():
    y = pxrd.voigt_profile_pattern([30.0, 60.0], [1.0, 1.0], GRID, [0.1, 0.5], 0.0, normalize=False)
    assert y[np.argmin(abs(GRID - 30))] > 3 * y[np.argmin(abs(GRID - 60))]
    with pytest.raises(ValueError):
        pxrd.voigt_profile_pattern([30.0], [1.0], GRID, 0.0, 0.0)
    with pytest.raises(ValueError):
        pxrd.voigt_profile_pattern([30.0, 40.0], [1.0], GRID)
    assert not pxrd.voigt_profile_pattern([], [], GRID).any()


@pytest.mark.parametrize(("fg", "fl"), [(0.1, 0.05), (0.5, 0.3), (0.02, 0.2), (0.1, 0.0)])
def test_voigt_windowed_sum_equals_the_direct_sum(fg, fl):
    """Exact Voigt near each peak and the analytic tail beyond give the full Faddeeva sum,
    peaks just outside the grid and unsorted ones included, per-peak widths too."""
    from scipy.special import voigt_profile

    rng = np.random.default_rng(3)
    pos, amp = rng.uniform(8.0, 82.0, 120), rng.uniform(0.0, 1.0, 120)
    widths = rng.uniform(0.5, 1.5, 120)
    sigma = fg * widths / (2 * np.sqrt(2 * np.log(2)))
    direct = amp @ voigt_profile(GRID[None] - pos[:, None], sigma[:, None],
                                 fl * widths[:, None] / 2)
    y = pxrd.voigt_profile_pattern(pos, amp, GRID, fg * widths, fl * widths, normalize=False)
    assert np.max(np.abs(y - direct)) < 1e-6 * direct.max()
    # a grid that is not increasing takes the direct route
    flipped = pxrd.voigt_profile_pattern(pos, amp, GRID[::-1], fg * widths, fl * widths,
                                         normalize=False)
    np.testing.assert_allclose(flipped[::-1], direct, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- augmentation


def test_augmentation_reproducible_and_seed_dependent():
    batch = np.stack([mno_pattern().intensity] * 4)
    a = pxrd.augment_pattern(batch, np.random.default_rng(7))
    b = pxrd.augment_pattern(batch, np.random.default_rng(7))
    c = pxrd.augment_pattern(batch, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == batch.shape
    assert not np.allclose(a[0], a[1])  # each row gets its own perturbation
    np.testing.assert_allclose(a.max(axis=1), 1.0)


def test_augmentation_input_kinds():
    pat = mno_pattern()
    out = pxrd.augment_pattern(pat, np.random.default_rng(0))
    assert isinstance(out, pxrd.PXRDPattern) and out.metadata["augmented"]
    one = pxrd.augment_pattern(pat.intensity, np.random.default_rng(0))
    assert one.shape == pat.intensity.shape
    np.testing.assert_array_equal(one, out.intensity)
    with pytest.raises(ValueError, match="does not match"):
        pxrd.augment_pattern(np.ones(100), np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        pxrd.augment_pattern(pat, np.random.default_rng(0), noise_level=-0.1)


def test_augmentation_identity_when_all_amplitudes_zero():
    y = mno_pattern().intensity * 5.0
    out = pxrd.augment_pattern(
        y,
        np.random.default_rng(0),
        noise_level=0.0,
        background=0.0,
        zero_shift_deg=0.0,
        intensity_jitter=0.0,
    )
    np.testing.assert_allclose(out, y / 5.0)


def test_noise_level_is_relative_std():
    y = np.zeros((200, GRID.size))
    y[:, 100] = 1.0
    out = pxrd.augment_pattern(
        y,
        np.random.default_rng(1),
        noise_level=0.05,
        background=0.0,
        zero_shift_deg=0.0,
        intensity_jitter=0.0,
        normalize=False,
    )
    assert np.std(out - y) == pytest.approx(0.05, rel=0.01)


def test_background_is_positive_and_bounded():
    y = mno_pattern().intensity
    out = pxrd.augment_pattern(
        np.stack([y] * 20),
        np.random.default_rng(3),
        noise_level=0.0,
        background=0.2,
        zero_shift_deg=0.0,
        intensity_jitter=0.0,
        normalize=False,
    )
    bg = out - y
    assert (bg >= -1e-12).all() and (bg <= 0.2 + 1e-12).all()
    assert bg.max() > 0


def test_augment_peaks():
    peaks = pxrd.simulate_peaks(mno())
    a = pxrd.augment_peaks(
        peaks, np.random.default_rng(0), intensity_jitter=0.3, zero_shift_deg=0.1
    )
    b = pxrd.augment_peaks(
        peaks, np.random.default_rng(0), intensity_jitter=0.3, zero_shift_deg=0.1
    )
    np.testing.assert_array_equal(a.intensity, b.intensity)
    assert a.intensity.max() == pytest.approx(1.0)
    assert not np.allclose(a.intensity, peaks.intensity)
    shift = a.two_theta - peaks.two_theta
    assert np.ptp(shift) == pytest.approx(0.0, abs=1e-12) and abs(shift[0]) <= 0.1
    assert pxrd.pattern_from_peaks(a).intensity.max() == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-3.0, max_value=3.0, allow_nan=False))
def test_zero_shift_moves_argmax_by_delta(delta):
    y = pxrd.voigt_profile_pattern([45.0], [1.0], GRID, 0.15, 0.05)
    shifted = pxrd.shift_pattern(y, GRID, delta)
    assert GRID[np.argmax(shifted)] == pytest.approx(45.0 + delta, abs=0.02 / 2 + 1e-9)
    back = pxrd.shift_pattern(shifted, GRID, -delta)
    interior = slice(200, -200)
    np.testing.assert_allclose(back[interior], y[interior], atol=0.05)


# --------------------------------------------------------------------------- wavelength


def test_wavelength_names_and_numbers():
    assert pxrd.wavelength_angstrom("CuKa") == CU
    assert pxrd.wavelength_angstrom(0.7) == 0.7
    assert pxrd.wavelength_angstrom("1.5406") == 1.5406
    for bad in ("CuKalpha", -1.0, 0.0):
        with pytest.raises(ConfigurationError):
            pxrd.wavelength_angstrom(bad)


def test_conversion_keeps_d_spacing():
    tt_mo = pxrd.convert_two_theta(40.59, "CuKa", "MoKa")
    d_cu = CU / (2 * np.sin(np.radians(40.59 / 2)))
    d_mo = WAVELENGTHS["MoKa"] / (2 * np.sin(np.radians(tt_mo / 2)))
    assert d_mo == pytest.approx(d_cu)
    assert np.isnan(pxrd.convert_two_theta(150.0, "MoKa", "CuKa"))  # not observable


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=1.0, max_value=170.0),
    st.sampled_from(["MoKa", "AgKa", "CoKa", "FeKa", "CrKa"]),
)
def test_wavelength_round_trip(two_theta, other):
    there = pxrd.convert_two_theta(two_theta, "CuKa", other)
    if np.isnan(there):  # longer wavelength: reflection may not be observable there
        assert WAVELENGTHS[other] > CU
        return
    assert pxrd.convert_two_theta(there, other, "CuKa") == pytest.approx(two_theta, abs=1e-9)


def test_pattern_round_trip_cu_mo_cu():
    y = pxrd.voigt_profile_pattern([25.0, 41.0, 66.0], [1.0, 0.5, 0.7], GRID, 0.4, 0.1)
    pat = pxrd.PXRDPattern(GRID, y, wavelength="CuKa", source="test")
    mo_grid = pxrd.two_theta_grid((2.0, 40.0), 0.005)
    mo = pxrd.to_grid(pat, mo_grid, target_wavelength="MoKa")
    assert mo.wavelength == "MoKa" and mo.metadata["source_wavelength"] == "CuKa"
    back = pxrd.to_grid(mo, GRID, target_wavelength="CuKa")
    np.testing.assert_allclose(back.intensity, y, atol=2e-3)


def test_mo_simulation_on_cu_grid_matches_cu_simulation():
    mo = pxrd.simulate_pattern(mno(), pxrd.two_theta_grid((3.0, 40.0), 0.01), wavelength="MoKa")
    on_cu = pxrd.to_grid(mo)
    cu = mno_pattern()
    assert on_cu.two_theta[np.argmax(on_cu.intensity)] == pytest.approx(
        cu.two_theta[np.argmax(cu.intensity)], abs=0.05
    )


def test_to_grid_needs_a_wavelength():
    pat = pxrd.PXRDPattern(GRID, mno_pattern().intensity, wavelength=None, source="x.xy")
    with pytest.raises(ConfigurationError, match=r"x\.xy.*wavelength"):
        pxrd.to_grid(pat)
    assert pxrd.to_grid(pat, source_wavelength="CuKa").metadata["coverage"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- files


def test_xy_round_trip(tmp_path):
    pat = mno_pattern()
    path = pat.to_xy(tmp_path / "mno.xy")
    assert [p.name for p in tmp_path.iterdir()] == ["mno.xy"]  # no temporary left behind
    back = pxrd.read_pattern(path)
    assert back.wavelength == "CuKa"
    assert back.source == str(path)
    np.testing.assert_allclose(back.two_theta, pat.two_theta, atol=1e-6)
    np.testing.assert_allclose(back.intensity, pat.intensity, rtol=1e-7, atol=1e-12)
    assert pxrd.PXRDPattern.from_xy(path, wavelength=1.5406).wavelength == 1.5406


def _write(path: Path, x: np.ndarray, y: np.ndarray, sep: str = " ", header: str = "") -> Path:
    lines = [header] if header else []
    lines += [f"{a:.4f}{sep}{b:.6f}" for a, b in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_csv_with_header_and_numeric_wavelength(tmp_path):
    x = np.linspace(20, 60, 401)
    y = np.exp(-((x - 40) ** 2))
    path = _write(
        tmp_path / "p.csv", x, y, sep=",", header="# wavelength = 0.7093\ntwo_theta,counts"
    )
    pat = pxrd.read_pattern(path)
    assert pat.wavelength == pytest.approx(0.7093)
    assert len(pat) == 401
    assert "two_theta,counts" in pat.metadata["comments"]
    # semicolons and a third column
    text = "\n".join(f"{a:.3f};{b:.4f};0.1" for a, b in zip(x, y, strict=True))
    (tmp_path / "q.txt").write_text(text)
    assert len(pxrd.read_pattern(tmp_path / "q.txt", wavelength="CuKa")) == 401


def test_coverage_too_small_names_file(tmp_path):
    x = np.linspace(10, 30, 1001)  # 2/7 of the 10-80° grid
    path = _write(tmp_path / "short.xy", x, np.ones_like(x))
    pat = pxrd.read_pattern(path, wavelength="CuKa")
    with pytest.raises(SpectrumFileError, match=r"short\.xy.*29%"):
        pxrd.to_grid(pat)
    assert pxrd.to_grid(pat, min_coverage=0.2).metadata["coverage"] == pytest.approx(20 / 70)


_X = np.linspace(10, 80, 200)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "no numeric data"),
        ("# only a comment\n", "no numeric data"),
        ("\n".join(f"{v:.3f}" for v in _X), "expected two columns"),
        (
            "\n".join(f"{v:.3f},1.0" if i != 50 else f"{v:.3f}," for i, v in enumerate(_X)),
            "line 51: expected two columns",
        ),
        (
            "\n".join(f"{v:.3f} {'nan' if i == 10 else 1.0}" for i, v in enumerate(_X)),
            "line 11: NaN",
        ),
        ("\n".join(f"{v:.3f} 1.0" for v in _X[::-1]), "not strictly increasing"),
        ("\n".join(f"{v:.3f} 1.0" for v in np.r_[_X[:20], _X[19:]]), "repeated"),
        ("\n".join(f"{v:.3f} 1.0" for v in _X[:50]), "only 50 data points"),
        ("\n".join(f"{v:.3f} 1.0" for v in _X) + "\nend of data\n", "non-numeric"),
        ("\n".join(f"{v:.3f} 1.0" for v in np.linspace(100, 190, 200)), r"inside \(0°, 180°\)"),
        ("# wavelength: XyKa\n" + "\n".join(f"{v:.3f} 1.0" for v in _X), "bad wavelength"),
    ],
)
def test_bad_files_raise_with_path(tmp_path, content, match):
    path = tmp_path / "bad_pattern.xy"
    path.write_text(content)
    with pytest.raises(SpectrumFileError, match=match) as err:
        pxrd.read_pattern(path)
    assert str(path) in str(err.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(SpectrumFileError, match="not found") as err:
        pxrd.read_pattern(tmp_path / "nope.xy")
    assert "nope.xy" in str(err.value)
    binary = tmp_path / "b.xy"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(SpectrumFileError, match="not a text file"):
        pxrd.read_pattern(binary)


def test_pattern_validation():
    with pytest.raises(ValueError):
        pxrd.PXRDPattern(GRID, np.ones(3))
    pat = pxrd.PXRDPattern([1.0, 2.0], [3.0, 4.0], metadata={"a": 1})
    assert pat.wavelength_angstrom == CU and len(pat) == 2
