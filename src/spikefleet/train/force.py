r"""FORCE baseline (spec §13.2): a LIF network trained with recursive least squares, after
Nicola & Clopath (Nat. Commun. 2017), to reproduce the teacher's dynamics.

Spec: ``spec/network-ads.md`` §13.2 (design, learning), §3 (teacher, target x̂ = tanh(x)), §9
(decision rules), §14.2 (what mismatch perturbs), §17 item 10 (accuracy labels). Units: time
in seconds, potentials and currents in "mV" (Nicola & Clopath's numbers), readout/synaptic
traces in Hz. Orientation everywhere ``w[pre, post]`` (row = presynaptic), drives ``x @ w``.

Architecture (:class:`FORCENetwork`)::

    c[t] --F̂--> F̂ᵀc[t] --W_in (N(0,1), [N̂, N])--> N LIF neurons (Ω static) --Φ--> z[t] --D̂--> y[t]
                                                        ^                        |
                                                        +------- E [N̂, N] -------+  (z[t−1] @ E)

with ``F̂ = teacher.w_in`` [C, N̂], ``D̂ = teacher.w_out`` [N̂, O]. The on-chip part is the
``core`` (:class:`~spikefleet.models.spiking.SpikingNetwork`, ``input_target="current"``): ``core.w_in``
= the fixed N(0, 1) projection (spec: "F̂ᵀc projected by a fixed random N(0, 1) matrix"),
``core.w_rec`` = Ω, ``core.w_out`` = the learned decoder Φ [N, N̂]; the feedback encoders E
(``FORCENetwork.e``) and the teacher matrices F̂, D̂ sit outside the core.

Neuron model (Nicola & Clopath's LIF, τ_m dV/dt = −V + I + BIAS, mapped onto
:class:`~spikefleet.neurons.lif.LIF` with ``V_rest = 0`` and ``b = BIAS = −40``: the potential
relaxes to ``V_rest + b = −40 = V_th``, i.e. the neurons sit at threshold). One step ``t``
(forward Euler, ``dt = 1 ms``, ``α_x = e^{−dt/τ_x}``; τ_m = 10 ms, τ_s = τ_r = 70 ms)::

    I^s[t] = α_s I^s[t−1] + (o[t−1] @ Ω)/τ_s                    (= r[t−1] @ Ω: unit-area synapse)
    I[t]   = I^s[t] + (F̂ᵀc[t]) @ W_in + z[t−1] @ E + b
    V      ← V + (dt/τ_m)(V_rest − V + I[t])   (held at V_reset for t_ref = 2 steps after a spike)
    o[t]   = [V ≥ V_th];  V ← V_reset = −65 where o[t] = 1      (at most one spike per step)
    r[t]   = α_r r[t−1] + o[t]/τ_r  (Hz);   z[t] = r[t] @ Φ;   y[t] = z[t] @ D̂

The feedback ``z @ E`` acts with a one-step delay: :class:`FORCEState` keeps ``z[t−1]`` next to
the core state (``z[−1] = 0``), and ``step`` injects ``z[t−1] @ E`` as a current. Because the
recurrent synapse also delivers ``r[t−1]`` (same 70 ms unit-area filter), the feedback is
exactly an extra recurrent weight ``Φ @ E`` (``w[pre, post]``); :meth:`FORCENetwork.to_spiking`
folds it that way. Every sample starts from the same initial state: ``V[0] ~ U(V_reset, V_th)``
drawn once per instance (spec: not stated; Nicola & Clopath draw random initial potentials),
all currents and traces 0.

Weights (:func:`build_force`, spec §13.2)::

    Ω  = G · N(0,1) · Bernoulli(p) / (p √N),  G = 0.04, p = 0.1; then the mean of the non-zero
         entries is subtracted "row by row": ``balance="post"`` (default) balances the incoming
         weights of each neuron (Nicola & Clopath's row = postsynaptic, i.e. each *column* of
         w_rec[pre, post] has zero mean over its non-zero entries); ``balance="pre"`` uses
         the rows of w_rec[pre, post]. Self-connections are not removed (as in N&C).
    W_in ~ N(0, 1) [N̂, N];  E ~ U(−Q, Q) [N̂, N], Q = 10;  Φ = 0 [N, N̂];  P[0] = α I, α = 1e−5.

Learning (spec §13.2, RLS at every time step, :func:`rls_update`), from the initial state of
every sample, with (Φ, P) carried from sample to sample::

    z[t] = r[t] @ Φ        (Φ before this step's update; z[t] is also the value fed back)
    e[t] = z[t] − x̂[t]     x̂[t] = tanh(x_teacher[t])  (§3.1, the same target as Network ADS)
    Φ    ← Φ − (P r[t]) e[t]ᵀ
    P    ← P − (P r[t])(P r[t])ᵀ / (1 + r[t]ᵀ P r[t])

Φ's update uses P r with the P *before* the step (as written in the spec and in Nicola &
Clopath's code), not the textbook RLS gain P r/(1 + rᵀPr); P stays exactly symmetric, and
its recursion is exact Sherman–Morrison: P[t] = (Σ_s r[s] r[s]ᵀ + I/α)⁻¹. With the old P the
a-posteriori error is e·(1 − rᵀPr), so a step is stable while rᵀPr < 2; the small α = 1e−5
keeps it so (r grows from 0 at the start of the first sample, while P shrinks). A whole
block of samples runs as one jitted ``lax.scan`` over samples and time (:func:`learn_trials`),
O(N²) per step for P. Training runs noise-free.

Training (:func:`train_force`): ``epochs × trials_per_epoch`` fresh trials (trial ``i``,
0-based over all epochs, is ``task.generate(1, seed_stream(seed, TRAIN, i))``), batch size 1.
After each epoch the network is validated on ``val_trials`` fresh trials
(``seed_stream(seed, VAL)``) with the task's decision rule on ``y`` (true labels); the model
with the highest validation accuracy is kept (tie → lower output MSE to the task target), and
training stops after ``patience = 2`` consecutive epochs without improvement.

Seeds: the instance key is ``PRNGKey(seed_stream(seed, FORCE_INIT_STREAM))`` with
``FORCE_INIT_STREAM = seeds.FORCE_INIT`` (9, see :mod:`spikefleet.seeds`); :func:`build_force`
draws Ω, W_in, E and V[0] with NumPy generators seeded from that key's data (no XLA
compilation of threefry code, which costs seconds per shape on a CPU).

Deviations from the spec (which describes the Hey Snips baseline): for temporal XOR the
default is ``N = 320`` neurons (as for Network ADS on XOR, spec §8.1; the spec's 768 is the
audio size) and ``epochs = 10`` of ``trials_per_epoch = 100`` fresh trials with early stopping
(the spec's "up to 15 epochs on 10 % of the data" refers to Hey Snips). The initial potential
is our choice (see above). Accuracy here uses true labels; the reference's FORCE *mismatch*
accuracy is agreement with the teacher's label (§17 item 10), which callers compute from
``teacher.decide``-style comparisons themselves.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect
from spikefleet.errors import is_finite_number as _is_num
from spikefleet.errors import is_positive_int as _is_pos_int
from spikefleet.models.spiking import RateNetwork, SpikingConfig, SpikingNetwork, SpikingState
from spikefleet.neurons.lif import LIF
from spikefleet.seeds import FORCE_INIT as _FORCE_INIT
from spikefleet.seeds import VAL as VAL_STREAM
from spikefleet.seeds import seed_stream
from spikefleet.simulate import simulate_batch
from spikefleet.train.ads import reconstruction_error, teacher_dynamics, training_inputs
from spikefleet.train.loop import TrainingDiverged

__all__ = [
    "FORCEConfig", "FORCENetwork", "FORCEState", "FORCE_INIT_STREAM", "build_force", "force_omega",
    "rls_update", "rls_fit", "learn_sample", "learn_trials", "initial_p", "evaluate_force", "train_force",
    "teacher_dynamics",
]

#: seed stream of the FORCE instance (Ω, W_in, E, V[0]); spikefleet.seeds lists streams 1–8.
FORCE_INIT_STREAM = _FORCE_INIT
BALANCES = ("post", "pre")


# ------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class FORCEConfig:
    """Everything static about a FORCE design and its training (spec §13.2; XOR defaults).

    ``n_in``, ``n_hat``, ``n_out`` (teacher input channels C, teacher units N̂, outputs O) are
    ``None`` until :func:`build_force` fills them in from the teacher. Potentials in mV
    (Nicola & Clopath), times in seconds. ``v_rest + bias`` is where the membrane relaxes
    without input (−40 = ``v_th``: neurons sit at threshold).
    """

    n: int = 320
    tau_mem: float = 0.01
    tau_syn: float = 0.07
    tau_r: float = 0.07
    t_ref: float = 0.002
    v_reset: float = -65.0
    v_th: float = -40.0
    v_rest: float = 0.0
    bias: float = -40.0
    g: float = 0.04
    p: float = 0.1
    q: float = 10.0
    alpha: float = 1e-5
    balance: str = "post"
    dt: float = 1e-3
    epochs: int = 10
    trials_per_epoch: int = 100
    val_trials: int = 200
    patience: int = 2
    n_in: Optional[int] = None
    n_hat: Optional[int] = None
    n_out: Optional[int] = None

    def __post_init__(self):
        name = type(self).__name__
        for f in ("n", "epochs", "trials_per_epoch", "val_trials", "patience"):
            expect(_is_pos_int(getattr(self, f)), f"{name}.{f}", "a positive integer", getattr(self, f))
        for f in ("n_in", "n_hat", "n_out"):
            v = getattr(self, f)
            expect(v is None or _is_pos_int(v), f"{name}.{f}", "a positive integer or None", v)
        for f in ("v_reset", "v_th", "v_rest", "bias"):
            expect(_is_num(getattr(self, f)), f"{name}.{f}", "a finite number (mV)", getattr(self, f))
        for f in ("tau_mem", "tau_syn", "tau_r", "dt", "alpha"):
            v = getattr(self, f)
            expect(_is_num(v) and v > 0, f"{name}.{f}", "a positive finite number", v)
        for f in ("t_ref", "g", "q"):
            v = getattr(self, f)
            expect(_is_num(v) and v >= 0, f"{name}.{f}", "a finite number >= 0", v)
        expect(_is_num(self.p) and 0 < self.p <= 1, f"{name}.p", "a connection probability in (0, 1]", self.p)
        expect(self.v_reset < self.v_th, f"{name}.v_reset", f"a value below v_th={self.v_th}", self.v_reset)
        expect(self.balance in BALANCES, f"{name}.balance", f"one of {BALANCES}", self.balance)

    @property
    def sized(self) -> bool:
        """Whether the teacher sizes ``n_in``, ``n_hat``, ``n_out`` are set."""
        return None not in (self.n_in, self.n_hat, self.n_out)

    def spiking_config(self) -> SpikingConfig:
        """The :class:`SpikingConfig` of the FORCE core (``N̂ → N → N̂``)."""
        expect(self.sized, "FORCEConfig.n_hat", "the teacher sizes n_in, n_hat, n_out (set by build_force)",
               (self.n_in, self.n_hat, self.n_out))
        return SpikingConfig(n_in=self.n_hat, n_hidden=self.n, n_out=self.n_hat, dt=self.dt, fast=False,
                             input_target="current", reset="value", max_spikes=1, refractory=self.t_ref,
                             integrator="euler", synapse_norm="unit_area", readout_norm="unit_area")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FORCEConfig":
        return cls(**d)


# ----------------------------------------------------------------------------------- network
class FORCEState(NamedTuple):
    """State of a :class:`FORCENetwork`: the core's state and the decoded ``z`` of the previous step."""

    core: SpikingState
    z: jax.Array  # [N̂] decoded z of the previous step (fed back through E at this step)


