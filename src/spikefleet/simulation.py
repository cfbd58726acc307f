"""Run a network over time with ``lax.scan``; batch with ``vmap``; evaluate one network (one chip) on a task.

A network is any module with ``init_state()`` and
``step(state, x_t, *, key=None, current=None) -> (state, y_t, traces)``
(:class:`~spikefleet.models.spiking.SpikingNetwork`, :class:`~spikefleet.models.rate.RateNetwork`).

Performance (same results either way): a network may provide ``project_inputs(inputs)``; when it
is being differentiated its input products then run as one matmul before the time loop and ``step``
gets the projected rows (``projected=True``). Recurrent spikes go through
:func:`~spikefleet.models.propagation.propagate` (event-driven for large, sparsely active layers).

Time is the leading axis of a sample: ``inputs`` is ``[T, C]``. Randomness (runtime noise)
comes from ``key``; step ``t`` uses ``fold_in(key, t)``, so results do not depend on how the
time axis is chunked: ``t`` counts from the step index stored in the initial state when the
network provides one (``net.step_index(state)``; spiking networks do), so a run continued from
``final_state`` draws the noise of steps ``t0, t0 + 1, ...``. Without a key the run is
deterministic and noise-free models need none.

One network on a task (:func:`run_outputs`, :func:`evaluate_model`: outputs, accuracy, MSE and firing
rate) is the single-chip case used by training (validation) and ``spikefleet evaluate``; the fleet
machinery (many chips, :mod:`spikefleet.fleet.evaluate`) builds on the same simulation.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect

__all__ = ["SimResult", "simulate", "simulate_batch", "trace_names", "run_outputs", "evaluate_model",
           "output_metrics", "map_chunks"]


class SimResult(NamedTuple):
    """What :func:`simulate` returns: outputs, recorded traces, the final state and accumulated totals."""

    outputs: jax.Array  # [T, O] (or [B, T, O])
    traces: dict  # name -> [T, ...] (or [B, T, ...]) for every recorded name
    final_state: Any
    totals: dict = {}  # name -> trace summed over time (for every accumulated name)


def _check_inputs(net, inputs, batched: bool):
    want = 3 if batched else 2
    shape = getattr(inputs, "shape", None)
    expect(shape is not None and len(shape) == want, "inputs",
           f"an array of shape {'[B, T, C]' if batched else '[T, C]'}", shape)
    expect(shape[-1] == net.config.n_in, "inputs", f"last axis of size n_in={net.config.n_in}", shape)


def simulate(net, inputs, *, key=None, record: Sequence[str] = (), accumulate: Sequence[str] = (),
             initial_state=None, current=None) -> SimResult:
    """Simulate one sample.

    Args:
        net: the network.
        inputs: ``[T, C]`` input sequence.
        key: PRNG key for runtime noise (required if the network has noise).
        record: names of per-step traces to return (e.g. ``("spikes", "v")``); unknown names
            raise ``ValueError`` listing the available ones.
        accumulate: names of traces to sum over time instead (returned in ``totals``, no ``[T, ...]``
            array is kept).
        initial_state: start state (default ``net.init_state()``).
        current: optional ``[T, N]`` extra current injected into the neurons.
    """
    _check_inputs(net, inputs, batched=False)
    record, accumulate = tuple(record), tuple(accumulate)
    state = net.init_state() if initial_state is None else initial_state
    inputs = jnp.asarray(inputs, jnp.float32)
    t0 = net.step_index(state) if hasattr(net, "step_index") else 0
    steps = t0 + jnp.arange(inputs.shape[0], dtype=jnp.int32)
    extra = None if current is None else jnp.asarray(current, jnp.float32)

    # Under differentiation the input products go into one matmul before the loop, so that the
    # gradient of W_in is one matmul after it (accumulated step by step it is a slow transposed
    # product per step); a forward pass keeps them per step (cheaper than materialising [T, N]).
    project = getattr(net, "project_inputs", None) if _differentiated(net) else None
    xs_in, step_kw = (inputs, {}) if project is None else (project(inputs), {"projected": True})

    def body(carry, xs):
        net_state, totals = carry
        t, x_t, j_t = xs
        step_key = None if key is None else jax.random.fold_in(key, t)
        net_state, y, traces = net.step(net_state, x_t, key=step_key, current=j_t, **step_kw)
        for arg, names in (("record", record), ("accumulate", accumulate)):
            missing = [name for name in names if name not in traces]
            if missing:
                raise ValueError(f"{arg}: unknown trace(s) {missing}; available: {sorted(traces)}")
        totals = {name: totals[name] + traces[name] for name in accumulate}
        return (net_state, totals), (y, {name: traces[name] for name in record})

    totals0 = {}
    if accumulate:
        first_current = None if extra is None else extra[0]
        shapes = jax.eval_shape(lambda: net.step(state, inputs[0], key=key, current=first_current)[2])
        for name in accumulate:
            if name not in shapes:
                raise ValueError(f"accumulate: unknown trace(s) {[name]}; available: {sorted(shapes)}")
            totals0[name] = jnp.zeros(shapes[name].shape, shapes[name].dtype)
    (final, totals), (outputs, traces) = jax.lax.scan(body, (state, totals0), (steps, xs_in, extra))
    return SimResult(outputs=outputs, traces=traces, final_state=final, totals=totals)


def _differentiated(tree) -> bool:
    """Whether any array of ``tree`` is being differentiated (a JVP/linearize tracer, possibly batched).

    A performance heuristic only: both answers give the same results.
    """
    for leaf in jax.tree_util.tree_leaves(tree):
        for _ in range(32):
            if not isinstance(leaf, jax.core.Tracer):
                break
            if type(leaf).__name__ in ("JVPTracer", "LinearizeTracer"):
                return True
            leaf = getattr(leaf, "val", None)  # a BatchTracer wraps its value
    return False


def simulate_batch(net, inputs, *, key=None, record: Sequence[str] = (), accumulate: Sequence[str] = (),
                   current=None) -> SimResult:
    """Simulate a batch ``[B, T, C]`` of independent samples (``vmap`` of :func:`simulate`).

    Each sample gets its own noise key ``split(key, B)[b]``.
    """
    _check_inputs(net, inputs, batched=True)
    batch = inputs.shape[0]
    keys = None if key is None else jax.random.split(key, batch)

    def one(x, k, j):
        return simulate(net, x, key=k, record=record, accumulate=accumulate, current=j)

    in_axes = (0, None if keys is None else 0, None if current is None else 0)
    return jax.vmap(one, in_axes=in_axes)(jnp.asarray(inputs, jnp.float32), keys, current)


def trace_names(net) -> tuple:
    """Names of the per-step traces ``net.step`` provides (shape-only evaluation, no compute)."""
    state = net.init_state()
    x = jnp.zeros((net.config.n_in,), jnp.float32)
    key = jax.random.PRNGKey(0)  # shapes only: a noisy network needs some key to trace its step
    return tuple(sorted(jax.eval_shape(lambda: net.step(state, x, key=key)[2])))


# --------------------------------------------------------------------- one network on a task
@eqx.filter_jit
def _outputs_and_rates(net, inputs):
    if "spikes" in trace_names(net):
        result = simulate_batch(net, inputs, accumulate=("spikes",))
        steps = inputs.shape[1]
        rate = result.totals["spikes"].mean(axis=-1) / (steps * net.dt)  # [B] Hz per neuron
        return result.outputs, rate
    result = simulate_batch(net, inputs)
    return result.outputs, jnp.zeros(inputs.shape[0])


def run_outputs(net, inputs, *, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``[B, T, O]`` and mean firing rate per sample ``[B]`` (Hz; 0 for rate models).

    Samples are processed in chunks of ``chunk`` (the last chunk is padded so only one shape
    is compiled) to bound memory.
    """
    inputs = np.asarray(inputs, np.float32)
    b = inputs.shape[0]
    chunk = max(1, min(chunk, b))
    outs, rates = [], []
    for start in range(0, b, chunk):
        part = inputs[start:start + chunk]
        pad = chunk - part.shape[0]
        if pad:
            part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), np.float32)])
        y, r = _outputs_and_rates(net, jnp.asarray(part))
        outs.append(np.asarray(y)[: chunk - pad])
        rates.append(np.asarray(r)[: chunk - pad])
    return np.concatenate(outs), np.concatenate(rates)


