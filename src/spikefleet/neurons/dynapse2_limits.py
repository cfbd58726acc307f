r"""Numerical limits of the DYNAP-SE2 (DynapSim) model: which time step the equations tolerate.

:func:`check_dynamics` is called by the :class:`~spikefleet.models.dynapse2.DynapSE2Network`
constructor (concrete parameters only; traced or vmapped chips are not checked, so the simulation
loop is untouched). Negative, zero or non-finite currents, capacitances and ``dt`` are already
rejected by :class:`~spikefleet.neurons.dynapse2.DynapSE2` itself; here the *combination* of the
parameters with ``dt`` is checked.

**Membrane: forward-Euler stability limit** (the only explicit integration of the model; the DPI
synapse and the AHP use exact exponential steps and are stable for every ``dt``). With the symbols
of :mod:`spikefleet.neurons.dynapse2` (``U = U_T/κ``, ``G = Igain_mem,c``, ``I_τ = Itau_mem,c``, the
AHP current at its floor ``Io``, so the leak ``I_leak = I_τ + Io`` and ``τ_m = U·C_mem/I_leak``),
the membrane equation is ``dI/dt = g(I)`` with

    g(I) = I/(τ_m (I + G)) · A  +  I·I_fb/(τ_m I_leak)  −  c·I²/(τ_m (I + G)),
    A = (G/I_τ)(I_in − I_leak),   c = 1 + Io/I_τ.

The positive-feedback term is the spike upstroke. The two decaying terms have slopes bounded by
``−∂/∂I[c I²/(τ_m(I+G))] ≤ c/τ_m`` (the bound is approached for I ≫ G) and, for the most negative
drive ``I_in = Io`` (``A ≥ −(G/I_τ) I_leak``), ``|A| G/(τ_m (I+G)²) ≤ I_leak/(I_τ τ_m)`` (approached for
I ≪ G). Both equal ``(I_τ + Io)/(I_τ τ_m)``, so the largest decay rate is

    λ_max = 2 (I_τ + Io)² / (I_τ · U · C_mem)  ≈  2/τ_mem,    τ_mem = U·C_mem/Itau_mem.

Forward Euler ``I ← I + dt·g(I)`` is stable for ``dt·λ_max < 2`` and free of overshoot for
``dt·λ_max ≤ 1``:

    dt_max = I_τ · U · C_mem / (I_τ + Io)²  = τ_mem · (I_τ/(I_τ + Io))²

(16.7 ms with the defaults: τ_mem = 20 ms, Io = 9 % of Itau_mem; the default dt is 1 ms).

At ``dt ≥ dt_max`` the step overshoots below zero and the floor ``⌈·⌉₊`` clamps the membrane to
``Io`` every step: the neuron can no longer integrate its input (measured: a decay from 0.2 nA
with τ_mem = 2 ms is resolved at ``dt = 0.97·dt_max`` and clamped to Io in the first step at
``1.07·dt_max``; ``tests/test_reliability.py``). That is an error (:class:`~spikefleet.errors.ConfigError`
naming the neuron, the limit and the fix). Between ``dt_max/2`` and ``dt_max`` the step overshoots
(the error exceeds ~20 % per step): a :class:`DynamicsWarning`. Strong adaptation (``I_ahp ≫ Io``)
raises ``λ`` further at run time; the limit here is the one of the resting neuron.

**Warnings** (results depend on ``dt``, the model's assumptions fail):

* ``t_pulse = V_th·C_pulse/Ipulse > dt`` or ``t_pulse_ahp > dt``: the synapse/AHP charge one pulse per
  bin of ``dt`` and assume the pulse fits in the bin;
* ``τ_syn`` or ``τ_ahp < dt``: the current decays within one step (stable, but the shape of the
  response is lost);
* ``Ispkthr ≤ Io``: the membrane never falls below the threshold, the neuron spikes every step;
* ``κ_n`` or ``κ_p`` outside (0, 1]: not a subthreshold slope factor.
"""

from __future__ import annotations

import warnings

import numpy as np

from spikefleet.errors import ConfigError

__all__ = ["DynamicsWarning", "check_dynamics", "membrane_dt_limit"]


class DynamicsWarning(UserWarning):
    """A DYNAP-SE2 parameter set that the simulator integrates inaccurately at its ``dt``."""


def _concrete(neurons, names) -> dict | None:
    out = {}
    for name in names:
        value = getattr(neurons, name, None)
        if value is None:
            return None
        try:
            out[name] = np.asarray(value, np.float64)
        except Exception:  # noqa: BLE001 - a tracer (inside jit/vmap): nothing to check
            return None
    return out