class FORCENetwork(eqx.Module):
    """Teacher input projection + FORCE core with z-feedback + teacher readout (see module doc).

    ``step(state, x_t, *, key, current)`` follows the :class:`SpikingNetwork` protocol, so
    :func:`spikefleet.simulate.simulate` works unchanged; ``current`` is added to the feedback
    current. Traces: the core's (``spikes, v, r, i_syn``) plus ``z``.
    """

    #: on-chip weights outside the core (perturbed and quantised with the core; spec §14.2, §14.3)
    CHIP_WEIGHTS = {"w_feedback": lambda m: m.e}

    f_hat: jax.Array  # [C, N̂]  teacher input weights F̂
    d_hat: jax.Array  # [N̂, O]  teacher readout D̂
    e: jax.Array  # [N̂, N]  feedback encoders E
    core: SpikingNetwork  # N̂ -> N LIF -> N̂ (w_in = N(0,1) projection, w_rec = Ω, w_out = Φ)
    config: FORCEConfig = eqx.field(static=True)

    def __check_init__(self):
        cfg = self.config
        expect(cfg.sized, "FORCENetwork.config", "a FORCEConfig with n_in, n_hat, n_out set", cfg)
        shapes = {"f_hat": (cfg.n_in, cfg.n_hat), "d_hat": (cfg.n_hat, cfg.n_out), "e": (cfg.n_hat, cfg.n)}
        for name, shape in shapes.items():
            expect(getattr(self, name).shape == shape, f"FORCENetwork.{name}", f"shape {shape}",
                   getattr(self, name).shape)
        sizes = (self.core.config.n_in, self.core.config.n_hidden, self.core.config.n_out)
        expect(sizes == (cfg.n_hat, cfg.n, cfg.n_hat), "FORCENetwork.core.config",
               f"an N̂ -> N -> N̂ core with (n_in, n_hidden, n_out) = {(cfg.n_hat, cfg.n, cfg.n_hat)}", sizes)

    @classmethod
    def skeleton(cls, config: FORCEConfig) -> "FORCENetwork":
        """Zero/placeholder parameters of the right shapes (for loading checkpoints)."""
        expect(isinstance(config, FORCEConfig) and config.sized, "config", "a FORCEConfig with sizes set", config)
        c, m, o, n = config.n_in, config.n_hat, config.n_out, config.n
        zeros = lambda *s: jnp.zeros(s, jnp.float32)  # noqa: E731
        core = _make_core(config, zeros(m, n), zeros(n, n), jnp.full((n,), config.v_reset, jnp.float32))
        return cls(f_hat=zeros(c, m), d_hat=zeros(m, o), e=zeros(m, n), core=core, config=config)

    @property
    def dt(self) -> float:
        return self.config.dt

    @property
    def decoder(self) -> jax.Array:
        """The learned decoder Φ [N, N̂] (``z = r @ Φ``)."""
        return self.core.w_out

    def with_decoder(self, phi: jax.Array) -> "FORCENetwork":
        return eqx.tree_at(lambda m: m.core.w_out, self, phi)

    def init_state(self) -> FORCEState:
        return FORCEState(core=self.core.init_state(), z=jnp.zeros((self.config.n_hat,), jnp.float32))

    def step_index(self, state: FORCEState) -> jax.Array:
        """Index of the next step within the sample (for runtime noise, see ``simulate``)."""
        return self.core.step_index(state.core)

    def drive(self, x_t):
        """The teacher's weighted input ``F̂ᵀc`` (``[..., N̂]``, no extra amplitude)."""
        return x_t @ self.f_hat

    def step(self, state: FORCEState, x_t, *, key=None, current=None):
        feedback = state.z @ self.e
        if current is not None:
            feedback = feedback + current
        core, z, traces = self.core.step(state.core, self.drive(x_t), key=key, current=feedback)
        return FORCEState(core=core, z=z), z @ self.d_hat, {**traces, "z": z}

    def to_spiking(self) -> SpikingNetwork:
        """The same inference network as one :class:`SpikingNetwork` ``C → N → O``: the feedback
        folds into the recurrent weights (``w_rec = Ω + Φ E``; exact because the synapse and the
        readout share the 70 ms unit-area filter, needs ``tau_syn == tau_r``), ``w_in = F̂ W_in``,
        ``w_out = Φ D̂``. Equal up to float rounding."""
        expect(math.isclose(self.config.tau_syn, self.config.tau_r), "FORCEConfig.tau_syn",
               f"equal to tau_r={self.config.tau_r} to fold the feedback", self.config.tau_syn)
        core = self.core
        cfg = dataclasses.replace(core.config, n_in=self.config.n_in, n_out=self.config.n_out)
        return SpikingNetwork(w_in=self.f_hat @ core.w_in, w_rec=core.w_rec + core.w_out @ self.e,
                              w_out=core.w_out @ self.d_hat, b_out=jnp.zeros((self.config.n_out,), jnp.float32),
                              tau_out=core.tau_out, neurons=core.neurons, w_fast=None, config=cfg)


