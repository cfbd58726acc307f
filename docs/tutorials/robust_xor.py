"""Tutorial 1: robust training on temporal XOR, then evaluation over a fleet of chips.

Trains two BPTT spiking networks on temporal XOR, one nominal and one with parameter-noise
injection, realises them on simulated chips and compares them on one shared fleet.

    python docs/tutorials/robust_xor.py [OUT_DIR]

Outputs (in OUT_DIR, default: a new temporary directory): ``bptt.sfc``, ``bptt-noise.sfc``,
``fleet.json`` and ``fleet.png``. Small settings by default (a few CPU-minutes);
``SPIKEFLEET_TUTORIAL_FULL=1`` uses the recipe's sizes (400 steps, 128 neurons, σ = 0.2, 100 chips).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from spikefleet import checkpoint
from spikefleet.fleet.chip import Condition, fleet_keys, realize
from spikefleet.fleet.evaluate import evaluate_fleet
from spikefleet.fleet.mismatch import get_profile
from spikefleet.fleet.plot import plot_robustness
from spikefleet.fleet.stats import paired_comparison
from spikefleet.fleet.sweep import Sweep, compare_designs, run_sweeps
from spikefleet.seeds import TEST, seed_stream
from spikefleet.simulation import simulate
from spikefleet.tasks import get_task
from spikefleet.train.objectives import Robustness
from spikefleet.train.gradient import train

FULL = os.environ.get("SPIKEFLEET_TUTORIAL_FULL") == "1"
STEPS = 400 if FULL else 250  # optimiser steps per design
HIDDEN = 128 if FULL else 64  # LIF neurons
BATCH = 32 if FULL else 16  # trials per step (divisible by the 4 chips of noise injection)
CHIPS = 100 if FULL else 16  # fleet size
TRIALS = 200 if FULL else 64  # test trials per chip
ROBUST_LEVEL = 0.2 if FULL else 0.1  # sigma of the uniform profile sampled during noise injection
SEED = 0  # training seed
FLEET_SEED = 1  # seeds the test trials, the chips and the runtime noise


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    # 1. The task: one input channel, two smoothed pulses of random sign; answer +1 after the
    #    second pulse if the signs differ, -1 if they are equal.
    task = get_task("xor")
    batch = task.generate(4, seed=0)
    print(f"inputs {batch.inputs.shape}, targets {batch.targets.shape}, labels {batch.labels}")

    # 2. Two designs from the same seed: nominal BPTT, and BPTT with parameter-noise injection
    #    (every step samples 4 chips from the uniform profile at sigma = ROBUST_LEVEL and averages the loss).
    fit = dict(steps=STEPS, hidden=HIDDEN, batch_size=BATCH, eval_every=25, val_trials=64, progress=False)
    nominal = train(task, "bptt", SEED, **fit)
    noisy = train(task, "bptt", SEED, robustness=Robustness("noise", get_profile("uniform", ROBUST_LEVEL), chips=4), **fit)
    designs = {"bptt": nominal.model, "bptt-noise": noisy.model}
    for name, result in (("bptt", nominal), ("bptt-noise", noisy)):
        v = result.info["validation"]
        print(f"{name}: best step {result.info['best_step']}, validation accuracy {v['accuracy']:.3f}, "
              f"rate {v['rate_hz']:.1f} Hz")
        checkpoint.save(out / f"{name}.sfc", result.model, result.info, overwrite=True)

    # 3. A chip is its key: realize() returns the network as that chip runs it.
    condition = Condition(mismatch=get_profile("uniform", 0.1))
    chip = realize(nominal.model, jax.random.PRNGKey(7), condition)
    change = np.abs(np.asarray(chip.w_rec) / np.where(nominal.model.w_rec == 0, 1, nominal.model.w_rec) - 1)
    print(f"chip 7 at 10 % mismatch: median relative change of w_rec {np.median(change):.3f}")
    one = simulate(chip, batch.inputs[0])
    print(f"chip 7 decides trial 0 as {task.decide(one.outputs[None])[0]} (label {batch.labels[0]})")

    # 4. A fleet: the same chips and test trials for both designs, so per-chip results are paired.
    keys = fleet_keys(FLEET_SEED, CHIPS)
    test = task.generate(TRIALS, seed_stream(FLEET_SEED, TEST))
    results = {name: evaluate_fleet(net, task, test, keys, condition) for name, net in designs.items()}
    for name, res in results.items():
        s = res.summary("accuracy", threshold=0.9)
        print(f"{name} at 10 % mismatch: median {s.median:.3f}, IQR {s.iqr:.3f}, 5th percentile {s.p5:.3f}, "
              f"worst chip {s.worst:.3f}, yield(>=0.9) {s.yield_:.2f}")
    cmp = paired_comparison(results["bptt-noise"].metrics["accuracy"], results["bptt"].metrics["accuracy"])
    print(f"paired Wilcoxon (noise-injected vs nominal): median difference {cmp.median_diff:+.3f}, "
          f"p = {cmp.p_value:.3g}, rank-biserial effect {cmp.effect:+.2f}")

    # 5. Sweeps: one perturbation at a time, every design on the same fleet; then a plot and a JSON.
    sweeps = [Sweep("mismatch", (0.0, 0.1, 0.2)), Sweep("quant", (6, 4))]
    records = run_sweeps(designs, task, test, keys, sweeps,
                         run_key=jax.random.PRNGKey(seed_stream(FLEET_SEED, 8)))
    for r in records:
        a = r.summaries["accuracy"]
        print(f"{r.design:<11} {r.condition:<22} median {a['median']:.3f}  p5 {a['p5']:.3f}  "
              f"yield {a['yield']:.2f}")
    plot_robustness(records, out / "fleet.png", title=f"temporal XOR: {CHIPS} chips x {TRIALS} trials")
    data = {"chips": CHIPS, "trials": TRIALS, "records": [r.to_dict() for r in records],
            "comparisons": compare_designs(records)}
    (out / "fleet.json").write_text(json.dumps(data, indent=1, default=float))
    print(f"wrote {out / 'fleet.json'} and {out / 'fleet.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="spikefleet-tutorial-")))
