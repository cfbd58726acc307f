"""FORCE baseline (spikefleet.train.force) against NumPy transcriptions of spec §13.2."""

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.simulation import evaluate_model
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.seeds import TEST, seed_stream
from spikefleet.simulation import simulate, simulate_batch
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.models import force as force_model
from spikefleet.train import force


@functools.lru_cache(maxsize=None)
def _teacher(n_hat, seed):
    return init_rate(RateConfig(n_in=1, n_hidden=n_hat, n_out=1), jax.random.PRNGKey(seed))


def small(n_hat=6, n=16, seed=0, **overrides):
    """A small random teacher and a built FORCE network for it."""
    teacher = _teacher(n_hat, seed)
    cfg = force.FORCEConfig(n=n, **overrides)
    return teacher, force.build_force(teacher, cfg, jax.random.PRNGKey(seed + 100))


# ------------------------------------------------------------------------ NumPy reference
def np_run(net, inputs, xhat, learn=True):
    """Spec §13.2 (Nicola & Clopath LIF, z fed back with one step delay, RLS every step), float64.

    Returns the final Φ, P, and per-step z [T, N̂] and spikes [T, N].
    """
    cfg = net.config
    f = lambda a: np.asarray(a, np.float64)  # noqa: E731
    f_hat, w_in, om, e_fb = f(net.f_hat), f(net.core.w_in), f(net.core.w_rec), f(net.e)
    phi = f(net.core.w_out).copy()
    p = cfg.alpha * np.eye(cfg.n)
    dt = cfg.dt
    a_s, a_r = math.exp(-dt / cfg.tau_syn), math.exp(-dt / cfg.tau_r)
    ref_steps = int(round(cfg.t_ref / dt))
    v = f(net.core.neurons.v_init).copy()
    i_s, r, o = np.zeros(cfg.n), np.zeros(cfg.n), np.zeros(cfg.n)
    z = np.zeros(cfg.n_hat)
    refr = np.zeros(cfg.n, int)
    zs, os_ = [], []
    for t in range(inputs.shape[0]):
        i_s = a_s * i_s + (om.T @ o) / cfg.tau_syn  # Ω[pre, post]: delivered spikes of t−1
        current = i_s + w_in.T @ (f_hat.T @ inputs[t]) + e_fb.T @ z + cfg.bias
        v = v + dt / cfg.tau_mem * (cfg.v_rest - v + current)
        v = np.where(refr > 0, cfg.v_reset, v)
        o = ((v >= cfg.v_th) & (refr == 0)).astype(np.float64)
        v = np.where(o > 0, cfg.v_reset, v)
        refr = np.where(o > 0, ref_steps, np.maximum(refr - 1, 0))
        r = a_r * r + o / cfg.tau_r
        z = phi.T @ r
        if learn:
            err = z - xhat[t]
            pr = p @ r
            phi = phi - np.outer(pr, err)
            p = p - np.outer(pr, pr) / (1.0 + r @ pr)
        zs.append(z.copy())
        os_.append(o.copy())
    return phi, p, np.array(zs), np.array(os_)


def smooth_input(steps, seed):
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(size=(steps, 1)), 0)
    return (x / np.abs(x).max()).astype(np.float32)


# ---------------------------------------------------------------------------- construction
def test_config_validation_and_round_trip():
    cfg = force.FORCEConfig(n=64, n_in=1, n_hat=8, n_out=1, balance="pre")
    assert force.FORCEConfig.from_dict(cfg.to_dict()) == cfg
    for bad, field in ((dict(n=0), "FORCEConfig.n"), (dict(p=0.0), "FORCEConfig.p"), (dict(p=1.5), "FORCEConfig.p"),
                       (dict(tau_mem=-1.0), "FORCEConfig.tau_mem"), (dict(alpha=0.0), "FORCEConfig.alpha"),
                       (dict(v_reset=-30.0), "FORCEConfig.v_reset"), (dict(balance="row"), "FORCEConfig.balance"),
                       (dict(patience=0), "FORCEConfig.patience"), (dict(q=-1.0), "FORCEConfig.q"),
                       (dict(epochs=1.5), "FORCEConfig.epochs")):
        with pytest.raises(ConfigError, match=field):
            force.FORCEConfig(**bad)
    teacher, _ = small()
    with pytest.raises(ConfigError, match="n_hat"):
        force.build_force(teacher, force.FORCEConfig(n_hat=5), jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="spiking_config|n_hat"):
        force.FORCEConfig().spiking_config()