def force_omega(key: jax.Array, n: int, g: float, p: float, balance: str = "post") -> jax.Array:
    """Static recurrent weights Ω [N, N] (``w[pre, post]``), spec §13.2.

    ``Ω = G·N(0,1)·Bernoulli(p)/(p√N)``, then the mean of the non-zero entries is subtracted
    per postsynaptic neuron (``balance="post"``, column of ``w[pre, post]``; Nicola & Clopath's
    row) or per presynaptic neuron (``"pre"``). The draws come from ``_rng(key, 1)`` (NumPy):
    first the N(0, 1) values [N, N], then U(0, 1) numbers whose ``< p`` gives the mask.
    Computed in float64, returned as float32.
    """
    expect(balance in BALANCES, "balance", f"one of {BALANCES}", balance)
    rng = _rng(key, 1)
    values = rng.standard_normal((n, n))
    mask = rng.random((n, n)) < p
    w = g * values * mask / (p * math.sqrt(n))
    axis = 0 if balance == "post" else 1
    count = mask.sum(axis=axis, keepdims=True)
    mean = w.sum(axis=axis, keepdims=True) / np.maximum(count, 1)
    return jnp.asarray((w - mean) * mask, jnp.float32)


def _rng(key, stream: int) -> np.random.Generator:
    """NumPy generator number ``stream`` of a JAX PRNG key (``SeedSequence([*key data, stream])``):
    building a design needs no XLA compilation."""
    return np.random.default_rng([*np.asarray(jax.random.key_data(key), np.uint32).ravel().tolist(), stream])


