"""Experiment files, the result store, the runner and its backends.

The runs use a tiny XOR experiment (0.1 s trials, 8-unit BPTT, 16-neuron ADS, 3 chips x 8
trials, one seed) and a persistent XLA compilation cache shared by all runs of this module, so
only the first run compiles. Determinism is checked bit for bit: the stored per-chip metric
JSON of every eval unit and every array of every checkpoint.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikefleet.errors import ConfigError, SpikefleetError
from spikefleet.experiments.backends import make_backend
from spikefleet.experiments.runner import run_experiment
from spikefleet.experiments.spec import (ExperimentSpecError, default_experiment, load_experiment, parse_experiment,
                                         parse_experiment_text)
from spikefleet.experiments.store import (ExperimentMismatchError, LockError, ResultStore, RunLock, StoreError)
from spikefleet.experiments.units import Unit, build_units

TINY = """\
name = "tiny"
seeds = [0]

[task]
name = "xor"
duration = 0.1

[[methods]]
name = "teacher"
method = "teacher"
hidden = 4
steps = 3
evaluate = false

[[methods]]
name = "bptt"
method = "bptt"
hidden = 8
steps = 3

[[methods]]
name = "ads"
method = "ads"
n = 16
steps = 4
teacher = "teacher"

[fleet]
chips = 3
trials = 8
chunk = 2

