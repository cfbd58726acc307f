r"""Uniform b-bit weight quantisation per matrix, with a straight-through gradient.

For a matrix ``W`` and ``b`` bits the step is ``Δ = (max W − min W) / (2^b − 1)``. Two grids:

* ``grid="zero"`` (Network ADS reference, default): ``Q(W) = Δ · round(W / Δ)``. Zero stays
  zero (sparse matrices stay sparse); up to ``2^b + 1`` distinct levels.
* ``grid="offset"``: ``Q(W) = min W + Δ · round((W − min W) / Δ)``: exactly the ``2^b`` levels
  ``min W + kΔ``; ``Q(Q(W)) = Q(W)``.

Both have ``|Q(W) − W| ≤ Δ/2``. With ``straight_through=True`` the forward value is ``Q(W)``
and the gradient is the identity (``stop_gradient(Q(W)) + W − stop_gradient(W)``, bit-exact ``Q(W)``), for quantisation-aware
training. A constant matrix (``Δ = 0``) is returned unchanged.
"""

from __future__ import annotations

from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import expect
from spikefleet.models.base import core_of, map_core

__all__ = ["quantize_uniform", "quantize_matrices", "step_size", "GRIDS", "DEFAULT_QUANT_MATRICES"]

#: quantisation grids (module docstring)
GRIDS = ("zero", "offset")
#: on-chip weights that composite designs keep outside their core (``CHIP_WEIGHTS``, e.g. FORCE's E)
OUTER_WEIGHTS = ("w_feedback",)
#: the weight matrices quantised unless a caller names others (``w_feedback``: FORCE's E, see ``CHIP_WEIGHTS``)
DEFAULT_QUANT_MATRICES = ("w_in", "w_rec", "w_out", "w_feedback")


def _check_bits(bits):
    expect(isinstance(bits, int) and not isinstance(bits, bool) and 1 <= bits <= 32, "bits",
           "an integer number of bits in [1, 32]", bits)


def step_size(w: jax.Array, bits: int) -> jax.Array:
    """``Δ = (max − min) / (2^bits − 1)``."""
    _check_bits(bits)
    return (jnp.max(w) - jnp.min(w)) / (2.0**bits - 1.0)


def quantize_uniform(w: jax.Array, bits: int, *, grid: str = "zero", straight_through: bool = True) -> jax.Array:
    """Quantise one matrix to ``bits`` bits (see module docstring)."""
    expect(grid in GRIDS, "grid", f"one of {GRIDS}", grid)
    delta = step_size(w, bits)
    safe = jnp.where(delta > 0, delta, 1.0)
    if grid == "zero":
        q = safe * jnp.round(w / safe)
    else:
        lo = jnp.min(w)
        q = lo + safe * jnp.round((w - lo) / safe)
    q = jnp.where(delta > 0, q, w)
    if straight_through:
        # forward value exactly q (w - w == 0 exactly), gradient the identity
        return jax.lax.stop_gradient(q) + (w - jax.lax.stop_gradient(w))
    return q


def quantize_matrices(model, bits: int | None, matrices: Sequence[str] = DEFAULT_QUANT_MATRICES, *,
                      grid: str = "zero", straight_through: bool = True):
    """Quantise the named weight matrices of ``model`` (attributes; ``None`` ones are skipped)."""
    if bits is None:
        return model
    _check_bits(bits)
    if core_of(model) is not model:
        outer = dict(getattr(type(model), "CHIP_WEIGHTS", {}))  # on-chip weights outside the core
        inner = tuple(m for m in matrices if m not in outer)
        out = map_core(model, lambda core: quantize_matrices(core, bits, inner, grid=grid,
                                                             straight_through=straight_through))
        getters = [outer[m] for m in matrices if m in outer]
        if not getters:
            return out
        return eqx.tree_at(lambda m: tuple(g(m) for g in getters), out,
                           tuple(quantize_uniform(g(out), bits, grid=grid, straight_through=straight_through)
                                 for g in getters))
    names = []
    for name in matrices:
        if name in OUTER_WEIGHTS and not hasattr(model, name):
            continue  # a composite design's outer weight (e.g. FORCE's E); plain networks have none
        expect(hasattr(model, name), "matrices", f"weight attributes of {type(model).__name__}", name)
        if getattr(model, name) is not None:
            names.append(name)
    if not names:
        return model
    return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), model,
                       tuple(quantize_uniform(getattr(model, n), bits, grid=grid, straight_through=straight_through)
                             for n in names))