def _draw(key, m, n, g, p, balance, q, v_reset, v_th):
    """The random parts of a FORCE instance: Ω, W_in, E, V[0] (float32)."""
    rng = _rng(key, 0)
    omega = force_omega(key, n, g, p, balance)
    w_in = rng.standard_normal((m, n))
    e = rng.uniform(-q, q, (m, n))
    v_init = rng.uniform(v_reset, v_th, n)
    return (omega,) + tuple(jnp.asarray(x, jnp.float32) for x in (w_in, e, v_init))


def _make_core(config: FORCEConfig, w_in, w_rec, v_init) -> SpikingNetwork:
    scfg = config.spiking_config()
    n = config.n
    neurons = LIF.create(n, n_synapses=1, tau_mem=config.tau_mem, tau_syn=config.tau_syn, threshold=config.v_th,
                         v_rest=config.v_rest, v_reset=config.v_reset, bias=config.bias,
                         v_init=jnp.asarray(v_init, jnp.float32), dt=config.dt, reset=scfg.reset,
                         refractory=scfg.refractory, max_spikes=scfg.max_spikes, integrator=scfg.integrator,
                         synapse_norm=scfg.synapse_norm, noise=scfg.noise, surrogate=scfg.make_surrogate())
    return SpikingNetwork(w_in=jnp.asarray(w_in, jnp.float32), w_rec=jnp.asarray(w_rec, jnp.float32),
                          w_out=jnp.zeros((n, config.n_hat), jnp.float32),
                          b_out=jnp.zeros((config.n_hat,), jnp.float32),
                          tau_out=jnp.full((n,), config.tau_r, jnp.float32), neurons=neurons, w_fast=None,
                          config=scfg)