@pytest.mark.parametrize("balance", ["post", "pre"])
def test_omega_statistics_match_the_formula(balance):
    n, g, p = 400, 0.04, 0.1
    key = jax.random.PRNGKey(3)
    om = np.asarray(force_model.force_omega(key, n, g, p, balance), np.float64)
    # the formula, redrawn from the same generator: G·N(0,1)·Bernoulli(p)/(p√N), minus the mean of the non-zeros
    rng = force_model._rng(key, 1)
    values = rng.standard_normal((n, n))
    mask = rng.random((n, n)) < p
    raw = g * values * mask / (p * math.sqrt(n))
    axis = 0 if balance == "post" else 1  # "post": incoming weights of each neuron = columns of w[pre, post]
    means = np.where(mask, raw, 0).sum(axis, keepdims=True) / mask.sum(axis, keepdims=True)
    np.testing.assert_allclose(om, np.where(mask, raw - means, 0.0), rtol=1e-5, atol=1e-8)
    # statistics: sparsity p, zero mean of the non-zeros per neuron, scale G/(p√N)
    assert np.all(om[~mask] == 0)
    assert abs(mask.mean() - p) < 0.005
    per_neuron = np.where(mask, om, 0).sum(axis) / mask.sum(axis)
    assert np.max(np.abs(per_neuron)) < 1e-6
    k = mask.sum(axis).mean()
    expected_std = g / (p * math.sqrt(n)) * math.sqrt(1 - 1 / k)
    assert om[mask].std() == pytest.approx(expected_std, rel=0.03)
    other = np.where(mask, om, 0).sum(1 - axis) / mask.sum(1 - axis)  # the other direction is not balanced
    assert np.max(np.abs(other)) > 1e-4


def test_build_force_design():
    teacher, net = small(n_hat=8, n=300, seed=2)
    cfg = net.config
    assert (cfg.n_in, cfg.n_hat, cfg.n_out) == (1, 8, 1)
    np.testing.assert_array_equal(net.f_hat, teacher.w_in)
    np.testing.assert_array_equal(net.d_hat, teacher.w_out)
    assert net.e.shape == (8, 300) and float(jnp.abs(net.e).max()) <= cfg.q
    assert abs(float(net.e.std()) - cfg.q / math.sqrt(3)) < 0.3  # U(−Q, Q)
    w_in = np.asarray(net.core.w_in)
    assert w_in.shape == (8, 300) and abs(w_in.mean()) < 0.05 and abs(w_in.std() - 1.0) < 0.05  # N(0, 1)
    np.testing.assert_array_equal(net.decoder, 0.0)
    assert net.decoder.shape == (300, 8)
    lif = net.core.neurons
    np.testing.assert_allclose(lif.v_rest + lif.bias, cfg.v_th)  # relaxes to threshold
    assert float(lif.v_init.min()) >= cfg.v_reset and float(lif.v_init.max()) <= cfg.v_th
    assert lif.refractory == cfg.t_ref and lif.reset == "value" and lif.integrator == "euler"
    np.testing.assert_allclose(lif.tau_syn, 0.07)
    np.testing.assert_allclose(net.core.tau_out, 0.07)
    np.testing.assert_allclose(force.initial_p(cfg), 1e-5 * np.eye(300))


# ------------------------------------------------------------------------------------ RLS
def test_rls_scan_matches_numpy_loop_of_the_network():
    teacher, net = small(n_hat=4, n=12, seed=1)
    steps = 60
    x = smooth_input(steps, 0) * 6.0
    xhat = np.asarray(force.teacher_dynamics(teacher, x), np.float64)
    new, p, metrics = force.learn_sample(net, force.initial_p(net.config), x, xhat)
    phi_np, p_np, z_np, o_np = np_run(net, x, xhat)
    assert o_np.sum() > 20  # the comparison covers spiking and learning
    assert 0 < float(metrics["rate_hz"]) == pytest.approx(o_np.sum() / (12 * steps * 1e-3), rel=1e-6)
    scale_phi, scale_p = np.abs(phi_np).max(), np.abs(p_np).max()
    assert scale_phi > 0
    np.testing.assert_allclose(new.decoder, phi_np, rtol=1e-4, atol=1e-4 * scale_phi)
    np.testing.assert_allclose(p, p_np, rtol=1e-4, atol=1e-4 * scale_p)
    np.testing.assert_array_equal(p, p.T)  # exactly symmetric
    assert float(metrics["mse"]) == pytest.approx(np.mean((z_np - xhat) ** 2), rel=1e-4)
    # learning block with a zero gate leaves (Φ, P) unchanged; a scan over samples = repeated calls
    p0 = force.initial_p(net.config)
    same, p_same, _ = force.learn_trials(net, p0, x[None], xhat[None], gates=[0.0])
    np.testing.assert_array_equal(same.decoder, net.decoder)
    np.testing.assert_array_equal(p_same, p0)
    two, p_two, _ = force.learn_trials(net, p0, np.stack([x, x[::-1]]), np.stack([xhat, xhat]))
    one, p_one, _ = force.learn_sample(new, p, x[::-1], xhat)
    np.testing.assert_allclose(two.decoder, one.decoder, rtol=1e-5, atol=1e-6 * scale_phi)
    np.testing.assert_allclose(p_two, p_one, rtol=1e-5, atol=1e-6 * scale_p)


