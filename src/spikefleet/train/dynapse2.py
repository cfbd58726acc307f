r"""Gradient training of DYNAP-SE2 networks (Çakal et al. 2024: where mismatch is applied, Çakal et al. 2024: training setup).

The recipe of the reference experiment: full-batch Adam (learning rate ``1e-2``) on the
mean squared error between the output spike raster ``S [B, T, N]`` and the one-hot target,
``L(W) = mean((S(W) − Y)²)``, for ``epochs`` epochs; only the weights ``W = (W_in, W_rec)``
are trained (the circuit parameters stay at their nominal values).

**Weight-noise injection** (``weight_noise = σ > 0``; the reference's dynamic prototype, i.e.
the ``dynapse2-dynamic`` mismatch profile at level ``3σ``): at every epoch, with fresh
``ξ ~ N(0, 1)`` per synapse,

    W̃ = W ⊙ (1 + σ ξ),     g = ∇_{W̃} L(W̃),     W ← Adam(W, g)

(the gradient *at* the noisy weights is applied to the clean ones, Çakal et al. 2024: where mismatch is applied).

Several runs (seeds × noise levels) train at once: every run is one lane of a ``vmap``, and
epochs advance in jitted ``lax.scan`` chunks of ``chunk`` epochs (one compilation for the whole
training). Run ``i`` initialises its weights from ``PRNGKey(seed_stream(seed_i, 11))``
(Kaiming-uniform, :func:`~spikefleet.models.dynapse2.init_dynapse2`), so runs with the same
seed and different noise share their initial weights (the paired design of the frozen-noise study), and draws its
weight noise from ``PRNGKey(seed_stream(seed_i, 12))``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from spikefleet.errors import expect
from spikefleet.errors import is_finite_number as _is_num
from spikefleet.errors import is_positive_int as _is_pos_int
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network, init_dynapse2
from spikefleet.neurons.dynapse2 import I_SCALE
from spikefleet.neurons.dynapse2_soma import SURROGATES
from spikefleet.seeds import DYNAPSE2_INIT, WEIGHT_NOISE, seed_stream
from spikefleet.simulation import simulate_batch
from spikefleet.train.loop import TrainingDiverged

__all__ = ["DynapSE2TrainConfig", "initial_network", "train_dynapse2", "train_dynapse2_runs"]


@dataclass(frozen=True)
class DynapSE2TrainConfig:
    """The frozen-noise study's recipe (defaults: Çakal et al. 2024: results "training from scratch")."""

    epochs: int = 30_000
    learning_rate: float = 1e-2
    weight_noise: float = 0.0  # σ of W̃ = W (1 + σ ξ); the reference uses 0.30 / 3 = 0.1
    chunk: int = 500  # epochs per jitted call (progress granularity)
    I_scale: float = I_SCALE
    recurrent: bool = True
    surrogate: str = "reference"

    def __post_init__(self):
        name = type(self).__name__
        for f in ("epochs", "chunk"):
            expect(_is_pos_int(getattr(self, f)), f"{name}.{f}", "a positive integer", getattr(self, f))
        expect(_is_num(self.learning_rate) and self.learning_rate > 0, f"{name}.learning_rate",
               "a positive number", self.learning_rate)
        expect(_is_num(self.weight_noise) and 0 <= self.weight_noise < 1, f"{name}.weight_noise",
               "a relative sigma in [0, 1)", self.weight_noise)
        expect(_is_num(self.I_scale) and self.I_scale > 0, f"{name}.I_scale", "a positive current (A)", self.I_scale)
        expect(isinstance(self.recurrent, bool), f"{name}.recurrent", "True or False", self.recurrent)
        expect(self.surrogate in SURROGATES, f"{name}.surrogate", f"one of {SURROGATES}", self.surrogate)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def initial_network(task, config: DynapSE2TrainConfig, seed: int) -> DynapSE2Network:
    """The untrained network of run ``seed`` (Kaiming-uniform weights, default DynapSim neurons)."""
    net_config = DynapSE2Config(n_in=task.n_in, n_hidden=task.n_out, dt=task.dt, recurrent=config.recurrent,
                                surrogate=config.surrogate)
    return init_dynapse2(net_config, jax.random.PRNGKey(seed_stream(seed, DYNAPSE2_INIT)), I_scale=config.I_scale)


def _weights(net):
    return (net.w_in, net.w_rec)


def _with_weights(net, w):
    return eqx.tree_at(_weights, net, w)