def build_force(teacher: RateNetwork, config: FORCEConfig, key: jax.Array) -> FORCENetwork:
    """A fresh FORCE design for ``teacher`` (spec §13.2), decoder Φ = 0.

    Random draws (NumPy, seeded from ``key``, see :func:`_rng`): Ω from stream 1
    (:func:`force_omega`); W_in ~ N(0, 1), E ~ U(−Q, Q), V[0] ~ U(V_reset, V_th), in this
    order, from stream 0. The returned network's config has ``n_in, n_hat, n_out`` from the
    teacher.
    """
    expect(isinstance(teacher, RateNetwork), "teacher", "a RateNetwork", type(teacher).__name__)
    expect(isinstance(config, FORCEConfig), "config", "a FORCEConfig", type(config).__name__)
    sizes = {"n_in": teacher.config.n_in, "n_hat": teacher.config.n_hidden, "n_out": teacher.config.n_out}
    for name, value in sizes.items():
        got = getattr(config, name)
        expect(got is None or got == value, f"FORCEConfig.{name}", f"None or the teacher's {value}", got)
    config = dataclasses.replace(config, **sizes)
    omega, w_in, e, v_init = _draw(key, config.n_hat, config.n, config.g, config.p, config.balance, config.q,
                                   config.v_reset, config.v_th)
    return FORCENetwork(f_hat=jnp.asarray(teacher.w_in, jnp.float32), d_hat=jnp.asarray(teacher.w_out, jnp.float32),
                        e=e, core=_make_core(config, w_in, omega, v_init), config=config)


