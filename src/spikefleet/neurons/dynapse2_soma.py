r"""The soma shared by both DYNAP-SE2 neuron models (Çakal et al., NCE 2024): parameter checks and
construction, the soma's constants, the membrane step, the spike count with its surrogate
gradient, the reset and refractoriness.

Used by :class:`~spikefleet.neurons.dynapse2.DynapSE2` (one combined synapse, the reference
variant) and :class:`~spikefleet.neurons.dynapse2_circuit.DynapSE2Circuit` (four dendrites);
their module docstrings give the full step. Notation as there: ``X_c = max(X, Io)``,
``⌈x⌉₊ = max(x, Io)``, ``κ = (κ_n + κ_p)/2``, ``U = U_T/κ``. Constants (:func:`soma_constants`)::

    τ_ahp = U·C_ahp/Itau_ahp,c     t_pulse = V_th·C_pulse/Ipulse     t_pulse_ahp = V_th·C_pulse_ahp/Ipulse_ahp
    t_ref = V_th·C_ref/Iref

Membrane, forward Euler (:func:`membrane_step`; ``I_sink`` is ``I_ahp``, or ``I_ahp + I_gaba``
in the circuit's textbook form)::

    dI_mem  = I_mem/(τ_m·(I_mem + Igain_mem,c)) · [I_mem,∞ + f − I_mem·(1 + I_sink/Itau_mem,c)]
    I_mem  ← ⌈I_mem + dt·dI_mem⌉₊

with, in the code form (:func:`code_membrane`: exponential positive feedback, double leak)::

    I_fb = Io · exp(κ'·V_mem/U_T), κ' = κ²/(κ + 1);   I_mem,∞ = (Igain_mem,c/Itau_mem,c) · (I_in − I_leak)
    f    = (I_fb/I_leak) · (I_mem + Igain_mem,c);      τ_m = U·C_mem/I_leak

Spikes, reset, refractoriness (:func:`dpi_spike_count`, :func:`reset`, :func:`refractory`)::

    S = max(0, ⌈ln(I_mem/Ispkthr)⌉)   (a count; optionally capped at max_spikes)
    b = min(S, 1);  I_mem ← (1 − b)·I_mem + b·Io;   T_ref ← t_ref if S > 0 else max(T_ref − dt, 0)

Surrogate gradient (``surrogate=``; the forward pass is the count above in both cases; no
gradient flows to ``Ispkthr`` or ``Io``):

* ``"reference"``: ``∂S/∂I_mem = clip(⌈I_mem − Io⌉, 0, 1)``, i.e. 1 per Ampere wherever
  ``I_mem > Io`` (straight-through with unit slope in Ampere units). Gradients are tiny (the
  summed count of the E4 neuron has ∂/∂w ~ 1e-6…1e-4) and training relies on Adam's scale
  invariance. The reset factor ``b`` is straight-through (forward ``min(S, 1)``, derivative
  ``∂S``), as the formula ``(1 − b)·I_mem + b·Io`` implies; this path, with factor
  ``(Io − I_mem) ≈ −1e-7`` per spike, changes the E4 gradient by ~1.4 %.
* ``"scaled"``: the same gate divided by ``Ispkthr``: ``∂S/∂I_mem = H(I_mem − Io)/Ispkthr``,
  unit slope with respect to the threshold-normalised current ``I_mem/Ispkthr`` (≈ 1e7 × the
  reference gradient with the defaults; ~20…450 per unit weight on E4), usable with plain SGD.
  The reset is *detached* (``b`` carries no gradient): with this scale the reset factor
  ``(Io − I_mem)/Ispkthr ≈ −1…−eⁿ`` would chain across spikes and overflow BPTT (NaN after a few
  hundred steps). Hence "scaled" = (reference gradient with a detached reset) / Ispkthr.

The refractory counter carries no gradient.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import ConfigError, expect

__all__ = [
    "SURROGATES", "dpi_spike_count", "spike_count_from_log", "SomaConstants", "soma_constants", "code_membrane",
    "membrane_step", "reset", "refractory", "is_traced", "check_positive", "check_population", "population_fields",
    "create_with_currents", "Population",
]

#: surrogate gradients of the spike count (module docstring)
SURROGATES = ("reference", "scaled")


# --------------------------------------------------------------------------------------------
# Parameters: checks and construction
# --------------------------------------------------------------------------------------------

def is_traced(x) -> bool:
    """Whether ``x`` is a JAX tracer (its values cannot be checked)."""
    return isinstance(x, jax.core.Tracer)


def check_positive(name: str, x, allow_zero: bool = False) -> None:
    """Raise ConfigError naming ``name`` unless every element of a concrete ``x`` is finite and > 0."""
    if x is None or is_traced(x):
        return
    a = np.asarray(x, np.float64)
    ok = np.all(np.isfinite(a)) and (np.all(a >= 0) if allow_zero else np.all(a > 0))
    if not ok:
        bad = a[~(np.isfinite(a) & ((a >= 0) if allow_zero else (a > 0)))]
        expect(False, name, "finite values >= 0" if allow_zero else "finite values > 0",
               bad.ravel()[:4].tolist())


def check_population(neurons, cls: str, names: tuple, non_negative: tuple, *, size_from: str) -> None:
    """The checks a population's ``__check_init__`` shares: ``surrogate``, ``dt``, ``max_spikes``,
    every parameter of ``names`` a positive (``non_negative``: >= 0) ``[N]`` array with ``N`` the
    length of parameter ``size_from``, and a positive scalar ``I_scale``."""
    expect(neurons.surrogate in SURROGATES, f"{cls}.surrogate", f"one of {SURROGATES}", neurons.surrogate)
    expect(isinstance(neurons.dt, (int, float)) and not isinstance(neurons.dt, bool) and neurons.dt > 0,
           f"{cls}.dt", "a positive time step in seconds", neurons.dt)
    expect(neurons.max_spikes is None or (isinstance(neurons.max_spikes, int) and neurons.max_spikes >= 1),
           f"{cls}.max_spikes", "None (no cap) or an integer >= 1", neurons.max_spikes)
    first = getattr(neurons, size_from)
    n = first.shape[0] if jnp.ndim(first) == 1 else -1
    for name in names:
        value = getattr(neurons, name)
        expect(jnp.shape(value) == (n,) and n > 0, f"{cls}.{name}", f"a 1-D array of shape ({max(n, 1)},)",
               jnp.shape(value))
        check_positive(f"{cls}.{name}", value, allow_zero=name in non_negative)
    expect(jnp.shape(neurons.I_scale) == (), f"{cls}.I_scale", "a scalar (A per unit weight)",
           jnp.shape(neurons.I_scale))
    check_positive(f"{cls}.I_scale", neurons.I_scale)


def population_fields(cls: str, n: int, dtype, names: tuple, defaults: dict, overrides: dict, static_names: tuple,
                      i_scale: float) -> dict:
    """The constructor fields of ``n`` identical neurons: every parameter of ``names`` from
    ``overrides`` or ``defaults`` broadcast to ``[n]``, ``I_scale`` (default ``i_scale``) and the
    static fields of ``static_names`` given in ``overrides``; unknown names raise ConfigError."""
    expect(isinstance(n, int) and not isinstance(n, bool) and n > 0, "n", "a positive integer", n)
    known = set(names) | {"I_scale"} | set(static_names)
    unknown = sorted(set(overrides) - known)
    expect(not unknown, f"{cls}.create", f"parameter names in {sorted(known)}", unknown)
    fields = {}
    for name in names:
        value = overrides.get(name, defaults[name])
        arr = jnp.asarray(value, dtype) if is_traced(value) else jnp.asarray(np.asarray(value, np.float64), dtype)
        if jnp.ndim(arr) > 1 or (jnp.ndim(arr) == 1 and arr.shape[0] not in (1, n)):
            raise ConfigError(f"{cls}.{name}: expected a scalar or an array of shape ({n},), "
                              f"got shape {tuple(arr.shape)}")
        fields[name] = jnp.broadcast_to(arr, (n,))
    fields["I_scale"] = jnp.asarray(overrides.get("I_scale", i_scale), dtype)
    fields.update({k: overrides[k] for k in static_names if k in overrides})
    return fields


def create_with_currents(cls, n: int, currents: dict, overrides: dict):
    """``cls.create(n, **overrides, **currents)`` for ``from_high_level``: refuses an override of a
    current that the high-level values determine."""
    clash = sorted(set(currents) & set(overrides))
    expect(not clash, f"{cls.__name__}.from_high_level", "no current that the high-level values determine "
           "(give it to create() instead)", clash)
    return cls.create(n, **overrides, **currents)


class Population(eqx.Module):
    """Base of the two DYNAP-SE2 neuron populations (no fields of its own)."""

    @property
    def n(self) -> int:
        """Number of neurons ``N``."""
        return self.Io.shape[0]


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------

class SomaConstants(NamedTuple):
    """Per-step constants of the soma (module docstring), each ``[N]``."""

    kappa: jax.Array  # κ
    ut_k: jax.Array  # U = U_T/κ (V)
    itau_ahp: jax.Array  # Itau_ahp,c (A)
    igain_ahp: jax.Array  # Igain_ahp,c (A)
    itau_mem: jax.Array  # Itau_mem,c (A)
    igain_mem: jax.Array  # Igain_mem,c (A)
    tau_ahp: jax.Array  # s
    t_pulse: jax.Array  # s
    t_pulse_ahp: jax.Array  # s
    t_ref: jax.Array  # s


def soma_constants(neurons) -> SomaConstants:
    """The :class:`SomaConstants` of a population (recomputed every step: mismatch-aware)."""
    io = neurons.Io
    kappa = 0.5 * (neurons.kappa_n + neurons.kappa_p)
    ut_k = neurons.Ut / kappa
    itau_ahp, igain_ahp = jnp.maximum(neurons.Itau_ahp, io), jnp.maximum(neurons.Igain_ahp, io)
    itau_mem, igain_mem = jnp.maximum(neurons.Itau_mem, io), jnp.maximum(neurons.Igain_mem, io)
    return SomaConstants(kappa=kappa, ut_k=ut_k, itau_ahp=itau_ahp, igain_ahp=igain_ahp, itau_mem=itau_mem,
                         igain_mem=igain_mem, tau_ahp=ut_k * neurons.C_ahp / itau_ahp,
                         t_pulse=neurons.Vth * neurons.C_pulse / neurons.Ipulse,
                         t_pulse_ahp=neurons.Vth * neurons.C_pulse_ahp / neurons.Ipulse_ahp,
                         t_ref=neurons.Vth * neurons.C_ref / neurons.Iref)


def membrane_step(neurons, c: SomaConstants, i_mem, i_mem_inf, f_fb, tau_m, sink) -> jax.Array:
    """One forward-Euler step of ``I_mem`` (module docstring); ``sink`` is ``I_sink``."""
    d_i_mem = i_mem / (tau_m * (i_mem + c.igain_mem)) * (i_mem_inf + f_fb - i_mem * (1.0 + sink / c.itau_mem))
    return jnp.maximum(i_mem + neurons.dt * d_i_mem, neurons.Io)


def code_membrane(neurons, c: SomaConstants, i_mem, i_in, i_leak, sink, v_mem) -> jax.Array:
    """The membrane step in the code form: feedback from the previous step's ``v_mem``, input
    ``I_in`` (already floored and blocked while refractory) and leak ``I_leak``."""
    kappa_fb = c.kappa ** 2 / (c.kappa + 1.0)
    i_fb = neurons.Io * jnp.exp(kappa_fb * v_mem / neurons.Ut)
    i_mem_inf = c.igain_mem / c.itau_mem * (i_in - i_leak)
    f_fb = i_fb / i_leak * (i_mem + c.igain_mem)
    tau_m = c.ut_k * neurons.C_mem / i_leak
    return membrane_step(neurons, c, i_mem, i_mem_inf, f_fb, tau_m, sink)


def reset(i_mem, spikes, io, surrogate: str) -> jax.Array:
    """``(1 − b)·I_mem + b·Io`` with ``b = min(S, 1)``: straight-through (``"reference"``) or
    detached (``"scaled"``), see the module docstring."""
    if surrogate == "scaled":  # detached reset
        b = jax.lax.stop_gradient(jnp.minimum(spikes, 1.0))
    else:  # min(S, 1), straight-through
        b = spikes + jax.lax.stop_gradient(jnp.minimum(spikes, 1.0) - spikes)
    return (1.0 - b) * i_mem + b * io


def refractory(spikes, t_ref, t_left, dt: float) -> jax.Array:
    """Remaining refractory time: ``t_ref`` after a spike, else ``max(t_left − dt, 0)`` (no gradient)."""
    return jax.lax.stop_gradient(jnp.where(spikes > 0, t_ref, jnp.maximum(t_left - dt, 0.0)))


# --------------------------------------------------------------------------------------------
# Spike generation with the straight-through surrogate
# --------------------------------------------------------------------------------------------

def _gate(i_mem, i_spkthr, i_o, surrogate: str):
    gate = jnp.clip(jnp.ceil(i_mem - i_o), 0.0, 1.0)
    return gate / i_spkthr if surrogate == "scaled" else gate


def _count(n, max_spikes: Optional[int], like):
    if max_spikes is not None:
        n = jnp.minimum(n, float(max_spikes))
    return n.astype(jnp.result_type(like))


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def dpi_spike_count(i_mem, i_spkthr, i_o, surrogate: str = "reference", max_spikes: Optional[int] = None):
    """Spike count ``max(0, ⌈ln(I_mem/Ispkthr)⌉)`` (capped at ``max_spikes`` unless None).

    Derivative w.r.t. ``I_mem``: ``clip(⌈I_mem − Io⌉, 0, 1)`` (``"reference"``), divided by
    ``Ispkthr`` for ``"scaled"``; zero w.r.t. ``Ispkthr`` and ``Io``.
    """
    return _count(jnp.maximum(0.0, jnp.ceil(jnp.log(i_mem / i_spkthr))), max_spikes, i_mem)


@dpi_spike_count.defjvp
def _dpi_spike_count_jvp(surrogate, max_spikes, primals, tangents):
    i_mem, i_spkthr, i_o = primals
    n = dpi_spike_count(i_mem, i_spkthr, i_o, surrogate, max_spikes)
    return n, _gate(i_mem, i_spkthr, i_o, surrogate) * tangents[0]


@partial(jax.custom_jvp, nondiff_argnums=(4, 5))
def spike_count_from_log(i_mem, excess, i_spkthr, i_o, surrogate: str = "reference", max_spikes=None):
    """:func:`dpi_spike_count` from ``excess = ln(I_mem/Io) − ln(Ispkthr/Io)`` (the log the step already
    computes for ``V_mem``; one log per neuron and step instead of two). Same derivative."""
    return _count(jnp.maximum(0.0, jnp.ceil(excess)), max_spikes, i_mem)


@spike_count_from_log.defjvp
def _spike_count_from_log_jvp(surrogate, max_spikes, primals, tangents):
    i_mem, _, i_spkthr, i_o = primals
    n = spike_count_from_log(*primals, surrogate, max_spikes)
    return n, _gate(i_mem, i_spkthr, i_o, surrogate) * tangents[0]
