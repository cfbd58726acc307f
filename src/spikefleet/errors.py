"""Exceptions raised for user-facing problems.

Every error names what was expected, what was got and, where possible, how to fix it.
The CLI turns these into a one-line message and exit code 2.
"""

from __future__ import annotations

import errno
import math
import reprlib


class SpikefleetError(Exception):
    """Base class for errors caused by user input (arguments, files, configurations)."""


class ConfigError(SpikefleetError, ValueError):
    """An argument or configuration value is out of range or of the wrong kind."""


class CheckpointError(SpikefleetError):
    """A checkpoint file is missing, truncated, corrupted or of the wrong kind/version."""


class OutputError(SpikefleetError, OSError):
    """Writing an output file failed (disk full, read-only directory, ...).

    Also an :class:`OSError` (``errno``, ``filename`` as the failed call's), so ``except OSError``
    still catches it. Writes are atomic, so the earlier content of the file is left intact. The CLI
    prints it as one line and exits with code 1.
    """

    def __init__(self, path, cause: OSError, action: str = "write"):
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(cause.errno, reason, str(path))
        hint = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some space within your quota",
                errno.EACCES: "choose a writable location or fix the permissions",
                errno.EPERM: "choose a writable location or fix the permissions",
                errno.EROFS: "choose a location on a writable file system"}.get(cause.errno, "choose another location")
        self.message = (f"cannot {action} {path}: {reason}; any earlier version of the file is unchanged "
                        f"(writes are atomic); {hint}")

    def __str__(self) -> str:
        return self.message


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 6, 200, 200
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 24


def shown(value: object) -> str:
    """``repr(value)`` for error messages: at most 6 levels deep, 24 items per container, 200 characters per
    string (a hostile file's value, e.g. a list nested 900 deep, must not break the error message itself)."""
    try:
        return _REPR.repr(value)
    except (RecursionError, ValueError):  # ValueError: an integer beyond the 4300-digit str() limit
        return f"<{type(value).__name__}>"


def expect(condition: bool, name: str, expected: str, got: object) -> None:
    """Raise :class:`ConfigError` ``"{name}: expected {expected}, got {got!r}"`` unless ``condition``
    (``got`` shortened by :func:`shown`)."""
    if not condition:
        raise ConfigError(f"{name}: expected {expected}, got {shown(got)}")


def is_finite_number(x, *, bound: float | None = None) -> bool:
    """A real, finite Python/NumPy number that is not a bool; with ``bound``, also ``-bound < x < bound``
    (compared exactly, so an integer too large for a float is refused instead of overflowing)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    return -bound < x < bound if bound is not None else math.isfinite(x)


def is_int(x) -> bool:
    """An ``int`` (Python or a subclass) that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_positive_int(x) -> bool:
    """An ``int`` > 0 that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


class SpikefleetWarning(UserWarning):
    """Base class of spikefleet's warnings: a result was produced but deserves a look. The CLI prints
    each as one line, ``spikefleet <command>: warning: <message>``."""


class TrainingWarning(SpikefleetWarning):
    """A training run finished, but its result deserves a look (e.g. the kept model is the untrained
    initial one: validation never improved on it). Not an error: the model is saved all the same."""
