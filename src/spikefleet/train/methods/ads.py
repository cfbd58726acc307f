"""Method ``ads``: Network ADS (Büchel et al. 2021, Sci. Rep.), a LIF network learning a teacher's dynamics.

The learning rule and the design are :mod:`spikefleet.train.ads`; the task's recipe
(:mod:`spikefleet.train.presets`) gives the defaults (XOR: N = 320, 20 epochs × 500 fresh trials;
wake phrase: N = 768, 5 epochs over the fixed training set). Options:

* ``steps`` -> :attr:`Config.trials_per_epoch` — samples per epoch (XOR: fresh trials; given
  without ``epochs``, one epoch of them; wake phrase: the first ``steps`` samples of the fixed
  training set, cycled, default all of it);
* ``epochs`` -> :attr:`Config.epochs` — passes of ``trials_per_epoch`` samples;
* ``n`` -> :attr:`Config.n` — LIF neurons N;
* ``no_fast`` -> :attr:`Config.fast` ``= not no_fast`` — the Ω^f = 0 ablation;
* ``eta``, ``k0`` — learning rate of the slow weights and initial error-feedback gain (override
  the recipe's);
* ``parallel`` — ``P > 1``: the ``"parallel"`` rule, ``P`` samples learned concurrently;
* ``teacher`` — the teacher design (an experiment file) or checkpoint (``spikefleet train``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikefleet.errors import expect, is_finite_number, is_positive_int
from spikefleet.train import presets
from spikefleet.train.ads import train_ads
from spikefleet.train.methods.base import Method, Option

__all__ = ["Config", "train", "cost", "METHOD", "EPOCHS", "N", "EPOCH_STEPS"]

#: ``steps``: samples per epoch (shared with :mod:`.force`)
EPOCH_STEPS = Option("steps", "int", "samples per training epoch", lo=1, what="a positive integer")
#: ``epochs``: passes of ``steps`` samples (shared with :mod:`.force`)
EPOCHS = Option("epochs", "int", "training epochs (passes of `steps` samples)", lo=1, what="a positive integer")
#: ``n``: neurons (shared with :mod:`.force` and :mod:`.reservoir`)
N = Option("n", "int", "neurons N (default: the recipe's)", lo=1, what="a positive integer")
#: the options of Network ADS (module docstring)
OPTIONS = (
    EPOCH_STEPS, EPOCHS, N,
    Option("no_fast", "bool", "the Ω^f = 0 ablation (no fast balancing weights)", default=False, family="teacher"),
    Option("eta", "number", "learning rate of the slow weights", lo=0.0, hi=1.0, lo_open=True,
           what="a learning rate in (0, 1]"),
    Option("k0", "number", "initial error-feedback gain", lo=0.0, what="a feedback gain >= 0"),
    Option("parallel", "int", "samples learned concurrently (1: the online rule)", lo=1, what="a positive integer"),
)


@dataclass(frozen=True)
class Config:
    """Network ADS settings; ``None`` = the task's recipe."""

    n: Optional[int] = None  # LIF neurons
    epochs: Optional[int] = None  # passes of trials_per_epoch samples
    trials_per_epoch: Optional[int] = None  # samples per epoch
    fast: bool = True  # fast balancing weights Ω^f
    eta: Optional[float] = None  # learning rate of Ω^s
    k0: Optional[float] = None  # initial error-feedback gain
    parallel: Optional[int] = None  # concurrent samples of the "parallel" rule

    def __post_init__(self):
        for name in ("n", "epochs", "trials_per_epoch", "parallel"):
            v = getattr(self, name)
            expect(v is None or is_positive_int(v), f"ads Config.{name}", "a positive integer or None", v)
        for name in ("eta", "k0"):
            v = getattr(self, name)
            expect(v is None or (is_finite_number(v) and v >= 0), f"ads Config.{name}", "a number >= 0 or None", v)
        expect(isinstance(self.fast, bool), "ads Config.fast", "True or False", self.fast)

    def ads_config(self, task):
        """The :class:`~spikefleet.train.ads.ADSConfig` these settings give on ``task``."""
        return presets.preset(task).ads(task, n=self.n, epochs=self.epochs, trials_per_epoch=self.trials_per_epoch,
                                        fast=self.fast, eta=self.eta, k0=self.k0, parallel=self.parallel)


def configure(task, options: dict) -> dict:
    """Config overrides of the experiment options (``steps`` -> ``trials_per_epoch``, ``no_fast`` -> ``fast``)."""
    return epoch_overrides(task, options) | {"fast": not options.get("no_fast", False)} | {
        k: options[k] for k in ("eta", "k0", "parallel") if k in options}


def epoch_overrides(task, options: dict) -> dict:
    """``n``, ``epochs``, ``trials_per_epoch`` of the options ``n``, ``epochs``, ``steps`` (shared with FORCE)."""
    out = {}
    if "steps" in options:
        out["trials_per_epoch"] = options["steps"]
        single = presets.preset(task).epochs_with_steps
        if "epochs" not in options and single is not None:
            out["epochs"] = single
    if "epochs" in options:
        out["epochs"] = options["epochs"]
    if "n" in options:
        out["n"] = options["n"]
    return out


def check(task, options: dict):
    p, steps = options.get("parallel", 1), options.get("steps")
    if p > 1 and steps is not None and steps % p:
        return ("steps", f"a multiple of parallel = {p} (whole groups of concurrent samples)", steps,
                f"use {max(p, steps - steps % p)}")
    if p > 1 and steps is None:  # the parallel rule learns whole groups: the default epoch length too
        per_epoch = presets.preset(task).ads(task).trials_per_epoch
        if per_epoch % p:
            what = presets.preset(task).epoch_name.format(n=per_epoch)
            return ("parallel", f"a divisor of {what} = {per_epoch} (or set steps)", p,
                    "set steps to a multiple of parallel or choose another parallel")
    return None


def train(task, config: Config, *, seed: int, teacher=None, data=None, progress: bool = False):
    """A trained :class:`~spikefleet.train.ads.ADSNetwork` for ``teacher`` and its info."""
    expect(teacher is not None, "teacher", "a trained teacher (RateNetwork) for method 'ads'", None)
    train_inputs = None if data is None else data.train.inputs
    return train_ads(teacher, task.training_task(), config.ads_config(task), seed, progress=progress,
                     train_inputs=train_inputs)


def cost(task, config: Config) -> float:
    """About 35 CPU seconds per 1,000 one-second samples at N = 320 (∝ N²; the parallel rule 3× faster)."""
    recipe = config.ads_config(task)
    trials = recipe.epochs * recipe.trials_per_epoch
    speed = 3.0 if (config.parallel or 1) > 1 else 1.0  # the parallel rule on CPUs, measured
    return 35.0 * trials / 1000 * presets.preset(task).sample_seconds / speed * ((config.n or 320) / 320) ** 2


def step_cost(config: Config) -> float:
    return 6e-11 * (2.0 if config.fast else 1.0) * (config.n or 320) ** 2


#: the registry entry of this method (:mod:`spikefleet.train.registry`)
METHOD = Method(name="ads", Config=Config, train=train, cost=cost, options=OPTIONS, configure=configure,
                check=check, needs_teacher=True, step_cost=step_cost,
                doc="Network ADS: a LIF network learning the teacher's dynamics with a local rule")
