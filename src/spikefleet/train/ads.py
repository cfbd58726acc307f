r"""Network ADS (Büchel et al., Sci. Rep. 2021): a spiking layer that learns a teacher's dynamics.

Spec: ``spec/network-ads.md`` §3–§9, §17. Units: time in seconds, potentials and currents
dimensionless, rates (readout traces) in Hz. Orientation everywhere ``w[pre, post]``.

Architecture (the deployable design, :class:`ADSNetwork`)::

    c[t] --F̂·A--> c̃[t] --W^in--> N LIF neurons (Ω^s slow, Ω^f fast) --W^out--> x̃[t] --D̂--> y[t]

with ``F̂ = teacher.w_in`` [C, N̂], ``D̂ = teacher.w_out`` [N̂, O] and the ADS core a
:class:`~spikefleet.models.spiking.SpikingNetwork` (``input_target="current"``, unit-area synapses and
readout, Euler membrane, reset to ``V_reset``, at most one spike per neuron and step).

Weights (§6), built by :func:`build_ads` from a raw decoder ``D ∈ ℝ^{N̂×N}``, ``D_{ji} ~ N(0,1)/N̂``::

    T_i   = ½ (ν λ_d + μ λ_d² + n_i²),   n_i = Σ_j |D_ji| ("l1", reference §17.2) or ‖D_i‖₂ ("l2")
    D̃     = a D / T        (column i divided by T_i),  a = V_th − V_rest
    W^in  = τ_mem D̃        [N̂, N]  -> core.w_in      (drive J = c̃ @ W^in)
    W^out = τ_mem D̃ᵀ       [N, N̂]  -> core.w_out     (x̃ = r @ W^out)
    Ω^f_ij = −κ (D_i·D_j)/T_i, Ω^f_ii = 0  (spec: from j to i)  -> core.w_fast = (Ω^f)ᵀ
    Ω^s   = 0                            (spec: from i to j)  -> core.w_rec  = Ω^s
    V[0]  ~ U(V_reset, V_th) per instance; every sample starts from it.

One step ``t`` of the core (§5, as implemented by ``SpikingNetwork.step``; ``α_x = e^{−dt/τ_x}``)::

    I^s[t] = α_s I^s[t−1] + (o[t−1] @ Ω^s)/τ_s        I^f[t] = α_f I^f[t−1] + (o[t−1] @ W_fast)/τ_f
    I[t]   = I^s[t] + I^f[t] + I^k[t] + c̃[t] @ W^in
    V      ← V + (dt/τ_mem)(V_rest − V + I[t]);   o[t] = [V ≥ V_th];   V ← V_reset where o[t] = 1
    r[t]   = α_r r[t−1] + o[t]/τ_r  (Hz);         x̃[t] = r[t] @ W^out;   y[t] = x̃[t] @ D̂

(Spec §5 stores the synaptic currents after adding ``o[t]``; the core stores them before, which
is the same sequence shifted by one index: recurrent spikes act with a one-step delay.)

Learning (§7), online, one sample at a time, from the initial state, with ``I^k[0] = 0``::

    e[t]     = x̂[t] − x̃[t]                      x̂[t] = tanh(x_teacher[t])   (§3.1, §17.1)
    ε[t]     = e[t] @ W^in                        ([N]: ε_j = Σ_m W^in_mj e_m)
    I^k[t+1] = k ε[t]                             (one-step delay, unfiltered)
    Ω^s_ij  += η r_i[t] ε_j[t]  (i ≠ j)           (r[t] includes o[t]; applied every step)

Within step t the slow synapses receive o[t] with Ω^s *before* step t's update (§5 step 4
precedes §7), so in the core's bookkeeping o[t−1] is delivered at step t with the updates of
steps ≤ t−2. The implementation (:func:`_online_run`) is exact but avoids an N×N write per
step: it folds the pending rank-K update into Ω^s every K = 50 steps and delivers the pending
part of the slow drive through a separate unit-area τ_s filter into the ``current`` argument
(linearity of the synapse). Training runs noise-free.

Batched variant (§7, public-Rockpool rule): simulate the sample with feedback and without
learning, ``ΔΩ = Σ_t r[t] ε[t]ᵀ``, zero its diagonal, scale so that ``mean |ΔΩ| = 1`` (mean over
all N² entries, the zero diagonal included), multiply by ``η`` and add to Ω^s.

Parallel variant (``rule="parallel"``, ``ADSConfig.parallel = P``; not in the paper): ``P``
samples run side by side from the initial state with one shared Ω^s, which is held fixed within
blocks of ``K = 50`` steps and then receives the sum of the online updates of all samples and
steps of the block, ``Ω^s ← Ω^s + η mask∘Σ_b Σ_t r_b[t] ε_b[t]ᵀ``. ``k`` and ``η`` of a group
are those of its first sample. One simulation of width ``P`` costs about as much as one sample
on vector hardware, so a training budget of thousands of 5 s samples (the paper's Hey Snips
schedule) becomes affordable (:mod:`spikefleet.train.wakephrase`).

Schedules (§8): ``k`` constant (XOR, k = 75) or the §8.2 step schedule (``Δk = k0/8``,
``n_b = ⌊(k0 − Δk)/Δk⌋ + 1``, ``L = ⌊n_iter/n_b⌋``, ``k_i = max(k0 − Δk ⌊i/L⌋, Δk)``); ``η``
constant or the tutorial decay ``η_i = η0 e^{−i/b} + 1e−7``, ``b = (n_iter/2)/ln 100``.

Reference quirks reproduced by the default configuration (§17): 1 (target tanh(x), input A·F̂ᵀc
without teacher bias and 1/τ), 2 (``threshold_norm="l1"``), 3 (κ = 0.5 for XOR, zeroed diagonal,
τ_f = dt so fast currents act with a one-step delay), 4 (basis ψ(r) = r), 5 (one projection
W^in as encoder and feedback projector, fixed decoder W^out = (W^in)ᵀ), 6 (the JAX variant:
online per-step updates, any number of neurons may spike in a step (at most one spike per
neuron), no precise spike timing; the batched normalised rule is ``rule="batched"``), 7 (constant
k = 75 for XOR; the step schedule is floored at Δk and never reaches 0; inference uses k = 0).
Not reproduced here: adaptation (β = 0 in all reported results) and the unused fast-weight
plasticity.

Seeds (:func:`train_ads`): ADS init key ``PRNGKey(seed_stream(seed, 5))``; training trial ``i``
(0-based over all epochs) is ``task.generate(1, seed_stream(seed, 1, i))``; validation trials
``seed_stream(seed, 2)``; test trials (not used here) stream 3, as in :mod:`.recipes`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect
from spikefleet.errors import is_finite_number as _is_num
from spikefleet.errors import is_positive_int as _is_pos_int
from spikefleet.models.spiking import RateNetwork, SpikingConfig, SpikingNetwork
from spikefleet.neurons.lif import LIF
from spikefleet.simulate import simulate_batch
from spikefleet.seeds import ADS_INIT as ADS_INIT_STREAM
from spikefleet.seeds import TRAIN as TRAIN_STREAM
from spikefleet.seeds import VAL as VAL_STREAM
from spikefleet.seeds import seed_stream
from spikefleet.train.loop import TrainingDiverged

__all__ = [
    "ADSConfig", "ADSNetwork", "build_ads", "ads_thresholds", "k_values", "eta_values",
    "teacher_dynamics", "learn_sample", "learn_batch_update", "learn_trials", "evaluate_ads",
    "reconstruction_error", "train_ads", "training_inputs",
]

K_SCHEDULES = ("constant", "step")
ETA_SCHEDULES = ("constant", "exp")
THRESHOLD_NORMS = ("l1", "l2")
RULES = ("online", "batched", "parallel")
ETA_FLOOR = 1e-7  # additive floor of the exponential η schedule (tutorial)
LOW_RANK_CHUNK = 50  # steps between folds of the pending low-rank Ω^s update (speed only)


# ------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ADSConfig:
    """Everything static about a Network ADS design and its training (defaults: XOR, §5.1, §8.1).

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
        for f in ("n", "epochs", "trials_per_epoch", "val_trials", "parallel"):
            expect(_is_pos_int(getattr(self, f)), f"{name}.{f}", "a positive integer", getattr(self, f))
        for f in ("n_in", "n_hat", "n_out"):
            v = getattr(self, f)
            expect(v is None or _is_pos_int(v), f"{name}.{f}", "a positive integer or None", v)
        for f in ("amplitude", "v_th", "v_rest", "v_reset"):
            expect(_is_num(getattr(self, f)), f"{name}.{f}", "a finite number", getattr(self, f))
        for f in ("kappa", "k0", "eta", "mu", "nu"):
            v = getattr(self, f)
            expect(_is_num(v) and v >= 0, f"{name}.{f}", "a finite number >= 0", v)
        for f in ("lambda_d", "tau_mem", "tau_s", "tau_f", "tau_r", "dt"):
            v = getattr(self, f)
            expect(_is_num(v) and v > 0, f"{name}.{f}", "a positive finite number (seconds or 1/s)", v)
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

    @property
    def sized(self) -> bool:
        """Whether the teacher sizes ``n_in``, ``n_hat``, ``n_out`` are set."""
        return None not in (self.n_in, self.n_hat, self.n_out)

    def spiking_config(self) -> SpikingConfig:
        """The :class:`SpikingConfig` of the ADS core (``N̂ → N → N̂``)."""
        expect(self.sized, "ADSConfig.n_hat", "the teacher sizes n_in, n_hat, n_out (set by build_ads)",
               (self.n_in, self.n_hat, self.n_out))
        return SpikingConfig(n_in=self.n_hat, n_hidden=self.n, n_out=self.n_hat, dt=self.dt, fast=self.fast,
                             input_target="current", reset="value", max_spikes=1, refractory=0.0,
                             integrator="euler", synapse_norm="unit_area", readout_norm="unit_area")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ADSConfig":
        return cls(**d)


