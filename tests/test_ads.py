"""Network ADS (spikefleet.train.ads) against NumPy transcriptions of spec §5–§8."""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.simulation import evaluate_model
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingState
from spikefleet.neurons.lif import LIFState
from spikefleet.simulation import simulate, simulate_batch
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.models import ads as ads_model
from spikefleet.train import ads
from spikefleet.seeds import seed_stream


# ------------------------------------------------------------------------ NumPy references
def np_thresholds(d, cfg):
    """§6.2: T_i = ½(νλ + μλ² + n_i²), n_i the L1 (reference) or L2 norm of column i."""
    d = np.asarray(d, np.float64)
    n_sq = np.abs(d).sum(0) ** 2 if cfg.threshold_norm == "l1" else (d ** 2).sum(0)
    return 0.5 * (cfg.nu * cfg.lambda_d + cfg.mu * cfg.lambda_d ** 2 + n_sq)


def np_weights(d, cfg):
    """§6 in the spec's own orientation: W^in (N̂×N), W^out (N×N̂), Ω^f_ij from j to i."""
    d = np.asarray(d, np.float64)
    m, n = d.shape
    t = np_thresholds(d, cfg)
    d_tilde = np.empty_like(d)
    for i in range(n):
        d_tilde[:, i] = (cfg.v_th - cfg.v_rest) * d[:, i] / t[i]
    w_in = cfg.tau_mem * d_tilde
    om_f = np.zeros((n, n))
    if cfg.fast:
        for i in range(n):
            for j in range(n):
                if i != j:
                    om_f[i, j] = -cfg.kappa * np.dot(d[:, i], d[:, j]) / t[i]
    return {"T": t, "W_in": w_in, "W_out": cfg.tau_mem * d_tilde.T, "Om_f": om_f}


def np_step(p, cfg, s, c_tilde):
    """Spec §5 steps 1–6 for one step; ``s`` holds V, Is, If, Ik, r (spec state after step t−1)."""
    dt = cfg.dt
    s = dict(s)
    current = s["Is"] + s["If"] + s["Ik"] + p["W_in"].T @ c_tilde  # Σ_j W^in_ji c̃_j
    v = s["V"] + dt / cfg.tau_mem * (cfg.v_rest - s["V"] + current)
    o = (v >= cfg.v_th).astype(np.float64)
    s["Is"] = math.exp(-dt / cfg.tau_s) * s["Is"] + p["Om_s"].T @ o / cfg.tau_s  # Ω^s_ij: i -> j
    s["If"] = math.exp(-dt / cfg.tau_f) * s["If"] + p["Om_f"] @ o / cfg.tau_f  # Ω^f_ij: j -> i
    s["r"] = math.exp(-dt / cfg.tau_r) * s["r"] + o / cfg.tau_r
    x_tilde = p["W_out"].T @ s["r"]
    s["V"] = np.where(o > 0, cfg.v_reset, v)
    return s, o, x_tilde


def np_learn(p, cfg, v0, c_tilde, xhat, k, eta, learn=True):
    """Spec §5 + §7 (online rule) over one sample; returns Ω^s and the stored R, ε, o ([T, N])."""
    p = dict(p, Om_s=np.array(p["Om_s"], np.float64))
    n = v0.shape[0]
    s = {"V": np.asarray(v0, np.float64), "Is": np.zeros(n), "If": np.zeros(n), "Ik": np.zeros(n), "r": np.zeros(n)}
    rs, epss, os_ = [], [], []
    for t in range(c_tilde.shape[0]):
        s, o, x_tilde = np_step(p, cfg, s, c_tilde[t])
        e = xhat[t] - x_tilde
        eps = np.array([np.sum(p["W_in"][:, j] * e) for j in range(n)])  # ε_j = Σ_m W^in_mj e_m
        s["Ik"] = k * eps
        if learn:
            for i in range(n):
                for j in range(n):
                    if i != j:
                        p["Om_s"][i, j] += eta * s["r"][i] * eps[j]
        rs.append(s["r"].copy())
        epss.append(eps)
        os_.append(o)
    return p["Om_s"], np.array(rs), np.array(epss), np.array(os_)


