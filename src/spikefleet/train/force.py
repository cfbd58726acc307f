r"""FORCE baseline (Büchel et al. 2021: FORCE-trained LIF network): how a LIF network is trained with recursive least squares, after
Nicola & Clopath (Nat. Commun. 2017), to reproduce the teacher's dynamics.

Büchel et al. 2021: FORCE-trained LIF network (design, learning), Büchel et al. 2021: teacher: the rate network (teacher, target x̂ = tanh(x)), Büchel et al. 2021: inference, decision rules, output gain
(decision rules), Büchel et al. 2021: parameter mismatch (what mismatch perturbs), Büchel et al. 2021: reference-implementation quirks item 10 (accuracy labels). Units: time
in seconds, potentials and currents in "mV" (Nicola & Clopath's numbers), readout/synaptic
traces in Hz. Orientation everywhere ``w[pre, post]`` (row = presynaptic), drives ``x @ w``.

The design (architecture, neuron model, weights, seeds) and its construction are
:mod:`spikefleet.models.force` (:class:`~spikefleet.models.force.FORCENetwork`,
:func:`~spikefleet.models.force.build_force`); this module is how it learns.

Learning (Büchel et al. 2021: FORCE-trained LIF network, RLS at every time step, :func:`rls_update`), from the initial state of
every sample, with (Φ, P) carried from sample to sample::

    z[t] = r[t] @ Φ        (Φ before this step's update; z[t] is also the value fed back)
    e[t] = z[t] − x̂[t]     x̂[t] = tanh(x_teacher[t])  (Büchel et al. 2021: equations, the same target as Network ADS)
    Φ    ← Φ − (P r[t]) e[t]ᵀ
    P    ← P − (P r[t])(P r[t])ᵀ / (1 + r[t]ᵀ P r[t])

Φ's update uses P r with the P *before* the step (as written in the paper and in Nicola &
Clopath's code), not the textbook RLS gain P r/(1 + rᵀPr); P stays exactly symmetric, and
its recursion is exact Sherman–Morrison: P[t] = (Σ_s r[s] r[s]ᵀ + I/α)⁻¹. With the old P the
a-posteriori error is e·(1 − rᵀPr), so a step is stable while rᵀPr < 2; the small α = 1e−5
keeps it so (r grows from 0 at the start of the first sample, while P shrinks). A whole
block of samples runs as one jitted ``lax.scan`` over samples and time (:func:`learn_trials`),
O(N²) per step for P. Training runs noise-free.

Training (:func:`train_force`): ``epochs × trials_per_epoch`` fresh trials (trial ``i``,
0-based over all epochs, is ``task.generate(1, seed_stream(seed, TRAIN, i))``), batch size 1.
After each epoch the network is validated on ``val_trials`` fresh trials
(``seed_stream(seed, VAL)``) with the task's decision rule on ``y`` (true labels); the model
with the highest validation accuracy is kept (tie → lower output MSE to the task target), and
training stops after ``patience = 2`` consecutive epochs without improvement.
"""

from __future__ import annotations

import math
import time
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from spikefleet.errors import expect
from spikefleet.errors import is_positive_int as _is_pos_int
from spikefleet.models.force import FORCE_INIT_STREAM, FORCEConfig, FORCENetwork, build_force
from spikefleet.models.rate import RateNetwork
from spikefleet.seeds import VAL as VAL_STREAM
from spikefleet.seeds import seed_stream
from spikefleet.simulation import map_chunks, simulate_batch
from spikefleet.train.ads import reconstruction_error, teacher_dynamics, training_inputs
from spikefleet.train.loop import TrainingDiverged

__all__ = [
    "rls_update", "rls_fit", "learn_sample", "learn_trials", "initial_p", "evaluate_force", "train_force",
    "teacher_dynamics",
]


# --------------------------------------------------------------------------------- learning
def initial_p(config: FORCEConfig) -> jax.Array:
    """``P[0] = α I`` [N, N]."""
    return config.alpha * jnp.eye(config.n, dtype=jnp.float32)


def rls_update(phi, p, r, err, gate=1.0):
    """One RLS step (Büchel et al. 2021: FORCE-trained LIF network): ``Φ ← Φ − (Pr)eᵀ``, ``P ← P − (Pr)(Pr)ᵀ/(1 + rᵀPr)``.

    ``phi`` [N, M], ``p`` [N, N] (symmetric), ``r`` [N], ``err`` [M] = ``z − target`` with
    ``z = r @ phi`` (before the update). ``gate`` (0 or 1) switches the update off (padding).
    """
    pr = p @ r
    phi = phi - gate * jnp.outer(pr, err)
    p = p - (gate / (1.0 + r @ pr)) * jnp.outer(pr, pr)
    return phi, p


@jax.jit
def rls_fit(phi, p, rs, targets):
    """RLS over a fixed sequence: for each ``t``, ``e = rs[t] @ Φ − targets[t]`` then
    :func:`rls_update`. Returns ``(Φ, P, e [T, M])`` (``e`` is the a-priori error)."""
    def body(carry, xs):
        phi, p = carry
        r, target = xs
        err = r @ phi - target
        return rls_update(phi, p, r, err), err

    (phi, p), errs = jax.lax.scan(body, (phi, p), (rs, targets))
    return phi, p, errs