# ----------------------------------------------------------------------------------- network
class ADSNetwork(eqx.Module):
    """Teacher input projection + ADS core + teacher readout; runs with k = 0 (inference).

    ``step(state, x_t, *, key, current)`` follows the :class:`SpikingNetwork` protocol, so
    :func:`spikefleet.simulate.simulate` works unchanged; ``current`` is the error-feedback
    current ``I^k`` (training only). Traces: the core's (``spikes, v, r, i_syn``) plus ``x_tilde``.
    """

    f_hat: jax.Array  # [C, N̂]   teacher input weights F̂
    d_hat: jax.Array  # [N̂, O]   teacher readout D̂
    core: SpikingNetwork  # N̂ -> N LIF -> N̂
    amplitude: float = eqx.field(static=True)
    config: ADSConfig = eqx.field(static=True)

    def __check_init__(self):
        cfg = self.config
        expect(cfg.sized, "ADSNetwork.config", "an ADSConfig with n_in, n_hat, n_out set", cfg)
        for name, shape in {"f_hat": (cfg.n_in, cfg.n_hat), "d_hat": (cfg.n_hat, cfg.n_out)}.items():
            expect(getattr(self, name).shape == shape, f"ADSNetwork.{name}", f"shape {shape}",
                   getattr(self, name).shape)
        sizes = (self.core.config.n_in, self.core.config.n_hidden, self.core.config.n_out)
        expect(sizes == (cfg.n_hat, cfg.n, cfg.n_hat), "ADSNetwork.core.config",
               f"an N̂ -> N -> N̂ core with (n_in, n_hidden, n_out) = {(cfg.n_hat, cfg.n, cfg.n_hat)}", sizes)

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

    def to_spiking(self) -> SpikingNetwork:
        """The same inference network as one :class:`SpikingNetwork` ``C → N → O`` with folded
        weights ``w_in = A·F̂ W^in`` and ``w_out = W^out D̂`` (equal up to float rounding)."""
        core = self.core
        cfg = dataclasses.replace(core.config, n_in=self.config.n_in, n_out=self.config.n_out)
        return SpikingNetwork(w_in=self.amplitude * (self.f_hat @ core.w_in), w_rec=core.w_rec,
                              w_out=core.w_out @ self.d_hat, b_out=jnp.zeros((self.config.n_out,), jnp.float32),
                              tau_out=core.tau_out, neurons=core.neurons, w_fast=core.w_fast, config=cfg)


