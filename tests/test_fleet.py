"""Chip fleets (spikefleet.fleet.chip/faults/noise/evaluate/sweep).

References: ``evaluate_fleet`` against a plain Python loop over chips (``realize`` + a simulation
+ the task's NumPy accuracy + a NumPy MSE), ``realize_fleet`` against a loop of ``realize``,
neuron death against the documented clamp, runtime-noise levels against their definition with
tolerances from the sample size, and gain fitting on a network whose outputs are known in
closed form.
"""

from __future__ import annotations

import math
import re
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from spikefleet.errors import ConfigError
from spikefleet.fleet.chip import Condition, fleet_keys, prepare, realize, realize_fleet
from spikefleet.fleet.evaluate import evaluate_fleet, fit_gain, fleet_outputs
from spikefleet.fleet.faults import silence_neurons
from spikefleet.fleet.mismatch import MismatchProfile, get_profile
from spikefleet.fleet.noise import add_input_noise, with_membrane_noise
from spikefleet.fleet.sweep import Sweep, build_conditions, compare_designs, run_sweeps
from spikefleet.models.rate import RateConfig, RateNetwork
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork
from spikefleet.neurons.lif import LIF
from spikefleet.neurons.rate import TanhRate
from spikefleet.simulation import simulate, simulate_batch
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig

DT = 1e-3
N = 16
T = 200
TASK = get_task("xor", config=XorConfig(duration=0.2))  # 200 steps
BATCH = TASK.generate(8, 3)
CFG = SpikingConfig(n_in=1, n_hidden=N, n_out=1, dt=DT)


def _spiking(seed=1, *, in_scale=20.0, rec_scale=1.0, out_scale=0.3, **neuron_kwargs):
    """A spiking design from NumPy draws (avoids compiling PRNG kernels for every shape)."""
    rng = np.random.default_rng(seed)
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
    return SpikingNetwork(
        w_in=f32(in_scale * rng.normal(size=(1, N))),
        w_rec=f32(rec_scale * rng.normal(size=(N, N)) * (1 - np.eye(N)) / math.sqrt(N)),
        w_out=f32(out_scale * rng.normal(size=(N, 1)) / math.sqrt(N)), b_out=f32(np.zeros(1)),
        tau_out=f32(np.full(N, 20e-3)),
        neurons=LIF.create(N, dt=DT, surrogate=CFG.make_surrogate(), **neuron_kwargs),
        w_fast=None, config=CFG)


DESIGN = _spiking()
KEYS = fleet_keys(0, 6)
RUN_KEY = jax.random.PRNGKey(7)
# built exactly as Sweep("mismatch", (0.1,)) builds it, so the compiled fleet function is shared
MISMATCH = Condition(mismatch=get_profile("uniform", 0.1), label="mismatch uniform 0.1")
NOISE = Condition(noise=0.05, input_noise=0.2)

run = eqx.filter_jit(lambda net, x, key: simulate_batch(net, x, key=key, record=("spikes", "v")))
realize_j = eqx.filter_jit(realize)  # one compilation per condition instead of op-by-op dispatch
run_plain = eqx.filter_jit(lambda net, x, key: simulate_batch(net, x, key=key))


def f64(x):
    return np.asarray(x, np.float64)


def _leaves(model):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(model)]


def loop_metrics(design, condition, keys, batch, task, run_key=None, gain=1.0):
    """Per-chip metrics by a Python loop over chips (documented key derivation for noise)."""
    acc, mse, rate = [], [], []
    for i in range(len(keys)):
        net = realize_j(design, keys[i], condition)
        x = jnp.asarray(batch.inputs, jnp.float32)
        sim_key = None
        if condition.needs_run_key:
            chip_key = jax.random.fold_in(run_key, i)  # chip i: fold_in(run_key, i)
            x = add_input_noise(x, condition.input_noise, jax.random.fold_in(chip_key, 0))
            sim_key = jax.random.fold_in(chip_key, 1)
        if isinstance(net, RateNetwork):
            y = gain * f64(run_plain(net, x, sim_key).outputs)
            rate.append(0.0)
        else:
            res = run(net, x, sim_key)
            y = gain * f64(res.outputs)
            rate.append(float(np.mean(f64(res.traces["spikes"]))) / DT)  # spikes per neuron per second
        acc.append(task.accuracy(y, batch.labels))
        mse.append(float(np.mean((y - f64(batch.targets)) ** 2)))
    return {"accuracy": np.array(acc), "mse": np.array(mse), "rate_hz": np.array(rate)}


