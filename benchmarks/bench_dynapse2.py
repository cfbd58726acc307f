"""Throughput of the DYNAP-SE2 network (DynapSim neurons in Amperes), as ratios to same-process baselines.

Work per size N: a ``C = 60 → N`` DynapSE2Network with all-to-all recurrence, batch ``B``,
``T`` steps (dt = 1 ms), 50 Hz Poisson input; forward (spike raster) and forward+backward
(gradient of the raster MSE w.r.t. ``W_in`` and ``W_rec``). Baselines measured in the same
run: the LIF ``SpikingNetwork`` of the same size on the same input (so the ratio says what the
physical-unit model costs over the abstract one) and the dense matmul bound (``T`` products
``[B, N] × [N, N]`` in one jitted scan).

    python benchmarks/bench_dynapse2.py [--sizes 2,64,256] [--batch 32] [--steps 1000] [--out benchmarks/RESULTS-dynapse2.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
from _report import best_time, header, publish

from spikefleet.network import SpikingConfig, init_spiking
from spikefleet.network_dynapse2 import DynapSE2Config, init_dynapse2
from spikefleet.simulate import simulate_batch




forward = eqx.filter_jit(lambda m, x: simulate_batch(m, x).outputs)


@eqx.filter_jit
def backward(m, x):
    def loss(mm):
        y = simulate_batch(mm, x).outputs
        return jnp.mean((y - 1.0) ** 2)
    return eqx.filter_grad(loss)(m)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2,64,256")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-dynapse2.md"))
    args = parser.parse_args(argv)
    b, t, c = args.batch, args.steps, 60
    key = jax.random.PRNGKey(0)
    inputs = jax.random.poisson(key, 0.05, (b, t, c)).astype(jnp.float32)
    lines = header("DYNAP-SE2 simulate throughput",
                   f"C={c} inputs (50 Hz Poisson) -> N DynapSim neurons with recurrence, batch B={b}, T={t}") + [
        "| N | work | seconds | steps/s (x batch) | ratio to LIF same size | ratio to matmul bound |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n in (int(s) for s in args.sizes.split(",")):
        dyn = init_dynapse2(DynapSE2Config(n_in=c, n_hidden=n), key)
        lif = init_spiking(SpikingConfig(n_in=c, n_hidden=n, n_out=n), key)
        w = jax.random.normal(key, (n, n)) / jnp.sqrt(n)
        h0 = jax.random.normal(key, (b, n))

        @jax.jit
        def matmuls(h, w):
            return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), h, None, length=t)[0]

        t_mm = best_time(matmuls, h0, w)
        for name, fn, repeats in (("forward", forward, 5), ("forward+backward", backward, 3)):
            t_dyn = best_time(fn, dyn, inputs, repeats=repeats)
            t_lif = best_time(fn, lif, inputs, repeats=repeats)
            lines.append(f"| {n} | {name} | {t_dyn:.4f} | {t / t_dyn:,.0f} ({b * t / t_dyn:,.0f}) | "
                         f"{t_dyn / t_lif:.2f} | {t_dyn / t_mm:.2f} |")
    return publish(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
