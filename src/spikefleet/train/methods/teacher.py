"""Method ``teacher``: the tanh rate network whose dynamics Network ADS and FORCE learn.

Büchel et al. 2021, Sci. Rep., Methods "Teacher network": a rate network trained with BPTT on the
task's target. Options (experiment files and ``spikefleet train``):

* ``steps`` -> :attr:`Config.steps` — optimiser steps (XOR default 400; wake phrase 2,000);
* ``hidden`` -> :attr:`Config.hidden` — rate units N̂ (XOR 64; wake phrase 128).

On tasks with fresh trials (XOR) the recipe is :mod:`spikefleet.train.gradient` (``"teacher"``);
on tasks with a fixed training set and a teacher recipe of their own (:mod:`spikefleet.train.presets`,
the wake phrase) the mini-batches come from that set and model selection uses the task's
reference rule. A teacher is judged by the task's reference rule (no fitted decision parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax

from spikefleet import seeds
from spikefleet.errors import expect, is_positive_int
from spikefleet.simulation import evaluate_model
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.seeds import seed_stream
from spikefleet.train import gradient, presets
from spikefleet.train.loop import FitConfig, fit
from spikefleet.train.methods.base import Method, Option

__all__ = ["Config", "train", "cost", "METHOD", "STEPS", "HIDDEN"]

#: ``steps``: optimiser steps (shared with :mod:`.bptt`)
STEPS = Option("steps", "int", "optimiser steps (default: the recipe's)", lo=1, what="a positive integer")
#: ``hidden``: hidden units (shared with :mod:`.bptt`)
HIDDEN = Option("hidden", "int", "hidden units (default: the recipe's)", lo=1, what="a positive integer",
                family="gradient", family_label="gradient methods")


@dataclass(frozen=True)
class Config:
    """Teacher settings; ``None`` = the task's recipe."""

    steps: Optional[int] = None  # optimiser steps
    hidden: Optional[int] = None  # rate units N̂

    def __post_init__(self):
        for name in ("steps", "hidden"):
            v = getattr(self, name)
            expect(v is None or is_positive_int(v), f"teacher Config.{name}", "a positive integer or None", v)


def _fixed_set_teacher(task, recipe: presets.TeacherRecipe, data, config: Config, seed: int, progress: bool):
    """The teacher on the fixed sets ``data.train`` / ``data.validation`` (selection on the reference rule)."""
    steps = recipe.steps if config.steps is None else config.steps
    hidden = recipe.hidden if config.hidden is None else config.hidden
    train_set, val = data.train, data.validation
    rule = task.judge({})
    batch_size = min(recipe.batch_size, len(train_set.inputs))
    model = init_rate(RateConfig(n_in=task.n_in, n_hidden=hidden, n_out=task.n_out, dt=task.dt,
                                 min_tau=recipe.min_tau), jax.random.PRNGKey(seed))
    fit_config = FitConfig(steps=steps, batch_size=batch_size, learning_rate=recipe.learning_rate,
                           eval_every=recipe.eval_every)
    batches = gradient.fixed_batches(train_set, batch_size, steps, seed_stream(seed, seeds.TRAIN))
    result = fit(model, recipe.loss, batches, lambda m: evaluate_model(m, rule, val), fit_config,
                 project=recipe.project, progress=progress, desc=f"{task.name}/teacher seed {seed}")
    info = {"task": task.name, "method": "teacher", "seed": seed, "hidden": hidden, "steps": steps,
            "batch_size": batch_size, "learning_rate": recipe.learning_rate, "train_samples": len(train_set.inputs),
            **result.summary()}
    return result.model, info


def train(task, config: Config, *, seed: int, teacher=None, data=None, progress: bool = False):
    """A trained :class:`~spikefleet.models.spiking.RateNetwork` and its info."""
    recipe = presets.preset(task).teacher
    if recipe is not None and data is not None:
        return _fixed_set_teacher(task, recipe, data, config, seed, progress)
    kw = {k: v for k, v in (("steps", config.steps), ("hidden", config.hidden)) if v is not None}
    out = gradient.train(task, "teacher", seed, progress=progress, **kw)
    return out.model, out.info


def cost(task, config: Config) -> float:
    """About 30 CPU seconds at 400 steps, proportional to the steps."""
    return 30.0 * (config.steps / 400 if config.steps else 1.0)


def step_cost(config: Config) -> float:
    return 6e-11 * (config.hidden or 64) ** 2


#: the registry entry of this method (:mod:`spikefleet.train.registry`)
METHOD = Method(name="teacher", Config=Config, train=train, cost=cost, options=(STEPS, HIDDEN), fits_decision=False,
                step_cost=step_cost, doc="tanh rate teacher (BPTT on the output MSE)")