# --------------------------------------------------------------------------------- learning
def initial_p(config: FORCEConfig) -> jax.Array:
    """``P[0] = α I`` [N, N]."""
    return config.alpha * jnp.eye(config.n, dtype=jnp.float32)


def rls_update(phi, p, r, err, gate=1.0):
    """One RLS step (spec §13.2): ``Φ ← Φ − (Pr)eᵀ``, ``P ← P − (Pr)(Pr)ᵀ/(1 + rᵀPr)``.

    ``phi`` [N, M], ``p`` [N, N] (symmetric), ``r`` [N], ``err`` [M] = ``z − target`` with
    ``z = r @ phi`` (before the update). ``gate`` (0 or 1) switches the update off (padding).
    """
    pr = p @ r
    phi = phi - gate * jnp.outer(pr, err)
    p = p - (gate / (1.0 + r @ pr)) * jnp.outer(pr, pr)
    return phi, p


@jax.jit
def rls_fit(phi, p, rs, targets):
    """RLS over a fixed sequence: for each ``t``, ``e = rs[t] @ Φ − targets[t]`` then
    :func:`rls_update`. Returns ``(Φ, P, e [T, M])`` (``e`` is the a-priori error)."""
    def body(carry, xs):
        phi, p = carry
        r, target = xs
        err = r @ phi - target
        return rls_update(phi, p, r, err), err

    (phi, p), errs = jax.lax.scan(body, (phi, p), (rs, targets))
    return phi, p, errs


def _rls_run(net: FORCENetwork, phi, p, inputs, target, gate):
    """One sample with feedback and per-step RLS; returns ``(Φ, P, metrics)``."""
    core = net.core
    target = jnp.asarray(target, jnp.float32)

    def body(carry, xs):
        state, z_prev, phi, p = carry
        c_t, xhat_t = xs
        run = eqx.tree_at(lambda c: c.w_out, core, phi)
        state, z, traces = run.step(state, c_t, current=z_prev @ net.e)
        err = z - xhat_t
        phi, p = rls_update(phi, p, traces["r"], err, gate)
        return (state, z, phi, p), (z, traces["spikes"].sum())

    init = (core.init_state(), jnp.zeros((net.config.n_hat,), jnp.float32), phi, p)
    (_, _, phi, p), (z, spikes) = jax.lax.scan(body, init, (net.drive(jnp.asarray(inputs, jnp.float32)), target))
    metrics = {
        "mse": jnp.mean((z - target) ** 2),
        "e_rec": reconstruction_error(target, z),
        "rate_hz": jnp.sum(spikes) / (net.config.n * target.shape[0] * net.dt),
    }
    return phi, p, metrics


@eqx.filter_jit
def _learn_block(net, p, inputs, targets, gates):
    def body(carry, xs):
        phi, p = carry
        phi, p, metrics = _rls_run(net, phi, p, *xs)
        return (phi, p), metrics

    (phi, p), metrics = jax.lax.scan(body, (net.core.w_out, p), (inputs, targets, gates))
    return net.with_decoder(phi), p, metrics


