"""Checks shared by the static configs of the networks (frozen dataclasses with a validated schema).

* :func:`check_sizes` — the layer sizes and the time step of a plain network config;
* :func:`check_fields` — groups of fields against one rule each (:data:`POSITIVE_INT`, ...), in order.

Every failed check raises :class:`~spikefleet.errors.ConfigError` naming ``Config.field``, what
was expected and what was got.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from spikefleet.errors import expect, is_finite_number, is_positive_int

__all__ = ["check_sizes", "check_fields", "Rule", "POSITIVE_INT", "OPTIONAL_POSITIVE_INT",
           "FINITE", "NON_NEGATIVE", "POSITIVE"]


@dataclasses.dataclass(frozen=True)
class Rule:
    """A check of one field value: ``ok(value)`` and the words for what it expects."""

    ok: Callable[[object], bool]
    expected: str

    def but(self, expected: str) -> "Rule":
        """The same check described with other words (e.g. with the unit)."""
        return Rule(self.ok, expected)


#: a positive integer (``bool`` excluded)
POSITIVE_INT = Rule(is_positive_int, "a positive integer")
#: a positive integer or ``None`` (sizes filled in later)
OPTIONAL_POSITIVE_INT = Rule(lambda v: v is None or is_positive_int(v), "a positive integer or None")
#: a finite real number
FINITE = Rule(is_finite_number, "a finite number")
#: a finite number >= 0
NON_NEGATIVE = Rule(lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0")
#: a finite number > 0
POSITIVE = Rule(lambda v: is_finite_number(v) and v > 0, "a positive finite number")


def check_fields(config, groups: Iterable[tuple[Iterable[str], Rule]]) -> None:
    """Check every field of every ``(fields, rule)`` group of ``config``, group by group, in order."""
    name = type(config).__name__
    for fields, rule in groups:
        for f in fields:
            value = getattr(config, f)
            expect(rule.ok(value), f"{name}.{f}", rule.expected, value)


def check_sizes(cfg, names) -> None:
    """Positive integer sizes ``names`` and a positive time step ``cfg.dt`` (seconds)."""
    for name in names:
        value = getattr(cfg, name)
        expect(isinstance(value, int) and not isinstance(value, bool) and value > 0,
               f"{type(cfg).__name__}.{name}", "a positive integer", value)
    expect(isinstance(cfg.dt, (int, float)) and cfg.dt > 0, f"{type(cfg).__name__}.dt",
           "a positive time step in seconds", cfg.dt)
