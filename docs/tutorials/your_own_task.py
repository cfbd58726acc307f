"""Your own task, end to end: define it, register it, train designs for it, evaluate them on a fleet,
and use it from an experiment file and from the command line.

The task, "louder channel": two input channels carry random spike trains, one at a high rate and
one at a low rate; output ``i`` should go to 1 in the second half of the trial when channel ``i``
is the louder one. The decision is the output with the larger mean over that half.

    python docs/tutorials/your_own_task.py [OUT_DIR]

Outputs (in OUT_DIR, default: a new temporary directory): ``plain.sfc``, ``noise.sfc``,
``fleet.json``, ``louder.toml`` with its results in ``run/``, and ``cli.sfc``. Small settings by
default (a few CPU-minutes); ``SPIKEFLEET_TUTORIAL_FULL=1`` trains longer and uses more chips.

The file is also the module that defines the task: an experiment file names it in
``plugins = ["your_own_task"]`` (importable because Python puts the directory of the script it
runs on the module path).
"""

# --8<-- [start:setup]
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from spikefleet import checkpoint, register_task, train_and_test, train_design
from spikefleet.cli.main import main as spikefleet_cli
from spikefleet.experiments.runner import run_experiment
from spikefleet.experiments.spec import load_experiment
from spikefleet.fleet.report import fleet_report
from spikefleet.tasks.base import Task

FULL = os.environ.get("SPIKEFLEET_TUTORIAL_FULL") == "1"
STEPS = 400 if FULL else 60  # optimiser steps of each BPTT design
HIDDEN = 64 if FULL else 24  # LIF neurons
CHIPS = 100 if FULL else 8  # fleet size
TRIALS = 200 if FULL else 32  # test trials
# --8<-- [end:setup]


# ------------------------------------------------------------------------------------- the task
# --8<-- [start:task]
class LouderBatch(NamedTuple):
    """What ``generate`` returns: any object with these three arrays (time is axis 1)."""

    inputs: np.ndarray  # [n, T, n_in] float32
    targets: np.ndarray  # [n, T, n_out] float32
    labels: np.ndarray  # [n] int32, in 0 .. n_out - 1