[perturbations]
mismatch = [0.0, 0.1]
quant_bits = [4]
"""
TOTAL_UNITS = 3 + 2 * 3


def tiny_dict() -> dict:
    import tomllib

    return tomllib.loads(TINY)


# -------------------------------------------------------------------------------- spec
def test_default_experiment_is_the_documented_one():
    spec = default_experiment()
    assert [(d.name, d.method, d.evaluate) for d in spec.designs()] == [
        ("teacher", "teacher", False), ("bptt", "bptt", True), ("bptt-noise", "bptt", True), ("ads", "ads", True)]
    noise = spec.designs()[2]
    assert (noise.robust, noise.robust_profile, noise.robust_level) == ("noise", "uniform", 0.2)
    assert spec.designs()[3].steps == 2000
    assert (spec.fleet.chips, spec.fleet.trials, spec.seeds) == (100, 100, (0,))
    assert spec.perturbations.levels() == [("mismatch", 0.0), ("mismatch", 0.05), ("mismatch", 0.1),
                                           ("mismatch", 0.2), ("quant", 4.0)]
    units = build_units(spec)
    assert len(units) == 4 + 3 * 5
    ads = [u for u in units if u.design == "ads"]
    assert ads[0].deps == ("train/teacher/seed0",)
    assert ads[1].deps == ("train/ads/seed0", "train/teacher/seed0")
    ids = [u.unit_id for u in units]
    assert all(ids.index(d) < ids.index(u.unit_id) for u in units for d in u.deps)  # dependencies come first


def test_spec_round_trip_and_hash(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    spec = load_experiment(path)
    assert spec.source == str(path)
    again = parse_experiment(spec.to_dict())
    assert again.to_dict() == spec.to_dict() and again.hash() == spec.hash()
    moved = parse_experiment({**tiny_dict(), "output": "elsewhere"})
    assert moved.hash() == spec.hash()  # the output directory is not part of the experiment
    bigger = tiny_dict()
    bigger["fleet"]["chips"] = 4
    assert parse_experiment(bigger).hash() != spec.hash()
    tuned = tiny_dict()
    tuned["methods"][2].update(eta=1e-6, k0=3000, parallel=2)
    tuned_spec = parse_experiment(tuned)
    ads_design = [m for m in tuned_spec.designs() if m.name == "ads"][0]
    assert (ads_design.eta, ads_design.k0, ads_design.parallel) == (1e-6, 3000.0, 2)
    assert parse_experiment(tuned_spec.to_dict()).to_dict() == tuned_spec.to_dict()
    assert tuned_spec.hash() != spec.hash()
    # no teacher named: an implicit, train-only "teacher" design is added for ads/force
    d = tiny_dict()
    d["methods"] = d["methods"][1:]
    del d["methods"][1]["teacher"]
    implicit = parse_experiment(d)
    assert [(m.name, m.method, m.evaluate, m.steps) for m in implicit.designs()][0] == ("teacher", "teacher", False,
                                                                                      None)


def _set(path: str, value):
    def change(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d.setdefault(p, {})
        if value is KeyError:
            del d[last]
        else:
            d[last] = value
    return change


BAD = [
    (_set("nmae", "x"), "nmae: expected one of the keys"),
    (_set("name", KeyError), "name: expected a value, got <missing>"),
    (_set("name", "my experiment"), "name: expected a name"),
    (_set("task", "mnist"), "task: expected one of"),
    (_set("task", "frozen-noise"), "task: expected one of ['xor', 'wakephrase']"),
    (_set("task.durtion", 1.0), "task.durtion: expected one of the keys"),
    (_set("task.duration", -1.0), "task: expected valid XorConfig fields"),
    (_set("task.name", KeyError), "task.name: expected one of"),
    (_set("seeds", []), "seeds: expected a non-empty list"),
    (_set("seeds", [-1]), "seeds[0]: expected an integer in [0, 4294967295]"),
    (_set("seeds", [1, 1]), "seeds: expected distinct seeds"),
    (_set("methods", KeyError), "methods: expected a value"),
    (_set("methods", []), "methods: expected a non-empty array of tables"),
    (_set("methods.1.hiddn", 3), "methods[1].hiddn: expected one of the keys"),
    (_set("methods.1.method", "sgd"), "methods[1].method: expected one of"),
    (_set("methods.2.hidden", 3), "methods[2].hidden: expected an option of method 'ads'"),
    (_set("methods.1.steps", 0), "methods[1].steps: expected a positive integer"),
    (_set("methods.1.steps", 1.5), "methods[1].steps: expected a positive integer"),
    (_set("methods.1.robust", "mixed"), "methods[1].robust: expected one of"),
    (_set("methods.1.robust_level", 1.5), "methods[1].robust_level: expected a number in [0.0, 1.0]"),
    (_set("methods.1.robust_profile", "nope"), "methods[1].robust_profile: expected a built-in profile"),
    (lambda d: d["methods"][1].update(robust="noise", robust_chips=3), "methods[1].robust_chips: expected a divisor"),
    (_set("methods.2.name", "bptt"), "methods[2].name: expected a name not used by another design"),
    (_set("methods.2.teacher", "nobody"), "methods[2].teacher: expected the name of a design with method"),
    (_set("methods.2.teacher", "bptt"), "methods[2].teacher: expected the name of a design with method"),
    (_set("methods.2.no_fast", "yes"), "methods[2].no_fast: expected true or false"),
    (_set("methods.2.eta", 0.0), "methods[2].eta: expected a learning rate in (0, 1]"),
    (_set("methods.2.eta", 2.0), "methods[2].eta: expected a learning rate in (0, 1]"),
    (_set("methods.2.k0", -1.0), "methods[2].k0: expected a feedback gain >= 0"),
    (_set("methods.2.parallel", 0), "methods[2].parallel: expected a positive integer"),
    (lambda d: d["methods"][2].update(parallel=4, steps=10), "methods[2].steps: expected a multiple of parallel = 4"),
    (lambda d: (d["methods"][2].update(parallel=32), d["methods"][2].pop("steps", None)),
     "methods[2].parallel: expected a divisor of the default epoch of 500 trials = 500"),
    (_set("methods.1.eta", 1e-6), "methods[1].eta: expected an option of method 'bptt'"),
    (_set("methods.1.evaluate", 1), "methods[1].evaluate: expected true or false"),
    (lambda d: [m.update(evaluate=False) for m in d["methods"]], "methods: expected at least one design with"),
    (lambda d: (d["methods"][0].update(method="bptt"), d["methods"][2].pop("teacher")),
     "methods: expected no design named 'teacher'"),
    (_set("fleet", 3), "fleet: expected a table"),
    (_set("fleet.chip", 3), "fleet.chip: expected one of the keys"),
    (_set("fleet.chips", 0), "fleet.chips: expected a positive integer"),
    (_set("fleet.trials", "many"), "fleet.trials: expected a positive integer"),
    (_set("fleet.yield_threshold", 2), "fleet.yield_threshold: expected a number in [0.0, 1.0]"),
    (_set("perturbations.mismatch", [-0.1]), "perturbations.mismatch[0]: expected a level in [0, 1] (profile uniform: "
                                             "its relative sigmas at most 1), got -0.1"),
    (_set("perturbations.mismatch", [0.0, 2.0]), "perturbations.mismatch[1]: expected a level in [0, 1] (profile "
                                                 "uniform: its relative sigmas at most 1), got 2.0"),
    (_set("perturbations.mismatch", 0.1), "perturbations.mismatch: expected a list of numbers"),
    (_set("perturbations.mismatch", [0.1, 0.1]), "perturbations.mismatch: expected distinct levels"),
    (_set("perturbations.quant_bits", [4.5]), "perturbations.quant_bits[0]: expected an integer in [0, 32]"),
    (_set("perturbations.quant_bits", [33]), "perturbations.quant_bits[0]: expected an integer in [0, 32]"),
    (_set("perturbations.dead", [1.5]), "perturbations.dead[0]: expected a fraction in [0, 1), got 1.5"),
    (_set("perturbations.dead", [1.0]), "perturbations.dead[0]: expected a fraction in [0, 1), got 1.0"),
    (_set("perturbations.profile", "nope"), "perturbations.profile: expected a built-in profile"),
    (_set("perturbations.quant_matrices", ["w_bogus"]), "perturbations.quant_matrices: expected a non-empty list"),
    (_set("perturbations.dead_select", "worst"), "perturbations.dead_select: expected one of"),
    (_set("perturbations", {}), "perturbations: expected at least one level"),
    (_set("output", 3), "output: expected a string"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_every_validation_error_names_file_key_expected_got_and_fix(change, message):
    d = tiny_dict()
    change(d)
    with pytest.raises(ExperimentSpecError) as info:
        parse_experiment(d, "exp.toml")
    text = str(info.value)
    assert text.startswith("exp.toml: ") and message in text, text
    assert ", got " in text and "; " in text.split(", got ", 1)[1]  # what was got, then how to fix it
    assert isinstance(info.value, ConfigError)


def test_mismatch_levels_go_up_to_the_profile_max_level():
    """uniform: the level is the sigma, at most 1; dynapse2-frozen: sigma = level/3, so levels up to 3."""
    d = tiny_dict()
    d["perturbations"].update(profile="dynapse2-frozen", mismatch=[0.0, 3.0])
    assert parse_experiment(d, "exp.toml").perturbations.mismatch == (0.0, 3.0)
    d["perturbations"].update(mismatch=[3.5])
    with pytest.raises(ExperimentSpecError, match=r"perturbations\.mismatch\[0\]: expected a level in \[0, 3\] "
                                                  r"\(profile dynapse2-frozen: its relative sigmas at most 1\), got 3\.5"):
        parse_experiment(d, "exp.toml")


def test_file_level_errors(tmp_path):
    with pytest.raises(ExperimentSpecError, match="no such experiment file"):
        load_experiment(tmp_path / "missing.toml")
    with pytest.raises(ExperimentSpecError, match=r"bad\.toml: not valid TOML .*fix the syntax"):
        parse_experiment_text("name = \n", "bad.toml")


# ------------------------------------------------------------------------------- store
def _eval_unit(i=0, kind="eval"):
    return Unit(f"eval/bptt/seed0/mismatch/{i}", kind, "bptt", 0, "mismatch", float(i))


def test_store_records_each_unit_once_in_transactions(tmp_path):
    spec = parse_experiment(tiny_dict())
    store = ResultStore(tmp_path, spec)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    schema = store.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'units'").fetchone()[0]
    assert "UNIQUE (experiment, kind, design, seed, sweep, level)" in schema
    store.begin_run("local", 2)
    store.record_eval(_eval_unit(), {"accuracy": [0.5, 1.0]}, {"accuracy": {"median": 0.75}}, {}, 1.0)
    with pytest.raises(StoreError, match="already recorded"):
        store.record_eval(_eval_unit(), {"accuracy": [0.0]}, {}, {}, 1.0)
    with pytest.raises(StoreError, match="already recorded"):  # same key, different unit_id text
        store.record_eval(Unit("other-id", "eval", "bptt", 0, "mismatch", 0.0), {"accuracy": [0.0]}, {}, {}, 1.0)
    with pytest.raises(StoreError, match=r"CHECK constraint failed: kind IN \('train', 'eval'\)"):  # rolled back ...
        store.record_eval(_eval_unit(1, kind="bogus"), {}, {}, {}, 1.0)
    assert not store.conn.in_transaction
    store.record_eval(_eval_unit(2), {"accuracy": [0.25]}, {}, {}, 1.0)  # ... and the store stays usable
    assert sorted(store.done_ids()) == [_eval_unit().unit_id, _eval_unit(2).unit_id]
    assert store.units("eval")[0]["metrics"] == {"accuracy": [0.5, 1.0]}
    train = Unit("train/bptt/seed0", "train", "bptt", 0)
    path = store.record_train(train, b"checkpoint bytes", {"steps": 3}, 2.0)
    assert path.read_bytes() == b"checkpoint bytes" and store.checkpoint_path("bptt", 0) == path
    with pytest.raises(StoreError, match="already recorded"):
        store.record_train(train, b"other bytes", {}, 1.0)
    assert path.read_bytes() == b"checkpoint bytes"  # a refused record does not touch the checkpoint
    store.close()
    reopened = ResultStore(tmp_path, spec)  # the same experiment reopens (resume)
    assert len(reopened.done_ids()) == 3
    reopened.close()


def test_summary_pools_the_chips_of_all_seeds(tmp_path):
    from spikefleet.experiments.summary import summarize_store

    spec = parse_experiment({**tiny_dict(), "seeds": [0, 1]})
    store = ResultStore(tmp_path, spec)
    store.begin_run("local", 1)
    for seed, acc in ((0, [1.0, 0.5, 0.95]), (1, [0.9, 0.8, 1.0])):
        unit = Unit(f"eval/bptt/seed{seed}/mismatch/0.1", "eval", "bptt", seed, "mismatch", 0.1)
        store.record_eval(unit, {"accuracy": acc, "mse": [0.1] * 3, "rate_hz": [5.0] * 3}, {},
                          {"condition": "mismatch uniform 0.1"}, 1.0)
    (row,) = summarize_store(store, spec)
    pooled = np.array([1.0, 0.5, 0.95, 0.9, 0.8, 1.0])
    assert (row["design"], row["condition"], row["seeds"], row["chips"]) == ("bptt", "mismatch uniform 0.1", 2, 6)
    assert row["median acc"] == np.median(pooled) and row["yield>=0.9"] == 4 / 6
    assert row["IQR"] == np.percentile(pooled, 75) - np.percentile(pooled, 25) and row["worst"] == 0.5
    store.close()


def test_store_refuses_a_different_experiment(tmp_path):
    ResultStore(tmp_path, parse_experiment(tiny_dict())).close()
    ResultStore(tmp_path, parse_experiment({**tiny_dict(), "output": "x"})).close()  # output is not compared
    other = tiny_dict()
    other["fleet"]["chips"] = 5
    with pytest.raises(ExperimentMismatchError, match=r"holds results of experiment 'tiny'.*differences in: fleet"):
        ResultStore(tmp_path, parse_experiment(other))


#: holds the lock of the directory argv[1] until its stdin is closed (or it is killed): no sleeping
_HOLD = "import sys; from spikefleet.experiments.store import RunLock; RunLock(sys.argv[1]).acquire(); " \
        "print('locked', flush=True); sys.stdin.read()"


def test_lock_refuses_a_second_run_and_takes_over_a_stale_one(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # blocks until the holder has the lock
        with pytest.raises(LockError, match=rf"another run \(PID {holder.pid} on .*\) is using this output"):
            run_experiment(parse_experiment(tiny_dict()), tmp_path, progress=False)
        with pytest.raises(LockError, match=f"PID {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.communicate()
    assert (tmp_path / "run.lock").read_text().split()[0] == str(holder.pid)  # left behind by a dead process
    lock = RunLock(tmp_path).acquire()
    assert lock.taken_over == holder.pid
    assert (tmp_path / "run.lock").read_text().split()[0] == str(os.getpid())
    lock.release()
    assert not list(tmp_path.glob("*.sqlite"))  # the refused run touched nothing


def test_backend_arguments_are_checked(monkeypatch):
    with pytest.raises(ConfigError, match="backend: expected one of"):
        make_backend("gpu", 2)
    with pytest.raises(ConfigError, match="workers: expected a positive integer"):
        make_backend("local", 0)
    with pytest.raises(ConfigError, match="address: applies to --backend ray only"):
        make_backend("local", 1, "127.0.0.1:6379")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(SpikefleetError, match=r"pip install 'spikefleet\[ray\]'"):
        make_backend("ray", 1)


# ------------------------------------------------------------------------------ runs
@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """One persistent XLA compilation cache for every worker of every run in this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax-cache")))
        mp.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        yield


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, compile_cache, tiny_file):
    out = tmp_path_factory.mktemp("reference")
    result = run_experiment(tiny_file, out, workers=2, progress=False)
    return out, result


