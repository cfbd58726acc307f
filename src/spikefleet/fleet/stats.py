"""Summaries of per-chip metrics over a fleet, and statistical comparisons of designs.

A *fleet* is a set of simulated chips, each a random realisation of device mismatch. Evaluating
one trained design on every chip gives one number per chip (accuracy, MSE, firing rate, ...).
This module turns such per-chip values into summaries and compares two designs.

Inputs are 1-D sequences of per-chip values (``[chips]``), or 2-D ``[levels, chips]`` for
:func:`summarize_levels`. Values must be finite real numbers; NaN is rejected unless
``nan_policy="omit"`` is given to :func:`summarize` (infinities are always rejected, because
percentiles and the standard deviation are undefined with them).

Summary statistics (:func:`summarize`)
--------------------------------------
For ``n`` per-chip values ``x_1 .. x_n``:

* ``mean`` = (1/n) * sum_i x_i;
  ``std`` = sqrt( sum_i (x_i - mean)^2 / (n - 1) )  (sample standard deviation, ``ddof=1``;
  NaN when ``n < 2``).
* ``median``, ``q25``, ``q75``, ``p5``, ``p95``: percentiles computed with NumPy's default
  ``"linear"`` method: sort the values to ``s_0 <= .. <= s_{n-1}``; the p-th percentile is at
  fractional position ``h = (n - 1) * p / 100`` and equals
  ``s_floor(h) + (h - floor(h)) * (s_floor(h)+1 - s_floor(h))``.
* ``iqr`` = q75 - q25 (interquartile range).
* ``min``, ``max``: extremes; ``worst`` is the worst chip: ``min`` if ``higher_is_better``
  (accuracy) else ``max`` (MSE); ``worst_index`` is its position in the input (the first one
  on ties; with ``nan_policy="omit"`` the position still refers to the original input).
* ``yield`` = #{ i : x_i >= threshold } / n if ``higher_is_better``, else
  #{ i : x_i <= threshold } / n -- the fraction of chips meeting the specification. A chip
  exactly at the threshold passes. ``None`` when no threshold is given.

Comparisons of two designs
--------------------------
*Paired* (:func:`paired_comparison`): both designs evaluated on the **same** chips, so
``a[i]`` and ``b[i]`` come from chip ``i``. Uses the Wilcoxon signed-rank test
(:func:`scipy.stats.wilcoxon`, ``zero_method="wilcox"``: chips with zero difference are
dropped before ranking; ``method="auto"``). With ``d_i = a_i - b_i`` (zeros dropped), rank
``|d_i|`` (average ranks for ties) and let ``W+`` / ``W-`` be the sums of the ranks of the
positive / negative differences. The effect size is the matched-pairs rank-biserial
correlation

    r = (W+ - W-) / (W+ + W-)        in [-1, 1],

+1 when ``a`` is larger on every chip that differs, -1 when ``b`` is. ``median_diff`` is the
median of all paired differences ``a - b`` (zeros included). The reported ``statistic`` is
SciPy's: ``min(W+, W-)`` for ``alternative="two-sided"``, ``W+`` for one-sided alternatives.
If every difference is zero, ``statistic = 0``, ``p_value = 1`` and ``effect = 0`` (SciPy is
not called).

*Unpaired* (:func:`unpaired_comparison`): independent chip samples. Uses the Mann-Whitney U
test (:func:`scipy.stats.mannwhitneyu`, ``method="auto"``); ``statistic`` is ``U`` of ``a``.
The effect size is the common-language effect size

    CL = P(A > B) + 0.5 * P(A = B) = [ #{(i, j): a_i > b_j} + 0.5 * #{(i, j): a_i = b_j} ] / (n_a * n_b)

for a chip drawn from each sample (0.5 = no tendency; equals ``U_a / (n_a n_b)``).
``median_diff`` is ``median(a) - median(b)``.

*Spread* (:func:`levene`): Levene's test for equal variances with ``center="median"``
(the Brown-Forsythe variant, robust to non-normal data), via :func:`scipy.stats.levene`.

:func:`format_table` renders rows of dicts (e.g. from :meth:`Summary.to_dict` or
:func:`summarize_levels`) as a fixed-width plain-text table for the CLI.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from spikefleet.errors import ConfigError, expect

__all__ = [
    "Summary",
    "summarize",
    "fleet_yield",
    "summarize_levels",
    "Comparison",
    "paired_comparison",
    "unpaired_comparison",
    "levene",
    "format_table",
]

_ALTERNATIVES = ("two-sided", "less", "greater")
_NAN_POLICIES = ("raise", "omit")


# ----------------------------------------------------------------------------- validation


def _as_array(values: Any, name: str, ndim: int) -> np.ndarray:
    """``values`` as a float64 array with ``ndim`` dimensions; ConfigError naming ``name`` if not."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nested sequences etc.
        raise ConfigError(f"{name}: expected a {ndim}-D array of real numbers, got {exc}") from None
    expect(
        arr.dtype.kind in "biuf",
        name,
        f"a {ndim}-D array of real numbers",
        f"an array of dtype {arr.dtype}",
    )
    expect(arr.ndim == ndim, name, f"a {ndim}-D array", f"an array of shape {arr.shape}")
    return arr.astype(np.float64)


