"""Evaluate one network (one chip) on a task: outputs, accuracy, MSE and firing rate.

The fleet machinery (many chips) builds on :func:`run_outputs`; this module is the
single-network case used by training (validation) and ``spikefleet evaluate``.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from spikefleet.simulate import simulate_batch, trace_names

__all__ = ["run_outputs", "evaluate_model", "output_metrics"]


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
