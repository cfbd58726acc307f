"""File I/O: reading user files with clean errors, writing outputs atomically, and JSON conversion.

**Reading.** Every failure names the file and says what was expected.

The loaders of experiment files, mismatch profiles, calibration tables and hardware
configurations read through these helpers, so that the failure modes of the standard parsers
that are *not* their documented error types cannot escape as tracebacks:

* :func:`read_bytes` / :func:`read_text` — missing file, a directory, no permission, an I/O error,
  bytes that are not UTF-8 (a leading UTF-8 byte-order mark is accepted);
* :func:`parse_json` / :func:`parse_toml` — syntax errors (with line and column), integers longer
  than Python's 4300-digit conversion limit (``ValueError``), nesting deeper than the parser's
  recursion limit (``RecursionError``).

All raise ``error`` (default :class:`~spikefleet.errors.ConfigError`) with a message that starts
with the file name.

**Writing.** Every file the library writes goes through :func:`atomic_write_bytes` (temporary file in
the same directory, fsync, rename): either the whole new content is in place or the old file is
untouched. :func:`atomic_write_text` and :func:`write_json` are the text and JSON forms;
:func:`check_writable` probes an output location before long work (and, unlike the writers, does not create
missing directories). Failures raise
:class:`~spikefleet.errors.OutputError` naming the file.

**JSON conversion.** :func:`to_jsonable` is the one conversion of results (dicts, lists, NumPy
arrays and scalars) into plain JSON values, used by every writer and by the result store.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from spikefleet.errors import ConfigError, OutputError

__all__ = ["read_bytes", "read_text", "parse_json", "parse_toml", "load_json", "load_toml", "atomic_write_bytes",
           "atomic_write_text", "write_json", "check_writable", "to_jsonable"]


def read_bytes(path: str | os.PathLike, what: str = "file", error: type = ConfigError) -> bytes:
    """The content of ``path``; ``error`` naming the file if it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {what} (expected a readable file at this path); check the path") from None
    except IsADirectoryError:
        raise error(f"{path}: expected a {what}, got a directory") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def read_text(path: str | os.PathLike, what: str = "file", error: type = ConfigError) -> str:
    """UTF-8 text of ``path`` (a leading byte-order mark is dropped); ``error`` naming the file."""
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: expected UTF-8 text, got undecodable bytes at offset {exc.start} "
                    f"(save the {what} as UTF-8)") from None


def parse_json(text: str, source: str, error: type = ConfigError):
    """``json.loads(text)``; ``error`` naming ``source`` for every way parsing can fail."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: expected valid JSON, got a parse error at line {exc.lineno}, column {exc.colno}: "
                    f"{exc.msg}") from None
    except RecursionError:
        raise error(f"{source}: expected valid JSON, got arrays/objects nested too deeply to parse") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"{source}: expected valid JSON, got an unreadable value ({exc})") from None


def parse_toml(text: str, source: str, error: type = ConfigError) -> dict:
    """``tomllib.loads(text)``; ``error`` naming ``source`` for every way parsing can fail."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML ({exc}); fix the syntax at the position shown") from None
    except RecursionError:
        raise error(f"{source}: not valid TOML (arrays/tables nested too deeply to parse)") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"{source}: not valid TOML (an unreadable value: {exc})") from None


def load_json(path: str | os.PathLike, what: str = "JSON file", error: type = ConfigError):
    """:func:`read_text` then :func:`parse_json`."""
    return parse_json(read_text(path, what, error), str(path), error)


def load_toml(path: str | os.PathLike, what: str = "TOML file", error: type = ConfigError) -> dict:
    """:func:`read_text` then :func:`parse_toml`."""
    return parse_toml(read_text(path, what, error), str(path), error)


# ------------------------------------------------------------------------------------ writing


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename).

    Either the whole new content is in place or the old file (if any) is untouched, and no
    temporary file is left behind. Missing parent directories are created. An :class:`OSError`
    (disk full, read-only directory, ...) becomes :class:`~spikefleet.errors.OutputError` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fh.fileno(), 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(path.parent)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(path, exc) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: some file systems cannot fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value, *, indent: int | None = 1, strict: bool = False,
               sort_keys: bool = False, end: str = "\n") -> None:
    """Write ``to_jsonable(value, strict=strict)`` as JSON (``indent``, ``sort_keys``) followed by ``end``,
    atomically. ``strict``: NaN and ±inf become ``null``, so the file is standard JSON."""
    text = json.dumps(to_jsonable(value, strict=strict), indent=indent, sort_keys=sort_keys, allow_nan=not strict)
    atomic_write_text(path, text + end)


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`~spikefleet.errors.OutputError` unless a file can be created next to ``path``.

    Called before long computations (training, fleet evaluation) so that an unwritable output
    location is reported before the work, not after it. Creates nothing that stays: a missing parent
    directory is an :class:`~spikefleet.errors.OutputError` (``No such file or directory``), not
    created (the command line refuses it earlier, naming the option).
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(path, exc) from exc


# ------------------------------------------------------------------------------- conversion


def to_jsonable(value, *, strict: bool = False):
    """``value`` as plain JSON values: mappings become dicts with ``str`` keys, lists, tuples and NumPy
    arrays become lists, NumPy scalars Python numbers; ``None``, bools, ints, floats and strings stay
    (floats keep their exact value, so ``json.dumps`` writes the same ``repr``); anything else becomes
    its ``str()``. ``strict``: NaN and ±inf floats become ``None`` (standard JSON has no such numbers)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, strict=strict) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, strict=strict) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if strict and not math.isfinite(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