def membrane_dt_limit(neurons) -> np.ndarray | None:
    """Per-neuron forward-Euler limit ``dt_max`` (s) of the membrane (module docstring); None if traced."""
    p = _concrete(neurons, ("Itau_mem", "Io", "C_mem", "Ut", "kappa_n", "kappa_p"))
    if p is None:
        return None
    itau = np.maximum(p["Itau_mem"], p["Io"])
    u = p["Ut"] / (0.5 * (p["kappa_n"] + p["kappa_p"]))
    return itau * u * p["C_mem"] / (itau + p["Io"]) ** 2


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_dynamics(neurons, *, where: str = "DynapSE2") -> list[str]:
    """Check ``neurons`` (a :class:`~spikefleet.neurons.dynapse2.DynapSE2`-like population) at its ``dt``.

    Raises :class:`ConfigError` when ``dt`` exceeds the membrane's stability limit; warns
    (:class:`DynamicsWarning`) for the soft limits of the module docstring. Returns the warning
    texts. Does nothing for traced parameters.
    """
    dt = getattr(neurons, "dt", None)
    limit = membrane_dt_limit(neurons)
    if dt is None or limit is None:
        return []
    dt = float(dt)
    bad = dt >= limit
    if bad.any():
        j = _first(bad)
        itau = float(getattr(neurons, "Itau_mem")[j])
        raise ConfigError(
            f"{where}: dt = {dt:g} s exceeds the forward-Euler stability limit of the membrane of neuron {j} "
            f"(and {int(bad.sum()) - 1} more): expected dt < dt_max = Itau_mem·U·C_mem/(Itau_mem + Io)² = "
            f"{limit[j]:.4g} s (≈ tau_mem; Itau_mem = {itau:.4g} A); got dt/dt_max = {dt / limit[j]:.3g}, at which the "
            f"membrane is clamped to Io every step. Fix: dt <= dt_max/2 = {0.5 * limit[j]:.3g} s, or a smaller "
            "Itau_mem (a longer tau_mem)")
    messages = []
    soft = dt > 0.5 * limit
    if soft.any():
        j = _first(soft)
        messages.append(f"dt = {dt:g} s is above half the membrane's forward-Euler limit {limit[j]:.4g} s of neuron "
                        f"{j}: the Euler step overshoots (error > ~20 % per step); use dt <= {0.5 * limit[j]:.3g} s")
    p = _concrete(neurons, ("Itau_syn", "Itau_ahp", "C_syn", "C_ahp", "Io", "Ut", "kappa_n", "kappa_p", "Vth",
                            "C_pulse", "Ipulse", "C_pulse_ahp", "Ipulse_ahp", "Ispkthr"))
    if p is not None:
        u = p["Ut"] / (0.5 * (p["kappa_n"] + p["kappa_p"]))
        checks = (
            ("t_pulse = Vth·C_pulse/Ipulse", p["Vth"] * p["C_pulse"] / p["Ipulse"], "> dt",
             "the synapse charges one pulse per time bin; raise Ipulse or dt"),
            ("t_pulse_ahp = Vth·C_pulse_ahp/Ipulse_ahp", p["Vth"] * p["C_pulse_ahp"] / p["Ipulse_ahp"], "> dt",
             "the AHP charges one pulse per time bin; raise Ipulse_ahp or dt"),
            ("tau_syn = U·C_syn/Itau_syn", u * p["C_syn"] / np.maximum(p["Itau_syn"], p["Io"]), "< dt",
             "the synaptic current decays within one step; lower dt or Itau_syn"),
            ("tau_ahp = U·C_ahp/Itau_ahp", u * p["C_ahp"] / np.maximum(p["Itau_ahp"], p["Io"]), "< dt",
             "the adaptation current decays within one step; lower dt or Itau_ahp"),
        )
        for name, value, rule, fix in checks:
            hit = value > dt if rule == "> dt" else value < dt
            if hit.any():
                j = _first(hit)
                messages.append(f"{name} = {value[j]:.4g} s {rule} = {dt:g} s (neuron {j}): {fix}")
        if (p["Ispkthr"] <= p["Io"]).any():
            j = _first(p["Ispkthr"] <= p["Io"])
            messages.append(f"Ispkthr = {p['Ispkthr'][j]:.4g} A <= Io = {p['Io'][j]:.4g} A (neuron {j}): the neuron "
                            "spikes every step")
        for k in ("kappa_n", "kappa_p"):
            out = ~((p[k] > 0) & (p[k] <= 1))
            if out.any():
                j = _first(out)
                messages.append(f"{k} = {p[k][j]:.4g} (neuron {j}) is outside (0, 1]: not a subthreshold slope "
                                "factor")
    for m in messages:
        warnings.warn(f"{where}: {m}", DynamicsWarning, stacklevel=3)
    return messages