def _rls_run(net: FORCENetwork, phi, p, inputs, target, gate):
    """One sample with feedback and per-step RLS; returns ``(Φ, P, metrics)``."""
    core = net.core
    target = jnp.asarray(target, jnp.float32)

    def body(carry, xs):
        state, z_prev, phi, p = carry
        c_t, xhat_t = xs
        run = eqx.tree_at(lambda c: c.w_out, core, phi)
        state, z, traces = run.step(state, c_t, current=z_prev @ net.e)
        err = z - xhat_t
        phi, p = rls_update(phi, p, traces["r"], err, gate)
        return (state, z, phi, p), (z, traces["spikes"].sum())

    init = (core.init_state(), jnp.zeros((net.config.n_hat,), jnp.float32), phi, p)
    (_, _, phi, p), (z, spikes) = jax.lax.scan(body, init, (net.drive(jnp.asarray(inputs, jnp.float32)), target))
    metrics = {
        "mse": jnp.mean((z - target) ** 2),
        "e_rec": reconstruction_error(target, z),
        "rate_hz": jnp.sum(spikes) / (net.config.n * target.shape[0] * net.dt),
    }
    return phi, p, metrics


@eqx.filter_jit
def _learn_block(net, p, inputs, targets, gates):
    def body(carry, xs):
        phi, p = carry
        phi, p, metrics = _rls_run(net, phi, p, *xs)
        return (phi, p), metrics

    (phi, p), metrics = jax.lax.scan(body, (net.core.w_out, p), (inputs, targets, gates))
    return net.with_decoder(phi), p, metrics


def learn_trials(net: FORCENetwork, p, inputs, targets, gates=None):
    """RLS learning on ``B`` samples in sequence, one jitted ``lax.scan`` (carry = (Φ, P)).

    ``inputs`` [B, T, C], ``targets`` [B, T, N̂] (teacher dynamics x̂), ``p`` [N, N] the RLS
    matrix (start with :func:`initial_p`), ``gates`` [B] (1 = learn, 0 = run without updating;
    default all 1). Every sample starts from ``net.init_state()``. Returns
    ``(new_net, new_p, metrics)`` with per-sample ``mse`` (mean (z − x̂)² during learning),
    ``e_rec`` and ``rate_hz`` arrays ``[B]``.
    """
    inputs = jnp.asarray(inputs, jnp.float32)
    gates = jnp.ones((inputs.shape[0],), jnp.float32) if gates is None else jnp.asarray(gates, jnp.float32)
    return _learn_block(net, jnp.asarray(p, jnp.float32), inputs, jnp.asarray(targets, jnp.float32), gates)


def learn_sample(net: FORCENetwork, p, inputs, target_dyn):
    """One RLS pass over one sample ``[T, C]`` with target ``[T, N̂]``; returns ``(net, p, metrics)``."""
    net, p, metrics = learn_trials(net, p, jnp.asarray(inputs)[None], jnp.asarray(target_dyn)[None])
    return net, p, {k: v[0] for k, v in metrics.items()}


# ------------------------------------------------------------------------------- evaluation
@eqx.filter_jit
def _inference_chunk(net, inputs, xhat):
    res = simulate_batch(net, inputs, record=("z",), accumulate=("spikes",))
    z = res.traces["z"]
    rate = res.totals["spikes"].mean(-1) / (inputs.shape[1] * net.dt)
    return res.outputs, reconstruction_error(xhat, z), jnp.mean((xhat - z) ** 2, axis=(1, 2)), rate


def evaluate_force(net: FORCENetwork, task, batch, target_dyn=None, *, chunk: int = 50) -> dict:
    """Inference metrics of ``net`` on a task batch.

    ``accuracy`` (task decision rule on ``y``, true labels), ``loss`` (output MSE vs the task
    target), ``rate_hz`` (mean over neurons and trials); with the teacher dynamics
    ``target_dyn`` [B, T, N̂] also ``dyn_mse`` (mean (x̂ − z)²) and ``e_rec`` (mean per-trial
    normalised reconstruction error, see :func:`spikefleet.train.ads.reconstruction_error`).
    """
    inputs = np.asarray(batch.inputs, np.float32)
    b = inputs.shape[0]
    xhat = np.zeros((b, inputs.shape[1], net.config.n_hat), np.float32) if target_dyn is None \
        else np.asarray(target_dyn, np.float32)
    outputs, e_rec, dyn_mse, rate = map_chunks(_inference_chunk, net, inputs, xhat, chunk=chunk)
    out = {
        "accuracy": float(task.accuracy(outputs, batch.labels)),
        "loss": float(np.mean((outputs - np.asarray(batch.targets)) ** 2)),
        "rate_hz": float(np.mean(rate)),
    }
    if target_dyn is not None:
        out.update(dyn_mse=float(np.mean(dyn_mse)), e_rec=float(np.mean(e_rec)))
    return out


