"""Uniform b-bit weight quantisation (spikefleet.fleet.quantize) against NumPy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.fleet.quantize import quantize_matrices, quantize_uniform, step_size
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork
from spikefleet.neurons.lif import LIF

BITS = [1, 2, 3, 4, 6, 8]


def _matrix(seed=0, shape=(24, 40), sparse=False):
    rng = np.random.default_rng(seed)
    w = rng.normal(0.3, 1.7, size=shape).astype(np.float32)
    if sparse:
        w[rng.random(shape) < 0.5] = 0.0
    return w


def _np_delta(w, bits):
    w = np.asarray(w, np.float64)
    return (w.max() - w.min()) / (2**bits - 1)


def _np_zero_grid(w, bits):
    """Reference in float32 arithmetic, as the implementation's dtype: Δ · round(W / Δ)."""
    w = np.asarray(w, np.float32)
    d = np.float32((w.max() - w.min()) / np.float32(2**bits - 1))
    return d * np.round(w / d)


def _np_offset_grid(w, bits):
    w = np.asarray(w, np.float32)
    lo = w.min()
    d = np.float32((w.max() - lo) / np.float32(2**bits - 1))
    return lo + d * np.round((w - lo) / d)


def _ulp_slack(w):
    """Float32 rounding slack for comparisons made in float64."""
    return 4 * np.finfo(np.float32).eps * float(np.max(np.abs(w)))


@pytest.mark.parametrize("grid", ["zero", "offset"])
@pytest.mark.parametrize("bits", BITS)
def test_error_at_most_half_a_step(bits, grid):
    for seed in range(3):
        w = _matrix(seed, sparse=seed == 2)
        q = np.asarray(quantize_uniform(jnp.asarray(w), bits, grid=grid), np.float64)
        d = _np_delta(w, bits)
        assert float(step_size(jnp.asarray(w), bits)) == pytest.approx(d, rel=1e-6)
        err = np.abs(q - w.astype(np.float64))
        assert err.max() <= d / 2 + _ulp_slack(w)
        # the bound is tight-ish: the error is not trivially zero
        assert err.max() > d / 4


@pytest.mark.parametrize("bits", BITS)
def test_zero_grid_matches_numpy_and_keeps_zeros(bits):
    w = _matrix(1, sparse=True)
    q = np.asarray(quantize_uniform(jnp.asarray(w), bits, grid="zero"))
    ref = _np_zero_grid(w, bits)
    np.testing.assert_allclose(q, ref, rtol=0, atol=_ulp_slack(w))
    assert np.all(q[w == 0] == 0)
    assert np.unique(q).size <= 2**bits + 1
    # every value is an integer multiple of Δ
    d = _np_delta(w, bits)
    k = q.astype(np.float64) / d
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)


@pytest.mark.parametrize("bits", BITS)
def test_offset_grid_matches_numpy_levels_and_is_idempotent(bits):
    w = _matrix(2)
    q = np.asarray(quantize_uniform(jnp.asarray(w), bits, grid="offset", straight_through=False))
    ref = _np_offset_grid(w, bits)
    np.testing.assert_allclose(q, ref, rtol=0, atol=_ulp_slack(w))
    assert np.unique(q).size <= 2**bits
    d = _np_delta(w, bits)
    k = (q.astype(np.float64) - float(w.min())) / d
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    assert k.min() > -1e-4 and k.max() < 2**bits - 1 + 1e-4
    again = np.asarray(quantize_uniform(jnp.asarray(q), bits, grid="offset", straight_through=False))
    np.testing.assert_array_equal(again, q)


def test_levels_are_all_used_for_dense_matrix():
    # a matrix covering its range densely uses every one of the 2^b offset levels
    w = np.linspace(-1.0, 2.0, 960, dtype=np.float32).reshape(24, 40)
    for bits in (1, 2, 3, 5):
        q = np.asarray(quantize_uniform(jnp.asarray(w), bits, grid="offset", straight_through=False))
        assert np.unique(q).size == 2**bits