# ----------------------------------------------------------------------------------- helpers
def small(n_hat=4, n=12, c=1, o=1, seed=0, **cfg):
    teacher = init_rate(RateConfig(n_in=c, n_hidden=n_hat, n_out=o), jax.random.PRNGKey(seed))
    config = ads.ADSConfig(n=n, **cfg)
    key = jax.random.PRNGKey(seed + 100)
    return teacher, config, key


def decoder_of(key, n_hat, n):
    """The documented draw of build_ads: ``k_d, _ = split(key)``, ``D = N(0, 1)/N̂``."""
    k_d, _ = jax.random.split(key)
    return np.asarray(jax.random.normal(k_d, (n_hat, n), jnp.float32) / n_hat, np.float64)


# ----------------------------------------------------------------------- §6 weight construction
@pytest.mark.parametrize("norm", ["l1", "l2"])
@pytest.mark.parametrize("fast", [True, False])
def test_weights_match_numpy_transcription(norm, fast):
    teacher, config, key = small(threshold_norm=norm, fast=fast)
    net = ads.build_ads(teacher, config, key)
    d = decoder_of(key, 4, 12)
    ref = np_weights(d, net.config)
    core = net.core
    np.testing.assert_allclose(core.w_in, ref["W_in"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(core.w_out, ref["W_out"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ads_model.ads_thresholds(d, net.config), ref["T"], rtol=1e-5)
    np.testing.assert_array_equal(core.w_rec, 0.0)
    if fast:
        np.testing.assert_allclose(core.w_fast, ref["Om_f"].T, rtol=1e-5, atol=1e-9)  # w[pre, post] = (Ω^f)ᵀ
        assert not np.allclose(ref["Om_f"], ref["Om_f"].T)  # the 1/T_i row scaling makes it asymmetric
        np.testing.assert_array_equal(np.diag(core.w_fast), 0.0)
        np.testing.assert_allclose(core.neurons.tau_syn, np.array([[0.07] * 12, [0.001] * 12]), rtol=1e-6)
    else:
        assert core.w_fast is None and core.neurons.tau_syn.shape == (1, 12)
    # neuron constants, sizes and the teacher projections
    lif = core.neurons
    np.testing.assert_allclose(lif.tau_mem, 0.05)
    np.testing.assert_allclose(lif.threshold, 1.0)
    np.testing.assert_allclose(lif.v_rest, 0.5)
    np.testing.assert_allclose(lif.v_reset, 0.0)
    np.testing.assert_allclose(lif.bias, 0.0)
    np.testing.assert_allclose(core.tau_out, 0.07)
    assert np.all((np.asarray(lif.v_init) >= 0.0) & (np.asarray(lif.v_init) <= 1.0))
    assert (net.config.n_in, net.config.n_hat, net.config.n_out) == (1, 4, 1)
    np.testing.assert_array_equal(net.f_hat, teacher.w_in)
    np.testing.assert_array_equal(net.d_hat, teacher.w_out)
    # an explicit decoder gives the same network
    same = ads.build_ads(teacher, config, key, decoder=d)
    np.testing.assert_allclose(same.core.w_in, core.w_in, rtol=1e-6)


def test_threshold_scale_for_128_units():
    """Spec §6.2: with N̂ = 128 and the L1 norm, T ≈ 0.42."""
    cfg = ads.ADSConfig()
    d = jax.random.normal(jax.random.PRNGKey(3), (128, 768)) / 128
    t = np.asarray(ads_model.ads_thresholds(d, cfg))
    assert abs(t.mean() - 0.42) < 0.01
    assert np.std(np.asarray(d)) == pytest.approx(1 / 128, rel=0.02)


# ------------------------------------------------------------------------- §5 one core step
def test_one_step_matches_spec_update_order():
    teacher, config, key = small(n_hat=4, n=12, kappa=2.0)
    net = ads.build_ads(teacher, config, key)
    cfg, n = net.config, 12
    rng = np.random.default_rng(0)
    om_s = rng.normal(0, 0.05, (n, n)) * (1 - np.eye(n))  # spec Ω^s_ij from i to j
    net = net.with_slow_weights(jnp.asarray(om_s, jnp.float32))
    p = np_weights(decoder_of(key, 4, n), cfg)
    p["Om_s"] = np.asarray(net.core.w_rec, np.float64)
    # a previous step: synaptic currents before the previous spikes, the previous spikes, trace
    i_prev = rng.normal(0, 0.3, (2, n)).astype(np.float32)
    o_prev = (rng.random(n) < 0.4).astype(np.float32)
    v = rng.uniform(0.3, 1.0, n).astype(np.float32)
    r = rng.uniform(0, 30, n).astype(np.float32)
    i_k = rng.normal(0, 0.2, n).astype(np.float32)
    x_t = np.array([0.7], np.float32)
    state = SpikingState(neurons=LIFState(v=jnp.asarray(v), i_syn=jnp.asarray(i_prev),
                                          refractory=jnp.zeros(n, jnp.int32), t=jnp.zeros((), jnp.int32)),
                         spikes=jnp.asarray(o_prev), trace=jnp.asarray(r))
    new, y, traces = net.step(state, jnp.asarray(x_t), current=jnp.asarray(i_k))
    # the same state in the spec's bookkeeping (currents after step 4 of t-1)
    a_s, a_f = math.exp(-cfg.dt / cfg.tau_s), math.exp(-cfg.dt / cfg.tau_f)
    s = {"V": v.astype(np.float64), "r": r.astype(np.float64), "Ik": i_k.astype(np.float64),
         "Is": a_s * i_prev[0] + p["Om_s"].T @ o_prev / cfg.tau_s,
         "If": a_f * i_prev[1] + p["Om_f"] @ o_prev / cfg.tau_f}
    c_tilde = cfg.amplitude * (x_t.astype(np.float64) @ np.asarray(net.f_hat, np.float64))
    s_ref, o_ref, x_ref = np_step(p, cfg, s, c_tilde)
    assert 0 < o_ref.sum() < n  # some but not all neurons spike
    np.testing.assert_array_equal(traces["spikes"], o_ref)
    np.testing.assert_allclose(new.neurons.v, s_ref["V"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(traces["r"], s_ref["r"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(traces["x_tilde"], x_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, x_ref @ np.asarray(net.d_hat, np.float64), rtol=1e-5, atol=1e-6)
    # the test is sensitive to the fast-weight orientation: Ω^f transposed changes V
    s_t = dict(s, If=a_f * i_prev[1] + p["Om_f"].T @ o_prev / cfg.tau_f)
    wrong, _, _ = np_step(p, cfg, s_t, c_tilde)
    assert np.max(np.abs(wrong["V"] - s_ref["V"])) > 1e-3


# ------------------------------------------------------------------------------ §7 learning
def _learning_case(fast=True):
    teacher, config, key = small(n_hat=3, n=10, seed=2, fast=fast)
    net = ads.build_ads(teacher, config, key)
    steps = 60
    t = np.arange(steps) * 1e-3
    inputs = (0.5 + np.sin(2 * np.pi * 5 * t))[:, None].astype(np.float32)
    xhat = np.stack([0.6 * np.sin(2 * np.pi * f * t + ph) for f, ph in ((3, 0), (7, 1), (11, 2))], 1)
    xhat = xhat.astype(np.float32)
    p = np_weights(decoder_of(key, 3, 10), net.config)
    p["Om_s"] = np.zeros((10, 10))
    c_tilde = net.config.amplitude * inputs.astype(np.float64) @ np.asarray(net.f_hat, np.float64)
    return net, inputs, xhat, p, c_tilde


@pytest.mark.parametrize("fast", [True, False])
def test_online_learning_matches_numpy_loop(fast):
    net, inputs, xhat, p, c_tilde = _learning_case(fast)
    k, eta = 30.0, 2e-3
    v0 = np.asarray(net.core.neurons.v_init)
    new, metrics = ads.learn_sample(net, inputs, xhat, k, eta)
    om_ref, _, _, spikes = np_learn(p, net.config, v0, c_tilde, xhat, k, eta)
    assert spikes.sum() > 0
    if fast:  # the learned Ω^s acts back on the spikes within the sample (same-step ordering matters)
        spikes_frozen = np_learn(p, net.config, v0, c_tilde, xhat, k, 1e-9)[3]
        assert np.any(spikes != spikes_frozen)
    om = np.asarray(new.w_slow, np.float64)
    assert np.abs(om_ref).max() > 1e-3  # learning did something sizeable
    assert np.linalg.norm(om - om_ref) / np.linalg.norm(om_ref) < 1e-5
    np.testing.assert_array_equal(np.diag(om), 0.0)
    assert set(metrics) >= {"mse", "e_rec", "rate_hz"} and np.isfinite(float(metrics["e_rec"]))
    # the input network is unchanged apart from Ω^s
    np.testing.assert_array_equal(new.core.w_in, net.core.w_in)
    assert float(metrics["rate_hz"]) == pytest.approx(spikes.sum() / (10 * 60e-3), rel=1e-6)


@pytest.mark.parametrize("chunk", [1, 7, 60, 100])
def test_low_rank_chunking_is_exact(chunk):
    """Folding Ω^s every `chunk` steps (with the pending drive as a current) equals per-step updates."""
    net, inputs, xhat, p, c_tilde = _learning_case(True)
    k, eta = 30.0, 2e-3
    om_ref = np_learn(p, net.config, np.asarray(net.core.neurons.v_init), c_tilde, xhat, k, eta)[0]
    om, metrics = ads._online_run(net, net.core.w_rec, jnp.asarray(inputs), jnp.asarray(xhat), k, eta, chunk)
    assert np.linalg.norm(np.asarray(om, np.float64) - om_ref) / np.linalg.norm(om_ref) < 1e-5
    _, m_ref = ads._online_run(net, net.core.w_rec, jnp.asarray(inputs), jnp.asarray(xhat), k, eta, 1)
    np.testing.assert_allclose(metrics["e_rec"], m_ref["e_rec"], rtol=1e-5)


def test_batched_update_is_normalised_projected_error_correlation():
    net, inputs, xhat, p, c_tilde = _learning_case()
    k, eta = 30.0, 1e-3
    new, _ = ads.learn_batch_update(net, inputs, xhat, k, eta)
    _, rs, epss, _ = np_learn(p, net.config, np.asarray(net.core.neurons.v_init), c_tilde, xhat, k, eta,
                             learn=False)
    delta_ref = rs.T @ epss
    np.fill_diagonal(delta_ref, 0.0)
    delta_ref *= eta / np.mean(np.abs(delta_ref))
    delta = np.asarray(new.w_slow, np.float64)  # Ω^s started at 0
    assert np.mean(np.abs(delta)) == pytest.approx(eta, rel=1e-5)
    np.testing.assert_array_equal(np.diag(delta), 0.0)
    np.testing.assert_allclose(delta, delta_ref, rtol=1e-4, atol=1e-4 * eta)


@pytest.mark.parametrize("rule", ["online", "batched"])
def test_scan_over_trials_equals_loop(rule):
    net, inputs, xhat, _, _ = _learning_case()
    batch_in = np.stack([inputs, -inputs, 0.5 * inputs])
    batch_x = np.stack([xhat, xhat[:, ::-1], -xhat])
    ks, etas = np.array([30.0, 20.0, 10.0]), np.array([1e-3, 2e-3, 0.0])
    scanned, metrics = ads.learn_trials(net, batch_in, batch_x, ks, etas, rule=rule)
    looped = net
    learn = ads.learn_sample if rule == "online" else ads.learn_batch_update
    for b in range(3):
        looped, m = learn(looped, batch_in[b], batch_x[b], ks[b], etas[b])
        np.testing.assert_allclose(metrics["e_rec"][b], m["e_rec"], rtol=1e-5)
    np.testing.assert_allclose(scanned.w_slow, looped.w_slow, rtol=1e-5, atol=1e-8)
    assert metrics["mse"].shape == (3,)


def np_parallel(p, cfg, v0, c_tildes, xhats, k, eta, block):
    """The "parallel" rule transcribed from its docstring: B samples side by side from the
    initial state, one shared Ω^s fixed within blocks of ``block`` steps, then
    Ω^s += η Σ_b Σ_t r_b[t] ε_b[t]ᵀ off the diagonal. A spike of step t reaches the slow synapse
    at step t+1 with the Ω^s in force then (the core's bookkeeping)."""
    om = np.array(p["Om_s"], np.float64)
    b, steps = c_tildes.shape[:2]
    n = v0.shape[0]
    a_s, a_f, a_r = (math.exp(-cfg.dt / tau) for tau in (cfg.tau_s, cfg.tau_f, cfg.tau_r))
    st = [{"V": np.asarray(v0, np.float64), "Is": np.zeros(n), "If": np.zeros(n), "Ik": np.zeros(n),
           "r": np.zeros(n), "o": np.zeros(n)} for _ in range(b)]
    pending = np.zeros((n, n))
    for t in range(steps):
        if t and t % block == 0:
            om += eta * pending * (1 - np.eye(n))
            pending[:] = 0.0
        for s, c_tilde, xhat in zip(st, c_tildes, xhats):
            s["Is"] = a_s * s["Is"] + om.T @ s["o"] / cfg.tau_s
            s["If"] = a_f * s["If"] + p["Om_f"] @ s["o"] / cfg.tau_f
            current = s["Is"] + s["If"] + s["Ik"] + p["W_in"].T @ c_tilde[t]
            v = s["V"] + cfg.dt / cfg.tau_mem * (cfg.v_rest - s["V"] + current)
            s["o"] = (v >= cfg.v_th).astype(np.float64)
            s["r"] = a_r * s["r"] + s["o"] / cfg.tau_r
            s["V"] = np.where(s["o"] > 0, cfg.v_reset, v)
            eps = p["W_in"].T @ (xhat[t] - p["W_out"].T @ s["r"])
            s["Ik"] = k * eps
            pending += np.outer(s["r"], eps)
    return om + eta * pending * (1 - np.eye(n))


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("block", [7, 60])
def test_parallel_rule_matches_numpy_loop(fast, block):
    net, inputs, xhat, p, c_tilde = _learning_case(fast)
    batch_in = np.stack([inputs, 0.7 * inputs, inputs[::-1]])
    batch_x = np.stack([xhat, -xhat, xhat[::-1]])
    c_tildes = np.stack([c_tilde, 0.7 * c_tilde, c_tilde[::-1]])
    k, eta = 30.0, 2e-3
    om, metrics = ads._parallel_run(net, net.core.w_rec, jnp.asarray(batch_in), jnp.asarray(batch_x), k, eta, block)
    om_ref = np_parallel(p, net.config, np.asarray(net.core.neurons.v_init), c_tildes, batch_x, k, eta, block)
    assert np.abs(om_ref).max() > 1e-3
    assert np.linalg.norm(np.asarray(om, np.float64) - om_ref) / np.linalg.norm(om_ref) < 1e-5
    assert metrics["e_rec"].shape == (3,)
    # without learning every sample is the plain feedback run of its own
    _, m0 = ads._parallel_run(net, net.core.w_rec, jnp.asarray(batch_in), jnp.asarray(batch_x), k, 0.0, block)
    for i in range(3):
        ref = ads._feedback_run(net, net.core.w_rec, jnp.asarray(batch_in[i]), jnp.asarray(batch_x[i]), k)[0]
        np.testing.assert_allclose(m0["e_rec"][i], ref["e_rec"], rtol=1e-5)
        np.testing.assert_allclose(m0["rate_hz"][i], ref["rate_hz"], rtol=1e-6)


def test_parallel_learn_trials_groups_and_validation():
    teacher, config, key = small(n_hat=3, n=10, seed=2)
    net = ads.build_ads(teacher, dataclasses.replace(config, rule="parallel", parallel=2), key)
    _, inputs, xhat, _, _ = _learning_case()
    batch_in = np.stack([inputs, -inputs, 0.5 * inputs, inputs[::-1]])
    batch_x = np.stack([xhat, xhat[:, ::-1], -xhat, xhat[::-1]])
    ks, etas = np.array([30.0, 99.0, 20.0, 99.0]), np.array([1e-3, 9.0, 2e-3, 9.0])  # 2nd of a group: unused
    grouped, metrics = ads.learn_trials(net, batch_in, batch_x, ks, etas, rule="parallel")
    w = net.core.w_rec
    for g in range(2):
        w, _ = ads._parallel_run(net, w, jnp.asarray(batch_in[2 * g:2 * g + 2]), jnp.asarray(batch_x[2 * g:2 * g + 2]),
                                 ks[2 * g], etas[2 * g])
    np.testing.assert_allclose(grouped.w_slow, w, rtol=1e-5, atol=1e-9)
    assert metrics["e_rec"].shape == (4,)
    with pytest.raises(ConfigError, match="multiple of config.parallel"):
        ads.learn_trials(net, batch_in[:3], batch_x[:3], ks[:3], etas[:3], rule="parallel")
    with pytest.raises(ConfigError, match="parallel"):
        ads.ADSConfig(parallel=2)  # needs rule 'parallel'
    with pytest.raises(ConfigError, match="trials_per_epoch"):
        ads.ADSConfig(rule="parallel", parallel=4, trials_per_epoch=10)


def test_train_ads_on_a_fixed_training_set_cycles_it():
    task = get_task("xor", config=XorConfig(duration=0.3))
    teacher, _, _ = small(n_hat=6, n=16, seed=5)
    cfg = ads.ADSConfig(n=16, epochs=1, trials_per_epoch=8, val_trials=4, eta=1e-4, rule="parallel", parallel=2)
    fixed = np.asarray(task.generate(2, 77).inputs)
    net, info = ads.train_ads(teacher, task, cfg, seed=1, progress=False, train_inputs=fixed)
    # the same 8 presentations by hand: groups (0,1) x 4, k and η of the schedule
    ref = ads.build_ads(teacher, cfg, jax.random.PRNGKey(seed_stream(1, 5)))
    ks, etas = ads.k_values(ref.config, 8), ads.eta_values(ref.config, 8)
    w = ref.core.w_rec
    xhat = ads.teacher_dynamics(teacher, fixed)
    for g in range(4):
        w, _ = ads._parallel_run(ref, w, jnp.asarray(fixed), xhat, ks[2 * g], etas[2 * g])
    assert info["best_epoch"] == 1  # one epoch: the trained network is returned
    np.testing.assert_allclose(net.w_slow, w, rtol=1e-4, atol=1e-9)
    assert not np.allclose(net.w_slow, 0.0)
    with pytest.raises(ConfigError, match="train_inputs"):
        ads.train_ads(teacher, task, cfg, seed=1, progress=False, train_inputs=np.zeros((2, 10, 3)))


# ------------------------------------------------------------------------------- schedules
def test_step_k_schedule():
    cfg = ads.ADSConfig(k0=200.0, k_schedule="step")
    k = ads.k_values(cfg, 80)  # n_b = 8 blocks of L = 10 iterations
    np.testing.assert_array_equal(k, np.repeat([200, 175, 150, 125, 100, 75, 50, 25], 10))
    k = ads.k_values(cfg, 83)  # not a multiple of 8: the 9th step is floored at Δk = 25
    np.testing.assert_array_equal(k[80:], [25, 25, 25])
    assert k.min() == 25 and k[0] == 200
    np.testing.assert_array_equal(ads.k_values(ads.ADSConfig(), 5), [75.0] * 5)


def test_eta_exp_schedule():
    cfg = ads.ADSConfig(eta=1e-4, eta_schedule="exp")
    n_iter = 5000
    eta = ads.eta_values(cfg, n_iter)
    b = (n_iter / 2) / math.log(100)
    i = np.arange(n_iter)
    np.testing.assert_allclose(eta, 1e-4 * np.exp(-i / b) + 1e-7, rtol=1e-12)
    assert eta[n_iter // 2] == pytest.approx(1e-6 + 1e-7, rel=1e-3)  # η0/100 at half time
    np.testing.assert_array_equal(ads.eta_values(ads.ADSConfig(), 3), [1e-6] * 3)


# ------------------------------------------------------------------- config and the design
def test_config_validation_and_round_trip():
    cfg = ads.ADSConfig(n=64, k_schedule="step", n_in=1, n_hat=8, n_out=1)
    assert ads.ADSConfig.from_dict(cfg.to_dict()) == cfg
    for bad, field in ((dict(n=0), "ADSConfig.n"), (dict(k_schedule="linear"), "ADSConfig.k_schedule"),
                       (dict(tau_mem=-1.0), "ADSConfig.tau_mem"), (dict(threshold_norm="l3"), "threshold_norm"),
                       (dict(eta=-1e-6), "ADSConfig.eta"), (dict(v_rest=2.0), "ADSConfig.v_rest"),
                       (dict(fast=1), "ADSConfig.fast"), (dict(rule="sgd"), "ADSConfig.rule")):
        with pytest.raises(ConfigError, match=field):
            ads.ADSConfig(**bad)
    teacher, config, key = small()
    with pytest.raises(ConfigError, match="n_hat"):
        ads.build_ads(teacher, dataclasses.replace(config, n_hat=5), key)


def test_skeleton_has_the_same_parameter_structure():
    teacher, config, key = small()
    for fast in (True, False):
        net = ads.build_ads(teacher, dataclasses.replace(config, fast=fast), key)
        skel = ads.ADSNetwork.skeleton(net.config)
        a, b = eqx.filter(net, eqx.is_array), eqx.filter(skel, eqx.is_array)
        assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            assert x.shape == y.shape and x.dtype == y.dtype
        # filling the skeleton with the values gives back the network
        params, static = eqx.partition(skel, eqx.is_array)
        filled = eqx.combine(jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params),
                                                          jax.tree_util.tree_leaves(a)), static)
        x = jnp.ones((20, 1))
        np.testing.assert_array_equal(simulate(filled, x).outputs, simulate(net, x).outputs)


def test_checkpoint_round_trip_once_registered(tmp_path, monkeypatch):
    """ADSNetwork fits the checkpoint protocol (skeleton + config dict); needs MODEL_KINDS["ads"]."""
    from spikefleet import checkpoint
    from spikefleet.models import registry

    monkeypatch.setitem(registry.MODEL_KINDS, "ads",
                        registry.ModelKind("ads", ads.ADSNetwork, ads.ADSConfig, ads.ADSNetwork.skeleton))
    teacher, config, key = small()
    net = ads.build_ads(teacher, config, key)
    net = net.with_slow_weights(jnp.full((12, 12), 0.01) * (1 - jnp.eye(12)))
    path = checkpoint.save(tmp_path / "ads.npz", net, {"method": "ads"})
    loaded = checkpoint.load(path, kind="ads").model
    assert loaded.config == net.config
    for a, b in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(a, b)


def test_ads_network_runs_with_simulate_and_evaluate():
    task = get_task("xor", config=XorConfig(duration=0.3))
    teacher, config, key = small(n_hat=8, n=24, seed=4)
    net = ads.build_ads(teacher, config, key)
    net = net.with_slow_weights(0.01 * jax.random.normal(jax.random.PRNGKey(1), (24, 24)) * (1 - jnp.eye(24)))
    batch = task.generate(3, 7)
    res = simulate_batch(net, jnp.asarray(batch.inputs), record=("x_tilde", "spikes"))
    assert res.outputs.shape == (3, 300, 1) and res.traces["x_tilde"].shape == (3, 300, 8)
    assert float(res.traces["spikes"].sum()) > 0
    # composition: core driven by A·F̂ᵀc, decoded through D̂
    core = simulate_batch(net.core, config.amplitude * jnp.asarray(batch.inputs) @ net.f_hat)
    np.testing.assert_allclose(res.outputs, core.outputs @ net.d_hat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.traces["x_tilde"], core.outputs, rtol=1e-6, atol=1e-7)
    # the folded single SpikingNetwork gives the same outputs
    folded = simulate_batch(net.to_spiking(), jnp.asarray(batch.inputs))
    np.testing.assert_allclose(folded.outputs, res.outputs, rtol=1e-3, atol=1e-3)
    metrics = evaluate_model(net, task, batch)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["loss"])
    xhat = ads.teacher_dynamics(teacher, batch.inputs)
    np.testing.assert_allclose(xhat, simulate_batch(teacher, jnp.asarray(batch.inputs), record=("a",)).traces["a"])
    m = ads.evaluate_ads(net, task, batch, xhat, chunk=2)
    e = np.asarray(ads.reconstruction_error(xhat, res.traces["x_tilde"]))
    assert m["e_rec"] == pytest.approx(float(e.mean()), rel=1e-5)
    rate = float(res.traces["spikes"].mean()) / 1e-3
    assert m["rate_hz"] == pytest.approx(rate, rel=1e-5)
    assert m["accuracy"] == metrics["accuracy"]


def test_reconstruction_error_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    assert float(ads.reconstruction_error(x, x)) == pytest.approx(0.0, abs=1e-7)
    assert float(ads.reconstruction_error(x, np.zeros_like(x))) == pytest.approx(1.0, rel=1e-6)
    assert float(ads.reconstruction_error(x, x + 3.0)) == pytest.approx(0.0, abs=1e-6)  # offsets are free


def test_train_ads_smoke_is_deterministic():
    task = get_task("xor", config=XorConfig(duration=0.3))
    teacher, _, _ = small(n_hat=6, n=16, seed=5)
    cfg = ads.ADSConfig(n=16, epochs=2, trials_per_epoch=3, val_trials=4, eta=1e-4)
    net, info = ads.train_ads(teacher, task, cfg, seed=1, progress=False, block=2)  # 2 + 1 padded
    assert isinstance(net, ads.ADSNetwork) and net.config.n_hat == 6
    assert [h["epoch"] for h in info["history"]] == [1, 2]
    assert info["best_epoch"] in (1, 2)
    best = min(info["history"], key=lambda h: h["e_rec"])
    assert info["validation"]["e_rec"] == best["e_rec"]
    assert {"accuracy", "rate_hz", "e_rec", "train_e_rec"} <= set(info["history"][0])
    assert not np.allclose(net.w_slow, 0.0)
    again, _ = ads.train_ads(teacher, task, cfg, seed=1, progress=False, block=3)  # no padding
    np.testing.assert_allclose(again.w_slow, net.w_slow, rtol=1e-5, atol=1e-9)


# ------------------------------------------------------------------------------ acceptance
@pytest.mark.slow
@pytest.mark.acceptance  # also in the CI acceptance lane (python3 dev.py test-acceptance)
def test_a2_xor_network_ads_acceptance():
    """Spec §18 A2: N = 320, κ = 0.5, k = 75, η = 1e-6, 10k trials (several minutes on a CPU)."""
    from spikefleet.train import gradient as recipes

    task = get_task("xor")
    teacher = recipes.train(task, "teacher", 0, progress=False).model
    net, info = ads.train_ads(teacher, task, ads.ADSConfig(), 0, progress=False)
    test = task.generate(200, seed_stream(0, 3))
    metrics = ads.evaluate_ads(net, task, test, ads.teacher_dynamics(teacher, test.inputs))
    assert metrics["accuracy"] >= 0.95, metrics
    assert metrics["e_rec"] <= 0.2, metrics
    assert 10.0 <= metrics["rate_hz"] <= 30.0, metrics