@dataclass(frozen=True)  # frozen, hence hashable: fleet evaluation hands the task to a jitted function
class LouderTask(Task):
    """Which of two channels fires more? Output ``i`` -> 1 in the second half iff channel ``i`` is louder."""

    name: str = "louder"
    n_in: int = 2
    n_out: int = 2
    dt: float = 1e-3  # s per time step
    duration: float = 0.2  # s per trial
    low_hz: float = 20.0
    high_hz: float = 40.0

    #: an extra per-chip fleet metric (computed by metrics_jax), higher is better
    metric_directions = (("separation", True),)

    @property
    def trial_steps(self) -> int:
        return int(round(self.duration / self.dt))

    def generate(self, n: int, seed: int) -> LouderBatch:
        """``n`` trials, a deterministic function of ``(n, seed)`` (the methods pass seeds of named streams)."""
        rng = np.random.default_rng(seed)
        steps = self.trial_steps
        labels = rng.integers(0, 2, size=n).astype(np.int32)
        rates = np.where(np.eye(2, dtype=bool)[labels], self.high_hz, self.low_hz)  # [n, 2]
        inputs = (rng.random((n, steps, 2)) < rates[:, None, :] * self.dt).astype(np.float32)
        targets = np.zeros((n, steps, self.n_out), np.float32)
        targets[np.arange(n), steps // 2:, labels] = 1.0  # the louder channel's output, second half
        return LouderBatch(inputs, targets, labels)

    # The decision rule. Shape convention: outputs [..., T, n_out] (time is the second-to-last axis,
    # any leading axes: trials, chips) -> int labels [...]; -1 would mean "no decision" (always wrong).
    def decide(self, outputs) -> np.ndarray:
        y = np.asarray(outputs)
        window = y[..., y.shape[-2] // 2:, :].mean(axis=-2)  # [..., n_out]
        return np.argmax(window, axis=-1).astype(np.int32)

    def decide_jax(self, outputs):  # the same rule in JAX: traced inside jit/vmap, no Python branching on values
        window = outputs[..., outputs.shape[-2] // 2:, :].mean(axis=-2)
        return jnp.argmax(window, axis=-1).astype(jnp.int32)

    def metrics_jax(self, outputs, labels) -> dict:
        """``separation``: the mean, over trials, of (true output - other output) in the decision window.
        ``outputs`` are one chip's ``[trials, T, n_out]``; returns JAX scalars."""
        window = outputs[..., outputs.shape[-2] // 2:, :].mean(axis=-2)  # [trials, 2]
        true = jnp.take_along_axis(window, labels[:, None], axis=-1)[:, 0]
        return {"separation": jnp.mean(2.0 * true - window.sum(axis=-1))}


register_task(LouderTask)  # spikefleet.get_task("louder"), experiment files and the CLI now know it
# --8<-- [end:task]


# ------------------------------------------------------------------------------------- using it
# --8<-- [start:experiment]
EXPERIMENT = f"""\
name = "louder"
plugins = ["your_own_task"]   # the module that defines and registers the task

[task]
name = "louder"
duration = 0.2                # any field of LouderTask

[[methods]]
name = "plain"
method = "bptt"
steps = {STEPS}
hidden = {HIDDEN}

[[methods]]
name = "noise"
method = "bptt"
steps = {STEPS}
hidden = {HIDDEN}
robust = "noise"
robust_level = 0.2

[fleet]
chips = {CHIPS}
trials = {TRIALS}

[perturbations]
mismatch = [0.0, 0.2]
"""
# --8<-- [end:experiment]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    task = LouderTask()

    # 1. Check the interface: shapes, and the decision rule gives the labels back on the targets.
    batch = task.generate(8, seed=0)
    print(f"inputs {batch.inputs.shape}, targets {batch.targets.shape}, labels {batch.labels.shape}")
    assert np.array_equal(task.decide(batch.targets), batch.labels)
    assert np.array_equal(np.asarray(task.decide_jax(jnp.asarray(batch.targets))), batch.labels)

    # 2. Train a plain and a noise-injected BPTT design and test them (info["test"]).
    # --8<-- [start:train]
    designs = {}
    for name, robust in (("plain", {}), ("noise", {"robust": "noise", "robust_level": 0.2})):
        trained = train_and_test(task, "bptt", 0, steps=STEPS, hidden=HIDDEN, test_trials=TRIALS,
                                 progress=False, **robust)
        info = trained.info
        print(f"{name}: kept the model of step {info['best_step']} of {info['steps_run']} (validation accuracy "
              f"{info['best_accuracy']:.3f}), test accuracy {info['test']['accuracy']:.3f}")
        checkpoint.save(out / f"{name}.sfc", trained.model, info)
        designs[name] = trained.model
    # train_design is the same without the test; it also trains any registered method, e.g. a reservoir:
    reservoir = train_design(task, "reservoir", 0, n=HIDDEN, train_trials=4 * TRIALS, progress=False)
    print(f"reservoir: validation accuracy {reservoir.info['validation']['accuracy']:.3f}")
    # --8<-- [end:train]

    # 3. Both designs on one shared fleet: same chips, same trials; paired tests of "plain" vs "noise".
    # --8<-- [start:fleet]
    report = fleet_report(designs, task, seed=0, trials=TRIALS, chips=CHIPS, mismatch=[0.0, 0.1, 0.2])
    print(report["table"])
    for c in report["comparisons"]:
        print(f"  {c['a']} vs {c['b']} at {c['sweep']} {c['level']:g}: median difference "
              f"{c['median_diff']:+.3f}, p = {c['p_value']:.3g}")
    record = report["records"][0]
    print(f"  {record['design']} / {record['condition']}: separation median "
          f"{record['summary']['separation']['median']:.3f} over {len(record['per_chip']['accuracy'])} chips")
    (out / "fleet.json").write_text(json.dumps(report, indent=1, default=float))
    # --8<-- [end:fleet]

    # 4. An experiment file: the plugins key imports this module (in every worker, too).
    # --8<-- [start:run]
    path = out / "louder.toml"
    path.write_text(EXPERIMENT)
    results = run_experiment(load_experiment(path), out / "run", workers=1, progress=False)
    print(results.table)
    # --8<-- [end:run]

    # 5. The command line, in this process (where the task is registered): train and evaluate.
    # --8<-- [start:cli]
    ckpt = str(out / "cli.sfc")
    spikefleet_cli(["train", "--task", "louder", "--method", "bptt", "--seed", "1", "--steps", str(STEPS),
                    "--hidden", str(HIDDEN), "--test-trials", str(TRIALS), "--out", ckpt, "--overwrite", "--quiet"])
    spikefleet_cli(["evaluate", ckpt, "--task", "louder", "--seed", "0", "--chips", str(CHIPS),
                    "--trials", str(TRIALS), "--mismatch", "0,0.2"])
    # --8<-- [end:cli]
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="spikefleet-tutorial-")))
