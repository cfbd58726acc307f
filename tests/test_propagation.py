"""Event-driven spike propagation equals the dense product (values, gradients, vmap, simulate)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.models.dynapse2 import DynapSE2Config, init_dynapse2
from spikefleet.models.propagation import event_capacity, propagate, propagation
from spikefleet.simulation import simulate_batch

N, M = 96, 40
KEY = jax.random.PRNGKey(0)


def spikes(shape, p, key=KEY):
    return (jax.random.uniform(key, shape) < p).astype(jnp.float32) * jax.random.randint(key, shape, 1, 3)


@pytest.mark.parametrize("policy", ["auto", "dense", "events"])
@pytest.mark.parametrize("p", [0.03, 0.6])  # fits the event capacity / falls back to dense
def test_values_match_dense_under_nested_vmap(policy, p):
    w = jax.random.normal(KEY, (N, M))
    ws = jax.random.normal(jax.random.PRNGKey(1), (3, N, M))
    s = spikes((3, 5, N), p)
    with propagation(policy):
        one = propagate(s[0, 0], w)
        batch = jax.vmap(propagate, (0, None))(s[0], w)
        nested = jax.jit(jax.vmap(jax.vmap(propagate, (0, None)), (0, None)))(s, w)
        per_chip = jax.vmap(lambda sc, wc: jax.vmap(lambda si: propagate(si, wc))(sc))(s, ws)
        shared_s = jax.vmap(lambda wc: propagate(s[0, 0], wc))(ws)
    np.testing.assert_allclose(one, s[0, 0] @ w, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(batch, s[0] @ w, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(nested, s @ w, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(per_chip, jnp.einsum("cbn,cnm->cbm", s, ws), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(shared_s, jnp.einsum("n,cnm->cm", s[0, 0], ws), rtol=1e-5, atol=1e-4)


def test_gradients_are_the_dense_ones():
    w = jax.random.normal(KEY, (N, M))
    s = jax.random.uniform(KEY, (4, N)) * (jax.random.uniform(jax.random.PRNGKey(2), (4, N)) < 0.05)

    def loss(fn):
        return lambda s, w: jnp.sum(jnp.sin(jax.vmap(fn, (0, None))(s, w)))

    with propagation("events"):
        g = jax.grad(loss(propagate), argnums=(0, 1))(s, w)
    g_ref = jax.grad(loss(jnp.matmul), argnums=(0, 1))(s, w)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_capacity_and_errors():
    assert event_capacity(1024) == 64 and event_capacity(20) == 16 and event_capacity(8) == 8
    with pytest.raises(ConfigError, match="policy"):
        with propagation("sparse"):
            pass
    with pytest.raises(ConfigError, match="propagate"):
        propagate(jnp.zeros(3), jnp.zeros((4, 2)))


@pytest.mark.parametrize("model", ["lif", "dynapse2"])
def test_simulate_with_events_matches_dense(model):
    c, n, b, t = 4, 64, 3, 120
    x = jax.random.poisson(KEY, 0.05, (b, t, c)).astype(jnp.float32)
    if model == "lif":
        net = init_spiking(SpikingConfig(n_in=c, n_hidden=n, n_out=2), KEY, in_scale=4.0)
    else:
        net = init_dynapse2(DynapSE2Config(n_in=c, n_hidden=n), KEY, in_scale=3.0)
    outs = {}
    for policy in ("dense", "events"):
        with propagation(policy):
            run = eqx.filter_jit(lambda m, x: simulate_batch(m, x, record=("spikes",)))
            res = run(net, x)
        outs[policy] = res
    spikes_dense = np.asarray(outs["dense"].traces["spikes"])
    assert spikes_dense.sum() > 50
    np.testing.assert_array_equal(np.asarray(outs["events"].traces["spikes"]), spikes_dense)
    np.testing.assert_allclose(outs["events"].outputs, outs["dense"].outputs, rtol=1e-4, atol=1e-4)
