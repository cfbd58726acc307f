"""DYNAP-SE2 network, frozen-noise task, DYNAP-SE2 mismatch profiles (E6) and the E7c trainer.

References: the neuron layer's own ``evolve`` loop (independent of the network's step), NumPy
computations of the task metrics, the spec's checksums (1505 / 1591 input spikes) and E6
statistics, and Adam's closed-form first step.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet import checkpoint
from spikefleet.cli.main import main
from spikefleet.fleet.chip import Condition, fleet_keys, realize
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import apply_mismatch, get_profile
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network, init_dynapse2
from spikefleet.neurons.dynapse2 import FROZEN_MISMATCH_PARAMETERS, DynapSE2, evolve
from spikefleet.simulation import simulate, simulate_batch
from spikefleet.tasks import frozen_noise as fn
from spikefleet.tasks import get_task
from spikefleet.train.dynapse2 import DynapSE2TrainConfig, initial_network, train_dynapse2_runs


@pytest.fixture(scope="module")
def task():
    return get_task("frozen-noise")


@pytest.fixture(scope="module")
def net():
    return init_dynapse2(DynapSE2Config(n_in=60, n_hidden=2), jax.random.PRNGKey(3), in_scale=2.0)


# ---------------------------------------------------------------------------- frozen noise
def test_patterns_checksum_and_layout(task):
    batch = task.generate(5)
    assert batch.inputs.shape == (5, 500, 60) and batch.inputs.dtype == np.float32
    totals = batch.inputs.sum(axis=(1, 2))
    assert totals[:2].tolist() == [1505.0, 1591.0]  # spec §10.1 checksum (NumPy legacy seed 2022)
    assert batch.labels.tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_array_equal(batch.inputs[2], batch.inputs[0])
    assert np.all(batch.targets[:, :, 0] == (batch.labels[:, None] == 0))
    assert np.all(batch.targets.sum(axis=-1) == 1.0)
    # the global legacy generator gives the same numbers
    np.random.seed(2022)
    np.testing.assert_array_equal(np.random.poisson(0.05, (2, 500, 60)).astype(np.float32), batch.inputs[:2])
    other = fn.patterns(fn.FrozenNoiseConfig(sampler="jax"))
    assert other.shape == (2, 500, 60) and not np.array_equal(other, batch.inputs[:2])


def test_decision_margin_and_ratio_against_numpy():
    rng = np.random.default_rng(0)
    outputs = rng.poisson(0.1, (7, 50, 3)).astype(np.float32)
    outputs[0, :, :] = 0.0  # a three-way tie
    labels = rng.integers(0, 3, 7)
    counts = outputs.sum(axis=1)
    want = []
    for c in counts:
        top = np.flatnonzero(c == c.max())
        want.append(int(top[0]) if len(top) == 1 else -1)
    np.testing.assert_array_equal(fn.decide(outputs), want)
    np.testing.assert_array_equal(np.asarray(fn.decide_jax(jnp.asarray(outputs))), want)
    m = [c[l] - max(c[j] for j in range(3) if j != l) for c, l in zip(counts, labels)]
    np.testing.assert_allclose(fn.margins(outputs, labels), m)
    assert float(fn.margin_jax(jnp.asarray(outputs), jnp.asarray(labels))) == min(m)
    ratio = fn.firing_rate_ratio(outputs)
    for r, c in zip(ratio, counts):
        assert (r == np.inf) if c.min() == 0 else r == pytest.approx(c.max() / c.min())


def test_frozen_noise_config_errors():
    with pytest.raises(ValueError, match="n_samples"):
        fn.FrozenNoiseConfig(n_samples=1)
    with pytest.raises(ValueError, match="sampler"):
        fn.FrozenNoiseConfig(sampler="torch")


# ---------------------------------------------------------------------------------- network
def test_network_matches_neuron_evolve(net, task):
    x = task.generate(1).inputs[0][:200]
    result = simulate(net, x, record=("imem",))
    _, rec = evolve(net.neurons, x @ net.w_in, w_rec=net.w_rec)
    np.testing.assert_array_equal(np.asarray(result.outputs), np.asarray(rec["spikes"]))
    np.testing.assert_allclose(np.asarray(result.traces["imem"]), np.asarray(rec["imem"]), rtol=2e-5)  # float32 op order
    assert float(result.outputs.sum()) > 0


def test_network_without_recurrence_ignores_w_rec(net, task):
    x = task.generate(1).inputs[0][:200]
    flat = DynapSE2Network(w_in=net.w_in, w_rec=net.w_rec * 100, neurons=net.neurons,
                           config=DynapSE2Config(n_in=60, n_hidden=2, recurrent=False))
    _, rec = evolve(net.neurons, x @ net.w_in)
    np.testing.assert_array_equal(np.asarray(simulate(flat, x).outputs), np.asarray(rec["spikes"]))


def test_network_shape_errors(net):
    with pytest.raises(ValueError, match="w_rec"):
        DynapSE2Network(w_in=net.w_in, w_rec=jnp.zeros((3, 3)), neurons=net.neurons, config=net.config)
    with pytest.raises(ValueError, match="n_hidden"):
        DynapSE2Config(n_in=60, n_hidden=0)


def test_checkpoint_round_trip(net, tmp_path):
    path = checkpoint.save(tmp_path / "d.sfc", net, {"note": "x"})
    back = checkpoint.load(path, kind="dynapse2").model
    assert back.config == net.config
    for a, b in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------------------- E6: mismatch profiles
def test_e6_frozen_mismatch_statistics():
    """256 neurons, percent 0.10 (σ = 3.33 %): means kept, std/mean 0.033 ± 0.004, uncorrelated."""
    big = init_dynapse2(DynapSE2Config(n_in=64, n_hidden=256), jax.random.PRNGKey(2021))
    chip = apply_mismatch(big, get_profile("dynapse2-frozen", 0.10), jax.random.PRNGKey(2022))
    deviations = []
    for name in FROZEN_MISMATCH_PARAMETERS:
        nominal = np.asarray(getattr(big.neurons, name), np.float64)
        got = np.asarray(getattr(chip.neurons, name), np.float64)
        assert np.std(nominal) / abs(np.mean(nominal)) < 1e-6 or name in ("Idc", "If_nmda", "Iw_ahp")
        if np.all(nominal == 0):
            continue
        assert abs(np.mean(got) / np.mean(nominal) - 1) < 0.01, name
        assert abs(np.std(got) / np.mean(got) - 0.0333) < 0.004, name
        deviations.append(got / nominal - 1)
    corr = np.corrcoef(np.stack(deviations))
    assert np.max(np.abs(corr - np.eye(len(deviations)))) < 0.2
    np.testing.assert_array_equal(np.asarray(chip.w_rec), np.asarray(big.w_rec))
    np.testing.assert_array_equal(np.asarray(chip.w_in), np.asarray(big.w_in))
    assert float(chip.neurons.I_scale) == float(big.neurons.I_scale)


def test_dynamic_profile_perturbs_weights_only(net):
    chip = apply_mismatch(net, get_profile("dynapse2-dynamic", 0.3), jax.random.PRNGKey(0))
    rel_in = np.asarray(chip.w_in / net.w_in - 1)
    assert 0.05 < rel_in.std() < 0.15  # σ = 0.1
    for name in FROZEN_MISMATCH_PARAMETERS:
        np.testing.assert_array_equal(np.asarray(getattr(chip.neurons, name)), np.asarray(getattr(net.neurons, name)))


def test_fleet_evaluation_margin_matches_single_chip(net, task):
    batch = task.generate(2)
    keys = fleet_keys(0, 3)
    cond = Condition(mismatch=get_profile("dynapse2-frozen", 0.5))
    result = evaluate_fleet(net, task, batch, keys, cond, chunk=2)
    assert result.directions["margin"] is True
    for i in range(3):
        chip = realize(net, keys[i], cond)
        out = np.asarray(simulate_batch(chip, batch.inputs).outputs)
        assert result.metrics["margin"][i] == pytest.approx(np.min(fn.margins(out, batch.labels)))
        assert result.metrics["accuracy"][i] == pytest.approx(np.mean(fn.decide(out) == batch.labels))


# ------------------------------------------------------------------------------------ trainer
def test_first_epoch_is_an_adam_step_at_the_clean_weights(task):
    config = DynapSE2TrainConfig(epochs=1, chunk=1, learning_rate=1e-2)
    (model, info), = train_dynapse2_runs(task, config, [5], progress=False)
    start = initial_network(task, config, 5)
    batch = task.generate(2)

    def loss(w):
        m = DynapSE2Network(w_in=w[0], w_rec=w[1], neurons=start.neurons, config=start.config)
        return jnp.mean((simulate_batch(m, batch.inputs).outputs - batch.targets) ** 2)

    g = jax.grad(loss)((start.w_in, start.w_rec))
    for new, old, grad in ((model.w_in, start.w_in, g[0]), (model.w_rec, start.w_rec, g[1])):
        want = old - 1e-2 * grad / (jnp.abs(grad) + 1e-8)  # Adam's first step: m̂ = g, v̂ = g²
        np.testing.assert_allclose(np.asarray(new), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert info["loss_start"] == pytest.approx(float(loss((start.w_in, start.w_rec))), rel=1e-6)


def test_runs_trained_together_equal_runs_trained_alone(task):
    config = DynapSE2TrainConfig(epochs=4, chunk=4)
    together = train_dynapse2_runs(task, config, [0, 0, 1], [0.0, 0.1, 0.0], progress=False)
    alone = train_dynapse2_runs(task, config, [0], [0.1], progress=False)[0]
    np.testing.assert_allclose(np.asarray(together[1][0].w_in), np.asarray(alone[0].w_in), rtol=1e-5, atol=1e-7)
    # same seed, different noise: same start, different end
    a, b = together[0][0], together[1][0]
    assert not np.allclose(np.asarray(a.w_in), np.asarray(b.w_in))
    assert together[0][1]["loss_history"] != together[2][1]["loss_history"]


def test_trainer_config_errors():
    with pytest.raises(ValueError, match="weight_noise"):
        DynapSE2TrainConfig(weight_noise=-0.1)
    with pytest.raises(ValueError, match="epochs"):
        DynapSE2TrainConfig(epochs=0)


# ---------------------------------------------------------------------------------------- CLI
def test_cli_train_and_evaluate_frozen_noise(tmp_path, capsys):
    path = tmp_path / "fn.sfc"
    assert main(["train", "--task", "frozen-noise", "--seed", "0", "--steps", "20", "--robust", "noise",
                 "--out", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "weight noise 0.1" in out and "spike counts" in out
    info = checkpoint.load(path, kind="dynapse2").info
    assert info["weight_noise"] == pytest.approx(0.1) and info["epochs"] == 20
    js = tmp_path / "fleet.json"
    assert main(["evaluate", str(path), "--task", "frozen-noise", "--seed", "0", "--chips", "6", "--profile",
                 "dynapse2-frozen", "--mismatch", "0,0.5", "--json", str(js), "--yield-threshold", "1"]) == 0
    table = capsys.readouterr().out
    assert "p10 margin" in table and "mismatch dynapse2-frozen 0.5" in table
    data = json.loads(js.read_text())
    assert len(data["records"][1]["per_chip"]["margin"]) == 6


@pytest.mark.parametrize("args,message", [
    (["--robust", "adversarial"], "supports --robust none or noise"),
    (["--robust-profile", "uniform"], "dynapse2-dynamic"),
    (["--method", "ads"], "--method bptt"),
    (["--model", "lif"], "--model lif: the LIF recipe (--method bptt --model lif) is defined for --task wakephrase and "
                         "xor only; --task frozen-noise trains DYNAP-SE2 designs: leave --model out (--method bptt)"),
])
def test_cli_frozen_noise_errors(tmp_path, capsys, args, message):
    code = main(["train", "--task", "frozen-noise", "--seed", "0", "--steps", "2", "--out", str(tmp_path / "x.sfc"),
                 "--quiet", *args])
    assert code == 2
    assert message in capsys.readouterr().err
