r"""Network ADS (Büchel et al., Sci. Rep. 2021, Methods): how the spiking layer learns a teacher's dynamics.

Units: seconds, dimensionless potentials and currents, rates in Hz; ``w[pre, post]``. The design and its
construction are :mod:`spikefleet.models.ads`; this module is how it learns (docs: Training methods).

Learning (the paper's local rule), online, one sample at a time, from the initial state, with ``I^k[0] = 0``::

    e[t]     = x̂[t] − x̃[t]                      x̂[t] = tanh(x_teacher[t])   (the reference implementation)
    ε[t]     = e[t] @ W^in                        ([N]: ε_j = Σ_m W^in_mj e_m)
    I^k[t+1] = k ε[t]                             (one-step delay, unfiltered)
    Ω^s_ij  += η r_i[t] ε_j[t]  (i ≠ j)           (r[t] includes o[t]; applied every step)

Within step t the slow synapses receive o[t] with Ω^s *before* step t's update (the synapse update precedes the
learning update), so in the core's bookkeeping o[t−1] is delivered at step t with the updates of steps ≤ t−2. The
implementation (:func:`_online_run`) is exact but avoids an N×N write per step: it folds the pending rank-K update
into Ω^s every K = 50 steps and delivers the pending part of the slow drive through a separate unit-area τ_s filter
into the ``current`` argument (linearity of the synapse). Training runs noise-free.

Batched variant (public-Rockpool rule): simulate the sample with feedback and without
learning, ``ΔΩ = Σ_t r[t] ε[t]ᵀ``, zero its diagonal, scale so that ``mean |ΔΩ| = 1`` (mean over
all N² entries, the zero diagonal included), multiply by ``η`` and add to Ω^s.

Parallel variant (``rule="parallel"``, ``ADSConfig.parallel = P``; not in the paper): ``P`` samples run side by side
from the initial state with one shared Ω^s, which is held fixed within blocks of ``K = 50`` steps and then receives
the sum of the online updates of all samples and steps of the block, ``Ω^s ← Ω^s + η mask∘Σ_b Σ_t r_b[t] ε_b[t]ᵀ``.
``k`` and ``η`` of a group are those of its first sample. One simulation of width ``P`` costs about as much as one
sample on vector hardware, so a training budget of thousands of 5 s samples (the paper's Hey Snips schedule) becomes
affordable (:mod:`spikefleet.train.presets`).

Schedules: ``k`` constant (XOR, k = 75) or the Hey Snips step schedule (``Δk = k0/8``,
``n_b = ⌊(k0 − Δk)/Δk⌋ + 1``, ``L = ⌊n_iter/n_b⌋``, ``k_i = max(k0 − Δk ⌊i/L⌋, Δk)``); ``η``
constant or the tutorial decay ``η_i = η0 e^{−i/b} + 1e−7``, ``b = (n_iter/2)/ln 100``.

Reference-implementation details reproduced by the default configuration: 1 (target tanh(x), input A·F̂ᵀc without
teacher bias and 1/τ), 2 (``threshold_norm="l1"``), 3 (κ = 0.5 for XOR, zeroed diagonal, τ_f = dt so fast currents
act with a one-step delay), 4 (basis ψ(r) = r), 5 (one projection W^in as encoder and feedback projector, fixed
decoder W^out = (W^in)ᵀ), 6 (the JAX variant: online per-step updates, any number of neurons may spike in a step (at
most one spike per neuron), no precise spike timing; the batched normalised rule is ``rule="batched"``), 7 (constant
k = 75 for XOR; the step schedule is floored at Δk and never reaches 0; inference uses k = 0). Not reproduced here:
adaptation (β = 0 in all reported results) and the unused fast-weight plasticity.

Seeds (:func:`train_ads`): ADS init key ``PRNGKey(seed_stream(seed, 5))``; training trial ``i``
(0-based over all epochs) is ``task.generate(1, seed_stream(seed, 1, i))``; validation trials
``seed_stream(seed, 2)``; test trials (not used here) stream 3, as in :mod:`spikefleet.train.gradient`.
"""

