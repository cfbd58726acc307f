"""Every command-line option has an effect: one test per option, each asserting something that would be
absent if the option were ignored (``spikefleet.cli.main.main`` in-process, tiny designs and fleets).

Spies on :func:`spikefleet.fleet.sweep.evaluate_fleet` (the per-condition evaluation the sweeps call)
show what an option handed to the evaluation; the effects on the chips are checked against NumPy.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet import checkpoint
from spikefleet._version import __version__
from spikefleet.cli.main import main
from spikefleet.fleet import sweep as sweep_module
from spikefleet.fleet.chip import Condition, fleet_keys, realize
from spikefleet.fleet.evaluate import fleet_outputs
from spikefleet.models.ads import ADSConfig, build_ads
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.neurons.dynapse2 import DynapSE2
from spikefleet import seeds
from spikefleet.seeds import seed_stream
from spikefleet.tasks import get_task

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    """Checkpoints of a spiking network, a rate network (outputs below the decision level 0.5 at gain 1)
    and a Network ADS design."""
    d = tmp_path_factory.mktemp("designs")
    spiking = init_spiking(SpikingConfig(n_in=1, n_hidden=8, n_out=1), jax.random.PRNGKey(2), in_scale=20.0)
    rate = init_rate(RateConfig(n_in=1, n_hidden=8, n_out=1), jax.random.PRNGKey(0))
    teacher = init_rate(RateConfig(n_in=1, n_hidden=6, n_out=1), jax.random.PRNGKey(0))
    ads = build_ads(teacher, ADSConfig(n=16), jax.random.PRNGKey(1))
    info = {"task": "xor", "seed": 0}
    return {name: (checkpoint.save(d / f"{name}.sfc", model, info), model)
            for name, model in (("spiking", spiking), ("rate", rate), ("ads", ads))}


@pytest.fixture
def spy(monkeypatch):
    """Every call of evaluate_fleet made by the sweeps: (design, condition, keyword arguments)."""
    calls = []
    real = sweep_module.evaluate_fleet

    def evaluate_fleet(design, task, batch, keys, cond, **kw):
        calls.append((design, cond, kw))
        return real(design, task, batch, keys, cond, **kw)

    monkeypatch.setattr(sweep_module, "evaluate_fleet", evaluate_fleet)
    return calls


def evaluate(capsys, tmp_path, ckpt, *options, name="report"):
    target = tmp_path / f"{name}.json"
    code, out, err = run(capsys, "evaluate", ckpt, "--task", "xor", "--seed", 0, "--trials", 8, "--chips", 3,
                         "--json", target, *options)
    assert code == 0, err
    return json.loads(target.read_text())


def per_chip(report) -> list:
    return [(r["sweep"], r["level"], r["per_chip"]) for r in report["records"]]


# ------------------------------------------------------------------------------------ spikefleet
def test_version_prints_the_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"spikefleet {__version__}\n"


# -------------------------------------------------------------------------------------- evaluate
def test_evaluate_chunk_reaches_the_evaluation_and_changes_no_number(capsys, tmp_path, designs, spy):
    ckpt = designs["spiking"][0]
    one = evaluate(capsys, tmp_path, ckpt, "--mismatch", "0.1", "--chunk", 1, name="one")
    assert [kw["chunk"] for _, _, kw in spy] == [1]
    sixteen = evaluate(capsys, tmp_path, ckpt, "--mismatch", "0.1", "--chunk", 16, name="sixteen")
    assert [kw["chunk"] for _, _, kw in spy] == [1, 16]
    assert per_chip(one) == per_chip(sixteen)


def test_evaluate_dead_select_first_silences_neurons_0_to_k(capsys, tmp_path, designs, spy):
    ckpt, net = designs["spiking"]
    evaluate(capsys, tmp_path, ckpt, "--dead", "0.25", "--dead-select", "first", name="first")
    evaluate(capsys, tmp_path, ckpt, "--dead", "0.25", name="random")
    (_, first, _), (_, random, _) = spy
    assert (first.dead, first.dead_select, random.dead_select) == (0.25, "first", "random")
    keys = fleet_keys(0, 3)
    for key in keys:  # ⌊0.25 · 8⌋ = 2 dead neurons: 0 and 1 on every chip
        np.testing.assert_array_equal(np.asarray(realize(net, key, first).neurons.silenced), [1, 1] + [0] * 6)
    drawn = {tuple(np.flatnonzero(np.asarray(realize(net, key, random).neurons.silenced))) for key in keys}
    assert all(len(d) == 2 for d in drawn) and drawn != {(0, 1)}  # random: other neurons on some chip


def test_evaluate_quant_matrices_quantises_only_the_named_matrices(capsys, tmp_path, designs, spy):
    ckpt, net = designs["spiking"]
    evaluate(capsys, tmp_path, ckpt, "--quant-bits", "2", "--quant-matrices", "w_in", name="w_in")
    evaluate(capsys, tmp_path, ckpt, "--quant-bits", "2", name="default")
    (_, only_w_in, _), (_, default, _) = spy
    assert only_w_in.quant_matrices == ("w_in",) and "w_rec" in default.quant_matrices
    chip = realize(net, fleet_keys(0, 1)[0], only_w_in)
    w = np.asarray(net.w_in, np.float64)
    delta = (w.max() - w.min()) / 3  # by hand: Δ = (max − min) / (2² − 1), Q = Δ · round(w / Δ)
    np.testing.assert_allclose(np.asarray(chip.w_in), delta * np.round(w / delta), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(chip.w_rec), np.asarray(net.w_rec))
    np.testing.assert_array_equal(np.asarray(chip.w_out), np.asarray(net.w_out))
    assert not np.array_equal(np.asarray(realize(net, fleet_keys(0, 1)[0], default).w_rec), np.asarray(net.w_rec))


def test_evaluate_gain_refit_fits_the_gain_on_validation_chips(capsys, tmp_path, designs, spy):
    ckpt, net = designs["rate"]
    plain = evaluate(capsys, tmp_path, ckpt, "--quant-bits", "0,4", name="plain")
    assert [kw["gain"] for _, _, kw in spy] == [1.0, 1.0]
    refit = evaluate(capsys, tmp_path, ckpt, "--quant-bits", "0,4", "--gain-refit", name="refit")
    assert refit["gain_refit"] is True and plain["gain_refit"] is False
    task = get_task("xor")
    val = task.generate(8, seed_stream(0, seeds.GAIN_VAL))  # min(trials, 100) validation trials
    val_keys = jax.random.split(jax.random.PRNGKey(seed_stream(0, seeds.GAIN_CHIPS)), 5)
    run_key = jax.random.PRNGKey(seed_stream(0, seeds.RUN_NOISE))
    grid = np.linspace(0.5, 5.5, 101)  # the Network ADS protocol's gains; ties to the one nearest 1
    for (_, cond, kw), record, plain_record in zip(spy[2:], refit["records"], plain["records"]):
        key = jax.random.fold_in(run_key, int(record["level"] * 1e6))
        y = np.asarray(fleet_outputs(net, val, val_keys, cond, run_key=key))
        y = y.reshape(-1, *y.shape[2:])
        labels = np.tile(np.asarray(val.labels), len(val_keys))
        scores = np.array([task.accuracy(g * y, labels) for g in grid])
        best = grid[scores == scores.max()]
        want = best[np.argmin(np.abs(best - 1.0))]
        assert record["gain"] == pytest.approx(want) and kw["gain"] == pytest.approx(want)
        assert want != 1.0  # the small output needs a gain: the test MSE changes with it
        assert record["per_chip"]["mse"] != plain_record["per_chip"]["mse"]


def test_evaluate_ads_compensation_scales_the_recurrent_weights_by_the_table(capsys, tmp_path, designs, spy):
    ckpt, net = designs["ads"]
    report = evaluate(capsys, tmp_path, ckpt, "--mismatch", "0.1,0.15", "--ads-compensation", name="comp")
    assert report["ads_compensation"] is True
    scales = [cond.recurrent_scale for _, cond, _ in spy]
    assert scales == [0.8, 1.0]  # Büchel et al. 2021: Ω x 0.8 at mismatch 0.1; no entry for 0.15
    assert report["records"][0]["condition"].endswith("(Ω x0.8)")
    evaluate(capsys, tmp_path, ckpt, "--mismatch", "0.1", name="plain")
    assert spy[-1][1].recurrent_scale == 1.0
    key = fleet_keys(0, 1)[0]
    scaled, unscaled = realize(net, key, spy[0][1]), realize(net, key, spy[-1][1])
    for name in ("w_rec", "w_fast"):
        np.testing.assert_allclose(np.asarray(getattr(scaled.core, name)),
                                   0.8 * np.asarray(getattr(unscaled.core, name)), rtol=1e-6, atol=1e-12)


def test_evaluate_plot_writes_a_png(capsys, tmp_path, designs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "evaluate", designs["spiking"][0], "--task", "xor", "--seed", 0, "--trials", 8,
                       "--chips", 2, "--mismatch", "0.1")
    assert code == 0, err
    assert not list(tmp_path.rglob("*.png"))  # neither --plot nor --json: no plot
    code, out, err = run(capsys, "evaluate", designs["spiking"][0], "--task", "xor", "--seed", 0, "--trials", 8,
                         "--chips", 2, "--mismatch", "0.1", "--plot", "robust.png")
    assert code == 0, err
    assert (tmp_path / "robust.png").read_bytes()[:8] == PNG and "wrote robust.png" in out


# ----------------------------------------------------------------------------------------- train
def test_train_robust_level_and_chips_reach_the_training(capsys, tmp_path):
    target = tmp_path / "robust.sfc"
    code, out, err = run(capsys, "train", "--task", "xor", "--method", "bptt", "--seed", 0, "--out", target,
                         "--steps", 1, "--hidden", 4, "--test-trials", 8, "--robust", "noise", "--robust-level",
                         "0.3", "--robust-chips", 2, "--quiet")
    assert code == 0, err
    robustness = checkpoint.load(target).info["robustness"]
    assert (robustness["kind"], robustness["profile"], robustness["chips"]) == ("noise", "uniform", 2)
    assert robustness["sigmas"] and set(robustness["sigmas"].values()) == {0.3}  # uniform: sigma = level


def test_train_method_force_trains_a_force_design(capsys, tmp_path, designs):
    target = tmp_path / "force.sfc"
    teacher = checkpoint.save(tmp_path / "teacher.sfc", init_rate(RateConfig(1, 6, 1), jax.random.PRNGKey(0)),
                              {"task": "xor", "method": "teacher", "seed": 0})
    code, out, err = run(capsys, "train", "--task", "xor", "--method", "force", "--seed", 0, "--out", target,
                         "--teacher", teacher, "--n", 16, "--steps", 2, "--epochs", 1, "--test-trials", 8, "--quiet")
    assert code == 0, err
    assert out.startswith("xor/force seed 0: ") and f"saved {target}" in out
    ckpt = checkpoint.load(target)
    assert ckpt.meta["kind"] == "force" and ckpt.info["method"] == "force" and ckpt.info["test"]["trials"] == 8
    assert ckpt.model.core.neurons.n == 16


# ---------------------------------------------------------------------------------------- deploy
@pytest.fixture(scope="module")
def dynapse2_ckpt(tmp_path_factory):
    """6 neurons in two parameter groups (membrane time-constant currents 5 pA and 20 pA)."""
    rng = np.random.default_rng(0)
    w_in = np.where(rng.random((4, 6)) < 0.5, rng.normal(0, 3, (4, 6)), 0.0)
    w_rec = np.where(rng.random((6, 6)) < 0.3, rng.normal(0, 1, (6, 6)), 0.0)
    neurons = DynapSE2.create(6, Itau_mem=jnp.array([5e-12] * 3 + [20e-12] * 3))
    net = DynapSE2Network(w_in=jnp.asarray(w_in, jnp.float32), w_rec=jnp.asarray(w_rec, jnp.float32),
                          neurons=neurons, config=DynapSE2Config(4, 6))
    return checkpoint.save(tmp_path_factory.mktemp("d2") / "net.sfc", net, {"task": "frozen-noise", "seed": 0})


def deploy(capsys, tmp_path, ckpt, name, *options) -> dict:
    out, summary = tmp_path / f"{name}.json", tmp_path / f"{name}-summary.json"
    code, _, err = run(capsys, "deploy", ckpt, "--target", "dynapse2", "--out", out, "--json", summary, *options)
    assert code == 0, err
    return json.loads(summary.read_text())


def test_deploy_method_autoencoder_uses_the_reference_quantiser(capsys, tmp_path, dynapse2_ckpt):
    alternating = deploy(capsys, tmp_path, dynapse2_ckpt, "alt", "--share", "average")
    autoencoder = deploy(capsys, tmp_path, dynapse2_ckpt, "ae", "--share", "average", "--method", "autoencoder")
    assert alternating["quantization"]["method"] == "alternating"
    assert autoencoder["quantization"]["method"] == "autoencoder"
    assert (tmp_path / "alt.json").read_bytes() != (tmp_path / "ae.json").read_bytes()


def test_deploy_share_average_puts_two_parameter_groups_on_one_core(capsys, tmp_path, dynapse2_ckpt):
    strict = deploy(capsys, tmp_path, dynapse2_ckpt, "strict")
    average = deploy(capsys, tmp_path, dynapse2_ckpt, "average", "--share", "average")
    assert len(strict["cores"]["used"]) == 2  # different parameters never share a core
    assert len(average["cores"]["used"]) == 1  # averaged: the 6 neurons fit one core
    (core,) = average["biases"].values()
    (itau,) = [r["requested"] for r in core["rows"] if r["sim"] == "Itau_mem"]
    assert itau == pytest.approx(12.5e-12, rel=1e-6)  # the mean of 5 and 20 pA
    for core in strict["biases"].values():
        (itau,) = [r["requested"] for r in core["rows"] if r["sim"] == "Itau_mem"]
        assert itau == pytest.approx(5e-12, rel=1e-6) or itau == pytest.approx(20e-12, rel=1e-6)


# ------------------------------------------------------------------------------------------- run
TINY = """\
name = "tiny-options"
seeds = [0]

