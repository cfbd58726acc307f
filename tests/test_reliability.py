"""Reliability (issue 10): bad input, numerical faults, file-system faults, determinism, hardware limits.

* loaders: one regression case per defect the fuzzer (``test_fuzz_loaders.py``) found, each asserting
  the error type and that the message names the file (and the field or limit);
* numerical faults: NaN/inf in the loss, a gradient, a parameter or a validation metric stops
  training with a message naming the step and the quantity, and nothing is written; the DYNAP-SE2
  time-step limit (:mod:`spikefleet.neurons.dynapse2_limits`) is where the model really breaks;
* files: atomic writes under ENOSPC / read-only directories (simulated with monkeypatch: tests may
  run as root, where ``chmod`` does not block writes), one-line CLI errors naming the path, the run
  lock through the CLI;
* determinism: bit-identical fleet metrics for any chunk size, bit-identical repeated training;
* hardware limits: every violation ``deploy`` can meet is reported with its hint and nothing is
  exported.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet import checkpoint
from spikefleet.cli.main import main
from spikefleet.errors import CheckpointError, ConfigError, OutputError, SpikefleetError
from spikefleet.io import atomic_write_bytes, check_writable
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.registry import MODEL_KINDS
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network, init_dynapse2
from spikefleet.neurons.dynapse2 import DynapSE2


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def small_rate_net(seed=0):
    return init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(seed))


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# =========================================================================== loaders (regressions)
@pytest.mark.parametrize("mutation, message", [
    (lambda m, a: m.update(kind=["rate"]), "unknown model kind"),  # was: TypeError (unhashable)
    (lambda m, a: m.update(format_version=True), "format version True"),  # True == 1 was accepted
    (lambda m, a: m.update(info=[1, 2]), "invalid metadata 'info'"),  # was: accepted, CLI crashed on .get
    (lambda m, a: m.update(leaves="w_in"), "invalid metadata 'leaves'"),
    (lambda m, a: m["config"].update(n_hidden=10**6),  # was: a 4 TB skeleton
     "x 1000000 matrix does not fit the 32 stored parameter values"),
    (lambda m, a: m["config"].update(unknown_field=1), "invalid model config"),
    (lambda m, a: a.update({"w_in": np.full((1, 4), np.nan, np.float32)}), "parameter w_in holds 4 NaN/inf"),
])
def test_checkpoint_metadata_and_values_are_validated(tmp_path, mutation, message, rewrite_checkpoint, monkeypatch):
    path = rewrite_checkpoint(checkpoint.save(tmp_path / "r.sfc", small_rate_net()), mutation)
    kind = MODEL_KINDS["rate"]

    def skeleton(config):  # the size guard refuses before load() builds a 4 TB skeleton
        if config.n_hidden >= 10**6:
            pytest.fail(f"load() builds a skeleton of {config.n_hidden} hidden neurons")
        return kind.skeleton(config)

    monkeypatch.setitem(MODEL_KINDS, "rate", dataclasses.replace(kind, skeleton=skeleton))
    with pytest.raises(CheckpointError, match=message) as e:
        checkpoint.load(path)
    assert str(path) in str(e.value)


def test_checkpoint_plain_npy_and_invalid_dynapse2_values(tmp_path, rewrite_checkpoint):
    npy = tmp_path / "array.sfc"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))  # was: TypeError, an ndarray is no context manager
    with pytest.raises(CheckpointError, match=r"array\.sfc: not a zip archive \(a plain \.npy array\)"):
        checkpoint.load(npy)
    net = init_dynapse2(DynapSE2Config(2, 2), jax.random.PRNGKey(0))
    path = rewrite_checkpoint(checkpoint.save(tmp_path / "d.sfc", net),
                              lambda m, a: a.update({"neurons.Itau_mem": np.array([-1e-12, 5e-12], np.float32)}))
    with pytest.raises(CheckpointError, match=r"d\.sfc: invalid parameter values \(DynapSE2.Itau_mem: expected "
                                              r"finite values > 0"):
        checkpoint.load(path)  # was: loaded silently (values bypass the constructor's checks)
    with pytest.raises(CheckpointError, match="a directory"):
        checkpoint.load(tmp_path)


LONG_INT = "9" * 5000  # beyond Python's 4300-digit int conversion limit: ValueError, not a parse error


@pytest.mark.parametrize("suffix, text, message", [
    (".json", '{"sigmas": {"tau_mem": 1%s}}' % ("0" * 400), "sigma of 'tau_mem': expected a number"),  # OverflowError
    (".json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),  # was: RecursionError
    (".json", '{"sigmas": {"tau_mem": %s}}' % LONG_INT, "unreadable value"),  # was: ValueError
    (".toml", "[sigmas]\ntau_mem = " + LONG_INT, "unreadable value"),
    (".toml", "x = " + "[" * 600 + "]" * 600, "nested too deeply"),
    (".json", '{"sigmas": {"tau_mem": 0.1}, "name": {"a": 1}}', "name: expected a string"),  # was: accepted
])
def test_profile_loader_regressions(tmp_path, suffix, text, message):
    from spikefleet.fleet.mismatch import load_profile

    path = tmp_path / f"p{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_profile(path)
    assert f"profile file {path}" in str(e.value)


def test_calibration_loader_regressions(tmp_path):
    from spikefleet.hardware.dynapse2.biases import parametric_generator
    from spikefleet.hardware.dynapse2.calibration import load_calibration_table, save_calibration_table

    table = save_calibration_table(parametric_generator("P3"), tmp_path / "t.json")
    doc = json.loads(table.read_text())
    doc["entries"][5]["current"] = 10**400  # float() of it: OverflowError
    table.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"t\.json, entries\[5\]: current: expected a finite current > 0"):
        load_calibration_table(table)
    doc["entries"][5]["current"] = 1e-12
    doc["version"] = True  # True == 1 was accepted
    table.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"t\.json: version: expected 1, got True"):
        load_calibration_table(table)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(ConfigError, match=r"deep\.json: expected valid JSON, got arrays/objects nested too deeply"):
        load_calibration_table(deep)
    csv = save_calibration_table(parametric_generator("P3"), tmp_path / "t.csv")
    lines = csv.read_text().splitlines()
    lines[10] = "N,0," + "1" * 200_000 + ",1e-12"  # longer than the csv module's field limit: csv.Error
    csv.write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=r"t\.csv, line 11: expected comma-separated values"):
        load_calibration_table(csv)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from spikefleet.hardware.dynapse2.config import deploy

    net = init_dynapse2(DynapSE2Config(3, 2), jax.random.PRNGKey(0))
    path = deploy(net, key=0).save(tmp_path_factory.mktemp("cfg") / "config.json")
    return path, json.loads(path.read_text())


def _edited(doc, edit):
    doc = json.loads(json.dumps(doc))
    edit(doc)
    return doc


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["spikefleet"]["metadata"].update(i_scale="1e-8"), r"metadata\.i_scale: expected a positive number"),
    (lambda d: d["spikefleet"]["metadata"].update(layout=[1]), r"metadata\.layout: expected an object"),
    (lambda d: d["spikefleet"]["metadata"]["spec"].update(cores_per_chip=2), r"metadata\.spec: expected the DYNAP"),
    (lambda d: d["spikefleet"]["metadata"]["spec"].update(chip_positions=7), r"metadata\.spec: expected a Hardware"),
    (lambda d: d["spikefleet"]["metadata"]["bias_translation"]["0"]["requested"].update(Idc="x"),
     r"bias_translation\.0\.requested\.Idc: expected a current"),
    (lambda d: d["spikefleet"]["metadata"]["quantization"].update(loss=None), r"quantization\.loss: expected a list"),
    (lambda d: d["value0"]["chips"][0]["cores"][0]["parameters"].pop(0), r"chip 0 core 0 parameters: expected all "
                                                                           r"23 simulated biases"),  # was: KeyError
])
def test_configuration_metadata_is_validated_and_errors_name_the_file(tmp_path, deployed, edit, message, capsys):
    _, doc = deployed
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(_edited(doc, edit)))
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert err.startswith(f"spikefleet inspect: error: {path}: ") and re.search(message, err), err


def _nested(depth: int):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["value0"]["chips"][0]["cores"][0]["neurons"][0]["synapses"][0].update(weight=_nested(900)),
     r"synapses\[0\]\.weight: expected a list of 4 booleans, got \(\[\[\[\["),  # was: RecursionError (cache key)
    (lambda d: d["spikefleet"]["metadata"].update(notes=_nested(900)),
     r"metadata: expected objects and arrays nested at most 32 levels deep"),  # was: RecursionError
])
def test_deeply_nested_configuration_values(tmp_path, deployed, edit, message):
    from spikefleet.hardware.dynapse2.config import HardwareConfig

    _, doc = deployed
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(_edited(doc, edit)))
    with pytest.raises(ConfigError, match=message) as e:
        HardwareConfig.load(path)
    assert str(e.value).startswith(f"{path}: ")


def test_configuration_without_optional_metadata_is_inspected_with_defaults(tmp_path, deployed, capsys):
    _, doc = deployed  # was: TypeError formatting i_scale = None
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(_edited(doc, lambda d: d["spikefleet"].update(metadata={}))))
    code, out, err = run_cli(capsys, "inspect", path)
    assert code == 0, err
    assert "I_scale 1e-08 A, dt 0.001 s" in out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from spikefleet.hardware.dynapse2.config import Dynapse2Configuration, HardwareConfig
        from spikefleet.hardware.dynapse2.reverse import network_from_config

        net = network_from_config(HardwareConfig.load(path))
    assert net.config.dt == 1e-3 and float(net.neurons.I_scale) == pytest.approx(1e-8)
    with pytest.raises(ConfigError, match=rf"^{path}: expected valid JSON"):
        Dynapse2Configuration.from_json("{", source=str(path))


def test_wav_with_absurd_rate_and_undecodable_split_list(tmp_path, monkeypatch):
    from scipy.io import wavfile

    from spikefleet.tasks.wakephrase import wav
    from spikefleet.tasks.wakephrase.wav import WavFolderConfig, load, read_wav

    clip = tmp_path / "clip.wav"
    wavfile.write(clip, 16000, np.zeros(100, np.int16))
    data = bytearray(clip.read_bytes())
    rate = 2**31 - 1  # prime: resample_poly(x, 16000, rate) would need a ~4e10-tap filter (was: killed, OOM)
    data[24:28] = rate.to_bytes(4, "little")  # a damaged header
    data[28:32] = (2 * rate).to_bytes(4, "little")  # byte rate = rate x block align, as scipy checks
    clip.write_bytes(bytes(data))
    with monkeypatch.context() as m:  # the rate is refused before any resampling is attempted
        m.setattr(wav, "resample_poly", lambda *a, **k: pytest.fail("resampled a clip with an absurd rate"))
        with pytest.raises(ConfigError, match=r"clip\.wav: expected a non-empty clip .* at 1000-384000 Hz, got 100 "
                                              r"samples at 2147483647 Hz"):
            read_wav(clip)
    for c in ("positive", "negative"):
        (tmp_path / "f" / c).mkdir(parents=True)
        wavfile.write(tmp_path / "f" / c / "a.wav", 16000, np.ones(1600, np.float32) * 0.1)
    (tmp_path / "f" / "validation_list.txt").write_bytes(b"positive/\xff\xfe.wav\n")  # was: UnicodeDecodeError
    with pytest.raises(ConfigError, match=r"validation_list\.txt: expected UTF-8 text"):
        load(WavFolderConfig(root=str(tmp_path / "f")), "train", n=2)


def test_result_database_regressions(tmp_path):
    import sqlite3

    from spikefleet.experiments.spec import default_experiment
    from spikefleet.experiments.store import ResultStore, StoreError, read_stored_spec

    odd = tmp_path / "run#1?x"  # was: f"file:{path}?mode=ro" cut the path at '#': opened (created!) "run"
    ResultStore(odd, default_experiment()).close()
    assert read_stored_spec(odd).name == "xor-default"
    assert files_in(tmp_path) == ["run#1?x"]  # no stray database file next to it
    with sqlite3.connect(odd / "results.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '{not json' WHERE key = 'spec_json'")
    with pytest.raises(StoreError, match=r"results\.sqlite: stored spec_json: expected valid JSON"):
        read_stored_spec(odd)  # was: json.JSONDecodeError
    db = odd / "results.sqlite"
    data = bytearray(db.read_bytes())  # a flipped byte in the stored schema text: not UTF-8 any more
    data[data.index(b"pid INTEGER NOT NULL") + len(b"pid INTEGER NOT ")] = 0xCE
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"results\.sqlite: not a usable result database \(UnicodeDecodeError"):
        read_stored_spec(odd)  # was: UnicodeDecodeError (found by the fuzzer)


def test_experiment_file_regressions(tmp_path):
    from spikefleet.experiments.spec import ExperimentSpecError, load_experiment

    for text, message in (("name = " + LONG_INT, "unreadable value"), ("a = " + "[" * 600 + "]" * 600, "too deeply")):
        path = tmp_path / "e.toml"
        path.write_text(text)
        with pytest.raises(ExperimentSpecError, match=rf"^{path}: not valid TOML.*{message}"):
            load_experiment(path)  # was: ValueError / RecursionError
    with pytest.raises(ExperimentSpecError, match="expected a experiment file, got a directory|got a directory"):
        load_experiment(tmp_path)


# ==================================================================================== numerical
TASK_CACHE = {}


def xor_task():
    from spikefleet.tasks import get_task
    from spikefleet.tasks.xor import XorConfig

    if "xor" not in TASK_CACHE:
        TASK_CACHE["xor"] = get_task("xor", config=XorConfig(duration=0.1))
    return TASK_CACHE["xor"]


def _fit(loss_fn, *, steps=4, lr=1e-3, validate=None, batches=None):
    from spikefleet.train import gradient as recipes
    from spikefleet.train.loop import FitConfig, fit

    task = xor_task()
    model = recipes._teacher_model(task, jax.random.PRNGKey(0), 4)
    b = task.generate(4, 1)
    x, y = jnp.asarray(b.inputs), jnp.asarray(b.targets)
    batches = batches or (lambda step: (x, y))
    validate = validate or (lambda m: {"accuracy": 0.5, "loss": 1.0})
    return fit(model, loss_fn, batches, validate, FitConfig(steps=steps, eval_every=1, learning_rate=lr),
               progress=False, desc="test")


def test_nan_in_the_inputs_at_step_k_names_the_loss_and_the_step():
    from spikefleet.train import gradient as recipes
    from spikefleet.train.loop import TrainingDiverged

    b = xor_task().generate(4, 1)
    x, y = np.asarray(b.inputs), jnp.asarray(b.targets)
    bad = x.copy()
    bad[0, 5, 0] = np.nan  # a NaN reaches the states and the loss at step 3 only

    def batches(step):
        return jnp.asarray(bad if step == 3 else x), y

    with pytest.raises(TrainingDiverged, match=r"test: the loss became non-finite at step 3 \(loss = nan\)") as e:
        _fit(recipes._teacher_loss, batches=batches)
    assert [h["step"] for h in e.value.result.history] == [0, 1, 2]  # validated before the failure


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # lr = 1e39 in float32
def test_huge_learning_rate_names_the_parameter_leaf():
    from spikefleet.train import gradient as recipes
    from spikefleet.train.loop import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"parameter (w_in|w_rec|w_out|units\.tau|units\.bias) \(after the "
                                               r"optimizer update\) became non-finite at step 1"):
        _fit(recipes._teacher_loss, lr=1e39)  # Adam's first update is ±lr: inf in float32


def test_non_finite_gradient_with_finite_loss_names_the_gradient():
    from spikefleet.train.loop import TrainingDiverged

    def loss(m, x, y, key):  # d sqrt(u)/du at u = 0 is inf; the loss itself is 0
        return jnp.sum(jnp.sqrt(jnp.abs(m.w_out) * 0.0)), {}

    with pytest.raises(TrainingDiverged, match=r"the gradient of parameter w_out became non-finite at step 1"):
        _fit(loss)


def test_non_finite_validation_metric_stops_training():
    from spikefleet.train import gradient as recipes
    from spikefleet.train.loop import TrainingDiverged

    calls = []

    def validate(m):
        calls.append(1)
        return {"accuracy": 0.5, "loss": float("nan") if len(calls) == 3 else 1.0}

    with pytest.raises(TrainingDiverged, match=r"the validation metric loss became non-finite at step 2"):
        _fit(recipes._teacher_loss, validate=validate)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # lr = 1e39 in float32
def test_dynapse2_training_divergence_names_weight_run_and_epoch():
    from spikefleet.tasks import get_task
    from spikefleet.train.loop import TrainingDiverged
    from spikefleet.train.dynapse2 import DynapSE2TrainConfig, train_dynapse2_runs

    config = DynapSE2TrainConfig(epochs=3, chunk=3, learning_rate=1e39)
    with pytest.raises(TrainingDiverged, match=r"dynapse2 training: weight w_in of run 0 \(seed 4, weight noise 0\) "
                                               r"became non-finite at epoch 1"):
        train_dynapse2_runs(get_task("frozen-noise"), config, [4], progress=False)


def test_checkpoint_save_refuses_nan_and_keeps_the_last_good_file(tmp_path):
    good = small_rate_net()
    path = checkpoint.save(tmp_path / "m.sfc", good)
    before = path.read_bytes()
    bad = eqx.tree_at(lambda m: m.w_out, good, good.w_out.at[0, 0].set(jnp.inf))
    with pytest.raises(CheckpointError, match=r"m\.sfc: not saved: parameter w_out holds 1 NaN/inf value"):
        checkpoint.save(path, bad, overwrite=True)
    assert path.read_bytes() == before and files_in(tmp_path) == ["m.sfc"]


@pytest.fixture()
def nan_at_training_step_2(monkeypatch):
    """XOR training batches of step 2 carry a NaN (the CLI trains with seed 0)."""
    from spikefleet.seeds import TRAIN, seed_stream
    from spikefleet.tasks.registry import XorTask

    original = XorTask.generate
    poisoned_seed = seed_stream(0, TRAIN, 2)

    def generate(self, n, seed):
        batch = original(self, n, seed)
        if seed == poisoned_seed:
            inputs = np.array(batch.inputs)
            inputs[:, 3, :] = np.nan
            batch = dataclasses.replace(batch, inputs=inputs)
        return batch

    monkeypatch.setattr(XorTask, "generate", generate)


def test_cli_training_divergence_keeps_the_existing_checkpoint(tmp_path, capsys, nan_at_training_step_2):
    out = tmp_path / "teacher.sfc"
    checkpoint.save(out, small_rate_net(1), {"note": "last good"})
    before = out.read_bytes()
    code, stdout, err = run_cli(capsys, "train", "--task", "xor", "--method", "teacher", "--seed", 0, "--steps", 3,
                                "--test-trials", 4, "--out", out, "--overwrite", "--quiet")
    assert code == 2 and "saved" not in stdout
    assert len(err.strip().splitlines()) == 1
    assert "xor/teacher seed 0: the loss became non-finite at step 2" in err and "nothing was saved" in err
    assert out.read_bytes() == before and files_in(tmp_path) == ["teacher.sfc"]  # intact, no temp files


# ====================================================================== DYNAP-SE2 model limits
def _membrane_decay(tau_mem, dt, steps=3, i0=2e-10):
    from spikefleet.neurons.dynapse2 import evolve

    u, c = 0.025 / 0.705, 3e-12
    itau = u * c / tau_mem
    n = DynapSE2.create(1, dt=dt, Itau_mem=itau, Igain_mem=4 * itau)
    _, rec = evolve(n, jnp.zeros((steps, 1)), state=n.init_state()._replace(i_mem=jnp.full(1, i0, jnp.float32)))
    return np.asarray(rec["imem"][:, 0]), n


@pytest.mark.parametrize("ratio, clamped", [(0.97, False), (1.07, True)])
def test_dt_limit_is_where_the_membrane_really_breaks(ratio, clamped):
    """Forward Euler beyond dt_max: the membrane overshoots and is clamped to Io in the first step, while
    the resolved dynamics (dt/1000) decay smoothly; below dt_max it is not."""
    from spikefleet.neurons.dynapse2_limits import membrane_dt_limit

    tau = 2e-3
    _, probe = _membrane_decay(tau, 1e-3)
    dt = ratio * float(membrane_dt_limit(probe)[0])
    coarse, _ = _membrane_decay(tau, dt)
    fine, _ = _membrane_decay(tau, dt / 1000, steps=1000)
    assert fine[-1] > 10 * 5e-13  # the true membrane is far above the floor after one dt
    assert (coarse[0] == np.float32(5e-13)) == clamped


def test_network_constructor_rejects_dt_beyond_the_limit_and_warns_near_it():
    from spikefleet.neurons.dynapse2_limits import DynamicsWarning

    with pytest.raises(ConfigError, match=r"DynapSE2Network: dt = 0.02 s exceeds the forward-Euler stability limit "
                                          r"of the membrane of neuron 0 .* dt_max = .* = 0.01671 s"):
        init_dynapse2(DynapSE2Config(3, 2, dt=0.02), jax.random.PRNGKey(0))
    with pytest.warns(DynamicsWarning, match=r"above half the membrane's forward-Euler limit 0.01671 s"):
        init_dynapse2(DynapSE2Config(3, 2, dt=0.009), jax.random.PRNGKey(0))
    with pytest.warns(DynamicsWarning, match=r"tau_syn = .* < dt"):
        init_dynapse2(DynapSE2Config(3, 2, dt=0.002), jax.random.PRNGKey(0),
                      neurons=DynapSE2.create(2, dt=0.002, Itau_syn=1e-9))  # tau_syn = 0.87 ms
    with pytest.warns(DynamicsWarning, match=r"Ispkthr = .* <= Io"):
        init_dynapse2(DynapSE2Config(3, 2), jax.random.PRNGKey(0), neurons=DynapSE2.create(2, Ispkthr=1e-13))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DynamicsWarning)
        init_dynapse2(DynapSE2Config(3, 2), jax.random.PRNGKey(0))  # the defaults are well inside the limits
    with pytest.raises(ConfigError, match=r"DynapSE2.Itau_mem: expected finite values > 0"):
        DynapSE2.create(2, Itau_mem=-1e-12)  # negative currents: rejected by the neuron model itself


# =================================================================================== file faults
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_during_an_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    target.write_text("old")
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(OutputError, match=rf"cannot write {target}: No space left on device; any earlier version of "
                                          r"the file is unchanged .* free some disk space") as e:
        atomic_write_bytes(target, b"new")
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC and e.value.filename == str(target)
    assert target.read_text() == "old" and files_in(tmp_path) == ["result.json"]


def _read_only(monkeypatch, directory: Path):
    """Make ``directory`` unwritable: chmod 0o555 for ordinary users; as root (chmod does not stop root) a
    monkeypatched ``tempfile.mkstemp``/``os.open`` that refuses to create files there."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return
    real_mkstemp, real_open = tempfile.mkstemp, os.open

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == directory.resolve():
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).resolve().parent == directory.resolve() and not Path(path).exists():
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "open", os_open)


