r"""Training kernel of the unsupervised quantisation autoencoder (Çakal et al. 2024: algorithm), all cores at once.

Per core ``k`` the input is ``v̂_k ∈ ℝ^K`` (normalised synapse magnitudes, ``v̂ = α·|w|``). The
model has an encoder ``W_en ∈ ℝ^{K×4}`` and a decoder ``W_dec ∈ ℝ^{4×K}``:

* code (the 4 base weights, normalised units): ``c = v̂ · W_en`` (linear, no bias);
* bit mask: ``B = H(σ(W_dec) − ½) ∈ {0,1}^{4×K}``, computed as ``max(⌊σ(W_dec) + ½⌋, 0)``,
  with the surrogate derivative ``∂B/∂p := p`` at ``p = σ(W_dec)``;
* reconstruction ``r = c · B``; loss
  ``L = mean((r − v̂)²) + 1000·(Σ_b exp(−min(c_b, 0)) − 4) + 1000·mean((B − bits(int(B)))²)``.

Adam (``step_size``, optax defaults otherwise) runs in jitted ``lax.scan`` chunks of
``chunk_epochs`` epochs, the cores batched with ``vmap``; a core that has stopped is frozen (its
parameters and optimiser state no longer change) while the others go on, so each core follows
exactly the trajectory it would follow alone. Early stop per core: after a chunk, the chunk-mean
loss either improves on the best chunk mean by more than ``eps`` (best updated, counter reset) or
the counter is incremented; the core stops when the counter exceeds ``patience`` or at
``max_epochs``. With ``fixed_epochs`` every core runs exactly that many epochs.

Cores are padded to a common length ``K_max``; padded entries have ``v̂ = 0`` and are excluded
from the loss (``valid``), so their parameters receive zero gradient and zero Adam updates.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["AEFit", "train_autoencoder"]

_POW2 = jnp.asarray([1.0, 2.0, 4.0, 8.0])


@jax.custom_vjp
def hard_bits(p):
    """``max(⌊p + ½⌋, 0)`` with the reference's surrogate gradient ``∂/∂p := p``."""
    return jnp.maximum(jnp.floor(p + 0.5), 0.0)


def _hard_bits_fwd(p):
    return hard_bits(p), p


def _hard_bits_bwd(p, g):
    return (g * p,)


hard_bits.defvjp(_hard_bits_fwd, _hard_bits_bwd)


def _loss(params, v, valid):
    """Çakal et al. 2024: algorithm loss of one core; ``v``/``valid`` are ``[K_max]`` (padding excluded)."""
    w_en, w_dec = params
    n = jnp.maximum(valid.sum(), 1.0)
    c = v @ w_en                                   # [4]
    bits = hard_bits(jax.nn.sigmoid(w_dec))        # [4, K]
    r = c @ bits                                   # [K]
    mse = jnp.sum(valid * (r - v) ** 2) / n
    p_neg = jnp.sum(jnp.exp(-jnp.minimum(c, 0.0))) - 4.0
    ints = jnp.round(_POW2 @ bits).astype(jnp.int32)                      # bit2int
    back = ((ints[None, :] >> jnp.arange(4)[:, None]) & 1).astype(bits.dtype)  # int2bit
    p_bits = jnp.sum(valid * (bits - jax.lax.stop_gradient(back)) ** 2) / (4.0 * n)
    return mse + 1000.0 * p_neg + 1000.0 * p_bits


@partial(jax.jit, static_argnames=("chunk", "step_size"))
def _run_chunk(params, opt_state, v, valid, start, limit, active, *, chunk, step_size):
    """``chunk`` Adam epochs of every core (vmapped); returns losses and which steps ran."""
    opt = optax.adam(step_size)

    def one_core(params, opt_state, v, valid, limit, active):
        def body(carry, i):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(_loss)(params, v, valid)
            updates, new_state = opt.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            on = active & (start + i < limit)
            keep = lambda new, old: jnp.where(on, new, old)  # noqa: E731
            params = jax.tree_util.tree_map(keep, new_params, params)
            opt_state = jax.tree_util.tree_map(keep, new_state, opt_state)
            return (params, opt_state), (loss, on)

        (params, opt_state), (losses, ran) = jax.lax.scan(body, (params, opt_state), jnp.arange(chunk))
        return params, opt_state, losses, ran

    return jax.vmap(one_core)(params, opt_state, v, valid, limit, active)