def _better(new: dict, best: Optional[dict]) -> bool:
    """Model selection: higher validation accuracy, ties broken by lower output MSE."""
    if best is None:
        return True
    if new["accuracy"] != best["accuracy"]:
        return new["accuracy"] > best["accuracy"]
    return new["loss"] < best["loss"]


# --------------------------------------------------------------------------------- training
def train_force(teacher: RateNetwork, task, config: FORCEConfig, seed: int, *, progress: bool = True,
                block: int = 25):
    """Train a FORCE design on ``task`` to reproduce ``teacher``'s dynamics (Büchel et al. 2021: FORCE-trained LIF network).

    Up to ``config.epochs × config.trials_per_epoch`` fresh trials, batch size 1, RLS at every
    step; trials are learned ``block`` at a time inside one jitted scan (a short last block
    is padded with gate-0 trials, which change nothing). After each epoch: validation on
    ``config.val_trials`` fresh trials; keep the best by accuracy (tie → lower output MSE);
    stop after ``config.patience`` consecutive epochs without improvement.

    Returns ``(best FORCENetwork, info)``; ``info`` has ``task``, ``method`` ("force"),
    ``seed``, ``config``, ``best_epoch``, ``epochs_run``, ``stopped_early``, ``validation``
    (best metrics), ``history`` (per-epoch validation and training means), ``seconds`` and
    ``seconds_per_1000_trials`` (learning only, first block excluded: it includes compilation).
    """

    expect(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "a non-negative integer",
           seed)
    expect(_is_pos_int(block), "block", "a positive integer", block)
    expect(isinstance(config, FORCEConfig), "config", "a FORCEConfig", type(config).__name__)
    for name, obj in (("task", task), ("teacher", teacher)):
        expect(math.isclose(obj.dt, config.dt), f"{name}.dt", f"the FORCE time step {config.dt}", obj.dt)
    t_start = time.perf_counter()
    net = build_force(teacher, config, jax.random.PRNGKey(seed_stream(seed, FORCE_INIT_STREAM)))
    config = net.config
    p = initial_p(config)
    val = task.generate(config.val_trials, seed_stream(seed, VAL_STREAM))
    val_xhat = np.asarray(teacher_dynamics(teacher, val.inputs))

    best, best_metrics, best_epoch, history, stale, stopped = net, None, 0, [], 0, False
    learn_time, timed_trials, first = 0.0, 0, True
    n_iter = config.epochs * config.trials_per_epoch
    bar = tqdm(total=n_iter, desc=f"{task.name}/force", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_metrics = []
            lo = (epoch - 1) * config.trials_per_epoch
            for start in range(lo, lo + config.trials_per_epoch, block):
                stop = min(start + block, lo + config.trials_per_epoch)
                real = stop - start
                inputs = training_inputs(task, seed, start, stop)
                gates = np.ones(block, np.float32)
                if real < block:
                    inputs = np.concatenate([inputs, np.repeat(inputs[-1:], block - real, 0)])
                    gates[real:] = 0.0
                targets = teacher_dynamics(teacher, inputs)
                tic = time.perf_counter()
                new_net, new_p, metrics = learn_trials(net, p, inputs, targets, gates)
                phi = jax.block_until_ready(new_net.decoder)
                if not first:
                    learn_time += time.perf_counter() - tic
                    timed_trials += real
                first = False
                if not (bool(jnp.all(jnp.isfinite(phi))) and bool(jnp.all(jnp.isfinite(new_p)))):
                    raise TrainingDiverged(f"{task.name}/force: decoder or P became non-finite in epoch {epoch} "
                                           f"(trials {start}..{stop - 1}); try a larger alpha or a smaller q")
                net, p = new_net, new_p
                epoch_metrics.append({name: np.asarray(v)[:real] for name, v in metrics.items()})
                bar.update(real)
            train_means = {f"train_{name}": float(np.mean(np.concatenate([m[name] for m in epoch_metrics])))
                           for name in epoch_metrics[0]}
            val_metrics = evaluate_force(net, task, val, val_xhat)
            history.append({"epoch": epoch, **val_metrics, **train_means})
            if _better(val_metrics, best_metrics):
                best, best_metrics, best_epoch, stale = net, val_metrics, epoch, 0
            else:
                stale += 1
            bar.set_postfix(acc=f"{val_metrics['accuracy']:.3f}", mse=f"{val_metrics['loss']:.4f}",
                            rate=f"{val_metrics['rate_hz']:.1f}Hz")
            if stale >= config.patience and epoch < config.epochs:
                stopped = True
                break
    finally:
        bar.close()
    info = {
        "task": task.name, "method": "force", "seed": seed, "config": config.to_dict(), "best_epoch": best_epoch,
        "epochs_run": len(history), "stopped_early": stopped, "validation": best_metrics, "history": history,
        "seconds": time.perf_counter() - t_start,
        "seconds_per_1000_trials": (1000.0 * learn_time / timed_trials) if timed_trials else None,
    }
    return best, info
