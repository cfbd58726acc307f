r"""Leaky integrate-and-fire neurons with current-based exponential synapses.

Units: time in seconds, potentials and currents dimensionless (a current ``I`` moves the
membrane towards ``V_rest + I``). ``N`` neurons, ``S`` synapse groups (e.g. ``S = 2`` for the
slow and fast recurrent synapses of Network ADS), step ``dt``.

One step ``t`` (all element-wise, per neuron ``i``, group ``s``), as implemented:

1. Synapses (exponential kernels, optional unit area)::

       I_s[t] = α_s · I_s[t-1] + ν_s · u_s[t],   α_s = exp(-dt/τ_syn,s),
       ν_s = 1/τ_syn,s  if synapse_norm == "unit_area"  else 1

   where ``u_s[t]`` is the weighted spike/input drive delivered to group ``s`` this step.
2. Total current ``I[t] = Σ_s I_s[t] + J[t] + b`` (``J`` a direct current, ``b`` the bias).
3. Membrane::

       V ← V + a · (V_rest − V + I[t]) + s_noise · (V_th − V_reset) · ξ,   ξ ~ N(0, 1)

   with ``a = dt/τ_mem`` (``integrator="euler"``, forward Euler) or ``a = 1 − exp(-dt/τ_mem)``
   (``integrator="exact"``: exact for an input held constant over the step). Neurons in their
   refractory period keep ``V = V_reset`` and do not spike.
4. Spikes: with ``x = (V − V_th)/(V_th − V_reset)``, ``n = H(x)`` (``max_spikes = 1``) or
   ``n = clip(⌊x⌋ + 1, 0, max_spikes)``; gradients use the surrogate ``σ'(x)``.
5. Reset: ``reset="subtract"``: ``V ← V − n (V_th − V_reset)``; ``reset="value"``:
   ``V ← V_reset`` where ``n > 0``. A spiking neuron becomes refractory for
   ``round(refractory/dt)`` steps.
6. Faults: neurons with ``silenced > 0`` are held at ``V = V_reset`` and emit no spikes while
   the step index ``t`` lies in ``silence_window`` (``[start, stop)`` in seconds; ``None`` = the
   whole sample). This models sudden neuron death (Network ADS clamps V to 0 = V_reset).

Closed forms used by the tests: with no spikes and constant ``I``, ``V[t] = V∞ + (V[0] − V∞)(1 − a)^t``
with ``V∞ = V_rest + I``; the first spike from ``V[0]`` happens at the smallest ``t`` with
``V[t] ≥ V_th``, i.e. ``t* = ⌈ln((V∞ − V_th)/(V∞ − V[0])) / ln(1 − a)⌉``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, expect
from spikefleet.neurons.surrogate import FastSigmoid, Surrogate, spike_count

__all__ = ["LIF", "LIFState"]

RESETS = ("subtract", "value")
INTEGRATORS = ("euler", "exact")
SYNAPSE_NORMS = ("none", "unit_area")


class LIFState(NamedTuple):
    """State of a :class:`LIF` population: potentials, synaptic currents, refractory counters, step index."""

    v: jax.Array  # [N] membrane potential
    i_syn: jax.Array  # [S, N] synaptic currents
    refractory: jax.Array  # [N] int32 remaining refractory steps
    t: jax.Array  # [] int32 step index within the sample


class LIF(eqx.Module):
    """A population of ``N`` LIF neurons with ``S`` exponential synapse groups (see module doc)."""

    tau_mem: jax.Array  # [N] s
    tau_syn: jax.Array  # [S, N] s
    threshold: jax.Array  # [N]
    v_rest: jax.Array  # [N]
    v_reset: jax.Array  # [N]
    bias: jax.Array  # [N]
    v_init: jax.Array  # [N] potential at the start of every sample
    silenced: jax.Array  # [N] 1.0 for dead (silenced) neurons, else 0.0
    dt: float = eqx.field(static=True, default=1e-3)
    reset: str = eqx.field(static=True, default="subtract")
    refractory: float = eqx.field(static=True, default=0.0)
    max_spikes: int = eqx.field(static=True, default=1)
    integrator: str = eqx.field(static=True, default="exact")
    synapse_norm: str = eqx.field(static=True, default="none")
    noise: float = eqx.field(static=True, default=0.0)
    surrogate: Surrogate = eqx.field(static=True, default=FastSigmoid())
    silence_window: Optional[tuple] = eqx.field(static=True, default=None)

    def __check_init__(self):
        n = self.tau_mem.shape[0] if self.tau_mem.ndim == 1 else -1
        expect(self.tau_mem.ndim == 1, "LIF.tau_mem", "a 1-D array [N]", self.tau_mem.shape)
        expect(self.tau_syn.ndim == 2 and self.tau_syn.shape[1] == n, "LIF.tau_syn",
               f"a 2-D array [S, {n}]", self.tau_syn.shape)
        for name in ("threshold", "v_rest", "v_reset", "bias", "v_init", "silenced"):
            shape = getattr(self, name).shape
            expect(shape == (n,), f"LIF.{name}", f"shape ({n},)", shape)
        expect(self.dt > 0, "LIF.dt", "a positive time step in seconds", self.dt)
        expect(self.reset in RESETS, "LIF.reset", f"one of {RESETS}", self.reset)
        expect(self.integrator in INTEGRATORS, "LIF.integrator", f"one of {INTEGRATORS}", self.integrator)
        expect(self.synapse_norm in SYNAPSE_NORMS, "LIF.synapse_norm", f"one of {SYNAPSE_NORMS}",
               self.synapse_norm)
        expect(isinstance(self.max_spikes, int) and self.max_spikes >= 1, "LIF.max_spikes",
               "an integer >= 1", self.max_spikes)
        expect(self.refractory >= 0, "LIF.refractory", "a non-negative duration in seconds", self.refractory)
        expect(self.noise >= 0, "LIF.noise", "a non-negative fraction of the threshold-reset gap", self.noise)
        window = self.silence_window
        expect(window is None or (len(window) == 2 and 0 <= window[0] < window[1]), "LIF.silence_window",
               "None or (start, stop) seconds with 0 <= start < stop", window)

    @classmethod
    def create(cls, n: int, *, n_synapses: int = 1, tau_mem=20e-3, tau_syn=10e-3, threshold=1.0,
               v_rest=0.0, v_reset=0.0, bias=0.0, v_init=None, **static) -> "LIF":
        """A population from scalars or arrays: per-neuron values broadcast to ``[N]``.

        ``tau_syn`` is a scalar, one value per synapse group (1-D of length ``n_synapses``;
        this reading wins when ``n_synapses > 1`` and ``N == n_synapses``), one value per neuron
        (1-D of length ``N``) or a full ``[S, N]`` array.
        """
        expect(isinstance(n, int) and n > 0, "n", "a positive integer", n)
        expect(isinstance(n_synapses, int) and n_synapses > 0, "n_synapses", "a positive integer", n_synapses)

        def vec(name, x, shape=(n,)):
            x = jnp.asarray(x, jnp.float32)
            try:
                return jnp.broadcast_to(x, shape)
            except ValueError:
                raise ConfigError(f"LIF.{name}: expected a scalar or an array broadcastable to {shape}, "
                                  f"got shape {x.shape}") from None

        tau_syn = jnp.asarray(tau_syn, jnp.float32)
        if tau_syn.ndim == 1 and n_synapses > 1 and tau_syn.shape[0] == n_synapses:
            tau_syn = tau_syn[:, None]  # one value per synapse group
        return cls(
            tau_mem=vec("tau_mem", tau_mem), tau_syn=vec("tau_syn", tau_syn, (n_synapses, n)),
            threshold=vec("threshold", threshold), v_rest=vec("v_rest", v_rest), v_reset=vec("v_reset", v_reset),
            bias=vec("bias", bias), v_init=vec("v_init", v_rest if v_init is None else v_init),
            silenced=vec("silenced", 0.0), **static,
        )

    @property
    def n(self) -> int:
        return self.tau_mem.shape[0]

    @property
    def n_synapses(self) -> int:
        return self.tau_syn.shape[0]

    def init_state(self) -> LIFState:
        return LIFState(
            v=self.v_init,
            i_syn=jnp.zeros(self.tau_syn.shape, self.v_init.dtype),
            refractory=jnp.zeros((self.n,), jnp.int32),
            t=jnp.zeros((), jnp.int32),
        )

    def membrane_factor(self) -> jax.Array:
        """``a`` of the membrane update: ``dt/τ`` (euler) or ``1 − exp(−dt/τ)`` (exact)."""
        if self.integrator == "euler":
            return self.dt / self.tau_mem
        return -jnp.expm1(-self.dt / self.tau_mem)

    def step(self, state: LIFState, syn_input, current=None, key=None) -> tuple[LIFState, jax.Array]:
        """Advance one step. ``syn_input``: ``[S, N]`` drive; ``current``: ``[N]`` or None.

        ``key`` is required when ``noise > 0``. Returns the new state and spike counts ``[N]``.
        """
        alpha = jnp.exp(-self.dt / self.tau_syn)
        drive = syn_input / self.tau_syn if self.synapse_norm == "unit_area" else syn_input
        i_syn = alpha * state.i_syn + drive
        total = i_syn.sum(axis=0) + self.bias
        if current is not None:
            total = total + current
        v = state.v + self.membrane_factor() * (self.v_rest - state.v + total)
        gap = self.threshold - self.v_reset
        if self.noise > 0:
            if key is None:
                raise ValueError("LIF.step: noise > 0 needs a PRNG key; pass key= to simulate()")
            v = v + self.noise * gap * jax.random.normal(key, v.shape, v.dtype)
        refractory_steps = int(round(self.refractory / self.dt))
        if refractory_steps > 0:
            in_refractory = state.refractory > 0
            v = jnp.where(in_refractory, self.v_reset, v)
        spikes = spike_count((v - self.threshold) / gap, self.surrogate, self.max_spikes)
        if refractory_steps > 0:
            spikes = jnp.where(in_refractory, 0.0, spikes)
        dead = self._dead(state.t)
        v = jnp.where(dead, self.v_reset, v)
        spikes = jnp.where(dead, 0.0, spikes)
        if self.reset == "subtract":
            v = v - spikes * gap
        else:
            v = jnp.where(spikes > 0, self.v_reset, v)
        if refractory_steps > 0:
            counter = jnp.where(spikes > 0, refractory_steps, jnp.maximum(state.refractory - 1, 0))
        else:
            counter = state.refractory
        return LIFState(v=v, i_syn=i_syn, refractory=counter.astype(jnp.int32), t=state.t + 1), spikes

    def _dead(self, t) -> jax.Array:
        """Boolean ``[N]``: silenced neurons inside the silence window at step ``t``."""
        dead = self.silenced > 0
        if self.silence_window is None:
            return dead
        start, stop = (int(round(w / self.dt)) for w in self.silence_window)
        return dead & (t >= start) & (t < stop)
