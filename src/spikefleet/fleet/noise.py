r"""Runtime noise (fresh every step, unlike frozen mismatch).

* Membrane noise of level ``s``: every step each neuron's potential receives
  ``s · (V_th − V_reset) · ξ``, ξ ~ N(0, 1) — equivalently an input current of std
  ``σ_I = s (V_th − V_reset) τ_mem / dt`` under forward Euler (Büchel et al. 2021: membrane). Drawn from
  ``fold_in(run_key, t)`` inside :func:`spikefleet.simulation.simulate`.
* Input noise of std ``σ``: ``c[t] + σ ξ[t]`` added to every input channel and step, drawn
  from its own key.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, expect
from spikefleet.models.base import core_of, map_core
from spikefleet.models.spiking import SpikingNetwork

__all__ = ["with_membrane_noise", "add_input_noise"]


def with_membrane_noise(net, level: float):
    """``net`` with membrane noise ``level`` (fraction of the threshold–reset gap per step)."""
    expect(level >= 0, "noise", "a non-negative fraction of the threshold-reset gap", level)
    if core_of(net) is not net:
        return map_core(net, lambda core: with_membrane_noise(core, level))
    if level == 0 and not isinstance(net, SpikingNetwork):
        return net
    if not isinstance(net, SpikingNetwork):
        raise ConfigError(f"noise: membrane noise needs a spiking network, got a {type(net).__name__}")
    neurons = dataclasses.replace(net.neurons, noise=float(level))
    return eqx.tree_at(lambda m: m.neurons, net, neurons)


def add_input_noise(inputs: jax.Array, std: float, key: jax.Array) -> jax.Array:
    """``inputs + std · ξ`` (same shape); identity for ``std == 0``."""
    expect(std >= 0, "input_noise", "a non-negative standard deviation", std)
    if std == 0:
        return inputs
    return inputs + std * jax.random.normal(key, inputs.shape, jnp.result_type(inputs))
