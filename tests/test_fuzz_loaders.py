"""Property-based fuzzing of every file loader: malformed input gives a clean, file-naming error.

Each loader gets random bytes, truncations and byte flips of a valid file, and structured
mutations of a valid document (a value anywhere replaced by a random JSON/TOML value of another
type, a key removed, an unknown key added, an array element removed or duplicated). The property:
the loader either returns normally or raises a :class:`spikefleet.errors.SpikefleetError` whose
message names the file; any other exception type fails the test. Strategies build every example
they draw or fail loudly (none substitutes other input when it cannot build one).

Runs are derandomised (the same examples every run, so the suite is not flaky). Set
``SPIKEFLEET_FUZZ_SCALE=10`` (more examples) and ``SPIKEFLEET_FUZZ_RANDOM=1`` (fresh random
examples) to search harder, and ``SPIKEFLEET_FUZZ_TIME_LIMIT=20`` to fail an example that runs
longer than 20 s (a hang; off by default: no wall-clock limits in CI). Each test checks that its
loader ran its intended number of examples (:data:`BUDGET`, whatever else ran in the process);
the counts are also printed at the end of the module (``fuzzed examples per loader``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import sqlite3
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spikefleet.errors import SpikefleetError  # noqa: E402

SCALE = float(os.environ.get("SPIKEFLEET_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("SPIKEFLEET_FUZZ_RANDOM", "") not in ("", "0")
#: seconds per example before it counts as a hang (opt-in, for hunting hangs: 0 = no limit)
EXAMPLE_TIME_LIMIT = float(os.environ.get("SPIKEFLEET_FUZZ_TIME_LIMIT", "0"))
COUNTS: Counter = Counter()
#: examples intended per loader (before SCALE)
BUDGET = {"experiment": 200, "checkpoint": 150, "profile": 200, "calibration": 100, "config-bytes": 100,
          "config-file": 20, "config-structure": 150, "wav": 150, "wav-folder": 40, "results-db": 100}


def fuzz_settings(name: str):
    return settings(max_examples=max(1, int(BUDGET[name] * SCALE)), deadline=None, derandomize=not RANDOM,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


def run_fuzz(name: str, example) -> None:
    """Run the hypothesis test ``example`` and check that it fed its loader the intended number of
    examples (counted here, in the test that ran them: independent of test order and xdist)."""
    before = COUNTS[name]
    example()
    ran, wanted = COUNTS[name] - before, max(1, int(BUDGET[name] * SCALE))
    assert ran >= wanted, f"{name}: {ran} fuzzed examples ran, {wanted} intended"


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = "fuzzed examples per loader: " + ", ".join(f"{k} {COUNTS[k]}" for k in BUDGET)
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line(line)


class ExampleTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = EXAMPLE_TIME_LIMIT):
    """Fail an example that runs longer than ``seconds`` (a hang; 0: no limit)."""
    if not seconds:
        yield
        return

    def on_alarm(signum, frame):
        raise ExampleTimeout(f"loader still running after {seconds} s (hang?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_clean(load, path: Path, name: str, *, names=None):
    """Run ``load()``; it may succeed, else it must raise a SpikefleetError naming ``path``."""
    COUNTS[name] += 1
    try:
        with time_limit():
            load()
    except SpikefleetError as exc:
        message = str(exc)
        wanted = [str(path)] if names is None else names
        assert any(w in message for w in wanted), f"error does not name the file {wanted}: {message}"
        assert message.strip(), "empty error message"


# ------------------------------------------------------------------------------- strategies
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1e-30])
INTS = st.integers(-2**31, 2**31) | st.sampled_from([0, -1, 1, 2**63 - 1, -2**63, 2**64, 10**400, 65, 255, 256])
TEXT = st.text(max_size=12) | st.sampled_from(["", "N", "P", "nan", "1e999", "-1", "0x10", "true", "A", "\x00"])
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT


class Deep(list):
    """``[[[...[0]...]]]`` nested ``depth`` levels (parsers accept ~900 levels; naive recursion does not)."""

    def __init__(self, depth: int):
        inner = [0]
        for _ in range(depth - 2):
            inner = [inner]
        super().__init__([inner])
        self.depth = depth

    def __repr__(self):
        return f"Deep({self.depth})"


DEEP = st.integers(100, 900).map(Deep)
_NESTED = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                       max_leaves=8)
JSON_VALUES = st.one_of(_NESTED, _NESTED, _NESTED, _NESTED, _NESTED, DEEP)  # 1 in 6: a deeply nested array


def _children(node):
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


@st.composite
def mutations(draw, doc, values=JSON_VALUES, max_depth=12):
    """``doc`` with one random change along a random path; containers on the path are copied, the
    rest is shared with ``doc`` (cheap for large documents)."""
    path, node = [], doc
    for _ in range(max_depth):
        keys = _children(node)
        if not keys or draw(st.integers(0, 5)) == 0:  # descend with probability 5/6: mostly leaves change
            break
        k = draw(st.sampled_from(keys))
        path.append(k)
        node = node[k]
    action = draw(st.sampled_from(["replace", "replace", "delete", "add", "duplicate"]))
    new_value = draw(values)
    extra_key = draw(TEXT)

    def rebuild(container, i):
        if i == len(path):
            return container
        k = path[i]
        copy_ = dict(container) if isinstance(container, dict) else list(container)
        if i == len(path) - 1:
            if action == "replace":
                copy_[k] = new_value
            elif action == "delete":
                del copy_[k]
            elif action == "add" and isinstance(copy_, dict):
                copy_[extra_key if extra_key not in copy_ else extra_key + "_x"] = new_value
            elif action == "add":
                copy_.append(new_value)
            elif isinstance(copy_, list):
                copy_.insert(k, copy_[k])
            else:
                copy_[k] = [copy_[k], copy_[k]]
            return copy_
        copy_[k] = rebuild(container[k], i + 1)
        return copy_

    if not path:
        return new_value if action == "replace" else doc
    return rebuild(doc, 0)


#: hostile whole-file contents: deep nesting, over-long numbers, other encodings, NULs, BOMs
NASTY = st.sampled_from([
    b"[" * 100_000, b'{"a":' * 50_000, b"a = " + b"[" * 5000, b"1" * 5000, b"x = " + b"9" * 5000,
    b'{"sigmas": {"tau_mem": ' + b"9" * 5000 + b"}}", b"1e999", b"-", b"\x00" * 16, b"\xef\xbb\xbf{}",
    "{}".encode("utf-16"), "name = 'x'".encode("utf-16"), b"\xff\xfe\x00", b"", b" ", b"null", b"[]", b'""',
    b"RIFF\xff\xff\xff\xffWAVEfmt ", b"PK\x03\x04", b"PK\x05\x06" + b"\x00" * 18, b"\x93NUMPY\x01\x00"])


@st.composite
def byte_damage(draw, data: bytes):
    """Random bytes, a hostile document, a truncation, or 1-8 flipped bytes of ``data``."""
    kind = draw(st.sampled_from(["random", "nasty", "truncate", "flip", "flip"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    if kind == "nasty":
        return draw(NASTY)
    if kind == "truncate":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= draw(st.integers(1, 255))
    return bytes(out)


def toml_value(v) -> str:
    if isinstance(v, Deep):
        return "[" * v.depth + "0" + "]" * v.depth
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    return '"<none>"'  # TOML has no null


def to_toml(doc) -> str:
    if not isinstance(doc, dict):
        return f"value = {toml_value(doc)}\n"
    return "".join(f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in doc.items())


class Quiet(tuple):
    """A fixture value that hypothesis reports as ``<name>`` (the samples are megabytes long)."""

    def __new__(cls, name, *items):
        self = super().__new__(cls, items)
        self.name = name
        return self

    def __repr__(self):
        return f"<{self.name}>"

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


# ------------------------------------------------------------------------ experiment files
EXPERIMENT = """\
name = "fuzz"
seeds = [0, 1]
output = "runs/fuzz"

