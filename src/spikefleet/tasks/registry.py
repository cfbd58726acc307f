"""Task registry: each task names its generator, decision rule and metrics.

A task object has ``name``, ``n_in``, ``n_out``, ``generate(n, seed) -> batch`` (with
``inputs [n, T, C]``, ``targets [n, T, O]``, ``labels [n]``), ``decide(outputs) -> labels``
(NumPy), ``decide_jax(outputs)`` (JAX, jit/vmap-able) and ``accuracy(outputs, labels) -> float``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import expect
from . import xor

__all__ = ["XorTask", "get_task", "TASKS"]


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


TASKS = {"xor": XorTask}


def get_task(name: str, **options):
    """The task called ``name`` (``ValueError`` listing the known tasks otherwise)."""
    expect(name in TASKS, "task", f"one of {sorted(TASKS)}", name)
    return TASKS[name](**options)
