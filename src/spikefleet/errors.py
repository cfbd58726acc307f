"""Exceptions raised for user-facing problems.

Every error names what was expected, what was got and, where possible, how to fix it.
The CLI turns these into a one-line message and exit code 2.
"""

from __future__ import annotations

import math


class SpikefleetError(Exception):
    """Base class for errors caused by user input (arguments, files, configurations)."""


class ConfigError(SpikefleetError, ValueError):
    """An argument or configuration value is out of range or of the wrong kind."""


class CheckpointError(SpikefleetError):
    """A checkpoint file is missing, truncated, corrupted or of the wrong kind/version."""


def expect(condition: bool, name: str, expected: str, got: object) -> None:
    """Raise :class:`ConfigError` ``"{name}: expected {expected}, got {got!r}"`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"{name}: expected {expected}, got {got!r}")


def is_finite_number(x) -> bool:
    """A real, finite Python/NumPy number that is not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_positive_int(x) -> bool:
    """An ``int`` > 0 that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool) and x > 0