def snapshot(out: Path) -> dict:
    """Every eval unit's stored per-chip metrics (exact JSON text) and every checkpoint array."""
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute("SELECT unit_id, kind, metrics_json, checkpoint FROM units").fetchall()
    snap = {}
    for unit_id, kind, metrics, ckpt in rows:
        if kind == "eval":
            snap[unit_id] = metrics
        else:
            with np.load(out / ckpt) as archive:
                snap[unit_id] = {k: archive[k].tobytes() for k in archive.files if k != "__meta__"}
    return snap


def test_reference_run_records_every_unit_and_summarises(reference):
    out, result = reference
    assert (result.units_total, result.units_run, result.units_skipped) == (TOTAL_UNITS, TOTAL_UNITS, 0)
    assert len(snapshot(out)) == TOTAL_UNITS
    rows = {(r["design"], r["sweep"], r["level"]): r for r in result.rows}
    assert set(rows) == {(d, s, lv) for d in ("bptt", "ads") for s, lv in (("mismatch", 0.0), ("mismatch", 0.1),
                                                                           ("quant", 4.0))}
    assert all(r["chips"] == 3 and r["seeds"] == 1 for r in result.rows)
    assert rows[("ads", "quant", 4.0)]["agreement"] is not None and rows[("bptt", "quant", 4.0)]["agreement"] is None
    assert "median acc" in result.table and "yield>=0.9" in result.table
    assert (out / "summary.txt").read_text().strip() == result.table
    again = run_experiment(result.spec, out, workers=2, progress=False)  # everything recorded: nothing to do
    assert (again.units_run, again.units_skipped, again.rows) == (0, TOTAL_UNITS, result.rows)