@pytest.fixture()
def read_only_dir(tmp_path, monkeypatch):
    d = tmp_path / "ro"
    d.mkdir()
    (d / "earlier.json").write_text("{}")
    _read_only(monkeypatch, d)
    yield d
    d.chmod(0o755)


def test_read_only_directory_gives_a_clean_error_and_leaves_files_intact(read_only_dir):
    with pytest.raises(OutputError, match=rf"cannot write {read_only_dir / 'new.json'}: Permission denied"):
        atomic_write_bytes(read_only_dir / "new.json", b"{}")
    with pytest.raises(OutputError, match="Permission denied"):
        check_writable(read_only_dir / "x.sfc")
    assert files_in(read_only_dir) == ["earlier.json"] and (read_only_dir / "earlier.json").read_text() == "{}"


def test_cli_checks_the_output_location_before_training(read_only_dir, capsys, monkeypatch):
    from spikefleet.train import design as api

    monkeypatch.setattr(api, "train_and_test", lambda *a, **k: pytest.fail("trained before checking --out"))
    out = read_only_dir / "m.sfc"
    code, stdout, err = run_cli(capsys, "train", "--task", "xor", "--method", "teacher", "--seed", 0, "--out", out)
    assert code == 1 and not stdout
    assert err.strip() == (f"spikefleet train: error: cannot write {out}: Permission denied; any earlier version of the "
                           "file is unchanged (writes are atomic); choose a writable location or fix the permissions")


