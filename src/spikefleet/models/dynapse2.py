r"""A network of DYNAP-SE2 neurons: input weights, all-to-all recurrence, spike-count outputs.

The Çakal et al. (2024) frozen-noise network (Çakal et al. 2024: task: frozen-noise classification) is a linear layer
``C → N`` without bias followed by ``N`` DynapSim neurons with recurrent weights (self
connections included). One step ``t`` (``w[pre, post]``, dimensionless weights; a weight
``w`` is the current ``w · I_scale``)::

    x[t] = u[t] @ W_in + S[t−1] @ W_rec                       (signed, summed before the DPI)
    S[t] = DynapSE2.step(x[t], J[t])                          (spike counts, see neurons.dynapse2)
    y[t] = S[t]                                               (the output is the spike raster)

For a neuron model with four dendrites (``n_dendrites == 4``, the circuit variant) the drive is
split by the sign of each *synapse*, as the chip does (positive → AMPA, negative → GABA)::

    x[t] = [u[t] @ W⁺_in + S[t−1] @ W⁺_rec,  u[t] @ W⁻_in + S[t−1] @ W⁻_rec,  0,  0]   (AMPA, GABA, NMDA, SHUNT)

with ``W⁺ = max(W, 0)`` and ``W⁻ = max(−W, 0)``.

The network follows the step protocol of :mod:`spikefleet.simulation`, so ``simulate``, the
fleet machinery (mismatch, quantisation, evaluation) and ``fit`` work with it unchanged.
Traces: ``spikes`` (counts), ``imem``, ``isyn``, ``vmem``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import expect
from spikefleet.models.base import Model
from spikefleet.models.propagation import propagate
from spikefleet.models.registry import register
from spikefleet.neurons.dynapse2 import I_SCALE, DynapSE2, DynapSE2State
from spikefleet.neurons.dynapse2_soma import SURROGATES
from spikefleet.neurons.dynapse2_limits import check_dynamics

__all__ = ["DynapSE2Config", "DynapSE2Network", "DynapSE2NetState", "init_dynapse2"]


@dataclass(frozen=True)
class DynapSE2Config:
    """Static description of a :class:`DynapSE2Network`."""

    n_in: int
    n_hidden: int
    dt: float = 1e-3
    recurrent: bool = True
    surrogate: str = "reference"
    max_spikes: Optional[int] = None

    def __post_init__(self):
        name = type(self).__name__
        for f in ("n_in", "n_hidden"):
            v = getattr(self, f)
            expect(isinstance(v, int) and not isinstance(v, bool) and v > 0, f"{name}.{f}", "a positive integer", v)
        expect(isinstance(self.dt, (int, float)) and not isinstance(self.dt, bool) and self.dt > 0, f"{name}.dt",
               "a positive time step in seconds", self.dt)
        expect(isinstance(self.recurrent, bool), f"{name}.recurrent", "True or False", self.recurrent)
        expect(self.surrogate in SURROGATES, f"{name}.surrogate", f"one of {SURROGATES}", self.surrogate)
        expect(self.max_spikes is None or (isinstance(self.max_spikes, int) and self.max_spikes >= 1),
               f"{name}.max_spikes", "None or an integer >= 1", self.max_spikes)

    @property
    def n_out(self) -> int:
        return self.n_hidden

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DynapSE2Config":
        return cls(**d)


class DynapSE2NetState(NamedTuple):
    """State of a :class:`DynapSE2Network`: the neuron state, which carries the previous step's spike counts."""

    neurons: DynapSE2State  # carries the previous step's spike counts (``neurons.spikes``)