def test_one_and_two_workers_give_identical_results(reference, tmp_path):
    out, result = reference
    one = run_experiment(result.spec, tmp_path, workers=1, progress=False)
    assert one.rows == result.rows
    assert snapshot(tmp_path) == snapshot(out)


def _recorded(out: Path) -> int:
    with sqlite3.connect(out / "results.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM units").fetchone()[0]


#: runs the experiment argv[1] into argv[2]; after the first unit is recorded the driver prints
#: "recorded <worker PIDs>" and blocks on stdin (the test kills it there): a handshake, no polling
_KILLED_RUN = """
import multiprocessing, sys
from spikefleet.experiments import runner

record = runner._record

def record_then_hold(store, unit, result):
    message = record(store, unit, result)
    print("recorded", *[p.pid for p in multiprocessing.active_children()], flush=True)
    sys.stdin.read()
    return message

runner._record = record_then_hold
runner.run_experiment(sys.argv[1], sys.argv[2], workers=2, progress=False)
"""


def _wait_exited(pidfds: list[int]) -> None:
    """Block until every process behind ``pidfds`` has exited (a pidfd turns readable at exit)."""
    pending = list(pidfds)
    while pending:
        ready, _, _ = select.select(pending, [], [], 600)  # a hang guard only: the workers exit within ~1 s
        assert ready, "workers of the killed run still running after 10 minutes"
        pending = [fd for fd in pending if fd not in ready]