[task]
name = "xor"
duration = 0.1

[[methods]]
name = "teacher"
method = "teacher"
hidden = 4
evaluate = false

[[methods]]
name = "bptt-noise"
method = "bptt"
robust = "noise"
robust_level = 0.2
robust_chips = 4

[[methods]]
name = "ads"
method = "ads"
n = 16
teacher = "teacher"
no_fast = true

[fleet]
chips = 3
trials = 8
chunk = 2
yield_threshold = 0.9

[perturbations]
mismatch = [0.0, 0.1]
profile = "uniform"
quant_bits = [4]
noise = [0.05]
dead = [0.4]
dead_select = "random"
"""


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def test_experiment_sample_is_valid(fuzz_dir):
    from spikefleet.experiments.spec import load_experiment

    spec = load_experiment(_write(fuzz_dir / "ok.toml", EXPERIMENT))
    assert [m.name for m in spec.methods] == ["teacher", "bptt-noise", "ads"]


def _experiment_doc():
    import tomllib

    return tomllib.loads(EXPERIMENT)


def test_fuzz_experiment_file(fuzz_dir):
    @fuzz_settings("experiment")
    @given(data=st.data())
    def example(data):
        from spikefleet.experiments.spec import load_experiment

        path = fuzz_dir / "experiment.toml"
        how = data.draw(st.sampled_from(["bytes", "structure", "structure", "structure"]))
        if how == "bytes":
            _write(path, data.draw(byte_damage(EXPERIMENT.encode())))
        else:
            _write(path, to_toml(data.draw(mutations(_experiment_doc()))))
        check_clean(lambda: load_experiment(path), path, "experiment")

    run_fuzz("experiment", example)


# ------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def checkpoints(fuzz_dir):
    import jax

    from spikefleet import checkpoint
    from spikefleet.models.rate import RateConfig, init_rate
    from spikefleet.models.spiking import SpikingConfig, init_spiking
    from spikefleet.models.dynapse2 import DynapSE2Config, init_dynapse2

    models = {"spiking": init_spiking(SpikingConfig(n_in=1, n_hidden=3, n_out=1), jax.random.PRNGKey(0)),
              "rate": init_rate(RateConfig(1, 3, 1), jax.random.PRNGKey(1)),
              "dynapse2": init_dynapse2(DynapSE2Config(2, 2), jax.random.PRNGKey(2))}
    out = {}
    for kind, model in models.items():
        path = checkpoint.save(fuzz_dir / f"{kind}.sfc", model, {"task": "xor", "seed": 0})
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        out[kind] = (path.read_bytes(), json.loads(arrays.pop("__meta__").tobytes()), arrays)
    return Quiet("checkpoints", out)


ARRAYS = st.one_of(
    st.builds(lambda shape, dtype: np.zeros(shape, dtype), st.lists(st.integers(0, 4), max_size=3).map(tuple),
              st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.bool_, np.complex64])),
    st.sampled_from([np.array(np.nan, np.float32), np.array([np.inf], np.float32), np.array(["x"]),
                     np.zeros((1, 1), np.float32)]))


@st.composite
def checkpoint_bytes(draw, samples):
    samples = samples[0]
    kind = draw(st.sampled_from(sorted(samples)))
    data, meta, arrays = samples[kind]
    how = draw(st.sampled_from(["bytes", "meta", "meta", "arrays", "npy"]))
    if how == "bytes":
        return draw(byte_damage(data))
    if how == "npy":  # a plain .npy file (np.load returns an array, not an archive)
        buffer = io.BytesIO()
        np.save(buffer, draw(ARRAYS))
        return buffer.getvalue()
    arrays = dict(arrays)
    if how == "meta":
        meta = draw(mutations(meta))
    else:
        name = draw(st.sampled_from(sorted(arrays) + ["extra"]))
        if draw(st.booleans()) and name in arrays:
            arrays.pop(name)
        else:
            arrays[name] = draw(ARRAYS)
    buffer = io.BytesIO()
    meta_bytes = json.dumps(meta).encode() if draw(st.booleans() | st.just(True)) else draw(st.binary(max_size=40))
    np.savez(buffer, __meta__=np.frombuffer(meta_bytes, np.uint8), **arrays)
    return buffer.getvalue()


def test_fuzz_checkpoint(fuzz_dir, checkpoints):
    @fuzz_settings("checkpoint")
    @given(data=st.data())
    def example(data):
        from spikefleet import checkpoint

        path = _write(fuzz_dir / "fuzzed.sfc", data.draw(checkpoint_bytes(checkpoints)))
        kind = data.draw(st.sampled_from([None, "spiking", "rate", "dynapse2"]))
        check_clean(lambda: checkpoint.load(path, kind=kind), path, "checkpoint")

    run_fuzz("checkpoint", example)


# -------------------------------------------------------------------------- mismatch profiles
PROFILE = {"name": "my-chip", "positive_rule": "fold", "description": "fuzz",
           "sigmas": {"tau_mem": 0.1, "w_rec": 0.2, "threshold": 0.05}}


def test_fuzz_mismatch_profile(fuzz_dir):
    @fuzz_settings("profile")
    @given(data=st.data())
    def example(data):
        from spikefleet.fleet.mismatch import get_profile, load_profile

        suffix = data.draw(st.sampled_from([".toml", ".json"]))
        path = fuzz_dir / f"profile{suffix}"
        valid = to_toml(PROFILE) if suffix == ".toml" else json.dumps(PROFILE)
        how = data.draw(st.sampled_from(["bytes", "structure", "structure"]))
        if how == "bytes":
            _write(path, data.draw(byte_damage(valid.encode())))
        else:
            doc = data.draw(mutations(PROFILE))
            _write(path, to_toml(doc) if suffix == ".toml" else json.dumps(doc))
        level = data.draw(st.sampled_from([1.0, 0.3]))
        check_clean(lambda: load_profile(path), path, "profile")
        COUNTS["profile"] -= 1  # one example, two entry points
        check_clean(lambda: get_profile(str(path), level), path, "profile")

    run_fuzz("profile", example)


# ------------------------------------------------------------------------ calibration tables
@pytest.fixture(scope="module")
def calibration(fuzz_dir):
    from spikefleet.hardware.dynapse2.biases import parametric_generator
    from spikefleet.hardware.dynapse2.calibration import save_calibration_table

    gen = parametric_generator("P3")
    meta = {"board": 1, "chip": 0, "date": "2024-01-01", "partial": "false"}
    csv_path = save_calibration_table(gen, fuzz_dir / "table.csv", metadata=meta)
    json_path = save_calibration_table(gen, fuzz_dir / "table.json", metadata=meta)
    doc = json.loads(json_path.read_text())
    return Quiet("calibration tables", csv_path.read_bytes(), json_path.read_bytes(), doc)


@st.composite
def csv_rows(draw, data: bytes):
    """The valid CSV with 1-3 lines replaced, removed or duplicated (or a line of random cells)."""
    lines = data.decode().splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["cells", "delete", "duplicate", "text"]))
        if how == "cells":
            cells = draw(st.lists(TEXT | INTS.map(str) | FLOATS.map(repr), min_size=0, max_size=6))
            lines[i] = ",".join(str(c) for c in cells)
        elif how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines[i] = draw(st.text(max_size=40))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def test_fuzz_calibration_table(fuzz_dir, calibration):
    @fuzz_settings("calibration")
    @given(data=st.data())
    def example(data):
        import warnings

        from spikefleet.hardware.dynapse2.calibration import load_calibration_table

        csv_bytes, json_bytes, doc = calibration
        suffix = data.draw(st.sampled_from([".csv", ".json"]))
        path = fuzz_dir / f"fuzzed{suffix}"
        how = data.draw(st.sampled_from(["bytes", "structure", "structure"]))
        if how == "bytes":
            _write(path, data.draw(byte_damage(csv_bytes if suffix == ".csv" else json_bytes)))
        elif suffix == ".csv":
            _write(path, data.draw(csv_rows(csv_bytes)))
        else:
            _write(path, json.dumps(data.draw(mutations(doc))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "differs from P3 by more than 3x" is a legitimate warning
            check_clean(lambda: load_calibration_table(path), path, "calibration")

    run_fuzz("calibration", example)


# ------------------------------------------------------------- DYNAP-SE2 configuration files
@pytest.fixture(scope="module")
def deployed(fuzz_dir):
    import jax

    from spikefleet.hardware.dynapse2.config import deploy
    from spikefleet.models.dynapse2 import DynapSE2Config, init_dynapse2

    net = init_dynapse2(DynapSE2Config(3, 2), jax.random.PRNGKey(0))
    path = deploy(net, key=0).save(fuzz_dir / "config.json")
    data = path.read_bytes()
    return Quiet("deployed configuration", path, data, json.loads(data))


def inspect_config(path: Path):
    """What ``spikefleet inspect`` does with a file: load, validate, summarise, rebuild the simulator."""
    from spikefleet.cli.deploy import format_summary, summarize
    from spikefleet.hardware.dynapse2.config import HardwareConfig
    from spikefleet.hardware.dynapse2.reverse import network_from_config

    hc = HardwareConfig.load(path)
    format_summary(summarize(hc, source=str(path), maps=True), maps=True)
    network_from_config(hc)


def inspect_doc(doc, source: str):
    from spikefleet.cli.deploy import format_summary, summarize
    from spikefleet.hardware.dynapse2.config import HardwareConfig
    from spikefleet.hardware.dynapse2.reverse import network_from_config

    hc = HardwareConfig.from_json_doc(doc, source=source)
    format_summary(summarize(hc, source=source, maps=True), maps=True)
    network_from_config(hc)


SMALL_DOCS = st.one_of(JSON_VALUES, st.fixed_dictionaries(
    {"format": st.just("spikefleet-dynapse2-config") | TEXT, "version": st.just(1) | SCALARS,
     "value0": JSON_VALUES | st.just({"chips": []}), "spikefleet": JSON_VALUES}))


def test_fuzz_config_small_files(fuzz_dir):
    """Random bytes and small (wrong) JSON documents as configuration files."""
    @fuzz_settings("config-bytes")
    @given(data=st.data())
    def example(data):
        from spikefleet.hardware.dynapse2.config import Dynapse2Configuration

        path = fuzz_dir / "small-config.json"
        if data.draw(st.booleans()):
            _write(path, data.draw(st.binary(max_size=300)))
        else:
            _write(path, json.dumps(data.draw(SMALL_DOCS)))
        check_clean(lambda: inspect_config(path), path, "config-bytes")
        text = path.read_bytes().decode("utf-8", "replace")
        check_clean(lambda: Dynapse2Configuration.from_json(text, source=str(path)), path, "config-bytes")
        COUNTS["config-bytes"] -= 1

    run_fuzz("config-bytes", example)


def test_fuzz_config_file_damage(fuzz_dir, deployed):
    """Truncations and byte flips of a real (8 MB) configuration file."""
    @fuzz_settings("config-file")
    @given(data=st.data())
    def example(data):
        _, valid, _ = deployed
        path = _write(fuzz_dir / "damaged-config.json", data.draw(byte_damage(valid)))
        check_clean(lambda: inspect_config(path), path, "config-file")

    run_fuzz("config-file", example)


def test_fuzz_config_structure(deployed):
    """One random change anywhere in the configuration document (fields, metadata, channel maps)."""
    @fuzz_settings("config-structure")
    @given(data=st.data())
    def example(data):
        path, _, doc = deployed
        where = data.draw(st.sampled_from(["anywhere", "metadata", "maps", "neuron"]))
        if where == "anywhere":
            mutated = data.draw(mutations(doc))
        elif where == "metadata":
            meta = data.draw(mutations(doc["spikefleet"]["metadata"]))
            mutated = {**doc, "spikefleet": {**doc["spikefleet"], "metadata": meta}}
        elif where == "maps":
            mutated = {**doc, "spikefleet": data.draw(mutations(doc["spikefleet"]))}
        else:  # a used neuron of core 0 (the 2 deployed neurons are its first ones)
            core = doc["value0"]["chips"][0]["cores"][0]
            j = data.draw(st.integers(0, 1))
            neurons = list(core["neurons"])
            neurons[j] = data.draw(mutations(neurons[j]))
            cores = [{**core, "neurons": neurons}] + doc["value0"]["chips"][0]["cores"][1:]
            mutated = {**doc, "value0": {"chips": [{**doc["value0"]["chips"][0], "cores": cores}]}}
        check_clean(lambda: inspect_doc(mutated, str(path)), path, "config-structure")

    run_fuzz("config-structure", example)


# ------------------------------------------------------------------------------- WAV files
WAV_DTYPES = [np.uint8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.int8]


def wav_by_hand(rate: int, x: np.ndarray) -> bytes:
    """A canonical WAV file (RIFF, 16-byte ``fmt `` chunk, ``data``) of ``x`` [n] or [n, channels]: format
    3 (IEEE float) for float samples, else 1 (PCM). Written by hand for what scipy refuses to write
    (int8 and float16 samples, byte rates of 2^32 or more, which wrap here as in a damaged header)."""
    channels = 1 if x.ndim == 1 else x.shape[1]
    block = channels * x.dtype.itemsize
    fmt = struct.pack("<HHIIHH", 3 if x.dtype.kind == "f" else 1, channels, rate, rate * block % 2**32, block,
                      8 * x.dtype.itemsize)
    data = x.astype(x.dtype.newbyteorder("<")).tobytes()
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


#: sample types scipy.io.wavfile.write refuses (written by :func:`wav_by_hand` instead)
SCIPY_REFUSES = (np.int8, np.float16)


@st.composite
def wav_bytes(draw):
    """A WAV file with random rate, sample type, channels and samples, possibly damaged. scipy writes
    what it supports, :func:`wav_by_hand` the rest; an error of either fails the test (no fallback)."""
    from scipy.io import wavfile

    dtype = draw(st.sampled_from(WAV_DTYPES))
    rate = draw(st.integers(0, 2**32 - 1) | st.sampled_from([1, 8000, 16000, 44100, 48000, 4294967295]))
    shape = (draw(st.integers(0, 64)),) + ((draw(st.integers(1, 3)),) if draw(st.booleans()) else ())
    values = draw(st.sampled_from(["zeros", "ramp", "nan"]))
    x = np.zeros(shape) if values == "zeros" else np.linspace(-1, 1, int(np.prod(shape))).reshape(shape)
    if values == "nan" and x.size:
        x.flat[0] = np.nan
    with np.errstate(invalid="ignore"):
        x = x.astype(dtype) if np.dtype(dtype).kind == "f" else (x * 100).astype(dtype)
    block = (1 if x.ndim == 1 else x.shape[1]) * x.dtype.itemsize
    if dtype in SCIPY_REFUSES or rate * block >= 2**32:
        data = wav_by_hand(rate, x)
    else:
        buffer = io.BytesIO()
        wavfile.write(buffer, rate, x)
        data = buffer.getvalue()
    return draw(byte_damage(data)) if draw(st.booleans()) else data


def test_fuzz_wav_file(fuzz_dir):
    @fuzz_settings("wav")
    @given(data=st.data())
    def example(data):
        from spikefleet.tasks.wakephrase.wav import read_wav

        path = _write(fuzz_dir / "clip.wav", data.draw(wav_bytes()))
        check_clean(lambda: read_wav(path), path, "wav")

    run_fuzz("wav", example)


def _train_name(stem: str) -> str:
    """A file name whose crc32 split is 'train' (see spikefleet.tasks.wakephrase.wav)."""
    i = 0
    while zlib.crc32(f"{stem}/clip{i}.wav".encode()) % 10 < 2:
        i += 1
    return f"clip{i}.wav"


def test_fuzz_wav_folder(fuzz_dir):
    """A generic-layout folder whose clip, noise file or split lists are damaged."""
    @fuzz_settings("wav-folder")
    @given(data=st.data())
    def example(data):
        from scipy.io import wavfile

        from spikefleet.tasks.wakephrase.wav import WavFolderConfig, load

        root = fuzz_dir / f"wavs{COUNTS['wav-folder']}"
        for sub in ("positive", "negative", "noise"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        clip = (0.1 * np.sin(np.arange(4000) / 5)).astype(np.float32)
        files = {f"{c}/{_train_name(c)}": clip for c in ("positive", "negative")}
        files["noise/n.wav"] = clip
        for rel, x in files.items():
            wavfile.write(root / rel, 8000, x)
        target = data.draw(st.sampled_from(sorted(files) + ["validation_list.txt", "testing_list.txt"]))
        _write(root / target, data.draw(wav_bytes()) if target.endswith(".wav")
               else data.draw(st.binary(max_size=64) | st.text(max_size=64).map(lambda s: s.encode("utf-8", "replace"))))
        names = [str(root)]
        check_clean(lambda: load(WavFolderConfig(root=str(root)), "train", n=2, seed=0), root, "wav-folder",
                    names=names)

    run_fuzz("wav-folder", example)


# ------------------------------------------------------------------------ result databases
@pytest.fixture(scope="module")
def results_db(fuzz_dir):
    from spikefleet.experiments.spec import parse_experiment_text
    from spikefleet.experiments.store import ResultStore

    out = fuzz_dir / "run"
    store = ResultStore(out, parse_experiment_text(EXPERIMENT, "fuzz.toml"))
    store.close()
    return Quiet("result database", (out / "results.sqlite").read_bytes())


def test_fuzz_result_database(fuzz_dir, results_db):
    """``spikefleet report DIR`` reads DIR/results.sqlite: damaged bytes or damaged stored values."""
    from spikefleet.experiments.store import read_stored_spec

    (valid,) = results_db

    @fuzz_settings("results-db")
    @given(data=st.data())
    def example(data):
        out = fuzz_dir / "run-fuzzed"
        out.mkdir(exist_ok=True)
        db = out / "results.sqlite"
        for extra in ("results.sqlite-wal", "results.sqlite-shm"):
            (out / extra).unlink(missing_ok=True)
        _write(db, valid)
        if data.draw(st.booleans()):
            _write(db, data.draw(byte_damage(valid)))
        else:
            key = data.draw(st.sampled_from(["schema_version", "spec_json", "spec_hash", "experiment"]))
            value = data.draw(st.text(max_size=30) | JSON_VALUES.map(json.dumps)
                              | st.just(json.dumps(data.draw(mutations(json.loads(_stored_spec(db)))))))
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
                conn.commit()
        check_clean(lambda: read_stored_spec(out), out, "results-db")

    run_fuzz("results-db", example)


def _stored_spec(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'spec_json'").fetchone()[0]