def ads_thresholds(d, config: ADSConfig):
    """Spike-coding thresholds ``T_i = ½(νλ_d + μλ_d² + n_i²)`` of raw decoder ``d`` [N̂, N] (§6.2)."""
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
    scfg = config.spiking_config()
    n = config.n
    taus = [config.tau_s, config.tau_f] if config.fast else [config.tau_s]
    tau_syn = jnp.asarray(np.repeat(np.asarray(taus, np.float32)[:, None], n, axis=1))
    neurons = LIF.create(n, n_synapses=len(taus), tau_mem=config.tau_mem, tau_syn=tau_syn, threshold=config.v_th,
                         v_rest=config.v_rest, v_reset=config.v_reset, bias=0.0,
                         v_init=jnp.asarray(v_init, jnp.float32), dt=config.dt, reset=scfg.reset,
                         refractory=scfg.refractory, max_spikes=scfg.max_spikes, integrator=scfg.integrator,
                         synapse_norm=scfg.synapse_norm, noise=scfg.noise, surrogate=scfg.make_surrogate())
    return SpikingNetwork(w_in=weights["w_in"], w_rec=jnp.zeros((n, n), jnp.float32), w_out=weights["w_out"],
                          b_out=jnp.zeros((config.n_hat,), jnp.float32),
                          tau_out=jnp.full((n,), config.tau_r, jnp.float32), neurons=neurons,
                          w_fast=weights["w_fast"], config=scfg)


def build_ads(teacher: RateNetwork, config: ADSConfig, key: jax.Array, *, decoder=None) -> ADSNetwork:
    """Build a fresh Network ADS design for ``teacher`` (spec §6).

    ``key`` is split into ``(k_decoder, k_v_init)``: ``D = N(0,1)[N̂, N]/N̂`` from the first,
    ``V[0] ~ U(V_reset, V_th)`` from the second. ``decoder`` overrides the raw decoder D (tests).
    Ω^s starts at 0. The returned network's config has ``n_in, n_hat, n_out`` from the teacher.
    """
    expect(isinstance(teacher, RateNetwork), "teacher", "a RateNetwork", type(teacher).__name__)
    expect(isinstance(config, ADSConfig), "config", "an ADSConfig", type(config).__name__)
    sizes = {"n_in": teacher.config.n_in, "n_hat": teacher.config.n_hidden, "n_out": teacher.config.n_out}
    for name, value in sizes.items():
        got = getattr(config, name)
        expect(got is None or got == value, f"ADSConfig.{name}", f"None or the teacher's {value}", got)
    config = dataclasses.replace(config, **sizes)
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


