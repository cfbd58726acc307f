"""The BPTT fit loop: one trace for all steps, model selection, trainable masks, divergence."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.train import gradient as recipes
from spikefleet.seeds import seed_stream
from spikefleet.train.loop import FitConfig, TrainingDiverged, fit

TASK = get_task("xor", config=XorConfig(duration=0.5))


def _batches(batch_size=4):
    def source(step):
        b = TASK.generate(batch_size, seed_stream(0, 1, step))
        return jnp.asarray(b.inputs), jnp.asarray(b.targets)
    return source


def test_update_step_is_traced_once():
    model = recipes._teacher_model(TASK, jax.random.PRNGKey(0), 8)
    calls = []

    def validate(m):
        calls.append(1)
        return {"accuracy": 0.0, "loss": 1.0}

    result = fit(model, recipes._teacher_loss, _batches(), validate,
                 FitConfig(steps=5, batch_size=4, eval_every=2), progress=False)
    assert result.traces == 1
    assert len(calls) == 1 + 3  # initial + steps 2, 4, 5


def test_spiking_update_is_traced_once_and_respects_trainable_mask():
    model = recipes._bptt_model(TASK, jax.random.PRNGKey(1), 8)
    spec = recipes._bptt_trainable(model)
    losses = iter([3.0, 2.0, 1.0, 0.0])  # every evaluation improves, so the last model is kept
    result = fit(model, recipes._bptt_loss, _batches(), lambda m: {"accuracy": 0.0, "loss": next(losses)},
                 FitConfig(steps=3, batch_size=4, eval_every=1), trainable=spec,
                 project=recipes._bptt_project, progress=False)
    assert result.traces == 1
    trained = result.model
    # frozen leaves are bit-identical, trained ones moved
    np.testing.assert_array_equal(trained.neurons.threshold, model.neurons.threshold)
    np.testing.assert_array_equal(trained.tau_out, model.tau_out)
    assert not np.array_equal(trained.w_in, model.w_in)
    assert np.all(np.diag(np.asarray(trained.w_rec)) == 0)  # projection keeps no self-connections


def test_model_selection_returns_best_validated_model():
    model = recipes._teacher_model(TASK, jax.random.PRNGKey(0), 8)
    scores = iter([0.5, 0.9, 0.2, 0.9])  # step 0, 1, 2, 3; tie at step 3 resolved by loss

    def validate(m):
        acc = next(scores)
        return {"accuracy": acc, "loss": 1.0, "marker": float(m.w_out.sum())}

    result = fit(model, recipes._teacher_loss, _batches(), validate,
                 FitConfig(steps=3, eval_every=1), progress=False)
    assert result.best_step == 1
    assert result.best_metrics["accuracy"] == 0.9
    assert float(result.model.w_out.sum()) == pytest.approx(result.history[1]["marker"])


def test_early_stopping_with_patience():
    model = recipes._teacher_model(TASK, jax.random.PRNGKey(0), 8)
    result = fit(model, recipes._teacher_loss, _batches(), lambda m: {"accuracy": 0.1, "loss": 1.0},
                 FitConfig(steps=50, eval_every=1, patience=3), progress=False)
    assert [h["step"] for h in result.history] == [0, 1, 2, 3]
    assert result.best_step == 0


def test_nan_loss_stops_training_with_step_in_message():
    model = recipes._teacher_model(TASK, jax.random.PRNGKey(0), 8)

    def loss(m, x, y, key):
        value = jnp.mean(m.w_out) * jnp.where(jnp.sum(x) > -1e9, jnp.nan, 1.0)
        return value, {}

    with pytest.raises(TrainingDiverged, match="non-finite at step 1"):
        fit(model, loss, _batches(), lambda m: {"accuracy": 0.0, "loss": 0.0}, FitConfig(steps=3), progress=False)


def test_teacher_training_reduces_loss():
    out = recipes.train(TASK, "teacher", 0, steps=30, eval_every=10, batch_size=8, val_trials=32, progress=False)
    losses = [h["loss"] for h in out.info["history"]]
    assert losses[-1] < 0.8 * losses[0]
    assert out.info["method"] == "teacher" and out.info["seed"] == 0


def test_fit_config_validation():
    with pytest.raises(ValueError, match="FitConfig.steps"):
        FitConfig(steps=0)
    with pytest.raises(ValueError, match="method"):
        recipes.train(TASK, "nope", 0)
    with pytest.raises(ValueError, match="seed"):
        recipes.train(TASK, "teacher", -1)


def test_seed_streams_are_distinct_and_reproducible():
    assert seed_stream(0, 1, 5) == seed_stream(0, 1, 5)
    values = {seed_stream(s, st, i) for s in range(3) for st in range(1, 4) for i in range(5)}
    assert len(values) == 45
