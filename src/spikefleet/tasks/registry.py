"""Task registry: task name -> task class (each implements :class:`spikefleet.tasks.base.Task`).

Temporal XOR and frozen noise are defined here; the wake-phrase task lives in
:mod:`spikefleet.tasks.wakephrase.task`. :func:`register_task` adds a new task: the command line,
experiment files and the fleet evaluation then accept its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikefleet.errors import expect
from spikefleet.tasks import frozen_noise, xor
from spikefleet.tasks.base import Task
from spikefleet.tasks.wakephrase.task import WakePhraseTask

__all__ = ["XorTask", "FrozenNoiseTask", "WakePhraseTask", "get_task", "register_task", "TASKS"]


@dataclass(frozen=True)
class XorTask(Task):
    """Temporal XOR (see :mod:`spikefleet.tasks.xor`)."""

    config: xor.XorConfig = field(default_factory=xor.XorConfig)
    name: str = "xor"
    n_in: int = 1
    n_out: int = 1

    @property
    def dt(self) -> float:
        return self.config.dt

    @property
    def trial_steps(self) -> float:
        return self.config.duration / self.config.dt

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
class FrozenNoiseTask(Task):
    """Frozen-noise classification (see :mod:`spikefleet.tasks.frozen_noise`); outputs are spike rasters.

    Designs are DYNAP-SE2 networks (Çakal et al. 2024, Neuromorph. Comput. Eng.); the test set is
    the patterns once each (the data carry no trial noise), and a test also reports the spike
    ``counts`` per pattern and neuron and the ``margin`` (min over patterns of target count minus
    the largest other count; > 0 iff every pattern is classified correctly).
    """

    config: frozen_noise.FrozenNoiseConfig = field(default_factory=frozen_noise.FrozenNoiseConfig)
    name: str = "frozen-noise"
    default_model = "dynapse2"
    metric_directions = (("margin", True),)

    @property
    def n_in(self) -> int:
        return self.config.n_channels

    @property
    def n_out(self) -> int:
        return self.config.n_samples

    @property
    def dt(self) -> float:
        return self.config.dt

    @property
    def trial_steps(self) -> int:
        return self.config.steps

    def generate(self, n: int, seed: int = 0) -> frozen_noise.FrozenNoiseBatch:
        return frozen_noise.generate(n, seed, self.config)

    def decide(self, outputs) -> np.ndarray:
        return frozen_noise.decide(outputs)

    def decide_jax(self, outputs):
        return frozen_noise.decide_jax(outputs)

    def accuracy(self, outputs, labels) -> float:
        return float(np.mean(self.decide(outputs) == np.asarray(labels)))

    def metrics_jax(self, outputs, labels) -> dict:
        """``margin``: min over trials of (target count − largest other count); > 0 ⇔ all correct."""
        return {"margin": frozen_noise.margin_jax(outputs, labels)}

    def test_set(self, trials: int, seed: int, cache_dir=None) -> frozen_noise.FrozenNoiseBatch:
        """The patterns once each (``trials`` and ``seed`` do not matter: the data are fixed)."""
        return self.generate(self.n_out, 0)

    def test_metrics(self, outputs, batch) -> dict:
        """Spike ``counts`` per pattern and neuron and the ``margin`` over the patterns."""
        return {"counts": frozen_noise.spike_counts(outputs).astype(int).tolist(),
                "margin": float(np.min(frozen_noise.margins(outputs, batch.labels)))}


#: task name -> task class (what :func:`get_task` and the command line accept)
TASKS = {"xor": XorTask, "frozen-noise": FrozenNoiseTask, "wakephrase": WakePhraseTask}


def register_task(task_cls: type, name: str | None = None) -> type:
    """Add ``task_cls`` (a :class:`Task` subclass, constructible without arguments) under ``name``
    (default: its ``name`` field's default); returns the class, so it can decorate one."""
    expect(isinstance(task_cls, type) and issubclass(task_cls, Task), "task_cls", "a subclass of Task", task_cls)
    name = name or task_cls().name
    expect(isinstance(name, str) and name != "", "name", "a task name", name)
    TASKS[name] = task_cls
    return task_cls


def get_task(name: str, **options):
    """The task called ``name`` (``ValueError`` listing the known tasks otherwise)."""
    expect(name in TASKS, "task", f"one of {sorted(TASKS)}", name)
    return TASKS[name](**options)
