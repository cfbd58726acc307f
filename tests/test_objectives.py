"""Robust training objectives (spikefleet.train.objectives).

References: the noise-injection loss is rebuilt from ``realize`` and the recipe loss applied to
each chip's slice of the batch; the adversarial loss is checked against its definition
(``nominal + beta * robust``) and against the output deviation at random relative perturbations
of the same radius, computed here with ``perturb_relative``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.errors import ConfigError
from spikefleet.fleet.chip import Condition, realize
from spikefleet.fleet.mismatch import MismatchProfile, get_profile, mismatch_targets, perturb_relative
from spikefleet.simulation import simulate_batch
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.train.objectives import ROBUST_KINDS, Robustness, robust_loss
from spikefleet.train.gradient import _bptt_loss, _bptt_model

TASK = get_task("xor", config=XorConfig(duration=0.2))  # 200 steps
_BATCH = TASK.generate(4, 11)
X, Y = jnp.asarray(_BATCH.inputs), jnp.asarray(_BATCH.targets)
B = X.shape[0]
MODEL = _bptt_model(TASK, jax.random.PRNGKey(0), 8)
PROFILE = get_profile("uniform", 0.2)
KEY = jax.random.PRNGKey(5)

nominal_loss = eqx.filter_jit(_bptt_loss)
realize_j = eqx.filter_jit(realize)
outputs_j = eqx.filter_jit(lambda m, x: simulate_batch(m, x).outputs)


def _noise_loss(profile=PROFILE, chips=2):
    return robust_loss(_bptt_loss, Robustness("noise", profile=profile, chips=chips))


def _reference_noise_loss(model, profile, chips, key):
    """(1/k) sum_c L(realize(model, key_c), slice_c), slice_c = trials [c B/k, (c+1) B/k).

    The chip keys are ``split(key, k)`` (objectives.py, ``_noise_injection``).
    """
    keys = jax.random.split(key, chips)
    per = B // chips
    values, mses, rates = [], [], []
    for c in range(chips):
        chip = realize_j(model, keys[c], Condition(mismatch=profile))
        value, aux = nominal_loss(chip, X[c * per:(c + 1) * per], Y[c * per:(c + 1) * per])
        values.append(float(value))
        mses.append(float(aux["mse"]))
        rates.append(float(aux["rate_hz"]))
    return np.mean(values), {"mse": np.mean(mses), "rate_hz": np.mean(rates)}, values


@pytest.fixture(scope="module")
def noise_loss_value():
    return eqx.filter_jit(_noise_loss())(MODEL, X, Y, KEY)


def test_noise_injection_is_mean_over_chips_of_slice_losses(noise_loss_value):
    value, aux = noise_loss_value
    ref, ref_aux, per_chip = _reference_noise_loss(MODEL, PROFILE, 2, KEY)
    assert float(value) == pytest.approx(ref, rel=1e-5)
    assert float(aux["mse"]) == pytest.approx(ref_aux["mse"], rel=1e-5)
    assert float(aux["rate_hz"]) == pytest.approx(ref_aux["rate_hz"], rel=1e-5)
    # the chips matter: the realised chips' losses differ from each other and from the nominal one
    assert per_chip[0] != pytest.approx(per_chip[1], rel=1e-4)
    nominal_slices = [float(nominal_loss(MODEL, X[:2], Y[:2])[0]), float(nominal_loss(MODEL, X[2:], Y[2:])[0])]
    assert ref != pytest.approx(np.mean(nominal_slices), rel=1e-4)
    # another key draws other chips
    other, _, _ = _reference_noise_loss(MODEL, PROFILE, 2, jax.random.PRNGKey(6))
    assert other != pytest.approx(ref, rel=1e-4)


def test_noise_injection_gradient_reaches_nominal_parameters():
    loss = _noise_loss()
    grad = eqx.filter_jit(eqx.filter_grad(lambda m: loss(m, X, Y, KEY)[0]))(MODEL)
    grad_nominal = eqx.filter_jit(eqx.filter_grad(lambda m: _bptt_loss(m, X, Y)[0]))(MODEL)
    for get in (lambda m: m.w_in, lambda m: m.w_rec, lambda m: m.w_out, lambda m: m.neurons.tau_mem,
                lambda m: m.neurons.threshold):
        g, g0 = np.asarray(get(grad), np.float64), np.asarray(get(grad_nominal), np.float64)
        assert np.all(np.isfinite(g))
        assert np.any(g != 0)
        assert not np.allclose(g, g0, rtol=1e-3, atol=0)


def test_zero_sigma_profile_is_the_nominal_loss():
    zero = MismatchProfile("zero", (("tau_mem", 0.0), ("w_rec", 0.0), ("threshold", 0.0)))
    full, full_aux = nominal_loss(MODEL, X, Y)
    # one chip sees the whole batch: exactly the nominal loss
    v1, aux1 = eqx.filter_jit(_noise_loss(zero, chips=1))(MODEL, X, Y, KEY)
    assert float(v1) == pytest.approx(float(full), rel=1e-6)
    assert float(aux1["mse"]) == pytest.approx(float(full_aux["mse"]), rel=1e-6)
    # two chips: the mean of the nominal loss over the two halves; the MSE part is the full-batch MSE
    v2, aux2 = eqx.filter_jit(_noise_loss(zero, chips=2))(MODEL, X, Y, KEY)
    halves = [nominal_loss(MODEL, X[:2], Y[:2]), nominal_loss(MODEL, X[2:], Y[2:])]
    assert float(v2) == pytest.approx(np.mean([float(h[0]) for h in halves]), rel=1e-6)
    assert float(aux2["mse"]) == pytest.approx(float(full_aux["mse"]), rel=1e-6)


def test_noise_injection_argument_errors():
    loss = _noise_loss(chips=3)
    with pytest.raises(ConfigError, match="robust_chips") as err:
        loss(MODEL, X, Y, KEY)
    assert "4" in str(err.value) and "3" in str(err.value)
    with pytest.raises(ConfigError, match="key"):
        _noise_loss()(MODEL, X, Y, None)


# --------------------------------------------------------------------------------- adversarial


EPS = 0.2


@pytest.fixture(scope="module")
def adversarial_value():
    loss = robust_loss(_bptt_loss, Robustness("adversarial", profile=PROFILE, epsilon=EPS, beta=0.5))
    return eqx.filter_jit(loss)(MODEL, X, Y, KEY)


def test_adversarial_loss_is_nominal_plus_beta_robust(adversarial_value):
    value, aux = adversarial_value
    nominal, nominal_aux = nominal_loss(MODEL, X, Y)
    robust = float(aux["robust"])
    assert robust > 0
    assert float(value) >= float(nominal)
    assert float(value) == pytest.approx(float(nominal) + 0.5 * robust, rel=1e-5)
    assert float(aux["mse"]) == pytest.approx(float(nominal_aux["mse"]), rel=1e-6)


def test_adversarial_attack_beats_random_perturbations(adversarial_value):
    robust = float(adversarial_value[1]["robust"])
    reference = outputs_j(MODEL, X)
    targets = mismatch_targets(MODEL, PROFILE)
    assert sorted(targets) == sorted(["threshold", "tau_mem", "tau_syn", "w_in", "w_out", "w_rec"])
    deviations = []
    for seed in range(4):
        keys = jax.random.split(jax.random.PRNGKey(100 + seed), len(targets))
        deltas = {name: jax.random.uniform(k, v.shape, v.dtype, -EPS, EPS)
                  for k, (name, v) in zip(keys, targets.items())}
        attacked = outputs_j(perturb_relative(MODEL, deltas), X)
        deviations.append(float(jnp.mean((attacked - reference) ** 2)))
    assert robust >= np.mean(deviations)
    assert robust >= max(deviations)


def test_adversarial_zero_radius_has_zero_robust_term():
    loss = robust_loss(_bptt_loss, Robustness("adversarial", profile=PROFILE, epsilon=0.0, attack_steps=1))
    value, aux = eqx.filter_jit(loss)(MODEL, X, Y, KEY)
    assert abs(float(aux["robust"])) <= 1e-10
    assert float(value) == pytest.approx(float(nominal_loss(MODEL, X, Y)[0]), rel=1e-6)


def test_adversarial_needs_a_key():
    loss = robust_loss(_bptt_loss, Robustness("adversarial", profile=PROFILE))
    with pytest.raises(ConfigError, match="key"):
        loss(MODEL, X, Y, None)


# ---------------------------------------------------------------------------------- Robustness


@pytest.mark.parametrize("kwargs,needle", [
    ({"kind": "dropout"}, "robust:"),
    ({"kind": "noise"}, "needs a mismatch profile"),
    ({"kind": "adversarial"}, "needs a mismatch profile"),
    ({"kind": "noise", "profile": PROFILE, "chips": 0}, "robust_chips"),
    ({"kind": "noise", "profile": PROFILE, "chips": 2.0}, "robust_chips"),
    ({"kind": "adversarial", "profile": PROFILE, "epsilon": -0.1}, "epsilon"),
    ({"kind": "adversarial", "profile": PROFILE, "attack_steps": 0}, "attack_steps"),
])
def test_robustness_validation(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        Robustness(**kwargs)
    assert needle in str(err.value)


def test_robustness_none_and_to_dict():
    assert ROBUST_KINDS == ("none", "noise", "adversarial")
    assert robust_loss(_bptt_loss, Robustness()) is _bptt_loss
    d = Robustness("noise", profile=PROFILE, chips=2).to_dict()
    assert d["kind"] == "noise" and d["chips"] == 2 and d["profile"] == "uniform"
    assert d["sigmas"] == PROFILE.as_dict()
    assert Robustness().to_dict()["profile"] is None
