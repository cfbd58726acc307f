"""Evaluate one design on a fleet of chips: per-chip metrics in one vectorised, chunked call.

For ``n`` chip keys the work is a loop over chunks of ``chunk`` chips, each chunk one jitted call
of a ``vmap`` over its chips of a ``vmap`` over the trials (one compilation per design shape,
condition and chunk size, whatever the number of chips: the last chunk is padded). Each chunk is
dispatched before the previous one is collected, so ``progress=True`` (a bar on stderr) or
``on_chunk`` can count finished chips while the device stays busy. Memory is bounded by the chunk: about
``chunk · trials · (T · O + state)`` floats. Results do not depend on ``chunk``, bit for bit
(the per-chip MSE is summed over time by a scan and over trials on the host; see :func:`_time_sum`).

Per chip (all trials of the batch):

* ``accuracy`` — the task's decision rule on ``gain · y`` against the true labels;
* ``mse`` — mean over trials, time and outputs of ``(gain · y − target)²`` (unsmoothed);
* ``rate_hz`` — mean firing rate per neuron (spiking networks; 0 for rate networks);
* the task's own metrics (:meth:`~spikefleet.tasks.base.Task.metrics_jax`, e.g. frozen noise: ``margin``);
* ``agreement`` — with ``reference_labels`` (e.g. the teacher's decisions, the label Network ADS
  and FORCE are scored against in the paper): the fraction of trials decided as the reference.

Runtime noise for chip ``i`` comes from ``fold_in(run_key, i)`` (required when the condition
has noise). ``gain`` is the optional per-level output-gain re-fit of the Network ADS protocol
(:func:`fit_gain`); it is 1 (off) by default.

``FleetResult.n_effective`` is the number of distinct chips: ``n`` when chips differ under the
condition, 1 when every chip is the same network (:func:`~spikefleet.fleet.chip.varies_by_chip`:
quantisation only, mismatch 0, no per-chip death or noise); summaries over such a fleet describe
one network, and paired tests over its "chips" are meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from spikefleet.errors import ConfigError, expect
from spikefleet.simulation import simulate_batch, trace_names
from spikefleet.fleet.chip import Condition, _vary, prepare, varies_by_chip
from spikefleet.fleet.noise import add_input_noise
from spikefleet.fleet.stats import summarize
from spikefleet.tasks.base import Task

__all__ = ["FleetResult", "evaluate_fleet", "fleet_outputs", "fit_gain", "METRICS"]

#: metric -> higher is better
METRICS = {"accuracy": True, "mse": False, "rate_hz": True}


@dataclass
class FleetResult:
    """Per-chip metrics of one design under one condition (:func:`evaluate_fleet`); :meth:`summary` summarises a metric over the chips."""

    condition: Condition
    metrics: dict  # name -> np.ndarray [n_chips]
    gain: float = 1.0
    info: dict = field(default_factory=dict)
    directions: dict = field(default_factory=lambda: dict(METRICS))  # name -> higher is better

    @property
    def n_chips(self) -> int:
        return len(next(iter(self.metrics.values())))

    @property
    def n_effective(self) -> int:
        """Distinct chips: ``n_chips``, or 1 when the condition does not vary from chip to chip."""
        return int(self.info.get("n_effective", self.n_chips))

    def summary(self, metric: str = "accuracy", threshold: float | None = None):
        expect(metric in self.metrics, "metric", f"one of {sorted(self.metrics)}", metric)
        return summarize(self.metrics[metric], higher_is_better=self.directions[metric], threshold=threshold)


def _chunked(keys, chunk):
    n = keys.shape[0]
    chunk = max(1, min(int(chunk), n))
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    index = jnp.arange(n_chunks * chunk)
    if pad:
        keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, axis=0)])
    return keys.reshape(n_chunks, chunk, *keys.shape[1:]), index.reshape(n_chunks, chunk), n


def _chip_run(prepared, condition, chip_key, index, inputs, run_key):
    net = _vary(prepared, chip_key, condition)
    sim_key = None
    if condition.needs_run_key:
        chip_run_key = jax.random.fold_in(run_key, index)
        inputs = add_input_noise(inputs, condition.input_noise, jax.random.fold_in(chip_run_key, 0))
        sim_key = jax.random.fold_in(chip_run_key, 1)
    spiking = "spikes" in trace_names(net)
    result = simulate_batch(net, inputs, key=sim_key, accumulate=("spikes",) if spiking else ())
    if spiking:
        rate = result.totals["spikes"].mean() / (inputs.shape[1] * net.dt)
    else:
        rate = jnp.zeros(())
    return result.outputs, rate


def _time_sum(x):
    """``x [trials, T, O]`` summed over time by a sequential scan: ``[trials, O]``.

    Unlike an XLA reduction, whose summation order depends on the shapes it is vectorised over (so a
    per-chip ``jnp.mean`` changed in the last bits with the chunk size), these are the same float
    additions for every chunk size: fleet metrics are bit-identical for any ``chunk``.
    """
    return jax.lax.scan(lambda acc, xt: (acc + xt, None), jnp.zeros_like(x[:, 0]), jnp.swapaxes(x, 0, 1))[0]


@eqx.filter_jit
def _chunk_metrics(prepared, condition, task, keys, index, inputs, targets, labels, run_key, gain, reference):
    """Metrics of one chunk of chips (``keys [chunk, ...]``, ``index [chunk]``)."""
    def one(key, i):
        outputs, rate = _chip_run(prepared, condition, key, i, inputs, run_key)
        outputs = gain * outputs
        decisions = task.decide_jax(outputs)
        correct = jnp.sum(decisions == labels)  # exact count; divided in float64 on the host
        mse = _time_sum((outputs - targets) ** 2)  # [trials, O]; averaged on the host (chunk-invariant)
        extra = dict(task.metrics_jax(outputs, labels))
        if reference is not None:
            extra["agreement"] = jnp.sum(decisions == reference)
        return {"accuracy": correct, "mse": mse, "rate_hz": rate, **extra}

    return jax.vmap(one)(keys, index)


def _run_chunks(call, n_chunks: int, n: int, on_chunk) -> dict:
    """``call(c)`` for every chunk, outputs stacked ``[n_chunks, chunk, ...]`` on the host.

    Chunk ``c + 1`` is dispatched before chunk ``c`` is waited for, so the device stays busy while
    ``on_chunk(chips)`` reports each finished chunk (its real chips: the last chunk's padding is not
    counted).
    """
    parts, done = [], 0
    pending = call(0)
    for c in range(n_chunks):
        following = call(c + 1) if c + 1 < n_chunks else None
        parts.append(jax.tree_util.tree_map(np.asarray, pending))  # waits for chunk c only
        size = len(next(iter(parts[-1].values())))
        if on_chunk is not None:
            on_chunk(min(size, n - done))
        done += size
        pending = following
    return {name: np.stack([p[name] for p in parts]) for name in parts[0]}


def _check(task, batch, condition, run_key):
    expect(isinstance(condition, Condition), "condition", "a spikefleet.fleet.Condition", type(condition).__name__)
    if condition.needs_run_key and run_key is None:
        raise ConfigError(f"run_key: the condition '{condition.describe()}' has runtime noise; pass run_key "
                          "(e.g. --seed on the command line)")
    expect(isinstance(task, Task), "task", "a task (spikefleet.tasks.base.Task, with a JAX decision rule decide_jax)",
           type(task).__name__)


def evaluate_fleet(design, task, batch, chip_keys, condition: Condition = Condition(), *, run_key=None,
                   chunk: int = 16, gain: float = 1.0, reference_labels=None, progress: bool = False,
                   on_chunk=None) -> FleetResult:
    """Per-chip ``accuracy``, ``mse`` and ``rate_hz`` of ``design`` on ``batch`` for every chip key
    (plus ``agreement`` with ``reference_labels [trials]`` when given).

    ``progress``: a bar on stderr counting finished chips (off by default); ``on_chunk(chips)`` is
    called after each chunk with the number of chips it finished (e.g. a caller's own bar).
    """
    _check(task, batch, condition, run_key)
    if reference_labels is not None:
        reference_labels = jnp.asarray(reference_labels)
        expect(reference_labels.shape == (batch.inputs.shape[0],), "reference_labels",
               f"one label per trial, shape ({batch.inputs.shape[0]},)", reference_labels.shape)
    keys, index, n = _chunked(jnp.asarray(chip_keys), chunk)
    prepared = prepare(design, condition)
    run_key = jax.random.PRNGKey(0) if run_key is None else run_key  # unused when the condition has no noise
    data = (jnp.asarray(batch.inputs), jnp.asarray(batch.targets), jnp.asarray(batch.labels))
    gain32 = jnp.float32(gain)

    def call(c):
        return _chunk_metrics(prepared, condition, task, keys[c], index[c], *data, run_key, gain32, reference_labels)

    with tqdm(total=n, desc=condition.describe(), unit="chip", disable=not progress, leave=False,
              dynamic_ncols=True) as bar:
        def tick(chips):
            bar.update(chips)
            if on_chunk is not None:
                on_chunk(chips)

        out = _run_chunks(call, keys.shape[0], n, tick)
    sq = np.asarray(out.pop("mse"), np.float64)  # [chunks, chunk, trials, O] sums over time
    metrics = {name: np.asarray(value).reshape(-1)[:n].astype(np.float64) for name, value in out.items()}
    metrics["mse"] = sq.reshape(-1, sq.shape[-2] * sq.shape[-1])[:n].sum(axis=1) / np.prod(batch.targets.shape)
    metrics["accuracy"] = metrics["accuracy"] / batch.inputs.shape[0]
    directions = {**METRICS, **dict(task.metric_directions)}
    if reference_labels is not None:
        metrics["agreement"] = metrics["agreement"] / batch.inputs.shape[0]
        directions["agreement"] = True
    n_effective = n if varies_by_chip(design, condition) else 1
    return FleetResult(condition=condition, metrics=metrics, gain=float(gain), directions=directions,
                       info={"chips": n, "trials": int(batch.inputs.shape[0]), "chunk": int(keys.shape[1]),
                             "n_effective": n_effective})


@eqx.filter_jit
def _fleet_outputs(prepared, condition, keys, index, inputs, run_key):
    return jax.lax.map(lambda kc: jax.vmap(lambda k, i: _chip_run(prepared, condition, k, i, inputs, run_key)[0])(*kc),
                       (keys, index))


def fleet_outputs(design, batch, chip_keys, condition: Condition = Condition(), *, run_key=None,
                  chunk: int = 16) -> np.ndarray:
    """Raw outputs ``[n_chips, trials, T, O]`` (for plots and gain fitting; memory grows with chips)."""
    if condition.needs_run_key and run_key is None:
        raise ConfigError(f"run_key: the condition '{condition.describe()}' has runtime noise; pass run_key")
    keys, index, n = _chunked(jnp.asarray(chip_keys), chunk)
    run_key = jax.random.PRNGKey(0) if run_key is None else run_key
    out = _fleet_outputs(prepare(design, condition), condition, keys, index, jnp.asarray(batch.inputs), run_key)
    out = np.asarray(out)
    return out.reshape(-1, *out.shape[2:])[:n]


def fit_gain(design, task, batch, chip_keys, condition: Condition = Condition(), *, run_key=None,
             grid=None) -> float:
    """Output gain ``g`` maximising mean accuracy over the given (validation) chips and trials.

    The Network ADS protocol fits one gain per perturbation level on separate validation chips
    and trials, from 100 values in ``[1, 5.5]`` (mismatch) or ``[0.5, 5.5]`` (noise,
    quantisation). Ties go to the gain closest to 1.
    """
    grid = np.linspace(0.5, 5.5, 101) if grid is None else np.asarray(grid, np.float64)
    expect(grid.ndim == 1 and grid.size > 0 and np.all(grid > 0), "grid", "a 1-D array of positive gains", grid.shape)
    outputs = fleet_outputs(design, batch, chip_keys, condition, run_key=run_key)
    flat = outputs.reshape(-1, *outputs.shape[2:])
    labels = np.tile(np.asarray(batch.labels), outputs.shape[0])
    scores = np.array([task.accuracy(g * flat, labels) for g in grid])
    best = np.flatnonzero(scores == scores.max())
    return float(grid[best[np.argmin(np.abs(grid[best] - 1.0))]])