def test_sigkill_midway_then_resume_finishes_every_unit_once_identically(reference, tiny_file, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(tiny_file), str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    pidfds = []
    try:
        for line in proc.stdout:  # blocks until the driver has recorded one unit (or ended)
            if line.startswith("recorded"):
                break
        else:
            pytest.fail(f"the run ended (exit status {proc.wait()}) before it recorded a unit")
        workers = [int(w) for w in line.split()[1:]]
        assert len(workers) == 2
        for w in workers:  # taken while the driver is blocked, so the PIDs are still the workers'
            pidfds.append(os.pidfd_open(w))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    try:
        assert proc.returncode == -signal.SIGKILL
        _wait_exited(pidfds)  # orphaned workers notice the dead driver and exit by themselves
    finally:
        for fd in pidfds:
            os.close(fd)
    recorded = _recorded(out)
    assert recorded == 1  # the driver was killed right after recording its first unit
    result = run_experiment(tiny_file, out, workers=2, progress=False)
    assert (result.units_skipped, result.units_run) == (recorded, TOTAL_UNITS - recorded)
    with sqlite3.connect(out / "results.sqlite") as conn:
        ids = [r[0] for r in conn.execute("SELECT unit_id FROM units")]
        runs = dict(conn.execute("SELECT run_id, COUNT(*) FROM units GROUP BY run_id").fetchall())
    assert len(ids) == len(set(ids)) == TOTAL_UNITS
    assert runs == {1: recorded, 2: TOTAL_UNITS - recorded}  # nothing of the killed run was redone
    assert snapshot(out) == snapshot(reference[0])  # bit-identical to the uninterrupted run
    assert result.rows == reference[1].rows


def test_a_stale_lock_of_a_dead_run_is_taken_over(reference, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(f"{dead.pid} somehost 2020-01-01T00:00:00+00:00\n")
    result = run_experiment(reference[1].spec, out, progress=False)
    assert result.units_skipped == TOTAL_UNITS and result.rows == reference[1].rows
    assert (out / "run.lock").read_text() == ""  # released


def test_command_line_entry_point(reference, tiny_file, tmp_path, capsys):
    from spikefleet.cli.run import main

    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    assert main([str(tiny_file), "--out", str(out), "--quiet"]) == 0  # all recorded: prints the table only
    assert capsys.readouterr().out.strip() == reference[1].table
    assert main([str(tiny_file), "--out", str(out), "--address", "127.0.0.1:6379", "--quiet"]) == 2
    assert "--address applies to --backend ray only" in capsys.readouterr().err
    assert main([str(tmp_path / "nope.toml"), "--quiet"]) == 2
    assert "no such experiment file" in capsys.readouterr().err
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep")
    assert main([str(tiny_file), "--out", str(precious), "--quiet"]) == 2  # not an experiment directory
    assert "is not empty and holds no experiment results" in capsys.readouterr().err
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]


def test_report_of_an_output_directory(reference, tmp_path, capsys):
    from spikefleet.cli.main import main as cli_main
    from spikefleet.experiments.store import StoreError, read_stored_spec

    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    assert read_stored_spec(out).hash() == reference[1].spec.hash()
    with sqlite3.connect(out / "results.sqlite") as conn:  # as if the run had been interrupted
        conn.execute("DELETE FROM units WHERE unit_id = 'eval/ads/seed0/quant/4.0'")
    assert cli_main(["report", str(out)]) == 0
    assert f"report written to {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    for design in ("bptt", "ads"):
        assert f"<h3>{design}</h3>" in page  # rasters/traces of both evaluated designs
    assert "Missing units (1 of 9)" in page and "eval/ads/seed0/quant/4.0" in page
    assert page.count("data:image/png;base64,") >= 6
    assert "Cost of every unit" in page and "train/teacher/seed0" in page
    target = tmp_path / "elsewhere.html"
    target.write_text("keep")
    assert cli_main(["report", str(out), "--out", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err and target.read_text() == "keep"
    assert cli_main(["report", str(out), "--out", str(target), "--overwrite"]) == 0
    assert target.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(StoreError, match="no experiment results here"):
        read_stored_spec(tmp_path)
    assert cli_main(["report", str(tmp_path / "nothing")]) == 2
    assert "no experiment results here" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_experiment_files_parse_and_build_their_ads_configs(path):
    from spikefleet.train.presets import ads_config

    spec = load_experiment(path)
    task = spec.make_task()
    for design in spec.designs():
        if design.method == "ads" and task.name == "wakephrase":
            cfg = ads_config(n=design.n, samples=design.steps or task.n_train, fast=not design.no_fast,
                             eta=design.eta, k0=design.k0, parallel=design.parallel,
                             **({"epochs": design.epochs} if design.epochs else {}))
            assert cfg.trials_per_epoch % cfg.parallel == 0


@pytest.mark.parametrize("options, expected", [("epochs = 3", {"epochs": 3}),
                                               ("steps = 40\nepochs = 2", {"epochs": 2, "trials_per_epoch": 40}),
                                               ("steps = 40", {"epochs": 1, "trials_per_epoch": 40}),
                                               ("", {})])
def test_xor_ads_design_passes_epochs_to_its_recipe_with_or_without_steps(monkeypatch, options, expected):
    """``epochs`` without ``steps`` used to be dropped silently (the recipe's 20 epochs ran)."""
    import spikefleet.train.design as api
    from spikefleet.experiments import units

    text = TINY.replace('n = 16\nsteps = 4\nteacher = "teacher"', f'n = 16\nteacher = "teacher"\n{options}')
    spec = parse_experiment_text(text)
    design = next(d for d in spec.designs() if d.name == "ads")
    seen = {}

    def fake_train(method, task, seed, *, teacher=None, progress=True, **overrides):
        seen.update(overrides)
        return api.TrainOutput(model=None, info={})

    monkeypatch.setattr(api, "train_design", fake_train)
    monkeypatch.setattr(api, "test_design", lambda *a, **k: {})
    monkeypatch.setattr(units, "_from_bytes", lambda *a, **k: None)
    units._train(spec, design, 0, b"teacher")
    assert {k: seen[k] for k in ("epochs", "trials_per_epoch") if k in seen} == expected
    # the scheduler's cost model counts the same trials (recipe: 20 x 500 when neither is set)
    trials = {"epochs = 3": 1500, "steps = 40\nepochs = 2": 80, "steps = 40": 40, "": 10000}[options]
    unit = next(u for u in build_units(spec) if u.kind == "train" and u.design == "ads")
    assert units.estimated_cost(spec, unit) == pytest.approx(35.0 * trials / 1000 * 1.0 * (16 / 320) ** 2)
