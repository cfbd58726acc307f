"""The Ray backend (``--backend ray``, the ``ray`` extra): the same results as the local backend, bit
for bit, and a Ray worker killed mid-unit fails the run with :class:`UnitFailed` (Ray tasks are
never retried behind the runner's back), after which the same command redoes the unit.

Needs ``ray`` (``python3 dev.py test-acceptance`` installs the extra). Without it these tests skip
with the reason; in CI a skip fails the run (tests/conftest.py). Each test starts and stops its own
local Ray instance, as ``spikefleet run --backend ray`` does (about 10-25 s on 2 cores).
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from spikefleet.experiments.runner import UnitFailed, run_experiment
from unit_hooks import (TINY_UNITS, handshake_path, hooks_out, pid_alive, resume_matches, snapshot, use_hooks,
                        wait_for_file)

pytestmark = pytest.mark.acceptance


@pytest.fixture(autouse=True)
def ray():
    return pytest.importorskip("ray", reason="the ray extra is not installed (python3 dev.py test-acceptance "
                                             "installs it; or pip install 'spikefleet[ray]')")


def test_ray_backend_matches_the_local_backend(tiny_run_reference, tiny_run_file, tmp_path, ray):
    result = run_experiment(tiny_run_file, tmp_path / "out", backend="ray", workers=2, progress=False)
    assert (result.units_run, result.units_skipped) == (len(TINY_UNITS), 0)
    assert snapshot(tmp_path / "out") == tiny_run_reference[0]  # each unit once, bit-identical to local
    assert result.rows == tiny_run_reference[1]
    assert not ray.is_initialized()  # the backend stopped the instance it started


def test_a_killed_ray_worker_fails_the_run_and_the_unit_is_redone(
        tiny_run_reference, tiny_run_file, tmp_path, monkeypatch, ray):
    use_hooks(monkeypatch)
    out = hooks_out(tmp_path, hold="train/a/seed0")
    shake, finished, killed = handshake_path(out, "train/a/seed0"), threading.Event(), []

    def kill_the_worker():
        wait_for_file(shake, alive=lambda: not finished.is_set())
        pid = int(shake.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    try:
        with pytest.raises(UnitFailed, match=r"^unit train/a/seed0 failed \(") as failed:
            run_experiment(tiny_run_file, out, backend="ray", workers=2, progress=False)
    finally:
        finished.set()
        killer.join()
    assert killed and killed[0] != os.getpid() and not pid_alive(killed[0])
    cause = failed.value.__cause__
    assert isinstance(cause, (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError)), repr(cause)
    recorded = set(snapshot(out))
    assert not recorded & {"train/a/seed0", "eval/a/seed0/mismatch/0.1"}
    assert f"{len(recorded)} of {len(TINY_UNITS)} units are recorded" in str(failed.value)
    assert not ray.is_initialized()
    monkeypatch.undo()
    resume_matches(tiny_run_reference, tiny_run_file, out, recorded, backend="ray")  # the same command again
