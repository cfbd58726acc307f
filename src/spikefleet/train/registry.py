"""Training methods by name: the only place the command line, experiment files and the runner learn
which methods exist and which options each takes.

A method is a :class:`~spikefleet.train.methods.base.Method` (one module per method under
:mod:`spikefleet.train.methods`); :func:`register` adds one, e.g. from a test or a plug-in::

    from spikefleet.train.registry import register
    register(Method(name="mine", Config=MyConfig, train=my_train, cost=my_cost, options=(...)))

after which ``spikefleet train --method mine`` and ``method = "mine"`` in an experiment file work.
"""

from __future__ import annotations

from spikefleet.errors import ConfigError, expect
from spikefleet.train.methods import ads, bptt, dynapse2, force, reservoir, teacher
from spikefleet.train.methods.base import Method, Option

__all__ = ["METHODS", "TEACHER_METHOD", "register", "get_method", "resolve", "all_options", "models",
           "misplaced_options"]

#: method name -> :class:`Method`
METHODS: dict = {}
#: the method that trains the teachers of methods that need one (an experiment's implicit ``teacher`` design)
TEACHER_METHOD = teacher.METHOD.name


def register(method: Method) -> Method:
    """Add (or replace) ``method`` under its name; returns it."""
    expect(isinstance(method, Method), "method", "a spikefleet.train.methods.base.Method", type(method).__name__)
    expect(method.name and method.name.replace("-", "").replace("_", "").isalnum(), "method.name",
           "letters, digits, '-' or '_'", method.name)
    for option in method.all_options:
        known = all_options().get(option.name)
        if known is not None and known.kind != option.kind:
            raise ConfigError(f"method {method.name!r}: option {option.name!r} is a {option.kind!r} option, but "
                              f"another method declares it as {known.kind!r}; rename it")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method called ``name`` (:class:`ValueError` listing the known ones otherwise)."""
    expect(name in METHODS, "method", f"one of {list(METHODS)}", name)
    return METHODS[name]


def models() -> tuple:
    """The neuron models the registered methods train (``--model`` choices)."""
    return tuple(sorted({m.model for m in METHODS.values()}))


def resolve(name: str, model: str) -> Method:
    """The method that ``--method name --model model`` selects (its own name or its ``alias``)."""
    for method in METHODS.values():
        if method.model == model and name in (method.name, method.alias):
            return method
    names = [n for m in METHODS.values() if m.model == model for n in (m.alias, m.name) if n]
    raise ConfigError(f"--model {model} trains with --method {' or '.join(dict.fromkeys(names))}, got {name}")


def all_options() -> dict:
    """``{option name: Option}`` over every registered method (the first declaration of a name)."""
    out: dict = {}
    for method in METHODS.values():
        for option in method.all_options:
            out.setdefault(option.name, option)
    return out


def misplaced_options(method: Method, given) -> str | None:
    """A one-line explanation if ``method`` does not take some of the options named in ``given``
    (flags, say to which methods each applies), else ``None``."""
    rejected = [n for n in given if method.option(n) is None]
    if not rejected:
        return None
    options = all_options()
    parts = []
    for name in rejected:
        opt = options[name]
        family = [o for o in options.values() if opt.family and o.family == opt.family]
        if family and not any(method.option(o.name) for o in family):  # the method is of another kind
            members = [m.name for m in METHODS.values() if any(m.option(o.name) for o in family)]
            scope = "/".join(members)
            scope = f"{opt.family_label} (--method {scope})" if opt.family_label else f"--method {scope}"
            text = f"the options {' and '.join(o.flag for o in family)} apply to {scope} only"
        else:
            members = [m.name for m in METHODS.values() if m.option(name)]
            text = f"{opt.flag} applies to --method {'/'.join(members)} only"
        if text not in parts:
            parts.append(text)
    flags = ", ".join(options[n].flag for n in rejected)
    return f"options {flags} do not apply to --method {method.name}: " + "; ".join(parts)


def option_names(method: Method) -> list:
    """The option names of ``method`` (experiment-file keys)."""
    return [o.name for o in method.all_options]


def describe(option: Option) -> str:
    """``--flag: doc`` of an option (help texts)."""
    return f"{option.flag}: {option.doc}"


for _method in (teacher.METHOD, bptt.METHOD, ads.METHOD, force.METHOD, reservoir.METHOD, dynapse2.METHOD):
    register(_method)
