"""Model kinds: the name under which a network type is stored, with its config type.

A :class:`ModelKind` ties a kind name (``"spiking"``, ``"rate"``, ``"dynapse2"``, ``"ads"``,
``"force"``) to the network class, its static config class and how to build a *skeleton* (a
network of the right shapes with placeholder values) from a config. :mod:`spikefleet.checkpoint`
stores the kind name and the config, and on loading builds the skeleton and fills its leaves in;
it learns the kinds only from here.

Every model module registers its own kind when it is imported (``register(...)`` at its end), and
importing :mod:`spikefleet.models` imports the built-in model modules, so the registry beside the
types is complete as soon as any of them is used. A new network type is one new module with one
``register`` call, plus its import in ``spikefleet/models/__init__.py``; the checkpoint code does not
change. A config class needs ``to_dict()`` and ``from_dict(d)``; a network needs a ``config`` field.
Config fields named like the built-in sizes (``n_in``, ``n_hidden``, ``n_out``, ``n``, ``n_hat``)
must mean what they mean there (matrix dimensions): loading bounds what a stored config may
allocate by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from spikefleet.errors import expect

__all__ = ["ModelKind", "MODEL_KINDS", "register", "get_kind", "kind_of", "kind_names"]


@dataclass(frozen=True)
class ModelKind:
    """One stored network type: ``name``, the network class ``model``, its config class ``config``
    and ``skeleton(config) -> network`` (placeholder parameters of the right shapes)."""

    name: str
    model: type
    config: type
    skeleton: Callable[[Any], Any]

    def config_from_dict(self, d: dict):
        """The config object of a stored config dict."""
        return self.config.from_dict(d)


#: the registered kinds by name (add entries with :func:`register`)
MODEL_KINDS: dict[str, ModelKind] = {}


def register(name: str, model: type, config: type, *, skeleton: Optional[Callable[[Any], Any]] = None) -> ModelKind:
    """Register network class ``model`` with config class ``config`` as kind ``name``.

    ``skeleton`` defaults to ``model.skeleton``. Registering the same name again replaces the entry
    (a reloaded module); a class registered under two names is refused.
    """
    expect(isinstance(name, str) and name.isidentifier(), "model kind", "a name like 'spiking'", name)
    expect(isinstance(model, type) and isinstance(config, type), f"model kind {name!r}", "a network class and a "
           "config class", (model, config))
    for other in MODEL_KINDS.values():
        expect(other.name == name or other.model is not model, f"model kind {name!r}",
               f"a class not yet registered (it is kind {other.name!r})", model.__name__)
    kind = ModelKind(name=name, model=model, config=config, skeleton=skeleton or model.skeleton)
    MODEL_KINDS[name] = kind
    return kind


def get_kind(name: str) -> ModelKind:
    """The :class:`ModelKind` registered as ``name``; ``KeyError`` listing the known kinds otherwise."""
    try:
        return MODEL_KINDS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown model kind {name!r}; known kinds: {kind_names()}") from None


def kind_of(model) -> ModelKind:
    """The kind of network ``model`` (its class or the nearest registered base class).

    Raises ``TypeError`` naming the known kinds for a network of no registered kind.
    """
    for klass in type(model).__mro__:
        for kind in MODEL_KINDS.values():
            if kind.model is klass:
                return kind
    raise TypeError(f"cannot store a {type(model).__name__}; known model kinds: {kind_names()}")


def kind_names() -> list[str]:
    """The registered kind names, sorted."""
    return sorted(MODEL_KINDS)
