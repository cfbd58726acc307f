"""Task registry: each task names its generator, decision rule and metrics.

A task object has ``name``, ``n_in``, ``n_out``, ``generate(n, seed) -> batch`` (with
``inputs [n, T, C]``, ``targets [n, T, O]``, ``labels [n]``), ``decide(outputs) -> labels``
(NumPy), ``decide_jax(outputs)`` (JAX, jit/vmap-able) and ``accuracy(outputs, labels) -> float``.
A task may add per-network metrics for fleet evaluation: ``extra_metrics_jax(outputs, labels) ->
{name: scalar}`` with ``extra_metric_directions = {name: higher_is_better}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikefleet.errors import expect
from spikefleet.tasks import frozen_noise, xor
from spikefleet.tasks.wakephrase.task import WakePhraseTask

__all__ = ["XorTask", "FrozenNoiseTask", "WakePhraseTask", "get_task", "TASKS"]


@dataclass(frozen=True)
class XorTask:
    """Temporal XOR (see :mod:`spikefleet.tasks.xor`)."""

    config: xor.XorConfig = field(default_factory=xor.XorConfig)
    name: str = "xor"
    n_in: int = 1
    n_out: int = 1

    @property
    def dt(self) -> float:
        return self.config.dt

    def generate(self, n: int, seed: int) -> xor.XorBatch:
        return xor.generate(n, seed, self.config)

    def decide(self, outputs) -> np.ndarray:
        return xor.decide(np.asarray(outputs))

    def decide_jax(self, outputs):
        """The decision rule inside JAX (``[..., T, 1] -> [...]``), for fleet evaluation."""
        return xor.decide_jax(outputs)

    def accuracy(self, outputs, labels) -> float:
        return xor.accuracy(np.asarray(outputs), np.asarray(labels))


@dataclass(frozen=True)
class FrozenNoiseTask:
    """Frozen-noise classification (see :mod:`spikefleet.tasks.frozen_noise`); outputs are spike rasters."""

    config: frozen_noise.FrozenNoiseConfig = field(default_factory=frozen_noise.FrozenNoiseConfig)
    name: str = "frozen-noise"
    extra_metric_directions: tuple = (("margin", True),)

    @property
    def n_in(self) -> int:
        return self.config.n_channels

    @property
    def n_out(self) -> int:
        return self.config.n_samples

    @property
    def dt(self) -> float:
        return self.config.dt

    def generate(self, n: int, seed: int = 0) -> frozen_noise.FrozenNoiseBatch:
        return frozen_noise.generate(n, seed, self.config)

    def decide(self, outputs) -> np.ndarray:
        return frozen_noise.decide(outputs)

    def decide_jax(self, outputs):
        return frozen_noise.decide_jax(outputs)

    def accuracy(self, outputs, labels) -> float:
        return float(np.mean(self.decide(outputs) == np.asarray(labels)))

    def extra_metrics_jax(self, outputs, labels) -> dict:
        """``margin``: min over trials of (target count − largest other count); > 0 ⇔ all correct."""
        return {"margin": frozen_noise.margin_jax(outputs, labels)}


#: task name -> task class (what :func:`get_task` and the command line accept)
TASKS = {"xor": XorTask, "frozen-noise": FrozenNoiseTask, "wakephrase": WakePhraseTask}


def get_task(name: str, **options):
    """The task called ``name`` (``ValueError`` listing the known tasks otherwise)."""
    expect(name in TASKS, "task", f"one of {sorted(TASKS)}", name)
    return TASKS[name](**options)
