r"""The FORCE baseline design (Nicola & Clopath, Nat. Commun. 2017): a LIF network with a decoder
learned by recursive least squares to reproduce a teacher's dynamics; this module is the design
and its construction, the learning rule is :mod:`spikefleet.train.force`.

Units: time in seconds, potentials and currents in "mV" (Nicola & Clopath's numbers),
readout/synaptic traces in Hz. Orientation everywhere ``w[pre, post]`` (row = presynaptic),
drives ``x @ w``.

Architecture (:class:`FORCENetwork`)::

    c[t] --F̂--> F̂ᵀc[t] --W_in (N(0,1), [N̂, N])--> N LIF neurons (Ω static) --Φ--> z[t] --D̂--> y[t]
                                                        ^                        |
                                                        +------- E [N̂, N] -------+  (z[t−1] @ E)

with ``F̂ = teacher.w_in`` [C, N̂], ``D̂ = teacher.w_out`` [N̂, O]. The on-chip part is the
``core`` (:class:`~spikefleet.models.spiking.SpikingNetwork`, ``input_target="current"``): ``core.w_in``
= the fixed N(0, 1) projection (paper: "F̂ᵀc projected by a fixed random N(0, 1) matrix"),
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
drawn once per instance (paper: not stated; Nicola & Clopath draw random initial potentials),
all currents and traces 0.

Weights (:func:`build_force`, Büchel et al. 2021: FORCE-trained LIF network)::

    Ω  = G · N(0,1) · Bernoulli(p) / (p √N),  G = 0.04, p = 0.1; then the mean of the non-zero
         entries is subtracted "row by row": ``balance="post"`` (default) balances the incoming
         weights of each neuron (Nicola & Clopath's row = postsynaptic, i.e. each *column* of
         w_rec[pre, post] has zero mean over its non-zero entries); ``balance="pre"`` uses
         the rows of w_rec[pre, post]. Self-connections are not removed (as in N&C).
    W_in ~ N(0, 1) [N̂, N];  E ~ U(−Q, Q) [N̂, N], Q = 10;  Φ = 0 [N, N̂];  P[0] = α I, α = 1e−5.

Seeds: the instance key is ``PRNGKey(seed_stream(seed, FORCE_INIT_STREAM))`` with
``FORCE_INIT_STREAM = seeds.FORCE_INIT`` (9, see :mod:`spikefleet.seeds`); :func:`build_force`
draws Ω, W_in, E and V[0] with NumPy generators seeded from that key's data (no XLA
compilation of threefry code, which costs seconds per shape on a CPU).

Deviations from the paper's settings (which describes the Hey Snips baseline): for temporal XOR the
default is ``N = 320`` neurons (as for Network ADS on XOR, Büchel et al. 2021: temporal XOR; the paper's 768 is the
audio size) and ``epochs = 10`` of ``trials_per_epoch = 100`` fresh trials with early stopping
(the paper's "up to 15 epochs on 10 % of the data" refers to Hey Snips). The initial potential
is our choice (see above). Accuracy here uses true labels; the reference's FORCE *mismatch*
accuracy is agreement with the teacher's label (Büchel et al. 2021: reference-implementation quirks item 10), which callers compute from
``teacher.decide``-style comparisons themselves.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect, is_finite_number
from spikefleet.models.base import Model
from spikefleet.models.composite import TeacherSized, check_composite, make_core, with_teacher_sizes
from spikefleet.models.config import FINITE, NON_NEGATIVE, POSITIVE
from spikefleet.models.rate import RateNetwork
from spikefleet.models.registry import register
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork, SpikingState
from spikefleet.seeds import FORCE_INIT as _FORCE_INIT

__all__ = ["FORCEConfig", "FORCENetwork", "FORCEState", "FORCE_INIT_STREAM", "BALANCES", "build_force",
           "force_omega"]

#: seed stream of the FORCE instance (Ω, W_in, E, V[0]); spikefleet.seeds lists streams 1–8.
FORCE_INIT_STREAM = _FORCE_INIT
#: how Ω is balanced: per postsynaptic neuron (``"post"``) or per presynaptic neuron (``"pre"``)
BALANCES = ("post", "pre")


@dataclass(frozen=True)
class FORCEConfig(TeacherSized):
    """Everything static about a FORCE design and its training (Büchel et al. 2021: FORCE-trained LIF network; XOR defaults).

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
        self.check_common(("n", "epochs", "trials_per_epoch", "val_trials", "patience"),
                          (("v_reset", "v_th", "v_rest", "bias"), FINITE.but("a finite number (mV)")),
                          (("tau_mem", "tau_syn", "tau_r", "dt", "alpha"), POSITIVE),
                          (("t_ref", "g", "q"), NON_NEGATIVE))
        expect(is_finite_number(self.p) and 0 < self.p <= 1, f"{name}.p", "a connection probability in (0, 1]", self.p)
        expect(self.v_reset < self.v_th, f"{name}.v_reset", f"a value below v_th={self.v_th}", self.v_reset)
        expect(self.balance in BALANCES, f"{name}.balance", f"one of {BALANCES}", self.balance)

    def spiking_config(self) -> SpikingConfig:
        """The :class:`SpikingConfig` of the FORCE core (``N̂ → N → N̂``)."""
        return self.core_config(builder="build_force", fast=False, refractory=self.t_ref)


