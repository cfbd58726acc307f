r"""The unit graph of an experiment and the work of one unit (run inside a worker).

Units (one per row of the result store):

* ``train/<design>/seed<S>`` — train design ``<design>`` from seed ``S`` (and test it on
  ``fleet.trials`` fresh trials, recorded in its info). Depends on ``train/<teacher>/seed<S>``
  for ads/force designs, on nothing otherwise.
* ``eval/<design>/seed<S>/<sweep>/<level>`` — evaluate the trained design on the fleet of seed
  ``S`` at one perturbation level. Depends on its train unit (and on the teacher's, whose
  decisions give the ``agreement`` metric of ads/force designs).

Every random draw comes from the spec's seeds through the named streams of
:mod:`spikefleet.seeds`, exactly as :func:`spikefleet.train.api.fleet_report` and the training
recipes use them: test trials ``seed_stream(S, TEST)``, chips ``fleet_keys(S, chips)``, runtime
noise ``PRNGKey(seed_stream(S, RUN_NOISE))`` folded with the level (so a level gives the same
numbers alone as inside a whole sweep), training batches/inits from the recipes' own streams.
A unit's inputs are the spec and the checkpoint *bytes* of the units it depends on, so its
result never depends on where, when or in which order it runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Unit", "build_units", "execute", "priorities", "estimated_cost"]


@dataclass(frozen=True)
class Unit:
    """One unit of work, ``train/<design>/seed<S>`` or ``eval/<design>/seed<S>/<sweep>/<level>``, with the ids of the units it depends on."""

    unit_id: str
    kind: str  # "train" | "eval"
    design: str
    seed: int
    sweep: str = ""
    level: float = 0.0
    deps: tuple = ()  # unit_ids
    teacher: str | None = None  # design name of the teacher (ads/force)


def train_id(design: str, seed: int) -> str:
    return f"train/{design}/seed{seed}"


def build_units(spec) -> list[Unit]:
    """All units in a dependency-respecting order: train units (teachers first), then eval units."""
    units, trained = [], set()
    for seed in spec.seeds:
        for d in spec.designs():
            own = spec.train_seed(d.name, seed)
            if (d.name, own) in trained:
                continue
            trained.add((d.name, own))
            teacher = spec.teacher_of(d)
            deps = (train_id(teacher, spec.train_seed(teacher, own)),) if teacher else ()
            units.append(Unit(train_id(d.name, own), "train", d.name, own, deps=deps, teacher=teacher))
    for seed in spec.seeds:
        for d in spec.designs():
            if not d.evaluate:
                continue
            teacher = spec.teacher_of(d)
            deps = (train_id(d.name, spec.train_seed(d.name, seed)),) + (
                (train_id(teacher, spec.train_seed(teacher, seed)),) if teacher else ())
            for sweep, level in spec.perturbations.levels():
                units.append(Unit(f"eval/{d.name}/seed{seed}/{sweep}/{float(level)!r}", "eval", d.name, seed, sweep,
                                  float(level), deps, teacher))
    return units


# ------------------------------------------------------------------------------ scheduling
#: rough CPU seconds of training at the recipes' defaults (one core); only orders the work
_TRAIN_COST = {"teacher": 30.0, "bptt": 70.0, "ads": 35.0, "force": 60.0, "reservoir": 30.0}
_DEFAULT_SIZE = {"teacher": 64, "bptt": 128, "ads": 320, "force": 320, "reservoir": 320}


def estimated_cost(spec, unit: Unit) -> float:
    """A rough CPU-seconds estimate of ``unit``, used only to order ready units (longest critical
    path first) so that long chains (teacher -> ADS -> its fleet evaluations) start early; results
    never depend on it."""
    design = next(d for d in spec.designs() if d.name == unit.design)
    size = (design.hidden if design.method in ("teacher", "bptt") else design.n) or _DEFAULT_SIZE[design.method]
    if unit.kind == "train":
        cost = _TRAIN_COST[design.method]
        if design.method == "ads":
            task = spec.make_task()
            from spikefleet.models.ads import ADSConfig
            from spikefleet.train.wakephrase import ads_config

            wake = task.name == "wakephrase"
            recipe = ads_config() if wake else ADSConfig()  # the epochs a design without `epochs` gets
            per_epoch = design.steps or (task.n_train if wake else recipe.trials_per_epoch)
            trials = (design.epochs or (recipe.epochs if wake or not design.steps else 1)) * per_epoch
            length = 5.0 if wake else 1.0  # seconds per sample (XOR: about 1 s)
            speed = 3.0 if (design.parallel or 1) > 1 else 1.0  # the parallel rule on CPUs, measured
            return cost * trials / 1000 * length / speed * (size / 320) ** 2
        if design.method in ("teacher", "bptt") and design.steps:
            cost *= design.steps / 400
        return cost * (1.7 if design.robust != "none" else 1.0)
    task = spec.make_task()
    steps = 5000 if task.name == "wakephrase" else task.config.duration / task.config.dt
    per_chip = unit.sweep in ("mismatch", "noise", "dead") and unit.level > 0  # chips differ: no shared work
    chips = spec.fleet.chips if per_chip else 1
    weight = 2.0 if design.method == "ads" and not design.no_fast else 1.0
    return 1.0 + 6e-11 * weight * size**2 * chips * spec.fleet.trials * steps


def priorities(spec, units: list[Unit]) -> dict:
    """``{unit_id: estimated cost of the longest chain of work starting at the unit}``."""
    by_id = {u.unit_id: u for u in units}
    dependents: dict = {u.unit_id: [] for u in units}
    for u in units:
        for d in u.deps:
            if d in dependents:
                dependents[d].append(u.unit_id)
    out: dict = {}
    for u in reversed(units):  # dependents come later in the list
        out[u.unit_id] = estimated_cost(spec, by_id[u.unit_id]) + max((out[d] for d in dependents[u.unit_id]),
                                                                       default=0.0)
    return out


# ------------------------------------------------------------------------------ worker side
def _jsonable(value):
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _to_bytes(model, info: dict) -> bytes:
    from spikefleet import checkpoint

    with tempfile.TemporaryDirectory(prefix="spikefleet-unit-") as tmp:
        path = Path(tmp) / "model.sfc"
        checkpoint.save(path, model, info)
        return path.read_bytes()


def _from_bytes(data: bytes, kind: str | None = None, *, with_info: bool = False):
    from spikefleet import checkpoint

    with tempfile.TemporaryDirectory(prefix="spikefleet-unit-") as tmp:
        path = Path(tmp) / "model.sfc"
        path.write_bytes(data)
        loaded = checkpoint.load(path, kind=kind)
        return (loaded.model, loaded.info) if with_info else loaded.model


def _train_wakephrase(spec, task, design, seed: int, teacher_bytes: bytes | None, cache_dir):
    from spikefleet.evaluation import evaluate_model
    from spikefleet.fleet.mismatch import get_profile
    from spikefleet.train import wakephrase as wr
    from spikefleet.train.objectives import Robustness

    val = wr.dataset(task, "validation", task.n_validation, seed, cache_dir)
    train = None
    if design.method in ("teacher", "bptt", "ads"):
        train = wr.dataset(task, "train", task.n_train, seed, cache_dir)
    if design.method == "teacher":
        kw = {k: v for k, v in (("steps", design.steps), ("hidden", design.hidden)) if v is not None}
        model, info = wr.train_teacher(task, train, val, seed, **kw)
        boundary = None
    else:
        robustness = None
        if design.robust != "none":
            robustness = Robustness(design.robust, get_profile(design.robust_profile, design.robust_level),
                                    chips=design.robust_chips)
        teacher = _from_bytes(teacher_bytes, kind="rate") if teacher_bytes is not None else None
        model, info = wr.train_method(design.method, task, seed, train=train, val=val, teacher=teacher, n=design.n,
                                      hidden=design.hidden, steps=design.steps, epochs=design.epochs,
                                      no_fast=design.no_fast, robustness=robustness, eta=design.eta,
                                      k0=design.k0, parallel=design.parallel)
        boundary = info["boundary"]
    test = wr.dataset(task, "test", spec.fleet.trials, seed, cache_dir)
    info["test"] = {"trials": spec.fleet.trials, "rule": "teacher" if boundary is None else "integral",
                    **evaluate_model(model, wr.decision_task(task, boundary), test)}
    return model, info


def _train(spec, design, seed: int, teacher_bytes: bytes | None, cache_dir=None):
    from spikefleet.fleet.mismatch import get_profile
    from spikefleet.train.api import test, train_and_test, train_from_teacher
    from spikefleet.train.objectives import Robustness
    from spikefleet.train.recipes import TrainOutput

    task = spec.make_task()
    trials = spec.fleet.trials
    start = time.perf_counter()
    if task.name == "wakephrase":
        model, info = _train_wakephrase(spec, task, design, seed, teacher_bytes, cache_dir)
        out = TrainOutput(model=model, info=info)
    elif design.method in ("ads", "force"):
        overrides = {}
        if design.steps is not None:
            overrides.update(epochs=design.epochs or 1, trials_per_epoch=design.steps)
        elif design.epochs is not None:
            overrides["epochs"] = design.epochs  # passes of the recipe's epoch (500 trials)
        if design.n is not None:
            overrides["n"] = design.n
        if design.method == "ads":
            overrides["fast"] = not design.no_fast
            overrides.update({k: v for k, v in (("eta", design.eta), ("k0", design.k0)) if v is not None})
            if design.parallel and design.parallel > 1:
                overrides.update(rule="parallel", parallel=design.parallel)
        teacher = _from_bytes(teacher_bytes, kind="rate")
        out = train_from_teacher(design.method, task, seed, teacher=teacher, progress=False, **overrides)
        out.info["test"] = test(out.model, task, seed, trials)
    elif design.method == "reservoir":
        from spikefleet.train.reservoir import ReservoirConfig, train_reservoir

        kw = {k: v for k, v in (("n", design.n), ("train_trials", design.steps)) if v is not None}
        model, info = train_reservoir(task, ReservoirConfig(**kw), seed, progress=False)
        out = TrainOutput(model=model, info=info)
        out.info["test"] = test(out.model, task, seed, trials)
    else:
        kw = {k: v for k, v in (("steps", design.steps), ("hidden", design.hidden)) if v is not None}
        if design.robust != "none":
            kw["robustness"] = Robustness(design.robust, get_profile(design.robust_profile, design.robust_level),
                                          chips=design.robust_chips)
        out = train_and_test(task, design.method, seed, test_trials=trials, progress=False, **kw)
    info = _jsonable({**out.info, "design": design.to_dict(), "experiment": spec.name, "seed": seed,
                      "unit_seconds": time.perf_counter() - start})
    return out.model, info


def _evaluate(spec, unit: Unit, model_bytes: bytes, teacher_bytes: bytes | None, cache_dir=None) -> dict:
    import jax

    from spikefleet import seeds
    from spikefleet.evaluation import run_outputs
    from spikefleet.fleet.chip import fleet_keys
    from spikefleet.fleet.sweep import Sweep, run_sweeps
    from spikefleet.seeds import seed_stream

    task = spec.make_task()
    fleet, p = spec.fleet, spec.perturbations
    model, model_info = _from_bytes(model_bytes, with_info=True)
    if task.name == "wakephrase":  # fixed test set; each design judged by its own boundary
        from spikefleet.train import wakephrase as wr

        batch = wr.dataset(task, "test", fleet.trials, unit.seed, cache_dir)
        reference_task = wr.decision_task(task, None)  # the teacher's rule
        task = wr.decision_task(task, model_info.get("boundary"))
    else:
        batch = task.generate(fleet.trials, seed_stream(unit.seed, seeds.TEST))
        reference_task = task
    reference = None
    if teacher_bytes is not None:
        outputs, _ = run_outputs(_from_bytes(teacher_bytes, kind="rate"), batch.inputs)
        reference = reference_task.decide(outputs)
    keys = fleet_keys(unit.seed, fleet.chips)
    run_key = jax.random.PRNGKey(seed_stream(unit.seed, seeds.RUN_NOISE))
    sweep = Sweep(unit.sweep, (unit.level,), profile=p.profile, dead_select=p.dead_select,
                  quant_matrices=tuple(p.quant_matrices))
    (record,) = run_sweeps({unit.design: model}, task, batch, keys, [sweep], run_key=run_key, chunk=fleet.chunk,
                           yield_threshold=fleet.yield_threshold, reference_labels=reference)
    return {"metrics": {k: [float(x) for x in v] for k, v in record.metrics.items()},
            "summary": _jsonable(record.summaries),
            "info": {"condition": record.condition, "gain": record.gain, "chips": fleet.chips,
                     "trials": fleet.trials, "profile": p.profile if unit.sweep == "mismatch" else None,
                     "teacher": unit.teacher}}


def execute(payload: dict) -> dict:
    """Run one unit. ``payload``: ``spec`` (canonical dict), ``unit`` (:class:`Unit` fields),
    ``model`` / ``teacher`` (checkpoint bytes or None). Returns a plain dict with ``seconds``,
    ``cpu_seconds`` (of the worker process), ``pid`` and, for train units, ``checkpoint`` (bytes)
    and ``info``; for eval units ``metrics``, ``summary`` and ``info``."""
    from spikefleet.experiments.spec import parse_experiment

    start, cpu = time.perf_counter(), time.process_time()
    spec = parse_experiment(payload["spec"], "<worker>")
    unit = Unit(**{**payload["unit"], "deps": tuple(payload["unit"]["deps"])})
    if unit.kind == "train":
        design = next(d for d in spec.designs() if d.name == unit.design)
        model, info = _train(spec, design, unit.seed, payload.get("teacher"), payload.get("cache_dir"))
        result = {"checkpoint": _to_bytes(model, info), "info": info}
    else:
        result = _evaluate(spec, unit, payload["model"], payload.get("teacher"), payload.get("cache_dir"))
    result.update(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu, pid=os.getpid())
    return result
