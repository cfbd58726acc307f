"""Device mismatch (spikefleet.fleet.mismatch): the sampler's statistics and rules, and profiles.

References: the realised value of every element is written back into its standard normal draw
``xi`` with the documented rule (e.g. ``xi = (w'/w - 1)/sigma`` for weights) and ``xi`` is checked
against N(0, 1) with tolerances derived from the sample size (5 standard errors; the keys are
fixed, so every test is deterministic). Exact rules (folding, log-normal, gap, common random
numbers) are checked element by element against NumPy formulas evaluated on ``xi`` recovered from
a small-sigma realisation of the same chip.
"""

from __future__ import annotations

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.fleet.mismatch import (
    MismatchProfile,
    apply_mismatch,
    builtin_profile,
    get_profile,
    load_profile,
    mismatch_targets,
)
from spikefleet.models.rate import RateConfig, RateNetwork
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork
from spikefleet.neurons.lif import LIF
from spikefleet.neurons.rate import TanhRate

N_BIG = 2000
KEY = jax.random.PRNGKey(42)
KEY2 = jax.random.PRNGKey(43)
Z = 5.0  # tolerance in standard errors


def f64(x):
    return np.asarray(x, np.float64)


def _plain_net(threshold, v_reset, fast=True):
    """A large network (weights from NumPy draws; no simulation is ever run)."""
    rng = np.random.default_rng(0)
    n = N_BIG
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
    return SpikingNetwork(
        w_in=f32(rng.normal(size=(3, n))), w_rec=f32(rng.normal(size=(n, n)) * (1 - np.eye(n)) / math.sqrt(n)),
        w_out=f32(rng.normal(size=(n, 2))), b_out=f32(np.zeros(2)), tau_out=f32(np.full(n, 20e-3)),
        neurons=LIF.create(n, n_synapses=2 if fast else 1, tau_syn=(10e-3, 3e-3) if fast else 10e-3,
                           threshold=threshold, v_reset=v_reset),
        w_fast=f32(rng.normal(size=(n, n)) / math.sqrt(n)) if fast else None,
        config=SpikingConfig(n_in=3, n_hidden=n, n_out=2, fast=fast))


def _big_net():
    """Heterogeneous per-neuron parameters."""
    net = _plain_net(1.0, 0.0)
    n = N_BIG
    tau_syn = jnp.stack([jnp.linspace(5e-3, 60e-3, n), jnp.linspace(1e-3, 4e-3, n)])
    return eqx.tree_at(
        lambda m: (m.neurons.tau_mem, m.neurons.tau_syn, m.tau_out, m.neurons.bias),
        net,
        (jnp.linspace(10e-3, 50e-3, n), tau_syn, jnp.linspace(20e-3, 80e-3, n), jnp.linspace(-0.2, 0.3, n)),
    )


@pytest.fixture(scope="module")
def big():
    return _big_net()


@pytest.fixture(scope="module")
def big_uniform(big):
    return apply_mismatch(big, builtin_profile("uniform", 0.1), KEY)


def _xi_rel(new, old, sigma):
    """Standard normal draws behind a multiplicative perturbation ``old (1 + sigma xi)``."""
    new, old = f64(new), f64(old)
    mask = old != 0
    return (new[mask] / old[mask] - 1.0) / sigma


def _check_standard_normal(xi, *, std=1.0):
    """Mean 0 and standard deviation ``std`` within Z standard errors of the sample size."""
    n = xi.size
    assert n >= 1000
    assert abs(xi.mean()) <= Z * std / math.sqrt(n), (xi.mean(), n)
    assert abs(xi.std(ddof=1) - std) <= Z * std / math.sqrt(2 * (n - 1)), (xi.std(ddof=1), n)


def _corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _leaves(model):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(model)]


def _assert_identical(a, b):
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


# ------------------------------------------------------------------------ uniform profile statistics


