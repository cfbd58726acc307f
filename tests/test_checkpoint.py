"""Checkpoint round trip (bit-exact), atomic writes and clear errors on bad files."""

import os
import re

import jax
import numpy as np
import pytest

from spikefleet import checkpoint
from spikefleet.errors import CheckpointError, OutputError, SpikefleetError
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking


def _leaves(model):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(model)]


@pytest.mark.parametrize("fast", [False, True])
def test_spiking_round_trip_is_bit_exact(tmp_path, fast):
    cfg = SpikingConfig(n_in=2, n_hidden=7, n_out=3, fast=fast, max_spikes=2, reset="value",
                        surrogate="triangle", surrogate_params=(("width", 0.3),))
    net = init_spiking(cfg, jax.random.PRNGKey(3), tau_syn=(20e-3, 2e-3) if fast else 20e-3)
    # make every leaf distinctive so a mix-up of leaves would show
    net = jax.tree_util.tree_map(lambda x: x + jax.random.normal(jax.random.PRNGKey(x.size), x.shape), net)
    path = checkpoint.save(tmp_path / "net.sfc", net, {"task": "xor", "note": "ü"})
    loaded = checkpoint.load(path)
    assert loaded.model.config == cfg
    assert loaded.info == {"task": "xor", "note": "ü"}
    assert loaded.meta["spikefleet_version"]
    before, after = _leaves(net), _leaves(loaded.model)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    assert (loaded.model.w_fast is None) == (not fast)


def test_rate_round_trip(tmp_path):
    net = init_rate(RateConfig(n_in=1, n_hidden=5, n_out=1, min_tau=0.01), jax.random.PRNGKey(0))
    loaded = checkpoint.load(checkpoint.save(tmp_path / "r.sfc", net), kind="rate").model
    for a, b in zip(_leaves(net), _leaves(loaded)):
        assert a.tobytes() == b.tobytes()
    assert loaded.config.min_tau == 0.01


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "keep.sfc"
    net = init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(0))
    checkpoint.save(target, net, {"version": 1})
    original = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match=rf"^cannot write {re.escape(str(target))}: disk full; any earlier version "):
        checkpoint.save(target, net, {"version": 2}, overwrite=True)
    assert target.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["keep.sfc"]  # no temp file left behind


def test_wrong_kind_and_missing(tmp_path):
    net = init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(0))
    path = checkpoint.save(tmp_path / "r.sfc", net)
    with pytest.raises(CheckpointError, match="expected a 'spiking' model, got 'rate'"):
        checkpoint.load(path, kind="spiking")
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "nope.sfc")


@pytest.mark.parametrize("mutation, message", [
    (lambda m, a: m.update(format_version=99), "format version 99"),
    (lambda m, a: m.update(kind="transformer"), "unknown model kind"),
    (lambda m, a: m.update(format="other"), "not a spikefleet checkpoint"),
    (lambda m, a: a.update({"w_in": np.zeros((3, 3), np.float32)}), "parameter w_in has shape"),
    (lambda m, a: a.pop("w_rec"), "do not match"),
    (lambda m, a: m["config"].update(n_hidden=-1), "invalid model config"),
])
def test_corrupted_metadata_gives_clear_error(tmp_path, mutation, message, rewrite_checkpoint):
    path = checkpoint.save(tmp_path / "r.sfc", init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(0)))
    rewrite_checkpoint(path, mutation)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


@pytest.mark.parametrize("cut", [0, 10, 200, -50])
def test_truncated_file_gives_clear_error(tmp_path, cut):
    path = checkpoint.save(tmp_path / "r.sfc", init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(0)))
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(CheckpointError, match="r.sfc"):
        checkpoint.load(path)


def test_save_refuses_an_existing_file_unless_overwrite(tmp_path):
    """One rule for Python and the CLI: an existing checkpoint is replaced only with overwrite=True."""
    target = tmp_path / "keep.sfc"
    first = init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(0))
    second = init_rate(RateConfig(1, 4, 1), jax.random.PRNGKey(1))
    checkpoint.save(target, first, {"version": 1})
    original = target.read_bytes()
    with pytest.raises(checkpoint.CheckpointExistsError) as caught:
        checkpoint.save(target, second, {"version": 2})
    assert isinstance(caught.value, FileExistsError) and isinstance(caught.value, SpikefleetError)
    assert str(caught.value) == (f"checkpoint {target}: already exists and was left unchanged; choose another "
                                 "path or pass overwrite=True to replace it")
    assert target.read_bytes() == original
    checkpoint.save(target, second, {"version": 2}, overwrite=True)
    assert checkpoint.load(target).info == {"version": 2}
    assert np.array_equal(np.asarray(checkpoint.load(target).model.w_rec), np.asarray(second.w_rec))
