"""What every network shares: the :class:`Model` base with its per-model hooks, and the core of a
composite design.

A *composite* design (Network ADS, FORCE: fixed teacher projections around a spiking core) keeps
its on-chip part in a ``core`` attribute; mismatch, quantisation, faults and noise act on that
core (:func:`core_of`, :func:`map_core`). Plain networks are their own core.

Hooks a model may override (the fleet code calls them and never names a model):

* :meth:`Model.recurrent_compensation` — the factor on the recurrent weights of a chip after a
  perturbation of a sweep (default 1: no compensation). Network ADS supplies its down-scaling
  table (Büchel et al. 2021, Sci. Rep., robustness experiments).
"""

from __future__ import annotations

import equinox as eqx

__all__ = ["Model", "core_of", "map_core", "recurrent_compensation"]


class Model(eqx.Module):
    """Base of the networks in :mod:`spikefleet.models`: no fields, only the per-model hooks."""

    def recurrent_compensation(self, sweep: str, level: float) -> float:
        """Factor on the recurrent weights after a perturbation of kind ``sweep`` (``"mismatch"``,
        ``"quant"``, ``"noise"``, ``"dead"``) at ``level``; 1.0 (none) unless a model says otherwise."""
        del sweep, level
        return 1.0


def recurrent_compensation(model, sweep: str, level: float) -> float:
    """:meth:`Model.recurrent_compensation` of ``model``; 1.0 for a network that is not a :class:`Model`."""
    return float(model.recurrent_compensation(sweep, level)) if isinstance(model, Model) else 1.0


def core_of(model):
    """The network that runs on the chip: ``model`` itself, or ``model.core`` for composite designs.

    A composite design (e.g. Network ADS: fixed teacher projections around a spiking core) keeps
    its on-chip part in a ``core`` attribute; mismatch, quantisation, faults and noise act on it.
    """
    return model.core if hasattr(model, "core") else model


def map_core(model, fn):
    """``model`` with its core replaced by ``fn(core)`` (see :func:`core_of`)."""
    if hasattr(model, "core"):
        return eqx.tree_at(lambda m: m.core, model, fn(model.core))
    return fn(model)