def learn_trials(net: FORCENetwork, p, inputs, targets, gates=None):
    """RLS learning on ``B`` samples in sequence, one jitted ``lax.scan`` (carry = (Φ, P)).

    ``inputs`` [B, T, C], ``targets`` [B, T, N̂] (teacher dynamics x̂), ``p`` [N, N] the RLS
    matrix (start with :func:`initial_p`), ``gates`` [B] (1 = learn, 0 = run without updating;
    default all 1). Every sample starts from ``net.init_state()``. Returns
    ``(new_net, new_p, metrics)`` with per-sample ``mse`` (mean (z − x̂)² during learning),
    ``e_rec`` and ``rate_hz`` arrays ``[B]``.
    """
    inputs = jnp.asarray(inputs, jnp.float32)
    gates = jnp.ones((inputs.shape[0],), jnp.float32) if gates is None else jnp.asarray(gates, jnp.float32)
    return _learn_block(net, jnp.asarray(p, jnp.float32), inputs, jnp.asarray(targets, jnp.float32), gates)


def learn_sample(net: FORCENetwork, p, inputs, target_dyn):
    """One RLS pass over one sample ``[T, C]`` with target ``[T, N̂]``; returns ``(net, p, metrics)``."""
    net, p, metrics = learn_trials(net, p, jnp.asarray(inputs)[None], jnp.asarray(target_dyn)[None])
    return net, p, {k: v[0] for k, v in metrics.items()}


# ------------------------------------------------------------------------------- evaluation
@eqx.filter_jit
def _inference_chunk(net, inputs, xhat):
    res = simulate_batch(net, inputs, record=("z",), accumulate=("spikes",))
    z = res.traces["z"]
    rate = res.totals["spikes"].mean(-1) / (inputs.shape[1] * net.dt)
    return res.outputs, reconstruction_error(xhat, z), jnp.mean((xhat - z) ** 2, axis=(1, 2)), rate


def evaluate_force(net: FORCENetwork, task, batch, target_dyn=None, *, chunk: int = 50) -> dict:
    """Inference metrics of ``net`` on a task batch.

    ``accuracy`` (task decision rule on ``y``, true labels), ``loss`` (output MSE vs the task
    target), ``rate_hz`` (mean over neurons and trials); with the teacher dynamics
    ``target_dyn`` [B, T, N̂] also ``dyn_mse`` (mean (x̂ − z)²) and ``e_rec`` (mean per-trial
    normalised reconstruction error, see :func:`spikefleet.train.ads.reconstruction_error`).
    """
    inputs = np.asarray(batch.inputs, np.float32)
    b = inputs.shape[0]
    xhat = np.zeros((b, inputs.shape[1], net.config.n_hat), np.float32) if target_dyn is None \
        else np.asarray(target_dyn, np.float32)
    chunk = max(1, min(chunk, b))
    parts = []
    for start in range(0, b, chunk):
        x, t = inputs[start:start + chunk], xhat[start:start + chunk]
        pad = chunk - x.shape[0]
        if pad:  # pad so that only one shape is compiled
            x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
            t = np.concatenate([t, np.repeat(t[-1:], pad, 0)])
        parts.append([np.asarray(v)[: chunk - pad] for v in _inference_chunk(net, jnp.asarray(x), jnp.asarray(t))])
    outputs, e_rec, dyn_mse, rate = (np.concatenate(p) for p in zip(*parts))
    out = {
        "accuracy": float(task.accuracy(outputs, batch.labels)),
        "loss": float(np.mean((outputs - np.asarray(batch.targets)) ** 2)),
        "rate_hz": float(np.mean(rate)),
    }
    if target_dyn is not None:
        out.update(dyn_mse=float(np.mean(dyn_mse)), e_rec=float(np.mean(e_rec)))
    return out


def _better(new: dict, best: Optional[dict]) -> bool:
    """Model selection: higher validation accuracy, ties broken by lower output MSE."""
    if best is None:
        return True
    if new["accuracy"] != best["accuracy"]:
        return new["accuracy"] > best["accuracy"]
    return new["loss"] < best["loss"]