def assert_metrics_equal(got, want):
    np.testing.assert_array_equal(got["accuracy"], want["accuracy"])
    np.testing.assert_allclose(got["mse"], want["mse"], rtol=1e-5)
    np.testing.assert_allclose(got["rate_hz"], want["rate_hz"], rtol=1e-5)


# ---------------------------------------------------------------------------------- realize


def test_fleet_keys_are_the_documented_split():
    np.testing.assert_array_equal(np.asarray(fleet_keys(3, 5)), np.asarray(jax.random.split(jax.random.PRNGKey(3), 5)))
    for seed, chips, message in ((-1, 4, "seed: expected a non-negative integer, got -1"),
                                 (1.5, 4, "seed: expected a non-negative integer, got 1.5"),
                                 (0, 0, "chips: expected a positive integer, got 0"),
                                 (0, 2.0, "chips: expected a positive integer, got 2.0")):
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
            fleet_keys(seed, chips)


def test_realize_is_pure_and_realize_fleet_equals_a_loop():
    profile = MismatchProfile("p", (("w_rec", 0.2), ("threshold", 0.2)))
    cond = Condition(mismatch=profile, quant_bits=4, dead=0.25)
    a, b = realize_j(DESIGN, KEYS[2], cond), realize_j(DESIGN, KEYS[2], cond)
    for x, y in zip(_leaves(a), _leaves(b)):
        assert x.tobytes() == y.tobytes()
    other = realize_j(DESIGN, KEYS[3], cond)
    assert not np.array_equal(np.asarray(other.w_rec), np.asarray(a.w_rec))
    assert not np.array_equal(np.asarray(other.neurons.silenced), np.asarray(a.neurons.silenced))
    fleet = eqx.filter_jit(realize_fleet)(DESIGN, KEYS, cond)
    for i in range(len(KEYS)):
        chip = realize_j(DESIGN, KEYS[i], cond)
        chip_leaves, fleet_leaves = _leaves(chip), _leaves(fleet)
        assert len(chip_leaves) == len(fleet_leaves)
        for x, y in zip(chip_leaves, fleet_leaves):
            assert y.shape == (len(KEYS), *x.shape)
            np.testing.assert_allclose(y[i], x, rtol=1e-6, atol=1e-7)
    # the chip-independent part is quantisation: the nominal design is never modified
    assert not np.array_equal(np.asarray(a.w_in), np.asarray(DESIGN.w_in))


def test_prepare_applies_quantisation_and_noise_level():
    cond = Condition(quant_bits=3, quant_matrices=("w_rec",), noise=0.02)
    net = prepare(DESIGN, cond)
    assert net.neurons.noise == 0.02
    assert np.unique(np.asarray(net.w_rec)).size <= 2**3 + 1
    assert np.asarray(net.w_in).tobytes() == np.asarray(DESIGN.w_in).tobytes()
    # nominal condition: realize is the identity
    nominal = realize(DESIGN, KEYS[0])
    for x, y in zip(_leaves(nominal), _leaves(DESIGN)):
        assert x.tobytes() == y.tobytes()


# ---------------------------------------------------------------------------- evaluate_fleet


def test_evaluate_fleet_equals_loop_under_mismatch():
    result = evaluate_fleet(DESIGN, TASK, BATCH, KEYS, MISMATCH)
    want = loop_metrics(DESIGN, MISMATCH, KEYS, BATCH, TASK)
    assert_metrics_equal(result.metrics, want)
    assert result.n_chips == 6 and result.info["chips"] == 6 and result.info["trials"] == 8
    assert len(set(np.round(want["mse"], 6))) == 6  # chips really differ
    assert np.all(want["rate_hz"] > 0)


@pytest.fixture(scope="module")
def noise_results():
    return {chunk: evaluate_fleet(DESIGN, TASK, BATCH, KEYS, NOISE, run_key=RUN_KEY, chunk=chunk)
            for chunk in (1, 4, 16)}


