"""The XOR robustness study's pieces: FORCE's on-chip feedback encoders in mismatch and
quantisation, teacher-agreement scoring, named sweeps, and the study runner on tiny designs.

References: the documented draws (``fold_in(key, crc32(name))``, ``w (1 + σ ξ)``), the uniform
quantiser applied by hand, and decisions counted with NumPy.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.studies import xor_robustness as study
from spikefleet.fleet.chip import Condition, fleet_keys, realize
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import get_profile
from spikefleet.fleet.quantize import quantize_matrices
from spikefleet.fleet.sweep import Sweep, run_sweeps
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.simulation import simulate_batch
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.train import force
from spikefleet.models.ads import ADSConfig, build_ads

TASK = get_task("xor", config=XorConfig(duration=0.2))
BATCH = TASK.generate(6, 1)


@pytest.fixture(scope="module")
def teacher():
    return init_rate(RateConfig(n_in=1, n_hidden=6, n_out=1), jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def force_net(teacher):
    return force.build_force(teacher, force.FORCEConfig(n=16), jax.random.PRNGKey(1))


def test_force_feedback_encoders_follow_the_weight_rule(force_net):
    key = jax.random.PRNGKey(3)
    chip = realize(force_net, key, Condition(mismatch=get_profile("uniform", 0.1)))
    xi = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, 0), zlib.crc32(b"w_feedback") & 0x7FFFFFFF),
                           force_net.e.shape)
    np.testing.assert_allclose(np.asarray(chip.e), np.asarray(force_net.e * (1 + 0.1 * xi)), rtol=1e-6)
    assert not np.allclose(np.asarray(chip.core.w_in), np.asarray(force_net.core.w_in))  # core perturbed too
    np.testing.assert_array_equal(np.asarray(chip.f_hat), np.asarray(force_net.f_hat))  # teacher parts: off-chip


def test_force_feedback_encoders_are_quantised_only_when_named(force_net):
    q = quantize_matrices(force_net, 3, ("w_in", "w_rec", "w_out", "w_feedback"))
    e = np.asarray(force_net.e, np.float64)  # by hand: Δ = (max − min) / (2³ − 1), Q = Δ · round(e / Δ)
    delta = (e.max() - e.min()) / 7
    np.testing.assert_allclose(np.asarray(q.e, np.float64), delta * np.round(e / delta), rtol=1e-6, atol=1e-6 * delta)
    assert len(np.unique(np.asarray(q.e))) <= 9
    kept = quantize_matrices(force_net, 3, ("w_in", "w_rec", "w_out"))
    np.testing.assert_array_equal(np.asarray(kept.e), np.asarray(force_net.e))
    # a plain network has no feedback encoders: the name is skipped, other names still checked
    plain = init_spiking(SpikingConfig(n_in=1, n_hidden=4, n_out=1), jax.random.PRNGKey(0))
    quantize_matrices(plain, 4, ("w_in", "w_feedback"))
    with pytest.raises(ValueError, match="matrices"):
        quantize_matrices(plain, 4, ("w_bogus",))


def test_agreement_counts_decisions_equal_to_the_reference():
    net = init_spiking(SpikingConfig(n_in=1, n_hidden=8, n_out=1), jax.random.PRNGKey(2), in_scale=20.0)
    keys = fleet_keys(0, 3)
    reference = np.array([1, -1, 1, 1, -1, -1])
    cond = Condition(mismatch=get_profile("uniform", 0.2))
    got = evaluate_fleet(net, TASK, BATCH, keys, cond, reference_labels=reference)
    for i in range(3):
        out = np.asarray(simulate_batch(realize(net, keys[i], cond), jnp.asarray(BATCH.inputs)).outputs)
        decisions = TASK.decide(out)
        assert got.metrics["agreement"][i] == pytest.approx(np.mean(decisions == reference))
        assert got.metrics["accuracy"][i] == pytest.approx(np.mean(decisions == BATCH.labels))
    with pytest.raises(ValueError, match="reference_labels"):
        evaluate_fleet(net, TASK, BATCH, keys, cond, reference_labels=reference[:2])


def test_named_sweeps_keep_records_apart():
    net = init_spiking(SpikingConfig(n_in=1, n_hidden=8, n_out=1), jax.random.PRNGKey(2), in_scale=20.0)
    sweeps = [Sweep("quant", (4,)), Sweep("quant", (4,), name="quant+fast", quant_matrices=("w_in",))]
    records = run_sweeps({"n": net}, TASK, BATCH, fleet_keys(0, 2), sweeps)
    assert [r.sweep for r in records] == ["quant", "quant+fast"]


def test_study_runs_and_tabulates_on_tiny_designs(teacher):
    ads = build_ads(teacher, ADSConfig(n=12), jax.random.PRNGKey(4))
    models = {"teacher": teacher, "ads": ads,
              "bptt": init_spiking(SpikingConfig(n_in=1, n_hidden=8, n_out=1), jax.random.PRNGKey(2), in_scale=20.0)}
    sweeps = {"mismatch": (0.0, 0.1), "quant": (0, 4), "noise": (0.05,), "dead": (0.4,)}
    records = study.run(models, chips=2, trials=4, sweeps=sweeps)
    names = {(r.design, r.sweep, r.level) for r in records}
    assert ("ads", "quant+fast", 4.0) in names and ("bptt", "quant+fast", 4.0) not in names
    assert len(records) == 2 * 6 + 1
    table = study.format_tables(records, chips=2, trials=4, gain_refit=False, ads_compensation=False)
    assert "accuracy vs the true label" in table and "agreement with the teacher" in table
    assert "| quant+fast | 4 |" in table and "output gain re-fit: no" in table
