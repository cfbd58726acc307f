"""Checkpoints: a trained design (model + its config + metadata) in one file.

Format (``FORMAT_VERSION = 1``): a NumPy ``.npz`` archive (zip, no pickles) holding

* ``__meta__``: UTF-8 JSON with ``format``, ``format_version``, ``spikefleet_version``,
  ``kind`` (the model kind of :mod:`spikefleet.models.registry`), ``config`` (the model's static
  config), ``info`` (user metadata: task, method, seed, metrics, ...) and ``leaves`` (the ordered
  parameter paths);
* one array per parameter leaf, named by its path (e.g. ``neurons.tau_mem``).

Loading rebuilds a skeleton of the model from ``kind`` + ``config`` (the registry's
:class:`~spikefleet.models.registry.ModelKind`) and fills the leaves in,
checking names, shapes and dtypes, so values round-trip bit-exactly. Writes are atomic: the
file is written to a temporary name in the same directory and renamed over the target, so a
crash never leaves a half-written checkpoint and an existing file is replaced only whole, and only
when asked to (``save(..., overwrite=True)``).
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np

from spikefleet._version import __version__
from spikefleet.errors import CheckpointError, ConfigError, shown
from spikefleet.io import atomic_write_bytes
from spikefleet.models.registry import get_kind, kind_names, kind_of

__all__ = ["save", "load", "Checkpoint", "CheckpointExistsError", "FORMAT_VERSION"]

FORMAT = "spikefleet-checkpoint"
FORMAT_VERSION = 1


class CheckpointExistsError(CheckpointError, FileExistsError):
    """:func:`save` refused to replace an existing file (pass ``overwrite=True`` to replace it)."""

    def __init__(self, path):
        super().__init__(errno.EEXIST, "file exists", str(path))
        self.message = (f"checkpoint {path}: already exists and was left unchanged; choose another path or pass "
                        "overwrite=True to replace it")

    def __str__(self) -> str:
        return self.message


class Checkpoint(NamedTuple):
    """What :func:`load` returns: the ``model``, its training ``info`` and the file's ``meta`` (format, versions, kind, config, leaves)."""

    model: Any
    info: dict
    meta: dict


def _leaves(model) -> list[tuple[str, Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))
    return [(jax.tree_util.keystr(path, simple=True, separator="."), leaf) for path, leaf in flat]


def _non_finite(name: str, value) -> str | None:
    a = np.asarray(value)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        return f"parameter {name} holds {bad} NaN/inf value(s) of {a.size}"
    return None


def save(path: str | os.PathLike, model, info: dict | None = None, *, overwrite: bool = False) -> Path:
    """Save ``model`` with JSON-serialisable ``info`` to ``path`` atomically; returns the path.

    An existing file at ``path`` is replaced (atomically, whole) only with ``overwrite=True``;
    otherwise :class:`CheckpointExistsError` (also a ``FileExistsError``) and nothing is written, the
    rule ``spikefleet train --out`` follows too. Refuses (:class:`CheckpointError`, nothing written)
    a model with NaN/inf parameters, e.g. one whose training diverged: the file at ``path`` keeps its
    last good content. Missing parent directories are created.
    """
    if not overwrite and os.path.lexists(path):
        raise CheckpointExistsError(path)
    try:
        kind = kind_of(model).name
    except TypeError:
        raise TypeError(f"save: cannot checkpoint a {type(model).__name__}; known kinds: {kind_names()}") from None
    leaves = _leaves(model)
    for name, leaf in leaves:
        problem = _non_finite(name, leaf)
        if problem:
            raise CheckpointError(f"checkpoint {path}: not saved: {problem} (diverged training?); "
                                  "any earlier file there is unchanged")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spikefleet_version": __version__,
        "kind": kind,
        "config": model.config.to_dict(),
        "info": info or {},
        "leaves": [name for name, _ in leaves],
    }
    arrays = {name: np.asarray(leaf) for name, leaf in leaves}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


#: pairs of config sizes that are the shape of a stored matrix in every model kind that has both fields
#: (w_in, w_rec, w_out; ADS/FORCE f_hat, d_hat, core.w_in, core.w_rec): their products cannot exceed the
#: number of stored values, which bounds what building the skeleton may allocate
_SIZE_PAIRS = (("n_in", "n_hidden"), ("n_hidden", "n_hidden"), ("n_hidden", "n_out"), ("n", "n"), ("n_hat", "n"),
               ("n_in", "n_hat"), ("n_hat", "n_out"))


