r"""The spiking network: input weights, a recurrent LIF population and a linear readout.

Matrix orientation everywhere: ``w[pre, post]`` (row = presynaptic), so drives are ``x @ w``.

:class:`SpikingNetwork` (LIF population, one step ``t``)::

    u_slow[t] = o[t-1] @ W_rec (+ c[t] @ W_in   if input_target == "synapse")
    u_fast[t] = o[t-1] @ W_fast                     (optional second synapse group, τ_syn[1])
    J[t]      = c[t] @ W_in   if input_target == "current"  (+ any extra current)
    o[t]      = LIF.step(u, J)                       (spike counts, see neurons.lif)
    r[t]      = exp(-dt/τ_r) r[t-1] + ν_r o[t]       (ν_r = 1/τ_r for "unit_area", else 1)
    y[t]      = r[t] @ W_out + b_out

Recurrent spikes act with a one-step delay. ``r`` is the filtered spike train ("readout
trace"); with unit-area filters it is a rate in Hz. The tanh teacher network is
:class:`spikefleet.models.rate.RateNetwork`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import expect
from spikefleet.models.base import Model
from spikefleet.models.config import check_sizes
from spikefleet.models.propagation import propagate
from spikefleet.models.registry import register
from spikefleet.neurons.lif import LIF, LIFState
from spikefleet.neurons.surrogate import Surrogate, make_surrogate

__all__ = ["SpikingConfig", "SpikingNetwork", "SpikingState", "init_spiking"]


@dataclass(frozen=True)
class SpikingConfig:
    """Static description of a :class:`SpikingNetwork` (everything but the parameter values)."""

    n_in: int
    n_hidden: int
    n_out: int
    dt: float = 1e-3
    fast: bool = False
    input_target: str = "synapse"  # "synapse" or "current"
    reset: str = "subtract"
    max_spikes: int = 1
    refractory: float = 0.0
    integrator: str = "exact"
    synapse_norm: str = "none"
    readout_norm: str = "none"
    noise: float = 0.0
    surrogate: str = "fast-sigmoid"
    surrogate_params: tuple = (("slope", 10.0),)

    def __post_init__(self):
        check_sizes(self, ("n_in", "n_hidden", "n_out"))
        expect(self.input_target in ("synapse", "current"), "SpikingConfig.input_target",
               "'synapse' or 'current'", self.input_target)
        expect(self.readout_norm in ("none", "unit_area"), "SpikingConfig.readout_norm",
               "'none' or 'unit_area'", self.readout_norm)
        object.__setattr__(self, "surrogate_params", tuple(tuple(p) for p in self.surrogate_params))
        self.make_surrogate()  # validates name and parameters

    def make_surrogate(self) -> Surrogate:
        return make_surrogate(self.surrogate, **dict(self.surrogate_params))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["surrogate_params"] = [list(p) for p in self.surrogate_params]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpikingConfig":
        return cls(**d)


class SpikingState(NamedTuple):
    """State of a :class:`SpikingNetwork`: the LIF state, the previous step's spikes and the readout trace."""

    neurons: LIFState
    spikes: jax.Array  # [N] spikes of the previous step
    trace: jax.Array  # [N] readout trace r


