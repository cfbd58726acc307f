r"""Per-core DYNAP-SE2 weight quantisation: 4 shared base currents, 4-bit masks and signs (Çakal et al. 2024: weight quantisation).

**Constraint (Çakal et al. 2024: the constraint).** Every core ``k`` has 4 base currents ``Iw_{k,0..3} > 0`` (A), shared by all
synapses that *terminate* on its neurons. A synapse ``pre → post`` (``w[pre, post]``, input
``w_in[c, n]`` or recurrent ``w_rec[m, n]``) stores a mask ``q ∈ 0..15`` and a sign
``s ∈ {+1 (AMPA), −1 (GABA)}``; with ``k = core[post]`` its dimensionless weight is

    ŵ = s · Σ_b bit_b(q) · Iw_{k,b} / I_scale,

so a core realises at most 16 magnitudes (``q = 0`` gives 0). The sign is the sign of the float
weight; zero float weights are never allocated (sign 0, mask 0). A non-zero weight may get mask 0
(not allocated either: ``n_cam_entries`` counts non-zero masks, ≤ 64 per neuron on the chip).

**Objective.** Per core, with ``v`` the magnitudes of its non-zero weights, both methods minimise
``Σ (|ŵ| − v)²``. The reported loss is the paper's normalised form
``loss_k = mean((α_k(|ŵ| − v))²)``, ``α_k = 1/(max v − min v + 1)`` (Çakal et al. 2024: algorithm, penalties are 0 for a
valid solution), so the two methods and the reference's quantisation threshold (≤ 6e-3) compare directly.

**Methods.**

* :func:`quantize_autoencoder`: the reference's unsupervised autoencoder, Çakal et al. 2024: algorithm (see
  :mod:`._autoencoder`); ``Iw_b = c_b·I_scale/α``.
* :func:`quantize_alternating`: block-coordinate descent on ``(Iw, masks)`` per core (see
  :mod:`._alternating`): masks | currents is an exact nearest-of-16-levels search, currents |
  masks an exact 4-variable non-negative least squares; steps that would raise the error are
  rejected, so it is monotone non-increasing. Many starts (binary-weighted grids, geometric
  ratios, near-equal currents, a greedy basis from 1-D k-means levels, random) plus basin
  hopping; currents returned in ascending order. Deterministic for a given ``key``.

:func:`quantize` dispatches and validates; :func:`compare_methods` gives both methods' errors and
runtimes. Results are :class:`CoreQuantization` (frozen, read-only NumPy arrays).
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spikefleet.errors import ConfigError, expect, is_finite_number, is_positive_int
from spikefleet.neurons.dynapse2 import I_SCALE, WEIGHT_BITS
from spikefleet.hardware.dynapse2 import _alternating as _alt
from spikefleet.hardware.dynapse2._autoencoder import train_autoencoder

__all__ = ["CoreQuantization", "quantize", "quantize_alternating", "quantize_autoencoder", "compare_methods",
           "METHODS", "N_BITS", "MAX_CAM_ENTRIES"]

#: weight bits per synapse (masks 0..15)
N_BITS = 4
#: CAM entries (allocated incoming synapses) per neuron
MAX_CAM_ENTRIES = 64
#: quantisation methods (module docstring)
METHODS = ("alternating", "autoencoder")
#: Row q: the bits of mask q (bit b ↔ Iw_b, LSB first), shape [16, 4].
SUBSETS = _alt.SUBSETS


def _frozen(a, dtype):
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class CoreQuantization:
    """Quantised weights of a network whose neurons are placed on cores (``w[pre, post]``).

    ``base_currents`` [n_cores, 4] (A, > 0); ``masks_in`` [C, N] / ``masks_rec`` [N, N] in 0..15;
    ``signs_in`` / ``signs_rec`` in {−1, 0, +1}; ``core`` [N] core of each (post-synaptic) neuron;
    ``i_scale`` A per unit weight. ``loss`` [n_cores] is the normalised loss of each core,
    ``history`` the per-core loss trace (alternating: per iteration, autoencoder: per chunk),
    ``steps`` [n_cores] iterations or epochs run, ``notes`` anything adjusted.
    """

    base_currents: np.ndarray
    masks_in: np.ndarray
    masks_rec: np.ndarray
    signs_in: np.ndarray
    signs_rec: np.ndarray
    core: np.ndarray
    i_scale: float
    method: str = ""
    loss: np.ndarray = ()
    history: tuple = ()
    steps: np.ndarray = ()
    notes: tuple = ()

    def __post_init__(self):
        """Store read-only NumPy copies and check shapes and ranges (:class:`ConfigError`)."""
        kinds = {"base_currents": np.float64, "masks_in": np.int64, "masks_rec": np.int64, "signs_in": np.int64,
                 "signs_rec": np.int64, "core": np.int64, "loss": np.float64, "steps": np.int64}
        for name, dtype in kinds.items():
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        object.__setattr__(self, "i_scale", float(self.i_scale))
        object.__setattr__(self, "history", tuple(_frozen(h, np.float64) for h in self.history))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        n, cur = self.core.size, self.base_currents
        expect(cur.ndim == 2 and cur.shape[1] == N_BITS, "base_currents", "shape [n_cores, 4]", cur.shape)
        expect(self.core.ndim == 1 and np.all((self.core >= 0) & (self.core < cur.shape[0])), "core",
               f"a 1-D array of indices in 0..{cur.shape[0] - 1}", self.core)
        for tag, shape in (("in", (self.masks_in.shape[0] if self.masks_in.ndim == 2 else -1, n)), ("rec", (n, n))):
            m, sg = getattr(self, f"masks_{tag}"), getattr(self, f"signs_{tag}")
            expect(m.shape == shape and np.all((m >= 0) & (m < 16)), f"masks_{tag}",
                   f"integers 0..15 of shape [pre, {n}]", m.shape)
            expect(sg.shape == m.shape and np.all(np.abs(sg) <= 1), f"signs_{tag}",
                   f"values in {{-1, 0, 1}} of shape {m.shape}", sg.shape)
        expect(self.i_scale > 0, "i_scale", "a positive current in A", self.i_scale)

    @property
    def n_cores(self) -> int:
        return self.base_currents.shape[0]

    def levels(self) -> np.ndarray:
        """[n_cores, 16] dimensionless magnitude of each mask: ``Σ_b bit_b(q)·Iw_{k,b}/I_scale``."""
        return self.base_currents @ SUBSETS.T / self.i_scale

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruction ``ŵ = sign · levels[core(post), mask]`` as ``(w_in [C, N], w_rec [N, N])``."""
        lv = self.levels()
        return (self.signs_in * lv[self.core[None, :], self.masks_in],
                self.signs_rec * lv[self.core[None, :], self.masks_rec])

    def n_cam_entries(self) -> np.ndarray:
        """[N] allocated synapses (non-zero masks) per post-synaptic neuron; ≤ 64 on the chip."""
        return (self.masks_in != 0).sum(axis=0) + (self.masks_rec != 0).sum(axis=0)

    def errors(self, w_in, w_rec) -> dict:
        """Reconstruction quality against the float weights ``(w_in, w_rec)`` (dimensionless).

        Keys: ``loss`` (max over cores of the normalised loss, Çakal et al. 2024: algorithm/6.3) and ``loss_per_core``;
        ``max_abs_in``/``mean_abs_in``/``sum_abs_in`` and the same for ``rec`` (means over the
        non-zero float weights, sums over all entries, as in Çakal et al. 2024: quality reporting); ``max_abs``; ``mean_rel``
        (mean ``|Δ|/|w|`` over non-zero weights, Çakal et al. 2024: reference measurements); ``rel_fro`` (``‖Δ‖_F/‖W‖_F`` of both
        matrices together); ``n_synapses`` (non-zero float weights), ``n_allocated`` (non-zero
        masks), ``max_cam_entries``, ``n_cam_overflow`` (neurons with more than 64) and
        ``min_base_current`` (A).
        """
        w_in = _as_matrix(w_in, "w_in")
        w_rec = _as_matrix(w_rec, "w_rec")
        expect(w_in.shape == self.masks_in.shape, "w_in", f"shape {self.masks_in.shape}", w_in.shape)
        expect(w_rec.shape == self.masks_rec.shape, "w_rec", f"shape {self.masks_rec.shape}", w_rec.shape)
        q_in, q_rec = self.weights()
        d_in, d_rec = q_in - w_in, q_rec - w_rec
        w_all = np.concatenate([w_in.ravel(), w_rec.ravel()])
        d_all = np.concatenate([d_in.ravel(), d_rec.ravel()])
        nz = w_all != 0
        post = np.concatenate([np.broadcast_to(self.core, w_in.shape).ravel(),
                               np.broadcast_to(self.core, w_rec.shape).ravel()])[nz]
        losses = []
        for k in range(self.n_cores):
            v, d = np.abs(w_all[nz][post == k]), d_all[nz][post == k]
            losses.append(float(np.mean((d / (v.max() - v.min() + 1.0)) ** 2)) if v.size else 0.0)

        def part(d, w, tag):
            m = w != 0
            return {f"max_abs_{tag}": float(np.abs(d).max(initial=0.0)),
                    f"mean_abs_{tag}": float(np.abs(d[m]).mean()) if m.any() else 0.0,
                    f"sum_abs_{tag}": float(np.abs(d).sum())}

        norm = np.linalg.norm(w_all)
        return {"loss": max(losses, default=0.0), "loss_per_core": tuple(losses),
                **part(d_in, w_in, "in"), **part(d_rec, w_rec, "rec"),
                "max_abs": float(np.abs(d_all).max(initial=0.0)),
                "mean_rel": float(np.mean(np.abs(d_all[nz]) / np.abs(w_all[nz]))) if nz.any() else 0.0,
                "rel_fro": float(np.linalg.norm(d_all) / norm) if norm > 0 else 0.0,
                "n_synapses": int(nz.sum()),
                "n_allocated": int((self.masks_in != 0).sum() + (self.masks_rec != 0).sum()),
                "max_cam_entries": int(self.n_cam_entries().max(initial=0)),
                "n_cam_overflow": int((self.n_cam_entries() > MAX_CAM_ENTRIES).sum()),
                "min_base_current": float(self.base_currents.min())}


