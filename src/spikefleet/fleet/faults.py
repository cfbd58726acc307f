"""Faults: sudden neuron death.

``silence_neurons(net, fraction, key)`` marks ``⌊fraction · N⌋`` neurons as dead: they are held
at ``V_reset`` and never spike (see :mod:`spikefleet.neurons.lif`, step 6), for the whole
sample or inside ``window = (start, stop)`` seconds. ``select="random"`` draws a random subset
per chip key (without replacement); ``select="first"`` takes the first neurons by index (the
Network ADS protocol, identical for every chip).
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, expect
from spikefleet.models.base import core_of, map_core
from spikefleet.models.spiking import SpikingNetwork

__all__ = ["silence_neurons", "SELECTIONS"]

#: how dead neurons are chosen (module docstring)
SELECTIONS = ("random", "first")


def silence_neurons(net, fraction: float, key: jax.Array | None = None, *, window=None, select: str = "random"):
    """``net`` with ``⌊fraction·N⌋`` neurons silenced (module docstring); ``key`` draws them for ``select='random'``."""
    expect(0.0 <= fraction <= 1.0, "dead", "a fraction of neurons in [0, 1]", fraction)
    expect(select in SELECTIONS, "select", f"one of {SELECTIONS}", select)
    if fraction == 0.0:
        return net
    if core_of(net) is not net:
        return map_core(net, lambda core: silence_neurons(core, fraction, key, window=window, select=select))
    if not isinstance(net, SpikingNetwork):
        raise ConfigError(f"dead: neuron death needs a spiking network, got a {type(net).__name__}")
    n = net.neurons.n
    count = int(math.floor(fraction * n + 1e-9))
    if select == "first":
        mask = (jnp.arange(n) < count).astype(jnp.float32)
    else:
        if key is None:
            raise ConfigError("dead: select='random' needs a chip key")
        order = jax.random.permutation(key, n)
        mask = jnp.zeros((n,), jnp.float32).at[order[:count]].set(1.0)
    neurons = eqx.tree_at(lambda l: l.silenced, net.neurons, mask)
    if window is not None:
        neurons = dataclasses.replace(neurons, silence_window=tuple(float(w) for w in window))
    return eqx.tree_at(lambda m: m.neurons, net, neurons)