@pytest.mark.parametrize("name", ["tau_mem", "tau_syn", "threshold"])
def test_uniform_per_neuron_relative_deviation_statistics(big, big_uniform, name):
    get = {"tau_mem": lambda m: m.neurons.tau_mem, "tau_syn": lambda m: m.neurons.tau_syn[0],
           "threshold": lambda m: m.neurons.threshold}[name]
    rel = (f64(get(big_uniform)) - f64(get(big))) / f64(get(big))  # V_reset = 0: gap rule = relative
    assert rel.shape == (N_BIG,)
    _check_standard_normal(rel / 0.1)
    # sanity of the tolerance: a sigma of 0.11 would be far outside it
    assert abs(rel.std(ddof=1) - 0.11) > Z * 0.1 / math.sqrt(2 * N_BIG)


@pytest.mark.parametrize("name", ["w_in", "w_rec", "w_out"])
def test_uniform_weights_are_multiplicative_per_element(big, big_uniform, name):
    old, new = getattr(big, name), getattr(big_uniform, name)
    xi = _xi_rel(new, old, 0.1)
    assert xi.size == np.count_nonzero(f64(old))
    _check_standard_normal(xi)
    # multiplicative: exact zeros (no self-connections) stay exactly zero
    zero = f64(old) == 0
    assert np.all(f64(new)[zero] == 0)
    if name == "w_rec":
        assert zero.sum() == N_BIG
        # neighbouring synapses are independent
        x = (f64(new) / np.where(zero, 1.0, f64(old)) - 1.0) / 0.1
        x = x[~np.eye(N_BIG, dtype=bool)].reshape(N_BIG, N_BIG - 1)
        assert abs(_corr(x[:, :-1], x[:, 1:])) <= Z / math.sqrt(x[:, 1:].size)
        assert abs(_corr(x[:-1], x[1:])) <= Z / math.sqrt(x[1:].size)


def test_uniform_exempt_parameters_are_bit_identical(big, big_uniform):
    np.testing.assert_array_equal(f64(big_uniform.w_fast), f64(big.w_fast))
    assert np.asarray(big_uniform.neurons.tau_syn[1]).tobytes() == np.asarray(big.neurons.tau_syn[1]).tobytes()
    assert np.asarray(big_uniform.tau_out).tobytes() == np.asarray(big.tau_out).tobytes()
    for get in (lambda m: m.b_out, lambda m: m.neurons.v_rest, lambda m: m.neurons.v_reset,
                lambda m: m.neurons.bias, lambda m: m.neurons.v_init, lambda m: m.neurons.silenced):
        assert np.asarray(get(big_uniform)).tobytes() == np.asarray(get(big)).tobytes()
    # while everything in the profile moved, element by element
    for get in (lambda m: m.w_in, lambda m: m.w_out, lambda m: m.neurons.tau_mem,
                lambda m: m.neurons.tau_syn[0], lambda m: m.neurons.threshold):
        assert np.all(f64(get(big_uniform)) != f64(get(big)))
    assert big_uniform.config == big.config
    assert big_uniform.neurons.tau_syn.shape == (2, N_BIG)


def test_mismatch_targets_of_uniform_profile(big):
    targets = mismatch_targets(big, builtin_profile("uniform", 0.1))
    assert sorted(targets) == sorted(["threshold", "tau_mem", "tau_syn", "w_in", "w_out", "w_rec"])


def test_independence_across_parameters_and_neurons(big, big_uniform):
    xi_tm = (f64(big_uniform.neurons.tau_mem) / f64(big.neurons.tau_mem) - 1) / 0.1
    xi_th = (f64(big_uniform.neurons.threshold) / f64(big.neurons.threshold) - 1) / 0.1
    xi_ts = (f64(big_uniform.neurons.tau_syn[0]) / f64(big.neurons.tau_syn[0]) - 1) / 0.1
    bound = Z / math.sqrt(N_BIG)
    assert abs(_corr(xi_tm, xi_th)) <= bound
    assert abs(_corr(xi_tm, xi_ts)) <= bound
    assert abs(_corr(xi_th, xi_ts)) <= bound
    # across neurons (lag-1 autocorrelation)
    for xi in (xi_tm, xi_th, xi_ts):
        assert abs(_corr(xi[:-1], xi[1:])) <= bound
    # weight matrices of different shapes must not share their leading draws either
    xi_in = _xi_rel(big_uniform.w_in, big.w_in, 0.1)
    xi_out = _xi_rel(big_uniform.w_out, big.w_out, 0.1)
    m = min(xi_in.size, xi_out.size)
    assert abs(_corr(xi_in[:m], xi_out[:m])) <= Z / math.sqrt(m)
    assert abs(_corr(xi_in[:N_BIG], xi_tm)) <= bound


