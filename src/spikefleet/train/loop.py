"""Gradient training (BPTT through ``lax.scan``) with Optax.

:func:`fit` is method-agnostic: it takes a model, a loss ``loss_fn(model, inputs, targets) ->
(loss, aux)``, a deterministic batch source and a validation function, and returns the best
model by validation score (accuracy first, then lower validation loss). One jitted update
function is traced once and reused for every step (``FitResult.traces`` counts traces).

Trainable leaves are chosen by a boolean pytree (``trainable``); everything else is held fixed.
After each update an optional ``project`` function maps the model back into its valid set
(e.g. time constants clipped to a minimum).

The progress bar (``desc`` names the design, e.g. ``xor/bptt+noise(0.2) seed 0``) shows the last
training loss and validation accuracy and the best validation accuracy so far with its step: the
model :func:`fit` returns is that best one, which may be the untrained step-0 model when no
evaluation beat it; then :func:`fit` warns (:class:`~spikefleet.errors.TrainingWarning`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from spikefleet.errors import SpikefleetError, TrainingWarning, expect

__all__ = ["FitConfig", "FitResult", "fit", "TrainingDiverged", "divergence", "leaf_names", "TrainOutput"]


class TrainingDiverged(SpikefleetError):
    """The loss, a gradient, a parameter or a validation metric became NaN/inf.

    The message names the step and the quantity (``loss``, ``gradient of <leaf>``, ``parameter
    <leaf>`` or ``validation metric <name>``). ``result`` holds what the training had reached:
    :func:`fit` attaches a :class:`FitResult` with the best model validated before the failure.
    """

    result = None


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit`: steps, batch size, Adam learning rate, gradient-norm clip, validation interval, early stopping."""

    steps: int = 400
    batch_size: int = 32
    learning_rate: float = 2e-3
    grad_clip: float = 1.0
    eval_every: int = 25
    patience: int = 0  # evaluations without improvement before stopping; 0 = run all steps
    target_accuracy: Optional[float] = None  # stop once validation accuracy reaches this

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            value = getattr(self, name)
            expect(isinstance(value, int) and value > 0, f"FitConfig.{name}", "a positive integer", value)
        expect(self.learning_rate > 0, "FitConfig.learning_rate", "a positive number", self.learning_rate)
        expect(self.patience >= 0, "FitConfig.patience", "a non-negative integer", self.patience)


@dataclass
class FitResult:
    """What :func:`fit` returns: the best model, its step and validation metrics, the history and the update's trace count."""

    model: Any
    best_step: int
    best_metrics: dict
    history: list = field(default_factory=list)  # one dict per evaluation
    traces: int = 0  # how many times the update step was traced (1 = no recompilation)

    @property
    def steps_run(self) -> int:
        """The optimiser steps run (fewer than ``FitConfig.steps`` after early stopping)."""
        return int(self.history[-1]["step"]) if self.history else 0

    def summary(self) -> dict:
        """The training-info entries of this result: ``best_step`` (the optimiser step of the kept model;
        0 = the initial, untrained one), ``best_accuracy`` (its validation accuracy, ``None`` if the
        validation gives none), ``steps_run``, ``validation`` (all its validation metrics) and ``history``."""
        accuracy = self.best_metrics.get("accuracy")
        return {"best_step": self.best_step, "best_accuracy": None if accuracy is None else float(accuracy),
                "steps_run": self.steps_run, "validation": self.best_metrics, "history": self.history}


def _score(metrics: dict) -> tuple:
    return (metrics.get("accuracy", 0.0), -metrics.get("loss", math.inf))


def make_update(loss_fn: Callable, optimizer: optax.GradientTransformation, counter: list):
    """Jitted ``update(diff, static, opt_state, inputs, targets, key) -> (diff, opt_state, loss, aux, finite)``.

    ``finite`` is a boolean vector: ``[loss, gradient of each leaf..., each updated leaf...]`` (leaves
    in ``jax.tree_util.tree_leaves(diff)`` order) are free of NaN/inf; see :func:`divergence`.
    """

    @eqx.filter_jit
    def update(diff, static, opt_state, inputs, targets, key):
        counter[0] += 1  # runs only while tracing

        def objective(d):
            return loss_fn(eqx.combine(d, static), inputs, targets, key)

        (loss, aux), grads = eqx.filter_value_and_grad(objective, has_aux=True)(diff)
        updates, opt_state = optimizer.update(grads, opt_state, diff)
        new = eqx.apply_updates(diff, updates)
        flags = [jnp.all(jnp.isfinite(loss))]
        flags += [jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)]
        flags += [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(new)]
        return new, opt_state, loss, aux, jnp.stack(flags)

    return update


