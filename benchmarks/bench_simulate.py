"""Throughput of ``simulate`` for a recurrent LIF network, as ratios to a same-process baseline.

Work: N = 256 LIF neurons with recurrent weights, batch B = 32, T = 1000 steps (dt = 1 ms),
forward and forward+backward (gradient of the output MSE w.r.t. all weights).
Baseline measured in the same run: the dense matmul rate of this machine (a [B, N] x [N, N]
product repeated T times in one jitted scan, i.e. exactly the recurrent products), so the
reported ratio `time / matmul-bound time` is comparable across machines.

    python benchmarks/bench_simulate.py [--n 256] [--batch 32] [--steps 1000] [--out benchmarks/RESULTS.md]
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
from spikefleet.simulate import simulate_batch




def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args(argv)
    n, b, t = args.n, args.batch, args.steps

    key = jax.random.PRNGKey(0)
    net = init_spiking(SpikingConfig(n_in=1, n_hidden=n, n_out=1), key, in_scale=3.0)
    inputs = jax.random.normal(key, (b, t, 1)) * 0.5
    targets = jnp.zeros((b, t, 1))

    forward = eqx.filter_jit(lambda m, x: simulate_batch(m, x).outputs)

    @eqx.filter_jit
    def backward(m, x, y):
        return eqx.filter_grad(lambda mm: jnp.mean((simulate_batch(mm, x).outputs - y) ** 2))(m)

    w = jax.random.normal(key, (n, n)) / jnp.sqrt(n)
    h0 = jax.random.normal(key, (b, n))

    @jax.jit
    def matmuls(h, w):
        def body(h, _):
            return jnp.tanh(h @ w), None  # tanh keeps values bounded; negligible next to the product
        return jax.lax.scan(body, h, None, length=t)[0]

    t_mm = best_time(matmuls, h0, w)
    t_fwd = best_time(forward, net, inputs)
    t_bwd = best_time(backward, net, inputs, targets, repeats=3)
    gflops = 2 * b * n * n * t / t_mm / 1e9
    rows = [
        ("matmul baseline (T products [B,N]x[N,N])", t_mm, 1.0),
        ("simulate forward", t_fwd, t_fwd / t_mm),
        ("simulate forward+backward", t_bwd, t_bwd / t_mm),
    ]
    lines = header("simulate throughput",
                   f"LIF N={n}, batch B={b}, T={t} steps (dt = 1 ms); dense matmul rate {gflops:.1f} GFLOP/s") + [
        "| work | seconds | steps/s (x batch) | ratio to matmul baseline |",
        "|---|---:|---:|---:|",
    ]
    for name, sec, ratio in rows:
        lines.append(f"| {name} | {sec:.4f} | {t / sec:,.0f} ({b * t / sec:,.0f}) | {ratio:.2f} |")
    return publish(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
