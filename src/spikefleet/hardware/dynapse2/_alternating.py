r"""Alternating (exact-mask / NNLS-current) quantisation of one core's synapse magnitudes.

Problem: given magnitudes ``v ∈ ℝ^K`` (normalised to ``max v = 1``) find base currents
``x ∈ ℝ^4_{≥0}`` and masks ``q_i ∈ 0..15`` minimising ``E = Σ_i (v_i − S_{q_i}·x)²``, where
``S ∈ {0,1}^{16×4}`` lists the bits of each mask (``S·x`` are the 16 realisable levels).

One descent iteration (block-coordinate descent, like Lloyd's k-means with tied centres):

1. **masks | x** (exact): sort the 16 levels (ties: fewer bits first); synapse ``i`` takes the
   nearest one. On the sorted ``v`` every level owns a contiguous range cut at the midpoints of
   adjacent levels, so only the range boundaries (15 binary searches) are needed;
2. **x | masks** (exact): with ``n_q``, ``Σv`` and ``Σv²`` over each range (prefix sums),
   ``G = Σ_q n_q S_qS_qᵀ``, ``h = Σ_q (Σ_{i∈q} v_i) S_q`` and ``x = argmin_{x≥0} xᵀGx − 2hᵀx``,
   solved by enumerating the 16 active sets (each 4×4 block solved with a 1e-12 relative ridge for
   unused or collinear bits; best feasible);
3. a current that came out 0 is re-seeded with the largest residual; reassigning the masks can
   then only lower ``E`` (the old levels are all still available without that bit).

A step is accepted only if ``E`` does not grow, so each start's error is monotone
non-increasing. ``E = Σ_q (Σv² − 2L_qΣv + n_qL_q²)`` costs O(16) per evaluation after one sort,
so an iteration is independent of ``K`` and many starts are affordable: binary-weighted grids at
several quantile scales, geometric ratios, near-equal currents, a greedy basis from the 1-D
k-means levels (exact for already-representable weights), random starts; then ``n_hops`` rounds
of basin hopping (multiplicative log-normal perturbations of the best solutions, descended again).
Everything is float64 NumPy, vectorised over starts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["SUBSETS", "assign", "descend", "fit_core", "prepare", "starts"]

SUBSETS = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(np.float64)  #: bits of mask q (LSB = Iw_0)
_BY_POPCOUNT = np.argsort(SUBSETS.sum(axis=1), kind="stable")  # masks with fewer bits first
_EYE = np.eye(4)


def assign(v, x):
    """Nearest level ``S·x`` [4] for each ``v`` (any order): (masks, values); ties to fewer bits."""
    levels = SUBSETS @ x
    order = _BY_POPCOUNT[np.argsort(levels[_BY_POPCOUNT], kind="stable")]
    sl = levels[order]
    idx = np.clip(np.searchsorted(sl, v), 1, 15)
    lo, hi = sl[idx - 1], sl[idx]
    pick = np.where(v - lo <= hi - v, idx - 1, idx)
    return order[pick], sl[pick]


class Prepared(NamedTuple):
    v: np.ndarray    # sorted magnitudes [K]
    c1: np.ndarray   # prefix sums of v, [K + 1]
    c2: np.ndarray   # prefix sums of v², [K + 1]


def prepare(v) -> Prepared:
    v = np.sort(np.asarray(v, np.float64))
    return Prepared(v, np.concatenate([[0.0], np.cumsum(v)]), np.concatenate([[0.0], np.cumsum(v * v)]))


def _ranges(data: Prepared, x):
    """For starts ``x`` [R, 4]: mask order [R, 16], levels, and n / Σv / Σv² / bounds per sorted level."""
    levels = x @ SUBSETS.T
    order = _BY_POPCOUNT[np.argsort(levels[:, _BY_POPCOUNT], axis=1, kind="stable")]
    sl = np.take_along_axis(levels, order, axis=1)
    cut = np.searchsorted(data.v, 0.5 * (sl[:, 1:] + sl[:, :-1]), side="right")   # v ≤ midpoint → lower
    bounds = np.concatenate([np.zeros((len(x), 1), int), cut, np.full((len(x), 1), data.v.size)], axis=1)
    lo, hi = bounds[:, :-1], bounds[:, 1:]
    n = (hi - lo).astype(np.float64)
    return order, sl, n, data.c1[hi] - data.c1[lo], data.c2[hi] - data.c2[lo], lo, hi


def _error(sl, n, s1, s2):
    return np.maximum((s2 - 2.0 * sl * s1 + n * sl * sl).sum(axis=1), 0.0)


def _nnls4(gram, h):
    """Batched ``argmin_{x ≥ 0} xᵀGx − 2hᵀx`` (``gram`` [R, 4, 4]): best feasible active-set solution
    (ridge ``1e-12·tr G`` so that unused or collinear bits keep the blocks invertible)."""
    s = SUBSETS
    ridge = 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None, None] + 1e-300
    blocks = gram[:, None] * (s[:, :, None] * s[:, None, :]) + _EYE * ((1.0 - s)[:, :, None] + ridge)
    xs = np.linalg.solve(blocks, (h[:, None, :] * s)[..., None])[..., 0] * s
    f = np.einsum("rsi,rij,rsj->rs", xs, gram, xs) - 2.0 * np.einsum("rsi,ri->rs", xs, h)
    f = np.where((xs >= -1e-12).all(axis=2), f, np.inf)
    best = np.argmin(f, axis=1)
    return np.maximum(xs[np.arange(len(xs)), best], 0.0)


def _step(data: Prepared, x, state):
    """One alternation for starts ``x`` [R, 4] with cached ranges ``state``; returns new (x, state, err)."""
    order, sl, n, s1, s2, lo, hi = state
    rows = np.arange(len(x))[:, None]
    n_m, s1_m = np.zeros_like(n), np.zeros_like(s1)
    n_m[rows, order], s1_m[rows, order] = n, s1
    x1 = _nnls4(np.einsum("rq,qa,qb->rab", n_m, SUBSETS, SUBSETS), s1_m @ SUBSETS)
    # re-seed dead currents with the largest residual of the current assignment (range end points)
    lv = np.take_along_axis(x1 @ SUBSETS.T, order, axis=1)
    end_lo, end_hi = data.v[np.minimum(lo, data.v.size - 1)], data.v[np.maximum(hi - 1, 0)]
    res = np.where(n > 0, np.maximum(np.abs(end_lo - lv), np.abs(end_hi - lv)), 0.0).max(axis=1)
    dead = x1 <= 1e-9 * x1.max(axis=1, keepdims=True)
    x1 = np.where(dead, np.maximum(res, 1e-3)[:, None], x1)
    new = _ranges(data, x1)
    return x1, new, _error(*new[1:5])


def descend(data: Prepared, x0, n_iter, rtol=1e-12):
    """Alternating descent from each start ``x0`` [R, 4].

    Returns ``(x [R, 4], error [R], history [R, ≤ n_iter + 1])``; every history row is
    non-increasing. A start stops once an iteration improves it by less than ``rtol``
    (relative); the loop ends when all have stopped or after ``n_iter`` iterations.
    """
    x = np.array(x0, np.float64)
    state = _ranges(data, x)
    err = _error(*state[1:5])
    history = [err.copy()]
    active = np.arange(len(x))
    for _ in range(n_iter):
        if active.size == 0:
            break
        sub = tuple(a[active] for a in state)
        x1, new, err1 = _step(data, x[active], sub)
        ok = err1 <= err[active]
        gain = np.where(ok, err[active] - err1, 0.0)
        keep = active[ok]
        x[keep], err[keep] = x1[ok], err1[ok]
        for a, b in zip(state, new):
            a[keep] = b[ok]
        history.append(err.copy())
        active = active[gain > rtol * np.maximum(err[active], 1e-300)]
    return x, err, np.stack(history, axis=1)


def _kmeans_levels(v, k=15, iters=50):
    """1-D Lloyd k-means levels of ``v`` from quantile starts (the exact values if ≤ ``k`` distinct)."""
    uniq = np.unique(np.round(v, 9))
    if uniq.size <= k:
        return uniq
    c = np.quantile(v, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        lab = np.searchsorted((c[1:] + c[:-1]) / 2, v)
        cnt = np.bincount(lab, minlength=k)
        new = np.sort(np.where(cnt > 0, np.bincount(lab, v, k) / np.maximum(cnt, 1), c))
        if np.allclose(new, c):
            break
        c = new
    return c


def _greedy_basis(levels, tol=1e-6):
    """Base currents from sorted levels: each level farther than ``tol`` from every subset sum of
    the basis so far joins it (recovers the currents of exactly representable data)."""
    basis = []
    for c in np.sort(levels):
        if c > tol and (not basis or np.abs(SUBSETS[:1 << len(basis), :len(basis)] @ basis - c).min() > tol):
            basis.append(c)
        if len(basis) == 4:
            break
    while len(basis) < 4:
        basis.append(2.0 * basis[-1] if basis else 0.25)
    return np.array(basis)


def starts(v, rng, n_random):
    """Initial currents [R, 4] for magnitudes ``v`` (normalised to max 1)."""
    v = np.asarray(v, np.float64)
    b = np.arange(4)
    top = np.quantile(v, 0.99)
    rows = [np.quantile(v, q) * 2.0 ** b / 15.0 for q in (1.0, 0.995, 0.99, 0.98, 0.95, 0.9)]
    rows += [top * r ** b / (r ** b).sum() for r in (1.4, 1.7, 2.4)]
    rows += [top / 4 * np.array([0.85, 0.95, 1.05, 1.15]), _greedy_basis(_kmeans_levels(v))]
    u = rng.uniform(0.02, 1.0, (n_random, 4))
    rows += list(u / u.sum(axis=1, keepdims=True) * rng.uniform(0.8, 1.3, (n_random, 1)))
    return np.maximum(np.array(rows), 1e-3)


def fit_core(v, rng, *, n_restarts=64, n_iter=200, n_hops=4, n_keep=8, n_per_hop=8):
    """Best currents ``x`` [4] for magnitudes ``v`` (normalised to max 1) and the error history.

    ``history[i]`` is the smallest error ``E`` over all starts after iteration ``i`` (each
    basin-hopping round appends its iterations, never above the best so far): non-increasing.
    """
    data = prepare(v)
    x, err, hist = descend(data, starts(v, rng, n_restarts), n_iter)
    history = list(hist.min(axis=0))
    sigmas = (0.3, 0.15, 0.05)
    for hop in range(n_hops):
        best = np.argsort(err, kind="stable")[:n_keep]
        cand = np.repeat(x[best], n_per_hop, axis=0)
        cand = cand * np.exp(rng.normal(0.0, sigmas[hop % len(sigmas)], cand.shape))
        xc, ec, hc = descend(data, cand, n_iter)
        history += list(np.minimum(hc.min(axis=0), history[-1]))
        x, err = np.concatenate([x[best], xc]), np.concatenate([err[best], ec])
    i = int(np.argmin(err))
    return x[i], np.asarray(history)
