"""Reading user files with clean errors: every failure names the file and says what was expected.

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
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from spikefleet.errors import ConfigError

__all__ = ["read_bytes", "read_text", "parse_json", "parse_toml", "load_json", "load_toml"]


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
