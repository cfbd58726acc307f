r"""The continuous-time tanh rate network: the teacher of Network ADS and FORCE.

Matrix orientation ``w[pre, post]`` (row = presynaptic), so drives are ``x @ w``. One step ``t``
(forward Euler of the tanh units, see :mod:`spikefleet.neurons.rate`)::

    a[t] = tanh(x[t]);  x[t+1] = x[t] + dt/τ (−x[t] + c[t] @ W_in + a[t] @ W_rec + b);  y[t] = a[t] @ W_out

Initialisation (:func:`init_rate`) follows the teacher of Büchel et al. 2021 (Sci. Rep., Methods).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect
from spikefleet.models.base import Model
from spikefleet.models.config import check_sizes
from spikefleet.models.registry import register
from spikefleet.neurons.rate import TanhRate

__all__ = ["RateConfig", "RateNetwork", "init_rate"]


@dataclass(frozen=True)
class RateConfig:
    """Static description of a :class:`RateNetwork`."""

    n_in: int
    n_hidden: int
    n_out: int
    dt: float = 1e-3
    min_tau: float = 0.0

    def __post_init__(self):
        check_sizes(self, ("n_in", "n_hidden", "n_out"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RateConfig":
        return cls(**d)


class RateNetwork(Model):
    """Continuous-time tanh rate network ``c → F̂ → (Ω̂, τ, b) → D̂ → ŷ`` (Network ADS teacher)."""

    w_in: jax.Array  # [C, N]  (F̂)
    w_rec: jax.Array  # [N, N]  (Ω̂, row = presynaptic)
    w_out: jax.Array  # [N, O]  (D̂)
    units: TanhRate
    config: RateConfig = eqx.field(static=True)

    def __check_init__(self):
        c, n, o = self.config.n_in, self.config.n_hidden, self.config.n_out
        for name, shape in {"w_in": (c, n), "w_rec": (n, n), "w_out": (n, o)}.items():
            expect(getattr(self, name).shape == shape, f"RateNetwork.{name}", f"shape {shape}",
                   getattr(self, name).shape)

    @classmethod
    def skeleton(cls, config: RateConfig) -> "RateNetwork":
        return init_rate(config, jax.random.PRNGKey(0))

    @property
    def dt(self) -> float:
        return self.config.dt

    def init_state(self) -> jax.Array:
        return self.units.init_state()

    def step(self, x, c_t, *, key=None, current=None):
        """One Euler step; returns ``(x[t+1], y[t], traces)`` with traces ``x`` and ``a``."""
        drive = c_t @ self.w_in + jnp.tanh(x) @ self.w_rec
        if current is not None:
            drive = drive + current
        x_next, a = self.units.step(x, drive)
        return x_next, a @ self.w_out, {"x": x, "a": a}


def init_rate(config: RateConfig, key: jax.Array, *, in_range: float = 5.0, rec_range: float = 0.1,
              spectral_radius: float = 0.95, out_range: float = 0.2, tau_min: float = 10e-3,
              tau_max: float = 100e-3) -> RateNetwork:
    """The Network ADS teacher initialisation (Büchel et al. 2021): ``F̂ ~ U(±5)``, ``Ω̂ ~ U(±0.1)``
    with zero diagonal rescaled to the given spectral radius, ``D̂ ~ U(±0.2)``, ``b = 0``, ``τ``
    linearly spaced from 10 to 100 ms."""
    k_in, k_rec, k_out = jax.random.split(key, 3)
    c, n, o = config.n_in, config.n_hidden, config.n_out
    w_rec = jax.random.uniform(k_rec, (n, n), minval=-rec_range, maxval=rec_range) * (1.0 - jnp.eye(n))
    radius = float(np.max(np.abs(np.linalg.eigvals(np.asarray(w_rec, np.float64)))))
    w_rec = w_rec * (spectral_radius / max(radius, 1e-12))
    return RateNetwork(
        w_in=jax.random.uniform(k_in, (c, n), minval=-in_range, maxval=in_range),
        w_rec=w_rec.astype(jnp.float32),
        w_out=jax.random.uniform(k_out, (n, o), minval=-out_range, maxval=out_range),
        units=TanhRate.create(n, tau=jnp.linspace(tau_min, tau_max, n), bias=0.0, dt=config.dt,
                              min_tau=config.min_tau),
        config=config,
    )


register("rate", RateNetwork, RateConfig)