[task]
name = "xor"
duration = 0.1

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


def stored_metrics(out: Path) -> dict:
    with sqlite3.connect(out / "results.sqlite") as conn:
        return dict(conn.execute("SELECT unit_id, metrics_json FROM units WHERE kind = 'eval'").fetchall())


def test_run_workers_no_report_and_the_default_output_directory(capsys, tmp_path, monkeypatch):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "run", spec, "--workers", 1, "--no-report", "--quiet")
    assert code == 0, err
    default = tmp_path / "runs" / "tiny-options"  # no --out, no `output` in the file: runs/<name> of the cwd
    assert (default / "results.sqlite").is_file() and not (default / "report.html").exists()
    code, out2, err = run(capsys, "run", spec, "--workers", 2, "--out", "two", "--quiet")
    assert code == 0, err
    assert (tmp_path / "two" / "report.html").read_text().startswith("<!DOCTYPE html>")
    with sqlite3.connect(tmp_path / "two" / "results.sqlite") as conn:
        assert conn.execute("SELECT backend, workers FROM runs").fetchall() == [("local", 2)]
    with sqlite3.connect(default / "results.sqlite") as conn:
        assert conn.execute("SELECT backend, workers FROM runs").fetchall() == [("local", 1)]
    assert stored_metrics(default) == stored_metrics(tmp_path / "two") and len(stored_metrics(default)) == 2
    assert out == out2 and re.search(r"median acc", out)  # the same summary table