def test_evaluate_fleet_equals_loop_under_noise(noise_results):
    want = loop_metrics(DESIGN, NOISE, KEYS, BATCH, TASK, run_key=RUN_KEY)
    assert_metrics_equal(noise_results[4].metrics, want)
    # no mismatch: the chips differ only through their noise, which is drawn per chip
    assert len(set(np.round(want["mse"], 6))) == 6
    # another run key gives other noise
    other = loop_metrics(DESIGN, NOISE, KEYS[:1], BATCH, TASK, run_key=jax.random.PRNGKey(8))
    assert other["mse"][0] != want["mse"][0]


def test_evaluate_fleet_is_independent_of_chunk(noise_results):
    base = noise_results[1].metrics
    for chunk in (4, 16):
        for name, value in noise_results[chunk].metrics.items():
            np.testing.assert_allclose(value, base[name], rtol=1e-6, atol=1e-6)
    assert noise_results[4].info["chunk"] == 4
    assert noise_results[16].info["chunk"] == 6  # capped at the fleet size


def test_evaluate_fleet_argument_errors():
    with pytest.raises(ConfigError, match="run_key"):
        evaluate_fleet(DESIGN, TASK, BATCH, KEYS, NOISE)
    with pytest.raises(ConfigError, match="condition"):
        evaluate_fleet(DESIGN, TASK, BATCH, KEYS, {"noise": 0.1})
    no_jax_task = types.SimpleNamespace(accuracy=TASK.accuracy)
    with pytest.raises(ConfigError, match="decide_jax"):
        evaluate_fleet(DESIGN, no_jax_task, BATCH, KEYS)


# ----------------------------------------------------------------------------------- conditions


@pytest.mark.parametrize("kwargs,name", [
    ({"quant_bits": 0}, "quant_bits"),
    ({"quant_bits": 33}, "quant_bits"),
    ({"quant_bits": 2.5}, "quant_bits"),
    ({"quant_grid": "log"}, "quant_grid"),
    ({"noise": -0.01}, "noise"),
    ({"input_noise": -1.0}, "input_noise"),
    ({"dead": 1.5}, "dead"),
    ({"dead": -0.1}, "dead"),
    ({"dead_select": "last"}, "dead_select"),
])
def test_condition_validation(kwargs, name):
    with pytest.raises(ConfigError) as err:
        Condition(**kwargs)
    assert str(err.value).startswith(name + ":")
    assert repr(next(iter(kwargs.values()))) in str(err.value)


def test_condition_rejects_boolean_bits_up_front():
    with pytest.raises(ConfigError, match="quant_bits"):
        Condition(quant_bits=True)


def test_condition_describe_and_run_key_need():
    assert Condition().describe() == "nominal"
    assert not Condition(mismatch=get_profile("uniform", 0.1), dead=0.2).needs_run_key
    assert Condition(noise=0.01).needs_run_key and Condition(input_noise=0.01).needs_run_key
    d = Condition(quant_bits=4, noise=0.05, dead=0.25).describe()
    assert "4-bit" in d and "noise=0.05" in d and "dead=0.25" in d


# -------------------------------------------------------------------------------- neuron death


def _driven_net(v_reset=-0.2):
    """Every neuron receives the same strong input, no recurrence: all neurons spike."""
    net = _spiking(v_reset=v_reset)
    return eqx.tree_at(lambda m: (m.w_in, m.w_rec), net, (jnp.full((1, N), 0.2), jnp.zeros((N, N))))


DRIVE = jnp.ones((8, T, 1), jnp.float32)


