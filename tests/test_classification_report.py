"""Tests of specfusion_lib.training.reports: Wilson intervals, top-k, accuracy tables, noise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.training.reports import (
    TABLE_COLUMNS,
    accuracy_table,
    headline,
    noise_curve,
    top_k_correct,
    wilson_interval,
    wilson_intervals,
)

# --------------------------------------------------------------------------- Wilson interval


@pytest.mark.parametrize(("k", "n", "expected"), [
    (8, 10, (0.4902, 0.9433)),
    (5, 10, (0.2366, 0.7634)),
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (1, 1, (0.2065, 1.0)),
])
def test_wilson_interval_hand_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_exact_bounds_and_empty():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


def test_wilson_interval_confidence_and_symmetry():
    narrow, wide = wilson_interval(8, 10, 0.90), wilson_interval(8, 10, 0.99)
    mid = wilson_interval(8, 10)
    assert wide[0] < mid[0] < narrow[0] < 0.8 < narrow[1] < mid[1] < wide[1]
    for n in (1, 7, 30):
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0
            mirror = wilson_interval(n - k, n)
            assert low == pytest.approx(1.0 - mirror[1]) and high == pytest.approx(1 - mirror[0])


def test_wilson_intervals_vectorised_matches_scalar_and_broadcasts():
    k = np.array([[0, 3], [7, 0]])
    n = np.array([[10, 4], [9, 0]])
    low, high = wilson_intervals(k, n)
    assert low.shape == high.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            expected = wilson_interval(int(k[i, j]), int(n[i, j]))
            np.testing.assert_allclose([low[i, j], high[i, j]], expected, equal_nan=True)
    low, high = wilson_intervals([0, 5, 10], 10)
    assert low.shape == (3,) and low[0] == 0.0 and high[2] == 1.0


@pytest.mark.parametrize(("k", "n", "confidence"), [
    (11, 10, 0.95), (-1, 10, 0.95), (1, -1, 0.95), (3, 10, 1.0), (3, 10, 0.0),
    (float("nan"), 10, 0.95),
])
def test_wilson_interval_invalid_input_raises(k, n, confidence):
    with pytest.raises(ConfigurationError):
        wilson_interval(k, n, confidence)


def test_wilson_intervals_invalid_input_raises():
    with pytest.raises(ConfigurationError):
        wilson_intervals([1, 5], [4, 4, 4])
    with pytest.raises(ConfigurationError):
        wilson_intervals([1, 5], [4, 4])
    with pytest.raises(ConfigurationError):
        wilson_interval(np.array([1, 2]), np.array([3, 3]))


# --------------------------------------------------------------------------- top-k


def test_top_k_ordering_on_random_probabilities():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.ones(7), size=200)
    y = rng.integers(0, 7, size=200)
    top1, top2, top3 = (top_k_correct(prob, y, k) for k in (1, 2, 3))
    assert top1.dtype == bool and top1.shape == (200,)
    np.testing.assert_array_equal(top1, prob.argmax(axis=1) == y)
    assert np.all(top2 >= top1) and np.all(top3 >= top2)
    assert top2.sum() > top1.sum()
    assert top_k_correct(prob, y, 7).all() and top_k_correct(prob, y, 10).all()


def test_top_k_hand_case_and_ties():
    prob = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    y = np.array([1, 1, 1])
    assert top_k_correct(prob, y, 1).tolist() == [False, False, False]  # tie -> class 0
    assert top_k_correct(prob, y, 2).tolist() == [True, True, True]
    assert top_k_correct(np.zeros((0, 3)), np.zeros(0, int), 2).shape == (0,)


@pytest.mark.parametrize(("prob", "y", "k"), [
    (np.full((2, 3), 1 / 3), [0, 1], 0),
    (np.full((2, 3), 1 / 3), [0, 1], 1.5),
    (np.full((2, 3), 1 / 3), [0, 3], 1),
    (np.full((2, 3), 1 / 3), [0, -1], 1),
    (np.full((2, 3), 1 / 3), [0, 1, 2], 1),
    (np.full(3, 1 / 3), [0, 1, 2], 1),
    (np.full((2, 3), 1 / 3), [0.0, 0.5], 1),
])
def test_top_k_invalid_input_raises(prob, y, k):
    with pytest.raises(ConfigurationError):
        top_k_correct(prob, y, k)


# --------------------------------------------------------------------------- accuracy table

CLASSES = ["cubic", "tetragonal", "monoclinic", "triclinic"]  # monoclinic: no sample
#: Nine samples: their probabilities, labels, and whether their family was seen in training.
PROB = np.array([
    [0.70, 0.10, 0.10, 0.10],  # cubic: top-1
    [0.60, 0.20, 0.10, 0.10],  # cubic: top-1
    [0.30, 0.50, 0.10, 0.10],  # cubic: top-2 only
    [0.10, 0.80, 0.05, 0.05],  # tetragonal: top-1
    [0.30, 0.10, 0.20, 0.40],  # tetragonal: wrong (triclinic, cubic)
    [0.10, 0.10, 0.10, 0.70],  # triclinic: top-1
    [0.50, 0.10, 0.05, 0.35],  # triclinic: top-2 only
    [0.30, 0.40, 0.10, 0.20],  # triclinic: wrong (tetragonal, cubic)
    [0.90, 0.05, 0.03, 0.02],  # cubic: top-1
])
Y = np.array([0, 0, 0, 1, 1, 3, 3, 3, 0])
SEEN = np.array([True, True, False, True, False, True, False, True, False])


def _row(table: pd.DataFrame, group: str, cls: str) -> pd.Series:
    part = table[(table["group"] == group) & (table["crystal_system"] == cls)]
    assert len(part) == 1, (group, cls)
    return part.iloc[0]


@pytest.fixture
def table() -> pd.DataFrame:
    return accuracy_table(PROB, Y, CLASSES,
                          groups={"seen families": SEEN, "unseen families": ~SEEN},
                          split="real check", variant="clean", model="CNN-Transformer")


def test_accuracy_table_layout(table):
    assert list(table.columns) == ["split", "variant", "model", *TABLE_COLUMNS]
    assert len(table) == 3 * (len(CLASSES) + 2)
    assert list(table["group"].unique()) == ["all", "seen families", "unseen families"]
    assert list(table["crystal_system"][:6]) == [*CLASSES, "overall", "balanced"]
    assert (table["split"] == "real check").all() and (table["model"] == "CNN-Transformer").all()


@pytest.mark.parametrize(("group", "cls", "n", "top1", "top2"), [
    ("all", "cubic", 4, 3, 4),
    ("all", "tetragonal", 2, 1, 1),
    ("all", "triclinic", 3, 1, 2),
    ("all", "overall", 9, 5, 7),
    ("seen families", "cubic", 2, 2, 2),
    ("seen families", "tetragonal", 1, 1, 1),
    ("seen families", "triclinic", 2, 1, 1),
    ("seen families", "overall", 5, 4, 4),
    ("unseen families", "cubic", 2, 1, 2),
    ("unseen families", "tetragonal", 1, 0, 0),
    ("unseen families", "triclinic", 1, 0, 1),
    ("unseen families", "overall", 4, 1, 3),
])
def test_accuracy_table_exact_counts_and_intervals(table, group, cls, n, top1, top2):
    row = _row(table, group, cls)
    assert row["n"] == n
    assert row["top1"] == pytest.approx(top1 / n) and row["top2"] == pytest.approx(top2 / n)
    assert (row["top1_ci_low"], row["top1_ci_high"]) == pytest.approx(wilson_interval(top1, n))
    assert (row["top2_ci_low"], row["top2_ci_high"]) == pytest.approx(wilson_interval(top2, n))


def test_accuracy_table_empty_class_and_balanced(table):
    for group in ("all", "seen families", "unseen families"):
        empty = _row(table, group, "monoclinic")
        assert empty["n"] == 0
        assert empty[list(TABLE_COLUMNS[3:])].isna().all()
    balanced = _row(table, "all", "balanced")
    assert balanced["n"] == 9
    assert balanced["top1"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 3) / 3)  # monoclinic left out
    assert balanced["top2"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert np.isnan(balanced["top1_ci_low"]) and np.isnan(balanced["top2_ci_high"])
    assert _row(table, "unseen families", "balanced")["top1"] == pytest.approx(1 / 6)


def test_accuracy_table_without_groups_and_confidence():
    plain = accuracy_table(PROB, Y, CLASSES)
    assert list(plain.columns) == list(TABLE_COLUMNS)
    assert set(plain["group"]) == {"all"} and len(plain) == len(CLASSES) + 2
    wide = accuracy_table(PROB, Y, CLASSES, confidence=0.99)
    o95, o99 = _row(plain, "all", "overall"), _row(wide, "all", "overall")
    assert o99["top1"] == o95["top1"]
    assert o99["top1_ci_low"] < o95["top1_ci_low"] and o99["top1_ci_high"] > o95["top1_ci_high"]


def test_accuracy_table_invalid_input_raises():
    with pytest.raises(ConfigurationError):
        accuracy_table(PROB, Y, CLASSES[:3])
    with pytest.raises(ConfigurationError):
        accuracy_table(PROB, Y[:5], CLASSES)
    with pytest.raises(ConfigurationError):
        accuracy_table(PROB, Y, CLASSES, groups={"seen": SEEN[:4]})
    with pytest.raises(ConfigurationError):
        accuracy_table(PROB, Y, CLASSES, groups={"all": SEEN})
    with pytest.raises(ConfigurationError):
        accuracy_table(PROB, Y, CLASSES, group="clash")
    with pytest.raises(ConfigurationError):
        accuracy_table(PROB, Y, CLASSES, confidence=1.5)


def test_headline(table):
    top = headline(table)
    assert top["top1"] == pytest.approx(5 / 9) and top["top2"] == pytest.approx(7 / 9)
    assert (top["top1_ci_low"], top["top1_ci_high"]) == pytest.approx(wilson_interval(5, 9))
    assert top["balanced"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 3) / 3)
    assert top["min_class"] == "triclinic" and top["min_class_top1"] == pytest.approx(1 / 3)
    unseen = headline(table, "unseen families")
    assert unseen["min_class"] == "tetragonal" and unseen["min_class_top1"] == 0.0
    assert unseen["top1"] == pytest.approx(1 / 4)
    with pytest.raises(ConfigurationError):
        headline(table, "no such group")


# --------------------------------------------------------------------------- noise curve


def test_noise_curve_accuracy_falls_with_noise():
    n_per, c = 150, 4
    y = np.repeat(np.arange(c), n_per)
    calls: list[float] = []

    def render(level: float) -> np.ndarray:
        calls.append(level)
        rng = np.random.default_rng(7)
        return np.eye(c)[y] + rng.normal(0.0, level, (len(y), c))

    def predict(patterns: np.ndarray) -> np.ndarray:
        assert patterns.shape == (len(y), c)
        e = np.exp(5.0 * (patterns - patterns.max(axis=1, keepdims=True)))
        return e / e.sum(axis=1, keepdims=True)

    levels = [0.0, 0.3, 1.0, 4.0]
    names = ["cubic", "hexagonal", "monoclinic", "triclinic"]
    curve = noise_curve(predict, render, levels, y, names, split="real check", variant="v")
    assert calls == levels
    assert list(curve.columns) == ["noise_level", "split", "variant", *TABLE_COLUMNS]
    assert len(curve) == len(levels) * (c + 2) and set(curve["group"]) == {"all"}
    overall = curve[curve["crystal_system"] == "overall"].set_index("noise_level")
    top1 = overall["top1"].to_numpy()
    assert top1[0] == 1.0 and np.all(np.diff(top1) < 0) and top1[-1] < 0.6
    assert np.all(overall["top2"].to_numpy() >= top1)
    assert (overall["n"] == len(y)).all()
    # the noisiest level's interval lies wholly below the clean one's
    assert overall["top1_ci_high"].iloc[-1] < overall["top1_ci_low"].iloc[0]


def test_noise_curve_invalid_input_raises():
    y = np.array([0, 1])
    with pytest.raises(ConfigurationError):
        noise_curve(lambda x: x, lambda s: np.eye(2), [], y, ["a", "b"])
    with pytest.raises(ConfigurationError):
        noise_curve(lambda x: x, lambda s: np.eye(2), [0.0], y, ["a", "b"], noise_level=1)
    with pytest.raises(ConfigurationError):  # predict_fn returns the wrong number of classes
        noise_curve(lambda x: x, lambda s: np.eye(3)[:2], [0.0], y, ["a", "b"])
