"""Tests for spikefleet.fleet.stats against hand-computed values and independent references."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import scipy.stats

from spikefleet.errors import ConfigError
from spikefleet.fleet.stats import (
    Comparison,
    Summary,
    fleet_yield,
    format_table,
    levene,
    paired_comparison,
    summarize,
    summarize_levels,
    unpaired_comparison,
)

# ----------------------------------------------------------------------------- summarize


def test_summarize_hand_computed():
    s = summarize([1, 2, 3, 4, 100], threshold=3)
    assert isinstance(s, Summary)
    assert s.n == 5
    assert s.mean == pytest.approx(22.0)
    assert s.median == 3.0
    assert s.q25 == 2.0
    assert s.q75 == 4.0
    assert s.iqr == 2.0
    # linear interpolation: position 0.05 * 4 = 0.2 -> 1 + 0.2 * (2 - 1); 0.95 * 4 = 3.8 -> 4 + 0.8 * 96
    assert s.p5 == pytest.approx(1.2)
    assert s.p95 == pytest.approx(80.8)
    assert s.min == 1.0 and s.max == 100.0
    assert s.worst == 1.0 and s.worst_index == 0
    assert s.yield_ == pytest.approx(0.6)
    assert s.threshold == 3.0 and s.higher_is_better is True
    assert s.n_nan == 0
    # sample std by hand: deviations from 22
    ss = (21**2 + 20**2 + 19**2 + 18**2 + 78**2) / 4
    assert s.std == pytest.approx(math.sqrt(ss))


def test_summarize_lower_is_better_picks_max():
    s = summarize([0.3, 0.9, 0.1, 0.5], higher_is_better=False, threshold=0.5)
    assert s.worst == 0.9 and s.worst_index == 1
    assert s.yield_ == pytest.approx(0.75)  # 0.3, 0.1, 0.5 are <= 0.5
    assert s.higher_is_better is False


def test_summarize_matches_statistics_module():
    rng = np.random.default_rng(0)
    x = rng.normal(0.8, 0.05, size=57)
    s = summarize(x, threshold=0.8)
    xs = [float(v) for v in x]
    assert s.mean == pytest.approx(statistics.fmean(xs), rel=1e-12)
    assert s.std == pytest.approx(statistics.stdev(xs), rel=1e-12)
    assert s.median == pytest.approx(statistics.median(xs), rel=1e-12)
    # statistics.quantiles(method="inclusive") is the same linear interpolation as NumPy's default
    q = statistics.quantiles(xs, n=4, method="inclusive")
    assert s.q25 == pytest.approx(q[0], rel=1e-12)
    assert s.q75 == pytest.approx(q[2], rel=1e-12)
    assert s.iqr == pytest.approx(q[2] - q[0], rel=1e-12)
    p = statistics.quantiles(xs, n=20, method="inclusive")
    assert s.p5 == pytest.approx(p[0], rel=1e-12)
    assert s.p95 == pytest.approx(p[-1], rel=1e-12)
    assert s.min == min(xs) and s.max == max(xs)
    assert s.worst_index == xs.index(min(xs))
    assert s.yield_ == pytest.approx(sum(v >= 0.8 for v in xs) / len(xs))
    assert s.p5 == pytest.approx(np.percentile(x, 5))


def test_summarize_single_value_std_nan_and_no_threshold():
    s = summarize([0.7])
    assert s.n == 1 and math.isnan(s.std)
    assert s.median == s.q25 == s.q75 == s.p5 == s.p95 == 0.7
    assert s.yield_ is None and s.threshold is None


def test_yield_edge_cases():
    x = [0.5, 0.6, 0.7]
    assert fleet_yield(x, 0.1) == 1.0
    assert fleet_yield(x, 0.9) == 0.0
    assert fleet_yield(x, 0.6) == pytest.approx(2 / 3)  # equality passes
    assert fleet_yield(x, 0.6, higher_is_better=False) == pytest.approx(2 / 3)
    assert fleet_yield(x, 0.5, higher_is_better=False) == pytest.approx(1 / 3)
    assert fleet_yield(x, 0.7) == pytest.approx(1 / 3)
    assert summarize(x, threshold=0.1).yield_ == 1.0
    assert summarize(x, threshold=0.9).yield_ == 0.0
    assert summarize(x, threshold=0.4, higher_is_better=False).yield_ == 0.0


def test_nan_raises_naming_values():
    with pytest.raises(ConfigError, match=r"^values: .*NaN"):
        summarize([0.1, float("nan"), 0.3])
    with pytest.raises(ConfigError, match=r"^values: "):
        fleet_yield([0.1, float("nan")], 0.2)


def test_nan_omit():
    s = summarize([0.9, float("nan"), 0.1, 0.5, float("nan")], nan_policy="omit", threshold=0.5)
    assert s.n == 3 and s.n_nan == 2
    assert s.median == 0.5 and s.mean == pytest.approx(0.5)
    assert s.worst == 0.1 and s.worst_index == 2  # index into the original input
    assert s.yield_ == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="values"):
        summarize([float("nan")] * 3, nan_policy="omit")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"values": []}, "values"),
        ({"values": [[1.0, 2.0]]}, "values"),
        ({"values": ["a", "b"]}, "values"),
        ({"values": [1.0, float("inf")]}, "values"),
        ({"values": [1.0], "threshold": "x"}, "threshold"),
        ({"values": [1.0], "threshold": float("nan")}, "threshold"),
        ({"values": [1.0], "nan_policy": "drop"}, "nan_policy"),
        ({"values": [1.0], "higher_is_better": "yes"}, "higher_is_better"),
    ],
)
def test_summarize_bad_input(kwargs, name):
    values = kwargs.pop("values")
    with pytest.raises(ConfigError, match=rf"^{name}: expected .*, got "):
        summarize(values, **kwargs)


def test_summarize_levels():
    data = np.array([[0.9, 0.8, 1.0], [0.5, 0.7, 0.6]])
    rows = summarize_levels(data, [0.0, 0.2], threshold=0.65)
    assert [r["level"] for r in rows] == [0.0, 0.2]
    assert list(rows[0])[0] == "level"
    assert rows[0]["median"] == pytest.approx(0.9)
    assert rows[0]["yield"] == 1.0
    assert rows[1]["worst"] == 0.5 and rows[1]["worst_index"] == 0
    assert rows[1]["yield"] == pytest.approx(1 / 3)
    json.dumps(rows)
    with pytest.raises(ConfigError, match="^levels: "):
        summarize_levels(data, [0.0])
    with pytest.raises(ConfigError, match="^values_2d: "):
        summarize_levels([0.1, 0.2], [0.0, 1.0])


# ----------------------------------------------------------------------------- comparisons


def _rank_biserial_reference(a, b):
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[d != 0]
    r = scipy.stats.rankdata(np.abs(d))
    w_plus, w_minus = r[d > 0].sum(), r[d < 0].sum()
    return (w_plus - w_minus) / (w_plus + w_minus)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_paired_matches_scipy(alternative):
    rng = np.random.default_rng(1)
    a = rng.normal(0.8, 0.05, size=40)
    b = a - 0.01 + rng.normal(0, 0.02, size=40)
    c = paired_comparison(a, b, alternative=alternative)
    ref = scipy.stats.wilcoxon(a, b, zero_method="wilcox", alternative=alternative)
    assert isinstance(c, Comparison)
    assert c.test == "wilcoxon" and c.alternative == alternative
    assert c.statistic == pytest.approx(float(ref.statistic))
    assert c.p_value == pytest.approx(float(ref.pvalue))
    assert c.effect == pytest.approx(_rank_biserial_reference(a, b))
    assert c.n_a == c.n_b == 40
    assert c.median_a == pytest.approx(np.median(a))
    assert c.median_b == pytest.approx(np.median(b))
    assert c.median_diff == pytest.approx(np.median(a - b))


def test_paired_with_zero_differences_and_ties():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    b = np.array([1.0, 1.5, 3.5, 3.0, 5.0, 5.5, 6.0, 9.0])  # two zeros, tied |d|
    c = paired_comparison(a, b)
    ref = scipy.stats.wilcoxon(a, b, zero_method="wilcox")
    assert c.statistic == pytest.approx(float(ref.statistic))
    assert c.p_value == pytest.approx(float(ref.pvalue))
    assert c.effect == pytest.approx(_rank_biserial_reference(a, b))


def test_paired_known_direction():
    rng = np.random.default_rng(2)
    a = rng.uniform(0.7, 0.9, size=30)
    b = a + 0.1 + rng.normal(0, 0.005, size=30)
    c = paired_comparison(a, b)
    assert c.p_value < 1e-5
    assert c.effect == pytest.approx(-1.0)
    assert c.median_diff == pytest.approx(-0.1, abs=0.01)


def test_paired_all_equal():
    a = [0.5, 0.6, 0.7]
    c = paired_comparison(a, list(a))
    assert c.p_value == 1.0 and c.statistic == 0.0 and c.effect == 0.0 and c.median_diff == 0.0


def test_paired_length_mismatch():
    with pytest.raises(ConfigError, match=r"^a/b: .*len\(a\)=3, len\(b\)=2"):
        paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0])


def test_comparison_bad_input():
    with pytest.raises(ConfigError, match="^alternative: "):
        paired_comparison([1.0, 2.0], [2.0, 1.0], alternative="bigger")
    with pytest.raises(ConfigError, match="^b: "):
        unpaired_comparison([1.0, 2.0], [float("nan")])
    with pytest.raises(ConfigError, match="^a: "):
        paired_comparison([], [])


def _cl_reference(a, b):
    total = 0.0
    for x in a:
        for y in b:
            if x > y:
                total += 1.0
            elif x == y:
                total += 0.5
    return total / (len(a) * len(b))


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_unpaired_matches_scipy(alternative):
    rng = np.random.default_rng(3)
    a = np.round(rng.normal(0.8, 0.05, size=25), 2)  # rounding creates ties
    b = np.round(rng.normal(0.78, 0.05, size=33), 2)
    c = unpaired_comparison(a, b, alternative=alternative)
    ref = scipy.stats.mannwhitneyu(a, b, alternative=alternative)
    assert c.test == "mann-whitney" and c.alternative == alternative
    assert c.statistic == pytest.approx(float(ref.statistic))
    assert c.p_value == pytest.approx(float(ref.pvalue))
    assert c.effect == pytest.approx(_cl_reference(a, b))
    assert c.n_a == 25 and c.n_b == 33
    assert c.median_diff == pytest.approx(np.median(a) - np.median(b))


def test_unpaired_separated_samples():
    c = unpaired_comparison([5.0, 6.0, 7.0], [1.0, 2.0])
    assert c.effect == 1.0
    assert unpaired_comparison([1.0, 2.0], [5.0, 6.0, 7.0]).effect == 0.0


def test_levene_matches_scipy():
    rng = np.random.default_rng(4)
    g1, g2, g3 = rng.normal(0, 1, 20), rng.normal(0, 2, 25), rng.normal(1, 1, 15)
    stat, p = levene(g1, g2, g3)
    ref = scipy.stats.levene(g1, g2, g3, center="median")
    assert isinstance(stat, float) and isinstance(p, float)
    assert stat == pytest.approx(float(ref.statistic))
    assert p == pytest.approx(float(ref.pvalue))
    with pytest.raises(ConfigError, match="^groups: "):
        levene(g1)
    with pytest.raises(ConfigError, match=r"^groups\[1\]: "):
        levene(g1, [1.0, float("nan")])


# ----------------------------------------------------------------------------- output


def test_format_table_exact():
    rows = [
        {"name": "a", "level": 0.1, "mean": 0.91234, "yield": None, "n": 100},
        {"name": "bb", "level": 0.2, "mean": 0.5, "yield": 0.75, "n": 7},
    ]
    expected = (
        "name  level    mean  yield    n\n"
        "----  -----  ------  -----  ---\n"
        "a       0.1  0.9123      -  100\n"
        "bb      0.2     0.5   0.75    7"
    )
    assert format_table(rows, ["name", "level", "mean", "yield", "n"]) == expected


def test_format_table_no_rows_and_bad_columns():
    assert format_table([], ["a", "bcd"]) == "a  bcd\n-  ---"
    with pytest.raises(ConfigError, match="^columns: "):
        format_table([], [])


def test_to_dict_json_serialisable():
    s = summarize(np.array([0.9, 0.8, 0.95], dtype=np.float32), threshold=np.float64(0.85))
    d = s.to_dict()
    assert "yield" in d and "yield_" not in d
    for v in d.values():
        assert v is None or type(v) in (int, float, bool)
    back = json.loads(json.dumps(d))
    assert back["yield"] == pytest.approx(2 / 3) and back["worst_index"] == 1

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=12), rng.normal(size=12)
    for c in (paired_comparison(a, b), unpaired_comparison(a, b)):
        cd = c.to_dict()
        for v in cd.values():
            assert type(v) in (int, float, str)
        json.loads(json.dumps(cd))