# --------------------------------------------------------------------------------- training
def train_force(teacher: RateNetwork, task, config: FORCEConfig, seed: int, *, progress: bool = True,
                block: int = 25):
    """Train a FORCE design on ``task`` to reproduce ``teacher``'s dynamics (spec §13.2).

    Up to ``config.epochs × config.trials_per_epoch`` fresh trials, batch size 1, RLS at every
    step; trials are learned ``block`` at a time inside one jitted scan (a short last block
    is padded with gate-0 trials, which change nothing). After each epoch: validation on
    ``config.val_trials`` fresh trials; keep the best by accuracy (tie → lower output MSE);
    stop after ``config.patience`` consecutive epochs without improvement.

    Returns ``(best FORCENetwork, info)``; ``info`` has ``task``, ``method`` ("force"),
    ``seed``, ``config``, ``best_epoch``, ``epochs_run``, ``stopped_early``, ``validation``
    (best metrics), ``history`` (per-epoch validation and training means), ``seconds`` and
    ``seconds_per_1000_trials`` (learning only, first block excluded: it includes compilation).
    """
    from tqdm.auto import tqdm

    expect(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "a non-negative integer",
           seed)
    expect(_is_pos_int(block), "block", "a positive integer", block)
    expect(isinstance(config, FORCEConfig), "config", "a FORCEConfig", type(config).__name__)
    for name, obj in (("task", task), ("teacher", teacher)):
        expect(math.isclose(obj.dt, config.dt), f"{name}.dt", f"the FORCE time step {config.dt}", obj.dt)
    t_start = time.perf_counter()
    net = build_force(teacher, config, jax.random.PRNGKey(seed_stream(seed, FORCE_INIT_STREAM)))
    config = net.config
    p = initial_p(config)
    val = task.generate(config.val_trials, seed_stream(seed, VAL_STREAM))
    val_xhat = np.asarray(teacher_dynamics(teacher, val.inputs))

    best, best_metrics, best_epoch, history, stale, stopped = net, None, 0, [], 0, False
    learn_time, timed_trials, first = 0.0, 0, True
    n_iter = config.epochs * config.trials_per_epoch
    bar = tqdm(total=n_iter, desc=f"{task.name}/force", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_metrics = []
            lo = (epoch - 1) * config.trials_per_epoch
            for start in range(lo, lo + config.trials_per_epoch, block):
                stop = min(start + block, lo + config.trials_per_epoch)
                real = stop - start
                inputs = training_inputs(task, seed, start, stop)
                gates = np.ones(block, np.float32)
                if real < block:
                    inputs = np.concatenate([inputs, np.repeat(inputs[-1:], block - real, 0)])
                    gates[real:] = 0.0
                targets = teacher_dynamics(teacher, inputs)
                tic = time.perf_counter()
                new_net, new_p, metrics = learn_trials(net, p, inputs, targets, gates)
                phi = jax.block_until_ready(new_net.decoder)
                if not first:
                    learn_time += time.perf_counter() - tic
                    timed_trials += real
                first = False
                if not (bool(jnp.all(jnp.isfinite(phi))) and bool(jnp.all(jnp.isfinite(new_p)))):
                    raise TrainingDiverged(f"{task.name}/force: decoder or P became non-finite in epoch {epoch} "
                                           f"(trials {start}..{stop - 1}); try a larger alpha or a smaller q")
                net, p = new_net, new_p
                epoch_metrics.append({name: np.asarray(v)[:real] for name, v in metrics.items()})
                bar.update(real)
            train_means = {f"train_{name}": float(np.mean(np.concatenate([m[name] for m in epoch_metrics])))
                           for name in epoch_metrics[0]}
            val_metrics = evaluate_force(net, task, val, val_xhat)
            history.append({"epoch": epoch, **val_metrics, **train_means})
            if _better(val_metrics, best_metrics):
                best, best_metrics, best_epoch, stale = net, val_metrics, epoch, 0
            else:
                stale += 1
            bar.set_postfix(acc=f"{val_metrics['accuracy']:.3f}", mse=f"{val_metrics['loss']:.4f}",
                            rate=f"{val_metrics['rate_hz']:.1f}Hz")
            if stale >= config.patience and epoch < config.epochs:
                stopped = True
                break
    finally:
        bar.close()
    info = {
        "task": task.name, "method": "force", "seed": seed, "config": config.to_dict(), "best_epoch": best_epoch,
        "epochs_run": len(history), "stopped_early": stopped, "validation": best_metrics, "history": history,
        "seconds": time.perf_counter() - t_start,
        "seconds_per_1000_trials": (1000.0 * learn_time / timed_trials) if timed_trials else None,
    }
    return best, info
