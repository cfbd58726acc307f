"""What a training run tells its user: the progress bar's label and best-so-far, the kept model's step
in the info, and a warning when the kept model is the untrained initial one."""

import re
import warnings

import jax
import jax.numpy as jnp
import pytest

from spikefleet.errors import TrainingWarning
from spikefleet.seeds import seed_stream
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.train import gradient
from spikefleet.train.design import train_design
from spikefleet.train.loop import FitConfig, fit

TASK = get_task("xor", config=XorConfig(duration=0.3))


def _batches(step):
    b = TASK.generate(4, seed_stream(0, 1, step))
    return jnp.asarray(b.inputs), jnp.asarray(b.targets)


def _teacher():
    return gradient._teacher_model(TASK, jax.random.PRNGKey(0), 4)


def _argmax_step(history: list) -> int:
    """The step a model selection on (accuracy, then lower loss), keeping the earliest of equals, picks."""
    best = max(range(len(history)), key=lambda i: (history[i]["accuracy"], -history[i]["loss"], -i))
    return history[best]["step"]


def test_robust_design_is_labelled_with_its_noise_and_info_records_the_kept_step(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingWarning)  # a 4-step run may keep the initial model
        out = train_design(TASK, "bptt", 3, steps=4, hidden=6, robust="noise", robust_level=0.2, robust_chips=2)
    bar = capsys.readouterr().err
    assert "xor/bptt+noise(0.2) seed 3" in bar
    info = out.info
    history = info["history"]
    assert [h["step"] for h in history] == [0, 4]
    assert info["best_step"] == _argmax_step(history)
    kept = next(h for h in history if h["step"] == info["best_step"])
    assert info["best_accuracy"] == kept["accuracy"]
    assert info["validation"]["accuracy"] == kept["accuracy"]
    assert info["steps_run"] == 4
    # the bar's last state names the best accuracy and its step next to the current one
    shown = re.findall(r"val acc (\d\.\d{3}), best (\d\.\d{3}) @ step (\d+)", bar)
    assert shown, bar
    current, best, step = shown[-1]
    assert float(current) == pytest.approx(history[-1]["accuracy"], abs=5e-4)
    assert float(best) == pytest.approx(kept["accuracy"], abs=5e-4)
    assert int(step) == info["best_step"]


def test_plain_and_adversarial_designs_have_distinct_labels(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingWarning)
        train_design(TASK, "bptt", 0, steps=1, hidden=4)
        plain = capsys.readouterr().err
        train_design(TASK, "bptt", 0, steps=1, hidden=4, robust="adversarial", robust_profile="dynapse1-measured",
                     robust_level=0.3)
        adversarial = capsys.readouterr().err
    assert "xor/bptt seed 0" in plain and "+noise" not in plain
    assert "xor/bptt+adversarial(dynapse1-measured 0.3) seed 0" in adversarial


def test_best_step_is_the_argmax_of_the_validation_history():
    scores = iter([(0.5, 1.0), (0.5, 0.8), (0.75, 0.9), (0.75, 0.7), (0.6, 0.1)])  # steps 0, 2, 4, 6, 8

    def validate(model):
        accuracy, loss = next(scores)
        return {"accuracy": accuracy, "loss": loss}

    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)  # the kept model is trained: no warning
        result = fit(_teacher(), gradient._teacher_loss, _batches, validate,
                     FitConfig(steps=8, batch_size=4, eval_every=2), progress=False)
    summary = result.summary()
    assert [h["step"] for h in summary["history"]] == [0, 2, 4, 6, 8]
    assert summary["best_step"] == _argmax_step(summary["history"]) == 6
    assert summary["best_accuracy"] == 0.75
    assert summary["steps_run"] == 8


def test_keeping_the_initial_model_warns():
    # validation never improves on step 0 (the same score every time): the untrained model is kept
    with pytest.warns(TrainingWarning, match=r"never beat the initial .*step 0.*more steps or try another learning"):
        result = fit(_teacher(), gradient._teacher_loss, _batches, lambda m: {"accuracy": 0.5, "loss": 0.3},
                     FitConfig(steps=4, batch_size=4, eval_every=2), progress=False, desc="xor/teacher seed 0")
    assert result.best_step == 0
    assert result.summary()["best_step"] == 0
    assert result.steps_run == 4