def evaluate_model(net, task, batch, *, chunk: int = 64) -> dict:
    """Metrics of ``net`` on a task batch: ``accuracy``, ``loss`` (output MSE vs target), ``rate_hz``."""
    outputs, rates = run_outputs(net, batch.inputs, chunk=chunk)
    return output_metrics(task, batch, outputs, rates)


def output_metrics(task, batch, outputs, rates) -> dict:
    """``accuracy``, ``loss`` and ``rate_hz`` of a network's outputs ``[B, T, O]`` and rates ``[B]`` on ``batch``."""
    return {
        "accuracy": float(task.accuracy(outputs, batch.labels)),
        "loss": float(np.mean((outputs - batch.targets) ** 2)),
        "rate_hz": float(np.mean(rates)),
    }


def map_chunks(fn, net, inputs, *others, chunk: int) -> tuple:
    """``fn(net, x, *o)`` over chunks of ``chunk`` samples of ``inputs`` and ``others`` (NumPy arrays with the
    same leading axis; the last chunk is padded by repeating its last sample, so that only one shape is
    compiled). Returns each output of ``fn`` concatenated over all samples, padding dropped."""
    b = inputs.shape[0]
    chunk = max(1, min(chunk, b))
    parts = []
    for start in range(0, b, chunk):
        xs = [a[start:start + chunk] for a in (inputs, *others)]
        pad = chunk - xs[0].shape[0]
        if pad:
            xs = [np.concatenate([a, np.repeat(a[-1:], pad, 0)]) for a in xs]
        parts.append([np.asarray(v)[: chunk - pad] for v in fn(net, *(jnp.asarray(a) for a in xs))])
    return tuple(np.concatenate(p) for p in zip(*parts))
