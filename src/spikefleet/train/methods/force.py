"""Method ``force``: a LIF network trained with recursive least squares on a teacher's dynamics.

After Nicola & Clopath (2017, Nat. Commun.), the FORCE baseline of Büchel et al. 2021 (Sci. Rep.);
the learning rule and the design are :mod:`spikefleet.train.force`. Options:

* ``steps`` -> :attr:`Config.trials_per_epoch` — fresh samples per epoch (given without
  ``epochs`` on XOR: one epoch of them);
* ``epochs`` -> :attr:`Config.epochs` — epochs at most (early stopping on validation accuracy);
* ``n`` -> :attr:`Config.n` — LIF neurons N;
* ``teacher`` — the teacher design (an experiment file) or checkpoint (``spikefleet train``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikefleet.errors import expect, is_positive_int
from spikefleet.train import presets
from spikefleet.train.force import train_force
from spikefleet.train.methods.ads import EPOCH_STEPS, EPOCHS, N, epoch_overrides
from spikefleet.train.methods.base import Method

__all__ = ["Config", "train", "cost", "METHOD"]


@dataclass(frozen=True)
class Config:
    """FORCE settings; ``None`` = the task's recipe."""

    n: Optional[int] = None  # LIF neurons
    epochs: Optional[int] = None  # epochs at most
    trials_per_epoch: Optional[int] = None  # fresh samples per epoch

    def __post_init__(self):
        for name in ("n", "epochs", "trials_per_epoch"):
            v = getattr(self, name)
            expect(v is None or is_positive_int(v), f"force Config.{name}", "a positive integer or None", v)

    def force_config(self, task):
        """The :class:`~spikefleet.train.force.FORCEConfig` these settings give on ``task``."""
        return presets.preset(task).force(task, n=self.n, epochs=self.epochs, trials_per_epoch=self.trials_per_epoch)


def train(task, config: Config, *, seed: int, teacher=None, data=None, progress: bool = False):
    """A trained :class:`~spikefleet.train.force.FORCENetwork` for ``teacher`` and its info."""
    expect(teacher is not None, "teacher", "a trained teacher (RateNetwork) for method 'force'", None)
    return train_force(teacher, task.training_task(), config.force_config(task), seed, progress=progress)


def cost(task, config: Config) -> float:
    """About 60 CPU seconds."""
    return 60.0


def step_cost(config: Config) -> float:
    return 6e-11 * (config.n or 320) ** 2


#: the registry entry of this method (:mod:`spikefleet.train.registry`)
METHOD = Method(name="force", Config=Config, train=train, cost=cost, options=(EPOCH_STEPS, EPOCHS, N),
                configure=epoch_overrides, needs_teacher=True, step_cost=step_cost,
                doc="FORCE: recursive least squares on the teacher's dynamics")