# ------------------------------------------------------------------------- validation, data


def _as_matrix(x, name):
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a real-valued 2-D array, got {type(x).__name__}") from None
    expect(a.ndim == 2, name, "a 2-D array indexed [pre, post]", a.shape)
    expect(bool(np.isfinite(a).all()), name, "finite values", f"{int((~np.isfinite(a)).sum())} non-finite")
    return a


class _Problem(NamedTuple):
    w_in: np.ndarray
    w_rec: np.ndarray
    core: np.ndarray
    n_cores: int
    i_scale: float
    mag: np.ndarray       # [S] |w| of the non-zero synapses (input ones first, row-major)
    groups: tuple         # per core: indices into mag of its synapses


def _problem(w_in, w_rec, core, n_cores, i_scale) -> _Problem:
    """Validate the inputs and gather each core's non-zero synapse magnitudes."""
    w_in = _as_matrix(w_in, "w_in")
    n = w_in.shape[1]
    w_rec = np.zeros((n, n)) if w_rec is None else _as_matrix(w_rec, "w_rec")
    expect(w_rec.shape == (n, n), "w_rec", f"shape ({n}, {n}) (N = w_in.shape[1])", w_rec.shape)
    core = np.asarray(core)
    expect(core.shape == (n,), "core", f"a 1-D array of {n} core indices (one per neuron)", core.shape)
    expect(np.issubdtype(core.dtype, np.integer), "core", "integer core indices", core.dtype)
    expect(n == 0 or core.min() >= 0, "core", "indices >= 0", int(core.min(initial=0)))
    needed = int(core.max(initial=-1)) + 1
    if n_cores is None:
        n_cores = max(needed, 1)
    expect(is_positive_int(n_cores) and n_cores >= needed, "n_cores",
           f"an int >= max(core) + 1 = {needed}", n_cores)
    expect(is_finite_number(i_scale) and i_scale > 0, "i_scale", "a positive current in A", i_scale)
    nz_in, nz_rec = np.nonzero(w_in), np.nonzero(w_rec)
    mag = np.concatenate([np.abs(w_in[nz_in]), np.abs(w_rec[nz_rec])])
    post_core = np.concatenate([core[nz_in[1]], core[nz_rec[1]]]).astype(np.int64)
    groups = tuple(np.flatnonzero(post_core == k) for k in range(n_cores))
    return _Problem(w_in, w_rec, core.astype(np.int64), n_cores, float(i_scale), mag, groups)


