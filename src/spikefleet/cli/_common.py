"""Plumbing shared by the ``spikefleet`` commands: the usage error, argparse value types, the refusal to
replace an existing output, and JSON output files (private to the :mod:`spikefleet.cli` package)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spikefleet.errors import SpikefleetError
from spikefleet.io import check_writable, write_json

__all__ = ["UsageError", "_Parser", "_bounded", "_positive_int", "_seed", "_fraction", "_float_list",
           "_refuse_overwrite", "_write_json", "EXIT_USAGE", "EXIT_IO"]

EXIT_USAGE = 2
EXIT_IO = 1  # an output could not be written (disk full, read-only directory, ...)


class UsageError(SpikefleetError):
    """Bad command-line usage; :func:`spikefleet.cli.main.main` prints the message and returns exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one :class:`UsageError` line (exit code 2), not ``SystemExit``."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def _bounded(parse, what: str, ok):
    """An argparse type: ``parse(text)`` that must satisfy ``ok``; errors say ``expected {what}``."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return convert


_positive_int = _bounded(int, "a positive integer", lambda v: v > 0)
_seed = _bounded(int, "a non-negative integer seed", lambda v: v >= 0)
_fraction = _bounded(float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)


def _float_list(text: str) -> tuple:
    """An argparse type: comma-separated non-negative numbers, e.g. ``0,0.05,0.1``."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative numbers, got {text!r}")
    return values


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    """Refuse an existing output file without ``--overwrite``, and an unwritable location (checked
    before the work, so that hours of training are not lost to a read-only directory at the end)."""
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; choose another path or pass --overwrite")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file path")
    check_writable(path)


def _write_json(path: Path, data) -> None:
    """A ``--json`` output: strict JSON (NaN/inf as ``null``), indented by 2, atomically."""
    write_json(path, data, indent=2, strict=True)