def test_cli_full_disk_on_evaluate_json_is_one_line_and_keeps_the_old_file(tmp_path, capsys, monkeypatch):
    ckpt = checkpoint.save(tmp_path / "t.sfc", small_rate_net())
    report = tmp_path / "metrics.json"
    report.write_text('{"old": true}')
    monkeypatch.setattr(os, "fsync", _enospc)
    code, stdout, err = run_cli(capsys, "evaluate", ckpt, "--task", "xor", "--trials", 2, "--seed", 0,
                                "--json", report, "--overwrite")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"spikefleet evaluate: error: cannot write {report}: No space left")
    assert report.read_text() == '{"old": true}' and files_in(tmp_path) == ["metrics.json", "t.sfc"]


def test_cli_rescues_a_trained_model_it_cannot_save(tmp_path, capsys, monkeypatch):
    rescue_dir = tmp_path / "tmp"
    rescue_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue_dir))
    out = tmp_path / "out" / "teacher.sfc"
    out.parent.mkdir()
    real = checkpoint.atomic_write_bytes

    def full_disk_at_out(path, data):
        if Path(path) == out:
            raise OutputError(path, OSError(errno.ENOSPC, "No space left on device"))
        return real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full_disk_at_out)
    code, stdout, err = run_cli(capsys, "train", "--task", "xor", "--method", "teacher", "--seed", 0, "--steps", 2,
                                "--test-trials", 4, "--out", out, "--quiet")
    lines = err.strip().splitlines()  # a 2-step teacher may also get the one-line "kept the initial model" warning
    errors = [line for line in lines if line.startswith("spikefleet train: error: ")]
    assert code == 1 and len(errors) == 1
    assert all(line.startswith("spikefleet train: warning: ") for line in lines if line not in errors), lines
    (rescued,) = rescue_dir.glob("spikefleet-rescued-*-teacher.sfc")
    assert f"the trained model was saved to {rescued} instead: move it to {out}" in err
    assert checkpoint.load(rescued, kind="rate").info["method"] == "teacher" and not out.exists()