def test_dead_neurons_first_are_silenced_and_clamped():
    net = _driven_net()
    base = run(net, DRIVE, None)
    assert np.all(f64(base.traces["spikes"]).sum(axis=1) > 0)  # every neuron spikes when alive
    dead = realize(net, KEYS[0], Condition(dead=0.3, dead_select="first"))
    count = math.floor(0.3 * N)  # 4
    np.testing.assert_array_equal(f64(dead.neurons.silenced), (np.arange(N) < count).astype(float))
    res = run(dead, DRIVE, None)
    spikes, v = f64(res.traces["spikes"]), f64(res.traces["v"])
    assert np.all(spikes[..., :count] == 0)
    np.testing.assert_array_equal(v[..., :count], np.float32(-0.2))
    # the others are unaffected (no recurrence): bit-identical to the intact network
    np.testing.assert_array_equal(spikes[..., count:], f64(base.traces["spikes"])[..., count:])
    np.testing.assert_array_equal(v[..., count:], f64(base.traces["v"])[..., count:])
    # "first" is the same on every chip
    for k in KEYS[1:3]:
        np.testing.assert_array_equal(f64(realize(net, k, Condition(dead=0.3, dead_select="first")).neurons.silenced),
                                      f64(dead.neurons.silenced))


@pytest.mark.parametrize("fraction,randomly", [(0.0, False), (1 / 16, False), (0.3, True), (0.5, False),
                                              (0.7, False), (3 / 16, False), (1.0, True)])
def test_dead_count_is_floor_of_fraction(fraction, randomly):
    net = _driven_net()
    for select in ("first", "random") if randomly else ("first",):
        out = silence_neurons(net, fraction, jax.random.PRNGKey(0), select=select)
        mask = f64(out.neurons.silenced)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert mask.sum() == math.floor(fraction * N + 1e-12)


def test_random_death_differs_across_chips_and_silences_the_chosen():
    net = _driven_net()
    cond = Condition(dead=0.25)
    masks = np.stack([f64(realize_j(net, k, cond).neurons.silenced) for k in KEYS])
    assert masks.shape == (6, N)
    assert np.all(masks.sum(axis=1) == 4)
    assert len({tuple(m) for m in masks}) > 1
    chip = realize_j(net, KEYS[2], cond)
    spikes = f64(run(chip, DRIVE, None).traces["spikes"]).sum(axis=(0, 1))
    assert np.all(spikes[masks[2] == 1] == 0) and np.all(spikes[masks[2] == 0] > 0)


