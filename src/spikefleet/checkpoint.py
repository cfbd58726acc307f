"""Checkpoints: a trained design (model + its config + metadata) in one file.

Format (``FORMAT_VERSION = 1``): a NumPy ``.npz`` archive (zip, no pickles) holding

* ``__meta__``: UTF-8 JSON with ``format``, ``format_version``, ``spikefleet_version``,
  ``kind`` (model class key), ``config`` (the model's static config), ``info`` (user metadata:
  task, method, seed, metrics, ...) and ``leaves`` (the ordered parameter paths);
* one array per parameter leaf, named by its path (e.g. ``neurons.tau_mem``).

Loading rebuilds a skeleton of the model from ``kind`` + ``config`` and fills the leaves in,
checking names, shapes and dtypes, so values round-trip bit-exactly. Writes are atomic: the
file is written to a temporary name in the same directory and renamed over the target, so a
crash never leaves a half-written checkpoint and an existing file is replaced only whole.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np

from ._version import __version__
from .errors import CheckpointError
from .network import RateConfig, RateNetwork, SpikingConfig, SpikingNetwork
from .network_dynapse2 import DynapSE2Config, DynapSE2Network
from .train.ads import ADSConfig, ADSNetwork
from .train.force import FORCEConfig, FORCENetwork

__all__ = ["save", "load", "Checkpoint", "MODEL_KINDS", "atomic_write_bytes", "FORMAT_VERSION"]

FORMAT = "spikefleet-checkpoint"
FORMAT_VERSION = 1

#: model kind -> (class, config class)
MODEL_KINDS: dict[str, tuple[type, type]] = {
    "spiking": (SpikingNetwork, SpikingConfig),
    "rate": (RateNetwork, RateConfig),
    "ads": (ADSNetwork, ADSConfig),
    "force": (FORCENetwork, FORCEConfig),
    "dynapse2": (DynapSE2Network, DynapSE2Config),
}


class Checkpoint(NamedTuple):
    model: Any
    info: dict
    meta: dict


def _kind_of(model) -> str:
    for kind, (cls, _) in MODEL_KINDS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"save: cannot checkpoint a {type(model).__name__}; known kinds: {sorted(MODEL_KINDS)}")


def _leaves(model) -> list[tuple[str, Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))
    return [(jax.tree_util.keystr(path, simple=True, separator="."), leaf) for path, leaf in flat]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save(path: str | os.PathLike, model, info: dict | None = None) -> Path:
    """Save ``model`` with JSON-serialisable ``info`` to ``path`` atomically; returns the path."""
    kind = _kind_of(model)
    leaves = _leaves(model)
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


def load(path: str | os.PathLike, *, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint; raises :class:`CheckpointError` naming the problem and the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "__meta__" not in archive.files:
                raise CheckpointError(f"checkpoint {path}: not a spikefleet checkpoint (no metadata)")
            meta = json.loads(archive["__meta__"].tobytes().decode())
            arrays = {name: archive[name] for name in archive.files if name != "__meta__"}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, UnicodeDecodeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable or truncated file ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a spikefleet checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {meta.get('format_version')!r} is not "
                              f"supported (expected {FORMAT_VERSION}); re-train or convert it")
    got_kind = meta.get("kind")
    if got_kind not in MODEL_KINDS:
        raise CheckpointError(f"checkpoint {path}: unknown model kind {got_kind!r}; expected one of {sorted(MODEL_KINDS)}")
    if kind is not None and got_kind != kind:
        raise CheckpointError(f"checkpoint {path}: expected a {kind!r} model, got {got_kind!r}")
    cls, config_cls = MODEL_KINDS[got_kind]
    try:
        skeleton = cls.skeleton(config_cls.from_dict(meta["config"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path}: invalid model config ({exc})") from None
    names = [name for name, _ in _leaves(skeleton)]
    if names != meta.get("leaves") or set(names) != set(arrays):
        raise CheckpointError(f"checkpoint {path}: parameters {sorted(arrays)} do not match a {got_kind!r} "
                              f"model's {names}")
    values = []
    for name, leaf in _leaves(skeleton):
        value = arrays[name]
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            raise CheckpointError(f"checkpoint {path}: parameter {name} has shape {value.shape} {value.dtype}, "
                                  f"expected {leaf.shape} {leaf.dtype}")
        values.append(jax.numpy.asarray(value))
    params, static = eqx.partition(skeleton, eqx.is_array)
    params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), values)
    return Checkpoint(model=eqx.combine(params, static), info=meta.get("info", {}), meta=meta)