def _pack(prob: _Problem, scale: np.ndarray):
    """[n_cores, K_max] float32 magnitudes ``mag/scale_k`` (zero padded) and a validity mask."""
    k_max = max(1, max(len(g) for g in prob.groups))
    v = np.zeros((prob.n_cores, k_max), np.float32)
    valid = np.zeros((prob.n_cores, k_max), bool)
    for k, g in enumerate(prob.groups):
        v[k, :len(g)] = prob.mag[g] / scale[k]
        valid[k, :len(g)] = True
    return v, valid


def _result(prob, currents, flat_masks, method, history, steps, notes=()) -> CoreQuantization:
    """Scatter per-synapse masks back into matrices; empty cores keep the default ``WEIGHT_BITS``."""
    currents = np.array(currents, np.float64)
    for k, g in enumerate(prob.groups):
        if len(g) == 0:
            currents[k] = WEIGHT_BITS
    nz_in, nz_rec = np.nonzero(prob.w_in), np.nonzero(prob.w_rec)
    masks_in = np.zeros(prob.w_in.shape, np.int64)
    masks_rec = np.zeros(prob.w_rec.shape, np.int64)
    masks_in[nz_in] = flat_masks[:len(nz_in[0])]
    masks_rec[nz_rec] = flat_masks[len(nz_in[0]):]
    q = CoreQuantization(currents, masks_in, masks_rec, np.sign(prob.w_in), np.sign(prob.w_rec), prob.core,
                         prob.i_scale, method, history=tuple(history), steps=steps, notes=tuple(notes))
    return dataclasses.replace(q, loss=q.errors(prob.w_in, prob.w_rec)["loss_per_core"])


