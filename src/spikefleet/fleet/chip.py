"""A chip is its key: ``realize(design, chip_key, condition)`` is the network as that chip runs it.

A :class:`Condition` bundles the perturbations of one evaluation point: a mismatch profile
(frozen, per chip), weight quantisation (deterministic, per design), membrane and input noise
(fresh per run) and neuron death (per chip). Order of application:

1. ``prepare(design, condition)`` — check that the mismatch profile applies to the design
   (:func:`~spikefleet.fleet.mismatch.check_profile`: an error when it perturbs nothing, a warning
   naming the parameters it skips), quantise the chosen matrices (b bits, per matrix), set the
   membrane-noise level. Same for every chip.
2. ``realize`` — mismatch with ``fold_in(chip_key, 0)``, the optional recurrent down-scaling
   (``recurrent_scale`` multiplies ``w_rec`` and ``w_fast``: the Network ADS protocol's remedy
   for runaway activity after a perturbation, Büchel et al. 2021: general protocol), then neuron death with
   ``fold_in(chip_key, 1)``.

Quantisation comes first: the chip stores the quantised design and its analog circuits then
deviate from it. Runtime noise is drawn at simulation time from a run key.

Whether chips differ at all under a condition follows from its definition
(:func:`varies_by_chip`): quantisation alone, mismatch 0 or death of the first neurons give every
chip the same network, so a fleet of ``n`` chips holds one distinct result (``n_effective = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import equinox as eqx
import jax

from spikefleet.errors import expect
from spikefleet.fleet.faults import SELECTIONS, silence_neurons
from spikefleet.fleet.mismatch import MismatchProfile, apply_mismatch, check_profile, profile_coverage
from spikefleet.fleet.noise import with_membrane_noise
from spikefleet.fleet.quantize import DEFAULT_QUANT_MATRICES, GRIDS, quantize_matrices
from spikefleet.models.base import core_of, map_core

__all__ = ["Condition", "prepare", "realize", "realize_fleet", "fleet_keys", "varies_by_chip"]


@dataclass(frozen=True)
class Condition:
    """One perturbation point (all optional; the default is the nominal chip)."""

    mismatch: Optional[MismatchProfile] = None
    quant_bits: Optional[int] = None
    quant_matrices: tuple = DEFAULT_QUANT_MATRICES
    quant_grid: str = "zero"
    noise: float = 0.0
    input_noise: float = 0.0
    dead: float = 0.0
    dead_window: Optional[tuple] = None
    dead_select: str = "random"
    recurrent_scale: float = 1.0
    label: str = ""

    def __post_init__(self):
        expect(self.quant_bits is None or (isinstance(self.quant_bits, int) and not isinstance(self.quant_bits, bool)
                                           and 1 <= self.quant_bits <= 32),
               "quant_bits", "None or an integer in [1, 32]", self.quant_bits)
        expect(self.quant_grid in GRIDS, "quant_grid", f"one of {GRIDS}", self.quant_grid)
        expect(self.noise >= 0, "noise", "a non-negative fraction of the threshold-reset gap", self.noise)
        expect(self.input_noise >= 0, "input_noise", "a non-negative standard deviation", self.input_noise)
        expect(0 <= self.dead <= 1, "dead", "a fraction in [0, 1]", self.dead)
        expect(self.dead_select in SELECTIONS, "dead_select", f"one of {SELECTIONS}", self.dead_select)
        expect(self.recurrent_scale > 0, "recurrent_scale", "a positive factor", self.recurrent_scale)
        object.__setattr__(self, "quant_matrices", tuple(self.quant_matrices))

    @property
    def needs_run_key(self) -> bool:
        return self.noise > 0 or self.input_noise > 0

    def describe(self) -> str:
        if self.label:
            return self.label
        parts = []
        if self.mismatch is not None:
            parts.append(f"mismatch={self.mismatch.name}")
        if self.quant_bits is not None:
            parts.append(f"{self.quant_bits}-bit")
        if self.noise:
            parts.append(f"noise={self.noise:g}")
        if self.input_noise:
            parts.append(f"input_noise={self.input_noise:g}")
        if self.dead:
            parts.append(f"dead={self.dead:g}")
        return ", ".join(parts) or "nominal"


def prepare(design, condition: Condition):
    """The chip-independent part: the profile check (:func:`~spikefleet.fleet.mismatch.check_profile`),
    quantisation and the noise level."""
    check_profile(design, condition.mismatch)
    net = quantize_matrices(design, condition.quant_bits, condition.quant_matrices, grid=condition.quant_grid)
    if condition.noise:
        net = with_membrane_noise(net, condition.noise)
    return net


def varies_by_chip(design, condition: Condition) -> bool:
    """Whether two chips of a fleet can give different results for ``design`` under ``condition``.

    Decided from the condition's definition, not from outputs: chips differ when the mismatch
    profile has a sigma > 0 on a parameter the design has, when neurons die at random (a per-chip
    draw of ``0 < ⌊dead·N⌋ < N`` neurons), or under runtime noise (membrane or input noise is drawn
    per chip from ``fold_in(run_key, chip)``). Quantisation, ``recurrent_scale``, mismatch 0 and
    ``dead_select="first"`` are the same for every chip.
    """
    if condition.needs_run_key:
        return True
    if condition.mismatch is not None:
        applied, _ = profile_coverage(design, condition.mismatch)
        sigmas = dict(condition.mismatch.sigmas)
        if any(sigmas[name] > 0 for name in applied):
            return True
    if condition.dead > 0 and condition.dead_select == "random":
        neurons = getattr(core_of(design), "neurons", None)
        n = getattr(neurons, "n", None)
        if not isinstance(n, int):
            return True
        count = int(condition.dead * n + 1e-9)
        return 0 < count < n
    return False


def _scale_recurrent(net, factor: float):
    def scale(core):
        names = [n for n in ("w_rec", "w_fast") if getattr(core, n, None) is not None]
        return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), core,
                           tuple(factor * getattr(core, n) for n in names))

    return map_core(net, scale)


def _vary(prepared, chip_key, condition: Condition):
    net = apply_mismatch(prepared, condition.mismatch, jax.random.fold_in(chip_key, 0))
    if condition.recurrent_scale != 1.0:  # Network ADS protocol: down-scale after the perturbation
        net = _scale_recurrent(net, condition.recurrent_scale)
    if condition.dead:
        net = silence_neurons(net, condition.dead, jax.random.fold_in(chip_key, 1),
                              window=condition.dead_window, select=condition.dead_select)
    return net


def realize(design, chip_key: jax.Array, condition: Condition = Condition()):
    """The network as chip ``chip_key`` runs ``design`` under ``condition`` (pure, differentiable)."""
    return _vary(prepare(design, condition), chip_key, condition)


def realize_fleet(design, chip_keys: jax.Array, condition: Condition = Condition()):
    """A batched network: every array leaf gets a leading chip axis (``vmap`` of :func:`realize`)."""
    prepared = prepare(design, condition)
    return jax.vmap(lambda k: _vary(prepared, k, condition))(chip_keys)


def fleet_keys(seed: int, n_chips: int) -> jax.Array:
    """The fleet of ``n_chips`` chips for ``seed``: ``split(PRNGKey(seed), n_chips)``.

    Two designs evaluated with the same seed and size see the same chips (paired comparison).
    """
    expect(isinstance(seed, int) and seed >= 0, "seed", "a non-negative integer", seed)
    expect(isinstance(n_chips, int) and n_chips > 0, "chips", "a positive integer", n_chips)
    return jax.random.split(jax.random.PRNGKey(seed), n_chips)