def _make_chunk(template: DynapSE2Network, optimizer, inputs, targets, steps: int):
    recurrent = template.config.recurrent

    def loss_fn(w):
        outputs = simulate_batch(_with_weights(template, w), inputs).outputs
        return jnp.mean((outputs - targets) ** 2)

    def epoch(carry, _):
        w, opt_state, key, sigma = carry
        key, k_in, k_rec = jax.random.split(key, 3)
        noisy = (w[0] * (1.0 + sigma * jax.random.normal(k_in, w[0].shape)),
                 w[1] * (1.0 + sigma * jax.random.normal(k_rec, w[1].shape)))
        loss, grads = jax.value_and_grad(loss_fn)(noisy)
        if not recurrent:
            grads = (grads[0], jnp.zeros_like(grads[1]))
        updates, opt_state = optimizer.update(grads, opt_state, w)
        w = optax.apply_updates(w, updates)
        finite = jnp.stack([jnp.all(jnp.isfinite(x)) for x in (loss, *grads, *w)])  # loss, ∇w_in, ∇w_rec, w_in, w_rec
        return (w, opt_state, key, sigma), (loss, finite)

    def chunk(w, opt_state, key, sigma):
        (w, opt_state, key, _), (losses, finite) = jax.lax.scan(epoch, (w, opt_state, key, sigma), None,
                                                                length=steps)
        return w, opt_state, key, losses, finite

    return jax.jit(jax.vmap(chunk))


def train_dynapse2_runs(task, config: DynapSE2TrainConfig, seeds: Sequence[int],
                        weight_noise: Sequence[float] | None = None, *, progress: bool = True,
                        desc: str | None = None):
    """Train one network per ``(seeds[i], weight_noise[i])`` at once; returns ``[(model, info), ...]``.

    ``weight_noise`` defaults to ``config.weight_noise`` for every run. ``info`` holds the seed,
    the noise level, the loss at the start and the end, the mean loss per chunk and the time.
    ``desc``: the progress bar's label (default ``"dynapse2 x<runs>"``).
    """

    seeds = [int(s) for s in seeds]
    expect(len(seeds) > 0 and all(s >= 0 for s in seeds), "seeds", "one or more non-negative integers", seeds)
    sigmas = [config.weight_noise] * len(seeds) if weight_noise is None else [float(s) for s in weight_noise]
    expect(len(sigmas) == len(seeds), "weight_noise", f"{len(seeds)} values (one per seed)", len(sigmas))
    expect(all(0 <= s < 1 for s in sigmas), "weight_noise", "relative sigmas in [0, 1)", sigmas)

    nets = [initial_network(task, config, s) for s in seeds]
    template = nets[0]
    batch = task.generate(task.n_out, 0)
    inputs, targets = jnp.asarray(batch.inputs), jnp.asarray(batch.targets)
    optimizer = optax.adam(config.learning_rate)
    w = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[_weights(n) for n in nets])
    opt_state = jax.vmap(optimizer.init)(w)
    keys = jnp.stack([jax.random.PRNGKey(seed_stream(s, WEIGHT_NOISE)) for s in seeds])
    sigma = jnp.asarray(sigmas, jnp.float32)

    start = time.perf_counter()
    history, first = [], None
    done = 0
    compiled = {}
    bar = tqdm(total=config.epochs, desc=desc or f"dynapse2 x{len(seeds)}", disable=not progress, leave=False,
               dynamic_ncols=True)
    try:
        while done < config.epochs:
            steps = min(config.chunk, config.epochs - done)
            if steps not in compiled:
                compiled[steps] = _make_chunk(template, optimizer, inputs, targets, steps)
            w_new, opt_new, keys_new, losses, finite = compiled[steps](w, opt_state, keys, sigma)
            losses, finite = np.asarray(losses), np.asarray(finite)  # [runs, steps], [runs, steps, 5]
            if not finite.all():
                epochs = np.flatnonzero((~finite.all(axis=2)).any(axis=0))
                epoch = int(epochs[0])  # the first failing epoch, then its first failing run and quantity
                run = int(np.flatnonzero(~finite[:, epoch].all(axis=1))[0])
                q = int(np.flatnonzero(~finite[run, epoch])[0])
                what = ("the loss", "the gradient of w_in", "the gradient of w_rec", "weight w_in",
                        "weight w_rec")[q]
                raise TrainingDiverged(f"dynapse2 training: {what} of run {run} (seed {seeds[run]}, weight noise "
                                       f"{sigmas[run]:g}) became non-finite at epoch {done + epoch + 1} (loss = "
                                       f"{float(losses[run, epoch])}); training stopped, nothing was saved; lower "
                                       "the learning rate")
            w, opt_state, keys = w_new, opt_new, keys_new
            first = losses[:, 0] if first is None else first
            history.append(losses.mean(axis=1))
            done += steps
            bar.update(steps)
            bar.set_postfix(loss=f"{float(losses[:, -1].mean()):.4f}")
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    out = []
    for i, (seed, s) in enumerate(zip(seeds, sigmas)):
        model = _with_weights(template, (w[0][i], w[1][i]))
        info = {"method": "dynapse2-bptt", "seed": seed, "weight_noise": s, "epochs": config.epochs,
                "config": {**config.to_dict(), "weight_noise": s}, "loss_start": float(first[i]),
                "loss_end": float(history[-1][i]), "loss_history": [float(h[i]) for h in history],
                "train_seconds": seconds, "runs_trained_together": len(seeds)}
        out.append((model, info))
    return out


def train_dynapse2(task, config: DynapSE2TrainConfig, seed: int, *, progress: bool = True, desc: str | None = None):
    """One network (see :func:`train_dynapse2_runs`); returns ``(model, info)``."""
    return train_dynapse2_runs(task, config, [seed], progress=progress, desc=desc)[0]