def test_chips_are_independent_and_reproducible(big, big_uniform):
    profile = builtin_profile("uniform", 0.1)
    again = apply_mismatch(big, profile, KEY)
    _assert_identical(again, big_uniform)
    other = apply_mismatch(big, profile, KEY2)
    for get in (lambda m: m.w_in, lambda m: m.w_rec, lambda m: m.w_out, lambda m: m.neurons.tau_mem,
                lambda m: m.neurons.tau_syn[0], lambda m: m.neurons.threshold):
        assert not np.array_equal(f64(get(other)), f64(get(big_uniform)))
    xi_a = (f64(big_uniform.neurons.tau_mem) / f64(big.neurons.tau_mem) - 1) / 0.1
    xi_b = (f64(other.neurons.tau_mem) / f64(big.neurons.tau_mem) - 1) / 0.1
    assert abs(_corr(xi_a, xi_b)) <= Z / math.sqrt(N_BIG)
    wa, wb = _xi_rel(big_uniform.w_rec, big.w_rec, 0.1), _xi_rel(other.w_rec, big.w_rec, 0.1)
    assert abs(_corr(wa, wb)) <= Z / math.sqrt(wa.size)


def test_sigma_zero_and_none_are_the_identity(big):
    _assert_identical(apply_mismatch(big, builtin_profile("uniform", 0.0), KEY), big)
    _assert_identical(apply_mismatch(big, None, KEY), big)
    # a zero sigma leaves that parameter alone while the others move
    partial = MismatchProfile("partial", (("tau_mem", 0.0), ("w_out", 0.2)))
    out = apply_mismatch(big, partial, KEY)
    assert np.asarray(out.neurons.tau_mem).tobytes() == np.asarray(big.neurons.tau_mem).tobytes()
    assert np.asarray(out.w_rec).tobytes() == np.asarray(big.w_rec).tobytes()
    assert np.all(f64(out.w_out) != f64(big.w_out))


def test_common_random_numbers_across_levels(big):
    one = apply_mismatch(big, builtin_profile("uniform", 0.05), KEY)
    two = apply_mismatch(big, builtin_profile("uniform", 0.10), KEY)
    eps = np.finfo(np.float32).eps
    for get in (lambda m: m.w_in, lambda m: m.w_rec, lambda m: m.w_out, lambda m: m.neurons.tau_mem):
        w = f64(get(big))
        d1, d2 = f64(get(one)) - w, f64(get(two)) - w
        # float32 rounding of w (1 + sigma xi) is a few ulp of |w|; the deviation itself is ~0.05 |w|
        tol = 8 * eps * np.abs(w) * (1 + np.abs(d2 / np.where(w == 0, 1, w)))
        assert np.all(np.abs(d2 - 2 * d1) <= tol)
        assert np.median(np.abs(d1[w != 0] / w[w != 0])) > 0.02  # the deviation is not trivially zero


def test_common_random_numbers_for_scaled_builtin_profile(big):
    a = apply_mismatch(big, get_profile("dynapse1-measured", 0.5), KEY)
    b = apply_mismatch(big, get_profile("dynapse1-measured", 1.0), KEY)
    w = f64(big.w_fast)
    d1, d2 = f64(a.w_fast) - w, f64(b.w_fast) - w
    tol = 8 * np.finfo(np.float32).eps * np.abs(w) * (1 + np.abs(d2 / np.where(w == 0, 1, w)))
    assert np.all(np.abs(d2 - 2 * d1) <= tol)


