r"""Network ADS (Büchel et al., Sci. Rep. 2021): the design and its construction.

A spiking layer that learns a teacher's dynamics; how it learns is :mod:`spikefleet.train.ads`.
Units: time in seconds, potentials and currents dimensionless, rates (readout traces) in Hz.
Orientation everywhere ``w[pre, post]``.

Architecture (the deployable design, :class:`ADSNetwork`)::

    c[t] --F̂·A--> c̃[t] --W^in--> N LIF neurons (Ω^s slow, Ω^f fast) --W^out--> x̃[t] --D̂--> y[t]

with ``F̂ = teacher.w_in`` [C, N̂], ``D̂ = teacher.w_out`` [N̂, O] and the ADS core a
:class:`~spikefleet.models.spiking.SpikingNetwork` (``input_target="current"``, unit-area synapses and
readout, Euler membrane, reset to ``V_reset``, at most one spike per neuron and step).

Weights (Büchel et al. 2021: weight construction), built by :func:`build_ads` from a raw decoder ``D ∈ ℝ^{N̂×N}``, ``D_{ji} ~ N(0,1)/N̂``::

    T_i   = ½ (ν λ_d + μ λ_d² + n_i²),   n_i = Σ_j |D_ji| ("l1", reference Büchel et al. 2021: reference-implementation quirks) or ‖D_i‖₂ ("l2")
    D̃     = a D / T        (column i divided by T_i),  a = V_th − V_rest
    W^in  = τ_mem D̃        [N̂, N]  -> core.w_in      (drive J = c̃ @ W^in)
    W^out = τ_mem D̃ᵀ       [N, N̂]  -> core.w_out     (x̃ = r @ W^out)
    Ω^f_ij = −κ (D_i·D_j)/T_i, Ω^f_ii = 0  (paper: from j to i)  -> core.w_fast = (Ω^f)ᵀ
    Ω^s   = 0                            (paper: from i to j)  -> core.w_rec  = Ω^s
    V[0]  ~ U(V_reset, V_th) per instance; every sample starts from it.

One step ``t`` of the core (Büchel et al. 2021: spiking neuron model actually simulated, as implemented by ``SpikingNetwork.step``; ``α_x = e^{−dt/τ_x}``)::

    I^s[t] = α_s I^s[t−1] + (o[t−1] @ Ω^s)/τ_s        I^f[t] = α_f I^f[t−1] + (o[t−1] @ W_fast)/τ_f
    I[t]   = I^s[t] + I^f[t] + I^k[t] + c̃[t] @ W^in
    V      ← V + (dt/τ_mem)(V_rest − V + I[t]);   o[t] = [V ≥ V_th];   V ← V_reset where o[t] = 1
    r[t]   = α_r r[t−1] + o[t]/τ_r  (Hz);         x̃[t] = r[t] @ W^out;   y[t] = x̃[t] @ D̂

(Büchel et al. 2021: spiking neuron model actually simulated stores the synaptic currents after adding ``o[t]``; the core stores them before, which
is the same sequence shifted by one index: recurrent spikes act with a one-step delay.)

Recurrent compensation (:meth:`ADSNetwork.recurrent_compensation`): the Network ADS robustness
protocol optionally scales Ω^s and Ω^f of a perturbed chip down by a factor per perturbation and
level (:func:`ads_recurrent_scale`, table :data:`ADS_RECURRENT_SCALE`); sweeps ask the design for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect
from spikefleet.models.base import Model
from spikefleet.models.composite import TeacherSized, check_composite, make_core, with_teacher_sizes
from spikefleet.models.config import FINITE, NON_NEGATIVE, POSITIVE
from spikefleet.models.rate import RateNetwork
from spikefleet.models.registry import register
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork

__all__ = [
    "ADSConfig", "ADSNetwork", "build_ads", "ads_thresholds", "ads_recurrent_scale", "ADS_RECURRENT_SCALE",
    "K_SCHEDULES", "ETA_SCHEDULES", "THRESHOLD_NORMS", "RULES",
]

#: feedback-gain schedules ``k`` of training (:func:`spikefleet.train.ads.k_values`)
K_SCHEDULES = ("constant", "step")
#: learning-rate schedules ``η`` of training (:func:`spikefleet.train.ads.eta_values`)
ETA_SCHEDULES = ("constant", "exp")
#: norms ``n_i`` of the decoder columns in the thresholds (:func:`ads_thresholds`)
THRESHOLD_NORMS = ("l1", "l2")
#: learning rules of :func:`spikefleet.train.ads.learn_trials`
RULES = ("online", "batched", "parallel")

#: Network ADS protocol (Büchel et al. 2021: general protocol): factor on Ω^f and Ω^s after a perturbation, by (sweep, level)
ADS_RECURRENT_SCALE = {
    "mismatch": {0.05: 0.9, 0.1: 0.8, 0.2: 0.5, 0.3: 0.2},
    "noise": {0.05: 0.8, 0.1: 0.6},
    "quant": {2: 0.7, 3: 0.7, 4: 0.7, 5: 0.8, 6: 1.0},
}


def ads_recurrent_scale(sweep: str, level: float) -> float:
    """The Büchel et al. 2021: general protocol down-scaling factor for a Network ADS design (1 where the table has no entry)."""
    return ADS_RECURRENT_SCALE.get(sweep, {}).get(round(float(level), 6), 1.0)


@dataclass(frozen=True)
class ADSConfig(TeacherSized):
    """Everything static about a Network ADS design and its training (defaults: XOR, Büchel et al. 2021: parameters, Büchel et al. 2021: temporal XOR).

    ``n_in``, ``n_hat``, ``n_out`` (teacher input channels C, teacher units N̂, outputs O) are
    ``None`` until :func:`build_ads` fills them in from the teacher.
    """

    n: int = 320
    kappa: float = 0.5
    amplitude: float = 200.0
    k0: float = 75.0
    k_schedule: str = "constant"
    eta: float = 1e-6
    eta_schedule: str = "constant"
    threshold_norm: str = "l1"
    fast: bool = True
    rule: str = "online"
    parallel: int = 1
    mu: float = 5e-4
    nu: float = 1e-4
    lambda_d: float = 20.0
    tau_mem: float = 0.05
    tau_s: float = 0.07
    tau_f: float = 0.001
    tau_r: float = 0.07
    v_th: float = 1.0
    v_rest: float = 0.5
    v_reset: float = 0.0
    dt: float = 1e-3
    epochs: int = 20
    trials_per_epoch: int = 500
    val_trials: int = 200
    n_in: Optional[int] = None
    n_hat: Optional[int] = None
    n_out: Optional[int] = None

    def __post_init__(self):
        name = type(self).__name__
        self.check_common(("n", "epochs", "trials_per_epoch", "val_trials", "parallel"),
                          (("amplitude", "v_th", "v_rest", "v_reset"), FINITE),
                          (("kappa", "k0", "eta", "mu", "nu"), NON_NEGATIVE),
                          (("lambda_d", "tau_mem", "tau_s", "tau_f", "tau_r", "dt"),
                           POSITIVE.but("a positive finite number (seconds or 1/s)")))
        expect(self.v_reset < self.v_rest < self.v_th, f"{name}.v_rest",
               f"V_reset < V_rest < V_th (V_reset={self.v_reset}, V_th={self.v_th})", self.v_rest)
        expect(self.k_schedule in K_SCHEDULES, f"{name}.k_schedule", f"one of {K_SCHEDULES}", self.k_schedule)
        expect(self.eta_schedule in ETA_SCHEDULES, f"{name}.eta_schedule", f"one of {ETA_SCHEDULES}",
               self.eta_schedule)
        expect(self.threshold_norm in THRESHOLD_NORMS, f"{name}.threshold_norm", f"one of {THRESHOLD_NORMS}",
               self.threshold_norm)
        expect(self.rule in RULES, f"{name}.rule", f"one of {RULES}", self.rule)
        expect(self.parallel == 1 or self.rule == "parallel", f"{name}.parallel",
               f"1 unless rule='parallel' (rule={self.rule!r})", self.parallel)
        expect(self.trials_per_epoch % self.parallel == 0, f"{name}.trials_per_epoch",
               f"a multiple of parallel = {self.parallel}", self.trials_per_epoch)
        expect(isinstance(self.fast, bool), f"{name}.fast", "True or False", self.fast)

    def spiking_config(self) -> SpikingConfig:
        """The :class:`SpikingConfig` of the ADS core (``N̂ → N → N̂``)."""
        return self.core_config(builder="build_ads", fast=self.fast, refractory=0.0)


class ADSNetwork(Model):
    """Teacher input projection + ADS core + teacher readout; runs with k = 0 (inference).

    ``step(state, x_t, *, key, current)`` follows the :class:`SpikingNetwork` protocol, so
    :func:`spikefleet.simulation.simulate` works unchanged; ``current`` is the error-feedback
    current ``I^k`` (training only). Traces: the core's (``spikes, v, r, i_syn``) plus ``x_tilde``.
    """

    f_hat: jax.Array  # [C, N̂]   teacher input weights F̂
    d_hat: jax.Array  # [N̂, O]   teacher readout D̂
    core: SpikingNetwork  # N̂ -> N LIF -> N̂
    amplitude: float = eqx.field(static=True)
    config: ADSConfig = eqx.field(static=True)

    def __check_init__(self):
        cfg = self.config
        check_composite(self, {"f_hat": (cfg.n_in, cfg.n_hat), "d_hat": (cfg.n_hat, cfg.n_out)})

    @classmethod
    def skeleton(cls, config: ADSConfig) -> "ADSNetwork":
        """Zero/placeholder parameters of the right shapes (for loading checkpoints)."""
        expect(isinstance(config, ADSConfig) and config.sized, "config", "an ADSConfig with sizes set", config)
        c, m, o = config.n_in, config.n_hat, config.n_out
        weights = _ads_weights(np.zeros((m, config.n)), config, thresholds=np.ones(config.n))
        return cls(f_hat=jnp.zeros((c, m), jnp.float32), d_hat=jnp.zeros((m, o), jnp.float32),
                   core=_make_core(config, weights, np.full(config.n, config.v_reset)),
                   amplitude=float(config.amplitude), config=config)

    @property
    def dt(self) -> float:
        return self.config.dt

    @property
    def w_slow(self) -> jax.Array:
        """The learned slow weights Ω^s [N, N] (pre, post)."""
        return self.core.w_rec

    def with_slow_weights(self, w: jax.Array) -> "ADSNetwork":
        return eqx.tree_at(lambda m: m.core.w_rec, self, w)

    def init_state(self):
        return self.core.init_state()

    def drive(self, x_t):
        """ADS input ``c̃ = A·F̂ᵀc`` (``[..., N̂]``)."""
        return self.amplitude * (x_t @ self.f_hat)

    def step(self, state, x_t, *, key=None, current=None):
        state, x_tilde, traces = self.core.step(state, self.drive(x_t), key=key, current=current)
        return state, x_tilde @ self.d_hat, {**traces, "x_tilde": x_tilde}

    def recurrent_compensation(self, sweep: str, level: float) -> float:
        """The Network ADS down-scaling factor of Ω^s and Ω^f (:func:`ads_recurrent_scale`)."""
        return ads_recurrent_scale(sweep, level)

    def to_spiking(self) -> SpikingNetwork:
        """The same inference network as one :class:`SpikingNetwork` ``C → N → O`` with folded
        weights ``w_in = A·F̂ W^in`` and ``w_out = W^out D̂`` (equal up to float rounding)."""
        core = self.core
        cfg = dataclasses.replace(core.config, n_in=self.config.n_in, n_out=self.config.n_out)
        return SpikingNetwork(w_in=self.amplitude * (self.f_hat @ core.w_in), w_rec=core.w_rec,
                              w_out=core.w_out @ self.d_hat, b_out=jnp.zeros((self.config.n_out,), jnp.float32),
                              tau_out=core.tau_out, neurons=core.neurons, w_fast=core.w_fast, config=cfg)


def ads_thresholds(d, config: ADSConfig):
    """Spike-coding thresholds ``T_i = ½(νλ_d + μλ_d² + n_i²)`` of raw decoder ``d`` [N̂, N] (Büchel et al. 2021: weight construction)."""
    d = jnp.asarray(d)
    norm_sq = jnp.sum(jnp.abs(d), axis=0) ** 2 if config.threshold_norm == "l1" else jnp.sum(d * d, axis=0)
    return 0.5 * (config.nu * config.lambda_d + config.mu * config.lambda_d ** 2 + norm_sq)


def _ads_weights(d, config: ADSConfig, thresholds=None) -> dict:
    d = jnp.asarray(d, jnp.float32)
    t = ads_thresholds(d, config) if thresholds is None else jnp.asarray(thresholds, jnp.float32)
    d_tilde = (config.v_th - config.v_rest) * d / t[None, :]
    w_in = config.tau_mem * d_tilde
    out = {"thresholds": t, "w_in": w_in, "w_out": w_in.T, "w_fast": None}
    if config.fast:
        gram = d.T @ d  # [N, N], symmetric
        # spec Ω^f_ij = −κ (D_i·D_j)/T_i (from j to i); core w_fast[pre j, post i] = Ω^f_ij
        w_fast = -config.kappa * gram / t[None, :]
        out["w_fast"] = w_fast * (1.0 - jnp.eye(d.shape[1], dtype=w_fast.dtype))
    return out


def _make_core(config: ADSConfig, weights: dict, v_init) -> SpikingNetwork:
    n = config.n
    taus = [config.tau_s, config.tau_f] if config.fast else [config.tau_s]
    tau_syn = jnp.asarray(np.repeat(np.asarray(taus, np.float32)[:, None], n, axis=1))
    return make_core(config, tau_syn=tau_syn, bias=0.0, v_init=v_init, w_in=weights["w_in"],
                     w_rec=jnp.zeros((n, n), jnp.float32), w_out=weights["w_out"], w_fast=weights["w_fast"])


def build_ads(teacher: RateNetwork, config: ADSConfig, key: jax.Array, *, decoder=None) -> ADSNetwork:
    """Build a fresh Network ADS design for ``teacher`` (Büchel et al. 2021: weight construction).

    ``key`` is split into ``(k_decoder, k_v_init)``: ``D = N(0,1)[N̂, N]/N̂`` from the first,
    ``V[0] ~ U(V_reset, V_th)`` from the second. ``decoder`` overrides the raw decoder D (tests).
    Ω^s starts at 0. The returned network's config has ``n_in, n_hat, n_out`` from the teacher.
    """
    config = with_teacher_sizes(teacher, config, ADSConfig)
    k_d, k_v = jax.random.split(key)
    m, n = config.n_hat, config.n
    if decoder is None:
        decoder = jax.random.normal(k_d, (m, n), jnp.float32) / m
    decoder = jnp.asarray(decoder, jnp.float32)
    expect(decoder.shape == (m, n), "decoder", f"shape {(m, n)}", decoder.shape)
    v_init = jax.random.uniform(k_v, (n,), jnp.float32, minval=config.v_reset, maxval=config.v_th)
    core = _make_core(config, _ads_weights(decoder, config), v_init)
    return ADSNetwork(f_hat=jnp.asarray(teacher.w_in, jnp.float32), d_hat=jnp.asarray(teacher.w_out, jnp.float32),
                      core=core, amplitude=float(config.amplitude), config=config)


register("ads", ADSNetwork, ADSConfig)
