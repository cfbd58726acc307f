r"""Experiment files: what to train, on which seeds, and how to evaluate it over a fleet of chips.

An experiment file is TOML (read with :mod:`tomllib`)::

    name = "xor-robustness"          # required; letters, digits, '-', '_', '.'
    task = "xor"                     # or a table: [task] name = "xor", duration = 0.5 (XorConfig fields)
    seeds = [0, 1]                   # default [0]; each seed trains every design and draws its own fleet
    output = "runs/xor-robustness"   # optional; `--out` overrides it; relative to the working directory

    [[methods]]                      # one table per design (at least one)
    name = "bptt-noise"              # unique design name
    method = "bptt"                  # teacher | bptt | ads | force | reservoir
    robust = "noise"                 # bptt: none | noise | adversarial
    robust_level = 0.2               # bptt: profile level in [0, 1] (uniform: the relative sigma)
    # robust_profile = "uniform", robust_chips = 4, hidden = 128, steps = 400 (optimiser steps)

    [[methods]]
    name = "ads"
    method = "ads"                   # ads/force need a teacher: `teacher = "<design>"` names a design
    steps = 2000                     # of method "teacher"; without it an implicit design "teacher" is
    # no_fast = true, n = 320        # trained (default recipe) and not evaluated on the fleet

    [fleet]
    chips = 100                      # chips per seed (fleet_keys(seed, chips)), default 100
    trials = 200                     # test trials per chip, default 200
    chunk = 16                       # chips simulated at once (memory bound), default 16
    yield_threshold = 0.9            # accuracy a chip needs to count as good, default 0.9

    [perturbations]                  # at least one level in all
    mismatch = [0.0, 0.05, 0.1, 0.2]  # levels up to spikefleet.fleet.mismatch.max_level (uniform: 1)
    profile = "uniform"              # built-in profile name or a .toml/.json profile file
    quant_bits = [4]                 # 0 = full precision
    noise = []                       # membrane noise, fraction of the threshold-reset gap
    dead = []                        # fractions of silenced neurons, in [0, 1)
    # quant_matrices = ["w_in", "w_rec", "w_out", "w_feedback"], dead_select = "random"

Every design may set ``evaluate = false`` (train only, e.g. a teacher named by ads/force
designs) and ``train_seed = S`` (train it once, from seed ``S``, and give that one design to every
seed: the paper's single teacher shared by all instances). Its other keys are the options its
method declares (:mod:`spikefleet.train.registry`; anything else is an error); each method module
under :mod:`spikefleet.train.methods` lists them and what they mean for it (``steps``: optimiser
steps of teacher and bptt, samples per epoch of ads and force, training samples of the reservoir,
full-batch epochs of dynapse2). Tasks: every registered task whose designs the listed methods train
(:mod:`spikefleet.tasks.registry`): ``xor`` (options: the fields of ``XorConfig``), ``wakephrase``
(``source``, ``preset``, ``keyword``, ``n_train``, ``n_validation``) and ``frozen-noise`` (the
fields of ``FrozenNoiseConfig``; method ``dynapse2``). ``plugins = ["module", ...]`` names modules
to import first, which register methods or tasks of one's own (modules outside spikefleet that
define the methods and task in use are added to the canonical form, so that workers load them).

Validation is strict: unknown keys, wrong types and out-of-range values raise
:class:`ExperimentSpecError` naming the file, the key path, what was expected, what was got and
how to fix it.

The built-in :data:`DEFAULT_TOML` (``spikefleet run`` without a file): temporal XOR, seed 0,
designs ``bptt``, ``bptt-noise`` (noise injection, uniform profile, σ = 0.2) and ``ads``
(Network ADS, after its teacher); one fleet of 100 chips × 100 trials; uniform mismatch
0/5/10/20 % and 4-bit weights. **ADS trains on 2,000 trials (one epoch), not its default
10,000** (20 epochs × 500): at about 40 CPU-seconds per 1,000 trials, 10,000 trials alone would
take two thirds of the 10-minute budget of the default run on 2 cores; 2,000 trials give a test
accuracy of 0.985 (the teacher: 1.000). Use ``steps = 10000`` (or leave ``steps`` out for the
full 20-epoch recipe) for the paper's protocol.

Cost of the default (measured 2026-11-23, CPU seconds of the worker processes): 877 in all
(teacher 39, ADS 87, BPTT 100, noise-injected BPTT 152, the fleet evaluation of ADS 131-136 per
non-zero mismatch level, every other unit ≤ 18): about 7.5 minutes with 2 workers on 2 idle cores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from spikefleet.errors import ConfigError, shown
from spikefleet.fleet.mismatch import get_profile, max_level
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES
from spikefleet.io import parse_toml, read_text
from spikefleet.tasks import get_task
from spikefleet.tasks.registry import TASKS
from spikefleet.train.methods.base import Option, OptionError
from spikefleet.train.registry import METHODS, TEACHER_METHOD, all_options, get_method

__all__ = ["ExperimentSpec", "MethodSpec", "FleetSpec", "PerturbationSpec", "ExperimentSpecError",
           "load_experiment", "parse_experiment", "parse_experiment_text", "default_experiment", "DEFAULT_TOML"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME_RULE = "a name of 1-64 letters, digits, '-', '_' or '.' (starting with a letter or digit)"
#: keys of every design besides its method's options
_DESIGN_KEYS = ("name", "method", "evaluate", "train_seed")

DEFAULT_TOML = """\
name = "xor-default"
task = "xor"
seeds = [0]