@pytest.mark.parametrize("bits", [1, 3])
def test_default_straight_through_offset_grid_is_exact(bits):
    w = jnp.asarray(_matrix(0))
    q = np.asarray(quantize_uniform(w, bits, grid="offset"))  # straight_through=True by default
    exact = np.asarray(quantize_uniform(w, bits, grid="offset", straight_through=False))
    assert np.unique(q).size <= 2**bits
    np.testing.assert_array_equal(q, exact)
    np.testing.assert_array_equal(np.asarray(quantize_uniform(jnp.asarray(q), bits, grid="offset")), q)


@pytest.mark.parametrize("grid", ["zero", "offset"])
def test_straight_through_gradient_and_forward_value(grid):
    w = jnp.asarray(_matrix(3))
    g = jax.grad(lambda x: jnp.sum(quantize_uniform(x, 3, grid=grid)))(w)
    np.testing.assert_array_equal(np.asarray(g), np.ones(w.shape, np.float32))
    # a weighted sum: the gradient is the weights (identity Jacobian)
    c = jnp.asarray(np.random.default_rng(0).normal(size=w.shape).astype(np.float32))
    g2 = jax.grad(lambda x: jnp.sum(c * quantize_uniform(x, 3, grid=grid)))(w)
    np.testing.assert_allclose(np.asarray(g2), np.asarray(c), rtol=1e-6)
    fwd = np.asarray(quantize_uniform(w, 3, grid=grid))
    exact = np.asarray(quantize_uniform(w, 3, grid=grid, straight_through=False))
    # equal up to the float32 rounding of w + (Q(W) - w)
    np.testing.assert_allclose(fwd, exact, rtol=0, atol=2 * np.finfo(np.float32).eps * float(jnp.max(jnp.abs(w))))
    # without the straight-through estimator, rounding has zero gradient almost everywhere
    g0 = np.asarray(jax.grad(lambda x: jnp.sum(quantize_uniform(x, 3, grid=grid, straight_through=False)))(w))
    assert np.mean(g0 == 0) > 0.9


@pytest.mark.parametrize("grid", ["zero", "offset"])
@pytest.mark.parametrize("ste", [True, False])
def test_constant_matrix_is_unchanged(grid, ste):
    w = jnp.full((5, 6), 0.37, jnp.float32)
    q = quantize_uniform(w, 4, grid=grid, straight_through=ste)
    np.testing.assert_array_equal(np.asarray(q), np.asarray(w))
    assert float(step_size(w, 4)) == 0.0
    assert np.all(np.isfinite(np.asarray(q)))


def _net(fast=True):
    """A small network built from NumPy draws (no PRNG compilation). The matrices have very
    different ranges, so a step shared between them would be visible."""
    rng = np.random.default_rng(5)
    n = 12
    cfg = SpikingConfig(n_in=3, n_hidden=n, n_out=2, fast=fast)
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
    return SpikingNetwork(
        w_in=f32(0.05 * rng.normal(size=(3, n))), w_rec=f32(rng.normal(size=(n, n)) * (1 - np.eye(n))),
        w_out=f32(20.0 * rng.normal(size=(n, 2))), b_out=f32(rng.normal(size=2)),
        tau_out=f32(np.linspace(0.01, 0.05, n)),
        neurons=LIF.create(n, n_synapses=2 if fast else 1, tau_syn=(10e-3, 3e-3) if fast else 10e-3),
        w_fast=f32(3.0 * rng.normal(size=(n, n))) if fast else None, config=cfg)


def _leaf_bytes(get, a, b):
    return np.asarray(get(a)).tobytes() == np.asarray(get(b)).tobytes()


