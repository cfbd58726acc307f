"""Train one design by method name and test it: what ``spikefleet train``, the experiment runner's
train units and scripts call.

:func:`train_design` looks the method up in :mod:`spikefleet.train.registry`, builds its config,
trains a teacher first (method ``teacher``, same seed) for a method that needs one and got none,
hands the task's fixed training/validation sets (if the task has them) to the method and records
the task's per-design decision parameters (:meth:`~spikefleet.tasks.base.Task.fit_decision`).
:func:`test_design` measures a design on the test set of a seed as the task judges it.
"""

from __future__ import annotations

import time

from spikefleet.errors import ConfigError, expect
from spikefleet.simulation import output_metrics, run_outputs
from spikefleet.train.loop import TrainOutput
from spikefleet.train.methods.base import Method
from spikefleet.train.registry import get_method

__all__ = ["train_design", "test_design", "train_and_test", "TrainOutput"]


def train_design(task, method: str | Method, seed: int, *, teacher=None, progress: bool = True, cache_dir=None,
                 **config) -> TrainOutput:
    """Train a design for ``task`` with ``method`` from ``seed``.

    ``config``: fields of the method's ``Config`` (the rest keep the recipe's values). ``teacher``:
    the trained rate network of a method that needs one (default: trained here from ``seed``;
    ``info["teacher"]`` records which). ``cache_dir``: where a task with fixed data sets keeps them.
    """
    method = get_method(method) if isinstance(method, str) else method
    expect(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "a non-negative integer", seed)
    if not method.supports(task):
        raise ConfigError(f"method {method.name!r} trains {method.model} designs; task {task.name!r} needs "
                          f"{task.default_model} designs")
    settings = method.Config(**config)
    start = time.perf_counter()
    data = task.training_data(seed, cache_dir)
    teacher_info = None
    if method.needs_teacher:
        teacher_info = {"source": "given"}
        if teacher is None:
            trained = train_design(task, "teacher", seed, progress=progress, cache_dir=cache_dir)
            teacher, teacher_info = trained.model, {"source": "trained", "validation": trained.info["validation"]}
    model, info = method.train(task, settings, seed=seed, teacher=teacher, data=data, progress=progress)
    if teacher_info is not None:
        info["teacher"] = teacher_info
    if method.fits_decision and data is not None:
        info.update(task.fit_decision(model, data.validation))
    info.setdefault("train_seconds", time.perf_counter() - start)
    return TrainOutput(model=model, info=info)


def test_design(model, task, seed: int, trials: int, *, info: dict | None = None, cache_dir=None) -> dict:
    """Metrics of ``model`` on the test set of seed ``seed`` (``trials`` trials, see
    :meth:`~spikefleet.tasks.base.Task.test_set`), decided as the task judges a design with ``info``:
    ``trials``, the rule (if the task names one), ``accuracy``, ``loss``, ``rate_hz`` and the task's
    own test metrics (frozen noise: spike ``counts`` and ``margin``)."""
    trained, channels = (info or {}).get("task"), getattr(getattr(model, "config", None), "n_in", None)
    if isinstance(trained, str) and trained != task.name or channels not in (None, getattr(task, "n_in", channels)):
        raise ConfigError(f"model: a design trained on task {trained!r} with {channels} input channel(s) cannot be "
                          f"tested on task {task.name!r} ({task.n_in} input channels); pass the task it was trained on")
    judged = task.judge(info or {})
    batch = judged.test_set(trials, seed, cache_dir)
    outputs, rates = run_outputs(model, batch.inputs)
    return {"trials": int(len(batch.inputs)), **judged.rule_info(), **output_metrics(judged, batch, outputs, rates),
            **judged.test_metrics(outputs, batch)}


def train_and_test(task, method: str | Method, seed: int, *, test_trials: int = 200, teacher=None,
                   progress: bool = True, cache_dir=None, **config) -> TrainOutput:
    """:func:`train_design`, then :func:`test_design` on ``test_trials`` trials (in ``info["test"]``)."""
    out = train_design(task, method, seed, teacher=teacher, progress=progress, cache_dir=cache_dir, **config)
    out.info["test"] = test_design(out.model, task, seed, test_trials, info=out.info, cache_dir=cache_dir)
    return out
