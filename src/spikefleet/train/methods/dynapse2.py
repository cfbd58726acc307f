"""Method ``dynapse2``: gradient training of a DYNAP-SE2 network (Çakal et al. 2024, Neuromorph. Comput. Eng.).

The recipe is :mod:`spikefleet.train.dynapse2` (full-batch Adam on the spike-count MSE, optional
weight-noise injection); the designs are :class:`~spikefleet.models.dynapse2.DynapSE2Network` s,
the model of tasks whose ``default_model`` is ``"dynapse2"`` (frozen noise). On the command line
``--method bptt --model dynapse2`` selects it. Options:

* ``steps`` -> :attr:`Config.epochs` — full-batch epochs (optimiser steps; default 30,000);
* ``robust`` = ``"noise"`` with ``robust_level`` ``L`` -> :attr:`Config.weight_noise` ``= L / 3``
  (the ``dynapse2-dynamic`` profile at level ``L``: W̃ = W (1 + σ ξ) with σ = L/3; default L = 0.3,
  σ = 0.1); ``robust = "none"``: no injection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikefleet.errors import expect, is_finite_number, is_positive_int
from spikefleet.train.dynapse2 import DynapSE2TrainConfig, train_dynapse2
from spikefleet.train.methods.base import Method, Option

__all__ = ["Config", "train", "cost", "METHOD"]

_ROBUST = dict(family="robust", family_label="spiking gradient methods")
#: the options of the DYNAP-SE2 recipe (module docstring)
OPTIONS = (
    Option("steps", "int", "full-batch training epochs", lo=1, what="a positive integer"),
    Option("robust", "choice", "weight-noise injection (noise) or none", choices=("none", "noise"), default="none",
           **_ROBUST),
    Option("robust_profile", "profile", "the injected noise: dynapse2-dynamic (weight noise) only",
           default="dynapse2-dynamic", **_ROBUST),
    Option("robust_level", "number", "percent deviation of the weights (sigma = level / 3)", lo=0.0, hi=1.0,
           default=0.3, **_ROBUST),
)


@dataclass(frozen=True)
class Config:
    """DYNAP-SE2 recipe settings; ``epochs`` ``None`` = the recipe's 30,000."""

    epochs: Optional[int] = None  # full-batch epochs
    weight_noise: float = 0.0  # σ of W̃ = W (1 + σ ξ)

    def __post_init__(self):
        expect(self.epochs is None or is_positive_int(self.epochs), "dynapse2 Config.epochs",
               "a positive integer or None", self.epochs)
        expect(is_finite_number(self.weight_noise) and 0 <= self.weight_noise < 1, "dynapse2 Config.weight_noise",
               "a relative sigma in [0, 1)", self.weight_noise)


def configure(task, options: dict) -> dict:
    level = options.get("robust_level", 0.3)
    out = {"weight_noise": level / 3.0 if options.get("robust", "none") == "noise" else 0.0}
    if "steps" in options:
        out["epochs"] = options["steps"]
    return out


def check(task, options: dict):
    profile = options.get("robust_profile", "dynapse2-dynamic")
    if profile != "dynapse2-dynamic":
        return ("robust_profile", "dynapse2-dynamic (weight-noise injection)", profile,
                "leave it out or set it to dynapse2-dynamic")
    return None


def train(task, config: Config, *, seed: int, teacher=None, data=None, progress: bool = False):
    """A trained :class:`~spikefleet.models.dynapse2.DynapSE2Network` and its info."""
    recipe = DynapSE2TrainConfig(weight_noise=config.weight_noise,
                                 **({} if config.epochs is None else {"epochs": config.epochs}))
    noise = f"+noise(sigma {config.weight_noise:g})" if config.weight_noise else ""
    model, info = train_dynapse2(task, recipe, seed, progress=progress, desc=f"{task.name}/dynapse2{noise} seed {seed}")
    return model, {"task": task.name, **info}  # the task is recorded like every other method's


def cost(task, config: Config) -> float:
    """About 10 CPU milliseconds per epoch (the 60 → 2 frozen-noise network)."""
    return 1e-2 * (config.epochs or DynapSE2TrainConfig().epochs)


def step_cost(config: Config) -> float:
    return 1e-9


#: the registry entry of this method (:mod:`spikefleet.train.registry`)
METHOD = Method(name="dynapse2", Config=Config, train=train, cost=cost, options=OPTIONS, configure=configure,
                check=check, model="dynapse2", alias="bptt", step_cost=step_cost,
                doc="DYNAP-SE2 network, full-batch BPTT with optional weight-noise injection")
