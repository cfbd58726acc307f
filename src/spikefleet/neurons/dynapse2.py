r"""DYNAP-SE2 neurons ("DynapSim", Çakal et al., NCE 2024): DPI synapse, DPI adaptation, AdExp soma.

Units: every state variable is a current in Amperes except ``V_mem`` (Volts) and ``T_ref``
(seconds); capacitances in Farads, time in seconds, everything float32. ``N`` neurons, step
``dt`` (default 1 ms). All parameters are per-neuron ``[N]`` arrays (so that per-neuron device
mismatch can be applied); on the chip they are shared by the 256 neurons of a core.

Notation: ``⌈x⌉₊ = max(x, Io)`` (the dark-current floor); ``X_c = max(X, Io)`` for
``Itau_*``/``Igain_*``; ``κ = (κ_n + κ_p)/2``; ``U = U_T/κ`` (35.461 mV with the defaults).

Pre-computed from the parameters at every step (cheap, and mismatch-aware)::

    τ_syn = U·C_syn/Itau_syn,c        τ_ahp = U·C_ahp/Itau_ahp,c
    t_pulse = V_th·C_pulse/Ipulse     t_pulse_ahp = V_th·C_pulse_ahp/Ipulse_ahp
    t_ref = V_th·C_ref/Iref

One step ``k`` (``variant="reference"``: the order of the shipped simulator), element-wise over
neurons; inputs are ``x_k = syn_input`` (dimensionless, signed) and ``J_k = current`` (A)::

 1. DPI synapse (closed-form exponential step, one pulse per bin, valid since t_pulse ≪ dt)
        I_w      = I_scale · x_k                                      [A], signed
        I_syn,∞  = ⌈(Igain_syn,c/Itau_syn,c) · I_w⌉₊
        I_syn   ← e^(−dt/τ_syn) · I_syn + (1 − e^(−t_pulse/τ_syn)) · I_syn,∞   (not clipped)
 2. AHP (spike-frequency adaptation), driven by the neuron's own previous-step count S
        I_ahp,∞  = (Igain_ahp,c/Itau_ahp,c) · Iw_ahp · S
        I_ahp   ← ⌈e^(−dt/τ_ahp) · I_ahp + (1 − e^(−t_pulse_ahp/τ_ahp)) · I_ahp,∞⌉₊
 3. Membrane (current-mode AdExp, forward Euler), with V_mem of the previous step
        I_fb     = Io · exp(κ'·V_mem/U_T),   κ' = κ²/(κ + 1)
        I_leak   = Itau_mem,c + I_ahp
        I_in     = ⌈0 if T_ref > 0 else (I_syn − I_leak + Idc + J_k)⌉₊
        I_mem,∞  = (Igain_mem,c/Itau_mem,c) · (I_in − I_leak)
        f        = (I_fb/I_leak) · (I_mem + Igain_mem,c)
        τ_m      = U·C_mem/I_leak
        dI_mem   = I_mem/(τ_m·(I_mem + Igain_mem,c)) · [I_mem,∞ + f − I_mem·(1 + I_ahp/Itau_mem,c)]
        I_mem   ← ⌈I_mem + dt·dI_mem⌉₊,     V_mem = U·ln(I_mem/Io)                 [V]
 4. Spikes, reset, refractoriness
        S        = max(0, ⌈ln(I_mem/Ispkthr)⌉)     (a count; optionally capped at max_spikes)
        b        = min(S, 1);  I_mem ← (1 − b)·I_mem + b·Io        (V_mem is NOT recomputed)
        T_ref   ← t_ref if S > 0 else max(T_ref − dt, 0)

The step returns ``S`` (float spike counts). Input is blocked for the ⌈t_ref/dt⌉ steps after a
spike (one step with the defaults: in float32 ``t_ref`` evaluates to 0.99999994 ms < dt).

Inputs and weights. ``syn_input`` is the *already weighted* dimensionless drive of this bin: a
network computes ``x_k = u_k @ W_in + S_{k−1} @ W_rec`` (``w[pre, post]``, spike counts of the
previous step for the recurrence); a weight ``w`` is the current ``w·I_scale`` (``I_scale``
10 nA by default), which the DPI multiplies by its gain ratio ``Igain_syn/Itau_syn`` (100) and
charges for ``t_pulse`` only: one input spike of weight ``w`` raises ``I_syn`` by
``(1 − e^(−t_pulse/τ_syn))·100·w·I_scale ≈ 1.0e-9·w A``. Several spikes in a bin add linearly;
positive and negative drive in the same bin cancel before the floor (see quirk 1).

``current`` is an extra DC injection in Amperes added to the parameter ``Idc``.

With the defaults (``Iw_ahp = Io``) the AHP is effectively off: one spike adds
``(1 − e^(−t_pulse_ahp/τ_ahp))·(Igain_ahp/Itau_ahp)·Iw_ahp ≈ 2e-5·Iw_ahp ≈ 1e-17 A``; an
``Iw_ahp`` of order 1 µA is needed for an adaptation current comparable to ``Itau_mem``.

Numerics: ``1 − e^(−x)`` is computed as ``−expm1(−x)``; with ``x = t_pulse_ahp/τ_ahp = 2e-5``
the float32 ``1 − exp`` form has a relative error of ~1e-3 (the reference numbers of Çakal et al. 2024: reference behaviour for unit tests of
the spec are reproduced either way).

Surrogate gradient (``surrogate=``, ``"reference"`` or ``"scaled"``; the forward pass is the
count above in both): see :mod:`spikefleet.neurons.dynapse2_soma`, which holds the soma steps 3–4
that this model shares with the circuit variant. The refractory counter carries no gradient.

Reference quirks reproduced (Çakal et al. 2024: modelling caveats, Çakal et al. 2024: reference-implementation defects and quirks rows 6–8) and what the circuit variant (the
historical 4-dendrite model of Çakal et al. 2024: full 4-synapse model with the corrected options of Çakal et al. 2024: reference-implementation defects and quirks) changes. The circuit
variant is the separate class :class:`spikefleet.neurons.dynapse2_circuit.DynapSE2Circuit` (with
``evolve_circuit``); ``DynapSE2(variant="circuit")`` raises ``NotImplementedError`` pointing there:

1. Inhibition is instantaneous-only: input and recurrent drive are summed before the DPI and its
   target is floored at Io, so a net-negative bin adds nothing. Circuit: four DPIs per neuron
   (AMPA, GABA, NMDA, SHUNT; input ``[N, 4]``, weights already currents, no ``I_scale``), GABA
   adds a lasting current to the leak (``I_leak = Itau_mem + I_gaba + I_ahp``), SHUNT is
   subtracted from ``I_in``, NMDA is gated ``I_nmda/(1 + If_nmda/I_mem)``, and synapse/AHP
   increments blend the exponential step with a short-term-potentiation term (r = 0.95/0.75).
2. The leak is subtracted twice (in ``I_in`` and again in ``I_mem,∞``) and the positive
   feedback is the exponential ``Io·exp(κ'V_mem/U_T)`` divided by the total leak
   ``Itau_mem + I_ahp``. Circuit (optional): the textbook form ``I_mem,∞ = (Igain/Itau)(I_in −
   I_ahp − Itau)`` with ``I_in`` free of leak and ``f = (I_a/Itau)(I_mem + Igain)`` with a
   sigmoid ``I_a``.
3. V_mem is not refreshed after the reset, so the next step's feedback uses the pre-reset
   voltage (~0.3 pA extra per step). Circuit: ``V_mem`` recomputed from the reset ``I_mem``.
4. Spike counts > 1 per bin are possible (``max_spikes=None``); recurrent and AHP drive scale
   with the count, the reset happens once.
5. One combined synapse (stored as "ampa", reported as "isyn"); ``If_nmda`` is carried (it is a
   frozen-mismatch target) but unused; the declared I_gaba/I_nmda/I_shunt are not stored.
6. The charge term of step 1 is applied every step: with no input a floor of
   ``(1 − e^(−t_pulse/τ_syn))·Io`` is added.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import expect
from spikefleet.neurons.dynapse2_soma import (Population, check_population, check_positive, code_membrane,
                                              create_with_currents, population_fields, refractory, reset,
                                              soma_constants, spike_count_from_log)

__all__ = [
    "DynapSE2", "DynapSE2State", "evolve",
    "LAYOUT_DEFAULTS", "HIGH_LEVEL_DEFAULTS", "CURRENT_DEFAULTS", "DENDRITE_CAPACITANCE", "WEIGHT_BITS",
    "I_SCALE", "PARAMETER_NAMES", "FROZEN_MISMATCH_PARAMETERS", "VARIANTS",
    "mean_kappa", "tau_to_current", "current_to_tau", "gain_to_current", "current_to_gain",
    "pulse_width_to_current", "current_to_pulse_width", "high_level_to_currents", "currents_to_high_level",
]

#: model variants; only ``reference`` is implemented here (``circuit``: :mod:`.dynapse2_circuit`)
VARIANTS = ("reference", "circuit")

#: Layout and physical constants (Çakal et al. 2024: parameters and defaults): F, A, dimensionless, V.
LAYOUT_DEFAULTS = {
    "C_mem": 3e-12,
    "C_syn": 24.5e-12,  # the AMPA capacitance (the shipped single synapse)
    "C_ahp": 40e-12,
    "C_pulse": 0.5e-12,
    "C_pulse_ahp": 0.5e-12,
    "C_ref": 1.5e-12,
    "Io": 5e-13,
    "kappa_n": 0.75,
    "kappa_p": 0.66,
    "Ut": 25e-3,
    "Vth": 0.7,
}

#: Per-dendrite capacitances of the chip (Çakal et al. 2024: parameters and defaults); 25 pF is the generic C_syn of LIF conversion.
DENDRITE_CAPACITANCE = {"ampa": 24.5e-12, "gaba": 25e-12, "nmda": 25e-12, "shunt": 24.5e-12}

#: High-level defaults (s, dimensionless gain ratios).
HIGH_LEVEL_DEFAULTS = {
    "tau_mem": 20e-3,
    "tau_syn": 10e-3,
    "tau_ahp": 50e-3,
    "gain_mem": 4.0,
    "gain_syn": 100.0,
    "gain_ahp": 1.0,
    "t_pulse": 10e-6,
    "t_pulse_ahp": 1e-6,
    "t_ref": 1e-3,
}

#: Weight-bit base currents Iw_0..Iw_3 of a core (A); used by the hardware layer, not the simulator.
WEIGHT_BITS = (1e-9, 2e-9, 4e-9, 8e-9)

#: Current that a dimensionless weight of 1 stands for (A).
I_SCALE = 1e-8

#: The 24 per-neuron simulation parameters, in the order of the reference's frozen prototype.
PARAMETER_NAMES = (
    "Idc", "If_nmda", "Igain_ahp", "Igain_mem", "Igain_syn", "Ipulse_ahp", "Ipulse", "Iref", "Ispkthr",
    "Itau_ahp", "Itau_mem", "Itau_syn", "Iw_ahp", "C_ahp", "C_syn", "C_pulse_ahp", "C_pulse", "C_ref",
    "C_mem", "Io", "kappa_n", "kappa_p", "Ut", "Vth",
)
#: What the reference's frozen mismatch prototype perturbs (all 24; not I_scale, dt or weights).
FROZEN_MISMATCH_PARAMETERS = PARAMETER_NAMES
_NON_NEGATIVE = ("Idc", "If_nmda", "Iw_ahp")  # may be 0 (Iw_ahp was 0 before 2023)


# --------------------------------------------------------------------------------------------
# High-level <-> current conversions (Çakal et al. 2024: high-level ↔ current conversions). Plain arithmetic: works on Python floats, NumPy
# arrays (float64 stays float64) and JAX arrays / tracers; vectorised by broadcasting.
# ``None`` in gives ``None`` out ("keep the existing current"); non-positive concrete inputs raise.
# --------------------------------------------------------------------------------------------

def mean_kappa(kappa_n=LAYOUT_DEFAULTS["kappa_n"], kappa_p=LAYOUT_DEFAULTS["kappa_p"]):
    """κ = (κ_n + κ_p)/2 (0.705 with the defaults)."""
    return 0.5 * (kappa_n + kappa_p)


def tau_to_current(tau, C, *, Ut=LAYOUT_DEFAULTS["Ut"], kappa_n=LAYOUT_DEFAULTS["kappa_n"],
                   kappa_p=LAYOUT_DEFAULTS["kappa_p"]):
    """Leak current of a DPI with time constant ``tau`` (s) and capacitance ``C`` (F): I_τ = (U_T/κ)·C/τ."""
    if tau is None:
        return None
    check_positive("tau", tau)
    return Ut / mean_kappa(kappa_n, kappa_p) * C / tau


def current_to_tau(Itau, C, *, Ut=LAYOUT_DEFAULTS["Ut"], kappa_n=LAYOUT_DEFAULTS["kappa_n"],
                   kappa_p=LAYOUT_DEFAULTS["kappa_p"]):
    """Time constant (s) of a DPI with leak current ``Itau`` (A): τ = (U_T/κ)·C/I_τ."""
    if Itau is None:
        return None
    check_positive("Itau", Itau)
    return Ut / mean_kappa(kappa_n, kappa_p) * C / Itau


def gain_to_current(ratio, Itau):
    """Gain current for a gain ratio r = I_gain/I_τ: I_gain = r·I_τ."""
    if ratio is None:
        return None
    check_positive("gain ratio", ratio)
    return ratio * Itau


def current_to_gain(Igain, Itau):
    """Gain ratio r = I_gain/I_τ."""
    if Igain is None:
        return None
    check_positive("Igain", Igain)
    return Igain / Itau


def pulse_width_to_current(t_pw, C, *, Vth=LAYOUT_DEFAULTS["Vth"]):
    """Current giving a pulse width (or refractory time) ``t_pw`` (s) on capacitance ``C``: I = V_th·C/t.

    The reference documents a κ in the denominator; its code (and this function) has none.
    Use ``C = C_pulse`` (Ipulse), ``C_pulse_ahp`` (Ipulse_ahp) or ``C_ref`` (Iref).
    """
    if t_pw is None:
        return None
    check_positive("pulse width", t_pw)
    return Vth * C / t_pw


def current_to_pulse_width(I_pw, C, *, Vth=LAYOUT_DEFAULTS["Vth"]):
    """Pulse width (or refractory time) in seconds of current ``I_pw``: t = V_th·C/I."""
    if I_pw is None:
        return None
    check_positive("pulse current", I_pw)
    return Vth * C / I_pw


def high_level_to_currents(*, layout: Optional[dict] = None, **high_level) -> dict:
    """The 9 currents implied by high-level values (names of :data:`HIGH_LEVEL_DEFAULTS`).

    Missing or ``None`` entries take the default high-level value. ``layout`` overrides entries of
    :data:`LAYOUT_DEFAULTS` (capacitances, κ, U_T, V_th). Returns ``Itau_mem, Igain_mem, Itau_syn,
    Igain_syn, Itau_ahp, Igain_ahp, Ipulse, Ipulse_ahp, Iref``.
    """
    unknown = set(high_level) - set(HIGH_LEVEL_DEFAULTS)
    expect(not unknown, "high-level parameter", f"names in {sorted(HIGH_LEVEL_DEFAULTS)}", sorted(unknown))
    lay = dict(LAYOUT_DEFAULTS, **(layout or {}))
    hl = {k: (HIGH_LEVEL_DEFAULTS[k] if high_level.get(k) is None else high_level[k]) for k in HIGH_LEVEL_DEFAULTS}
    phys = {k: lay[k] for k in ("Ut", "kappa_n", "kappa_p")}
    out = {}
    for part in ("mem", "syn", "ahp"):
        itau = tau_to_current(hl[f"tau_{part}"], lay[f"C_{part}"], **phys)
        out[f"Itau_{part}"] = itau
        out[f"Igain_{part}"] = gain_to_current(hl[f"gain_{part}"], itau)
    out["Ipulse"] = pulse_width_to_current(hl["t_pulse"], lay["C_pulse"], Vth=lay["Vth"])
    out["Ipulse_ahp"] = pulse_width_to_current(hl["t_pulse_ahp"], lay["C_pulse_ahp"], Vth=lay["Vth"])
    out["Iref"] = pulse_width_to_current(hl["t_ref"], lay["C_ref"], Vth=lay["Vth"])
    return out


def currents_to_high_level(params) -> dict:
    """Inverse of :func:`high_level_to_currents`; ``params`` is a mapping or an object with the
    current and layout attributes (e.g. a :class:`DynapSE2`). Uses the currents as given (no Io clip)."""
    get = (lambda k: params[k]) if isinstance(params, dict) else (lambda k: getattr(params, k))
    lay = {k: (get(k) if _has(params, k) else v) for k, v in LAYOUT_DEFAULTS.items()}
    phys = {k: lay[k] for k in ("Ut", "kappa_n", "kappa_p")}
    out = {}
    for part in ("mem", "syn", "ahp"):
        out[f"tau_{part}"] = current_to_tau(get(f"Itau_{part}"), lay[f"C_{part}"], **phys)
        out[f"gain_{part}"] = current_to_gain(get(f"Igain_{part}"), get(f"Itau_{part}"))
    out["t_pulse"] = current_to_pulse_width(get("Ipulse"), lay["C_pulse"], Vth=lay["Vth"])
    out["t_pulse_ahp"] = current_to_pulse_width(get("Ipulse_ahp"), lay["C_pulse_ahp"], Vth=lay["Vth"])
    out["t_ref"] = current_to_pulse_width(get("Iref"), lay["C_ref"], Vth=lay["Vth"])
    return out


def _has(params, k) -> bool:
    return (k in params) if isinstance(params, dict) else hasattr(params, k)


#: Default currents (A): those implied by the high-level defaults plus the fixed ones of Çakal et al. 2024: parameters and defaults.
CURRENT_DEFAULTS = {
    **high_level_to_currents(),
    "Ispkthr": 1e-7,
    "Idc": 5e-13,
    "If_nmda": 5e-13,
    "Iw_ahp": 5e-13,
}


# --------------------------------------------------------------------------------------------
# The neuron population
# --------------------------------------------------------------------------------------------

class DynapSE2State(NamedTuple):
    """State of a :class:`DynapSE2` population (currents in A, ``v_mem`` in V, ``t_ref`` in s)."""

    i_syn: jax.Array  # [N] A, combined DPI synaptic current ("isyn"; "ampa" in the reference)
    i_ahp: jax.Array  # [N] A, adaptation current
    i_mem: jax.Array  # [N] A, membrane current (after reset)
    v_mem: jax.Array  # [N] V, membrane voltage (NOT refreshed after reset: quirk 3)
    spikes: jax.Array  # [N] spike counts of the last step (drive the AHP of the next step)
    t_ref: jax.Array  # [N] s, remaining refractory time
    t: jax.Array  # [] int32 step index within the sample


class DynapSE2(Population):
    """A population of ``N`` DYNAP-SE2 neurons (DynapSim); equations in the module docstring.

    Every parameter is a per-neuron ``[N]`` float array (Amperes, Farads, Volts, κ dimensionless);
    ``I_scale`` is a scalar (A per unit weight). Build with :meth:`create` (currents) or
    :meth:`from_high_level` (time constants, gain ratios, pulse widths).
    """

    Idc: jax.Array
    If_nmda: jax.Array
    Igain_ahp: jax.Array
    Igain_mem: jax.Array
    Igain_syn: jax.Array
    Ipulse_ahp: jax.Array
    Ipulse: jax.Array
    Iref: jax.Array
    Ispkthr: jax.Array
    Itau_ahp: jax.Array
    Itau_mem: jax.Array
    Itau_syn: jax.Array
    Iw_ahp: jax.Array
    C_ahp: jax.Array
    C_syn: jax.Array
    C_pulse_ahp: jax.Array
    C_pulse: jax.Array
    C_ref: jax.Array
    C_mem: jax.Array
    Io: jax.Array
    kappa_n: jax.Array
    kappa_p: jax.Array
    Ut: jax.Array
    Vth: jax.Array
    I_scale: jax.Array  # [] A
    dt: float = eqx.field(static=True, default=1e-3)
    variant: str = eqx.field(static=True, default="reference")
    surrogate: str = eqx.field(static=True, default="reference")
    max_spikes: Optional[int] = eqx.field(static=True, default=None)

    def __check_init__(self):
        expect(self.variant in VARIANTS, "DynapSE2.variant", f"one of {VARIANTS}", self.variant)
        if self.variant == "circuit":
            raise NotImplementedError(
                "DynapSE2.variant='circuit': DynapSE2 implements only variant='reference'; the 4-dendrite "
                "AMPA/GABA/NMDA/SHUNT circuit model of Çakal et al. 2024: full 4-synapse model (lasting GABA inhibition, refreshed V_mem) is the "
                "separate class spikefleet.neurons.dynapse2_circuit.DynapSE2Circuit")
        check_population(self, "DynapSE2", PARAMETER_NAMES, _NON_NEGATIVE, size_from=PARAMETER_NAMES[0])

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(cls, n: int, *, dtype=jnp.float32, **overrides) -> "DynapSE2":
        """``n`` identical neurons with the defaults of Çakal et al. 2024: parameters and defaults, any parameter overridden.

        ``overrides``: any of :data:`PARAMETER_NAMES` (a scalar or an ``[n]`` array), ``I_scale``
        (scalar) and the static fields ``dt``, ``variant``, ``surrogate``, ``max_spikes``.
        """
        fields = population_fields("DynapSE2", n, dtype, PARAMETER_NAMES, {**LAYOUT_DEFAULTS, **CURRENT_DEFAULTS},
                                   overrides, ("dt", "variant", "surrogate", "max_spikes"), I_SCALE)
        return cls(**fields)

    @classmethod
    def from_high_level(cls, n: int, *, tau_mem=None, tau_syn=None, tau_ahp=None, gain_mem=None, gain_syn=None,
                        gain_ahp=None, t_pulse=None, t_pulse_ahp=None, t_ref=None, **overrides) -> "DynapSE2":
        """Neurons from time constants (s), gain ratios and pulse widths / refractory time (s).

        ``None`` keeps the default (:data:`HIGH_LEVEL_DEFAULTS`). Layout constants in
        ``overrides`` (``C_*``, ``kappa_*``, ``Ut``, ``Vth``) enter the conversion; the currents
        these high-level values determine may not also be given in ``overrides``.
        """
        high = dict(tau_mem=tau_mem, tau_syn=tau_syn, tau_ahp=tau_ahp, gain_mem=gain_mem, gain_syn=gain_syn,
                    gain_ahp=gain_ahp, t_pulse=t_pulse, t_pulse_ahp=t_pulse_ahp, t_ref=t_ref)
        layout = {k: overrides[k] for k in LAYOUT_DEFAULTS if k in overrides}
        return create_with_currents(cls, n, high_level_to_currents(layout=layout, **high), overrides)

    # ---------------------------------------------------------------- views
    @property
    def n_dendrites(self) -> int:
        """Dendrites per neuron: 1 (one combined synapse; ``DynapSE2Circuit`` has 4)."""
        return 1

    def parameters(self) -> dict:
        """The 24 per-neuron parameters by name (the reference's simulation parameters)."""
        return {name: getattr(self, name) for name in PARAMETER_NAMES}

    def high_level(self) -> dict:
        """Per-neuron τ_mem, τ_syn, τ_ahp (s), gain ratios, t_pulse, t_pulse_ahp, t_ref (s)."""
        return currents_to_high_level(self)

    # ---------------------------------------------------------------- dynamics
    def init_state(self) -> DynapSE2State:
        io = self.Io
        zeros = jnp.zeros_like(io)
        return DynapSE2State(i_syn=io, i_ahp=io, i_mem=io, v_mem=zeros, spikes=zeros, t_ref=zeros,
                             t=jnp.zeros((), jnp.int32))

    def _vector(self, name, x):
        x = jnp.asarray(x, self.Io.dtype)
        expect(x.shape in ((), (self.n,)), name, f"a scalar or an array of shape ({self.n},)", x.shape)
        return x

    def step(self, state: DynapSE2State, syn_input, current=None, key=None) -> tuple[DynapSE2State, jax.Array]:
        """Advance one step ``dt``.

        Args:
            state: the previous state.
            syn_input: ``[N]`` weighted, signed, dimensionless drive of this bin (input layer plus
                recurrence, ``S_{k−1} @ W_rec``); it becomes the current ``I_scale · syn_input``.
            current: optional ``[N]`` (or scalar) DC injection in Amperes, added to ``Idc``.
            key: unused (the model is deterministic); accepted for the common neuron interface.

        Returns:
            The new state and the spike counts ``[N]`` (floats, may exceed 1).
        """
        del key
        dt = self.dt
        x = self._vector("syn_input", syn_input)
        io = self.Io
        c = soma_constants(self)
        itau_syn, igain_syn = jnp.maximum(self.Itau_syn, io), jnp.maximum(self.Igain_syn, io)
        tau_syn = c.ut_k * self.C_syn / itau_syn

        # 1. DPI synapse
        i_w = self.I_scale * x
        i_syn_inf = jnp.maximum(igain_syn / itau_syn * i_w, io)
        i_syn = jnp.exp(-dt / tau_syn) * state.i_syn - jnp.expm1(-c.t_pulse / tau_syn) * i_syn_inf

        # 2. AHP, driven by the previous step's spike counts
        i_ahp_inf = c.igain_ahp / c.itau_ahp * self.Iw_ahp * state.spikes
        i_ahp = jnp.exp(-dt / c.tau_ahp) * state.i_ahp - jnp.expm1(-c.t_pulse_ahp / c.tau_ahp) * i_ahp_inf
        i_ahp = jnp.maximum(i_ahp, io)

        # 3. Membrane (forward Euler, code form), feedback from the previous step's V_mem
        i_leak = c.itau_mem + i_ahp
        i_dc = self.Idc if current is None else self.Idc + self._vector("current", current)
        i_in = i_syn - i_leak + i_dc
        i_in = jnp.where(state.t_ref > 0, 0.0, i_in)
        i_in = jnp.maximum(i_in, io)
        i_mem = code_membrane(self, c, state.i_mem, i_in, i_leak, i_ahp, state.v_mem)
        log_ratio = jnp.log(i_mem / io)
        v_mem = c.ut_k * log_ratio

        # 4. Spikes, reset (V_mem not refreshed), refractory time; ln(I_mem/Ispkthr) from the same log
        excess = log_ratio - jnp.log(self.Ispkthr / io)
        spikes = spike_count_from_log(i_mem, excess, self.Ispkthr, io, self.surrogate, self.max_spikes)
        i_mem = reset(i_mem, spikes, io, self.surrogate)
        t_left = refractory(spikes, c.t_ref, state.t_ref, dt)

        new = DynapSE2State(i_syn=i_syn, i_ahp=i_ahp, i_mem=i_mem, v_mem=v_mem, spikes=spikes, t_ref=t_left,
                            t=state.t + 1)
        return new, spikes


def evolve(neurons: DynapSE2, drive, *, current=None, w_rec=None, state: Optional[DynapSE2State] = None):
    """Run ``neurons`` over ``drive [T, N]`` with ``lax.scan`` (the reference layer's evolve).

    ``drive`` is the weighted input (``u @ W_in``); ``w_rec`` an optional ``[N, N]`` (pre, post)
    dimensionless recurrent matrix applied to the previous step's counts; ``current`` an optional
    ``[T, N]`` DC injection (A). Returns ``(final_state, record)`` with ``record`` the ``[T, N]``
    traces ``spikes, isyn, iahp, imem, vmem`` (state after each step, ``imem`` after reset).
    """
    drive = jnp.asarray(drive, neurons.Io.dtype)
    expect(drive.ndim == 2 and drive.shape[1] == neurons.n, "drive", f"an array of shape [T, {neurons.n}]",
           drive.shape)
    if w_rec is not None:
        expect(jnp.shape(w_rec) == (neurons.n, neurons.n), "w_rec", f"shape ({neurons.n}, {neurons.n})",
               jnp.shape(w_rec))
    if current is not None:
        current = jnp.asarray(current, neurons.Io.dtype)
        expect(current.shape == drive.shape, "current", f"shape {drive.shape}", current.shape)
    state = neurons.init_state() if state is None else state

    def body(s, xs):
        x, j = xs
        if w_rec is not None:
            x = x + s.spikes @ w_rec
        s, n = neurons.step(s, x, j)
        return s, {"spikes": n, "isyn": s.i_syn, "iahp": s.i_ahp, "imem": s.i_mem, "vmem": s.v_mem}

    return jax.lax.scan(body, state, (drive, current))
