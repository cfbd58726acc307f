r"""Spike propagation ``spikes @ w``: dense, or event-driven when few neurons spiked.

A recurrent network delivers the previous step's spike counts ``s [N]`` through ``w [N, M]``
(``w[pre, post]``). Dense, that is a matrix-vector product per sample (a ``[B, N] × [N, M]``
matmul for a batch). With sparse activity only the rows of the neurons that spiked matter::

    out[b] = Σ_k  s[b, i_k] · w[i_k, :]      over the K largest |s[b, :]| (all non-zero ones)

:func:`propagate` computes exactly ``s @ w`` (up to float32 summation order). It takes the
event-driven path when the presynaptic population is large enough for it to pay
(``N >= EVENT_MIN_PRE``, and the policy allows it) *and*, at run time, every sample of the batch
has at most ``K = event_capacity(N)`` non-zero entries this step; otherwise (a burst) it falls
back to the dense product for that step (one ``lax.cond`` per step for the whole batch, not a
per-sample select, because :func:`propagate` sees the whole batch under ``vmap`` through
``jax.custom_batching.custom_vmap``; nested ``vmap``s — trials inside chips, each chip with
its own weights — are folded into one grouped product).

Gradients are those of the dense product (``d(s @ w) = ds @ w + s @ dw``, via ``custom_jvp``),
so surrogate-gradient training is unchanged; only the forward value takes the event path.

Policy: :func:`propagation` (a context manager) sets ``"auto"`` (default), ``"dense"`` or
``"events"`` (event path whenever the shapes allow, no size threshold). The policy is read when
a function is *traced*: a jitted function keeps the policy it was compiled under.
"""

from __future__ import annotations

import contextlib
import math

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from spikefleet.errors import expect

__all__ = ["propagate", "propagation", "event_capacity", "EVENT_MIN_PRE", "POLICIES"]

#: propagation policies accepted by :func:`propagation` (module docstring)
POLICIES = ("auto", "dense", "events")

#: ``auto`` uses the event path from this many presynaptic neurons on (below it the dense
#: product of a CPU is as fast as selecting the active rows).
EVENT_MIN_PRE = 512

_policy = ["auto"]


@contextlib.contextmanager
def propagation(policy: str):
    """Set the propagation policy (``"auto"``, ``"dense"``, ``"events"``) for code traced inside."""
    expect(policy in POLICIES, "policy", f"one of {POLICIES}", policy)
    previous = _policy[0]
    _policy[0] = policy
    try:
        yield
    finally:
        _policy[0] = previous


def event_capacity(n_pre: int) -> int:
    """Active presynaptic neurons per sample and step the event path handles (``N/16``, at least 16)."""
    return min(n_pre, max(16, math.ceil(n_pre / 16)))


def _use_events(n_pre: int) -> bool:
    policy = _policy[0]
    if policy == "dense":
        return False
    return policy == "events" or n_pre >= EVENT_MIN_PRE


def _grouped(s, w):
    """``s [*G, *S, N]``, ``w [*G, N, M]`` -> ``[*G, *S, M]`` (the whole batch, no vmap tracer of ours)."""
    n, m = w.shape[-2:]
    groups = w.shape[:-2]
    g = math.prod(groups)
    samples = s.shape[len(groups):-1]
    s3 = s.reshape(g, math.prod(samples), n)
    w3 = w.reshape(g, n, m)

    def dense(s3, w3):
        return jnp.einsum("gbn,gnm->gbm", s3, w3)

    if not _use_events(n) or s3.shape[1] == 0:
        out = dense(s3, w3)
    else:
        k = event_capacity(n)

        def events(s3, w3):
            _, idx = jax.lax.top_k(jnp.abs(s3), k)  # [g, b, k]: all non-zero entries (count <= k)
            vals = jnp.take_along_axis(s3, idx, axis=-1)
            rows = jax.vmap(lambda wg, ig: wg[ig])(w3, idx)  # [g, b, k, m]
            return jnp.einsum("gbk,gbkm->gbm", vals, rows)

        fits = jnp.max(jnp.sum(s3 != 0, axis=-1)) <= k
        out = jax.lax.cond(fits, events, dense, s3, w3)
    return out.reshape(*groups, *samples, m)


_grouped_vmap = custom_vmap(_grouped)


@_grouped_vmap.def_vmap
def _grouped_rule(axis_size, in_batched, s, w):
    s_batched, w_batched = in_batched
    if w_batched:  # every batch element has its own weights: the batch axis becomes a group axis
        if not s_batched:
            s = jnp.broadcast_to(s[None], (axis_size, *s.shape))
        return _grouped_vmap(s, w), True
    groups = w.ndim - 2  # shared weights: the batch axis is one more sample axis, after the groups
    out = _grouped_vmap(jnp.moveaxis(s, 0, groups), w)
    return jnp.moveaxis(out, groups, 0), True


@jax.custom_jvp
def _propagate(s, w):
    return _grouped_vmap(s, w)


@_propagate.defjvp
def _propagate_jvp(primals, tangents):
    s, w = primals
    ds, dw = tangents
    return _propagate(s, w), jnp.matmul(ds, w) + jnp.matmul(s, dw)


def propagate(spikes, w):
    """``spikes [..., N] @ w [N, M]``, event-driven where it pays (see the module docstring)."""
    w = jnp.asarray(w)
    spikes = jnp.asarray(spikes, w.dtype)
    expect(w.ndim == 2 and spikes.shape[-1:] == w.shape[:1], "propagate", f"spikes [..., {w.shape[0]}] and "
           f"w [{w.shape[0]}, M]", (spikes.shape, w.shape))
    return _propagate(spikes, w)