def leaf_names(tree) -> list[str]:
    """Dotted paths of the array leaves of ``tree`` (``w_in``, ``neurons.tau_mem``, ...), in leaf order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(path, simple=True, separator=".") for path, _ in flat]


def divergence(finite, names: list[str]) -> str | None:
    """The first non-finite quantity of an :func:`make_update` ``finite`` vector, or None if all are finite."""
    finite = np.asarray(finite)
    if finite.all():
        return None
    i = int(np.flatnonzero(~finite)[0])
    if i == 0:
        return "the loss"
    if i <= len(names):
        return f"the gradient of parameter {names[i - 1]}"
    return f"parameter {names[i - 1 - len(names)]} (after the optimizer update)"


def _bad_metrics(metrics: dict) -> list[str]:
    """The model-selection metrics (``accuracy``, ``loss``: see :func:`_score`) that are NaN/inf: with them
    the comparison with the best model so far would silently be False."""
    return [k for k in ("loss", "accuracy") if isinstance(metrics.get(k), (int, float, np.floating))
            and not isinstance(metrics.get(k), bool) and not math.isfinite(float(metrics[k]))]


def _postfix(loss: float, metrics: dict, best_metrics: dict, best_step: int) -> str:
    """The progress bar's postfix: the last training loss and validation accuracy, and the best one with its step."""
    nan = float("nan")
    return (f"loss {loss:.4f}, val acc {metrics.get('accuracy', nan):.3f}, "
            f"best {best_metrics.get('accuracy', nan):.3f} @ step {best_step}")


def _warn_initial_kept(desc: str, history: list) -> None:
    first, last = history[0], history[-1]
    nan = float("nan")
    warnings.warn(
        f"{desc}: the trained model never beat the initial (untrained, step 0) one on the validation set "
        f"(step 0: accuracy {first.get('accuracy', nan):.3f}, loss {first.get('loss', nan):.4g}; last evaluation, "
        f"step {last['step']}: accuracy {last.get('accuracy', nan):.3f}, loss {last.get('loss', nan):.4g}), so the "
        "kept model is the initial one; train for more steps or try another learning rate",
        TrainingWarning, stacklevel=3)


def fit(model, loss_fn: Callable, batches: Callable[[int], tuple], validate: Callable[[Any], dict],
        config: FitConfig, *, key: jax.Array | None = None, trainable=None, project: Callable | None = None,
        progress: bool = True, desc: str = "train") -> FitResult:
    """Train ``model``; returns the best model by validation score.

    The initial model is validated too (step 0); if no later evaluation beats it, it is the model
    returned and a :class:`~spikefleet.errors.TrainingWarning` says so.

    Args:
        loss_fn: ``(model, inputs, targets, key) -> (scalar loss, aux dict)``; jit-compatible.
            ``key`` is ``fold_in(key, step)`` (``None`` when ``fit`` got no key): the randomness of
            robust objectives (sampled chips, attacks).
        batches: ``step -> (inputs [B, T, C], targets [B, T, O])``, deterministic in ``step``.
        validate: ``model -> {"accuracy": float, "loss": float, ...}`` (run on the host).
        trainable: boolean pytree like ``model`` (default: every floating-point array).
        project: ``model -> model`` applied after every update.
        desc: the progress bar's label (and the prefix of warnings and errors).
    """

    spec = trainable if trainable is not None else jax.tree_util.tree_map(eqx.is_inexact_array, model)
    optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(config.learning_rate))
    diff, static = eqx.partition(model, spec)
    opt_state = optimizer.init(diff)
    counter = [0]
    update = make_update(loss_fn, optimizer, counter)

    names = leaf_names(diff)
    best_model, best_metrics, best_step = model, validate(model), 0
    history = [{"step": 0, **best_metrics}]
    stale = 0

    def diverged(what: str, step: int, detail: str) -> TrainingDiverged:
        exc = TrainingDiverged(f"{desc}: {what} became non-finite at step {step} ({detail}); training stopped, "
                               f"nothing was saved; the best model so far (validated at step {best_step}) is in "
                               "the exception's .result. Lower the learning rate or check the inputs.")
        exc.result = FitResult(model=best_model, best_step=best_step, best_metrics=best_metrics, history=history,
                               traces=counter[0])
        return exc

    bar = tqdm(total=config.steps, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    bar.set_postfix_str(_postfix(math.nan, best_metrics, best_metrics, best_step))
    try:
        for step in range(1, config.steps + 1):
            inputs, targets = batches(step)
            step_key = None if key is None else jax.random.fold_in(key, step)
            new_diff, new_opt, loss, aux, finite = update(diff, static, opt_state, inputs, targets, step_key)
            what = divergence(finite, names)
            if what is not None:
                raise diverged(what, step, f"loss = {float(loss)}")
            diff, opt_state = new_diff, new_opt
            if project is not None:
                diff, _ = eqx.partition(project(eqx.combine(diff, static)), spec)
            bar.update(1)
            if step % config.eval_every == 0 or step == config.steps:
                metrics = validate(eqx.combine(diff, static))
                bad = _bad_metrics(metrics)
                if bad:
                    raise diverged(f"the validation metric {bad[0]}", step, f"{bad[0]} = {metrics[bad[0]]}")
                history.append({"step": step, "train_loss": float(loss), **metrics})
                if _score(metrics) > _score(best_metrics):
                    best_model, best_metrics, best_step, stale = eqx.combine(diff, static), metrics, step, 0
                else:
                    stale += 1
                bar.set_postfix_str(_postfix(float(loss), metrics, best_metrics, best_step))
                if config.patience and stale >= config.patience:
                    break
                if config.target_accuracy is not None and best_metrics.get("accuracy", 0) >= config.target_accuracy:
                    break
    finally:
        bar.close()
    if best_step == 0 and len(history) > 1:
        _warn_initial_kept(desc, history)
    return FitResult(model=best_model, best_step=best_step, best_metrics=best_metrics, history=history,
                     traces=counter[0])


@dataclass
class TrainOutput:
    """A trained design (``model``) and its training metadata (``info``)."""

    model: Any
    info: dict