# ------------------------------------------------------------------------------ positive rules


def _tau_xi(big, key):
    """xi of tau_mem on chip ``key`` recovered from a sigma small enough that nothing folds."""
    small = apply_mismatch(big, MismatchProfile("s", (("tau_mem", 0.1),)), key)
    xi = (f64(small.neurons.tau_mem) / f64(big.neurons.tau_mem) - 1.0) / 0.1
    assert xi.min() > -9.0  # 1 + 0.1 xi > 0: no folding happened
    return xi


def test_fold_rule_reflects_and_floors(big):
    theta = f64(big.neurons.tau_mem)
    xi = _tau_xi(big, KEY)
    sigma = 3.0
    out = f64(apply_mismatch(big, MismatchProfile("big", (("tau_mem", sigma),)), KEY).neurons.tau_mem)
    expected = np.maximum(np.abs(theta * (1 + sigma * xi)), 0.01 * theta)
    # xi is recovered to ~1e-6 (float32): allow that error, scaled by sigma, in units of theta
    assert np.all(np.abs(out - expected) <= 2e-5 * theta + 1e-5 * expected)
    assert np.all(out > 0)
    assert np.all(out >= 0.01 * theta * (1 - 1e-6))
    folded = 1 + sigma * xi < -0.01
    floored = np.abs(1 + sigma * xi) < 0.0099
    assert folded.sum() > 100 and floored.sum() >= 1  # both branches are exercised
    np.testing.assert_allclose(out[floored], 0.01 * theta[floored], rtol=1e-5)


def test_lognormal_rule_is_exact_positive_and_mean_preserving(big):
    theta = f64(big.neurons.tau_mem)
    sigma = 0.5
    ratios, logs = [], []
    for seed in range(8):
        key = jax.random.PRNGKey(100 + seed)
        xi = _tau_xi(big, key)  # the draw does not depend on the rule
        out = f64(apply_mismatch(big, MismatchProfile("ln", (("tau_mem", sigma),), "lognormal"), key).neurons.tau_mem)
        np.testing.assert_allclose(out, theta * np.exp(sigma * xi - sigma**2 / 2), rtol=1e-5)
        assert np.all(out > 0)
        ratios.append(out / theta)
        logs.append(np.log(out / theta))
    ratios, logs = np.concatenate(ratios), np.concatenate(logs)
    n = ratios.size
    sd_ratio = math.sqrt(math.exp(sigma**2) - 1)
    assert abs(ratios.mean() - 1.0) <= Z * sd_ratio / math.sqrt(n)  # E[theta'] = theta
    assert abs(logs.mean() + sigma**2 / 2) <= Z * sigma / math.sqrt(n)
    # large sigma: still strictly positive
    huge = f64(apply_mismatch(big, MismatchProfile("ln", (("tau_mem", 3.0),), "lognormal"), KEY).neurons.tau_mem)
    assert np.all(huge > 0)


def test_bad_positive_rule():
    with pytest.raises(ConfigError, match="positive_rule"):
        MismatchProfile("x", (("tau_mem", 0.1),), "gamma")
    with pytest.raises(ConfigError, match="positive_rule"):
        builtin_profile("uniform", 0.1, positive_rule="abs")


# --------------------------------------------------------------------------------- gap & bias


def test_threshold_uses_the_gap_rule():
    profile = MismatchProfile("th", (("threshold", 0.3),))
    a = apply_mismatch(_plain_net(1.0, 0.0), profile, KEY)  # gap 1, reset 0
    b = apply_mismatch(_plain_net(0.25, -0.75), profile, KEY)  # gap 1, reset -0.75
    ta, tb = f64(a.neurons.threshold), f64(b.neurons.threshold)
    # the same gap is realised on both: only the reset offset differs
    np.testing.assert_allclose(tb, ta - 0.75, atol=1e-6)
    # a relative rule on the threshold itself would not give this
    assert np.max(np.abs(np.abs(0.25 * ta) - tb)) > 0.1
    # V_reset = 0: |N(V_th, (sigma V_th)^2)| -> the gap is positive
    assert np.all(ta > 0)


