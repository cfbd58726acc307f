"""``spikefleet run`` and ``spikefleet report``: run or resume an experiment file, report an output directory.

    spikefleet run [FILE.toml] [--out DIR] [--backend local|ray] [--workers N] [--address A] [--quiet] [--no-report]
    spikefleet report DIR [--out FILE] [--overwrite]

:func:`main` is ``spikefleet run`` on its own (``python -m spikefleet.cli.run``), for scripts that start runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spikefleet.cli._common import UsageError, _output_dir, _output_file, _Parser, _positive_int, print_error
from spikefleet.errors import SpikefleetError
from spikefleet.experiments.backends import BACKENDS
from spikefleet.experiments.runner import run_experiment
from spikefleet.experiments.store_report import report_dir

__all__ = ["add_run_arguments", "add_report_arguments", "cmd_run", "cmd_report", "main"]


def add_run_arguments(parser) -> None:
    """The arguments of ``spikefleet run [FILE] [--out DIR] [--backend local|ray] [--workers N]
    [--address A] [--quiet] [--no-report]`` (for :func:`cmd_run`)."""
    parser.add_argument("experiment", nargs="?", type=Path,
                        help="experiment file (TOML); default: the built-in XOR robustness experiment")
    parser.add_argument("--out", type=Path, help="output directory (default: the file's `output`, else "
                        "runs/<name>); created if missing, but its parent must exist; run the same command again "
                        "to resume an interrupted run")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local process pool (default) or Ray (pip install 'spikefleet[ray]')")
    parser.add_argument("--workers", type=_positive_int, default=2, help="units run at once (default 2)")
    parser.add_argument("--address", help="--backend ray: address of an existing Ray cluster (default: start "
                        "a local one)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; print only the summary table")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html at the end")


def add_report_arguments(parser) -> None:
    """The arguments of ``spikefleet report DIR [--out FILE] [--overwrite]`` (for :func:`cmd_report`)."""
    parser.add_argument("dir", type=Path, help="output directory of `spikefleet run` (holds results.sqlite)")
    parser.add_argument("--out", type=Path, help="HTML file to write (default: DIR/report.html, refreshed)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def cmd_run(args) -> int:
    """``spikefleet run``: run or resume an experiment file (:func:`~spikefleet.experiments.runner.run_experiment`)."""
    if args.address is not None and args.backend != "ray":
        raise UsageError("--address applies to --backend ray only")
    if args.out is not None:
        _output_dir(args.out, "--out")
    result = run_experiment(args.experiment, args.out, backend=args.backend, workers=args.workers,
                            address=args.address, progress=not args.quiet, report=not args.no_report)
    if args.quiet:
        print(result.table)
    return 0


def cmd_report(args) -> int:
    """``spikefleet report``: write the HTML report of an experiment's output directory."""
    if args.out is not None:
        _output_file(args.out, "--out", args.overwrite)
    path = report_dir(args.dir, args.out)
    print(f"report written to {path}")
    return 0


def main(argv=None) -> int:
    """``python -m spikefleet.cli.run [FILE] [--out DIR] ...``: ``spikefleet run`` alone; returns the exit code."""
    parser = _Parser(prog="spikefleet run", description="Run or resume an experiment file.")
    add_run_arguments(parser)
    try:
        return cmd_run(parser.parse_args(argv))
    except (SpikefleetError, OSError) as exc:
        return print_error(exc, "spikefleet run")
    except KeyboardInterrupt:
        print("spikefleet run: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
