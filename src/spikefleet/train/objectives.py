r"""Robust training objectives: wrap a loss so the design learns to work on every chip.

All wrappers take and return losses of the form ``loss(model, inputs, targets, key) ->
(scalar, aux)`` (see :func:`spikefleet.train.loop.fit`); gradients always reach the
*nominal* parameters, because the chip realisation is differentiable in them.

* ``none`` — the nominal loss ``L(θ)``.
* ``noise`` (parameter-noise injection) — ``(1/k) Σ_c L_c(realize(θ, key_c))`` over ``k``
  chips sampled from the mismatch profile at every step. The batch is split evenly among the
  ``k`` chips (each chip sees ``B/k`` trials), so a step costs the same as a nominal one.
* ``adversarial`` (after Büchel et al., ICLR 2022) — ``L(θ) + β · MSE(y(θ*), y(θ))`` where
  ``θ* = θ ⊙ (1 + δ)`` and ``δ`` is found by projected gradient ascent on the output deviation
  within the relative ball ``|δ_i| ≤ ε`` (``attack_steps`` steps of size ``2ε/attack_steps``
  in the sign of the gradient, from a uniform random start). ``δ`` is held fixed
  (``stop_gradient``) when differentiating with respect to ``θ``. The attacked parameters
  are those of the mismatch profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, expect
from spikefleet.fleet.chip import Condition, realize
from spikefleet.fleet.mismatch import MismatchProfile, mismatch_targets, perturb_relative
from spikefleet.simulation import simulate_batch

__all__ = ["Robustness", "robust_loss", "ROBUST_KINDS"]

#: robust objectives (``--robust``; module docstring)
ROBUST_KINDS = ("none", "noise", "adversarial")


@dataclass(frozen=True)
class Robustness:
    """How a design is made robust during gradient training."""

    kind: str = "none"
    profile: Optional[MismatchProfile] = None
    chips: int = 4  # noise: chips sampled per step
    epsilon: float = 0.2  # adversarial: relative ball radius
    attack_steps: int = 3
    beta: float = 1.0

    def __post_init__(self):
        expect(self.kind in ROBUST_KINDS, "robust", f"one of {ROBUST_KINDS}", self.kind)
        if self.kind != "none" and self.profile is None:
            raise ConfigError(f"robust={self.kind!r} needs a mismatch profile")
        expect(isinstance(self.chips, int) and self.chips >= 1, "robust_chips", "a positive integer", self.chips)
        expect(self.epsilon >= 0, "epsilon", "a non-negative relative radius", self.epsilon)
        expect(isinstance(self.attack_steps, int) and self.attack_steps >= 1, "attack_steps",
               "a positive integer", self.attack_steps)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "profile": None if self.profile is None else self.profile.name,
                "sigmas": None if self.profile is None else self.profile.as_dict(), "chips": self.chips,
                "epsilon": self.epsilon, "attack_steps": self.attack_steps, "beta": self.beta}


def _noise_injection(loss_fn: Callable, robustness: Robustness) -> Callable:
    condition = Condition(mismatch=robustness.profile)
    k = robustness.chips

    def loss(model, inputs, targets, key):
        if key is None:
            raise ConfigError("robust='noise' needs a PRNG key per step (fit(..., key=...))")
        b = inputs.shape[0]
        if b % k:
            raise ConfigError(f"robust_chips: the batch size {b} must be divisible by the number of chips {k}")
        xs = inputs.reshape(k, b // k, *inputs.shape[1:])
        ys = targets.reshape(k, b // k, *targets.shape[1:])
        keys = jax.random.split(key, k)

        def one(chip_key, x, y):
            return loss_fn(realize(model, chip_key, condition), x, y, None)

        values, aux = jax.vmap(one)(keys, xs, ys)
        return values.mean(), jax.tree_util.tree_map(jnp.mean, aux)

    return loss


def _adversarial(loss_fn: Callable, robustness: Robustness) -> Callable:
    eps, steps, beta = robustness.epsilon, robustness.attack_steps, robustness.beta
    profile = robustness.profile

    def deviation(model, deltas, inputs, reference):
        attacked = perturb_relative(model, deltas)
        return jnp.mean((simulate_batch(attacked, inputs).outputs - reference) ** 2)

    def loss(model, inputs, targets, key):
        if key is None:
            raise ConfigError("robust='adversarial' needs a PRNG key per step (fit(..., key=...))")
        nominal, aux = loss_fn(model, inputs, targets, None)
        outputs = simulate_batch(model, inputs).outputs
        reference = jax.lax.stop_gradient(outputs)
        frozen = jax.lax.stop_gradient(model)
        targets_ = mismatch_targets(frozen, profile)
        keys = jax.random.split(key, len(targets_))
        deltas = {name: jax.random.uniform(k, v.shape, v.dtype, -eps, eps)
                  for k, (name, v) in zip(keys, targets_.items())}
        for _ in range(steps):  # unrolled: attack_steps is small and static
            grads = jax.grad(lambda d: deviation(frozen, d, inputs, reference))(deltas)
            deltas = {n: jnp.clip(d + (2 * eps / steps) * jnp.sign(grads[n]), -eps, eps) for n, d in deltas.items()}
        deltas = jax.lax.stop_gradient(deltas)
        attacked = simulate_batch(perturb_relative(model, deltas), inputs).outputs
        robust = jnp.mean((attacked - outputs) ** 2)
        return nominal + beta * robust, {**aux, "robust": robust}

    return loss


def robust_loss(loss_fn: Callable, robustness: Robustness) -> Callable:
    """Wrap ``loss_fn`` according to ``robustness.kind``."""
    if robustness.kind == "noise":
        return _noise_injection(loss_fn, robustness)
    if robustness.kind == "adversarial":
        return _adversarial(loss_fn, robustness)
    return loss_fn
