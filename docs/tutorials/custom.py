"""Tutorial 4: your own mismatch profile and your own task.

Writes a mismatch profile as a TOML file (and builds one in code), looks at what it does to a
network, defines a new task (temporal order: which of two channels pulsed first?), trains a BPTT
network on it with noise injection from the custom profile and evaluates it over a fleet.

    python docs/tutorials/custom.py [OUT_DIR]

Outputs (in OUT_DIR, default: a new temporary directory): ``my-chip.toml``, ``order.sfc`` and
``custom.json``. Small settings by default (a couple of CPU-minutes); ``SPIKEFLEET_TUTORIAL_FULL=1``
trains longer and uses more chips.
"""

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from spikefleet import checkpoint
from spikefleet.fleet.chip import fleet_keys
from spikefleet.fleet.mismatch import MismatchProfile, apply_mismatch, load_profile, mismatch_targets
from spikefleet.fleet.sweep import Sweep, run_sweeps
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.tasks import xor
from spikefleet.tasks.base import Task
from spikefleet.train.objectives import Robustness
from spikefleet.train.gradient import train

FULL = os.environ.get("SPIKEFLEET_TUTORIAL_FULL") == "1"
STEPS = 400 if FULL else 150
CHIPS = 100 if FULL else 16
TRIALS = 200 if FULL else 64

PROFILE_TOML = """\
name = "my-chip"
description = "membrane and synapse time constants 10 %, thresholds 5 %, recurrent weights 20 %"
positive_rule = "lognormal"   # positive parameters: θ·exp(σξ − σ²/2), mean-preserving, never <= 0
[sigmas]
tau_mem = 0.10
tau_syn = 0.10
threshold = 0.05
w_rec = 0.20
"""


# ------------------------------------------------------------------------------------ the task
class OrderBatch(NamedTuple):
    """What a task's ``generate`` returns: time is axis 1 (``[trials, T, channels]``)."""

    inputs: np.ndarray  # [n, T, 2] float32
    targets: np.ndarray  # [n, T, 1] float32
    labels: np.ndarray  # [n] int32: 1 if channel 0 pulsed first, else 0


@dataclass(frozen=True)
class TemporalOrderTask(Task):
    """Two channels each get one 50 ms pulse at a random time in the first 300 ms; after the later
    pulse the output should go to +1 if channel 0 came first and to -1 otherwise."""

    name: str = "temporal-order"
    n_in: int = 2
    n_out: int = 1
    duration: float = 0.6
    dt: float = 1e-3

    @property
    def trial_steps(self) -> float:  # time steps of one trial (the experiment planner's cost model uses it)
        return self.duration / self.dt

    def generate(self, n: int, seed: int) -> OrderBatch:
        rng = np.random.default_rng(seed)  # deterministic in (n, seed), like the built-in tasks
        steps, width = int(round(self.duration / self.dt)), 50
        onsets = rng.integers(0, 300 - width, size=(n, 2))
        same = onsets[:, 0] == onsets[:, 1]
        onsets[same, 1] += width  # no ties
        inputs = np.zeros((n, steps, 2), np.float32)
        targets = np.zeros((n, steps, 1), np.float32)
        for i, (a, b) in enumerate(onsets):
            inputs[i, a:a + width, 0] = 1.0
            inputs[i, b:b + width, 1] = 1.0
            start = max(a, b) + width + 50
            targets[i, start:start + 150, 0] = 1.0 if a < b else -1.0
        labels = (onsets[:, 0] < onsets[:, 1]).astype(np.int32)
        return OrderBatch(inputs, targets, labels)

    # The decision rule: reuse temporal XOR's (smoothed output crosses +0.5 -> 1, -0.5 -> 0).
    def decide(self, outputs):
        return xor.decide(np.asarray(outputs))

    def decide_jax(self, outputs):  # jit/vmap-able, used by fleet evaluation
        return xor.decide_jax(outputs)

    def accuracy(self, outputs, labels) -> float:
        return xor.accuracy(np.asarray(outputs), np.asarray(labels))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    # 1. A profile file, loaded and checked (unknown parameter names or keys are errors).
    path = out / "my-chip.toml"
    path.write_text(PROFILE_TOML)
    profile = load_profile(path)
    print(f"{profile.name}: {profile.as_dict()} ({profile.positive_rule})")
    # The same in code; .scaled() multiplies every sigma (what a sweep level does to a file profile).
    in_code = MismatchProfile("my-chip", (("tau_mem", 0.1), ("tau_syn", 0.1), ("threshold", 0.05),
                                          ("w_rec", 0.2)), positive_rule="lognormal")
    assert in_code == profile
    print(f"scaled x2: {profile.scaled(2.0).as_dict()}")

    # 2. What it does to one network: each targeted parameter element is redrawn per chip key.
    net = init_spiking(SpikingConfig(n_in=2, n_hidden=64, n_out=1), jax.random.PRNGKey(0))
    chip = apply_mismatch(net, profile, jax.random.PRNGKey(1))
    for name, before in mismatch_targets(net, profile).items():
        after = mismatch_targets(chip, profile)[name]
        nonzero = np.asarray(before) != 0
        rel = np.asarray(after)[nonzero] / np.asarray(before)[nonzero] - 1
        print(f"  {name:<10} relative change: std {rel.std():.3f}, min {rel.min():+.3f}, max {rel.max():+.3f}")

    # 3. The task plugs into training and fleet evaluation as it is (no registration needed).
    task = TemporalOrderTask()
    robust = Robustness("noise", profile, chips=4)
    result = train(task, "bptt", 0, steps=STEPS, hidden=64, batch_size=16, eval_every=25, val_trials=64,
                   robustness=robust, progress=False)
    print(f"temporal order: validation accuracy {result.info['validation']['accuracy']:.3f}")
    checkpoint.save(out / "order.sfc", result.model, result.info, overwrite=True)

    # 4. Fleet evaluation under the file profile: a sweep level scales its sigmas (1 = as written).
    test = task.generate(TRIALS, 12345)
    records = run_sweeps({"order": result.model}, task, test, fleet_keys(1, CHIPS),
                         [Sweep("mismatch", (0.0, 1.0, 2.0), profile=str(path))])
    for r in records:
        a = r.summaries["accuracy"]
        print(f"  {r.condition:<40} median {a['median']:.3f}, worst {a['worst']:.3f}, yield {a['yield']:.2f}")
    (out / "custom.json").write_text(json.dumps([r.to_dict() for r in records], indent=1, default=float))
    print(f"wrote {out / 'custom.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="spikefleet-tutorial-")))
