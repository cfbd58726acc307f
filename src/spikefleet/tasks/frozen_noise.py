r"""Frozen-noise classification (Çakal et al. 2024: task: frozen-noise classification).

Each of ``n_samples`` frozen Poisson patterns (``n_channels`` channels, ``duration`` s at
``rate`` Hz, bins of ``dt``) is its own class. Pattern ``i`` should make output neuron ``i``
fire more than every other neuron.

Patterns (``sampler="numpy-legacy"``, the reference construction, bit-exact)::

    np.random.seed(seed);  counts = np.random.poisson(rate · dt, (n_samples, T, n_channels))

(``RandomState(seed)`` draws the same numbers as the legacy global generator; with the
defaults the two patterns hold 1505 and 1591 input spikes.) ``sampler="jax"`` draws
``jax.random.poisson(PRNGKey(seed), ...)`` instead: different patterns, offered as a named
option only.

Targets: the one-hot class identity broadcast over all ``T`` steps (``[n, T, n_samples]``).

Metrics on the output spike raster ``S [n, T, N]`` (counts ``n_i = Σ_t S[t, i]``):

* decision: the neuron with the strictly largest count (a tie counts as wrong, label ``−1``);
* ``margin`` of a trial: target count minus the largest other count; of a network: the minimum
  over its trials ("correct" ⇔ margin > 0 on every pattern);
* firing-rate ratio ``FRR = max(n) / min(n)`` per trial (``inf`` when the quieter neuron is silent).

``generate(n, seed)`` returns ``n`` trials cycling through the patterns (trial ``j`` is pattern
``j mod n_samples``). The patterns are fixed by ``config.seed``; the ``seed`` argument is
accepted for the common task interface and ignored (the data carry no trial noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import expect

__all__ = ["FrozenNoiseConfig", "FrozenNoiseBatch", "patterns", "generate", "spike_counts", "decide",
           "decide_jax", "margins", "margin_jax", "firing_rate_ratio", "SAMPLERS"]

#: pattern generators (module docstring)
SAMPLERS = ("numpy-legacy", "jax")


@dataclass(frozen=True)
class FrozenNoiseConfig:
    """Task parameters: patterns (= classes), input channels, duration and step (s), Poisson rate (Hz), pattern seed, sampler."""

    n_samples: int = 2
    n_channels: int = 60
    duration: float = 0.5
    dt: float = 1e-3
    rate: float = 50.0
    seed: int = 2022
    sampler: str = "numpy-legacy"

    def __post_init__(self):
        for f in ("n_samples", "n_channels"):
            v = getattr(self, f)
            expect(isinstance(v, int) and not isinstance(v, bool) and v > 0, f"frozen-noise {f}",
                   "a positive integer", v)
        expect(self.n_samples >= 2, "frozen-noise n_samples", "at least 2 patterns (classes)", self.n_samples)
        for f in ("duration", "dt", "rate"):
            v = getattr(self, f)
            expect(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, f"frozen-noise {f}",
                   "a positive number", v)
        expect(round(self.duration / self.dt) >= 1, "frozen-noise duration", f"at least one step of dt={self.dt}",
               self.duration)
        expect(isinstance(self.seed, int) and self.seed >= 0, "frozen-noise seed", "a non-negative integer", self.seed)
        expect(self.sampler in SAMPLERS, "frozen-noise sampler", f"one of {SAMPLERS}", self.sampler)

    @property
    def steps(self) -> int:
        return int(round(self.duration / self.dt))


class FrozenNoiseBatch(NamedTuple):
    """Frozen-noise trials: Poisson input counts, one-hot targets and class labels."""

    inputs: np.ndarray  # [n, T, C] float32 Poisson counts
    targets: np.ndarray  # [n, T, n_samples] one-hot
    labels: np.ndarray  # [n] int


def patterns(config: FrozenNoiseConfig = FrozenNoiseConfig()) -> np.ndarray:
    """The ``[n_samples, T, n_channels]`` float32 count patterns."""
    shape = (config.n_samples, config.steps, config.n_channels)
    lam = config.rate * config.dt
    if config.sampler == "numpy-legacy":
        counts = np.random.RandomState(config.seed).poisson(lam, shape)
    else:
        counts = np.asarray(jax.random.poisson(jax.random.PRNGKey(config.seed), lam, shape))
    return counts.astype(np.float32)


def generate(n: int, seed: int = 0, config: FrozenNoiseConfig = FrozenNoiseConfig()) -> FrozenNoiseBatch:
    """``n`` trials cycling through the patterns (``seed`` is ignored; see the module docstring)."""
    del seed
    expect(isinstance(n, int) and not isinstance(n, bool) and n > 0, "n", "a positive number of trials", n)
    pats = patterns(config)
    labels = np.arange(n) % config.n_samples
    targets = np.zeros((n, config.steps, config.n_samples), np.float32)
    targets[np.arange(n), :, labels] = 1.0
    return FrozenNoiseBatch(inputs=pats[labels], targets=targets, labels=labels.astype(np.int64))


def spike_counts(outputs) -> np.ndarray:
    """``[..., T, N] -> [..., N]`` total spike counts."""
    return np.asarray(outputs).sum(axis=-2)


def decide(outputs) -> np.ndarray:
    """The neuron with the strictly largest count per trial; ``−1`` on a tie."""
    counts = spike_counts(outputs)
    top = counts.max(axis=-1, keepdims=True)
    winner = counts.argmax(axis=-1)
    return np.where((counts == top).sum(axis=-1) == 1, winner, -1)


def decide_jax(outputs):
    """:func:`decide` inside JAX (``[..., T, N] -> [...]``)."""
    counts = outputs.sum(axis=-2)
    top = counts.max(axis=-1, keepdims=True)
    return jnp.where((counts == top).sum(axis=-1) == 1, counts.argmax(axis=-1), -1)


def margins(outputs, labels) -> np.ndarray:
    """Per trial: target count minus the largest other count (``[...]``)."""
    counts = spike_counts(outputs).astype(np.float64)
    labels = np.asarray(labels)
    target = np.take_along_axis(counts, labels[..., None], axis=-1)[..., 0]
    others = np.where(np.arange(counts.shape[-1]) == labels[..., None], -np.inf, counts)
    return target - others.max(axis=-1)


def margin_jax(outputs, labels):
    """The network's margin: the minimum over trials of :func:`margins` (JAX, ``[B, T, N] -> []``)."""
    counts = outputs.sum(axis=-2)
    onehot = jax.nn.one_hot(labels, counts.shape[-1], dtype=bool)
    target = jnp.sum(jnp.where(onehot, counts, 0.0), axis=-1)
    other = jnp.max(jnp.where(onehot, -jnp.inf, counts), axis=-1)
    return jnp.min(target - other)


def firing_rate_ratio(outputs) -> np.ndarray:
    """``max/min`` of the per-neuron counts of each trial (``inf`` if the quietest neuron is silent)."""
    counts = spike_counts(outputs).astype(np.float64)
    hi, lo = counts.max(axis=-1), counts.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lo > 0, hi / np.where(lo > 0, lo, 1.0), np.inf)
