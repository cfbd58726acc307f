"""Worker-side hooks for the runner's failure-path tests (tests/test_runner_failures.py, tests/test_ray_backend.py).

:func:`hooked_execute` wraps :func:`spikefleet.experiments.units.execute`, the function every backend
runs on a unit's payload. It finds its instructions in ``hooks.json`` next to the run's output
directory (``OUT/../hooks.json``; the payload's ``cache_dir`` is ``OUT/cache``), so that it needs
no environment variable and works in any worker (a spawned process of the local pool or a Ray
worker on this machine). Instructions, by unit id:

* ``"fail": [ids]`` — raise :class:`InjectedFailure` instead of running the unit;
* ``"hold": id`` — announce the worker (a handshake file ``OUT/../started/<id>.pid`` holding the
  worker's PID, written atomically) and then wait until the test kills or interrupts it.

Every hooked unit leaves ``OUT/../started/<id>.pid`` before it runs, so the tests see which units
started. :func:`use_hooks` makes ``run_experiment`` (in this process) run units through the hook.
The fixtures ``tiny_run_file`` and ``tiny_run_reference`` (an undisturbed run) are in conftest.py.

:data:`TINY` is the experiment of these tests (two 4-unit BPTT designs, 2 steps each, one level on
2 chips x 4 trials: 4 units of a few seconds), :func:`snapshot` what a run stored, bit for bit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from spikefleet.experiments.runner import run_experiment
from spikefleet.experiments.units import execute

TINY = """\
name = "tiny-failures"
task = "xor"
seeds = [0]

[[methods]]
name = "a"
method = "bptt"
hidden = 4
steps = 2

[[methods]]
name = "b"
method = "bptt"
hidden = 4
steps = 3

[fleet]
chips = 2
trials = 4

[perturbations]
mismatch = [0.1]
quant_bits = []
"""
#: the units of :data:`TINY`
TINY_UNITS = ("train/a/seed0", "train/b/seed0", "eval/a/seed0/mismatch/0.1", "eval/b/seed0/mismatch/0.1")


def snapshot(out: Path) -> dict:
    """``{unit_id: stored per-chip metrics JSON (eval) or every checkpoint array's bytes (train)}``;
    raises if a unit is stored twice."""
    with sqlite3.connect(Path(out) / "results.sqlite") as conn:
        rows = conn.execute("SELECT unit_id, kind, metrics_json, checkpoint FROM units").fetchall()
    snap = {}
    for unit_id, kind, metrics, ckpt in rows:
        assert unit_id not in snap, f"{unit_id} is stored twice"
        if kind == "eval":
            snap[unit_id] = metrics
        else:
            with np.load(Path(out) / ckpt) as archive:
                snap[unit_id] = {k: archive[k].tobytes() for k in archive.files if k != "__meta__"}
    return snap

#: the hooks file, next to the output directory
HOOKS = "hooks.json"
#: the folder of handshake files, next to the output directory
STARTED = "started"
#: how long a held unit waits to be killed before it gives up (a guard against a hung test, not a timing)
HOLD_GUARD_S = 900.0


class InjectedFailure(RuntimeError):
    """The error a unit listed under ``"fail"`` raises."""


def handshake_path(out: Path, unit_id: str) -> Path:
    """Where the worker running ``unit_id`` for the output directory ``out`` writes its PID."""
    return Path(out).parent / STARTED / (unit_id.replace("/", "__") + ".pid")


def hooked_execute(payload: dict) -> dict:
    out = Path(payload["cache_dir"]).parent
    unit_id = payload["unit"]["unit_id"]
    hooks_file = out.parent / HOOKS
    hooks = json.loads(hooks_file.read_text()) if hooks_file.exists() else {}
    shake = handshake_path(out, unit_id)
    shake.parent.mkdir(exist_ok=True)
    tmp = shake.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, shake)  # atomic: the test never reads a half-written PID
    if unit_id in hooks.get("fail", []):
        raise InjectedFailure(f"injected failure in {unit_id}")
    if unit_id == hooks.get("hold"):
        threading.Event().wait(HOLD_GUARD_S)  # the test kills this process (or interrupts the run) now
        raise InjectedFailure(f"{unit_id} was held for {HOLD_GUARD_S:.0f} s and nobody stopped it")
    return execute(payload)


def use_hooks(monkeypatch) -> None:
    """Make ``run_experiment`` (in this process) run its units through :func:`hooked_execute`; Ray
    workers find this module through ``PYTHONPATH`` (they inherit the environment of the driver)."""
    import spikefleet.experiments.runner as runner
    from spikefleet.experiments.backends import make_backend

    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))

    monkeypatch.setattr(runner, "make_backend",
                        lambda backend, workers, address=None: make_backend(backend, workers, address,
                                                                            fn=hooked_execute))


def wait_for_file(path: Path, alive=lambda: True, poll_s: float = 0.02) -> None:
    """Wait until ``path`` exists, as long as ``alive()`` is true (no deadline: the handshake either
    comes or the run it waits for ends, and then ``alive()`` turns false and this raises)."""
    while not path.exists():
        if not alive():
            raise AssertionError(f"the run ended before {path.name} appeared")
        time.sleep(poll_s)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is alive (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# ------------------------------------------------------------------- helpers of the failure-path tests
def hooks_out(tmp_path: Path, **hooks) -> Path:
    """Write the hooks file for a run in ``tmp_path / "out"``; returns that output directory."""
    (tmp_path / HOOKS).write_text(json.dumps(hooks))
    return tmp_path / "out"


def resume_matches(reference, tiny_file, out: Path, recorded: set, backend: str = "local") -> None:
    """Run the same experiment again (no hooks): only the missing units run; the store then holds
    every unit once, bit-identical to the undisturbed run."""
    again = run_experiment(tiny_file, out, backend=backend, workers=2, progress=False)
    assert (again.units_skipped, again.units_run) == (len(recorded), len(TINY_UNITS) - len(recorded))
    assert snapshot(out) == reference[0]
    assert again.rows == reference[1]
