"""A training method and a task defined outside spikefleet, registered on import (used by test_registry.py).

``untrained-lif``: an untrained LIF network of ``width`` hidden neurons (a method in one file, one
registry call). ``sign``: the sign of a constant input, decided by the mean output (a task in one
class, one registry call).
"""

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.tasks.base import Task
from spikefleet.tasks.registry import register_task
from spikefleet.train.methods.base import Method, Option
from spikefleet.train.registry import register


@dataclass(frozen=True)
class Config:
    width: int = 6  # hidden LIF neurons


def train(task, config, *, seed, teacher=None, data=None, progress=False):
    net = init_spiking(SpikingConfig(n_in=task.n_in, n_hidden=config.width, n_out=task.n_out, dt=task.dt),
                       jax.random.PRNGKey(seed))
    return net, {"task": task.name, "method": "untrained-lif", "seed": seed, "width": config.width}


METHOD = register(Method(name="untrained-lif", Config=Config, train=train, cost=lambda task, config: 1.0,
                         options=(Option("width", "int", "hidden LIF neurons", lo=1, what="a positive integer"),),
                         doc="an untrained LIF network"))


class SignBatch(NamedTuple):
    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class SignTask(Task):
    """Label 1 iff the constant input is positive; decided by the sign of the mean output."""

    name: str = "sign"
    n_in: int = 1
    n_out: int = 1
    dt: float = 1e-3
    steps: int = 20

    @property
    def trial_steps(self) -> int:
        return self.steps

    def generate(self, n, seed):
        labels = np.random.default_rng(seed).integers(0, 2, n)
        sign = np.where(labels == 1, 1.0, -1.0).astype(np.float32)[:, None, None]
        inputs = np.broadcast_to(0.5 * sign, (n, self.steps, 1)).astype(np.float32)
        return SignBatch(inputs, np.broadcast_to(sign, (n, self.steps, 1)).astype(np.float32), labels)

    def decide(self, outputs):
        return (np.mean(np.asarray(outputs)[..., 0], axis=-1) > 0).astype(np.int32)

    def decide_jax(self, outputs):
        return (jnp.mean(outputs[..., 0], axis=-1) > 0).astype(jnp.int32)


register_task(SignTask)