def _check_values(arr: np.ndarray, name: str, *, allow_nan: bool = False) -> None:
    """Reject empty arrays, infinities and (unless ``allow_nan``) NaN."""
    expect(arr.size > 0, name, "at least one value", "an empty array")
    n_inf = int(np.isinf(arr).sum())
    expect(n_inf == 0, name, "finite values", f"{n_inf} infinite value(s)")
    if not allow_nan:
        n_nan = int(np.isnan(arr).sum())
        expect(
            n_nan == 0,
            name,
            "no NaN values (pass nan_policy='omit' to summarize() to drop them)",
            f"{n_nan} NaN value(s) of {arr.size}",
        )


def _check_threshold(threshold: Any) -> float | None:
    if threshold is None:
        return None
    ok = isinstance(threshold, (numbers.Real, np.integer, np.floating)) and not isinstance(
        threshold, (bool, np.bool_)
    )
    expect(ok, "threshold", "a real number or None", threshold)
    value = float(threshold)
    expect(math.isfinite(value), "threshold", "a finite number", threshold)
    return value


def _check_bool(value: Any, name: str) -> bool:
    expect(isinstance(value, (bool, np.bool_)), name, "True or False", value)
    return bool(value)


def _check_alternative(alternative: Any) -> str:
    expect(alternative in _ALTERNATIVES, "alternative", f"one of {_ALTERNATIVES}", alternative)
    return str(alternative)


def _py(value: Any) -> Any:
    """Convert NumPy scalars to the matching Python scalar (for JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Summary:
    """Summary of one metric over a fleet of chips (see the module docstring for definitions)."""

    n: int
    mean: float
    std: float
    median: float
    q25: float
    q75: float
    iqr: float
    p5: float
    p95: float
    min: float
    max: float
    worst: float
    worst_index: int
    yield_: float | None
    threshold: float | None
    higher_is_better: bool
    n_nan: int = 0

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable); the yield is under the key ``"yield"``.

        ``std`` is ``float("nan")`` when ``n < 2`` (``json.dumps`` writes it as ``NaN``).
        """
        out = {}
        for f in dataclasses.fields(self):
            key = "yield" if f.name == "yield_" else f.name
            out[key] = _py(getattr(self, f.name))
        return out


def _yield(x: np.ndarray, threshold: float, higher_is_better: bool) -> float:
    passed = x >= threshold if higher_is_better else x <= threshold
    return float(np.count_nonzero(passed)) / x.size


def summarize(
    values: Any,
    *,
    higher_is_better: bool = True,
    threshold: float | None = None,
    nan_policy: str = "raise",
) -> Summary:
    """Summarise per-chip ``values`` (1-D).

    ``higher_is_better`` decides which extreme is the worst chip and the direction of the yield
    test (``>= threshold`` if True, ``<= threshold`` if False). Percentiles use NumPy's default
    linear interpolation. ``nan_policy="raise"`` (default) rejects NaN values with a
    :class:`ConfigError`; ``"omit"`` drops them and reports how many in ``n_nan`` (``n`` then
    counts the remaining chips, and the yield is over those).
    """
    higher_is_better = _check_bool(higher_is_better, "higher_is_better")
    threshold = _check_threshold(threshold)
    expect(nan_policy in _NAN_POLICIES, "nan_policy", f"one of {_NAN_POLICIES}", nan_policy)
    arr = _as_array(values, "values", 1)
    _check_values(arr, "values", allow_nan=nan_policy == "omit")

    finite = ~np.isnan(arr)
    kept_index = np.flatnonzero(finite)
    n_nan = int(arr.size - kept_index.size)
    expect(kept_index.size > 0, "values", "at least one non-NaN value", f"{n_nan} NaN value(s) only")
    x = arr[kept_index]
    n = int(x.size)

    p5, q25, median, q75, p95 = (float(v) for v in np.percentile(x, [5.0, 25.0, 50.0, 75.0, 95.0]))
    std = float(np.std(x, ddof=1)) if n >= 2 else float("nan")
    local_worst = int(np.argmin(x)) if higher_is_better else int(np.argmax(x))

    return Summary(
        n=n,
        mean=float(np.mean(x)),
        std=std,
        median=median,
        q25=q25,
        q75=q75,
        iqr=q75 - q25,
        p5=p5,
        p95=p95,
        min=float(np.min(x)),
        max=float(np.max(x)),
        worst=float(x[local_worst]),
        worst_index=int(kept_index[local_worst]),
        yield_=None if threshold is None else _yield(x, threshold, higher_is_better),
        threshold=threshold,
        higher_is_better=higher_is_better,
        n_nan=n_nan,
    )