@jax.jit
def _readout(params, v, valid):
    """Codes ``c`` [n, 4], hard bits [n, 4, K] and the loss of every core at ``params``."""
    w_en, w_dec = params
    codes = jnp.einsum("nk,nkb->nb", v, w_en)
    bits = hard_bits(jax.nn.sigmoid(w_dec))
    return codes, bits, jax.vmap(_loss)(params, v, valid)


class AEFit(NamedTuple):
    """Result of :func:`train_autoencoder` (NumPy arrays, one row per core)."""

    codes: np.ndarray        # [n, 4] base weights in normalised units
    bits: np.ndarray         # [n, 4, K_max] in {0, 1}
    loss: np.ndarray         # [n] loss at the returned parameters (Çakal et al. 2024: algorithm incl. penalties)
    history: tuple           # per core: chunk-mean losses
    epochs: np.ndarray       # [n] epochs run


def _init_params(key, counts, k_max):
    """Kaiming-uniform ``U(±√(6/rows))`` per core: ``W_en`` rows = K, ``W_dec`` rows = 4.

    Each core draws from ``fold_in(key, core)`` with its own size, then is zero-padded, so its
    initial parameters do not depend on the other cores.
    """
    w_en = np.zeros((len(counts), k_max, 4), np.float32)
    w_dec = np.zeros((len(counts), 4, k_max), np.float32)
    for k, n in enumerate(counts):
        if n == 0:
            continue
        k_en, k_dec = jax.random.split(jax.random.fold_in(key, k))
        w_en[k, :n] = jax.random.uniform(k_en, (n, 4), minval=-1.0, maxval=1.0) * np.sqrt(6.0 / n)
        w_dec[k, :, :n] = jax.random.uniform(k_dec, (4, n), minval=-1.0, maxval=1.0) * np.sqrt(6.0 / 4)
    return jnp.asarray(w_en), jnp.asarray(w_dec)


def train_autoencoder(v, valid, key, *, step_size=1e-4, chunk_epochs=1000, max_epochs=10_000_000,
                      fixed_epochs=None, eps=1e-6, patience=5) -> AEFit:
    """Train one autoencoder per core on ``v`` [n_cores, K_max] (normalised magnitudes).

    ``valid`` [n_cores, K_max] marks real synapses; cores without any are skipped (zero output).
    """
    v = jnp.asarray(v, jnp.float32)
    valid_f = jnp.asarray(valid, jnp.float32)
    counts = np.asarray(valid).sum(axis=1).astype(int)
    n_cores, k_max = v.shape
    params = _init_params(key, counts, k_max)
    opt_state = jax.vmap(optax.adam(step_size).init)(params)
    limit_total = int(fixed_epochs) if fixed_epochs is not None else int(max_epochs)
    limit = jnp.full((n_cores,), limit_total, jnp.int32)
    active = counts > 0
    best = np.full(n_cores, np.inf)
    stale = np.zeros(n_cores, int)
    epochs = np.zeros(n_cores, int)
    history = [[] for _ in range(n_cores)]
    start = 0
    while active.any():
        params, opt_state, losses, ran = _run_chunk(
            params, opt_state, v, valid_f, jnp.int32(start), limit, jnp.asarray(active),
            chunk=int(chunk_epochs), step_size=float(step_size))
        losses, ran = np.asarray(losses), np.asarray(ran)
        start += int(chunk_epochs)
        for k in np.flatnonzero(active):
            n_ran = int(ran[k].sum())
            epochs[k] += n_ran
            if n_ran:
                mean = float(losses[k][ran[k]].mean())
                history[k].append(mean)
                if fixed_epochs is None:
                    if best[k] - mean > eps:
                        best[k], stale[k] = mean, 0
                    else:
                        stale[k] += 1
            if epochs[k] >= limit_total or (fixed_epochs is None and stale[k] > patience):
                active[k] = False
    codes, bits, loss = _readout(params, v, valid_f)
    return AEFit(np.asarray(codes, np.float64), np.asarray(bits).astype(np.int64), np.asarray(loss, np.float64),
                 tuple(np.asarray(h) for h in history), epochs)