def test_threshold_gap_rule_folds_the_gap_and_stays_above_reset():
    net = _plain_net(0.5, -1.0)  # gap 1.5
    gap = 1.5
    xi = (f64(apply_mismatch(net, MismatchProfile("s", (("threshold", 0.1),)), KEY).neurons.threshold) + 1.0
          - gap) / (0.1 * gap)
    assert xi.min() > -9
    out = f64(apply_mismatch(net, MismatchProfile("b", (("threshold", 2.0),)), KEY).neurons.threshold)
    expected = -1.0 + np.maximum(np.abs(gap * (1 + 2.0 * xi)), 0.01 * gap)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert np.all(out - (-1.0) >= 0.01 * gap * (1 - 1e-5))
    assert np.any(1 + 2.0 * xi < 0)  # folding happened
    # the reset itself is not perturbed
    net2 = apply_mismatch(net, MismatchProfile("b", (("threshold", 2.0),)), KEY)
    np.testing.assert_array_equal(f64(net2.neurons.v_reset), f64(net.neurons.v_reset))
    # log-normal rule on the gap: V_reset + gap exp(sigma xi - sigma^2/2)
    ln = f64(apply_mismatch(net, MismatchProfile("l", (("threshold", 0.5),), "lognormal"), KEY).neurons.threshold)
    np.testing.assert_allclose(ln, -1.0 + gap * np.exp(0.5 * xi - 0.125), rtol=1e-5, atol=2e-6)


def test_bias_is_additive_in_units_of_the_gap():
    n = N_BIG
    net = _plain_net(1.0, -0.5)
    thresholds = jnp.where(jnp.arange(n) % 2 == 0, 0.0, 1.5)  # gaps 0.5 and 2.0
    net = eqx.tree_at(lambda m: (m.neurons.threshold, m.neurons.bias), net,
                      (thresholds, jnp.full((n,), 0.3)))
    gap = f64(thresholds) + 0.5
    sigma = 0.1
    out = apply_mismatch(net, MismatchProfile("bias", (("bias", sigma),)), KEY)
    shift = f64(out.neurons.bias) - 0.3
    z = shift / (sigma * gap)
    _check_standard_normal(z)
    for g in (0.5, 2.0):  # per neuron: the neuron's own gap sets the scale
        _check_standard_normal(z[gap == g])
    # additive: a zero bias moves too (a relative rule would leave it at 0)
    zero_bias = eqx.tree_at(lambda m: m.neurons.bias, net, jnp.zeros((n,)))
    moved = f64(apply_mismatch(zero_bias, MismatchProfile("bias", (("bias", sigma),)), KEY).neurons.bias)
    np.testing.assert_allclose(moved, shift, atol=1e-6)
    # the threshold is untouched by a bias-only profile
    np.testing.assert_array_equal(f64(out.neurons.threshold), f64(thresholds))


def test_rate_network_profile():
    # built directly: init_rate's eigenvalue rescaling of a large matrix is slow and not needed
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    net = RateNetwork(w_in=jax.random.normal(k1, (3, N_BIG)), w_rec=jax.random.normal(k2, (N_BIG, N_BIG)),
                      w_out=jax.random.normal(k3, (N_BIG, 2)),
                      units=TanhRate.create(N_BIG, tau=jnp.linspace(10e-3, 100e-3, N_BIG), bias=0.2),
                      config=RateConfig(n_in=3, n_hidden=N_BIG, n_out=2))
    out = apply_mismatch(net, builtin_profile("uniform", 0.1), KEY)
    _check_standard_normal(_xi_rel(out.units.tau, net.units.tau, 0.1))
    _check_standard_normal(_xi_rel(out.w_in, net.w_in, 0.1))
    _check_standard_normal(_xi_rel(out.w_out, net.w_out, 0.1))
    np.testing.assert_array_equal(f64(out.units.bias), f64(net.units.bias))  # bias is not in uniform
    # additive bias on a rate net: the gap is 1
    out_b = apply_mismatch(net, MismatchProfile("b", (("bias", 0.1),)), KEY)
    _check_standard_normal((f64(out_b.units.bias) - 0.2) / 0.1)


