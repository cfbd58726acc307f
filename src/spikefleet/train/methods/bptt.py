"""Method ``bptt``: a recurrent LIF network trained with surrogate-gradient BPTT (:mod:`spikefleet.train.gradient`).

Options (experiment files and ``spikefleet train``):

* ``steps`` -> :attr:`Config.steps` — optimiser steps (default 400);
* ``hidden`` -> :attr:`Config.hidden` — LIF neurons (XOR 128; wake phrase 768);
* ``robust``, ``robust_profile``, ``robust_level``, ``robust_chips`` — the robust objective of
  :mod:`spikefleet.train.objectives` (parameter-noise injection or an adversarial parameter attack
  with the mismatch profile at that level; ``robust_chips`` chips per step for noise injection).

Tasks with a fixed training set (wake phrase) draw the mini-batches from it (batch 16) and select
the model on the task's :meth:`~spikefleet.tasks.base.Task.selection_task` rule on the fixed
validation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikefleet.errors import expect, is_finite_number, is_positive_int
from spikefleet.fleet.mismatch import get_profile
from spikefleet.train import gradient, presets
from spikefleet.train.methods.base import Method, Option
from spikefleet.train.methods.teacher import HIDDEN, STEPS
from spikefleet.train.objectives import ROBUST_KINDS, Robustness

__all__ = ["Config", "train", "cost", "METHOD", "ROBUST_OPTIONS"]

_ROBUST = dict(family="robust", family_label="spiking gradient methods")
#: the robust-objective options (shared with :mod:`.dynapse2`, which restricts them)
ROBUST_OPTIONS = (
    Option("robust", "choice", "robust objective: parameter-noise injection or adversarial parameter attack",
           choices=ROBUST_KINDS, default="none", **_ROBUST),
    Option("robust_profile", "profile", "mismatch profile sampled/attacked during training", default="uniform",
           **_ROBUST),
    Option("robust_level", "number", "profile level (uniform: the relative sigma)", lo=0.0, hi=1.0, default=0.2,
           **_ROBUST),
    Option("robust_chips", "int", "chips per step for noise injection", lo=1, what="a positive integer",
           default=4, **_ROBUST),
)


@dataclass(frozen=True)
class Config:
    """BPTT settings; ``steps``/``hidden`` ``None`` = the task's recipe."""

    steps: Optional[int] = None  # optimiser steps
    hidden: Optional[int] = None  # LIF neurons
    robust: str = "none"
    robust_profile: str = "uniform"
    robust_level: float = 0.2
    robust_chips: int = 4

    def __post_init__(self):
        for name in ("steps", "hidden"):
            v = getattr(self, name)
            expect(v is None or is_positive_int(v), f"bptt Config.{name}", "a positive integer or None", v)
        expect(self.robust in ROBUST_KINDS, "bptt Config.robust", f"one of {ROBUST_KINDS}", self.robust)
        expect(is_finite_number(self.robust_level) and 0 <= self.robust_level <= 1, "bptt Config.robust_level",
               "a number in [0, 1]", self.robust_level)
        expect(is_positive_int(self.robust_chips), "bptt Config.robust_chips", "a positive integer", self.robust_chips)

    def label(self) -> str:
        """The design's name on progress bars: ``bptt``, ``bptt+noise(0.2)``,
        ``bptt+adversarial(dynapse1-measured 0.3)`` (the profile is named unless it is ``uniform``)."""
        if self.robust == "none":
            return "bptt"
        profile = "" if self.robust_profile == "uniform" else f"{self.robust_profile} "
        return f"bptt+{self.robust}({profile}{self.robust_level:g})"

    def robustness(self) -> Robustness:
        if self.robust == "none":
            return Robustness()
        return Robustness(self.robust, get_profile(self.robust_profile, self.robust_level), chips=self.robust_chips)


def check(task, options: dict):
    robust, chips = options.get("robust", "none"), options.get("robust_chips", 4)
    if robust == "noise" and 32 % chips:
        return "robust_chips", "a divisor of the batch size 32", chips, "use 1, 2, 4, 8, 16 or 32"
    return None


def train(task, config: Config, *, seed: int, teacher=None, data=None, progress: bool = False):
    """A trained :class:`~spikefleet.models.spiking.SpikingNetwork` and its info."""
    recipe = presets.preset(task).bptt
    kw = {k: v for k, v in (("steps", config.steps), ("hidden", config.hidden)) if v is not None}
    kw["label"] = f"{task.name}/{config.label()} seed {seed}"
    if data is None:
        if config.robust != "none":
            kw["robustness"] = config.robustness()
        out = gradient.train(task, "bptt", seed, progress=progress, **kw)
        return out.model, out.info
    train_set = data.train
    hidden = kw.pop("hidden", recipe.get("hidden"))
    if hidden is not None:
        kw["hidden"] = hidden
    if "batch_size" in recipe:
        kw["batch_size"] = min(recipe["batch_size"], len(train_set.inputs))
    out = gradient.train(task.selection_task(), "bptt", seed, train_data=train_set, val_batch=data.validation,
                         robustness=config.robustness(), progress=progress, **kw)
    return out.model, out.info


def cost(task, config: Config) -> float:
    """About 70 CPU seconds at 400 steps, proportional to the steps; × 1.7 with a robust objective."""
    base = 70.0 * (config.steps / 400) if config.steps else 70.0
    return base * (1.7 if config.robust != "none" else 1.0)


def step_cost(config: Config) -> float:
    return 6e-11 * (config.hidden or 128) ** 2


#: the registry entry of this method (:mod:`spikefleet.train.registry`)
METHOD = Method(name="bptt", Config=Config, train=train, cost=cost, options=(STEPS, HIDDEN) + ROBUST_OPTIONS,
                check=check, step_cost=step_cost, doc="recurrent LIF network, surrogate-gradient BPTT")