def fleet_yield(values: Any, threshold: float, *, higher_is_better: bool = True) -> float:
    """Fraction of chips meeting ``threshold`` (``>=`` if ``higher_is_better`` else ``<=``).

    A value exactly equal to the threshold passes. NaN values are rejected.
    """
    higher_is_better = _check_bool(higher_is_better, "higher_is_better")
    expect(threshold is not None, "threshold", "a real number", threshold)
    thr = _check_threshold(threshold)
    arr = _as_array(values, "values", 1)
    _check_values(arr, "values")
    return _yield(arr, thr, higher_is_better)


def summarize_levels(values_2d: Any, levels: Any, **kw: Any) -> list[dict]:
    """One :meth:`Summary.to_dict` per row of ``values_2d`` ``[levels, chips]``.

    Each dict starts with ``"level"`` (the matching entry of ``levels``, e.g. a mismatch
    strength); ``kw`` is passed on to :func:`summarize` (``higher_is_better``, ``threshold``,
    ``nan_policy``). ``worst_index`` is the chip index within the row.
    """
    arr = _as_array(values_2d, "values_2d", 2)
    level_list = list(np.asarray(levels).reshape(-1)) if np.ndim(levels) <= 1 else None
    expect(
        level_list is not None and len(level_list) == arr.shape[0],
        "levels",
        f"a 1-D sequence with one entry per row of values_2d ({arr.shape[0]})",
        f"shape {np.shape(levels)}",
    )
    expect(arr.shape[1] > 0, "values_2d", "at least one chip per level", f"shape {arr.shape}")
    out = []
    for level, row in zip(level_list, arr):
        summary = summarize(row, **kw)
        out.append({"level": _py(level), **summary.to_dict()})
    return out


# ----------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a metric between designs ``a`` and ``b`` (see the module docstring)."""

    test: str
    statistic: float
    p_value: float
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    median_diff: float
    effect: float
    alternative: str

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable)."""
        return {f.name: _py(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of differences ``d`` (zeros dropped)."""
    nz = d[d != 0]
    if nz.size == 0:
        return 0.0
    ranks = scipy.stats.rankdata(np.abs(nz))
    w_plus = float(ranks[nz > 0].sum())
    w_minus = float(ranks[nz < 0].sum())
    return (w_plus - w_minus) / (w_plus + w_minus)


def paired_comparison(a: Any, b: Any, *, alternative: str = "two-sided") -> Comparison:
    """Wilcoxon signed-rank test of ``a`` vs ``b`` measured on the same chips (``a[i]``, ``b[i]``
    from chip ``i``).

    ``zero_method="wilcox"`` (zero differences dropped), ``method="auto"``. ``alternative`` is
    about ``a - b``: ``"greater"`` tests whether ``a`` tends to exceed ``b``. If all differences
    are zero the result is ``statistic=0``, ``p_value=1``, ``effect=0`` without calling SciPy.
    """
    alternative = _check_alternative(alternative)
    xa = _as_array(a, "a", 1)
    xb = _as_array(b, "b", 1)
    _check_values(xa, "a")
    _check_values(xb, "b")
    expect(
        xa.size == xb.size,
        "a/b",
        "the same number of chips (paired values from the same chips)",
        f"len(a)={xa.size}, len(b)={xb.size}",
    )
    d = xa - xb
    if np.all(d == 0):
        statistic, p_value = 0.0, 1.0
    else:
        res = scipy.stats.wilcoxon(xa, xb, zero_method="wilcox", alternative=alternative)
        statistic, p_value = float(res.statistic), float(res.pvalue)
    return Comparison(
        test="wilcoxon",
        statistic=statistic,
        p_value=p_value,
        n_a=int(xa.size),
        n_b=int(xb.size),
        median_a=float(np.median(xa)),
        median_b=float(np.median(xb)),
        median_diff=float(np.median(d)),
        effect=_rank_biserial(d),
        alternative=alternative,
    )