def _as_key(key):
    """``None`` → ``PRNGKey(0)``; an int seed → ``PRNGKey(seed)``; a JAX key as it is."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    expect(hasattr(key, "dtype") and hasattr(key, "shape"), "key", "a JAX PRNG key or an int seed", key)
    return key


def _alpha(v):
    return 1.0 / (v.max() - v.min() + 1.0) if v.size else 1.0


# --------------------------------------------------------------------------- autoencoder


def quantize_autoencoder(w_in, w_rec, core, *, key, n_cores=None, i_scale=I_SCALE, step_size=1e-4,
                         chunk_epochs=1000, max_epochs=10_000_000, fixed_epochs=None, eps=1e-6,
                         patience=5) -> CoreQuantization:
    """The reference's unsupervised autoencoder quantiser (Çakal et al. 2024: algorithm), one autoencoder per core.

    Per core: ``v̂ = α·|w|`` over its non-zero weights, ``α = 1/(max − min + 1)``; train the
    autoencoder (Adam ``step_size``, chunks of ``chunk_epochs``, early stop after ``patience`` + 1
    chunks without an improvement > ``eps`` or at ``max_epochs``; exactly ``fixed_epochs`` if
    given); read out masks ``q = Σ_b B_b 2^b`` and ``Iw_b = c_b·I_scale/α``. A non-positive code
    (the exponential penalty makes this rare and tiny) is raised to ``1e-6·max Iw`` of its core and
    recorded in ``notes``. ``history`` holds the chunk-mean losses (with penalties).
    """
    prob = _problem(w_in, w_rec, core, n_cores, i_scale)
    key = _as_key(key)
    alpha = np.array([_alpha(prob.mag[g]) for g in prob.groups])
    v, valid = _pack(prob, 1.0 / alpha)
    expect(is_positive_int(chunk_epochs), "chunk_epochs", "a positive int", chunk_epochs)
    expect(fixed_epochs is None or is_positive_int(fixed_epochs), "fixed_epochs", "None or a positive int",
           fixed_epochs)
    expect(is_positive_int(max_epochs), "max_epochs", "a positive int", max_epochs)
    expect(is_finite_number(step_size) and step_size > 0, "step_size", "a positive number", step_size)
    expect(is_finite_number(eps) and eps >= 0, "eps", "a number >= 0", eps)
    expect(isinstance(patience, int) and not isinstance(patience, bool) and patience >= 0, "patience",
           "an int >= 0", patience)
    fit = train_autoencoder(v, valid, key, step_size=step_size, chunk_epochs=chunk_epochs, max_epochs=max_epochs,
                            fixed_epochs=fixed_epochs, eps=eps, patience=patience)
    currents = fit.codes * prob.i_scale / alpha[:, None]
    notes = []
    flat = np.zeros(prob.mag.size, np.int64)
    for k, g in enumerate(prob.groups):
        if len(g) == 0:
            continue
        flat[g] = (fit.bits[k, :, :len(g)] * (1 << np.arange(N_BITS))[:, None]).sum(axis=0)
        floor = 1e-6 * max(currents[k].max(), prob.i_scale)
        for b in np.flatnonzero(currents[k] <= 0):
            notes.append(f"core {k}: Iw_{b} = {currents[k, b]:.3e} A raised to {floor:.3e} A")
            currents[k, b] = floor
    return _result(prob, currents, flat, "autoencoder", fit.history, fit.epochs, notes)


# --------------------------------------------------------------------------- alternating


def _core_rng(key, k):
    """NumPy generator of core ``k``, derived from ``fold_in(key, k)`` (typed or raw JAX key)."""
    sub = jax.random.fold_in(key, k)
    if jnp.issubdtype(sub.dtype, jax.dtypes.prng_key):
        sub = jax.random.key_data(sub)
    return np.random.default_rng(np.asarray(sub, np.uint32).ravel())


def quantize_alternating(w_in, w_rec, core, *, key, n_cores=None, i_scale=I_SCALE, n_restarts=64,
                         n_iter=200, n_hops=4) -> CoreQuantization:
    """Alternating exact-mask / NNLS-current descent per core (:mod:`._alternating`).

    Per core: magnitudes ``v`` of its non-zero weights, normalised by ``max v``; 11 heuristic plus
    ``n_restarts`` random starts, at most ``n_iter`` alternations each, then ``n_hops`` rounds of
    basin hopping; the best currents are sorted ascending (mask bits permuted to match) and every
    synapse gets its nearest level. ``history[k]``: normalised loss of the best solution so far per
    iteration (non-increasing). Core ``k`` draws from ``fold_in(key, k)`` only, so its result does
    not depend on the other cores' weights; same key, same result.
    """
    prob = _problem(w_in, w_rec, core, n_cores, i_scale)
    key = _as_key(key)
    for name, val, low in (("n_restarts", n_restarts, 0), ("n_iter", n_iter, 1), ("n_hops", n_hops, 0)):
        expect(isinstance(val, int) and not isinstance(val, bool) and val >= low, name, f"an int >= {low}", val)
    currents = np.zeros((prob.n_cores, N_BITS))
    flat = np.zeros(prob.mag.size, np.int64)
    history, steps = [], []
    for k, g in enumerate(prob.groups):
        if len(g) == 0:
            history.append(np.zeros(1))
            steps.append(0)
            continue
        scale = prob.mag[g].max()
        v = prob.mag[g] / scale
        x, hist = _alt.fit_core(v, _core_rng(key, k), n_restarts=n_restarts, n_iter=n_iter, n_hops=n_hops)
        x = np.sort(x)
        flat[g] = _alt.assign(v, x)[0]
        currents[k] = x * scale * prob.i_scale
        history.append(hist * (_alpha(prob.mag[g]) * scale) ** 2 / len(g))
        steps.append(len(hist) - 1)
    return _result(prob, currents, flat, "alternating", history, steps)


# ------------------------------------------------------------------------------ dispatcher


def quantize(w_in, w_rec, core, *, method="alternating", key=None, n_cores=None, i_scale=I_SCALE,
             **options) -> CoreQuantization:
    """Quantise ``(w_in [C, N], w_rec [N, N] or None)`` for neurons on cores ``core`` [N].

    ``method``: ``"alternating"`` (:func:`quantize_alternating`, default) or ``"autoencoder"``
    (:func:`quantize_autoencoder`, Çakal et al. 2024: algorithm); ``options`` go to that function. ``key`` defaults
    to ``jax.random.PRNGKey(0)``; an int is a seed. Raises :class:`ConfigError` naming the bad parameter.
    """
    expect(method in METHODS, "method", f"one of {METHODS}", method)
    key = _as_key(key)
    fn = quantize_alternating if method == "alternating" else quantize_autoencoder
    try:
        return fn(w_in, w_rec, core, key=key, n_cores=n_cores, i_scale=i_scale, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"options: {exc}") from None
        raise


def compare_methods(w_in, w_rec, core, *, key=None, methods=METHODS, options=None, **common) -> dict:
    """Run each method on the same weights; ``{method: {"errors": dict, "seconds": float, "result": q}}``.

    ``options`` maps a method to its extra keyword arguments; ``common`` goes to all. ``seconds``
    is wall-clock time including JIT compilation on a cold start.
    """
    options = options or {}
    out = {}
    for method in methods:
        t0 = time.perf_counter()
        q = quantize(w_in, w_rec, core, method=method, key=key, **common, **options.get(method, {}))
        out[method] = {"errors": q.errors(w_in, w_rec if w_rec is not None else np.zeros(q.masks_rec.shape)),
                       "seconds": time.perf_counter() - t0, "result": q}
    return out