def test_unknown_model_type_raises():
    with pytest.raises(ConfigError, match="no parameter table"):
        apply_mismatch(object(), builtin_profile("uniform", 0.1), KEY)


# ---------------------------------------------------------------------------- dynapse1-measured


DYNAPSE1 = {"tau_mem": 0.12, "tau_syn": 0.12, "tau_syn_fast": 0.12, "w_in": 0.175, "w_rec": 0.175,
            "w_fast": 0.31, "threshold": 0.10}


def test_dynapse1_sigmas_as_documented():
    prof = builtin_profile("dynapse1-measured")
    got = {k: v for k, v in prof.as_dict().items() if v > 0}
    assert got.keys() == DYNAPSE1.keys()
    for k, v in DYNAPSE1.items():
        assert got[k] == pytest.approx(v, rel=1e-12)
    scaled = get_profile("dynapse1-measured", 2.0).as_dict()
    for k, v in DYNAPSE1.items():
        assert scaled[k] == pytest.approx(2 * v, rel=1e-12)
    assert scaled.get("w_out", 0.0) == 0.0 and scaled.get("tau_out", 0.0) == 0.0


def test_uniform_sigmas_as_documented():
    sig = get_profile("uniform", 0.07).as_dict()
    for name in ("tau_mem", "tau_syn", "threshold", "w_in", "w_rec", "w_out"):
        assert sig[name] == pytest.approx(0.07)
    for name in ("w_fast", "tau_syn_fast", "tau_out"):
        assert sig.get(name, 0.0) == 0.0


def test_dynapse1_realised_statistics(big):
    out = apply_mismatch(big, builtin_profile("dynapse1-measured"), KEY)
    pairs = {
        "tau_mem": (out.neurons.tau_mem, big.neurons.tau_mem),
        "tau_syn": (out.neurons.tau_syn[0], big.neurons.tau_syn[0]),
        "tau_syn_fast": (out.neurons.tau_syn[1], big.neurons.tau_syn[1]),
        "threshold": (out.neurons.threshold, big.neurons.threshold),
        "w_in": (out.w_in, big.w_in),
        "w_rec": (out.w_rec, big.w_rec),
        "w_fast": (out.w_fast, big.w_fast),
    }
    for name, (new, old) in pairs.items():
        _check_standard_normal(_xi_rel(new, old, DYNAPSE1[name]))
    # the readout is off-chip
    assert np.asarray(out.w_out).tobytes() == np.asarray(big.w_out).tobytes()
    assert np.asarray(out.tau_out).tobytes() == np.asarray(big.tau_out).tobytes()


def test_dynapse1_on_network_without_fast_weights():
    net = _plain_net(1.0, 0.0, fast=False)
    out = apply_mismatch(net, builtin_profile("dynapse1-measured"), KEY)
    assert out.w_fast is None
    assert out.neurons.tau_syn.shape == (1, N_BIG)
    assert np.all(f64(out.neurons.tau_syn) != f64(net.neurons.tau_syn))


# ------------------------------------------------------------------------------ user profiles


def test_toml_profile_round_trip(tmp_path):
    path = tmp_path / "chip.toml"
    path.write_text('name = "my-chip"\npositive_rule = "lognormal"\ndescription = "d"\n'
                    "[sigmas]\ntau_mem = 0.1\nw_rec = 0.25\nbias = 0.05\n")
    prof = load_profile(path)
    assert prof.name == "my-chip"
    assert prof.positive_rule == "lognormal"
    assert prof.as_dict() == {"tau_mem": 0.1, "w_rec": 0.25, "bias": 0.05}
    scaled = get_profile(str(path), 2.0)
    assert scaled.as_dict() == pytest.approx({"tau_mem": 0.2, "w_rec": 0.5, "bias": 0.1})
    assert scaled.positive_rule == "lognormal"