def test_rls_converges_on_a_linear_toy_problem_and_keeps_p_symmetric():
    """Fixed random r sequence, target linear in r: the a-priori error e = r·Φ − y decays.

    With the spec's update (Φ uses P before its update) a step is stable while rᵀPr < 2, so
    the prior α must be small against 1/|r|²; the prior's bias then decays like 1/t."""
    rng = np.random.default_rng(0)
    n, m, steps, alpha = 20, 3, 1000, 0.05
    rs = jnp.asarray(rng.normal(size=(steps, n)), jnp.float32)
    w_true = rng.normal(size=(n, m))
    targets = jnp.asarray(np.asarray(rs, np.float64) @ w_true, jnp.float32)
    phi, p, errs = force.rls_fit(jnp.zeros((n, m)), alpha * jnp.eye(n), rs, targets)
    errs = np.abs(np.asarray(errs)).mean(1)
    chunks = [errs[i:i + 100].mean() for i in range(0, steps, 100)]
    assert chunks[-1] < 0.02 * errs[:10].mean()  # a-priori error -> 0
    assert all(b < a for a, b in zip(chunks[1:], chunks[2:]))
    np.testing.assert_allclose(phi, w_true, rtol=0, atol=0.05)
    np.testing.assert_array_equal(p, p.T)
    assert float(jnp.linalg.eigvalsh(p).min()) > 0
    # the P recursion is Sherman–Morrison: P_T = (Σ_t r rᵀ + I/α)⁻¹
    corr = np.asarray(rs, np.float64).T @ np.asarray(rs, np.float64) + np.eye(n) / alpha
    np.testing.assert_allclose(np.asarray(p, np.float64) @ corr, np.eye(n), atol=1e-3)


