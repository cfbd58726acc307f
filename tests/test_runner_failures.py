"""The experiment runner's failure paths on the local backend: a unit that raises, a worker killed
mid-unit, units whose dependencies can never be met, and Ctrl-C (cancel, exit 130) — each followed by
the resume that the error message promises.

The units run through :func:`unit_hooks.hooked_execute`, which fails or holds the units the test
names and leaves a handshake file with its worker's PID; the tests wait for handshakes, never for
time. The experiment is :data:`unit_hooks.TINY` (4 units of a few seconds); every resumed run must
store each unit exactly once, bit-identical to an undisturbed run (the ``tiny_run_reference`` fixture of conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import unit_hooks
from spikefleet.experiments.runner import UnitFailed, run_experiment
from unit_hooks import (TINY_UNITS, handshake_path, hooks_out, pid_alive, resume_matches, snapshot, use_hooks,
                        wait_for_file)

pytestmark = pytest.mark.acceptance  # 8 runs of a 4-unit experiment: about 2-3 minutes on 2 cores

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def test_a_failing_unit_raises_unit_failed_keeps_the_rest_and_resumes(
        tiny_run_reference, tiny_run_file, tmp_path, monkeypatch):
    use_hooks(monkeypatch)
    out = hooks_out(tmp_path, fail=["train/a/seed0"])
    with pytest.raises(UnitFailed) as failed:
        run_experiment(tiny_run_file, out, workers=2, progress=False)
    message = str(failed.value)
    assert message.startswith("unit train/a/seed0 failed (InjectedFailure: injected failure in train/a/seed0); ")
    assert f"units are recorded in {out}; fix the cause and run the same command again to resume" in message
    assert isinstance(failed.value.__cause__, unit_hooks.InjectedFailure)
    recorded = set(snapshot(out))
    assert not recorded & {"train/a/seed0", "eval/a/seed0/mismatch/0.1"}  # nothing of the failed chain
    assert recorded <= {"train/b/seed0", "eval/b/seed0/mismatch/0.1"}
    assert f"{len(recorded)} of {len(TINY_UNITS)} units are recorded" in message
    monkeypatch.undo()
    resume_matches(tiny_run_reference, tiny_run_file, out, recorded)


def test_a_worker_killed_mid_unit_fails_the_run_and_the_unit_is_redone(
        tiny_run_reference, tiny_run_file, tmp_path, monkeypatch):
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
        with pytest.raises(UnitFailed, match=r"^unit .* failed \(BrokenProcessPool: ") as failed:
            run_experiment(tiny_run_file, out, workers=2, progress=False)
    finally:
        finished.set()
        killer.join()
    assert killed and not pid_alive(killed[0])
    recorded = set(snapshot(out))
    assert "train/a/seed0" not in recorded and "eval/a/seed0/mismatch/0.1" not in recorded
    assert f"{len(recorded)} of {len(TINY_UNITS)} units are recorded" in str(failed.value)
    monkeypatch.undo()
    resume_matches(tiny_run_reference, tiny_run_file, out, recorded)


def test_units_with_unmet_dependencies_are_reported_not_run(tiny_run_reference, tiny_run_file, tmp_path, monkeypatch):
    import dataclasses

    import spikefleet.experiments.runner as runner

    real = runner.build_units

    def with_a_ghost(spec):  # train/b waits for a unit that does not exist, and eval/b for train/b
        return [dataclasses.replace(u, deps=u.deps + ("train/ghost/seed0",)) if u.unit_id == "train/b/seed0" else u
                for u in real(spec)]

    monkeypatch.setattr(runner, "build_units", with_a_ghost)
    out = tmp_path / "out"
    with pytest.raises(UnitFailed) as failed:
        run_experiment(tiny_run_file, out, workers=2, progress=False)
    assert str(failed.value) == ("units ['train/b/seed0', 'eval/b/seed0/mismatch/0.1'] could not be scheduled "
                                 "(unmet dependencies)")
    assert sorted(snapshot(out)) == ["eval/a/seed0/mismatch/0.1", "train/a/seed0"]  # the rest ran
    monkeypatch.undo()
    resume_matches(tiny_run_reference, tiny_run_file, out, {"train/a/seed0", "eval/a/seed0/mismatch/0.1"})


#: ``spikefleet run`` (cli.run.main) in a fresh process, its units run through the hooks
_DRIVER = """\
import sys
import spikefleet.experiments.runner as runner
import unit_hooks
from spikefleet.cli.run import main
from spikefleet.experiments.backends import make_backend
runner.make_backend = lambda b, w, a=None: make_backend(b, w, a, fn=unit_hooks.hooked_execute)
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_cancels_the_workers_exits_130_and_the_run_resumes(tiny_run_reference, tiny_run_file, tmp_path):
    out = hooks_out(tmp_path, hold="train/a/seed0")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(tiny_run_file), "--out", str(out), "--quiet"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # its own process group, like a shell job
    try:
        shake = handshake_path(out, "train/a/seed0")
        wait_for_file(shake, alive=lambda: driver.poll() is None)
        worker = int(shake.read_text())
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        stdout, stderr = driver.communicate()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 130, stderr
    assert stderr.rstrip().endswith("spikefleet run: interrupted"), stderr
    assert f"units recorded in {out}; run the same command again to resume" in stderr
    assert stdout == ""  # no summary table for an interrupted run
    assert not pid_alive(worker)  # the held worker was stopped, not left running
    assert (out / "run.lock").read_text() == ""  # the lock was released
    recorded = set(snapshot(out))
    assert "train/a/seed0" not in recorded
    resume_matches(tiny_run_reference, tiny_run_file, out, recorded)