def test_json_profile_round_trip_and_default_name(tmp_path):
    path = tmp_path / "board7.json"
    sigmas = {"w_in": 0.3, "threshold": 0.02, "tau_syn_fast": 0.5}
    path.write_text(json.dumps({"sigmas": sigmas}))
    prof = load_profile(path)
    assert prof.name == "board7"
    assert prof.positive_rule == "fold"
    assert prof.as_dict() == sigmas
    assert get_profile(str(path)).as_dict() == pytest.approx(sigmas)
    # a loaded profile is usable
    net = _plain_net(1.0, 0.0)
    out = apply_mismatch(net, prof, KEY)
    assert not np.array_equal(f64(out.w_in), f64(net.w_in))


@pytest.mark.parametrize("suffix,text,needle", [
    (".toml", 'name = "x"\n', "[sigmas]"),
    (".json", '{"name": "x"}', "[sigmas]"),
    (".json", "[1, 2]", "[sigmas]"),
    (".toml", "sigmas = 3\n", "[sigmas]"),
    (".toml", "[sigmas]\ntau_memory = 0.1\n", "tau_memory"),
    (".json", '{"sigmas": {"w_recurrent": 0.1}}', "w_recurrent"),
    (".toml", '[sigmas]\nw_rec = "0.1"\n', "w_rec"),
    (".json", '{"sigmas": {"tau_mem": null}}', "tau_mem"),
    (".json", '{"sigmas": {"tau_mem": true}}', "tau_mem"),
    (".toml", "[sigmas\ntau_mem = 0.1\n", "cannot parse"),
    (".json", '{"sigmas": {"tau_mem": 0.1}', "cannot parse"),
    (".toml", 'colour = "red"\n[sigmas]\ntau_mem = 0.1\n', "colour"),
    (".json", '{"sigmas": {"tau_mem": 0.1}, "levels": [1]}', "levels"),
    (".json", '{"sigmas": {"tau_mem": -0.1}}', "tau_mem"),
    (".json", '{"sigmas": {"tau_mem": 10.0}}', "tau_mem"),
    (".toml", 'positive_rule = "cubic"\n[sigmas]\ntau_mem = 0.1\n', "positive_rule"),
])
def test_bad_profile_files(tmp_path, suffix, text, needle):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    for call in (lambda: load_profile(path), lambda: get_profile(str(path))):
        with pytest.raises(ConfigError) as err:
            call()
        assert isinstance(err.value, ValueError)
        message = str(err.value)
        assert str(path) in message
        assert needle in message


def test_missing_profile_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="no such file") as err:
        get_profile(str(path))
    assert str(path) in str(err.value)


def test_get_profile_unknown_name():
    with pytest.raises(ConfigError) as err:
        get_profile("dynapse2")
    assert "dynapse2" in str(err.value) and "uniform" in str(err.value)
    with pytest.raises(ConfigError, match=r"^profile: expected one of \[.*'uniform'\] or a \.toml/\.json file, "
                                          r"got 'nonexistent'$"):
        builtin_profile("nonexistent")
    with pytest.raises(ConfigError, match="level"):
        builtin_profile("uniform", -0.1)


def test_profile_validation():
    with pytest.raises(ConfigError, match="w_slow"):
        MismatchProfile("x", (("w_slow", 0.1),))
    with pytest.raises(ConfigError, match="sigma of tau_mem"):
        MismatchProfile("x", (("tau_mem", -0.5),))
    with pytest.raises(ConfigError, match="factor"):
        builtin_profile("uniform", 0.1).scaled(-1)
    # sigmas are stored sorted, so equal profiles compare equal whatever the order given
    a = MismatchProfile("p", (("w_rec", 0.1), ("tau_mem", 0.2)))
    b = MismatchProfile("p", {"tau_mem": 0.2, "w_rec": 0.1})
    assert a == b and hash(a) == hash(b)
