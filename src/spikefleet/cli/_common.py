"""Plumbing shared by the ``spikefleet`` commands: the usage error and how errors are printed, argparse
value types, the checks of output files and directories, and JSON output files (private to the
:mod:`spikefleet.cli` package).

Every user error of a command is printed as one line ``spikefleet <command>: error: <message>``
(:func:`print_error`): argparse errors carry the ``prog`` of the parser that found them, errors raised
while a command runs (:class:`UsageError` or any :class:`~spikefleet.errors.SpikefleetError` from the
library) get the command's prefix from :func:`spikefleet.cli.main.main`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from spikefleet.errors import OutputError, SpikefleetError
from spikefleet.io import check_writable, write_json

__all__ = ["UsageError", "_Parser", "_bounded", "_positive_int", "_seed", "_fraction", "_number_list",
           "_name_list", "_output_file", "_output_dir", "_write_json", "_holds", "print_error", "KIND_WORDS",
           "EXIT_USAGE", "EXIT_IO"]

EXIT_USAGE = 2
EXIT_IO = 1  # an output could not be written (disk full, read-only directory, ...)


class UsageError(SpikefleetError):
    """Bad command-line usage; :func:`print_error` prints ``{prog}: error: {message}`` and exit code 2 follows.

    ``prog``: the (sub)command whose parser found the error (argparse errors); ``None``: the command
    that was running, which the caller knows.
    """

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one :class:`UsageError` (exit code 2), not ``SystemExit``."""

    def error(self, message):
        raise UsageError(message, prog=self.prog)


def print_error(exc: BaseException, prog: str) -> int:
    """Print ``exc`` on stderr as ``{prog}: error: {message}`` (the parser's ``prog`` for argparse errors)
    and return the exit code: 1 when an output could not be written, 2 for every other user error."""
    if isinstance(exc, UsageError) and exc.prog:
        prog = exc.prog
    if isinstance(exc, OutputError):
        text, code = str(exc), EXIT_IO
    elif isinstance(exc, SpikefleetError):
        text, code = str(exc), EXIT_USAGE
    else:  # any other failed file operation (an OSError): name the file
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        text, code = f"{where}{getattr(exc, 'strerror', None) or exc}", EXIT_IO
    print(f"{prog}: error: {text}", file=sys.stderr)
    return code


# ------------------------------------------------------------------------------------ value types


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


def _number_list(what: str, lo: float | None = 0.0, hi: float | None = None, *, hi_open: bool = False,
                 integer: bool = False):
    """An argparse type: comma-separated distinct finite numbers (integers with ``integer``) in ``[lo, hi]``
    (``[lo, hi)`` with ``hi_open``), e.g. ``0,0.05,0.1``. Errors say ``expected comma-separated {what}``
    and which entry is wrong: empty, not a number, not finite, out of range or repeated."""

    def convert(text: str) -> tuple:
        def refuse(why: str):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r} ({why})")

        values = []
        for i, entry in enumerate(text.split(","), 1):
            entry = entry.strip()
            if not entry:
                refuse(f"entry {i} is empty")
            try:
                value = int(entry) if integer else float(entry)
            except ValueError:
                refuse(f"{entry!r} is not {'an integer' if integer else 'a number'}")
            if not math.isfinite(value):
                refuse(f"{entry} is not a finite number")
            if (lo is not None and value < lo) or (hi is not None and (value >= hi if hi_open else value > hi)):
                refuse(f"{entry} is out of range")
            if value in values:
                refuse(f"{entry} is repeated")
            values.append(value)
        return tuple(values)

    return convert


def _name_list(what: str, names):
    """An argparse type: comma-separated distinct names drawn from ``names`` (the error lists them)."""

    def convert(text: str) -> tuple:
        def refuse(why: str):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} from {', '.join(names)}, "
                                             f"got {text!r} ({why})")

        out = []
        for i, entry in enumerate(text.split(","), 1):
            entry = entry.strip()
            if not entry:
                refuse(f"entry {i} is empty")
            if entry not in names:
                refuse(f"unknown name {entry!r}")
            if entry in out:
                refuse(f"{entry} is repeated")
            out.append(entry)
        return tuple(out)

    return convert


# ------------------------------------------------------------------------------------ outputs


def _missing_parent(path: Path) -> str | None:
    parent = path.parent
    if parent.is_dir():
        return None
    what = "is not a directory" if parent.exists() else "does not exist"
    return f"the directory {parent} {what}; create it first (mkdir -p {parent}) or choose another path"


def _output_file(path: Path, option: str, overwrite: bool) -> None:
    """Check the output file of ``option`` before any work: its directory exists (it is not created),
    it is not a directory, it does not exist unless ``--overwrite``, and a file can be created there."""
    problem = _missing_parent(path)
    if problem:
        raise UsageError(f"{option} {path}: {problem}")
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file path")
    if path.exists() and not overwrite:
        raise UsageError(f"{option} {path}: already exists; choose another path or pass --overwrite")
    check_writable(path)


def _output_dir(path: Path, option: str) -> None:
    """Check the output directory of ``option`` before any work: an existing directory, or a new one
    whose parent exists (only the last component of the path is created)."""
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{option} {path}: is a file, expected a directory; choose another path")
        return
    problem = _missing_parent(path)
    if problem:
        raise UsageError(f"{option} {path}: {problem} ({option} creates only the last directory of the path)")


def _write_json(path: Path, data) -> None:
    """A ``--json`` output: strict JSON (NaN/inf as ``null``), indented by 2, atomically."""
    write_json(path, data, indent=2, strict=True)


#: model kinds (:mod:`spikefleet.models.registry`) in user terms
KIND_WORDS = {"rate": "rate network (a teacher)", "spiking": "LIF network", "ads": "Network ADS design",
              "force": "FORCE design", "dynapse2": "DYNAP-SE2 network"}


def _holds(path: Path, ckpt) -> str:
    """``"bptt.sfc holds a LIF network trained with --method bptt on xor"`` (from the checkpoint's kind and info)."""
    kind = ckpt.meta.get("kind")
    text = f"{path} holds a {KIND_WORDS.get(kind, f'{kind!r} model')}"
    method, task = ckpt.info.get("method"), ckpt.info.get("task")
    if isinstance(method, str):
        text += f" trained with --method {method}"
    if isinstance(task, str):
        text += f" on {task}"
    return text
