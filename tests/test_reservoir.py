"""Reservoir / liquid-state-machine baseline (spikefleet.train.reservoir, spec §13.3)."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.simulation import evaluate_model
from spikefleet.models.spiking import SpikingNetwork
from spikefleet.seeds import TEST, TRAIN, seed_stream
from spikefleet.simulation import simulate_batch
from spikefleet.tasks import get_task
from spikefleet.train import reservoir as rsv
from spikefleet.train.reservoir import ReservoirConfig, RidgeAccumulator, ridge_solve


# ------------------------------------------------------------------------------ config
def test_config_defaults_validation_and_roundtrip():
    cfg = ReservoirConfig()
    assert (cfg.n, cfg.n_liquids, cfg.density, cfg.inh_every, cfg.inh_factor) == (320, 3, 0.041, 5, 4.73)
    assert (cfg.tau_max, cfg.tau_out, cfg.ridge, cfg.noise) == (0.112, 0.256, 100.0, 0.01)
    assert ReservoirConfig(n=768).n_liquids == 8
    assert ReservoirConfig(n=50).n_liquids == 1
    assert ReservoirConfig(n=768, liquids=4).n_liquids == 4
    assert ReservoirConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"n": 0}, {"density": 1.5}, {"input_density": -0.1}, {"liquids": 0}, {"liquids": 400},
                {"tau_out": 0.0}, {"ridge": -1.0}, {"input_sign": "both"}, {"v_init": "zero"},
                {"threshold": 0.0}, {"w_exc_std": -1e-4}, {"fit_bias": 1}, {"train_trials": 2.5},
                {"tau_max": 1e-4}):
        (name,) = bad
        with pytest.raises(ConfigError, match=rf"^ReservoirConfig\.{name}: expected .*, got "):
            ReservoirConfig(**bad)


def test_time_constants_linearly_spaced_and_clipped_at_dt():
    cfg = ReservoirConfig(n=100, tau_min=0.0, tau_max=0.112, dt=1e-3)
    tau = cfg.time_constants()
    assert tau[0] == pytest.approx(0.112) and tau[-1] == pytest.approx(1e-3)  # lower end clipped to dt
    np.testing.assert_allclose(np.diff(tau), -(0.112 - 1e-3) / 99, rtol=1e-9)
    tau2 = ReservoirConfig(n=100, tau_min=0.02).time_constants()
    assert tau2[-1] == pytest.approx(0.02)
    net = rsv.build_reservoir(cfg, 1, 1, 0)
    np.testing.assert_allclose(net.neurons.tau_mem, tau, rtol=1e-6)
    np.testing.assert_allclose(net.neurons.tau_syn[0], tau, rtol=1e-6)
    np.testing.assert_allclose(net.tau_out, 0.256)


def test_liquid_bounds_cover_all_neurons():
    for n, liquids in ((768, None), (320, None), (100, 7), (5, 5)):
        cfg = ReservoirConfig(n=n, liquids=liquids)
        bounds = rsv.liquid_bounds(cfg)
        assert len(bounds) == cfg.n_liquids and bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds[:-1], bounds[1:]))
        sizes = [b - a for a, b in bounds]
        assert max(sizes) - min(sizes) <= 1
    assert rsv.liquid_bounds(ReservoirConfig(n=768)) == [(96 * i, 96 * (i + 1)) for i in range(8)]


# ------------------------------------------------------------------------ connectivity
@pytest.fixture(scope="module")
def spec_liquid():
    cfg = ReservoirConfig(n=768)  # the spec's 8 liquids of 96
    return cfg, rsv.liquid_weights(cfg, 16, np.random.default_rng(1234))


def test_block_diagonal_and_no_self_connections(spec_liquid):
    cfg, parts = spec_liquid
    w = parts["w_rec"]
    inside = np.zeros_like(w, dtype=bool)
    for a, b in rsv.liquid_bounds(cfg):
        inside[a:b, a:b] = True
    assert np.all(w[~inside] == 0.0)  # no synapse between liquids
    assert np.all(np.diag(w) == 0.0)


def test_sparsity_within_each_liquid(spec_liquid):
    cfg, parts = spec_liquid
    w = parts["w_rec"]
    for a, b in rsv.liquid_bounds(cfg):
        m = b - a
        pairs = m * (m - 1)
        count = np.count_nonzero(w[a:b, a:b])
        assert count == round(cfg.density * pairs)  # exact count per liquid
        assert abs(count / pairs - cfg.density) <= 0.5 / pairs
    # the whole matrix: density over all within-liquid ordered pairs
    total_pairs = sum((b - a) * (b - a - 1) for a, b in rsv.liquid_bounds(cfg))
    assert np.count_nonzero(w) / total_pairs == pytest.approx(cfg.density, abs=1e-4)


def test_connections_are_spread_over_pre_and_post(spec_liquid):
    cfg, parts = spec_liquid
    nz = parts["w_rec"] != 0
    a, b = rsv.liquid_bounds(cfg)[0]
    out_deg, in_deg = nz[a:b, a:b].sum(1), nz[a:b, a:b].sum(0)
    # Binomial(95, 0.041): mean 3.9; the degrees must not be concentrated on a few neurons
    assert 3.0 < out_deg.mean() < 4.8 and out_deg.max() < 15 and in_deg.max() < 15


def test_excitatory_inhibitory_weights(spec_liquid):
    cfg, parts = spec_liquid
    w, scale = parts["w_rec"], cfg.weight_scale
    inh = np.arange(cfg.n) % 5 == 0
    np.testing.assert_array_equal(parts["inhibitory"], inh)
    assert np.all(w[inh] <= 0.0) and np.all(w[~inh] >= 0.0)  # sign set by the presynaptic neuron (row)
    exc_vals = w[~inh][w[~inh] != 0] / scale
    inh_vals = w[inh][w[inh] != 0] / (-cfg.inh_factor * scale)  # back to the excitatory distribution
    assert inh.mean() == pytest.approx(0.2, abs=0.01)
    assert len(inh_vals) / (len(inh_vals) + len(exc_vals)) == pytest.approx(0.2, abs=0.03)
    for vals in (exc_vals, inh_vals):
        k = len(vals)
        assert abs(vals.mean() - cfg.w_exc_mean) < 5 * cfg.w_exc_std / math.sqrt(k)
        assert vals.std() == pytest.approx(cfg.w_exc_std, rel=5 / math.sqrt(2 * k))
        assert vals.min() >= 0.0  # clipped at >= 0 (never active at 15 σ)
    # inhibitory magnitude relative to excitatory: the factor 4.73
    assert np.abs(w[inh][w[inh] != 0]).mean() / w[~inh][w[~inh] != 0].mean() == pytest.approx(4.73, rel=0.02)


def test_input_weights(spec_liquid):
    cfg, parts = spec_liquid
    assert cfg.input_density == 1.0 and np.all(parts["w_in"] != 0)  # default: every neuron gets the input
    cfg = dataclasses.replace(cfg, input_density=0.3)
    w_in = rsv.liquid_weights(cfg, 16, np.random.default_rng(5))["w_in"]
    assert w_in.shape == (16, 768)
    level = cfg.w_input * cfg.weight_scale
    mags = np.abs(w_in)
    assert np.all((mags == 0.0) | np.isclose(mags, level, rtol=1e-12))
    frac = np.count_nonzero(w_in) / w_in.size
    assert abs(frac - cfg.input_density) < 5 * math.sqrt(cfg.input_density * (1 - cfg.input_density) / w_in.size)
    pos = np.mean(w_in[w_in != 0] > 0)
    assert pos == pytest.approx(0.5, abs=0.05)  # random signs (ON/OFF)
    only_pos = rsv.liquid_weights(dataclasses.replace(cfg, input_sign="positive"), 2, np.random.default_rng(0))
    assert np.all(only_pos["w_in"] >= 0)


def test_build_reservoir_network_matches_parts_and_is_deterministic():
    cfg = ReservoirConfig(n=96, liquids=2)
    net = rsv.build_reservoir(cfg, 1, 1, 7)
    again = rsv.build_reservoir(cfg, 1, 1, 7)
    other = rsv.build_reservoir(cfg, 1, 1, 8)
    parts = rsv.liquid_weights(cfg, 1, np.random.default_rng(seed_stream(7, rsv.RESERVOIR_INIT)))
    assert isinstance(net, SpikingNetwork)
    np.testing.assert_allclose(net.w_rec, parts["w_rec"], rtol=1e-6)
    np.testing.assert_allclose(net.w_in, parts["w_in"], rtol=1e-6)
    np.testing.assert_allclose(net.neurons.v_init, parts["v_init"], rtol=1e-6)
    np.testing.assert_array_equal(net.w_rec, again.w_rec)
    assert not np.array_equal(np.asarray(net.w_rec), np.asarray(other.w_rec))
    assert np.all(np.asarray(net.w_out) == 0) and np.all(np.asarray(net.b_out) == 0)
    v0 = np.asarray(net.neurons.v_init)
    assert np.all((v0 >= 0) & (v0 < 1))
    c = net.config
    assert (c.input_target, c.reset, c.integrator, c.synapse_norm, c.readout_norm, c.fast) == (
        "current", "value", "exact", "none", "none", False)
    assert np.all(np.asarray(rsv.build_reservoir(dataclasses.replace(cfg, v_init="reset"), 1, 1, 7)
                             .neurons.v_init) == 0)


def test_threshold_spread_stays_above_reset():
    cfg = ReservoirConfig(n=2000, threshold_std=0.5)
    th = rsv.liquid_weights(cfg, 1, np.random.default_rng(0))["threshold"]
    assert th.min() >= rsv.MIN_GAP and th.std() == pytest.approx(0.5, rel=0.15)


# -------------------------------------------------------------------------------- ridge
def _problem(seed=0, k=300, n=7, o=2):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(k, n)) * rng.uniform(0.5, 3, size=n) + rng.uniform(-1, 2, size=n)
    y = r @ rng.normal(size=(n, o)) + 0.7 + 0.3 * rng.normal(size=(k, o))
    return r, y


@pytest.mark.parametrize("lam", [0.0, 0.1, 100.0])
def test_ridge_bias_unregularised_matches_lstsq_and_centred_closed_form(lam):
    r, y = _problem()
    acc = RidgeAccumulator(r.shape[1], y.shape[1])
    acc.add(r, y)
    w, b = acc.solve(lam)
    k, n = r.shape
    # augmented least squares: [R 1; √λ I 0] β ≈ [Y; 0]
    a = np.block([[r, np.ones((k, 1))], [math.sqrt(lam) * np.eye(n), np.zeros((n, 1))]])
    beta = np.linalg.lstsq(a, np.concatenate([y, np.zeros((n, y.shape[1]))]), rcond=None)[0]
    np.testing.assert_allclose(w, beta[:-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b, beta[-1], rtol=1e-8, atol=1e-10)
    # equivalent closed form: ridge on centred data, b = ȳ − x̄ w
    rc, yc = r - r.mean(0), y - y.mean(0)
    w2 = np.linalg.solve(rc.T @ rc + lam * np.eye(n), rc.T @ yc)
    np.testing.assert_allclose(w, w2, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b, y.mean(0) - r.mean(0) @ w2, rtol=1e-8, atol=1e-10)
    if lam == 0.0:  # plain least squares with an intercept
        ls = np.linalg.lstsq(np.column_stack([r, np.ones(k)]), y, rcond=None)[0]
        np.testing.assert_allclose(np.vstack([w, b]), ls, rtol=1e-8, atol=1e-10)


def test_ridge_bias_regularised_and_no_bias_closed_forms():
    r, y = _problem(1)
    lam = 25.0
    x = np.column_stack([r, np.ones(len(r))])
    w, b = ridge_solve(x.T @ x, x.T @ y, lam, fit_bias=True, regularize_bias=True)
    direct = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)  # (XᵀX + λI)⁻¹ XᵀY
    np.testing.assert_allclose(np.vstack([w, b]), direct, rtol=1e-9)
    w0, b0 = ridge_solve(r.T @ r, r.T @ y, lam, fit_bias=False)
    np.testing.assert_allclose(w0, np.linalg.solve(r.T @ r + lam * np.eye(r.shape[1]), r.T @ y), rtol=1e-9)
    assert np.all(b0 == 0)
    # the unregularised bias differs from the regularised one on data with a large offset
    wu, bu = ridge_solve(x.T @ x, x.T @ y, lam, fit_bias=True)
    assert not np.allclose(bu, b)


def test_chunked_accumulation_equals_one_shot():
    rng = np.random.default_rng(3)
    r = rng.normal(size=(9, 40, 5)) + 1.0  # [trials, T, N]
    y = rng.normal(size=(9, 40, 1))
    one = RidgeAccumulator(5, 1)
    one.add(r, y)
    chunked = RidgeAccumulator(5, 1)
    for lo, hi in ((0, 2), (2, 3), (3, 7), (7, 9)):
        chunked.add(r[lo:hi], y[lo:hi])
    by_time = RidgeAccumulator(5, 1)
    for t0 in range(0, 40, 13):
        by_time.add(r[:, t0:t0 + 13], y[:, t0:t0 + 13])
    for acc in (chunked, by_time):
        assert acc.count == one.count == 9 * 40
        np.testing.assert_allclose(acc.xtx, one.xtx, rtol=1e-12)
        np.testing.assert_allclose(acc.xty, one.xty, rtol=1e-12)
        for got, want in zip(acc.solve(100.0), one.solve(100.0)):
            np.testing.assert_allclose(got, want, rtol=1e-10)
    # the MSE from the accumulated moments equals the directly computed residual
    w, b = one.solve(100.0)
    direct = np.mean((r.reshape(-1, 5) @ w + b - y.reshape(-1, 1)) ** 2)
    assert one.mse(w, b) == pytest.approx(direct, rel=1e-9)
    with pytest.raises(ConfigError, match=r"^RidgeAccumulator\.add: expected r \[\.\.\., 5\] and y \[\.\.\., 1\] "
                                          r"with the same rows, got \(\(9, 40, 4\), \(360, 1\)\)$"):
        one.add(r[..., :4], y)


def test_augment_noise_level():
    x = np.zeros((4, 5000, 1), np.float32)
    x[:, 100:200] = 2.0
    rng = np.random.default_rng(0)
    out = rsv.augment(x, 0.01, rng)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.std(out - x) == pytest.approx(0.02, rel=0.05)  # 1 % of the peak |x| = 2
    np.testing.assert_array_equal(rsv.augment(x, 0.0, rng), x)


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def small_trained():
    task = get_task("xor")
    cfg = ReservoirConfig(n=40, liquids=2, train_trials=6, val_trials=5, chunk=4, weight_scale=300.0)
    net, info = rsv.train_reservoir(task, cfg, 3, progress=False)
    return task, cfg, net, info


def test_train_reservoir_info_and_readout_is_the_ridge_solution(small_trained):
    task, cfg, net, info = small_trained
    assert info["method"] == "reservoir" and info["task"] == "xor" and info["seed"] == 3
    assert ReservoirConfig.from_dict(info["config"]) == cfg
    assert set(info["validation"]) >= {"accuracy", "loss", "rate_hz"}
    assert info["train"]["samples"] == 6 * 1000 and info["seconds"] > 0
    # recompute the fit independently: the same augmented trials, one-shot traces, closed form
    fresh = rsv.build_reservoir(cfg, 1, 1, 3)
    xs, ys = [], []
    for i in range(6):
        s = seed_stream(3, TRAIN, i)
        batch = task.generate(1, s)
        xs.append(rsv.augment(batch.inputs, 0.01, np.random.default_rng([s, 1])))
        ys.append(batch.targets)
    r = np.asarray(simulate_batch(fresh, jnp.asarray(np.concatenate(xs)), record=("r",)).traces["r"], np.float64)
    y = np.concatenate(ys).reshape(-1, 1).astype(np.float64)
    x = np.column_stack([r.reshape(-1, cfg.n), np.ones(len(y))])
    d = np.diag(np.r_[np.ones(cfg.n), 0.0])  # bias unregularised
    beta = np.linalg.solve(x.T @ x + cfg.ridge * d, x.T @ y)
    got = np.vstack([np.asarray(net.w_out, np.float64), np.asarray(net.b_out, np.float64)[None]])
    # The per-trial moments are float32 sums (relative error ~1e-7) and the ridge system has a
    # condition number ~1e5 here, so compare what matters: the fitted outputs and the objective.
    np.testing.assert_allclose(x @ got, x @ beta, atol=2e-3)
    np.testing.assert_allclose(got, beta, atol=2e-3 * np.abs(beta).max())

    def objective(b):
        return np.sum((x @ b - y) ** 2) + cfg.ridge * np.sum(b[:-1] ** 2)

    assert objective(got) <= objective(beta) * (1 + 1e-6)
    assert info["train"]["mse"] == pytest.approx(np.mean((x @ got - y) ** 2), rel=1e-4)
    assert info["train"]["rate_hz"] > 0  # the liquid is not silent


def test_trained_network_runs_with_simulate_and_evaluate(small_trained):
    task, cfg, net, info = small_trained
    batch = task.generate(3, seed_stream(3, TEST))
    res = simulate_batch(net, jnp.asarray(batch.inputs), record=("r",))
    assert res.outputs.shape == (3, 1000, 1) and bool(jnp.all(jnp.isfinite(res.outputs)))
    np.testing.assert_allclose(res.outputs, res.traces["r"] @ net.w_out + net.b_out, rtol=1e-4, atol=1e-5)
    metrics = evaluate_model(net, task, batch)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["rate_hz"] > 0 and math.isfinite(metrics["loss"])


def test_mismatch_keeps_structure(small_trained):
    from spikefleet.fleet.mismatch import apply_mismatch, builtin_profile

    _, _, net, _ = small_trained
    chip = apply_mismatch(net, builtin_profile("uniform", 0.1), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(chip.w_rec) != 0, np.asarray(net.w_rec) != 0)  # sparsity kept
    assert not np.allclose(chip.neurons.tau_mem, net.neurons.tau_mem)


def test_singular_system_falls_back_to_least_squares():
    r = np.zeros((50, 3))
    r[:, 0] = np.linspace(0, 1, 50)  # two silent neurons: XᵀX is singular without ridge
    y = 2 * r[:, :1] + 0.5
    acc = RidgeAccumulator(3, 1)
    acc.add(r, y)
    w, b = acc.solve(0.0)
    np.testing.assert_allclose(r @ w + b, y, atol=1e-9)


def test_checkpoint_round_trip(small_trained, tmp_path):
    from spikefleet import checkpoint

    _, _, net, info = small_trained
    path = checkpoint.save(tmp_path / "reservoir.npz", net, info)
    loaded = checkpoint.load(path)
    assert loaded.model.config == net.config and loaded.info["method"] == "reservoir"
    for a, b in zip(jax.tree_util.tree_leaves(loaded.model), jax.tree_util.tree_leaves(net)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_train_rejects_bad_arguments():
    task = get_task("xor")
    with pytest.raises(ConfigError, match=r"^seed: expected a non-negative integer, got -1$"):
        rsv.train_reservoir(task, ReservoirConfig(n=10, train_trials=1, val_trials=1), -1, progress=False)
    with pytest.raises(ConfigError, match=r"^task\.dt: expected the reservoir time step 0\.002, got 0\.001$"):
        rsv.train_reservoir(task, ReservoirConfig(n=10, dt=2e-3, train_trials=1, val_trials=1), 0, progress=False)


@pytest.mark.slow
def test_xor_accuracy_default_config():
    """Default XOR reservoir (N = 320, 1000 training trials) on 200 fresh test trials."""
    task = get_task("xor")
    net, info = rsv.train_reservoir(task, ReservoirConfig(), 0, progress=False)
    test = task.generate(200, seed_stream(0, TEST))
    metrics = evaluate_model(net, task, test)
    print(f"reservoir XOR: test accuracy {metrics['accuracy']:.3f}, rate {metrics['rate_hz']:.1f} Hz, "
          f"val {info['validation']['accuracy']:.3f}, train mse {info['train']['mse']:.4f}, "
          f"{info['seconds']:.0f} s")
    assert metrics["accuracy"] >= 0.9
    assert 5.0 < metrics["rate_hz"] < 200.0  # active, not saturated
