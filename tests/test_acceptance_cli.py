"""The CI acceptance lane (``python3 dev.py test-acceptance``; ``-m acceptance``): the command line.

* **The command-line path** of the README: ``train`` (XOR BPTT; a DYNAP-SE2 network on frozen
  noise) -> ``evaluate`` (test metrics; a fleet report) -> ``deploy`` -> ``inspect``, each in a fresh
  process as a user runs it, at a few optimiser steps (the accuracy bars are the main job's:
  tests/test_acceptance_main.py).
* **Cross-process determinism**: the whole command-line path again in other processes gives
  bit-identical checkpoints, metrics and hardware configurations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.acceptance

SRC = Path(__file__).resolve().parents[1] / "src"


def spikefleet(*argv, cwd=None) -> subprocess.CompletedProcess:
    """``spikefleet ARGV`` in a fresh process (this checkout's package); fails the test on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "spikefleet", *map(str, argv)], capture_output=True, text=True,
                         env=env, cwd=cwd)
    assert res.returncode == 0, f"spikefleet {' '.join(map(str, argv))} exited {res.returncode}:\n{res.stderr[-3000:]}"
    return res


def cli_path(d: Path) -> dict:
    """The README's command-line path in ``d``, every command a fresh process; returns what it wrote."""
    d.mkdir()
    out = {"train": spikefleet("train", "--task", "xor", "--method", "bptt", "--seed", "0", "--steps", "20",
                               "--test-trials", "16", "--out", d / "bptt.sfc", "--quiet").stdout}
    out["evaluate"] = spikefleet("evaluate", d / "bptt.sfc", "--task", "xor", "--trials", "16", "--seed", "1",
                                 "--json", d / "metrics.json").stdout
    spikefleet("evaluate", d / "bptt.sfc", "--task", "xor", "--trials", "8", "--seed", "1", "--chips", "3",
               "--mismatch", "0,0.1", "--json", d / "fleet.json")
    out["train-fn"] = spikefleet("train", "--task", "frozen-noise", "--seed", "0", "--steps", "20",
                                 "--test-trials", "8", "--out", d / "fn.sfc", "--quiet").stdout
    spikefleet("evaluate", d / "fn.sfc", "--task", "frozen-noise", "--seed", "0", "--chips", "3",
               "--profile", "dynapse2-frozen", "--mismatch", "0,0.3", "--yield-threshold", "1",
               "--json", d / "fn-fleet.json")
    out["deploy"] = spikefleet("deploy", d / "fn.sfc", "--target", "dynapse2", "--out", d / "config.json",
                               "--json", d / "deployed.json", cwd=d).stdout
    out["inspect"] = spikefleet("inspect", d / "config.json", "--json", d / "inspected.json", cwd=d).stdout
    return out


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """The command-line path run twice, in two directories (``a`` and ``b``)."""
    base = tmp_path_factory.mktemp("cli")
    return base, {name: cli_path(base / name) for name in ("a", "b")}


def _arrays(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k].tobytes() for k in z.files if k != "__meta__"}


def test_cli_train_evaluate_deploy_inspect(cli_runs):
    base, outputs = cli_runs
    d, out = base / "a", outputs["a"]
    assert out["train"].startswith("xor/bptt seed 0: ") and f"saved {d / 'bptt.sfc'}" in out["train"]
    metrics = json.loads((d / "metrics.json").read_text())
    assert (metrics["task"], metrics["seed"], metrics["trials"]) == ("xor", 1, 16)
    assert metrics["info"] == {"task": "xor", "method": "bptt", "seed": 0}
    assert 0.0 <= metrics["accuracy"] <= 1.0
    fleet = json.loads((d / "fleet.json").read_text())
    assert [len(r["per_chip"]["accuracy"]) for r in fleet["records"]] == [3, 3]  # 2 levels x 3 chips
    assert out["train-fn"].startswith("frozen-noise/dynapse2 seed 0: ")
    fn_fleet = json.loads((d / "fn-fleet.json").read_text())
    assert [len(r["per_chip"]["accuracy"]) for r in fn_fleet["records"]] == [3, 3]
    assert [r["level"] for r in fn_fleet["records"]] == [0.0, 0.3]
    deployed, inspected = (json.loads((d / f).read_text()) for f in ("deployed.json", "inspected.json"))
    assert deployed["checkpoint"] == {"path": str(d / "fn.sfc"), "task": "frozen-noise", "method": "dynapse2-bptt", "seed": 0,
                                      "weight_noise": 0.0}
    assert deployed["network"]["n_in"] == 60 and deployed["network"]["n_neurons"] == 2
    assert f"deployed {d / 'fn.sfc'} → {d / 'config.json'}" in out["deploy"]
    assert f"configuration {d / 'config.json'}" in out["inspect"] and "input channel map (60 channels" in out["inspect"]
    # the configuration alone says what the deployment said (bar the deployment's own quantisation errors)
    assert {k: v for k, v in inspected.items() if k in deployed and k != "quantization"} == {
        k: v for k, v in deployed.items() if k not in ("checkpoint", "quantization")}


def test_cli_path_is_bit_identical_across_processes(cli_runs):
    base, outputs = cli_runs
    a, b = base / "a", base / "b"
    for ckpt in ("bptt.sfc", "fn.sfc"):
        assert _arrays(a / ckpt) == _arrays(b / ckpt), ckpt
    for name in ("metrics.json", "fleet.json", "fn-fleet.json"):
        ra, rb = (json.loads((d / name).read_text()) for d in (a, b))
        ra.pop("checkpoint", None), rb.pop("checkpoint", None)  # the path
        assert ra == rb, name
    assert (a / "config.json").read_bytes() == (b / "config.json").read_bytes()
    assert outputs["a"]["train"].replace(str(a), "D") == outputs["b"]["train"].replace(str(b), "D")