class SpikingNetwork(Model):
    """Input weights, a recurrent LIF population (optional fast weights) and a linear readout."""

    w_in: jax.Array  # [C, N]
    w_rec: jax.Array  # [N, N]
    w_out: jax.Array  # [N, O]
    b_out: jax.Array  # [O]
    tau_out: jax.Array  # [N] readout-filter time constants, s
    neurons: LIF
    w_fast: Optional[jax.Array]  # [N, N] or None
    config: SpikingConfig = eqx.field(static=True)

    def __check_init__(self):
        c, n, o = self.config.n_in, self.config.n_hidden, self.config.n_out
        shapes = {"w_in": (c, n), "w_rec": (n, n), "w_out": (n, o), "b_out": (o,), "tau_out": (n,)}
        if self.config.fast:
            shapes["w_fast"] = (n, n)
        for name, shape in shapes.items():
            got = getattr(self, name)
            expect(got is not None and got.shape == shape, f"SpikingNetwork.{name}", f"shape {shape}",
                   None if got is None else got.shape)
        expect(self.neurons.n_synapses == (2 if self.config.fast else 1), "SpikingNetwork.neurons.tau_syn",
               "one synapse group per recurrent matrix", self.neurons.tau_syn.shape)

    @classmethod
    def skeleton(cls, config: SpikingConfig) -> "SpikingNetwork":
        """A network of the right shapes with placeholder values (for loading checkpoints)."""
        return init_spiking(config, jax.random.PRNGKey(0))

    @property
    def dt(self) -> float:
        return self.config.dt

    def init_state(self) -> SpikingState:
        n = self.config.n_hidden
        zeros = jnp.zeros((n,), jnp.float32)
        return SpikingState(neurons=self.neurons.init_state(), spikes=zeros, trace=zeros)

    def step_index(self, state: SpikingState) -> jax.Array:
        """Index of the next step within the sample (continues across chunked runs)."""
        return state.neurons.t

    def project_inputs(self, inputs) -> jax.Array:
        """The input drive ``c[t] @ W_in`` of all steps at once (``[T, C] -> [T, N]``, one matmul).

        When the network is being differentiated, :func:`~spikefleet.simulation.simulate` calls it
        before the time loop (the gradient of ``W_in`` is then one matmul too) and passes its rows to
        ``step(..., projected=True)``; the result is the same as projecting step by step.
        """
        return inputs @ self.w_in

    def step(self, state: SpikingState, x_t, *, key=None, current=None, projected: bool = False):
        """One time step; returns ``(state, y[t], traces)`` with traces ``spikes, v, r, i_syn``.

        ``x_t`` is the input ``c[t]`` (``[C]``), or its projection ``c[t] @ W_in`` (``[N]``) when
        ``projected``. Recurrent spikes go through :func:`~spikefleet.models.propagation.propagate`
        (event-driven for large, sparsely active populations).
        """
        cfg = self.config
        feed = x_t if projected else x_t @ self.w_in
        slow = propagate(state.spikes, self.w_rec)
        if cfg.input_target == "synapse":
            slow = slow + feed
        else:
            current = feed if current is None else feed + current
        drive = slow[None] if not cfg.fast else jnp.stack([slow, propagate(state.spikes, self.w_fast)])
        neurons, spikes = self.neurons.step(state.neurons, drive, current, key)
        alpha = jnp.exp(-cfg.dt / self.tau_out)
        inject = spikes / self.tau_out if cfg.readout_norm == "unit_area" else spikes
        trace = alpha * state.trace + inject
        y = trace @ self.w_out + self.b_out
        traces = {"spikes": spikes, "v": neurons.v, "r": trace, "i_syn": neurons.i_syn}
        return SpikingState(neurons=neurons, spikes=spikes, trace=trace), y, traces


def init_spiking(config: SpikingConfig, key: jax.Array, *, tau_mem: float = 20e-3,
                 tau_syn: Any = 10e-3, tau_out: float = 20e-3, threshold: float = 1.0,
                 v_rest: float = 0.0, v_reset: float = 0.0, in_scale: float = 1.0,
                 rec_scale: float = 0.5, out_scale: float = 1.0) -> SpikingNetwork:
    """Random initialisation (Gaussian weights, ``std = scale / sqrt(fan_in)``, no self-connections).

    ``tau_syn`` may be a scalar or one value per synapse group (``(slow, fast)`` if ``fast``).
    """
    k_in, k_rec, k_out, k_fast = jax.random.split(key, 4)
    c, n, o = config.n_in, config.n_hidden, config.n_out
    no_diag = 1.0 - jnp.eye(n)
    neurons = LIF.create(
        n, n_synapses=2 if config.fast else 1, tau_mem=tau_mem, tau_syn=tau_syn, threshold=threshold,
        v_rest=v_rest, v_reset=v_reset, dt=config.dt, reset=config.reset, refractory=config.refractory,
        max_spikes=config.max_spikes, integrator=config.integrator, synapse_norm=config.synapse_norm,
        noise=config.noise, surrogate=config.make_surrogate(),
    )
    return SpikingNetwork(
        w_in=in_scale * jax.random.normal(k_in, (c, n)) / jnp.sqrt(c),
        w_rec=rec_scale * no_diag * jax.random.normal(k_rec, (n, n)) / jnp.sqrt(n),
        w_out=out_scale * jax.random.normal(k_out, (n, o)) / jnp.sqrt(n),
        b_out=jnp.zeros((o,)),
        tau_out=jnp.full((n,), tau_out, jnp.float32),
        neurons=neurons,
        w_fast=(no_diag * jax.random.normal(k_fast, (n, n)) / jnp.sqrt(n)) if config.fast else None,
        config=config,
    )


register("spiking", SpikingNetwork, SpikingConfig)
