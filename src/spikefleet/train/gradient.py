"""The gradient recipes (rate teacher, LIF BPTT) and their shared fit: a task + a recipe -> a design.

The methods ``teacher`` and ``bptt`` (:mod:`spikefleet.train.methods.teacher`,
:mod:`spikefleet.train.methods.bptt`) train through :func:`train`. Recipes here:

* ``teacher`` — the Network ADS tanh rate network (``N̂ = 64`` for XOR), BPTT on the output
  MSE; time constants are kept at or above 10 ms.
* ``bptt`` — a recurrent LIF spiking network trained with surrogate-gradient BPTT on the
  output MSE plus a firing-rate regulariser.

Seeds: ``seed`` determines everything. The model init key is ``PRNGKey(seed)``; training
batch ``i`` uses task seed ``seed_stream(seed, 1, i)``, validation ``seed_stream(seed, 2)``.
Test trials (``spikefleet evaluate``) use stream 3, so they are fresh.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import ConfigError, expect
from spikefleet.simulation import evaluate_model
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.simulation import simulate_batch
from spikefleet.seeds import ROBUST as ROBUST_STREAM
from spikefleet.seeds import TRAIN as TRAIN_STREAM
from spikefleet.seeds import VAL as VAL_STREAM
from spikefleet.seeds import seed_stream
from spikefleet.train.loop import FitConfig, fit
from spikefleet.train.loop import TrainOutput
from spikefleet.train.objectives import Robustness, robust_loss

__all__ = ["METHODS", "train", "default_fit_config", "fixed_batches"]


def fixed_batches(data, batch_size: int, steps: int, seed: int):
    """``batches(step)`` (step = 1, 2, ...) drawing ``batch_size`` samples of the fixed set ``data``
    (``inputs``, ``targets``) in the order of seeded permutations, one per pass over the set."""
    n = len(data.inputs)
    expect(n >= batch_size, "train_data", f"at least batch_size = {batch_size} samples", n)
    passes = (steps * batch_size) // n + 1
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(passes)])
    x, y = jnp.asarray(data.inputs), jnp.asarray(data.targets)

    def batches(step):
        sel = order[(step - 1) * batch_size: step * batch_size]
        return x[sel], y[sel]

    return batches


def default_fit_config(method: str) -> FitConfig:
    """Adam(3e-3), batch 32; teacher 400 steps, BPTT 400 steps; validation every 50 steps."""
    expect(method in METHODS, "method", f"one of {sorted(METHODS)}", method)
    return FitConfig(steps=400, batch_size=32, learning_rate=3e-3, eval_every=50)


# ----------------------------------------------------------------------------------- teacher
def _teacher_model(task, key, hidden: int):
    return init_rate(RateConfig(n_in=task.n_in, n_hidden=hidden, n_out=task.n_out, dt=task.dt, min_tau=10e-3), key)


def _teacher_loss(model, inputs, targets, key=None):
    outputs = simulate_batch(model, inputs).outputs
    mse = jnp.mean((outputs - targets) ** 2)
    return mse, {"mse": mse}


def _teacher_project(model):
    return eqx.tree_at(lambda m: m.units.tau, model, jnp.clip(model.units.tau, 10e-3, 1.0))


# -------------------------------------------------------------------------------------- bptt
def _bptt_model(task, key, hidden: int):
    config = SpikingConfig(n_in=task.n_in, n_hidden=hidden, n_out=task.n_out, dt=task.dt,
                           surrogate="fast-sigmoid", surrogate_params=(("slope", 5.0),))
    # tasks whose inputs are much smaller than XOR's say so with `input_gain` (wake phrase: 5)
    return init_spiking(config, key, tau_mem=20e-3, tau_syn=50e-3, tau_out=50e-3,
                        in_scale=float(task.input_gain), rec_scale=0.3, out_scale=0.3)


RATE_TARGET_HZ = 20.0
RATE_WEIGHT = 1e-4


def _bptt_loss(model, inputs, targets, key=None):
    result = simulate_batch(model, inputs, record=("spikes",))
    mse = jnp.mean((result.outputs - targets) ** 2)
    rates = result.traces["spikes"].mean(axis=1) / model.dt  # [B, N] Hz
    rate_penalty = jnp.mean((rates.mean(axis=0) - RATE_TARGET_HZ) ** 2) * RATE_WEIGHT
    return mse + rate_penalty, {"mse": mse, "rate_hz": rates.mean()}


def _bptt_trainable(model):
    spec = jax.tree_util.tree_map(lambda _: False, model)
    return eqx.tree_at(
        lambda m: (m.w_in, m.w_rec, m.w_out, m.b_out, m.neurons.bias, m.neurons.tau_mem, m.neurons.tau_syn),
        spec, (True,) * 7)


def _bptt_project(model):
    n = model.neurons
    model = eqx.tree_at(lambda m: (m.neurons.tau_mem, m.neurons.tau_syn, m.w_rec), model,
                        (jnp.clip(n.tau_mem, 2 * model.dt, 0.5), jnp.clip(n.tau_syn, 2 * model.dt, 0.5),
                         model.w_rec * (1.0 - jnp.eye(model.w_rec.shape[0]))))
    return model


#: gradient recipes: method -> model builder, loss, projection, trainable leaves, default size, kind
METHODS = {
    "teacher": dict(model=_teacher_model, loss=_teacher_loss, project=_teacher_project, trainable=None,
                    hidden=64, kind="rate"),
    "bptt": dict(model=_bptt_model, loss=_bptt_loss, project=_bptt_project, trainable=_bptt_trainable,
                 hidden=128, kind="spiking"),
}


def train(task, method: str, seed: int, *, fit_config: FitConfig | None = None, hidden: int | None = None,
          val_trials: int = 200, robustness: Robustness = Robustness(), progress: bool = True,
          train_data=None, val_batch=None, label: str | None = None, **fit_overrides) -> TrainOutput:
    """Train a design for ``task`` with ``method`` from ``seed``; returns the model and its info.

    ``robustness`` selects a robust objective (:mod:`spikefleet.train.objectives`); its random
    chips/attacks use ``PRNGKey(seed_stream(seed, 4))`` folded with the step.
    ``train_data``: a fixed training set (a batch with ``inputs``, ``targets``) to draw the
    mini-batches from (a permutation seeded by ``seed_stream(seed, TRAIN)``, reshuffled every
    pass) instead of fresh ``task.generate`` trials; ``val_batch``: a fixed validation batch
    instead of ``val_trials`` fresh ones. For tasks whose samples are costly (wake phrase).
    ``label``: the progress bar's label (default ``"{task}/{method} seed {seed}"``).

    ``info`` has ``task``, ``method``, ``seed``, ``hidden``, ``fit``, ``robustness`` and the entries of
    :meth:`~spikefleet.train.loop.FitResult.summary` (``best_step``, ``best_accuracy``, ``steps_run``,
    ``validation``, ``history``).
    """
    expect(method in METHODS, "method", f"one of {sorted(METHODS)}", method)
    expect(isinstance(seed, int) and seed >= 0, "seed", "a non-negative integer", seed)
    recipe = METHODS[method]
    hidden = recipe["hidden"] if hidden is None else hidden
    expect(isinstance(hidden, int) and hidden > 0, "hidden", "a positive integer", hidden)
    config = fit_config or default_fit_config(method)
    if fit_overrides:
        config = replace(config, **fit_overrides)
    model = recipe["model"](task, jax.random.PRNGKey(seed), hidden)
    val = task.generate(val_trials, seed_stream(seed, VAL_STREAM)) if val_batch is None else val_batch

    if train_data is None:
        def batches(step):
            b = task.generate(config.batch_size, seed_stream(seed, TRAIN_STREAM, step))
            return jnp.asarray(b.inputs), jnp.asarray(b.targets)
    else:
        batches = fixed_batches(train_data, config.batch_size, config.steps, seed_stream(seed, TRAIN_STREAM))

    trainable = recipe["trainable"](model) if recipe["trainable"] else None
    if robustness.kind != "none" and recipe["kind"] != "spiking":
        raise ConfigError(f"robust={robustness.kind!r} is for spiking designs; method {method!r} trains a "
                          f"{recipe['kind']} network")
    loss = robust_loss(recipe["loss"], robustness)
    result = fit(model, loss, batches, lambda m: evaluate_model(m, task, val), config,
                 key=jax.random.PRNGKey(seed_stream(seed, ROBUST_STREAM)), trainable=trainable,
                 project=recipe["project"], progress=progress,
                 desc=label or f"{task.name}/{method} seed {seed}")
    info = {
        "task": task.name, "method": method, "seed": seed, "hidden": hidden,
        "fit": asdict(config), "robustness": robustness.to_dict(), **result.summary(),
    }
    return TrainOutput(model=result.model, info=info)