# ------------------------------------------------------------------------------ simulation
def test_force_network_runs_with_simulate_and_evaluate():
    task = get_task("xor", config=XorConfig(duration=0.3))
    teacher, net = small(n_hat=6, n=24, seed=4)
    net = net.with_decoder(0.02 * jax.random.normal(jax.random.PRNGKey(1), (24, 6)))
    batch = task.generate(3, 7)
    res = simulate_batch(net, jnp.asarray(batch.inputs), record=("z", "r", "spikes"))
    assert res.outputs.shape == (3, 300, 1) and res.traces["z"].shape == (3, 300, 6)
    assert float(res.traces["spikes"].sum()) > 0
    z = res.traces["z"]
    np.testing.assert_allclose(z, res.traces["r"] @ net.decoder, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.outputs, z @ net.d_hat, rtol=1e-5, atol=1e-6)
    # the feedback is z[t−1] @ E injected as a current (one-step delay, z[−1] = 0)
    z_prev = jnp.concatenate([jnp.zeros((3, 1, 6)), z[:, :-1]], axis=1)
    core = simulate_batch(net.core, jnp.asarray(batch.inputs) @ net.f_hat, current=z_prev @ net.e)
    np.testing.assert_allclose(core.outputs, z, rtol=1e-5, atol=1e-5)
    # inference = the NumPy reference without learning
    _, _, z_np, _ = np_run(net, np.asarray(batch.inputs[0], np.float64), None, learn=False)
    np.testing.assert_allclose(z[0], z_np, rtol=1e-3, atol=1e-3)
    # the folded single SpikingNetwork (feedback as recurrent weights Φ E) gives the same outputs
    folded = simulate_batch(net.to_spiking(), jnp.asarray(batch.inputs))
    np.testing.assert_allclose(folded.outputs, res.outputs, rtol=1e-3, atol=1e-3)
    # a single sample through simulate, with the step index continuing across a split run
    one = simulate(net, jnp.asarray(batch.inputs[0]))
    first = simulate(net, jnp.asarray(batch.inputs[0, :120]))
    rest = simulate(net, jnp.asarray(batch.inputs[0, 120:]), initial_state=first.final_state)
    np.testing.assert_allclose(jnp.concatenate([first.outputs, rest.outputs]), one.outputs, rtol=1e-6, atol=1e-7)
    assert int(net.step_index(one.final_state)) == 300
    metrics = evaluate_model(net, task, batch)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["loss"]) and metrics["rate_hz"] > 0
    xhat = force.teacher_dynamics(teacher, batch.inputs)
    m = force.evaluate_force(net, task, batch, xhat, chunk=2)
    assert m["accuracy"] == metrics["accuracy"]
    assert m["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    assert m["rate_hz"] == pytest.approx(float(res.traces["spikes"].mean()) / 1e-3, rel=1e-5)
    assert m["dyn_mse"] == pytest.approx(float(jnp.mean((z - xhat) ** 2)), rel=1e-4)


def test_skeleton_and_checkpoint_round_trip(tmp_path, monkeypatch):
    from spikefleet import checkpoint
    from spikefleet.models import registry

    _, net = small()
    net = net.with_decoder(0.1 * jnp.ones((16, 6)))
    skel = force.FORCENetwork.skeleton(net.config)
    a, b = eqx.filter(net, eqx.is_array), eqx.filter(skel, eqx.is_array)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype
    monkeypatch.setitem(registry.MODEL_KINDS, "force", registry.ModelKind("force", force.FORCENetwork, force.FORCEConfig,
                                                                          force.FORCENetwork.skeleton))
    path = checkpoint.save(tmp_path / "force.npz", net, {"method": "force"})
    loaded = checkpoint.load(path, kind="force").model
    assert loaded.config == net.config
    for x, y in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(x, y)


# -------------------------------------------------------------------------------- training
def test_model_selection_rule():
    assert force._better({"accuracy": 0.5, "loss": 1.0}, None)
    assert force._better({"accuracy": 0.6, "loss": 1.0}, {"accuracy": 0.5, "loss": 0.1})
    assert force._better({"accuracy": 0.5, "loss": 0.1}, {"accuracy": 0.5, "loss": 0.2})
    assert not force._better({"accuracy": 0.5, "loss": 0.2}, {"accuracy": 0.5, "loss": 0.2})
    assert not force._better({"accuracy": 0.4, "loss": 0.0}, {"accuracy": 0.5, "loss": 0.2})


def test_train_force_smoke_is_deterministic():
    task = get_task("xor", config=XorConfig(duration=0.3))
    teacher, _ = small(n_hat=6, n=16, seed=5)
    cfg = force.FORCEConfig(n=16, epochs=3, trials_per_epoch=3, val_trials=4, patience=3)
    net, info = force.train_force(teacher, task, cfg, seed=1, progress=False, block=2)  # 2 + 1 padded
    assert isinstance(net, force.FORCENetwork) and net.config.n_hat == 6
    assert info["method"] == "force" and info["task"] == "xor" and info["seed"] == 1
    assert [h["epoch"] for h in info["history"]] == [1, 2, 3] and not info["stopped_early"]
    best = info["history"][info["best_epoch"] - 1]
    assert info["validation"]["accuracy"] == max(h["accuracy"] for h in info["history"])
    assert info["validation"] == {k: best[k] for k in info["validation"]}
    assert {"accuracy", "loss", "rate_hz", "dyn_mse", "e_rec", "train_mse", "train_rate_hz"} <= set(best)
    assert force.FORCEConfig.from_dict(info["config"]) == net.config
    assert not np.allclose(net.decoder, 0.0)
    again, _ = force.train_force(teacher, task, cfg, seed=1, progress=False, block=3)  # no padding
    np.testing.assert_allclose(again.decoder, net.decoder, rtol=1e-4, atol=1e-6)
    # patience 1: stops after the first epoch without improvement
    _, short = force.train_force(teacher, task, dataclasses.replace(cfg, epochs=6, patience=1), seed=1,
                                 progress=False, block=3)
    hist = short["history"]
    if short["stopped_early"]:
        assert hist[-1]["epoch"] == short["best_epoch"] + 1 < 6
    else:
        assert len(hist) == 6


# ------------------------------------------------------------------------------ acceptance
@pytest.mark.slow
def test_force_xor_reaches_a_working_solution():
    """FORCE on temporal XOR (N = 320, default schedule; about 1.5 minutes on 2 CPU cores with the
    teacher; seed 0 reached test accuracy 1.0 at about 50 Hz)."""
    from spikefleet.train import gradient as recipes

    task = get_task("xor")
    teacher = recipes.train(task, "teacher", 0, progress=False).model
    net, info = force.train_force(teacher, task, force.FORCEConfig(), 0, progress=False)
    test = task.generate(200, seed_stream(0, TEST))
    metrics = force.evaluate_force(net, task, test, force.teacher_dynamics(teacher, test.inputs))
    assert metrics["accuracy"] >= 0.9, metrics
    assert 1.0 <= metrics["rate_hz"] <= 100.0, metrics
