r"""Teacher-based composite designs: a teacher's fixed projections around an on-chip spiking core.

Network ADS (Büchel et al. 2021, Sci. Rep.) and the FORCE baseline (Nicola & Clopath 2017,
Nat. Commun.) share one shape (``w[pre, post]``)::

    c[t] --F̂--> N̂ --core: N̂ → N LIF → N̂--> N̂ --D̂--> y[t]

with ``F̂ = teacher.w_in`` [C, N̂] and ``D̂ = teacher.w_out`` [N̂, O] of a
:class:`~spikefleet.models.rate.RateNetwork` teacher, and a
:class:`~spikefleet.models.spiking.SpikingNetwork` core driven by currents (``input_target =
"current"``), with unit-area synapses and readout, an Euler membrane, reset to ``V_reset`` and at
most one spike per neuron and step. This module holds what the two designs share: the
:class:`TeacherSized` config mixin (the sizes ``n_in``, ``n_hat``, ``n_out`` come from the
teacher), the core's config and construction (:func:`make_core`) and the shape checks.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from spikefleet.errors import expect
from spikefleet.models.config import OPTIONAL_POSITIVE_INT, POSITIVE_INT, check_fields
from spikefleet.models.rate import RateNetwork
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork
from spikefleet.neurons.lif import LIF

__all__ = ["TeacherSized", "check_composite", "with_teacher_sizes", "make_core"]


def _a(name: str) -> str:
    """``name`` with its indefinite article (``an ADSConfig``, ``a FORCEConfig``)."""
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


class TeacherSized:
    """Mixin of the frozen config dataclasses of composite designs: fields ``n``, ``dt``,
    ``tau_mem``, ``tau_r``, ``v_th``, ``v_rest``, ``v_reset`` and the teacher sizes ``n_in``,
    ``n_hat``, ``n_out`` (input channels C, teacher units N̂, outputs O; ``None`` until built)."""

    def check_common(self, positive_ints: tuple, *groups) -> None:
        """The positive-integer fields, the optional teacher sizes, then ``groups`` (see
        :func:`~spikefleet.models.config.check_fields`)."""
        check_fields(self, ((positive_ints, POSITIVE_INT), (("n_in", "n_hat", "n_out"), OPTIONAL_POSITIVE_INT),
                            *groups))

    @property
    def sized(self) -> bool:
        """Whether the teacher sizes ``n_in``, ``n_hat``, ``n_out`` are set."""
        return None not in (self.n_in, self.n_hat, self.n_out)

    def core_config(self, *, builder: str, fast: bool, refractory: float) -> SpikingConfig:
        """The :class:`SpikingConfig` of the core (``N̂ → N → N̂``); needs the teacher sizes."""
        expect(self.sized, f"{type(self).__name__}.n_hat", f"the teacher sizes n_in, n_hat, n_out (set by {builder})",
               (self.n_in, self.n_hat, self.n_out))
        return SpikingConfig(n_in=self.n_hat, n_hidden=self.n, n_out=self.n_hat, dt=self.dt, fast=fast,
                             input_target="current", reset="value", max_spikes=1, refractory=refractory,
                             integrator="euler", synapse_norm="unit_area", readout_norm="unit_area")

    def to_dict(self) -> dict:
        """The fields as a plain dict (JSON-ready; the checkpoint's config)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """The config of a :meth:`to_dict` dict."""
        return cls(**d)


def check_composite(net, shapes: dict) -> None:
    """``__check_init__`` of a composite network: a sized config, the outer matrices of ``shapes``
    (name -> shape) and an ``N̂ → N → N̂`` core."""
    cfg, name = net.config, type(net).__name__
    expect(cfg.sized, f"{name}.config", f"{_a(type(cfg).__name__)} with n_in, n_hat, n_out set", cfg)
    for field, shape in shapes.items():
        expect(getattr(net, field).shape == shape, f"{name}.{field}", f"shape {shape}", getattr(net, field).shape)
    sizes = (net.core.config.n_in, net.core.config.n_hidden, net.core.config.n_out)
    expect(sizes == (cfg.n_hat, cfg.n, cfg.n_hat), f"{name}.core.config",
           f"an N̂ -> N -> N̂ core with (n_in, n_hidden, n_out) = {(cfg.n_hat, cfg.n, cfg.n_hat)}", sizes)


def with_teacher_sizes(teacher, config, config_class: type):
    """``config`` with ``n_in``, ``n_hat``, ``n_out`` of ``teacher`` (each must be unset or equal)."""
    expect(isinstance(teacher, RateNetwork), "teacher", "a RateNetwork", type(teacher).__name__)
    expect(isinstance(config, config_class), "config", _a(config_class.__name__), type(config).__name__)
    sizes = {"n_in": teacher.config.n_in, "n_hat": teacher.config.n_hidden, "n_out": teacher.config.n_out}
    for name, value in sizes.items():
        got = getattr(config, name)
        expect(got is None or got == value, f"{config_class.__name__}.{name}", f"None or the teacher's {value}", got)
    return dataclasses.replace(config, **sizes)


def make_core(config, *, tau_syn, bias: float, v_init, w_in: jax.Array, w_rec: jax.Array, w_out: jax.Array,
              w_fast) -> SpikingNetwork:
    """The spiking core of a composite design with config ``config`` (a :class:`TeacherSized`
    with ``spiking_config()``): LIF neurons with ``tau_mem``, ``tau_syn``, threshold ``v_th``,
    ``v_rest``, ``v_reset``, ``bias`` and initial potentials ``v_init``; readout filter ``tau_r``."""
    scfg = config.spiking_config()
    n = config.n
    neurons = LIF.create(n, n_synapses=2 if scfg.fast else 1, tau_mem=config.tau_mem, tau_syn=tau_syn,
                         threshold=config.v_th, v_rest=config.v_rest, v_reset=config.v_reset, bias=bias,
                         v_init=jnp.asarray(v_init, jnp.float32), dt=config.dt, reset=scfg.reset,
                         refractory=scfg.refractory, max_spikes=scfg.max_spikes, integrator=scfg.integrator,
                         synapse_norm=scfg.synapse_norm, noise=scfg.noise, surrogate=scfg.make_surrogate())
    return SpikingNetwork(w_in=w_in, w_rec=w_rec, w_out=w_out, b_out=jnp.zeros((config.n_hat,), jnp.float32),
                          tau_out=jnp.full((n,), config.tau_r, jnp.float32), neurons=neurons, w_fast=w_fast,
                          config=scfg)