TINY = """\
name = "tiny"
[task]
name = "xor"
duration = 0.1
[[methods]]
name = "bptt"
method = "bptt"
hidden = 4
steps = 2
[fleet]
chips = 2
trials = 4
[perturbations]
mismatch = [0.0]
"""

#: holds the lock of the directory argv[1] until its stdin is closed (or it is killed): no sleeping
_HOLD = ("import sys; from spikefleet.experiments.store import RunLock; RunLock(sys.argv[1]).acquire(); "
         "print('locked', flush=True); sys.stdin.read()")


def test_cli_run_refuses_a_locked_output_directory(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # blocks until the holder has the lock
        code, stdout, err = run_cli(capsys, "run", spec, "--out", out, "--quiet")
    finally:
        holder.kill()
        holder.communicate()
    assert code == 2 and not stdout and len(err.strip().splitlines()) == 1
    assert err.startswith(f"spikefleet run: error: {out}: another run (PID {holder.pid} on ")
    assert "stop it (kill" in err and files_in(out) == ["run.lock"]  # nothing else was touched


def test_cli_run_into_a_read_only_directory(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    out = tmp_path / "ro"
    out.mkdir()
    _read_only(monkeypatch, out)
    try:
        code, stdout, err = run_cli(capsys, "run", spec, "--out", out, "--quiet")
    finally:
        out.chmod(0o755)
    assert code == 1 and not stdout
    assert err.startswith(f"spikefleet run: error: cannot create the run lock {out / 'run.lock'}: Permission denied")


def test_result_store_full_disk_keeps_recorded_units(tmp_path):
    import sqlite3

    from spikefleet.experiments.spec import parse_experiment_text
    from spikefleet.experiments.store import ResultStore
    from spikefleet.experiments.units import build_units

    spec = parse_experiment_text(TINY, "tiny.toml")
    store = ResultStore(tmp_path, spec)
    store.begin_run("local", 1)
    units = [u for u in build_units(spec) if u.kind == "eval"]
    store.record_eval(units[0], {"accuracy": [1.0]}, {}, {}, 1.0)

    class FullDisk:  # sqlite3.Connection.execute cannot be monkeypatched: wrap the connection
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if sql.startswith("INSERT"):
                raise sqlite3.OperationalError("database or disk is full")
            return self.conn.execute(sql, *args)

    real = store.conn
    store.conn = FullDisk(real)
    with pytest.raises(OutputError, match=rf"cannot record a result in {tmp_path / 'results.sqlite'}: database or "
                                          r"disk is full \(sqlite\).*units recorded so far are kept") as e:
        store.record_eval(dataclasses.replace(units[0], unit_id="eval/x"), {"accuracy": [0.0]}, {}, {}, 1.0)
    assert e.value.errno == errno.ENOSPC
    store.conn = real
    assert store.done_ids() == {units[0].unit_id}
    store.close()


# ================================================================================== determinism
@pytest.fixture(scope="module")
def fleet_design():
    import math

    from spikefleet.models.spiking import SpikingConfig, SpikingNetwork
    from spikefleet.neurons.lif import LIF

    n = 6
    cfg = SpikingConfig(n_in=1, n_hidden=n, n_out=1, dt=1e-3)
    rng = np.random.default_rng(1)
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
    return SpikingNetwork(w_in=f32(20 * rng.normal(size=(1, n))),
                          w_rec=f32(rng.normal(size=(n, n)) * (1 - np.eye(n)) / math.sqrt(n)),
                          w_out=f32(0.3 * rng.normal(size=(n, 1)) / math.sqrt(n)), b_out=f32(np.zeros(1)),
                          tau_out=f32(np.full(n, 20e-3)), w_fast=None, config=cfg,
                          neurons=LIF.create(n, dt=1e-3, surrogate=cfg.make_surrogate()))


def _chunk_results(design, cond, trials=16, chips=5, **kw):
    from spikefleet.fleet.chip import fleet_keys
    from spikefleet.fleet.evaluate import evaluate_fleet

    task = xor_task()
    batch = task.generate(trials, 3)  # with 16 trials x 100 steps the old per-chip mean differed for chunk 1/3/16
    results = {c: evaluate_fleet(design, task, batch, fleet_keys(0, chips), cond, chunk=c, **kw).metrics
               for c in (1, 3, 16)}
    for c in (3, 16):
        for name, values in results[1].items():
            assert results[c][name].tobytes() == values.tobytes(), (c, name)
    assert len(set(results[1]["mse"].tolist())) == chips  # the chips really differ
    return results


def test_fleet_metrics_are_bit_identical_for_any_chunk_size():
    """Was: the per-chip MSE (an XLA mean inside the vmap over chips) changed in the last bits with the chunk
    size (here: chunk 1 vs 3 vs 16 on 5 chips of a rate network under mismatch and 4-bit weights)."""
    from spikefleet.fleet.chip import Condition
    from spikefleet.fleet.mismatch import get_profile

    design = init_rate(RateConfig(1, 6, 1), jax.random.PRNGKey(0))
    results = _chunk_results(design, Condition(mismatch=get_profile("uniform", 0.1), quant_bits=4, label="m+q"))
    assert set(results[1]) == {"accuracy", "mse", "rate_hz"}


@pytest.mark.slow  # three more compilations of a spiking fleet (~30 CPU-s)
def test_spiking_fleet_metrics_with_noise_are_bit_identical_for_any_chunk_size(fleet_design):
    from spikefleet.fleet.chip import Condition
    from spikefleet.fleet.mismatch import get_profile

    cond = Condition(mismatch=get_profile("uniform", 0.1), noise=0.05, quant_bits=4, label="all")
    results = _chunk_results(fleet_design, cond, run_key=jax.random.PRNGKey(7))
    assert np.all(results[1]["rate_hz"] > 0)


def test_repeated_training_and_evaluation_are_bit_identical():
    from spikefleet.fleet.chip import Condition, fleet_keys
    from spikefleet.fleet.evaluate import evaluate_fleet
    from spikefleet.fleet.mismatch import get_profile
    from spikefleet.train import gradient as recipes

    task = xor_task()
    runs = [recipes.train(task, "teacher", 3, hidden=6, steps=3, eval_every=1, batch_size=4, val_trials=4,
                          progress=False) for _ in range(2)]
    a, b = (checkpoint._leaves(r.model) for r in runs)
    assert [n for n, _ in a] == [n for n, _ in b]
    assert all(np.asarray(x).tobytes() == np.asarray(y).tobytes() for (_, x), (_, y) in zip(a, b))
    assert runs[0].info["history"] == runs[1].info["history"]
    cond = Condition(mismatch=get_profile("uniform", 0.2), label="m")
    batch = task.generate(4, 9)
    evals = [evaluate_fleet(runs[i].model, task, batch, fleet_keys(5, 3), cond).metrics for i in range(2)]
    assert all(evals[0][k].tobytes() == evals[1][k].tobytes() for k in evals[0])


@pytest.mark.slow  # two fresh processes each training + evaluating through the CLI (~1 min on 2 cores)
def test_cli_train_and_evaluate_are_bit_identical_across_processes(tmp_path):
    outputs = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        for argv in (["train", "--task", "xor", "--method", "bptt", "--seed", "2", "--steps", "3", "--hidden", "8",
                      "--test-trials", "8", "--out", str(d / "m.sfc"), "--quiet"],
                     ["evaluate", str(d / "m.sfc"), "--task", "xor", "--trials", "8", "--seed", "1", "--chips", "3",
                      "--mismatch", "0,0.1", "--json", str(d / "fleet.json")]):
            subprocess.run([sys.executable, "-m", "spikefleet", *argv], check=True, capture_output=True)
        with np.load(d / "m.sfc") as z:
            arrays = {k: z[k].tobytes() for k in z.files if k != "__meta__"}
        records = json.loads((d / "fleet.json").read_text())["records"]
        outputs.append((arrays, [r["per_chip"] for r in records]))
    assert outputs[0] == outputs[1]


# ================================================================================ hardware limits
def _net(w_in, w_rec, **neuron_kw):
    c, n = np.shape(w_in)
    return DynapSE2Network(w_in=jnp.asarray(w_in, jnp.float32), w_rec=jnp.asarray(w_rec, jnp.float32),
                           neurons=DynapSE2.create(n, **neuron_kw), config=DynapSE2Config(c, n))


def _far_recurrent():
    w_rec = np.zeros((300, 300))
    w_rec[0, 299] = 1.0  # neuron 0 (chip 0) → neuron 299 (chip 1), 8 positions away
    return _net(np.ones((1, 300)), w_rec)


def _bad_quantization(field_, value):
    from spikefleet.hardware.dynapse2.mapping import place
    from spikefleet.hardware.dynapse2.quantize import quantize

    net = _net(np.ones((2, 3)), np.zeros((3, 3)))
    q = quantize(np.ones((2, 3)), np.zeros((3, 3)), place(net).global_core, key=0, n_cores=4)
    return net, {"quantization": dataclasses.replace(q, **{field_: value(q)})}


def _nan_weight():
    w = np.ones((1, 2))
    w[0, 0] = np.nan
    return _net(w, np.zeros((2, 2)))


def _negative_current():  # bypasses the constructor's checks, as a hand-edited model could
    net = _net(np.ones((1, 2)), np.zeros((2, 2)))
    return eqx.tree_at(lambda m: m.neurons.Itau_mem, net, jnp.array([-1e-12, -1e-12], jnp.float32))


def _zero_base_current(q):
    bc = np.array(q.base_currents)
    bc[0, 0] = 0.0
    return bc


#: every violation code deploy() can meet (placement_invalid, core_parameters_differ, mask_out_of_range and
#: bias_code_out_of_range cannot come out of deploy: its own placement/quantisation/bias codes are in range;
#: validate() reports them: tests/test_hw_deploy.py::test_each_violation_kind_is_reported_with_a_hint)
DEPLOY_VIOLATIONS = {
    "neurons_exceed_capacity": (lambda: (_net(np.ones((1, 1100)), np.zeros((1100, 1100))), {}),
                                "use more chips"),
    "tags_exhausted": (lambda: (_net(np.eye(2100, 1024) + np.eye(2100, 1024, -1024) + np.eye(2100, 1024, -2048),
                                     np.zeros((1024, 1024))), {}), "over more chips"),  # chip 0 hears 2100 inputs
    "cores_exhausted": (lambda: (_net(np.ones((1, 5)), np.zeros((5, 5)), Itau_mem=np.arange(4, 9) * 1e-12), {}),
                        "share='average'"),
    "fan_in": (lambda: (_net(np.ones((65, 2)), np.zeros((2, 2))), {}), "prune the weakest incoming weights"),
    "fan_out": (lambda: (_fan_out_weights(), {"spec": "4 chips", "n_cores": 13}), "at most 3 chips"),
    "hop_out_of_range": (lambda: (_far_recurrent(), {"spec": "far", "n_cores": 5}), "closer together"),
    "weight_not_finite": (lambda: (_nan_weight(), {}), "exploding gradients"),
    "parameter_invalid": (lambda: (_negative_current(), {}), "fix the neuron parameters"),
    "sign_invalid": (lambda: _bad_quantization("signs_in", lambda q: q.signs_in * 0), "+1 excitatory"),
    "base_current_invalid": (lambda: _bad_quantization("base_currents", _zero_base_current), "re-run quantisation"),
    "bias_out_of_range": (lambda: (_net(np.ones((1, 2)), np.zeros((2, 2)), Ispkthr=1e-3), {}),
                          "the bias generator cannot produce this current"),
}


def _fan_out_weights():
    w = np.zeros((13, 13))
    w[0, [1, 4, 8, 12]] = 1.0  # neuron 0 → 4 chips: 1 monitor + 4 destinations > 4 SRAM entries
    return _net(np.ones((1, 13)), w)


@pytest.mark.parametrize("code", sorted(DEPLOY_VIOLATIONS))
def test_every_deploy_violation_is_reported_with_a_hint_and_nothing_is_exported(code, tmp_path):
    from spikefleet.hardware.dynapse2.config import deploy
    from spikefleet.hardware.dynapse2.constraints import HardwareLimitError, HardwareSpec

    make, hint = DEPLOY_VIOLATIONS[code]
    net, kwargs = make()
    spec = {"4 chips": HardwareSpec(n_chips=4), "far": HardwareSpec(n_chips=2, chip_positions=((1, 0), (9, 0)))}
    if "spec" in kwargs:
        kwargs["spec"] = spec[kwargs["spec"]]
    out = tmp_path / "config.json"
    with pytest.raises(HardwareLimitError) as e:
        deploy(net, key=0, **kwargs).save(out)
    assert code in {v.code for v in e.value.violations}
    (v,) = [v for v in e.value.violations if v.code == code][:1]
    assert hint in v.hint and f"[{code}]" in str(e.value) and "nothing was exported" in str(e.value)
    assert not out.exists() and files_in(tmp_path) == []


def test_cli_deploy_violation_writes_neither_config_nor_summary(tmp_path, capsys):
    ckpt = checkpoint.save(tmp_path / "x.sfc", _net(np.ones((65, 2)), np.zeros((2, 2))))
    code, out, err = run_cli(capsys, "deploy", ckpt, "--target", "dynapse2", "--out", tmp_path / "c.json",
                             "--json", tmp_path / "s.json")
    assert code == 2 and not out and "[fan_in]" in err and "Fix: at most 64 incoming synapses" in err
    assert files_in(tmp_path) == ["x.sfc"]


def test_loaders_raise_only_spikefleet_errors_for_a_directory(tmp_path):
    """Every loader, given a directory instead of a file: a SpikefleetError naming it (no IsADirectoryError)."""
    from spikefleet.experiments.spec import load_experiment
    from spikefleet.fleet.mismatch import load_profile
    from spikefleet.hardware.dynapse2.calibration import load_calibration_table
    from spikefleet.hardware.dynapse2.config import HardwareConfig
    from spikefleet.tasks.wakephrase.wav import read_wav

    for name, load in (("d.sfc", checkpoint.load), ("d.toml", load_experiment), ("d.json", load_profile),
                       ("d.csv", load_calibration_table), ("c.json", HardwareConfig.load), ("d.wav", read_wav)):
        d = tmp_path / name
        d.mkdir()
        with pytest.raises(SpikefleetError) as e:
            load(d)
        assert str(d) in str(e.value), (name, str(e.value))