class DynapSE2Network(Model):
    """``C`` inputs → ``N`` DYNAP-SE2 neurons with recurrence; outputs the spike counts."""

    w_in: jax.Array  # [C, N] dimensionless (× I_scale = current)
    w_rec: jax.Array  # [N, N] (zeros when config.recurrent is False)
    neurons: DynapSE2
    config: DynapSE2Config = eqx.field(static=True)

    def __check_init__(self):
        c, n = self.config.n_in, self.config.n_hidden
        for name, shape in {"w_in": (c, n), "w_rec": (n, n)}.items():
            got = getattr(self, name)
            expect(got.shape == shape, f"DynapSE2Network.{name}", f"shape {shape}", got.shape)
        expect(self.neurons.n == n, "DynapSE2Network.neurons", f"{n} neurons", self.neurons.n)
        check_dynamics(self.neurons, where="DynapSE2Network")  # dt vs. the model's stability limit

    @classmethod
    def skeleton(cls, config: DynapSE2Config) -> "DynapSE2Network":
        """A network of the right shapes with placeholder values (for loading checkpoints)."""
        return init_dynapse2(config, jax.random.PRNGKey(0))

    @property
    def dt(self) -> float:
        return self.config.dt

    def init_state(self) -> DynapSE2NetState:
        return DynapSE2NetState(neurons=self.neurons.init_state())

    def step_index(self, state: DynapSE2NetState) -> jax.Array:
        return state.neurons.t

    def project_inputs(self, inputs) -> jax.Array:
        """The input drive of all steps at once: ``u @ W_in`` (``[T, N]``), or for four dendrites
        ``[u @ W⁺_in, u @ W⁻_in]`` (``[T, 2, N]``); ``step(..., projected=True)`` takes its rows."""
        if getattr(self.neurons, "n_dendrites", 1) == 1:
            return inputs @ self.w_in
        return jnp.stack([inputs @ jnp.maximum(self.w_in, 0.0), inputs @ jnp.maximum(-self.w_in, 0.0)], axis=-2)

    def _drive(self, x_t, spikes, projected=False):
        recurrent = self.config.recurrent
        if getattr(self.neurons, "n_dendrites", 1) == 1:
            feed = x_t if projected else x_t @ self.w_in
            return feed + propagate(spikes, self.w_rec) if recurrent else feed
        if projected:
            pos, neg = x_t[0], x_t[1]
        else:
            pos, neg = x_t @ jnp.maximum(self.w_in, 0.0), x_t @ jnp.maximum(-self.w_in, 0.0)
        if recurrent:
            pos = pos + propagate(spikes, jnp.maximum(self.w_rec, 0.0))
            neg = neg + propagate(spikes, jnp.maximum(-self.w_rec, 0.0))
        zeros = jnp.zeros_like(pos)
        return jnp.stack([pos, neg, zeros, zeros], axis=-1)

    def step(self, state: DynapSE2NetState, x_t, *, key=None, current=None, projected: bool = False):
        """One step; returns ``(state, spike counts [N], traces)``. ``x_t``: the input ``u[t]``, or
        its projection (a row of :meth:`project_inputs`) when ``projected``."""
        drive = self._drive(x_t, state.neurons.spikes, projected)
        neurons, spikes = self.neurons.step(state.neurons, drive, current, key)
        traces = {"spikes": spikes, "imem": neurons.i_mem, "isyn": neurons.i_syn, "vmem": neurons.v_mem}
        return DynapSE2NetState(neurons=neurons), spikes, traces


def init_dynapse2(config: DynapSE2Config, key: jax.Array, *, neurons: Optional[DynapSE2] = None,
                  I_scale: float = I_SCALE, in_scale: float = 1.0, rec_scale: float = 1.0) -> DynapSE2Network:
    """Kaiming-uniform initialisation as the reference layers (Çakal et al. 2024: structure and conventions): ``W_in ~ U(±√(6/C))``,
    ``W_rec ~ U(±√(6/N))`` (times ``in_scale`` / ``rec_scale``), default DynapSim neurons.

    ``neurons`` replaces the default population (e.g. ``DynapSE2.from_high_level(...)``); its
    ``dt`` must match the config.
    """
    c, n = config.n_in, config.n_hidden
    k_in, k_rec = jax.random.split(key)
    if neurons is None:
        neurons = DynapSE2.create(n, dt=config.dt, surrogate=config.surrogate, max_spikes=config.max_spikes,
                                  I_scale=I_scale)
    expect(neurons.dt == config.dt, "neurons.dt", f"the config's dt = {config.dt}", neurons.dt)
    lim_in, lim_rec = in_scale * (6.0 / c) ** 0.5, rec_scale * (6.0 / n) ** 0.5
    w_in = jax.random.uniform(k_in, (c, n), jnp.float32, -lim_in, lim_in)
    w_rec = jax.random.uniform(k_rec, (n, n), jnp.float32, -lim_rec, lim_rec)
    if not config.recurrent:
        w_rec = jnp.zeros((n, n), jnp.float32)
    return DynapSE2Network(w_in=w_in, w_rec=w_rec, neurons=neurons, config=config)


register("dynapse2", DynapSE2Network, DynapSE2Config)