from __future__ import annotations

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from spikefleet.errors import expect
from spikefleet.errors import is_positive_int as _is_pos_int
from spikefleet.models.ads import RULES, ADSConfig, ADSNetwork, build_ads
from spikefleet.models.rate import RateNetwork
from spikefleet.simulation import map_chunks, simulate_batch
from spikefleet.seeds import ADS_INIT as ADS_INIT_STREAM
from spikefleet.seeds import TRAIN as TRAIN_STREAM
from spikefleet.seeds import VAL as VAL_STREAM
from spikefleet.seeds import seed_stream
from spikefleet.train.loop import TrainingDiverged

__all__ = [
    "k_values", "eta_values",
    "teacher_dynamics", "learn_sample", "learn_batch_update", "learn_trials", "evaluate_ads",
    "reconstruction_error", "train_ads", "training_inputs",
]

ETA_FLOOR = 1e-7  # additive floor of the exponential η schedule (tutorial)
LOW_RANK_CHUNK = 50  # steps between folds of the pending low-rank Ω^s update (speed only)


# --------------------------------------------------------------------------------- schedules
def k_values(config: ADSConfig, n_iter: int) -> np.ndarray:
    """Feedback gain ``k_i`` for iterations ``i = 0 … n_iter−1`` (float64 ``[n_iter]``)."""
    expect(_is_pos_int(n_iter), "n_iter", "a positive integer", n_iter)
    i = np.arange(n_iter)
    if config.k_schedule == "constant" or config.k0 == 0:
        return np.full(n_iter, float(config.k0))
    dk = config.k0 / 8.0
    n_blocks = int(math.floor((config.k0 - dk) / dk)) + 1
    length = max(1, n_iter // n_blocks)
    return np.maximum(config.k0 - dk * (i // length), dk)


def eta_values(config: ADSConfig, n_iter: int) -> np.ndarray:
    """Learning rate ``η_i`` for iterations ``i = 0 … n_iter−1`` (float64 ``[n_iter]``)."""
    expect(_is_pos_int(n_iter), "n_iter", "a positive integer", n_iter)
    if config.eta_schedule == "constant":
        return np.full(n_iter, float(config.eta))
    b = (n_iter / 2.0) / math.log(100.0)
    return config.eta * np.exp(-np.arange(n_iter) / b) + ETA_FLOOR


# ---------------------------------------------------------------------------------- teacher
@eqx.filter_jit
def _teacher_a(teacher, inputs):
    return simulate_batch(teacher, inputs, record=("a",)).traces["a"]


def teacher_dynamics(teacher: RateNetwork, inputs) -> jax.Array:
    """Target dynamics ``x̂[t] = tanh(x[t])`` of the teacher (``[T, C] -> [T, N̂]`` or batched)."""
    inputs = jnp.asarray(inputs, jnp.float32)
    if inputs.ndim == 2:
        return _teacher_a(teacher, inputs[None])[0]
    return _teacher_a(teacher, inputs)


# --------------------------------------------------------------------------------- learning
def _offdiag(n: int) -> jax.Array:
    return jax.lax.broadcasted_iota(jnp.int32, (n, n), 0) != jax.lax.broadcasted_iota(jnp.int32, (n, n), 1)


def _var(x, axis):  # ddof = 1 over time
    return jnp.var(x, axis=axis, ddof=1)


def _metrics(net, err, spikes, target):
    n, steps = net.config.n, err.shape[0]
    return {
        "mse": jnp.mean(err ** 2),
        "e_rec": jnp.sum(_var(err, 0)) / jnp.sum(_var(target, 0)),
        "rate_hz": jnp.sum(spikes) / (n * steps * net.dt),
    }


def _feedback_run(net: ADSNetwork, w_slow, inputs, target, k):
    """One sample with error feedback and fixed Ω^s; returns ``(metrics, r [T, N], ε [T, N])``."""
    core = eqx.tree_at(lambda c: c.w_rec, net.core, w_slow)
    w_in = core.w_in
    target = jnp.asarray(target, jnp.float32)
    k = jnp.asarray(k, jnp.float32)

    def body(carry, xs):
        state, i_k = carry
        c_t, xhat_t = xs
        state, x_tilde, traces = core.step(state, c_t, current=i_k)
        err = xhat_t - x_tilde
        eps = err @ w_in
        return (state, k * eps), (err, traces["spikes"].sum(), traces["r"], eps)

    init = (core.init_state(), jnp.zeros((core.config.n_hidden,), jnp.float32))
    _, (err, spikes, r, eps) = jax.lax.scan(body, init, (net.drive(jnp.asarray(inputs, jnp.float32)), target))
    return _metrics(net, err, spikes, target), r, eps


def _online_run(net: ADSNetwork, w_slow, inputs, target, k, eta, chunk: int = LOW_RANK_CHUNK):
    """One sample of the online rule (Büchel et al. 2021: learning rule and feedback); returns ``(Ω^s, metrics)``.

    Exactly the per-step rule, computed without an ``N×N`` update per step: Ω^s is folded in
    every ``K = chunk`` steps, ``Ω^s ← Ω^s + η·mask∘(R_cᵀ E_c)`` with the chunk's pending traces
    ``R_c`` and projected errors ``E_c`` (``[K, N]``). In between, the core runs with the Ω^s of
    the last fold and the pending part of the slow drive, by linearity of the slow synapse,
    goes through its own unit-area filter into the ``current`` argument::

        δ[t] = η [ (R_c o[t−1]) E_c − o[t−1] ∘ Σ_s r[s] ∘ ε[s] ]      (i ≠ j only)
        I^corr[t] = α_s I^corr[t−1] + δ[t]/τ_s

    Ordering (Büchel et al. 2021: spiking neuron model actually simulated step 4 precedes Büchel et al. 2021: learning rule and feedback within a step): o[t−1] is delivered at step t with
    the Ω^s that includes the updates of steps ≤ t−2, so the update of step s enters the
    pending set at step s+2.
    """
    core = net.core
    w_in = core.w_in
    n = core.config.n_hidden
    mask = _offdiag(n)
    tau_s = core.neurons.tau_syn[0]
    alpha_s = jnp.exp(-net.dt / tau_s)
    target = jnp.asarray(target, jnp.float32)
    drives = net.drive(jnp.asarray(inputs, jnp.float32))
    steps, m = target.shape
    chunk = max(1, min(chunk, steps))
    n_chunks = -(-steps // chunk)
    pad = n_chunks * chunk - steps  # padded steps run after the sample and do not learn
    valid = jnp.concatenate([jnp.ones(steps), jnp.zeros(pad)]).reshape(n_chunks, chunk)
    drives = jnp.concatenate([drives, jnp.zeros((pad, m), drives.dtype)]).reshape(n_chunks, chunk, m)
    targets = jnp.concatenate([target, jnp.zeros((pad, m), target.dtype)]).reshape(n_chunks, chunk, m)
    k = jnp.asarray(k, jnp.float32)
    eta = jnp.asarray(eta, jnp.float32)
    zeros = jnp.zeros((n,), jnp.float32)

    def step(carry, xs):
        state, i_k, i_corr, w, r_buf, e_buf, diag, r1, e1, r2, e2 = carry
        j, c_t, xhat_t, ok = xs
        r_buf, e_buf, diag = r_buf.at[j].set(r2), e_buf.at[j].set(e2), diag + r2 * e2  # update of t−2
        o = state.spikes
        i_corr = alpha_s * i_corr + eta * ((r_buf @ o) @ e_buf - o * diag) / tau_s
        state, x_tilde, traces = eqx.tree_at(lambda c: c.w_rec, core, w).step(state, c_t, current=i_k + i_corr)
        err = xhat_t - x_tilde
        eps = err @ w_in
        return ((state, k * eps, i_corr, w, r_buf, e_buf, diag, traces["r"] * ok, eps, r1, e1),
                (err, traces["spikes"].sum()))

    def fold(carry, xs):
        state, i_k, i_corr, w, r1, e1, r2, e2 = carry
        bufs = (jnp.zeros((chunk, n), jnp.float32), jnp.zeros((chunk, n), jnp.float32), zeros)
        (state, i_k, i_corr, w, r_buf, e_buf, _, r1, e1, r2, e2), out = jax.lax.scan(
            step, (state, i_k, i_corr, w, *bufs, r1, e1, r2, e2), (jnp.arange(chunk),) + xs)
        w = jnp.where(mask, w + eta * (r_buf.T @ e_buf), 0.0)
        return (state, i_k, i_corr, w, r1, e1, r2, e2), out

    init = (core.init_state(), zeros, zeros, w_slow, zeros, zeros, zeros, zeros)
    (_, _, _, w, r1, e1, r2, e2), (err, spikes) = jax.lax.scan(fold, init, (drives, targets, valid))
    w = jnp.where(mask, w + eta * (jnp.outer(r2, e2) + jnp.outer(r1, e1)), 0.0)
    err, spikes = err.reshape(-1, m)[:steps], spikes.reshape(-1)[:steps]
    return w, _metrics(net, err, spikes, target)


def _batched_delta(net, w_slow, inputs, target, k, eta):
    metrics, r, eps = _feedback_run(net, w_slow, inputs, target, k)
    n = r.shape[1]
    delta = jnp.where(_offdiag(n), r.T @ eps, 0.0)
    scale = jnp.mean(jnp.abs(delta))
    delta = jnp.where(scale > 0, delta / jnp.where(scale > 0, scale, 1.0), 0.0)
    return w_slow + jnp.asarray(eta, jnp.float32) * delta, metrics


def _parallel_run(net: ADSNetwork, w_slow, inputs, target, k, eta, chunk: int = LOW_RANK_CHUNK):
    """``B`` samples of the online rule run concurrently (the ``"parallel"`` rule); returns
    ``(Ω^s, metrics)`` with per-sample metric arrays ``[B]``.

    All ``B`` samples run side by side from the initial state with one shared Ω^s, which is
    held fixed within each ``K = chunk``-step block and then updated by the sum of the online
    updates of every sample and step of the block::

        Ω^s ← Ω^s + η · mask ∘ Σ_b Σ_{t ∈ block} r_b[t] ε_b[t]ᵀ

    With ``B = 1`` it differs from the exact online rule only in that an update acts on the
    slow synapses at the next block boundary instead of two steps later. It is the same
    local rule, and its sum over a block is what ``B`` copies of the network learning at once
    would accumulate; it turns a sequence of ``B`` samples into one simulation of width ``B``,
    which vector hardware runs in about the time of one.
    """
    core = net.core
    w_in = core.w_in
    n = core.config.n_hidden
    mask = _offdiag(n)
    target = jnp.asarray(target, jnp.float32)
    drives = net.drive(jnp.asarray(inputs, jnp.float32))  # [B, T, M]
    b, steps, m = target.shape
    chunk = max(1, min(chunk, steps))
    n_chunks = -(-steps // chunk)
    pad = n_chunks * chunk - steps

    def blocks(x):  # [B, T, ...] -> [n_chunks, B, K, ...]
        x = jnp.concatenate([x, jnp.zeros((b, pad) + x.shape[2:], x.dtype)], axis=1)
        return jnp.moveaxis(x.reshape((b, n_chunks, chunk) + x.shape[2:]), 1, 0)

    valid = blocks(jnp.ones((b, steps), jnp.float32))  # padded steps do not learn
    k = jnp.asarray(k, jnp.float32)
    eta = jnp.asarray(eta, jnp.float32)

    def sample_block(w, state, i_k, c, xhat, ok):
        core_w = eqx.tree_at(lambda q: q.w_rec, core, w)

        def step(carry, xs):
            state, i_k = carry
            c_t, xhat_t, ok_t = xs
            state, x_tilde, traces = core_w.step(state, c_t, current=i_k)
            err = xhat_t - x_tilde
            eps = err @ w_in
            return (state, k * eps), (traces["r"] * ok_t, eps, err, traces["spikes"].sum())

        (state, i_k), out = jax.lax.scan(step, (state, i_k), (c, xhat, ok))
        return state, i_k, out

    run_block = jax.vmap(sample_block, in_axes=(None, 0, 0, 0, 0, 0))

    def fold(carry, xs):
        w, state, i_k = carry
        state, i_k, (r, eps, err, spikes) = run_block(w, state, i_k, *xs)
        w = jnp.where(mask, w + eta * jnp.einsum("bkn,bkm->nm", r, eps), 0.0)
        return (w, state, i_k), (err, spikes)

    state0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (b,) + x.shape), core.init_state())
    init = (w_slow, state0, jnp.zeros((b, n), jnp.float32))
    (w, _, _), (err, spikes) = jax.lax.scan(fold, init, (blocks(drives), blocks(target), valid))
    err = jnp.moveaxis(err, 0, 1).reshape(b, -1, m)[:, :steps]  # [B, T, M]
    spikes = jnp.moveaxis(spikes, 0, 1).reshape(b, -1)[:, :steps]
    return w, jax.vmap(lambda e, s, t: _metrics(net, e, s, t))(err, spikes, target)


def _one(net, w_slow, inputs, target, k, eta, rule):
    if rule == "online":
        return _online_run(net, w_slow, inputs, target, k, eta)
    return _batched_delta(net, w_slow, inputs, target, k, eta)


@eqx.filter_jit
def _learn_one(net, inputs, target, k, eta, rule):
    w, metrics = _one(net, net.core.w_rec, inputs, target, k, eta, rule)
    return net.with_slow_weights(w), metrics


def learn_sample(net: ADSNetwork, inputs, target_dyn, k, eta):
    """One online-learning pass over one sample (Büchel et al. 2021: learning rule and feedback); returns ``(new_net, metrics)``.

    ``inputs`` [T, C] task input, ``target_dyn`` [T, N̂] teacher dynamics x̂; ``k``, ``eta``
    scalars (traced: changing them does not recompile). Metrics (during learning, with
    feedback): ``mse`` (mean e²), ``e_rec`` (normalised reconstruction error), ``rate_hz``.
    """
    return _learn_one(net, inputs, target_dyn, k, eta, "online")


def learn_batch_update(net: ADSNetwork, inputs, target_dyn, k, eta):
    """The batched variant of Büchel et al. 2021: learning rule and feedback for one sample (normalised ``ΔΩ``, ``mean|ΔΩ| = η``)."""
    return _learn_one(net, inputs, target_dyn, k, eta, "batched")


@eqx.filter_jit
def _learn_block(net, inputs, targets, ks, etas, rule):
    if rule == "parallel":  # groups of P concurrent samples; k, η of each group's first sample
        p = net.config.parallel
        g = inputs.shape[0] // p

        def group(x):
            return x.reshape((g, p) + x.shape[1:])

        def body(w, xs):
            return _parallel_run(net, w, *xs)

        w, metrics = jax.lax.scan(body, net.core.w_rec, (group(inputs), group(targets), ks[::p], etas[::p]))
        return net.with_slow_weights(w), {name: v.reshape(-1) for name, v in metrics.items()}

    def body(w, xs):
        return _one(net, w, *xs, rule)

    w, metrics = jax.lax.scan(body, net.core.w_rec, (inputs, targets, ks, etas))
    return net.with_slow_weights(w), metrics


def learn_trials(net: ADSNetwork, inputs, targets, ks, etas, *, rule: str = "online"):
    """Learn on ``B`` samples in sequence inside one jitted ``lax.scan`` (carry = Ω^s).

    ``inputs`` [B, T, C], ``targets`` [B, T, N̂], ``ks``/``etas`` [B]. Equivalent to calling
    :func:`learn_sample` (or :func:`learn_batch_update`) ``B`` times; with ``rule="parallel"``
    the samples are taken in groups of ``net.config.parallel`` learned concurrently (``B`` must be
    a multiple of it). Returns ``(new_net, metrics)`` with per-sample metric arrays ``[B]``.
    """
    expect(rule in RULES, "rule", f"one of {RULES}", rule)
    p = net.config.parallel
    expect(rule != "parallel" or len(inputs) % p == 0, "inputs",
           f"a multiple of config.parallel = {p} samples for rule 'parallel'", len(inputs))
    return _learn_block(net, jnp.asarray(inputs, jnp.float32), jnp.asarray(targets, jnp.float32),
                        jnp.asarray(ks, jnp.float32), jnp.asarray(etas, jnp.float32), rule)


# ------------------------------------------------------------------------------- evaluation
def reconstruction_error(target, recon):
    """Normalised reconstruction error ``Σ_units Var_t(x̂ − x̃) / Σ_units Var_t(x̂)`` (ddof = 1).

    ``[T, N̂]`` -> scalar, ``[B, T, N̂]`` -> ``[B]`` (one value per trial).
    """
    target, recon = jnp.asarray(target), jnp.asarray(recon)
    return jnp.sum(_var(target - recon, -2), -1) / jnp.sum(_var(target, -2), -1)


@eqx.filter_jit
def _inference_chunk(net, inputs, xhat):
    res = simulate_batch(net, inputs, record=("x_tilde",), accumulate=("spikes",))
    x_tilde = res.traces["x_tilde"]
    num = jnp.sum(_var(xhat - x_tilde, 1), -1)
    den = jnp.sum(_var(xhat, 1), -1)
    rate = res.totals["spikes"].mean(-1) / (inputs.shape[1] * net.dt)
    dyn_mse = jnp.mean((xhat - x_tilde) ** 2, axis=(1, 2))
    return res.outputs, num, den, rate, dyn_mse


def evaluate_ads(net: ADSNetwork, task, batch, target_dyn, *, chunk: int = 50) -> dict:
    """Inference metrics (k = 0) of ``net`` on a task batch with teacher dynamics ``target_dyn``.

    ``e_rec``: mean over trials of the per-trial normalised reconstruction error (the Büchel et al. 2021: temporal XOR
    model-selection criterion); ``e_rec_pooled``: Σ over trials and units of Var_t(x̂ − x̃)
    divided by the same sum of Var_t(x̂); ``dyn_mse``: mean (x̂ − x̃)²; ``accuracy`` (task decision
    rule on y), ``loss`` (output MSE vs the task target), ``rate_hz`` (mean over neurons and trials).
    """
    inputs = np.asarray(batch.inputs, np.float32)
    xhat = np.asarray(target_dyn, np.float32)
    outputs, num, den, rate, dyn_mse = map_chunks(_inference_chunk, net, inputs, xhat, chunk=chunk)
    return {
        "e_rec": float(np.mean(num / den)),
        "e_rec_pooled": float(np.sum(num) / np.sum(den)),
        "dyn_mse": float(np.mean(dyn_mse)),
        "accuracy": float(task.accuracy(outputs, batch.labels)),
        "loss": float(np.mean((outputs - np.asarray(batch.targets)) ** 2)),
        "rate_hz": float(np.mean(rate)),
    }


# --------------------------------------------------------------------------------- training
def training_inputs(task, seed: int, start: int, stop: int) -> np.ndarray:
    """Inputs ``[stop − start, T, C]`` of training trials ``start..stop−1`` (trial ``i`` from
    ``seed_stream(seed, TRAIN, i)``), for the online teacher-based methods (ADS, FORCE)."""
    batches = [task.generate(1, seed_stream(seed, TRAIN_STREAM, i)) for i in range(start, stop)]
    return np.concatenate([b.inputs for b in batches])


def train_ads(teacher: RateNetwork, task, config: ADSConfig, seed: int, *, progress: bool = True,
              block: int = 50, train_inputs=None):
    """Train a Network ADS design on ``task`` to reproduce ``teacher``'s dynamics (Büchel et al. 2021: temporal XOR).

    ``config.epochs × config.trials_per_epoch`` fresh trials, batch size 1, k/η schedules over
    all iterations; after each epoch the inference network (k = 0) is validated on
    ``config.val_trials`` fresh trials and the model with the lowest mean per-trial E_rec is
    kept. Trials are learned ``block`` at a time inside one jitted scan (the last block of an
    epoch is padded with η = 0 trials, which leave Ω^s unchanged).

    Returns ``(best ADSNetwork, info)``; ``info`` has ``config``, ``seed``, ``best_epoch``,
    ``validation`` (best metrics), ``history`` (per-epoch validation and training means),
    ``seconds`` (total) and ``seconds_per_1000_trials`` (learning only, first block excluded
    because it includes compilation).

    ``train_inputs`` ``[n, T, C]``: a fixed training set instead of fresh trials; trial ``i``
    is ``train_inputs[i mod n]`` (epochs pass over the set in order, as in Büchel et al. 2021: hey Snips).
    """

    expect(isinstance(seed, int) and seed >= 0, "seed", "a non-negative integer", seed)
    expect(_is_pos_int(block), "block", "a positive integer", block)
    for name, obj in (("task", task), ("teacher", teacher)):
        expect(math.isclose(obj.dt, config.dt), f"{name}.dt", f"the ADS time step {config.dt}", obj.dt)
    if config.rule == "parallel":  # whole groups of concurrent samples per block
        block = max(1, block // config.parallel) * config.parallel
    if train_inputs is not None:
        train_inputs = np.asarray(train_inputs, np.float32)
        expect(train_inputs.ndim == 3 and len(train_inputs) > 0 and train_inputs.shape[2] == teacher.config.n_in,
               "train_inputs", f"an array [n, T, {teacher.config.n_in}] with n >= 1", train_inputs.shape)
    t_start = time.perf_counter()
    net = build_ads(teacher, config, jax.random.PRNGKey(seed_stream(seed, ADS_INIT_STREAM)))
    config = net.config
    n_iter = config.epochs * config.trials_per_epoch
    ks, etas = k_values(config, n_iter), eta_values(config, n_iter)
    val = task.generate(config.val_trials, seed_stream(seed, VAL_STREAM))
    val_xhat = np.asarray(teacher_dynamics(teacher, val.inputs))

    best, best_metrics, best_epoch, history = net, None, 0, []
    learn_time, learn_trials_timed, first = 0.0, 0, True
    bar = tqdm(total=n_iter, desc=f"{task.name}/ads", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_metrics = []
            lo = (epoch - 1) * config.trials_per_epoch
            for start in range(lo, lo + config.trials_per_epoch, block):
                stop = min(start + block, lo + config.trials_per_epoch)
                if train_inputs is None:
                    inputs = training_inputs(task, seed, start, stop)
                else:
                    inputs = train_inputs[np.arange(start, stop) % len(train_inputs)]
                k_b, eta_b, real = ks[start:stop], etas[start:stop], stop - start
                if real < block:
                    pad = block - real
                    inputs = np.concatenate([inputs, np.repeat(inputs[-1:], pad, 0)])
                    k_b = np.concatenate([k_b, np.zeros(pad)])
                    eta_b = np.concatenate([eta_b, np.zeros(pad)])
                targets = teacher_dynamics(teacher, inputs)
                tic = time.perf_counter()
                new_net, metrics = learn_trials(net, inputs, targets, k_b, eta_b, rule=config.rule)
                w = jax.block_until_ready(new_net.core.w_rec)
                if not first:
                    learn_time += time.perf_counter() - tic
                    learn_trials_timed += real
                first = False
                if not bool(jnp.all(jnp.isfinite(w))):
                    raise TrainingDiverged(f"{task.name}/ads: slow weights became non-finite in epoch {epoch} "
                                           f"(trials {start}..{stop - 1}); lower eta or k")
                net = new_net
                epoch_metrics.append({name: np.asarray(v)[:real] for name, v in metrics.items()})
                bar.update(real)
            train_means = {f"train_{name}": float(np.mean(np.concatenate([m[name] for m in epoch_metrics])))
                           for name in epoch_metrics[0]}
            val_metrics = evaluate_ads(net, task, val, val_xhat)
            history.append({"epoch": epoch, **val_metrics, **train_means})
            if best_metrics is None or val_metrics["e_rec"] < best_metrics["e_rec"]:
                best, best_metrics, best_epoch = net, val_metrics, epoch
            bar.set_postfix(E_rec=f"{val_metrics['e_rec']:.3f}", acc=f"{val_metrics['accuracy']:.3f}",
                            rate=f"{val_metrics['rate_hz']:.1f}Hz")
    finally:
        bar.close()
    info = {
        "task": task.name, "method": "ads", "seed": seed, "config": config.to_dict(), "best_epoch": best_epoch,
        "validation": best_metrics, "history": history, "seconds": time.perf_counter() - t_start,
        "seconds_per_1000_trials": (1000.0 * learn_time / learn_trials_timed) if learn_trials_timed else None,
    }
    return best, info
