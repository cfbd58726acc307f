r"""DYNAP-SE2 neurons with four dendrites (AMPA, GABA, NMDA, SHUNT): the "circuit" variant.

The historical 4-synapse DynapSim model (Çakal et al. 2024: full 4-synapse model, tag [H]) with the corrected
options of Çakal et al. 2024: reference-implementation defects and quirks row 7: lasting GABA inhibition on the leak and ``V_mem`` refreshed after the reset.
:class:`~spikefleet.neurons.dynapse2.DynapSE2` stays the reference-compatible model; the
conversions, defaults and the spike function are imported from there.

Units and conventions as in ``dynapse2``: currents in A, ``V_mem`` in V, ``T_ref`` and ``dt`` in s,
capacitances in F, float32, every parameter a per-neuron ``[N]`` array. The four dendrites have
their own named parameters ``Itau_d``, ``Igain_d``, ``C_d`` for ``d`` in (ampa, gaba, nmda, shunt)
(:data:`DENDRITE_PARAMETER_NAMES`; :meth:`DynapSE2Circuit.dendrites` stacks one kind to
``[N, 4]``); ``X_c = max(X, Io)``, ``⌈x⌉₊ = max(x, Io)``, ``κ = (κ_n + κ_p)/2``, ``U = U_T/κ``.
Defaults (Çakal et al. 2024: parameters and defaults): τ = 10 ms and gain ratio 100 on every dendrite, i.e. Itau/Igain = 86.88 pA /
8.688 nA (AMPA, SHUNT; 24.5 pF) and 88.65 pA / 8.865 nA (GABA, NMDA; 25 pF).

One step ``k``; input ``x_k = syn_input [N, 4]`` (dimensionless, ≥ 0, columns AMPA, GABA, NMDA,
SHUNT) and ``J_k = current`` (A). For each dendrite ``d`` (all element-wise)::

 1. DPI synapses, with the short-term-potentiation (STP) blend of Çakal et al. 2024: full 4-synapse model
        I_w       = I_scale · max(x_k,d, 0)                                       [A]
        τ_d       = U·C_d/Itau_d,c,   a_d = e^(−dt/τ_d),   c_d = 1 − e^(−t_pulse/τ_d)
        I_d,∞     = ⌈(Igain_d,c/Itau_d,c) · I_w⌉₊
        ΔI_rc     = c_d · I_d,∞                                  (the shipped exponential step)
        ΔI_stp    = I_d · (t_pulse/τ_d) · ((I_w/Igain_d,c + 1) − I_d/Igain_d,c)
        r         = ρ_syn · Igain_d,c/(I_d + Igain_d,c)                         (ρ_syn = 0.95)
        I_d      ← ⌈a_d · I_d + r·ΔI_stp + (1 − r)·ΔI_rc⌉₊
    r, ΔI_stp and ΔI_rc use the state of the previous step. ΔI_stp reads as one Euler step,
    over the pulse, of a logistic charge towards I_w + Igain_d [U]; it is ~I_d·t_pulse/τ_d ≈
    1e-3·I_d, so while I_d ≪ Igain_d (r ≈ 0.95) a spike delivers ≈ 1 − ρ_syn = 5 % of the shipped
    increment, more as I_d approaches Igain_d (the potentiation). The [H] model took weights as
    currents (Çakal et al. 2024: full 4-synapse model, no I_scale); here the drive keeps the ``w·I_scale`` convention of ``DynapSE2``.
    ``stp_syn=0`` gives the pure exponential step of the shipped model (plus the Io floor).
 2. AHP, driven by the previous step's spike count S, same blend with ρ_ahp = 0.75
        I_w,ahp = Iw_ahp·S,   I_ahp,∞ = (Igain_ahp,c/Itau_ahp,c)·I_w,ahp   (no floor, as Çakal et al. 2024: one time step: exact update order)
        I_ahp  ← ⌈a_ahp·I_ahp + r·ΔI_stp + (1 − r)·ΔI_rc⌉₊     (t_pulse_ahp, τ_ahp, Igain_ahp,c)
 3. Membrane input (I_mem, V_mem and T_ref of the previous step)
        I_nmda,g = I_nmda / (1 + If_nmda/I_mem)          soft voltage gate (If_nmda = 0: open)
        I_dc     = Idc + J_k
    a) ``membrane="code"`` (default; Çakal et al. 2024: one time step: exact update order with Çakal et al. 2024: full 4-synapse model's changes, exponential feedback, double leak;
       Çakal et al. 2024: full 4-synapse model changes I_leak only, so the last term keeps I_ahp/Itau_mem,c without I_gaba)
        I_leak   = Itau_mem,c + I_gaba + I_ahp                     GABA acts on the leak
        I_fb     = Io · exp(κ'·V_mem/U_T),   κ' = κ²/(κ + 1)
        I_in     = ⌈0 if T_ref > 0 else (I_nmda,g + I_ampa − I_shunt + I_dc − I_leak)⌉₊
        I_mem,∞  = (Igain_mem,c/Itau_mem,c) · (I_in − I_leak)
        f        = (I_fb/I_leak) · (I_mem + Igain_mem,c),       τ_m = U·C_mem/I_leak
        dI_mem   = I_mem/(τ_m·(I_mem + Igain_mem,c)) · [I_mem,∞ + f − I_mem·(1 + I_ahp/Itau_mem,c)]
    b) ``membrane="textbook"`` (Çakal et al. 2024: documented circuit equations versus the code: single leak, sigmoid feedback; GABA joins the AHP sink)
        I_sink   = I_ahp + I_gaba
        I_in     = ⌈0 if T_ref > 0 else (I_nmda,g + I_ampa − I_shunt + I_dc)⌉₊
        I_mem,∞  = (Igain_mem,c/Itau_mem,c) · (I_in − I_sink − Itau_mem,c)
        I_a      = Ia_gain / (1 + exp(−(I_mem − Ia_th)/Ia_norm))
        f        = (I_a/Itau_mem,c) · (I_mem + Igain_mem,c),    τ_m = U·C_mem/Itau_mem,c
        dI_mem   = I_mem/(τ_m·(I_mem + Igain_mem,c)) · [I_mem,∞ + f − I_mem·(1 + I_sink/Itau_mem,c)]
    then in both forms  I_mem ← ⌈I_mem + dt·dI_mem⌉₊
 4. Spikes, reset, refractoriness
        S  = max(0, ⌈ln(I_mem/Ispkthr)⌉)    (optional cap ``max_spikes``; surrogate as DynapSE2)
        b  = min(S, 1);  I_mem ← (1 − b)·I_mem + b·Io;  V_mem = U·ln(I_mem/Io)   (refreshed)
        T_ref ← t_ref if S > 0 else max(T_ref − dt, 0)

``t_pulse = V_th·C_pulse/Ipulse``, ``t_pulse_ahp = V_th·C_pulse_ahp/Ipulse_ahp``,
``t_ref = V_th·C_ref/Iref``, ``τ_ahp = U·C_ahp/Itau_ahp,c`` as in ``dynapse2``.

The sigmoid (``Ia_gain, Ia_th, Ia_norm``; used by the textbook form only) is printed in the
reference documentation as ``I_a,gain/(1 + exp(−(I_mem + I_a,th)/I_a,norm))``; here ``Ia_th`` is
the (positive) midpoint, i.e. the printed form with ``I_a,th = −Ia_th``. The spec gives no values;
the defaults (Ia_gain 20 pA, Ia_th 300 pA, Ia_norm 100 pA) are our choice [U]: weak feedback at
rest, runaway once I_a > Itau_mem (I_mem ≳ 250 pA, near where the exponential feedback exceeds the
leak), giving a DC f–I of 0/0/9/13/17/21/25 Hz at Idc = 10/20/50/100/200/500/1000 pA (code form:
0/1/8/13/18/27/35 Hz).

Differences from the reference variant (``DynapSE2``, Çakal et al. 2024: one time step: exact update order/Çakal et al. 2024: modelling caveats):

=======================  ===================================  ==========================================
aspect                   DynapSE2 (reference)                 DynapSE2Circuit
=======================  ===================================  ==========================================
synapses                 one DPI (AMPA constants)             four DPIs, own Itau/Igain/C each
input                    ``[N]`` signed, summed before DPI    ``[N, 4]`` ≥ 0 per dendrite
inhibition               instantaneous; net-negative bin      GABA: lasting current in the leak;
                         adds nothing (quirk 1)               SHUNT: subtracted from I_in
NMDA / If_nmda           carried, unused                      soft gate I_nmda/(1 + If_nmda/I_mem)
DPI / AHP increment      exponential step only                STP blend (ρ = 0.95 / 0.75)
I_syn floor              not clipped (decays below Io)        clipped at Io
V_mem after reset        not refreshed (quirk 3)              refreshed from the reset I_mem
membrane                 code form only                       code (default) or textbook (Çakal et al. 2024: documented circuit equations versus the code)
weights → current        ``w·I_scale``                        same ([H] took currents: ``I_scale=1``)
state                    ``i_syn``                            ``i_ampa, i_gaba, i_nmda, i_shunt``
parameters               24                                   36 (:data:`PARAMETER_NAMES`)
=======================  ===================================  ==========================================

Unchanged: spike counts > 1 with one reset (quirk 4), the every-step charge floor (quirk 6),
refractory blocking of ``I_in``, the surrogates ``"reference"``/``"scaled"`` and their reset
gradients (see ``dynapse2``). The code form keeps the double leak of quirk 2 (Çakal et al. 2024: full 4-synapse model: "the rest is
identical to Çakal et al. 2024: one time step: exact update order"); ``membrane="textbook"`` is the corrected option of Çakal et al. 2024: reference-implementation defects and quirks rows 7–8.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import expect
from spikefleet.neurons.dynapse2 import (CURRENT_DEFAULTS, DENDRITE_CAPACITANCE, HIGH_LEVEL_DEFAULTS, I_SCALE,
                                         LAYOUT_DEFAULTS, current_to_gain, current_to_tau, gain_to_current,
                                         high_level_to_currents, tau_to_current)
from spikefleet.neurons.dynapse2_soma import (Population, check_population, code_membrane, create_with_currents,
                                              dpi_spike_count, membrane_step, population_fields, refractory, reset,
                                              soma_constants)

__all__ = [
    "DynapSE2Circuit", "DynapSE2CircuitState", "evolve_circuit", "signed_to_dendrites",
    "DENDRITES", "MEMBRANE_FORMS", "PARAMETER_NAMES", "SOMA_PARAMETER_NAMES", "DENDRITE_PARAMETER_NAMES",
    "FEEDBACK_PARAMETER_NAMES", "CIRCUIT_DEFAULTS", "CIRCUIT_HIGH_LEVEL_DEFAULTS", "STP_RATIO_SYN", "STP_RATIO_AHP",
]

#: Dendrite order of the last axis of ``syn_input``.
DENDRITES = ("ampa", "gaba", "nmda", "shunt")
#: membrane equations: the code form (default) or the textbook form (module docstring)
MEMBRANE_FORMS = ("code", "textbook")
STP_RATIO_SYN = 0.95  # ρ of the synaptic STP blend (Çakal et al. 2024: full 4-synapse model)
STP_RATIO_AHP = 0.75  # ρ of the AHP blend

#: the 21 per-neuron parameters shared with the single-synapse model (soma, AHP, pulses, layout)
SOMA_PARAMETER_NAMES = (
    "Idc", "If_nmda", "Igain_ahp", "Igain_mem", "Ipulse_ahp", "Ipulse", "Iref", "Ispkthr", "Itau_ahp", "Itau_mem",
    "Iw_ahp", "C_ahp", "C_pulse_ahp", "C_pulse", "C_ref", "C_mem", "Io", "kappa_n", "kappa_p", "Ut", "Vth",
)
DENDRITE_PARAMETER_NAMES = tuple(f"{kind}_{d}" for kind in ("Itau", "Igain", "C") for d in DENDRITES)
FEEDBACK_PARAMETER_NAMES = ("Ia_gain", "Ia_th", "Ia_norm")  # sigmoid of the textbook membrane
PARAMETER_NAMES = SOMA_PARAMETER_NAMES + DENDRITE_PARAMETER_NAMES + FEEDBACK_PARAMETER_NAMES
_NON_NEGATIVE = ("Idc", "If_nmda", "Iw_ahp")

#: High-level defaults (s, gain ratios): the soma/AHP/pulse values of ``dynapse2`` plus 10 ms / 100 per dendrite.
CIRCUIT_HIGH_LEVEL_DEFAULTS = {
    **{k: v for k, v in HIGH_LEVEL_DEFAULTS.items() if k not in ("tau_syn", "gain_syn")},
    **{f"tau_{d}": HIGH_LEVEL_DEFAULTS["tau_syn"] for d in DENDRITES},
    **{f"gain_{d}": HIGH_LEVEL_DEFAULTS["gain_syn"] for d in DENDRITES},
}


def _high_level_to_currents(layout: Optional[dict] = None, **high) -> dict:
    """Currents implied by :data:`CIRCUIT_HIGH_LEVEL_DEFAULTS`-named values (``None`` = default)."""
    unknown = set(high) - set(CIRCUIT_HIGH_LEVEL_DEFAULTS)
    expect(not unknown, "high-level parameter", f"names in {sorted(CIRCUIT_HIGH_LEVEL_DEFAULTS)}", sorted(unknown))
    lay = {**LAYOUT_DEFAULTS, **{f"C_{d}": c for d, c in DENDRITE_CAPACITANCE.items()}, **(layout or {})}
    hl = {k: (v if high.get(k) is None else high[k]) for k, v in CIRCUIT_HIGH_LEVEL_DEFAULTS.items()}
    soma = high_level_to_currents(layout={k: lay[k] for k in LAYOUT_DEFAULTS},
                                  **{k: hl[k] for k in HIGH_LEVEL_DEFAULTS if k in hl})
    out = {k: v for k, v in soma.items() if not k.endswith("_syn")}
    phys = {k: lay[k] for k in ("Ut", "kappa_n", "kappa_p")}
    for d in DENDRITES:
        out[f"Itau_{d}"] = tau_to_current(hl[f"tau_{d}"], lay[f"C_{d}"], **phys)
        out[f"Igain_{d}"] = gain_to_current(hl[f"gain_{d}"], out[f"Itau_{d}"])
    return out


#: Defaults of all 36 parameters (A, F, V, dimensionless).
CIRCUIT_DEFAULTS = {
    **{k: v for k, v in LAYOUT_DEFAULTS.items() if k != "C_syn"},
    **{f"C_{d}": c for d, c in DENDRITE_CAPACITANCE.items()},
    **{k: CURRENT_DEFAULTS[k] for k in ("Ispkthr", "Idc", "If_nmda", "Iw_ahp")},
    **_high_level_to_currents(),
    "Ia_gain": 20e-12, "Ia_th": 300e-12, "Ia_norm": 100e-12,
}


def signed_to_dendrites(drive):
    """Split signed drive ``[..., N]`` into ``[..., N, 4]``: positive → AMPA, negative magnitude → GABA."""
    drive = jnp.asarray(drive)
    zeros = jnp.zeros_like(drive)
    return jnp.stack([jnp.maximum(drive, 0), jnp.maximum(-drive, 0), zeros, zeros], axis=-1)


def _dpi_blend(i, i_w, i_inf, igain, tau, t_pulse, decay, ratio, io):
    """Decay plus the STP-blended charge of one pulse per bin (module docstring, step 1)."""
    d_rc = -jnp.expm1(-t_pulse / tau) * i_inf
    if ratio == 0.0:
        return jnp.maximum(decay * i + d_rc, io)
    d_stp = i * (t_pulse / tau) * ((i_w / igain + 1.0) - i / igain)
    r = ratio * igain / (i + igain)
    return jnp.maximum(decay * i + r * d_stp + (1.0 - r) * d_rc, io)


class DynapSE2CircuitState(NamedTuple):
    """State of a :class:`DynapSE2Circuit` population: dendrite, AHP and membrane currents, ``v_mem``, last counts, refractory time."""

    i_ampa: jax.Array  # [N] A
    i_gaba: jax.Array  # [N] A
    i_nmda: jax.Array  # [N] A (before the gate)
    i_shunt: jax.Array  # [N] A
    i_ahp: jax.Array  # [N] A
    i_mem: jax.Array  # [N] A, after reset
    v_mem: jax.Array  # [N] V, refreshed after reset
    spikes: jax.Array  # [N] counts of the last step
    t_ref: jax.Array  # [N] s, remaining refractory time
    t: jax.Array  # [] int32 step index

    @property
    def i_syn(self) -> jax.Array:
        """The four dendrite currents stacked ``[N, 4]`` (AMPA, GABA, NMDA, SHUNT)."""
        return jnp.stack([self.i_ampa, self.i_gaba, self.i_nmda, self.i_shunt], axis=-1)


class DynapSE2Circuit(Population):
    """``N`` DYNAP-SE2 neurons with four dendrites (equations in the module docstring).

    Every entry of :data:`PARAMETER_NAMES` is a per-neuron ``[N]`` array; ``I_scale`` a scalar (A
    per unit weight). Static: ``dt`` (s), ``surrogate`` (``"reference"``/``"scaled"``),
    ``max_spikes``, ``membrane`` (``"code"``/``"textbook"``), ``stp_syn``/``stp_ahp`` (blend ratios
    ρ in [0, 1); 0 = pure exponential step). Build with :meth:`create` or :meth:`from_high_level`.
    """

    Idc: jax.Array
    If_nmda: jax.Array
    Igain_ahp: jax.Array
    Igain_mem: jax.Array
    Ipulse_ahp: jax.Array
    Ipulse: jax.Array
    Iref: jax.Array
    Ispkthr: jax.Array
    Itau_ahp: jax.Array
    Itau_mem: jax.Array
    Iw_ahp: jax.Array
    C_ahp: jax.Array
    C_pulse_ahp: jax.Array
    C_pulse: jax.Array
    C_ref: jax.Array
    C_mem: jax.Array
    Io: jax.Array
    kappa_n: jax.Array
    kappa_p: jax.Array
    Ut: jax.Array
    Vth: jax.Array
    Itau_ampa: jax.Array
    Itau_gaba: jax.Array
    Itau_nmda: jax.Array
    Itau_shunt: jax.Array
    Igain_ampa: jax.Array
    Igain_gaba: jax.Array
    Igain_nmda: jax.Array
    Igain_shunt: jax.Array
    C_ampa: jax.Array
    C_gaba: jax.Array
    C_nmda: jax.Array
    C_shunt: jax.Array
    Ia_gain: jax.Array
    Ia_th: jax.Array
    Ia_norm: jax.Array
    I_scale: jax.Array  # [] A
    dt: float = eqx.field(static=True, default=1e-3)
    surrogate: str = eqx.field(static=True, default="reference")
    max_spikes: Optional[int] = eqx.field(static=True, default=None)
    membrane: str = eqx.field(static=True, default="code")
    stp_syn: float = eqx.field(static=True, default=STP_RATIO_SYN)
    stp_ahp: float = eqx.field(static=True, default=STP_RATIO_AHP)

    def __check_init__(self):
        cls = "DynapSE2Circuit"
        check_population(self, cls, PARAMETER_NAMES, _NON_NEGATIVE, size_from="Io")
        expect(self.membrane in MEMBRANE_FORMS, f"{cls}.membrane", f"one of {MEMBRANE_FORMS}", self.membrane)
        for name in ("stp_syn", "stp_ahp"):
            v = getattr(self, name)
            expect(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v < 1.0,
                   f"{cls}.{name}", "a blend ratio in [0, 1)", v)

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(cls, n: int, *, dtype=jnp.float32, **overrides) -> "DynapSE2Circuit":
        """``n`` identical neurons with :data:`CIRCUIT_DEFAULTS`, any parameter overridden.

        ``overrides``: any of :data:`PARAMETER_NAMES` (scalar or ``[n]``), ``I_scale`` (scalar) and
        the static fields ``dt, surrogate, max_spikes, membrane, stp_syn, stp_ahp``.
        """
        fields = population_fields("DynapSE2Circuit", n, dtype, PARAMETER_NAMES, CIRCUIT_DEFAULTS, overrides,
                                   ("dt", "surrogate", "max_spikes", "membrane", "stp_syn", "stp_ahp"), I_SCALE)
        return cls(**fields)

    @classmethod
    def from_high_level(cls, n: int, **kwargs) -> "DynapSE2Circuit":
        """Neurons from time constants (s), gain ratios and pulse widths (s).

        High-level names: :data:`CIRCUIT_HIGH_LEVEL_DEFAULTS` (``tau_mem, tau_ahp, tau_ampa, ...,
        gain_shunt, t_pulse, t_pulse_ahp, t_ref``; ``None`` keeps the default). Other keywords go to
        :meth:`create`; layout constants among them (``C_*``, ``kappa_*``, ``Ut``, ``Vth``) enter the
        conversion, and a current the high-level values determine may not be given as well.
        """
        high = {k: kwargs.pop(k) for k in list(kwargs) if k in CIRCUIT_HIGH_LEVEL_DEFAULTS}
        layout_names = set(LAYOUT_DEFAULTS) | {f"C_{d}" for d in DENDRITES}
        currents = _high_level_to_currents(layout={k: kwargs[k] for k in layout_names if k in kwargs}, **high)
        return create_with_currents(cls, n, currents, kwargs)

    # ---------------------------------------------------------------- views
    @property
    def n_dendrites(self) -> int:
        """Dendrites per neuron: 4 (AMPA, GABA, NMDA, SHUNT), the last axis of ``syn_input``."""
        return 4

    def dendrites(self, kind: str) -> jax.Array:
        """``[N, 4]`` stack of ``Itau``, ``Igain`` or ``C`` over (AMPA, GABA, NMDA, SHUNT)."""
        expect(kind in ("Itau", "Igain", "C"), "kind", "'Itau', 'Igain' or 'C'", kind)
        return jnp.stack([getattr(self, f"{kind}_{d}") for d in DENDRITES], axis=-1)

    def parameters(self) -> dict:
        """The 36 per-neuron parameters by name."""
        return {name: getattr(self, name) for name in PARAMETER_NAMES}

    def high_level(self) -> dict:
        """Per-neuron τ (s) and gain ratios of mem, ahp and each dendrite, and t_pulse, t_pulse_ahp, t_ref (s)."""
        phys = dict(Ut=self.Ut, kappa_n=self.kappa_n, kappa_p=self.kappa_p)
        out = {}
        for part in ("mem", "ahp") + DENDRITES:
            itau = getattr(self, f"Itau_{part}")
            out[f"tau_{part}"] = current_to_tau(itau, getattr(self, f"C_{part}"), **phys)
            out[f"gain_{part}"] = current_to_gain(getattr(self, f"Igain_{part}"), itau)
        out["t_pulse"] = self.Vth * self.C_pulse / self.Ipulse
        out["t_pulse_ahp"] = self.Vth * self.C_pulse_ahp / self.Ipulse_ahp
        out["t_ref"] = self.Vth * self.C_ref / self.Iref
        return out

    # ---------------------------------------------------------------- dynamics
    def init_state(self) -> DynapSE2CircuitState:
        io = self.Io
        zeros = jnp.zeros_like(io)
        return DynapSE2CircuitState(i_ampa=io, i_gaba=io, i_nmda=io, i_shunt=io, i_ahp=io, i_mem=io, v_mem=zeros,
                                    spikes=zeros, t_ref=zeros, t=jnp.zeros((), jnp.int32))

    def step(self, state: DynapSE2CircuitState, syn_input, current=None,
             key=None) -> tuple[DynapSE2CircuitState, jax.Array]:
        """Advance one step ``dt``.

        Args:
            state: the previous state.
            syn_input: ``[N, 4]`` non-negative dimensionless drive per dendrite (AMPA, GABA, NMDA,
                SHUNT), already weighted (input layer plus recurrence); it becomes the current
                ``I_scale · syn_input``. Negative entries act as 0 (split signed drive with
                :func:`signed_to_dendrites`).
            current: optional ``[N]`` (or scalar) DC injection in Amperes, added to ``Idc``.
            key: unused (deterministic model).

        Returns:
            The new state and the spike counts ``[N]`` (floats, may exceed 1).
        """
        del key
        dt, io, n = self.dt, self.Io, self.n
        x = jnp.asarray(syn_input, io.dtype)
        expect(x.shape == (n, 4), "syn_input", f"an array of shape ({n}, 4) (neurons x dendrites AMPA, GABA, "
               "NMDA, SHUNT)", x.shape)
        i_dc = self.Idc
        if current is not None:
            j = jnp.asarray(current, io.dtype)
            expect(j.shape in ((), (n,)), "current", f"a scalar or an array of shape ({n},)", j.shape)
            i_dc = i_dc + j
        c = soma_constants(self)
        io4 = io[:, None]
        itau_syn = jnp.maximum(self.dendrites("Itau"), io4)
        igain_syn = jnp.maximum(self.dendrites("Igain"), io4)
        tau_syn = c.ut_k[:, None] * self.dendrites("C") / itau_syn

        # 1. four DPI synapses with the STP blend
        i_w = self.I_scale * jnp.maximum(x, 0.0)
        i_inf = jnp.maximum(igain_syn / itau_syn * i_w, io4)
        i_syn = _dpi_blend(state.i_syn, i_w, i_inf, igain_syn, tau_syn, c.t_pulse[:, None],
                           jnp.exp(-dt / tau_syn), self.stp_syn, io4)
        i_ampa, i_gaba, i_nmda, i_shunt = (i_syn[:, k] for k in range(4))

        # 2. AHP, driven by the previous step's counts
        i_w_ahp = self.Iw_ahp * state.spikes
        i_ahp = _dpi_blend(state.i_ahp, i_w_ahp, c.igain_ahp / c.itau_ahp * i_w_ahp, c.igain_ahp, c.tau_ahp,
                           c.t_pulse_ahp, jnp.exp(-dt / c.tau_ahp), self.stp_ahp, io)

        # 3. membrane (state of the previous step: I_mem, V_mem, T_ref)
        i_mem = state.i_mem
        i_nmda_gated = i_nmda / (1.0 + self.If_nmda / i_mem)
        drive = i_nmda_gated + i_ampa - i_shunt + i_dc
        if self.membrane == "code":
            i_leak = c.itau_mem + i_gaba + i_ahp
            i_in = jnp.maximum(jnp.where(state.t_ref > 0, 0.0, drive - i_leak), io)
            i_mem = code_membrane(self, c, i_mem, i_in, i_leak, i_ahp, state.v_mem)
        else:  # textbook
            sink = i_ahp + i_gaba
            i_in = jnp.maximum(jnp.where(state.t_ref > 0, 0.0, drive), io)
            i_mem_inf = c.igain_mem / c.itau_mem * (i_in - sink - c.itau_mem)
            i_a = self.Ia_gain * jax.nn.sigmoid((i_mem - self.Ia_th) / self.Ia_norm)
            f_fb = i_a / c.itau_mem * (i_mem + c.igain_mem)
            tau_m = c.ut_k * self.C_mem / c.itau_mem
            i_mem = membrane_step(self, c, i_mem, i_mem_inf, f_fb, tau_m, sink)

        # 4. spikes, reset, refreshed V_mem, refractory time
        spikes = dpi_spike_count(i_mem, self.Ispkthr, io, self.surrogate, self.max_spikes)
        i_mem = reset(i_mem, spikes, io, self.surrogate)
        v_mem = c.ut_k * jnp.log(i_mem / io)
        t_left = refractory(spikes, c.t_ref, state.t_ref, dt)

        new = DynapSE2CircuitState(i_ampa=i_ampa, i_gaba=i_gaba, i_nmda=i_nmda, i_shunt=i_shunt, i_ahp=i_ahp,
                                   i_mem=i_mem, v_mem=v_mem, spikes=spikes, t_ref=t_left, t=state.t + 1)
        return new, spikes


def evolve_circuit(neurons: DynapSE2Circuit, drive, *, current=None, w_rec=None,
                   state: Optional[DynapSE2CircuitState] = None):
    """Run ``neurons`` over ``drive [T, N, 4]`` with ``lax.scan``.

    ``w_rec`` is an optional ``[N, N, 4]`` (pre, post, dendrite) non-negative dimensionless
    recurrent tensor applied to the previous step's counts; ``current`` an optional ``[T, N]`` DC
    injection (A). Returns ``(final_state, record)``, ``record`` holding the ``[T, N]`` traces
    ``spikes, iampa, igaba, inmda, ishunt, iahp, imem, vmem`` (state after each step).
    """
    n = neurons.n
    drive = jnp.asarray(drive, neurons.Io.dtype)
    expect(drive.ndim == 3 and drive.shape[1:] == (n, 4), "drive", f"an array of shape [T, {n}, 4]", drive.shape)
    if w_rec is not None:
        expect(jnp.shape(w_rec) == (n, n, 4), "w_rec", f"shape ({n}, {n}, 4)", jnp.shape(w_rec))
    if current is not None:
        current = jnp.asarray(current, neurons.Io.dtype)
        expect(current.shape == drive.shape[:2], "current", f"shape {drive.shape[:2]}", current.shape)
    state = neurons.init_state() if state is None else state

    def body(s, xs):
        x, j = xs
        if w_rec is not None:
            x = x + jnp.einsum("i,ijd->jd", s.spikes, w_rec)
        s, count = neurons.step(s, x, j)
        return s, {"spikes": count, "iampa": s.i_ampa, "igaba": s.i_gaba, "inmda": s.i_nmda, "ishunt": s.i_shunt,
                   "iahp": s.i_ahp, "imem": s.i_mem, "vmem": s.v_mem}

    return jax.lax.scan(body, state, (drive, current))
