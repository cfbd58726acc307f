"""Tests for spike non-linearities and their surrogate gradients (spikefleet.neurons.surrogate).

Every number is checked against an independent reference written here: the analytic surrogate
derivatives and their integrals from the module docstring, and NumPy versions of the forward
spike counts.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.neurons.surrogate import Boxcar, FastSigmoid, Surrogate, Triangle, make_surrogate, spike_count

RNG_SEED = 20240611


# ----------------------------------------------------------------------------------
# analytic references (written independently of the module)
# ----------------------------------------------------------------------------------
def ref_fast_sigmoid(x: np.ndarray, slope: float) -> np.ndarray:
    return 1.0 / (1.0 + slope * np.abs(x)) ** 2


def ref_triangle(x: np.ndarray, width: float) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    inside = np.abs(x) < width
    out[inside] = (1.0 - np.abs(x[inside]) / width) / width
    return out


def ref_boxcar(x: np.ndarray, lo: float, hi: float, height: float) -> np.ndarray:
    return np.where((x > lo) & (x < hi), height, 0.0)


# (surrogate, reference derivative, kinks, integral over R from the module docstring table)
CASES = [
    (FastSigmoid(10.0), lambda x: ref_fast_sigmoid(x, 10.0), (0.0,), 2.0 / 10.0),
    (FastSigmoid(2.5), lambda x: ref_fast_sigmoid(x, 2.5), (0.0,), 2.0 / 2.5),
    (Triangle(0.5), lambda x: ref_triangle(x, 0.5), (-0.5, 0.0, 0.5), 1.0),
    (Triangle(1.25), lambda x: ref_triangle(x, 1.25), (-1.25, 0.0, 1.25), 1.0),
    (Boxcar(-0.5, 0.5, 1.0), lambda x: ref_boxcar(x, -0.5, 0.5, 1.0), (-0.5, 0.5), 1.0),
    (Boxcar(-0.25, 0.75, 2.5), lambda x: ref_boxcar(x, -0.25, 0.75, 2.5), (-0.25, 0.75), 2.5),
]
IDS = ["fastsig10", "fastsig2.5", "tri0.5", "tri1.25", "box1", "box2.5"]


def sample_points(kinks) -> np.ndarray:
    """A dense grid, random points, the kinks themselves and points straddling them (float32)."""
    rng = np.random.default_rng(RNG_SEED)
    grid = np.linspace(-3.0, 3.0, 601)
    rand = rng.uniform(-4.0, 4.0, 400)
    padded = (list(kinks) * 3)[:3]  # fixed array size keeps eager-op compilation cached
    near = np.concatenate([[k, k - 1e-3, k + 1e-3, k - 0.02, k + 0.02] for k in padded])
    far = np.array([-50.0, -7.5, 7.5, 50.0])
    return np.concatenate([grid, rand, near, far]).astype(np.float32)


def away_from_kinks(x: np.ndarray, kinks, margin: float = 1e-4) -> np.ndarray:
    mask = np.ones(x.shape, bool)
    for k in kinks:
        mask &= np.abs(x - k) > margin
    return mask


# ----------------------------------------------------------------------------------
# reverse-mode gradient of spike_count == analytic surrogate derivative
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("surrogate,ref,kinks,integral", CASES, ids=IDS)
def test_grad_of_spike_count_is_analytic_surrogate(surrogate, ref, kinks, integral):
    x = sample_points(kinks)
    expected = ref(x.astype(np.float64))
    # the reference must not be trivially zero everywhere
    assert np.count_nonzero(expected) > 100
    for max_spikes in (1, 3):
        grad = jax.grad(lambda v: jnp.sum(spike_count(v, surrogate, max_spikes)))(jnp.asarray(x))
        assert grad.shape == x.shape and grad.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(grad, np.float64), expected, rtol=2e-6, atol=1e-7)


def test_grad_with_default_max_spikes_and_under_jit():
    s = FastSigmoid(4.0)
    x = jnp.asarray(np.linspace(-2.0, 2.0, 41), jnp.float32)
    g_default = jax.grad(lambda v: jnp.sum(spike_count(v, s)))(x)
    g_jit = jax.jit(jax.grad(lambda v: jnp.sum(spike_count(v, s, 1))))(x)
    expected = ref_fast_sigmoid(np.asarray(x, np.float64), 4.0)
    np.testing.assert_allclose(np.asarray(g_default), expected, rtol=2e-6)
    np.testing.assert_allclose(np.asarray(g_jit), expected, rtol=2e-6)


def test_chain_rule_through_spike_count():
    # d/dθ Σ H(θ·x − 1) = Σ σ'(θ·x − 1) · x
    s = Triangle(0.7)
    rng = np.random.default_rng(RNG_SEED + 1)
    x = rng.uniform(-1.0, 3.0, 64).astype(np.float32)
    theta = 0.8
    g = jax.jit(jax.grad(lambda th: jnp.sum(spike_count(th * jnp.asarray(x) - 1.0, s))))(jnp.float32(theta))
    z = theta * x.astype(np.float64) - 1.0
    np.testing.assert_allclose(float(g), float(np.sum(ref_triangle(z, 0.7) * x)), rtol=1e-5)


# ----------------------------------------------------------------------------------
# derivative == d primitive / dx (away from kinks); derivative integrates to table value
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("surrogate,ref,kinks,integral", CASES, ids=IDS)
def test_derivative_matches_grad_of_primitive(surrogate, ref, kinks, integral):
    x = sample_points(kinks)
    keep = away_from_kinks(x, kinks)
    d = np.asarray(surrogate.derivative(jnp.asarray(x)), np.float64)
    dp = np.asarray(jax.vmap(jax.grad(surrogate.primitive))(jnp.asarray(x)), np.float64)
    np.testing.assert_allclose(d[keep], dp[keep], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d, ref(x.astype(np.float64)), rtol=2e-6, atol=1e-7)
    assert keep.sum() > 900


@pytest.mark.parametrize("surrogate,ref,kinks,integral", CASES, ids=IDS)
def test_derivative_integrates_to_table_value(surrogate, ref, kinks, integral):
    # a geometric grid reaches far into the tails of the fast sigmoid (tail mass ~ 2/(β² 1e6))
    pos = np.geomspace(1e-7, 1e6, 40001)
    grid = np.concatenate([-pos[::-1], [0.0], pos])
    # make every kink (and points just beside it) a grid point: trapezoid is then exact for
    # the piecewise-linear triangle and nearly exact for the discontinuous boxcar
    extra = np.concatenate([[k - 1e-9, k, k + 1e-9] for k in kinks])
    fine = np.linspace(-3.0, 3.0, 600001)
    grid = np.unique(np.concatenate([grid, extra, fine]))
    vals = np.asarray(surrogate.derivative(jnp.asarray(grid, jnp.float32)), np.float64)
    area = np.trapezoid(vals, grid)
    np.testing.assert_allclose(area, integral, rtol=2e-4)
    # and the primitive's total rise agrees (bounded surrogates only)
    rise = float(surrogate.primitive(jnp.float32(1e6)) - surrogate.primitive(jnp.float32(-1e6)))
    np.testing.assert_allclose(rise, integral, rtol=1e-4)


def test_boxcar_with_infinite_upper_edge():
    s = Boxcar(lo=-0.5, hi=math.inf, height=1.0)
    x = jnp.asarray([-10.0, -0.5001, -0.5, -0.4999, 0.0, 3.0, 1e6], jnp.float32)
    # (jitted: these odd shapes would otherwise compile every eager op once more)
    d = np.asarray(jax.jit(s.derivative)(x))
    np.testing.assert_array_equal(d, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    g = jax.jit(jax.grad(lambda v: jnp.sum(spike_count(v, s))))(x)
    np.testing.assert_array_equal(np.asarray(g), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    # the primitive has the right slope inside the support even though it is unbounded
    dp = jax.jit(jax.vmap(jax.grad(s.primitive)))(jnp.asarray([-0.25, 0.0, 2.0], jnp.float32))
    np.testing.assert_array_equal(np.asarray(dp), [1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------------
# forward values
# ----------------------------------------------------------------------------------
def forward_points() -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED + 2)
    integers = np.arange(-3.0, 6.0)
    halves = integers + 0.5
    tiny = np.array([-1e-7, -0.0, 0.0, 1e-7, np.nextafter(np.float32(1), np.float32(0)),
                     np.nextafter(np.float32(2), np.float32(3)), 1e9, -1e9])
    return np.concatenate([integers, halves, tiny, rng.uniform(-3.0, 6.0, 500)]).astype(np.float32)


@pytest.mark.parametrize("surrogate", [FastSigmoid(), Triangle(), Boxcar()], ids=["fs", "tri", "box"])
def test_single_spike_forward_is_heaviside(surrogate):
    x = forward_points()
    n = spike_count(jnp.asarray(x), surrogate)
    assert n.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(n), (x >= 0).astype(np.float32))
    # H(0) = 1, including for -0.0
    np.testing.assert_array_equal(np.asarray(spike_count(jnp.asarray([0.0, -0.0], jnp.float32), surrogate)),
                                  [1.0, 1.0])


@pytest.mark.parametrize("max_spikes", [2, 3, 5])
def test_multi_spike_forward_matches_numpy(max_spikes):
    x = forward_points()
    n = np.asarray(spike_count(jnp.asarray(x), FastSigmoid(), max_spikes))
    expected = np.clip(np.floor(x.astype(np.float64)) + 1.0, 0.0, max_spikes)
    np.testing.assert_array_equal(n, expected)
    # spot checks exactly at the integers for max_spikes=3
    if max_spikes == 3:
        at = jnp.asarray([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.999, 3.0, 10.0], jnp.float32)
        np.testing.assert_array_equal(np.asarray(spike_count(at, Triangle(), 3)),
                                      [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3])


def test_spike_count_works_under_jit_and_vmap():
    s = Boxcar()
    x = jnp.asarray(forward_points().reshape(-1, 1))
    out = jax.jit(jax.vmap(lambda v: spike_count(v, s, 3)))(x)
    expected = np.clip(np.floor(np.asarray(x, np.float64)) + 1.0, 0.0, 3.0)
    np.testing.assert_array_equal(np.asarray(out), expected)


# ----------------------------------------------------------------------------------
# forward mode == reverse mode
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("surrogate,ref,kinks,integral", CASES, ids=IDS)
def test_jvp_agrees_with_vjp(surrogate, ref, kinks, integral):
    rng = np.random.default_rng(RNG_SEED + 3)
    x = jnp.asarray(sample_points(kinks))
    v = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    max_spikes = 3 if isinstance(surrogate, Triangle) or surrogate == FastSigmoid(2.5) else 1
    f = lambda z: spike_count(z, surrogate, max_spikes)  # noqa: E731
    primal, tangent = jax.jvp(f, (x,), (v,))
    primal_r, pullback = jax.vjp(f, x)
    (cot,) = pullback(v)
    np.testing.assert_array_equal(np.asarray(primal), np.asarray(primal_r))
    # the Jacobian is diagonal, so J v == J^T v
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(cot), rtol=1e-6, atol=1e-8)
    expected = ref(np.asarray(x, np.float64)) * np.asarray(v, np.float64)
    np.testing.assert_allclose(np.asarray(tangent), expected, rtol=2e-6, atol=1e-7)


def test_jacfwd_equals_jacrev_and_is_diagonal():
    s = FastSigmoid(3.0)
    x = jnp.asarray([-1.5, -0.2, 0.0, 0.4, 2.5], jnp.float32)
    f = lambda z: spike_count(z, s, 3)  # noqa: E731
    jf = np.asarray(jax.jit(jax.jacfwd(f))(x))
    jr = np.asarray(jax.jit(jax.jacrev(f))(x))
    np.testing.assert_allclose(jf, jr, rtol=1e-6)
    np.testing.assert_allclose(jf, np.diag(ref_fast_sigmoid(np.asarray(x, np.float64), 3.0)), rtol=2e-6)


# ----------------------------------------------------------------------------------
# parameters, hashing and construction by name
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "factory,field",
    [
        (lambda: FastSigmoid(slope=-1.0), "FastSigmoid.slope"),
        (lambda: FastSigmoid(slope=0.0), "FastSigmoid.slope"),
        (lambda: FastSigmoid(slope=math.nan), "FastSigmoid.slope"),
        (lambda: Triangle(width=0.0), "Triangle.width"),
        (lambda: Triangle(width=-0.3), "Triangle.width"),
        (lambda: Boxcar(lo=0.5, hi=-0.5), "Boxcar.lo"),
        (lambda: Boxcar(lo=0.2, hi=0.2), "Boxcar.lo"),
        (lambda: Boxcar(height=0.0), "Boxcar.height"),
        (lambda: Boxcar(height=-2.0), "Boxcar.height"),
    ],
)
def test_bad_parameters_raise_value_error_naming_field(factory, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as info:
        factory()
    assert isinstance(info.value, ConfigError)


def test_surrogates_are_hashable_value_objects():
    assert FastSigmoid(3.0) == FastSigmoid(3.0) and hash(FastSigmoid(3.0)) == hash(FastSigmoid(3.0))
    assert FastSigmoid(3.0) != FastSigmoid(4.0)
    assert len({Triangle(0.5), Triangle(0.5), Boxcar(), Boxcar()}) == 2
    assert all(isinstance(s, Surrogate) for s in (FastSigmoid(), Triangle(), Boxcar()))
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'slope'"):
        FastSigmoid(3.0).slope = 5.0  # frozen


def test_make_surrogate_by_name():
    assert make_surrogate("fast-sigmoid", slope=3.0) == FastSigmoid(3.0)
    assert make_surrogate("fast-sigmoid") == FastSigmoid()
    assert make_surrogate("triangle", width=0.25) == Triangle(0.25)
    assert make_surrogate("boxcar", lo=-1.0, hi=2.0, height=0.5) == Boxcar(-1.0, 2.0, 0.5)
    # the built object really is the one asked for: its derivative at 0.1
    d = float(make_surrogate("fast-sigmoid", slope=3.0).derivative(jnp.float32(0.1)))
    assert d == pytest.approx(1.0 / 1.3**2, rel=1e-6)


def test_make_surrogate_unknown_name_lists_names():
    with pytest.raises(ValueError) as info:
        make_surrogate("sigmoid")
    msg = str(info.value)
    for name in ("fast-sigmoid", "triangle", "boxcar"):
        assert name in msg
    assert "sigmoid" in msg and msg.startswith("surrogate")


def test_make_surrogate_validates_parameters():
    with pytest.raises(ValueError, match=r"Triangle\.width"):
        make_surrogate("triangle", width=-1.0)
