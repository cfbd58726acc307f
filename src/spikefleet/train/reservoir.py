r"""Reservoir (liquid-state machine) baseline of the Network ADS paper (Büchel et al. 2021: reservoir / liquid-state machine, Büchel et al. 2021: parameter mismatch).

An untrained recurrent LIF "liquid" with a linear readout fitted by ridge regression.

Structure (:func:`build_reservoir`, orientation ``w[pre, post]`` as everywhere)
-------------------------------------------------------------------------------
* ``N`` neurons split into ``L`` disconnected *liquids*: consecutive index blocks of near-equal
  size (``N = 768, L = 8`` gives the paper's 8 × 96). ``W_rec`` is block-diagonal: there is no
  synapse between two liquids.
* Inside a liquid of ``m`` neurons exactly ``round(p · m (m − 1))`` of the ``m (m − 1)``
  ordered pairs ``pre ≠ post`` are connected (drawn without replacement; ``p = density =
  0.041``). Self-connections are never made.
* Magnitudes ``|w| ~ N(μ_E, σ_E²)`` clipped at ≥ 0 (``μ_E = 0.0015``, ``σ_E = 0.0001`` spec units,
  times ``weight_scale``, see below). Every ``inh_every``-th neuron (global index
  ``i % 5 == 0``, as "every 5th row" of the reference) is inhibitory: all its outgoing weights
  (its row) are ``−inh_factor · |w|`` (``inh_factor = 4.73``); the others' are ``+|w|``.
* Input: each (channel, neuron) pair is connected with probability ``input_density``, with
  weight ``± w_input · weight_scale`` (sign ``±`` with probability ½ each when ``input_sign =
  "random"``, always ``+`` for ``"positive"``). The input drives the neurons as a direct current
  (``input_target="current"``).
* Time constants: ``τ_mem,i = τ_syn,i = τ_i`` with ``τ`` linearly spaced between
  ``max(tau_min, dt)`` and ``tau_max = 112 ms`` over all ``N`` neurons, in decreasing order
  (neuron 0 is the slowest, as in the reference), so each liquid covers a band of time scales.
* Thresholds ``V_th,i = threshold (+ threshold_std · ξ_i``, floored at ``0.05`` above reset),
  ``V_rest = V_reset = 0``, reset to ``V_reset``, no refractory period, at most one spike per
  neuron and step, exact membrane integration (NEST integrates ``iaf_psc_exp`` exactly),
  bias 0. Initial potentials ``V_i[0] ~ U(V_reset, V_th,i)`` once per instance
  (``v_init="uniform"``; the reference randomises the NEST state) or ``V_reset``.

One step ``t`` (``spikefleet.models.spiking.SpikingNetwork`` with ``synapse_norm = readout_norm = "none"``)::

    I_i[t]  = e^{−dt/τ_i} I_i[t−1] + Σ_j o_j[t−1] W_rec[j, i]        (current jump w per spike)
    V_i     ← V_i + (1 − e^{−dt/τ_i}) (V_rest − V_i + I_i[t] + Σ_c x_c[t] W_in[c, i])
    o_i[t]  = [V_i ≥ V_th,i];   V_i ← V_reset where o_i[t] = 1
    r_i[t]  = e^{−dt/τ_r} r_i[t−1] + o_i[t]                           (τ_r = tau_out = 256 ms)
    y[t]    = r[t] @ w_out + b_out

so ``r`` is the spike train through the exponential readout filter (jump 1 per spike; a neuron
firing steadily at ``ν`` Hz has ``r ≈ ν τ_r``).

Readout: ridge regression (:class:`RidgeAccumulator`, :func:`ridge_solve`)
--------------------------------------------------------------------------
With all training samples stacked, ``R`` ``[K, N]`` (rows = time steps of all trials), target
``Y`` ``[K, O]`` and ``X = [R, 1]`` (a constant column for ``b_out`` when ``fit_bias``)::

    [w_out; b_out] = (Xᵀ X + λ D)⁻¹ Xᵀ Y,      D = diag(1, …, 1, 0)

i.e. **the bias is not regularised** (``D`` has a 0 for the constant column; with
``regularize_bias=True`` it is ``I`` instead). ``λ = ridge = 100`` acts on the *summed* (not
averaged) Gram matrix, so its relative weight shrinks as more trials are used. Only ``XᵀX``,
``XᵀY`` (and ``YᵀY``, for the training MSE) are accumulated: ``chunk`` trials are simulated at
once, each trial's moments are formed in float32 (a sum over its ``T`` rows only) and they are
summed over trials and chunks in float64 on the host; ``R`` never exists for more than ``chunk``
trials at once. The system is solved in float64.
Equivalently (and so tested) the solution is the least-squares solution of the augmented
system ``[X; √λ D^{1/2}] w ≈ [Y; 0]``.

Training (:func:`train_reservoir`): one pass over ``train_trials`` fresh trials (trial ``i`` is
``task.generate(1, seed_stream(seed, TRAIN, i))``), each input augmented with white noise
``x + noise · max_t |x| · ξ`` (``ξ ~ N(0, 1)`` per sample and channel; ``noise = 0.01``, the
paper's 1 %), simulated noise-free; the readout is fitted against the task target
``y_target``. Validation: ``val_trials`` fresh trials ``task.generate(n, seed_stream(seed,
VAL))`` with the task's own decision rule (XOR: the Büchel et al. 2021: inference, decision rules, output gain threshold rule).

Mapping of the paper's NEST units onto spikefleet's dimensionless LIF
--------------------------------------------------------------------
The reference liquid is NEST ``iaf_psc_exp`` driven through Rockpool's NEST layer: weights are
given in nA-like units and multiplied by 1000 before reaching NEST (pA), the membrane capacity
defaults to ``C_m = τ_mem · 1 nS`` (leak conductance ``g_L = 1 nS`` for every neuron), rest =
reset = −65 mV and threshold −55 mV. Hence a synaptic current of 1 pA shifts the steady-state
potential by ``1 pA / 1 nS = 1 mV`` and the threshold–reset gap is 10 mV. spikefleet's LIF is
written in units of that gap (``V_reset = V_rest = 0``, ``V_th = 1``; a current ``I`` moves the
membrane towards ``V_rest + I``), so the literal conversion of one spec weight unit is
``1000 pA → 1000 mV → 100`` gaps. All weights (recurrent and input) are multiplied by one
factor::

    w_ours = weight_scale · w_spec,   weight_scale = 300 = 3 × (1000 pA/unit · 1 mV/pA / 10 mV)

The literal factor 100 leaves the XOR liquid almost silent (≈ 1.4 Hz, chance accuracy): the
reference liquid was driven by 16 channels of input spikes, XOR has one analogue channel. The
extra ×3 is our choice, made so that the liquid sits in the fading-memory regime at tens of Hz
(N = 320, seeds 0–4: 30–80 Hz over the trial, 70–120 Hz during the pulses; after them the
activity decays to < 5 Hz in seeds 1, 2, 4, while seeds 0 and 3 keep ≈ 10 and ≈ 55 Hz of
self-sustained activity, mostly in the fastest liquid). Measured on XOR
(seed 0, 200 training trials, input density 0.3): ×2 → 5 Hz, ×3 → 15 Hz, ×3.5 → 45 Hz, ×4 → 130 Hz
with the fastest liquid self-sustaining and rates still rising at the end of the trial (the
reference reservoir ran at 124 Hz on Hey Snips). With ×3, excitatory synapses jump the
postsynaptic current by 0.45 ± 0.03 gaps, inhibitory ones by −2.13 ± 0.14 gaps, and the paper's
input weight 0.0183 is a current of 5.5 gaps. The structure (block-diagonal liquids, density, E/I ratio and factor,
spread of time constants, τ_r, λ, 1 % noise) is kept exactly.

What changes for temporal XOR (one analogue input channel with smoothed ±1 pulses instead of
16 spiking filter-bank channels): the input enters as a *signed current* (``input_sign =
"random"``: about half the neurons are depolarised by positive pulses and hyperpolarised by
negative ones, the other half the opposite way, an ON/OFF split that lets each liquid tell the
two signs apart), and the input density is ``input_density = 1`` (every neuron receives the one
channel) instead of the paper's 0.01, which for 16 channels meant 0.16 input synapses per neuron
and for one channel would reach about 3 of 320 neurons (the reference code also replaced its
sparse draw by a dense, data-derived input matrix before training). With 0.3 or 0.5 the XOR
accuracy drops by a few points (0.92–0.98 on seeds 0–2 instead of 0.98–1.0).

Mismatch (Büchel et al. 2021: parameter mismatch): the reservoir protocol perturbs ``τ_mem``, ``τ_syn`` (exc. and inh.),
``V_th`` (via the threshold–reset gap), ``W_rec`` and the readout weights. Here excitatory and
inhibitory synapses of a neuron share one ``τ_syn`` (one synapse group), so the fleet's
``tau_syn`` perturbation moves both together (NEST would draw them independently).

Seeds: liquid weights, thresholds and initial potentials from ``numpy.random.default_rng(
seed_stream(seed, RESERVOIR_INIT))`` (stream 10, see :mod:`spikefleet.seeds`);
training trial ``i`` ``seed_stream(seed, TRAIN, i)`` with its augmentation noise from
``default_rng([seed_stream(seed, TRAIN, i), 1])``; validation ``seed_stream(seed, VAL)``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from tqdm.auto import tqdm

from spikefleet import seeds
from spikefleet.errors import expect
from spikefleet.errors import is_finite_number as _is_num
from spikefleet.errors import is_positive_int as _is_pos_int
from spikefleet.simulation import evaluate_model
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork
from spikefleet.neurons.lif import LIF
from spikefleet.seeds import TRAIN as TRAIN_STREAM
from spikefleet.seeds import VAL as VAL_STREAM
from spikefleet.seeds import seed_stream
from spikefleet.simulation import simulate_batch

__all__ = [
    "ReservoirConfig", "RESERVOIR_INIT", "liquid_bounds", "liquid_weights", "build_reservoir",
    "RidgeAccumulator", "ridge_solve", "augment", "reservoir_traces", "fit_readout", "train_reservoir",
]

#: seed stream of the liquid's random construction (next free number after spikefleet.seeds' 1–8)
RESERVOIR_INIT = seeds.RESERVOIR_INIT
INPUT_SIGNS = ("random", "positive")
V_INITS = ("uniform", "reset")
MIN_GAP = 0.05  # smallest threshold-reset gap a threshold draw may leave (units of the gap)
SPEC_NEURONS_PER_LIQUID = 96


# ------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ReservoirConfig:
    """Liquid, readout and training settings (defaults: XOR, N = 320; Büchel et al. 2021: reservoir / liquid-state machine values in spec
    units, see the module docstring for the unit mapping).

    ``liquids=None`` means ``max(1, round(n / 96))`` (3 for 320, 8 for 768).
    """

    n: int = 320
    liquids: Optional[int] = None
    density: float = 0.041
    w_exc_mean: float = 0.0015
    w_exc_std: float = 0.0001
    inh_every: int = 5
    inh_factor: float = 4.73
    input_density: float = 1.0
    w_input: float = 0.0183
    input_sign: str = "random"
    weight_scale: float = 300.0
    tau_min: float = 0.0
    tau_max: float = 0.112
    threshold: float = 1.0
    threshold_std: float = 0.0
    v_init: str = "uniform"
    tau_out: float = 0.256
    ridge: float = 100.0
    fit_bias: bool = True
    regularize_bias: bool = False
    noise: float = 0.01
    train_trials: int = 1000
    val_trials: int = 200
    chunk: int = 50
    dt: float = 1e-3

    def __post_init__(self):
        name = type(self).__name__
        for f in ("n", "inh_every", "train_trials", "val_trials", "chunk"):
            expect(_is_pos_int(getattr(self, f)), f"{name}.{f}", "a positive integer", getattr(self, f))
        expect(self.liquids is None or (_is_pos_int(self.liquids) and self.liquids <= self.n), f"{name}.liquids",
               f"None or an integer in [1, n={self.n}]", self.liquids)
        for f in ("density", "input_density"):
            v = getattr(self, f)
            expect(_is_num(v) and 0.0 <= v <= 1.0, f"{name}.{f}", "a probability in [0, 1]", v)
        for f in ("w_exc_mean", "w_exc_std", "inh_factor", "w_input", "weight_scale", "tau_min", "threshold_std",
                  "ridge", "noise"):
            v = getattr(self, f)
            expect(_is_num(v) and v >= 0, f"{name}.{f}", "a finite number >= 0", v)
        for f in ("tau_max", "tau_out", "dt"):
            v = getattr(self, f)
            expect(_is_num(v) and v > 0, f"{name}.{f}", "a positive finite number of seconds", v)
        expect(_is_num(self.threshold) and self.threshold > 0, f"{name}.threshold",
               "a positive threshold (reset is 0)", self.threshold)
        expect(self.tau_max >= max(self.tau_min, self.dt), f"{name}.tau_max",
               f"at least max(tau_min, dt) = {max(self.tau_min, self.dt)}", self.tau_max)
        expect(self.input_sign in INPUT_SIGNS, f"{name}.input_sign", f"one of {INPUT_SIGNS}", self.input_sign)
        expect(self.v_init in V_INITS, f"{name}.v_init", f"one of {V_INITS}", self.v_init)
        for f in ("fit_bias", "regularize_bias"):
            expect(isinstance(getattr(self, f), bool), f"{name}.{f}", "True or False", getattr(self, f))

    @property
    def n_liquids(self) -> int:
        """The number of liquids actually used (``liquids`` or ``max(1, round(n/96))``)."""
        if self.liquids is not None:
            return self.liquids
        return max(1, min(self.n, int(round(self.n / SPEC_NEURONS_PER_LIQUID))))

    def spiking_config(self, n_in: int, n_out: int) -> SpikingConfig:
        """The :class:`SpikingConfig` of the liquid + readout (``n_in → n → n_out``)."""
        return SpikingConfig(n_in=n_in, n_hidden=self.n, n_out=n_out, dt=self.dt, fast=False,
                             input_target="current", reset="value", max_spikes=1, refractory=0.0,
                             integrator="exact", synapse_norm="none", readout_norm="none")

    def time_constants(self) -> np.ndarray:
        """``τ_mem = τ_syn`` per neuron: linspace(max(tau_min, dt), tau_max, n), decreasing."""
        return np.linspace(max(self.tau_min, self.dt), self.tau_max, self.n)[::-1].copy()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ReservoirConfig":
        return cls(**d)


# ------------------------------------------------------------------------------------ liquid
def liquid_bounds(config: ReservoirConfig) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the liquids: consecutive blocks whose sizes differ by at most 1."""
    edges = np.linspace(0, config.n, config.n_liquids + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def liquid_weights(config: ReservoirConfig, n_in: int, rng: np.random.Generator) -> dict:
    """Random liquid of ``config`` (float64 NumPy, ours units = spec units × weight_scale).

    Returns ``w_rec`` [N, N], ``w_in`` [n_in, N], ``inhibitory`` [N] (bool), ``threshold`` [N],
    ``v_init`` [N], ``tau`` [N] (τ_mem = τ_syn).
    """
    n, scale = config.n, config.weight_scale
    inhibitory = (np.arange(n) % config.inh_every) == 0
    w_rec = np.zeros((n, n))
    for start, stop in liquid_bounds(config):
        m = stop - start
        pairs = m * (m - 1)
        k = int(round(config.density * pairs))
        if k == 0:
            continue
        flat = rng.choice(pairs, size=k, replace=False)  # index over the off-diagonal pairs
        pre = flat // (m - 1)
        post = flat % (m - 1)
        post = post + (post >= pre)  # skip the diagonal
        mag = np.clip(rng.normal(config.w_exc_mean, config.w_exc_std, size=k), 0.0, None)
        sign = np.where(inhibitory[start + pre], -config.inh_factor, 1.0)
        w_rec[start + pre, start + post] = scale * sign * mag
    connected = rng.random((n_in, n)) < config.input_density
    if config.input_sign == "random":
        signs = np.where(rng.random((n_in, n)) < 0.5, -1.0, 1.0)
    else:
        signs = np.ones((n_in, n))
    w_in = np.where(connected, scale * config.w_input * signs, 0.0)
    threshold = config.threshold + config.threshold_std * rng.standard_normal(n)
    threshold = np.maximum(threshold, MIN_GAP)
    if config.v_init == "uniform":
        v_init = rng.uniform(0.0, 1.0, size=n) * threshold
    else:
        v_init = np.zeros(n)
    return {"w_rec": w_rec, "w_in": w_in, "inhibitory": inhibitory, "threshold": threshold,
            "v_init": v_init, "tau": config.time_constants()}


def build_reservoir(config: ReservoirConfig, n_in: int, n_out: int, seed: int) -> SpikingNetwork:
    """The untrained liquid as a :class:`SpikingNetwork` (readout ``w_out = 0``, ``b_out = 0``).

    Randomness: ``default_rng(seed_stream(seed, RESERVOIR_INIT))``.
    """
    expect(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "a non-negative integer",
           seed)
    rng = np.random.default_rng(seed_stream(seed, RESERVOIR_INIT))
    parts = liquid_weights(config, n_in, rng)
    scfg = config.spiking_config(n_in, n_out)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    neurons = LIF.create(config.n, n_synapses=1, tau_mem=f32(parts["tau"]), tau_syn=f32(parts["tau"]),
                         threshold=f32(parts["threshold"]), v_rest=0.0, v_reset=0.0, bias=0.0,
                         v_init=f32(parts["v_init"]), dt=config.dt, reset=scfg.reset, refractory=scfg.refractory,
                         max_spikes=scfg.max_spikes, integrator=scfg.integrator, synapse_norm=scfg.synapse_norm,
                         noise=scfg.noise, surrogate=scfg.make_surrogate())
    return SpikingNetwork(w_in=f32(parts["w_in"]), w_rec=f32(parts["w_rec"]), w_out=jnp.zeros((config.n, n_out)),
                          b_out=jnp.zeros((n_out,)), tau_out=jnp.full((config.n,), config.tau_out, jnp.float32),
                          neurons=neurons, w_fast=None, config=scfg)


# ------------------------------------------------------------------------------------- ridge
def _design(r, fit_bias: bool) -> np.ndarray:
    r = np.asarray(r, np.float64)
    r = r.reshape(-1, r.shape[-1])
    if fit_bias:
        r = np.concatenate([r, np.ones((r.shape[0], 1))], axis=1)
    return r


class RidgeAccumulator:
    """Running ``XᵀX``, ``XᵀY``, ``YᵀY`` and sample count, ``X = [R, 1]`` (float64).

    ``add(r, y)`` takes any ``[..., N]`` / ``[..., O]`` arrays with matching leading shape (they
    are flattened to rows), so trials or time chunks can be added in any grouping.
    """

    def __init__(self, n_features: int, n_out: int, *, fit_bias: bool = True):
        self.fit_bias = fit_bias
        k = n_features + (1 if fit_bias else 0)
        self.xtx = np.zeros((k, k))
        self.xty = np.zeros((k, n_out))
        self.yty = np.zeros((n_out, n_out))
        self.count = 0

    def add(self, r, y) -> None:
        x = _design(r, self.fit_bias)
        y = np.asarray(y, np.float64).reshape(-1, self.xty.shape[1])
        expect(x.shape[0] == y.shape[0] and x.shape[1] == self.xtx.shape[0], "RidgeAccumulator.add",
               f"r [..., {self.xtx.shape[0] - int(self.fit_bias)}] and y [..., {self.xty.shape[1]}] with the same rows",
               (np.shape(r), np.shape(y)))
        self.add_moments(x.T @ x, x.T @ y, y.T @ y, x.shape[0])

    def add_moments(self, xtx, xty, yty, count: int) -> None:
        """Add precomputed moments of ``count`` more rows (``X`` including the constant column)."""
        expect(np.shape(xtx) == self.xtx.shape and np.shape(xty) == self.xty.shape, "RidgeAccumulator.add_moments",
               f"xtx {self.xtx.shape} and xty {self.xty.shape}", (np.shape(xtx), np.shape(xty)))
        self.xtx += np.asarray(xtx, np.float64)
        self.xty += np.asarray(xty, np.float64)
        self.yty += np.asarray(yty, np.float64)
        self.count += int(count)

    def solve(self, ridge: float, *, regularize_bias: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(w [N, O], b [O])`` (``b = 0`` without ``fit_bias``); see :func:`ridge_solve`."""
        return ridge_solve(self.xtx, self.xty, ridge, fit_bias=self.fit_bias, regularize_bias=regularize_bias)

    def mse(self, w, b) -> float:
        """Mean squared residual ``‖X [w; b] − Y‖² / (K · O)`` from the accumulated moments."""
        beta = np.concatenate([w, np.asarray(b)[None]], 0) if self.fit_bias else np.asarray(w)
        sse = np.trace(self.yty) - 2.0 * np.sum(beta * self.xty) + np.sum(beta * (self.xtx @ beta))
        return float(max(sse, 0.0) / max(self.count * self.xty.shape[1], 1))


def ridge_solve(xtx, xty, ridge: float, *, fit_bias: bool = True, regularize_bias: bool = False):
    """Solve ``(XᵀX + λ D) β = XᵀY``; returns ``(w, b)``.

    With ``fit_bias`` the last row/column of ``xtx`` belongs to the constant column and ``D =
    diag(1, …, 1, 0)`` (bias unregularised) unless ``regularize_bias`` (``D = I``). Solved by a
    symmetric (Cholesky-based) solve in float64, falling back to least squares if the matrix is
    singular or ill-conditioned (``ridge = 0`` with silent neurons).
    """
    xtx = np.asarray(xtx, np.float64)
    xty = np.asarray(xty, np.float64)
    d = np.ones(xtx.shape[0])
    if fit_bias and not regularize_bias:
        d[-1] = 0.0
    a = xtx + ridge * np.diag(d)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)  # ill-conditioned: use lstsq
            beta = scipy.linalg.solve(a, xty, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning, ValueError):
        beta = np.linalg.lstsq(a, xty, rcond=None)[0]
    if fit_bias:
        return beta[:-1], beta[-1]
    return beta, np.zeros(xty.shape[1])


# ---------------------------------------------------------------------------------- training
def augment(inputs, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``x + noise · max_t|x| · ξ`` per trial (``ξ ~ N(0, 1)`` per sample and channel); ``[B, T, C]``."""
    x = np.asarray(inputs, np.float32)
    if noise <= 0:
        return x
    peak = np.max(np.abs(x), axis=(1, 2), keepdims=True)
    return (x + noise * peak * rng.standard_normal(x.shape)).astype(np.float32)


@eqx.filter_jit
def _traces(net, inputs):
    res = simulate_batch(net, inputs, record=("r",), accumulate=("spikes",))
    return res.traces["r"], res.totals["spikes"].sum(-1)


@eqx.filter_jit
def _trial_moments(net, inputs, targets, fit_bias: bool):
    """Per-trial float32 moments ``XᵀX`` [B, K, K], ``XᵀY`` [B, K, O], ``YᵀY`` [B, O, O] and spike
    counts [B] (summed over trials in float64 by the caller: each float32 sum runs over one
    trial's T rows only)."""
    r, spikes = _traces(net, inputs)
    if fit_bias:
        r = jnp.concatenate([r, jnp.ones(r.shape[:-1] + (1,), r.dtype)], axis=-1)
    hi = jax.lax.Precision.HIGHEST
    xtx = jnp.einsum("btk,btl->bkl", r, r, precision=hi)
    xty = jnp.einsum("btk,bto->bko", r, targets, precision=hi)
    yty = jnp.einsum("bto,btp->bop", targets, targets, precision=hi)
    return xtx, xty, yty, spikes


def reservoir_traces(net: SpikingNetwork, inputs) -> tuple[np.ndarray, np.ndarray]:
    """Readout-filtered traces ``r`` ``[B, T, N]`` and spike counts per trial ``[B]`` (noise-free)."""
    r, spikes = _traces(net, jnp.asarray(inputs, jnp.float32))
    return np.asarray(r), np.asarray(spikes)


def _training_trials(task, config: ReservoirConfig, seed: int, start: int, stop: int):
    inputs, targets = [], []
    for i in range(start, stop):
        s = seed_stream(seed, TRAIN_STREAM, i)
        batch = task.generate(1, s)
        inputs.append(augment(batch.inputs, config.noise, np.random.default_rng([s, 1])))
        targets.append(np.asarray(batch.targets, np.float32))
    return np.concatenate(inputs), np.concatenate(targets)


def fit_readout(net: SpikingNetwork, acc: RidgeAccumulator, config: ReservoirConfig) -> SpikingNetwork:
    """``net`` with ``w_out``, ``b_out`` set to the ridge solution of ``acc``."""
    w, b = acc.solve(config.ridge, regularize_bias=config.regularize_bias)
    return eqx.tree_at(lambda m: (m.w_out, m.b_out), net,
                       (jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)))


def train_reservoir(task, config: ReservoirConfig, seed: int, *, progress: bool = True):
    """Build the liquid, fit its ridge readout on ``config.train_trials`` fresh noisy trials, validate.

    Trials are simulated ``config.chunk`` at a time (the last chunk is padded with copies whose
    contribution is dropped), so memory is bounded by one chunk's traces plus the ``(N+1)²``
    Gram matrix. Returns ``(SpikingNetwork, info)``; ``info`` has ``task``, ``method``
    (``"reservoir"``), ``seed``, ``config``, ``validation`` (``accuracy``, ``loss``, ``rate_hz``
    of :func:`spikefleet.simulation.evaluate_model`), ``train`` (``mse`` of the fitted readout on
    the augmented training data, ``rate_hz``, ``samples``), ``liquids`` (sizes and synapse counts)
    and ``seconds``.
    """

    expect(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "a non-negative integer",
           seed)
    expect(math.isclose(task.dt, config.dt), "task.dt", f"the reservoir time step {config.dt}", task.dt)
    t_start = time.perf_counter()
    net = build_reservoir(config, task.n_in, task.n_out, seed)
    acc = RidgeAccumulator(config.n, task.n_out, fit_bias=config.fit_bias)
    chunk = min(config.chunk, config.train_trials)
    spikes_total, steps_total = 0.0, 0
    bar = tqdm(total=config.train_trials, desc=f"{task.name}/reservoir", disable=not progress, leave=False,
               dynamic_ncols=True)
    try:
        for start in range(0, config.train_trials, chunk):
            stop = min(start + chunk, config.train_trials)
            inputs, targets = _training_trials(task, config, seed, start, stop)
            real = stop - start
            if real < chunk:  # pad so that only one shape is compiled; the copies are dropped below
                inputs = np.concatenate([inputs, np.repeat(inputs[-1:], chunk - real, 0)])
                targets = np.concatenate([targets, np.repeat(targets[-1:], chunk - real, 0)])
            moments = _trial_moments(net, jnp.asarray(inputs), jnp.asarray(targets), config.fit_bias)
            xtx, xty, yty, spikes = (np.asarray(m, np.float64)[:real].sum(0) for m in moments)
            acc.add_moments(xtx, xty, yty, real * inputs.shape[1])
            spikes_total += float(spikes)
            steps_total += real * inputs.shape[1]
            bar.update(real)
    finally:
        bar.close()
    net = fit_readout(net, acc, config)
    w, b = np.asarray(net.w_out, np.float64), np.asarray(net.b_out, np.float64)
    val = task.generate(config.val_trials, seed_stream(seed, VAL_STREAM))
    validation = evaluate_model(net, task, val)
    nnz = np.asarray(net.w_rec) != 0
    info = {
        "task": task.name, "method": "reservoir", "seed": seed, "config": config.to_dict(),
        "validation": validation,
        "train": {"mse": acc.mse(w, b), "rate_hz": spikes_total / (config.n * steps_total * config.dt),
                  "samples": acc.count},
        "liquids": {"bounds": liquid_bounds(config), "synapses": int(nnz.sum()),
                    "input_synapses": int(np.count_nonzero(np.asarray(net.w_in)))},
        "seconds": time.perf_counter() - t_start,
    }
    return net, info
