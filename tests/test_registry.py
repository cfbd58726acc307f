"""A new method and a new task, registered from outside spikefleet, run through an experiment file and
``spikefleet train`` without any change to the command line, the experiment engine or checkpoints.
Also: the frozen-noise task (method dynapse2) from an experiment file."""

import importlib
import sys

import numpy as np
import pytest

from spikefleet import checkpoint
from spikefleet.cli.main import main
from spikefleet.experiments.runner import run_experiment
from spikefleet.experiments.spec import ExperimentSpecError, parse_experiment, parse_experiment_text
from spikefleet.experiments.store import ResultStore
from spikefleet.tasks.registry import TASKS
from spikefleet.train.registry import METHODS


@pytest.fixture
def plugin():
    sys.modules.pop("registry_plugin", None)
    module = importlib.import_module("registry_plugin")  # registers "untrained-lif" and the task "sign"
    yield module
    METHODS.pop("untrained-lif", None)
    TASKS.pop("sign", None)
    sys.modules.pop("registry_plugin", None)


PLUGIN_TOML = """\
name = "plugin"

[task]
name = "{task}"

[[methods]]
name = "mine"
method = "untrained-lif"
width = 5

[[methods]]
name = "bptt"
method = "bptt"
hidden = 4
steps = 2

[fleet]
chips = 2
trials = 4

[perturbations]
mismatch = [0.0, 0.1]
"""


def _train_infos(out, spec) -> dict:
    store = ResultStore(out, spec)
    try:
        return {u["unit_id"]: u["info"] for u in store.units() if u["kind"] == "train"}
    finally:
        store.close()


def test_a_registered_method_and_task_run_from_an_experiment_file(plugin, tmp_path):
    spec = parse_experiment_text(PLUGIN_TOML.format(task="sign"), "plugin.toml")
    # the modules that define the method and the task travel with the spec (workers import them)
    assert spec.to_dict()["plugins"] == ["registry_plugin"]
    assert parse_experiment(spec.to_dict()).hash() == spec.hash()
    result = run_experiment(spec, tmp_path / "out", workers=1, progress=False)
    assert result.units_total == 2 + 2 * 2 and result.units_run == result.units_total
    assert [(r["design"], r["level"]) for r in result.rows] == [("mine", 0.0), ("mine", 0.1), ("bptt", 0.0),
                                                                ("bptt", 0.1)]
    assert all(0.0 <= r["median acc"] <= 1.0 for r in result.rows)
    infos = _train_infos(tmp_path / "out", spec)
    assert infos["train/mine/seed0"]["width"] == 5 and infos["train/mine/seed0"]["test"]["trials"] == 4
    assert infos["train/bptt/seed0"]["hidden"] == 4


def test_registered_options_are_validated_like_the_built_in_ones(plugin):
    with pytest.raises(ExperimentSpecError, match=r"methods\[0\]\.width: expected a positive integer"):
        parse_experiment_text(PLUGIN_TOML.format(task="sign").replace("width = 5", "width = 0"), "p.toml")
    with pytest.raises(ExperimentSpecError, match=r"methods\[1\]\.width: expected an option of method 'bptt'"):
        parse_experiment_text(PLUGIN_TOML.format(task="sign").replace("steps = 2", "width = 2"), "p.toml")
    text = PLUGIN_TOML.format(task="xor").replace('name = "xor"', 'name = "xor"\nduration = 0.1')
    assert parse_experiment_text(text).to_dict()["plugins"] == ["registry_plugin"]  # the method's module


def test_a_registered_method_and_task_train_from_the_command_line(plugin, tmp_path, capsys):
    out = tmp_path / "m.sfc"
    assert main(["train", "--task", "sign", "--method", "untrained-lif", "--width", "3", "--seed", "1",
                 "--out", str(out), "--test-trials", "8", "--quiet"]) == 0
    assert "sign/untrained-lif seed 1: test accuracy" in capsys.readouterr().out
    loaded = checkpoint.load(out, kind="spiking")
    assert loaded.model.config.n_hidden == 3 and loaded.info["width"] == 3 and loaded.info["test"]["trials"] == 8
    code = main(["train", "--task", "sign", "--method", "bptt", "--width", "3", "--seed", "1",
                 "--out", str(tmp_path / "x.sfc"), "--quiet"])
    assert code == 2 and "--width applies to --method untrained-lif only" in capsys.readouterr().err


FROZEN_NOISE = """\
name = "fn"

[task]
name = "frozen-noise"
n_channels = 8
duration = 0.05

[[methods]]
name = "plain"
method = "dynapse2"
steps = 3

[[methods]]
name = "noisy"
method = "dynapse2"
steps = 3
robust = "noise"

[fleet]
chips = 3
trials = 2

[perturbations]
mismatch = [0.0, 0.5]
profile = "dynapse2-frozen"
"""


def test_frozen_noise_runs_from_an_experiment_file(tmp_path):
    spec = parse_experiment_text(FROZEN_NOISE, "fn.toml")
    assert "plugins" not in spec.to_dict()
    result = run_experiment(spec, tmp_path / "out", workers=1, progress=False)
    assert result.units_total == 2 + 2 * 2 and result.units_run == result.units_total
    assert [r["design"] for r in result.rows] == ["plain", "plain", "noisy", "noisy"]
    infos = _train_infos(tmp_path / "out", spec)
    noisy, plain = infos["train/noisy/seed0"], infos["train/plain/seed0"]
    assert noisy["weight_noise"] == pytest.approx(0.1) and plain["weight_noise"] == 0.0 and plain["epochs"] == 3
    test = plain["test"]
    assert test["trials"] == 2 and len(test["counts"]) == 2 and np.isfinite(test["margin"])
    store = ResultStore(tmp_path / "out", spec)
    try:
        evals = [u for u in store.units("eval")]
    finally:
        store.close()
    assert all(len(u["metrics"]["margin"]) == 3 for u in evals)  # the task's own fleet metric, per chip


def test_frozen_noise_needs_a_method_of_its_model():
    text = FROZEN_NOISE.replace('method = "dynapse2"', 'method = "bptt"')
    with pytest.raises(ExperimentSpecError, match=r"task: expected one of \['xor', 'wakephrase'\]"):
        parse_experiment_text(text, "fn.toml")
