"""Compilation counts: a second call with the same shapes traces and compiles nothing.

Counted two ways (in the spirit of Optax's ``log_compilations`` and Equinox's ``test_num_traces``):

* a Python counter inside the traced function: its body runs only while JAX traces it;
* JAX's own compilation events (``jax.monitoring``): a jaxpr trace or an XLA compilation of *any*
  function, eager operations included, so a cache miss anywhere inside the call is seen.

The second call uses new values of the same shapes (other weights, inputs, chips, keys): a design
evaluated on a new fleet, or the next step of a fit, must reuse the compiled program. ``simulate``
and ``simulate_batch`` are not jitted themselves; their callers jit them, so they are checked under
``eqx.filter_jit``. A failure lists what was traced or compiled again.
"""

from __future__ import annotations

import contextlib

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from spikefleet.fleet.chip import Condition
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.simulation import simulate, simulate_batch
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.train.loop import make_update

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CONFIG = SpikingConfig(n_in=2, n_hidden=8, n_out=1)


@contextlib.contextmanager
def compilations():
    """Collect ``"traced NAME"`` / ``"compiled NAME"`` for every JAX trace or compilation in the block."""
    seen: list[str] = []

    def listener(event, duration, **kwargs):
        if event in (TRACE_EVENT, COMPILE_EVENT):
            seen.append(f"{'traced' if event == TRACE_EVENT else 'compiled'} {kwargs.get('fun_name', '?')}")

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _networks():
    return init_spiking(CONFIG, jax.random.PRNGKey(0)), init_spiking(CONFIG, jax.random.PRNGKey(1))


def _inputs(seed, shape):
    return 2.0 * jax.random.normal(jax.random.PRNGKey(seed), shape)


def _check_second_call(counter, first, second, what):
    assert first, f"{what}: the first call compiled nothing: the compilation listener is not working"
    assert counter[0] == 1, f"{what} was traced {counter[0]} times for calls with the same shapes (want 1)"
    assert not second, f"{what}: the second call with the same shapes traced/compiled again: {second}"


def test_simulate_does_not_retrace():
    net_a, net_b = _networks()
    x_a, x_b = _inputs(10, (40, CONFIG.n_in)), _inputs(11, (40, CONFIG.n_in))
    k_a, k_b = jax.random.PRNGKey(20), jax.random.PRNGKey(21)
    counter = [0]

    @eqx.filter_jit
    def run(net, inputs, key):
        counter[0] += 1  # runs only while tracing
        result = simulate(net, inputs, key=key, record=("spikes",), accumulate=("spikes",))
        return result.outputs, result.traces["spikes"], result.totals["spikes"]

    with compilations() as first:
        jax.block_until_ready(run(net_a, x_a, k_a))
    with compilations() as second:
        jax.block_until_ready(run(net_b, x_b, k_b))
    _check_second_call(counter, first, second, "simulate")


def test_simulate_batch_does_not_retrace():
    net_a, net_b = _networks()
    x_a, x_b = _inputs(12, (3, 40, CONFIG.n_in)), _inputs(13, (3, 40, CONFIG.n_in))
    k_a, k_b = jax.random.PRNGKey(22), jax.random.PRNGKey(23)
    counter = [0]

    @eqx.filter_jit
    def run(net, inputs, key):
        counter[0] += 1
        return simulate_batch(net, inputs, key=key, accumulate=("spikes",)).outputs

    with compilations() as first:
        jax.block_until_ready(run(net_a, x_a, k_a))
    with compilations() as second:
        jax.block_until_ready(run(net_b, x_b, k_b))
    _check_second_call(counter, first, second, "simulate_batch")


def test_fit_step_does_not_retrace():
    """Three steps of the generic fit's update (as ``fit`` calls it): traced and compiled once."""
    net, _ = _networks()
    shape = (4, 30, CONFIG.n_in)
    batches = [(_inputs(30 + i, shape), _inputs(40 + i, (4, 30, CONFIG.n_out))) for i in range(3)]
    keys = [jax.random.fold_in(jax.random.PRNGKey(5), i) for i in range(3)]

    def loss_fn(model, inputs, targets, key):
        outputs = simulate_batch(model, inputs, key=key).outputs
        loss = jnp.mean((outputs - targets) ** 2)
        return loss, {"loss": loss}

    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    diff, static = eqx.partition(net, eqx.is_inexact_array)
    opt_state = optimizer.init(diff)
    counter = [0]
    update = make_update(loss_fn, optimizer, counter)
    seen = []
    for (inputs, targets), key in zip(batches, keys):
        with compilations() as events:
            diff, opt_state, loss, _, finite = update(diff, static, opt_state, inputs, targets, key)
            jax.block_until_ready((diff, loss, finite))
        seen.append(events)
    first, later = seen[0], [event for events in seen[1:] for event in events]
    _check_second_call(counter, first, later, "the fit step (train.loop.make_update)")


def test_evaluate_fleet_does_not_retrace():
    """Another design, other trials and another fleet of the same sizes: the fleet program is reused."""
    task = get_task("xor", config=XorConfig(duration=0.2))  # 200 steps: small and fast
    design_a = init_spiking(SpikingConfig(n_in=task.n_in, n_hidden=8, n_out=task.n_out), jax.random.PRNGKey(2))
    design_b = init_spiking(SpikingConfig(n_in=task.n_in, n_hidden=8, n_out=task.n_out), jax.random.PRNGKey(3))
    batch_a, batch_b = task.generate(3, seed=0), task.generate(3, seed=1)
    chips_a, chips_b = jax.random.split(jax.random.PRNGKey(4), 5), jax.random.split(jax.random.PRNGKey(5), 5)
    condition = Condition(dead=0.25)  # per-chip randomness (which neurons die) from the chip keys
    run_a, run_b = jax.random.PRNGKey(6), jax.random.PRNGKey(7)

    with compilations():
        result_a = evaluate_fleet(design_a, task, batch_a, chips_a, condition, run_key=run_a, chunk=2)
    with compilations() as second:
        result_b = evaluate_fleet(design_b, task, batch_b, chips_b, condition, run_key=run_b, chunk=2)
    assert result_a.n_chips == result_b.n_chips == 5
    # evaluate_fleet's jitted program is module-level: an earlier test in this process may have
    # compiled it already, so only the second call is checked here.
    assert not second, f"evaluate_fleet: the second call with the same shapes traced/compiled again: {second}"
