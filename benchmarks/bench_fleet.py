"""Fleet evaluation cost, as ratios to baselines measured in the same process.

Work: the XOR BPTT design of the default recipe (N = 128 LIF neurons), 200 XOR trials of
1 s (T = 1000 steps), uniform mismatch at 10 %, on a fleet of ``--chips`` chips (default 1000).

Baselines (same process, same trials):
  * one nominal batched evaluation of the 200 trials (one chip, jitted, compiled beforehand);
  * a Python loop over ``--loop-chips`` chips (default 20), each ``realize`` + batched
    evaluation (compiled beforehand), extrapolated linearly to the fleet size.

    python benchmarks/bench_fleet.py [--chips 1000] [--trials 200] [--chunk 16] [--out benchmarks/RESULTS-fleet.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
from _report import header, publish

from spikefleet.evaluation import run_outputs
from spikefleet.fleet.chip import Condition, fleet_keys, realize
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import builtin_profile
from spikefleet.tasks import get_task
from spikefleet.train import recipes


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--loop-chips", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-fleet.md"))
    args = parser.parse_args(argv)

    task = get_task("xor")
    batch = task.generate(args.trials, 1234)
    design = recipes._bptt_model(task, jax.random.PRNGKey(0), 128)
    condition = Condition(mismatch=builtin_profile("uniform", 0.1))
    keys = fleet_keys(0, args.chips)

    run_outputs(design, batch.inputs, chunk=args.trials)  # compile
    t_nominal, _ = timed(lambda: run_outputs(design, batch.inputs, chunk=args.trials))

    def loop(n):
        for k in keys[:n]:
            outputs, _ = run_outputs(realize(design, k, condition), batch.inputs, chunk=args.trials)
            task.accuracy(outputs, batch.labels)

    loop(1)  # compile
    t_loop, _ = timed(lambda: loop(args.loop_chips))
    t_loop_extrapolated = t_loop / args.loop_chips * args.chips

    evaluate_fleet(design, task, batch, keys[: args.chunk], condition, chunk=args.chunk)  # compile for this chunk size
    t_compile_fleet, _ = timed(lambda: evaluate_fleet(design, task, batch, keys, condition, chunk=args.chunk))
    t_fleet, result = timed(lambda: evaluate_fleet(design, task, batch, keys, condition, chunk=args.chunk))

    rows = [
        ("one nominal batched evaluation (1 chip)", t_nominal, 1.0),
        (f"Python loop over {args.loop_chips} chips, extrapolated to {args.chips}", t_loop_extrapolated,
         t_loop_extrapolated / t_nominal),
        (f"evaluate_fleet, {args.chips} chips (first call, incl. compile for the fleet shape)", t_compile_fleet,
         t_compile_fleet / t_nominal),
        (f"evaluate_fleet, {args.chips} chips", t_fleet, t_fleet / t_nominal),
    ]
    lines = header("fleet evaluation", f"XOR BPTT design N=128, {args.trials} trials x 1000 steps, "
                                        f"uniform mismatch 10 %, chunk {args.chunk}") + [
        "| work | seconds | ratio to one nominal evaluation |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {sec:.2f} | {ratio:.1f} |" for name, sec, ratio in rows]
    lines += ["", f"- fleet speed-up over the Python loop: {t_loop_extrapolated / t_fleet:.2f}x; "
              f"per chip {t_fleet / args.chips * 1e3:.1f} ms vs {t_nominal * 1e3:.1f} ms for one nominal evaluation",
              f"- median accuracy of this untrained design over the fleet: {result.summary().median:.3f} "
              "(timing only)"]
    return publish(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