OTHER_LEAVES = {
    "b_out": lambda m: m.b_out,
    "tau_out": lambda m: m.tau_out,
    "tau_mem": lambda m: m.neurons.tau_mem,
    "tau_syn": lambda m: m.neurons.tau_syn,
    "threshold": lambda m: m.neurons.threshold,
    "bias": lambda m: m.neurons.bias,
}


def test_quantize_matrices_default_set():
    net = _net()
    bits = 3
    out = quantize_matrices(net, bits)
    for name in ("w_in", "w_rec", "w_out"):
        w = np.asarray(getattr(net, name))
        q = np.asarray(getattr(out, name), np.float64)
        # each matrix uses its own range (per-matrix step)
        d = _np_delta(w, bits)
        assert np.abs(q - w).max() <= d / 2 + _ulp_slack(w)
        np.testing.assert_allclose(q, _np_zero_grid(w, bits), rtol=0, atol=_ulp_slack(w))
        assert np.unique(np.asarray(getattr(out, name))).size <= 2**bits + 1
        assert not np.array_equal(q, w)
    assert _leaf_bytes(lambda m: m.w_fast, out, net)  # not named: untouched
    for get in OTHER_LEAVES.values():
        assert _leaf_bytes(get, out, net)
    assert out.config == net.config


def test_quantize_matrices_named_subset_and_offset_grid():
    net = _net()
    out = quantize_matrices(net, 2, ("w_fast", "w_out"), grid="offset", straight_through=False)
    for name in ("w_fast", "w_out"):
        w = np.asarray(getattr(net, name))
        np.testing.assert_allclose(np.asarray(getattr(out, name)), _np_offset_grid(w, 2), rtol=0,
                                   atol=_ulp_slack(w))
        assert np.unique(np.asarray(getattr(out, name))).size <= 4
    for name in ("w_in", "w_rec"):
        assert _leaf_bytes(lambda m: getattr(m, name), out, net)
    for get in OTHER_LEAVES.values():
        assert _leaf_bytes(get, out, net)


def test_quantize_matrices_none_bits_and_absent_matrix():
    net = _net()
    assert quantize_matrices(net, None) is net
    plain = _net(fast=False)
    out = quantize_matrices(plain, 4, ("w_fast", "w_rec"))  # no fast weights: skipped
    assert out.w_fast is None
    assert not np.array_equal(np.asarray(out.w_rec), np.asarray(plain.w_rec))
    assert _leaf_bytes(lambda m: m.w_in, out, plain)
    with pytest.raises(ConfigError, match="matrices") as err:
        quantize_matrices(net, 4, ("w_in", "w_hidden"))
    assert "w_hidden" in str(err.value)


@pytest.mark.parametrize("bits", [0, 33, 2.5, True, -1, "8"])
def test_bad_bits_raise(bits):
    w = jnp.asarray(_matrix(0))
    for call in (lambda: quantize_uniform(w, bits), lambda: step_size(w, bits),
                 lambda: quantize_matrices(_net(), bits)):
        with pytest.raises(ValueError, match="bits") as err:
            call()
        assert isinstance(err.value, ConfigError)
        assert repr(bits) in str(err.value)


@pytest.mark.parametrize("grid", ["Zero", "symmetric", None])
def test_bad_grid_raises(grid):
    with pytest.raises(ValueError, match="grid") as err:
        quantize_uniform(jnp.asarray(_matrix(0)), 4, grid=grid)
    assert repr(grid) in str(err.value)
    with pytest.raises(ValueError, match="grid"):
        quantize_matrices(_net(), 4, grid=grid)


def test_thirty_two_bits_is_accepted():
    w = jnp.asarray(_matrix(0))
    d = float(step_size(w, 32))
    assert d == pytest.approx(_np_delta(np.asarray(w), 32), rel=1e-6)
    q = np.asarray(quantize_uniform(w, 32))
    # far below float32 resolution: the matrix comes back unchanged up to Δ/2 plus float32 rounding
    np.testing.assert_allclose(q, np.asarray(w), rtol=2.5e-7, atol=d / 2)
