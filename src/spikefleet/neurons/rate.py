r"""Continuous-time tanh rate units (the teacher model of Network ADS).

Continuous form for unit ``j`` (time in seconds, ``x`` dimensionless)::

    τ_j dx_j/dt = −x_j + I_j(t) + b_j,    a_j = tanh(x_j)

where ``I`` is the total input current (feed-forward ``F̂ᵀc`` plus recurrent ``Ω̂ᵀ tanh(x)``,
assembled by the network). Integrated with forward Euler at step ``dt``, as implemented::

    a[t]   = tanh(x[t])                                    (recorded before the update)
    x[t+1] = x[t] + (dt/τ) ⊙ (−x[t] + I[t] + b)

With ``I + b = c`` constant and ``x[0] = 0`` this has the closed form
``x[t] = c (1 − (1 − dt/τ)^t)``, used by the tests. The initial state is ``x[0] = 0``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import expect

__all__ = ["TanhRate"]


class TanhRate(eqx.Module):
    """``N`` tanh rate units with per-unit time constants ``tau`` [s] and biases."""

    tau: jax.Array  # [N] s
    bias: jax.Array  # [N]
    dt: float = eqx.field(static=True, default=1e-3)
    min_tau: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        expect(self.tau.ndim == 1, "TanhRate.tau", "a 1-D array [N]", self.tau.shape)
        expect(self.bias.shape == self.tau.shape, "TanhRate.bias", f"shape {self.tau.shape}", self.bias.shape)
        expect(self.dt > 0, "TanhRate.dt", "a positive time step in seconds", self.dt)

    @classmethod
    def create(cls, n: int, *, tau=50e-3, bias=0.0, dt: float = 1e-3, min_tau: float = 0.0) -> "TanhRate":
        expect(isinstance(n, int) and n > 0, "n", "a positive integer", n)
        vec = lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,))  # noqa: E731
        return cls(tau=vec(tau), bias=vec(bias), dt=dt, min_tau=min_tau)

    @property
    def n(self) -> int:
        return self.tau.shape[0]

    def init_state(self) -> jax.Array:
        return jnp.zeros((self.n,), self.tau.dtype)

    def effective_tau(self) -> jax.Array:
        """Time constants used in the update: ``max(τ, min_tau)`` (keeps training stable)."""
        return jnp.maximum(self.tau, self.min_tau) if self.min_tau > 0 else self.tau

    def step(self, x: jax.Array, current: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return ``(x[t+1], a[t])`` for state ``x[t]`` and input current ``I[t]``."""
        a = jnp.tanh(x)
        x_next = x + (self.dt / self.effective_tau()) * (-x + current + self.bias)
        return x_next, a
