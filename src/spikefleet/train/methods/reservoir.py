"""Method ``reservoir``: an untrained LIF liquid with a ridge-regression readout (:mod:`spikefleet.train.reservoir`).

The liquid-state-machine baseline of Büchel et al. 2021 (Sci. Rep.). Options:

* ``steps`` -> :attr:`Config.train_trials` — fresh training samples of the ridge readout;
* ``n`` -> :attr:`Config.n` — liquid neurons (XOR 320; wake phrase 768, with input weights scaled
  to the front end, :data:`spikefleet.train.presets.RESERVOIR_W_INPUT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikefleet.errors import expect, is_positive_int
from spikefleet.train import presets
from spikefleet.train.methods.ads import N
from spikefleet.train.methods.base import Method, Option
from spikefleet.train.reservoir import ReservoirConfig, train_reservoir

__all__ = ["Config", "train", "cost", "METHOD"]

#: ``steps``: training samples of the readout
TRAIN_TRIALS = Option("steps", "int", "training samples of the ridge readout", lo=1, what="a positive integer")


@dataclass(frozen=True)
class Config:
    """Reservoir settings; ``None`` = the task's recipe."""

    n: Optional[int] = None  # liquid neurons
    train_trials: Optional[int] = None  # training samples of the readout

    def __post_init__(self):
        for name in ("n", "train_trials"):
            v = getattr(self, name)
            expect(v is None or is_positive_int(v), f"reservoir Config.{name}", "a positive integer or None", v)

    def reservoir_config(self, task) -> ReservoirConfig:
        kw = {**presets.preset(task).reservoir}
        kw.update({k: v for k, v in (("n", self.n), ("train_trials", self.train_trials)) if v is not None})
        return ReservoirConfig(**kw)


def configure(task, options: dict) -> dict:
    return {field: options[key] for key, field in (("n", "n"), ("steps", "train_trials")) if key in options}


def train(task, config: Config, *, seed: int, teacher=None, data=None, progress: bool = False):
    """A :class:`~spikefleet.models.spiking.SpikingNetwork` with a fitted readout and its info."""
    return train_reservoir(task.training_task(), config.reservoir_config(task), seed, progress=progress)


def cost(task, config: Config) -> float:
    """About 30 CPU seconds."""
    return 30.0


def step_cost(config: Config) -> float:
    return 6e-11 * (config.n or 320) ** 2


#: the registry entry of this method (:mod:`spikefleet.train.registry`)
METHOD = Method(name="reservoir", Config=Config, train=train, cost=cost, options=(TRAIN_TRIALS, N),
                configure=configure, step_cost=step_cost, doc="LIF liquid with a ridge-regression readout")
