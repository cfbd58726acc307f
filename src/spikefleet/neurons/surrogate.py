r"""Spike non-linearities with surrogate gradients.

A spiking neuron emits ``H(x)`` spikes where ``x = (V - V_th) / (V_th - V_reset)`` is the
membrane potential measured from threshold in units of the threshold–reset gap and ``H`` is
the Heaviside step (``H(0) = 1``). ``H`` has a zero derivative almost everywhere, so gradient
training replaces ``dH/dx`` by a *surrogate* ``σ'(x)``. Every surrogate here is a frozen,
hashable dataclass with

* ``derivative(x)`` – the analytic surrogate derivative ``σ'(x)``;
* ``primitive(x)`` – a smooth function whose exact derivative is ``σ'(x)`` (for tests/plots).

Surrogates (``x`` dimensionless):

=================  ==========================================  =========================
name               σ'(x)                                       ∫σ' dx over ℝ
=================  ==========================================  =========================
``FastSigmoid``    ``1 / (1 + β|x|)²``  (Zenke & Ganguli 2018)  ``2/β``
``Triangle``       ``max(0, 1 - |x|/w) / w``  (piecewise linear)  ``1``
``Boxcar``         ``h`` for ``lo < x < hi``, else ``0``          ``h (hi - lo)`` (finite)
=================  ==========================================  =========================

``Boxcar(lo=-0.5, hi=inf, height=1)`` is the derivative used by the reference BPTT LIF
network of Büchel et al. 2021 ("1 where V > -0.5").

:func:`spike_count` maps ``x`` to spikes per step, either a single spike (``H(x)``) or up to
``max_spikes`` spikes: ``n = clip(floor(x) + 1, 0, max_spikes)``. Both carry the surrogate
derivative ``σ'(x)`` in reverse- and forward-mode differentiation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from spikefleet.errors import expect

__all__ = ["Surrogate", "FastSigmoid", "Triangle", "Boxcar", "spike_count", "make_surrogate"]


class Surrogate:
    """Interface: ``derivative(x)`` and ``primitive(x)``; instances are hashable."""

    def derivative(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def primitive(self, x):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """σ'(x) = 1 / (1 + β|x|)²; primitive x / (1 + β|x|)."""

    slope: float = 10.0

    def __post_init__(self):
        expect(self.slope > 0, "FastSigmoid.slope", "a positive number", self.slope)

    def derivative(self, x):
        return 1.0 / (1.0 + self.slope * jnp.abs(x)) ** 2

    def primitive(self, x):
        return x / (1.0 + self.slope * jnp.abs(x))


@dataclass(frozen=True)
class Triangle(Surrogate):
    """σ'(x) = max(0, 1 − |x|/w) / w (unit area); primitive is the piecewise quadratic ramp."""

    width: float = 0.5

    def __post_init__(self):
        expect(self.width > 0, "Triangle.width", "a positive number", self.width)

    def derivative(self, x):
        return jnp.maximum(0.0, 1.0 - jnp.abs(x) / self.width) / self.width

    def primitive(self, x):
        w = self.width
        z = jnp.clip(x / w, -1.0, 1.0)
        # integral of (1 - |z|) dz from -1 to z, which runs from 0 to 1
        return jnp.where(z < 0, 0.5 * (1.0 + z) ** 2, 1.0 - 0.5 * (1.0 - z) ** 2)


@dataclass(frozen=True)
class Boxcar(Surrogate):
    """σ'(x) = height on lo < x < hi, else 0; primitive height·(clip(x, lo, hi) − lo)."""

    lo: float = -0.5
    hi: float = 0.5
    height: float = 1.0

    def __post_init__(self):
        expect(self.lo < self.hi, "Boxcar.lo", f"a value below hi={self.hi}", self.lo)
        expect(self.height > 0, "Boxcar.height", "a positive number", self.height)

    def derivative(self, x):
        return jnp.where((x > self.lo) & (x < self.hi), self.height, 0.0).astype(jnp.result_type(x))

    def primitive(self, x):
        lo = self.lo if math.isfinite(self.lo) else -1e30
        hi = self.hi if math.isfinite(self.hi) else 1e30
        return self.height * (jnp.clip(x, lo, hi) - lo)


_BY_NAME = {"fast-sigmoid": FastSigmoid, "triangle": Triangle, "boxcar": Boxcar}


def make_surrogate(name: str, **params) -> Surrogate:
    """Build a surrogate by name: ``fast-sigmoid``, ``triangle`` or ``boxcar``."""
    expect(name in _BY_NAME, "surrogate", f"one of {sorted(_BY_NAME)}", name)
    return _BY_NAME[name](**params)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def spike_count(x, surrogate: Surrogate, max_spikes: int = 1):
    """Spikes emitted for normalised potential ``x``; gradient ``σ'(x)``.

    ``max_spikes == 1``: ``H(x) = [x >= 0]``. Otherwise ``clip(floor(x) + 1, 0, max_spikes)``
    (one spike per threshold–reset gap above threshold).
    """
    if max_spikes == 1:
        return (x >= 0).astype(x.dtype)
    return jnp.clip(jnp.floor(x) + 1.0, 0.0, float(max_spikes)).astype(x.dtype)


@spike_count.defjvp
def _spike_count_jvp(surrogate, max_spikes, primals, tangents):
    (x,), (dx,) = primals, tangents
    return spike_count(x, surrogate, max_spikes), surrogate.derivative(x) * dx
