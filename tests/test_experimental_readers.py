"""Tests of specfusion_lib.spectra.xanes_readers: XANES file readers and their error messages."""

from __future__ import annotations

import numpy as np
import pytest

from specfusion_lib.core.errors import (
    ConfigurationError,
    ElementError,
    InputFileError,
    SpectrumError,
    SpectrumFileError,
    WrongElementError,
)
from specfusion_lib.spectra.xanes_readers import detect_format, read_columns, read_xanes, read_xdi


def fe_spectrum(edge=7122.0, start=-60.0, stop=120.0, step=0.5):
    """Synthetic Fe K-edge μ(E): arctan step + white line + a sloped pre-edge."""
    e = np.arange(edge + start, edge + stop, step)
    x = e - edge
    mu = 0.3 - 1e-4 * x + 0.5 + np.arctan(x) / np.pi + 0.8 * 2.25 / ((x - 4.0) ** 2 + 2.25)
    return e, mu


def write_columns(path, e, mu, sep=" ", header=None, comments=("# synthetic Fe K edge",)):
    lines = list(comments)
    if header:
        lines.append(header)
    lines += [f"{a:.6f}{sep}{b:.6f}" for a, b in zip(e, mu, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def xdi_text(names, rows, extra_header=(), element="Fe", edge="K", units=None):
    units = units or {}
    head = ["# XDI/1.0 GSE/1.0"]
    for i, name in enumerate(names, start=1):
        unit = units.get(name, "")
        head.append(f"# Column.{i}: {name} {unit}".rstrip())
    if element is not None:
        head.append(f"# Element.symbol: {element}")
    if edge is not None:
        head.append(f"# Element.edge: {edge}")
    head += list(extra_header)
    head += ["# Mono.name: Si 111", "# ///", "# synthetic test file", "#----------"]
    head.append("# " + " ".join(names))
    body = [" ".join(f"{v:.6f}" for v in row) for row in rows]
    return "\n".join(head + body) + "\n"


def assert_names_file(info, path):
    assert str(path) in str(info.value), str(info.value)


# ------------------------------------------------------------------------------- good files


@pytest.mark.parametrize("sep", [" ", "\t", ",", ", "])
def test_two_column_text(tmp_path, sep):
    e, mu = fe_spectrum()
    path = write_columns(tmp_path / "fe.dat", e, mu, sep=sep)
    s = read_xanes(path, element="Fe")
    assert s.source == str(path) and s.element == "Fe" and s.edge == "K"
    np.testing.assert_allclose(s.energy, e, atol=1e-6)
    np.testing.assert_allclose(s.mu, mu, atol=1e-6)


@pytest.mark.parametrize("header", ["omega,mu", "energy,mu", "Energy (eV),mu(E)", "mu,omega"])
def test_csv_with_header(tmp_path, header):
    e, mu = fe_spectrum()
    if header.startswith("mu"):
        e, mu = mu, e  # columns written in the header's order
    path = write_columns(tmp_path / "fe.csv", e, mu, sep=",", header=header, comments=())
    s = read_xanes(path, element="fe")
    assert s.energy[0] > 7000 and s.element == "Fe"
    assert detect_format(path) == "csv"


def test_header_in_kev_and_unknown_two_column_names(tmp_path):
    e, mu = fe_spectrum()
    path = write_columns(tmp_path / "kev.txt", e / 1000.0, mu, header="energy(keV) xmu")
    s = read_xanes(path, element="Fe")
    assert s.energy[0] == pytest.approx(e[0], abs=1e-3)
    path = write_columns(tmp_path / "xy.txt", e, mu, header="x y")
    assert read_xanes(path, element="Fe").energy[0] == pytest.approx(e[0], abs=1e-3)


def test_feff_xmu_style_multi_column(tmp_path):
    e, mu = fe_spectrum(start=-4.0)
    rows = [
        f"{a:.3f} {a - 7122:.3f} 0.0 {b:.6f} {b * 0.9:.6f} 0.0" for a, b in zip(e, mu, strict=True)
    ]
    path = tmp_path / "xmu.dat"
    path.write_text("# FEFF10 xmu\n#  omega    e    k    mu    mu0     chi\n" + "\n".join(rows))
    s = read_xanes(path, element="Fe")
    np.testing.assert_allclose(s.mu, mu, atol=1e-6)
    picked = read_xanes(path, columns=(0, "mu0"))
    np.testing.assert_allclose(picked.mu, mu * 0.9, atol=1e-5)


def test_reversed_axis_is_flipped(tmp_path):
    e, mu = fe_spectrum()
    path = write_columns(tmp_path / "rev.dat", e[::-1], mu[::-1])
    s = read_xanes(path, element="Fe")
    assert np.all(np.diff(s.energy) > 0)
    np.testing.assert_allclose(s.mu, mu, atol=1e-6)


def test_no_element_means_no_check(tmp_path):
    e, mu = fe_spectrum()
    path = write_columns(tmp_path / "fe.dat", e, mu)
    s = read_xanes(path)
    assert s.element is None
    s = read_xanes(path, element="Mn", check=False)
    assert s.element == "Mn"


def test_xdi_transmission_fluorescence_and_direct_mu(tmp_path):
    e, mu = fe_spectrum()
    i0 = 1e5 * (1.0 + 0.01 * np.sin(e / 7.0))
    itrans = i0 * np.exp(-mu)
    ifluor = i0 * mu * 0.1
    rows = np.column_stack([e, i0, itrans, ifluor])
    path = tmp_path / "fe.xdi"
    path.write_text(xdi_text(["energy", "i0", "itrans", "ifluor"], rows, units={"energy": "eV"}))
    trans = read_xanes(path)
    assert trans.element == "Fe" and trans.edge == "K"
    np.testing.assert_allclose(trans.mu, mu, atol=1e-5)
    fluor = read_xanes(path, mode="fluorescence")
    np.testing.assert_allclose(fluor.mu, 0.1 * mu, rtol=1e-5)
    direct = tmp_path / "direct.xdi"
    direct.write_text(xdi_text(["energy", "mutrans"], np.column_stack([e, mu])))
    np.testing.assert_allclose(read_xdi(direct, element="Fe").mu, mu, atol=1e-6)
    assert detect_format(direct) == "xdi"


def test_xdi_kev_and_angle_columns(tmp_path):
    e, mu = fe_spectrum()
    kev = tmp_path / "kev.xdi"
    kev.write_text(
        xdi_text(["energy", "mutrans"], np.column_stack([e / 1000, mu]), units={"energy": "keV"})
    )
    assert read_xanes(kev).energy[0] == pytest.approx(e[0], abs=1e-3)
    d = 3.13551  # Si(111)
    theta = np.degrees(np.arcsin(12398.419843320026 / (2 * d * e)))
    ang = tmp_path / "angle.xdi"
    ang.write_text(
        xdi_text(
            ["angle", "mutrans"],
            np.column_stack([theta, mu]),
            units={"angle": "degrees"},
            extra_header=[f"# Mono.d_spacing: {d}"],
        )
    )
    s = read_xanes(ang)  # angle decreases with energy: the reversed axis is flipped
    np.testing.assert_allclose(s.energy, e, atol=1e-3)


def test_xdi_label_line_without_column_fields(tmp_path):
    e, mu = fe_spectrum()
    body = "\n".join(f"{a} {b}" for a, b in zip(e, mu, strict=True))
    path = tmp_path / "labels.xdi"
    path.write_text(f"# XDI/1.0\n# Element.symbol: Fe\n#----\n# energy mu\n{body}\n")
    assert read_xanes(path).element == "Fe"


# ------------------------------------------------------------------------------- bad files


def bad_cases(tmp_path):
    """(name, file content or None, read kwargs, exception, words in the message)."""
    e, mu = fe_spectrum()
    good = "\n".join(f"{a:.2f} {b:.5f}" for a, b in zip(e, mu, strict=True))
    rows = good.splitlines()
    xdi_rows = np.column_stack([e, 1e5 * np.ones_like(e), 1e5 * np.exp(-mu)])
    bad_i0 = xdi_rows.copy()
    bad_i0[7, 1] = 0.0
    return [
        ("missing.dat", None, {}, SpectrumFileError, "file not found"),
        ("empty.dat", "", {}, SpectrumFileError, "empty"),
        ("blank.dat", "   \n\n  \n", {}, SpectrumFileError, "empty"),
        ("comments.dat", "# only a comment\n# another\n", {}, SpectrumFileError, "no numeric"),
        ("header_only.csv", "omega,mu\n", {}, SpectrumFileError, "no numeric"),
        ("binary.dat", "\x00\x01\x02abc", {}, SpectrumFileError, "binary"),
        ("one_col.dat", "\n".join(f"{a}" for a in e), {}, SpectrumFileError, "missing columns"),
        (
            "no_mu.csv",
            "omega,foo,bar\n" + "\n".join(f"{a},1,2" for a in e),
            {},
            SpectrumFileError,
            "missing columns",
        ),
        (
            "no_energy.csv",
            "x,mu,bar\n" + "\n".join(f"{a},1,2" for a in e),
            {},
            SpectrumFileError,
            "no energy column",
        ),
        (
            "three_cols.dat",
            "\n".join(f"{a} 1 2" for a in e),
            {},
            SpectrumFileError,
            "missing columns",
        ),
        (
            "text.dat",
            "\n".join(rows[:20] + ["7150.0 abc"] + rows[20:]),
            {},
            SpectrumFileError,
            "line 21: non-numeric value 'abc'",
        ),
        (
            "empty_field.csv",
            "omega,mu\n" + "\n".join([r.replace(" ", ",") for r in rows[:5]] + ["7100.0,"]),
            {},
            SpectrumFileError,
            "non-numeric",
        ),
        ("nan.dat", "\n".join(rows[:9] + ["7120.1 nan"] + rows[9:]), {}, SpectrumFileError, "NaN"),
        ("inf.dat", "\n".join(rows[:9] + ["inf 1.0"] + rows[9:]), {}, SpectrumFileError, "line 10"),
        (
            "ragged.dat",
            "\n".join(rows[:5] + ["7100.0 1.0 3.0"] + rows[5:]),
            {},
            SpectrumFileError,
            "line 6: 3 column(s)",
        ),
        (
            "unsorted.dat",
            "\n".join(rows[:30] + [rows[40]] + rows[30:40] + rows[41:]),
            {},
            SpectrumFileError,
            "non-monotonic",
        ),
        (
            "dup.dat",
            "\n".join(rows[:30] + [rows[29]] + rows[30:]),
            {},
            SpectrumFileError,
            "duplicated energies",
        ),
        ("short.dat", "\n".join(rows[:6]), {}, SpectrumFileError, "too few points"),
        (
            "header_mismatch.dat",
            "energy mu extra\n" + good,
            {},
            SpectrumFileError,
            "header names 3",
        ),
        ("fe.dat", good, {"element": "Xx"}, ElementError, "unknown element symbol 'Xx'"),
        ("fe_as_mn.dat", good, {"element": "Mn"}, SpectrumError, "misses the Mn K edge"),
        ("fe_as_co.dat", good, {"element": "Co"}, WrongElementError, "Fe K 7112.0"),
        (
            "not_xdi.xdi",
            good,
            {},
            SpectrumFileError,
            "not an XDI file",
        ),
        (
            "nocols.xdi",
            "# XDI/1.0\n# Element.symbol: Fe\n" + "\n".join(f"{a} 1 2" for a in e),
            {},
            SpectrumFileError,
            "names no columns",
        ),
        (
            "badcol.xdi",
            "# XDI/1.0\n# Column.1: energy\n# Column.5: mu\n" + good,
            {},
            SpectrumFileError,
            "Column.5",
        ),
        (
            "i0.xdi",
            xdi_text(["energy", "i0", "itrans"], bad_i0),
            {},
            SpectrumFileError,
            "line 19: i0 and itrans must be positive",
        ),
        (
            "nofluor.xdi",
            xdi_text(["energy", "i0", "itrans"], xdi_rows),
            {"mode": "fluorescence"},
            SpectrumFileError,
            "no fluorescence data",
        ),
        (
            "declared_mn.xdi",
            xdi_text(["energy", "i0", "itrans"], xdi_rows, element="Mn"),
            {"element": "Fe"},
            WrongElementError,
            "declares element Mn",
        ),
        (
            "declared_xx.xdi",
            xdi_text(["energy", "i0", "itrans"], xdi_rows, element="Qq"),
            {},
            ElementError,
            "unknown element symbol 'Qq'",
        ),
        (
            "edge.xdi",
            xdi_text(["energy", "i0", "itrans"], xdi_rows, edge="Z9"),
            {},
            SpectrumFileError,
            "unknown absorption edge",
        ),
        (
            "edge_conflict.xdi",
            xdi_text(["energy", "i0", "itrans"], xdi_rows, edge="L3"),
            {"edge": "K"},
            SpectrumFileError,
            "declares the L3 edge",
        ),
        (
            "angle.xdi",
            xdi_text(["angle", "mutrans"], xdi_rows[:, :2]),
            {},
            SpectrumFileError,
            "Mono.d_spacing",
        ),
        (
            "wrong_xdi.xdi",
            xdi_text(["energy", "i0", "itrans"], xdi_rows, element="Ni"),
            {},
            WrongElementError,
            "Ni K",
        ),
    ]


def test_every_bad_file_names_the_file_and_the_problem(tmp_path):
    for name, content, kwargs, exc, words in bad_cases(tmp_path):
        path = tmp_path / name
        if content is not None:
            if content.startswith("\x00"):
                path.write_bytes(content.encode())
            else:
                path.write_text(content)
        with pytest.raises(exc) as info:
            read_xanes(path, **kwargs)
        message = str(info.value)
        assert str(path) in message, (name, message)
        assert words in message, (name, message)


def test_bad_input_errors_share_the_hierarchy(tmp_path):
    path = tmp_path / "missing.csv"
    with pytest.raises(InputFileError):
        read_xanes(path)
    with pytest.raises(ValueError):  # InputFileError is also a ValueError
        read_columns(path)


def test_directory_and_options(tmp_path):
    with pytest.raises(SpectrumFileError, match="directory") as info:
        read_xanes(tmp_path)
    assert_names_file(info, tmp_path)
    e, mu = fe_spectrum()
    path = write_columns(tmp_path / "fe.dat", e, mu)
    with pytest.raises(ConfigurationError):
        read_xanes(path, fmt="json")
    with pytest.raises(ConfigurationError):
        read_xanes(path, mode="electron-yield")
    with pytest.raises(ConfigurationError):
        read_xanes(path, edge="X1")
    with pytest.raises(SpectrumFileError, match="column 7") as info:
        read_xanes(path, columns=(0, 7))
    assert_names_file(info, path)
    with pytest.raises(SpectrumFileError, match="no column named") as info:
        read_xanes(path, columns=("energy", "mu"))
    assert_names_file(info, path)


def test_readers_write_nothing(tmp_path):
    e, mu = fe_spectrum()
    path = write_columns(tmp_path / "fe.dat", e, mu)
    before = sorted(p.name for p in tmp_path.iterdir())
    read_xanes(path, element="Fe")
    with pytest.raises(SpectrumError):
        read_xanes(path, element="Co")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
