r"""Fixed wake-phrase data sets of an experiment seed, cached on disk.

The wake-phrase study (Büchel et al. 2021, Sci. Rep., Methods "Hey Snips") trains and judges
every design on fixed sets per seed ``S``: training ``split="train"`` (teacher, BPTT and Network
ADS draw from it), validation ``split="validation"`` (model selection; the decision boundary of
every spiking design) and test ``split="test"`` (test accuracy, fleet evaluation), each the first
``n`` samples of the corpus split under the seed of its stream ``seed_stream(S, TRAIN | VAL | TEST)``.
:func:`dataset` caches them as ``.npz`` files (written atomically; the data are a pure function of
the generator version, source, preset, split, seed and ``n``), so workers synthesise each set once.
"""

from __future__ import annotations

import io
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from spikefleet import seeds
from spikefleet.errors import OutputError, expect
from spikefleet.io import atomic_write_bytes
from spikefleet.seeds import seed_stream

__all__ = ["WakePhraseBatch", "STREAMS", "dataset", "FixedSets"]

#: data-set name -> (corpus split, seed stream)
STREAMS = {"train": ("train", seeds.TRAIN), "validation": ("validation", seeds.VAL), "test": ("test", seeds.TEST)}


class WakePhraseBatch(NamedTuple):
    """Wake-phrase samples: filterbank envelopes, targets, labels and per-sample metadata."""

    inputs: np.ndarray  # [n, 5000, 16] float32 filterbank envelopes
    targets: np.ndarray  # [n, 5000, 1] float32
    labels: np.ndarray  # [n] int32
    meta: tuple  # per-sample metadata dicts


def dataset(task, name: str, n: int, seed: int, cache_dir=None, *, version: str) -> WakePhraseBatch:
    """The fixed data set ``name`` (``train`` | ``validation`` | ``test``) of experiment seed
    ``seed``: samples ``0 … n−1`` of the corpus split under ``seed_stream(seed, stream)``.

    With ``cache_dir`` the arrays are kept in
    ``cache_dir/<version>-<source>-<preset>-<name>-s<seed>-n<n>.npz`` (metadata dropped: ``meta = ()``)."""
    expect(name in STREAMS, "name", f"one of {sorted(STREAMS)}", name)
    split, stream = STREAMS[name]
    data_task = replace(task, split=split)
    data_seed = seed_stream(seed, stream)
    if cache_dir is None:
        return data_task.generate(n, data_seed)
    tag = version.replace("/", "-")
    path = Path(cache_dir) / f"{tag}-{task.source.replace('/', '_')}-{task.preset}-{name}-s{seed}-n{n}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return WakePhraseBatch(z["inputs"], z["targets"], z["labels"], ())
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: regenerate and replace it
    batch = data_task.generate(n, data_seed)
    buf = io.BytesIO()
    np.savez(buf, inputs=batch.inputs, targets=batch.targets, labels=batch.labels)
    _write_cache(path, buf.getvalue())
    return WakePhraseBatch(batch.inputs, batch.targets, batch.labels, ())


def _write_cache(path: Path, data: bytes) -> None:
    """Write a cache entry whole or not at all (:func:`~spikefleet.io.atomic_write_bytes`); a cache that
    cannot be written (e.g. on a remote worker) only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except (OSError, OutputError):
        pass


class FixedSets:
    """The training (``task.n_train`` samples) and validation (``task.n_validation``) sets of one
    seed, each synthesised (or read from the cache) on first use."""

    def __init__(self, task, seed: int, cache_dir=None, *, version: str):
        self._task, self._seed, self._cache_dir, self._version = task, seed, cache_dir, version

    @cached_property
    def train(self) -> WakePhraseBatch:
        return dataset(self._task, "train", self._task.n_train, self._seed, self._cache_dir, version=self._version)

    @cached_property
    def validation(self) -> WakePhraseBatch:
        return dataset(self._task, "validation", self._task.n_validation, self._seed, self._cache_dir,
                       version=self._version)