# --------------------------------------------------------------------------------- schedules
def k_values(config: ADSConfig, n_iter: int) -> np.ndarray:
    """Feedback gain ``k_i`` for iterations ``i = 0 … n_iter−1`` (float64 ``[n_iter]``)."""
    expect(_is_pos_int(n_iter), "n_iter", "a positive integer", n_iter)
    i = np.arange(n_iter)
    if config.k_schedule == "constant" or config.k0 == 0:
        return np.full(n_iter, float(config.k0))
    dk = config.k0 / 8.0
    n_blocks = int(math.floor((config.k0 - dk) / dk)) + 1
    length = max(1, n_iter // n_blocks)
    return np.maximum(config.k0 - dk * (i // length), dk)


def eta_values(config: ADSConfig, n_iter: int) -> np.ndarray:
    """Learning rate ``η_i`` for iterations ``i = 0 … n_iter−1`` (float64 ``[n_iter]``)."""
    expect(_is_pos_int(n_iter), "n_iter", "a positive integer", n_iter)
    if config.eta_schedule == "constant":
        return np.full(n_iter, float(config.eta))
    b = (n_iter / 2.0) / math.log(100.0)
    return config.eta * np.exp(-np.arange(n_iter) / b) + ETA_FLOOR


# ---------------------------------------------------------------------------------- teacher
@eqx.filter_jit
def _teacher_a(teacher, inputs):
    return simulate_batch(teacher, inputs, record=("a",)).traces["a"]


def teacher_dynamics(teacher: RateNetwork, inputs) -> jax.Array:
    """Target dynamics ``x̂[t] = tanh(x[t])`` of the teacher (``[T, C] -> [T, N̂]`` or batched)."""
    inputs = jnp.asarray(inputs, jnp.float32)
    if inputs.ndim == 2:
        return _teacher_a(teacher, inputs[None])[0]
    return _teacher_a(teacher, inputs)


# --------------------------------------------------------------------------------- learning
def _offdiag(n: int) -> jax.Array:
    return jax.lax.broadcasted_iota(jnp.int32, (n, n), 0) != jax.lax.broadcasted_iota(jnp.int32, (n, n), 1)


def _var(x, axis):  # ddof = 1 over time
    return jnp.var(x, axis=axis, ddof=1)


def _metrics(net, err, spikes, target):
    n, steps = net.config.n, err.shape[0]
    return {
        "mse": jnp.mean(err ** 2),
        "e_rec": jnp.sum(_var(err, 0)) / jnp.sum(_var(target, 0)),
        "rate_hz": jnp.sum(spikes) / (n * steps * net.dt),
    }


def _feedback_run(net: ADSNetwork, w_slow, inputs, target, k):
    """One sample with error feedback and fixed Ω^s; returns ``(metrics, r [T, N], ε [T, N])``."""
    core = eqx.tree_at(lambda c: c.w_rec, net.core, w_slow)
    w_in = core.w_in
    target = jnp.asarray(target, jnp.float32)
    k = jnp.asarray(k, jnp.float32)

    def body(carry, xs):
        state, i_k = carry
        c_t, xhat_t = xs
        state, x_tilde, traces = core.step(state, c_t, current=i_k)
        err = xhat_t - x_tilde
        eps = err @ w_in
        return (state, k * eps), (err, traces["spikes"].sum(), traces["r"], eps)

    init = (core.init_state(), jnp.zeros((core.config.n_hidden,), jnp.float32))
    _, (err, spikes, r, eps) = jax.lax.scan(body, init, (net.drive(jnp.asarray(inputs, jnp.float32)), target))
    return _metrics(net, err, spikes, target), r, eps


def _online_run(net: ADSNetwork, w_slow, inputs, target, k, eta, chunk: int = LOW_RANK_CHUNK):
    """One sample of the online rule (§7); returns ``(Ω^s, metrics)``.

    Exactly the per-step rule, computed without an ``N×N`` update per step: Ω^s is folded in
    every ``K = chunk`` steps, ``Ω^s ← Ω^s + η·mask∘(R_cᵀ E_c)`` with the chunk's pending traces
    ``R_c`` and projected errors ``E_c`` (``[K, N]``). In between, the core runs with the Ω^s of
    the last fold and the pending part of the slow drive, by linearity of the slow synapse,
    goes through its own unit-area filter into the ``current`` argument::

        δ[t] = η [ (R_c o[t−1]) E_c − o[t−1] ∘ Σ_s r[s] ∘ ε[s] ]      (i ≠ j only)
        I^corr[t] = α_s I^corr[t−1] + δ[t]/τ_s

    Ordering (spec §5 step 4 precedes §7 within a step): o[t−1] is delivered at step t with
    the Ω^s that includes the updates of steps ≤ t−2, so the update of step s enters the
    pending set at step s+2.
    """
    core = net.core
    w_in = core.w_in
    n = core.config.n_hidden
    mask = _offdiag(n)
    tau_s = core.neurons.tau_syn[0]
    alpha_s = jnp.exp(-net.dt / tau_s)
    target = jnp.asarray(target, jnp.float32)
    drives = net.drive(jnp.asarray(inputs, jnp.float32))
    steps, m = target.shape
    chunk = max(1, min(chunk, steps))
    n_chunks = -(-steps // chunk)
    pad = n_chunks * chunk - steps  # padded steps run after the sample and do not learn
    valid = jnp.concatenate([jnp.ones(steps), jnp.zeros(pad)]).reshape(n_chunks, chunk)
    drives = jnp.concatenate([drives, jnp.zeros((pad, m), drives.dtype)]).reshape(n_chunks, chunk, m)
    targets = jnp.concatenate([target, jnp.zeros((pad, m), target.dtype)]).reshape(n_chunks, chunk, m)
    k = jnp.asarray(k, jnp.float32)
    eta = jnp.asarray(eta, jnp.float32)
    zeros = jnp.zeros((n,), jnp.float32)

    def step(carry, xs):
        state, i_k, i_corr, w, r_buf, e_buf, diag, r1, e1, r2, e2 = carry
        j, c_t, xhat_t, ok = xs
        r_buf, e_buf, diag = r_buf.at[j].set(r2), e_buf.at[j].set(e2), diag + r2 * e2  # update of t−2
        o = state.spikes
        i_corr = alpha_s * i_corr + eta * ((r_buf @ o) @ e_buf - o * diag) / tau_s
        state, x_tilde, traces = eqx.tree_at(lambda c: c.w_rec, core, w).step(state, c_t, current=i_k + i_corr)
        err = xhat_t - x_tilde
        eps = err @ w_in
        return ((state, k * eps, i_corr, w, r_buf, e_buf, diag, traces["r"] * ok, eps, r1, e1),
                (err, traces["spikes"].sum()))

    def fold(carry, xs):
        state, i_k, i_corr, w, r1, e1, r2, e2 = carry
        bufs = (jnp.zeros((chunk, n), jnp.float32), jnp.zeros((chunk, n), jnp.float32), zeros)
        (state, i_k, i_corr, w, r_buf, e_buf, _, r1, e1, r2, e2), out = jax.lax.scan(
            step, (state, i_k, i_corr, w, *bufs, r1, e1, r2, e2), (jnp.arange(chunk),) + xs)
        w = jnp.where(mask, w + eta * (r_buf.T @ e_buf), 0.0)
        return (state, i_k, i_corr, w, r1, e1, r2, e2), out

    init = (core.init_state(), zeros, zeros, w_slow, zeros, zeros, zeros, zeros)
    (_, _, _, w, r1, e1, r2, e2), (err, spikes) = jax.lax.scan(fold, init, (drives, targets, valid))
    w = jnp.where(mask, w + eta * (jnp.outer(r2, e2) + jnp.outer(r1, e1)), 0.0)
    err, spikes = err.reshape(-1, m)[:steps], spikes.reshape(-1)[:steps]
    return w, _metrics(net, err, spikes, target)


def _batched_delta(net, w_slow, inputs, target, k, eta):
    metrics, r, eps = _feedback_run(net, w_slow, inputs, target, k)
    n = r.shape[1]
    delta = jnp.where(_offdiag(n), r.T @ eps, 0.0)
    scale = jnp.mean(jnp.abs(delta))
    delta = jnp.where(scale > 0, delta / jnp.where(scale > 0, scale, 1.0), 0.0)
    return w_slow + jnp.asarray(eta, jnp.float32) * delta, metrics


def _parallel_run(net: ADSNetwork, w_slow, inputs, target, k, eta, chunk: int = LOW_RANK_CHUNK):
    """``B`` samples of the online rule run concurrently (the ``"parallel"`` rule); returns
    ``(Ω^s, metrics)`` with per-sample metric arrays ``[B]``.

    All ``B`` samples run side by side from the initial state with one shared Ω^s, which is
    held fixed within each ``K = chunk``-step block and then updated by the sum of the online
    updates of every sample and step of the block::

        Ω^s ← Ω^s + η · mask ∘ Σ_b Σ_{t ∈ block} r_b[t] ε_b[t]ᵀ

    With ``B = 1`` it differs from the exact online rule only in that an update acts on the
    slow synapses at the next block boundary instead of two steps later. It is the same
    local rule, and its sum over a block is what ``B`` copies of the network learning at once
    would accumulate; it turns a sequence of ``B`` samples into one simulation of width ``B``,
    which vector hardware runs in about the time of one.
    """
    core = net.core
    w_in = core.w_in
    n = core.config.n_hidden
    mask = _offdiag(n)
    target = jnp.asarray(target, jnp.float32)
    drives = net.drive(jnp.asarray(inputs, jnp.float32))  # [B, T, M]
    b, steps, m = target.shape
    chunk = max(1, min(chunk, steps))
    n_chunks = -(-steps // chunk)
    pad = n_chunks * chunk - steps

    def blocks(x):  # [B, T, ...] -> [n_chunks, B, K, ...]
        x = jnp.concatenate([x, jnp.zeros((b, pad) + x.shape[2:], x.dtype)], axis=1)
        return jnp.moveaxis(x.reshape((b, n_chunks, chunk) + x.shape[2:]), 1, 0)

    valid = blocks(jnp.ones((b, steps), jnp.float32))  # padded steps do not learn
    k = jnp.asarray(k, jnp.float32)
    eta = jnp.asarray(eta, jnp.float32)

    def sample_block(w, state, i_k, c, xhat, ok):
        core_w = eqx.tree_at(lambda q: q.w_rec, core, w)

        def step(carry, xs):
            state, i_k = carry
            c_t, xhat_t, ok_t = xs
            state, x_tilde, traces = core_w.step(state, c_t, current=i_k)
            err = xhat_t - x_tilde
            eps = err @ w_in
            return (state, k * eps), (traces["r"] * ok_t, eps, err, traces["spikes"].sum())

        (state, i_k), out = jax.lax.scan(step, (state, i_k), (c, xhat, ok))
        return state, i_k, out

    run_block = jax.vmap(sample_block, in_axes=(None, 0, 0, 0, 0, 0))

    def fold(carry, xs):
        w, state, i_k = carry
        state, i_k, (r, eps, err, spikes) = run_block(w, state, i_k, *xs)
        w = jnp.where(mask, w + eta * jnp.einsum("bkn,bkm->nm", r, eps), 0.0)
        return (w, state, i_k), (err, spikes)

    state0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (b,) + x.shape), core.init_state())
    init = (w_slow, state0, jnp.zeros((b, n), jnp.float32))
    (w, _, _), (err, spikes) = jax.lax.scan(fold, init, (blocks(drives), blocks(target), valid))
    err = jnp.moveaxis(err, 0, 1).reshape(b, -1, m)[:, :steps]  # [B, T, M]
    spikes = jnp.moveaxis(spikes, 0, 1).reshape(b, -1)[:, :steps]
    return w, jax.vmap(lambda e, s, t: _metrics(net, e, s, t))(err, spikes, target)


def _one(net, w_slow, inputs, target, k, eta, rule):
    if rule == "online":
        return _online_run(net, w_slow, inputs, target, k, eta)
    return _batched_delta(net, w_slow, inputs, target, k, eta)


@eqx.filter_jit
def _learn_one(net, inputs, target, k, eta, rule):
    w, metrics = _one(net, net.core.w_rec, inputs, target, k, eta, rule)
    return net.with_slow_weights(w), metrics


def learn_sample(net: ADSNetwork, inputs, target_dyn, k, eta):
    """One online-learning pass over one sample (§7); returns ``(new_net, metrics)``.

    ``inputs`` [T, C] task input, ``target_dyn`` [T, N̂] teacher dynamics x̂; ``k``, ``eta``
    scalars (traced: changing them does not recompile). Metrics (during learning, with
    feedback): ``mse`` (mean e²), ``e_rec`` (normalised reconstruction error), ``rate_hz``.
    """
    return _learn_one(net, inputs, target_dyn, k, eta, "online")


def learn_batch_update(net: ADSNetwork, inputs, target_dyn, k, eta):
    """The batched variant of §7 for one sample (normalised ``ΔΩ``, ``mean|ΔΩ| = η``)."""
    return _learn_one(net, inputs, target_dyn, k, eta, "batched")


@eqx.filter_jit
def _learn_block(net, inputs, targets, ks, etas, rule):
    if rule == "parallel":  # groups of P concurrent samples; k, η of each group's first sample
        p = net.config.parallel
        g = inputs.shape[0] // p

        def group(x):
            return x.reshape((g, p) + x.shape[1:])

        def body(w, xs):
            return _parallel_run(net, w, *xs)

        w, metrics = jax.lax.scan(body, net.core.w_rec, (group(inputs), group(targets), ks[::p], etas[::p]))
        return net.with_slow_weights(w), {name: v.reshape(-1) for name, v in metrics.items()}

    def body(w, xs):
        return _one(net, w, *xs, rule)

    w, metrics = jax.lax.scan(body, net.core.w_rec, (inputs, targets, ks, etas))
    return net.with_slow_weights(w), metrics


def learn_trials(net: ADSNetwork, inputs, targets, ks, etas, *, rule: str = "online"):
    """Learn on ``B`` samples in sequence inside one jitted ``lax.scan`` (carry = Ω^s).

    ``inputs`` [B, T, C], ``targets`` [B, T, N̂], ``ks``/``etas`` [B]. Equivalent to calling
    :func:`learn_sample` (or :func:`learn_batch_update`) ``B`` times; with ``rule="parallel"``
    the samples are taken in groups of ``net.config.parallel`` learned concurrently (``B`` must be
    a multiple of it). Returns ``(new_net, metrics)`` with per-sample metric arrays ``[B]``.
    """
    expect(rule in RULES, "rule", f"one of {RULES}", rule)
    p = net.config.parallel
    expect(rule != "parallel" or len(inputs) % p == 0, "inputs",
           f"a multiple of config.parallel = {p} samples for rule 'parallel'", len(inputs))
    return _learn_block(net, jnp.asarray(inputs, jnp.float32), jnp.asarray(targets, jnp.float32),
                        jnp.asarray(ks, jnp.float32), jnp.asarray(etas, jnp.float32), rule)


# ------------------------------------------------------------------------------- evaluation
def reconstruction_error(target, recon):
    """Normalised reconstruction error ``Σ_units Var_t(x̂ − x̃) / Σ_units Var_t(x̂)`` (ddof = 1).

    ``[T, N̂]`` -> scalar, ``[B, T, N̂]`` -> ``[B]`` (one value per trial).
    """
    target, recon = jnp.asarray(target), jnp.asarray(recon)
    return jnp.sum(_var(target - recon, -2), -1) / jnp.sum(_var(target, -2), -1)


@eqx.filter_jit
def _inference_chunk(net, inputs, xhat):
    res = simulate_batch(net, inputs, record=("x_tilde",), accumulate=("spikes",))
    x_tilde = res.traces["x_tilde"]
    num = jnp.sum(_var(xhat - x_tilde, 1), -1)
    den = jnp.sum(_var(xhat, 1), -1)
    rate = res.totals["spikes"].mean(-1) / (inputs.shape[1] * net.dt)
    dyn_mse = jnp.mean((xhat - x_tilde) ** 2, axis=(1, 2))
    return res.outputs, num, den, rate, dyn_mse


def evaluate_ads(net: ADSNetwork, task, batch, target_dyn, *, chunk: int = 50) -> dict:
    """Inference metrics (k = 0) of ``net`` on a task batch with teacher dynamics ``target_dyn``.

    ``e_rec``: mean over trials of the per-trial normalised reconstruction error (the §8.1
    model-selection criterion); ``e_rec_pooled``: Σ over trials and units of Var_t(x̂ − x̃)
    divided by the same sum of Var_t(x̂); ``dyn_mse``: mean (x̂ − x̃)²; ``accuracy`` (task decision
    rule on y), ``loss`` (output MSE vs the task target), ``rate_hz`` (mean over neurons and trials).
    """
    inputs = np.asarray(batch.inputs, np.float32)
    xhat = np.asarray(target_dyn, np.float32)
    b = inputs.shape[0]
    chunk = max(1, min(chunk, b))
    parts = []
    for start in range(0, b, chunk):
        x, t = inputs[start:start + chunk], xhat[start:start + chunk]
        pad = chunk - x.shape[0]
        if pad:  # pad so that only one shape is compiled
            x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
            t = np.concatenate([t, np.repeat(t[-1:], pad, 0)])
        parts.append([np.asarray(v)[: chunk - pad] for v in _inference_chunk(net, jnp.asarray(x), jnp.asarray(t))])
    outputs, num, den, rate, dyn_mse = (np.concatenate(p) for p in zip(*parts))
    return {
        "e_rec": float(np.mean(num / den)),
        "e_rec_pooled": float(np.sum(num) / np.sum(den)),
        "dyn_mse": float(np.mean(dyn_mse)),
        "accuracy": float(task.accuracy(outputs, batch.labels)),
        "loss": float(np.mean((outputs - np.asarray(batch.targets)) ** 2)),
        "rate_hz": float(np.mean(rate)),
    }


# --------------------------------------------------------------------------------- training
def training_inputs(task, seed: int, start: int, stop: int) -> np.ndarray:
    """Inputs ``[stop − start, T, C]`` of training trials ``start..stop−1`` (trial ``i`` from
    ``seed_stream(seed, TRAIN, i)``), for the online teacher-based methods (ADS, FORCE)."""
    batches = [task.generate(1, seed_stream(seed, TRAIN_STREAM, i)) for i in range(start, stop)]
    return np.concatenate([b.inputs for b in batches])


def train_ads(teacher: RateNetwork, task, config: ADSConfig, seed: int, *, progress: bool = True,
              block: int = 50, train_inputs=None):
    """Train a Network ADS design on ``task`` to reproduce ``teacher``'s dynamics (spec §8.1).

    ``config.epochs × config.trials_per_epoch`` fresh trials, batch size 1, k/η schedules over
    all iterations; after each epoch the inference network (k = 0) is validated on
    ``config.val_trials`` fresh trials and the model with the lowest mean per-trial E_rec is
    kept. Trials are learned ``block`` at a time inside one jitted scan (the last block of an
    epoch is padded with η = 0 trials, which leave Ω^s unchanged).

    Returns ``(best ADSNetwork, info)``; ``info`` has ``config``, ``seed``, ``best_epoch``,
    ``validation`` (best metrics), ``history`` (per-epoch validation and training means),
    ``seconds`` (total) and ``seconds_per_1000_trials`` (learning only, first block excluded
    because it includes compilation).

    ``train_inputs`` ``[n, T, C]``: a fixed training set instead of fresh trials; trial ``i``
    is ``train_inputs[i mod n]`` (epochs pass over the set in order, as in spec §8.2).
    """
    from tqdm.auto import tqdm

    expect(isinstance(seed, int) and seed >= 0, "seed", "a non-negative integer", seed)
    expect(_is_pos_int(block), "block", "a positive integer", block)
    for name, obj in (("task", task), ("teacher", teacher)):
        expect(math.isclose(obj.dt, config.dt), f"{name}.dt", f"the ADS time step {config.dt}", obj.dt)
    if config.rule == "parallel":  # whole groups of concurrent samples per block
        block = max(1, block // config.parallel) * config.parallel
    if train_inputs is not None:
        train_inputs = np.asarray(train_inputs, np.float32)
        expect(train_inputs.ndim == 3 and len(train_inputs) > 0 and train_inputs.shape[2] == teacher.config.n_in,
               "train_inputs", f"an array [n, T, {teacher.config.n_in}] with n >= 1", train_inputs.shape)
    t_start = time.perf_counter()
    net = build_ads(teacher, config, jax.random.PRNGKey(seed_stream(seed, ADS_INIT_STREAM)))
    config = net.config
    n_iter = config.epochs * config.trials_per_epoch
    ks, etas = k_values(config, n_iter), eta_values(config, n_iter)
    val = task.generate(config.val_trials, seed_stream(seed, VAL_STREAM))
    val_xhat = np.asarray(teacher_dynamics(teacher, val.inputs))

    best, best_metrics, best_epoch, history = net, None, 0, []
    learn_time, learn_trials_timed, first = 0.0, 0, True
    bar = tqdm(total=n_iter, desc=f"{task.name}/ads", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_metrics = []
            lo = (epoch - 1) * config.trials_per_epoch
            for start in range(lo, lo + config.trials_per_epoch, block):
                stop = min(start + block, lo + config.trials_per_epoch)
                if train_inputs is None:
                    inputs = training_inputs(task, seed, start, stop)
                else:
                    inputs = train_inputs[np.arange(start, stop) % len(train_inputs)]
                k_b, eta_b, real = ks[start:stop], etas[start:stop], stop - start
                if real < block:
                    pad = block - real
                    inputs = np.concatenate([inputs, np.repeat(inputs[-1:], pad, 0)])
                    k_b = np.concatenate([k_b, np.zeros(pad)])
                    eta_b = np.concatenate([eta_b, np.zeros(pad)])
                targets = teacher_dynamics(teacher, inputs)
                tic = time.perf_counter()
                new_net, metrics = learn_trials(net, inputs, targets, k_b, eta_b, rule=config.rule)
                w = jax.block_until_ready(new_net.core.w_rec)
                if not first:
                    learn_time += time.perf_counter() - tic
                    learn_trials_timed += real
                first = False
                if not bool(jnp.all(jnp.isfinite(w))):
                    raise TrainingDiverged(f"{task.name}/ads: slow weights became non-finite in epoch {epoch} "
                                           f"(trials {start}..{stop - 1}); lower eta or k")
                net = new_net
                epoch_metrics.append({name: np.asarray(v)[:real] for name, v in metrics.items()})
                bar.update(real)
            train_means = {f"train_{name}": float(np.mean(np.concatenate([m[name] for m in epoch_metrics])))
                           for name in epoch_metrics[0]}
            val_metrics = evaluate_ads(net, task, val, val_xhat)
            history.append({"epoch": epoch, **val_metrics, **train_means})
            if best_metrics is None or val_metrics["e_rec"] < best_metrics["e_rec"]:
                best, best_metrics, best_epoch = net, val_metrics, epoch
            bar.set_postfix(E_rec=f"{val_metrics['e_rec']:.3f}", acc=f"{val_metrics['accuracy']:.3f}",
                            rate=f"{val_metrics['rate_hz']:.1f}Hz")
    finally:
        bar.close()
    info = {
        "task": task.name, "method": "ads", "seed": seed, "config": config.to_dict(), "best_epoch": best_epoch,
        "validation": best_metrics, "history": history, "seconds": time.perf_counter() - t_start,
        "seconds_per_1000_trials": (1000.0 * learn_time / learn_trials_timed) if learn_trials_timed else None,
    }
    return best, info
