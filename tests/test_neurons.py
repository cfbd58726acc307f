"""Tests for the neuron models (spikefleet.neurons.lif, spikefleet.neurons.rate).

References are independent of the implementation: closed forms from the module docstrings and
plain float64 NumPy loops of the documented update equations.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.models.rate import RateConfig, RateNetwork
from spikefleet.neurons.lif import LIF, LIFState
from spikefleet.neurons.rate import TanhRate
from spikefleet.neurons.surrogate import FastSigmoid
from spikefleet.simulation import simulate

DT = 1e-3


def f32(x):
    return jnp.asarray(np.asarray(x, np.float64), jnp.float32)


def lif_fields(lif: LIF) -> dict:
    """All constructor fields of a LIF (robust to fields added later, e.g. fault masks)."""
    return {f.name: getattr(lif, f.name) for f in dataclasses.fields(lif)}


def make_lif(arrays: dict, **static) -> LIF:
    """A LIF with per-neuron arrays from ``arrays`` and every other field from ``LIF.create``."""
    n = len(arrays["tau_mem"])
    fields = lif_fields(LIF.create(n, n_synapses=np.shape(arrays["tau_syn"])[0], **static))
    fields.update({k: f32(v) for k, v in arrays.items()})
    return LIF(**fields)


@eqx.filter_jit
def run_lif(lif: LIF, syn: jax.Array, cur: jax.Array):
    """Scan ``LIF.step`` over ``syn [T, S, N]`` and ``cur [T, N]``; return spikes, V, i_syn per step."""

    def body(state, xs):
        u, j = xs
        state, n = lif.step(state, u, j)
        return state, (n, state.v, state.i_syn)

    _, out = jax.lax.scan(body, lif.init_state(), (syn, cur))
    return out


@eqx.filter_jit
def lif_step(lif: LIF, state: LIFState, syn: jax.Array, key):
    return lif.step(state, syn, None, key=key)


def membrane_factor_ref(tau: np.ndarray, integrator: str, dt: float = DT) -> np.ndarray:
    tau = np.asarray(tau, np.float64)
    return dt / tau if integrator == "euler" else 1.0 - np.exp(-dt / tau)


# ----------------------------------------------------------------------------------
# sub-threshold closed form
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_subthreshold_constant_current_closed_form(integrator):
    rng = np.random.default_rng(11)
    n, steps = 6, 300
    tau = rng.uniform(5e-3, 60e-3, n)
    v_rest = rng.uniform(-0.5, 0.5, n)
    v0 = rng.uniform(-1.0, 1.0, n)
    bias = rng.uniform(-0.5, 0.5, n)
    current = rng.uniform(-1.0, 1.5, n)
    lif = LIF.create(n, tau_mem=f32(tau), threshold=100.0, v_rest=f32(v_rest), v_reset=-100.0,
                     bias=f32(bias), v_init=f32(v0), dt=DT, integrator=integrator)
    syn = jnp.zeros((steps, 1, n), jnp.float32)
    cur = jnp.broadcast_to(f32(current), (steps, n))
    spikes, v, _ = run_lif(lif, syn, cur)
    assert float(jnp.sum(spikes)) == 0.0

    a = membrane_factor_ref(np.asarray(lif.tau_mem, np.float64), integrator)
    v_inf = np.asarray(lif.v_rest, np.float64) + np.asarray(lif.bias, np.float64) + np.asarray(cur[0], np.float64)
    t = np.arange(1, steps + 1)[:, None]  # output row k holds V[k + 1]
    expected = v_inf + (np.asarray(lif.v_init, np.float64) - v_inf) * (1.0 - a) ** t
    np.testing.assert_allclose(np.asarray(v, np.float64), expected, rtol=1e-5, atol=2e-6)
    # the trajectory really moves (V0 far from V∞ for every neuron)
    assert np.all(np.abs(expected[-1] - expected[0]) > 0.05)


def test_euler_and_exact_factors_differ_as_documented():
    lif = LIF.create(3, tau_mem=f32([2e-3, 20e-3, 200e-3]), dt=DT, integrator="euler")
    np.testing.assert_allclose(np.asarray(lif.membrane_factor()), [0.5, 0.05, 0.005], rtol=1e-6)
    lif = LIF.create(3, tau_mem=f32([2e-3, 20e-3, 200e-3]), dt=DT, integrator="exact")
    np.testing.assert_allclose(np.asarray(lif.membrane_factor()), 1.0 - np.exp(-np.array([0.5, 0.05, 0.005])),
                               rtol=1e-6)


def test_synaptic_current_closed_form():
    # constant drive u on one synapse group: I[t] = ν u (1 − α^t)/(1 − α)
    n, steps = 4, 120
    tau_syn = np.array([2e-3, 5e-3, 10e-3, 30e-3])
    u = np.array([0.3, -0.2, 0.1, 0.05])
    for norm in ("none", "unit_area"):
        lif = LIF.create(n, tau_syn=f32(tau_syn), threshold=100.0, v_reset=-100.0, dt=DT, synapse_norm=norm)
        ts = np.asarray(lif.tau_syn[0], np.float64)
        nu = 1.0 / ts if norm == "unit_area" else np.ones(n)
        syn = jnp.broadcast_to(f32(u), (steps, 1, n))
        _, _, i_syn = run_lif(lif, syn, jnp.zeros((steps, n), jnp.float32))
        alpha = np.exp(-DT / ts)
        t = np.arange(1, steps + 1)[:, None]
        expected = nu * u * (1.0 - alpha**t) / (1.0 - alpha)
        np.testing.assert_allclose(np.asarray(i_syn[:, 0], np.float64), expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------
# time to first spike
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("integrator", ["euler", "exact"])
def test_time_to_first_spike(integrator):
    n, steps = 6, 300
    threshold, v_reset, tau = 1.0, 0.0, 20e-3
    drive = np.array([1.1, 1.3, 1.5, 2.0, 3.0, 6.0])
    lif = LIF.create(n, tau_mem=tau, threshold=threshold, v_rest=0.0, v_reset=v_reset, v_init=v_reset,
                     dt=DT, integrator=integrator)
    cur = jnp.broadcast_to(f32(drive), (steps, n))
    spikes, _, _ = run_lif(lif, jnp.zeros((steps, 1, n), jnp.float32), cur)
    spikes = np.asarray(spikes)

    a = float(membrane_factor_ref(np.float64(np.float32(tau)), integrator))
    v_inf = np.asarray(cur[0], np.float64)
    # closed form from the lif.py docstring
    ratio = np.log((v_inf - threshold) / (v_inf - v_reset)) / np.log(1.0 - a)
    # no rounding ambiguity: the real-valued crossing time is far from an integer
    assert np.all(np.abs(ratio - np.round(ratio)) > 0.02), ratio
    t_star = np.ceil(ratio).astype(int)

    # independent float64 loop: V[0] = v_reset, V[t] = V[t-1] + a (V∞ − V[t-1])
    t_loop = np.zeros(n, int)
    for i in range(n):
        v, t = v_reset, 0
        while v < threshold:
            v = v + a * (v_inf[i] - v)
            t += 1
        t_loop[i] = t
    np.testing.assert_array_equal(t_loop, t_star)
    assert len(set(t_star.tolist())) == n  # the cases are distinct

    # spikes output row k is the step producing V[k + 1], so the first spike sits at row t* − 1
    first = np.argmax(spikes > 0, axis=0)
    assert np.all(spikes.max(axis=0) == 1.0)
    np.testing.assert_array_equal(first, t_star - 1)


# ----------------------------------------------------------------------------------
# full reference loop of LIF.step
# ----------------------------------------------------------------------------------
def lif_reference(params: dict, syn: np.ndarray, cur: np.ndarray, *, reset: str, max_spikes: int,
                  synapse_norm: str, refractory_steps: int, integrator: str):
    """Float64 loop of the documented LIF step. Returns spikes, V, i_syn and the smallest distance
    of the normalised potential to a spike-count boundary (a measure of rounding ambiguity)."""
    tau_mem, tau_syn = params["tau_mem"], params["tau_syn"]
    th, v_rest, v_reset, bias = params["threshold"], params["v_rest"], params["v_reset"], params["bias"]
    steps, s, n = syn.shape
    a = membrane_factor_ref(tau_mem, integrator)
    alpha = np.exp(-DT / tau_syn)
    gap = th - v_reset
    v = params["v_init"].copy()
    i_syn = np.zeros((s, n))
    counter = np.zeros(n, int)
    out_n, out_v, out_i = np.zeros((steps, n)), np.zeros((steps, n)), np.zeros((steps, s, n))
    margin = np.inf
    for t in range(steps):
        drive = syn[t] / tau_syn if synapse_norm == "unit_area" else syn[t]
        i_syn = alpha * i_syn + drive
        total = i_syn.sum(axis=0) + cur[t] + bias
        v = v + a * (v_rest - v + total)
        blocked = counter > 0 if refractory_steps > 0 else np.zeros(n, bool)
        v = np.where(blocked, v_reset, v)
        x = (v - th) / gap
        if max_spikes == 1:
            count = (x >= 0).astype(float)
            dist = np.abs(x)
        else:
            count = np.clip(np.floor(x) + 1.0, 0.0, max_spikes)
            dist = np.min(np.abs(x[:, None] - np.arange(max_spikes)[None, :]), axis=1)
        count = np.where(blocked, 0.0, count)
        if np.any(~blocked):
            margin = min(margin, float(dist[~blocked].min()))
        if reset == "subtract":
            v = v - count * gap
        else:
            v = np.where(count > 0, v_reset, v)
        if refractory_steps > 0:
            counter = np.where(count > 0, refractory_steps, np.maximum(counter - 1, 0))
        out_n[t], out_v[t], out_i[t] = count, v, i_syn
    return out_n, out_v, out_i, margin


COMBOS = list(itertools.product(["subtract", "value"], [1, 3], ["none", "unit_area"], [0.0, 3e-3]))


@pytest.mark.parametrize("reset,max_spikes,synapse_norm,refractory", COMBOS,
                         ids=[f"{r}-m{m}-{s}-ref{int(q * 1e3)}" for r, m, s, q in COMBOS])
def test_lif_matches_numpy_reference(reset, max_spikes, synapse_norm, refractory):
    # both integrators are covered: the choice alternates over the 16 combinations
    index = COMBOS.index((reset, max_spikes, synapse_norm, refractory))
    integrator = "euler" if index % 2 else "exact"
    n, s, steps = 5, 2, 200
    refractory_steps = round(refractory / DT)
    # deterministic search over seeds for a draw whose every spike decision is clear of float32
    # rounding (the float64 reference and the float32 model must take the same branch)
    for seed in range(100 * index, 100 * index + 50):
        rng = np.random.default_rng(seed)
        params = {
            "tau_mem": rng.uniform(10e-3, 40e-3, n),
            "tau_syn": rng.uniform(3e-3, 20e-3, (s, n)),
            "threshold": rng.uniform(0.8, 1.5, n),
            "v_rest": rng.uniform(-0.2, 0.2, n),
            "v_reset": rng.uniform(-0.5, 0.0, n),
            "bias": rng.uniform(0.0, 0.3, n),
            "v_init": rng.uniform(-0.3, 0.5, n),
        }
        # parameters and inputs at float32 precision so that both sides use identical values
        params = {k: np.asarray(np.float32(v), np.float64) for k, v in params.items()}
        syn_scale = 0.08 if synapse_norm == "none" else 0.08 * 10e-3
        syn = syn_scale * (0.8 + rng.normal(size=(steps, s, n)))
        cur = 0.3 * rng.normal(size=(steps, n)) + 80.0 * (rng.uniform(size=(steps, n)) < 0.03)
        syn = np.asarray(np.float32(syn), np.float64)
        cur = np.asarray(np.float32(cur), np.float64)
        ref_n, ref_v, ref_i, margin = lif_reference(
            params, syn, cur, reset=reset, max_spikes=max_spikes, synapse_norm=synapse_norm,
            refractory_steps=refractory_steps, integrator=integrator)
        if margin > 2e-5:
            break
    assert margin > 2e-5, margin
    # the reference is not trivial: every neuron spikes, multi-spike steps occur when allowed
    assert ref_n.sum() >= 20 and np.all(ref_n.sum(axis=0) > 0)
    if max_spikes > 1:
        assert ref_n.max() > 1

    lif = make_lif(params, dt=DT, reset=reset, refractory=refractory, max_spikes=max_spikes,
                   integrator=integrator, synapse_norm=synapse_norm)
    spikes, v, i_syn = run_lif(lif, f32(syn), f32(cur))
    np.testing.assert_array_equal(np.asarray(spikes, np.float64), ref_n)
    np.testing.assert_allclose(np.asarray(v, np.float64), ref_v, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(i_syn, np.float64), ref_i, rtol=1e-5, atol=1e-5)

    if refractory_steps > 0:
        # after a spike a neuron is silent for exactly refractory_steps steps and pinned to V_reset
        for i in range(n):
            times = np.flatnonzero(ref_n[:, i])
            assert np.all(np.diff(times) > refractory_steps)
            for t0 in times:
                window = slice(t0 + 1, min(t0 + 1 + refractory_steps, steps))
                np.testing.assert_allclose(np.asarray(v)[window, i], params["v_reset"][i], atol=1e-6)
    if reset == "value":
        where = ref_n > 0
        np.testing.assert_allclose(np.asarray(v, np.float64)[where],
                                   np.broadcast_to(params["v_reset"], ref_n.shape)[where], atol=1e-6)


# ----------------------------------------------------------------------------------
# noise
# ----------------------------------------------------------------------------------
def test_noise_std_is_fraction_of_threshold_reset_gap():
    n, steps, noise = 20000, 4, 0.05
    lif = LIF.create(n, tau_mem=1e6, threshold=2.0, v_rest=0.0, v_reset=-1.0, v_init=0.0, dt=DT, noise=noise)
    state = lif.init_state()
    syn = jnp.zeros((1, n), jnp.float32)
    key = jax.random.PRNGKey(7)
    vs = [np.asarray(state.v, np.float64)]
    total_spikes = 0.0
    for t in range(steps):
        state, spikes = lif_step(lif, state, syn, jax.random.fold_in(key, t))
        vs.append(np.asarray(state.v, np.float64))
        total_spikes += float(jnp.sum(spikes))
    assert total_spikes == 0.0
    increments = np.diff(np.stack(vs), axis=0)  # leak is ~1e-9 per step, so these are the noise
    expected_std = noise * (2.0 - (-1.0))
    assert abs(increments.std() / expected_std - 1.0) < 0.03
    assert abs(increments.mean()) < 5 * expected_std / math.sqrt(increments.size)
    # successive steps draw independent noise
    corr = np.corrcoef(increments[0], increments[1])[0, 1]
    assert abs(corr) < 0.05


def test_noise_is_deterministic_given_key():
    lif = LIF.create(50, dt=DT, noise=0.1, v_init=0.2)
    syn = jnp.zeros((1, 50), jnp.float32)
    s1, _ = lif_step(lif, lif.init_state(), syn, jax.random.PRNGKey(3))
    s2, _ = lif_step(lif, lif.init_state(), syn, jax.random.PRNGKey(3))
    s3, _ = lif_step(lif, lif.init_state(), syn, jax.random.PRNGKey(4))
    np.testing.assert_array_equal(np.asarray(s1.v), np.asarray(s2.v))
    assert np.max(np.abs(np.asarray(s1.v) - np.asarray(s3.v))) > 1e-3


def test_noise_without_key_raises():
    lif = LIF.create(3, dt=DT, noise=0.1)
    with pytest.raises(ValueError, match="key"):
        lif.step(lif.init_state(), jnp.zeros((1, 3), jnp.float32), None)
    with pytest.raises(ValueError, match="key"):
        lif_step(lif, lif.init_state(), jnp.zeros((1, 3), jnp.float32), None)
    # noise-free neurons need no key
    lif0 = LIF.create(3, dt=DT)
    state, spikes = lif_step(lif0, lif0.init_state(), jnp.zeros((1, 3), jnp.float32), None)
    assert spikes.shape == (3,)


# ----------------------------------------------------------------------------------
# tanh rate units
# ----------------------------------------------------------------------------------
@eqx.filter_jit
def run_rate(units: TanhRate, current: jax.Array):
    def body(x, i_t):
        x_next, a = units.step(x, i_t)
        return x_next, (x_next, a)

    _, out = jax.lax.scan(body, units.init_state(), current)
    return out


@pytest.mark.parametrize("min_tau", [0.0, 30e-3])
def test_tanh_rate_closed_form(min_tau):
    steps = 300
    tau = np.array([10e-3, 30e-3, 50e-3, 100e-3])
    bias = np.array([0.2, -0.1, 0.0, 0.5])
    current = np.array([0.3, -1.1, 2.0, -0.2])
    units = TanhRate.create(4, tau=f32(tau), bias=f32(bias), dt=DT, min_tau=min_tau)
    x_next, a = run_rate(units, jnp.broadcast_to(f32(current), (steps, 4)))
    c = np.asarray(f32(current), np.float64) + np.asarray(units.bias, np.float64)
    tau_eff = np.maximum(np.asarray(units.tau, np.float64), min_tau)
    t = np.arange(steps + 1)[:, None]
    x_ref = c * (1.0 - (1.0 - DT / tau_eff) ** t)  # x[0] .. x[T]
    np.testing.assert_allclose(np.asarray(x_next, np.float64), x_ref[1:], rtol=1e-5, atol=1e-6)
    # a[t] is tanh of the state BEFORE the update: a[0] = tanh(0) = 0
    np.testing.assert_allclose(np.asarray(a, np.float64), np.tanh(x_ref[:-1]), rtol=1e-5, atol=1e-6)
    assert float(a[0, 0]) == 0.0
    if min_tau > 0:  # the 10 ms unit is slowed to 30 ms: far from the 10 ms trajectory
        fast = 0.5 * (1.0 - (1.0 - DT / 10e-3) ** 20)
        assert abs(float(x_next[19, 0]) - fast) > 0.1


def rate_reference(w_in, w_rec, w_out, tau, bias, inputs):
    steps = inputs.shape[0]
    x = np.zeros(w_rec.shape[0])
    ys, xs, as_ = [], [], []
    for t in range(steps):
        a = np.tanh(x)
        xs.append(x.copy())
        as_.append(a)
        ys.append(a @ w_out)
        x = x + DT / tau * (-x + inputs[t] @ w_in + a @ w_rec + bias)
    return np.array(ys), np.array(xs), np.array(as_)


def test_rate_network_matches_numpy_loop():
    rng = np.random.default_rng(99)
    c, n, o, steps = 3, 8, 2, 250
    cfg = RateConfig(n_in=c, n_hidden=n, n_out=o, dt=DT)
    w_in = rng.normal(0, 1.0, (c, n))
    w_rec = rng.normal(0, 0.4, (n, n))
    w_out = rng.normal(0, 0.5, (n, o))
    tau = rng.uniform(10e-3, 80e-3, n)
    bias = rng.normal(0, 0.3, n)
    net = RateNetwork(w_in=f32(w_in), w_rec=f32(w_rec), w_out=f32(w_out),
                      units=TanhRate(tau=f32(tau), bias=f32(bias), dt=DT), config=cfg)
    inputs = np.asarray(np.float32(np.sin(np.arange(steps)[:, None] * np.array([0.03, 0.07, 0.11]))), np.float64)
    res = simulate(net, f32(inputs), record=("x", "a"))
    as64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    y_ref, x_ref, a_ref = rate_reference(as64(net.w_in), as64(net.w_rec), as64(net.w_out), as64(net.units.tau),
                                         as64(net.units.bias), inputs)
    assert res.outputs.shape == (steps, o)
    np.testing.assert_allclose(as64(res.outputs), y_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(as64(res.traces["x"]), x_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(as64(res.traces["a"]), a_ref, rtol=1e-4, atol=1e-5)
    # a is the tanh of the recorded (pre-update) x, and x[0] = 0
    np.testing.assert_allclose(as64(res.traces["a"]), np.tanh(as64(res.traces["x"])), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(res.traces["x"][0]), np.zeros(n))
    # final state is x[T]
    x_last = x_ref[-1] + DT / as64(net.units.tau) * (-x_ref[-1] + inputs[-1] @ as64(net.w_in)
                                                     + a_ref[-1] @ as64(net.w_rec) + as64(net.units.bias))
    np.testing.assert_allclose(as64(res.final_state), x_last, rtol=1e-4, atol=1e-5)
    # the dynamics are not trivial: the units move well away from 0
    assert np.abs(x_ref).max() > 0.5


# ----------------------------------------------------------------------------------
# construction and validation
# ----------------------------------------------------------------------------------
def good_fields(n=4, s=1):
    return lif_fields(LIF.create(n, n_synapses=s))


def test_create_broadcasts_scalars_and_per_group_tau_syn():
    lif = LIF.create(4, n_synapses=2, tau_mem=0.03, tau_syn=f32([10e-3, 5e-3]), threshold=1.5, v_rest=0.1)
    assert lif.n == 4 and lif.n_synapses == 2
    np.testing.assert_allclose(np.asarray(lif.tau_syn), [[10e-3] * 4, [5e-3] * 4], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(lif.v_init), [0.1] * 4, rtol=1e-6)  # defaults to v_rest
    state = lif.init_state()
    assert isinstance(state, LIFState)
    assert state.i_syn.shape == (2, 4) and state.refractory.dtype == jnp.int32
    assert isinstance(lif.surrogate, FastSigmoid)
    LIF(**good_fields(4, 2))  # direct construction with consistent shapes works


@pytest.mark.parametrize(
    "change,field",
    [
        (dict(tau_mem=jnp.ones((4, 1))), "LIF.tau_mem"),
        (dict(tau_syn=jnp.ones((4,))), "LIF.tau_syn"),
        (dict(tau_syn=jnp.ones((1, 3))), "LIF.tau_syn"),
        (dict(threshold=jnp.ones((3,))), "LIF.threshold"),
        (dict(v_rest=jnp.ones((5,))), "LIF.v_rest"),
        (dict(v_reset=jnp.ones((4, 1))), "LIF.v_reset"),
        (dict(bias=jnp.ones(())), "LIF.bias"),
        (dict(v_init=jnp.ones((2,))), "LIF.v_init"),
        (dict(dt=0.0), "LIF.dt"),
        (dict(dt=-1e-3), "LIF.dt"),
        (dict(reset="hard"), "LIF.reset"),
        (dict(integrator="rk4"), "LIF.integrator"),
        (dict(synapse_norm="peak"), "LIF.synapse_norm"),
        (dict(max_spikes=0), "LIF.max_spikes"),
        (dict(max_spikes=2.0), "LIF.max_spikes"),
        (dict(refractory=-1e-3), "LIF.refractory"),
        (dict(noise=-0.1), "LIF.noise"),
    ],
)
def test_lif_init_checks_name_the_field(change, field):
    fields = good_fields()
    fields.update(change)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as info:
        LIF(**fields)
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(reset="hard"), "LIF.reset"),
        (dict(dt=0.0), "LIF.dt"),
        (dict(dt=-0.5), "LIF.dt"),
        (dict(integrator="midpoint"), "LIF.integrator"),
        (dict(max_spikes=-1), "LIF.max_spikes"),
    ],
)
def test_create_static_checks_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        LIF.create(4, **kwargs)


@pytest.mark.parametrize("n,n_synapses,field", [(0, 1, "n"), (-2, 1, "n"), (2.5, 1, "n"), (3, 0, "n_synapses")])
def test_create_size_checks_name_the_field(n, n_synapses, field):
    with pytest.raises(ValueError, match=rf"^{field}: expected"):
        LIF.create(n, n_synapses=n_synapses)


@pytest.mark.parametrize("kwargs,field", [(dict(threshold=jnp.ones((3,))), "threshold"),
                                          (dict(tau_mem=jnp.ones((3,))), "tau_mem")])
def test_create_wrong_shape_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LIF.create(5, **kwargs)


@pytest.mark.parametrize(
    "kwargs,field",
    [(dict(tau=jnp.ones((2, 2))), "TanhRate.tau"), (dict(bias=jnp.ones((3,))), "TanhRate.bias"),
     (dict(dt=0.0), "TanhRate.dt")],
)
def test_tanh_rate_checks_name_the_field(kwargs, field):
    fields = dict(tau=jnp.full((4,), 0.05, jnp.float32), bias=jnp.zeros((4,), jnp.float32))
    fields.update(kwargs)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        TanhRate(**fields)
