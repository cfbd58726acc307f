"""spikefleet: spiking neural networks that work on every chip of a mixed-signal neuromorphic processor.

Train designs (:mod:`spikefleet.train`), realise and evaluate them over fleets of simulated chips
(:mod:`spikefleet.fleet`), and deploy them to DYNAP-SE2 (:mod:`spikefleet.hardware.dynapse2`).

The names most programs need are re-exported here and load on first use (``import spikefleet`` itself
stays cheap): :func:`simulate`, :func:`simulate_batch`, :func:`run_outputs`, :func:`evaluate_model`;
:func:`get_task`, :func:`register_task`; :func:`train_design`, :func:`train_and_test`, :func:`get_method`, :func:`register_method`; :class:`Condition`, :func:`realize`,
:func:`realize_fleet`, :func:`fleet_keys`, :func:`evaluate_fleet`, :func:`get_profile`; :func:`save`,
:func:`load`; :func:`run_experiment`. ``__version__`` is the installed version. Everything else lives in
its module (see the API reference and the architecture page). A re-exported name never shadows a
subpackage (hence ``train_design``, not ``train``: ``spikefleet.train`` is the package of methods).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from spikefleet._version import __version__

#: public name -> (module, attribute)
_EXPORTS = {
    "simulate": ("spikefleet.simulation", "simulate"),
    "simulate_batch": ("spikefleet.simulation", "simulate_batch"),
    "run_outputs": ("spikefleet.simulation", "run_outputs"),
    "evaluate_model": ("spikefleet.simulation", "evaluate_model"),
    "get_task": ("spikefleet.tasks.registry", "get_task"),
    "register_task": ("spikefleet.tasks.registry", "register_task"),
    "train_design": ("spikefleet.train.design", "train_design"),
    "train_and_test": ("spikefleet.train.design", "train_and_test"),
    "get_method": ("spikefleet.train.registry", "get_method"),
    "register_method": ("spikefleet.train.registry", "register"),
    "Condition": ("spikefleet.fleet.chip", "Condition"),
    "realize": ("spikefleet.fleet.chip", "realize"),
    "realize_fleet": ("spikefleet.fleet.chip", "realize_fleet"),
    "fleet_keys": ("spikefleet.fleet.chip", "fleet_keys"),
    "evaluate_fleet": ("spikefleet.fleet.evaluate", "evaluate_fleet"),
    "get_profile": ("spikefleet.fleet.mismatch", "get_profile"),
    "save": ("spikefleet.checkpoint", "save"),
    "load": ("spikefleet.checkpoint", "load"),
    "run_experiment": ("spikefleet.experiments.runner", "run_experiment"),
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # static view of the lazy names (type checkers, IDEs, the API reference)
    from spikefleet.checkpoint import load, save
    from spikefleet.simulation import evaluate_model, run_outputs
    from spikefleet.experiments.runner import run_experiment
    from spikefleet.fleet.chip import Condition, fleet_keys, realize, realize_fleet
    from spikefleet.fleet.evaluate import evaluate_fleet
    from spikefleet.fleet.mismatch import get_profile
    from spikefleet.simulation import simulate, simulate_batch
    from spikefleet.tasks.registry import get_task, register_task
    from spikefleet.train.design import train_and_test, train_design
    from spikefleet.train.registry import get_method
    from spikefleet.train.registry import register as register_method


def __getattr__(name: str):
    """Load a re-exported name from its module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'spikefleet' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
