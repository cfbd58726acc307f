"""What a training method is: its options, its config, its ``train`` and its cost.

One module per method (:mod:`.teacher`, :mod:`.bptt`, :mod:`.ads`, :mod:`.force`,
:mod:`.reservoir`, :mod:`.dynapse2`) defines

* ``Config`` — a frozen dataclass, validated on construction, whose fields are the method's
  settings under honest names (``None`` = the recipe's value for the task, see
  :mod:`spikefleet.train.presets`);
* ``train(task, config, *, seed, teacher=None, data=None, progress=False) -> (design, info)`` —
  ``seed`` (a non-negative int) determines every random draw through the named streams of
  :mod:`spikefleet.seeds`; ``teacher`` is the trained rate network of methods that reproduce a
  teacher's dynamics; ``data`` the task's fixed training/validation sets
  (:meth:`~spikefleet.tasks.base.Task.training_data`) or ``None`` (fresh trials);
* ``cost(task, config)`` — rough CPU seconds (one core) of training, used only to order work;

and registers a :class:`Method` naming them together with its user-facing :class:`Option` s (the
keys of an experiment file's ``[[methods]]`` table and the flags of ``spikefleet train``) and how
they map onto the config (``configure``). The command line, the experiment files and the runner
learn methods and options only from :mod:`spikefleet.train.registry`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

from spikefleet.errors import ConfigError, is_finite_number
from spikefleet.fleet.mismatch import get_profile

__all__ = ["Option", "OptionError", "Method", "TEACHER_OPTION"]

KINDS = ("int", "number", "bool", "choice", "profile", "design")


class OptionError(ConfigError):
    """A method option has a bad value: ``expected`` says what it should be, ``fix`` how to fix it."""

    def __init__(self, expected: str, fix: str | None = None):
        super().__init__(expected)
        self.expected, self.fix = expected, fix


@dataclass(frozen=True)
class Option:
    """One user-facing option of a method: a key of ``[[methods]]`` tables and a ``spikefleet train`` flag.

    ``kind``: ``"int"`` (integers in ``[lo, hi]``), ``"number"`` (finite numbers in ``[lo, hi]``,
    ``lo`` excluded when ``lo_open``), ``"bool"``, ``"choice"`` (one of ``choices``) or
    ``"profile"`` (a mismatch profile name or file) or ``"design"`` (the name of another design).
    ``what`` is the expectation error messages state. ``default`` (not ``None``): the value canonical experiment dicts record when the option
    is not given. ``family`` groups options that belong to the same kind of method, so that a
    command-line error can say to which methods a misplaced option applies (``family_label`` names
    them, e.g. "gradient methods").
    """

    name: str
    kind: str
    doc: str
    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    choices: tuple = ()
    what: Optional[str] = None
    default: Any = None
    family: Optional[str] = None
    family_label: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Option.kind: expected one of {KINDS}, got {self.kind!r}")

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--no-fast`` for ``no_fast``."""
        return "--" + self.name.replace("_", "-")

    @property
    def expected(self) -> str:
        if self.what:
            return self.what
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return f"one of {list(self.choices)}"
        if self.kind == "profile":
            return "a built-in profile name or a .toml/.json profile file"
        if self.kind == "design":
            return "the name of a design"
        rng = (f" in [{self.lo}, {self.hi}]" if self.hi is not None
               else f" >= {self.lo}" if self.lo is not None else "")
        return f"an integer{rng}" if self.kind == "int" else f"a number{rng}"

    def validate(self, value):
        """``value`` checked (integers stay ints, numbers become floats); :class:`OptionError` otherwise."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise OptionError(self.expected)
            return value
        if self.kind in ("choice", "profile", "design"):
            if not isinstance(value, str) or (self.kind == "choice" and value not in self.choices):
                raise OptionError(self.expected)
            if self.kind == "profile":
                try:
                    get_profile(value, 0.1)
                except (ConfigError, OSError, ValueError) as exc:
                    raise OptionError(self.expected, f"fix it ({exc})") from None
            return value
        integer = self.kind == "int"
        ok = (isinstance(value, int) and not isinstance(value, bool)) if integer else is_finite_number(value)
        ok = ok and (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)
        if ok and self.lo_open and value == self.lo:
            raise OptionError(self.expected, "use e.g. 1e-6")
        if not ok:
            raise OptionError(self.expected)
        return value if integer else float(value)


#: ``teacher``: the trained rate network whose dynamics a method reproduces (an experiment file names
#: a design with method "teacher"; ``spikefleet train --teacher`` takes a checkpoint)
TEACHER_OPTION = Option("teacher", "design", "the teacher: a design with method \"teacher\" (a checkpoint for "
                        "spikefleet train; default: one trained from the same seed)", family="teacher")


def _same_names(task, options: dict) -> dict:
    return dict(options)


def _no_check(task, options: dict):
    return None


def _one(config) -> float:
    return 1.0


@dataclass(frozen=True)
class Method:
    """A training method as the registry holds it (see the module docstring).

    ``configure(task, options) -> {config field: value}`` turns given options (validated by their
    :class:`Option`) into config overrides (default: same names); ``check(task, options)`` returns
    ``(option, expected, got, fix)`` for an inconsistent combination, else ``None``.
    ``needs_teacher``: the method trains on a teacher's dynamics. ``model``: the neuron model of its
    designs (a task accepts methods of its ``default_model``); ``alias``: the method name that selects
    this method on the command line together with ``--model model`` (``--method bptt --model
    dynapse2``). ``fits_decision``: the task fits per-design decision parameters to its designs
    (``False`` for a teacher, which the task's reference rule judges). ``size(config)`` (neurons)
    and ``step_cost(config)`` (CPU seconds per trial step on one chip) feed the cost of evaluating
    its designs.
    """

    name: str
    Config: type
    train: Callable
    cost: Callable
    options: tuple = ()
    configure: Callable = _same_names
    check: Callable = _no_check
    needs_teacher: bool = False
    model: str = "lif"
    alias: Optional[str] = None
    fits_decision: bool = True
    step_cost: Callable = _one
    doc: str = ""

    def __post_init__(self):
        if not (dataclasses.is_dataclass(self.Config) and self.Config.__dataclass_params__.frozen):
            raise ValueError(f"Method {self.name!r}: Config must be a frozen dataclass")

    @property
    def all_options(self) -> tuple:
        """The method's options, with ``teacher`` first for methods that need a teacher."""
        return ((TEACHER_OPTION,) if self.needs_teacher else ()) + tuple(self.options)

    def option(self, name: str) -> Optional[Option]:
        return next((o for o in self.all_options if o.name == name), None)

    def supports(self, task) -> bool:
        """Whether the method trains designs for ``task`` (the task's default model is the method's)."""
        return task.default_model == self.model

    def make_config(self, task, options: dict):
        """The :attr:`Config` of the given (validated) options on ``task``."""
        return self.Config(**self.configure(task, {k: v for k, v in options.items() if k != "teacher"}))