def test_silence_window_only_silences_inside():
    net = _driven_net()
    start, stop = 0.05, 0.12  # steps [50, 120)
    dead = silence_neurons(net, 0.5, select="first", window=(start, stop))
    res, base = run(dead, DRIVE, None), run(net, DRIVE, None)
    spikes, v = f64(res.traces["spikes"]), f64(res.traces["v"])
    s0, v0 = f64(base.traces["spikes"]), f64(base.traces["v"])
    d = slice(0, N // 2)
    inside = slice(50, 120)
    assert np.all(spikes[:, inside, d] == 0)
    np.testing.assert_array_equal(v[:, inside, d], np.float32(-0.2))
    # before the window: the intact dynamics
    np.testing.assert_array_equal(spikes[:, :50, d], s0[:, :50, d])
    np.testing.assert_allclose(v[:, :50, d], v0[:, :50, d], rtol=1e-6, atol=1e-7)
    assert spikes[:, :50, d].sum() > 0 and np.all(v[:, 49, d] != np.float32(-0.2))
    # stop is exclusive: from step 120 on they integrate again, and spike again
    assert np.all(v[:, 120, d] > np.float32(-0.2))
    assert np.all(spikes[:, 120:, d].sum(axis=1) > 0)
    # live neurons untouched throughout
    np.testing.assert_array_equal(spikes[..., N // 2:], s0[..., N // 2:])


def test_death_argument_errors():
    net = _driven_net()
    with pytest.raises(ConfigError, match="dead"):
        silence_neurons(net, 1.2, jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="select"):
        silence_neurons(net, 0.2, jax.random.PRNGKey(0), select="middle")
    with pytest.raises(ConfigError, match="chip key"):
        silence_neurons(net, 0.2, None)
    with pytest.raises(ConfigError, match="spiking"):
        silence_neurons(_rate_net(0.25), 0.2, jax.random.PRNGKey(0))
    assert silence_neurons(net, 0.0, None) is net


# ---------------------------------------------------------------------------------- runtime noise


def test_membrane_noise_increments_have_documented_std():
    # gap 1.5: increments of std 0.075; the threshold is far enough for a 200-step walk
    threshold, v_reset, s = 10.0, 8.5, NOISE.noise
    net = _spiking(threshold=threshold, v_reset=v_reset, tau_mem=1e9)
    net = eqx.tree_at(lambda m: (m.w_in, m.w_rec), net, (jnp.zeros((1, N)), jnp.zeros((N, N))))
    chip = realize(net, KEYS[0], Condition(noise=s))
    assert chip.neurons.noise == s
    v = f64(run(chip, jnp.zeros((8, T, 1)), jax.random.PRNGKey(11)).traces["v"])  # [B, T, N]
    assert v.max() < threshold  # no spike, no reset: a pure random walk
    v_prev = np.concatenate([np.zeros((8, 1, N)), v[:, :-1]], axis=1)  # V starts at V_rest = 0
    inc = (v - v_prev).ravel()
    n = inc.size
    want = s * (threshold - v_reset)
    assert abs(inc.std(ddof=1) - want) <= 5 * want / math.sqrt(2 * (n - 1))
    assert abs(inc.mean()) <= 5 * want / math.sqrt(n)
    steps = (v - v_prev) / want
    assert abs(np.corrcoef(steps[:, 1:].ravel(), steps[:, :-1].ravel())[0, 1]) <= 5 / math.sqrt(n)  # over time
    assert abs(np.corrcoef(steps[..., 1:].ravel(), steps[..., :-1].ravel())[0, 1]) <= 5 / math.sqrt(n)  # neurons
    assert not np.array_equal(steps[0], steps[1])  # every trial has its own noise


def test_membrane_noise_errors_and_rate_networks():
    with pytest.raises(ConfigError, match="noise"):
        with_membrane_noise(DESIGN, -0.1)
    with pytest.raises(ConfigError, match="spiking"):
        with_membrane_noise(_rate_net(0.25), 0.1)
    rate = _rate_net(0.25)
    assert with_membrane_noise(rate, 0.0) is rate
    noisy = with_membrane_noise(DESIGN, 0.1)
    with pytest.raises(ValueError, match="key"):
        simulate(noisy, jnp.zeros((5, 1)))


def test_input_noise_std():
    x = jnp.asarray(BATCH.inputs)
    std = 0.3
    out = add_input_noise(x, std, jax.random.PRNGKey(5))
    noise = np.concatenate([(f64(add_input_noise(x, std, jax.random.PRNGKey(k))) - f64(x)).ravel()
                            for k in range(5, 13)])
    n = noise.size
    assert abs(noise.std(ddof=1) - std) <= 5 * std / math.sqrt(2 * (n - 1))
    assert abs(noise.mean()) <= 5 * std / math.sqrt(n)
    np.testing.assert_array_equal(np.asarray(add_input_noise(x, std, jax.random.PRNGKey(5))), np.asarray(out))
    assert not np.array_equal(np.asarray(add_input_noise(x, std, jax.random.PRNGKey(6))), np.asarray(out))
    assert add_input_noise(x, 0.0, jax.random.PRNGKey(5)) is x
    with pytest.raises(ConfigError, match="input_noise"):
        add_input_noise(x, -0.1, jax.random.PRNGKey(5))


# ------------------------------------------------------------------------------ rate fleets, gain


U = 1.0  # input amplitude


def _rate_net(amplitude, n=4):
    """n identical units with τ = dt (x[t+1] = c[t]) and no recurrence: y[0] = 0 and
    y[t] = sign · amplitude for t >= 1 on a constant input ±U."""
    return RateNetwork(
        w_in=jnp.ones((1, n)), w_rec=jnp.zeros((n, n)),
        w_out=jnp.full((n, 1), amplitude / (n * math.tanh(U)), jnp.float32),
        units=TanhRate.create(n, tau=DT, bias=0.0, dt=DT),
        config=RateConfig(n_in=1, n_hidden=n, n_out=1, dt=DT),
    )


def _sign_batch(n=8):
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    inputs = np.repeat((U * signs)[:, None, None], T, axis=1).astype(np.float32)
    targets = np.repeat(signs[:, None, None], T, axis=1).astype(np.float32)
    return types.SimpleNamespace(inputs=inputs, targets=targets, labels=(signs > 0).astype(np.int32))


def test_rate_network_outputs_closed_form():
    y = f64(fleet_outputs(_rate_net(0.253), _sign_batch(), KEYS[:2]))
    assert y.shape == (2, 8, T, 1)
    signs = np.where(np.arange(8) % 2 == 0, 1.0, -1.0)
    np.testing.assert_allclose(y[:, :, 0, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(y[:, :, 1:, 0], np.broadcast_to(0.253 * signs[None, :, None], (2, 8, T - 1)),
                               rtol=1e-5)


def test_rate_fleet_evaluates_with_mismatch_and_gain():
    design, batch = _rate_net(0.253), _sign_batch()
    cond = Condition(mismatch=MismatchProfile("readout", (("w_out", 0.05),)))
    result = evaluate_fleet(design, TASK, batch, KEYS, cond, gain=2.0)
    want = loop_metrics(design, cond, KEYS, batch, TASK, gain=2.0)
    assert_metrics_equal(result.metrics, want)
    np.testing.assert_array_equal(result.metrics["rate_hz"], np.zeros(6))
    assert result.gain == 2.0
    # the smoothed output just clears the decision threshold at gain 2 on the nominal chip, so
    # mismatch splits the fleet into passing and failing chips
    assert len(set(want["accuracy"])) > 1


def test_gain_scales_outputs_in_evaluation():
    design, batch = _rate_net(0.253), _sign_batch()
    one = evaluate_fleet(design, TASK, batch, KEYS[:2], gain=1.0).metrics
    two = evaluate_fleet(design, TASK, batch, KEYS[:2], gain=2.0).metrics
    np.testing.assert_array_equal(one["accuracy"], [0.0, 0.0])  # |y'| < 0.5: no decision
    np.testing.assert_array_equal(two["accuracy"], [1.0, 1.0])
    # mse of g·y against ±1 targets, closed form: y[0] = 0, then g·0.253
    want = lambda g: ((1.0) + (T - 1) * (1 - g * 0.253) ** 2) / T  # noqa: E731
    np.testing.assert_allclose(one["mse"], want(1.0), rtol=1e-5)
    np.testing.assert_allclose(two["mse"], want(2.0), rtol=1e-5)


def test_fit_gain_picks_the_smallest_sufficient_gain():
    # smoothed peak = 0.253 (1 - 0.95^(T-1)): gain 1.95 gives 0.493 < 0.5, gain 2.0 gives 0.506 > 0.5,
    # so every gain >= 2.0 is perfect and none below is; ties go to the gain closest to 1
    design, batch = _rate_net(0.253), _sign_batch()
    gain = fit_gain(design, TASK, batch, KEYS[:2])
    assert gain == 2.0
    assert gain in np.linspace(0.5, 5.5, 101)
    assert fit_gain(design, TASK, batch, KEYS[:2], grid=[4.0, 2.5, 1.5, 0.9]) == 2.5
    # already sufficient at gain 1: keep it
    assert fit_gain(_rate_net(0.6), TASK, batch, KEYS[:2]) == 1.0


def test_fit_gain_tie_break_closest_to_one():
    design, batch = _rate_net(0.0), _sign_batch()  # silent: every gain ties at accuracy 0
    assert fit_gain(design, TASK, batch, KEYS[:2]) == 1.0
    assert fit_gain(design, TASK, batch, KEYS[:2], grid=[0.7, 3.0, 1.2, 5.0]) == 1.2
    assert fit_gain(design, TASK, batch, KEYS[:2], grid=[0.55, 4.0]) == 0.55


def test_fit_gain_errors():
    design, batch = _rate_net(0.253), _sign_batch()
    for grid in ([1.0, -2.0], [[1.0, 2.0]], []):
        with pytest.raises(ConfigError, match="grid"):
            fit_gain(design, TASK, batch, KEYS[:2], grid=grid)
    with pytest.raises(ConfigError, match="run_key"):
        fit_gain(design, TASK, batch, KEYS[:2], Condition(input_noise=0.1))


# ------------------------------------------------------------------------------------- sweeps


def test_build_conditions_and_sweep_validation():
    conds = dict(build_conditions(Sweep("mismatch", (0.0, 0.1))))
    assert conds[0.0].mismatch is None
    assert conds[0.1] == MISMATCH
    q = dict(build_conditions(Sweep("quant", (0, 4))))
    assert q[0.0].quant_bits is None and q[4.0].quant_bits == 4
    d = dict(build_conditions(Sweep("dead", (0.25,), dead_select="first")))
    assert d[0.25].dead == 0.25 and d[0.25].dead_select == "first"
    for kind, levels, message in (("drift", (0.1,), "sweep: expected one of"),
                                  ("mismatch", (), "mismatch levels: expected at least one level, got ()"),
                                  ("noise", (-0.1,), "noise level: expected a non-negative number, got -0.1"),
                                  ("quant", (2.5,), "quant-bits: expected integers in [1, 32]"),
                                  ("quant", (40,), "quant-bits: expected integers in [1, 32]"),
                                  ("dead", (1.5,), "dead: expected a fraction in [0, 1], got 1.5")):
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
            Sweep(kind, levels)


def test_compare_designs_pairs_the_same_chips():
    sweep = [Sweep("mismatch", (0.1,))]
    records = run_sweeps({"a": DESIGN, "b": DESIGN}, TASK, BATCH, KEYS, sweep)
    assert [(r.design, r.level) for r in records] == [("a", 0.1), ("b", 0.1)]
    for name in ("accuracy", "mse", "rate_hz"):
        np.testing.assert_array_equal(records[0].metrics[name], records[1].metrics[name])
    # the records are the fleet evaluation of the shared chips
    direct = evaluate_fleet(DESIGN, TASK, BATCH, KEYS, MISMATCH).metrics
    np.testing.assert_array_equal(records[0].metrics["mse"], direct["mse"])
    for metric in ("accuracy", "mse"):
        (cmp,) = compare_designs(records, metric)
        assert cmp["a"] == "a" and cmp["b"] == "b" and cmp["sweep"] == "mismatch" and cmp["level"] == 0.1
        assert cmp["p_value"] == 1.0
    # a different design on the same chips: the paired Wilcoxon test of the per-chip values
    louder = eqx.tree_at(lambda m: m.w_out, DESIGN, 1.3 * DESIGN.w_out)
    rec2 = run_sweeps({"a": DESIGN, "c": louder}, TASK, BATCH, KEYS, sweep)
    (cmp,) = compare_designs(rec2, "mse")
    ref = scipy.stats.wilcoxon(rec2[0].metrics["mse"], rec2[1].metrics["mse"])
    assert cmp["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    np.testing.assert_array_equal(rec2[0].metrics["mse"], records[0].metrics["mse"])
    assert compare_designs(records[:1]) == []


def test_recurrent_scale_multiplies_only_recurrent_weights():
    from spikefleet.models.ads import ads_recurrent_scale
    from spikefleet.models.spiking import SpikingConfig, init_spiking

    net = init_spiking(SpikingConfig(n_in=2, n_hidden=6, n_out=1, fast=True), jax.random.PRNGKey(0))
    chip = realize(net, jax.random.PRNGKey(1), Condition(recurrent_scale=0.5))
    np.testing.assert_array_equal(np.asarray(chip.w_rec), 0.5 * np.asarray(net.w_rec))
    np.testing.assert_array_equal(np.asarray(chip.w_fast), 0.5 * np.asarray(net.w_fast))
    np.testing.assert_array_equal(np.asarray(chip.w_in), np.asarray(net.w_in))
    np.testing.assert_array_equal(np.asarray(chip.w_out), np.asarray(net.w_out))
    # spec 14.1 table
    assert [ads_recurrent_scale("mismatch", x) for x in (0.05, 0.1, 0.2, 0.3)] == [0.9, 0.8, 0.5, 0.2]
    assert [ads_recurrent_scale("quant", b) for b in (2, 3, 4, 5, 6)] == [0.7, 0.7, 0.7, 0.8, 1.0]
    assert [ads_recurrent_scale("noise", s) for s in (0.01, 0.05, 0.1)] == [1.0, 0.8, 0.6]
    assert ads_recurrent_scale("dead", 0.4) == 1.0
    with pytest.raises(ValueError, match="recurrent_scale"):
        Condition(recurrent_scale=0.0)