def _common_language(xa: np.ndarray, xb: np.ndarray) -> float:
    """P(A > B) + 0.5 P(A = B) from the ranks of the pooled sample (O(n log n))."""
    ranks = scipy.stats.rankdata(np.concatenate([xa, xb]))
    n_a, n_b = xa.size, xb.size
    u_a = float(ranks[:n_a].sum()) - n_a * (n_a + 1) / 2.0
    return u_a / (n_a * n_b)


def unpaired_comparison(a: Any, b: Any, *, alternative: str = "two-sided") -> Comparison:
    """Mann-Whitney U test of independent samples ``a`` and ``b`` (``method="auto"``).

    ``statistic`` is ``U`` of ``a``; ``effect`` is the common-language effect size
    ``P(a > b) + 0.5 P(a = b)``; ``median_diff`` is ``median(a) - median(b)``.
    """
    alternative = _check_alternative(alternative)
    xa = _as_array(a, "a", 1)
    xb = _as_array(b, "b", 1)
    _check_values(xa, "a")
    _check_values(xb, "b")
    res = scipy.stats.mannwhitneyu(xa, xb, alternative=alternative, method="auto")
    median_a = float(np.median(xa))
    median_b = float(np.median(xb))
    return Comparison(
        test="mann-whitney",
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        n_a=int(xa.size),
        n_b=int(xb.size),
        median_a=median_a,
        median_b=median_b,
        median_diff=median_a - median_b,
        effect=_common_language(xa, xb),
        alternative=alternative,
    )


def levene(*groups: Any) -> tuple[float, float]:
    """Levene's test (``center="median"``, i.e. Brown-Forsythe) for equal spread across groups.

    Returns ``(statistic, p_value)`` as Python floats. Needs at least two groups; if every group
    has zero spread SciPy returns NaN for both.
    """
    expect(len(groups) >= 2, "groups", "at least two groups", f"{len(groups)} group(s)")
    arrays = []
    for i, g in enumerate(groups):
        name = f"groups[{i}]"
        arr = _as_array(g, name, 1)
        _check_values(arr, name)
        arrays.append(arr)
    res = scipy.stats.levene(*arrays, center="median")
    return float(res.statistic), float(res.pvalue)


# ----------------------------------------------------------------------------- table


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (numbers.Real, np.integer, np.floating))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (numbers.Real, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def format_table(rows: list[dict], columns: list[str]) -> str:
    """Fixed-width plain-text table: header line, dashed rule, one line per row.

    Floats are shown with 4 significant digits (``{:.4g}``), integers in full, ``None`` (or a
    key missing from a row) as ``"-"``. Columns are separated by two spaces; a column whose
    values are all numbers (or missing) is right-aligned, any other column left-aligned.
    Trailing spaces are stripped; lines are joined with ``"\\n"`` (no final newline).
    """
    expect(
        isinstance(columns, (list, tuple)) and len(columns) > 0
        and all(isinstance(c, str) for c in columns),
        "columns",
        "a non-empty list of column names (str)",
        columns,
    )
    expect(isinstance(rows, (list, tuple)), "rows", "a list of dicts", type(rows).__name__)
    bad = [type(r).__name__ for r in rows if not isinstance(r, dict)]
    expect(not bad, "rows", "a list of dicts", f"a list containing {bad[0] if bad else ''}")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    right = [
        all(row.get(c) is None or _is_number(row.get(c)) for row in rows) for c in columns
    ]
    widths = [
        max([len(c)] + [len(line[j]) for line in cells]) for j, c in enumerate(columns)
    ]

    def fmt(parts: list[str]) -> str:
        padded = [
            p.rjust(w) if r else p.ljust(w) for p, w, r in zip(parts, widths, right)
        ]
        return "  ".join(padded).rstrip()

    lines = [fmt(list(columns)), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(line) for line in cells)
    return "\n".join(lines)