def _read_archive(path: Path) -> tuple[dict, dict]:
    """``(meta, arrays)`` of the archive at ``path``; CheckpointError for anything unreadable."""
    def fail(why: str):
        raise CheckpointError(f"checkpoint {path}: {why}; expected a spikefleet checkpoint (.sfc: a NumPy .npz "
                              "archive written by `spikefleet train`); re-save or re-train it")

    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        fail(f"cannot read the file ({exc.strerror or exc})")
    if head[:2] != b"PK":
        fail("not a zip archive (" + ("a plain .npy array" if head == b"\x93NUM" else
                                      "empty file" if not head else "unknown content") + ")")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                fail("not an .npz archive")
            if "__meta__" not in archive.files:
                fail("no metadata (__meta__)")
            raw = archive["__meta__"]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                fail(f"metadata of dtype {raw.dtype} and shape {raw.shape}, expected UTF-8 bytes")
            meta = json.loads(raw.tobytes().decode("utf-8"))
            arrays = {name: archive[name] for name in archive.files if name != "__meta__"}
    except CheckpointError:
        raise
    except RecursionError:
        fail("metadata nested too deeply")
    except MemoryError:
        fail("an array header declares more data than fits in memory (corrupted file)")
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/numpy raise many types for corrupted archives
        fail(f"unreadable or truncated file ({type(exc).__name__}: {exc})")
    return meta, arrays


def _check_meta(meta, path: Path, kind: str | None) -> tuple[str, dict]:
    def fail(why: str):
        raise CheckpointError(f"checkpoint {path}: {why}")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fail("not a spikefleet checkpoint (metadata without format = " + repr(FORMAT) + ")")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        fail(f"format version {shown(version)} is not supported (expected {FORMAT_VERSION}); re-train or convert it")
    got_kind = meta.get("kind")
    if not isinstance(got_kind, str) or got_kind not in kind_names():
        fail(f"unknown model kind {shown(got_kind)}; expected one of {kind_names()}")
    if kind is not None and got_kind != kind:
        fail(f"expected a {kind!r} model, got {got_kind!r}")
    config = meta.get("config")
    if not isinstance(config, dict):
        fail(f"invalid model config (expected an object, got {type(config).__name__})")
    if not isinstance(meta.get("info", {}), dict):
        fail(f"invalid metadata 'info' (expected an object, got {type(meta.get('info')).__name__})")
    leaves = meta.get("leaves")
    if not isinstance(leaves, list) or not all(isinstance(x, str) for x in leaves):
        fail("invalid metadata 'leaves' (expected a list of parameter names)")
    return got_kind, config


def _check_sizes(config: dict, arrays: dict, path: Path) -> None:
    """Refuse configs whose sizes cannot match the stored arrays before building anything that large."""
    total = sum(int(a.size) for a in arrays.values())
    for a, b in _SIZE_PAIRS:
        va, vb = config.get(a), config.get(b)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (va, vb)) and va * vb > total:
            raise CheckpointError(f"checkpoint {path}: invalid model config: a {a} x {b} = {va} x {vb} matrix does "
                                  f"not fit the {total} stored parameter values")


def _check_model(model, path: Path) -> None:
    """Run the value checks of every module of the loaded model (e.g. positive currents) again."""
    seen = [model]
    while seen:
        node = seen.pop()
        if isinstance(node, eqx.Module):
            for klass in type(node).__mro__:
                check = klass.__dict__.get("__check_init__")
                if check is not None:
                    try:
                        check(node)
                    except (ConfigError, ValueError) as exc:
                        raise CheckpointError(f"checkpoint {path}: invalid parameter values ({exc})") from None
            seen.extend(getattr(node, f.name) for f in dataclasses.fields(node))
        elif isinstance(node, (list, tuple)):
            seen.extend(node)


def load(path: str | os.PathLike, *, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint; raises :class:`CheckpointError` naming the problem and the file.

    Checked: the archive (zip, metadata JSON), format and version, model kind (``kind``: the one
    expected), the config, parameter names, shapes, dtypes, finiteness, and the model's own value
    checks (e.g. positive DYNAP-SE2 currents).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file" + (" (a directory)" if path.is_dir() else ""))
    meta, arrays = _read_archive(path)
    got_kind, config = _check_meta(meta, path, kind)
    model_kind = get_kind(got_kind)
    _check_sizes(config, arrays, path)
    try:
        skeleton = model_kind.skeleton(model_kind.config_from_dict(config))
    except Exception as exc:  # noqa: BLE001 - any failure to build the model from the stored config
        raise CheckpointError(f"checkpoint {path}: invalid model config ({type(exc).__name__}: {exc})") from None
    names = [name for name, _ in _leaves(skeleton)]
    if names != meta["leaves"] or set(names) != set(arrays):
        raise CheckpointError(f"checkpoint {path}: parameters {sorted(arrays)} do not match a {got_kind!r} "
                              f"model's {names}")
    values = []
    for name, leaf in _leaves(skeleton):
        value = arrays[name]
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            raise CheckpointError(f"checkpoint {path}: parameter {name} has shape {value.shape} {value.dtype}, "
                                  f"expected {leaf.shape} {leaf.dtype}")
        problem = _non_finite(name, value)
        if problem:
            raise CheckpointError(f"checkpoint {path}: {problem}; the file is corrupted or holds a diverged model")
        values.append(jax.numpy.asarray(value))
    params, static = eqx.partition(skeleton, eqx.is_array)
    params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), values)
    model = eqx.combine(params, static)
    _check_model(model, path)
    return Checkpoint(model=model, info=meta.get("info", {}), meta=meta)
