r"""The unit graph of an experiment and the work of one unit (run inside a worker).

Units (one per row of the result store):

* ``train/<design>/seed<S>`` — train design ``<design>`` from seed ``S`` (and test it on
  ``fleet.trials`` test trials, recorded in its info). Depends on ``train/<teacher>/seed<S>``
  for designs whose method needs a teacher (ads, force), on nothing otherwise.
* ``eval/<design>/seed<S>/<sweep>/<level>`` — evaluate the trained design on the fleet of seed
  ``S`` at one perturbation level. Depends on its train unit (and on the teacher's, whose
  decisions give the ``agreement`` metric of ads/force designs).

Every random draw comes from the paper's seeds through the named streams of
:mod:`spikefleet.seeds`, exactly as :func:`spikefleet.fleet.report.fleet_report` and the training
methods use them: test trials (the task's :meth:`~spikefleet.tasks.base.Task.test_set`, by default
``seed_stream(S, TEST)``), chips ``fleet_keys(S, chips)``, runtime
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

import jax

import spikefleet.train.design as training
from spikefleet import checkpoint, seeds
from spikefleet.simulation import run_outputs
from spikefleet.fleet.chip import fleet_keys
from spikefleet.fleet.sweep import Sweep, run_sweeps
from spikefleet.io import to_jsonable
from spikefleet.seeds import seed_stream
from spikefleet.experiments.spec import parse_experiment
from spikefleet.train.registry import get_method

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
def estimated_cost(spec, unit: Unit) -> float:
    """A rough CPU-seconds estimate of ``unit``, used only to order ready units (longest critical
    path first) so that long chains (teacher -> ADS -> its fleet evaluations) start early; results
    never depend on it. Training: the method's ``cost``; evaluation: the method's per-step cost of
    its design × chips that differ × trials × time steps."""
    design = next(d for d in spec.designs() if d.name == unit.design)
    method = get_method(design.method)
    task = spec.make_task()
    config = method.make_config(task, dict(design.options))
    if unit.kind == "train":
        return method.cost(task, config)
    per_chip = unit.sweep in ("mismatch", "noise", "dead") and unit.level > 0  # chips differ: no shared work
    chips = spec.fleet.chips if per_chip else 1
    return 1.0 + method.step_cost(config) * chips * spec.fleet.trials * task.trial_steps


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
def _to_bytes(model, info: dict) -> bytes:
    with tempfile.TemporaryDirectory(prefix="spikefleet-unit-") as tmp:
        path = Path(tmp) / "model.sfc"
        checkpoint.save(path, model, info, overwrite=False)  # a fresh temporary file
        return path.read_bytes()


def _from_bytes(data: bytes, kind: str | None = None, *, with_info: bool = False):
    with tempfile.TemporaryDirectory(prefix="spikefleet-unit-") as tmp:
        path = Path(tmp) / "model.sfc"
        path.write_bytes(data)
        loaded = checkpoint.load(path, kind=kind)
        return (loaded.model, loaded.info) if with_info else loaded.model


def _train(spec, design, seed: int, teacher_bytes: bytes | None, cache_dir=None):
    """Train ``design`` from ``seed`` with its method (the teacher from ``teacher_bytes``) and test it."""
    task = spec.make_task()
    start = time.perf_counter()
    method = get_method(design.method)
    teacher = _from_bytes(teacher_bytes, kind="rate") if teacher_bytes is not None else None
    config = method.configure(task, {k: v for k, v in design.options if k != "teacher"})
    out = training.train_design(task, method.name, seed, teacher=teacher, progress=False, cache_dir=cache_dir,
                                **config)
    out.info["test"] = training.test_design(out.model, task, seed, spec.fleet.trials, info=out.info,
                                            cache_dir=cache_dir)
    info = to_jsonable({**out.info, "design": design.to_dict(), "experiment": spec.name, "seed": seed,
                      "unit_seconds": time.perf_counter() - start})
    return out.model, info


def _evaluate(spec, unit: Unit, model_bytes: bytes, teacher_bytes: bytes | None, cache_dir=None) -> dict:
    task = spec.make_task()
    fleet, p = spec.fleet, spec.perturbations
    model, model_info = _from_bytes(model_bytes, with_info=True)
    batch = task.test_set(fleet.trials, unit.seed, cache_dir)
    reference = None
    if teacher_bytes is not None:  # the teacher's decisions, by the task's reference rule
        outputs, _ = run_outputs(_from_bytes(teacher_bytes, kind="rate"), batch.inputs)
        reference = task.judge({}).decide(outputs)
    keys = fleet_keys(unit.seed, fleet.chips)
    run_key = jax.random.PRNGKey(seed_stream(unit.seed, seeds.RUN_NOISE))
    sweep = Sweep(unit.sweep, (unit.level,), profile=p.profile, dead_select=p.dead_select,
                  quant_matrices=tuple(p.quant_matrices))
    (record,) = run_sweeps({unit.design: model}, task.judge(model_info), batch, keys, [sweep], run_key=run_key,
                           chunk=fleet.chunk, yield_threshold=fleet.yield_threshold, reference_labels=reference)
    return {"metrics": {k: [float(x) for x in v] for k, v in record.metrics.items()},
            "summary": to_jsonable(record.summaries),
            "info": {"condition": record.condition, "gain": record.gain, "chips": fleet.chips,
                     "n_effective": record.n_effective,
                     "trials": int(len(batch.inputs)), "profile": p.profile if unit.sweep == "mismatch" else None,
                     "teacher": unit.teacher}}


def execute(payload: dict) -> dict:
    """Run one unit. ``payload``: ``spec`` (canonical dict), ``unit`` (:class:`Unit` fields),
    ``model`` / ``teacher`` (checkpoint bytes or None). Returns a plain dict with ``seconds``,
    ``cpu_seconds`` (of the worker process), ``pid`` and, for train units, ``checkpoint`` (bytes)
    and ``info``; for eval units ``metrics``, ``summary`` and ``info``."""
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