class FORCEState(NamedTuple):
    """State of a :class:`FORCENetwork`: the core's state and the decoded ``z`` of the previous step."""

    core: SpikingState
    z: jax.Array  # [N̂] decoded z of the previous step (fed back through E at this step)


class FORCENetwork(Model):
    """Teacher input projection + FORCE core with z-feedback + teacher readout (see module doc).

    ``step(state, x_t, *, key, current)`` follows the :class:`SpikingNetwork` protocol, so
    :func:`spikefleet.simulation.simulate` works unchanged; ``current`` is added to the feedback
    current. Traces: the core's (``spikes, v, r, i_syn``) plus ``z``.
    """

    #: on-chip weights outside the core (perturbed and quantised with the core; Büchel et al. 2021: parameter mismatch, Büchel et al. 2021: weight quantisation)
    CHIP_WEIGHTS = {"w_feedback": lambda m: m.e}

    f_hat: jax.Array  # [C, N̂]  teacher input weights F̂
    d_hat: jax.Array  # [N̂, O]  teacher readout D̂
    e: jax.Array  # [N̂, N]  feedback encoders E
    core: SpikingNetwork  # N̂ -> N LIF -> N̂ (w_in = N(0,1) projection, w_rec = Ω, w_out = Φ)
    config: FORCEConfig = eqx.field(static=True)

    def __check_init__(self):
        cfg = self.config
        check_composite(self, {"f_hat": (cfg.n_in, cfg.n_hat), "d_hat": (cfg.n_hat, cfg.n_out),
                               "e": (cfg.n_hat, cfg.n)})

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
    """Static recurrent weights Ω [N, N] (``w[pre, post]``), Büchel et al. 2021: FORCE-trained LIF network.

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
    return make_core(config, tau_syn=config.tau_syn, bias=config.bias, v_init=v_init,
                     w_in=jnp.asarray(w_in, jnp.float32), w_rec=jnp.asarray(w_rec, jnp.float32),
                     w_out=jnp.zeros((config.n, config.n_hat), jnp.float32), w_fast=None)


def build_force(teacher: RateNetwork, config: FORCEConfig, key: jax.Array) -> FORCENetwork:
    """A fresh FORCE design for ``teacher`` (Büchel et al. 2021: FORCE-trained LIF network), decoder Φ = 0.

    Random draws (NumPy, seeded from ``key``, see :func:`_rng`): Ω from stream 1
    (:func:`force_omega`); W_in ~ N(0, 1), E ~ U(−Q, Q), V[0] ~ U(V_reset, V_th), in this
    order, from stream 0. The returned network's config has ``n_in, n_hat, n_out`` from the
    teacher.
    """
    config = with_teacher_sizes(teacher, config, FORCEConfig)
    omega, w_in, e, v_init = _draw(key, config.n_hat, config.n, config.g, config.p, config.balance, config.q,
                                   config.v_reset, config.v_th)
    return FORCENetwork(f_hat=jnp.asarray(teacher.w_in, jnp.float32), d_hat=jnp.asarray(teacher.w_out, jnp.float32),
                        e=e, core=_make_core(config, w_in, omega, v_init), config=config)


register("force", FORCENetwork, FORCEConfig)