[[methods]]
name = "bptt"
method = "bptt"

[[methods]]
name = "bptt-noise"
method = "bptt"
robust = "noise"
robust_profile = "uniform"
robust_level = 0.2

[[methods]]
name = "ads"
method = "ads"
steps = 2000  # one epoch of 2,000 trials (the recipe's default is 20 x 500 = 10,000)

[fleet]
chips = 100
trials = 100  # per chip: accuracy in steps of 0.01

[perturbations]
mismatch = [0.0, 0.05, 0.1, 0.2]
profile = "uniform"
quant_bits = [4]
"""


class ExperimentSpecError(ConfigError):
    """An experiment file is malformed: the message names file, key, expected, got and a fix."""


def _fail(source: str, path: str, expected: str, got: Any, fix: str) -> None:
    text = got if isinstance(got, str) and got.startswith("<") else shown(got)
    raise ExperimentSpecError(f"{source}: {path}: expected {expected}, got {text}; {fix}")


@dataclass(frozen=True)
class MethodSpec:
    """One design: its name, its training method and the options given for it.

    ``options`` holds the method's options as ``(key, value)`` pairs (those given in the file);
    every option of the method also reads as an attribute (``design.steps``), ``None`` or the
    option's declared default when not given.
    """

    name: str
    method: str
    options: tuple = ()
    evaluate: bool = True  # False: train only (e.g. a teacher), no fleet evaluation
    train_seed: Optional[int] = None  # train once from this seed and use it for every experiment seed

    def __getattr__(self, key):
        if key.startswith("_") or key in ("options", "method"):
            raise AttributeError(key)
        given = dict(self.options)
        if key in given:
            return given[key]
        option = all_options().get(key)
        if option is None:
            raise AttributeError(f"MethodSpec has no option {key!r}")
        own = METHODS[self.method].option(key) if self.method in METHODS else None
        return None if own is None else own.default

    @property
    def teacher(self) -> Optional[str]:
        return dict(self.options).get("teacher")

    def to_dict(self) -> dict:
        """Canonical form: the given options plus the defaults that options declare."""
        d = {"name": self.name, "method": self.method, "evaluate": self.evaluate}
        given = dict(self.options)
        for option in get_method(self.method).all_options:
            value = given.get(option.name, option.default)
            if value is not None:
                d[option.name] = value
        if self.train_seed is not None:
            d["train_seed"] = self.train_seed
        return d


@dataclass(frozen=True)
class FleetSpec:
    """The ``[fleet]`` table: chips per seed, test trials per chip, chips simulated at once, yield threshold."""

    chips: int = 100
    trials: int = 200
    chunk: int = 16
    yield_threshold: float = 0.9


@dataclass(frozen=True)
class PerturbationSpec:
    """The ``[perturbations]`` table: the levels of each sweep (mismatch, quant, noise, dead) and their options."""

    mismatch: tuple = ()
    profile: str = "uniform"
    quant_bits: tuple = ()
    quant_matrices: tuple = DEFAULT_QUANT_MATRICES
    noise: tuple = ()
    dead: tuple = ()
    dead_select: str = "random"

    def levels(self) -> list[tuple[str, float]]:
        """``[(sweep, level), ...]`` in sweep order mismatch, quant, noise, dead."""
        return ([("mismatch", v) for v in self.mismatch] + [("quant", float(v)) for v in self.quant_bits]
                + [("noise", v) for v in self.noise] + [("dead", v) for v in self.dead])


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment (immutable). ``source`` names where it came from (file or ``<default>``)."""

    name: str
    task: str
    methods: tuple
    seeds: tuple = (0,)
    task_config: tuple = ()  # sorted (field, value) pairs for the task's config dataclass
    fleet: FleetSpec = field(default_factory=FleetSpec)
    perturbations: PerturbationSpec = field(default_factory=PerturbationSpec)
    output: Optional[str] = None
    source: str = "<memory>"
    plugins: tuple = ()  # modules that register the methods/tasks used here (imported before validation)

    def to_dict(self) -> dict:
        """Canonical JSON-ready form (a valid input to :func:`parse_experiment`)."""
        task = {"name": self.task, **dict(self.task_config)} if self.task_config else self.task
        p = dataclasses.asdict(self.perturbations)
        d = {"name": self.name, "task": task, "seeds": list(self.seeds),
             "methods": [m.to_dict() for m in self.methods], "fleet": dataclasses.asdict(self.fleet),
             "perturbations": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}}
        if self.output is not None:
            d["output"] = self.output
        if self.plugins:
            d["plugins"] = list(self.plugins)
        return d

    def hash(self) -> str:
        """SHA-256 of the canonical form without ``output``: what the results depend on."""
        d = self.to_dict()
        d.pop("output", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def designs(self) -> tuple:
        """Every design to train, teachers first: the listed methods plus the implicit ``teacher``
        (method ``teacher``, recipe defaults) when a design whose method needs a teacher names none."""
        extra = ()
        named = any(m.name == "teacher" for m in self.methods)  # an explicit design called "teacher" is it
        if not named and any(get_method(m.method).needs_teacher and m.teacher is None for m in self.methods):
            extra = (MethodSpec(name="teacher", method=TEACHER_METHOD, evaluate=False),)
        designs = extra + tuple(self.methods)
        return tuple(sorted(designs, key=lambda m: m.method != TEACHER_METHOD))

    def train_seed(self, design_name: str, seed: int) -> int:
        """The seed whose training unit provides design ``design_name`` to experiment seed ``seed``
        (its ``train_seed`` if set, else ``seed`` itself)."""
        design = next(d for d in self.designs() if d.name == design_name)
        return seed if design.train_seed is None else design.train_seed

    def teacher_of(self, design: MethodSpec) -> Optional[str]:
        """The name of the teacher design of ``design`` (``None`` for a method without a teacher)."""
        if not get_method(design.method).needs_teacher:
            return None
        return design.teacher or "teacher"

    def make_task(self):
        """The task object of this experiment (with its ``[task]`` options)."""
        return _make_task(self.task, self.task_config)


def _make_task(name: str, task_config: tuple):
    config_cls = _task_config_class(TASKS[name])
    if not task_config:
        return get_task(name)
    if config_cls is TASKS[name]:
        return get_task(name, **dict(task_config))
    return get_task(name, config=config_cls(**dict(task_config)))


def _task_config_class(task_cls):
    """The dataclass a ``[task]`` table's options build: the task's ``config`` field, or, for a task
    without one (wakephrase), the task class itself."""
    field_ = next((f for f in dataclasses.fields(task_cls) if f.name == "config"), None)
    return task_cls if field_ is None else field_.default_factory


# ------------------------------------------------------------------------------------ parsing
class _Reader:
    def __init__(self, source: str):
        self.source = source

    def table(self, value, path: str, allowed: tuple, required: tuple = ()) -> dict:
        if not isinstance(value, dict):
            _fail(self.source, path, "a table", f"<{type(value).__name__}>", f"write it as [{path}]")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            _fail(self.source, f"{path}.{unknown[0]}" if path else unknown[0], f"one of the keys {list(allowed)}",
                  f"<unknown key {unknown[0]!r}>", "remove it or fix its spelling")
        for key in required:
            if key not in value:
                _fail(self.source, f"{path}.{key}" if path else key, "a value", "<missing>", f"add `{key} = ...`")
        return value

    def num(self, value, path, lo=None, hi=None, *, integer=False, what=None):
        return self.option(Option(path, "int" if integer else "number", "", lo=lo, hi=hi, what=what), value, path)

    def option(self, option: Option, value, path):
        try:
            return option.validate(value)
        except OptionError as exc:
            _fail(self.source, path, exc.expected, value, exc.fix or f"set {path} to {exc.expected}")

    def string(self, value, path, choices=None):
        if not isinstance(value, str) or (choices is not None and value not in choices):
            exp = f"one of {list(choices)}" if choices is not None else "a string"
            _fail(self.source, path, exp, value, f"set {path} to {exp}")
        return value

    def name(self, value, path):
        if not isinstance(value, str) or not _NAME.match(value):
            _fail(self.source, path, _NAME_RULE, value, "rename it, e.g. \"bptt-noise\"")
        return value

    def boolean(self, value, path):
        if not isinstance(value, bool):
            _fail(self.source, path, "true or false", value, f"write `{path.split('.')[-1]} = true` or false")
        return value

    def levels(self, value, path, lo=0.0, hi=None, *, integer=False, what=None):
        if not isinstance(value, list):
            _fail(self.source, path, "a list of numbers", value, f"write e.g. `{path.split('.')[-1]} = [0.0, 0.1]`")
        out = tuple(self.num(v, f"{path}[{i}]", lo, hi, integer=integer, what=what) for i, v in enumerate(value))
        if len(set(out)) != len(out):
            _fail(self.source, path, "distinct levels", value, "remove the repeated level")
        return out


def _method(r: _Reader, value, path: str, task) -> MethodSpec:
    """One ``[[methods]]`` table: its keys are checked against the method's declared options."""
    r.table(value, path, _DESIGN_KEYS + tuple(sorted(all_options())), ("name", "method"))
    name = r.name(value["name"], f"{path}.name")
    method = get_method(r.string(value["method"], f"{path}.method", tuple(METHODS)))
    keys = [o.name for o in method.all_options]
    options = {}
    for key, given in value.items():
        if key in _DESIGN_KEYS:
            continue
        option = method.option(key)
        if option is None:
            _fail(r.source, f"{path}.{key}", f"an option of method {method.name!r}: {list(_DESIGN_KEYS[2:]) + keys}",
                  f"<{key!r}>", f"remove {key!r} from design {name!r}")
        if option.kind == "design":
            options[key] = r.name(given, f"{path}.{key}")
            continue
        options[key] = r.option(option, given, f"{path}.{key}")
    kw = {}
    if "train_seed" in value:
        kw["train_seed"] = r.num(value["train_seed"], f"{path}.train_seed", 0, 2**32 - 1, integer=True,
                                 what="a non-negative integer")
    if "evaluate" in value:
        kw["evaluate"] = r.boolean(value["evaluate"], f"{path}.evaluate")
    problem = method.check(task, options)
    if problem is not None:
        key, expected, got, fix = problem
        _fail(r.source, f"{path}.{key}", expected, got, fix)
    return MethodSpec(name=name, method=method.name, options=tuple(sorted(options.items())), **kw)


def _load_plugins(r: _Reader, value) -> tuple:
    """Import the modules of ``plugins = [...]`` (each registers methods or tasks when imported)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        _fail(r.source, "plugins", "a list of module names", value, "write e.g. `plugins = [\"mypackage.methods\"]`")
    for i, name in enumerate(value):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            _fail(r.source, f"plugins[{i}]", "an importable module that registers methods or tasks", name,
                  f"check the name and that the module is on the Python path ({exc})")
    return tuple(value)


def _plugins_of(given: tuple, task, methods) -> tuple:
    """``given`` plus the modules outside spikefleet that define the task and the methods in use (so
    that workers, which parse the spec afresh, register them too)."""
    found = [type(task).__module__] + [get_method(m.method).train.__module__ for m in methods]
    extra = [m for m in found if m.split(".")[0] != "spikefleet"]
    return tuple(dict.fromkeys(list(given) + extra))


def parse_experiment(data: dict, source: str = "<memory>") -> ExperimentSpec:
    """Validate a parsed TOML/JSON mapping; raises :class:`ExperimentSpecError`."""
    r = _Reader(source)
    r.table(data, "", ("name", "task", "seeds", "methods", "fleet", "perturbations", "output", "plugins"),
            ("name", "task", "methods"))
    plugins = _load_plugins(r, data.get("plugins", []))
    name = r.name(data["name"], "name")
    task_value, task_config = data["task"], ()
    if isinstance(task_value, dict):
        if "name" not in task_value:
            _fail(source, "task.name", f"one of {sorted(TASKS)}", "<missing>", "add `name = \"xor\"` under [task]")
        task_name = r.string(task_value["name"], "task.name", tuple(TASKS))
        config_cls = _task_config_class(TASKS[task_name])
        fields = TASKS[task_name].experiment_options or tuple(f.name for f in dataclasses.fields(config_cls))
        r.table(task_value, "task", ("name",) + fields, ("name",))
        task_config = tuple(sorted((k, v) for k, v in task_value.items() if k != "name"))
        try:
            task = _make_task(task_name, task_config)
        except (ConfigError, TypeError, ValueError) as exc:
            _fail(source, "task", f"valid {config_cls.__name__} fields", dict(task_config), f"fix the value ({exc})")
    else:
        task_name = r.string(task_value, "task", tuple(TASKS))
        task = get_task(task_name)
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        _fail(source, "seeds", "a non-empty list of non-negative integers", seeds, "write e.g. `seeds = [0, 1]`")
    seeds = tuple(r.num(s, f"seeds[{i}]", 0, 2**32 - 1, integer=True) for i, s in enumerate(seeds))
    if len(set(seeds)) != len(seeds):
        _fail(source, "seeds", "distinct seeds", list(seeds), "remove the repeated seed")
    methods_value = data["methods"]
    if not isinstance(methods_value, list) or not methods_value:
        _fail(source, "methods", "a non-empty array of tables", methods_value,
              "add a [[methods]] table with name and method per design")
    methods = tuple(_method(r, m, f"methods[{i}]", task) for i, m in enumerate(methods_value))
    kinds = {get_method(m.method).model for m in methods}
    usable = [t for t, cls in TASKS.items() if all(get_method(m.method).supports(cls) for m in methods)]
    if not all(get_method(m.method).supports(task) for m in methods):
        listed = ", ".join(dict.fromkeys(m.method for m in methods))
        fix = (f"choose another task, or methods that train {task.default_model} designs for {task_name!r}"
               if len(kinds) == 1 else "do not mix methods of different neuron models in one experiment")
        _fail(source, "task", f"one of {usable} (the tasks of methods {listed})", task_name, fix)
    names = [m.name for m in methods]
    for i, m in enumerate(methods):
        if names.index(m.name) != i:
            _fail(source, f"methods[{i}].name", "a name not used by another design", m.name, "rename one of them")
    by_name = {m.name: m for m in methods}
    for i, m in enumerate(methods):
        if m.teacher is not None and (m.teacher not in by_name or by_name[m.teacher].method != TEACHER_METHOD):
            _fail(source, f"methods[{i}].teacher", "the name of a design with method = \"teacher\"", m.teacher,
                  "add that design or remove the option (an implicit teacher is trained then)")
    if "teacher" in by_name and by_name["teacher"].method != TEACHER_METHOD and any(
            get_method(m.method).needs_teacher and m.teacher is None for m in methods):
        _fail(source, "methods", "no design named 'teacher' unless its method is \"teacher\" (the implicit teacher "
              "of ads/force is called so)", "teacher", "rename that design or set `teacher = ...` on ads/force")
    fv = r.table(data.get("fleet", {}), "fleet", ("chips", "trials", "chunk", "yield_threshold"))
    fleet = FleetSpec(
        chips=r.num(fv.get("chips", 100), "fleet.chips", 1, integer=True, what="a positive integer"),
        trials=r.num(fv.get("trials", 200), "fleet.trials", 1, integer=True, what="a positive integer"),
        chunk=r.num(fv.get("chunk", 16), "fleet.chunk", 1, integer=True, what="a positive integer"),
        yield_threshold=r.num(fv.get("yield_threshold", 0.9), "fleet.yield_threshold", 0.0, 1.0))
    pv = r.table(data.get("perturbations", {}), "perturbations",
                 ("mismatch", "profile", "quant_bits", "quant_matrices", "noise", "dead", "dead_select"))
    profile = r.string(pv.get("profile", "uniform"), "perturbations.profile")
    try:
        get_profile(profile, 0.1)
    except (ConfigError, OSError, ValueError) as exc:
        _fail(source, "perturbations.profile", "a built-in profile name or a .toml/.json profile file", profile,
              f"fix it ({exc}); `spikefleet profiles` lists the built-in ones")
    qm = pv.get("quant_matrices", list(DEFAULT_QUANT_MATRICES))
    allowed_m = DEFAULT_QUANT_MATRICES + ("w_fast",)
    if not isinstance(qm, list) or not qm or any(m not in allowed_m for m in qm):
        _fail(source, "perturbations.quant_matrices", f"a non-empty list drawn from {list(allowed_m)}", qm,
              "fix the matrix names")
    pert = PerturbationSpec(
        mismatch=r.levels(pv.get("mismatch", []), "perturbations.mismatch", 0.0, max_level(profile), what=f"a level in "
                          f"[0, {max_level(profile):g}] (profile {profile}: its relative sigmas at most 1)"),
        profile=profile,
        quant_bits=r.levels(pv.get("quant_bits", []), "perturbations.quant_bits", 0, 32, integer=True),
        quant_matrices=tuple(qm),
        noise=r.levels(pv.get("noise", []), "perturbations.noise"),
        dead=r.levels(pv.get("dead", []), "perturbations.dead", 0.0, math.nextafter(1.0, 0.0),
                      what="a fraction in [0, 1)"),
        dead_select=r.string(pv.get("dead_select", "random"), "perturbations.dead_select", ("random", "first")))
    if not any(m.evaluate for m in methods):
        _fail(source, "methods", "at least one design with evaluate = true", "<none>",
              "remove `evaluate = false` from a design")
    if not pert.levels():
        _fail(source, "perturbations", "at least one level (mismatch, quant_bits, noise or dead)", "<none>",
              "add e.g. `mismatch = [0.0]` under [perturbations] for the nominal chips")
    output = data.get("output")
    if output is not None:
        output = r.string(output, "output")
    return ExperimentSpec(name=name, task=task_name, methods=methods, seeds=seeds, task_config=task_config,
                          fleet=fleet, perturbations=pert, output=output, source=source,
                          plugins=_plugins_of(plugins, task, methods))


def parse_experiment_text(text: str, source: str = "<memory>") -> ExperimentSpec:
    """Parse and validate TOML text (``source`` names it in error messages)."""
    return parse_experiment(parse_toml(text, source, ExperimentSpecError), source)


def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment file."""
    path = Path(path)
    return parse_experiment_text(read_text(path, "experiment file", ExperimentSpecError), str(path))


def default_experiment() -> ExperimentSpec:
    """The built-in default experiment (:data:`DEFAULT_TOML`)."""
    return parse_experiment_text(DEFAULT_TOML, "<default experiment>")
